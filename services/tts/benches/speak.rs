//! Text-to-speech latency: Athena against piper-tts (in-process) and
//! wyoming-piper (a Wyoming server, as Home Assistant uses it) on the same
//! Piper voice (`en_US-joe-medium`), the same ONNX Runtime (1.32), 2 threads
//! each, in the same run. Time to first audio and real-time factor for a
//! one-sentence and a three-sentence reply; medians of ATHENA_BENCH_RUNS (10)
//! after a warm-up. Both servers are driven by the same Rust client,
//! alternating request by request; no sentence silence on either side.
//!
//! Run: `scripts/bench-tts.sh` (it builds the release binary and the venv).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use athena_api::tts::SynthesisConfig;
use athena_tts::{Config, Synthesizer};
use futures::StreamExt;
use serde_json::Value;
use wyoming::event::{Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop};
use wyoming::{ConnectionConfig, Endpoint, Event};

const TEXTS: [(&str, &str); 2] = [
    (
        "1 sentence",
        "Turn on the kitchen lights and set them to fifty percent.",
    ),
    (
        "3 sentences",
        "The front door is locked. It is twenty one degrees in the living room. Would you like me to turn on the heating?",
    ),
];

/// Between timed requests.
const PAUSE: Duration = Duration::from_millis(300);

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run scripts/bench-tts.sh"))
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Medians of one setting on one text: first audio, total, audio seconds.
#[derive(Debug, Clone, Copy)]
struct Timing {
    first: f64,
    total: f64,
    audio: f64,
}

impl Timing {
    fn of(first: Vec<f64>, total: Vec<f64>, audio: f64) -> Self {
        Self {
            first: median(first),
            total: median(total),
            audio,
        }
    }

    fn rtf(&self) -> f64 {
        self.total / self.audio
    }
}

fn synthesizer(first_chunk_frames: usize) -> Arc<Synthesizer> {
    let config = Config {
        sentence_silence: 0.0,
        first_chunk_frames,
        ..Config::default()
    };
    Arc::new(athena_tts::load(&config).unwrap())
}

async fn time_in_process(synth: &Arc<Synthesizer>, text: &str, runs: usize) -> Timing {
    let once = || async {
        let plan = synth.plan(&SynthesisConfig::default()).unwrap();
        let rate = f64::from(plan.format().rate());
        let start = Instant::now();
        let mut speech = synth.speak(plan, futures::stream::iter([Ok(text.to_owned())]).boxed());
        let (mut first, mut bytes) = (None, 0usize);
        while let Some(segment) = speech.next().await {
            first.get_or_insert_with(|| start.elapsed().as_secs_f64());
            bytes += segment.unwrap().audio.len();
        }
        (
            first.unwrap(),
            start.elapsed().as_secs_f64(),
            bytes as f64 / 2.0 / rate,
        )
    };
    once().await;
    let (mut first, mut total, mut audio) = (Vec::new(), Vec::new(), 0.0);
    for _ in 0..runs {
        tokio::time::sleep(PAUSE).await;
        let (f, t, a) = once().await;
        first.push(f);
        total.push(t);
        audio = a;
    }
    Timing::of(first, total, audio)
}

