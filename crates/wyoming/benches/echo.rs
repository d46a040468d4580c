//! Wyoming server overhead: Athena's `wyoming` crate against the reference
//! Python package, side by side on the same machine in the same run.
//!
//! Each server runs in its own process on one thread (Python's asyncio is
//! single-threaded; the Rust server gets a current-thread runtime) and does
//! the same work per event: parse the frame, build the typed event, serialise
//! it again, send it back. One client (this process) drives both with audio
//! chunks of 2048 bytes (64 ms of 16 kHz 16-bit mono, what satellites send).
//!
//! Run: `scripts/bench-wyoming.sh` (needs ATHENA_PYTHON, as the tests do).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use wyoming::event::AudioChunk;
use wyoming::{
    AudioFormat, Connection, ConnectionConfig, ConnectionError, Endpoint, Event, Frame, Handler,
    Server, ServerConfig,
};

const ROUND_TRIPS: usize = 3_000;
const PIPELINED: usize = 30_000;
const PAYLOAD: usize = 2_048;

/// The echo the Rust server runs: typed parse, serialise, send back.
struct Echo;

impl Handler for Echo {
    async fn handle(&self, conn: &mut Connection) -> Result<(), ConnectionError> {
        while let Some(frame) = conn.reader.next_frame().await? {
            let event = Event::try_from(frame)?;
            conn.writer.send_frame(&Frame::from(event)).await?;
        }
        Ok(())
    }
}

/// Runs as the Rust echo server when spawned with WYOMING_BENCH_SERVE=1.
fn serve() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let endpoint: Endpoint = "tcp://127.0.0.1:0".parse().unwrap();
        let server = Server::bind(&endpoint, ServerConfig::default())
            .await
            .unwrap();
        println!("PORT {}", server.local_addr().unwrap().port());
        server.serve(Arc::new(Echo), CancellationToken::new()).await;
    });
}

struct Peer {
    child: Child,
    port: u16,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(mut cmd: Command) -> Peer {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("cannot start the echo server");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("echo server said {line:?}"));
    Peer { child, port }
}

fn chunk(i: usize) -> Event {
    Event::AudioChunk(AudioChunk {
        format: AudioFormat::SPEECH,
        timestamp: Some(i as i64 * 64),
        audio: Bytes::from(vec![(i % 251) as u8; PAYLOAD]),
        extra: Default::default(),
    })
}

struct Measured {
    median_us: f64,
    p99_us: f64,
    events_per_sec: f64,
}

async fn measure(port: u16) -> Measured {
    let endpoint = Endpoint::Tcp(format!("127.0.0.1:{port}"));
    let config = ConnectionConfig::default();

    // Latency: one event in flight at a time.
    let mut conn = wyoming::connect(&endpoint, &config).await.unwrap();
    for i in 0..200 {
        conn.send(chunk(i)).await.unwrap();
        conn.next_event().await.unwrap().unwrap();
    }
    let mut times = Vec::with_capacity(ROUND_TRIPS);
    for i in 0..ROUND_TRIPS {
        let start = Instant::now();
        conn.send(chunk(i)).await.unwrap();
        let echo = conn.next_event().await.unwrap().unwrap();
        times.push(start.elapsed());
        assert!(matches!(echo, Event::AudioChunk(c) if c.audio.len() == PAYLOAD));
    }
    times.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;

    // Throughput: the client writes as fast as the server takes it.
    let conn = wyoming::connect(&endpoint, &config).await.unwrap();
    let wyoming::Connection {
        mut reader,
        mut writer,
        ..
    } = conn;
    let start = Instant::now();
    let sender = tokio::spawn(async move {
        for i in 0..PIPELINED {
            writer.send(chunk(i)).await.unwrap();
        }
        writer
    });
    for _ in 0..PIPELINED {
        reader.next_event().await.unwrap().unwrap();
    }
    let elapsed = start.elapsed();
    drop(sender.await.unwrap());

    Measured {
        median_us: us(times[times.len() / 2]),
        p99_us: us(times[times.len() * 99 / 100]),
        events_per_sec: PIPELINED as f64 / elapsed.as_secs_f64(),
    }
}

fn main() {
    if std::env::var_os("WYOMING_BENCH_SERVE").is_some() {
        serve();
        return;
    }
    // `cargo bench` passes `--bench`; nothing else to parse.
    let python = std::env::var_os("ATHENA_PYTHON")
        .expect("ATHENA_PYTHON is not set: run scripts/bench-wyoming.sh");
    let peer_script = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("../../tests/interop/wyoming_peer.py");

    let mut py = Command::new(python);
    py.arg(peer_script).args([
        "echo-server",
        "--uri",
        "tcp://127.0.0.1:0",
        "--until-stdin-closes",
    ]);
    let python_server = spawn(py);
    let mut rs = Command::new(std::env::current_exe().unwrap());
    rs.env("WYOMING_BENCH_SERVE", "1");
    let rust_server = spawn(rs);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reference = runtime.block_on(measure(python_server.port));
    let athena = runtime.block_on(measure(rust_server.port));

    println!("Wyoming echo of audio-chunk events ({PAYLOAD}-byte payload), one server thread each");
    println!("| measure | wyoming 1.10.2 (Python) | Athena `wyoming` | ratio |");
    println!("|---|---|---|---|");
    let row = |name: &str, py: f64, rs: f64, unit: &str, lower_is_better: bool| {
        let ratio = if lower_is_better { py / rs } else { rs / py };
        println!("| {name} | {py:.0} {unit} | {rs:.0} {unit} | {ratio:.1}× better |");
    };
    row(
        "round trip, median",
        reference.median_us,
        athena.median_us,
        "µs",
        true,
    );
    row(
        "round trip, p99",
        reference.p99_us,
        athena.p99_us,
        "µs",
        true,
    );
    row(
        "pipelined throughput",
        reference.events_per_sec,
        athena.events_per_sec,
        "events/s",
        false,
    );
}
