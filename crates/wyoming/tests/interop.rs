//! Interoperability with the reference implementation, the Python `wyoming` package.
//!
//! Each test runs `tests/interop/wyoming_peer.py` (repository root) with the
//! interpreter named by `ATHENA_PYTHON`, the venv that `scripts/python-env.sh`
//! prepares with the pinned package:
//!
//! - the reference client sends every event type through a Rust echo server (TCP and Unix);
//! - a Rust client sends every [`Event`] variant through the reference echo server;
//! - the reference sends malformed frames to a Rust server with small limits.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use wyoming::event::{
    AudioChunk, AudioStart, AudioStop, Describe, Detect, Detection, Entity, Error, Handled,
    HandledChunk, HandledStart, HandledStop, Intent, IntentsStart, IntentsStop, NotDetected,
    NotHandled, NotRecognized, PauseSatellite, Ping, PipelineStage, Played, Pong, Recognize,
    RunPipeline, RunSatellite, SatelliteConnected, SatelliteDisconnected, SelectProgram,
    StreamingStarted, StreamingStopped, Synthesize, SynthesizeChunk, SynthesizeStart,
    SynthesizeStop, SynthesizeStopped, SynthesizeVoice, TimerCancelled, TimerFinished,
    TimerStarted, TimerUpdated, Transcribe, Transcript, TranscriptChunk, TranscriptStart,
    TranscriptStop, UserEvent, VoiceStarted, VoiceStopped,
};
use wyoming::info::{
    Artifact, AsrModel, AsrProgram, Attribution, HandleProgram, IntentProgram, LanguageModel,
    MicProgram, Satellite, SndProgram, TtsProgram, TtsVoice, TtsVoiceSpeaker, WakeModel,
    WakeProgram,
};
use wyoming::{
    AudioFormat, Connection, ConnectionConfig, ConnectionError, Data, Endpoint, Event, Frame,
    Handler, Info, Limits, Server, ServerConfig, connect,
};

/// How long a Python peer may take, start-up included, on a loaded 2-core machine.
const PEER_TIMEOUT: Duration = Duration::from_secs(120);

/// How long one echo, or a server's drain, may take.
const ECHO_TIMEOUT: Duration = Duration::from_secs(30);

/// The Python interpreter of the venv with the reference package.
fn python() -> PathBuf {
    let python = std::env::var_os("ATHENA_PYTHON")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| {
            panic!(
                "ATHENA_PYTHON is not set. These tests run the reference Python `wyoming` \
             package: run `scripts/python-env.sh` and set ATHENA_PYTHON to the interpreter \
             it prints, e.g. `ATHENA_PYTHON=\"$(scripts/python-env.sh | tail -n 1)\" \
             cargo test -p wyoming`, or run the project's test script, which does both."
            )
        });
    let python = PathBuf::from(python);
    assert!(
        python.exists(),
        "ATHENA_PYTHON={} does not exist: run `scripts/python-env.sh` again",
        python.display()
    );
    python
}

/// `tests/interop/wyoming_peer.py` at the repository root.
fn peer_script() -> PathBuf {
    let path = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("../../tests/interop/wyoming_peer.py");
    assert!(path.exists(), "{} is missing", path.display());
    path
}

/// Runs the Python peer to completion and returns what it printed.
async fn run_peer(args: &[&str]) -> Output {
    let mut command = Command::new(python());
    command
        .arg(peer_script())
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    tokio::time::timeout(PEER_TIMEOUT, command.output())
        .await
        .unwrap_or_else(|_| panic!("wyoming_peer.py {args:?} did not finish in {PEER_TIMEOUT:?}"))
        .expect("cannot start the Python peer")
}

fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}

