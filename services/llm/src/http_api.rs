//! The OpenAI-compatible HTTP API: `/v1/chat/completions`,
//! `/v1/completions` (both streamed with server-sent events or whole) and
//! `/v1/models`. Requests are checked here, turned into engine jobs, and
//! engine errors become HTTP errors in one place ([`engine_error`]).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use athena_runtime::ApiError;
use athena_runtime::http::json_body;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::config::Config;
use crate::engine::chat::{ChatError, Message};
use crate::engine::json_schema;
use crate::engine::sampler::SamplingParams;
use crate::engine::scheduler::{EngineError, Event, FinishReason, Job, Usage, deadline_in};
use crate::llm::Llm;
use crate::openai::{self, ChatRequest, CompletionRequest, Prompt, Sampling};
use crate::structured;

/// Where the model will be once loaded.
pub type Slot = athena_runtime::service::Slot<Llm>;

#[derive(Clone)]
struct Api {
    slot: Slot,
    config: Arc<Config>,
    owner: &'static str,
}

/// The API routes of a router named `owner`.
pub fn router(slot: Slot, config: Config, owner: &'static str) -> Router {
    let limit = config.max_body_bytes;
    let api = Api {
        slot,
        config: Arc::new(config),
        owner,
    };
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(complete))
        .route("/v1/models", get(models))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(api)
}

/// The one place engine and template errors become HTTP errors.
fn engine_error(e: &EngineError) -> ApiError {
    match e {
        EngineError::Busy(_) => ApiError::unavailable("busy", e.to_string()),
        EngineError::ContextLength { .. } => {
            ApiError::bad_request("context_length_exceeded", e.to_string())
        }
        EngineError::Timeout => {
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, "timeout", e.to_string())
        }
        EngineError::Stopped => ApiError::unavailable("unavailable", e.to_string()),
        EngineError::Internal(_) => ApiError::internal(e),
    }
}

fn chat_error(e: &ChatError) -> ApiError {
    match e {
        ChatError::NoTemplate => ApiError::bad_request("no_chat_template", e.to_string()),
        ChatError::Render(_) => ApiError::bad_request("invalid_messages", e.to_string()),
        ChatError::Invalid(_) => ApiError::internal(e),
    }
}

fn loaded(api: &Api) -> Result<Arc<Llm>, ApiError> {
    api.slot
        .get()
        .cloned()
        .ok_or_else(|| ApiError::unavailable("loading", "the model is still loading"))
}

