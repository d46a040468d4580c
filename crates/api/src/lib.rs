//! The interfaces Athena's services call each other through.
//!
//! Each interface is a trait over domain types ([`stt::SpeechToText`],
//! [`tts::TextToSpeech`]). A service implements it; a caller holds an
//! `Arc<dyn Trait>` and cannot tell whether it is the implementation itself
//! (all services in one process) or a gRPC client (services apart). The gRPC
//! side of each interface — client, server adapter, and the conversions
//! between wire and domain types — lives here too, once.

pub mod error;
pub mod stt;
pub mod tts;
mod wire;

pub use error::{Error, ErrorKind};
