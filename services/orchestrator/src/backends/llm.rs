//! A client for OpenAI-compatible chat completions, streamed
//! (`POST {base}/chat/completions` with `stream: true`, answered with
//! server-sent events): our llm service (router-small-llm,
//! router-large-llm) or any server that speaks the API (Ollama, vLLM,
//! llama.cpp's server, OpenAI itself).
//!
//! Two deadlines: the first piece of text must come within
//! `first_token` of asking ([`LlmClient::chat`] returns only then, so a
//! caller knows before speaking whether the model answers at all), and the
//! whole answer within `answer`. An answer that is not the API's (another
//! content type, events that are not JSON, a stream that stops without
//! `[DONE]` or a finish reason, a line longer than [`MAX_LINE`]) is
//! [`BackendError::Invalid`].

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Response, StatusCode, Url};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::time::{Instant, timeout_at};

use super::{BackendError, SetupError, refusal, rejection, transport};

/// The small, fast model's name in errors and metrics.
pub const LLM_SMALL: &str = "router-small-llm";

/// The large model's.
pub const LLM_LARGE: &str = "router-large-llm";

/// The longest line of the event stream (one event's data): more is not a
/// chat completion stream.
pub const MAX_LINE: usize = 1 << 20;

/// Where a model is served and how long it may take.
#[derive(Clone, PartialEq)]
pub struct ChatEndpoint {
    /// The API's base URL, up to the version: `http://127.0.0.1:8400/v1`
    /// (requests go to `{url}/chat/completions`).
    pub url: String,
    /// The model's id on that server.
    pub model: String,
    /// Sent as `Authorization: Bearer`, for servers that want one.
    pub api_key: Option<String>,
    /// From asking to the first piece of text.
    pub first_token: Duration,
    /// From asking to the end of the answer.
    pub answer: Duration,
}

impl fmt::Debug for ChatEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatEndpoint")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "(hidden)"))
            .field("first_token", &self.first_token)
            .field("answer", &self.answer)
            .finish()
    }
}

/// Who says a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions.
    System,
    /// The person asking.
    User,
    /// The assistant's earlier replies.
    Assistant,
}

/// One message of the conversation sent to the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who says it.
    pub role: Role,
    /// What is said.
    pub content: String,
}

impl ChatMessage {
    /// A message from `role`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// What to ask.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The conversation, system prompt first.
    pub messages: Vec<ChatMessage>,
    /// New tokens at most.
    pub max_tokens: u32,
    /// Sampling temperature (0: greedy).
    pub temperature: f32,
}

/// One OpenAI-compatible server and model.
#[derive(Clone)]
pub struct LlmClient {
    /// Its name in errors: [`LLM_SMALL`] or [`LLM_LARGE`].
    backend: &'static str,
    /// The base URL as configured.
    base: String,
    /// `{base}/chat/completions`.
    url: Url,
    model: String,
    api_key: Option<String>,
    first_token: Duration,
    answer: Duration,
    /// One client per endpoint (its connection pool).
    http: reqwest::Client,
}

impl fmt::Debug for LlmClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmClient")
            .field("backend", &self.backend)
            .field("url", &self.url.as_str())
            .field("model", &self.model)
            .field("first_token", &self.first_token)
            .field("answer", &self.answer)
            .finish_non_exhaustive()
    }
}

