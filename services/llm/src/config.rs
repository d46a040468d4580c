//! The `[router_small_llm]` / `[router_large_llm]` config sections.

use std::net::SocketAddr;
use std::path::PathBuf;

use athena_models::ModelRef;
use serde::{Deserialize, Serialize};

/// One LLM router's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// HTTP API (OpenAI-compatible) and ops endpoints.
    pub http: SocketAddr,
    /// A GGUF model: a catalog name (`athena models list`) or a path.
    pub model: String,
    /// The model's id in the API; empty = the model's name.
    pub model_id: String,
    /// Tokens a sequence may hold (prompt and answer), at most what the
    /// model was trained for.
    pub context: usize,
    /// New tokens when a request does not say.
    pub max_tokens: usize,
    /// Requests generating at once (they take turns token by token).
    pub parallel: usize,
    /// Requests that may wait for a place; beyond that: 503 busy.
    pub queue: usize,
    /// Prompt tokens computed in one turn.
    pub prefill_chunk: usize,
    /// Recent prompts whose keys and values are kept, so a request that
    /// starts the same way (the system prompt) skips that part.
    pub prefix_cache: usize,
    /// Seconds a request may take in all.
    pub request_timeout_secs: u64,
    /// A Jinja chat template file that replaces the model's own (or gives
    /// one to a model without).
    pub chat_template: Option<PathBuf>,
    /// Run on CUDA device 0 (a build with the `cuda` feature); CPU otherwise.
    pub gpu: bool,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
}

impl Config {
    /// Defaults for a router on `port` serving `model`.
    pub fn new(port: u16, model: &str) -> Self {
        Self {
            http: SocketAddr::from(([0, 0, 0, 0], port)),
            model: model.to_owned(),
            model_id: String::new(),
            context: 4096,
            max_tokens: 512,
            parallel: 4,
            queue: 32,
            prefill_chunk: 256,
            prefix_cache: 4,
            request_timeout_secs: 120,
            chat_template: None,
            gpu: false,
            max_body_bytes: 4 << 20,
        }
    }

    /// Where the model comes from.
    pub fn model_ref(&self) -> ModelRef {
        ModelRef::parse(&self.model)
    }

    /// The id clients use.
    pub fn id(&self) -> String {
        if self.model_id.is_empty() {
            self.model_ref().name()
        } else {
            self.model_id.clone()
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new(8400, "smollm2-135m-instruct")
    }
}

impl athena_runtime::Validate for Config {
    fn validate(&self) -> Result<(), String> {
        if self.model.trim().is_empty() {
            return Err("model must name a catalog model or a .gguf file".into());
        }
        let positive = [
            ("context", self.context),
            ("max_tokens", self.max_tokens),
            ("parallel", self.parallel),
            ("prefill_chunk", self.prefill_chunk),
            ("max_body_bytes", self.max_body_bytes),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{name} must be at least 1"));
        }
        if self.context < 16 {
            return Err("context must be at least 16 tokens".into());
        }
        if self.request_timeout_secs == 0 {
            return Err("request_timeout_secs must be at least 1".into());
        }
        Ok(())
    }
}
