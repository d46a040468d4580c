//! The loaded model behind every API: audio in any PCM format is gathered
//! into an [`Utterance`], converted to 16 kHz mono, and transcribed on a
//! blocking thread, one request (or `concurrency` requests) at a time, in
//! arrival order. Requests beyond `max_queue` waiting are told `busy` at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use athena_api::stt::{
    AudioStream, RecognitionConfig, RecognitionEvent, RecognitionStream, SpeechToText, SttModel,
    Transcript,
};
use athena_api::{Error, ErrorKind};
use athena_audio::AudioFormat;
use futures::StreamExt;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::engine::{EngineError, EngineInfo, SAMPLE_RATE, TranscribeOptions, Transcriber};

/// Audio of one utterance as it arrives, in one PCM format.
#[derive(Debug)]
pub struct Utterance {
    format: Option<AudioFormat>,
    pcm: Vec<u8>,
    max_seconds: u32,
}

impl Utterance {
    /// An empty utterance that refuses more than `max_seconds` of audio.
    pub fn new(max_seconds: u32) -> Self {
        Self {
            format: None,
            pcm: Vec::new(),
            max_seconds,
        }
    }

    /// Adds audio; the format must not change within an utterance.
    pub fn push(&mut self, format: AudioFormat, pcm: &[u8]) -> Result<(), Error> {
        match self.format {
            None => self.format = Some(format),
            Some(f) if f != format => {
                return Err(Error::invalid(format!(
                    "audio format changed within an utterance ({f} then {format})"
                )));
            }
            Some(_) => {}
        }
        self.pcm.extend_from_slice(pcm);
        if self.seconds() > f64::from(self.max_seconds) {
            return Err(Error::invalid(format!(
                "audio longer than {} s; send shorter utterances",
                self.max_seconds
            )));
        }
        Ok(())
    }

    /// Seconds of audio so far.
    pub fn seconds(&self) -> f64 {
        self.format.map_or(0.0, |f| f.seconds(self.pcm.len()))
    }

    /// True when no audio has arrived.
    pub fn is_empty(&self) -> bool {
        self.pcm.is_empty()
    }

    /// The audio as 16 kHz mono samples.
    pub fn samples(&self) -> Result<Vec<f32>, Error> {
        let Some(format) = self.format else {
            return Err(Error::invalid("no audio was received"));
        };
        // A chunk may end mid-frame; only whole frames are decoded.
        let whole = self.pcm.len() - self.pcm.len() % format.frame_bytes();
        let mono = format.to_mono_f32(&self.pcm[..whole])?;
        Ok(athena_audio::resample(&mono, format.rate(), SAMPLE_RATE))
    }
}

/// The model, loaded, with its queue.
pub struct Recognizer {
    engine: Arc<dyn Transcriber>,
    info: EngineInfo,
    model: String,
    gate: Semaphore,
    waiting: AtomicUsize,
    max_queue: usize,
    reduced_context: bool,
    default_language: Option<String>,
    max_audio_secs: u32,
    partial_interval_ms: u32,
    trim_silence: Option<athena_vad::VadConfig>,
    device: String,
}

impl std::fmt::Debug for Recognizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recognizer")
            .field("model", &self.model)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// How a recognizer queues and transcribes.
#[derive(Debug, Clone)]
pub struct RecognizerOptions {
    /// The catalog name of the model.
    pub model: String,
    /// Transcriptions at once.
    pub concurrency: usize,
    /// Requests that may wait.
    pub max_queue: usize,
    /// Encode only as much audio as there is.
    pub reduced_context: bool,
    /// Language when a request names none.
    pub default_language: Option<String>,
    /// Longest utterance accepted.
    pub max_audio_secs: u32,
    /// Partial transcripts every this many ms of audio (0: none).
    pub partial_interval_ms: u32,
    /// Cut silence before and after speech (and skip the model when there
    /// is no speech at all: Whisper invents words in silence).
    pub trim_silence: bool,
    /// Where the model runs, as said in `info` and logs (`cpu`, `gpu`, or
    /// `cpu (GPU failed: …)`).
    pub device: String,
}

