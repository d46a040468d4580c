//! One satellite's pipeline run: listen (end of speech found by the VAD) →
//! speech to text → intent → action or answer → text to speech → audio back,
//! reporting progress with Wyoming events as Home Assistant does
//! (`transcribe`, `voice-started`, `voice-stopped`, `transcript`,
//! `synthesize`, audio, `error`) and waiting for the satellite's `played`.
//!
//! What no local intent understood is answered by the LLMs ([`Answers`]):
//! the answer's text goes to text to speech as it is written, so its first
//! sentence is spoken before the model is done (a `synthesize` event per
//! sentence then, rather than one for the whole reply).
//!
//! A run owns nothing of the connection: events from the satellite reach it
//! through a channel ([`Incoming`]) and its events leave through another, so
//! the connection goes on answering `ping` and `describe` while a run waits
//! for a backend. Every wait has a deadline ([`Timeouts`]); a stage that
//! fails sends `error` and, where text to speech still works, a short
//! spoken apology.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use athena_api::stt::{RecognitionConfig, RecognitionEvent, SpeechToText};
use athena_api::tts::{SynthesisConfig, TextToSpeech};
use athena_api::{Error as ApiError, ErrorKind};
use athena_audio::AudioFormat;
use athena_vad::{Endpointer, VadEvent};
use bytes::Bytes;
use futures::StreamExt;
use metrics::{counter, histogram};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{Instrument, debug, info, info_span, warn};
use wyoming::Event;
use wyoming::event::{
    AudioFormat as WireFormat, Error, Handled, PipelineStage, RunPipeline, Synthesize, Transcribe,
    Transcript, VoiceStarted, VoiceStopped,
};
use wyoming::speech::{Framing, SpeechFramer};

use crate::actions::{Actions, SatelliteLink};
use crate::config::{Config, Timeouts, VadSettings, secs};
use crate::intent::{IntentSet, SlotLists};
use crate::routing::{Answers, Speech};

/// What a run hears from its satellite.
#[derive(Debug)]
pub enum Incoming {
    /// Microphone audio.
    Audio {
        /// As the chunk announced it.
        format: WireFormat,
        /// PCM.
        audio: Bytes,
    },
    /// The satellite ended its audio (`audio-stop`).
    AudioStop,
    /// The satellite finished playing the reply (`played`).
    Played,
}

/// Spoken when a stage fails and the voice still works.
const APOLOGY: &str = "Sorry, something went wrong. Please try again.";
/// Spoken when nothing in the transcript was understood.
const NOT_UNDERSTOOD: &str = "Sorry, I didn't understand that.";
/// Spoken when a command may have named the home but the home is unreachable.
const HOME_UNREACHABLE: &str = "Sorry, I can't reach the home right now.";

/// The stages and their backends, shared by every satellite.
pub struct Pipeline {
    stt: Arc<dyn SpeechToText>,
    tts: Arc<dyn TextToSpeech>,
    intents: IntentSet,
    actions: Actions,
    /// Answers from the LLMs; none: what no intent matches is not understood.
    answers: Option<Arc<Answers>>,
    stt_model: Option<String>,
    stt_language: Option<String>,
    voice: Option<String>,
    vad: VadSettings,
    timeouts: Timeouts,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("voice", &self.voice)
            .field("vad", &self.vad)
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

/// Why a run stopped before its end stage.
#[derive(Debug, thiserror::Error)]
enum StageError {
    #[error("no speech was heard")]
    NoSpeech,
    #[error("nothing was recognized in the speech")]
    NoText,
    #[error("speech to text failed: {0}")]
    Stt(ApiError),
    #[error("speech to text took longer than {0:.0} s")]
    SttTimeout(f64),
    #[error("text to speech failed: {0}")]
    Tts(ApiError),
    #[error("text to speech took longer than {0:.0} s")]
    TtsTimeout(f64),
    #[error("{0}")]
    Unsupported(String),
    /// The satellite went away: nobody to tell.
    #[error("the satellite disconnected")]
    Gone,
}

impl StageError {
    /// The Wyoming `error` code.
    fn code(&self) -> &'static str {
        match self {
            Self::NoSpeech => "stt-no-speech",
            Self::NoText => "stt-no-text-recognized",
            Self::Stt(_) => "stt-failed",
            Self::SttTimeout(_) => "stt-timeout",
            Self::Tts(_) => "tts-failed",
            Self::TtsTimeout(_) => "tts-timeout",
            Self::Unsupported(_) => "unsupported-stage",
            Self::Gone => "disconnected",
        }
    }

