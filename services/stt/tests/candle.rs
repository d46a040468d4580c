//! The candle engine end to end on real weights: the faster-whisper
//! (CTranslate2) tiny.en directory is converted to a Hugging Face
//! safetensors directory, loaded, and made to transcribe JFK's "ask not"
//! clip, with the decoder quantized (the CPU default) and in f32.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Instant;

use athena_stt::engine::wer::word_error_rate;
use athena_stt::engine::{
    CandleConfig, CandleWhisper, EngineError, TranscribeOptions, Transcriber,
};
use athena_stt::model::hf;
use common::{JFK, JFK_FIRST_4S, ct2_dir, jfk_samples, time};

#[test]
fn converts_loads_and_transcribes_jfk() {
    let ct2 = ct2_dir();
    let audio = jfk_samples();
    let dir = tempfile::tempdir().unwrap();
    let hf_dir = dir.path().join("cache").join("whisper-tiny.en.hf");

    let t = Instant::now();
    assert!(hf::ensure_hf(&ct2, &hf_dir).unwrap(), "converted");
    let convert_time = t.elapsed();
    for file in [hf::WEIGHTS, hf::CONFIG, hf::TOKENIZER] {
        assert!(hf_dir.join(file).is_file(), "{file}");
    }
    // Nothing but the model is left next to it; a second call reuses it.
    let left: Vec<_> = std::fs::read_dir(hf_dir.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![hf_dir.file_name().unwrap().to_owned()]);
    assert!(!hf::ensure_hf(&ct2, &hf_dir).unwrap());
    // The configuration speaks transformers' language.
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(hf_dir.join(hf::CONFIG)).unwrap()).unwrap();
    assert_eq!(config["model_type"], "whisper");
    assert_eq!(config["d_model"], 384);
    assert_eq!(config["encoder_layers"], 4);
    assert_eq!(config["vocab_size"], 51864);
    assert!(config["suppress_tokens"].as_array().unwrap().len() > 50);

    let full = TranscribeOptions::default();
    let reduced = TranscribeOptions {
        reduced_context: true,
        ..Default::default()
    };
    for quantize_decoder in [true, false] {
        let config = CandleConfig {
            quantize_decoder,
            ..CandleConfig::default()
        };
        let t = Instant::now();
        let engine = CandleWhisper::load(&hf_dir, config).unwrap();
        let load_time = t.elapsed();
        assert!(!engine.on_gpu());
        let info = engine.describe();
        assert_eq!(info.engine, "candle");
        assert_eq!(info.model, "whisper tiny.en");
        assert_eq!(info.languages, ["en"]);
        eprintln!(
            "decoder quantized: {quantize_decoder}; converted in {convert_time:?}, loaded in {load_time:?}"
        );

        for (name, options) in [("full", &full), ("reduced", &reduced)] {
            let (result, took) = time(|| engine.transcribe(&audio, options).unwrap(), 2);
            let wer = word_error_rate(JFK, &result.text);
            eprintln!(
                "11 s, {name} context: {:?} (WER {:.1}%, {took:?})",
                result.text,
                wer * 100.0
            );
            assert_eq!(result.language, "en");
            assert!((result.audio_seconds - 11.0).abs() < 0.1);
            assert!(wer <= 0.10, "WER {wer} for {:?}", result.text);
        }
        let first_4s = &audio[..4 * 16_000];
        let (short, took) = time(|| engine.transcribe(first_4s, &reduced).unwrap(), 2);
        let short_wer = word_error_rate(JFK_FIRST_4S, &short.text);
        eprintln!(
            "4 s, reduced context: {:?} (WER {:.1}%, {took:?})",
            short.text,
            short_wer * 100.0
        );
        assert!(short_wer <= 0.25, "WER {short_wer} for {:?}", short.text);

        // Hints go in as a prompt and do not break the result.
        let hinted = engine
            .transcribe(
                first_4s,
                &TranscribeOptions {
                    hints: vec!["Americans".into(), "with\0nul".into()],
                    reduced_context: true,
                    ..Default::default()
                },
            )
            .unwrap();
        assert!(
            word_error_rate(JFK_FIRST_4S, &hinted.text) <= 0.25,
            "{:?}",
            hinted.text
        );

        // Concurrent calls share the network and agree.
        let concurrent: Vec<String> = std::thread::scope(|scope| {
            let calls: Vec<_> = (0..2)
                .map(|_| scope.spawn(|| engine.transcribe(first_4s, &reduced).unwrap().text))
                .collect();
            calls.into_iter().map(|c| c.join().unwrap()).collect()
        });
        assert_eq!(concurrent, [short.text.clone(), short.text.clone()]);

        // Audio longer than one window is transcribed window by window.
        let twice: Vec<f32> = audio
            .iter()
            .chain(std::iter::repeat_n(&0.0, 16_000 * 20))
            .chain(audio.iter())
            .copied()
            .collect();
        let long = engine.transcribe(&twice, &reduced).unwrap();
        let expected = format!("{JFK} {JFK}");
        let long_wer = word_error_rate(&expected, &long.text);
        eprintln!(
            "42 s, two windows: {:?} (WER {:.1}%)",
            long.text,
            long_wer * 100.0
        );
        assert!(long_wer <= 0.10, "{:?}", long.text);

        // What it cannot serve is an error, not a guess.
        let german = TranscribeOptions {
            language: Some("de".into()),
            ..Default::default()
        };
        assert!(matches!(
            engine.transcribe(first_4s, &german),
            Err(EngineError::UnsupportedLanguage { .. })
        ));
        assert!(matches!(
            engine.transcribe(&[], &full),
            Err(EngineError::InvalidAudio(_))
        ));
        assert!(matches!(
            engine.transcribe(&[0.0, f32::INFINITY], &full),
            Err(EngineError::InvalidAudio(_))
        ));
    }
}

