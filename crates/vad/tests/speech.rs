//! The detector on real speech (the JFK clip from the model catalog) and on
//! silence around it: where speech starts and ends, and what fraction of
//! frames it calls speech.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

use athena_vad::{Endpointer, FRAME, VadConfig, VadEvent, speech_bounds};

fn jfk() -> Vec<f32> {
    let dir = athena_models::Store::from_env()
        .unwrap()
        .ensure("sample-jfk")
        .unwrap();
    hound::WavReader::open(dir.join("jfk.wav"))
        .unwrap()
        .into_samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32_768.0)
        .collect()
}

const SECOND: usize = 16_000;

#[test]
fn finds_the_speech_in_a_real_clip() {
    let speech = jfk();
    let (start, end) = speech_bounds(&speech, VadConfig::default()).unwrap();
    eprintln!(
        "jfk.wav: speech from {:.2} s to {:.2} s of {:.2} s",
        start as f64 / 16e3,
        end as f64 / 16e3,
        speech.len() as f64 / 16e3
    );
    assert!(start < SECOND / 2, "starts at {start}");
    assert!(end > 10 * SECOND, "ends at {end}");
}

#[test]
fn reports_start_and_end_of_speech_between_silences() {
    let mut audio = vec![0.0f32; SECOND];
    audio.extend(jfk());
    let speech_end = audio.len();
    audio.extend(vec![0.0f32; 2 * SECOND]);

    let mut endpointer = Endpointer::new(VadConfig::default());
    // Fed in 80 ms chunks, as satellites send audio.
    let events: Vec<VadEvent> = audio
        .chunks(1280)
        .flat_map(|chunk| endpointer.push(chunk))
        .collect();
    eprintln!("events: {events:?}");
    let Some(VadEvent::SpeechStarted { at }) = events.first() else {
        panic!("{events:?}")
    };
    assert!(
        (SECOND..SECOND + SECOND / 2).contains(at),
        "started at {at}"
    );
    let Some(VadEvent::SpeechEnded { at }) = events.last() else {
        panic!("{events:?}")
    };
    // The clip runs to its last sample; the last frame overlaps the silence.
    assert!(
        (speech_end - SECOND..=speech_end + SECOND / 10).contains(at),
        "ended at {at}, speech ends by {speech_end}"
    );
    assert!(!endpointer.in_speech());
}

#[test]
fn speech_and_silence_frame_rates() {
    let config = VadConfig::default();
    let count = |audio: &[f32]| {
        let mut detector = Endpointer::new(VadConfig {
            min_speech_ms: 0,
            ..config
        });
        let mut speech_frames = 0;
        for frame in audio.chunks_exact(FRAME) {
            detector.push(frame);
            speech_frames += usize::from(detector.in_speech());
        }
        speech_frames as f64 / (audio.len() / FRAME) as f64
    };
    let speech = count(&jfk());
    let silence = count(&vec![0.0; 5 * SECOND]);
    eprintln!(
        "frames called speech: jfk.wav {:.0}%, silence {:.0}%",
        speech * 100.0,
        silence * 100.0
    );
    assert!(speech > 0.6, "{speech}");
    assert_eq!(silence, 0.0);
}
