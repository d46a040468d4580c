//! The whisper.cpp engine end to end on real weights: the faster-whisper
//! (CTranslate2) tiny.en directory is converted to ggml, loaded, and made to
//! transcribe JFK's "ask not" clip.
//!
//! The weights and the clip come from the model catalog (`whisper-tiny.en`,
//! `sample-jfk`), pulled into the cache on first use and checked against
//! their pinned sha256.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Instant;

use common::{JFK, JFK_FIRST_4S, ct2_dir, jfk_samples, time};

use athena_stt::engine::wer::word_error_rate;
use athena_stt::engine::{
    EngineError, TranscribeOptions, Transcriber, WhisperCpp, WhisperCppConfig,
};
use athena_stt::model::ct2::Ct2Error;
use athena_stt::model::ggml::{self, GgmlFileError};
use athena_stt::model::{ConvertError, convert_ct2_to_ggml};

/// Copies the CTranslate2 directory's small files into `dst`, and `model.bin`
/// cut to `model_bytes` bytes (all of it when `None`; left out when `Some(0)`).
fn copy_ct2(src: &Path, dst: &Path, model_bytes: Option<usize>) {
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name != "model.bin" {
            std::fs::copy(entry.path(), dst.join(&name)).unwrap();
        }
    }
    let model = std::fs::read(src.join("model.bin")).unwrap();
    match model_bytes {
        Some(0) => {}
        Some(n) => std::fs::write(dst.join("model.bin"), &model[..n]).unwrap(),
        None => std::fs::write(dst.join("model.bin"), &model).unwrap(),
    }
}

