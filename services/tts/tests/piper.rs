//! The Piper engine on a real voice (`en_US-joe-medium` from the catalog)
//! and the real ONNX Runtime library (catalog `onnxruntime`): what it says
//! is transcribed back by Athena's own speech to text (whisper.cpp,
//! tiny.en) and compared with what it was asked to say.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use athena_stt::engine::wer::word_error_rate;
use athena_stt::engine::{TranscribeOptions, Transcriber, WhisperCpp, WhisperCppConfig};
use athena_tts::engine::{Device, PiperVoice, Scales, SpeakOptions, VoiceError, to_pcm16};

fn model_dir(name: &str) -> PathBuf {
    athena_models::Store::from_env()
        .unwrap()
        .ensure(name)
        .unwrap_or_else(|e| panic!("cannot get {name}: {e}"))
}

fn joe() -> PiperVoice {
    athena_onnx::init(&athena_onnx::locate(None).unwrap(), 2).unwrap();
    let dir = model_dir("en_US-joe-medium");
    PiperVoice::load(
        "en_US-joe-medium",
        &dir.join("en_US-joe-medium.onnx"),
        &cpu(),
    )
    .unwrap()
}

fn cpu() -> Device {
    Device { gpu: false }
}

fn transcriber() -> WhisperCpp {
    let store = athena_models::Store::from_env().unwrap();
    let ct2 = store.ensure("whisper-tiny.en").unwrap();
    let ggml = store
        .root()
        .join(".derived")
        .join("whisper-tiny.en.q8_0.ggml.bin");
    WhisperCpp::from_ct2_dir(&ct2, &ggml, WhisperCppConfig::default()).unwrap()
}

#[test]
fn what_it_says_is_heard_back() {
    let voice = joe();
    assert_eq!(voice.config().audio.sample_rate, 22_050);
    assert_eq!(voice.config().espeak.voice, "en-us");
    let stt = transcriber();
    let defaults = voice.config().inference;
    let sentences = [
        "Turn on the kitchen lights.",
        "The temperature outside is 21 degrees.",
        "Would you like me to open the garage door?",
        "Your next meeting has 12 people in it.",
    ];
    let mut said = Vec::new();
    let mut heard = Vec::new();
    for sentence in sentences {
        let samples = voice.speak(sentence, defaults, 0).unwrap();
        let seconds = samples.len() as f32 / 22_050.0;
        assert!(seconds > 0.8 && seconds < 6.0, "{sentence}: {seconds} s");
        // The voice's gain brings speech near full scale.
        let pcm = to_pcm16(&samples, voice.gain());
        let peak = pcm.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!(peak > 16_000, "{sentence}: peak {peak}");
        // Played back as a speaker would: with a moment of silence around.
        let pad = vec![0.0; 22_050 / 4];
        let padded: Vec<f32> = pad.iter().chain(&samples).chain(&pad).copied().collect();
        let mono16k = athena_audio::resample(&padded, 22_050, 16_000);
        let text = stt
            .transcribe(
                &mono16k,
                &TranscribeOptions {
                    reduced_context: true,
                    ..Default::default()
                },
            )
            .unwrap()
            .text;
        eprintln!("said {sentence:?}, heard {text:?} ({seconds:.2} s)");
        said.push(sentence.to_owned());
        heard.push(text);
    }
    let wer = word_error_rate(&said.join(" "), &heard.join(" "));
    eprintln!(
        "WER over {} sentences: {:.1}%",
        sentences.len(),
        wer * 100.0
    );
    assert!(wer <= 0.15, "WER {wer}");

    // A slower speaking rate makes longer audio. Durations are drawn with
    // noise_w, so compare without noise: the same sentence at 1.5 × the
    // length scale.
    let still = Scales {
        noise_scale: 0.0,
        noise_w: 0.0,
        ..defaults
    };
    let normal = voice.speak(sentences[0], still, 0).unwrap().len();
    let slow = voice
        .speak(
            sentences[0],
            Scales {
                length_scale: 1.5 * still.length_scale,
                ..still
            },
            0,
        )
        .unwrap()
        .len();
    assert!(slow as f32 > normal as f32 * 1.3, "{slow} vs {normal}");

    // Nothing to say is no audio, not an error.
    assert!(voice.speak("?!", defaults, 0).unwrap().is_empty());
    // A single-speaker voice has speaker 0 only.
    assert_eq!(voice.speaker_id(None).unwrap(), 0);
    assert_eq!(voice.speaker_id(Some("0")).unwrap(), 0);
    assert!(matches!(
        voice.speaker_id(Some("3")),
        Err(VoiceError::UnknownSpeaker { .. })
    ));
    assert!(matches!(
        voice.speaker_id(Some("alice")),
        Err(VoiceError::UnknownSpeaker { .. })
    ));
    // Phoneme ids: ^, then each phoneme followed by the pad, then $.
    let ids = voice.phoneme_ids("ab");
    assert_eq!(ids.len(), 2 + 2 * 2);
}

