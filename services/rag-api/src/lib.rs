//! Retrieval over local knowledge: documents cut into chunks, embedded
//! here with candle, kept in an embedded index that survives crashes, and
//! searched by meaning with access labels per collection.
//!
//! - [`embed`]: sentence embeddings (all-MiniLM-L6-v2 by default).
//! - [`ingest`]: format checks, text from Markdown/HTML, chunking.
//! - [`store`]: the vector store interface, the embedded backend and Qdrant.
//! - [`engine`]: ingestion and search over the two.
//! - [`connectors`]: watched folders and URLs fetched on a schedule.
//! - [`http_api`]: the API.

pub mod config;
pub mod connectors;
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

/// Loads the model (fetching it if needed) and opens the index. Blocks:
/// call it off the async threads, inside a tokio runtime (the Qdrant
/// backend's client is async).
pub fn load(config: &Config) -> anyhow::Result<Rag> {
    let dir = match ModelRef::parse(&config.model) {
        ModelRef::Catalog(name) => athena_models::Store::from_env()?.ensure(&name)?,
        ModelRef::Path(path) => path,
    };
    let embedder = embed::Embedder::load(&dir, config.gpu, config.batch, config.precision)?;
    let store: store::Backend = match config.backend {
        config::BackendKind::Embedded => {
            store::EmbeddedStore::open(&config.index_dir(), embedder.dims())?.into()
        }
        config::BackendKind::Qdrant => {
            // `load` runs on a blocking thread of the service's runtime.
            let runtime = tokio::runtime::Handle::try_current()
                .map_err(|e| anyhow::anyhow!("the qdrant backend needs a tokio runtime: {e}"))?;
            runtime
                .block_on(store::QdrantStore::open(&config.qdrant, embedder.dims()))?
                .into()
        }
    };
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
                    slot.clone(),
                    move || load(&config),
                    |rag| format!("{} dimensions", rag.embedder().dims()),
                )
            };
            // The connectors start once the index is there.
            let following: service::Part<'static> = {
                let sources = connectors::from_config(&config);
                let shutdown = ctx.shutdown.clone();
                Box::pin(async move {
                    loading.await?;
                    match slot.get() {
                        Some(rag) => connectors::run(rag.clone(), sources, shutdown).await,
                        None => Ok(()),
                    }
                })
            };
            let serve = http::serve(
                NAME,
                config.http,
                api,
                ctx.readiness.clone(),
                ctx.shutdown.clone(),
            );
            service::run_parts(&ctx.shutdown, vec![following, Box::pin(serve)]).await
        })
    }
}
