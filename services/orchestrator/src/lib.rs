//! The orchestrator: the voice pipeline that Wyoming satellites talk to.
//!
//! It listens for Wyoming on port 10700 ([`satellite`]) and serves its HTTP
//! API and ops endpoints on port 8700. A satellite's `run-pipeline` runs
//! [`pipeline`]: end of speech by the VAD, speech to text (the stt service),
//! a local intent ([`intent`]) checked against mode-service's policy and run
//! through ha-bridge ([`actions`], [`backends`]), and the spoken reply (the
//! tts service) streamed back.

pub mod actions;
pub mod backends;
pub mod config;
pub mod http_api;
pub mod intent;
pub mod pipeline;
pub mod satellite;

use std::sync::Arc;

use anyhow::Context;
use athena_api::stt::GrpcSpeechToText;
use athena_api::tts::GrpcTextToSpeech;
use athena_runtime::service::{self, Service, ServiceContext, ServiceFuture};
use athena_runtime::{http, wyoming_server};

use actions::Actions;
use backends::ha_bridge::HaBridgeClient;
use backends::mode::ModeClient;
pub use config::Config;
use intent::IntentSet;
use pipeline::Pipeline;
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

/// The pipeline `config` describes: its backends (connected lazily, so a
/// backend that starts later is found then) and its intent sentences.
pub fn build_pipeline(config: &Config) -> anyhow::Result<Pipeline> {
    let stt = GrpcSpeechToText::connect_lazy(&config.stt.url)
        .with_context(|| format!("stt.url {:?}", config.stt.url))?;
    let tts = GrpcTextToSpeech::connect_lazy(&config.tts.url)
        .with_context(|| format!("tts.url {:?}", config.tts.url))?;
    let intents = match &config.intents {
        Some(path) => {
            let yaml = std::fs::read_to_string(path)
                .with_context(|| format!("intents file {}", path.display()))?;
            IntentSet::from_yaml(&yaml)
                .with_context(|| format!("intents file {}", path.display()))?
        }
        None => IntentSet::english()?,
    };
    let deadline = config::secs(config.timeouts.action_secs);
    let home = HaBridgeClient::new(&config.ha_bridge_url, deadline)?;
    let policy = ModeClient::new(&config.mode_service_url, deadline)?;
    let actions = Actions::new(Arc::new(home), Arc::new(policy));
    Ok(Pipeline::new(
        config,
        Arc::new(stt),
        Arc::new(tts),
        intents,
        actions,
    ))
}

impl Service for Orchestrator {
    fn name(&self) -> &'static str {
        NAME
    }

    fn run(self: Box<Self>, ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async move {
            let pipeline = Arc::new(build_pipeline(&self.config)?);
            let endpoint = Arc::new(SatelliteEndpoint::new(pipeline));
            let routes = http_api::router(endpoint.satellites());
            let wyoming = wyoming_server::serve(&self.config.wyoming, endpoint, &ctx);
            let api = http::serve(
                NAME,
                self.config.http,
                routes,
                ctx.readiness.clone(),
                ctx.shutdown.clone(),
            );
            service::run_parts(&ctx.shutdown, vec![Box::pin(wyoming), Box::pin(api)]).await
        })
    }
}
