//! The `[stt]` config section.

use std::net::SocketAddr;

use athena_runtime::{Validate, WyomingConfig};
use serde::{Deserialize, Serialize};

/// The speech-to-text engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Engine {
    /// whisper.cpp (through whisper-rs): ggml or CTranslate2 models; CPU,
    /// CUDA, ROCm, Vulkan, Metal.
    #[default]
    #[serde(rename = "whisper.cpp", alias = "whisper_cpp", alias = "whispercpp")]
    WhisperCpp,
    /// candle: Hugging Face or CTranslate2 models; CPU, CUDA, Metal.
    #[serde(rename = "candle")]
    Candle,
}

impl Engine {
    /// The engine's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::WhisperCpp => "whisper.cpp",
            Self::Candle => "candle",
        }
    }

    /// Whether this build has a GPU back-end for the engine.
    pub fn gpu_built(self) -> bool {
        match self {
            Self::WhisperCpp => cfg!(any(
                feature = "cuda",
                feature = "hipblas",
                feature = "vulkan",
                feature = "metal"
            )),
            Self::Candle => cfg!(any(feature = "cuda", feature = "metal")),
        }
    }

    /// Whether the engine loads models in this format (directly or after a
    /// conversion).
    pub fn accepts(self, files: &crate::source::ModelFiles) -> Result<(), String> {
        use crate::source::ModelFiles;
        match (self, files) {
            (_, ModelFiles::Ct2(_))
            | (Self::WhisperCpp, ModelFiles::Ggml(_))
            | (Self::Candle, ModelFiles::HuggingFace(_)) => Ok(()),
            (engine, files) => Err(format!(
                "the {} engine cannot load {} (whisper.cpp loads ggml files, candle Hugging Face \
                 directories, both CTranslate2 directories)",
                engine.name(),
                files.format()
            )),
        }
    }
}

/// How the stt service listens and transcribes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTP: `/v1/audio/transcriptions`, gRPC, and the ops endpoints.
    pub http: SocketAddr,
    /// Wyoming, for Home Assistant and satellites.
    pub wyoming: WyomingConfig,
    /// The engine: `whisper.cpp` (the CPU default) or `candle`.
    pub engine: crate::Engine,
    /// The model: a catalog name (`athena models list`), or the path of a
    /// ggml file (whisper.cpp), a Hugging Face directory (candle) or a
    /// CTranslate2 (faster-whisper) directory (either engine).
    pub model: String,
    /// CPU threads per transcription.
    pub threads: usize,
    /// Try the GPU (in builds with a GPU feature); falls back to the CPU.
    pub gpu: bool,
    /// Weight precision of the converted model: `q8_0` (faster) or `f16`.
    pub precision: crate::model::Precision,
    /// Encode only as much audio as there is (much faster for commands).
    pub reduced_context: bool,
    /// The spoken language when a request does not say; empty for the model's default.
    pub language: String,
    /// Longest utterance accepted, in seconds.
    pub max_audio_secs: u32,
    /// Transcriptions that run at once.
    pub concurrency: usize,
    /// Requests that may wait for a turn; one more is told `busy`.
    pub max_queue: usize,
    /// Partial transcripts while audio arrives, every this many ms of audio (0: off).
    pub partial_interval_ms: u32,
    /// Cut silence around speech before transcribing (voice activity detection).
    pub trim_silence: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http: SocketAddr::from(([0, 0, 0, 0], 8300)),
            wyoming: WyomingConfig::listening_on("tcp://0.0.0.0:10300"),
            engine: crate::Engine::default(),
            model: "whisper-tiny.en".into(),
            threads: 2,
            gpu: false,
            precision: crate::model::Precision::default(),
            reduced_context: true,
            language: String::new(),
            max_audio_secs: 60,
            concurrency: 1,
            max_queue: 32,
            partial_interval_ms: 1000,
            trim_silence: true,
        }
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), String> {
        self.wyoming.validate()?;
        match crate::source::ModelRef::parse(&self.model) {
            crate::source::ModelRef::Path(path) => {
                let files = crate::source::ModelFiles::detect(&path)
                    .map_err(|e| format!("stt.model: {e}"))?;
                self.engine
                    .accepts(&files)
                    .map_err(|e| format!("stt.model: {e}"))?;
            }
            crate::source::ModelRef::Catalog(name) => {
                let catalog = athena_models::Catalog::built_in().map_err(|e| e.to_string())?;
                let model = catalog.get(&name).map_err(|e| format!("stt.model: {e}"))?;
                if model.kind != athena_models::ModelKind::Stt {
                    return Err(format!("stt.model: {name} is not a speech-to-text model"));
                }
            }
        }
        for (name, value) in [
            ("threads", self.threads),
            ("concurrency", self.concurrency),
            ("max_audio_secs", self.max_audio_secs as usize),
        ] {
            if value == 0 {
                return Err(format!("stt.{name} must be greater than 0"));
            }
        }
        Ok(())
    }
}