    /// Whether an apology can still be spoken.
    fn speak_apology(&self) -> bool {
        matches!(self, Self::Stt(_) | Self::SttTimeout(_))
    }
}

/// Where a run sends its events; a closed channel means the satellite left.
#[derive(Debug, Clone)]
struct Out(mpsc::Sender<Event>);

impl Out {
    async fn send(&self, event: impl Into<Event>) -> Result<(), StageError> {
        self.0
            .send(event.into())
            .await
            .map_err(|_| StageError::Gone)
    }
}

/// What was heard: the transcript, and when.
#[derive(Debug)]
struct Heard {
    text: String,
    times: HeardAt,
}

/// When speech ended and when its transcript was in: the reply's first
/// audio is timed from both.
#[derive(Debug, Clone, Copy)]
struct HeardAt {
    speech_ended: Instant,
    transcribed: Instant,
}

impl Pipeline {
    /// A pipeline over these backends, with `config`'s settings.
    pub fn new(
        config: &Config,
        stt: Arc<dyn SpeechToText>,
        tts: Arc<dyn TextToSpeech>,
        intents: IntentSet,
        actions: Actions,
    ) -> Self {
        Self {
            stt,
            tts,
            intents,
            actions,
            answers: None,
            stt_model: config.stt.model.clone(),
            stt_language: config.stt.language.clone(),
            voice: config.tts.voice.clone(),
            vad: config.vad,
            timeouts: config.timeouts,
        }
    }

    /// The pipeline answering what no local intent matches with `answers`.
    pub fn with_answers(mut self, answers: Arc<Answers>) -> Self {
        self.answers = Some(answers);
        self
    }

    /// The answer path, if there is one.
    pub fn answers(&self) -> Option<&Arc<Answers>> {
        self.answers.as_ref()
    }

    /// Runs `request` for a satellite until its end stage (again and again
    /// with `restart_on_end`), until the satellite leaves or `input` closes.
    pub async fn run(
        self: Arc<Self>,
        request: RunPipeline,
        mut input: mpsc::Receiver<Incoming>,
        link: SatelliteLink,
    ) {
        let out = Out(link.events.clone());
        let span = info_span!(
            "pipeline",
            satellite = %link.id,
            start = ?request.start_stage,
            end = ?request.end_stage
        );
        async move {
            loop {
                let outcome = match self.once(&request, &mut input, &out, &link).await {
                    Ok(()) => "ok",
                    Err(StageError::Gone) => {
                        counter!("orchestrator_runs_total", "outcome" => "disconnected")
                            .increment(1);
                        return;
                    }
                    Err(e) => {
                        warn!(error = %e, "pipeline run failed");
                        let told = out.send(Error::new(e.code(), e.to_string())).await.is_ok();
                        if told && e.speak_apology() {
                            let apology = Speech::Whole(APOLOGY.to_owned());
                            let _ = self.speak(apology, &out, None, &mut input).await;
                        }
                        e.code()
                    }
                };
                counter!("orchestrator_runs_total", "outcome" => outcome).increment(1);
                if !request.restart_on_end {
                    return;
                }
            }
        }
        .instrument(span)
        .await;
    }

