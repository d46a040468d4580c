//! The `[rag_api]` config section.

use std::net::SocketAddr;
use std::path::PathBuf;

use athena_runtime::config::{Secret, Validate};
use serde::{Deserialize, Serialize};

use crate::embed::Precision;
use crate::engine::{valid_collection_name, valid_document_id};
use crate::store::Access;

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
    /// The dense layers' products: `q8` (8-bit integer kernels, default)
    /// or `f32` (the trained weights as they are).
    pub precision: Precision,
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
    /// Where chunks and vectors live.
    pub backend: BackendKind,
    /// The Qdrant server, when `backend = "qdrant"`.
    pub qdrant: QdrantConfig,
    /// Folders whose files the index follows (`[[rag_api.folders]]`).
    #[serde(default)]
    pub folders: Vec<FolderSource>,
    /// Pages fetched on a schedule (`[[rag_api.urls]]`).
    #[serde(default)]
    pub urls: Vec<UrlSource>,
}

/// A folder the index follows: its Markdown, HTML and text files (in
/// subfolders too) are documents of `collection`, added, replaced and
/// deleted as the files are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FolderSource {
    pub path: PathBuf,
    /// Its own collection: documents there without a file here are deleted.
    pub collection: String,
    /// Who may search the collection, if this creates it (default: the owner).
    #[serde(default = "owner_only")]
    pub access: Access,
    /// Seconds between scans.
    #[serde(default = "default_scan_secs")]
    pub scan_secs: u64,
}

/// A page fetched every `every_secs` into `collection`; a failed fetch
/// keeps the last good copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrlSource {
    /// http or https; its query string is never logged or shown.
    pub url: String,
    pub collection: String,
    /// Who may search the collection, if this creates it (default: the owner).
    #[serde(default = "owner_only")]
    pub access: Access,
    /// Seconds between fetches.
    #[serde(default = "default_every_secs")]
    pub every_secs: u64,
    /// Seconds one fetch may take, body included.
    #[serde(default = "default_fetch_timeout_secs")]
    pub timeout_secs: u64,
    /// The document's id (default: made from the URL).
    #[serde(default)]
    pub id: Option<String>,
}

fn owner_only() -> Access {
    Access::Owner
}

fn default_scan_secs() -> u64 {
    5
}

fn default_every_secs() -> u64 {
    3600
}

fn default_fetch_timeout_secs() -> u64 {
    30
}

/// The folders and URLs: each readable, each collection a valid name, no
/// two folders in one collection, no two URLs for one document.
fn validate_sources(folders: &[FolderSource], urls: &[UrlSource]) -> Result<(), String> {
    let collection = |what: &str, name: &str| {
        if valid_collection_name(name) {
            Ok(())
        } else {
            Err(format!(
                "{what}: {name:?} is not a collection name (a-z, 0-9, _ and -, at most 64)"
            ))
        }
    };
    for (i, f) in folders.iter().enumerate() {
        let what = format!("folders[{i}]");
        if f.path.as_os_str().is_empty() {
            return Err(format!("{what}: path is empty"));
        }
        collection(&what, &f.collection)?;
        if f.scan_secs == 0 {
            return Err(format!("{what}: scan_secs must be at least 1"));
        }
        if folders[..i].iter().any(|g| g.collection == f.collection) {
            return Err(format!(
                "{what}: collection {:?} already follows another folder; give each folder its own",
                f.collection
            ));
        }
    }
    for (i, u) in urls.iter().enumerate() {
        let what = format!("urls[{i}]");
        let rest = u
            .url
            .strip_prefix("https://")
            .or_else(|| u.url.strip_prefix("http://"));
        if !rest.is_some_and(|r| !r.starts_with(['/', '?', '#']) && !r.is_empty()) {
            return Err(format!(
                "{what}: {:?} is not an http:// or https:// URL",
                athena_runtime::fetch::shown(&u.url)
            ));
        }
        collection(&what, &u.collection)?;
        if u.every_secs == 0 || u.timeout_secs == 0 {
            return Err(format!(
                "{what}: every_secs and timeout_secs must be at least 1"
            ));
        }
        if let Some(id) = &u.id
            && !valid_document_id(id)
        {
            return Err(format!(
                "{what}: {id:?} is not a document id (A-Z, a-z, 0-9, ., _ and -, at most 200)"
            ));
        }
        let clash = |v: &UrlSource| {
            v.collection == u.collection
                && match (&u.id, &v.id) {
                    (Some(a), Some(b)) => a == b,
                    (None, None) => u.url == v.url,
                    _ => false,
                }
        };
        if urls[..i].iter().any(clash) {
            return Err(format!(
                "{what}: another URL is already document {:?} in {:?}",
                u.id.as_deref().unwrap_or("(from the URL)"),
                u.collection
            ));
        }
    }
    Ok(())
}

/// Which vector store holds the index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// In this process, durable in `dir` (no server to run).
    #[default]
    Embedded,
    /// A Qdrant server, for larger installs or several replicas.
    Qdrant,
}

/// The `[rag_api.qdrant]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QdrantConfig {
    /// Its gRPC endpoint (`http://qdrant:6334`); required for the backend.
    pub url: String,
    /// Its API key, if it wants one (`ATHENA__RAG_API__QDRANT__API_KEY`).
    pub api_key: Secret,
    /// Put before the names of the Qdrant collections this service owns
    /// (`{prefix}chunks`, `{prefix}meta`), so installs can share a server.
    pub collection_prefix: String,
    /// Seconds one request (connecting included) may take.
    pub timeout_secs: u64,
}

impl Default for QdrantConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            api_key: Secret::default(),
            collection_prefix: "athena_".into(),
            timeout_secs: 10,
        }
    }
}

impl QdrantConfig {
    /// The deadline of one request.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout_secs)
    }

    fn validate(&self) -> Result<(), String> {
        let url = self.url.trim();
        if url.is_empty() {
            return Err("backend qdrant needs qdrant.url (its gRPC endpoint, port 6334)".into());
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "qdrant.url {url:?} is not an http:// or https:// URL"
            ));
        }
        let prefix = &self.collection_prefix;
        if prefix.len() > 64
            || !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "qdrant.collection_prefix {prefix:?} is not A-Z, a-z, 0-9, _ and -, at most 64"
            ));
        }
        if self.timeout_secs == 0 {
            return Err("qdrant.timeout_secs must be at least 1".into());
        }
        Ok(())
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http: SocketAddr::from(([0, 0, 0, 0], 8500)),
            model: "all-minilm-l6-v2".into(),
            gpu: false,
            batch: 32,
            precision: Precision::default(),
            dir: None,
            max_document_bytes: 10 << 20,
            chunk_tokens: 200,
            overlap_tokens: 40,
            default_limit: 3,
            max_limit: 50,
            backend: BackendKind::default(),
            qdrant: QdrantConfig::default(),
            folders: Vec::new(),
            urls: Vec::new(),
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
        if self.backend == BackendKind::Qdrant {
            self.qdrant.validate()?;
        }
        validate_sources(&self.folders, &self.urls)?;
        Ok(())
    }
}
