//! The embedded store: every collection in memory, each change appended
//! to a write-ahead log and synced before it is acknowledged, the log
//! replayed at start (a torn last record, from a crash mid-write, is
//! dropped: it was never acknowledged) and compacted when mostly stale.
//!
//! Vectors live per collection in [`Vectors`] (an arena and an HNSW graph);
//! a background thread, the indexer, extends the graphs a few nodes at a
//! time, so neither a write nor the start waits for the graph, and searches
//! stay exact over whatever the graph does not cover yet.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::vectors::{IndexParams, Owner, Vectors};
use super::wal::{self, Op, Wal};
use super::{Chunk, Collection, CollectionInfo, Document, Hit, StoreError, VectorStore};

/// A document as held: its record, its chunks (their vectors are in the
/// collection's arena) and the slots of those vectors.
#[derive(Debug)]
struct Stored {
    document: Document,
    chunks: Vec<Chunk>,
    slots: Vec<u32>,
}

#[derive(Debug)]
struct CollectionState {
    collection: Option<Collection>,
    docs: BTreeMap<String, Stored>,
    vectors: Vectors,
}

impl CollectionState {
    fn remove(&mut self, id: &str) {
        if let Some(old) = self.docs.remove(id) {
            for slot in old.slots {
                self.vectors.remove(slot);
            }
        }
    }

    /// Rebuilds the arena from the live slots when the dead outweigh them.
    fn compact_if_wasteful(&mut self) {
        if !self.vectors.wasteful() {
            return;
        }
        let (fresh, moved) = self.vectors.compacted();
        for stored in self.docs.values_mut() {
            for slot in &mut stored.slots {
                *slot = moved[*slot as usize].unwrap_or(*slot);
            }
        }
        self.vectors = fresh;
    }
}

#[derive(Debug)]
struct Inner {
    collections: BTreeMap<String, CollectionState>,
    wal: Wal,
    dims: usize,
    params: IndexParams,
}

