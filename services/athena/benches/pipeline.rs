//! Voice pipeline latency: a satellite speaks a command (espeak-ng audio sent
//! in real time, as a microphone delivers it) to the whole assistant in one
//! `athena serve` process (orchestrator, stt with whisper tiny.en, tts,
//! ha-bridge, mode-service) against a real Home Assistant, and the time to
//! the first audio of the spoken reply is measured at the satellite:
//!
//! - from `voice-stopped` (the orchestrator's VAD has decided the command
//!   is over): what the pipeline adds after end of speech is detected;
//! - from the last sample of speech sent: what a user waits, including the
//!   silence the VAD needs (`end_silence_ms`) to know speech has ended.
//!
//! Run: `scripts/bench-pipeline.sh` (ATHENA_BENCH_RUNS, default 8).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::athena::{Athena, espeak, home_assistant};
use common::satellite::{Pace, speak};

/// One command: (voice-stopped → first audio, end of speech → first audio),
/// in milliseconds.
async fn one(wyoming_port: u16, pcm: &[u8]) -> (f64, f64) {
    let run = speak(wyoming_port, pcm, Pace::RealTime).await;
    assert!(run.error.is_none(), "error from the pipeline: {run:?}");
    // An apology is fast and worthless: only real replies are timed.
    assert!(!run.reply.starts_with("Sorry"), "{run:?}");
    let ms = |d: Option<Duration>| d.expect("reply audio").as_secs_f64() * 1e3;
    (ms(run.after_voice_stopped), ms(run.after_speech))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::var("ATHENA_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let data = tempfile::tempdir().unwrap();
    let (mut ha, token, _ha_dir) = home_assistant().await;
    // The small LLM answers what no local intent covers.
    let (athena, _llm) = Athena::start_with_llm(&ha.url(), &token, data.path());
    let commands = [
        (
            "home command",
            [
                "Turn on the kitchen lights.",
                "Turn off the kitchen lights.",
            ],
        ),
        (
            "LLM question (SmolLM2-135M)",
            ["Who wrote the Odyssey?", "What is the capital of France?"],
        ),
    ];
    println!(
        "\n## Voice pipeline: time to the first reply audio at the satellite, whisper tiny.en, {runs} runs (ms)\n"
    );
    println!(
        "| command | voice-stopped → first audio p50 | p90 | end of speech → first audio p50 | p90 |"
    );
    println!("|---|---|---|---|---|");
    for (label, texts) in commands {
        let audio = texts.map(espeak);
        // Warm-up.
        one(athena.wyoming, &audio[0]).await;
        let (mut after_vad, mut after_speech) = (Vec::new(), Vec::new());
        for i in 0..runs {
            let (v, s) = one(athena.wyoming, &audio[i % 2]).await;
            after_vad.push(v);
            after_speech.push(s);
        }
        after_vad.sort_by(f64::total_cmp);
        after_speech.sort_by(f64::total_cmp);
        println!(
            "| {label} | {:.0} | {:.0} | {:.0} | {:.0} |",
            percentile(&after_vad, 0.5),
            percentile(&after_vad, 0.9),
            percentile(&after_speech, 0.5),
            percentile(&after_speech, 0.9),
        );
    }
    ha.stop().await;
}