impl LlmClient {
    /// A client for `endpoint`, named `backend` in errors. Nothing
    /// connects yet.
    pub fn new(backend: &'static str, endpoint: &ChatEndpoint) -> Result<Self, SetupError> {
        let problem = |problem: String| SetupError { backend, problem };
        let raw = &endpoint.url;
        let mut base =
            Url::parse(raw).map_err(|e| problem(format!("{raw:?} is not a URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(problem(format!("{raw:?} is not an http(s) URL")));
        }
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let url = base
            .join("chat/completions")
            .map_err(|e| problem(format!("{raw:?}: {e}")))?;
        if endpoint.model.trim().is_empty() {
            return Err(problem("the model must be named".into()));
        }
        if endpoint.first_token.is_zero() || endpoint.answer.is_zero() {
            return Err(problem("the deadlines must be above zero".into()));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("athena-orchestrator/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(endpoint.first_token)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| problem(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self {
            backend,
            base: endpoint.url.clone(),
            url,
            model: endpoint.model.clone(),
            api_key: endpoint.api_key.clone(),
            first_token: endpoint.first_token,
            answer: endpoint.answer.max(endpoint.first_token),
            http,
        })
    }

    /// Its name in errors.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// The base URL it was made for.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Asks for an answer to `request`, streamed. Returns once the first
    /// piece of text is in (or the answer ended without any), within the
    /// first-token deadline; the rest comes from [`AnswerStream::next`]
    /// within the answer deadline.
    pub async fn chat(&self, request: &ChatRequest) -> Result<AnswerStream, BackendError> {
        let started = Instant::now();
        let first_deadline = started + self.first_token;
        let body = json!({
            "model": self.model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "stream": true,
        });
        let mut call = self.http.post(self.url.clone()).json(&body);
        if let Some(key) = &self.api_key {
            call = call.header(AUTHORIZATION, format!("Bearer {key}"));
        }
        let response = timeout_at(first_deadline, call.send())
            .await
            .map_err(|_| self.timeout(self.first_token))?
            .map_err(|e| self.transport(&e, self.first_token))?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.refusal(status, response, first_deadline).await);
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let mut stream = AnswerStream {
            backend: self.backend,
            response: Some(response),
            events: EventStream::default(),
            pending: VecDeque::new(),
            finish_reason: None,
            done: false,
            deadline: started + self.answer,
            answer: self.answer,
            first_token: Duration::ZERO,
        };
        if content_type.starts_with("application/json") {
            // A server that ignores `stream`: the whole answer at once.
            stream.read_whole(first_deadline, self.first_token).await?;
        } else if !content_type.starts_with("text/event-stream") {
            return Err(self.invalid(format!(
                "content type {content_type:?}, not text/event-stream"
            )));
        }
        while stream.pending.is_empty() && !stream.done {
            stream.pull(first_deadline, self.first_token).await?;
        }
        stream.first_token = started.elapsed();
        Ok(stream)
    }

    /// The error an unsuccessful status means, read within `by`.
    async fn refusal(&self, status: StatusCode, response: Response, by: Instant) -> BackendError {
        let body = timeout_at(by, response.bytes())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        refusal(self.backend, status, &body)
    }

    fn timeout(&self, deadline: Duration) -> BackendError {
        BackendError::Timeout {
            backend: self.backend,
            deadline,
        }
    }

    fn transport(&self, e: &reqwest::Error, deadline: Duration) -> BackendError {
        transport(self.backend, e, deadline)
    }

    fn invalid(&self, detail: String) -> BackendError {
        BackendError::Invalid {
            backend: self.backend,
            detail,
        }
    }
}

/// An answer as it is written: pieces of text, in order.
pub struct AnswerStream {
    backend: &'static str,
    /// The response being read; none once read to its end.
    response: Option<Response>,
    events: EventStream,
    /// Text read but not yet taken.
    pending: VecDeque<String>,
    /// Why the model stopped, once it said.
    finish_reason: Option<String>,
    /// Nothing more will come (`[DONE]`, the end, or an error).
    done: bool,
    /// When the whole answer must be in.
    deadline: Instant,
    answer: Duration,
    /// From asking to the first piece.
    first_token: Duration,
}

impl fmt::Debug for AnswerStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnswerStream")
            .field("backend", &self.backend)
            .field("pending", &self.pending)
            .field("finish_reason", &self.finish_reason)
            .field("done", &self.done)
            .field("first_token", &self.first_token)
            .finish_non_exhaustive()
    }
}

/// What one event of the stream says.
#[derive(Debug, PartialEq)]
enum Said {
    /// More text (maybe empty: a role, a finish reason).
    Text {
        text: String,
        finish_reason: Option<String>,
    },
    /// `[DONE]`.
    Done,
}

/// A chunk (or a whole completion) as far as it is read here.
#[derive(Debug, Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Option<Content>,
    /// A whole completion's.
    #[serde(default)]
    message: Option<Content>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Content {
    #[serde(default)]
    content: Option<String>,
}