    /// One pass from the start stage to the end stage.
    async fn once(
        &self,
        request: &RunPipeline,
        input: &mut mpsc::Receiver<Incoming>,
        out: &Out,
        link: &SatelliteLink,
    ) -> Result<(), StageError> {
        use PipelineStage::{Asr, Handle, Intent, Tts, Wake};
        let (reply, heard_at) = match request.start_stage {
            // No server-side wake word: a satellite that streams without
            // one is heard as if its wake word had just been spoken.
            Wake | Asr => {
                let heard = self.listen(input, out).await?;
                if request.end_stage == Asr {
                    return Ok(());
                }
                let reply = self.understand(&heard.text, link).await;
                (reply, Some(heard.times))
            }
            Tts => match request.announce_text.as_deref().map(str::trim) {
                Some(text) if !text.is_empty() => (Speech::Whole(text.to_owned()), None),
                _ => {
                    return Err(StageError::Unsupported(
                        "a run starting at tts needs announce_text".into(),
                    ));
                }
            },
            Intent | Handle => {
                return Err(StageError::Unsupported(
                    "runs start at wake, asr or tts; send text with `recognize` instead".into(),
                ));
            }
        };
        if request.end_stage != Tts {
            return out
                .send(Handled {
                    text: Some(reply.text().await),
                    ..Handled::default()
                })
                .await;
        }
        self.speak(reply, out, heard_at, input).await
    }

    /// Listens until the speaker stops, and transcribes what was said.
    /// Audio reaches speech to text from shortly before speech started
    /// (the pre-roll) while it is still being spoken.
    ///
    /// Speech ends after `end_silence_ms` of silence, or sooner for a
    /// command: after `command_silence_ms` of silence what was said so far
    /// is transcribed at once, and if that is a complete local command and
    /// the speaker has stayed silent meanwhile, it is the command. Speech
    /// that resumes reopens the transcription with everything heard.
    async fn listen(
        &self,
        input: &mut mpsc::Receiver<Incoming>,
        out: &Out,
    ) -> Result<Heard, StageError> {
        out.send(Transcribe {
            name: self.stt_model.clone(),
            language: self.stt_language.clone(),
            ..Transcribe::default()
        })
        .await?;
        let mut endpointer = Endpointer::new(self.vad.endpointer());
        let preroll_bytes = self.vad.preroll_ms as usize * 16 * 2;
        let mut preroll: VecDeque<u8> = VecDeque::with_capacity(preroll_bytes);
        let mut utterance: Option<Utterance> = None;
        let listening = Instant::now();
        let mut speech_started: Option<Instant> = None;
        let (speech_ended, how) = loop {
            let deadline = match speech_started {
                None => listening + secs(self.timeouts.no_speech_secs),
                Some(at) => at + secs(self.timeouts.max_speech_secs),
            };
            let next = tokio::select! {
                next = tokio::time::timeout_at(deadline.into(), input.recv()) => next,
                // What was said so far is transcribed: a command ends here.
                text = early(&mut utterance) => {
                    if let Some(u) = utterance.as_mut() {
                        u.early_text = Some(text);
                        if self.is_command(u.early_text.as_ref()).await {
                            let silence = u64::from(endpointer.silence_ms());
                            break (Instant::now() - std::time::Duration::from_millis(silence), "command");
                        }
                    }
                    continue;
                }
            };
            let (format, audio) = match next {
                Ok(Some(Incoming::Audio { format, audio })) => (format, audio),
                Ok(Some(Incoming::Played)) => continue,
                // The satellite ended its audio, or the command ran too long:
                // what was heard is the command.
                Ok(Some(Incoming::AudioStop)) | Err(_) if speech_started.is_some() => {
                    break (Instant::now(), "stream");
                }
                Ok(Some(Incoming::AudioStop)) | Err(_) => return Err(StageError::NoSpeech),
                Ok(None) => return Err(StageError::Gone),
            };
            let samples = speech_samples(format, &audio)?;
            let pcm = pcm16(&samples);
            match utterance.as_mut() {
                Some(u) => u.push(pcm).await?,
                None => {
                    preroll.extend(pcm.iter());
                    let excess = preroll.len().saturating_sub(preroll_bytes);
                    preroll.drain(..excess);
                }
            }
            let mut ended = None;
            for event in endpointer.push(&samples) {
                match event {
                    VadEvent::SpeechStarted { .. } if utterance.is_none() => {
                        debug!("speech started");
                        speech_started = Some(Instant::now());
                        out.send(VoiceStarted::default()).await?;
                        let first: Vec<u8> = preroll.drain(..).collect();
                        utterance = Some(Utterance::open(self, first).await?);
                    }
                    VadEvent::SpeechStarted { .. } => {}
                    VadEvent::SpeechEnded { .. } => ended = Some(Instant::now()),
                }
            }
            if let Some(at) = ended {
                break (at, "silence");
            }
            if let Some(u) = utterance.as_mut() {
                let silence = endpointer.silence_ms();
                if silence == 0 {
                    // Speaking (again): what was transcribed early is not the end.
                    u.resume(self).await?;
                } else if self.vad.command_silence_ms > 0 && silence >= self.vad.command_silence_ms
                {
                    u.close_early();
                }
            }
        };
        counter!("orchestrator_speech_ends_total", "by" => how).increment(1);
        out.send(VoiceStopped::default()).await?;
        let Some(utterance) = utterance else {
            return Err(StageError::NoSpeech);
        };
        let limit = self.timeouts.transcript_secs;
        let text = match utterance.early_text {
            Some(text) => text,
            None => {
                // The end of the audio stream tells speech to text to finish.
                drop(utterance.to_stt);
                match timeout(secs(limit), utterance.recognition).await {
                    Err(_) => return Err(StageError::SttTimeout(limit)),
                    Ok(Err(join)) => Err(ApiError::new(ErrorKind::Internal, join.to_string())),
                    Ok(Ok(result)) => result,
                }
            }
        }
        .map_err(StageError::Stt)?;
        histogram!("orchestrator_stage_seconds", "stage" => "speech_end_to_transcript")
            .record(speech_ended.elapsed().as_secs_f64());
        let text = text.trim().to_owned();
        info!(transcript = %text, by = how, "heard");
        out.send(Transcript {
            text: text.clone(),
            language: self.stt_language.clone(),
            ..Transcript::default()
        })
        .await?;
        if text.is_empty() {
            return Err(StageError::NoText);
        }
        Ok(Heard {
            text,
            times: HeardAt {
                speech_ended,
                transcribed: Instant::now(),
            },
        })
    }

