//! The orchestrator's HTTP API (port 8700, beside `/healthz`, `/readyz`,
//! `/metrics`):
//!
//! - `GET /v1/satellites`: the satellites connected now;
//! - `POST /v1/announce` `{"satellite", "text"}`: speak a text on a
//!   satellite (202 once started; the satellite hears it within moments);
//! - `POST /v1/satellites/{name}/pause` and `/resume`: mute a satellite
//!   (`pause-satellite`) and let it stream again (`run-satellite`).
//!
//! Errors are `athena_runtime::ApiError`s, mapped from [`SatelliteError`]
//! in one place.

use std::sync::Arc;

use athena_runtime::http::{ApiError, json_body};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use wyoming::event::{PauseSatellite, RunSatellite};

use crate::satellite::{Control, SatelliteError, Satellites};

/// The longest announcement, in characters.
const MAX_ANNOUNCEMENT: usize = 2000;

/// The routes, over the registry of connected satellites.
pub fn router(satellites: Arc<Satellites>) -> Router {
    Router::new()
        .route("/v1/satellites", get(list))
        .route("/v1/announce", post(announce))
        .route("/v1/satellites/{name}/pause", post(pause))
        .route("/v1/satellites/{name}/resume", post(resume))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(satellites)
}

impl From<SatelliteError> for ApiError {
    fn from(e: SatelliteError) -> Self {
        match e {
            SatelliteError::Unknown(_) => ApiError::not_found("unknown_satellite", e.to_string()),
            SatelliteError::Busy(_) => ApiError::unavailable("satellite_busy", e.to_string()),
        }
    }
}

#[derive(Debug, Serialize)]
struct SatelliteList {
    satellites: Vec<String>,
}

async fn list(State(satellites): State<Arc<Satellites>>) -> Json<SatelliteList> {
    Json(SatelliteList {
        satellites: satellites.names(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Announcement {
    satellite: String,
    text: String,
}

#[derive(Debug, Serialize)]
struct Accepted {
    satellite: String,
}

async fn announce(
    State(satellites): State<Arc<Satellites>>,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let request: Announcement = json_body(body)?;
    let text = request.text.trim();
    if text.is_empty() {
        return Err(ApiError::bad_request(
            "empty_text",
            "there is nothing to say",
        ));
    }
    if text.chars().count() > MAX_ANNOUNCEMENT {
        return Err(ApiError::bad_request(
            "text_too_long",
            format!("an announcement is at most {MAX_ANNOUNCEMENT} characters"),
        ));
    }
    satellites.control(&request.satellite, Control::Announce(text.to_owned()))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            satellite: request.satellite,
        }),
    ))
}

async fn pause(
    State(satellites): State<Arc<Satellites>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    satellites.control(
        &name,
        Control::Send(Box::new(PauseSatellite::default().into())),
    )?;
    Ok(StatusCode::NO_CONTENT)
}

async fn resume(
    State(satellites): State<Arc<Satellites>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    satellites.control(
        &name,
        Control::Send(Box::new(RunSatellite::default().into())),
    )?;
    Ok(StatusCode::NO_CONTENT)
}
