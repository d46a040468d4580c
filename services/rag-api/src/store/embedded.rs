//! The embedded store: every collection in memory, each change appended
//! to a write-ahead log and synced before it is acknowledged, the log
//! replayed at start (a torn last record, from a crash mid-write, is
//! dropped: it was never acknowledged) and compacted when mostly stale.
//!
//! Search is exact (every chunk's cosine); see `BENCHMARKS.md` for where
//! that stops being fast enough.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::wal::{self, Op, Wal};
use super::{Chunk, Collection, CollectionInfo, Document, Hit, StoreError, VectorStore};

#[derive(Debug, Default)]
struct CollectionState {
    collection: Option<Collection>,
    docs: BTreeMap<String, (Document, Vec<Chunk>)>,
}

#[derive(Debug)]
struct Inner {
    collections: BTreeMap<String, CollectionState>,
    wal: Wal,
}

impl Inner {
    fn apply(&mut self, op: Op) {
        match op {
            Op::CreateCollection { collection } => {
                let state = self.collections.entry(collection.name.clone()).or_default();
                state.collection = Some(collection);
            }
            Op::DeleteCollection { name } => {
                self.collections.remove(&name);
            }
            Op::PutDocument { document, chunks } => {
                if let Some(c) = self.collections.get_mut(&document.collection) {
                    c.docs.insert(document.id.clone(), (document, chunks));
                }
            }
            Op::DeleteDocument { collection, id } => {
                if let Some(c) = self.collections.get_mut(&collection) {
                    c.docs.remove(&id);
                }
            }
        }
    }

    /// The state as a fresh log would write it.
    fn as_ops(&self) -> Vec<Op> {
        let mut ops = Vec::new();
        for c in self.collections.values() {
            if let Some(collection) = &c.collection {
                ops.push(Op::CreateCollection {
                    collection: collection.clone(),
                });
                for (doc, chunks) in c.docs.values() {
                    ops.push(Op::PutDocument {
                        document: doc.clone(),
                        chunks: chunks.clone(),
                    });
                }
            }
        }
        ops
    }

    fn live_bytes(&self, dims: usize) -> u64 {
        let chunks: usize = self
            .collections
            .values()
            .flat_map(|c| c.docs.values())
            .map(|(_, chunks)| {
                chunks
                    .iter()
                    .map(|c| c.text.len() + dims * 4 + 64)
                    .sum::<usize>()
            })
            .sum();
        chunks as u64
    }

    fn known(&self, name: &str) -> Result<&CollectionState, StoreError> {
        self.collections
            .get(name)
            .filter(|c| c.collection.is_some())
            .ok_or_else(|| StoreError::UnknownCollection(name.to_owned()))
    }
}

/// Compaction starts when the log is this much larger than the live data
/// (and at least [`COMPACT_MIN`]).
const COMPACT_RATIO: u64 = 3;
const COMPACT_MIN: u64 = 32 << 20;

/// The embedded store in a directory.
#[derive(Debug, Clone)]
pub struct EmbeddedStore {
    inner: Arc<Mutex<Inner>>,
    dims: usize,
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `dir` for vectors of `dims`.
    pub fn open(dir: &Path, dims: usize) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| io(format!("{}: {e}", dir.display())))?;
        let path = dir.join(format!("index-{dims}.wal"));
        let (ops, good) = wal::read(&path, dims).map_err(io)?;
        let wal = Wal::open(&path, dims, good).map_err(io)?;
        let mut inner = Inner {
            collections: BTreeMap::new(),
            wal,
        };
        let replayed = ops.len();
        for op in ops {
            inner.apply(op);
        }
        tracing::info!(
            dir = %dir.display(),
            records = replayed,
            collections = inner.collections.len(),
            "embedded index opened"
        );
        Ok(Self {
            inner: Arc::new(Mutex::new(inner)),
            dims,
        })
    }

    /// Runs `f` on the state off the async threads (it may sync to disk).
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Inner, usize) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        let dims = self.dims;
        tokio::task::spawn_blocking(move || {
            let mut guard = inner.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard, dims)
        })
        .await
        .map_err(io)?
    }

    fn write(inner: &mut Inner, dims: usize, op: Op) -> Result<(), StoreError> {
        inner.wal.append(&op).map_err(io)?;
        inner.apply(op);
        // Counting the live data walks every chunk: only when the log is big.
        if inner.wal.len() > COMPACT_MIN && inner.wal.len() > inner.live_bytes(dims) * COMPACT_RATIO
        {
            let ops = inner.as_ops();
            match inner.wal.rewrite(&ops) {
                Ok(()) => tracing::info!(bytes = inner.wal.len(), "index log compacted"),
                Err(e) => tracing::warn!(error = %e, "index log compaction failed; carrying on"),
            }
        }
        Ok(())
    }
}

