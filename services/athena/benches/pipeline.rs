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

use std::time::{Duration, Instant};

use athena_ha_bridge::testing::HomeAssistant;
use common::athena::{Athena, espeak};
use wyoming::event::{AudioChunk, PipelineStage, Played, RunPipeline};
use wyoming::{AudioFormat, Connection, ConnectionConfig, Endpoint, Event};

/// Bytes of 16-bit samples per chunk (1024 samples, 64 ms).
const CHUNK: usize = 2048;

/// Where speech ends in `pcm`: the last chunk with a sample above the
/// noise floor.
fn speech_end_chunk(pcm: &[u8]) -> usize {
    pcm.chunks(CHUNK)
        .rposition(|c| {
            c.chunks_exact(2)
                .any(|s| i16::from_le_bytes([s[0], s[1]]).unsigned_abs() > 300)
        })
        .unwrap_or(0)
}

/// One command: (voice-stopped → first audio, end of speech → first audio),
/// in milliseconds.
async fn one(wyoming_port: u16, pcm: &[u8]) -> (f64, f64) {
    let endpoint: Endpoint = format!("tcp://127.0.0.1:{wyoming_port}").parse().unwrap();
    let mut conn = wyoming::connect(&endpoint, &ConnectionConfig::default())
        .await
        .unwrap();
    conn.send(RunPipeline {
        start_stage: PipelineStage::Asr,
        end_stage: PipelineStage::Tts,
        wake_word_name: None,
        wake_word_names: None,
        announce_text: None,
        restart_on_end: false,
        extra: Default::default(),
    })
    .await
    .unwrap();
    let Connection {
        mut reader,
        mut writer,
        ..
    } = conn;
    let last_speech = speech_end_chunk(pcm);
    let chunks: Vec<Vec<u8>> = pcm.chunks(CHUNK).map(<[u8]>::to_vec).collect();
    let (spoke_tx, spoke_rx) = tokio::sync::oneshot::channel();
    let sending = tokio::spawn(async move {
        let started = Instant::now();
        let mut spoke = Some(spoke_tx);
        for (i, chunk) in chunks.into_iter().enumerate() {
            // Real time: chunk i leaves when its audio has been "recorded".
            tokio::time::sleep_until((started + Duration::from_millis(64 * i as u64)).into()).await;
            if writer
                .send(AudioChunk {
                    format: AudioFormat::SPEECH,
                    timestamp: None,
                    audio: chunk.into(),
                    extra: Default::default(),
                })
                .await
                .is_err()
            {
                break;
            }
            if i == last_speech
                && let Some(tx) = spoke.take()
            {
                // The chunk holding the last speech is complete once its
                // 64 ms have passed.
                let _ = tx.send(Instant::now() + Duration::from_millis(64));
            }
        }
        writer
    });
    let mut voice_stopped = None;
    let first_audio = loop {
        let event = tokio::time::timeout(Duration::from_secs(60), reader.next_event())
            .await
            .expect("a reply within 60 s")
            .unwrap()
            .expect("the orchestrator hung up");
        match event {
            Event::VoiceStopped(_) => voice_stopped = Some(Instant::now()),
            Event::AudioChunk(_) => break Instant::now(),
            Event::Error(e) => panic!("error from the pipeline: {e:?}"),
            _ => {}
        }
    };
    let speech_ended = spoke_rx.await.unwrap();
    loop {
        match reader.next_event().await.unwrap() {
            Some(Event::AudioStop(_)) | None => break,
            _ => {}
        }
    }
    let mut writer = sending.await.unwrap();
    writer.send(Played::default()).await.unwrap();
    let ms = |from: Instant| first_audio.saturating_duration_since(from).as_secs_f64() * 1e3;
    (
        ms(voice_stopped.expect("voice-stopped came first")),
        ms(speech_ended),
    )
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
    let ha_dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut ha = HomeAssistant::new(ha_dir.path());
    ha.start().await;
    let token = ha.token().await;
    let athena = Athena::start(&ha.url(), &token, data.path());
    let commands = [
        (
            "home command",
            [
                "Turn on the kitchen lights.",
                "Turn off the kitchen lights.",
            ],
        ),
        (
            "not understood",
            ["Who wrote the Odyssey?", "Who wrote the Odyssey?"],
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
