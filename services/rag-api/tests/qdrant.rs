//! The Qdrant backend. Against a server only when `ATHENA_TEST_QDRANT_URL`
//! names one (its gRPC endpoint, `http://127.0.0.1:6334`): the same house
//! guide answers the same questions as in the embedded store, replacing and
//! deleting documents, unknown names. Each run uses Qdrant collections of
//! its own (a random prefix) and deletes them. Always: a Qdrant that is
//! down or silent is an error within the deadline, and the config section.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use std::future::Future;

use athena_rag_api::config::{BackendKind, QdrantConfig};
use athena_rag_api::engine::{Query, Rag};
use athena_rag_api::ingest::Format;
use athena_rag_api::store::{
    Access, Chunk, Collection, Document, EmbeddedStore, QdrantStore, StoreError, VectorStore,
};
use athena_rag_api::{Config, embed};
use athena_runtime::config::{Secret, Validate};

const URL_VAR: &str = "ATHENA_TEST_QDRANT_URL";

/// The server to test against, or why not (said once per test).
fn server(test: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ => {
            eprintln!(
                "{test}: skipped: {URL_VAR} is not set (no Qdrant server can be installed on \
                 these machines; point it at one to run this test)"
            );
            None
        }
    }
}

/// Settings for `url` with a prefix no other run uses.
fn settings(url: &str) -> QdrantConfig {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    QdrantConfig {
        url: url.to_owned(),
        collection_prefix: format!("athena_test_{}_{nanos:x}_", std::process::id()),
        timeout_secs: 30,
        ..QdrantConfig::default()
    }
}

/// Runs `body`, then deletes the Qdrant collections under `config`'s prefix
/// whether it passed or not.
async fn with_cleanup<F>(config: QdrantConfig, body: impl FnOnce(QdrantConfig) -> F)
where
    F: Future<Output = ()> + Send + 'static,
{
    let outcome = tokio::spawn(body(config.clone())).await;
    let client = qdrant_client::Qdrant::from_url(&config.url)
        .skip_compatibility_check()
        .build()
        .unwrap();
    for suffix in ["chunks", "meta"] {
        let name = format!("{}{suffix}", config.collection_prefix);
        if client.collection_exists(&name).await.unwrap_or(false)
            && let Err(e) = client.delete_collection(&name).await
        {
            eprintln!("could not delete test collection {name}: {e}");
        }
    }
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

fn guide() -> Collection {
    Collection {
        name: "house_guide".into(),
        access: Access::Guest,
        description: "for guests".into(),
    }
}

fn embedder() -> embed::Embedder {
    let store = athena_models::Store::from_env().unwrap();
    let model = store.ensure("all-minilm-l6-v2").unwrap();
    embed::Embedder::load(&model, false, 32, embed::Precision::default()).unwrap()
}

async fn house_guide(rag: &Rag) {
    rag.create_collection(guide()).await.unwrap();
    common::put_house_guide(rag, "house_guide").await;
}

#[tokio::test]
async fn qdrant_answers_as_the_embedded_store_does() {
    let Some(url) = server("qdrant_answers_as_the_embedded_store_does") else {
        return;
    };
    with_cleanup(settings(&url), |config| async move {
        let dir = tempfile::tempdir().unwrap();
        let local = embedder();
        let dims = local.dims();
        let embedded = Rag::new(
            local,
            EmbeddedStore::open(dir.path(), dims).unwrap(),
            Config::default(),
        );
        let qdrant = Rag::new(
            embedder(),
            QdrantStore::open(&config, dims).await.unwrap(),
            Config::default(),
        );
        house_guide(&embedded).await;
        house_guide(&qdrant).await;

        let questions: Vec<serde_json::Value> =
            serde_json::from_str(include_str!("data/questions.json")).unwrap();
        for q in &questions {
            let query = Query {
                text: q["q"].as_str().unwrap().into(),
                collections: None,
                reader: Access::Guest,
                limit: 3,
                threshold: -1.0,
            };
            let want = embedded.search(query.clone()).await.unwrap();
            let got = qdrant.search(query).await.unwrap();
            assert_eq!(got.len(), want.len(), "{:?}", q["q"]);
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g.score - w.score).abs() < 1e-3,
                    "{:?}: {} vs {}",
                    q["q"],
                    g.score,
                    w.score
                );
            }
            // The same documents; two within 1e-3 of each other may swap.
            let docs = |hits: &[athena_rag_api::store::Hit]| {
                let mut d: Vec<String> = hits.iter().map(|h| h.document.clone()).collect();
                d.sort();
                d
            };
            assert_eq!(docs(&got), docs(&want), "{:?}", q["q"]);
        }
        let (e, q) = (
            embedded.collections().await.unwrap(),
            qdrant.collections().await.unwrap(),
        );
        assert_eq!(e, q);
        // The same records (each store stamped its own time).
        let records = |docs: Vec<Document>| {
            docs.into_iter()
                .map(|d| Document { updated: 0, ..d })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            records(embedded.documents("house_guide").await.unwrap()),
            records(qdrant.documents("house_guide").await.unwrap())
        );
    })
    .await;
}

