//! Speech-to-text engines behind one blocking interface.
//!
//! A [`Transcriber`] turns 16 kHz mono `f32` samples into text. It is
//! CPU-bound (or GPU-bound) and blocks: async callers run it on a blocking
//! thread (`tokio::task::spawn_blocking`), never on the runtime's workers.
//! Engines are loaded once and shared (`Arc<dyn Transcriber>`); a call holds
//! no lock on the model, so concurrent calls run side by side.

pub mod candle;
pub mod policy;
pub mod wer;
pub mod whisper_cpp;

pub use candle::{CandleConfig, CandleWhisper};
pub use whisper_cpp::{WhisperCpp, WhisperCppConfig};

/// The sample rate every engine takes.
pub const SAMPLE_RATE: u32 = 16_000;

/// Options of one transcription.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TranscribeOptions {
    /// The spoken language as an ISO 639-1 code (`"en"`); `None` detects it
    /// where the model can, and means English for English-only models.
    pub language: Option<String>,
    /// Words or phrases likely to be said (names of rooms, devices, people),
    /// given to the model as an initial prompt.
    pub hints: Vec<String>,
    /// Let the encoder look only at as much audio as there is, rather than
    /// at a full 30-second window: much faster for short commands, at some
    /// risk to accuracy. Audio of 30 s or more always gets full windows.
    pub reduced_context: bool,
}

/// The result of one transcription.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcription {
    /// The text, trimmed, without special tokens.
    pub text: String,
    /// The language it was transcribed in (ISO 639-1).
    pub language: String,
    /// Duration of the audio transcribed, in seconds.
    pub audio_seconds: f32,
}

/// What an engine is and can do, for `info` answers and readiness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineInfo {
    /// The engine, e.g. `whisper.cpp`.
    pub engine: String,
    /// The engine's version.
    pub version: String,
    /// The model, e.g. `whisper tiny.en`.
    pub model: String,
    /// Languages it transcribes (ISO 639-1), in the model's order.
    pub languages: Vec<String>,
    /// Whether it can detect the language itself.
    pub detects_language: bool,
}

/// Why a transcription (or loading an engine) failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The model could not be loaded.
    #[error("cannot load speech-to-text model {}: {reason}", .path.display())]
    Load {
        /// The model file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// The audio is not usable (empty, not finite).
    #[error("invalid audio: {0}")]
    InvalidAudio(String),
    /// The model does not transcribe the requested language.
    #[error("language {language:?} is not supported by this model (supported: {supported})")]
    UnsupportedLanguage {
        /// The requested language.
        language: String,
        /// The supported ones, comma-separated (abbreviated when long).
        supported: String,
    },
    /// The engine failed while running.
    #[error("speech-to-text engine failed: {0}")]
    Inference(String),
}

/// A speech-to-text engine.
pub trait Transcriber: Send + Sync {
    /// What this engine is and can do.
    fn describe(&self) -> EngineInfo;

    /// Transcribes 16 kHz mono samples in [-1, 1]. Blocks until done.
    fn transcribe(
        &self,
        audio_16k_mono: &[f32],
        options: &TranscribeOptions,
    ) -> Result<Transcription, EngineError>;
}
