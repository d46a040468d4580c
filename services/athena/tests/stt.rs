//! The stt service as Home Assistant and other tools use it: the real
//! `athena` binary with real tiny.en weights, driven by the reference
//! `wyoming` client, the official `openai` client, and Athena's gRPC client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;

use athena_api::stt::{GrpcSpeechToText, RecognitionConfig, RecognitionEvent, SpeechToText};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use wyoming::event::{AudioChunk, AudioStart, AudioStop, Transcribe};
use wyoming::{AudioFormat, ConnectionConfig, Endpoint, Event};

use common::{Service, free_port, run_json};

const JFK: &str = "And so my fellow Americans ask not what your country can do for you, ask what you can do for your country.";

fn jfk_wav() -> PathBuf {
    athena_models::Store::from_env()
        .unwrap()
        .ensure("sample-jfk")
        .unwrap()
        .join("jfk.wav")
}

use athena_stt::engine::wer::word_error_rate as wer;

/// The stt service of the real binary.
struct Stt(Service);

impl std::ops::Deref for Stt {
    type Target = Service;

    fn deref(&self) -> &Service {
        &self.0
    }
}

impl Stt {
    fn start(extra_env: &[(&str, &str)]) -> Self {
        Self(Service::start("stt", extra_env))
    }

    /// Runs the reference client; returns the events it received.
    fn reference_client(&self, args: &[&str]) -> Vec<Value> {
        let (wav, uri) = (jfk_wav(), self.uri());
        let mut all = vec!["--uri", &uri, "--wav", wav.to_str().unwrap()];
        all.extend_from_slice(args);
        let answer = run_json("stt_client.py", &all);
        answer["events"].as_array().unwrap().clone()
    }
}

fn final_text(events: &[Value]) -> String {
    let last = events.last().unwrap();
    assert_eq!(last["type"], "transcript", "{events:?}");
    last["data"]["text"].as_str().unwrap().to_owned()
}

#[test]
fn home_assistant_style_clients_get_transcripts() {
    let stt = Stt::start(&[]);

    // As Home Assistant sends it: 16 kHz mono 16-bit.
    let events = stt.reference_client(&[]);
    let text = final_text(&events);
    assert!(wer(JFK, &text) <= 0.10, "{text}");
    // Words were streamed while the audio arrived, and closed before the final.
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"transcript-start"), "{kinds:?}");
    assert!(kinds.contains(&"transcript-chunk"), "{kinds:?}");
    assert_eq!(kinds[kinds.len() - 2], "transcript-stop", "{kinds:?}");
    // What was streamed came from partial audio; it is the start of the
    // final text, give or take the word that was being spoken.
    let streamed: String = events
        .iter()
        .filter(|e| e["type"] == "transcript-chunk")
        .map(|e| e["data"]["text"].as_str().unwrap())
        .collect();
    let n = streamed.split_whitespace().count();
    let final_start: Vec<&str> = text.split_whitespace().take(n).collect();
    assert!(
        wer(&final_start.join(" "), &streamed) <= 0.25,
        "{streamed} / {text}"
    );

    // Any PCM format is converted: 44.1 kHz stereo, and 22.05 kHz 32-bit.
    for args in [
        &["--rate", "44100", "--channels", "2"][..],
        &["--rate", "22050", "--width", "4"][..],
    ] {
        let text = final_text(&stt.reference_client(args));
        assert!(wer(JFK, &text) <= 0.10, "{args:?}: {text}");
    }

    // A Wyoming `describe` lists the model as installed.
    let info = run_json("describe.py", &["--uri", &stt.uri()]);
    let asr = &info["info"]["asr"][0];
    assert_eq!(asr["models"][0]["name"], "whisper-tiny.en");
    assert_eq!(asr["models"][0]["installed"], true);
    assert_eq!(asr["supports_transcript_streaming"], true);
    let description = asr["models"][0]["description"].as_str().unwrap();
    assert!(description.ends_with(", cpu"), "{description}");
}