    /// Whether `text` (an early transcript) is a complete local command.
    async fn is_command(&self, text: Option<&Result<String, ApiError>>) -> bool {
        let Some(Ok(text)) = text else {
            return false;
        };
        match self.actions.vocabulary().await {
            Ok(lists) => self.intents.recognize(text, &lists).is_some(),
            Err(_) => false,
        }
    }

    /// Starts transcribing the audio `rx` will carry; the task ends with
    /// the final transcript.
    fn recognize(
        &self,
        rx: mpsc::Receiver<Result<Bytes, ApiError>>,
    ) -> tokio::task::JoinHandle<Result<String, ApiError>> {
        let stt = self.stt.clone();
        let config = RecognitionConfig {
            model: self.stt_model.clone(),
            language: self.stt_language.clone(),
            format: AudioFormat::SPEECH,
            partial_results: false,
            hints: Vec::new(),
        };
        tokio::spawn(async move {
            let mut events = stt
                .recognize(config, ReceiverStream::new(rx).boxed())
                .await?;
            while let Some(event) = events.next().await {
                if let RecognitionEvent::Final(transcript) = event? {
                    return Ok(transcript.text);
                }
            }
            Err(ApiError::new(
                ErrorKind::Internal,
                "speech to text ended without a transcript",
            ))
        })
    }

    /// What to say to `text`: a local intent run through the home, else an
    /// answer from the LLMs (or, without them, an admission that it was not
    /// understood).
    async fn understand(&self, text: &str, link: &SatelliteLink) -> Speech {
        let (lists, home_reachable) = match self.actions.vocabulary().await {
            Ok(lists) => (lists, true),
            Err(e) => {
                warn!(error = %e, "no entity names from the home");
                (Arc::new(SlotLists::new()), false)
            }
        };
        match self.intents.recognize(text, &lists) {
            Some(matched) => {
                info!(intent = %matched, "local intent");
                let reply = self.actions.handle(&matched, link).await;
                counter!(
                    "orchestrator_actions_total",
                    "intent" => matched.intent.clone(),
                    "outcome" => reply.outcome.label()
                )
                .increment(1);
                Speech::Whole(reply.speech)
            }
            // It may have named something in the home: no guessing.
            None if !home_reachable => Speech::Whole(HOME_UNREACHABLE.to_owned()),
            None => match &self.answers {
                Some(answers) => {
                    let answer = answers.answer(text, &link.id).await;
                    info!(route = %answer.route, endpoint = %answer.endpoint, outcome = answer.outcome.label(), "answer");
                    answer.speech
                }
                None => Speech::Whole(NOT_UNDERSTOOD.to_owned()),
            },
        }
    }

