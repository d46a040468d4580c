//! The connectors end to end, with the real embedding model: a watched
//! folder (files added, changed, deleted, refused; a restart over the same
//! index) and a page on a local HTTP server (ETag and 304, a change, a
//! server that fails or stops while the last good copy stays searchable).
//! Schedules are a fraction of a second; every wait is a bounded poll.

#![allow(clippy::unwrap_used)]

mod common;

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use athena_rag_api::connectors::folder::file_document_id;
use athena_rag_api::connectors::url::url_document_id;
use athena_rag_api::connectors::{self, Connector, ConnectorReport, Folder, Outcome, Page};
use athena_rag_api::engine::{NewDocument, Query, Rag};
use athena_rag_api::store::{Access, Hit};
use athena_rag_api::{Config, http_api};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

fn engine(dir: &Path) -> Arc<Rag> {
    Arc::new(common::engine(dir))
}

/// Polls `check` until it holds; fails the test after a minute (the
/// machine may be busy, so the bound is generous: a pass is quick).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn search(rag: &Rag, collection: &str, text: &str, limit: usize) -> Vec<Hit> {
    rag.search(Query {
        text: text.into(),
        collections: Some(vec![collection.into()]),
        reader: Access::Owner,
        limit,
        threshold: -1.0,
    })
    .await
    .unwrap()
}

async fn best(rag: &Rag, collection: &str, text: &str) -> Hit {
    search(rag, collection, text, 1).await.remove(0)
}

/// The one connector's report (once it has started).
fn report(rag: &Rag) -> Option<ConnectorReport> {
    rag.connectors().reports().into_iter().next()
}

fn sources(rag: &Rag) -> usize {
    report(rag).map_or(0, |r| r.sources.len())
}

/// The last result for `source`, if it has one.
fn last(rag: &Rag, source: &str) -> Option<Outcome> {
    report(rag)?
        .sources
        .into_iter()
        .find(|s| s.source == source)
        .map(|s| s.last)
}

fn code(outcome: Option<Outcome>) -> Option<&'static str> {
    match outcome {
        Some(Outcome::Error { problem, .. }) => Some(problem.code),
        _ => None,
    }
}

fn start(rag: &Arc<Rag>, connector: Connector) -> (CancellationToken, JoinHandle<()>) {
    let stop = CancellationToken::new();
    let task = tokio::spawn(connectors::run(rag.clone(), vec![connector], stop.clone()));
    let task = tokio::spawn(async move { task.await.unwrap().unwrap() });
    (stop, task)
}

async fn stop(stop: CancellationToken, task: JoinHandle<()>) {
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the connectors stop promptly on shutdown")
        .unwrap();
}

const WIFI: &str =
    "# Wifi\n\nThe wifi network is Villa Sunflower; the wifi password is sunflower-2024.\n";
const COFFEE: &str =
    "The coffee machine in the kitchen takes Nespresso pods. Descale it every month.\n";
