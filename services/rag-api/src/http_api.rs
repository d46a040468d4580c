//! The HTTP API, and the one place where a retrieval error becomes a
//! response.
//!
//! - `GET/POST /v1/collections`, `GET/DELETE /v1/collections/{name}`
//! - `GET /v1/collections/{name}/documents`,
//!   `GET/PUT/DELETE /v1/collections/{name}/documents/{id}`
//!   (`PUT` body: JSON `{text, format?, source?, title?}`, or the document
//!   itself as `application/pdf`, `text/markdown`, `text/html` or
//!   `text/plain`, with `?source=&title=`)
//! - `POST /v1/search` `{query, collections?, access?, limit?, threshold?}`
//! - `POST /v1/embeddings`: OpenAI's shape.
//! - `GET /v1/connectors`: what each watched folder and fetched URL last did.
//! - `GET /openapi.json`: all of the above as an OpenAPI 3.1 document
//!   (written by hand in `openapi.yaml`; a test holds it to the routes).

use std::sync::Arc;

use athena_runtime::http::{ApiError, body_bytes, json_body};
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query as UrlQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::embed::EmbedError;
use crate::engine::{NewDocument, Query, Rag, RagError};
use crate::ingest::{Format, IngestError};
use crate::store::{Access, Collection, CollectionInfo, Document, Hit, StoreError};

impl From<RagError> for ApiError {
    fn from(e: RagError) -> Self {
        let message = e.to_string();
        match e {
            RagError::Ingest(IngestError::Empty) => {
                ApiError::bad_request("empty_document", message)
            }
            RagError::Ingest(IngestError::Binary(_)) => {
                ApiError::bad_request("binary_document", message)
            }
            RagError::Ingest(IngestError::TooLarge { .. }) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "document_too_large", message)
            }
            RagError::Ingest(IngestError::UnreadablePdf(_)) => {
                ApiError::bad_request("unreadable_pdf", message)
            }
            RagError::Ingest(IngestError::EncryptedPdf) => {
                ApiError::bad_request("encrypted_pdf", message)
            }
            RagError::Ingest(IngestError::NoText) => ApiError::bad_request("no_text", message),
            RagError::Embed(EmbedError::TooLong { .. }) => {
                ApiError::bad_request("input_too_long", message)
            }
            RagError::Embed(EmbedError::Empty(_)) => ApiError::bad_request("empty_input", message),
            RagError::Embed(e) => ApiError::internal(&e),
            RagError::Store(StoreError::UnknownCollection(_)) => {
                ApiError::not_found("unknown_collection", message)
            }
            RagError::Store(StoreError::UnknownDocument { .. }) => {
                ApiError::not_found("unknown_document", message)
            }
            RagError::Store(StoreError::CollectionExists(_)) => {
                ApiError::new(StatusCode::CONFLICT, "collection_exists", message)
            }
            RagError::Store(StoreError::Io(_)) => {
                ApiError::unavailable("index_unavailable", message)
            }
            RagError::NotAllowed(_) => ApiError::new(StatusCode::FORBIDDEN, "not_allowed", message),
            RagError::Invalid(_) => ApiError::bad_request("invalid_request", message),
        }
    }
}

/// The engine once loaded.
pub type Slot = athena_runtime::service::Slot<Rag>;

fn rag(slot: &Slot) -> Result<Arc<Rag>, ApiError> {
    slot.get()
        .cloned()
        .ok_or_else(|| ApiError::unavailable("loading", "the embedding model is still loading"))
}

/// The routes, over the engine in `slot`.
pub fn router(slot: Slot, max_body_bytes: usize, default_limit: usize) -> Router {
    Router::new()
        .route("/v1/collections", get(collections).post(create_collection))
        .route(
            "/v1/collections/{name}",
            get(collection).delete(delete_collection),
        )
        .route("/v1/collections/{name}/documents", get(documents))
        .route(
            "/v1/collections/{name}/documents/{id}",
            get(document).put(put_document).delete(delete_document),
        )
        .route("/v1/search", post(search))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/connectors", get(connectors))
        .route("/openapi.json", get(openapi))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state((slot, default_limit))
}

type Ctx = State<(Slot, usize)>;

async fn collections(State((slot, _)): Ctx) -> Result<Json<Vec<CollectionInfo>>, ApiError> {
    Ok(Json(rag(&slot)?.collections().await?))
}

async fn create_collection(
    State((slot, _)): Ctx,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Collection>), ApiError> {
    let c: Collection = json_body(body)?;
    rag(&slot)?.create_collection(c.clone()).await?;
    Ok((StatusCode::CREATED, Json(c)))
}

async fn collection(
    State((slot, _)): Ctx,
    Path(name): Path<String>,
) -> Result<Json<CollectionInfo>, ApiError> {
    rag(&slot)?
        .collections()
        .await?
        .into_iter()
        .find(|c| c.collection.name == name)
        .map(Json)
        .ok_or_else(|| RagError::Store(StoreError::UnknownCollection(name)).into())
}