    /// Speaks `speech` to the satellite (audio as each sentence is ready,
    /// and for a streamed answer as each is written) and waits until it has
    /// been played. A whole text is announced with one `synthesize`; a
    /// streamed answer with one per sentence, as each is spoken.
    async fn speak(
        &self,
        speech: Speech,
        out: &Out,
        heard_at: Option<HeardAt>,
        input: &mut mpsc::Receiver<Incoming>,
    ) -> Result<(), StageError> {
        let limit = self.timeouts.speech_secs;
        let (text_stream, per_sentence, deadline) = match speech {
            Speech::Whole(text) => {
                out.send(Synthesize {
                    text: text.clone(),
                    ..Synthesize::default()
                })
                .await?;
                let text_stream = futures::stream::iter([Ok(text)]).boxed();
                (text_stream, false, Instant::now() + secs(limit))
            }
            // The speech may take as long after the answer's end as a
            // whole reply would.
            Speech::Streamed { pieces, ends_by } => {
                let ends_by = ends_by.into_std().max(Instant::now());
                (pieces.map(Ok).boxed(), true, ends_by + secs(limit))
            }
        };
        let config = SynthesisConfig {
            voice: self.voice.clone(),
            ..SynthesisConfig::default()
        };
        let mut speech =
            tokio::time::timeout_at(deadline.into(), self.tts.synthesize(config, text_stream))
                .await
                .map_err(|_| StageError::TtsTimeout(limit))?
                .map_err(StageError::Tts)?;
        let mut framer = SpeechFramer::new(Framing::Whole);
        let mut first = true;
        let mut announced: Option<u32> = None;
        loop {
            let segment = match tokio::time::timeout_at(deadline.into(), speech.next()).await {
                Err(_) => {
                    if let Some(stop) = framer.close() {
                        out.send(stop).await?;
                    }
                    return Err(StageError::TtsTimeout(limit));
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    if let Some(stop) = framer.close() {
                        out.send(stop).await?;
                    }
                    return Err(StageError::Tts(e));
                }
                Ok(Some(Ok(segment))) => segment,
            };
            if per_sentence && announced != Some(segment.sentence) {
                announced = Some(segment.sentence);
                out.send(Synthesize {
                    text: segment.text.clone(),
                    ..Synthesize::default()
                })
                .await?;
            }
            let format = WireFormat {
                rate: segment.format.rate(),
                width: segment.format.width() as u16,
                channels: segment.format.channels() as u16,
            };
            for event in framer.segment(segment.sentence, format, &segment.audio) {
                out.send(event).await?;
                if std::mem::take(&mut first)
                    && let Some(at) = heard_at
                {
                    histogram!("orchestrator_stage_seconds", "stage" => "speech_end_to_first_audio")
                        .record(at.speech_ended.elapsed().as_secs_f64());
                    histogram!("orchestrator_stage_seconds", "stage" => "transcript_to_first_audio")
                        .record(at.transcribed.elapsed().as_secs_f64());
                }
            }
        }
        if let Some(stop) = framer.close() {
            out.send(stop).await?;
        }
        self.await_played(input).await
    }

    /// Waits for `played` (audio that keeps arriving meanwhile is not a
    /// command); a satellite that never says it is taken as done.
    async fn await_played(&self, input: &mut mpsc::Receiver<Incoming>) -> Result<(), StageError> {
        let deadline = Instant::now() + secs(self.timeouts.played_secs);
        loop {
            match tokio::time::timeout_at(deadline.into(), input.recv()).await {
                Ok(Some(Incoming::Played)) => return Ok(()),
                Ok(Some(_)) => {}
                Ok(None) => return Err(StageError::Gone),
                Err(_) => {
                    debug!("no `played` from the satellite");
                    return Ok(());
                }
            }
        }
    }
}

