//! The whole voice pipeline in one `athena` process (orchestrator, stt,
//! tts, ha-bridge, mode-service) against a real Home Assistant (its demo):
//! a satellite speaks a command (audio made by our own voice), and the
//! light really changes, with the Wyoming progress events and a spoken
//! reply. Needs `ATHENA_HA_PYTHON` (scripts/test.sh sets it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use athena_api::tts::{GrpcTextToSpeech, SynthesisConfig, TextToSpeech};
use athena_ha_bridge::testing::HomeAssistant;
use futures::StreamExt;
use wyoming::event::{AudioChunk, PipelineStage, Played, RunPipeline};
use wyoming::{AudioFormat, Connection, ConnectionConfig, Endpoint, Event};

use common::free_port;

/// The services of one `athena serve` process; killed when dropped.
struct Athena {
    child: Child,
    orchestrator: u16,
    wyoming: u16,
    tts: u16,
    ha_bridge: u16,
}

impl Drop for Athena {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Athena {
    fn start(ha_url: &str, token: &str, data: &std::path::Path) -> Self {
        let (orchestrator, wyoming, stt, tts, ha_bridge, mode) = (
            free_port(),
            free_port(),
            free_port(),
            free_port(),
            free_port(),
            free_port(),
        );
        let local = |port: u16| format!("127.0.0.1:{port}");
        let url = |port: u16| format!("http://127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_athena"))
            .args([
                "serve",
                "orchestrator",
                "stt",
                "tts",
                "ha-bridge",
                "mode-service",
            ])
            .env("ATHENA_DATA_DIR", data)
            .env("ATHENA__ORCHESTRATOR__HTTP", local(orchestrator))
            .env(
                "ATHENA__ORCHESTRATOR__WYOMING__URI",
                format!("tcp://127.0.0.1:{wyoming}"),
            )
            .env("ATHENA__ORCHESTRATOR__STT__URL", url(stt))
            .env("ATHENA__ORCHESTRATOR__TTS__URL", url(tts))
            .env("ATHENA__ORCHESTRATOR__HA_BRIDGE_URL", url(ha_bridge))
            .env("ATHENA__ORCHESTRATOR__MODE_SERVICE_URL", url(mode))
            .env("ATHENA__STT__HTTP", local(stt))
            .env(
                "ATHENA__STT__WYOMING__URI",
                format!("tcp://127.0.0.1:{}", free_port()),
            )
            .env("ATHENA__TTS__HTTP", local(tts))
            .env(
                "ATHENA__TTS__WYOMING__URI",
                format!("tcp://127.0.0.1:{}", free_port()),
            )
            .env("ATHENA__HA_BRIDGE__HTTP", local(ha_bridge))
            .env("ATHENA__HA_BRIDGE__URL", ha_url)
            .env("ATHENA__HA_BRIDGE__TOKEN", token)
            .env("ATHENA__MODE_SERVICE__HTTP", local(mode))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let athena = Self {
            child,
            orchestrator,
            wyoming,
            tts,
            ha_bridge,
        };
        for port in [orchestrator, stt, tts, ha_bridge, mode] {
            athena.wait_ready(port);
        }
        athena
    }

    fn wait_ready(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(180);
        while Instant::now() < deadline {
            let ready = Command::new("curl")
                .args(["-sf", &format!("http://127.0.0.1:{port}/readyz")])
                .output()
                .is_ok_and(|o| o.status.success());
            if ready {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("the service on port {port} never became ready");
    }
}

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

/// `text` spoken by espeak-ng (`en-us`, 145 words a minute), as a
/// satellite's microphone would hear it, with the same silences.
fn espeak(text: &str) -> Vec<u8> {
    let out = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "145", "--stdout", text])
        .output()
        .expect("espeak-ng runs (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A WAV whose sizes are left open (it was streamed): the rate from the
    // header, the samples after the `data` tag.
    let wav = out.stdout;
    let rate = u32::from_le_bytes(wav[24..28].try_into().unwrap());
    let data = wav.windows(4).position(|w| w == b"data").unwrap() + 8;
    let samples: Vec<f32> = wav[data..]
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect();
    let mut pcm = vec![0u8; 16_000];
    for s in athena_audio::resample(&samples, rate, 16_000) {
        pcm.extend_from_slice(&((s.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes());
    }
    pcm.extend(vec![0u8; 48_000]);
    pcm
}

/// What the satellite saw of one run.
#[derive(Debug, Default)]
struct Run {
    kinds: Vec<String>,
    transcript: String,
    reply: String,
    audio_bytes: usize,
}

/// Streams `pcm` to the orchestrator as a satellite does (chunks of 1024
/// samples, a little faster than real time, no `audio-start`) after
/// `run-pipeline`, and reads its events until the reply's `audio-stop`,
/// then says `played`.
async fn speak_command(wyoming_port: u16, pcm: &[u8]) -> Run {
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
    let chunks: Vec<Vec<u8>> = pcm.chunks(2048).map(<[u8]>::to_vec).collect();
    let sending = tokio::spawn(async move {
        for chunk in chunks {
            let sent = writer
                .send(AudioChunk {
                    format: AudioFormat::SPEECH,
                    timestamp: None,
                    audio: chunk.into(),
                    extra: Default::default(),
                })
                .await;
            if sent.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(32)).await;
        }
        writer
    });
    let mut run = Run::default();
    let reading = async {
        loop {
            let event = reader
                .next_event()
                .await
                .unwrap()
                .expect("the orchestrator hung up");
            run.kinds.push(event.kind().to_owned());
            match event {
                Event::Transcript(t) => run.transcript = t.text,
                Event::Synthesize(s) => run.reply = s.text,
                Event::AudioChunk(c) => run.audio_bytes += c.audio.len(),
                Event::AudioStop(_) => return,
                Event::Error(e) => panic!("error from the pipeline: {e:?} after {:?}", run.kinds),
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), reading)
        .await
        .unwrap_or_else(|_| panic!("no reply within 60 s: {run:?}"));
    let mut writer = sending.await.unwrap();
    writer.send(Played::default()).await.unwrap();
    let mut kinds = run.kinds.clone();
    kinds.dedup();
    run.kinds = kinds;
    run
}

#[test]
fn a_spoken_command_turns_on_the_kitchen_lights() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let ha_dir = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        let mut ha = HomeAssistant::new(ha_dir.path());
        ha.start().await;
        let token = ha.token().await;
        let athena = Athena::start(&ha.url(), &token, data.path());
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

        // Something no local intent covers: said so, out loud.
        let pcm = spoken(athena.tts, "Who wrote the Odyssey?").await;
        let run = speak_command(athena.wyoming, &pcm).await;
        assert!(run.reply.contains("didn't understand"), "{run:?}");
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
            if metrics.contains("orchestrator_runs_total{outcome=\"ok\"} 3") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            metrics.contains("orchestrator_runs_total{outcome=\"ok\"} 3"),
            "{metrics}"
        );
        assert!(
            metrics
                .contains("orchestrator_stage_seconds_bucket{stage=\"speech_end_to_first_audio\""),
            "{metrics}"
        );
        ha.stop().await;
    });
}