impl AnswerStream {
    /// The next piece of text; `None` at the end. After an error, the end.
    pub async fn next(&mut self) -> Option<Result<String, BackendError>> {
        loop {
            if let Some(piece) = self.pending.pop_front() {
                return Some(Ok(piece));
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.pull(self.deadline, self.answer).await {
                return Some(Err(e));
            }
        }
    }

    /// The rest of the answer, whole.
    pub async fn collect(mut self) -> Result<String, BackendError> {
        let mut text = String::new();
        while let Some(piece) = self.next().await {
            text.push_str(&piece?);
        }
        Ok(text)
    }

    /// How long the first piece took from asking.
    pub fn first_token(&self) -> Duration {
        self.first_token
    }

    /// Why the model stopped (`stop`, `length`), once it has said.
    pub fn finish_reason(&self) -> Option<&str> {
        self.finish_reason.as_deref()
    }

    /// When the whole answer must be in.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Reads one piece of the response by `by` and takes in its events.
    async fn pull(&mut self, by: Instant, deadline: Duration) -> Result<(), BackendError> {
        let result = self.read(by, deadline).await;
        if result.is_err() {
            self.done = true;
            self.response = None;
        }
        result
    }

    async fn read(&mut self, by: Instant, deadline: Duration) -> Result<(), BackendError> {
        let backend = self.backend;
        let Some(response) = self.response.as_mut() else {
            self.done = true;
            return Ok(());
        };
        let bytes = timeout_at(by, response.chunk())
            .await
            .map_err(|_| BackendError::Timeout { backend, deadline })?
            .map_err(|e| transport(backend, &e, deadline))?;
        let Some(bytes) = bytes else {
            self.response = None;
            self.done = true;
            let rest = self.events.finish().map_err(|e| self.invalid(e))?;
            self.take(rest)?;
            if self.finish_reason.is_none() && !self.events.ended {
                return Err(self.invalid("the stream ended before the answer did".into()));
            }
            return Ok(());
        };
        let events = self.events.push(&bytes).map_err(|e| self.invalid(e))?;
        self.take(events)
    }

    /// Takes in the data of whole events.
    fn take(&mut self, events: Vec<String>) -> Result<(), BackendError> {
        for data in events {
            if self.events.ended {
                break;
            }
            match interpret(&data).map_err(|e| match e {
                Interpretation::Invalid(detail) => self.invalid(detail),
                Interpretation::Error(error) => rejection(self.backend, 200, &error),
            })? {
                Said::Done => {
                    self.events.ended = true;
                    self.done = true;
                    self.response = None;
                }
                Said::Text {
                    text,
                    finish_reason,
                } => {
                    if !text.is_empty() {
                        self.pending.push_back(text);
                    }
                    if finish_reason.is_some() {
                        self.finish_reason = finish_reason;
                    }
                }
            }
        }
        Ok(())
    }

    /// A whole completion (`application/json`).
    async fn read_whole(&mut self, by: Instant, deadline: Duration) -> Result<(), BackendError> {
        let backend = self.backend;
        let Some(response) = self.response.take() else {
            return Ok(());
        };
        let body = timeout_at(by, response.bytes())
            .await
            .map_err(|_| BackendError::Timeout { backend, deadline })?
            .map_err(|e| transport(backend, &e, deadline))?;
        let chunk: Chunk = serde_json::from_slice(&body)
            .map_err(|e| self.invalid(format!("a JSON answer that is not a completion: {e}")))?;
        if let Some(error) = &chunk.error {
            return Err(rejection(backend, 200, error));
        }
        let Some(choice) = chunk.choices.into_iter().next() else {
            return Err(self.invalid("a completion without choices".into()));
        };
        if let Some(text) = choice.message.and_then(|m| m.content)
            && !text.is_empty()
        {
            self.pending.push_back(text);
        }
        self.finish_reason = choice.finish_reason;
        self.done = true;
        Ok(())
    }

    fn invalid(&self, detail: String) -> BackendError {
        BackendError::Invalid {
            backend: self.backend,
            detail,
        }
    }
}

/// Why an event could not be taken.
#[derive(Debug, PartialEq)]
enum Interpretation {
    /// Not a chunk of a chat completion.
    Invalid(String),
    /// The server reports an error inside the stream (its error object).
    Error(Value),
}

/// What the data of one event says.
fn interpret(data: &str) -> Result<Said, Interpretation> {
    if data.trim() == "[DONE]" {
        return Ok(Said::Done);
    }
    let chunk: Chunk = serde_json::from_str(data).map_err(|e| {
        let shown: String = data.chars().take(80).collect();
        Interpretation::Invalid(format!("an event that is not a chunk ({e}): {shown:?}"))
    })?;
    if let Some(error) = chunk.error {
        return Err(Interpretation::Error(error));
    }
    let Some(choice) = chunk.choices.into_iter().next() else {
        // Usage chunks have no choices.
        return Ok(Said::Text {
            text: String::new(),
            finish_reason: None,
        });
    };
    Ok(Said::Text {
        text: choice.delta.and_then(|d| d.content).unwrap_or_default(),
        finish_reason: choice.finish_reason,
    })
}

/// Server-sent events, as bytes arrive: the data of each whole event.
/// Comments (`:`) and fields other than `data` are skipped.
#[derive(Debug, Default)]
struct EventStream {
    /// Bytes of a line not yet ended.
    line: Vec<u8>,
    /// The data lines of the event being read.
    data: Option<String>,
    /// `[DONE]` was seen: whatever follows is ignored.
    ended: bool,
}

impl EventStream {
    /// Takes `bytes`; returns the data of the events they complete.
    fn push(&mut self, bytes: &[u8]) -> Result<Vec<String>, String> {
        let mut events = Vec::new();
        let mut rest = bytes;
        while let Some(at) = rest.iter().position(|&b| b == b'\n') {
            self.line.extend_from_slice(&rest[..at]);
            rest = &rest[at + 1..];
            let line = std::mem::take(&mut self.line);
            if let Some(data) = self.line_ended(&line)? {
                events.push(data);
            }
        }
        self.line.extend_from_slice(rest);
        if self.line.len() > MAX_LINE {
            return Err(format!("a line of more than {MAX_LINE} bytes"));
        }
        Ok(events)
    }