impl VectorStore for EmbeddedStore {
    async fn create_collection(&self, c: Collection) -> Result<(), StoreError> {
        self.with(move |inner, dims| {
            if inner.known(&c.name).is_ok() {
                return Err(StoreError::CollectionExists(c.name));
            }
            Self::write(inner, dims, Op::CreateCollection { collection: c })
        })
        .await
    }

    async fn delete_collection(&self, name: &str) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.with(move |inner, dims| {
            inner.known(&name)?;
            Self::write(inner, dims, Op::DeleteCollection { name })
        })
        .await
    }

    async fn collections(&self) -> Result<Vec<CollectionInfo>, StoreError> {
        self.with(|inner, _| {
            Ok(inner
                .collections
                .values()
                .filter_map(|c| {
                    Some(CollectionInfo {
                        collection: c.collection.clone()?,
                        documents: c.docs.len(),
                        chunks: c.docs.values().map(|(_, ch)| ch.len()).sum(),
                    })
                })
                .collect())
        })
        .await
    }

    async fn put_document(&self, doc: Document, chunks: Vec<Chunk>) -> Result<(), StoreError> {
        if chunks.iter().any(|c| c.vector.len() != self.dims) {
            return Err(io("a chunk's vector has the wrong length"));
        }
        self.with(move |inner, dims| {
            inner.known(&doc.collection)?;
            Self::write(
                inner,
                dims,
                Op::PutDocument {
                    document: doc,
                    chunks,
                },
            )
        })
        .await
    }

    async fn delete_document(&self, collection: &str, id: &str) -> Result<(), StoreError> {
        let (collection, id) = (collection.to_owned(), id.to_owned());
        self.with(move |inner, dims| {
            if !inner.known(&collection)?.docs.contains_key(&id) {
                return Err(StoreError::UnknownDocument {
                    collection,
                    document: id,
                });
            }
            Self::write(inner, dims, Op::DeleteDocument { collection, id })
        })
        .await
    }

    async fn document(&self, collection: &str, id: &str) -> Result<Option<Document>, StoreError> {
        let (collection, id) = (collection.to_owned(), id.to_owned());
        self.with(move |inner, _| {
            Ok(inner
                .known(&collection)?
                .docs
                .get(&id)
                .map(|(d, _)| d.clone()))
        })
        .await
    }

    async fn documents(&self, collection: &str) -> Result<Vec<Document>, StoreError> {
        let collection = collection.to_owned();
        self.with(move |inner, _| {
            Ok(inner
                .known(&collection)?
                .docs
                .values()
                .map(|(d, _)| d.clone())
                .collect())
        })
        .await
    }

    async fn search(
        &self,
        collections: &[String],
        vector: &[f32],
        limit: usize,
        threshold: f32,
    ) -> Result<Vec<Hit>, StoreError> {
        let collections = collections.to_vec();
        let query = vector.to_vec();
        self.with(move |inner, _| {
            for name in &collections {
                inner.known(name)?;
            }
            let mut scored: Vec<(f32, &Document, &Chunk)> = Vec::new();
            for name in &collections {
                for (doc, chunks) in inner.known(name)?.docs.values() {
                    for chunk in chunks {
                        let score = dot(&query, &chunk.vector);
                        if score >= threshold {
                            scored.push((score, doc, chunk));
                        }
                    }
                }
            }
            scored.sort_by(|a, b| b.0.total_cmp(&a.0));
            scored.truncate(limit);
            Ok(scored
                .into_iter()
                .map(|(score, doc, chunk)| Hit {
                    score,
                    collection: doc.collection.clone(),
                    document: doc.id.clone(),
                    source: doc.source.clone(),
                    title: doc.title.clone(),
                    position: chunk.position,
                    heading: chunk.heading.clone(),
                    text: chunk.text.clone(),
                })
                .collect())
        })
        .await
    }
}

/// Dot product in 8 lanes (the compiler vectorizes this form).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}