/// Sends one request with a raw Rust client; returns the answer.
async fn raw_request(uri: &str, format: AudioFormat, audio: Vec<u8>, name: Option<&str>) -> Event {
    let endpoint: Endpoint = uri.parse().unwrap();
    let mut c = wyoming::connect(&endpoint, &ConnectionConfig::default())
        .await
        .unwrap();
    c.send(Transcribe {
        name: name.map(str::to_owned),
        ..Transcribe::default()
    })
    .await
    .unwrap();
    c.send(AudioStart {
        format,
        timestamp: None,
        extra: Default::default(),
    })
    .await
    .unwrap();
    if !audio.is_empty() {
        c.send(AudioChunk {
            format,
            timestamp: None,
            audio: Bytes::from(audio),
            extra: Default::default(),
        })
        .await
        .unwrap();
    }
    c.send(AudioStop::default()).await.unwrap();
    loop {
        let event = c.next_event().await.unwrap().unwrap();
        if matches!(event, Event::Transcript(_) | Event::Error(_)) {
            return event;
        }
    }
}

fn error_text(event: &Event) -> String {
    match event {
        Event::Error(e) => format!("{}: {}", e.code.as_deref().unwrap_or(""), e.text),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_audio_gets_clear_errors_and_the_service_stays_healthy() {
    let stt = Stt::start(&[("ATHENA__STT__MAX_AUDIO_SECS", "5")]);
    let uri = stt.uri();
    let speech = AudioFormat::SPEECH;
    let cases = [
        (
            AudioFormat {
                rate: 0,
                width: 2,
                channels: 1,
            },
            vec![0; 320],
            None,
            "sample rate 0",
        ),
        (
            AudioFormat {
                rate: 16_000,
                width: 3,
                channels: 1,
            },
            vec![0; 300],
            None,
            "width 3",
        ),
        (
            AudioFormat {
                rate: 16_000,
                width: 2,
                channels: 9,
            },
            vec![0; 288],
            None,
            "channel count 9",
        ),
        (speech, vec![], None, "no audio"),
        (speech, vec![0; 16_000 * 2 * 6], None, "longer than 5 s"),
        (
            speech,
            vec![0; 3200],
            Some("whisper-giant"),
            "unknown model",
        ),
    ];
    for (format, audio, name, expected) in cases {
        let answer = raw_request(&uri, format, audio, name).await;
        let text = error_text(&answer);
        assert!(text.contains(expected), "{expected}: {text}");
    }
    // Silence is no speech: an empty transcript, not words Whisper made up.
    let Event::Transcript(t) = raw_request(&uri, speech, vec![0; 16_000 * 2 * 2], None).await
    else {
        panic!("no transcript for silence")
    };
    assert_eq!(t.text, "");

    // A client that leaves in the middle of a request.
    {
        let endpoint: Endpoint = uri.parse().unwrap();
        let mut c = wyoming::connect(&endpoint, &ConnectionConfig::default())
            .await
            .unwrap();
        c.send(AudioChunk {
            format: speech,
            timestamp: None,
            audio: Bytes::from(vec![0u8; 32_000]),
            extra: Default::default(),
        })
        .await
        .unwrap();
    }
    // Still healthy: real speech is transcribed.
    let wav = hound::WavReader::open(jfk_wav()).unwrap();
    let pcm: Vec<u8> = wav
        .into_samples::<i16>()
        .take(16_000 * 4)
        .flat_map(|s| s.unwrap().to_le_bytes())
        .collect();
    let Event::Transcript(t) = raw_request(&uri, speech, pcm, Some("whisper-tiny.en")).await else {
        panic!("no transcript")
    };
    assert!(
        t.text.to_lowercase().starts_with("and so my fellow"),
        "{}",
        t.text
    );
}

#[tokio::test]
async fn grpc_and_openai_clients() {
    // Asking for the GPU in a CPU-only build: it says so, and runs on the CPU.
    let stt = Stt::start(&[("ATHENA__STT__GPU", "true")]);
    let readyz = Command::new("curl")
        .args(["-s", &format!("http://127.0.0.1:{}/readyz", stt.http)])
        .output()
        .unwrap();
    let readyz = String::from_utf8_lossy(&readyz.stdout);
    assert!(
        readyz.contains("cpu (this build has no GPU back-end)"),
        "{readyz}"
    );

    // The official openai client against /v1/audio/transcriptions.
    let base_url = format!("http://127.0.0.1:{}/v1", stt.http);
    let wav = jfk_wav();
    let openai = |model: &str| -> Value {
        let args = [
            "--base-url",
            &base_url,
            "--wav",
            wav.to_str().unwrap(),
            "--model",
            model,
        ];
        run_json("openai_transcribe.py", &args)
    };
    let answer = openai("whisper-1");
    assert!(
        wer(JFK, answer["text"].as_str().unwrap()) <= 0.10,
        "{answer}"
    );
    let answer = openai("whisper-giant");
    assert_eq!(answer["status"], 404, "{answer}");

    // Athena's gRPC client streams partials, then the final transcript.
    let client = GrpcSpeechToText::connect_lazy(&format!("http://127.0.0.1:{}", stt.http)).unwrap();
    assert_eq!(client.describe().await.unwrap()[0].name, "whisper-tiny.en");
    let wav = hound::WavReader::open(jfk_wav()).unwrap();
    let samples: Vec<i16> = wav.into_samples::<i16>().map(Result::unwrap).collect();
    let chunks: Vec<Result<Bytes, athena_api::Error>> = samples
        .chunks(1280)
        .map(|c| {
            Ok(Bytes::from(
                c.iter().flat_map(|s| s.to_le_bytes()).collect::<Vec<u8>>(),
            ))
        })
        .collect();
    let config = RecognitionConfig {
        model: None,
        language: None,
        format: athena_audio::AudioFormat::SPEECH,
        partial_results: true,
        hints: Vec::new(),
    };
    let events: Vec<_> = client
        .recognize(config, futures::stream::iter(chunks).boxed())
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, RecognitionEvent::Partial(_))),
        "{events:?}"
    );
    let Some(RecognitionEvent::Final(t)) = events.last() else {
        panic!("{events:?}")
    };
    assert!(wer(JFK, &t.text) <= 0.10, "{}", t.text);
    assert!((t.audio_seconds - 11.0).abs() < 0.1);
}