async fn delete_collection(
    State((slot, _)): Ctx,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    rag(&slot)?.delete_collection(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn documents(
    State((slot, _)): Ctx,
    Path(name): Path<String>,
) -> Result<Json<Vec<Document>>, ApiError> {
    Ok(Json(rag(&slot)?.documents(&name).await?))
}

async fn document(
    State((slot, _)): Ctx,
    Path((name, id)): Path<(String, String)>,
) -> Result<Json<Document>, ApiError> {
    Ok(Json(rag(&slot)?.document(&name, &id).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PutDocument {
    text: String,
    format: Option<Format>,
    source: Option<String>,
    title: Option<String>,
}

/// What a document sent as the body itself says in the query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PutFile {
    source: Option<String>,
    title: Option<String>,
}

/// JSON (the default, also without a `Content-Type`), or the document itself
/// in a format its `Content-Type` names (`application/octet-stream`: the one
/// its source's or id's extension names).
async fn put_document(
    State((slot, _)): Ctx,
    Path((name, id)): Path<(String, String)>,
    headers: HeaderMap,
    query: Result<UrlQuery<PutFile>, QueryRejection>,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Json<Document>, ApiError> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("?").to_ascii_lowercase());
    let media = media
        .as_deref()
        .map(|m| m.split(';').next().unwrap_or_default().trim());
    let new = match media {
        None | Some("application/json") => {
            let request: PutDocument = json_body(body)?;
            NewDocument {
                text: request.text,
                format: request.format,
                source: request.source,
                title: request.title,
                ..NewDocument::default()
            }
        }
        Some(media) => {
            let UrlQuery(file) = query.map_err(|e| {
                ApiError::bad_request(
                    "invalid_request",
                    format!("invalid query: {}", e.body_text()),
                )
            })?;
            let named = file.source.as_deref().unwrap_or(&id);
            let format = if media == "application/octet-stream" {
                Format::guess(named)
            } else {
                Format::guess(media)
            }
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    format!(
                        "{media} is not a document format: send application/json, \
                         application/pdf, text/markdown, text/html or text/plain"
                    ),
                )
            })?;
            let body = body_bytes(body)?;
            NewDocument {
                bytes: Some(body.to_vec()),
                format: Some(format),
                source: file.source,
                title: file.title,
                ..NewDocument::default()
            }
        }
    };
    Ok(Json(rag(&slot)?.put_document(&name, &id, new).await?))
}

async fn delete_document(
    State((slot, _)): Ctx,
    Path((name, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    rag(&slot)?.delete_document(&name, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchRequest {
    query: String,
    collections: Option<Vec<String>>,
    /// Who is asking: `guest` (the default: least privilege) or `owner`.
    access: Option<Access>,
    limit: Option<usize>,
    threshold: Option<f32>,
}

async fn search(
    State((slot, default_limit)): Ctx,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let r: SearchRequest = json_body(body)?;
    let hits: Vec<Hit> = rag(&slot)?
        .search(Query {
            text: r.query,
            collections: r.collections,
            reader: r.access.unwrap_or(Access::Guest),
            limit: r.limit.unwrap_or(default_limit),
            threshold: r.threshold.unwrap_or(-1.0),
        })
        .await?;
    Ok(Json(json!({ "results": hits })))
}

async fn connectors(State((slot, _)): Ctx) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({ "connectors": rag(&slot)?.connectors().reports() }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Input {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
struct EmbeddingsRequest {
    input: Input,
    model: Option<String>,
    encoding_format: Option<String>,
}

async fn embeddings(
    State((slot, _)): Ctx,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let r: EmbeddingsRequest = json_body(body)?;
    if r.encoding_format.as_deref().is_some_and(|f| f != "float") {
        return Err(ApiError::bad_request(
            "unsupported_encoding",
            "encoding_format is float",
        ));
    }
    let inputs = match r.input {
        Input::One(s) => vec![s],
        Input::Many(v) => v,
    };
    if inputs.is_empty() || inputs.len() > 2048 {
        return Err(ApiError::bad_request(
            "invalid_input",
            "input is a string or 1 to 2048 strings",
        ));
    }
    let rag = rag(&slot)?;
    let tokens: usize = inputs
        .iter()
        .map(|t| rag.embedder().count_tokens(t).unwrap_or(0))
        .sum();
    let vectors = rag.embed(inputs).await?;
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(index, embedding)| json!({"object": "embedding", "index": index, "embedding": embedding}))
        .collect();
    Ok(Json(json!({
        "object": "list",
        "data": data,
        "model": r.model.unwrap_or_default(),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })))
}

/// The OpenAPI document, from `openapi.yaml` (parsed once; a test checks it
/// parses and covers every route).
pub fn openapi_document() -> &'static Value {
    static DOC: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        serde_yaml_ng::from_str(include_str!("../openapi.yaml"))
            .unwrap_or_else(|e| json!({ "error": format!("openapi.yaml: {e}") }))
    })
}

async fn openapi() -> Json<Value> {
    Json(openapi_document().clone())
}