/// The audio of one command on its way to speech to text.
struct Utterance {
    /// Everything heard since speech started (with the pre-roll), 16 kHz
    /// 16-bit mono: sent again if the transcription must start over.
    heard: Vec<u8>,
    /// The open audio stream; `None` once closed early.
    to_stt: Option<mpsc::Sender<Result<Bytes, ApiError>>>,
    /// The transcription of what the stream carries.
    recognition: tokio::task::JoinHandle<Result<String, ApiError>>,
    /// The transcript of a stream closed early, once it is in.
    early_text: Option<Result<String, ApiError>>,
}

impl Utterance {
    /// Starts transcribing, with `first` (the pre-roll) already heard.
    async fn open(pipeline: &Pipeline, first: Vec<u8>) -> Result<Self, StageError> {
        let (tx, rx) = mpsc::channel(256);
        tx.send(Ok(Bytes::from(first.clone())))
            .await
            .map_err(|_| stt_gone())?;
        Ok(Self {
            heard: first,
            to_stt: Some(tx),
            recognition: pipeline.recognize(rx),
            early_text: None,
        })
    }

    /// More audio: kept, and sent while the stream is open.
    async fn push(&mut self, pcm: Bytes) -> Result<(), StageError> {
        self.heard.extend_from_slice(&pcm);
        match &self.to_stt {
            Some(tx) => tx.send(Ok(pcm)).await.map_err(|_| stt_gone()),
            None => Ok(()),
        }
    }

    /// Ends the stream where the speaker paused, so that what was said so
    /// far is transcribed now.
    fn close_early(&mut self) {
        if self.to_stt.is_some() {
            debug!("paused: transcribing what was said so far");
        }
        self.to_stt = None;
    }

    /// Speech resumed after the stream was closed early: the early
    /// transcription is dropped and a new one gets everything heard.
    async fn resume(&mut self, pipeline: &Pipeline) -> Result<(), StageError> {
        if self.to_stt.is_some() {
            return Ok(());
        }
        debug!("speaking again: transcribing everything heard");
        self.recognition.abort();
        counter!("orchestrator_transcriptions_reopened_total").increment(1);
        let heard = std::mem::take(&mut self.heard);
        *self = Self::open(pipeline, heard).await?;
        Ok(())
    }
}

/// The transcript of a stream closed early, once it is in; pending while
/// there is none to wait for.
async fn early(utterance: &mut Option<Utterance>) -> Result<String, ApiError> {
    match utterance {
        Some(u) if u.to_stt.is_none() && u.early_text.is_none() => match (&mut u.recognition).await
        {
            Ok(result) => result,
            Err(join) => Err(ApiError::new(ErrorKind::Internal, join.to_string())),
        },
        _ => std::future::pending().await,
    }
}

fn stt_gone() -> StageError {
    StageError::Stt(ApiError::unavailable(
        "speech to text stopped reading audio",
    ))
}

/// A chunk's audio as 16 kHz mono samples, whatever format it came in.
fn speech_samples(format: WireFormat, audio: &[u8]) -> Result<Vec<f32>, StageError> {
    let format = AudioFormat::new(
        format.rate,
        u32::from(format.width),
        u32::from(format.channels),
    )
    .map_err(|e| StageError::Unsupported(format!("audio format: {e}")))?;
    let mono = format
        .to_mono_f32(audio)
        .map_err(|e| StageError::Unsupported(format!("audio: {e}")))?;
    Ok(if format.rate() == athena_vad::SAMPLE_RATE {
        mono
    } else {
        athena_audio::resample(&mono, format.rate(), athena_vad::SAMPLE_RATE)
    })
}

/// Samples as 16-bit little-endian PCM.
fn pcm16(samples: &[f32]) -> Bytes {
    let mut bytes = Vec::with_capacity(samples.len() * 2);
    for s in samples {
        let v = (s.clamp(-1.0, 1.0) * 32767.0).round() as i16;
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    Bytes::from(bytes)
}
