//! The orchestrator: the voice pipeline that Wyoming satellites talk to.
//!
//! It listens for Wyoming on port 10700 ([`satellite`]), connects to the
//! satellites its config names ([`outbound`]), and serves its HTTP API and
//! ops endpoints on port 8700. A satellite's `run-pipeline` runs
//! [`pipeline`]: end of speech by the VAD, speech to text (the stt service,
//! over gRPC, Wyoming or in the same process),
//! a local intent ([`intent`]) checked against mode-service's policy and run
//! through ha-bridge ([`actions`], [`backends`]) or else an answer from the
//! LLMs as the routing policy says ([`routing`], with each satellite's recent
//! turns from [`memory`]), and the spoken reply (the tts service) streamed
//! back, an answer sentence by sentence as it is written.

pub mod actions;
pub mod backends;
pub mod config;
pub mod http_api;
pub mod intent;
pub mod memory;
pub mod outbound;
pub mod pipeline;
pub mod routing;
pub mod satellite;

use std::sync::Arc;

use anyhow::Context;
use athena_api::location;
use athena_api::stt::SpeechToText;
use athena_api::tts::TextToSpeech;
use athena_runtime::service::{self, Service, ServiceContext, ServiceFuture};
use athena_runtime::{http, wyoming_server};

use actions::Actions;
use backends::ha_bridge::HaBridgeClient;
use backends::mode::ModeClient;
pub use config::Config;
use intent::IntentSet;
use pipeline::Pipeline;
use routing::{AnswerSettings, Answers};
use satellite::SatelliteEndpoint;

/// The service's name in logs, metrics and `/healthz`.
pub const NAME: &str = "orchestrator";

/// How often the routing policy file is checked for changes.
const ROUTING_CHECK: std::time::Duration = std::time::Duration::from_secs(3);

/// The orchestrator service, ready to run.
#[derive(Debug)]
pub struct Orchestrator {
    config: Config,
    here: InProcess,
}

impl Orchestrator {
    /// An orchestrator with `config`.
    pub fn new(config: Config) -> Self {
        Self {
            config,
            here: InProcess::default(),
        }
    }

    /// With the services `here` in the same process, for the backends
    /// whose `url` is `in-process`.
    pub fn with_in_process(mut self, here: InProcess) -> Self {
        self.here = here;
        self
    }
}

/// Services that run in the orchestrator's own process (the `athena`
/// binary), called directly instead of over the network.
#[derive(Clone, Default)]
pub struct InProcess {
    /// The stt service.
    pub stt: Option<Arc<dyn SpeechToText>>,
    /// The tts service.
    pub tts: Option<Arc<dyn TextToSpeech>>,
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcess")
            .field("stt", &self.stt.is_some())
            .field("tts", &self.tts.is_some())
            .finish()
    }
}

/// The pipeline `config` describes: its backends (connected lazily, so a
/// backend that starts later is found then; `here` for those in this
/// process) and its intent sentences.
pub fn build_pipeline(config: &Config, here: &InProcess) -> anyhow::Result<Pipeline> {
    let stt = location::speech_to_text(&config.stt.url, here.stt.clone())
        .with_context(|| format!("stt.url {:?}", config.stt.url))?;
    let tts = location::text_to_speech(&config.tts.url, here.tts.clone())
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
    let answers = Answers::new(&AnswerSettings {
        policy_file: config.routing_policy.clone(),
        rag_api_url: config.rag_api_url.clone(),
        mode_service_url: config.mode_service_url.clone(),
        mode_deadline: deadline,
        memory: config.memory.clone(),
    })?;
    Ok(Pipeline::new(config, stt, tts, intents, actions).with_answers(Arc::new(answers)))
}

impl Service for Orchestrator {
    fn name(&self) -> &'static str {
        NAME
    }

    fn run(self: Box<Self>, ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async move {
            let pipeline = Arc::new(build_pipeline(&self.config, &self.here)?);
            let answers = pipeline.answers().cloned();
            let shutdown = ctx.shutdown.clone();
            let policy_watch = async move {
                match answers {
                    Some(answers) => answers.watch(ROUTING_CHECK, shutdown).await,
                    None => Ok(()),
                }
            };
            let endpoint = Arc::new(SatelliteEndpoint::new(pipeline));
            let routes = http_api::router(endpoint.satellites());
            let outbound = outbound::run(
                self.config.satellites.clone(),
                endpoint.clone(),
                self.config.wyoming.server_config().connection,
                ctx.shutdown.clone(),
            );
            let wyoming = wyoming_server::serve(&self.config.wyoming, endpoint, &ctx);
            let api = http::serve(
                NAME,
                self.config.http,
                routes,
                ctx.readiness.clone(),
                ctx.shutdown.clone(),
            );
            service::run_parts(
                &ctx.shutdown,
                vec![
                    Box::pin(wyoming),
                    Box::pin(api),
                    Box::pin(outbound),
                    Box::pin(policy_watch),
                ],
            )
            .await
        })
    }
}
