//! The bridge to Home Assistant: its REST and WebSocket APIs behind a small HTTP API for the orchestrator.
//!
//! This is the service's frame: configuration, HTTP API with `/healthz`,
//! `/readyz` and `/metrics`, graceful drain. Until its engine is built in,
//! the `home_assistant` readiness check fails and says why, so nothing routes work
//! to a service that cannot do it.

use athena_runtime::http::{HttpConfig, HttpService};

/// The service's name in logs, metrics and `/healthz`.
pub const NAME: &str = "ha-bridge";

/// The config section this service reads (`ATHENA__HA_BRIDGE__*` overrides it).
pub const SECTION: &str = "ha_bridge";

/// The `[ha_bridge]` config section.
pub type Config = HttpConfig;

/// Built-in defaults: HTTP on port 8600.
pub fn default_config() -> Config {
    HttpConfig::on_port(8600)
}

/// The service, ready to run.
pub fn service(config: Config) -> HttpService {
    HttpService::new(NAME, config.http, axum::Router::new()).not_ready(
        "home_assistant",
        "no Home Assistant client is built into this version yet",
    )
}