#[test]
fn broken_voices_are_clear_errors() {
    athena_onnx::init(&athena_onnx::locate(None).unwrap(), 2).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let src = model_dir("en_US-joe-medium");
    let model = dir.path().join("v.onnx");
    // No configuration next to the model.
    std::fs::write(&model, b"x").unwrap();
    let err = PiperVoice::load("v", &model, &cpu()).unwrap_err();
    assert!(err.to_string().contains("v.onnx.json"), "{err}");
    // A configuration, but the model is cut.
    std::fs::copy(
        src.join("en_US-joe-medium.onnx.json"),
        dir.path().join("v.onnx.json"),
    )
    .unwrap();
    let bytes = std::fs::read(src.join("en_US-joe-medium.onnx")).unwrap();
    std::fs::write(&model, &bytes[..bytes.len() / 2]).unwrap();
    let err = PiperVoice::load("v", &model, &cpu()).unwrap_err();
    assert!(
        err.to_string().contains("ONNX Runtime cannot load it"),
        "{err}"
    );
    // A configuration that is not one.
    std::fs::write(dir.path().join("v.onnx.json"), b"{}").unwrap();
    let err = PiperVoice::load("v", &model, &cpu()).unwrap_err();
    assert!(
        err.to_string().contains("not a Piper voice configuration"),
        "{err}"
    );
    // Speakers the model cannot take.
    std::fs::copy(src.join("en_US-joe-medium.onnx"), &model).unwrap();
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join("en_US-joe-medium.onnx.json")).unwrap())
            .unwrap();
    config["num_speakers"] = 2.into();
    config["speaker_id_map"] = serde_json::json!({"alice": 0, "bob": 1});
    std::fs::write(dir.path().join("v.onnx.json"), config.to_string()).unwrap();
    let err = PiperVoice::load("v", &model, &cpu()).unwrap_err();
    assert!(err.to_string().contains("no speaker input"), "{err}");
}

#[test]
fn a_sentence_in_pieces_is_the_sentence_whole() {
    let voice = joe();
    assert!(voice.streams(), "the Piper model is cut at its vocoder");
    // Without noise the model is deterministic, so pieces can be compared.
    let scales = Scales {
        noise_scale: 0.0,
        length_scale: 1.0,
        noise_w: 0.0,
    };
    let sentence = "The spare towels are in the cupboard, on the second shelf from the top.";
    let whole = voice.speak(sentence, scales, 0).unwrap();
    let mut pieces = Vec::new();
    let options = SpeakOptions {
        scales,
        speaker: 0,
        first_frames: 8,
    };
    voice
        .speak_in_pieces(sentence, &options, &mut |piece| {
            pieces.push(piece);
            true
        })
        .unwrap();
    assert!(pieces.len() >= 4, "{} pieces", pieces.len());
    assert_eq!(pieces[0].len(), 8 * 256, "the first piece is 8 frames");
    let joined: Vec<f32> = pieces.concat();
    assert_eq!(joined.len(), whole.len());
    let worst = joined
        .iter()
        .zip(&whole)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "pieces differ from the whole by {worst}");

    // A listener that leaves stops the work after its piece.
    let mut calls = 0;
    voice
        .speak_in_pieces(sentence, &options, &mut |_| {
            calls += 1;
            false
        })
        .unwrap();
    assert_eq!(calls, 1);
}

