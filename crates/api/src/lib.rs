//! The interfaces Athena's services call each other through.
//!
//! Each interface is a trait over domain types ([`stt::SpeechToText`],
//! [`tts::TextToSpeech`]). A service implements it; a caller holds an
//! `Arc<dyn Trait>` and cannot tell whether it is the implementation itself
//! (all services in one process) or a gRPC client (services apart). The gRPC
//! side of each interface — client, server adapter, and the conversions
//! between wire and domain types — lives here too, once, and so do the
//! clients for the same interfaces served over Wyoming
//! ([`wyoming_client`]). A `url` setting picks one of them ([`location`]).
//! [`text`] cuts text into the sentences speech is made of.

pub mod error;
pub mod location;
pub mod stt;
pub mod text;
pub mod tts;
mod wire;
pub mod wyoming_client;

pub use error::{Error, ErrorKind};
