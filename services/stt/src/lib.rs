//! Speech to text: Whisper behind Wyoming (port 10300), gRPC and an
//! OpenAI-compatible HTTP API (port 8300).
//!
//! At start the service takes its model from the catalog (downloading it on
//! first use) or from a path, converts faster-whisper (CTranslate2) weights
//! once into the cache (ggml for whisper.cpp, safetensors for candle), and
//! loads the configured engine. Listeners open at once; until the model
//! is loaded `/readyz` says so and requests are told it is loading.

pub mod config;
pub mod engine;
pub mod http_api;
pub mod model;
pub mod recognizer;
pub mod source;
pub mod wyoming_api;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use athena_runtime::service::{self, Service, ServiceContext, ServiceFuture};
use athena_runtime::{http, wyoming_server};

pub use config::{Config, Engine};
use engine::{CandleConfig, CandleWhisper, Transcriber, WhisperCpp, WhisperCppConfig};
use recognizer::{Recognizer, RecognizerOptions, SharedRecognizer};
use source::{ModelFiles, ModelRef};

/// The service's name in logs, metrics and `/healthz`.
pub const NAME: &str = "stt";

/// The config section this service reads (`ATHENA__STT__*` overrides it).
pub const SECTION: &str = "stt";

/// Built-in defaults.
pub fn default_config() -> Config {
    Config::default()
}

/// The stt service, ready to run.
#[derive(Debug)]
pub struct Stt {
    config: Config,
    recognizer: Arc<OnceLock<Arc<Recognizer>>>,
}

/// The service for `config`.
pub fn service(config: Config) -> Stt {
    Stt {
        config,
        recognizer: Arc::new(OnceLock::new()),
    }
}

impl Stt {
    /// The service interface of this service's recognizer (unavailable
    /// until it is loaded): what in-process callers (the orchestrator in
    /// the `athena` process) use instead of gRPC.
    pub fn client(&self) -> Arc<dyn athena_api::stt::SpeechToText> {
        Arc::new(LazyRecognizer(self.recognizer.clone()))
    }
}

/// Loads the engine on `use_gpu` or the CPU, from `files`, converting a
/// CTranslate2 directory once into `derived` (named after `key`).
fn load_engine(
    config: &Config,
    files: &ModelFiles,
    derived: &Path,
    key: &str,
    use_gpu: bool,
) -> anyhow::Result<Arc<dyn Transcriber>> {
    let whisper_cpp = || WhisperCppConfig {
        threads: config.threads,
        use_gpu,
        precision: config.precision,
        ..WhisperCppConfig::default()
    };
    let candle = || CandleConfig {
        threads: config.threads,
        use_gpu,
        ..CandleConfig::default()
    };
    Ok(match (config.engine, files) {
        (Engine::WhisperCpp, ModelFiles::Ggml(file)) => {
            Arc::new(WhisperCpp::load(file, whisper_cpp())?)
        }
        (Engine::WhisperCpp, ModelFiles::Ct2(dir)) => {
            let ggml = derived.join(format!("{key}.{}.ggml.bin", config.precision.as_str()));
            Arc::new(WhisperCpp::from_ct2_dir(dir, &ggml, whisper_cpp())?)
        }
        (Engine::Candle, ModelFiles::HuggingFace(dir)) => {
            Arc::new(CandleWhisper::load(dir, candle())?)
        }
        (Engine::Candle, ModelFiles::Ct2(dir)) => {
            let hf = derived.join(format!("{key}.hf"));
            Arc::new(CandleWhisper::from_ct2_dir(dir, &hf, candle())?)
        }
        (engine, files) => anyhow::bail!(engine.accepts(files).err().unwrap_or_default()),
    })
}

