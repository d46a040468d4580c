//! A satellite as the tests and benchmarks play it: connects to the
//! orchestrator's Wyoming port, sends `run-pipeline` and a spoken command
//! as a microphone delivers it, and records what comes back.

use std::time::{Duration, Instant};

use wyoming::event::{AudioChunk, PipelineStage, Played, RunPipeline};
use wyoming::{AudioFormat, Connection, ConnectionConfig, Endpoint, Event};

/// Bytes of 16-bit samples per chunk (1024 samples, 64 ms), as
/// wyoming-satellite sends them.
pub const CHUNK: usize = 2048;

/// How long a reply may take before the satellite gives up.
const PATIENCE: Duration = Duration::from_secs(90);

/// How fast the satellite sends its audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// As it is recorded: chunk `i` leaves 64 ms × `i` after the start.
    RealTime,
    /// Twice as fast (tests that do not measure time).
    Fast,
}

/// What the satellite saw of one run.
#[derive(Debug, Default, Clone)]
pub struct Run {
    /// Event types in order, repeats collapsed.
    pub kinds: Vec<String>,
    /// The `transcript` event's text.
    pub transcript: String,
    /// The `synthesize` texts, joined.
    pub reply: String,
    /// Bytes of reply audio.
    pub audio_bytes: usize,
    /// The `error` event's code and text, if the run failed.
    pub error: Option<(String, String)>,
    /// From `voice-stopped` to the first reply audio.
    pub after_voice_stopped: Option<Duration>,
    /// From the end of the speech in the audio sent to the first reply audio.
    pub after_speech: Option<Duration>,
    /// From the end of the speech to the end of the run (the reply's
    /// `audio-stop`, or the `error` when nothing is spoken after it).
    pub until_done: Duration,
}

impl Run {
    /// The error code, if any.
    pub fn error_code(&self) -> Option<&str> {
        self.error.as_ref().map(|(code, _)| code.as_str())
    }
}

/// Where speech ends in `pcm`: the last chunk with a sample above the
/// noise floor.
fn speech_end_chunk(pcm: &[u8]) -> usize {
    pcm.chunks(CHUNK)
        .rposition(|c| {
            c.chunks_exact(2)
                .any(|s| i16::from_le_bytes([s[0], s[1]]).unsigned_abs() > 300)
        })
        .unwrap_or(0)
}

/// Speaks `pcm` (16 kHz, 16-bit mono; no `audio-start`, as real satellites
/// do) to the orchestrator at `wyoming_port` after `run-pipeline` (asr to
/// tts) and reads its events until the reply's `audio-stop`, then says
/// `played`. A run that fails ends at its `error`, or at the end of the
/// apology spoken after it.
pub async fn speak(wyoming_port: u16, pcm: &[u8], pace: Pace) -> Run {
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
    let last_speech = speech_end_chunk(pcm);
    let chunks: Vec<Vec<u8>> = pcm.chunks(CHUNK).map(<[u8]>::to_vec).collect();
    let period = match pace {
        Pace::RealTime => Duration::from_millis(64),
        Pace::Fast => Duration::from_millis(32),
    };
    let (spoke_tx, spoke_rx) = tokio::sync::oneshot::channel();
    let sending = tokio::spawn(async move {
        let started = Instant::now();
        let mut spoke = Some(spoke_tx);
        for (i, chunk) in chunks.into_iter().enumerate() {
            tokio::time::sleep_until((started + period * i as u32).into()).await;
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
            if i == last_speech
                && let Some(tx) = spoke.take()
            {
                // The chunk holding the last speech is complete once its
                // time has passed.
                let _ = tx.send(Instant::now() + period);
            }
        }
        writer
    });
    let mut run = Run::default();
    let mut voice_stopped = None;
    let mut first_audio = None;
    let mut failed_at = None;
    let reading = async {
        loop {
            // After an error, an apology follows at once or not at all.
            let wait = if run.error.is_some() && first_audio.is_none() {
                Duration::from_secs(5)
            } else {
                PATIENCE
            };
            let event = match tokio::time::timeout(wait, reader.next_event()).await {
                Err(_) if run.error.is_some() => return,
                Err(_) => panic!("no reply within {wait:?}: {run:?}"),
                Ok(event) => event
                    .unwrap()
                    .unwrap_or_else(|| panic!("the orchestrator hung up: {run:?}")),
            };
            run.kinds.push(event.kind().to_owned());
            match event {
                Event::VoiceStopped(_) => voice_stopped = Some(Instant::now()),
                Event::Transcript(t) => run.transcript = t.text,
                // One per sentence for an answer spoken as it is written.
                Event::Synthesize(s) => {
                    if !run.reply.is_empty() {
                        run.reply.push(' ');
                    }
                    run.reply.push_str(&s.text);
                }
                Event::AudioChunk(c) => {
                    first_audio.get_or_insert_with(Instant::now);
                    run.audio_bytes += c.audio.len();
                }
                Event::AudioStop(_) => return,
                Event::Error(e) => {
                    failed_at = Some(Instant::now());
                    run.error = Some((e.code.unwrap_or_default(), e.text));
                }
                _ => {}
            }
        }
    };
    reading.await;
    // A failed run with nothing spoken after it was done at its error.
    let done = match (failed_at, first_audio) {
        (Some(at), None) => at,
        _ => Instant::now(),
    };
    // The rest of the audio (the silence after the command) goes out.
    let mut writer = sending.await.unwrap();
    if first_audio.is_some() {
        writer.send(Played::default()).await.unwrap();
    }
    let speech_ended = spoke_rx.await.ok();
    let since = |from: Option<Instant>, to: Option<Instant>| match (from, to) {
        (Some(from), Some(to)) => Some(to.saturating_duration_since(from)),
        _ => None,
    };
    run.after_voice_stopped = since(voice_stopped, first_audio);
    run.after_speech = since(speech_ended, first_audio);
    run.until_done = speech_ended.map_or(Duration::ZERO, |at| done.saturating_duration_since(at));
    run.kinds.dedup();
    run
}
