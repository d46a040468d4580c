//! The bridge to Home Assistant: a live copy of the home (states and the
//! entity, area and device registries, kept current over the WebSocket
//! API), service calls over the REST API, and a small HTTP API for the
//! orchestrator: search, resolve a spoken name, read a state, call a
//! service, or hand text to Home Assistant's own conversation agent. An
//! allowlist/denylist bounds what it will ever touch (locks and alarms are
//! off by default).

pub mod access;
pub mod bridge;
pub mod client;
pub mod config;
pub mod home;
pub mod http_api;
#[cfg(feature = "testing")]
pub mod testing;

use athena_runtime::http;
use athena_runtime::service::{self, Service, ServiceContext, ServiceFuture};

pub use bridge::Bridge;
pub use config::Config;

/// The service's name in logs, metrics and `/healthz`.
pub const NAME: &str = "ha-bridge";

/// The config section this service reads (`ATHENA__HA_BRIDGE__*` overrides it).
pub const SECTION: &str = "ha_bridge";

/// Built-in defaults: HTTP on port 8600, Home Assistant on this machine.
pub fn default_config() -> Config {
    Config::default()
}

/// The service, ready to run.
#[derive(Debug)]
pub struct HaBridgeService {
    config: Config,
}

/// The service for `config`.
pub fn service(config: Config) -> HaBridgeService {
    HaBridgeService { config }
}

impl Service for HaBridgeService {
    fn name(&self) -> &'static str {
        NAME
    }

    fn run(self: Box<Self>, ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async move {
            let config = self.config;
            let bridge = Bridge::new(config.clone()).map_err(anyhow::Error::msg)?;
            ctx.readiness.set(
                bridge::CHECK,
                false,
                format!("connecting to {}", config.url),
            );
            let api = http_api::router(bridge.clone(), config.max_body_bytes);
            let http = http::serve(
                NAME,
                config.http,
                api,
                ctx.readiness.clone(),
                ctx.shutdown.clone(),
            );
            let follow = bridge.follow(ctx.readiness.clone(), ctx.shutdown.clone());
            service::run_parts(&ctx.shutdown, vec![Box::pin(follow), Box::pin(http)]).await
        })
    }
}
