//! Athena's internal gRPC API, generated from `proto/` at build time.
//!
//! These are wire types. Services convert them to their domain types on
//! receipt (validating once, there) and never use them as their model.

#![allow(missing_docs, missing_debug_implementations, unreachable_pub)]
#![allow(clippy::all)]

/// Types shared by the audio services.
pub mod audio {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("athena.audio.v1");
    }
}

/// Speech to text.
pub mod stt {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("athena.stt.v1");
    }
}

/// Text to speech.
pub mod tts {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("athena.tts.v1");
    }
}
