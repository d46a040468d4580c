//! The Piper engine: phonemes from espeak-ng, voices run by ONNX Runtime.

pub mod phonemize;
pub mod piper;

pub use piper::{PiperVoice, Scales, VoiceConfig, VoiceError, to_pcm16};