fn check_model(llm: &Llm, model: &str) -> Result<(), ApiError> {
    if model == llm.id() {
        Ok(())
    } else {
        Err(ApiError::not_found(
            "model_not_found",
            format!(
                "model {model:?} is not served here; this server has {:?}",
                llm.id()
            ),
        ))
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_request", message)
}

/// A request id, unique in this process.
fn request_id(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    format!("{prefix}-{t:x}{n:x}")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Checks the sampling fields; the job for `prompt`.
fn job(s: &Sampling, prompt: Vec<u32>, llm: &Llm, config: &Config) -> Result<Job, ApiError> {
    let range = |name: &str, v: Option<f32>, lo: f32, hi: f32| match v {
        Some(x) if !(lo..=hi).contains(&x) || x.is_nan() => Err(invalid(format!(
            "{name} must be between {lo} and {hi}, not {x}"
        ))),
        _ => Ok(()),
    };
    range("temperature", s.temperature, 0.0, 2.0)?;
    range("top_p", s.top_p, 0.0, 1.0)?;
    range("presence_penalty", s.presence_penalty, -2.0, 2.0)?;
    range("frequency_penalty", s.frequency_penalty, -2.0, 2.0)?;
    range("repeat_penalty", s.repeat_penalty, 0.0, 10.0)?;
    if let Some(n) = s.n
        && n != 1
    {
        return Err(invalid(format!(
            "n must be 1 (one answer per request), not {n}"
        )));
    }
    let room = llm.context().saturating_sub(prompt.len());
    let max_tokens = match s.max_completion_tokens.or(s.max_tokens) {
        Some(m) if m < 1 => return Err(invalid(format!("max_tokens must be at least 1, not {m}"))),
        Some(m) => {
            let m = usize::try_from(m).unwrap_or(usize::MAX);
            if m > room {
                return Err(ApiError::bad_request(
                    "context_length_exceeded",
                    format!(
                        "the prompt has {} tokens and max_tokens is {m}: together more than the context of {} tokens",
                        prompt.len(),
                        llm.context()
                    ),
                ));
            }
            m
        }
        None => config.max_tokens.min(room),
    };
    if room == 0 {
        return Err(engine_error(&EngineError::ContextLength {
            prompt: prompt.len(),
            context: llm.context(),
        }));
    }
    let top_k = match s.top_k {
        Some(k) if k < 0 => return Err(invalid(format!("top_k must not be negative, not {k}"))),
        Some(k) => usize::try_from(k).unwrap_or(usize::MAX),
        None => SamplingParams::default().top_k,
    };
    let mut logit_bias = HashMap::new();
    for (token, bias) in s.logit_bias.clone().unwrap_or_default() {
        let id: u32 = token
            .parse()
            .ok()
            .filter(|id| (*id as usize) < llm.tokenizer().vocab_size())
            .ok_or_else(|| invalid(format!("logit_bias: {token:?} is not a token id")))?;
        if !(-100.0..=100.0).contains(&bias) {
            return Err(invalid(format!(
                "logit_bias values must be between -100 and 100, not {bias}"
            )));
        }
        logit_bias.insert(id, bias);
    }
    let stop = s
        .stop
        .clone()
        .map(openai::Stop::into_vec)
        .unwrap_or_default();
    if stop.len() > 4 {
        return Err(invalid("at most 4 stop sequences"));
    }
    let defaults = SamplingParams::default();
    Ok(Job {
        prompt,
        max_tokens,
        sampling: SamplingParams {
            temperature: s.temperature.unwrap_or(1.0),
            top_p: s.top_p.unwrap_or(1.0),
            top_k,
            repeat_penalty: s.repeat_penalty.unwrap_or(defaults.repeat_penalty),
            repeat_last_n: defaults.repeat_last_n,
            presence_penalty: s.presence_penalty.unwrap_or(0.0),
            frequency_penalty: s.frequency_penalty.unwrap_or(0.0),
            logit_bias,
            seed: s.seed.map(|v| v as u64),
        },
        stop,
        grammar: None,
        deadline: deadline_in(config.request_timeout_secs),
    })
}

async fn models(State(api): State<Api>) -> Result<Response, ApiError> {
    let llm = loaded(&api)?;
    Ok(Json(openai::models(llm.id(), llm.created(), api.owner)).into_response())
}

async fn chat(
    State(api): State<Api>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: ChatRequest = json_body(body)?;
    let llm = loaded(&api)?;
    check_model(&llm, &request.model)?;
    if request.messages.is_empty() {
        return Err(invalid("messages must not be empty"));
    }
    let structure = structured::structure(&request)?;
    let mut messages = Vec::with_capacity(request.messages.len());
    for m in &request.messages {
        let content = match &m.content {
            Some(c) => c.text().map_err(invalid)?,
            None => String::new(),
        };
        let role = if m.role == "developer" {
            "system"
        } else {
            m.role.as_str()
        };
        if !["system", "user", "assistant", "tool"].contains(&role) {
            return Err(invalid(format!("unknown message role {:?}", m.role)));
        }
        messages.push(Message {
            role: role.to_owned(),
            content,
            tool_calls: m.tool_calls.as_ref().map(parsed_arguments),
            tool_call_id: m.tool_call_id.clone(),
            name: m.name.clone(),
        });
    }
    let prompt = llm
        .chat_prompt(&messages, structure.tools.as_ref())
        .map_err(|e| chat_error(&e))?;
    let mut job = job(&request.sampling, prompt, &llm, &api.config)?;
    job.grammar = structure.grammar;
    let shape = Shape {
        kind: Kind::Chat,
        tools: structure.tools.is_some(),
        schema: structure.schema,
    };
    answer(shape, &request.sampling, job, &llm).await
}

/// Tool calls as templates expect them: arguments as a JSON value, not
/// the JSON text OpenAI clients send.
fn parsed_arguments(calls: &Value) -> Value {
    let mut calls = calls.clone();
    for call in calls.as_array_mut().into_iter().flatten() {
        if let Some(arguments) = call.pointer_mut("/function/arguments")
            && let Some(parsed) = arguments
                .as_str()
                .and_then(|t| serde_json::from_str::<Value>(t).ok())
        {
            *arguments = parsed;
        }
    }
    calls
}

async fn complete(
    State(api): State<Api>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: CompletionRequest = json_body(body)?;
    let llm = loaded(&api)?;
    check_model(&llm, &request.model)?;
    let text = match request.prompt {
        Prompt::One(t) => t,
        Prompt::Many(mut v) if v.len() == 1 => v.remove(0),
        Prompt::Many(v) => {
            return Err(invalid(format!("one prompt per request, not {}", v.len())));
        }
    };
    if text.is_empty() {
        return Err(invalid("prompt must not be empty"));
    }
    let prompt = llm.text_prompt(&text);
    let job = job(&request.sampling, prompt, &llm, &api.config)?;
    answer(Shape::text(), &request.sampling, job, &llm).await
}

/// Chat or text completion: they differ only in their wire shapes.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Chat,
    Text,
}

/// What an answer is made into.
#[derive(Debug)]
struct Shape {
    kind: Kind,
    /// The answer may be tool calls.
    tools: bool,
    /// A JSON answer is checked against this.
    schema: Option<Value>,
}

impl Shape {
    fn text() -> Self {
        Self {
            kind: Kind::Text,
            tools: false,
            schema: None,
        }
    }

    /// The tool calls in a finished answer, with fresh ids.
    fn calls(&self, text: &str, reason: FinishReason) -> Option<Vec<(String, String, Value)>> {
        if !self.tools || reason != FinishReason::Stop {
            return None;
        }
        let calls = json_schema::parse_tool_calls(text)?;
        Some(
            calls
                .into_iter()
                .map(|(name, arguments)| (request_id("call"), name, arguments))
                .collect(),
        )
    }

    /// Checks a finished answer against the schema.
    fn check(&self, text: &str, reason: FinishReason) -> Result<(), ApiError> {
        match &self.schema {
            Some(schema) if reason == FinishReason::Stop => structured::check(schema, text),
            _ => Ok(()),
        }
    }
}

/// Runs `job` and answers whole or as a stream.
async fn answer(
    shape: Shape,
    sampling: &Sampling,
    job: Job,
    llm: &Llm,
) -> Result<Response, ApiError> {
    let events = llm.generate(job).map_err(|e| engine_error(&e))?;
    let kind = shape.kind;
    let id = request_id(match kind {
        Kind::Chat => "chatcmpl",
        Kind::Text => "cmpl",
    });
    let created = now();
    let model = llm.id().to_owned();
    if sampling.stream {
        let usage = sampling
            .stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage);
        let chunks = Chunks {
            shape,
            id,
            model,
            created,
        };
        let sse = Sse::new(event_stream(events, chunks, usage))
            .keep_alive(KeepAlive::default())
            .into_response();
        return Ok(sse);
    }
    let (text, reason, usage) = collect(events).await?;
    shape.check(&text, reason)?;
    let usage = usage_json(&usage);
    let body = match (kind, shape.calls(&text, reason)) {
        (Kind::Chat, Some(calls)) => openai::chat_completion(
            &id,
            &model,
            created,
            openai::assistant_tool_calls(&calls),
            "tool_calls",
            usage,
        ),
        (Kind::Chat, None) => openai::chat_completion(
            &id,
            &model,
            created,
            openai::assistant_text(&text),
            reason.as_str(),
            usage,
        ),
        (Kind::Text, _) => openai::completion(&id, &model, created, &text, reason.as_str(), usage),
    };
    Ok(Json(body).into_response())
}

