//! The Piper engine: phonemes from espeak-ng, voices run by ONNX Runtime,
//! cut at the vocoder so that sentences stream in pieces.

pub mod phonemize;
pub mod piper;
pub mod split;

pub use piper::{Device, PiperVoice, Scales, SpeakOptions, VoiceConfig, VoiceError, to_pcm16};
