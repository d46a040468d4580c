//! Connectors: sources the index follows by itself, beside what clients
//! put through the API.
//!
//! - [`folder`]: a folder's Markdown, HTML and text files, scanned every
//!   few seconds: a new or changed file is put, a removed one deleted.
//! - [`url`]: pages fetched on a schedule, conditionally when the server
//!   gives an ETag or Last-Modified; a failed fetch keeps the last good copy.
//!
//! Both poll. Polling needs no file-system events, which do not reliably
//! cross Docker bind mounts, network shares or editors that replace files;
//! a scan costs one directory walk (sizes and times, no reads) and the
//! engine re-embeds only text that changed.
//!
//! What each connector last did, per file or page, is kept in a
//! [`Status`] beside the index ([`Rag::connectors`]), served as
//! `GET /v1/connectors`. One bad source (a binary
//! file, a page that answers 500) is recorded there and never stops the
//! others.

pub mod folder;
pub mod url;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use athena_runtime::http::ApiError;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::error;

use crate::config::Config;
use crate::engine::{NewDocument, Rag, RagError};
use crate::store::{Access, Collection, StoreError};

pub use folder::Folder;
pub use url::Page;

/// A source the index follows.
#[derive(Debug, Clone)]
pub enum Connector {
    Folder(Folder),
    Url(Page),
}

impl Connector {
    fn report(&self) -> ConnectorReport {
        let (kind, name, collection) = match self {
            Self::Folder(f) => (Kind::Folder, f.path.display().to_string(), &f.collection),
            Self::Url(p) => (
                Kind::Url,
                athena_runtime::fetch::shown(&p.url),
                &p.collection,
            ),
        };
        ConnectorReport {
            kind,
            name,
            collection: collection.clone(),
            checked: None,
            error: None,
            ok: 0,
            failed: 0,
            sources: Vec::new(),
        }
    }
}

/// The folders and URLs of `config`.
pub fn from_config(config: &Config) -> Vec<Connector> {
    let max = config.max_document_bytes;
    let folders = config
        .folders
        .iter()
        .map(|f| Connector::Folder(Folder::new(f, max)));
    let urls = config
        .urls
        .iter()
        .map(|u| Connector::Url(Page::new(u, max)));
    folders.chain(urls).collect()
}

/// Runs `connectors` over `rag` until `shutdown` is cancelled, each
/// reporting to the engine's [`Status`] (reset to them). A connector that
/// panics is logged; the others go on.
pub async fn run(
    rag: Arc<Rag>,
    connectors: Vec<Connector>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let status = rag.connectors().clone();
    status.reset(connectors.iter().map(Connector::report).collect());
    let http = if connectors.iter().any(|c| matches!(c, Connector::Url(_))) {
        Some(
            reqwest::Client::builder()
                .user_agent(concat!("athena-rag-api/", env!("CARGO_PKG_VERSION")))
                .build()
                .context("cannot set up the HTTP client for URL connectors")?,
        )
    } else {
        None
    };
    let mut tasks = JoinSet::new();
    for (index, connector) in connectors.into_iter().enumerate() {
        let link = Link {
            rag: rag.clone(),
            status: status.clone(),
            index,
            shutdown: shutdown.clone(),
        };
        match (connector, &http) {
            (Connector::Folder(f), _) => tasks.spawn(f.follow(link)),
            (Connector::Url(p), Some(http)) => tasks.spawn(p.follow(link, http.clone())),
            (Connector::Url(_), None) => continue,
        };
    }
    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined {
            error!(error = %e, "a connector stopped unexpectedly");
        }
    }
    Ok(())
}

/// What a connector's loop works with.
#[derive(Debug)]
struct Link {
    rag: Arc<Rag>,
    status: Status,
    /// Its place in `status`.
    index: usize,
    shutdown: CancellationToken,
}