/// Loads the model: catalog or path → (convert once) → the configured
/// engine, on the GPU if asked and possible, the CPU otherwise.
fn load(config: &Config) -> anyhow::Result<Recognizer> {
    let store = athena_models::Store::from_env()?;
    let (files, key) = match ModelRef::parse(&config.model) {
        // The catalog's Whisper models are CTranslate2 directories.
        ModelRef::Catalog(name) => (ModelFiles::Ct2(store.ensure(&name)?), name),
        ModelRef::Path(path) => (
            ModelFiles::detect(&path).map_err(anyhow::Error::msg)?,
            source::cache_key(&path),
        ),
    };
    let derived = store.root().join(".derived");
    let load = |use_gpu| load_engine(config, &files, &derived, &key, use_gpu);
    let (engine, device) = match (config.gpu, config.engine.gpu_built()) {
        (false, _) => (load(false)?, "cpu".to_owned()),
        (true, false) => {
            tracing::warn!(
                engine = config.engine.name(),
                "stt.gpu is set but this build has no GPU back-end for the engine; using the CPU"
            );
            (
                load(false)?,
                "cpu (this build has no GPU back-end)".to_owned(),
            )
        }
        (true, true) => match load(true) {
            Ok(engine) => (engine, "gpu".to_owned()),
            Err(e) => {
                tracing::warn!(error = %e, "GPU initialisation failed; falling back to the CPU");
                metrics::counter!("stt_gpu_fallbacks_total").increment(1);
                (load(false)?, format!("cpu (GPU failed: {e})"))
            }
        },
    };
    metrics::gauge!("stt_device_info", "device" => if device == "gpu" { "gpu" } else { "cpu" })
        .set(1.0);
    let language = Some(config.language.clone()).filter(|l| !l.is_empty());
    Ok(Recognizer::new(
        engine,
        RecognizerOptions {
            model: config.model.clone(),
            concurrency: config.concurrency,
            max_queue: config.max_queue,
            reduced_context: config.reduced_context,
            default_language: language,
            max_audio_secs: config.max_audio_secs,
            partial_interval_ms: config.partial_interval_ms,
            trim_silence: config.trim_silence,
            device,
        },
    ))
}

/// Where downloaded and derived models live (for log lines).
fn models_dir() -> Option<PathBuf> {
    athena_models::Store::from_env()
        .ok()
        .map(|s| s.root().to_owned())
}

impl Service for Stt {
    fn name(&self) -> &'static str {
        NAME
    }

    fn run(self: Box<Self>, ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async move {
            let config = self.config;
            let slot = self.recognizer;
            let loader = {
                let config = config.clone();
                tracing::info!(model = %config.model, cache = ?models_dir(), "stt model");
                service::loader(
                    &ctx,
                    "model",
                    format!("loading {}", config.model),
                    slot.clone(),
                    move || load(&config),
                    |loaded: &Recognizer| {
                        format!(
                            "{} on {}, {}",
                            loaded.info().model,
                            loaded.info().engine,
                            loaded.device()
                        )
                    },
                )
            };
            let endpoint = Arc::new(wyoming_api::SttEndpoint::new(
                slot.clone(),
                config.model.clone(),
            ));
            let wyoming = wyoming_server::serve(&config.wyoming, endpoint, &ctx);
            let grpc = athena_api::stt::grpc_router(Arc::new(LazyRecognizer(slot.clone())));
            let api = http_api::router(slot.clone(), config.max_audio_secs).merge(grpc);
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

/// The gRPC face of a recognizer that may still be loading.
#[derive(Debug)]
struct LazyRecognizer(Arc<OnceLock<Arc<Recognizer>>>);

impl LazyRecognizer {
    fn get(&self) -> Result<SharedRecognizer, athena_api::Error> {
        self.0
            .get()
            .map(|r| SharedRecognizer(r.clone()))
            .ok_or_else(|| {
                athena_api::Error::unavailable("the speech-to-text model is still loading")
            })
    }
}

#[async_trait::async_trait]
impl athena_api::stt::SpeechToText for LazyRecognizer {
    async fn describe(&self) -> Result<Vec<athena_api::stt::SttModel>, athena_api::Error> {
        self.get()?.describe().await
    }

    async fn recognize(
        &self,
        config: athena_api::stt::RecognitionConfig,
        audio: athena_api::stt::AudioStream,
    ) -> Result<athena_api::stt::RecognitionStream, athena_api::Error> {
        self.get()?.recognize(config, audio).await
    }
}
