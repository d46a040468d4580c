//! An OpenAI-compatible LLM server for GGUF models. One binary, deployed twice:
//! `router-small-llm` (a small fast model for classification and short
//! answers) and `router-large-llm` (a larger one for reasoning and RAG).
//!
//! This is the service's frame: configuration per role, HTTP API with
//! `/healthz`, `/readyz` and `/metrics`, graceful drain. Until the inference
//! engine is built in, the `model` readiness check fails and says why.

pub mod engine;

use athena_runtime::http::{HttpConfig, HttpService};

/// Which of the two deployments this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// `router-small-llm`: fast commands and intent classification.
    Small,
    /// `router-large-llm`: reasoning and answers from retrieved knowledge.
    Large,
}

impl Role {
    /// The service's name in logs, metrics and `/healthz`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Small => "router-small-llm",
            Self::Large => "router-large-llm",
        }
    }

    /// The config section (`ATHENA__ROUTER_SMALL_LLM__*` overrides it).
    pub fn section(self) -> &'static str {
        match self {
            Self::Small => "router_small_llm",
            Self::Large => "router_large_llm",
        }
    }

    /// Built-in defaults: each role has its own port.
    pub fn default_config(self) -> Config {
        HttpConfig::on_port(match self {
            Self::Small => 8400,
            Self::Large => 8401,
        })
    }
}

/// The `[router_small_llm]` / `[router_large_llm]` config section.
pub type Config = HttpConfig;

/// The service for `role`, ready to run.
pub fn service(role: Role, config: Config) -> HttpService {
    HttpService::new(role.name(), config.http, axum::Router::new()).not_ready(
        "model",
        "no inference engine is built into this version yet",
    )
}
