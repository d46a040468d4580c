//! Durability: the rag-api process is killed (SIGKILL) while documents
//! are being ingested; after a restart every acknowledged document is
//! there and searchable, and the index opens cleanly. Also the HTTP
//! API's errors and the OpenAI-shaped embeddings endpoint.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

fn free_port() -> u16 {
    athena_runtime::free_local_port().unwrap()
}

struct Server {
    child: Child,
    base: String,
}

impl Server {
    async fn start(dir: &Path, port: u16) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_athena-rag-api"))
            .env("ATHENA__RAG_API__HTTP", format!("127.0.0.1:{port}"))
            .env("ATHENA__RAG_API__DIR", dir)
            .env("ATHENA__RAG_API__MAX_DOCUMENT_BYTES", "1048576")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        for _ in 0..1200 {
            if let Ok(r) = http.get(format!("{}/readyz", server.base)).send().await
                && r.status().is_success()
            {
                return server;
            }
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("rag-api exited: {status}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server.kill();
        panic!("rag-api did not become ready");
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn note(i: usize) -> String {
    format!(
        "# Note {i}\n\nThis is house note number {i}. The spare key number {i} hangs on hook {i} \
         in the garage. {}",
        "The garage door opens with the button by the side entrance. ".repeat(1 + i % 5)
    )
}

#[tokio::test]
async fn acknowledged_documents_survive_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let http = reqwest::Client::new();
    let mut server = Server::start(dir.path(), port).await;
    let base = server.base.clone();
    let r = http
        .post(format!("{base}/v1/collections"))
        .json(&json!({"name": "notes", "access": "guest"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // Ingest in the background; kill the process while it is at it.
    let writer = {
        let http = http.clone();
        let base = base.clone();
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0..500 {
                let r = http
                    .put(format!("{base}/v1/collections/notes/documents/note-{i}"))
                    .json(&json!({"text": note(i), "format": "markdown"}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => acknowledged.push(i),
                    _ => break,
                }
            }
            acknowledged
        })
    };
    tokio::time::sleep(Duration::from_millis(2500)).await;
    server.kill();
    let acknowledged = writer.await.unwrap();
    assert!(
        acknowledged.len() >= 3,
        "only {} written",
        acknowledged.len()
    );
    assert!(acknowledged.len() < 500, "the kill came after the end");

    let server = Server::start(dir.path(), port).await;
    let docs: Vec<Value> = http
        .get(format!("{base}/v1/collections/notes/documents"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for i in &acknowledged {
        assert!(
            docs.iter().any(|d| d["id"] == format!("note-{i}")),
            "acknowledged note-{i} lost after the kill"
        );
    }
    let last = acknowledged.last().unwrap();
    let found: Value = http
        .post(format!("{base}/v1/search"))
        .json(&json!({
            // The note's own words: dozens of notes differ only in their
            // numbers, which a question naming one number once does not
            // always tell apart.
            "query": format!(
                "This is house note number {last}. The spare key number {last} hangs on hook {last}."
            ),
            "limit": 10
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let results = found["results"].as_array().unwrap();
    assert!(
        results
            .iter()
            .any(|h| h["document"] == format!("note-{last}")),
        "{found}"
    );
    // And it takes writes again.
    let r = http
        .put(format!("{base}/v1/collections/notes/documents/after"))
        .json(&json!({"text": "Written after the restart."}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());

    // Errors over HTTP, each with its code.
    let cases = [
        (
            http.put(format!("{base}/v1/collections/nope/documents/a"))
                .json(&json!({"text": "x"})),
            404,
            "unknown_collection",
        ),
        (
            http.put(format!("{base}/v1/collections/notes/documents/a"))
                .json(&json!({"text": ""})),
            400,
            "empty_document",
        ),
        (
            http.put(format!("{base}/v1/collections/notes/documents/a"))
                .json(&json!({"text": "x".repeat(2 << 20)})),
            413,
            "document_too_large",
        ),
        (
            http.post(format!("{base}/v1/search"))
                .json(&json!({"query": "hello ".repeat(400)})),
            400,
            "input_too_long",
        ),
        (
            http.post(format!("{base}/v1/collections"))
                .json(&json!({"name": "notes", "access": "guest"})),
            409,
            "collection_exists",
        ),
        (
            http.post(format!("{base}/v1/search")).body("{not json"),
            400,
            "invalid_json",
        ),
    ];
    for (request, status, code) in cases {
        let r = request.send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{code}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{body}");
    }
    // A body far beyond any document: refused before it is read whole.
    // (The server may answer 413 and close before the client has sent it
    // all; then the client sees the connection end. Either way the server
    // carries on.)
    let r = http
        .put(format!("{base}/v1/collections/notes/documents/huge"))
        .header("content-type", "application/json")
        .body(vec![b' '; 50 << 20])
        .send()
        .await;
    if let Ok(r) = r {
        assert_eq!(r.status().as_u16(), 413);
    }
    let r = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert!(r.status().is_success());

    // OpenAI-shaped embeddings.
    let e: Value = http
        .post(format!("{base}/v1/embeddings"))
        .json(&json!({"input": ["hello", "world"], "model": "all-minilm-l6-v2"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(e["object"], "list");
    assert_eq!(e["data"][1]["index"], 1);
    assert_eq!(e["data"][0]["embedding"].as_array().unwrap().len(), 384);
    drop(server);
}
