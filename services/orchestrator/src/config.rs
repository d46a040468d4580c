//! The `[orchestrator]` config section.

use std::net::SocketAddr;

use athena_runtime::{Validate, WyomingConfig};
use serde::{Deserialize, Serialize};

/// How the orchestrator listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTP API and ops endpoints (`/healthz`, `/readyz`, `/metrics`).
    pub http: SocketAddr,
    /// Where satellites connect.
    pub wyoming: WyomingConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http: SocketAddr::from(([0, 0, 0, 0], 8700)),
            wyoming: WyomingConfig::listening_on("tcp://0.0.0.0:10700"),
        }
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), String> {
        self.wyoming.validate()
    }
}
