//! Retrieval over local knowledge: documents cut into chunks, embedded
//! here with candle, kept in an embedded index that survives crashes, and
//! searched by meaning with access labels per collection.
//!
//! - [`embed`]: sentence embeddings (all-MiniLM-L6-v2 by default).
//! - [`ingest`]: format checks, text from Markdown/HTML, chunking.
//! - [`store`]: the vector store interface and the embedded backend.
//! - [`engine`]: ingestion and search over the two.
//! - [`http_api`]: the API.

pub mod config;
pub mod embed;
pub mod engine;
pub mod http_api;
pub mod ingest;
pub mod store;

use athena_models::ModelRef;
use athena_runtime::http;
use athena_runtime::service::{self, Service, ServiceContext, ServiceFuture};

pub use config::Config;
pub use engine::Rag;

/// The service's name in logs, metrics and `/healthz`.
pub const NAME: &str = "rag-api";

/// The config section this service reads (`ATHENA__RAG_API__*` overrides it).
pub const SECTION: &str = "rag_api";

/// The readiness check for the model and index.
pub const CHECK: &str = "index";

/// Built-in defaults: HTTP on port 8500, all-MiniLM-L6-v2.
pub fn default_config() -> Config {
    Config::default()
}

/// Loads the model (fetching it if needed) and opens the index.
pub fn load(config: &Config) -> anyhow::Result<Rag> {
    let dir = match ModelRef::parse(&config.model) {
        ModelRef::Catalog(name) => athena_models::Store::from_env()?.ensure(&name)?,
        ModelRef::Path(path) => path,
    };
    let embedder = embed::Embedder::load(&dir, config.gpu, config.batch)?;
    let store = store::EmbeddedStore::open(&config.index_dir(), embedder.dims())?;
    Ok(Rag::new(embedder, store, config.clone()))
}

/// The service, ready to run.
#[derive(Debug)]
pub struct RagService {
    config: Config,
}

/// The service for `config`.
pub fn service(config: Config) -> RagService {
    RagService { config }
}

impl Service for RagService {
    fn name(&self) -> &'static str {
        NAME
    }

    fn run(self: Box<Self>, ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async move {
            let config = self.config;
            let slot = http_api::Slot::default();
            let api = http_api::router(slot.clone(), config.max_body_bytes(), config.default_limit);
            let loading = {
                let config = config.clone();
                service::loader(
                    &ctx,
                    CHECK,
                    format!("loading {}", config.model),
                    slot,
                    move || load(&config),
                    |rag| format!("{} dimensions", rag.embedder().dims()),
                )
            };
            let serve = http::serve(
                NAME,
                config.http,
                api,
                ctx.readiness.clone(),
                ctx.shutdown.clone(),
            );
            service::run_parts(&ctx.shutdown, vec![loading, Box::pin(serve)]).await
        })
    }
}
