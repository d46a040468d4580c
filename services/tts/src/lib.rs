//! Text to speech: Piper voices behind Wyoming (port 10200), gRPC and an OpenAI-compatible HTTP API.
//!
//! This is the service's frame: configuration, HTTP API with `/healthz`,
//! `/readyz` and `/metrics`, graceful drain. Until its engine is built in,
//! the `engine` readiness check fails and says why, so nothing routes work
//! to a service that cannot do it.

pub mod text;

use athena_runtime::http::{HttpConfig, HttpService};

/// The service's name in logs, metrics and `/healthz`.
pub const NAME: &str = "tts";

/// The config section this service reads (`ATHENA__TTS__*` overrides it).
pub const SECTION: &str = "tts";

/// The `[tts]` config section.
pub type Config = HttpConfig;

/// Built-in defaults: HTTP on port 8200.
pub fn default_config() -> Config {
    HttpConfig::on_port(8200)
}

/// The service, ready to run.
pub fn service(config: Config) -> HttpService {
    HttpService::new(NAME, config.http, axum::Router::new()).not_ready(
        "engine",
        "no text-to-speech engine is built into this version yet",
    )
}
