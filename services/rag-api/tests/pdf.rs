//! PDF ingestion end to end, on PDFs made on this machine with real tools
//! (`tests/data/pdf/make.sh` says how): a LibreOffice Writer export with
//! embedded fonts, a groff one with the standard fonts, a scan without a
//! text layer and a locked copy. Text comes out in reading order; a PDF
//! put as the request body is found by a question; broken, locked and
//! scanned PDFs are refused with their code while the service goes on; a
//! watched folder takes PDFs.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use athena_rag_api::connectors::folder::file_document_id;
use athena_rag_api::connectors::{self, Connector, Folder, Outcome};
use athena_rag_api::engine::{NewDocument, Query, Rag};
use athena_rag_api::ingest::{self, Format, IngestError, pdf};
use athena_rag_api::store::{Access, Collection, Hit};
use athena_rag_api::{Config, http_api};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

fn data(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::PathBuf::from(
            std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
        )
        .join("tests/data/pdf")
        .join(name),
    )
    .unwrap()
}

fn text_of(name: &str) -> Result<String, IngestError> {
    pdf::text(&data(name), pdf::Limits::new(1 << 20))
}

fn engine(dir: &Path) -> Arc<Rag> {
    Arc::new(common::engine(dir))
}

async fn search(rag: &Rag, text: &str) -> Vec<Hit> {
    rag.search(Query {
        text: text.into(),
        collections: None,
        reader: Access::Owner,
        limit: 3,
        threshold: -1.0,
    })
    .await
    .unwrap()
}

