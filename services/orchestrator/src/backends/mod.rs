//! The services the pipeline works through. The action stage's are each
//! behind a trait so the stage does not care where they run: [`Home`] (the
//! house, through ha-bridge: [`HaBridgeClient`]) and [`ModePolicy`] (what
//! the current mode allows, through mode-service: [`ModeClient`]). Answers
//! come from OpenAI-compatible models ([`llm`]) with passages from rag-api
//! ([`rag`]); [`breaker`] keeps a failing backend from being called for a
//! while.
//!
//! Every call has a deadline and fails with a [`BackendError`] whose kind a
//! caller branches on. This file is the one place where a transport failure
//! or an error answer becomes a [`BackendError`].

pub mod breaker;
pub mod ha_bridge;
pub mod llm;
pub mod mode;
pub mod rag;

use std::fmt;
use std::time::Duration;

use reqwest::{RequestBuilder, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use breaker::{Breaker, BreakerSettings, BreakerState};
pub use ha_bridge::{Entity, EntityQuery, HaBridgeClient, Home, HomeStatus, ServiceCall};
pub use llm::{
    AnswerStream, ChatEndpoint, ChatMessage, ChatRequest, LLM_LARGE, LLM_SMALL, LlmClient,
};
pub use mode::{Action, Decision, Mode, ModeCause, ModeClient, ModePolicy, ModeStatus};
pub use rag::{CollectionRules, Passage, RAG_API, RagClient, Reader};

/// ha-bridge's name in errors and outcomes.
pub const HA_BRIDGE: &str = "ha-bridge";

/// Home Assistant's, when ha-bridge says it is out of reach.
pub const HOME_ASSISTANT: &str = "home-assistant";

/// mode-service's.
pub const MODE_SERVICE: &str = "mode-service";

/// Why a call to a backend failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// Nothing answered: connection refused, no such host, connection reset,
    /// or the backend says what it stands for is unreachable (Home Assistant
    /// behind ha-bridge).
    #[error("{backend} is unreachable: {detail}")]
    Unavailable {
        /// Which service: [`HA_BRIDGE`], [`HOME_ASSISTANT`], [`MODE_SERVICE`].
        backend: &'static str,
        /// What went wrong, for logs.
        detail: String,
    },
    /// No answer within the deadline.
    #[error("{backend} did not answer within {} ms", deadline.as_millis())]
    Timeout {
        /// Which service.
        backend: &'static str,
        /// The deadline that passed.
        deadline: Duration,
    },
    /// The service answered with an error (`{"error": {"code", "message"}}`).
    #[error("{backend} refused ({status} {code}): {message}")]
    Rejected {
        /// Which service.
        backend: &'static str,
        /// The HTTP status.
        status: u16,
        /// The service's stable error code (`unknown_entity`, ...).
        code: String,
        /// For logs.
        message: String,
    },
    /// An answer that is not what the API promises.
    #[error("{backend} answered something unexpected: {detail}")]
    Invalid {
        /// Which service.
        backend: &'static str,
        /// What was wrong, for logs.
        detail: String,
    },
}

/// A backend client that cannot be made: its URL or deadline is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{backend}: {problem}")]
pub struct SetupError {
    /// Which service.
    pub backend: &'static str,
    /// What is wrong.
    pub problem: String,
}

/// The kind of a [`BackendError`], without its details (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// [`BackendError::Unavailable`].
    Unavailable,
    /// [`BackendError::Timeout`].
    Timeout,
    /// [`BackendError::Rejected`].
    Rejected,
    /// [`BackendError::Invalid`].
    Invalid,
}

