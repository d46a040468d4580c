//! Load: 20 satellites speaking home commands at once, again and again,
//! for `ATHENA_LOAD_SECS` (default 120) to the whole assistant in one
//! `athena serve` process (stt with whisper tiny.en and tts in process)
//! against a real Home Assistant (its demo). Every command must be carried
//! out and answered, with no error; the process's memory must not grow
//! once warm; the latencies are printed as percentiles.
//! `scripts/load-test.sh` runs it longer on a release build.
//!
//! Needs `ATHENA_HA_PYTHON` (scripts/test.sh sets it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::athena::{Athena, espeak, home_assistant};
use common::satellite::{Pace, Run, speak};
use tokio::sync::Mutex;

/// Satellites speaking at once.
const SATELLITES: usize = 20;

/// Commands and the reply each must get (as the demo names things).
const COMMANDS: [(&str, &str); 4] = [
    ("Turn on the kitchen lights.", "Turned on"),
    ("Turn off the kitchen lights.", "Turned off"),
    ("Turn on the ceiling lights.", "Turned on"),
    ("Set the kitchen lights to 30 percent.", "30"),
];

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn row(label: &str, mut values: Vec<Duration>) -> String {
    values.sort();
    let ms = |d: Duration| d.as_millis();
    format!(
        "| {label} | {} | {} | {} | {} | {} |",
        values.len(),
        ms(percentile(&values, 0.5)),
        ms(percentile(&values, 0.9)),
        ms(percentile(&values, 0.99)),
        ms(*values.last().unwrap()),
    )
}

#[test]
fn twenty_satellites_at_once() {
    let seconds: u64 = std::env::var("ATHENA_LOAD_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let data = tempfile::tempdir().unwrap();
        let (mut ha, token, _ha_dir) = home_assistant().await;
        let athena = Athena::start(&ha.url(), &token, data.path());
        let audio: Arc<Vec<Vec<u8>>> = Arc::new(COMMANDS.iter().map(|(c, _)| espeak(c)).collect());

        // Warm: every command once, alone.
        for (i, (command, reply)) in COMMANDS.iter().enumerate() {
            let run = speak(athena.wyoming, &audio[i], Pace::RealTime).await;
            assert!(run.error.is_none() && run.reply.contains(reply), "{command}: {run:?}");
        }
        let warm_rss = athena.process.rss_kib();
        let warm_cpu = athena.process.cpu_secs();

        let started = Instant::now();
        let end = started + Duration::from_secs(seconds);
        let runs: Arc<Mutex<Vec<(usize, Run)>>> = Arc::default();
        let mut satellites = Vec::new();
        for satellite in 0..SATELLITES {
            let (audio, runs, port) = (audio.clone(), runs.clone(), athena.wyoming);
            satellites.push(tokio::spawn(async move {
                let mut turn = satellite;
                while Instant::now() < end {
                    let command = turn % COMMANDS.len();
                    let run = speak(port, &audio[command], Pace::RealTime).await;
                    runs.lock().await.push((command, run));
                    turn += 1;
                    // A moment before the next command (people pause);
                    // different for each satellite so they drift apart
                    // after speaking all at once at first.
                    let pause = 3_000 + (satellite as u64 * 137 + turn as u64 * 71) % 4_000;
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
            }));
        }
        // Memory, sampled while the load runs.
        let mut rss = Vec::new();
        while Instant::now() < end {
            tokio::time::sleep(Duration::from_secs(5)).await;
            rss.push(athena.process.rss_kib());
        }
        for satellite in satellites {
            satellite.await.unwrap();
        }
        let elapsed = started.elapsed();
        let runs = Arc::try_unwrap(runs).unwrap().into_inner();

        let failures: Vec<_> = runs
            .iter()
            .filter(|(command, run)| run.error.is_some() || !run.reply.contains(COMMANDS[*command].1))
            .collect();
        let after_speech: Vec<_> = runs.iter().filter_map(|(_, r)| r.after_speech).collect();
        let after_vad: Vec<_> = runs.iter().filter_map(|(_, r)| r.after_voice_stopped).collect();
        let done: Vec<_> = runs.iter().map(|(_, r)| r.until_done).collect();
        let final_rss = athena.process.rss_kib();
        let cpu = athena.process.cpu_secs() - warm_cpu;
        let peak_rss = rss.iter().copied().max().unwrap_or(final_rss);
        let half = rss.len() / 2;
        let first_half_peak = rss[..half.max(1)].iter().copied().max().unwrap_or(warm_rss);
        let second_half_peak = rss[half..].iter().copied().max().unwrap_or(final_rss);
        println!(
            "\n## Load: {SATELLITES} satellites for {:.0} s, {} commands ({:.1} a minute), {} failed\n",
            elapsed.as_secs_f64(),
            runs.len(),
            runs.len() as f64 * 60.0 / elapsed.as_secs_f64(),
            failures.len(),
        );
        println!("| latency (ms) | runs | p50 | p90 | p99 | max |");
        println!("|---|---|---|---|---|---|");
        println!("{}", row("end of speech → first reply audio", after_speech));
        println!("{}", row("voice-stopped → first reply audio", after_vad));
        println!("{}", row("end of speech → reply complete", done));
        println!(
            "\nCPU: the athena process used {cpu:.0} core-seconds, {:.2} per command ({:.0} % of 2 cores)",
            cpu / runs.len() as f64,
            cpu * 50.0 / elapsed.as_secs_f64(),
        );
        println!(
            "\nMemory (RSS, MiB): warm {:.0}, peak in the first half {:.0}, in the second half {:.0}, at the end {:.0}, peak {:.0}",
            warm_rss as f64 / 1024.0,
            first_half_peak as f64 / 1024.0,
            second_half_peak as f64 / 1024.0,
            final_rss as f64 / 1024.0,
            peak_rss as f64 / 1024.0,
        );

        assert!(
            failures.is_empty(),
            "{} of {} commands failed, e.g. {:?}",
            failures.len(),
            runs.len(),
            &failures[..failures.len().min(3)]
        );
        assert!(runs.len() >= SATELLITES * 2, "only {} commands ran", runs.len());
        // Once the load has reached its steady state (first half), memory
        // stays flat: the second half's peak is within 10 % (and 64 MiB)
        // of the first's.
        let allowed = (first_half_peak / 10).min(64 * 1024);
        assert!(
            second_half_peak <= first_half_peak + allowed,
            "memory grew under steady load: {rss:?} KiB"
        );
        ha.stop().await;
    });
}
