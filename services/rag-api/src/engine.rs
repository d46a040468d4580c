//! The retrieval engine: ingestion (check, extract, chunk, embed, store)
//! and search, over one embedder and one vector store.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::connectors;
use crate::embed::{EmbedError, Embedder};
use crate::ingest::{self, Format, IngestError};
use crate::store::{
    Access, Backend, Chunk, Collection, CollectionInfo, Document, Hit, StoreError, VectorStore,
};

/// What went wrong, for the one place that maps errors to responses.
#[derive(Debug, thiserror::Error)]
pub enum RagError {
    #[error("{0}")]
    Ingest(#[from] IngestError),
    #[error("{0}")]
    Embed(#[from] EmbedError),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    NotAllowed(String),
    #[error("{0}")]
    Invalid(String),
}

/// A document to store.
#[derive(Debug, Clone, Default)]
pub struct NewDocument {
    /// The document, when it comes as text (JSON carries only text).
    pub text: String,
    /// The document as a file's bytes, when it comes as a file (a PDF
    /// always does); used instead of `text`.
    pub bytes: Option<Vec<u8>>,
    pub format: Option<Format>,
    pub source: Option<String>,
    pub title: Option<String>,
}

/// A search.
#[derive(Debug, Clone)]
pub struct Query {
    pub text: String,
    /// None = every collection the reader may see.
    pub collections: Option<Vec<String>>,
    pub reader: Access,
    pub limit: usize,
    pub threshold: f32,
}

/// Ingestion and search.
#[derive(Debug)]
pub struct Rag {
    embedder: Arc<Embedder>,
    store: Backend,
    /// One embedding pass at a time: each uses every core.
    gate: Semaphore,
    config: Config,
    /// What the connectors feeding this index last did (`GET /v1/connectors`).
    connectors: connectors::Status,
}

/// `[a-z0-9_-]`, 1 to 64 characters.
pub fn valid_collection_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// `[A-Za-z0-9._-]`, 1 to 200 characters, not starting with a dot.
pub fn valid_document_id(id: &str) -> bool {
    (1..=200).contains(&id.len())
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// A PDF's text, extracted on a blocking thread (it takes a core for as
/// long as it runs, within [`ingest::pdf::Limits`]).
async fn pdf_text(bytes: Vec<u8>, max: usize) -> Result<String, RagError> {
    let limits = ingest::pdf::Limits::new(max);
    tokio::task::spawn_blocking(move || ingest::pdf::text(&bytes, limits))
        .await
        .map_err(|_| IngestError::UnreadablePdf("its extraction stopped".into()))?
        .map_err(RagError::Ingest)
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Rag {
    /// The engine over a loaded embedder and an opened store (either
    /// backend, or a [`Backend`] already).
    pub fn new(embedder: Embedder, store: impl Into<Backend>, config: Config) -> Self {
        Self {
            embedder: Arc::new(embedder),
            store: store.into(),
            gate: Semaphore::new(1),
            config,
            connectors: connectors::Status::default(),
        }
    }

    /// The connectors' reports, kept with the index they feed.
    pub fn connectors(&self) -> &connectors::Status {
        &self.connectors
    }

    /// The embedder (for `/v1/embeddings`).
    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    /// Unit vectors for `texts`, computed off the async threads.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, RagError> {
        let _turn = self
            .gate
            .acquire()
            .await
            .map_err(|e| RagError::Invalid(e.to_string()))?;
        let embedder = self.embedder.clone();
        let started = std::time::Instant::now();
        let n = texts.len();
        let vectors = tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            embedder.embed(&refs)
        })
        .await
        .map_err(|e| RagError::Embed(EmbedError::Compute(e.to_string())))??;
        metrics::counter!("rag_embedded_texts_total").increment(n as u64);
        metrics::histogram!("rag_embed_seconds").record(started.elapsed().as_secs_f64());
        Ok(vectors)
    }

    pub async fn create_collection(&self, c: Collection) -> Result<(), RagError> {
        if !valid_collection_name(&c.name) {
            return Err(RagError::Invalid(format!(
                "{:?} is not a collection name (a-z, 0-9, _ and -, at most 64)",
                c.name
            )));
        }
        Ok(self.store.create_collection(c).await?)
    }

    pub async fn delete_collection(&self, name: &str) -> Result<(), RagError> {
        Ok(self.store.delete_collection(name).await?)
    }

    pub async fn collections(&self) -> Result<Vec<CollectionInfo>, RagError> {
        Ok(self.store.collections().await?)
    }

    pub async fn documents(&self, collection: &str) -> Result<Vec<Document>, RagError> {
        Ok(self.store.documents(collection).await?)
    }

    pub async fn document(&self, collection: &str, id: &str) -> Result<Document, RagError> {
        self.store.document(collection, id).await?.ok_or_else(|| {
            RagError::Store(StoreError::UnknownDocument {
                collection: collection.to_owned(),
                document: id.to_owned(),
            })
        })
    }

    pub async fn delete_document(&self, collection: &str, id: &str) -> Result<(), RagError> {
        Ok(self.store.delete_document(collection, id).await?)
    }

    /// Stores (or replaces) a document; unchanged text is not re-embedded
    /// (for a PDF, its extracted text: a new export of the same words is
    /// unchanged). Durable when it returns.
    pub async fn put_document(
        &self,
        collection: &str,
        id: &str,
        new: NewDocument,
    ) -> Result<Document, RagError> {
        if !valid_document_id(id) {
            return Err(RagError::Invalid(format!(
                "{id:?} is not a document id (A-Z, a-z, 0-9, ., _ and -, at most 200)"
            )));
        }
        let source = new.source.unwrap_or_else(|| id.to_owned());
        let max = self.config.max_document_bytes;
        let (text, format) = match new.bytes {
            Some(bytes) => {
                let format = new
                    .format
                    .or_else(|| Format::guess(&source))
                    .unwrap_or(Format::Text);
                let text = if format == Format::Pdf {
                    pdf_text(bytes, max).await?
                } else {
                    ingest::text_of(&bytes, max)?
                };
                (text, format)
            }
            None => {
                if new.format == Some(Format::Pdf) {
                    return Err(RagError::Invalid(
                        "a PDF is sent as the request body itself \
                         (Content-Type: application/pdf), not as JSON text"
                            .into(),
                    ));
                }
                // Text named `*.pdf` is text someone already took out of a PDF.
                let format = new
                    .format
                    .or_else(|| Format::guess(&source).filter(|&f| f != Format::Pdf))
                    .unwrap_or(Format::Text);
                (ingest::text_of(new.text.as_bytes(), max)?, format)
            }
        };
        let sha256: String = Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if let Some(existing) = self.store.document(collection, id).await?
            && existing.sha256 == sha256
            && existing.format == format
        {
            return Ok(existing);
        }
        let sections = ingest::sections(&text, format);
        let embedder = self.embedder.clone();
        let count = move |s: &str| embedder.count_tokens(s).unwrap_or(usize::MAX);
        let budget = self.config.chunk_tokens.min(self.embedder.max_tokens());
        let pieces = ingest::chunk(&sections, budget, self.config.overlap_tokens, &count);
        if pieces.is_empty() {
            return Err(RagError::Ingest(IngestError::Empty));
        }
        let title = new.title.unwrap_or_else(|| {
            sections
                .iter()
                .find(|s| !s.heading.is_empty())
                .map(|s| s.heading.split(" > ").next().unwrap_or_default().to_owned())
                .unwrap_or_else(|| source.clone())
        });
        let vectors = self
            .embed(pieces.iter().map(ingest::Piece::embedded_text).collect())
            .await?;
        let chunks: Vec<Chunk> = pieces
            .into_iter()
            .zip(vectors)
            .enumerate()
            .map(|(position, (p, vector))| Chunk {
                position,
                heading: p.heading,
                text: p.text,
                vector,
            })
            .collect();
        let doc = Document {
            id: id.to_owned(),
            collection: collection.to_owned(),
            source,
            title,
            format,
            bytes: text.len(),
            sha256,
            chunks: chunks.len(),
            updated: now_secs(),
        };
        self.store.put_document(doc.clone(), chunks).await?;
        metrics::counter!("rag_documents_stored_total").increment(1);
        Ok(doc)
    }

    /// The chunks nearest to the query in the collections the reader may see.
    pub async fn search(&self, q: Query) -> Result<Vec<Hit>, RagError> {
        if q.text.trim().is_empty() {
            return Err(RagError::Invalid("the query is empty".into()));
        }
        if q.limit == 0 || q.limit > self.config.max_limit {
            return Err(RagError::Invalid(format!(
                "limit is 1 to {}",
                self.config.max_limit
            )));
        }
        let all = self.store.collections().await?;
        let names: Vec<String> = match &q.collections {
            Some(wanted) => {
                for name in wanted {
                    let info = all
                        .iter()
                        .find(|c| &c.collection.name == name)
                        .ok_or_else(|| StoreError::UnknownCollection(name.clone()))?;
                    if !info.collection.access.visible_to(q.reader) {
                        return Err(RagError::NotAllowed(format!(
                            "the {name} collection is for the owner only"
                        )));
                    }
                }
                wanted.clone()
            }
            None => all
                .iter()
                .filter(|c| c.collection.access.visible_to(q.reader))
                .map(|c| c.collection.name.clone())
                .collect(),
        };
        let started = std::time::Instant::now();
        let vector = self.embed(vec![q.text]).await?.remove(0);
        let hits = self
            .store
            .search(&names, &vector, q.limit, q.threshold)
            .await?;
        metrics::histogram!("rag_search_seconds").record(started.elapsed().as_secs_f64());
        Ok(hits)
    }
}
