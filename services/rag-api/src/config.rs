//! The `[rag_api]` config section.

use std::net::SocketAddr;
use std::path::PathBuf;

use athena_runtime::config::Validate;
use serde::{Deserialize, Serialize};

/// The service's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// HTTP API and ops endpoints.
    pub http: SocketAddr,
    /// The embedding model: a catalog name or a directory with
    /// `config.json`, `tokenizer.json` and `model.safetensors`.
    pub model: String,
    /// CUDA device 0 (a build with `--features cuda`).
    pub gpu: bool,
    /// Texts embedded per pass.
    pub batch: usize,
    /// Where the embedded index lives (default: the data directory's `rag-api`).
    pub dir: Option<PathBuf>,
    /// Largest document accepted, in bytes.
    pub max_document_bytes: usize,
    /// Tokens per chunk (heading included), at most the model's window.
    pub chunk_tokens: usize,
    /// Tokens neighbouring chunks share.
    pub overlap_tokens: usize,
    /// Results when a search does not say.
    pub default_limit: usize,
    /// Most results one search may ask for.
    pub max_limit: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http: SocketAddr::from(([0, 0, 0, 0], 8500)),
            model: "all-minilm-l6-v2".into(),
            gpu: false,
            batch: 32,
            dir: None,
            max_document_bytes: 10 << 20,
            chunk_tokens: 200,
            overlap_tokens: 40,
            default_limit: 3,
            max_limit: 50,
        }
    }
}

impl Config {
    /// The index directory.
    pub fn index_dir(&self) -> PathBuf {
        self.dir
            .clone()
            .unwrap_or_else(|| athena_store::default_data_dir().join("rag-api"))
    }

    /// The largest request body: a document escaped in JSON, and room.
    pub fn max_body_bytes(&self) -> usize {
        self.max_document_bytes
            .saturating_mul(2)
            .saturating_add(1 << 20)
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), String> {
        if self.batch == 0 || self.default_limit == 0 || self.max_limit < self.default_limit {
            return Err(
                "batch and default_limit must be at least 1, max_limit at least default_limit"
                    .into(),
            );
        }
        if self.chunk_tokens < 32 || self.overlap_tokens * 2 > self.chunk_tokens {
            return Err(
                "chunk_tokens must be at least 32 and overlap_tokens at most half of it".into(),
            );
        }
        if self.model.trim().is_empty() {
            return Err("model is empty".into());
        }
        Ok(())
    }
}