impl Inner {
    fn apply(&mut self, op: Op) {
        match op {
            Op::CreateCollection { collection } => {
                let (dims, params) = (self.dims, self.params);
                let state = self
                    .collections
                    .entry(collection.name.clone())
                    .or_insert_with(|| CollectionState {
                        collection: None,
                        docs: BTreeMap::new(),
                        vectors: Vectors::new(dims, params),
                    });
                state.collection = Some(collection);
            }
            Op::DeleteCollection { name } => {
                self.collections.remove(&name);
            }
            Op::PutDocument {
                document,
                mut chunks,
            } => {
                if let Some(c) = self.collections.get_mut(&document.collection) {
                    c.remove(&document.id);
                    let id: Arc<str> = Arc::from(document.id.as_str());
                    let slots = chunks
                        .iter_mut()
                        .enumerate()
                        .map(|(position, chunk)| {
                            let vector = std::mem::take(&mut chunk.vector);
                            let owner = Owner {
                                document: id.clone(),
                                position,
                            };
                            c.vectors.push(owner, &vector)
                        })
                        .collect();
                    c.docs.insert(
                        document.id.clone(),
                        Stored {
                            document,
                            chunks,
                            slots,
                        },
                    );
                    c.compact_if_wasteful();
                }
            }
            Op::DeleteDocument { collection, id } => {
                if let Some(c) = self.collections.get_mut(&collection) {
                    c.remove(&id);
                    c.compact_if_wasteful();
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
                for stored in c.docs.values() {
                    let chunks = stored
                        .chunks
                        .iter()
                        .zip(&stored.slots)
                        .map(|(chunk, &slot)| Chunk {
                            vector: c.vectors.vector(slot).to_vec(),
                            ..chunk.clone()
                        })
                        .collect();
                    ops.push(Op::PutDocument {
                        document: stored.document.clone(),
                        chunks,
                    });
                }
            }
        }
        ops
    }

    fn live_bytes(&self) -> u64 {
        let bytes: usize = self
            .collections
            .values()
            .map(|c| {
                let text: usize = c
                    .docs
                    .values()
                    .flat_map(|s| &s.chunks)
                    .map(|chunk| chunk.text.len() + chunk.heading.len() + 64)
                    .sum();
                text + c.vectors.live() * self.dims * 4
            })
            .sum();
        bytes as u64
    }

    fn known(&self, name: &str) -> Result<&CollectionState, StoreError> {
        self.collections
            .get(name)
            .filter(|c| c.collection.is_some())
            .ok_or_else(|| StoreError::UnknownCollection(name.to_owned()))
    }

    /// Extends the first graph that is behind by up to `n` nodes; how many.
    fn index_some(&mut self, n: usize) -> usize {
        self.collections
            .values_mut()
            .find(|c| c.vectors.pending())
            .map_or(0, |c| c.vectors.index_some(n))
    }
}

/// Nodes the indexer adds while holding the lock (a few milliseconds at
/// 100k vectors), so searches wait little behind it.
const INDEX_BATCH: usize = 16;

/// The indexer: extends graphs while there is work, giving way to every
/// call waiting for the lock (the mutex is not fair: without that, a busy
/// indexer would hold writes up behind it), sleeps until a write wakes it,
/// and ends with the store.
fn indexer(inner: Weak<Mutex<Inner>>, waiting: Arc<AtomicUsize>, wake: Receiver<()>) {
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let added = strong
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .index_some(INDEX_BATCH);
        drop(strong);
        while waiting.load(Ordering::Acquire) > 0 {
            std::thread::sleep(Duration::from_micros(100));
        }
        if added == 0 {
            match wake.recv_timeout(Duration::from_secs(10)) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
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
    /// Wakes the indexer after a write; it ends when every clone is gone.
    wake: SyncSender<()>,
    /// Calls waiting for the lock, which the indexer gives way to.
    waiting: Arc<AtomicUsize>,
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `dir` for vectors of `dims`.
    pub fn open(dir: &Path, dims: usize) -> Result<Self, StoreError> {
        Self::open_with(dir, dims, IndexParams::default())
    }

    /// The same, with the index's parameters given.
    pub fn open_with(dir: &Path, dims: usize, params: IndexParams) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| io(format!("{}: {e}", dir.display())))?;
        let path = dir.join(format!("index-{dims}.wal"));
        let (ops, good) = wal::read(&path, dims).map_err(io)?;
        let wal = Wal::open(&path, dims, good).map_err(io)?;
        let mut inner = Inner {
            collections: BTreeMap::new(),
            wal,
            dims,
            params,
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
        let inner = Arc::new(Mutex::new(inner));
        let (wake, woken) = mpsc::sync_channel(1);
        let weak = Arc::downgrade(&inner);
        let waiting = Arc::new(AtomicUsize::new(0));
        let give_way = waiting.clone();
        std::thread::Builder::new()
            .name("rag-indexer".into())
            .spawn(move || indexer(weak, give_way, woken))
            .map_err(io)?;
        Ok(Self {
            inner,
            dims,
            wake,
            waiting,
        })
    }

    /// Whether every graph has caught up with its collection.
    pub fn indexed(&self) -> bool {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.collections.values().all(|c| !c.vectors.pending())
    }

    /// Runs `f` on the state off the async threads (it may sync to disk).
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        let waiting = self.waiting.clone();
        tokio::task::spawn_blocking(move || {
            waiting.fetch_add(1, Ordering::AcqRel);
            let mut guard = inner.lock().unwrap_or_else(|p| p.into_inner());
            waiting.fetch_sub(1, Ordering::AcqRel);
            f(&mut guard)
        })
        .await
        .map_err(io)?
    }