fn usage_json(u: &Usage) -> Value {
    openai::usage(u.prompt_tokens, u.cached_tokens, u.completion_tokens)
}

/// The whole answer.
async fn collect(
    mut events: UnboundedReceiver<Event>,
) -> Result<(String, FinishReason, Usage), ApiError> {
    let mut text = String::new();
    while let Some(event) = events.recv().await {
        match event {
            Event::Text(t) => text.push_str(&t),
            Event::Done { reason, usage } => return Ok((text, reason, usage)),
            Event::Failed(e) => return Err(engine_error(&e)),
        }
    }
    Err(engine_error(&EngineError::Stopped))
}

fn sse(value: &Value) -> SseEvent {
    SseEvent::default().data(value.to_string())
}

/// An error inside a stream that has started: OpenAI clients raise it.
fn sse_error(api: &ApiError) -> SseEvent {
    sse(&json!({ "error": { "message": api.message, "type": "server_error", "code": api.code } }))
}

/// The stream chunks of one answer, in the wire shape of its kind.
struct Chunks {
    shape: Shape,
    id: String,
    model: String,
    created: u64,
}

impl Chunks {
    /// What goes first: chat streams announce the assistant's role.
    fn opening(&self) -> Option<Value> {
        match self.shape.kind {
            Kind::Chat => Some(self.chat(json!({ "role": "assistant", "content": "" }), None)),
            Kind::Text => None,
        }
    }