/// Sends a request; the status and the JSON answer.
async fn call(rag: &Arc<Rag>, request: Request<Body>) -> (StatusCode, Value) {
    let slot = http_api::Slot::default();
    slot.set(rag.clone()).unwrap();
    let response = http_api::router(slot, 32 << 20, 3)
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

fn put(uri: &str, content_type: &str, body: Vec<u8>) -> Request<Body> {
    Request::put(uri)
        .header("content-type", content_type)
        .body(Body::from(body))
        .unwrap()
}

#[test]
fn text_comes_out_in_reading_order() {
    // LibreOffice: three pages, a paragraph a block, typography kept.
    let text = text_of("lake-house.pdf").unwrap();
    let pages: Vec<Vec<String>> = ingest::sections(&text, Format::Pdf)
        .into_iter()
        .map(|s| s.paragraphs)
        .collect();
    assert_eq!(pages.len(), 3, "{text:?}");
    assert_eq!(
        pages[0],
        [
            "Lake house manual",
            "Heating and hot water",
            "The boiler is in the utility room, behind the washing machine. If the radiators \
             stay cold, press the red reset button on the boiler for five seconds and wait \
             fifteen minutes before trying again.",
            "Hot water comes on at six in the morning and at five in the evening. The office \
             radiator has its own thermostat on the wall by the door; turn it to \u{201c}3\u{201d} \
             for a comfortable room.",
        ]
    );
    assert_eq!(pages[1][0], "Garden and bins");
    assert!(
        pages[1][1].contains("garden waste \u{2014} grass, leaves"),
        "{pages:?}"
    );
    assert!(
        pages[1][2].contains("next to the caf\u{e9} table"),
        "{pages:?}"
    );
    assert_eq!(pages[2][0], "Leaving");

    // groff with the standard fonts: a word hyphenated at a line end is whole.
    let text = text_of("notes.pdf").unwrap();
    let pages = ingest::sections(&text, Format::Pdf);
    assert_eq!(pages.len(), 2, "{text:?}");
    assert_eq!(pages[0].paragraphs[0], "1. Wifi and television");
    assert!(
        pages[1]
            .paragraphs
            .iter()
            .any(|p| p.contains("In an emergency call 112; the neighbours at number seven")),
        "{pages:?}"
    );
}

#[test]
fn unreadable_pdfs_are_refused_with_the_reason() {
    assert_eq!(text_of("scanned.pdf"), Err(IngestError::NoText));
    assert_eq!(text_of("locked.pdf"), Err(IngestError::EncryptedPdf));
    let whole = data("lake-house.pdf");
    // Cut anywhere, a PDF is refused or read, never a panic.
    for cut in (0..whole.len()).step_by(997) {
        match pdf::text(&whole[..cut], pdf::Limits::new(1 << 20)) {
            Ok(_)
            | Err(IngestError::UnreadablePdf(_) | IngestError::NoText | IngestError::Empty) => {}
            Err(e) => panic!("cut at {cut}: {e}"),
        }
    }
    assert!(matches!(
        pdf::text(&whole[..9000], pdf::Limits::new(1 << 20)),
        Err(IngestError::UnreadablePdf(_))
    ));
    assert!(matches!(
        pdf::text(&whole, pdf::Limits::new(1000)),
        Err(IngestError::TooLarge { max: 1000, .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pdf_put_as_the_body_is_searchable_and_bad_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rag = engine(dir.path());
    rag.create_collection(Collection {
        name: "manuals".into(),
        access: Access::Guest,
        description: String::new(),
    })
    .await
    .unwrap();

    let uri = "/v1/collections/manuals/documents/lake-house?source=manuals/lake-house.pdf&title=Lake%20house";
    let (status, doc) = call(&rag, put(uri, "application/pdf", data("lake-house.pdf"))).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert_eq!(doc["format"], "pdf");
    assert_eq!(doc["title"], "Lake house");
    assert_eq!(doc["source"], "manuals/lake-house.pdf");
    assert!(
        doc["chunks"].as_u64().unwrap() >= 3,
        "a chunk or more a page: {doc}"
    );

    let hits = search(&rag, "The heating does not work, what should I do?").await;
    assert_eq!(hits[0].document, "lake-house", "{hits:?}");
    assert!(hits[0].text.contains("reset button"), "{hits:?}");
    let hits = search(&rag, "Which day is the paper bin emptied?").await;
    assert!(hits[0].text.contains("collected on Tuesdays"), "{hits:?}");

    // The same PDF again is unchanged: not embedded again.
    let (status, again) = call(&rag, put(uri, "application/pdf", data("lake-house.pdf"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, doc);

    // Refused, each with its code.
    let whole = data("lake-house.pdf");
    let refusals = [
        (
            "truncated",
            "application/pdf",
            whole[..9000].to_vec(),
            "unreadable_pdf",
        ),
        (
            "garbage",
            "application/pdf",
            b"%PDF-1.4\n\x8f\x02 not at all".repeat(50),
            "unreadable_pdf",
        ),
        ("scanned", "application/pdf", data("scanned.pdf"), "no_text"),
        (
            "locked",
            "application/pdf",
            data("locked.pdf"),
            "encrypted_pdf",
        ),
        (
            "photo",
            "image/png",
            b"\x89PNG\r\n\x1a\n".to_vec(),
            "unsupported_media_type",
        ),
    ];
    for (id, content_type, body, code) in refusals {
        let uri = format!("/v1/collections/manuals/documents/{id}");
        let (status, error) = call(&rag, put(&uri, content_type, body)).await;
        assert!(status.is_client_error(), "{id}: {status} {error}");
        assert_eq!(error["error"]["code"], code, "{id}: {error}");
    }
    // A PDF cannot travel as JSON text.
    let json = br#"{"text": "%PDF-1.4", "format": "pdf"}"#.to_vec();
    let (status, error) = call(
        &rag,
        put(
            "/v1/collections/manuals/documents/j",
            "application/json",
            json,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"]["code"], "invalid_request");

    // The service goes on: Markdown as the body, then a search.
    let md =
        b"# Sauna\n\nThe sauna heats up in forty minutes; the switch is by the shower.".to_vec();
    let (status, doc) = call(
        &rag,
        put(
            "/v1/collections/manuals/documents/sauna",
            "text/markdown; charset=utf-8",
            md,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert_eq!(doc["format"], "markdown");
    assert_eq!(doc["title"], "Sauna");
    let hits = search(&rag, "How long does the sauna take to get hot?").await;
    assert_eq!(hits[0].document, "sauna", "{hits:?}");
    assert_eq!(rag.documents("manuals").await.unwrap().len(), 2);

    // The engine takes the bytes directly too.
    let doc = rag
        .put_document(
            "manuals",
            "notes",
            NewDocument {
                bytes: Some(data("notes.pdf")),
                source: Some("notes.pdf".into()),
                ..NewDocument::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(doc.format, Format::Pdf);
    let hits = search(&rag, "What is the wifi called?").await;
    assert_eq!(hits[0].document, "notes", "{hits:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watched_folder_takes_pdfs() {
    let index = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    std::fs::write(docs.path().join("lake-house.pdf"), data("lake-house.pdf")).unwrap();
    std::fs::write(docs.path().join("scan.pdf"), data("scanned.pdf")).unwrap();
    let rag = engine(index.path());
    let folder = Folder {
        path: docs.path().to_path_buf(),
        collection: "house".into(),
        access: Access::Guest,
        every: Duration::from_millis(100),
        settle: Duration::from_millis(0),
        max_bytes: Config::default().max_document_bytes,
    };
    let stop = CancellationToken::new();
    let task = tokio::spawn(connectors::run(
        rag.clone(),
        vec![Connector::Folder(folder)],
        stop.clone(),
    ));
    let last = |source: &str| {
        rag.connectors()
            .reports()
            .into_iter()
            .next()?
            .sources
            .into_iter()
            .find(|s| s.source == source)
            .map(|s| s.last)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while last("lake-house.pdf").is_none() || last("scan.pdf").is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the folder was never scanned"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        matches!(last("lake-house.pdf"), Some(Outcome::Indexed { chunks, .. }) if chunks >= 3),
        "{:?}",
        last("lake-house.pdf")
    );
    assert!(
        matches!(last("scan.pdf"), Some(Outcome::Error { ref problem, .. }) if problem.code == "no_text"),
        "{:?}",
        last("scan.pdf")
    );
    let hits = search(&rag, "Where do I leave the keys when I go?").await;
    assert_eq!(
        hits[0].document,
        file_document_id("lake-house.pdf"),
        "{hits:?}"
    );
    assert!(hits[0].text.contains("grey letterbox"), "{hits:?}");
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
