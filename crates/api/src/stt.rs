//! Speech to text: the interface, its domain types, and its gRPC side.

use std::sync::Arc;
use std::time::Duration;

use athena_audio::AudioFormat;
use athena_proto::stt::v1 as pb;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use pb::speech_to_text_client::SpeechToTextClient;
use pb::speech_to_text_server::{SpeechToText as SpeechToTextRpc, SpeechToTextServer};
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};

use crate::error::Error;
use crate::wire::{Failure, format_from_wire, format_to_wire, optional};

/// A model the service can transcribe with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SttModel {
    /// Its catalog name, e.g. `whisper-tiny.en`.
    pub name: String,
    /// Languages it understands.
    pub languages: Vec<String>,
    /// True when it is on disk and can be used now.
    pub installed: bool,
    /// For people.
    pub description: String,
    /// Its version.
    pub version: String,
}

/// How to transcribe one utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct RecognitionConfig {
    /// The model; `None` for the service's default.
    pub model: Option<String>,
    /// The spoken language; `None` for the model's default or detection.
    pub language: Option<String>,
    /// The format of the audio that follows.
    pub format: AudioFormat,
    /// Send partial transcripts while audio arrives.
    pub partial_results: bool,
    /// Names and terms likely to be spoken.
    pub hints: Vec<String>,
}

/// The text of an utterance.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Transcript {
    /// What was said.
    pub text: String,
    /// The language it was said in, if known.
    pub language: Option<String>,
    /// Seconds of audio transcribed.
    pub audio_seconds: f32,
}

/// What a recognition produces, in order: any number of partials, one final.
#[derive(Debug, Clone, PartialEq)]
pub enum RecognitionEvent {
    /// The text so far; replaces the previous partial.
    Partial(String),
    /// The final transcript.
    Final(Transcript),
}

/// Audio as it arrives; an `Err` ends the utterance with that error.
pub type AudioStream = BoxStream<'static, Result<Bytes, Error>>;
/// Recognition results as they are produced.
pub type RecognitionStream = BoxStream<'static, Result<RecognitionEvent, Error>>;

/// Speech to text, wherever it runs.
#[async_trait::async_trait]
pub trait SpeechToText: Send + Sync + 'static {
    /// The models this service offers.
    async fn describe(&self) -> Result<Vec<SttModel>, Error>;

    /// Transcribes `audio`, which ends when the speaker has finished.
    async fn recognize(
        &self,
        config: RecognitionConfig,
        audio: AudioStream,
    ) -> Result<RecognitionStream, Error>;
}

// ---- wire ↔ domain -------------------------------------------------------

impl TryFrom<pb::RecognitionConfig> for RecognitionConfig {
    type Error = Error;

    fn try_from(c: pb::RecognitionConfig) -> Result<Self, Error> {
        Ok(Self {
            model: optional(c.model),
            language: optional(c.language),
            format: format_from_wire(c.format)?,
            partial_results: c.partial_results,
            hints: c.hints,
        })
    }
}

impl From<RecognitionConfig> for pb::RecognitionConfig {
    fn from(c: RecognitionConfig) -> Self {
        Self {
            model: c.model.unwrap_or_default(),
            language: c.language.unwrap_or_default(),
            format: Some(format_to_wire(c.format)),
            partial_results: c.partial_results,
            hints: c.hints,
        }
    }
}

impl From<pb::SttModel> for SttModel {
    fn from(m: pb::SttModel) -> Self {
        Self {
            name: m.name,
            languages: m.languages,
            installed: m.installed,
            description: m.description,
            version: m.version,
        }
    }
}

impl From<SttModel> for pb::SttModel {
    fn from(m: SttModel) -> Self {
        Self {
            name: m.name,
            languages: m.languages,
            installed: m.installed,
            description: m.description,
            version: m.version,
        }
    }
}

impl From<RecognitionEvent> for pb::RecognizeResponse {
    fn from(e: RecognitionEvent) -> Self {
        use pb::recognize_response::Response as R;
        let response = match e {
            RecognitionEvent::Partial(text) => R::Partial(pb::PartialTranscript { text }),
            RecognitionEvent::Final(t) => R::Final(pb::FinalTranscript {
                text: t.text,
                language: t.language.unwrap_or_default(),
                audio_seconds: t.audio_seconds,
            }),
        };
        Self {
            response: Some(response),
        }
    }
}

impl TryFrom<pb::RecognizeResponse> for RecognitionEvent {
    type Error = Error;