/// A Rust server running in this process until stopped (or the test ends).
struct RunningServer {
    addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl RunningServer {
    async fn start<H: Handler>(endpoint: &Endpoint, config: ServerConfig, handler: H) -> Self {
        let server = Server::bind(endpoint, config).await.expect("bind");
        let addr = server.local_addr();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(server.serve(Arc::new(handler), shutdown.clone()));
        Self {
            addr,
            shutdown,
            task,
        }
    }

    fn port(&self) -> u16 {
        self.addr.expect("a TCP server").port()
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(ECHO_TIMEOUT, self.task)
            .await
            .expect("server did not drain")
            .expect("server task panicked");
    }
}

/// Sends every frame back after a trip through the typed [`Event`].
struct EchoHandler;

impl Handler for EchoHandler {
    async fn handle(&self, conn: &mut Connection) -> Result<(), ConnectionError> {
        while let Some(frame) = conn.reader.next_frame().await? {
            let event = Event::try_from(frame)?;
            conn.writer.send_frame(&Frame::from(event)).await?;
        }
        Ok(())
    }
}

/// Answers `ping` with `pong`; invalid events end the connection with an error.
struct PingHandler;

impl Handler for PingHandler {
    async fn handle(&self, conn: &mut Connection) -> Result<(), ConnectionError> {
        while let Some(event) = conn.next_event().await? {
            if let Event::Ping(ping) = event {
                let pong = Pong {
                    text: ping.text,
                    extra: Data::new(),
                };
                conn.send(pong).await?;
            }
        }
        Ok(())
    }
}

#[tokio::test]
async fn reference_client_round_trips_every_event_through_rust_over_tcp() {
    let endpoint: Endpoint = "tcp://127.0.0.1:0".parse().unwrap();
    let server = RunningServer::start(&endpoint, ServerConfig::default(), EchoHandler).await;
    let uri = format!("tcp://127.0.0.1:{}", server.port());

    let output = run_peer(&["client", "--uri", &uri]).await;
    assert_success(&output, "wyoming_peer.py client over TCP");
    server.stop().await;
}

#[tokio::test]
async fn reference_client_round_trips_every_event_through_rust_over_unix() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = Endpoint::Unix(dir.path().join("echo.sock"));
    let server = RunningServer::start(&endpoint, ServerConfig::default(), EchoHandler).await;

    let output = run_peer(&["client", "--uri", &endpoint.to_string()]).await;
    assert_success(&output, "wyoming_peer.py client over a Unix socket");
    server.stop().await;
}

/// The reference echo server, killed when dropped (the test failing included).
struct ReferenceEchoServer {
    child: Child,
    port: u16,
}

impl ReferenceEchoServer {
    async fn start() -> Self {
        let mut child = Command::new(python())
            .arg(peer_script())
            .args([
                "echo-server",
                "--uri",
                "tcp://127.0.0.1:0",
                "--until-stdin-closes",
            ])
            // Our end of stdin closes with this process: the peer exits even if we
            // are killed before the guard runs.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("cannot start the Python peer");
        let stdout = child.stdout.take().unwrap();
        let mut guard = Self { child, port: 0 };
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(PEER_TIMEOUT, lines.next_line())
            .await
            .expect("the reference echo server did not report its port")
            .expect("reading the reference echo server's output")
            .expect("the reference echo server exited before listening");
        guard.port = line
            .strip_prefix("PORT ")
            .and_then(|port| port.trim().parse().ok())
            .unwrap_or_else(|| panic!("expected `PORT <n>`, got {line:?}"));
        guard
    }
}

