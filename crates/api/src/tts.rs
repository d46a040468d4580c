//! Text to speech: the interface, its domain types, and its gRPC side.

use std::sync::Arc;
use std::time::Duration;

use athena_audio::AudioFormat;
use athena_proto::tts::v1 as pb;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use pb::text_to_speech_client::TextToSpeechClient;
use pb::text_to_speech_server::{TextToSpeech as TextToSpeechRpc, TextToSpeechServer};
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};

use crate::error::Error;
use crate::wire::{Failure, format_from_wire, format_to_wire, optional};

/// A voice the service can speak with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Voice {
    /// Its catalog name, e.g. `en_US-joe-medium`.
    pub name: String,
    /// Languages it speaks.
    pub languages: Vec<String>,
    /// Its speakers, if it has several.
    pub speakers: Vec<String>,
    /// True when it is on disk and can be used now.
    pub installed: bool,
    /// For people.
    pub description: String,
    /// Its version.
    pub version: String,
    /// The rate it speaks at before resampling.
    pub sample_rate: u32,
}

/// How to speak.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SynthesisConfig {
    /// The voice; `None` for the service's default.
    pub voice: Option<String>,
    /// The speaker of a multi-speaker voice; `None` for its default.
    pub speaker: Option<String>,
    /// Speaking rate (> 1 slower); `None` for the voice's default.
    pub length_scale: Option<f32>,
    /// Output rate in Hz; `None` for the voice's own.
    pub sample_rate: Option<u32>,
    /// Silence after each sentence in seconds; `None` for the default.
    pub sentence_silence: Option<f32>,
}

/// The audio of one sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechSegment {
    /// 0 for the first sentence, then 1, 2, ...
    pub sentence: u32,
    /// The text it speaks.
    pub text: String,
    /// The format of `audio`.
    pub format: AudioFormat,
    /// PCM samples.
    pub audio: Bytes,
}

/// Text as it arrives (whole or in pieces); an `Err` ends it with that error.
pub type TextStream = BoxStream<'static, Result<String, Error>>;
/// Speech as it is synthesized, sentence by sentence.
pub type SpeechStream = BoxStream<'static, Result<SpeechSegment, Error>>;

/// Text to speech, wherever it runs.
#[async_trait::async_trait]
pub trait TextToSpeech: Send + Sync + 'static {
    /// The voices this service offers.
    async fn describe(&self) -> Result<Vec<Voice>, Error>;

    /// Speaks `text`, emitting each sentence's audio as soon as it is ready.
    async fn synthesize(
        &self,
        config: SynthesisConfig,
        text: TextStream,
    ) -> Result<SpeechStream, Error>;
}

// ---- wire ↔ domain -------------------------------------------------------

/// Zero or negative on the wire means "not given".
fn positive(x: f32) -> Option<f32> {
    (x > 0.0).then_some(x)
}

impl TryFrom<pb::SynthesisConfig> for SynthesisConfig {
    type Error = Error;

    fn try_from(c: pb::SynthesisConfig) -> Result<Self, Error> {
        if !c.length_scale.is_finite() || !c.sentence_silence.is_finite() {
            return Err(Error::invalid(
                "length_scale and sentence_silence must be finite",
            ));
        }
        Ok(Self {
            voice: optional(c.voice),
            speaker: optional(c.speaker),
            length_scale: positive(c.length_scale),
            sample_rate: (c.sample_rate > 0).then_some(c.sample_rate),
            sentence_silence: (c.sentence_silence >= 0.0).then_some(c.sentence_silence),
        })
    }
}

impl From<SynthesisConfig> for pb::SynthesisConfig {
    fn from(c: SynthesisConfig) -> Self {
        Self {
            voice: c.voice.unwrap_or_default(),
            speaker: c.speaker.unwrap_or_default(),
            length_scale: c.length_scale.unwrap_or(0.0),
            sample_rate: c.sample_rate.unwrap_or(0),
            sentence_silence: c.sentence_silence.unwrap_or(-1.0),
        }
    }
}

impl From<pb::Voice> for Voice {
    fn from(v: pb::Voice) -> Self {
        Self {
            name: v.name,
            languages: v.languages,
            speakers: v.speakers,
            installed: v.installed,
            description: v.description,
            version: v.version,
            sample_rate: v.sample_rate,
        }
    }
}

impl From<Voice> for pb::Voice {
    fn from(v: Voice) -> Self {
        Self {
            name: v.name,
            languages: v.languages,
            speakers: v.speakers,
            installed: v.installed,
            description: v.description,
            version: v.version,
            sample_rate: v.sample_rate,
        }
    }
}