    fn try_from(r: pb::RecognizeResponse) -> Result<Self, Error> {
        use pb::recognize_response::Response as R;
        match r.response {
            Some(R::Partial(p)) => Ok(Self::Partial(p.text)),
            Some(R::Final(f)) => Ok(Self::Final(Transcript {
                text: f.text,
                language: optional(f.language),
                audio_seconds: f.audio_seconds,
            })),
            None => Err(Error::new(
                crate::ErrorKind::Internal,
                "the stt service sent an empty response",
            )),
        }
    }
}

// ---- gRPC client -----------------------------------------------------------

/// A remote stt service, called over gRPC.
#[derive(Debug, Clone)]
pub struct GrpcSpeechToText {
    client: SpeechToTextClient<Channel>,
}

impl GrpcSpeechToText {
    /// A client for `uri` (`http://stt:8300`). It connects on first use, so a
    /// backend that starts later is fine; calls fail with `Unavailable` while
    /// it is down.
    pub fn connect_lazy(uri: &str) -> Result<Self, Error> {
        let channel = Channel::from_shared(uri.to_owned())
            .map_err(|e| Error::invalid(format!("invalid stt URI {uri:?}: {e}")))?
            .connect_timeout(Duration::from_secs(3))
            .connect_lazy();
        Ok(Self {
            client: SpeechToTextClient::new(channel),
        })
    }
}

#[async_trait::async_trait]
impl SpeechToText for GrpcSpeechToText {
    async fn describe(&self) -> Result<Vec<SttModel>, Error> {
        let response = self.client.clone().describe(pb::DescribeRequest {}).await?;
        Ok(response
            .into_inner()
            .models
            .into_iter()
            .map(Into::into)
            .collect())
    }

    async fn recognize(
        &self,
        config: RecognitionConfig,
        audio: AudioStream,
    ) -> Result<RecognitionStream, Error> {
        use pb::recognize_request::Request as R;
        let first = pb::RecognizeRequest {
            request: Some(R::Config(config.into())),
        };
        let failure = Failure::default();
        let requests = failure.request_stream(first, audio, |item| pb::RecognizeRequest {
            request: Some(R::Audio(item)),
        });
        let mut client = self.client.clone();
        let responses = client.recognize(requests).await?.into_inner();
        Ok(responses
            .map(move |r| {
                let event = r.map_err(Error::from).and_then(RecognitionEvent::try_from);
                failure.check(event)
            })
            .boxed())
    }
}

// ---- gRPC server -------------------------------------------------------------

/// Serves any [`SpeechToText`] over gRPC.
struct GrpcServer {
    inner: Arc<dyn SpeechToText>,
}

/// The gRPC routes for `stt`, to merge into a service's HTTP router (gRPC and
/// HTTP share one port).
pub fn grpc_router(stt: Arc<dyn SpeechToText>) -> axum::Router {
    tonic::service::Routes::new(SpeechToTextServer::new(GrpcServer { inner: stt }))
        .into_axum_router()
}

#[tonic::async_trait]
impl SpeechToTextRpc for GrpcServer {
    async fn describe(
        &self,
        _: Request<pb::DescribeRequest>,
    ) -> Result<Response<pb::DescribeResponse>, Status> {
        let models = self.inner.describe().await?;
        Ok(Response::new(pb::DescribeResponse {
            models: models.into_iter().map(Into::into).collect(),
        }))
    }

    type RecognizeStream = BoxStream<'static, Result<pb::RecognizeResponse, Status>>;

    async fn recognize(
        &self,
        request: Request<Streaming<pb::RecognizeRequest>>,
    ) -> Result<Response<Self::RecognizeStream>, Status> {
        use pb::recognize_request::Request as R;
        let mut incoming = request.into_inner();
        let config = match incoming.message().await?.and_then(|m| m.request) {
            Some(R::Config(config)) => RecognitionConfig::try_from(config)?,
            _ => {
                return Err(Status::invalid_argument(
                    "the first message must be the recognition config",
                ));
            }
        };
        let audio = incoming
            .map(|message| match message.map(|m| m.request) {
                Ok(Some(R::Audio(bytes))) => Ok(bytes),
                Ok(_) => Err(Error::invalid("only audio may follow the config")),
                Err(status) => Err(Error::from(status)),
            })
            .boxed();
        let events = self.inner.recognize(config, audio).await?;
        Ok(Response::new(
            events.map_ok(Into::into).map_err(Status::from).boxed(),
        ))
    }
}
