//! The orchestrator's Wyoming endpoint over real TCP: many clients at once,
//! truthful `info`, bad input answered with `error` while others carry on,
//! and runs whose backends are down or never hear speech ending in `error`
//! within their deadlines.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use athena_orchestrator::Config;
use athena_orchestrator::satellite::SatelliteEndpoint;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use wyoming::event::{Describe, Ping, PipelineStage, RunPipeline};
use wyoming::{ConnectionConfig, Endpoint, Event, Limits, Server, ServerConfig};

struct Running {
    endpoint: Endpoint,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// An endpoint whose backends are all down (nothing listens on their
/// ports), with short deadlines.
fn satellite_endpoint() -> SatelliteEndpoint {
    let down = format!(
        "http://127.0.0.1:{}",
        athena_runtime::free_local_port().unwrap()
    );
    let mut config = Config::default();
    config.stt.url = down.clone();
    config.tts.url = down.clone();
    config.ha_bridge_url = down.clone();
    config.mode_service_url = down;
    config.timeouts.no_speech_secs = 1.0;
    config.timeouts.action_secs = 1.0;
    config.timeouts.speech_secs = 2.0;
    SatelliteEndpoint::new(Arc::new(
        athena_orchestrator::build_pipeline(&config, &Default::default()).unwrap(),
    ))
}

fn run(start_stage: PipelineStage, announce_text: Option<&str>) -> RunPipeline {
    RunPipeline {
        start_stage,
        end_stage: PipelineStage::Tts,
        wake_word_name: None,
        wake_word_names: None,
        announce_text: announce_text.map(str::to_owned),
        restart_on_end: false,
        extra: Default::default(),
    }
}

/// Events until an `error` (returned last), within `limit`.
async fn until_error(c: &mut wyoming::Connection, limit: Duration) -> Vec<Event> {
    let mut seen = Vec::new();
    tokio::time::timeout(limit, async {
        loop {
            let event = c.next_event().await.unwrap().unwrap();
            let done = matches!(event, Event::Error(_));
            seen.push(event);
            if done {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no error within {limit:?}: {seen:?}"));
    seen
}

async fn start(config: ServerConfig) -> Running {
    let server = Server::bind(&"tcp://127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let endpoint = Endpoint::Tcp(server.local_addr().unwrap().to_string());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(server.serve(Arc::new(satellite_endpoint()), shutdown.clone()));
    Running {
        endpoint,
        shutdown,
        task,
    }
}

async fn client(endpoint: &Endpoint) -> wyoming::Connection {
    wyoming::connect(endpoint, &ConnectionConfig::default())
        .await
        .unwrap()
}

fn error_code(event: &Event) -> Option<&str> {
    match event {
        Event::Error(e) => e.code.as_deref(),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_two_hundred_connections_at_once() {
    let server = start(ServerConfig::default()).await;
    let mut conns = Vec::new();
    for _ in 0..200 {
        conns.push(client(&server.endpoint).await);
    }
    // Every connection is open before any is served a second time.
    let answers =
        futures::future::join_all(conns.iter_mut().enumerate().map(|(i, c)| async move {
            c.send(Ping {
                text: Some(i.to_string()),
                ..Ping::default()
            })
            .await
            .unwrap();
            let pong = c.next_event().await.unwrap().unwrap();
            c.send(Describe::default()).await.unwrap();
            let info = c.next_event().await.unwrap().unwrap();
            (i, pong, info)
        }))
        .await;
    for (i, pong, info) in answers {
        assert!(matches!(pong, Event::Pong(p) if p.text == Some(i.to_string())));
        let Event::Info(info) = info else {
            panic!("expected info")
        };
        assert_eq!(info.handle[0].artifact.name, "athena");
    }
    // A drain closes idle connections by itself: the server ends while all
    // 200 clients are still connected, and each of them sees the close.
    server.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), server.task)
        .await
        .expect("the drain must finish with idle clients connected")
        .unwrap();
    for c in &mut conns {
        assert!(matches!(c.next_event().await, Ok(None)));
    }
}

#[tokio::test]
async fn info_describes_the_pipeline() {
    let endpoint = satellite_endpoint();
    let info = endpoint.info();
    assert!(info.asr.is_empty() && info.tts.is_empty() && info.wake.is_empty());
    assert!(info.handle[0].artifact.installed);
    assert!(info.handle[0].supports_home_control);
}

#[tokio::test]
async fn runs_whose_backends_are_down_end_in_errors() {
    let server = start(ServerConfig::default()).await;
    let mut c = client(&server.endpoint).await;

    // An announcement with text to speech down: `synthesize`, then the
    // error, within the speech deadline; pings are answered meanwhile.
    c.send(run(PipelineStage::Tts, Some("Dinner is ready.")))
        .await
        .unwrap();
    c.send(Ping::default()).await.unwrap();
    let seen = until_error(&mut c, Duration::from_secs(10)).await;
    let kinds: Vec<&str> = seen.iter().map(Event::kind).collect();
    assert!(kinds.contains(&"pong"), "{kinds:?}");
    assert!(kinds.contains(&"synthesize"), "{kinds:?}");
    assert_eq!(error_code(seen.last().unwrap()), Some("tts-failed"));

    // Listening to silence: `transcribe`, then no speech within 1 s.
    c.send(run(PipelineStage::Asr, None)).await.unwrap();
    let silence = vec![0u8; 2048];
    for _ in 0..20 {
        c.send(wyoming::event::AudioChunk {
            format: wyoming::AudioFormat::SPEECH,
            timestamp: None,
            audio: silence.clone().into(),
            extra: Default::default(),
        })
        .await
        .unwrap();
    }
    let seen = until_error(&mut c, Duration::from_secs(10)).await;
    assert_eq!(seen[0].kind(), "transcribe");
    assert_eq!(error_code(seen.last().unwrap()), Some("stt-no-speech"));

    // Runs that cannot start where they were asked to.
    c.send(run(PipelineStage::Tts, None)).await.unwrap();
    let seen = until_error(&mut c, Duration::from_secs(5)).await;
    assert_eq!(error_code(seen.last().unwrap()), Some("unsupported-stage"));
    c.send(run(PipelineStage::Intent, None)).await.unwrap();
    let seen = until_error(&mut c, Duration::from_secs(5)).await;
    assert_eq!(error_code(seen.last().unwrap()), Some("unsupported-stage"));
}

#[tokio::test]
async fn unknown_and_invalid_events_get_errors_and_the_connection_stays() {
    let server = start(ServerConfig::default()).await;
    let mut c = client(&server.endpoint).await;

    c.writer
        .send_frame(&wyoming::Frame::new("no-such-event"))
        .await
        .unwrap();
    let answer = c.next_event().await.unwrap().unwrap();
    assert_eq!(error_code(&answer), Some("unsupported-event"));

    c.writer
        .send_frame(&wyoming::Frame::new("audio-chunk"))
        .await
        .unwrap();
    let answer = c.next_event().await.unwrap().unwrap();
    assert_eq!(error_code(&answer), Some("invalid-event"));

    c.send(Ping::default()).await.unwrap();
    assert!(matches!(
        c.next_event().await.unwrap(),
        Some(Event::Pong(_))
    ));
}

/// Sends raw bytes, then reads until the server closes; returns the events seen.
async fn raw_exchange(endpoint: &Endpoint, bytes: &[u8]) -> Vec<Event> {
    let Endpoint::Tcp(addr) = endpoint else {
        unreachable!()
    };
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut received))
        .await
        .expect("server must close the connection")
        .unwrap();
    let mut codec = wyoming::WyomingCodec::default();
    let mut buf = bytes::BytesMut::from(&received[..]);
    let mut events = Vec::new();
    while let Some(frame) = tokio_util::codec::Decoder::decode_eof(&mut codec, &mut buf).unwrap() {
        events.push(Event::try_from(frame).unwrap());
    }
    events
}

#[tokio::test]
async fn malformed_and_oversized_frames_get_an_error_then_close() {
    let limits = Limits {
        max_header: 4096,
        max_data: 4096,
        max_payload: 65536,
    };
    let config = ServerConfig {
        connection: ConnectionConfig {
            limits,
            ..ConnectionConfig::default()
        },
        ..ServerConfig::default()
    };
    let server = start(config).await;
    // A well-behaved client connected before the bad ones must keep working.
    let mut good = client(&server.endpoint).await;

    let long_header = vec![b'{'; 5000];
    let cases: [(&[u8], &str); 5] = [
        (b"this is not json\n", "invalid-header"),
        (b"[\"type\", \"ping\"]\n", "invalid-header"),
        (
            b"{\"type\":\"audio-chunk\",\"payload_length\":1000000000}\n",
            "payload-too-large",
        ),
        (b"{\"type\":\"x\",\"data_length\":5}\n[1,2]", "invalid-data"),
        (&long_header, "header-too-large"),
    ];
    for (bytes, code) in cases {
        let events = raw_exchange(&server.endpoint, bytes).await;
        assert_eq!(events.len(), 1, "{code}: {events:?}");
        assert_eq!(error_code(&events[0]), Some(code));
    }

    good.send(Ping::default()).await.unwrap();
    assert!(matches!(
        good.next_event().await.unwrap(),
        Some(Event::Pong(_))
    ));
}

#[tokio::test]
async fn a_silent_peer_is_timed_out() {
    let config = ServerConfig {
        connection: ConnectionConfig {
            idle_timeout: Some(Duration::from_millis(300)),
            frame_timeout: Duration::from_millis(300),
            ..ConnectionConfig::default()
        },
        ..ServerConfig::default()
    };
    let server = start(config).await;
    // Silent from the start.
    let events = raw_exchange(&server.endpoint, b"").await;
    assert_eq!(error_code(&events[0]), Some("idle-timeout"));
    // Starts a frame and never finishes it.
    let events = raw_exchange(&server.endpoint, b"{\"type\":\"pi").await;
    assert_eq!(error_code(&events[0]), Some("frame-timeout"));
}

#[tokio::test]
async fn connections_over_the_limit_are_told_busy() {
    let config = ServerConfig {
        max_connections: 2,
        ..ServerConfig::default()
    };
    let server = start(config).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = client(&server.endpoint).await;
        c.send(Ping::default()).await.unwrap();
        assert!(matches!(
            c.next_event().await.unwrap(),
            Some(Event::Pong(_))
        ));
        held.push(c);
    }
    let events = raw_exchange(&server.endpoint, b"").await;
    assert_eq!(error_code(&events[0]), Some("busy"));
}
