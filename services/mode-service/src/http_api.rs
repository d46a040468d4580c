//! The HTTP API, and the one place where a mode-service error becomes a
//! response.
//!
//! - `GET    /v1/mode?at=RFC3339`: the mode now (or then), and why.
//! - `PUT    /v1/mode/override` `{mode, until | minutes}`: a manual mode.
//! - `DELETE /v1/mode/override`: back to the calendar.
//! - `POST   /v1/policy/check` `{mode?, intent?, domain?, entity_id?,
//!   service?, data?, collection?}`: allowed or not, by which rule.
//! - `GET    /v1/policy`: the policy in force and where it came from.
//! - `GET    /v1/calendars`, `POST /v1/calendars/refresh`: calendar status;
//!   fetch now.
//! - `GET    /v1/bookings?days=N`: the stays ahead.

use std::sync::Arc;

use athena_runtime::http::{ApiError, json_body};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::house::{
    CalendarStatus, CheckReport, House, HouseError, MAX_OVERRIDE, ModeReport, PolicyReport,
};
use crate::policy::Action;
use crate::schedule::{Booking, Mode};

impl From<HouseError> for ApiError {
    fn from(e: HouseError) -> Self {
        let message = e.to_string();
        match e {
            HouseError::State(_) | HouseError::NotLoaded(_) => {
                ApiError::unavailable("state_unavailable", message)
            }
            HouseError::InvalidOverride(_) => ApiError::bad_request("invalid_override", message),
        }
    }
}

/// The routes, over `house`.
pub fn router(house: Arc<House>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/v1/mode", get(mode))
        .route(
            "/v1/mode/override",
            put(set_override).delete(clear_override),
        )
        .route("/v1/policy", get(policy))
        .route("/v1/policy/check", post(check))
        .route("/v1/calendars", get(calendars))
        .route("/v1/calendars/refresh", post(refresh))
        .route("/v1/bookings", get(bookings))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(house)
}

fn instant(s: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_time",
                format!("{s:?} is not an RFC 3339 time (2026-12-01T15:00:00Z)"),
            )
        })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AtQuery {
    at: Option<String>,
}

async fn mode(
    State(house): State<Arc<House>>,
    Query(q): Query<AtQuery>,
) -> Result<Json<ModeReport>, ApiError> {
    let at = q.at.as_deref().map(instant).transpose()?;
    Ok(Json(house.mode(at)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideRequest {
    mode: Mode,
    until: Option<String>,
    minutes: Option<u64>,
}

async fn set_override(
    State(house): State<Arc<House>>,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Json<ModeReport>, ApiError> {
    let request: OverrideRequest = json_body(body)?;
    let until = match (request.until.as_deref(), request.minutes) {
        (Some(u), None) => instant(u)?,
        (None, Some(m)) if m > 0 && m <= MAX_OVERRIDE.num_minutes().unsigned_abs() => {
            house.now() + chrono::Duration::minutes(m.cast_signed())
        }
        _ => {
            return Err(ApiError::bad_request(
                "invalid_override",
                "give either until (RFC 3339) or minutes (1 to 527040)",
            ));
        }
    };
    Ok(Json(house.set_override(request.mode, until).await?))
}

async fn clear_override(State(house): State<Arc<House>>) -> Result<Json<ModeReport>, ApiError> {
    Ok(Json(house.clear_override().await?))
}

async fn policy(State(house): State<Arc<House>>) -> Json<PolicyReport> {
    Json(house.policy())
}

async fn check(
    State(house): State<Arc<House>>,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<Json<CheckReport>, ApiError> {
    let mut fields: serde_json::Map<String, Value> = json_body(body)?;
    let mode = fields
        .remove("mode")
        .filter(|m| !m.is_null())
        .map(serde_json::from_value::<Mode>)
        .transpose()
        .map_err(|_| ApiError::bad_request("invalid_mode", "mode is owner or guest"))?;
    let action: Action = serde_json::from_value(Value::Object(fields))
        .map_err(|e| ApiError::bad_request("invalid_json", format!("invalid action: {e}")))?;
    let nothing = action.intent.is_none()
        && action.domain.is_none()
        && action.entity_id.is_none()
        && action.collection.is_none();
    if nothing {
        return Err(ApiError::bad_request(
            "empty_action",
            "name at least an intent, domain, entity_id or collection",
        ));
    }
    Ok(Json(house.check(mode, &action)?))
}

async fn calendars(State(house): State<Arc<House>>) -> Json<Vec<CalendarStatus>> {
    Json(house.calendars())
}

async fn refresh(State(house): State<Arc<House>>) -> Json<Vec<CalendarStatus>> {
    Json(house.refresh().await)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BookingsQuery {
    days: Option<u32>,
}

#[derive(Debug, Serialize)]
struct Bookings {
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    bookings: Vec<Booking>,
}

async fn bookings(
    State(house): State<Arc<House>>,
    Query(q): Query<BookingsQuery>,
) -> Result<Json<Bookings>, ApiError> {
    let days = q.days.unwrap_or(30);
    if days == 0 || days > 366 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_days",
            "days is 1 to 366",
        ));
    }
    let from = house.now();
    let until = from + chrono::Duration::days(i64::from(days));
    Ok(Json(Bookings {
        from,
        until,
        bookings: house.bookings(from, until),
    }))
}
