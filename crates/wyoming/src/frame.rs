//! The wire-level event: a type name, a JSON object of data and a binary payload.
//!
//! A [`Frame`] is what the codec reads and writes. It knows nothing about what
//! the event means; [`crate::Event`] gives it a typed shape.

use bytes::Bytes;
use serde_json::{Map, Value};

/// The JSON object an event carries in its `data`.
pub type Data = Map<String, Value>;

/// One Wyoming event as it travels on the wire.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Frame {
    /// The event type, e.g. `audio-chunk`.
    pub kind: String,
    /// The event's data: inline `data` from the header merged with the data block.
    pub data: Data,
    /// The binary payload (PCM audio for `audio-chunk`); empty when absent.
    pub payload: Bytes,
}

impl Frame {
    /// A frame with no data and no payload.
    pub fn new(kind: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            ..Self::default()
        }
    }

    /// A frame with data and no payload.
    pub fn with_data(kind: impl Into<String>, data: Data) -> Self {
        Self {
            kind: kind.into(),
            data,
            payload: Bytes::new(),
        }
    }
}
