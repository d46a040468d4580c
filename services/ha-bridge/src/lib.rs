//! The bridge to Home Assistant: its REST and WebSocket APIs behind a small HTTP API for the orchestrator.
//!
//! This is the service's frame: configuration, HTTP API with `/healthz`,
//! `/readyz` and `/metrics`, graceful drain. Until its engine is built in,
//! the `home_assistant` readiness check fails and says why, so nothing routes work
//! to a service that cannot do it.

use std::net::SocketAddr;

use athena_runtime::Validate;
use athena_runtime::http::HttpService;
use serde::{Deserialize, Serialize};

/// The service's name in logs, metrics and `/healthz`.
pub const NAME: &str = "ha-bridge";

/// The config section this service reads (`ATHENA__HA_BRIDGE__*` overrides it).
pub const SECTION: &str = "ha_bridge";

/// The `[ha_bridge]` config section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTP API and ops endpoints.
    pub http: SocketAddr,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http: SocketAddr::from(([0, 0, 0, 0], 8600)),
        }
    }
}

impl Validate for Config {}

/// The service, ready to run.
pub fn service(config: Config) -> HttpService {
    HttpService::new(NAME, config.http, axum::Router::new()).not_ready(
        "home_assistant",
        "no Home Assistant client is built into this version yet",
    )
}
