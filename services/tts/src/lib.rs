//! Text to speech: Piper voices behind Wyoming (port 10200), gRPC and an
//! OpenAI-compatible HTTP API (port 8200).
//!
//! At start the service finds ONNX Runtime (config, `ORT_DYLIB_PATH`, the
//! catalog) and checks it before `ort` sees it, then loads every configured
//! voice (catalog names are fetched on first use). Listeners open at once;
//! until the voices are loaded `/readyz` says so and requests are told so.

pub mod config;
pub mod engine;
pub mod http_api;
pub mod synthesizer;
pub mod wyoming_api;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use athena_models::ModelRef;
use athena_runtime::service::{self, Service, ServiceContext, ServiceFuture};
use athena_runtime::{http, wyoming_server};

pub use config::Config;
use engine::{Device, PiperVoice};
pub use synthesizer::Synthesizer;

/// The service's name in logs, metrics and `/healthz`.
pub const NAME: &str = "tts";

/// The config section this service reads (`ATHENA__TTS__*` overrides it).
pub const SECTION: &str = "tts";

/// Built-in defaults.
pub fn default_config() -> Config {
    Config::default()
}

/// Where the synthesizer will be once the voices are loaded.
pub type Slot = service::Slot<Synthesizer>;

/// The tts service, ready to run.
#[derive(Debug)]
pub struct Tts {
    config: Config,
    synthesizer: Slot,
}

/// The service for `config`.
pub fn service(config: Config) -> Tts {
    Tts {
        config,
        synthesizer: Arc::new(OnceLock::new()),
    }
}

impl Tts {
    /// The service interface of this service's synthesizer (unavailable
    /// until the voices are loaded): what in-process callers (the
    /// orchestrator in the `athena` process) use instead of gRPC.
    pub fn client(&self) -> Arc<dyn athena_api::tts::TextToSpeech> {
        Arc::new(LazySynthesizer(self.synthesizer.clone()))
    }
}

/// The `.onnx` file of a voice setting (fetching a catalog voice if needed).
fn voice_file(store: &athena_models::Store, setting: &str) -> anyhow::Result<PathBuf> {
    Ok(match ModelRef::parse(setting) {
        ModelRef::Catalog(name) => store.ensure(&name)?.join(format!("{name}.onnx")),
        ModelRef::Path(path) => path,
    })
}

/// Loads ONNX Runtime and the voices.
pub fn load(config: &Config) -> anyhow::Result<Synthesizer> {
    let library = athena_onnx::locate(config.onnxruntime_path().as_deref())?;
    athena_onnx::check(&library)?;
    athena_onnx::init(&library, config.threads)?;
    engine::phonemize::check_data_dir()?;
    let store = athena_models::Store::from_env()?;
    let device = Device { gpu: config.gpu };
    let voices = config
        .voices
        .iter()
        .map(|setting| {
            let name = config::voice_name(setting);
            let file = voice_file(&store, setting)?;
            let voice = PiperVoice::load(&name, &file, &device)?;
            tracing::info!(
                voice = name,
                device = voice.device(),
                streams = voice.streams(),
                "voice loaded"
            );
            anyhow::Ok(voice)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let device_gauge = if voices.iter().all(|v| v.device().starts_with("gpu")) {
        "gpu"
    } else {
        "cpu"
    };
    metrics::gauge!("tts_device_info", "device" => device_gauge).set(1.0);
    Ok(Synthesizer::new(voices, config.clone())?)
}

impl Service for Tts {
    fn name(&self) -> &'static str {
        NAME
    }

    fn run(self: Box<Self>, ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async move {
            let config = self.config;
            let slot = self.synthesizer;
            let loader = {
                let config = config.clone();
                service::loader(
                    &ctx,
                    "voices",
                    format!("loading {}", config.voices.join(", ")),
                    slot.clone(),
                    move || load(&config),
                    |loaded: &Synthesizer| {
                        loaded
                            .voices()
                            .map(|v| format!("{} on {}", v.name(), v.device()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                )
            };
            let endpoint = Arc::new(wyoming_api::TtsEndpoint::new(slot.clone()));
            let wyoming = wyoming_server::serve(&config.wyoming, endpoint, &ctx);
            let grpc = athena_api::tts::grpc_router(Arc::new(LazySynthesizer(slot.clone())));
            let api = http_api::router(slot.clone(), config.max_text_chars).merge(grpc);
            let http = http::serve(
                NAME,
                config.http,
                api,
                ctx.readiness.clone(),
                ctx.shutdown.clone(),
            );
            service::run_parts(
                &ctx.shutdown,
                vec![loader, Box::pin(wyoming), Box::pin(http)],
            )
            .await
        })
    }
}

/// The synthesizer in `slot`, or why there is none yet.
pub fn loaded(slot: &Slot) -> Result<Arc<Synthesizer>, athena_api::Error> {
    slot.get()
        .cloned()
        .ok_or_else(|| athena_api::Error::unavailable("the voices are still loading"))
}

/// The service interface of a synthesizer that may still be loading.
#[derive(Debug, Clone)]
pub struct LazySynthesizer(pub Slot);

#[async_trait::async_trait]
impl athena_api::tts::TextToSpeech for LazySynthesizer {
    async fn describe(&self) -> Result<Vec<athena_api::tts::Voice>, athena_api::Error> {
        Ok(loaded(&self.0)?.describe())
    }

    async fn synthesize(
        &self,
        config: athena_api::tts::SynthesisConfig,
        text: athena_api::tts::TextStream,
    ) -> Result<athena_api::tts::SpeechStream, athena_api::Error> {
        let synthesizer = loaded(&self.0)?;
        let plan = synthesizer.plan(&config)?;
        Ok(synthesizer.speak(plan, text))
    }
}
