//! Text to speech: Piper voices behind Wyoming (port 10200), gRPC and an OpenAI-compatible HTTP API.
//!
//! Built so far: the Piper engine ([`engine`]: espeak-ng phonemes, voices on
//! ONNX Runtime) and the incremental sentence splitter ([`text`]). The
//! service does not serve them yet: until its APIs exist the `engine`
//! readiness check fails and says why, so nothing routes work to it.

pub mod engine;
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
        "the text-to-speech APIs are not served by this version yet",
    )
}
