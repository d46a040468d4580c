//! Every Wyoming event type as a typed Rust value.
//!
//! Each event struct keeps the fields it does not know in `extra`, and an event
//! type this crate does not know becomes [`Event::Unknown`]: a newer peer's
//! additions travel through Athena untouched, as they do through the reference.

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use serde_with::skip_serializing_none;

use crate::frame::{Data, Frame};
use crate::info::Info;

/// A known event type whose data does not have the shape the protocol gives it.
#[derive(Debug, thiserror::Error)]
#[error("invalid `{kind}` event: {source}")]
pub struct EventError {
    /// The event type.
    pub kind: String,
    /// What was wrong with its data.
    #[source]
    pub source: serde_json::Error,
}

impl EventError {
    /// A stable, machine-readable code for the `error` event sent to the peer.
    pub fn code(&self) -> &'static str {
        "invalid-event"
    }
}

/// Timestamps are documented as integers (milliseconds), but peers have sent
/// floats; accept both rather than drop someone's audio.
fn lenient_timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        _ => None,
    })
}

macro_rules! events {
    ($( $(#[$doc:meta])* $variant:ident($body:ty) = $name:literal, )*) => {
        /// A typed Wyoming event.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Event {
            $( $(#[$doc])* $variant($body), )*
            /// An event type this crate does not know, kept as it came.
            Unknown(Frame),
        }

        impl Event {
            /// The event's type name on the wire.
            pub fn kind(&self) -> &str {
                match self {
                    $( Self::$variant(_) => $name, )*
                    Self::Unknown(frame) => &frame.kind,
                }
            }
        }

        impl TryFrom<Frame> for Event {
            type Error = EventError;

            fn try_from(frame: Frame) -> Result<Self, EventError> {
                let Frame { kind, data, payload } = frame;
                let mut event = match kind.as_str() {
                    $( $name => Self::$variant(from_data(&kind, data)?), )*
                    _ => return Ok(Self::Unknown(Frame { kind, data, payload })),
                };
                if let Self::AudioChunk(chunk) = &mut event {
                    chunk.audio = payload;
                }
                Ok(event)
            }
        }

        impl From<Event> for Frame {
            fn from(event: Event) -> Frame {
                // The generic arm for `AudioChunk` is shadowed by its own arm.
                #[allow(unreachable_patterns)]
                match event {
                    Event::AudioChunk(mut chunk) => {
                        let audio = std::mem::take(&mut chunk.audio);
                        Frame { kind: "audio-chunk".into(), data: to_data(&chunk), payload: audio }
                    }
                    $( Event::$variant(body) => Frame::with_data($name, to_data(&body)), )*
                    Event::Unknown(frame) => frame,
                }
            }
        }

        $(
            impl From<$body> for Event {
                fn from(body: $body) -> Event {
                    Event::$variant(body)
                }
            }
        )*
    };
}

// `info` is by far the largest event; boxing it keeps every other event small.
impl From<Info> for Event {
    fn from(info: Info) -> Event {
        Event::Info(Box::new(info))
    }
}

fn from_data<T: serde::de::DeserializeOwned>(kind: &str, data: Data) -> Result<T, EventError> {
    serde_json::from_value(Value::Object(data)).map_err(|source| EventError {
        kind: kind.to_owned(),
        source,
    })
}

fn to_data<T: Serialize>(body: &T) -> Data {
    // Every event struct serialises to a JSON object with string keys.
    match serde_json::to_value(body) {
        Ok(Value::Object(map)) => map,
        _ => Data::new(),
    }
}

/// Declares event structs that carry no data of their own.
macro_rules! empty_events {
    ($( $(#[$doc:meta])* $name:ident, )*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
            pub struct $name {
                /// Fields this crate does not know.
                #[serde(flatten)]
                pub extra: Data,
            }
        )*
    };
}

events! {
    /// A stream of audio begins.
    AudioStart(AudioStart) = "audio-start",
    /// Some PCM audio.
    AudioChunk(AudioChunk) = "audio-chunk",
    /// A stream of audio ends.
    AudioStop(AudioStop) = "audio-stop",
    /// Asks for [`Info`].
    Describe(Describe) = "describe",
    /// What a program offers.
    Info(Box<Info>) = "info",
    /// Selects one of the programs in [`Info`] for this connection.
    SelectProgram(SelectProgram) = "select-program",
    /// Asks for the audio that follows to be transcribed.
    Transcribe(Transcribe) = "transcribe",
    /// The final text of a transcription.
    Transcript(Transcript) = "transcript",
    /// A streamed transcription begins.
    TranscriptStart(TranscriptStart) = "transcript-start",
    /// Part of a streamed transcription.
    TranscriptChunk(TranscriptChunk) = "transcript-chunk",
    /// A streamed transcription ends.
    TranscriptStop(TranscriptStop) = "transcript-stop",
    /// Asks for text to be spoken.
    Synthesize(Synthesize) = "synthesize",
    /// Streamed text to speak begins.
    SynthesizeStart(SynthesizeStart) = "synthesize-start",
    /// Part of streamed text to speak.
    SynthesizeChunk(SynthesizeChunk) = "synthesize-chunk",
    /// Streamed text to speak ends.
    SynthesizeStop(SynthesizeStop) = "synthesize-stop",
    /// All audio for streamed text has been sent.
    SynthesizeStopped(SynthesizeStopped) = "synthesize-stopped",
    /// Asks for wake words to be listened for.
    Detect(Detect) = "detect",
    /// A wake word was heard.
    Detection(Detection) = "detection",
    /// The audio ended without a wake word.
    NotDetected(NotDetected) = "not-detected",
    /// Speech began.
    VoiceStarted(VoiceStarted) = "voice-started",
    /// Speech ended.
    VoiceStopped(VoiceStopped) = "voice-stopped",
    /// A satellite asks for a pipeline run.
    RunPipeline(RunPipeline) = "run-pipeline",
    /// The server takes control of a satellite.
    RunSatellite(RunSatellite) = "run-satellite",
    /// The satellite should stop streaming (muted).
    PauseSatellite(PauseSatellite) = "pause-satellite",
    /// A satellite connected to the server.
    SatelliteConnected(SatelliteConnected) = "satellite-connected",
    /// A satellite disconnected from the server.
    SatelliteDisconnected(SatelliteDisconnected) = "satellite-disconnected",
    /// The satellite started streaming microphone audio.
    StreamingStarted(StreamingStarted) = "streaming-started",
    /// The satellite stopped streaming microphone audio.
    StreamingStopped(StreamingStopped) = "streaming-stopped",
    /// The reply audio finished playing.
    Played(Played) = "played",
    /// Asks for the intent of a text.
    Recognize(Recognize) = "recognize",
    /// A recognised intent.
    Intent(Intent) = "intent",
    /// No intent was recognised.
    NotRecognized(NotRecognized) = "not-recognized",
    /// A stream of intents begins.
    IntentsStart(IntentsStart) = "intents-start",
    /// A stream of intents ends.
    IntentsStop(IntentsStop) = "intents-stop",
    /// A request was handled; `text` is the answer.
    Handled(Handled) = "handled",
    /// A request could not be handled.
    NotHandled(NotHandled) = "not-handled",
    /// A streamed answer begins.
    HandledStart(HandledStart) = "handled-start",
    /// Part of a streamed answer.
    HandledChunk(HandledChunk) = "handled-chunk",
    /// A streamed answer ends.
    HandledStop(HandledStop) = "handled-stop",
    /// A timer started.
    TimerStarted(TimerStarted) = "timer-started",
    /// A timer changed.
    TimerUpdated(TimerUpdated) = "timer-updated",
    /// A timer was cancelled.
    TimerCancelled(TimerCancelled) = "timer-cancelled",
    /// A timer finished.
    TimerFinished(TimerFinished) = "timer-finished",
    /// Something went wrong.
    Error(Error) = "error",
    /// Asks for a [`Pong`].
    Ping(Ping) = "ping",
    /// Answers a [`Ping`].
    Pong(Pong) = "pong",
    /// An application-defined event.
    UserEvent(UserEvent) = "user-event",
}

empty_events! {
    /// Asks for [`Info`].
    Describe,
    /// A streamed transcription ends.
    TranscriptStop,
    /// Streamed text to speak ends.
    SynthesizeStop,
    /// All audio for streamed text has been sent.
    SynthesizeStopped,
    /// The server takes control of a satellite.
    RunSatellite,
    /// The satellite should stop streaming (muted).
    PauseSatellite,
    /// A satellite connected to the server.
    SatelliteConnected,
    /// A satellite disconnected from the server.
    SatelliteDisconnected,
    /// The satellite started streaming microphone audio.
    StreamingStarted,
    /// The satellite stopped streaming microphone audio.
    StreamingStopped,
    /// The reply audio finished playing.
    Played,
    /// A streamed answer ends.
    HandledStop,
}

/// A PCM audio format: samples per second, bytes per sample, channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AudioFormat {
    /// Samples per second per channel.
    pub rate: u32,
    /// Bytes per sample (2 for 16-bit).
    pub width: u16,
    /// Interleaved channels.
    pub channels: u16,
}

impl AudioFormat {
    /// 16 kHz, 16-bit, mono: what speech-to-text engines expect.
    pub const SPEECH: Self = Self {
        rate: 16_000,
        width: 2,
        channels: 1,
    };

    /// Bytes of audio per second in this format.
    pub fn bytes_per_second(&self) -> u64 {
        u64::from(self.rate) * u64::from(self.width) * u64::from(self.channels)
    }
}

/// A stream of audio begins.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioStart {
    /// The audio's format.
    #[serde(flatten)]
    pub format: AudioFormat,
    /// Milliseconds, by convention.
    #[serde(default, deserialize_with = "lenient_timestamp")]
    pub timestamp: Option<i64>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}

/// Some PCM audio. Real satellites send chunks without an `audio-start` first,
/// so every chunk carries its format.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioChunk {
    /// The audio's format.
    #[serde(flatten)]
    pub format: AudioFormat,
    /// Milliseconds, by convention.
    #[serde(default, deserialize_with = "lenient_timestamp")]
    pub timestamp: Option<i64>,
    /// The samples (the frame's payload).
    #[serde(skip)]
    pub audio: Bytes,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}

/// A stream of audio ends.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AudioStop {
    /// Milliseconds, by convention.
    #[serde(default, deserialize_with = "lenient_timestamp")]
    pub timestamp: Option<i64>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}