const GARDEN: &str = "<html><body><h1>Garden</h1><p>The swimming pool is heated from May to September.</p></body></html>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_is_followed_across_changes_and_restarts() {
    let index = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = docs.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    };
    write("wifi.md", WIFI.as_bytes());
    write("kitchen/coffee.txt", COFFEE.as_bytes());
    write("garden.html", GARDEN.as_bytes());
    // Refused, each with its reason, beside the good ones.
    write("blob.txt", b"PK\x03\x04\0\0\x14\0binary\0\0");
    write("empty.md", b"");
    // Not documents at all.
    write("photo.png", b"\x89PNG\r\n\x1a\n");
    write(".hidden.md", b"# Hidden\n\nNot for the index.");
    write("wifi.md~", b"# Backup\n\nAn editor's copy.");
    write(".wifi.md.swp", b"swap");

    let folder = Folder {
        path: docs.path().to_path_buf(),
        collection: "house".into(),
        access: Access::Guest,
        every: Duration::from_millis(100),
        settle: Duration::from_millis(200),
        max_bytes: Config::default().max_document_bytes,
    };
    let rag = engine(index.path());
    // A document put through the API is not the folder's to delete.
    rag.create_collection(athena_rag_api::store::Collection {
        name: "house".into(),
        access: Access::Guest,
        description: String::new(),
    })
    .await
    .unwrap();
    rag.put_document(
        "house",
        "checkout",
        NewDocument {
            text: "Checkout is at ten in the morning; leave the keys on the table.".into(),
            ..NewDocument::default()
        },
    )
    .await
    .unwrap();
    let (token, task) = start(&rag, Connector::Folder(folder.clone()));

    eventually("five files reported", || async { sources(&rag) == 5 }).await;
    let r = report(&rag).unwrap();
    assert_eq!((r.ok, r.failed), (3, 2), "{r:#?}");
    assert_eq!(code(last(&rag, "blob.txt")), Some("binary_document"));
    assert_eq!(code(last(&rag, "empty.md")), Some("empty_document"));
    let wifi = best(&rag, "house", "what is the wifi password?").await;
    assert_eq!(wifi.document, file_document_id("wifi.md"));
    assert_eq!(wifi.source, "wifi.md");
    assert!(wifi.text.contains("sunflower-2024"), "{wifi:?}");
    let coffee = best(&rag, "house", "what pods does the coffee machine take?").await;
    assert_eq!(coffee.source, "kitchen/coffee.txt");
    let pool = best(&rag, "house", "when is the swimming pool heated?").await;
    assert_eq!(pool.source, "garden.html");
    assert_eq!(pool.heading, "Garden");
    assert_eq!(rag.documents("house").await.unwrap().len(), 4);

    // A change: the new text is found, the old is not.
    write(
        "wifi.md",
        b"# Wifi\n\nThe wifi is now called Casa Girasole and its password is girasole-77, since spring.\n",
    );
    eventually("the changed file indexed", || async {
        best(&rag, "house", "what is the wifi password?")
            .await
            .text
            .contains("girasole-77")
    })
    .await;
    let hits = search(&rag, "house", "wifi password sunflower-2024", 10).await;
    assert!(
        hits.iter().all(|h| !h.text.contains("sunflower")),
        "{hits:?}"
    );

    // A deletion: gone from the index and from the status.
    std::fs::remove_file(docs.path().join("garden.html")).unwrap();
    let garden = file_document_id("garden.html");
    eventually("the deleted file's document gone", || async {
        rag.documents("house")
            .await
            .unwrap()
            .iter()
            .all(|d| d.id != garden)
    })
    .await;
    eventually("the deleted file's status gone", || async {
        last(&rag, "garden.html").is_none()
    })
    .await;
    assert!(
        search(&rag, "house", "when is the swimming pool heated?", 5)
            .await
            .iter()
            .all(|h| h.source != "garden.html")
    );
    // Refused files are not tried again while they stay the same.
    let blob = report(&rag)
        .unwrap()
        .sources
        .into_iter()
        .find(|s| s.source == "blob.txt")
        .unwrap();
    assert_eq!(blob.errors, 1, "{blob:?}");

    // The status over HTTP, as `GET /v1/connectors` serves it.
    let slot = http_api::Slot::default();
    slot.set(rag.clone()).unwrap();
    let response = http_api::router(slot, 1 << 20, 3)
        .oneshot(Request::get("/v1/connectors").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let c = &json["connectors"][0];
    assert_eq!(c["kind"], "folder");
    assert_eq!(c["collection"], "house");
    let blob = c["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == "blob.txt")
        .unwrap();
    assert_eq!(blob["result"], "error");
    assert_eq!(blob["code"], "binary_document");
    assert!(
        blob["message"].as_str().unwrap().contains("binary"),
        "{blob}"
    );

    // Stopped; a file deleted meanwhile; started again over the same index.
    stop(token, task).await;
    drop(rag);
    std::fs::remove_file(docs.path().join("kitchen/coffee.txt")).unwrap();
    let rag = engine(index.path());
    let (token, task) = start(&rag, Connector::Folder(folder));
    eventually("the first scan after the restart", || async {
        sources(&rag) == 3
    })
    .await;
    let mut ids: Vec<String> = rag
        .documents("house")
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    ids.sort();
    let mut expected = vec!["checkout".to_owned(), file_document_id("wifi.md")];
    expected.sort();
    assert_eq!(ids, expected, "no duplicates, the deleted file gone");
    assert!(
        matches!(last(&rag, "wifi.md"), Some(Outcome::Unchanged { .. })),
        "not re-embedded: {:?}",
        last(&rag, "wifi.md")
    );
    stop(token, task).await;
}

/// What the local site answers.
#[derive(Debug, Clone)]
enum Answer {
    Page { body: Vec<u8>, etag: &'static str },
    Fails,
    Hangs,
}

#[derive(Debug)]
struct Site {
    answer: Answer,
    /// 304s sent.
    not_modified: usize,
    /// Query strings seen (the secret must reach the server).
    tokens: Vec<String>,
}

type Shared = Arc<Mutex<Site>>;

async fn page(
    State(site): State<Shared>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: HeaderMap,
) -> Response {
    let answer = {
        let mut site = site.lock().unwrap();
        site.tokens.extend(query);
        site.answer.clone()
    };
    match answer {
        Answer::Fails => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Answer::Hangs => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            StatusCode::OK.into_response()
        }
        Answer::Page { body, etag } => {
            let asked = headers
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok());
            if asked == Some(etag) {
                site.lock().unwrap().not_modified += 1;
                return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
            }
            (
                [
                    (header::CONTENT_TYPE, "text/markdown; charset=utf-8"),
                    (header::ETAG, etag),
                ],
                body,
            )
                .into_response()
        }
    }
}