    /// The end of the bytes: an event not followed by a blank line counts.
    fn finish(&mut self) -> Result<Vec<String>, String> {
        let mut events = Vec::new();
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            if let Some(data) = self.line_ended(&line)? {
                events.push(data);
            }
        }
        events.extend(self.data.take());
        Ok(events)
    }

    fn line_ended(&mut self, line: &[u8]) -> Result<Option<String>, String> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = std::str::from_utf8(line).map_err(|_| "a line that is not UTF-8".to_owned())?;
        if line.is_empty() {
            return Ok(self.data.take());
        }
        if line.starts_with(':') {
            return Ok(None);
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        if field == "data" {
            match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn events(parts: &[&[u8]]) -> Result<Vec<String>, String> {
        let mut stream = EventStream::default();
        let mut all = Vec::new();
        for part in parts {
            all.extend(stream.push(part)?);
        }
        all.extend(stream.finish()?);
        Ok(all)
    }

    #[test]
    fn events_split_anywhere() {
        let text = b": keep-alive\r\n\r\nevent: x\ndata: {\"a\":\ndata: 1}\n\ndata: [DONE]\n\n";
        let whole = events(&[text]).unwrap();
        assert_eq!(whole, ["{\"a\":\n1}", "[DONE]"]);
        for cut in 0..text.len() {
            let (a, b) = text.split_at(cut);
            assert_eq!(events(&[a, b]).unwrap(), whole, "cut at {cut}");
        }
        // The last event without its blank line still counts.
        assert_eq!(events(&[b"data: x"]).unwrap(), ["x"]);
    }

    #[test]
    fn garbage_is_refused() {
        assert!(events(&[b"data: \xff\xfe\n"]).is_err());
        assert!(events(&[&vec![b'x'; MAX_LINE + 1]]).is_err());
        let err = interpret("<html>").unwrap_err();
        assert!(matches!(err, Interpretation::Invalid(_)), "{err:?}");
        // Lines that are no field of ours are skipped, as the format says.
        assert_eq!(events(&[b"<html>\n\n"]).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn chunks_say_text_finish_done_and_errors() {
        let chunk = r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#;
        assert_eq!(
            interpret(chunk).unwrap(),
            Said::Text {
                text: "Hi".into(),
                finish_reason: None
            }
        );
        let role = r#"{"choices":[{"delta":{"role":"assistant"}}]}"#;
        assert_eq!(
            interpret(role).unwrap(),
            Said::Text {
                text: String::new(),
                finish_reason: None
            }
        );
        let last = r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#;
        assert_eq!(
            interpret(last).unwrap(),
            Said::Text {
                text: String::new(),
                finish_reason: Some("stop".into())
            }
        );
        assert_eq!(interpret("[DONE]").unwrap(), Said::Done);
        let error = r#"{"error":{"message":"boom","type":"server_error","code":null}}"#;
        let Interpretation::Error(error) = interpret(error).unwrap_err() else {
            panic!("not an error");
        };
        let BackendError::Rejected { code, message, .. } = rejection(LLM_SMALL, 200, &error) else {
            panic!("not a rejection");
        };
        assert_eq!((code.as_str(), message.as_str()), ("server_error", "boom"));
    }

    #[test]
    fn base_urls_end_in_chat_completions() {
        let endpoint = |url: &str| ChatEndpoint {
            url: url.into(),
            model: "m".into(),
            api_key: Some("secret".into()),
            first_token: Duration::from_secs(1),
            answer: Duration::from_secs(2),
        };
        for (base, url) in [
            ("http://h:8400/v1", "http://h:8400/v1/chat/completions"),
            ("http://h:8400/v1/", "http://h:8400/v1/chat/completions"),
            (
                "https://api.example/",
                "https://api.example/chat/completions",
            ),
        ] {
            let client = LlmClient::new(LLM_SMALL, &endpoint(base)).unwrap();
            assert_eq!(client.url.as_str(), url);
            assert!(!format!("{client:?}").contains("secret"));
        }
        assert!(LlmClient::new(LLM_SMALL, &endpoint("ftp://h")).is_err());
        assert!(!format!("{:?}", endpoint("http://h")).contains("secret"));
    }
}