impl Recognizer {
    /// A recognizer over a loaded engine.
    pub fn new(engine: Arc<dyn Transcriber>, options: RecognizerOptions) -> Self {
        Self {
            info: engine.describe(),
            engine,
            model: options.model,
            gate: Semaphore::new(options.concurrency),
            waiting: AtomicUsize::new(0),
            max_queue: options.max_queue,
            reduced_context: options.reduced_context,
            default_language: options.default_language,
            max_audio_secs: options.max_audio_secs,
            partial_interval_ms: options.partial_interval_ms,
            trim_silence: options.trim_silence.then(athena_vad::VadConfig::default),
            device: options.device,
        }
    }

    /// What the engine is.
    pub fn info(&self) -> &EngineInfo {
        &self.info
    }

    /// The catalog name of the loaded model.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Where the model runs.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// A new, empty utterance with this recognizer's length limit.
    pub fn utterance(&self) -> Utterance {
        Utterance::new(self.max_audio_secs)
    }

    /// Partial transcripts every this many seconds of audio, if at all.
    pub fn partial_interval(&self) -> Option<f64> {
        (self.partial_interval_ms > 0).then(|| f64::from(self.partial_interval_ms) / 1000.0)
    }

    fn options(&self, language: Option<&str>, hints: &[String]) -> TranscribeOptions {
        TranscribeOptions {
            language: language
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .or_else(|| self.default_language.clone()),
            hints: hints.to_vec(),
            reduced_context: self.reduced_context,
        }
    }

    /// Transcribes a whole utterance, waiting for its turn.
    pub async fn transcribe(
        &self,
        utterance: &Utterance,
        language: Option<&str>,
        hints: &[String],
    ) -> Result<Transcript, Error> {
        if utterance.is_empty() {
            return Err(Error::invalid("no audio was received"));
        }
        let samples = utterance.samples()?;
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_queue {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            metrics::counter!("stt_requests_total", "outcome" => "busy").increment(1);
            return Err(Error::new(
                ErrorKind::Busy,
                "speech-to-text is busy; try again shortly",
            ));
        }
        metrics::gauge!("stt_queue_waiting").increment(1.0);
        let permit = self.gate.acquire().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        metrics::gauge!("stt_queue_waiting").decrement(1.0);
        let _permit = permit.map_err(|_| Error::unavailable("speech-to-text is shutting down"))?;
        let result = self.run(samples, self.options(language, hints)).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.kind.code(),
        };
        metrics::counter!("stt_requests_total", "outcome" => outcome).increment(1);
        result
    }

    /// A partial transcript of what has arrived, only if the engine is free
    /// right now: partials never queue behind other requests' finals.
    pub async fn partial(&self, utterance: &Utterance, language: Option<&str>) -> Option<String> {
        let _permit = self.gate.try_acquire().ok()?;
        let samples = utterance.samples().ok()?;
        self.run(samples, self.options(language, &[]))
            .await
            .ok()
            .map(|t| t.text)
    }

    async fn run(
        &self,
        mut samples: Vec<f32>,
        options: TranscribeOptions,
    ) -> Result<Transcript, Error> {
        let audio_seconds = samples.len() as f64 / f64::from(SAMPLE_RATE);
        if let Some(vad) = self.trim_silence {
            match athena_vad::speech_bounds(&samples, vad) {
                Some((start, end)) => {
                    samples.truncate(end);
                    samples.drain(..start);
                }
                None => {
                    metrics::counter!("stt_silent_utterances_total").increment(1);
                    return Ok(Transcript {
                        text: String::new(),
                        language: options.language,
                        audio_seconds: audio_seconds as f32,
                    });
                }
            }
        }
        let engine = self.engine.clone();
        let started = Instant::now();
        let result = tokio::task::spawn_blocking(move || engine.transcribe(&samples, &options))
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Internal,
                    format!("transcription task failed: {e}"),
                )
            })?;
        let elapsed = started.elapsed().as_secs_f64();
        metrics::histogram!("stt_transcribe_seconds").record(elapsed);
        metrics::histogram!("stt_audio_seconds").record(audio_seconds);
        let t = result.map_err(engine_error)?;
        tracing::debug!(audio_seconds, elapsed, text = %t.text, "transcribed");
        Ok(Transcript {
            text: t.text,
            language: Some(t.language),
            audio_seconds: audio_seconds as f32,
        })
    }
}