const TOWELS_V1: &str = "# Towels\n\nThe beach towels are in the blue cupboard by the back door.\n";
const TOWELS_V2: &str =
    "# Towels\n\nThe beach towels are now in the hall wardrobe, on the top shelf.\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_is_fetched_on_schedule_and_survives_failures() {
    let site: Shared = Arc::new(Mutex::new(Site {
        answer: Answer::Page {
            body: TOWELS_V1.into(),
            etag: "\"v1\"",
        },
        not_modified: 0,
        tokens: Vec::new(),
    }));
    let set = |answer: Answer| site.lock().unwrap().answer = answer;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/guide.md", axum::routing::get(page))
        .with_state(site.clone());
    let down = CancellationToken::new();
    let server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(down.clone().cancelled_owned())
            .into_future(),
    );

    let url = format!("http://{addr}/guide.md?token=s3cret");
    let shown = format!("http://{addr}/guide.md");
    let index = tempfile::tempdir().unwrap();
    let rag = engine(index.path());
    let page_ = Page {
        url: url.clone(),
        id: url_document_id(&url),
        collection: "pages".into(),
        access: Access::Guest,
        every: Duration::from_millis(150),
        timeout: Duration::from_millis(800),
        max_bytes: Config::default().max_document_bytes,
    };
    let (token, task) = start(&rag, Connector::Url(page_));

    let towels = "where are the beach towels?";
    eventually("the page indexed", || async {
        matches!(last(&rag, &shown), Some(Outcome::Indexed { .. }))
    })
    .await;
    let hit = best(&rag, "pages", towels).await;
    assert!(hit.text.contains("blue cupboard"), "{hit:?}");
    assert_eq!(hit.source, shown, "the query string is not shown");
    assert_eq!(hit.document, url_document_id(&url));
    assert_eq!(site.lock().unwrap().tokens[0], "token=s3cret");

    // Asked again with its ETag: a 304, nothing re-fetched.
    eventually("a 304", || async {
        site.lock().unwrap().not_modified >= 1
            && matches!(last(&rag, &shown), Some(Outcome::Unchanged { .. }))
    })
    .await;

    // A change is taken.
    set(Answer::Page {
        body: TOWELS_V2.into(),
        etag: "\"v2\"",
    });
    eventually("the changed page indexed", || async {
        best(&rag, "pages", towels)
            .await
            .text
            .contains("hall wardrobe")
    })
    .await;
    let hits = search(&rag, "pages", towels, 10).await;
    assert!(hits.iter().all(|h| !h.text.contains("blue cupboard")));

    // Failures: each recorded, the last good copy still found.
    let failures = [
        (Answer::Fails, "http_status", "500"),
        (
            Answer::Page {
                body: b"PK\x03\x04\0\0\x14\0\0\0binary".to_vec(),
                etag: "\"zip\"",
            },
            "binary_document",
            "binary",
        ),
        (Answer::Hangs, "timeout", "no answer"),
    ];
    for (answer, expected, said) in failures {
        set(answer);
        eventually(expected, || async {
            code(last(&rag, &shown)) == Some(expected)
        })
        .await;
        let Some(Outcome::Error { problem, .. }) = last(&rag, &shown) else {
            unreachable!()
        };
        assert!(problem.message.contains(said), "{problem:?}");
        assert!(!problem.message.contains("s3cret"), "{problem:?}");
        let hit = best(&rag, "pages", towels).await;
        assert!(hit.text.contains("hall wardrobe"), "{expected}: {hit:?}");
    }

    // The server stops (once the hanging answers are over).
    set(Answer::Fails);
    down.cancel();
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    eventually("the stopped server reported", || async {
        code(last(&rag, &shown)) == Some("unreachable")
    })
    .await;
    assert!(
        best(&rag, "pages", towels)
            .await
            .text
            .contains("hall wardrobe")
    );
    let r = report(&rag).unwrap();
    assert_eq!((r.ok, r.failed), (0, 1));
    assert_eq!(r.name, shown);
    let s = &r.sources[0];
    assert!(s.indexed >= 2 && s.unchanged >= 1 && s.errors >= 4, "{s:?}");
    let json = serde_json::to_string(&rag.connectors().reports()).unwrap();
    assert!(!json.contains("s3cret"), "{json}");
    stop(token, task).await;
}

