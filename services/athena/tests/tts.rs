//! The tts service as Home Assistant and other tools use it: the real
//! `athena` binary with the real Piper voice `en_US-joe-medium` and ONNX
//! Runtime, driven by the reference `wyoming` client, the official `openai`
//! client and Athena's gRPC client. What it says is transcribed back by
//! Athena's speech to text (whisper.cpp, tiny.en).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::OnceLock;

use athena_api::tts::{GrpcTextToSpeech, SynthesisConfig, TextToSpeech};
use athena_stt::engine::wer::word_error_rate as wer;
use athena_stt::engine::{TranscribeOptions, Transcriber, WhisperCpp, WhisperCppConfig};
use futures::StreamExt;
use serde_json::Value;

use common::{Service, run_json};

const THREE: [&str; 3] = [
    "The front door is locked.",
    "It is 21 degrees in the living room.",
    "Would you like me to turn on the heating?",
];

fn transcriber() -> &'static WhisperCpp {
    static STT: OnceLock<WhisperCpp> = OnceLock::new();
    STT.get_or_init(|| {
        let store = athena_models::Store::from_env().unwrap();
        let ct2 = store.ensure("whisper-tiny.en").unwrap();
        let ggml = store
            .root()
            .join(".derived")
            .join("whisper-tiny.en.q8_0.ggml.bin");
        WhisperCpp::from_ct2_dir(&ct2, &ggml, WhisperCppConfig::default()).unwrap()
    })
}

/// What Athena's stt hears in 16-bit mono PCM at `rate`.
fn hear(pcm: &[u8], rate: u32) -> String {
    let samples: Vec<f32> = pcm
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect();
    let pad = vec![0.0; rate as usize / 4];
    let padded: Vec<f32> = pad.iter().chain(&samples).chain(&pad).copied().collect();
    let audio = athena_audio::resample(&padded, rate, 16_000);
    let options = TranscribeOptions {
        reduced_context: true,
        ..Default::default()
    };
    transcriber().transcribe(&audio, &options).unwrap().text
}

/// The rate and PCM of a WAV file whose header may give unknown lengths
/// (a streamed WAV).
fn read_wav(path: &Path) -> (u32, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..4], b"RIFF");
    assert_eq!(&bytes[8..16], b"WAVEfmt ");
    let rate = u32::from_le_bytes(bytes[24..28].try_into().unwrap());
    assert_eq!(u16::from_le_bytes([bytes[34], bytes[35]]), 16, "16-bit");
    assert_eq!(&bytes[36..40], b"data");
    (rate, bytes[44..].to_vec())
}

/// The rate and 16-bit PCM of a WAV file the reference client wrote.
fn read_client_wav(path: &Path) -> (u32, Vec<u8>) {
    let wav = hound::WavReader::open(path).unwrap();
    let rate = wav.spec().sample_rate;
    let pcm = wav
        .into_samples::<i16>()
        .flat_map(|s| s.unwrap().to_le_bytes())
        .collect();
    (rate, pcm)
}

fn types(log: &[Value]) -> Vec<String> {
    log.iter()
        .map(|e| match (&e["sent"], &e["received"]) {
            (Value::String(s), _) => format!(">{s}"),
            (_, Value::String(r)) => r.clone(),
            _ => panic!("{e}"),
        })
        .collect()
}

