//! What several of rag-api's tests (and its benchmark) share: the engine on
//! the real model, the house guide put into it, clustered unit vectors.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;

use athena_rag_api::engine::{NewDocument, Rag};
use athena_rag_api::store::EmbeddedStore;
use athena_rag_api::{Config, embed};

/// The engine over all-MiniLM-L6-v2 from the catalog and an embedded
/// store in `dir`.
pub fn engine(dir: &Path) -> Rag {
    let store = athena_models::Store::from_env().unwrap();
    let model = store.ensure("all-minilm-l6-v2").unwrap();
    let embedder = embed::Embedder::load(&model, false, 32, embed::Precision::default()).unwrap();
    let index = EmbeddedStore::open(dir, embedder.dims()).unwrap();
    Rag::new(embedder, index, Config::default())
}

/// Puts every file of `tests/data/house` into `collection` (which must
/// exist), each under its name without the extension.
pub async fn put_house_guide(rag: &Rag, collection: &str) {
    let dir = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("tests/data/house");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for path in paths {
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let id = name.split('.').next().unwrap().to_owned();
        let doc = rag
            .put_document(
                collection,
                &id,
                NewDocument {
                    text: std::fs::read_to_string(&path).unwrap(),
                    source: Some(name),
                    ..NewDocument::default()
                },
            )
            .await
            .unwrap();
        assert!(doc.chunks >= 1);
    }
}

/// `n` unit vectors of `dims` around `clusters` random centres (`noise`
/// per coordinate), the shape chunk embeddings have; the same for the same
/// seed.
pub fn clustered(n: usize, dims: usize, clusters: usize, noise: f32, seed: u64) -> Vec<Vec<f32>> {
    let mut state = seed;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    };
    let centres: Vec<Vec<f32>> = (0..clusters.max(1))
        .map(|_| (0..dims).map(|_| next()).collect())
        .collect();
    (0..n)
        .map(|i| {
            let c = &centres[(i * 7919) % centres.len()];
            let v: Vec<f32> = c.iter().map(|x| x + noise * next()).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter().map(|x| x / norm).collect()
        })
        .collect()
}