impl Link {
    /// Makes sure the collection exists, creating it with `access`; true
    /// when it was created (everything must then be put again).
    async fn ensure_collection(&self, name: &str, access: Access) -> Result<bool, Problem> {
        let exists = self
            .rag
            .collections()
            .await?
            .iter()
            .any(|c| c.collection.name == name);
        if exists {
            return Ok(false);
        }
        let description = {
            let report = self.status.lock();
            report
                .get(self.index)
                .map(|r| format!("followed from {}", r.name))
                .unwrap_or_default()
        };
        match self
            .rag
            .create_collection(Collection {
                name: name.to_owned(),
                access,
                description,
            })
            .await
        {
            Ok(()) => Ok(true),
            // Another connector of the same collection was first.
            Err(RagError::Store(StoreError::CollectionExists(_))) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Puts a document; what happened, for the status.
    async fn put(&self, collection: &str, id: &str, new: NewDocument) -> Result<Outcome, Problem> {
        let before = self.rag.document(collection, id).await.ok();
        let doc = self.rag.put_document(collection, id, new).await?;
        let at = now_secs();
        Ok(if before.as_ref() == Some(&doc) {
            Outcome::Unchanged {
                at,
                chunks: doc.chunks,
            }
        } else {
            Outcome::Indexed {
                at,
                chunks: doc.chunks,
            }
        })
    }

    /// Notes the connector's last run and, if it failed as a whole, why.
    fn checked(&self, error: Option<Problem>) {
        self.status.update(self.index, |r| {
            r.checked = Some(now_secs());
            r.error = error;
        });
    }

    /// Notes a source's last result.
    fn record(&self, kind: Kind, source: &str, document: &str, outcome: Outcome) {
        metrics::counter!("rag_connector_ingests_total",
            "connector" => kind.as_str(), "result" => outcome.as_str())
        .increment(1);
        self.status.update(self.index, |r| {
            let at = match r
                .sources
                .binary_search_by(|s| s.source.as_str().cmp(source))
            {
                Ok(at) => at,
                Err(at) => {
                    r.sources.insert(
                        at,
                        SourceReport {
                            source: source.to_owned(),
                            document: document.to_owned(),
                            last: outcome.clone(),
                            indexed: 0,
                            unchanged: 0,
                            errors: 0,
                        },
                    );
                    at
                }
            };
            let s = &mut r.sources[at];
            match &outcome {
                Outcome::Indexed { .. } => s.indexed += 1,
                Outcome::Unchanged { .. } => s.unchanged += 1,
                Outcome::Error { .. } => s.errors += 1,
            }
            s.last = outcome;
        });
    }

    /// Drops a source that is gone.
    fn forget(&self, source: &str) {
        self.status
            .update(self.index, |r| r.sources.retain(|s| s.source != source));
    }
}

/// What every connector last did, shared with the API.
#[derive(Debug, Clone, Default)]
pub struct Status(Arc<Mutex<Vec<ConnectorReport>>>);

impl Status {
    /// Each connector's report, in config order (folders, then URLs).
    pub fn reports(&self) -> Vec<ConnectorReport> {
        let mut reports = self.lock().clone();
        for r in &mut reports {
            r.failed = r
                .sources
                .iter()
                .filter(|s| matches!(s.last, Outcome::Error { .. }))
                .count();
            r.ok = r.sources.len() - r.failed;
        }
        reports
    }

    fn lock(&self) -> MutexGuard<'_, Vec<ConnectorReport>> {
        // A panic elsewhere leaves reports that are still worth showing.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn reset(&self, reports: Vec<ConnectorReport>) {
        *self.lock() = reports;
    }

    fn update(&self, index: usize, f: impl FnOnce(&mut ConnectorReport)) {
        if let Some(report) = self.lock().get_mut(index) {
            f(report);
        }
    }
}

/// Which kind of source a connector follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Folder,
    Url,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Folder => "folder",
            Self::Url => "url",
        }
    }
}

/// One connector's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectorReport {
    pub kind: Kind,
    /// The folder's path, or the URL without its query or credentials.
    pub name: String,
    pub collection: String,
    /// When it last scanned or fetched (seconds since the epoch).
    pub checked: Option<u64>,
    /// Why its last run failed as a whole (the folder is missing, say).
    pub error: Option<Problem>,
    /// Sources whose last result is good.
    pub ok: usize,
    /// Sources whose last result is an error.
    pub failed: usize,
    /// Each file (by relative path) or the page, sorted.
    pub sources: Vec<SourceReport>,
}

/// One file's or page's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceReport {
    /// The file's path in the folder, or the URL as shown.
    pub source: String,
    /// Its document's id in the collection.
    pub document: String,
    /// The last result.
    #[serde(flatten)]
    pub last: Outcome,
    /// Results since the service started: new text embedded, nothing new,
    /// refused or failed.
    pub indexed: u64,
    pub unchanged: u64,
    pub errors: u64,
}

/// What came of putting a source, at a time (seconds since the epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// New text, embedded and stored.
    Indexed { at: u64, chunks: usize },
    /// The same text (or a 304) as the copy in the index.
    Unchanged { at: u64, chunks: usize },
    /// Refused or failed; an earlier copy, if any, stays in the index.
    Error {
        at: u64,
        #[serde(flatten)]
        problem: Problem,
    },
}

impl Outcome {
    fn error(problem: Problem) -> Self {
        Self::Error {
            at: now_secs(),
            problem,
        }
    }

    fn as_str(&self) -> &'static str {
        match self {
            Self::Indexed { .. } => "indexed",
            Self::Unchanged { .. } => "unchanged",
            Self::Error { .. } => "error",
        }
    }
}

/// Why a source was not taken: a stable code and a message for people
/// (never a URL's query string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub code: &'static str,
    pub message: String,
}

impl Problem {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// The API's codes and messages (`empty_document`, `binary_document`, ...),
/// from the one place that maps engine errors.
impl From<RagError> for Problem {
    fn from(e: RagError) -> Self {
        let api = ApiError::from(e);
        Self::new(api.code, api.message)
    }
}

impl From<athena_runtime::fetch::FetchError> for Problem {
    fn from(e: athena_runtime::fetch::FetchError) -> Self {
        Self::new(e.code(), e.to_string())
    }
}

/// A valid document id for a source: `readable` with what ids may not
/// hold replaced, cut to fit, and a hash of `exact` so that sources that
/// read alike (`a/b.md`, `a_b.md`) stay apart. The same source always
/// gets the same id.
fn document_id(readable: &str, exact: &str) -> String {
    let hash: String = Sha256::digest(exact.as_bytes())
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect();
    let base: String = readable
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    // ASCII only now, so any cut is on a character boundary.
    let base = base.trim_start_matches('.');
    let base = &base[..base.len().min(180)];
    if base.is_empty() {
        hash
    } else {
        format!("{base}-{hash}")
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::valid_document_id;

    #[test]
    fn document_ids_are_valid_stable_and_apart() {
        let paths = [
            "kitchen/coffee.md",
            "kitchen_coffee.md",
            "Küche/Kaffee maschine.md",
            "..odd/name.txt",
            &"deep/".repeat(80),
        ];
        let ids: Vec<String> = paths.iter().map(|p| document_id(p, p)).collect();
        for (p, id) in paths.iter().zip(&ids) {
            assert!(valid_document_id(id), "{p:?} → {id:?}");
            assert_eq!(&document_id(p, p), id, "stable");
        }
        assert!(ids[0].starts_with("kitchen_coffee.md-"), "{}", ids[0]);
        assert_ne!(ids[0], ids[1]);
        assert!(valid_document_id(&document_id("", "")));
    }
}