/// One request to a Wyoming tts server: seconds to the first audio chunk,
/// to the end, and seconds of audio.
async fn wyoming_once(uri: &str, text: &str, streaming: bool) -> (f64, f64, f64) {
    let endpoint: Endpoint = uri.parse().unwrap();
    let mut conn = wyoming::connect(&endpoint, &ConnectionConfig::default())
        .await
        .unwrap();
    let start = Instant::now();
    if streaming {
        conn.send(SynthesizeStart::default()).await.unwrap();
        conn.send(SynthesizeChunk {
            text: text.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap();
        conn.send(Synthesize {
            text: text.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap();
        conn.send(SynthesizeStop::default()).await.unwrap();
    } else {
        conn.send(Synthesize {
            text: text.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let (mut first, mut seconds) = (None, 0.0);
    loop {
        match conn.next_event().await.unwrap() {
            Some(Event::AudioChunk(chunk)) => {
                first.get_or_insert_with(|| start.elapsed().as_secs_f64());
                seconds += chunk.audio.len() as f64 / chunk.format.bytes_per_second() as f64;
            }
            Some(Event::AudioStop(_)) if !streaming => break,
            Some(Event::SynthesizeStopped(_)) => break,
            Some(Event::Error(e)) => panic!("{uri}: {e:?}"),
            Some(_) => {}
            None => panic!("{uri} closed the connection"),
        }
    }
    (first.unwrap(), start.elapsed().as_secs_f64(), seconds)
}

/// Alternates requests between the servers; one timing per server.
async fn time_servers(uris: &[&str], text: &str, streaming: bool, runs: usize) -> Vec<Timing> {
    for uri in uris {
        wyoming_once(uri, text, streaming).await;
    }
    let mut samples = vec![(Vec::new(), Vec::new(), 0.0); uris.len()];
    for _ in 0..runs {
        for (uri, s) in uris.iter().zip(&mut samples) {
            // A pause, as between spoken replies: ONNX Runtime's threads
            // spin for a while after a request, and the other server must
            // not pay for that.
            tokio::time::sleep(PAUSE).await;
            let (f, t, a) = wyoming_once(uri, text, streaming).await;
            s.0.push(f);
            s.1.push(t);
            s.2 = a;
        }
    }
    samples
        .into_iter()
        .map(|(f, t, a)| Timing::of(f, t, a))
        .collect()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    athena_runtime::free_local_port().unwrap()
}

/// Waits until a Wyoming server answers `describe` with a loaded voice.
async fn wait_ready(uri: &str) -> f64 {
    let start = Instant::now();
    let endpoint: Endpoint = uri.parse().unwrap();
    while start.elapsed() < Duration::from_secs(120) {
        if let Ok(mut conn) = wyoming::connect(&endpoint, &ConnectionConfig::default()).await {
            conn.send(wyoming::event::Describe::default())
                .await
                .unwrap();
            if let Ok(Some(Event::Info(info))) = conn.next_event().await
                && info.tts.first().is_some_and(|t| t.artifact.installed)
            {
                return start.elapsed().as_secs_f64();
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{uri} never became ready");
}

fn row(name: &str, timings: &[Timing]) {
    print!("| {name} |");
    for t in timings {
        print!(
            " {:.0} ms | {:.0} ms | {:.3} |",
            t.first * 1e3,
            t.total * 1e3,
            t.rtf()
        );
    }
    println!();
}

fn main() {
    let python = env("ATHENA_BENCH_PYTHON");
    let athena = env("ATHENA_BENCH_BIN");
    let runs: usize = std::env::var("ATHENA_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(10);
    let store = athena_models::Store::from_env().unwrap();
    let voice_dir = store.ensure("en_US-joe-medium").unwrap();
    let model = voice_dir.join("en_US-joe-medium.onnx");
    let texts: Vec<&str> = TEXTS.iter().map(|(_, t)| *t).collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();

    // In-process: Athena (pieces of 32 frames, and whole sentences) and piper-tts.
    let (streamed, whole) = runtime.block_on(async {
        let streamed = synthesizer(32);
        let whole = synthesizer(0);
        let mut a = Vec::new();
        let mut b = Vec::new();
        for text in &texts {
            a.push(time_in_process(&streamed, text, runs).await);
            b.push(time_in_process(&whole, text, runs).await);
        }
        (a, b)
    });
    let mut args = vec![
        std::path::PathBuf::from(
            std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
        )
        .join("benches/piper_peer.py")
        .display()
        .to_string(),
        "--model".into(),
        model.display().to_string(),
        "--runs".into(),
        runs.to_string(),
    ];
    for text in &texts {
        args.extend(["--text".into(), (*text).to_owned()]);
    }
    let out = Command::new(&python).args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let peer: Value = serde_json::from_slice(&out.stdout).unwrap();
    let piper: Vec<Timing> = peer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let list = |k: &str| -> Vec<f64> {
                r[k].as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect()
            };
            Timing::of(
                list("first"),
                list("total"),
                r["audio_seconds"].as_f64().unwrap(),
            )
        })
        .collect();

    // Servers, side by side.
    let (athena_port, peer_port, http_port) = (free_port(), free_port(), free_port());
    let _athena = Server(
        Command::new(&athena)
            .args(["serve", "tts"])
            .env(
                "ATHENA__TTS__WYOMING__URI",
                format!("tcp://127.0.0.1:{athena_port}"),
            )
            .env("ATHENA__TTS__HTTP", format!("127.0.0.1:{http_port}"))
            .env("ATHENA__TTS__SENTENCE_SILENCE", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let _peer = Server(
        Command::new(&python)
            .args(["-m", "wyoming_piper", "--uri"])
            .arg(format!("tcp://127.0.0.1:{peer_port}"))
            .args(["--voice", "en_US-joe-medium", "--data-dir"])
            .arg(voice_dir.as_os_str())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let athena_uri = format!("tcp://127.0.0.1:{athena_port}");
    let peer_uri = format!("tcp://127.0.0.1:{peer_port}");
    let uris = [athena_uri.as_str(), peer_uri.as_str()];
    let (plain, streaming) = runtime.block_on(async {
        wait_ready(&athena_uri).await;
        wait_ready(&peer_uri).await;
        let mut plain = vec![Vec::new(); 2];
        let mut streaming = vec![Vec::new(); 2];
        for text in &texts {
            for (i, t) in time_servers(&uris, text, false, runs)
                .await
                .into_iter()
                .enumerate()
            {
                plain[i].push(t);
            }
            for (i, t) in time_servers(&uris, text, true, runs)
                .await
                .into_iter()
                .enumerate()
            {
                streaming[i].push(t);
            }
        }
        (plain, streaming)
    });

    println!(
        "\nTime to first audio, total time and real-time factor (total / audio), \
         en_US-joe-medium, 2 threads, median of {runs}\n"
    );
    print!("| what |");
    for (name, _) in TEXTS {
        print!(" {name}: first audio | total | RTF |");
    }
    println!();
    println!("|---|---|---|---|---|---|---|");
    row("Athena in-process (vocoder in pieces)", &streamed);
    row("Athena in-process (whole sentences)", &whole);
    row("piper-tts 1.8.0 in-process", &piper);
    row("Athena Wyoming `synthesize`", &plain[0]);
    row("wyoming-piper 2.5.2 `synthesize`", &plain[1]);
    row("Athena Wyoming streaming", &streaming[0]);
    row("wyoming-piper 2.5.2 streaming", &streaming[1]);

    println!("\nRatios (Athena / peer; below 1 is faster):\n");
    for (i, (name, _)) in TEXTS.iter().enumerate() {
        println!(
            "- {name}: first audio in-process {:.2}×, Wyoming `synthesize` {:.2}×, Wyoming streaming {:.2}×; RTF in-process {:.2}×, Wyoming {:.2}×",
            streamed[i].first / piper[i].first,
            plain[0][i].first / plain[1][i].first,
            streaming[0][i].first / streaming[1][i].first,
            streamed[i].rtf() / piper[i].rtf(),
            plain[0][i].rtf() / plain[1][i].rtf(),
        );
    }
}
