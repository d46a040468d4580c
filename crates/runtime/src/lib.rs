//! What every Athena service shares, so that no service re-implements it:
//!
//! - [`config`]: typed, validated configuration from defaults → file → environment.
//! - [`telemetry`]: `tracing` logs (human or JSON) and the Prometheus recorder.
//! - `fetch` (feature `fetch`): getting a URL with a deadline, a size limit
//!   and conditional requests, never showing its query string.
//! - [`http`]: the HTTP server with `/healthz`, `/readyz`, `/metrics`, request
//!   metrics, and the one error type that APIs turn into responses.
//! - [`shutdown`]: SIGTERM/SIGINT → cancellation → drain within a grace period.
//! - [`service`]: the shape of a runnable service, so one process can run many.
//! - [`wyoming_server`]: the `wyoming` config section and serving a handler.

pub mod config;
#[cfg(feature = "fetch")]
pub mod fetch;
pub mod http;
pub mod service;
pub mod shutdown;
pub mod telemetry;
pub mod wyoming_server;

pub use config::{ConfigError, ConfigSource, Secret, Validate};
pub use http::{ApiError, Readiness};
pub use service::{Service, ServiceContext, launch, run_single};
pub use wyoming_server::WyomingConfig;

/// A TCP port on 127.0.0.1 that was free a moment ago, for tests and
/// benchmarks that start servers (another process may take it first; the
/// window is short).
pub fn free_local_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
