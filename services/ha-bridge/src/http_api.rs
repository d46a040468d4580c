//! The bridge's HTTP API for the orchestrator, and the one place where a
//! bridge error becomes a response.
//!
//! - `GET  /v1/status`: the link to Home Assistant.
//! - `GET  /v1/entities?q=&domain=&area=`: search.
//! - `GET  /v1/entities/{entity_id}`: one entity's state.
//! - `POST /v1/resolve` `{name, domain?, area?}`: a spoken name → entities.
//! - `POST /v1/services/{domain}/{service}` `{entity_id?, data?}`: a call,
//!   with the resulting states.
//! - `POST /v1/conversation` `{text, language?, conversation_id?}`: Home
//!   Assistant's own agent, as a fallback.

use std::sync::Arc;

use athena_runtime::http::{ApiError, json_body};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::bridge::{Bridge, BridgeError, CallResult, Status};
use crate::client::HaError;
use crate::home::{Entity, Match};

impl From<BridgeError> for ApiError {
    fn from(e: BridgeError) -> Self {
        let message = e.to_string();
        let (status, code) = match e {
            BridgeError::NotAllowed(_) => (StatusCode::FORBIDDEN, "not_allowed"),
            BridgeError::Ha(e) => match e {
                HaError::Unreachable(_) => (StatusCode::SERVICE_UNAVAILABLE, "ha_unreachable"),
                HaError::Unauthorized => (StatusCode::BAD_GATEWAY, "ha_auth_failed"),
                HaError::NoToken => (StatusCode::SERVICE_UNAVAILABLE, "ha_no_token"),
                HaError::UnknownEntity(_) => (StatusCode::NOT_FOUND, "unknown_entity"),
                HaError::UnknownService(_) => (StatusCode::NOT_FOUND, "unknown_service"),
                HaError::Rejected(_) => (StatusCode::BAD_REQUEST, "ha_rejected"),
                HaError::Failed(_) => (StatusCode::BAD_GATEWAY, "ha_call_failed"),
                HaError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "ha_timeout"),
                HaError::Protocol(_) => (StatusCode::BAD_GATEWAY, "ha_protocol"),
            },
        };
        ApiError::new(status, code, message)
    }
}

/// The routes, over `bridge`.
pub fn router(bridge: Arc<Bridge>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/entities", get(search))
        .route("/v1/entities/{entity_id}", get(entity))
        .route("/v1/resolve", post(resolve))
        .route("/v1/services/{domain}/{service}", post(call))
        .route("/v1/conversation", post(converse))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(bridge)
}

async fn status(State(bridge): State<Arc<Bridge>>) -> Json<Status> {
    Json(bridge.status())
}

async fn search(
    State(bridge): State<Arc<Bridge>>,
    Query(query): Query<crate::home::Query>,
) -> Result<Json<Vec<Entity>>, ApiError> {
    Ok(Json(bridge.search(&query)?))
}

async fn entity(
    State(bridge): State<Arc<Bridge>>,
    Path(entity_id): Path<String>,
) -> Result<Json<Entity>, ApiError> {
    Ok(Json(bridge.entity(&entity_id)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResolveRequest {
    name: String,
    domain: Option<String>,
    area: Option<String>,
}

async fn resolve(
    State(bridge): State<Arc<Bridge>>,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Json<Vec<Match>>, ApiError> {
    let request: ResolveRequest = json_body(body)?;
    if request.name.trim().is_empty() {
        return Err(ApiError::bad_request("empty_name", "name is empty"));
    }
    Ok(Json(bridge.resolve(
        &request.name,
        request.domain.as_deref(),
        request.area.as_deref(),
    )?))
}

/// One entity id or several.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Targets {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallRequest {
    entity_id: Option<Targets>,
    #[serde(default)]
    data: serde_json::Map<String, Value>,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

async fn call(
    State(bridge): State<Arc<Bridge>>,
    Path((domain, service)): Path<(String, String)>,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Json<CallResult>, ApiError> {
    if !valid_name(&domain) || !valid_name(&service) {
        return Err(ApiError::bad_request(
            "invalid_service",
            format!("{domain}.{service} is not a service name"),
        ));
    }
    let request: CallRequest = json_body(body)?;
    let targets = match request.entity_id {
        None => Vec::new(),
        Some(Targets::One(id)) => vec![id],
        Some(Targets::Many(ids)) => ids,
    };
    if request.data.contains_key("entity_id") {
        return Err(ApiError::bad_request(
            "invalid_request",
            "give entity_id beside data, not in it",
        ));
    }
    for id in &targets {
        let valid = id
            .split_once('.')
            .is_some_and(|(d, o)| valid_name(d) && valid_name(o));
        if !valid {
            return Err(ApiError::bad_request(
                "invalid_entity_id",
                format!("{id:?} is not an entity id"),
            ));
        }
    }
    Ok(Json(
        bridge
            .call(&domain, &service, &targets, request.data)
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConversationRequest {
    text: String,
    language: Option<String>,
    conversation_id: Option<String>,
}

async fn converse(
    State(bridge): State<Arc<Bridge>>,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let request: ConversationRequest = json_body(body)?;
    if request.text.trim().is_empty() {
        return Err(ApiError::bad_request("empty_text", "text is empty"));
    }
    let mut body = json!({ "text": request.text });
    if let Some(l) = request.language {
        body["language"] = json!(l);
    }
    if let Some(c) = request.conversation_id {
        body["conversation_id"] = json!(c);
    }
    Ok(Json(bridge.converse(&body).await?))
}