/// A unit vector along axis `i` (of 8).
fn axis(i: usize) -> Vec<f32> {
    let mut v = vec![0.0; 8];
    v[i] = 1.0;
    v
}

fn document(id: &str, chunks: usize) -> Document {
    Document {
        id: id.into(),
        collection: "house_guide".into(),
        source: format!("{id}.md"),
        title: id.into(),
        format: Format::Markdown,
        bytes: 1,
        sha256: format!("{chunks}"),
        chunks,
        updated: 1,
    }
}

fn chunks(n: usize) -> Vec<Chunk> {
    (0..n)
        .map(|position| Chunk {
            position,
            heading: format!("part {position}"),
            text: format!("text {position}"),
            vector: axis(position),
        })
        .collect()
}

#[tokio::test]
async fn qdrant_replaces_deletes_and_refuses_unknown_names() {
    let Some(url) = server("qdrant_replaces_deletes_and_refuses_unknown_names") else {
        return;
    };
    with_cleanup(settings(&url), |config| async move {
        let store = QdrantStore::open(&config, 8).await.unwrap();
        // Opening again finds everything in place.
        let store_again = QdrantStore::open(&config, 8).await.unwrap();
        // A model of other dimensions is refused with the reason.
        let e = QdrantStore::open(&config, 16).await.unwrap_err();
        assert!(
            matches!(&e, StoreError::Io(m) if m.contains("dimensions")),
            "{e:?}"
        );

        store.create_collection(guide()).await.unwrap();
        assert!(matches!(
            store.create_collection(guide()).await,
            Err(StoreError::CollectionExists(_))
        ));
        let names = vec!["house_guide".to_owned()];
        store
            .put_document(document("wifi", 3), chunks(3))
            .await
            .unwrap();
        let hits = store.search(&names, &axis(2), 10, 0.5).await.unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(
            (
                hits[0].document.as_str(),
                hits[0].position,
                hits[0].source.as_str()
            ),
            ("wifi", 2, "wifi.md")
        );
        assert!((hits[0].score - 1.0).abs() < 1e-4);

        // A shorter version replaces every chunk of the longer one.
        store
            .put_document(document("wifi", 1), chunks(1))
            .await
            .unwrap();
        assert!(
            store
                .search(&names, &axis(2), 10, 0.5)
                .await
                .unwrap()
                .is_empty()
        );
        let all = store.search(&names, &axis(0), 10, -1.0).await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(
            store_again.document("house_guide", "wifi").await.unwrap(),
            Some(document("wifi", 1))
        );
        let info = store.collections().await.unwrap();
        assert_eq!((info.len(), info[0].documents, info[0].chunks), (1, 1, 1));

        // Deleting: gone from search and records, and a second time unknown.
        store
            .put_document(document("kitchen", 2), chunks(2))
            .await
            .unwrap();
        store.delete_document("house_guide", "wifi").await.unwrap();
        assert!(matches!(
            store.delete_document("house_guide", "wifi").await,
            Err(StoreError::UnknownDocument { .. })
        ));
        assert_eq!(store.document("house_guide", "wifi").await.unwrap(), None);
        let left = store.search(&names, &axis(0), 10, -1.0).await.unwrap();
        assert!(left.iter().all(|h| h.document == "kitchen"), "{left:?}");
        assert_eq!(left.len(), 2);
        assert_eq!(
            store.documents("house_guide").await.unwrap(),
            vec![document("kitchen", 2)]
        );

        // Unknown collections, in every call that names one.
        let nope = "nope".to_owned();
        let unknown = |r: Result<(), StoreError>| {
            assert!(matches!(r, Err(StoreError::UnknownCollection(n)) if n == "nope"));
        };
        let mut doc = document("x", 1);
        doc.collection = nope.clone();
        unknown(store.put_document(doc, chunks(1)).await);
        unknown(store.delete_collection(&nope).await);
        unknown(store.delete_document(&nope, "x").await);
        unknown(store.document(&nope, "x").await.map(drop));
        unknown(store.documents(&nope).await.map(drop));
        unknown(
            store
                .search(&[names[0].clone(), nope.clone()], &axis(0), 3, -1.0)
                .await
                .map(drop),
        );

        // A deleted collection takes its chunks: made again, it is empty.
        store.delete_collection("house_guide").await.unwrap();
        assert!(store.collections().await.unwrap().is_empty());
        store.create_collection(guide()).await.unwrap();
        assert!(
            store
                .search(&names, &axis(0), 10, -1.0)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(store.documents("house_guide").await.unwrap().is_empty());
    })
    .await;
}

/// `open` gives up with [`StoreError::Io`]; the outer limit only turns a
/// hang into a failure instead of a stuck test run.
async fn refused_within_the_deadline(config: QdrantConfig) -> String {
    let opened = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        QdrantStore::open(&config, 8),
    )
    .await
    .expect("open hung past its deadline");
    match opened {
        Err(StoreError::Io(message)) => {
            assert!(message.contains(&config.url), "{message}");
            message
        }
        other => panic!("expected an Io error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_qdrant_that_is_down_is_an_io_error() {
    let port = athena_runtime::free_local_port().unwrap();
    let message = refused_within_the_deadline(QdrantConfig {
        url: format!("http://127.0.0.1:{port}"),
        timeout_secs: 2,
        ..QdrantConfig::default()
    })
    .await;
    eprintln!("down: {message}");
}

#[tokio::test]
async fn a_qdrant_that_never_answers_is_an_io_error() {
    // Accepts connections and says nothing.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let message = refused_within_the_deadline(QdrantConfig {
        url: format!("http://127.0.0.1:{port}"),
        timeout_secs: 1,
        ..QdrantConfig::default()
    })
    .await;
    eprintln!("silent: {message}");
    silent.abort();
}

#[test]
fn the_qdrant_config_section() {
    // Embedded by default, needing nothing.
    let config = Config::default();
    assert_eq!(config.backend, BackendKind::Embedded);
    assert!(config.validate().is_ok());

    // Qdrant needs a URL.
    let mut config: Config = serde_json::from_value(serde_json::json!({
        "backend": "qdrant",
        "qdrant": {"api_key": "s3cret-key", "timeout_secs": 3},
    }))
    .unwrap();
    assert_eq!(config.qdrant.collection_prefix, "athena_");
    let e = config.validate().unwrap_err();
    assert!(e.contains("qdrant.url"), "{e}");
    config.qdrant.url = "qdrant:6334".into();
    assert!(config.validate().is_err());
    config.qdrant.url = "http://qdrant:6334".into();
    assert!(config.validate().is_ok());
    config.qdrant.collection_prefix = "bad prefix".into();
    assert!(config.validate().is_err());

    // The key never shows.
    assert_eq!(config.qdrant.api_key.expose(), "s3cret-key");
    assert!(!format!("{config:?}").contains("s3cret"));
    let json = serde_json::to_string(&config).unwrap();
    assert!(!json.contains("s3cret"), "{json}");
    assert_ne!(config.qdrant.api_key, Secret::default());
}