/// The model's description in a Wyoming `describe`.
fn described_model(stt: &Stt) -> String {
    let info = run_json("describe.py", &["--uri", &stt.uri()]);
    info["info"]["asr"][0]["models"][0]["description"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn both_engines_load_every_model_format() {
    let store = athena_models::Store::from_env().unwrap();
    let ct2 = store.ensure("whisper-tiny.en").unwrap();
    // What a user brings: a ggml file and a Hugging Face directory (made
    // here from the same weights by the converters `athena` ships).
    let dir = tempfile::tempdir().unwrap();
    let ggml = dir.path().join("ggml-tiny.en.bin");
    let hf = dir.path().join("whisper-tiny.en");
    athena_stt::model::convert_ct2_to_ggml(&ct2, &ggml).unwrap();
    athena_stt::model::convert_ct2_to_hf(&ct2, &hf).unwrap();
    let (ct2, ggml, hf) = (
        ct2.to_str().unwrap(),
        ggml.to_str().unwrap(),
        hf.to_str().unwrap(),
    );

    for (engine, model) in [
        ("candle", "whisper-tiny.en"),
        ("candle", hf),
        ("candle", ct2),
        ("whisper.cpp", ggml),
        ("whisper.cpp", ct2),
    ] {
        let stt = Stt::start(&[
            ("ATHENA__STT__ENGINE", engine),
            ("ATHENA__STT__MODEL", model),
        ]);
        let text = final_text(&stt.reference_client(&[]));
        assert!(wer(JFK, &text) <= 0.10, "{engine} {model}: {text}");
        let description = described_model(&stt);
        assert!(description.contains(engine), "{description}");
        eprintln!("{engine} with {model}: {text:?} ({description})");
    }

    // A format the engine cannot load, or no model at all, stops the
    // service at start with the reason (exit 78: configuration error).
    for (engine, model, reason) in [
        ("candle", ggml, "cannot load a ggml file"),
        ("whisper.cpp", hf, "cannot load a Hugging Face"),
        ("whisper.cpp", "/nonexistent/model", "does not exist"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_athena"))
            .args(["serve", "stt"])
            .env("ATHENA__STT__ENGINE", engine)
            .env("ATHENA__STT__MODEL", model)
            .env("ATHENA__STT__HTTP", format!("127.0.0.1:{}", free_port()))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{engine} {model}: {stderr}");
        assert!(stderr.contains(reason), "{engine} {model}: {stderr}");
    }
}