impl From<SpeechSegment> for pb::SynthesizeResponse {
    fn from(s: SpeechSegment) -> Self {
        Self {
            sentence: s.sentence,
            text: s.text,
            format: Some(format_to_wire(s.format)),
            audio: s.audio,
        }
    }
}

impl TryFrom<pb::SynthesizeResponse> for SpeechSegment {
    type Error = Error;

    fn try_from(r: pb::SynthesizeResponse) -> Result<Self, Error> {
        Ok(Self {
            sentence: r.sentence,
            text: r.text,
            format: format_from_wire(r.format)?,
            audio: r.audio,
        })
    }
}

// ---- gRPC client -----------------------------------------------------------

/// A remote tts service, called over gRPC.
#[derive(Debug, Clone)]
pub struct GrpcTextToSpeech {
    client: TextToSpeechClient<Channel>,
}

impl GrpcTextToSpeech {
    /// A client for `uri` (`http://tts:8200`); it connects on first use.
    pub fn connect_lazy(uri: &str) -> Result<Self, Error> {
        let channel = Channel::from_shared(uri.to_owned())
            .map_err(|e| Error::invalid(format!("invalid tts URI {uri:?}: {e}")))?
            .connect_timeout(Duration::from_secs(3))
            .connect_lazy();
        Ok(Self {
            client: TextToSpeechClient::new(channel),
        })
    }
}

#[async_trait::async_trait]
impl TextToSpeech for GrpcTextToSpeech {
    async fn describe(&self) -> Result<Vec<Voice>, Error> {
        let response = self.client.clone().describe(pb::DescribeRequest {}).await?;
        Ok(response
            .into_inner()
            .voices
            .into_iter()
            .map(Into::into)
            .collect())
    }

    async fn synthesize(
        &self,
        config: SynthesisConfig,
        text: TextStream,
    ) -> Result<SpeechStream, Error> {
        use pb::synthesize_request::Request as R;
        let first = pb::SynthesizeRequest {
            request: Some(R::Config(config.into())),
        };
        let failure = Failure::default();
        let requests = failure.request_stream(first, text, |item| pb::SynthesizeRequest {
            request: Some(R::Text(item)),
        });
        let mut client = self.client.clone();
        let responses = client.synthesize(requests).await?.into_inner();
        Ok(responses
            .map(move |r| {
                let segment = r.map_err(Error::from).and_then(SpeechSegment::try_from);
                failure.check(segment)
            })
            .boxed())
    }
}

// ---- gRPC server -------------------------------------------------------------

/// Serves any [`TextToSpeech`] over gRPC.
struct GrpcServer {
    inner: Arc<dyn TextToSpeech>,
}

/// The gRPC routes for `tts`, to merge into a service's HTTP router.
pub fn grpc_router(tts: Arc<dyn TextToSpeech>) -> axum::Router {
    tonic::service::Routes::new(TextToSpeechServer::new(GrpcServer { inner: tts }))
        .into_axum_router()
}

#[tonic::async_trait]
impl TextToSpeechRpc for GrpcServer {
    async fn describe(
        &self,
        _: Request<pb::DescribeRequest>,
    ) -> Result<Response<pb::DescribeResponse>, Status> {
        let voices = self.inner.describe().await?;
        Ok(Response::new(pb::DescribeResponse {
            voices: voices.into_iter().map(Into::into).collect(),
        }))
    }

    type SynthesizeStream = BoxStream<'static, Result<pb::SynthesizeResponse, Status>>;

    async fn synthesize(
        &self,
        request: Request<Streaming<pb::SynthesizeRequest>>,
    ) -> Result<Response<Self::SynthesizeStream>, Status> {
        use pb::synthesize_request::Request as R;
        let mut incoming = request.into_inner();
        let config = match incoming.message().await?.and_then(|m| m.request) {
            Some(R::Config(config)) => SynthesisConfig::try_from(config)?,
            _ => {
                return Err(Status::invalid_argument(
                    "the first message must be the synthesis config",
                ));
            }
        };
        let text = incoming
            .map(|message| match message.map(|m| m.request) {
                Ok(Some(R::Text(text))) => Ok(text),
                Ok(_) => Err(Error::invalid("only text may follow the config")),
                Err(status) => Err(Error::from(status)),
            })
            .boxed();
        let speech = self.inner.synthesize(config, text).await?;
        Ok(Response::new(
            speech.map_ok(Into::into).map_err(Status::from).boxed(),
        ))
    }
}