impl Drop for ReferenceEchoServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn data(value: Value) -> Data {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn artifact(name: &str) -> Artifact {
    Artifact {
        name: name.into(),
        attribution: Attribution {
            name: "Athena Team".into(),
            url: "https://example.org/athena".into(),
        },
        installed: true,
        description: None,
        version: None,
    }
}

fn described(name: &str, description: &str, version: &str) -> Artifact {
    Artifact {
        description: Some(description.into()),
        version: Some(version.into()),
        ..artifact(name)
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// An `info` with one program of every kind, and a satellite.
fn sample_info() -> Info {
    Info {
        asr: vec![AsrProgram {
            artifact: described("athena-stt", "Speech to text", "1.2.3"),
            models: vec![
                AsrModel {
                    artifact: artifact("tiny.en"),
                    languages: strings(&["en"]),
                    extra: Data::new(),
                },
                AsrModel {
                    artifact: described("base", "Multilingual", "2"),
                    languages: strings(&["en", "de", "fr"]),
                    extra: Data::new(),
                },
            ],
            supports_transcript_streaming: true,
            requires_external_vad: false,
            // Fields the reference knows and this crate does not: they travel in `extra`.
            extra: data(json!({
                "prefers_auto_gain_enabled": false,
                "prefers_noise_reduction_enabled": true,
            })),
        }],
        tts: vec![TtsProgram {
            artifact: described("athena-tts", "Text to speech", "0.1"),
            voices: vec![
                TtsVoice {
                    artifact: artifact("en_GB-vctk"),
                    languages: strings(&["en_GB"]),
                    speakers: Some(vec![
                        TtsVoiceSpeaker {
                            name: "p225".into(),
                        },
                        TtsVoiceSpeaker {
                            name: "p226".into(),
                        },
                    ]),
                    extra: Data::new(),
                },
                TtsVoice {
                    artifact: artifact("de_DE-thorsten"),
                    languages: strings(&["de_DE"]),
                    speakers: None,
                    extra: Data::new(),
                },
            ],
            supports_synthesize_streaming: true,
            extra: Data::new(),
        }],
        handle: vec![HandleProgram {
            artifact: artifact("athena-llm"),
            models: vec![LanguageModel {
                artifact: artifact("qwen"),
                languages: strings(&["en", "de"]),
                extra: Data::new(),
            }],
            supports_handled_streaming: true,
            supports_home_control: true,
            extra: Data::new(),
        }],
        intent: vec![IntentProgram {
            artifact: artifact("athena-intents"),
            models: vec![LanguageModel {
                artifact: artifact("rules"),
                languages: strings(&["en"]),
                extra: Data::new(),
            }],
            extra: Data::new(),
        }],
        wake: vec![WakeProgram {
            artifact: artifact("athena-wake"),
            models: vec![
                WakeModel {
                    artifact: artifact("hey_athena"),
                    languages: strings(&["en"]),
                    phrase: Some("hey Athena".into()),
                    extra: Data::new(),
                },
                WakeModel {
                    artifact: artifact("okay_nabu"),
                    languages: Vec::new(),
                    phrase: None,
                    extra: Data::new(),
                },
            ],
            extra: Data::new(),
        }],
        mic: vec![MicProgram {
            artifact: artifact("mic"),
            mic_format: AudioFormat::SPEECH,
            extra: Data::new(),
        }],
        snd: vec![SndProgram {
            artifact: artifact("snd"),
            snd_format: AudioFormat {
                rate: 22050,
                width: 2,
                channels: 2,
            },
            extra: Data::new(),
        }],
        satellite: Some(Satellite {
            artifact: described("kitchen-satellite", "By the fridge", "3"),
            area: Some("Kitchen".into()),
            has_vad: Some(true),
            active_wake_words: Some(strings(&["hey_athena"])),
            max_active_wake_words: Some(2),
            supports_trigger: Some(true),
            extra: Data::new(),
        }),
        extra: Data::new(),
    }
}

/// 16-bit little-endian mono PCM of a 440 Hz tone, 0.1 s at 16 kHz.
fn pcm_sine() -> Bytes {
    (0..1600)
        .flat_map(|i| {
            let phase = 2.0 * std::f64::consts::PI * 440.0 * f64::from(i) / 16_000.0;
            ((12_000.0 * phase.sin()) as i16).to_le_bytes()
        })
        .collect()
}

/// One event of every variant, with the fields the reference keeps filled in.
/// (The reference drops fields it does not know, so `extra` stays empty.)
fn sample_events() -> Vec<Event> {
    let context = data(json!({
        "conversation_id": "c-42",
        "turn": 3,
        "nested": {"list": [1, -2, 2.5, null, true, "é ☃ 🦉"], "empty": {}},
    }));
    let ctx = || Some(context.clone());
    let none = Data::new;
    let audio = pcm_sine();
    vec![
        AudioStart {
            format: AudioFormat::SPEECH,
            timestamp: Some(0),
            extra: none(),
        }
        .into(),
        AudioChunk {
            format: AudioFormat::SPEECH,
            timestamp: Some(100),
            audio: audio.clone(),
            extra: none(),
        }
        .into(),
        AudioChunk {
            format: AudioFormat {
                rate: 48_000,
                width: 4,
                channels: 2,
            },
            timestamp: None,
            audio: audio.slice(..1024),
            extra: none(),
        }
        .into(),
        AudioStop {
            timestamp: Some(1_700_000_000_000_000_000),
            extra: none(),
        }
        .into(),
        Describe::default().into(),
        sample_info().into(),
        Info::default().into(),
        SelectProgram {
            name: "athena-stt".into(),
            extra: none(),
        }
        .into(),
        Transcribe {
            name: Some("tiny.en".into()),
            language: Some("en".into()),
            context: ctx(),
            vad_sensitivity: Some("relaxed".into()),
            transcript_names: Some(strings(&["Living Room Lamp", "Ørsted"])),
            transcript_terms: Some(strings(&["thermostat"])),
            extra: none(),
        }
        .into(),
        Transcribe::default().into(),
        Transcript {
            text: "Turn on the lamp.\nThanks! \"quoted\" \\ é".into(),
            language: Some("en".into()),
            context: ctx(),
            extra: none(),
        }
        .into(),
        TranscriptStart {
            language: Some("en".into()),
            context: ctx(),
            extra: none(),
        }
        .into(),
        TranscriptChunk {
            text: "Turn on".into(),
            extra: none(),
        }
        .into(),
        TranscriptStop::default().into(),
        Synthesize {
            text: "<speak>Hello</speak>".into(),
            // The reference keeps `language` only when there is no `name`.
            voice: Some(SynthesizeVoice {
                name: Some("en_GB-vctk".into()),
                speaker: Some("p225".into()),
                ..SynthesizeVoice::default()
            }),
            text_format: Some("ssml".into()),
            context: ctx(),
            extra: none(),
        }
        .into(),
        Synthesize {
            text: "Hallo".into(),
            voice: Some(SynthesizeVoice {
                language: Some("de_DE".into()),
                ..SynthesizeVoice::default()
            }),
            ..Synthesize::default()
        }
        .into(),
        SynthesizeStart {
            voice: Some(SynthesizeVoice {
                name: Some("en_GB-vctk".into()),
                speaker: Some("p226".into()),
                ..SynthesizeVoice::default()
            }),
            text_format: Some("text".into()),
            context: ctx(),
            extra: none(),
        }
        .into(),
        SynthesizeChunk {
            text: "Hello, ".into(),
            extra: none(),
        }
        .into(),
        SynthesizeStop::default().into(),
        SynthesizeStopped::default().into(),
        Detect {
            names: Some(strings(&["hey_athena", "okay_nabu"])),
            context: ctx(),
            extra: none(),
        }
        .into(),
        Detection {
            name: Some("hey_athena".into()),
            timestamp: Some(1234),
            speaker: Some("alice".into()),
            context: ctx(),
            extra: none(),
        }
        .into(),
        NotDetected {
            context: ctx(),
            extra: none(),
        }
        .into(),
        VoiceStarted {
            timestamp: Some(250),
            extra: none(),
        }
        .into(),
        VoiceStopped {
            timestamp: Some(1750),
            extra: none(),
        }
        .into(),
        RunPipeline {
            start_stage: PipelineStage::Wake,
            end_stage: PipelineStage::Tts,
            wake_word_name: Some("hey_athena".into()),
            wake_word_names: Some(strings(&["hey_athena", "okay_nabu"])),
            announce_text: Some("Dinner is ready".into()),
            restart_on_end: true,
            extra: none(),
        }
        .into(),
        RunPipeline {
            start_stage: PipelineStage::Asr,
            end_stage: PipelineStage::Handle,
            wake_word_name: None,
            wake_word_names: None,
            announce_text: None,
            restart_on_end: false,
            extra: none(),
        }
        .into(),
        RunSatellite::default().into(),
        PauseSatellite::default().into(),
        SatelliteConnected::default().into(),
        SatelliteDisconnected::default().into(),
        StreamingStarted::default().into(),
        StreamingStopped::default().into(),
        Played::default().into(),
        Recognize {
            text: "turn on the kitchen light".into(),
            context: ctx(),
            extra: none(),
        }
        .into(),
        Intent {
            name: "HassTurnOn".into(),
            entities: vec![
                Entity {
                    name: "area".into(),
                    value: json!("kitchen"),
                },
                Entity {
                    name: "brightness".into(),
                    value: json!(50),
                },
                Entity {
                    name: "color".into(),
                    value: json!([255, 128.5, 0]),
                },
                Entity {
                    name: "options".into(),
                    value: json!({"transition": 2, "flash": false}),
                },
                Entity {
                    name: "nothing".into(),
                    value: Value::Null,
                },
            ],
            text: Some("Turned on the light".into()),
            context: ctx(),
            extra: none(),
        }
        .into(),
        Intent {
            name: "HassNevermind".into(),
            ..Intent::default()
        }
        .into(),
        NotRecognized {
            text: Some("Sorry, I did not understand".into()),
            context: ctx(),
            extra: none(),
        }
        .into(),
        IntentsStart {
            context: ctx(),
            extra: none(),
        }
        .into(),
        IntentsStop {
            context: ctx(),
            extra: none(),
        }
        .into(),
        Handled {
            text: Some("The light is on.".into()),
            context: ctx(),
            extra: none(),
        }
        .into(),
        NotHandled {
            text: Some("I cannot do that.".into()),
            context: ctx(),
            extra: none(),
        }
        .into(),
        HandledStart {
            context: ctx(),
            extra: none(),
        }
        .into(),
        HandledChunk {
            text: "The light ".into(),
            extra: none(),
        }
        .into(),
        HandledStop::default().into(),
        TimerStarted {
            id: "t1".into(),
            total_seconds: 5430,
            name: Some("pasta".into()),
            start_hours: Some(1),
            start_minutes: Some(30),
            start_seconds: Some(30),
            extra: none(),
        }
        .into(),
        TimerUpdated {
            id: "t1".into(),
            is_active: false,
            total_seconds: 600,
            extra: none(),
        }
        .into(),
        TimerCancelled {
            id: "t1".into(),
            extra: none(),
        }
        .into(),
        TimerFinished {
            id: "t2".into(),
            extra: none(),
        }
        .into(),
        Error::new("oops", "Something went wrong").into(),
        Error {
            text: "No code".into(),
            ..Error::default()
        }
        .into(),
        Ping {
            text: Some("ping-1".into()),
            extra: none(),
        }
        .into(),
        Ping::default().into(),
        Pong {
            text: Some("ping-1".into()),
            extra: none(),
        }
        .into(),
        UserEvent {
            name: "athena.mode".into(),
            data: Some(data(json!({"mode": "night", "level": 0.25}))),
            context: ctx(),
            extra: none(),
        }
        .into(),
        UserEvent {
            name: "bare".into(),
            ..UserEvent::default()
        }
        .into(),
        Event::Unknown(Frame {
            kind: "x-athena-from-the-future".into(),
            data: data(
                json!({"new_field": [1, "two", {"three": 3.0}], "flag": true, "nothing": null}),
            ),
            payload: (0..=255u8).collect(),
        }),
    ]
}

/// Which variant an event is. The match has no wildcard, so a new variant does not
/// compile until it is listed here, and then the coverage check asks for a sample.
fn variant(event: &Event) -> usize {
    match event {
        Event::AudioStart(_) => 0,
        Event::AudioChunk(_) => 1,
        Event::AudioStop(_) => 2,
        Event::Describe(_) => 3,
        Event::Info(_) => 4,
        Event::SelectProgram(_) => 5,
        Event::Transcribe(_) => 6,
        Event::Transcript(_) => 7,
        Event::TranscriptStart(_) => 8,
        Event::TranscriptChunk(_) => 9,
        Event::TranscriptStop(_) => 10,
        Event::Synthesize(_) => 11,
        Event::SynthesizeStart(_) => 12,
        Event::SynthesizeChunk(_) => 13,
        Event::SynthesizeStop(_) => 14,
        Event::SynthesizeStopped(_) => 15,
        Event::Detect(_) => 16,
        Event::Detection(_) => 17,
        Event::NotDetected(_) => 18,
        Event::VoiceStarted(_) => 19,
        Event::VoiceStopped(_) => 20,
        Event::RunPipeline(_) => 21,
        Event::RunSatellite(_) => 22,
        Event::PauseSatellite(_) => 23,
        Event::SatelliteConnected(_) => 24,
        Event::SatelliteDisconnected(_) => 25,
        Event::StreamingStarted(_) => 26,
        Event::StreamingStopped(_) => 27,
        Event::Played(_) => 28,
        Event::Recognize(_) => 29,
        Event::Intent(_) => 30,
        Event::NotRecognized(_) => 31,
        Event::IntentsStart(_) => 32,
        Event::IntentsStop(_) => 33,
        Event::Handled(_) => 34,
        Event::NotHandled(_) => 35,
        Event::HandledStart(_) => 36,
        Event::HandledChunk(_) => 37,
        Event::HandledStop(_) => 38,
        Event::TimerStarted(_) => 39,
        Event::TimerUpdated(_) => 40,
        Event::TimerCancelled(_) => 41,
        Event::TimerFinished(_) => 42,
        Event::Error(_) => 43,
        Event::Ping(_) => 44,
        Event::Pong(_) => 45,
        Event::UserEvent(_) => 46,
        Event::Unknown(_) => 47,
    }
}
const VARIANTS: usize = 48;

#[test]
fn samples_cover_every_variant() {
    let mut seen = [false; VARIANTS];
    for event in sample_events() {
        seen[variant(&event)] = true;
    }
    let missing: Vec<usize> = (0..VARIANTS).filter(|&i| !seen[i]).collect();
    assert!(missing.is_empty(), "variants without a sample: {missing:?}");
}

#[tokio::test]
async fn rust_client_round_trips_every_event_through_the_reference() {
    let peer = ReferenceEchoServer::start().await;
    let endpoint = Endpoint::Tcp(format!("127.0.0.1:{}", peer.port));
    let mut conn = connect(&endpoint, &ConnectionConfig::default())
        .await
        .expect("connect");

    let events = sample_events();
    let mut mismatches = Vec::new();
    for (i, sent) in events.iter().enumerate() {
        conn.send(sent.clone()).await.expect("send");
        let echo = tokio::time::timeout(ECHO_TIMEOUT, conn.next_event())
            .await
            .unwrap_or_else(|_| panic!("no echo of #{i} {} in {ECHO_TIMEOUT:?}", sent.kind()))
            .unwrap_or_else(|e| panic!("echo of #{i} {} is invalid: {e}", sent.kind()))
            .unwrap_or_else(|| {
                panic!(
                    "connection closed instead of the echo of #{i} {}",
                    sent.kind()
                )
            });
        if echo != *sent {
            mismatches.push(format!(
                "#{i} {}\n  sent: {sent:?}\n  back: {echo:?}",
                sent.kind()
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} events changed on their way through the reference:\n{}",
        mismatches.len(),
        events.len(),
        mismatches.join("\n")
    );
    drop(peer);
}

#[tokio::test]
async fn rust_server_refuses_malformed_frames_from_the_reference() {
    let limits = Limits {
        max_header: 4 << 10,
        max_data: 64 << 10,
        max_payload: 64 << 10,
    };
    let config = ServerConfig {
        connection: ConnectionConfig {
            limits,
            ..ConnectionConfig::default()
        },
        ..ServerConfig::default()
    };
    let endpoint: Endpoint = "tcp://127.0.0.1:0".parse().unwrap();
    let server = RunningServer::start(&endpoint, config, PingHandler).await;

    let port = server.port().to_string();
    let max_header = limits.max_header.to_string();
    let max_payload = limits.max_payload.to_string();
    let output = run_peer(&[
        "malformed",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--max-header",
        &max_header,
        "--max-payload",
        &max_payload,
    ])
    .await;
    assert_success(&output, "wyoming_peer.py malformed");
    server.stop().await;
}
