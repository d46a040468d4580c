//! The gRPC side of the service interfaces over a real socket, on the same
//! port as the ops endpoints: what a caller sends is what the implementation
//! receives, results and errors come back as they were produced.
//!
//! The implementations here are small test doubles that report what they
//! received; the real engines are tested in their own services.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use athena_api::stt::{
    AudioStream, GrpcSpeechToText, RecognitionConfig, RecognitionEvent, RecognitionStream,
    SpeechToText, SttModel, Transcript,
};
use athena_api::tts::{
    GrpcTextToSpeech, SpeechSegment, SpeechStream, SynthesisConfig, TextStream, TextToSpeech, Voice,
};
use athena_api::{Error, ErrorKind};
use athena_audio::AudioFormat;
use athena_proto::stt::v1 as pb;
use bytes::Bytes;
use futures::{StreamExt, stream};
use tokio_util::sync::CancellationToken;

/// Reports how much audio it received, in what format.
struct CountingStt;

#[async_trait::async_trait]
impl SpeechToText for CountingStt {
    async fn describe(&self) -> Result<Vec<SttModel>, Error> {
        Ok(vec![SttModel {
            name: "counting".into(),
            languages: vec!["en".into()],
            installed: true,
            ..SttModel::default()
        }])
    }

    async fn recognize(
        &self,
        config: RecognitionConfig,
        audio: AudioStream,
    ) -> Result<RecognitionStream, Error> {
        if config.model.as_deref() == Some("missing") {
            return Err(Error::not_found("no model named missing"));
        }
        let format = config.format;
        let partials = config.partial_results;
        let events = audio
            .scan(0usize, move |total, chunk| {
                let event = chunk.map(|bytes| {
                    *total += bytes.len();
                    RecognitionEvent::Partial(format!("{total} bytes"))
                });
                futures::future::ready(Some((event, *total)))
            })
            .collect::<Vec<_>>()
            .await;
        let total = events.last().map_or(0, |(_, t)| *t);
        let mut out: Vec<Result<RecognitionEvent, Error>> = Vec::new();
        for (event, _) in events {
            match event {
                Err(e) => {
                    out.push(Err(e));
                    return Ok(stream::iter(out).boxed());
                }
                Ok(partial) if partials => out.push(Ok(partial)),
                Ok(_) => {}
            }
        }
        out.push(Ok(RecognitionEvent::Final(Transcript {
            text: format!("{total} bytes of {format}"),
            language: config.language,
            audio_seconds: format.seconds(total) as f32,
        })));
        Ok(stream::iter(out).boxed())
    }
}

/// Speaks each text piece as one "sentence" of silence, one sample per byte.
struct SilentTts;

#[async_trait::async_trait]
impl TextToSpeech for SilentTts {
    async fn describe(&self) -> Result<Vec<Voice>, Error> {
        Ok(vec![Voice {
            name: "silent".into(),
            sample_rate: 22_050,
            ..Voice::default()
        }])
    }

    async fn synthesize(
        &self,
        config: SynthesisConfig,
        text: TextStream,
    ) -> Result<SpeechStream, Error> {
        if config.voice.as_deref().is_some_and(|v| v != "silent") {
            return Err(Error::not_found("unknown voice"));
        }
        let rate = config.sample_rate.unwrap_or(22_050);
        let format = AudioFormat::new(rate, 2, 1)?;
        Ok(text
            .enumerate()
            .map(move |(i, piece)| {
                piece.map(|text| SpeechSegment {
                    sentence: i as u32,
                    audio: Bytes::from(vec![0u8; text.len() * 2]),
                    text,
                    format,
                })
            })
            .boxed())
    }
}

async fn serve(router: axum::Router) -> (String, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let readiness = athena_runtime::Readiness::default();
    tokio::spawn(athena_runtime::http::serve_on(
        listener,
        "test",
        router,
        readiness,
        shutdown.clone(),
    ));
    (format!("http://{addr}"), shutdown)
}

fn chunks(sizes: &[usize]) -> AudioStream {
    let chunks: Vec<Result<Bytes, Error>> = sizes
        .iter()
        .map(|&n| Ok(Bytes::from(vec![0u8; n])))
        .collect();
    stream::iter(chunks).boxed()
}

fn speech_config(partial_results: bool) -> RecognitionConfig {
    RecognitionConfig {
        model: None,
        language: Some("en".into()),
        format: AudioFormat::SPEECH,
        partial_results,
        hints: vec!["kitchen".into()],
    }
}

#[tokio::test]
async fn recognition_streams_partials_then_the_final_transcript() {
    let (uri, _stop) = serve(athena_api::stt::grpc_router(Arc::new(CountingStt))).await;
    let stt = GrpcSpeechToText::connect_lazy(&uri).unwrap();

    let models = stt.describe().await.unwrap();
    assert_eq!(models[0].name, "counting");

    let events: Vec<_> = stt
        .recognize(speech_config(true), chunks(&[3200, 3200, 1600]))
        .await
        .unwrap()
        .collect()
        .await;
    let events: Vec<_> = events.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        events,
        vec![
            RecognitionEvent::Partial("3200 bytes".into()),
            RecognitionEvent::Partial("6400 bytes".into()),
            RecognitionEvent::Partial("8000 bytes".into()),
            RecognitionEvent::Final(Transcript {
                text: "8000 bytes of 16000 Hz, 16-bit, 1 channel(s)".into(),
                language: Some("en".into()),
                audio_seconds: 0.25,
            }),
        ]
    );
}