    /// Logs `op`, applies it and wakes the indexer.
    async fn write(
        &self,
        check: impl FnOnce(&Inner) -> Result<(), StoreError> + Send + 'static,
        op: Op,
    ) -> Result<(), StoreError> {
        self.with(move |inner| {
            check(inner)?;
            inner.wal.append(&op).map_err(io)?;
            inner.apply(op);
            // Counting the live data walks every chunk: only when the log is big.
            if inner.wal.len() > COMPACT_MIN && inner.wal.len() > inner.live_bytes() * COMPACT_RATIO
            {
                let ops = inner.as_ops();
                match inner.wal.rewrite(&ops) {
                    Ok(()) => tracing::info!(bytes = inner.wal.len(), "index log compacted"),
                    Err(e) => {
                        tracing::warn!(error = %e, "index log compaction failed; carrying on");
                    }
                }
            }
            Ok(())
        })
        .await?;
        // Full means the indexer is awake already.
        let _ = self.wake.try_send(());
        Ok(())
    }
}

impl VectorStore for EmbeddedStore {
    async fn create_collection(&self, c: Collection) -> Result<(), StoreError> {
        let name = c.name.clone();
        self.write(
            move |inner| match inner.known(&name) {
                Ok(_) => Err(StoreError::CollectionExists(name)),
                Err(_) => Ok(()),
            },
            Op::CreateCollection { collection: c },
        )
        .await
    }

    async fn delete_collection(&self, name: &str) -> Result<(), StoreError> {
        let known = name.to_owned();
        self.write(
            move |inner| inner.known(&known).map(|_| ()),
            Op::DeleteCollection {
                name: name.to_owned(),
            },
        )
        .await
    }

    async fn collections(&self) -> Result<Vec<CollectionInfo>, StoreError> {
        self.with(|inner| {
            Ok(inner
                .collections
                .values()
                .filter_map(|c| {
                    Some(CollectionInfo {
                        collection: c.collection.clone()?,
                        documents: c.docs.len(),
                        chunks: c.vectors.live(),
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
        let collection = doc.collection.clone();
        self.write(
            move |inner| inner.known(&collection).map(|_| ()),
            Op::PutDocument {
                document: doc,
                chunks,
            },
        )
        .await
    }

    async fn delete_document(&self, collection: &str, id: &str) -> Result<(), StoreError> {
        let (c, d) = (collection.to_owned(), id.to_owned());
        self.write(
            move |inner| {
                if inner.known(&c)?.docs.contains_key(&d) {
                    Ok(())
                } else {
                    Err(StoreError::UnknownDocument {
                        collection: c,
                        document: d,
                    })
                }
            },
            Op::DeleteDocument {
                collection: collection.to_owned(),
                id: id.to_owned(),
            },
        )
        .await
    }

    async fn document(&self, collection: &str, id: &str) -> Result<Option<Document>, StoreError> {
        let (collection, id) = (collection.to_owned(), id.to_owned());
        self.with(move |inner| {
            Ok(inner
                .known(&collection)?
                .docs
                .get(&id)
                .map(|s| s.document.clone()))
        })
        .await
    }

    async fn documents(&self, collection: &str) -> Result<Vec<Document>, StoreError> {
        let collection = collection.to_owned();
        self.with(move |inner| {
            Ok(inner
                .known(&collection)?
                .docs
                .values()
                .map(|s| s.document.clone())
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
        self.with(move |inner| {
            let mut scored: Vec<(f32, &Stored, usize)> = Vec::new();
            for name in &collections {
                let c = inner.known(name)?;
                for (score, slot) in c.vectors.search(&query, limit, threshold) {
                    let Some(owner) = c.vectors.owner(slot) else {
                        continue;
                    };
                    if let Some(stored) = c.docs.get(owner.document.as_ref()) {
                        scored.push((score, stored, owner.position));
                    }
                }
            }
            scored.sort_by(|a, b| b.0.total_cmp(&a.0));
            scored.truncate(limit);
            Ok(scored
                .into_iter()
                .map(|(score, stored, position)| {
                    let (doc, chunk) = (&stored.document, &stored.chunks[position]);
                    Hit {
                        score,
                        collection: doc.collection.clone(),
                        document: doc.id.clone(),
                        source: doc.source.clone(),
                        title: doc.title.clone(),
                        position: chunk.position,
                        heading: chunk.heading.clone(),
                        text: chunk.text.clone(),
                    }
                })
                .collect())
        })
        .await
    }
}