/// Selects one of the programs in [`Info`] by name for this connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelectProgram {
    /// The program's name.
    pub name: String,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}

/// Asks for the audio that follows to be transcribed.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Transcribe {
    /// The model to use.
    pub name: Option<String>,
    /// The spoken language, e.g. `en`.
    pub language: Option<String>,
    /// Opaque context returned with the transcript.
    pub context: Option<Data>,
    /// How eagerly the server's VAD ends speech.
    pub vad_sensitivity: Option<String>,
    /// Names likely to be spoken (entity names), to bias recognition.
    pub transcript_names: Option<Vec<String>>,
    /// Other terms likely to be spoken.
    pub transcript_terms: Option<Vec<String>>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}

/// The final text of a transcription.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Transcript {
    /// What was said.
    pub text: String,
    /// The language it was said in.
    pub language: Option<String>,
    /// The context from [`Transcribe`].
    pub context: Option<Data>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}

/// A streamed transcription begins.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TranscriptStart {
    /// The language being transcribed.
    pub language: Option<String>,
    /// The context from [`Transcribe`].
    pub context: Option<Data>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}

/// A piece of text: [`TranscriptChunk`], [`SynthesizeChunk`], [`HandledChunk`].
macro_rules! text_chunks {
    ($( $(#[$doc:meta])* $name:ident, )*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
            pub struct $name {
                /// The text.
                pub text: String,
                /// Fields this crate does not know.
                #[serde(flatten)]
                pub extra: Data,
            }
        )*
    };
}

text_chunks! {
    /// Part of a streamed transcription.
    TranscriptChunk,
    /// Part of streamed text to speak.
    SynthesizeChunk,
    /// Part of a streamed answer.
    HandledChunk,
}

/// Which voice should speak.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SynthesizeVoice {
    /// The voice's name.
    pub name: Option<String>,
    /// Any voice of this language.
    pub language: Option<String>,
    /// A speaker of a multi-speaker voice.
    pub speaker: Option<String>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}

