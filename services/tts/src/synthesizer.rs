//! The synthesizer: the loaded voices, requests checked against them, and
//! text turned into audio sentence by sentence, each sentence in pieces as
//! its vocoder windows are decoded.
//!
//! Text may arrive whole or in pieces (an LLM's tokens): the sentence
//! splitter hands over each sentence once it is complete, so the first
//! sentence is spoken while the rest is still being written. Work is fair
//! and bounded: a sentence holds one of `concurrency` permits (taken in
//! turn, so concurrent requests interleave sentence by sentence), and a
//! listener that reads slowly holds back its own next sentence, not the
//! permits. Memory is bounded by one sentence of audio per request.

use std::sync::Arc;
use std::time::Instant;

use athena_api::tts::{SpeechSegment, SpeechStream, SynthesisConfig, TextStream, Voice};
use athena_api::{Error, ErrorKind};
use athena_audio::AudioFormat;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::config::{self, Config};
use crate::engine::{PiperVoice, Scales, SpeakOptions, VoiceError, to_pcm16};
use athena_api::text::{SentenceSplitter, is_speakable};

/// Text is handed to the sentence splitter at most this many bytes at a time.
const SPLIT_PIECE_BYTES: usize = 1024;

/// Segments (pieces of audio) buffered per request before synthesis waits
/// for the listener.
const BUFFERED_SEGMENTS: usize = 8;

/// A request checked against the voices: everything needed to speak.
#[derive(Debug, Clone)]
pub struct Plan {
    voice: Arc<PiperVoice>,
    options: SpeakOptions,
    format: AudioFormat,
    silence_samples: usize,
}

impl Plan {
    /// The format of the audio this request produces.
    pub fn format(&self) -> AudioFormat {
        self.format
    }

    /// The voice that speaks.
    pub fn voice(&self) -> &str {
        self.voice.name()
    }
}

/// The loaded voices and how they speak.
#[derive(Debug)]
pub struct Synthesizer {
    voices: Vec<Arc<PiperVoice>>,
    default_voice: usize,
    /// What the config says about speaking, for every request.
    defaults: Config,
    permits: Arc<Semaphore>,
}

impl Synthesizer {
    /// A synthesizer over `voices`, speaking as `config` says.
    pub fn new(voices: Vec<PiperVoice>, config: Config) -> Result<Self, Error> {
        let default_voice = config.default_voice_name();
        let default_voice = voices
            .iter()
            .position(|v| v.name() == default_voice)
            .ok_or_else(|| {
                Error::invalid(format!("the default voice {default_voice} is not loaded"))
            })?;
        Ok(Self {
            voices: voices.into_iter().map(Arc::new).collect(),
            default_voice,
            permits: Arc::new(Semaphore::new(config.concurrency.max(1))),
            defaults: config,
        })
    }

    /// The loaded voices.
    pub fn voices(&self) -> impl Iterator<Item = &PiperVoice> {
        self.voices.iter().map(|v| &**v)
    }

    /// The voice used when a request names none.
    pub fn default_voice(&self) -> &PiperVoice {
        &self.voices[self.default_voice]
    }

    /// The longest text accepted, in characters.
    pub fn max_text_chars(&self) -> usize {
        self.defaults.max_text_chars
    }

    /// The voices as the service interface describes them.
    pub fn describe(&self) -> Vec<Voice> {
        self.voices()
            .map(|v| Voice {
                name: v.name().to_owned(),
                languages: v.config().language.iter().map(|l| l.code.clone()).collect(),
                speakers: v.speakers(),
                installed: true,
                description: format!("Piper voice {} on {}", v.name(), v.device()),
                version: String::new(),
                sample_rate: v.config().audio.sample_rate,
            })
            .collect()
    }

    /// The first voice that speaks `language` (`en_US`, `en-us` or `en`).
    pub fn voice_for_language(&self, language: &str) -> Option<&PiperVoice> {
        let wanted = language.replace('-', "_").to_lowercase();
        let code = |v: &PiperVoice| {
            v.config()
                .language
                .as_ref()
                .map(|l| l.code.to_lowercase())
                .unwrap_or_default()
        };
        self.voices().find(|v| code(v) == wanted).or_else(|| {
            self.voices()
                .find(|v| code(v).split('_').next() == Some(&wanted))
        })
    }

