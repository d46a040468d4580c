//! Whisper weights: reading CTranslate2 (faster-whisper) directories and
//! converting them into the ggml file whisper.cpp loads or the Hugging Face
//! safetensors directory candle loads.

pub mod ct2;
pub mod ggml;
pub mod hf;
mod layout;
pub mod mel;

pub use ct2::{Ct2Error, Ct2Model};
pub use ggml::{
    ConvertError, Precision, WhisperHparams, convert_ct2_to_ggml, convert_ct2_to_ggml_as,
    ensure_converted,
};
pub use hf::{convert_ct2_to_hf, ensure_hf};