/// Asks for text to be spoken.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Synthesize {
    /// What to say.
    pub text: String,
    /// Who says it.
    pub voice: Option<SynthesizeVoice>,
    /// `text` or `ssml`.
    pub text_format: Option<String>,
    /// Opaque context.
    pub context: Option<Data>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}

/// Streamed text to speak begins.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SynthesizeStart {
    /// Who says it.
    pub voice: Option<SynthesizeVoice>,
    /// `text` or `ssml`.
    pub text_format: Option<String>,
    /// Opaque context.
    pub context: Option<Data>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}

/// Asks for wake words to be listened for.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Detect {
    /// The wake word models to run (all when absent).
    pub names: Option<Vec<String>>,
    /// Opaque context.
    pub context: Option<Data>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}

/// A wake word was heard.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Detection {
    /// Which wake word.
    pub name: Option<String>,
    /// When, in milliseconds by convention.
    #[serde(default, deserialize_with = "lenient_timestamp")]
    pub timestamp: Option<i64>,
    /// Who said it, if known.
    pub speaker: Option<String>,
    /// Opaque context.
    pub context: Option<Data>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}

/// Events that carry only an optional `context`.
macro_rules! context_events {
    ($( $(#[$doc:meta])* $name:ident, )*) => {
        $(
            $(#[$doc])*
            #[skip_serializing_none]
            #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
            pub struct $name {
                /// Opaque context.
                pub context: Option<Data>,
                /// Fields this crate does not know.
                #[serde(flatten)]
                pub extra: Data,
            }
        )*
    };
}

context_events! {
    /// The audio ended without a wake word.
    NotDetected,
    /// A stream of intents begins.
    IntentsStart,
    /// A stream of intents ends.
    IntentsStop,
    /// A streamed answer begins.
    HandledStart,
}

/// Events that carry only an optional `timestamp`.
macro_rules! timestamp_events {
    ($( $(#[$doc:meta])* $name:ident, )*) => {
        $(
            $(#[$doc])*
            #[skip_serializing_none]
            #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
            pub struct $name {
                /// When, in milliseconds by convention.
                #[serde(default, deserialize_with = "lenient_timestamp")]
                pub timestamp: Option<i64>,
                /// Fields this crate does not know.
                #[serde(flatten)]
                pub extra: Data,
            }
        )*
    };
}

timestamp_events! {
    /// Speech began.
    VoiceStarted,
    /// Speech ended.
    VoiceStopped,
}

/// Where a pipeline starts or ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PipelineStage {
    /// Wake word detection.
    Wake,
    /// Speech to text.
    Asr,
    /// Intent recognition.
    Intent,
    /// Intent handling.
    Handle,
    /// Text to speech.
    Tts,
}

/// A satellite asks for a pipeline run. Older satellites also send `name` and
/// `snd_format`; they land in `extra`.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunPipeline {
    /// The first stage to run.
    pub start_stage: PipelineStage,
    /// The last stage to run.
    pub end_stage: PipelineStage,
    /// The wake word that started this run (start at `asr`).
    pub wake_word_name: Option<String>,
    /// Wake words to listen for (start at `wake`).
    pub wake_word_names: Option<Vec<String>>,
    /// Text to speak (start at `tts`).
    pub announce_text: Option<String>,
    /// Run again when this run ends.
    #[serde(default)]
    pub restart_on_end: bool,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}

/// Asks for the intent of a text.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Recognize {
    /// The text.
    pub text: String,
    /// Opaque context.
    pub context: Option<Data>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}

/// A named value found in a text.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Entity {
    /// The slot name.
    pub name: String,
    /// The value, of any JSON type.
    #[serde(default)]
    pub value: Value,
}

/// A recognised intent.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Intent {
    /// The intent's name.
    pub name: String,
    /// Its entities.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<Entity>,
    /// The text it was recognised in.
    pub text: Option<String>,
    /// Opaque context.
    pub context: Option<Data>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}

/// Events that carry an optional `text` and `context`.
macro_rules! text_context_events {
    ($( $(#[$doc:meta])* $name:ident, )*) => {
        $(
            $(#[$doc])*
            #[skip_serializing_none]
            #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
            pub struct $name {
                /// The text.
                pub text: Option<String>,
                /// Opaque context.
                pub context: Option<Data>,
                /// Fields this crate does not know.
                #[serde(flatten)]
                pub extra: Data,
            }
        )*
    };
}

text_context_events! {
    /// No intent was recognised.
    NotRecognized,
    /// A request was handled; `text` is the answer.
    Handled,
    /// A request could not be handled; `text` says why.
    NotHandled,
}

/// A timer started.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TimerStarted {
    /// The timer's id.
    pub id: String,
    /// Its length.
    pub total_seconds: i64,
    /// Its name, if it has one.
    pub name: Option<String>,
    /// The hours part as spoken.
    pub start_hours: Option<i64>,
    /// The minutes part as spoken.
    pub start_minutes: Option<i64>,
    /// The seconds part as spoken.
    pub start_seconds: Option<i64>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}

/// A timer changed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TimerUpdated {
    /// The timer's id.
    pub id: String,
    /// False while paused.
    pub is_active: bool,
    /// Its new length.
    pub total_seconds: i64,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}

/// Events that carry only a timer `id`.
macro_rules! timer_id_events {
    ($( $(#[$doc:meta])* $name:ident, )*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
            pub struct $name {
                /// The timer's id.
                pub id: String,
                /// Fields this crate does not know.
                #[serde(flatten)]
                pub extra: Data,
            }
        )*
    };
}

timer_id_events! {
    /// A timer was cancelled.
    TimerCancelled,
    /// A timer finished.
    TimerFinished,
}

/// Something went wrong.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Error {
    /// For people.
    pub text: String,
    /// For programs.
    pub code: Option<String>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}

impl Error {
    /// An error event with a code.
    pub fn new(code: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            code: Some(code.into()),
            extra: Data::new(),
        }
    }
}

/// Ping and pong carry an optional text that the pong copies.
macro_rules! ping_events {
    ($( $(#[$doc:meta])* $name:ident, )*) => {
        $(
            $(#[$doc])*
            #[skip_serializing_none]
            #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
            pub struct $name {
                /// Text the pong copies from the ping.
                pub text: Option<String>,
                /// Fields this crate does not know.
                #[serde(flatten)]
                pub extra: Data,
            }
        )*
    };
}

ping_events! {
    /// Asks for a [`Pong`].
    Ping,
    /// Answers a [`Ping`].
    Pong,
}

/// An application-defined event.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct UserEvent {
    /// The application's event name.
    pub name: String,
    /// The application's data.
    pub data: Option<Data>,
    /// Opaque context.
    pub context: Option<Data>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn frame(kind: &str, data: Value) -> Frame {
        Frame::with_data(kind, data.as_object().unwrap().clone())
    }

    #[test]
    fn audio_chunk_takes_the_payload() {
        let mut f = frame(
            "audio-chunk",
            json!({"rate": 16000, "width": 2, "channels": 1, "timestamp": null}),
        );
        f.payload = Bytes::from_static(b"\x01\x02");
        let Event::AudioChunk(chunk) = Event::try_from(f.clone()).unwrap() else {
            panic!("not an audio chunk")
        };
        assert_eq!(chunk.format, AudioFormat::SPEECH);
        assert_eq!(chunk.audio, f.payload);
        let back = Frame::from(Event::AudioChunk(chunk));
        assert_eq!(back.payload, f.payload);
        assert!(
            !back.data.contains_key("timestamp"),
            "null fields are omitted"
        );
    }

    #[test]
    fn keeps_unknown_fields_and_types() {
        let f = frame("ping", json!({"text": "hi", "future": [1, 2]}));
        let event = Event::try_from(f.clone()).unwrap();
        assert!(matches!(&event, Event::Ping(p) if p.extra["future"] == json!([1, 2])));
        assert_eq!(Frame::from(event), f);

        let f = frame("from-the-future", json!({"x": 1}));
        let event = Event::try_from(f.clone()).unwrap();
        assert_eq!(event.kind(), "from-the-future");
        assert_eq!(Frame::from(event), f);
    }

    #[test]
    fn old_satellite_run_pipeline_fields_are_accepted() {
        let f = frame(
            "run-pipeline",
            json!({"start_stage": "asr", "end_stage": "tts", "name": "sat",
                   "snd_format": {"rate": 22050, "width": 2, "channels": 1}}),
        );
        let Event::RunPipeline(run) = Event::try_from(f).unwrap() else {
            panic!("not run-pipeline")
        };
        assert_eq!(run.start_stage, PipelineStage::Asr);
        assert!(!run.restart_on_end);
        assert_eq!(run.extra["name"], "sat");
    }

    #[test]
    fn malformed_known_events_are_errors() {
        for (kind, data) in [
            ("audio-chunk", json!({"rate": 16000})),
            ("transcript", json!({"text": 5})),
            (
                "run-pipeline",
                json!({"start_stage": "dance", "end_stage": "tts"}),
            ),
            ("timer-updated", json!({"id": "t"})),
        ] {
            let err = Event::try_from(frame(kind, data)).unwrap_err();
            assert_eq!(err.kind, kind);
        }
    }

    #[test]
    fn float_timestamps_are_accepted() {
        let f = frame("voice-started", json!({"timestamp": 1234.9}));
        let event = Event::try_from(f).unwrap();
        assert_eq!(
            event,
            Event::VoiceStarted(VoiceStarted {
                timestamp: Some(1234),
                extra: Data::new()
            })
        );
    }
}