    /// Checks `request` against the voices and limits.
    pub fn plan(&self, request: &SynthesisConfig) -> Result<Plan, Error> {
        let voice = match request
            .voice
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            None => self.voices[self.default_voice].clone(),
            Some(name) => self
                .voices
                .iter()
                .find(|v| v.name() == name)
                .cloned()
                .ok_or_else(|| {
                    let known: Vec<&str> = self.voices().map(PiperVoice::name).collect();
                    Error::not_found(format!(
                        "unknown voice {name:?}; this service has {}",
                        known.join(", ")
                    ))
                })?,
        };
        let speaker = voice
            .speaker_id(request.speaker.as_deref())
            .map_err(|e| match e {
                VoiceError::UnknownSpeaker { .. } => {
                    Error::not_found(format!("{}: {e}", voice.name()))
                }
                other => Error::invalid(other.to_string()),
            })?;
        let own = voice.config().inference;
        let d = &self.defaults;
        let scales = Scales {
            noise_scale: d.noise_scale.unwrap_or(own.noise_scale),
            length_scale: request
                .length_scale
                .or(d.length_scale)
                .unwrap_or(own.length_scale),
            noise_w: d.noise_w.unwrap_or(own.noise_w),
        };
        config::check_scale("length_scale", scales.length_scale, config::LENGTH_SCALES)
            .map_err(Error::invalid)?;
        let silence = request.sentence_silence.unwrap_or(d.sentence_silence);
        config::check_scale("sentence_silence", silence, config::SENTENCE_SILENCES)
            .map_err(Error::invalid)?;
        let own_rate = voice.config().audio.sample_rate;
        let rate = match request.sample_rate.unwrap_or(d.sample_rate) {
            0 => own_rate,
            r if config::SAMPLE_RATES.contains(&r) => r,
            r => {
                return Err(Error::invalid(format!(
                    "sample_rate {r} Hz is not supported ({} to {} Hz)",
                    config::SAMPLE_RATES.start(),
                    config::SAMPLE_RATES.end()
                )));
            }
        };
        let format = AudioFormat::new(rate, 2, 1)?;
        Ok(Plan {
            options: SpeakOptions {
                scales,
                speaker,
                // Resampled audio goes out by whole sentences: pieces
                // resampled apart would click at their seams.
                first_frames: if rate == own_rate {
                    d.first_chunk_frames
                } else {
                    0
                },
            },
            format,
            silence_samples: (silence * rate as f32).round() as usize,
            voice,
        })
    }

    /// Checks a whole text before anything is spoken.
    pub fn check_text(&self, text: &str) -> Result<(), Error> {
        let chars = text.chars().count();
        if chars > self.defaults.max_text_chars {
            return Err(too_long(chars, self.defaults.max_text_chars));
        }
        if text.trim().is_empty() {
            return Err(Error::invalid("the text is empty"));
        }
        if !is_speakable(text) {
            return Err(nothing_to_say());
        }
        Ok(())
    }

    /// Speaks `text` as `plan` says: each piece of audio is sent as soon as
    /// it is decoded. Dropping the stream stops the work.
    pub fn speak(self: &Arc<Self>, plan: Plan, text: TextStream) -> SpeechStream {
        let (tx, rx) = mpsc::channel(BUFFERED_SEGMENTS);
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.run(&plan, text, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        ReceiverStream::new(rx).boxed()
    }

    async fn run(
        &self,
        plan: &Plan,
        mut text: TextStream,
        out: &mpsc::Sender<Result<SpeechSegment, Error>>,
    ) -> Result<(), Error> {
        let mut splitter = SentenceSplitter::new();
        let mut progress = Progress {
            started: Instant::now(),
            sentence: 0,
            first_audio: false,
        };
        let mut chars = 0usize;
        loop {
            let (sentences, done) = match text.next().await {
                Some(piece) => {
                    let piece = piece?;
                    chars += piece.chars().count();
                    if chars > self.defaults.max_text_chars {
                        return Err(too_long(chars, self.defaults.max_text_chars));
                    }
                    let mut sentences = Vec::new();
                    for part in pieces(&piece, SPLIT_PIECE_BYTES) {
                        sentences.extend(splitter.push(part));
                    }
                    (sentences, false)
                }
                None => (splitter.finish(), true),
            };
            for sentence in sentences.into_iter().filter(|s| is_speakable(s)) {
                if !self.sentence(plan, sentence, out, &mut progress).await? {
                    return Ok(());
                }
            }
            if done {
                break;
            }
        }
        if progress.sentence == 0 {
            return Err(if chars == 0 {
                Error::invalid("the text is empty")
            } else {
                nothing_to_say()
            });
        }
        Ok(())
    }

    /// Speaks one sentence into `out`; false when the listener has gone.
    async fn sentence(
        &self,
        plan: &Plan,
        text: String,
        out: &mpsc::Sender<Result<SpeechSegment, Error>>,
        progress: &mut Progress,
    ) -> Result<bool, Error> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::unavailable("the synthesizer is shutting down"))?;
        let (pieces_tx, mut pieces_rx) = mpsc::unbounded_channel::<Vec<f32>>();
        let job = {
            let (voice, options, text) = (plan.voice.clone(), plan.options, text.clone());
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let started = Instant::now();
                let spoken = voice
                    .speak_in_pieces(&text, &options, &mut |piece| pieces_tx.send(piece).is_ok());
                metrics::histogram!("tts_sentence_seconds").record(started.elapsed().as_secs_f64());
                spoken
            })
        };
        let own_rate = plan.voice.config().audio.sample_rate;
        let segment = |samples: &[f32]| SpeechSegment {
            sentence: progress.sentence,
            text: text.clone(),
            format: plan.format,
            audio: pcm_bytes(&to_pcm16(samples, plan.voice.gain())),
        };
        while let Some(piece) = pieces_rx.recv().await {
            let samples = if plan.format.rate() == own_rate {
                piece
            } else {
                athena_audio::resample(&piece, own_rate, plan.format.rate())
            };
            metrics::counter!("tts_audio_milliseconds_total")
                .increment(samples.len() as u64 * 1000 / u64::from(plan.format.rate()));
            if !progress.first_audio {
                progress.first_audio = true;
                metrics::histogram!("tts_first_audio_seconds")
                    .record(progress.started.elapsed().as_secs_f64());
            }
            if out.send(Ok(segment(&samples))).await.is_err() {
                return Ok(false);
            }
        }
        match job.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, sentence = %text, "synthesis failed");
                return Err(Error::new(ErrorKind::Internal, e.to_string()));
            }
            Err(e) => {
                return Err(Error::new(
                    ErrorKind::Internal,
                    format!("synthesis failed: {e}"),
                ));
            }
        }
        if plan.silence_samples > 0
            && out
                .send(Ok(segment(&vec![0.0; plan.silence_samples])))
                .await
                .is_err()
        {
            return Ok(false);
        }
        metrics::counter!("tts_sentences_total").increment(1);
        progress.sentence += 1;
        Ok(true)
    }
}

/// Where a request is.
struct Progress {
    started: Instant,
    /// The index of the next sentence.
    sentence: u32,
    first_audio: bool,
}

/// 16-bit samples as little-endian bytes.
fn pcm_bytes(samples: &[i16]) -> Bytes {
    samples
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect::<Vec<u8>>()
        .into()
}

/// `s` in parts of at most about `max` bytes, cut at character boundaries.
fn pieces(s: &str, max: usize) -> impl Iterator<Item = &str> {
    let mut rest = s;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut cut = rest.len().min(max);
        while !rest.is_char_boundary(cut) {
            cut += 1;
        }
        let (head, tail) = rest.split_at(cut);
        rest = tail;
        Some(head)
    })
}

fn too_long(chars: usize, max: usize) -> Error {
    Error::invalid(format!(
        "the text is too long: {chars} characters (at most {max})"
    ))
}

fn nothing_to_say() -> Error {
    Error::invalid("the text has nothing to say (no letters or digits)")
}
