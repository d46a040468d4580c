//! Satellites in both directions, with the real `wyoming-satellite` (the
//! reference satellite, from PyPI), against the whole pipeline in one
//! `athena` process and a real Home Assistant:
//!
//! - outbound: the orchestrator dials the satellites its config names
//!   (`ATHENA__ORCHESTRATOR__SATELLITES`), as Home Assistant does. A
//!   satellite's microphone (tests/interop/file_mic.py) speaks an espeak-ng
//!   command, the light changes in Home Assistant, and the spoken reply
//!   lands in the satellite's speaker (a file). Pause and resume reach it
//!   through the HTTP API. A satellite that stops answering (SIGSTOP) is
//!   given up and connected again once it is back (SIGCONT).
//! - inbound: `wyoming-satellite` only listens, so the satellite that dials
//!   the orchestrator is tests/interop/satellite_client.py, on the
//!   reference `wyoming` package.
//! - two outbound satellites and an inbound one at once, each with its own
//!   run, transcript and reply.
//! - SIGTERM: the outbound connections end with the rest of the process,
//!   which drains long before its grace period is over.
//!
//! Each satellite forwards the events it gets from the orchestrator to an
//! event service (`--event-uri`), here a Wyoming server in the test: that
//! is how the test sees what the satellite saw.
//!
//! Needs `ATHENA_HA_PYTHON` and `ATHENA_PYTHON` (scripts/test.sh sets
//! them). The satellite's own venv (tests/satellite-requirements.txt) is
//! `ATHENA_SATELLITE_PYTHON`, or made here by scripts/python-env.sh.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use wyoming::event::PipelineStage;
use wyoming::{Connection, ConnectionError, Event, Handler, Server, ServerConfig};

use athena_ha_bridge::testing::HomeAssistant;
use common::athena::{Athena, espeak, home_assistant};
use common::{free_port, repo_root};

/// The reference satellite's interpreter: its own venv, because it pins an
/// older `wyoming` than the other peers.
fn satellite_python() -> PathBuf {
    if let Some(python) = std::env::var_os("ATHENA_SATELLITE_PYTHON") {
        return PathBuf::from(python);
    }
    let root = repo_root();
    let out = Command::new("bash")
        .arg(root.join("scripts/python-env.sh"))
        .arg("satellite-venv")
        .arg(root.join("tests/satellite-requirements.txt"))
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/python-env.sh runs");
    assert!(out.status.success(), "scripts/python-env.sh failed");
    let stdout = String::from_utf8(out.stdout).unwrap();
    PathBuf::from(stdout.lines().last().expect("python-env.sh prints a path"))
}

/// The event service a satellite forwards everything it hears to.
struct EventSink(mpsc::UnboundedSender<Event>);

impl Handler for EventSink {
    async fn handle(&self, conn: &mut Connection) -> Result<(), ConnectionError> {
        loop {
            match conn.next_event().await {
                Ok(Some(event)) => {
                    let _ = self.0.send(event);
                }
                Ok(None) => return Ok(()),
                // Seen in the failure's output: the event waited for
                // never comes.
                Err(ConnectionError::InvalidEvent(e)) => eprintln!("event sink: {e}"),
                Err(e) => return Err(e),
            }
        }
    }
}

/// What a satellite heard of one command.
#[derive(Debug, Default)]
struct Heard {
    /// Event types from the orchestrator, in order (pings left out).
    kinds: Vec<String>,
    transcript: String,
    reply: String,
    /// What its speaker played: 22.05 kHz 16-bit mono PCM.
    speaker: Vec<u8>,
}

/// A `wyoming-satellite` process listening on `port`, with a microphone
/// fed from files and a speaker writing to one; killed when dropped.
struct Satellite {
    name: &'static str,
    port: u16,
    child: Child,
    dir: tempfile::TempDir,
    events: mpsc::UnboundedReceiver<Event>,
    sink: CancellationToken,
}

