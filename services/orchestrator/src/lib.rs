//! The orchestrator: the voice pipeline that Wyoming satellites talk to.
//!
//! It listens for Wyoming on port 10700 ([`satellite`]) and serves its HTTP API
//! and ops endpoints on port 8700. The pipeline stages (speech to text, intent,
//! answer, text to speech) are added as their services arrive; until a stage
//! has a backend, `info` reports it as not installed and a `run-pipeline`
//! that needs it gets an `error` that says so.

pub mod config;
pub mod intent;
pub mod satellite;

use std::sync::Arc;

use athena_runtime::service::{self, Service, ServiceContext, ServiceFuture};
use athena_runtime::{http, wyoming_server};

pub use config::Config;
use satellite::SatelliteEndpoint;

/// The service's name in logs, metrics and `/healthz`.
pub const NAME: &str = "orchestrator";

/// The orchestrator service, ready to run.
#[derive(Debug)]
pub struct Orchestrator {
    config: Config,
}

impl Orchestrator {
    /// An orchestrator with `config`.
    pub fn new(config: Config) -> Self {
        Self { config }
    }
}

impl Service for Orchestrator {
    fn name(&self) -> &'static str {
        NAME
    }

    fn run(self: Box<Self>, ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async move {
            let endpoint = Arc::new(SatelliteEndpoint::new());
            let wyoming = wyoming_server::serve(&self.config.wyoming, endpoint, &ctx);
            let api = http::serve(
                NAME,
                self.config.http,
                axum::Router::new(),
                ctx.readiness.clone(),
                ctx.shutdown.clone(),
            );
            service::run_parts(&ctx.shutdown, vec![Box::pin(wyoming), Box::pin(api)]).await
        })
    }
}
