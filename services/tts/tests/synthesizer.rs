//! The synthesizer on the real voice (`en_US-joe-medium`) and ONNX Runtime:
//! long text streams with steady memory, concurrent requests take turns
//! sentence by sentence, and requests are checked before anything is spoken.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex, OnceLock};

use athena_api::ErrorKind;
use athena_api::tts::SynthesisConfig;
use athena_tts::{Config, Synthesizer};
use futures::StreamExt;

fn synthesizer() -> Arc<Synthesizer> {
    static SYNTH: OnceLock<Arc<Synthesizer>> = OnceLock::new();
    SYNTH
        .get_or_init(|| {
            let config = Config {
                sentence_silence: 0.1,
                ..Config::default()
            };
            Arc::new(athena_tts::load(&config).unwrap())
        })
        .clone()
}

/// This process's resident memory in bytes.
fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

fn whole(text: &str) -> athena_api::tts::TextStream {
    futures::stream::iter([Ok(text.to_owned())]).boxed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_text_streams_with_steady_memory() {
    let synth = synthesizer();
    let text: String = (0..150)
        .map(|i| format!("This is sentence number {i} of a long story about the house. "))
        .collect();
    assert!(text.len() > 9_000, "{}", text.len());
    let plan = synth.plan(&SynthesisConfig::default()).unwrap();
    let mut speech = synth.speak(plan, whole(&text));
    let (mut last_sentence, mut bytes, mut warm, mut peak) = (0, 0usize, None, 0usize);
    while let Some(segment) = speech.next().await {
        let segment = segment.unwrap();
        assert!(segment.sentence >= last_sentence, "sentences in order");
        last_sentence = segment.sentence;
        bytes += segment.audio.len();
        if segment.sentence >= 20 {
            let now = rss();
            warm.get_or_insert(now);
            peak = peak.max(now);
        }
    }
    assert_eq!(last_sentence, 149);
    let growth = peak.saturating_sub(warm.unwrap());
    eprintln!(
        "{} MB of audio; memory grew {} MB after the 20th sentence",
        bytes >> 20,
        growth >> 20
    );
    // Before ONNX Runtime's per-shape memory plans were turned off, memory
    // grew by about 40% of the audio that went through.
    assert!(
        growth < (bytes / 4).min(8 << 20),
        "memory grew {growth} B while {bytes} B of audio streamed through"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_take_turns() {
    let synth = synthesizer();
    let order = Arc::new(Mutex::new(Vec::new()));
    let text = "One. Two. Three. Four. Five. Six.";
    let tasks: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|name| {
            let (synth, order) = (synth.clone(), order.clone());
            tokio::spawn(async move {
                let plan = synth.plan(&SynthesisConfig::default()).unwrap();
                let mut speech = synth.speak(plan, whole(text));
                while let Some(segment) = speech.next().await {
                    order
                        .lock()
                        .unwrap()
                        .push((name, segment.unwrap().sentence));
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let order = order.lock().unwrap().clone();
    let first_b = order.iter().position(|(n, _)| *n == "b").unwrap();
    let last_a = order.iter().rposition(|(n, _)| *n == "a").unwrap();
    let first_a = order.iter().position(|(n, _)| *n == "a").unwrap();
    let last_b = order.iter().rposition(|(n, _)| *n == "b").unwrap();
    assert!(
        first_b < last_a && first_a < last_b,
        "neither request waits for the other to finish: {order:?}"
    );
}

#[tokio::test]
async fn requests_are_checked_before_anything_is_spoken() {
    let synth = synthesizer();
    let plan = |config: SynthesisConfig| synth.plan(&config).unwrap_err();
    let e = plan(SynthesisConfig {
        voice: Some("nobody".into()),
        ..Default::default()
    });
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(e.message.contains("en_US-joe-medium"), "{e}");
    let e = plan(SynthesisConfig {
        speaker: Some("alice".into()),
        ..Default::default()
    });
    assert_eq!(e.kind, ErrorKind::NotFound);
    let e = plan(SynthesisConfig {
        length_scale: Some(50.0),
        ..Default::default()
    });
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    let e = plan(SynthesisConfig {
        sample_rate: Some(1_000),
        ..Default::default()
    });
    assert!(e.message.contains("sample_rate"), "{e}");
    let e = plan(SynthesisConfig {
        sentence_silence: Some(-1.0),
        ..Default::default()
    });
    assert!(e.message.contains("sentence_silence"), "{e}");

    assert!(synth.check_text("").unwrap_err().message.contains("empty"));
    assert!(
        synth
            .check_text(" ?! ")
            .unwrap_err()
            .message
            .contains("nothing to say")
    );
    let huge = "a".repeat(synth.max_text_chars() + 1);
    assert!(
        synth
            .check_text(&huge)
            .unwrap_err()
            .message
            .contains("too long")
    );

    // Resampled output: 16 kHz asked, 16 kHz given.
    let plan = synth
        .plan(&SynthesisConfig {
            sample_rate: Some(16_000),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(plan.format().rate(), 16_000);
    let mut speech = synth.speak(plan, whole("Sixteen kilohertz."));
    let first = speech.next().await.unwrap().unwrap();
    assert_eq!(first.format.rate(), 16_000);

    // Text that never says anything ends with an error, not silence.
    let plan = synth.plan(&SynthesisConfig::default()).unwrap();
    let pieces = futures::stream::iter(["...", " ?!", " --"].map(|p| Ok(p.to_owned()))).boxed();
    let mut speech = synth.speak(plan, pieces);
    let e = speech.next().await.unwrap().unwrap_err();
    assert!(e.message.contains("nothing to say"), "{e}");
    // A control character is a space, not a failure.
    let plan = synth.plan(&SynthesisConfig::default()).unwrap();
    let mut speech = synth.speak(plan, whole("Null\0byte."));
    assert!(speech.next().await.unwrap().is_ok());
}

#[tokio::test]
async fn several_voices_at_once() {
    // The one packaged voice twice: from the catalog, and as a file of the
    // user's under another name.
    let dir = tempfile::tempdir().unwrap();
    let store = athena_models::Store::from_env().unwrap();
    let joe = store.ensure("en_US-joe-medium").unwrap();
    for ext in ["onnx", "onnx.json"] {
        std::fs::copy(
            joe.join(format!("en_US-joe-medium.{ext}")),
            dir.path().join(format!("en_US-other-medium.{ext}")),
        )
        .unwrap();
    }
    let other = dir.path().join("en_US-other-medium.onnx");
    let config = Config {
        voices: vec!["en_US-joe-medium".into(), other.display().to_string()],
        default_voice: "en_US-other-medium".into(),
        ..Config::default()
    };
    athena_runtime::Validate::validate(&config).unwrap();
    let synth = Arc::new(athena_tts::load(&config).unwrap());
    let names: Vec<String> = synth.describe().into_iter().map(|v| v.name).collect();
    assert_eq!(names, ["en_US-joe-medium", "en_US-other-medium"]);
    assert_eq!(synth.default_voice().name(), "en_US-other-medium");
    for name in [None, Some("en_US-joe-medium"), Some("en_US-other-medium")] {
        let plan = synth
            .plan(&SynthesisConfig {
                voice: name.map(str::to_owned),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(plan.voice(), name.unwrap_or("en_US-other-medium"));
        let mut speech = synth.speak(plan, whole("Two voices."));
        assert!(!speech.next().await.unwrap().unwrap().audio.is_empty());
    }
}