    fn text(&self, text: &str) -> Value {
        match self.shape.kind {
            Kind::Chat => self.chat(json!({ "content": text }), None),
            Kind::Text => openai::completion_chunk(&self.id, &self.model, self.created, text, None),
        }
    }

    fn tool_calls(&self, calls: &[(String, String, Value)]) -> Value {
        self.chat(json!({ "tool_calls": openai::tool_calls(calls) }), None)
    }

    fn finish(&self, reason: &str) -> Value {
        match self.shape.kind {
            Kind::Chat => self.chat(json!({}), Some(reason)),
            Kind::Text => {
                openai::completion_chunk(&self.id, &self.model, self.created, "", Some(reason))
            }
        }
    }

    fn usage(&self, usage: &Usage) -> Value {
        let object = match self.shape.kind {
            Kind::Chat => "chat.completion.chunk",
            Kind::Text => "text_completion",
        };
        openai::usage_chunk(
            &self.id,
            object,
            &self.model,
            self.created,
            usage_json(usage),
        )
    }

    fn chat(&self, delta: Value, finish: Option<&str>) -> Value {
        openai::chat_chunk(&self.id, &self.model, self.created, delta, finish)
    }
}

/// The answer as server-sent events, ending with `[DONE]` (or an error).
/// Text goes out as it comes, except an answer that may be tool calls:
/// once it starts like one (`{`, `[`, `<`) it is held back and sent as
/// calls when complete.
fn event_stream(
    mut events: UnboundedReceiver<Event>,
    chunks: Chunks,
    include_usage: bool,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    async_stream(move |tx| async move {
        if let Some(first) = chunks.opening()
            && tx.send(sse(&first)).await.is_err()
        {
            return;
        }
        let mut answer = String::new();
        let mut holding = false;
        while let Some(event) = events.recv().await {
            let out = match event {
                Event::Text(t) => {
                    if answer.is_empty() {
                        holding = chunks.shape.tools && t.starts_with(['{', '[', '<']);
                    }
                    answer.push_str(&t);
                    if holding {
                        continue;
                    }
                    chunks.text(&t)
                }
                Event::Done { reason, usage } => {
                    if let Err(e) = chunks.shape.check(&answer, reason) {
                        let _ = tx.send(sse_error(&e)).await;
                        return;
                    }
                    let calls = chunks.shape.calls(&answer, reason);
                    let finish = match &calls {
                        Some(calls) => {
                            let _ = tx.send(sse(&chunks.tool_calls(calls))).await;
                            "tool_calls"
                        }
                        None if holding => {
                            let _ = tx.send(sse(&chunks.text(&answer))).await;
                            reason.as_str()
                        }
                        None => reason.as_str(),
                    };
                    let _ = tx.send(sse(&chunks.finish(finish))).await;
                    if include_usage {
                        let _ = tx.send(sse(&chunks.usage(&usage))).await;
                    }
                    break;
                }
                Event::Failed(e) => {
                    let _ = tx.send(sse_error(&engine_error(&e))).await;
                    return;
                }
            };
            if tx.send(sse(&out)).await.is_err() {
                return;
            }
        }
        let _ = tx.send(SseEvent::default().data("[DONE]")).await;
    })
}

/// A stream fed by a task: when the client goes away the stream is
/// dropped, the task's sends fail, it returns, and the engine's receiver
/// is dropped with it, which cancels the request.
fn async_stream<F, Fut>(produce: F) -> impl Stream<Item = Result<SseEvent, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<SseEvent>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(produce(tx));
    futures::StreamExt::map(tokio_stream::wrappers::ReceiverStream::new(rx), Ok)
}
