//! The `info` event: what a Wyoming program offers, as it answers `describe`.
//!
//! Required fields (name, attribution, installed, languages, models) are always
//! written, because the reference parser needs them; optional ones are omitted
//! when absent.

use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use crate::event::AudioFormat;
use crate::frame::Data;

/// Who made an artifact and where it comes from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Attribution {
    /// Who made it.
    pub name: String,
    /// Where it is from.
    pub url: String,
}

/// The fields every program, model and voice has.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Artifact {
    /// Name or id.
    pub name: String,
    /// Who made it.
    pub attribution: Attribution,
    /// True when it can be used now.
    pub installed: bool,
    /// For people.
    pub description: Option<String>,
    /// Its version.
    pub version: Option<String>,
}

/// A speech-to-text model.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AsrModel {
    /// Name, attribution, ...
    #[serde(flatten)]
    pub artifact: Artifact,
    /// Languages it understands.
    #[serde(default)]
    pub languages: Vec<String>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}

/// A speech-to-text program.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AsrProgram {
    /// Name, attribution, ...
    #[serde(flatten)]
    pub artifact: Artifact,
    /// Its models.
    #[serde(default)]
    pub models: Vec<AsrModel>,
    /// Sends `transcript-start/chunk/stop` while audio arrives.
    #[serde(default)]
    pub supports_transcript_streaming: bool,
    /// Needs the client to say where speech ends (`audio-stop`).
    #[serde(default = "yes")]
    pub requires_external_vad: bool,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}

fn yes() -> bool {
    true
}

/// One speaker of a multi-speaker voice.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TtsVoiceSpeaker {
    /// Name or id.
    pub name: String,
}

/// A text-to-speech voice.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TtsVoice {
    /// Name, attribution, ...
    #[serde(flatten)]
    pub artifact: Artifact,
    /// Languages it speaks.
    #[serde(default)]
    pub languages: Vec<String>,
    /// Its speakers, if it has several.
    pub speakers: Option<Vec<TtsVoiceSpeaker>>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}

/// A text-to-speech program.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TtsProgram {
    /// Name, attribution, ...
    #[serde(flatten)]
    pub artifact: Artifact,
    /// Its voices.
    #[serde(default)]
    pub voices: Vec<TtsVoice>,
    /// Accepts `synthesize-start/chunk/stop`.
    #[serde(default)]
    pub supports_synthesize_streaming: bool,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}

/// A model of a program that has languages (intent, handle).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LanguageModel {
    /// Name, attribution, ...
    #[serde(flatten)]
    pub artifact: Artifact,
    /// Languages it handles.
    #[serde(default)]
    pub languages: Vec<String>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}

/// An intent-handling program: text in, answer out.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HandleProgram {
    /// Name, attribution, ...
    #[serde(flatten)]
    pub artifact: Artifact,
    /// Its models.
    #[serde(default)]
    pub models: Vec<LanguageModel>,
    /// Sends `handled-start/chunk/stop`.
    #[serde(default)]
    pub supports_handled_streaming: bool,
    /// May act on the home while handling.
    #[serde(default)]
    pub supports_home_control: bool,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}

/// An intent-recognition program.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct IntentProgram {
    /// Name, attribution, ...
    #[serde(flatten)]
    pub artifact: Artifact,
    /// Its models.
    #[serde(default)]
    pub models: Vec<LanguageModel>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}

/// A wake-word model.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WakeModel {
    /// Name, attribution, ...
    #[serde(flatten)]
    pub artifact: Artifact,
    /// Languages it listens for.
    #[serde(default)]
    pub languages: Vec<String>,
    /// The phrase that wakes it.
    pub phrase: Option<String>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}

/// A wake-word program.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WakeProgram {
    /// Name, attribution, ...
    #[serde(flatten)]
    pub artifact: Artifact,
    /// Its models.
    #[serde(default)]
    pub models: Vec<WakeModel>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}

/// A microphone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MicProgram {
    /// Name, attribution, ...
    #[serde(flatten)]
    pub artifact: Artifact,
    /// The format it records in.
    pub mic_format: AudioFormat,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}

/// A speaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SndProgram {
    /// Name, attribution, ...
    #[serde(flatten)]
    pub artifact: Artifact,
    /// The format it plays.
    pub snd_format: AudioFormat,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}

/// A satellite: a microphone and speaker somewhere in the home.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Satellite {
    /// Name, attribution, ...
    #[serde(flatten)]
    pub artifact: Artifact,
    /// The room it is in.
    pub area: Option<String>,
    /// Decides locally where speech ends.
    pub has_vad: Option<bool>,
    /// Wake words it listens for now.
    pub active_wake_words: Option<Vec<String>>,
    /// How many wake words it can listen for at once.
    pub max_active_wake_words: Option<u32>,
    /// Can be told to start a pipeline run.
    pub supports_trigger: Option<bool>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}

/// What a program offers: the answer to `describe`.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Info {
    /// Speech-to-text programs.
    #[serde(default)]
    pub asr: Vec<AsrProgram>,
    /// Text-to-speech programs.
    #[serde(default)]
    pub tts: Vec<TtsProgram>,
    /// Intent-handling programs.
    #[serde(default)]
    pub handle: Vec<HandleProgram>,
    /// Intent-recognition programs.
    #[serde(default)]
    pub intent: Vec<IntentProgram>,
    /// Wake-word programs.
    #[serde(default)]
    pub wake: Vec<WakeProgram>,
    /// Microphones.
    #[serde(default)]
    pub mic: Vec<MicProgram>,
    /// Speakers.
    #[serde(default)]
    pub snd: Vec<SndProgram>,
    /// The satellite itself, when the program is one.
    pub satellite: Option<Satellite>,
    /// Fields this crate does not know.
    #[serde(flatten)]
    pub extra: Data,
}