#[tokio::test]
async fn errors_keep_their_kind_across_the_network() {
    let (uri, _stop) = serve(athena_api::stt::grpc_router(Arc::new(CountingStt))).await;
    let stt = GrpcSpeechToText::connect_lazy(&uri).unwrap();

    let config = RecognitionConfig {
        model: Some("missing".into()),
        ..speech_config(false)
    };
    let err = stt.recognize(config, chunks(&[10])).await.err().unwrap();
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert_eq!(err.message, "no model named missing");

    // The caller's audio fails midway: the caller gets that error, not a
    // transcript of half an utterance.
    let audio = stream::iter(vec![
        Ok(Bytes::from_static(&[0, 0])),
        Err(Error::invalid("the satellite sent 24-bit audio")),
    ])
    .boxed();
    let events: Vec<_> = stt
        .recognize(speech_config(false), audio)
        .await
        .unwrap()
        .collect()
        .await;
    let last = events.last().unwrap().as_ref().unwrap_err();
    assert_eq!(last.kind, ErrorKind::InvalidArgument);
    assert_eq!(last.message, "the satellite sent 24-bit audio");
}

#[tokio::test]
async fn the_server_validates_what_arrives() {
    let (uri, _stop) = serve(athena_api::stt::grpc_router(Arc::new(CountingStt))).await;
    let mut raw = pb::speech_to_text_client::SpeechToTextClient::connect(uri)
        .await
        .unwrap();
    use pb::recognize_request::Request as R;

    let bad_format = pb::RecognizeRequest {
        request: Some(R::Config(pb::RecognitionConfig {
            format: Some(athena_proto::audio::v1::AudioFormat {
                rate: 0,
                width: 3,
                channels: 1,
            }),
            ..Default::default()
        })),
    };
    let status = raw.recognize(stream::iter([bad_format])).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("sample rate 0"), "{status:?}");

    let audio_first = pb::RecognizeRequest {
        request: Some(R::Audio(Bytes::from_static(&[1, 2]))),
    };
    let status = raw
        .recognize(stream::iter([audio_first]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("first message"), "{status:?}");
}

#[tokio::test]
async fn a_backend_that_is_down_is_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let stt = GrpcSpeechToText::connect_lazy(&format!("http://127.0.0.1:{port}")).unwrap();
    let err = stt.describe().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
}

#[tokio::test]
async fn synthesis_streams_one_segment_per_piece_in_order() {
    let (uri, _stop) = serve(athena_api::tts::grpc_router(Arc::new(SilentTts))).await;
    let tts = GrpcTextToSpeech::connect_lazy(&uri).unwrap();
    assert_eq!(tts.describe().await.unwrap()[0].sample_rate, 22_050);

    let text = stream::iter(vec![
        Ok("Hello there.".to_owned()),
        Ok("How are you?".to_owned()),
    ])
    .boxed();
    let config = SynthesisConfig {
        sample_rate: Some(16_000),
        ..SynthesisConfig::default()
    };
    let segments: Vec<_> = tts.synthesize(config, text).await.unwrap().collect().await;
    let segments: Vec<_> = segments.into_iter().map(Result::unwrap).collect();
    assert_eq!(segments.len(), 2);
    assert_eq!(segments[1].sentence, 1);
    assert_eq!(segments[1].text, "How are you?");
    assert_eq!(segments[1].format.rate(), 16_000);
    assert_eq!(segments[1].audio.len(), 24);

    let config = SynthesisConfig {
        voice: Some("nobody".into()),
        ..SynthesisConfig::default()
    };
    let err = tts
        .synthesize(config, stream::empty().boxed())
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn grpc_and_ops_share_one_port() {
    let (uri, _stop) = serve(athena_api::stt::grpc_router(Arc::new(CountingStt))).await;
    let addr = uri.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

/// A caller holds an `Arc<dyn SpeechToText>` and cannot tell whether it is the
/// implementation itself (one process) or the gRPC client (apart): both give
/// the same results for the same calls.
#[tokio::test]
async fn in_process_and_over_the_network_look_the_same() {
    let engine: Arc<dyn SpeechToText> = Arc::new(CountingStt);
    let (uri, _stop) = serve(athena_api::stt::grpc_router(engine.clone())).await;
    let remote: Arc<dyn SpeechToText> = Arc::new(GrpcSpeechToText::connect_lazy(&uri).unwrap());

    let mut results = Vec::new();
    for stt in [engine, remote] {
        let models = stt.describe().await.unwrap();
        let events: Vec<_> = stt
            .recognize(speech_config(true), chunks(&[640, 1280]))
            .await
            .unwrap()
            .map(Result::unwrap)
            .collect()
            .await;
        let missing = RecognitionConfig {
            model: Some("missing".into()),
            ..speech_config(false)
        };
        let error = stt.recognize(missing, chunks(&[1])).await.err().unwrap();
        results.push((models, events, error));
    }
    assert_eq!(results[0], results[1]);
}
