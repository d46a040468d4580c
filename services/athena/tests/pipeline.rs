//! The whole voice pipeline in one `athena` process (orchestrator, stt,
//! tts, ha-bridge, mode-service) against a real Home Assistant (its demo):
//! a satellite speaks a command (audio made by our own voice), and the
//! light really changes, with the Wyoming progress events and a spoken
//! reply. Needs `ATHENA_HA_PYTHON` (scripts/test.sh sets it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use athena_api::tts::{GrpcTextToSpeech, SynthesisConfig, TextToSpeech};
use common::athena::{Athena, espeak, espeak_phrases, home_assistant};
use common::satellite::{Pace, Run, speak};
use futures::StreamExt;

/// `text` spoken by our own voice, as a satellite's microphone would hear
/// it: 16 kHz, 16-bit mono, with half a second of silence before and 1.5 s
/// after.
async fn spoken(tts_port: u16, text: &str) -> Vec<u8> {
    let tts = GrpcTextToSpeech::connect_lazy(&format!("http://127.0.0.1:{tts_port}")).unwrap();
    let config = SynthesisConfig {
        sample_rate: Some(16_000),
        ..SynthesisConfig::default()
    };
    let mut speech = tts
        .synthesize(config, futures::stream::iter([Ok(text.to_owned())]).boxed())
        .await
        .unwrap();
    let mut pcm = vec![0u8; 16_000];
    while let Some(segment) = speech.next().await {
        pcm.extend_from_slice(&segment.unwrap().audio);
    }
    pcm.extend(vec![0u8; 48_000]);
    pcm
}

/// A command spoken by a satellite that must succeed.
async fn speak_command(wyoming_port: u16, pcm: &[u8]) -> Run {
    let run = speak(wyoming_port, pcm, Pace::RealTime).await;
    assert!(run.error.is_none(), "error from the pipeline: {run:?}");
    run
}

#[test]
fn a_spoken_command_turns_on_the_kitchen_lights() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let data = tempfile::tempdir().unwrap();
        let (mut ha, token, _ha_dir) = home_assistant().await;
        // The small LLM answers what no local intent covers.
        let (athena, _llm) = Athena::start_with_llm(&ha.url(), &token, data.path());
        let http = reqwest::Client::new();
        // ha-bridge is ready once it holds a copy of the home.
        let status: serde_json::Value = http
            .get(format!("http://127.0.0.1:{}/v1/status", athena.ha_bridge))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(status["connected"], true, "{status}");
        ha.command(
            &token,
            serde_json::json!({"type": "call_service", "domain": "light", "service": "turn_off",
                               "target": {"entity_id": "light.kitchen_lights"}}),
        )
        .await;
        assert_eq!(
            ha.state(&token, "light.kitchen_lights").await["state"],
            "off"
        );

        let pcm = espeak("Turn on the kitchen lights.");
        let run = speak_command(athena.wyoming, &pcm).await;
        assert_eq!(
            run.kinds,
            [
                "transcribe",
                "voice-started",
                "voice-stopped",
                "transcript",
                "synthesize",
                "audio-start",
                "audio-chunk",
                "audio-stop"
            ],
            "{run:?}"
        );
        assert!(
            run.transcript.to_lowercase().contains("kitchen light"),
            "{run:?}"
        );
        assert!(run.audio_bytes > 16_000, "{run:?}");
        assert_eq!(
            ha.state(&token, "light.kitchen_lights").await["state"],
            "on"
        );

        let pcm = espeak("Set the kitchen lights to 30 percent.");
        let run = speak_command(athena.wyoming, &pcm).await;
        let light = ha.state(&token, "light.kitchen_lights").await;
        let brightness = light["attributes"]["brightness"].as_f64().unwrap();
        assert!(
            (brightness / 255.0 * 100.0 - 30.0).abs() < 1.5,
            "{light} {run:?}"
        );

        // A pause in the middle of a command that is not complete yet: the
        // transcription closed early at the pause reopens when speech goes
        // on, and the whole command is heard.
        let pcm = espeak_phrases(&["Set the kitchen lights", "to 10 percent."], 350);
        let run = speak_command(athena.wyoming, &pcm).await;
        let light = ha.state(&token, "light.kitchen_lights").await;
        let brightness = light["attributes"]["brightness"].as_f64().unwrap();
        assert!(
            (brightness / 255.0 * 100.0 - 10.0).abs() < 1.5,
            "{light} {run:?}"
        );

        // Something no local intent covers: answered by the LLM, out loud,
        // sentence by sentence as it is written (not the apology that a
        // model down or too slow would give).
        let pcm = spoken(athena.tts, "Who wrote the Odyssey?").await;
        let run = speak_command(athena.wyoming, &pcm).await;
        assert!(!run.reply.trim().is_empty(), "{run:?}");
        assert!(!run.reply.contains("didn't understand"), "{run:?}");
        assert!(!run.reply.contains("can't answer"), "{run:?}");
        assert!(run.kinds.contains(&"synthesize".to_owned()), "{run:?}");
        assert!(run.audio_bytes > 0);

        // The orchestrator counted the runs (each once its `played` is in)
        // and timed the stages as histograms.
        let mut metrics = String::new();
        for _ in 0..50 {
            metrics = http
                .get(format!("http://127.0.0.1:{}/metrics", athena.orchestrator))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            if metrics.contains("orchestrator_runs_total{outcome=\"ok\"} 4") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            metrics.contains("orchestrator_runs_total{outcome=\"ok\"} 4"),
            "{metrics}"
        );
        assert!(
            metrics
                .contains("orchestrator_stage_seconds_bucket{stage=\"speech_end_to_first_audio\"")
                && metrics.contains(
                    "orchestrator_stage_seconds_bucket{stage=\"transcript_to_first_audio\""
                ),
            "{metrics}"
        );
        // The commands may end as soon as they are complete (a short pause
        // and a matching transcript: how often depends on how fast the
        // transcript comes, so only "at least once" is certain), the question
        // only after the full silence; the pause inside a command reopened
        // its transcription.
        let value = |name: &str| -> f64 {
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
                .unwrap_or(0.0)
        };
        let by_command = value("orchestrator_speech_ends_total{by=\"command\"}");
        let by_silence = value("orchestrator_speech_ends_total{by=\"silence\"}");
        assert!(
            by_command >= 1.0 && by_command + by_silence == 4.0,
            "{metrics}"
        );
        assert!(
            value("orchestrator_transcriptions_reopened_total") >= 1.0,
            "{metrics}"
        );
        // The answer, by route and outcome, and its first token's latency.
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("orchestrator_answers_total")
                    && l.contains("outcome=\"answered\"")),
            "{metrics}"
        );
        assert!(
            metrics.contains("orchestrator_llm_first_token_seconds_bucket{endpoint=\"small\""),
            "{metrics}"
        );
        ha.stop().await;
    });
}