/// How engine failures reach callers.
fn engine_error(e: EngineError) -> Error {
    match e {
        EngineError::InvalidAudio(_) | EngineError::UnsupportedLanguage { .. } => {
            Error::invalid(e.to_string())
        }
        EngineError::Load { .. } => Error::unavailable(e.to_string()),
        EngineError::Inference(_) => Error::new(ErrorKind::Internal, e.to_string()),
    }
}

/// The words two partial hypotheses agree on from the start: what can be
/// sent as final while the speaker is still talking.
pub fn stable_prefix<'a>(previous: &'a str, current: &str) -> Vec<&'a str> {
    previous
        .split_whitespace()
        .zip(current.split_whitespace())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a)
        .collect()
}

/// The recognizer as the service interface, for gRPC and in-process callers:
/// streams partial results while the audio arrives, then the final transcript.
#[derive(Debug, Clone)]
pub struct SharedRecognizer(pub Arc<Recognizer>);

#[async_trait::async_trait]
impl SpeechToText for SharedRecognizer {
    async fn describe(&self) -> Result<Vec<SttModel>, Error> {
        let r = &self.0;
        Ok(vec![SttModel {
            name: r.model.clone(),
            languages: r.info.languages.clone(),
            installed: true,
            description: r.info.model.clone(),
            version: r.info.version.clone(),
        }])
    }

    async fn recognize(
        &self,
        config: RecognitionConfig,
        mut audio: AudioStream,
    ) -> Result<RecognitionStream, Error> {
        let recognizer = self.0.clone();
        if let Some(model) = &config.model
            && model != recognizer.model()
        {
            return Err(Error::not_found(format!(
                "model {model} is not loaded (this service runs {})",
                recognizer.model()
            )));
        }
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            let mut utterance = recognizer.utterance();
            let mut last_partial_at = 0.0;
            let mut last_partial = String::new();
            while let Some(chunk) = audio.next().await {
                let pushed = chunk.and_then(|bytes| utterance.push(config.format, &bytes));
                if let Err(e) = pushed {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
                let Some(interval) = recognizer
                    .partial_interval()
                    .filter(|_| config.partial_results)
                else {
                    continue;
                };
                if utterance.seconds() - last_partial_at >= interval {
                    last_partial_at = utterance.seconds();
                    if let Some(text) = recognizer
                        .partial(&utterance, config.language.as_deref())
                        .await
                        && text != last_partial
                    {
                        last_partial.clone_from(&text);
                        if tx.send(Ok(RecognitionEvent::Partial(text))).await.is_err() {
                            return;
                        }
                    }
                }
            }
            let result = recognizer
                .transcribe(&utterance, config.language.as_deref(), &config.hints)
                .await
                .map(RecognitionEvent::Final);
            let _ = tx.send(result).await;
        });
        Ok(ReceiverStream::new(rx).boxed())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn stable_prefix_is_what_two_hypotheses_share() {
        assert_eq!(
            stable_prefix("turn on the", "turn on the kitchen"),
            ["turn", "on", "the"]
        );
        assert_eq!(stable_prefix("turn of", "turn off the"), ["turn"]);
        assert!(stable_prefix("", "turn").is_empty());
    }

    #[test]
    fn utterances_refuse_format_changes_and_overlong_audio() {
        let mut u = Utterance::new(1);
        let stereo = AudioFormat::new(16_000, 2, 2).unwrap();
        u.push(AudioFormat::SPEECH, &[0; 3200]).unwrap();
        let err = u.push(stereo, &[0; 4]).unwrap_err();
        assert!(err.message.contains("format changed"), "{err}");
        let err = u.push(AudioFormat::SPEECH, &[0; 32_000]).unwrap_err();
        assert!(err.message.contains("longer than 1 s"), "{err}");

        let mut u = Utterance::new(10);
        let cd = AudioFormat::new(44_100, 2, 2).unwrap();
        u.push(cd, &[0; 44_100 * 4]).unwrap();
        assert_eq!(u.samples().unwrap().len(), 16_000);
        assert!(Utterance::new(1).samples().is_err());
    }
}
