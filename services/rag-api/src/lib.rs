//! Retrieval over local knowledge: an embedded vector index by default, Qdrant for larger installs.
//!
//! This is the service's frame: configuration, HTTP API with `/healthz`,
//! `/readyz` and `/metrics`, graceful drain. Until its engine is built in,
//! the `index` readiness check fails and says why, so nothing routes work
//! to a service that cannot do it.

pub mod embed;

use athena_runtime::http::{HttpConfig, HttpService};

/// The service's name in logs, metrics and `/healthz`.
pub const NAME: &str = "rag-api";

/// The config section this service reads (`ATHENA__RAG_API__*` overrides it).
pub const SECTION: &str = "rag_api";

/// The `[rag_api]` config section.
pub type Config = HttpConfig;

/// Built-in defaults: HTTP on port 8500.
pub fn default_config() -> Config {
    HttpConfig::on_port(8500)
}

/// The service, ready to run.
pub fn service(config: Config) -> HttpService {
    HttpService::new(NAME, config.http, axum::Router::new())
        .not_ready("index", "no knowledge index is built into this version yet")
}