/// Runs the reference Wyoming client; returns its log.
fn wyoming_client(tts: &Service, args: &[&str]) -> Vec<Value> {
    let uri = tts.uri();
    let mut all = vec!["--uri", uri.as_str()];
    all.extend_from_slice(args);
    run_json("tts_client.py", &all)["log"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn home_assistant_style_clients_hear_what_was_asked() {
    let tts = Service::start("tts", &[]);
    let dir = tempfile::tempdir().unwrap();

    // `describe`: the voice, its language, streaming support.
    let info = run_json("describe.py", &["--uri", &tts.uri()]);
    let program = &info["info"]["tts"][0];
    assert_eq!(program["name"], "athena-tts");
    assert_eq!(program["installed"], true);
    assert_eq!(program["supports_synthesize_streaming"], true);
    let voice = &program["voices"][0];
    assert_eq!(voice["name"], "en_US-joe-medium");
    assert_eq!(voice["languages"], serde_json::json!(["en_US"]));
    assert_eq!(voice["installed"], true);

    // `synthesize`: one audio-start, the chunks, one audio-stop.
    let out = dir.path().join("plain.wav");
    let text = THREE.join(" ");
    let log = wyoming_client(
        &tts,
        &[
            "--text",
            &text,
            "--voice",
            "en_US-joe-medium",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let kinds = types(&log);
    assert_eq!(kinds[0], ">synthesize");
    assert_eq!(kinds[1], "audio-start", "{kinds:?}");
    assert_eq!(kinds.last().unwrap(), "audio-stop", "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| *k == "audio-start").count(), 1);
    assert!(log[1]["rate"] == 22_050, "{}", log[1]);
    let (rate, pcm) = read_client_wav(&out);
    let seconds = pcm.len() as f32 / 2.0 / rate as f32;
    assert!((4.0..12.0).contains(&seconds), "{seconds} s");
    let heard = hear(&pcm, rate);
    let error = wer(&text, &heard);
    eprintln!("said {text:?}\nheard {heard:?}\nWER {:.1}%", error * 100.0);
    assert!(error <= 0.15, "WER {error}: {heard}");

    // Streaming, as Home Assistant streams an LLM's answer: the first
    // sentence's audio arrives before the rest of the text is even sent.
    let out = dir.path().join("stream.wav");
    let log = wyoming_client(
        &tts,
        &[
            "--stream",
            "--wait-first-audio",
            "--chunk",
            "The front door is locked. It is ",
            "--chunk",
            "21 degrees in the living ",
            "--chunk",
            "room. Would you like me to turn on the heating?",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let kinds = types(&log);
    let first_audio = kinds.iter().position(|k| k == "audio-start").unwrap();
    let chunks_sent: Vec<usize> = kinds
        .iter()
        .enumerate()
        .filter(|(_, k)| *k == ">synthesize-chunk")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(chunks_sent.len(), 3);
    assert!(
        first_audio < chunks_sent[1],
        "first audio before the second piece of text: {kinds:?}"
    );
    // One audio-start/stop per sentence, then synthesize-stopped.
    assert_eq!(
        kinds.iter().filter(|k| *k == "audio-start").count(),
        3,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "audio-stop").count(),
        3,
        "{kinds:?}"
    );
    assert_eq!(kinds.last().unwrap(), "synthesize-stopped");
    assert!(!kinds.contains(&"error".to_owned()), "{kinds:?}");
    let (rate, pcm) = read_client_wav(&out);
    let heard = hear(&pcm, rate);
    assert!(wer(&text, &heard) <= 0.15, "{heard}");

    // A voice asked for by language.
    let log = wyoming_client(&tts, &["--text", "Hello.", "--language", "en_US"]);
    assert_eq!(types(&log).last().unwrap(), "audio-stop");
}

#[test]
fn bad_requests_get_clear_errors_and_the_service_stays_healthy() {
    let tts = Service::start("tts", &[]);
    let error_of = |args: &[&str]| {
        let log = wyoming_client(&tts, args);
        let last = log.last().unwrap().clone();
        assert_eq!(last["received"], "error", "{log:?}");
        (
            last["code"].as_str().unwrap().to_owned(),
            last["text"].as_str().unwrap().to_owned(),
        )
    };
    let (code, text) = error_of(&["--text", ""]);
    assert_eq!(code, "invalid-argument");
    assert!(text.contains("empty"), "{text}");
    let (_, text) = error_of(&["--text", "?! ... --"]);
    assert!(text.contains("nothing to say"), "{text}");
    let (code, text) = error_of(&["--text", "Hi.", "--voice", "de_DE-nobody"]);
    assert_eq!(code, "not-found");
    assert!(
        text.contains("de_DE-nobody") && text.contains("en_US-joe-medium"),
        "{text}"
    );
    // The reference client sends a speaker only with a voice name.
    let (code, text) = error_of(&[
        "--text",
        "Hi.",
        "--voice",
        "en_US-joe-medium",
        "--speaker",
        "7",
    ]);
    assert_eq!(code, "not-found");
    assert!(text.contains("speaker 7"), "{text}");
    let (code, text) = error_of(&["--text", "Hi.", "--language", "fr_FR"]);
    assert_eq!(code, "not-found");
    assert!(text.contains("fr_FR"), "{text}");

    // A stream refused at its start still ends with synthesize-stopped.
    let log = wyoming_client(&tts, &["--stream", "--text", "Hi.", "--voice", "nobody"]);
    let kinds = types(&log);
    assert!(kinds.contains(&"error".to_owned()), "{kinds:?}");
    assert_eq!(kinds.last().unwrap(), "synthesize-stopped");

    // Over HTTP, with the official client: format, voice, speed, size.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let speech = |args: &[&str]| {
        let base = format!("{}/v1", tts.base_url());
        let mut all = vec!["--base-url", base.as_str(), "--out", out.to_str().unwrap()];
        all.extend_from_slice(args);
        run_json("openai_speech.py", &all)
    };
    let r = speech(&["--input", "Hi.", "--format", "mp3"]);
    assert_eq!(r["status"], 400, "{r}");
    assert_eq!(r["error"]["code"], "unsupported_response_format");
    let r = speech(&["--input", "Hi.", "--voice", "nobody"]);
    assert_eq!(r["status"], 404, "{r}");
    let r = speech(&["--input", "Hi.", "--model", "gpt-9"]);
    assert_eq!(r["status"], 404, "{r}");
    assert_eq!(r["error"]["code"], "model_not_found");
    let r = speech(&["--input", "Hi.", "--speed", "9"]);
    assert_eq!(r["status"], 400, "{r}");
    let r = speech(&["--input", "   "]);
    assert_eq!(r["status"], 400, "{r}");
    assert!(
        r["error"]["message"].as_str().unwrap().contains("empty"),
        "{r}"
    );
    let r = speech(&["--input", "!!!"]);
    assert_eq!(r["status"], 400, "{r}");
    let big = dir.path().join("big.txt");
    std::fs::write(&big, "All work and no play. ".repeat(50_000)).unwrap();
    let r = speech(&["--input", big.to_str().unwrap(), "--input-file"]);
    assert_eq!(r["status"], 413, "1 MB of text: {r}");

    // Still healthy: a real request works.
    let r = speech(&["--input", "Still here."]);
    assert_eq!(r["status"], 200, "{r}");
    let log = wyoming_client(&tts, &["--text", "Still here."]);
    assert_eq!(types(&log).last().unwrap(), "audio-stop");
}

#[test]
fn openai_and_grpc_clients() {
    let tts = Service::start("tts", &[]);
    let dir = tempfile::tempdir().unwrap();
    let base = format!("{}/v1", tts.base_url());
    let text = THREE.join(" ");

    // WAV (streamed, lengths unknown) at the voice's rate.
    let wav = dir.path().join("speech.wav");
    let r = run_json(
        "openai_speech.py",
        &[
            "--base-url",
            &base,
            "--input",
            &text,
            "--out",
            wav.to_str().unwrap(),
        ],
    );
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["content_type"], "audio/wav");
    let (rate, pcm) = read_wav(&wav);
    assert_eq!(rate, 22_050);
    let heard = hear(&pcm, rate);
    assert!(wer(&text, &heard) <= 0.15, "{heard}");

    // PCM at OpenAI's 24 kHz, and faster speech is shorter.
    let pcm_file = dir.path().join("speech.pcm");
    let pcm_at = |speed: &str| {
        let r = run_json(
            "openai_speech.py",
            &[
                "--base-url",
                &base,
                "--input",
                &text,
                "--format",
                "pcm",
                "--speed",
                speed,
                "--out",
                pcm_file.to_str().unwrap(),
            ],
        );
        assert_eq!(r["status"], 200, "{r}");
        std::fs::read(&pcm_file).unwrap()
    };
    let normal = pcm_at("1.0");
    let heard = hear(&normal, 24_000);
    assert!(wer(&text, &heard) <= 0.15, "{heard}");
    let fast = pcm_at("1.5");
    assert!(
        (fast.len() as f32) < normal.len() as f32 * 0.85,
        "{} vs {}",
        fast.len(),
        normal.len()
    );

    // gRPC, text arriving in pieces as an LLM writes it: the first sentence
    // is heard before the rest of the text exists.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = GrpcTextToSpeech::connect_lazy(&tts.base_url()).unwrap();
        let voices = client.describe().await.unwrap();
        assert_eq!(voices[0].name, "en_US-joe-medium");
        assert_eq!(voices[0].sample_rate, 22_050);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let text = tokio_stream::wrappers::UnboundedReceiverStream::new(rx).boxed();
        let mut speech = client
            .synthesize(SynthesisConfig::default(), text)
            .await
            .unwrap();
        tx.send(Ok(format!("{} It", THREE[0]))).unwrap();
        let first = speech.next().await.unwrap().unwrap();
        assert_eq!(first.sentence, 0);
        assert_eq!(first.text, THREE[0]);
        assert_eq!(first.format.rate(), 22_050);
        assert!(!first.audio.is_empty());
        tx.send(Ok(format!(" {} {}", &THREE[1][3..], THREE[2])))
            .unwrap();
        drop(tx);
        let mut pcm = first.audio.to_vec();
        let mut sentences = vec![first.sentence];
        while let Some(segment) = speech.next().await {
            let segment = segment.unwrap();
            sentences.push(segment.sentence);
            pcm.extend_from_slice(&segment.audio);
        }
        sentences.dedup();
        assert_eq!(sentences, [0, 1, 2]);
        let heard = hear(&pcm, 22_050);
        assert!(wer(&THREE.join(" "), &heard) <= 0.15, "{heard}");

        // Errors keep their kind across gRPC.
        let bad = SynthesisConfig {
            voice: Some("nobody".into()),
            ..SynthesisConfig::default()
        };
        let text = futures::stream::iter([Ok("Hi.".to_owned())]).boxed();
        let err = match client.synthesize(bad, text).await {
            Err(e) => e,
            Ok(mut s) => s.next().await.unwrap().unwrap_err(),
        };
        assert_eq!(err.kind, athena_api::ErrorKind::NotFound, "{err}");
    });
}

#[test]
fn wyoming_clients_choose_a_speaker_of_a_multi_speaker_voice() {
    // No multi-speaker Piper voice is packaged here: joe made into one
    // (`plain` is joe; `slow_quiet` speaks at 1.5 × the length and half the
    // amplitude), next to joe himself, loaded by path.
    let dir = tempfile::tempdir().unwrap();
    let joe = athena_models::Store::from_env()
        .unwrap()
        .ensure("en_US-joe-medium")
        .unwrap()
        .join("en_US-joe-medium.onnx");
    let built = std::process::Command::new(common::python())
        .arg(common::repo_root().join("tests/models/two_speaker_voice.py"))
        .args(["--name", "en_US-joe2-medium", "--voice"])
        .arg(&joe)
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(built.status.success(), "{built:?}");
    let two = dir.path().join("en_US-joe2-medium.onnx");
    let voices = format!(r#"["en_US-joe-medium", "{}"]"#, two.display());
    // Without noise, durations are the model's own: lengths compare exactly.
    let tts = Service::start(
        "tts",
        &[
            ("ATHENA__TTS__VOICES", &voices),
            ("ATHENA__TTS__NOISE_SCALE", "0"),
            ("ATHENA__TTS__NOISE_W", "0"),
        ],
    );

    // `describe` lists both voices, and the speakers of the second.
    let info = run_json("describe.py", &["--uri", &tts.uri()]);
    let listed = &info["info"]["tts"][0]["voices"];
    assert_eq!(listed[0]["name"], "en_US-joe-medium");
    assert!(listed[0]["speakers"].is_null(), "{listed}");
    assert_eq!(listed[1]["name"], "en_US-joe2-medium");
    let speakers: Vec<&str> = listed[1]["speakers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(speakers, ["plain", "slow_quiet"]);

    let text = THREE[2];
    let speak = |speaker: &str| {
        let out = dir.path().join(format!("{speaker}.wav"));
        let log = wyoming_client(
            &tts,
            &[
                "--text",
                text,
                "--voice",
                "en_US-joe2-medium",
                "--speaker",
                speaker,
                "--out",
                out.to_str().unwrap(),
            ],
        );
        assert_eq!(types(&log).last().unwrap(), "audio-stop", "{log:?}");
        let (rate, pcm) = read_client_wav(&out);
        assert_eq!(rate, 22_050);
        let peak = pcm
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]).unsigned_abs())
            .max()
            .unwrap();
        (pcm, peak)
    };
    // Phoneme durations are rounded up to whole frames, so 1.5 × the length
    // scale makes a sentence 1.2–1.6 × as long.
    let (plain, plain_peak) = speak("plain");
    let (slow, slow_peak) = speak("slow_quiet");
    let ratio = slow.len() as f32 / plain.len() as f32;
    assert!(ratio > 1.2 && ratio < 1.7, "length ratio {ratio}");
    let loudness = f32::from(slow_peak) / f32::from(plain_peak);
    assert!(loudness > 0.3 && loudness < 0.7, "peak ratio {loudness}");
    for pcm in [&plain, &slow] {
        let heard = hear(pcm, 22_050);
        assert!(wer(text, &heard) <= 0.15, "{heard}");
    }
    // A speaker the voice does not have is an error, not joe.
    let log = wyoming_client(
        &tts,
        &[
            "--text",
            text,
            "--voice",
            "en_US-joe2-medium",
            "--speaker",
            "loud",
        ],
    );
    assert_eq!(types(&log).last().unwrap(), "error", "{log:?}");
}

#[test]
fn a_wrong_espeak_data_folder_stops_the_service_at_start() {
    let empty = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_athena"))
        .args(["serve", "tts"])
        .env(
            "ATHENA__TTS__HTTP",
            format!("127.0.0.1:{}", common::free_port()),
        )
        .env(
            "ATHENA__TTS__WYOMING__URI",
            format!("tcp://127.0.0.1:{}", common::free_port()),
        )
        .env("PIPER_ESPEAKNG_DATA_DIRECTORY", empty.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("PIPER_ESPEAKNG_DATA_DIRECTORY")
            && stderr.contains("has no phontab")
            && stderr.contains(&empty.path().display().to_string()),
        "{stderr}"
    );
}