#[test]
fn broken_directories_are_clear_errors() {
    let ct2 = ct2_dir();
    let dir = tempfile::tempdir().unwrap();
    let hf_dir = dir.path().join("tiny.hf");
    hf::convert_ct2_to_hf(&ct2, &hf_dir).unwrap();

    // A CTranslate2 directory is not a Hugging Face one.
    let err = CandleWhisper::load(&ct2, CandleConfig::default()).unwrap_err();
    assert!(
        err.to_string().contains("model.safetensors is missing"),
        "{err}"
    );

    // A cut weights file.
    let cut = dir.path().join("cut.hf");
    std::fs::create_dir(&cut).unwrap();
    for file in [hf::CONFIG, hf::TOKENIZER] {
        std::fs::copy(hf_dir.join(file), cut.join(file)).unwrap();
    }
    let weights = std::fs::read(hf_dir.join(hf::WEIGHTS)).unwrap();
    std::fs::write(cut.join(hf::WEIGHTS), &weights[..weights.len() / 3]).unwrap();
    let err = CandleWhisper::load(&cut, CandleConfig::default()).unwrap_err();
    assert!(matches!(err, EngineError::Load { .. }), "{err}");
    assert!(err.to_string().contains(hf::WEIGHTS), "{err}");

    // A configuration that does not match the weights.
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(hf_dir.join(hf::CONFIG)).unwrap()).unwrap();
    config["d_model"] = 512.into();
    std::fs::write(cut.join(hf::WEIGHTS), &weights).unwrap();
    std::fs::write(cut.join(hf::CONFIG), serde_json::to_vec(&config).unwrap()).unwrap();
    let err = CandleWhisper::load(&cut, CandleConfig::default()).unwrap_err();
    assert!(err.to_string().contains("expected"), "{err}");

    // A tokenizer that is not one.
    std::fs::copy(hf_dir.join(hf::CONFIG), cut.join(hf::CONFIG)).unwrap();
    std::fs::write(cut.join(hf::TOKENIZER), b"{\"not\": \"a tokenizer\"}").unwrap();
    let err = CandleWhisper::load(&cut, CandleConfig::default()).unwrap_err();
    assert!(err.to_string().contains("tokenizer"), "{err}");
}
