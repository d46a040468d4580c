//! Speech-to-text latency and accuracy: Athena's two engines (whisper.cpp
//! with q8_0 weights, candle with an f32 encoder and a q8_0 decoder) against
//! faster-whisper (int8 and fp32) on the same CTranslate2 weights, the same
//! clips, the same machine, in the same run. Times are from audio in memory to final text,
//! median of ATHENA_BENCH_RUNS (5) after one warm-up, 2 threads each.
//!
//! Run: `scripts/bench-stt.sh` (it makes the clips and the faster-whisper venv).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use athena_stt::engine::wer::word_error_rate;
use athena_stt::engine::{
    CandleConfig, CandleWhisper, TranscribeOptions, Transcriber, WhisperCpp, WhisperCppConfig,
};
use serde_json::Value;

const CLIPS: [(&str, &str); 4] = [
    ("short3s.wav", "what time is check out tomorrow morning"),
    (
        "cmd4s.wav",
        "turn on the kitchen lights and set them to fifty percent",
    ),
    (
        "cmd5s.wav",
        "set the living room thermostat to twenty one degrees and close the blinds",
    ),
    (
        "jfk.wav",
        "And so my fellow Americans ask not what your country can do for you, ask what you can do for your country.",
    ),
];

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run scripts/bench-stt.sh"))
}

fn samples(path: &Path) -> Vec<f32> {
    let reader = hound::WavReader::open(path).unwrap();
    assert_eq!(reader.spec().sample_rate, 16_000, "{}", path.display());
    reader
        .into_samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32_768.0)
        .collect()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Median seconds and the last text for one engine setting on one clip.
fn time_athena(
    engine: &dyn Transcriber,
    audio: &[f32],
    options: &TranscribeOptions,
    runs: usize,
) -> (f64, String) {
    engine.transcribe(audio, options).unwrap();
    let mut times = Vec::new();
    let mut text = String::new();
    for _ in 0..runs {
        let start = Instant::now();
        text = engine.transcribe(audio, options).unwrap().text;
        times.push(start.elapsed().as_secs_f64());
    }
    (median(times), text)
}

fn peer(
    python: &str,
    model_dir: &Path,
    compute: &str,
    clips: &[PathBuf],
    runs: usize,
    language: &str,
) -> Value {
    let script = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("benches/faster_whisper_peer.py");
    let out = Command::new(python)
        .arg(script)
        .args(["--model-dir", model_dir.to_str().unwrap()])
        .args([
            "--compute-type",
            compute,
            "--threads",
            "2",
            "--runs",
            &runs.to_string(),
        ])
        .args(["--language", language])
        .args(clips)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn main() {
    let python = env("ATHENA_BENCH_PYTHON");
    let clip_dir = PathBuf::from(env("ATHENA_BENCH_CLIPS"));
    let runs: usize = std::env::var("ATHENA_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let models = std::env::var("ATHENA_BENCH_MODELS")
        .unwrap_or_else(|_| "whisper-tiny.en,whisper-base".into());
    let store = athena_models::Store::from_env().unwrap();
    let clips: Vec<PathBuf> = CLIPS.iter().map(|(name, _)| clip_dir.join(name)).collect();

    let mut reduced_rows = Vec::new();
    let mut full_rows = Vec::new();
    for model in models.split(',') {
        let ct2 = store.ensure(model).unwrap();
        let derived = store.root().join(".derived");
        let whisper_cpp = WhisperCpp::from_ct2_dir(
            &ct2,
            &derived.join(format!("{model}.q8_0.ggml.bin")),
            WhisperCppConfig {
                threads: 2,
                ..WhisperCppConfig::default()
            },
        )
        .unwrap();
        let candle = CandleWhisper::from_ct2_dir(
            &ct2,
            &derived.join(format!("{model}.hf")),
            CandleConfig {
                threads: 2,
                ..CandleConfig::default()
            },
        )
        .unwrap();
        let int8 = peer(&python, &ct2, "int8", &clips, runs, "en");
        let fp32 = peer(&python, &ct2, "float32", &clips, runs, "en");
        for ((name, reference), path) in CLIPS.iter().zip(&clips) {
            let audio = samples(path);
            let seconds = audio.len() as f64 / 16_000.0;
            let options = |reduced_context| TranscribeOptions {
                language: Some("en".into()),
                hints: Vec::new(),
                reduced_context,
            };
            let key = path.to_str().unwrap();
            let fw_int8 = int8[key]["median_s"].as_f64().unwrap();
            let fw_fp32 = fp32[key]["median_s"].as_f64().unwrap();
            let fw_wer = word_error_rate(reference, int8[key]["text"].as_str().unwrap());
            for (reduced, rows) in [(true, &mut reduced_rows), (false, &mut full_rows)] {
                let (wc, wc_text) = time_athena(&whisper_cpp, &audio, &options(reduced), runs);
                let (ca, ca_text) = time_athena(&candle, &audio, &options(reduced), runs);
                rows.push(format!(
                    "| {model} | {name} ({seconds:.1} s) | {:.0} ms | {:.0} ms | {:.0} ms ({:.3}) | {:.0} ms ({:.3}) | {:.2}× | {:.2}× | {:.0}% | {:.0}% | {:.0}% |",
                    fw_int8 * 1e3,
                    fw_fp32 * 1e3,
                    wc * 1e3,
                    wc / seconds,
                    ca * 1e3,
                    ca / seconds,
                    wc / fw_int8,
                    ca / fw_int8,
                    fw_wer * 100.0,
                    word_error_rate(reference, &wc_text) * 100.0,
                    word_error_rate(reference, &ca_text) * 100.0,
                ));
            }
        }
    }
    let header = "| model | clip | faster-whisper int8 | faster-whisper fp32 | Athena whisper.cpp (RTF) | Athena candle (RTF) | whisper.cpp ÷ fw int8 | candle ÷ fw int8 | WER fw int8 | WER whisper.cpp | WER candle |\n|---|---|---|---|---|---|---|---|---|---|---|";
    println!("Athena with reduced context (the default):\n\n{header}");
    for row in reduced_rows {
        println!("{row}");
    }
    println!("\nAthena with the full 30 s context:\n\n{header}");
    for row in full_rows {
        println!("{row}");
    }
}
