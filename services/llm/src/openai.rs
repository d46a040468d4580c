//! The OpenAI wire format: requests as clients send them, responses and
//! stream chunks as clients parse them. Nothing here knows the engine.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// `stop`: one text or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// One.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl Stop {
    /// As a list.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

/// Message content: a text, or parts of which the text ones count.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// `[{"type": "text", "text": ...}, ...]`.
    Parts(Vec<Value>),
}

impl Content {
    /// The text; parts that are not text are an error.
    pub fn text(&self) -> Result<String, String> {
        match self {
            Self::Text(t) => Ok(t.clone()),
            Self::Parts(parts) => parts
                .iter()
                .map(|p| match (p["type"].as_str(), p["text"].as_str()) {
                    (Some("text"), Some(t)) => Ok(t),
                    (kind, _) => Err(format!(
                        "content parts of type {} are not supported (text only)",
                        kind.unwrap_or("?")
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|v| v.concat()),
        }
    }
}

/// One chat message.
#[derive(Debug, Clone, Deserialize)]
pub struct WireMessage {
    /// `system`, `developer`, `user`, `assistant`, `tool`.
    pub role: String,
    /// Its content (absent for an assistant's tool calls).
    #[serde(default)]
    pub content: Option<Content>,
    /// The author's name.
    #[serde(default)]
    pub name: Option<String>,
    /// An assistant's tool calls.
    #[serde(default)]
    pub tool_calls: Option<Value>,
    /// The call a tool message answers.
    #[serde(default)]
    pub tool_call_id: Option<String>,
}

/// `stream_options`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StreamOptions {
    /// Send a last chunk with the token counts.
    #[serde(default)]
    pub include_usage: bool,
}

/// What sampling fields chat and text completions share.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Sampling {
    /// New tokens at most.
    pub max_tokens: Option<i64>,
    /// The newer name of `max_tokens` (chat).
    pub max_completion_tokens: Option<i64>,
    /// 0–2.
    pub temperature: Option<f32>,
    /// 0–1.
    pub top_p: Option<f32>,
    /// An extension (llama.cpp, vLLM, Ollama): keep the k best.
    pub top_k: Option<i64>,
    /// An extension: llama.cpp's repeat penalty.
    pub repeat_penalty: Option<f32>,
    /// −2–2.
    pub presence_penalty: Option<f32>,
    /// −2–2.
    pub frequency_penalty: Option<f32>,
    /// Token id (as a string) → bias, −100–100.
    pub logit_bias: Option<HashMap<String, f32>>,
    /// Reproducible sampling.
    pub seed: Option<i64>,
    /// Texts that end the answer.
    pub stop: Option<Stop>,
    /// Answers wanted (only 1).
    pub n: Option<i64>,
    /// Stream with server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Stream options.
    pub stream_options: Option<StreamOptions>,
}

/// `POST /v1/chat/completions`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatRequest {
    /// The model id.
    pub model: String,
    /// The conversation.
    pub messages: Vec<WireMessage>,
    /// Tool definitions.
    #[serde(default)]
    pub tools: Option<Vec<ToolDef>>,
    /// `none`, `auto`, `required` or `{"type": "function", "function":
    /// {"name": ...}}`.
    #[serde(default)]
    pub tool_choice: Option<Value>,
    /// Whether several calls may come in one answer (default true).
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    /// The answer's format.
    #[serde(default)]
    pub response_format: Option<ResponseFormat>,
    /// Sampling and streaming.
    #[serde(flatten)]
    pub sampling: Sampling,
}

/// A tool the model may call.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ToolDef {
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The function.
    pub function: FunctionDef,
}

/// A function the model may call.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct FunctionDef {
    /// Its name.
    pub name: String,
    /// What it does, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The JSON Schema of its arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
}

/// `response_format`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    /// Free text.
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON following a schema.
    JsonSchema {
        /// The schema and its name.
        json_schema: JsonSchemaFormat,
    },
}

/// `response_format.json_schema`.
#[derive(Debug, Clone, Deserialize)]
pub struct JsonSchemaFormat {
    /// The schema's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The schema (absent: any JSON).
    #[serde(default)]
    pub schema: Option<Value>,
    /// Always honoured: the answer is constrained.
    #[serde(default)]
    pub strict: Option<bool>,
}

/// `prompt`: a text, or a list of one.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    /// A text.
    One(String),
    /// Several texts (only one is served).
    Many(Vec<String>),
}

/// `POST /v1/completions`.
#[derive(Debug, Clone, Deserialize)]
pub struct CompletionRequest {
    /// The model id.
    pub model: String,
    /// The text to continue.
    pub prompt: Prompt,
    /// Sampling and streaming.
    #[serde(flatten)]
    pub sampling: Sampling,
}

/// Token counts in OpenAI's shape.
pub fn usage(prompt: usize, cached: usize, completion: usize) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": { "cached_tokens": cached },
    })
}

/// An assistant message with text.
pub fn assistant_text(text: &str) -> Value {
    json!({ "role": "assistant", "content": text })
}

/// Tool calls in OpenAI's shape: (id, name, arguments) each; the
/// arguments are sent as JSON text.
pub fn tool_calls(calls: &[(String, String, Value)]) -> Value {
    calls
        .iter()
        .enumerate()
        .map(|(index, (id, name, arguments))| {
            json!({
                "index": index,
                "id": id,
                "type": "function",
                "function": { "name": name, "arguments": arguments.to_string() },
            })
        })
        .collect()
}

/// An assistant message with tool calls.
pub fn assistant_tool_calls(calls: &[(String, String, Value)]) -> Value {
    json!({ "role": "assistant", "content": null, "tool_calls": tool_calls(calls) })
}

/// A whole chat completion.
pub fn chat_completion(
    id: &str,
    model: &str,
    created: u64,
    message: Value,
    finish: &str,
    usage: Value,
) -> Value {
    json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": message,
            "finish_reason": finish,
            "logprobs": null,
        }],
        "usage": usage,
    })
}

/// One chunk of a streamed chat completion.
pub fn chat_chunk(
    id: &str,
    model: &str,
    created: u64,
    delta: Value,
    finish: Option<&str>,
) -> Value {
    json!({
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{ "index": 0, "delta": delta, "finish_reason": finish, "logprobs": null }],
    })
}

/// The last chunk of a stream, with the counts (`include_usage`).
pub fn usage_chunk(id: &str, object: &str, model: &str, created: u64, usage: Value) -> Value {
    json!({
        "id": id,
        "object": object,
        "created": created,
        "model": model,
        "choices": [],
        "usage": usage,
    })
}

/// A whole text completion.
pub fn completion(
    id: &str,
    model: &str,
    created: u64,
    text: &str,
    finish: &str,
    usage: Value,
) -> Value {
    json!({
        "id": id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [{ "index": 0, "text": text, "finish_reason": finish, "logprobs": null }],
        "usage": usage,
    })
}

/// One chunk of a streamed text completion.
pub fn completion_chunk(
    id: &str,
    model: &str,
    created: u64,
    text: &str,
    finish: Option<&str>,
) -> Value {
    json!({
        "id": id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [{ "index": 0, "text": text, "finish_reason": finish, "logprobs": null }],
    })
}

/// `GET /v1/models`.
pub fn models(id: &str, created: u64, owned_by: &str) -> Value {
    json!({
        "object": "list",
        "data": [{ "id": id, "object": "model", "created": created, "owned_by": owned_by }],
    })
}