#[test]
fn sources_in_the_config_have_defaults_and_are_checked() {
    use athena_rag_api::config::{FolderSource, UrlSource};
    use athena_runtime::Validate;

    let config: Config = serde_json::from_value(serde_json::json!({
        "folders": [{"path": "/srv/guide", "collection": "house_guide"}],
        "urls": [{"url": "https://wiki.example/house.md?key=k", "collection": "web"}],
    }))
    .unwrap();
    assert_eq!(config.validate(), Ok(()));
    let folder = &config.folders[0];
    assert_eq!((folder.access, folder.scan_secs), (Access::Owner, 5));
    let url = &config.urls[0];
    assert_eq!(
        (url.access, url.every_secs, url.id.as_deref()),
        (Access::Owner, 3600, None)
    );
    assert_eq!(connectors::from_config(&config).len(), 2);

    let folder = |path: &str, collection: &str, scan_secs| FolderSource {
        path: path.into(),
        collection: collection.into(),
        access: Access::Guest,
        scan_secs,
    };
    let url = |url: &str, every_secs, id: Option<&str>| UrlSource {
        url: url.into(),
        collection: "web".into(),
        access: Access::Guest,
        every_secs,
        timeout_secs: 30,
        id: id.map(str::to_owned),
    };
    let refused = |folders: Vec<FolderSource>, urls: Vec<UrlSource>| {
        let config = Config {
            folders,
            urls,
            ..Config::default()
        };
        config.validate().unwrap_err()
    };
    assert!(refused(vec![folder("", "a", 5)], vec![]).contains("path is empty"));
    assert!(refused(vec![folder("/d", "Not Valid", 5)], vec![]).contains("collection name"));
    assert!(refused(vec![folder("/d", "a", 0)], vec![]).contains("scan_secs"));
    let twice = refused(vec![folder("/d", "a", 5), folder("/e", "a", 5)], vec![]);
    assert!(twice.contains("its own"), "{twice}");
    let secret = refused(vec![], vec![url("ftp://x/y?token=s3cret", 60, None)]);
    assert!(
        secret.contains("not an http") && !secret.contains("s3cret"),
        "{secret}"
    );
    assert!(refused(vec![], vec![url("https://x/y", 0, None)]).contains("every_secs"));
    assert!(refused(vec![], vec![url("https://x/y", 60, Some("../up"))]).contains("document id"));
    let same = refused(
        vec![],
        vec![url("https://x/y", 60, None), url("https://x/y", 9, None)],
    );
    assert!(same.contains("already"), "{same}");
}
