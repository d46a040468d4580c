//! The embedded store past the size where search stops being exact: the
//! graph is built in the background, a chunk is found the moment it is
//! stored, replaced and deleted chunks are never found, the graph's answers
//! match an exact scan, and all of it holds again after a restart.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use athena_rag_api::ingest::Format;
use athena_rag_api::store::hnsw::dot;
use athena_rag_api::store::{
    Access, Chunk, Collection, Document, EmbeddedStore, IndexParams, VectorStore,
};

const DIMS: usize = 32;
const PER_DOC: usize = 50;

/// Clustered unit vectors (one centre per 25 points).
fn clustered(n: usize, seed: u64) -> Vec<Vec<f32>> {
    common::clustered(n, DIMS, n / 25, 0.3, seed)
}

fn open(dir: &Path) -> EmbeddedStore {
    let params = IndexParams {
        exact_max: 300,
        ..IndexParams::default()
    };
    EmbeddedStore::open_with(dir, DIMS, params).unwrap()
}

fn doc(d: usize, n: usize) -> Document {
    Document {
        id: format!("doc-{d}"),
        collection: "big".into(),
        source: format!("doc-{d}.txt"),
        title: String::new(),
        format: Format::Text,
        bytes: 0,
        sha256: String::new(),
        chunks: n,
        updated: 0,
    }
}

fn chunks(vectors: &[Vec<f32>]) -> Vec<Chunk> {
    vectors
        .iter()
        .enumerate()
        .map(|(position, v)| Chunk {
            position,
            heading: String::new(),
            text: format!("chunk {position}"),
            vector: v.clone(),
        })
        .collect()
}

async fn fill(store: &EmbeddedStore, vectors: &[Vec<f32>]) {
    store
        .create_collection(Collection {
            name: "big".into(),
            access: Access::Guest,
            description: String::new(),
        })
        .await
        .unwrap();
    for (d, group) in vectors.chunks(PER_DOC).enumerate() {
        store
            .put_document(doc(d, group.len()), chunks(group))
            .await
            .unwrap();
    }
}

async fn wait_indexed(store: &EmbeddedStore) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !store.indexed() {
        assert!(Instant::now() < deadline, "the indexer never caught up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `doc-D/position` of each of the `k` best hits.
async fn top(store: &EmbeddedStore, q: &[f32], k: usize) -> Vec<String> {
    store
        .search(&["big".to_owned()], q, k, -1.0)
        .await
        .unwrap()
        .iter()
        .map(|h| format!("{}/{}", h.document, h.position))
        .collect()
}

fn exact(vectors: &[Option<Vec<f32>>], q: &[f32], k: usize) -> Vec<String> {
    let mut all: Vec<(f32, usize)> = vectors
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.as_ref().map(|v| (dot(q, v), i)))
        .collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    all.iter()
        .take(k)
        .map(|&(_, i)| format!("doc-{}/{}", i / PER_DOC, i % PER_DOC))
        .collect()
}

async fn recall(store: &EmbeddedStore, vectors: &[Option<Vec<f32>>], queries: &[Vec<f32>]) -> f64 {
    let mut found = 0;
    for q in queries {
        let truth = exact(vectors, q, 10);
        let got = top(store, q, 10).await;
        found += truth.iter().filter(|t| got.contains(t)).count();
    }
    found as f64 / (queries.len() * 10) as f64
}

#[tokio::test]
async fn a_large_collection_is_searched_through_the_graph() {
    let dir = tempfile::tempdir().unwrap();
    // Queries from the same clusters as the data, not among it.
    let mut data = clustered(6100, 1);
    let queries = data.split_off(6000);
    let store = open(dir.path());
    fill(&store, &data).await;

    // Found at once, whatever the indexer has done so far.
    assert_eq!(top(&store, &data[5999], 1).await, ["doc-119/49"]);
    wait_indexed(&store).await;
    let mut live: Vec<Option<Vec<f32>>> = data.iter().cloned().map(Some).collect();
    let r = recall(&store, &live, &queries).await;
    assert!(r >= 0.95, "recall@10 {r}");

    // A replaced document's old vectors are gone, its new ones are found.
    let replacement = clustered(PER_DOC, 3);
    store
        .put_document(doc(7, PER_DOC), chunks(&replacement))
        .await
        .unwrap();
    let old = top(&store, &data[7 * PER_DOC + 3], 3).await;
    assert!(!old.contains(&"doc-7/3".to_owned()), "{old:?}");
    assert_eq!(top(&store, &replacement[3], 1).await, ["doc-7/3"]);
    // A deleted one is never found.
    store.delete_document("big", "doc-8").await.unwrap();
    for i in 0..PER_DOC {
        live[8 * PER_DOC + i] = None;
        let hits = top(&store, &data[8 * PER_DOC + i], 10).await;
        assert!(hits.iter().all(|h| !h.starts_with("doc-8/")), "{hits:?}");
    }
    for (i, v) in replacement.iter().enumerate() {
        live[7 * PER_DOC + i] = Some(v.clone());
    }
    wait_indexed(&store).await;
    let before = recall(&store, &live, &queries).await;
    assert!(before >= 0.95, "recall@10 after changes {before}");
    drop(store);

    // After a restart: found at once, then the same quality once indexed.
    let store = open(dir.path());
    assert_eq!(top(&store, &replacement[10], 1).await, ["doc-7/10"]);
    assert_eq!(top(&store, &data[100], 1).await, ["doc-2/0"]);
    wait_indexed(&store).await;
    let after = recall(&store, &live, &queries).await;
    assert!(after >= 0.95, "recall@10 after a restart {after}");
    let infos = store.collections().await.unwrap();
    assert_eq!(infos[0].documents, 119);
    assert_eq!(infos[0].chunks, 5950);
}

#[tokio::test]
async fn deleting_most_of_a_collection_compacts_it_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = clustered(3050, 4);
    let queries = data.split_off(3000);
    let store = open(dir.path());
    fill(&store, &data).await;
    wait_indexed(&store).await;
    // Delete 50 of the 60 documents: the arena is rebuilt from the rest.
    for d in 0..50 {
        store
            .delete_document("big", &format!("doc-{d}"))
            .await
            .unwrap();
    }
    let live: Vec<Option<Vec<f32>>> = data
        .iter()
        .enumerate()
        .map(|(i, v)| (i >= 50 * PER_DOC).then(|| v.clone()))
        .collect();
    for probe in [2500, 2750, 2999] {
        let want = format!("doc-{}/{}", probe / PER_DOC, probe % PER_DOC);
        assert_eq!(top(&store, &data[probe], 1).await, [want]);
    }
    assert!(top(&store, &data[0], 10).await.iter().all(|h| {
        let d: usize = h[4..h.find('/').unwrap()].parse().unwrap();
        d >= 50
    }));
    wait_indexed(&store).await;
    let r = recall(&store, &live, &queries).await;
    assert!(r >= 0.95, "recall@10 {r}");
}