impl Drop for Satellite {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.sink.cancel();
        if std::thread::panicking() {
            let log =
                std::fs::read_to_string(self.dir.path().join("satellite.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!(
                "--- satellite {} (last lines of its log) ---\n{}",
                self.name,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
}

impl Satellite {
    async fn start(name: &'static str, python: &std::path::Path) -> Self {
        let (tx, events) = mpsc::unbounded_channel();
        let mut sink_config = ServerConfig::default();
        sink_config.connection.idle_timeout = None;
        let server = Server::bind(&"tcp://127.0.0.1:0".parse().unwrap(), sink_config)
            .await
            .unwrap();
        let sink_uri = format!("tcp://{}", server.local_addr().unwrap());
        let sink = CancellationToken::new();
        tokio::spawn(server.serve(Arc::new(EventSink(tx)), sink.clone()));

        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mic = format!(
            "{} {} --say {}",
            python.display(),
            repo_root().join("tests/interop/file_mic.py").display(),
            dir.path().join("say.raw").display()
        );
        let speaker = format!(
            "sh -c 'cat >> {}'",
            dir.path().join("speaker.raw").display()
        );
        let log = std::fs::File::create(dir.path().join("satellite.log")).unwrap();
        let child = Command::new(python)
            .args(["-m", "wyoming_satellite", "--debug", "--no-zeroconf"])
            .args(["--name", name, "--uri", &format!("tcp://127.0.0.1:{port}")])
            .args(["--mic-command", &mic, "--mic-command-rate", "16000"])
            .args(["--mic-command-width", "2", "--mic-command-channels", "1"])
            .args(["--snd-command", &speaker, "--snd-command-rate", "22050"])
            .args(["--snd-command-width", "2", "--snd-command-channels", "1"])
            .args(["--event-uri", &sink_uri])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the satellite's python runs");
        let satellite = Self {
            name,
            port,
            child,
            dir,
            events,
            sink,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "{name} never listened");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        satellite
    }

    fn uri(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// Signals the satellite's process (`STOP`, `CONT`).
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal}");
    }

    /// Events until one of type `kind` (returned last), within `limit`.
    async fn until(&mut self, kind: &str, limit: Duration) -> Vec<Event> {
        let mut seen = Vec::new();
        let found = tokio::time::timeout(limit, async {
            while let Some(event) = self.events.recv().await {
                let done = event.kind() == kind;
                seen.push(event);
                if done {
                    return true;
                }
            }
            false
        })
        .await;
        if found != Ok(true) {
            let kinds: Vec<&str> = seen.iter().map(Event::kind).collect();
            panic!("{}: no `{kind}` within {limit:?}; saw {kinds:?}", self.name);
        }
        seen
    }

    /// Waits until the satellite is told to run (`run-satellite`) and the
    /// run it then asks for is listening (`transcribe`).
    async fn await_run(&mut self) {
        self.until("run-satellite", Duration::from_secs(20)).await;
        let seen = self.until("transcribe", Duration::from_secs(10)).await;
        // Without a wake word of its own, the satellite starts its runs at
        // `wake`: the orchestrator listens for the command right away.
        let asked = seen.iter().find_map(|e| match e {
            Event::RunPipeline(r) => Some(r),
            _ => None,
        });
        let asked = asked.unwrap_or_else(|| panic!("{}: no run-pipeline: {seen:?}", self.name));
        assert_eq!(asked.start_stage, PipelineStage::Wake);
        assert_eq!(asked.end_stage, PipelineStage::Tts);
    }

    /// Speaks `pcm` into its microphone (at the end of what it is saying).
    fn say(&self, pcm: &[u8]) {
        let staged = self.dir.path().join("say.tmp");
        std::fs::write(&staged, pcm).unwrap();
        std::fs::rename(staged, self.dir.path().join("say.raw")).unwrap();
    }

    fn speaker(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("speaker.raw")).unwrap_or_default()
    }

    /// Says `pcm` to the run that is listening, and follows the run to the
    /// end of the reply's audio and to the speaker.
    async fn command(&mut self, pcm: &[u8]) -> Heard {
        let played_before = self.speaker().len();
        self.say(pcm);
        let mut heard = Heard::default();
        let name = self.name;
        let run = tokio::time::timeout(Duration::from_secs(90), async {
            while let Some(event) = self.events.recv().await {
                if !matches!(event, Event::Ping(_)) {
                    heard.kinds.push(event.kind().to_owned());
                }
                match event {
                    Event::Transcript(t) => heard.transcript = t.text,
                    Event::Synthesize(s) => heard.reply = s.text,
                    Event::AudioStop(_) => return,
                    Event::Error(e) => panic!("{name}: error from the pipeline: {e:?} {heard:?}"),
                    _ => {}
                }
            }
        })
        .await;
        assert!(run.is_ok(), "{name}: no reply within 90 s: {heard:?}");
        // The satellite plays what it got; its speaker has it moments later.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let speaker = self.speaker();
            if speaker.len() >= played_before + 16_000 || Instant::now() > deadline {
                heard.speaker = speaker[played_before.min(speaker.len())..].to_vec();
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        heard.kinds.dedup();
        heard
    }
}

/// The loudest sample of 16-bit PCM.
fn peak(pcm: &[u8]) -> i32 {
    pcm.chunks_exact(2)
        .map(|b| i32::from(i16::from_le_bytes([b[0], b[1]])).abs())
        .max()
        .unwrap_or(0)
}

/// The orchestrator's HTTP API.
struct Orchestrator {
    http: reqwest::Client,
    base: String,
}

impl Orchestrator {
    async fn satellites(&self) -> Vec<String> {
        let list: Value = self
            .http
            .get(format!("{}/v1/satellites", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        serde_json::from_value(list["satellites"].clone()).unwrap()
    }

    /// Waits until satellite `name` is connected (`true`) or not.
    async fn await_connected(&self, name: &str, connected: bool, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let names = self.satellites().await;
            if names.iter().any(|n| n == name) == connected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} still {} after {limit:?}: {names:?}",
                if connected { "absent" } else { "present" }
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn post(&self, path: &str) -> reqwest::StatusCode {
        self.http
            .post(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .status()
    }

    async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Tells `satellite` to run (`run-satellite`): it asks for a new
    /// pipeline run, which is listening once the satellite hears
    /// `transcribe`.
    async fn resume(&self, satellite: &mut Satellite) {
        // What it heard before (the run started when it was dialled, say)
        // is not about this run.
        while satellite.events.try_recv().is_ok() {}
        let path = format!("/v1/satellites/{}/resume", satellite.name);
        assert_eq!(self.post(&path).await, reqwest::StatusCode::NO_CONTENT);
        satellite.await_run().await;
    }
}

/// The inbound satellite: runs tests/interop/satellite_client.py with
/// `pcm` and returns what it printed.
fn inbound_command(wyoming_port: u16, pcm: &[u8]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let audio = dir.path().join("command.raw");
    std::fs::write(&audio, pcm).unwrap();
    let out = Command::new(common::python())
        .arg(repo_root().join("tests/interop/satellite_client.py"))
        .args(["--uri", &format!("tcp://127.0.0.1:{wyoming_port}")])
        .arg("--audio")
        .arg(&audio)
        .args(["--timeout", "90"])
        .output()
        .unwrap();
    let result: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "satellite_client.py: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(out.status.success(), "inbound satellite: {result}");
    result
}

async fn call(ha: &HomeAssistant, token: &str, service: &str, entity: &str) {
    let (domain, _) = entity.split_once('.').unwrap();
    ha.command(
        token,
        json!({"type": "call_service", "domain": domain, "service": service,
               "target": {"entity_id": entity}}),
    )
    .await;
}

#[test]
fn real_satellites_outbound_and_inbound_at_once() {
    let turn_on_kitchen = espeak("Turn on the kitchen lights.");
    let kitchen_to_30 = espeak("Set the kitchen lights to 30 percent.");
    let turn_on_ceiling = espeak("Turn on the ceiling lights.");
    let open_garage = espeak("Open the garage door.");
    let python = satellite_python();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let data = tempfile::tempdir().unwrap();
        let (mut ha, token, _ha_dir) = home_assistant().await;

        let mut kitchen = Satellite::start("kitchen", &python).await;
        let mut hall = Satellite::start("hall", &python).await;
        let satellites = format!(
            r#"[{{name = "kitchen", uri = "{}"}}, {{name = "hall", uri = "{}"}}]"#,
            kitchen.uri(),
            hall.uri()
        );
        let athena = Athena::start_with(
            &ha.url(),
            &token,
            data.path(),
            &[
                ("ATHENA__ORCHESTRATOR__SATELLITES", &satellites),
                // Three commands at once on two shared cores: whisper.cpp's
                // and Piper's threads slow down a lot when something else
                // is busy too.
                ("ATHENA__ORCHESTRATOR__TIMEOUTS__TRANSCRIPT_SECS", "60"),
                ("ATHENA__ORCHESTRATOR__TIMEOUTS__SPEECH_SECS", "60"),
                // Far longer than the test waits for the process to exit
                // on SIGTERM: it exits because every part (the outbound
                // connections too) stopped, not because time ran out.
                ("ATHENA__SHUTDOWN__GRACE_PERIOD_SECS", "600"),
            ],
        );
        let orchestrator = Orchestrator {
            http: reqwest::Client::new(),
            base: format!("http://127.0.0.1:{}", athena.orchestrator),
        };

        // The orchestrator dialled both and told them to run (as Home
        // Assistant does), and each asked for a run.
        kitchen.await_run().await;
        hall.await_run().await;
        orchestrator
            .await_connected("kitchen", true, Duration::from_secs(30))
            .await;
        orchestrator
            .await_connected("hall", true, Duration::from_secs(30))
            .await;
        let metrics = orchestrator.metrics().await;
        for name in ["kitchen", "hall"] {
            assert!(
                metrics.contains(&format!(
                    "orchestrator_satellite_connected{{satellite=\"{name}\"}} 1"
                )),
                "{metrics}"
            );
        }

        // Paused, the satellite is told so (wyoming-satellite 1.0.0 streams
        // on regardless) and stays connected; resumed, it starts a run, and
        // its command turns on the light and is answered out loud.
        call(&ha, &token, "turn_off", "light.kitchen_lights").await;
        assert_eq!(
            orchestrator.post("/v1/satellites/kitchen/pause").await,
            reqwest::StatusCode::NO_CONTENT
        );
        kitchen
            .until("pause-satellite", Duration::from_secs(10))
            .await;
        assert!(orchestrator.satellites().await.contains(&"kitchen".into()));
        orchestrator.resume(&mut kitchen).await;
        let heard = kitchen.command(&turn_on_kitchen).await;
        assert!(
            heard.transcript.to_lowercase().contains("kitchen light"),
            "{heard:?}"
        );
        assert_eq!(
            heard.kinds,
            [
                "voice-started",
                "voice-stopped",
                "transcript",
                "streaming-started",
                "synthesize",
                "audio-start",
                "audio-stop"
            ],
            "{heard:?}"
        );
        assert!(!heard.reply.is_empty(), "{heard:?}");
        assert!(heard.speaker.len() >= 16_000, "{heard:?}");
        assert!(peak(&heard.speaker) > 1000, "the reply is silent");
        assert_eq!(
            ha.state(&token, "light.kitchen_lights").await["state"],
            "on"
        );

        // Two outbound satellites and an inbound one at once, each with
        // its own command.
        call(&ha, &token, "turn_off", "light.ceiling_lights").await;
        call(&ha, &token, "close_cover", "cover.garage_door").await;
        assert_eq!(
            ha.state(&token, "cover.garage_door").await["state"],
            "closed"
        );
        orchestrator.resume(&mut kitchen).await;
        orchestrator.resume(&mut hall).await;
        let wyoming_port = athena.wyoming;
        let inbound =
            tokio::task::spawn_blocking(move || inbound_command(wyoming_port, &open_garage));
        let (in_kitchen, in_hall) = tokio::join!(
            kitchen.command(&kitchen_to_30),
            hall.command(&turn_on_ceiling)
        );
        let inbound = inbound.await.unwrap();
        assert!(
            in_kitchen
                .transcript
                .to_lowercase()
                .contains("kitchen light")
                && in_kitchen.transcript.contains("30"),
            "{in_kitchen:?}"
        );
        assert!(
            in_hall.transcript.to_lowercase().contains("ceiling light"),
            "{in_hall:?}"
        );
        let inbound_transcript = inbound["transcript"].as_str().unwrap().to_lowercase();
        assert!(inbound_transcript.contains("garage door"), "{inbound}");
        for heard in [&in_kitchen, &in_hall] {
            assert!(heard.speaker.len() >= 16_000, "{heard:?}");
        }
        assert!(
            inbound["audio_bytes"].as_u64().unwrap() > 16_000,
            "{inbound}"
        );
        let kitchen_light = ha.state(&token, "light.kitchen_lights").await;
        let brightness = kitchen_light["attributes"]["brightness"].as_f64().unwrap();
        assert!(
            (brightness / 255.0 * 100.0 - 30.0).abs() < 1.5,
            "{kitchen_light}"
        );
        assert_eq!(
            ha.state(&token, "light.ceiling_lights").await["state"],
            "on"
        );
        assert_eq!(
            ha.state(&token, "cover.garage_door").await["state"],
            "open",
            "{inbound}"
        );

        // A satellite that goes silent (stopped, its socket still open) is
        // given up after 5 s without a word; once it is back, it is dialled
        // again and works as before.
        hall.signal("STOP");
        orchestrator
            .await_connected("hall", false, Duration::from_secs(20))
            .await;
        assert!(
            orchestrator
                .metrics()
                .await
                .contains("orchestrator_satellite_connected{satellite=\"hall\"} 0")
        );
        call(&ha, &token, "turn_off", "light.kitchen_lights").await;
        hall.signal("CONT");
        hall.await_run().await;
        orchestrator
            .await_connected("hall", true, Duration::from_secs(10))
            .await;
        let heard = hall.command(&turn_on_kitchen).await;
        assert!(
            heard.transcript.to_lowercase().contains("kitchen light"),
            "{heard:?}"
        );
        assert_eq!(
            ha.state(&token, "light.kitchen_lights").await["state"],
            "on"
        );
        let metrics = orchestrator.metrics().await;
        let connections = metrics
            .lines()
            .find(|line| {
                line.starts_with("orchestrator_satellite_connection_attempts_total{")
                    && line.contains("satellite=\"hall\"")
                    && line.contains("outcome=\"connected\"")
            })
            .and_then(|line| line.rsplit(' ').next()?.parse::<f64>().ok());
        assert!(connections >= Some(2.0), "{metrics}");

        // Shutdown ends the outbound connections with the rest.
        let mut athena = athena;
        let exit = tokio::task::spawn_blocking(move || athena.terminate(Duration::from_secs(60)))
            .await
            .unwrap();
        assert!(exit.success(), "{exit:?}");
        ha.stop().await;
    });
}