#[test]
fn converts_loads_and_transcribes_jfk() {
    let ct2 = ct2_dir();
    let audio = jfk_samples();
    assert!((audio.len() as f32 / 16_000.0 - 11.0).abs() < 0.1);
    let dir = tempfile::tempdir().unwrap();
    let ggml_path = dir.path().join("cache").join("ggml-tiny.en.bin");

    let t = Instant::now();
    convert_ct2_to_ggml(&ct2, &ggml_path).unwrap();
    let convert_time = t.elapsed();
    let summary = ggml::inspect(&ggml_path).unwrap();
    assert_eq!(summary.hparams.n_vocab, 51864);
    assert_eq!(summary.hparams.n_audio_layer, 4);
    assert_eq!(summary.hparams.n_audio_head, 6);
    assert_eq!(summary.vocab, 50256, "tokens below <|endoftext|>");
    // 5 stem + 15 per encoder layer + 2; 2 + 24 per decoder layer + 2.
    assert_eq!(summary.tensors, 5 + 15 * 4 + 2 + 2 + 24 * 4 + 2);
    // Nothing but the model is left in the cache directory.
    let left: Vec<_> = std::fs::read_dir(ggml_path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![ggml_path.file_name().unwrap().to_owned()]);

    let t = Instant::now();
    let engine = WhisperCpp::load(&ggml_path, WhisperCppConfig::default()).unwrap();
    let load_time = t.elapsed();
    let info = engine.describe();
    assert_eq!(info.engine, "whisper.cpp");
    assert_eq!(info.languages, ["en"]);
    assert!(!info.detects_language);
    eprintln!(
        "model: {} ({} {}); converted in {convert_time:?}, loaded in {load_time:?}",
        info.model, info.engine, info.version
    );

    // The whole clip, full context.
    let full = TranscribeOptions::default();
    let reduced = TranscribeOptions {
        reduced_context: true,
        ..Default::default()
    };
    let result = engine.transcribe(&audio, &full).unwrap();
    let wer = word_error_rate(JFK, &result.text);
    eprintln!(
        "11 s, full context:    {:?} (WER {:.1}%)",
        result.text,
        wer * 100.0
    );
    assert_eq!(result.language, "en");
    assert!((result.audio_seconds - 11.0).abs() < 0.1);
    assert!(wer <= 0.10, "WER {wer} for {:?}", result.text);

    // The first 4 seconds, reduced context.
    let first_4s = &audio[..4 * 16_000];
    let short = engine.transcribe(first_4s, &reduced).unwrap();
    let short_wer = word_error_rate(JFK_FIRST_4S, &short.text);
    eprintln!(
        "4 s, reduced context:  {:?} (WER {:.1}%)",
        short.text,
        short_wer * 100.0
    );
    assert!(short_wer <= 0.25, "WER {short_wer} for {:?}", short.text);

    // Hints are accepted (an initial prompt) and do not break the result.
    let hinted = engine
        .transcribe(
            first_4s,
            &TranscribeOptions {
                hints: vec!["Americans".into(), "fellow".into(), "with\0nul".into()],
                reduced_context: true,
                ..Default::default()
            },
        )
        .unwrap();
    eprintln!("4 s, reduced, hinted:  {:?}", hinted.text);
    assert!(word_error_rate(JFK_FIRST_4S, &hinted.text) <= 0.25);

    // Informational timings (best of 3, 2 threads); never asserted.
    let (short_full, t_short_full) = time(|| engine.transcribe(first_4s, &full).unwrap(), 3);
    let (_, t_short_reduced) = time(|| engine.transcribe(first_4s, &reduced).unwrap(), 3);
    let (long_reduced, t_long_reduced) = time(|| engine.transcribe(&audio, &reduced).unwrap(), 3);
    let (_, t_long_full) = time(|| engine.transcribe(&audio, &full).unwrap(), 3);
    eprintln!("4 s, full context:     {:?}", short_full.text);
    eprintln!(
        "11 s, reduced context: {:?} (WER {:.1}%)",
        long_reduced.text,
        word_error_rate(JFK, &long_reduced.text) * 100.0
    );
    eprintln!(
        "timings (best of 3): 4 s clip: full {t_short_full:?}, reduced {t_short_reduced:?}; \
         11 s clip: full {t_long_full:?}, reduced {t_long_reduced:?}"
    );

    // Concurrent calls each get their own state and the same answer.
    let concurrent: Vec<String> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| engine.transcribe(first_4s, &reduced).unwrap().text))
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    assert_eq!(concurrent, [short.text.clone(), short.text.clone()]);

    // An existing cache file is used as is.
    assert!(
        !athena_stt::model::ensure_converted(&ct2, &ggml_path, athena_stt::model::Precision::F16)
            .unwrap()
    );

    // Requests the engine cannot serve are errors, not guesses.
    let err = engine
        .transcribe(
            first_4s,
            &TranscribeOptions {
                language: Some("de".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(
        matches!(err, EngineError::UnsupportedLanguage { .. }),
        "{err}"
    );
    let en_us = TranscribeOptions {
        language: Some("en-US".into()),
        reduced_context: true,
        ..Default::default()
    };
    assert_eq!(engine.transcribe(first_4s, &en_us).unwrap().language, "en");
    assert!(matches!(
        engine.transcribe(&[], &full),
        Err(EngineError::InvalidAudio(_))
    ));
    assert!(matches!(
        engine.transcribe(&[0.0, f32::NAN], &full),
        Err(EngineError::InvalidAudio(_))
    ));

    // A cut ggml file is refused before whisper.cpp sees it.
    let cut = dir.path().join("cut.bin");
    let bytes = std::fs::read(&ggml_path).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = WhisperCpp::load(&cut, WhisperCppConfig::default()).unwrap_err();
    assert!(matches!(err, EngineError::Load { .. }), "{err}");
    assert!(err.to_string().contains("truncated"), "{err}");
    assert!(matches!(
        ggml::inspect(&cut),
        Err(GgmlFileError::Truncated { .. })
    ));
    // So is a file that is not ggml at all.
    let err = WhisperCpp::load(&ct2.join("model.bin"), WhisperCppConfig::default()).unwrap_err();
    assert!(err.to_string().contains("not a ggml"), "{err}");
}

#[test]
fn missing_model_bin_is_a_clear_error() {
    let src = ct2_dir();
    let dir = tempfile::tempdir().unwrap();
    copy_ct2(&src, dir.path(), Some(0));
    let out = dir.path().join("out.bin");
    let err = convert_ct2_to_ggml(dir.path(), &out).unwrap_err();
    assert!(
        matches!(
            err,
            ConvertError::MissingFile {
                file: "model.bin",
                ..
            }
        ),
        "{err}"
    );
    assert!(!out.exists());

    let err = WhisperCpp::from_ct2_dir(dir.path(), &out, WhisperCppConfig::default()).unwrap_err();
    assert!(matches!(err, EngineError::Load { .. }));
    assert!(err.to_string().contains("model.bin"), "{err}");
}

#[test]
fn truncated_model_bin_is_a_clear_error() {
    let src = ct2_dir();
    let dir = tempfile::tempdir().unwrap();
    copy_ct2(&src, dir.path(), Some(1000));
    let out = dir.path().join("cache").join("out.bin");
    let err = convert_ct2_to_ggml(dir.path(), &out).unwrap_err();
    assert!(
        matches!(err, ConvertError::Ct2(Ct2Error::Truncated { .. })),
        "{err}"
    );
    let message = err.to_string();
    assert!(message.contains("truncated"), "{message}");
    eprintln!("truncated model.bin: {message}");
    assert!(!out.exists());
}
