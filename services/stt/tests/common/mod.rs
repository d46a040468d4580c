//! What the engine tests share: the catalog's real weights and clip.

#![allow(clippy::unwrap_used, dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub const JFK: &str = "And so my fellow Americans ask not what your country can do for you, ask what you can do for your country.";
pub const JFK_FIRST_4S: &str = "and so my fellow americans";

/// A model's directory from the catalog, pulled on first use.
pub fn model_dir(name: &str) -> PathBuf {
    let store = athena_models::Store::from_env().unwrap();
    store
        .ensure(name)
        .unwrap_or_else(|e| panic!("cannot get model {name}: {e}"))
}

pub fn ct2_dir() -> PathBuf {
    model_dir("whisper-tiny.en")
}

pub fn jfk_samples() -> Vec<f32> {
    let path = model_dir("sample-jfk").join("jfk.wav");
    let mut reader = hound::WavReader::open(&path).unwrap();
    let spec = reader.spec();
    assert_eq!(
        (
            spec.sample_rate,
            spec.channels,
            spec.bits_per_sample,
            spec.sample_format
        ),
        (16_000, 1, 16, hound::SampleFormat::Int),
        "{} is not 16 kHz mono s16",
        path.display()
    );
    reader
        .samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect()
}

/// The result of the last of `runs` calls and the fastest call's time.
pub fn time<T>(f: impl Fn() -> T, runs: usize) -> (T, Duration) {
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..runs {
        let t = Instant::now();
        out = Some(f());
        best = best.min(t.elapsed());
    }
    (out.unwrap(), best)
}
