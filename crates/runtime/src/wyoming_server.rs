//! The `[*.wyoming]` config section and serving a Wyoming handler as part of a
//! service: bind, report readiness, serve until shutdown, drain.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::info;
use wyoming::{ConnectionConfig, Endpoint, Handler, Limits, Server, ServerConfig};

use crate::config::Validate;
use crate::service::ServiceContext;

/// Where and how a service speaks Wyoming.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WyomingConfig {
    /// `tcp://HOST:PORT`, `unix://PATH` or `stdio://`.
    pub uri: String,
    /// Connections open at once; more are told `busy`.
    pub max_connections: usize,
    /// Seconds a peer may stay silent between events (0: forever).
    pub idle_timeout_secs: u64,
    /// Seconds a peer may take to finish a frame it started.
    pub frame_timeout_secs: u64,
    /// Seconds a write may wait for a peer that does not read.
    pub write_timeout_secs: u64,
    /// Longest header line.
    pub max_header_bytes: usize,
    /// Largest data block.
    pub max_data_bytes: usize,
    /// Largest payload (one audio chunk).
    pub max_payload_bytes: usize,
}

impl Default for WyomingConfig {
    fn default() -> Self {
        Self::listening_on("tcp://0.0.0.0:10700")
    }
}

impl WyomingConfig {
    /// Defaults with another URI (each service has its own port).
    pub fn listening_on(uri: &str) -> Self {
        let connection = ConnectionConfig::default();
        Self {
            uri: uri.to_owned(),
            max_connections: ServerConfig::default().max_connections,
            idle_timeout_secs: connection.idle_timeout.map_or(0, |d| d.as_secs()),
            frame_timeout_secs: connection.frame_timeout.as_secs(),
            write_timeout_secs: connection.write_timeout.as_secs(),
            max_header_bytes: connection.limits.max_header,
            max_data_bytes: connection.limits.max_data,
            max_payload_bytes: connection.limits.max_payload,
        }
    }

    /// The endpoint to listen on.
    pub fn endpoint(&self) -> Result<Endpoint, String> {
        self.uri
            .parse()
            .map_err(|e: wyoming::server::InvalidEndpoint| e.to_string())
    }

    /// Limits and timeouts for the server.
    pub fn server_config(&self) -> ServerConfig {
        ServerConfig {
            connection: ConnectionConfig {
                limits: Limits {
                    max_header: self.max_header_bytes,
                    max_data: self.max_data_bytes,
                    max_payload: self.max_payload_bytes,
                },
                idle_timeout: (self.idle_timeout_secs > 0)
                    .then(|| Duration::from_secs(self.idle_timeout_secs)),
                frame_timeout: Duration::from_secs(self.frame_timeout_secs),
                write_timeout: Duration::from_secs(self.write_timeout_secs),
            },
            max_connections: self.max_connections,
        }
    }
}

impl Validate for WyomingConfig {
    fn validate(&self) -> Result<(), String> {
        self.endpoint()?;
        let positive = [
            ("max_connections", self.max_connections),
            ("frame_timeout_secs", self.frame_timeout_secs as usize),
            ("write_timeout_secs", self.write_timeout_secs as usize),
            ("max_header_bytes", self.max_header_bytes),
            ("max_data_bytes", self.max_data_bytes),
            ("max_payload_bytes", self.max_payload_bytes),
        ];
        match positive.iter().find(|(_, v)| *v == 0) {
            Some((name, _)) => Err(format!("wyoming.{name} must be greater than 0")),
            None => Ok(()),
        }
    }
}

/// Serves `handler` on the configured endpoint until shutdown, then drains.
pub async fn serve<H: Handler>(
    config: &WyomingConfig,
    handler: Arc<H>,
    ctx: &ServiceContext,
) -> anyhow::Result<()> {
    let endpoint = config.endpoint().map_err(anyhow::Error::msg)?;
    let server_config = config.server_config();
    if endpoint == Endpoint::Stdio {
        ctx.readiness.set("wyoming", true, "serving stdio://");
        wyoming::serve_stdio(handler, server_config.connection, ctx.shutdown.clone()).await;
        // A stdio program lives as long as its one peer, as Wyoming programs
        // started by another process do.
        info!("stdin closed; shutting down");
        ctx.shutdown.cancel();
        return Ok(());
    }
    ctx.readiness
        .set("wyoming", false, format!("binding {endpoint}"));
    let server = Server::bind(&endpoint, server_config)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen for Wyoming on {endpoint}: {e}"))?;
    info!(%endpoint, "Wyoming listening");
    ctx.readiness
        .set("wyoming", true, format!("listening on {endpoint}"));
    server.serve(handler, ctx.shutdown.clone()).await;
    Ok(())
}
