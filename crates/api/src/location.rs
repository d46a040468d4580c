//! Where a service is, as a `url` setting names it, and the client that
//! reaches it there:
//!
//! - `http://host:port` (or `https://`): Athena's gRPC interface;
//! - `tcp://host:port` or `unix:///path`: any Wyoming server;
//! - `in-process`: the service running in the same process (the `athena`
//!   binary), called directly.

use std::sync::Arc;

use crate::error::Error;
use crate::stt::{GrpcSpeechToText, SpeechToText};
use crate::tts::{GrpcTextToSpeech, TextToSpeech};
use crate::wyoming_client::{WyomingSpeechToText, WyomingTextToSpeech};

/// The `url` that names the service in the same process.
pub const IN_PROCESS: &str = "in-process";

/// Where a service is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// Athena's gRPC interface at this URL.
    Grpc(String),
    /// A Wyoming server at this URI.
    Wyoming(String),
    /// The same process.
    InProcess,
}

impl Location {
    /// Reads a `url` setting.
    pub fn parse(url: &str) -> Result<Self, String> {
        if url == IN_PROCESS {
            Ok(Self::InProcess)
        } else if url.starts_with("http://") || url.starts_with("https://") {
            Ok(Self::Grpc(url.to_owned()))
        } else if url.starts_with("tcp://") || url.starts_with("unix://") {
            Ok(Self::Wyoming(url.to_owned()))
        } else {
            Err(format!(
                "{url:?} is not http(s):// (gRPC), tcp:// or unix:// (Wyoming), or {IN_PROCESS:?}"
            ))
        }
    }
}

/// What `in-process` needs and did not get.
fn not_here(what: &str) -> Error {
    Error::invalid(format!(
        "{what} is {IN_PROCESS:?}, but this process does not run that service \
         (only the athena binary does, with the service enabled)"
    ))
}

/// Speech to text at `url`; `here` is the service in this process, if any.
pub fn speech_to_text(
    url: &str,
    here: Option<Arc<dyn SpeechToText>>,
) -> Result<Arc<dyn SpeechToText>, Error> {
    Ok(match Location::parse(url).map_err(Error::invalid)? {
        Location::Grpc(url) => Arc::new(GrpcSpeechToText::connect_lazy(&url)?),
        Location::Wyoming(uri) => Arc::new(WyomingSpeechToText::new(&uri)?),
        Location::InProcess => here.ok_or_else(|| not_here("stt.url"))?,
    })
}

/// Text to speech at `url`; `here` is the service in this process, if any.
pub fn text_to_speech(
    url: &str,
    here: Option<Arc<dyn TextToSpeech>>,
) -> Result<Arc<dyn TextToSpeech>, Error> {
    Ok(match Location::parse(url).map_err(Error::invalid)? {
        Location::Grpc(url) => Arc::new(GrpcTextToSpeech::connect_lazy(&url)?),
        Location::Wyoming(uri) => Arc::new(WyomingTextToSpeech::new(&uri)?),
        Location::InProcess => here.ok_or_else(|| not_here("tts.url"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_where_a_service_is() {
        assert_eq!(
            Location::parse("http://stt:8300"),
            Ok(Location::Grpc("http://stt:8300".into()))
        );
        assert_eq!(
            Location::parse("tcp://piper:10200"),
            Ok(Location::Wyoming("tcp://piper:10200".into()))
        );
        assert_eq!(
            Location::parse("unix:///run/stt.sock"),
            Ok(Location::Wyoming("unix:///run/stt.sock".into()))
        );
        assert_eq!(Location::parse("in-process"), Ok(Location::InProcess));
        assert!(Location::parse("stt:8300").is_err());
        assert!(Location::parse("").is_err());
    }

    #[test]
    fn in_process_needs_the_service_here() {
        let Err(e) = speech_to_text(IN_PROCESS, None) else {
            panic!("in-process without the service is an error");
        };
        assert_eq!(e.kind, crate::ErrorKind::InvalidArgument);
        assert!(e.message.contains("stt.url"), "{e}");
        assert!(text_to_speech(IN_PROCESS, None).is_err());
        assert!(text_to_speech("tcp://127.0.0.1:1", None).is_ok());
        assert!(speech_to_text("ftp://x", None).is_err());
    }
}
