//! Where chunks and their vectors live, behind one interface
//! ([`VectorStore`]): the embedded store (in memory, made durable by a
//! write-ahead log) by default, or a Qdrant server ([`QdrantStore`]).
//! [`Backend`] is whichever of them the config chose.

pub mod embedded;
pub mod hnsw;
pub mod qdrant;
pub mod vectors;
mod wal;

use serde::{Deserialize, Serialize};

pub use embedded::EmbeddedStore;
pub use qdrant::QdrantStore;
pub use vectors::IndexParams;

/// Who may search a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// The owner only.
    Owner,
    /// Guests too (and the owner).
    Guest,
}

impl Access {
    /// Whether a reader with `reader` access may see a collection labeled `self`.
    pub fn visible_to(self, reader: Access) -> bool {
        reader == Access::Owner || self == Access::Guest
    }
}

/// A named set of documents with an access label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collection {
    pub name: String,
    pub access: Access,
    #[serde(default)]
    pub description: String,
}

/// A document as stored: where it came from and how it was cut.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    pub id: String,
    pub collection: String,
    /// A file path, URL or name given by the caller.
    pub source: String,
    pub title: String,
    pub format: crate::ingest::Format,
    pub bytes: usize,
    /// SHA-256 of the text, so an unchanged document is not re-embedded.
    pub sha256: String,
    pub chunks: usize,
    /// Seconds since the epoch.
    pub updated: u64,
}

/// One chunk with its vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    /// Its place in the document, from 0.
    pub position: usize,
    pub heading: String,
    pub text: String,
    #[serde(skip)]
    pub vector: Vec<f32>,
}

/// A search result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    pub score: f32,
    pub collection: String,
    pub document: String,
    pub source: String,
    pub title: String,
    pub position: usize,
    pub heading: String,
    pub text: String,
}

/// A collection with its counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CollectionInfo {
    #[serde(flatten)]
    pub collection: Collection,
    pub documents: usize,
    pub chunks: usize,
}

/// What the store can say went wrong.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no collection named {0:?}")]
    UnknownCollection(String),
    #[error("a collection named {0:?} exists already")]
    CollectionExists(String),
    #[error("no document {document:?} in {collection:?}")]
    UnknownDocument {
        collection: String,
        document: String,
    },
    #[error("vector store: {0}")]
    Io(String),
}

/// The operations every backend offers.
#[allow(async_fn_in_trait)]
pub trait VectorStore: Send + Sync {
    /// Creates a collection.
    async fn create_collection(&self, c: Collection) -> Result<(), StoreError>;
    /// Deletes a collection and everything in it.
    async fn delete_collection(&self, name: &str) -> Result<(), StoreError>;
    /// Every collection, with counts.
    async fn collections(&self) -> Result<Vec<CollectionInfo>, StoreError>;
    /// Stores `doc` with its chunks, replacing any earlier version; durable
    /// when it returns.
    async fn put_document(&self, doc: Document, chunks: Vec<Chunk>) -> Result<(), StoreError>;
    /// Removes a document.
    async fn delete_document(&self, collection: &str, id: &str) -> Result<(), StoreError>;
    /// A document's record, if present.
    async fn document(&self, collection: &str, id: &str) -> Result<Option<Document>, StoreError>;
    /// The documents of a collection.
    async fn documents(&self, collection: &str) -> Result<Vec<Document>, StoreError>;
    /// The `limit` chunks nearest to `vector` in `collections` scoring at
    /// least `threshold` (cosine), best first.
    async fn search(
        &self,
        collections: &[String],
        vector: &[f32],
        limit: usize,
        threshold: f32,
    ) -> Result<Vec<Hit>, StoreError>;
}

/// The store the engine uses: one of the backends. (An enum rather than a
/// trait object: [`VectorStore`] has `async fn`s, which `dyn` cannot hold.)
#[derive(Debug)]
pub enum Backend {
    Embedded(EmbeddedStore),
    Qdrant(QdrantStore),
}

impl From<EmbeddedStore> for Backend {
    fn from(store: EmbeddedStore) -> Self {
        Self::Embedded(store)
    }
}

impl From<QdrantStore> for Backend {
    fn from(store: QdrantStore) -> Self {
        Self::Qdrant(store)
    }
}

/// Runs the same call on whichever backend this is.
macro_rules! delegate {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            Backend::Embedded($store) => $call.await,
            Backend::Qdrant($store) => $call.await,
        }
    };
}

impl VectorStore for Backend {
    async fn create_collection(&self, c: Collection) -> Result<(), StoreError> {
        delegate!(self, s => s.create_collection(c))
    }

    async fn delete_collection(&self, name: &str) -> Result<(), StoreError> {
        delegate!(self, s => s.delete_collection(name))
    }

    async fn collections(&self) -> Result<Vec<CollectionInfo>, StoreError> {
        delegate!(self, s => s.collections())
    }

    async fn put_document(&self, doc: Document, chunks: Vec<Chunk>) -> Result<(), StoreError> {
        delegate!(self, s => s.put_document(doc, chunks))
    }

    async fn delete_document(&self, collection: &str, id: &str) -> Result<(), StoreError> {
        delegate!(self, s => s.delete_document(collection, id))
    }

    async fn document(&self, collection: &str, id: &str) -> Result<Option<Document>, StoreError> {
        delegate!(self, s => s.document(collection, id))
    }

    async fn documents(&self, collection: &str) -> Result<Vec<Document>, StoreError> {
        delegate!(self, s => s.documents(collection))
    }

    async fn search(
        &self,
        collections: &[String],
        vector: &[f32],
        limit: usize,
        threshold: f32,
    ) -> Result<Vec<Hit>, StoreError> {
        delegate!(self, s => s.search(collections, vector, limit, threshold))
    }
}