impl ErrorKind {
    /// `unavailable`, `timeout`, `rejected` or `invalid`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::Rejected => "rejected",
            Self::Invalid => "invalid",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl BackendError {
    /// Its kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Unavailable { .. } => ErrorKind::Unavailable,
            Self::Timeout { .. } => ErrorKind::Timeout,
            Self::Rejected { .. } => ErrorKind::Rejected,
            Self::Invalid { .. } => ErrorKind::Invalid,
        }
    }

    /// The service that failed.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Unavailable { backend, .. }
            | Self::Timeout { backend, .. }
            | Self::Rejected { backend, .. }
            | Self::Invalid { backend, .. } => backend,
        }
    }

    /// Whether it says the backend is in trouble (down, slow, broken, or
    /// failing with a 5xx), as opposed to refusing this one request (4xx):
    /// what a [`Breaker`] counts.
    pub fn is_backend_fault(&self) -> bool {
        match self {
            Self::Unavailable { .. } | Self::Timeout { .. } | Self::Invalid { .. } => true,
            Self::Rejected { status, .. } => *status >= 500,
        }
    }

    /// The service's error code, for [`BackendError::Rejected`].
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Rejected { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// An HTTP/JSON API of one backend: its base URL, a client, a deadline.
#[derive(Debug, Clone)]
struct JsonApi {
    /// The service's name in errors.
    backend: &'static str,
    /// The base URL, ending in `/`.
    base: Url,
    /// One client per backend (its connection pool).
    http: reqwest::Client,
    /// How long one call may take, from connecting to the last byte.
    deadline: Duration,
}

impl JsonApi {
    /// The API at `url` (`http://host:port`, maybe with a path prefix).
    fn new(backend: &'static str, url: &str, deadline: Duration) -> Result<Self, SetupError> {
        let problem = |problem: String| SetupError { backend, problem };
        let mut base =
            Url::parse(url).map_err(|e| problem(format!("{url:?} is not a URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(problem(format!("{url:?} is not an http(s) URL")));
        }
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        if deadline.is_zero() {
            return Err(problem("the deadline must be above zero".into()));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("athena-orchestrator/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(deadline)
            .build()
            .map_err(|e| problem(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self {
            backend,
            base,
            http,
            deadline,
        })
    }

    /// The URL of `segments` under the base, each percent-encoded.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn get(&self, segments: &[&str]) -> RequestBuilder {
        self.http.get(self.url(segments))
    }

    fn post(&self, segments: &[&str]) -> RequestBuilder {
        self.http.post(self.url(segments))
    }

    /// Sends `request` and reads its JSON answer, all within the deadline.
    async fn send<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, BackendError> {
        let exchange = async {
            let response = request.send().await?;
            let status = response.status();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.deadline, exchange)
            .await
            .map_err(|_| self.timeout())?
            .map_err(|e| self.transport(&e))?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| BackendError::Invalid {
                backend: self.backend,
                detail: format!("{status}: {e}"),
            });
        }
        Err(refusal(self.backend, status, &body))
    }

    fn timeout(&self) -> BackendError {
        BackendError::Timeout {
            backend: self.backend,
            deadline: self.deadline,
        }
    }

    fn transport(&self, e: &reqwest::Error) -> BackendError {
        transport(self.backend, e, self.deadline)
    }
}

/// What a failed exchange with `backend` means (`deadline`: the one it was
/// under).
fn transport(backend: &'static str, e: &reqwest::Error, deadline: Duration) -> BackendError {
    if e.is_timeout() {
        return BackendError::Timeout { backend, deadline };
    }
    if e.is_decode() {
        return BackendError::Invalid {
            backend,
            detail: e.to_string(),
        };
    }
    // Refused, reset, no such host, a broken TLS handshake: nobody to
    // talk to. The error names the URL, which holds nothing secret.
    BackendError::Unavailable {
        backend,
        detail: error_chain(e),
    }
}

/// What an unsuccessful `status` with `body` means: the service's error
/// (`{"error": {"code", "message"}}`, as every Athena service and OpenAI
/// send it), else trouble on the way or an answer outside the API.
fn refusal(backend: &'static str, status: StatusCode, body: &[u8]) -> BackendError {
    let error = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").filter(|e| e.is_object()).cloned());
    match error {
        Some(error) => rejection(backend, status.as_u16(), &error),
        // A proxy in between, or the service starting or stopping.
        None if is_gateway_trouble(status) => BackendError::Unavailable {
            backend,
            detail: format!("HTTP {status}"),
        },
        None => BackendError::Invalid {
            backend,
            detail: format!("HTTP {status} without an error body"),
        },
    }
}

/// An error object (`{"code", "message"}`; OpenAI's code may be a number,
/// or null beside a `type`) as [`BackendError::Rejected`].
fn rejection(backend: &'static str, status: u16, error: &Value) -> BackendError {
    let code = match (&error["code"], &error["type"]) {
        (Value::String(code), _) => code.clone(),
        (Value::Number(n), _) => n.to_string(),
        (_, Value::String(kind)) => kind.clone(),
        _ => "error".to_owned(),
    };
    let message = match &error["message"] {
        Value::String(m) => m.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    BackendError::Rejected {
        backend,
        status,
        code,
        message,
    }
}

fn is_gateway_trouble(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
    )
}

/// `e` and its sources, `: `-separated (reqwest's own message is vague).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