#[test]
fn without_cuda_the_gpu_setting_falls_back_to_the_cpu() {
    athena_onnx::init(&athena_onnx::locate(None).unwrap(), 2).unwrap();
    let dir = model_dir("en_US-joe-medium");
    // The catalog's ONNX Runtime is the CPU build: the CUDA provider fails
    // to register, and the voice runs on the CPU and says why.
    let voice = PiperVoice::load(
        "en_US-joe-medium",
        &dir.join("en_US-joe-medium.onnx"),
        &Device { gpu: true },
    )
    .unwrap();
    assert!(
        voice.device().starts_with("cpu (CUDA failed"),
        "{}",
        voice.device()
    );
    let samples = voice
        .speak("Still speaking.", voice.config().inference, 0)
        .unwrap();
    assert!(samples.len() > 22_050 / 2);
}

/// joe made into a two-speaker voice (`tests/models/two_speaker_voice.py`):
/// `plain` (0) is joe, `slow_quiet` (1) speaks at 1.5 × the length scale and
/// half the amplitude; the speaker id reaches both the encoder and the
/// vocoder, as in a real multi-speaker voice.
fn two_speaker_joe(dir: &std::path::Path) -> PiperVoice {
    athena_onnx::init(&athena_onnx::locate(None).unwrap(), 2).unwrap();
    let python = std::env::var_os("ATHENA_PYTHON")
        .expect("ATHENA_PYTHON is not set: run scripts/test.sh (it needs the test venv's onnx)");
    let script = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("../../tests/models/two_speaker_voice.py");
    let joe = model_dir("en_US-joe-medium").join("en_US-joe-medium.onnx");
    let out = std::process::Command::new(python)
        .arg(script)
        .args(["--name", "joe2", "--voice"])
        .arg(joe)
        .arg("--out")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PiperVoice::load("joe2", &dir.join("joe2.onnx"), &cpu()).unwrap()
}

#[test]
fn multi_speaker_voices_honour_the_speaker() {
    let dir = tempfile::tempdir().unwrap();
    let voice = two_speaker_joe(dir.path());
    let joe = joe();
    assert!(voice.streams(), "a multi-speaker model is cut too");
    assert_eq!(voice.speakers(), ["plain", "slow_quiet"]);
    assert_eq!(voice.speaker_id(None).unwrap(), 0);
    assert_eq!(voice.speaker_id(Some("slow_quiet")).unwrap(), 1);
    assert_eq!(voice.speaker_id(Some("1")).unwrap(), 1);
    assert!(matches!(
        voice.speaker_id(Some("2")),
        Err(VoiceError::UnknownSpeaker { .. })
    ));
    assert!(matches!(
        voice.speaker_id(Some("loud")),
        Err(VoiceError::UnknownSpeaker { .. })
    ));

    let still = Scales {
        noise_scale: 0.0,
        length_scale: 1.0,
        noise_w: 0.0,
    };
    let sentence = "The guest wifi password is on the fridge.";
    let peak = |s: &[f32]| s.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    // Speaker 0 is joe, sample for sample.
    let plain = voice.speak(sentence, still, 0).unwrap();
    let original = joe.speak(sentence, still, 0).unwrap();
    assert_eq!(plain.len(), original.len());
    let worst = plain
        .iter()
        .zip(&original)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "speaker 0 differs from joe by {worst}");
    // Speaker 1: slower (the encoder saw the id) and quieter (so did the
    // vocoder).
    let slow = voice.speak(sentence, still, 1).unwrap();
    let ratio = slow.len() as f32 / plain.len() as f32;
    assert!(ratio > 1.2 && ratio < 1.7, "length ratio {ratio}");
    let loudness = peak(&slow) / peak(&plain);
    assert!(loudness > 0.3 && loudness < 0.7, "peak ratio {loudness}");

    // In pieces, the vocoder gets the speaker with every window.
    let mut pieces = Vec::new();
    let options = SpeakOptions {
        scales: still,
        speaker: 1,
        first_frames: 8,
    };
    voice
        .speak_in_pieces(sentence, &options, &mut |piece| {
            pieces.push(piece);
            true
        })
        .unwrap();
    let joined = pieces.concat();
    assert_eq!(joined.len(), slow.len());
    let worst = joined
        .iter()
        .zip(&slow)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "pieces differ from the whole by {worst}");
}
