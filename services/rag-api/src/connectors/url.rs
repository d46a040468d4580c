//! Pages fetched on a schedule.
//!
//! Each fetch has a deadline and the documents' size limit. When the
//! server gave an ETag or Last-Modified with the copy in the index, the
//! next fetch asks whether it changed, and a 304 costs nothing more. The
//! format comes from the Content-Type, else from the URL's path. A failure
//! (the server down or answering 500, no answer in time, a binary body)
//! keeps the last good copy in the index and is recorded; the next
//! scheduled fetch tries again.
//!
//! The URL's query string may hold a secret: logs, the status and the
//! document's `source` show the URL without it (and without credentials).

use std::time::Duration;

use athena_runtime::fetch::{self, Limits, Validators};
use tracing::{debug, info, warn};

use super::{Kind, Link, Outcome, Problem, document_id};
use crate::config::UrlSource;
use crate::engine::{NewDocument, RagError};
use crate::ingest::{Format, IngestError};
use crate::store::Access;

/// What a fetch asks for, best first.
const ACCEPT: &str = "text/markdown, text/html;q=0.9, text/plain;q=0.8, */*;q=0.1";

/// A page to follow.
#[derive(Debug, Clone)]
pub struct Page {
    /// http or https, query string included (it is sent, never shown).
    pub url: String,
    /// Its document's id.
    pub id: String,
    pub collection: String,
    /// Who may search the collection, if it has to be created.
    pub access: Access,
    /// Time between fetches.
    pub every: Duration,
    /// Deadline of one fetch, body included.
    pub timeout: Duration,
    /// Larger bodies are refused.
    pub max_bytes: usize,
}

/// The document id of the page at `url` when the config gives none:
/// readable from the URL as shown, told apart by a hash of all of it.
pub fn url_document_id(url: &str) -> String {
    let shown = fetch::shown(url);
    let readable = shown.split_once("://").map_or(shown.as_str(), |(_, r)| r);
    format!("url-{}", document_id(readable, url))
}

impl Page {
    /// The page of a `[[rag_api.urls]]` entry.
    pub fn new(source: &UrlSource, max_bytes: usize) -> Self {
        Self {
            url: source.url.clone(),
            id: source
                .id
                .clone()
                .unwrap_or_else(|| url_document_id(&source.url)),
            collection: source.collection.clone(),
            access: source.access,
            every: Duration::from_secs(source.every_secs),
            timeout: Duration::from_secs(source.timeout_secs),
            max_bytes,
        }
    }

    /// Fetches now and every `every` until shutdown.
    pub(super) async fn follow(self, link: Link, http: reqwest::Client) {
        let shown = fetch::shown(&self.url);
        // Those of the copy in the index, for a conditional fetch.
        let mut validators = Validators::default();
        loop {
            let outcome = tokio::select! {
                outcome = self.fetch(&link, &http, &mut validators) => outcome,
                () = link.shutdown.cancelled() => return,
            };
            let outcome = match outcome {
                Ok(outcome) => {
                    if matches!(outcome, Outcome::Indexed { .. }) {
                        info!(url = %shown, "page indexed");
                    } else {
                        debug!(url = %shown, "page unchanged");
                    }
                    outcome
                }
                Err(problem) => {
                    warn!(url = %shown, code = problem.code, error = %problem.message,
                        "page not taken; the index keeps the last good copy");
                    Outcome::error(problem)
                }
            };
            link.record(Kind::Url, &shown, &self.id, outcome);
            link.checked(None);
            tokio::select! {
                () = tokio::time::sleep(self.every) => {}
                () = link.shutdown.cancelled() => return,
            }
        }
    }

    async fn fetch(
        &self,
        link: &Link,
        http: &reqwest::Client,
        validators: &mut Validators,
    ) -> Result<Outcome, Problem> {
        if link
            .ensure_collection(&self.collection, self.access)
            .await?
        {
            *validators = Validators::default();
        }
        // A 304 is only as good as the copy it refers to.
        let indexed = link.rag.document(&self.collection, &self.id).await.ok();
        if indexed.is_none() {
            *validators = Validators::default();
        }
        let limits = Limits {
            timeout: self.timeout,
            max_bytes: self.max_bytes,
        };
        let Some(body) = fetch::get_if_changed(http, &self.url, ACCEPT, limits, validators).await?
        else {
            return Ok(Outcome::Unchanged {
                at: super::now_secs(),
                chunks: indexed.map_or(0, |d| d.chunks),
            });
        };
        let format = format_of(body.content_type.as_deref(), &self.url)?;
        if body.bytes.len() > self.max_bytes {
            return Err(RagError::Ingest(IngestError::TooLarge {
                size: body.bytes.len(),
                max: self.max_bytes,
            })
            .into());
        }
        // The engine checks the text (or reads the PDF).
        let new = NewDocument {
            text: String::new(),
            bytes: Some(body.bytes.to_vec()),
            format: Some(format),
            source: Some(fetch::shown(&self.url)),
            title: None,
        };
        let outcome = link.put(&self.collection, &self.id, new).await?;
        // Only now is the body the copy in the index.
        *validators = body.validators;
        Ok(outcome)
    }
}

/// The page's format: its Content-Type, else its path's extension, else
/// text if the server says text or nothing.
fn format_of(content_type: Option<&str>, url: &str) -> Result<Format, Problem> {
    if let Some(format) = content_type.and_then(Format::guess) {
        return Ok(format);
    }
    let path = url.split(['?', '#']).next().unwrap_or(url);
    if let Some(format) = Format::guess(path) {
        return Ok(format);
    }
    let media = content_type
        .and_then(|t| t.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase());
    match media {
        None => Ok(Format::Text),
        Some(t) if t.starts_with("text/") => Ok(Format::Text),
        Some(t) => Err(Problem::new(
            "unsupported_type",
            format!("the page is {t}, not Markdown, HTML, text or PDF"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::valid_document_id;

    #[test]
    fn formats_from_the_type_then_the_path() {
        let f = |t: Option<&str>, url: &str| format_of(t, url).map_err(|p| p.code);
        assert_eq!(
            f(Some("text/html; charset=utf-8"), "https://a/x.md"),
            Ok(Format::Html)
        );
        assert_eq!(
            f(Some("application/octet-stream"), "https://a/x.md?k=1"),
            Ok(Format::Markdown)
        );
        assert_eq!(f(Some("text/x-rst"), "https://a/x"), Ok(Format::Text));
        assert_eq!(f(None, "https://a/x"), Ok(Format::Text));
        assert_eq!(f(Some("application/pdf"), "https://a/x"), Ok(Format::Pdf));
        assert_eq!(f(Some("image/png"), "https://a/x"), Err("unsupported_type"));
    }

    #[test]
    fn page_ids_never_hold_the_query() {
        let a = url_document_id("https://wiki.example/house/guide.md?token=s3cret");
        let b = url_document_id("https://wiki.example/house/guide.md?token=other");
        assert!(valid_document_id(&a), "{a}");
        assert!(a.starts_with("url-wiki.example_house_guide.md-"), "{a}");
        assert!(!a.contains("s3cret"));
        assert_ne!(a, b);
    }
}
