//! The one error type of the service interfaces, and the one place where it
//! becomes (and comes back from) each protocol's error.

use athena_runtime::ApiError;
use axum::http::StatusCode;
use tonic::{Code, Status};

/// What kind of failure: decides the gRPC code, the HTTP status, and what the
/// orchestrator tells the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is wrong (bad audio format, empty text).
    InvalidArgument,
    /// A named thing (model, voice, speaker) does not exist.
    NotFound,
    /// Too much work queued; try again shortly.
    Busy,
    /// The service or what it depends on is down or not loaded.
    Unavailable,
    /// The deadline passed before the work was done.
    Timeout,
    /// A bug or an unexpected failure.
    Internal,
}

impl ErrorKind {
    /// A stable code for logs, metrics and Wyoming `error` events.
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidArgument => "invalid-argument",
            Self::NotFound => "not-found",
            Self::Busy => "busy",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::Internal => "internal",
        }
    }

    /// The kind a [`Self::code`] names; `None` for a code from elsewhere.
    pub fn from_code(code: &str) -> Option<Self> {
        [
            Self::InvalidArgument,
            Self::NotFound,
            Self::Busy,
            Self::Unavailable,
            Self::Timeout,
            Self::Internal,
        ]
        .into_iter()
        .find(|kind| kind.code() == code)
    }
}

/// A failure of a service call, with a message fit for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// What happened, for people; never secrets or internals.
    pub message: String,
}

impl Error {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The request is wrong.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }

    /// A named thing does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// The service or its dependency is down.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        let code = match e.kind {
            ErrorKind::InvalidArgument => Code::InvalidArgument,
            ErrorKind::NotFound => Code::NotFound,
            ErrorKind::Busy => Code::ResourceExhausted,
            ErrorKind::Unavailable => Code::Unavailable,
            ErrorKind::Timeout => Code::DeadlineExceeded,
            ErrorKind::Internal => Code::Internal,
        };
        Status::new(code, e.message)
    }
}

impl From<Status> for Error {
    fn from(s: Status) -> Self {
        let kind = match s.code() {
            Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition => {
                ErrorKind::InvalidArgument
            }
            Code::NotFound => ErrorKind::NotFound,
            Code::ResourceExhausted => ErrorKind::Busy,
            Code::Unavailable | Code::Cancelled | Code::Aborted => ErrorKind::Unavailable,
            Code::DeadlineExceeded => ErrorKind::Timeout,
            _ => ErrorKind::Internal,
        };
        Self::new(kind, s.message())
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = match e.kind {
            ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Busy => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::Internal => return ApiError::internal(&e),
        };
        ApiError::new(status, e.kind.code(), e.message)
    }
}

impl From<athena_audio::FormatError> for Error {
    fn from(e: athena_audio::FormatError) -> Self {
        Self::invalid(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_survive_a_trip_through_grpc() {
        for kind in [
            ErrorKind::InvalidArgument,
            ErrorKind::NotFound,
            ErrorKind::Busy,
            ErrorKind::Unavailable,
            ErrorKind::Timeout,
            ErrorKind::Internal,
        ] {
            let e = Error::new(kind, "why");
            assert_eq!(Error::from(Status::from(e.clone())), e);
        }
    }
}
