//! An OpenAI-compatible LLM server for GGUF models. One binary, deployed
//! twice: `router-small-llm` (a small fast model for classification and
//! short answers) and `router-large-llm` (a larger one for reasoning and
//! RAG). Anything that speaks the OpenAI API (Ollama, vLLM, llama.cpp's
//! server) can stand in for either.
//!
//! The HTTP listener opens at once; the model loads beside it (fetched from
//! the catalog on first use) and `/readyz` says `loading` until it is there.

pub mod config;
pub mod engine;
pub mod http_api;
pub mod llm;
pub mod openai;
pub mod structured;

use std::sync::{Arc, OnceLock};

use athena_runtime::http;
use athena_runtime::service::{self, Service, ServiceContext, ServiceFuture};

pub use config::Config;
pub use llm::Llm;

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

    /// Built-in defaults: each role has its own port and model.
    pub fn default_config(self) -> Config {
        match self {
            Self::Small => Config::new(8400, "smollm2-135m-instruct"),
            Self::Large => Config::new(8401, "qwen2.5-coder-0.5b-instruct"),
        }
    }
}

/// One router, ready to run.
#[derive(Debug)]
pub struct LlmService {
    role: Role,
    config: Config,
    slot: http_api::Slot,
}

/// The service for `role`.
pub fn service(role: Role, config: Config) -> LlmService {
    LlmService {
        role,
        config,
        slot: Arc::new(OnceLock::new()),
    }
}

impl Service for LlmService {
    fn name(&self) -> &'static str {
        self.role.name()
    }

    fn run(self: Box<Self>, ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async move {
            let Self { role, config, slot } = *self;
            let loader = {
                let config = config.clone();
                service::loader(
                    &ctx,
                    "model",
                    format!("loading {}", config.model),
                    slot.clone(),
                    move || Llm::load(&config),
                    |llm: &Llm| llm.description().to_owned(),
                )
            };
            let api = http_api::router(slot, config.clone(), role.name());
            let http = http::serve(
                role.name(),
                config.http,
                api,
                ctx.readiness.clone(),
                ctx.shutdown.clone(),
            );
            service::run_parts(&ctx.shutdown, vec![loader, Box::pin(http)]).await
        })
    }
}
