//! The HTTP side every service shares: `/healthz`, `/readyz` and `/metrics`
//! beside the service's own API, request metrics, graceful shutdown, and
//! [`ApiError`], the one place where an error becomes a response.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::telemetry;

/// One readiness check: a name, whether it passes, and why not.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// True when this part is ready.
    pub ready: bool,
    /// What it is doing or what is wrong.
    pub detail: String,
}

/// Named readiness checks; the service is ready when every check passes.
///
/// A service registers its checks as not ready while it starts (loading a
/// model, binding a port) and marks them ready when done. A drain marks the
/// service not ready, so that load balancers stop sending it work.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    checks: Arc<Mutex<BTreeMap<String, Check>>>,
}

impl Readiness {
    /// Sets one check.
    pub fn set(&self, name: &str, ready: bool, detail: impl Into<String>) {
        let check = Check {
            ready,
            detail: detail.into(),
        };
        self.lock().insert(name.to_owned(), check);
    }

    /// True when every check passes.
    pub fn is_ready(&self) -> bool {
        self.lock().values().all(|c| c.ready)
    }

    /// Every check, by name.
    pub fn checks(&self) -> BTreeMap<String, Check> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Check>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.checks.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Clone)]
struct Ops {
    service: &'static str,
    readiness: Readiness,
}

/// The operational endpoints of `service`.
pub fn ops_router(service: &'static str, readiness: Readiness) -> Router {
    let ops = Ops { service, readiness };
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(ops)
}

async fn healthz(State(ops): State<Ops>) -> Response {
    axum::Json(json!({ "status": "ok", "service": ops.service })).into_response()
}

async fn readyz(State(ops): State<Ops>) -> Response {
    let ready = ops.readiness.is_ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "ready": ready,
        "service": ops.service,
        "checks": ops.readiness.checks(),
    });
    (status, axum::Json(body)).into_response()
}

async fn metrics_text() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        telemetry::metrics().render(),
    )
        .into_response()
}

/// Counts requests and measures their latency by route and status.
async fn record_metrics(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let start = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "route" => route)
        .record(start.elapsed().as_secs_f64());
    response
}

/// Serves `api` plus the ops endpoints on `addr` until `shutdown`, then lets
/// open requests finish.
pub async fn serve(
    service: &'static str,
    addr: SocketAddr,
    api: Router,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("{service}: cannot listen for HTTP on {addr}: {e}"))?;
    info!(%addr, "HTTP listening");
    serve_on(listener, service, api, readiness, shutdown).await
}

/// Like [`serve`], on a listener already bound (tests bind port 0).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    service: &'static str,
    api: Router,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let app = api
        .merge(ops_router(service, readiness))
        .layer(middleware::from_fn(record_metrics));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await?;
    Ok(())
}

/// An error as an API client sees it: a status, a stable code and a message.
/// The body has the OpenAI shape, `{"error": {"message", "type", "code"}}`,
/// which every client Athena talks to understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable, machine-readable code (`unknown_voice`, `busy`, ...).
    pub code: &'static str,
    /// For people; never contains secrets or internals.
    pub message: String,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400: the request is wrong.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404: the named thing does not exist.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 503: try again later.
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }

    /// 500: logs the cause here, once, and tells the client nothing internal.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error; see the service log",
        )
    }
}

/// The request body, or why it could not be read (its size beyond the
/// limit: 413 `invalid_body`).
pub fn body_bytes(
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<axum::body::Bytes, ApiError> {
    body.map_err(|e| {
        ApiError::new(
            e.status(),
            "invalid_body",
            format!("cannot read the request body: {}", e.body_text()),
        )
    })
}

/// A JSON request body, or the error that says what is wrong with it: too
/// large (413, from the route's `DefaultBodyLimit`), unreadable, or not the
/// JSON the route expects (400 `invalid_json`).
pub fn json_body<T: serde::de::DeserializeOwned>(
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<T, ApiError> {
    let body = body_bytes(body)?;
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("invalid request body: {e}")))
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let kind = if self.status.is_server_error() {
            "server_error"
        } else {
            "invalid_request_error"
        };
        let body = json!({
            "error": { "message": self.message, "type": kind, "code": self.code }
        });
        (self.status, axum::Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    async fn fetch(router: Router, path: &str) -> (StatusCode, serde_json::Value) {
        let response = router
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    #[tokio::test]
    async fn readiness_follows_checks() {
        let readiness = Readiness::default();
        readiness.set("model", false, "loading");
        let (status, body) = fetch(ops_router("test", readiness.clone()), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["checks"]["model"]["detail"], "loading");

        readiness.set("model", true, "loaded");
        let (status, _) = fetch(ops_router("test", readiness.clone()), "/readyz").await;
        assert_eq!(status, StatusCode::OK);

        let (status, body) = fetch(ops_router("test", readiness), "/healthz").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["service"], "test");
    }

    #[tokio::test]
    async fn api_errors_have_the_openai_shape() {
        let router = Router::new().route(
            "/fail",
            get(|| async { ApiError::not_found("unknown_voice", "no voice named x") }),
        );
        let (status, body) = fetch(router, "/fail").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["code"], "unknown_voice");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["message"], "no voice named x");
    }
}

/// The config section of a service whose only listener is HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// HTTP API and ops endpoints.
    pub http: SocketAddr,
}

impl HttpConfig {
    /// Listening on every interface at `port`.
    pub fn on_port(port: u16) -> Self {
        Self {
            http: SocketAddr::from(([0, 0, 0, 0], port)),
        }
    }
}

impl crate::config::Validate for HttpConfig {}

/// A service whose only listener is its HTTP API (plus the ops endpoints).
///
/// `pending` names the parts that are not available yet; each is reported
/// as a failing readiness check, so the service never claims more than it can do.
#[derive(Debug)]
pub struct HttpService {
    name: &'static str,
    addr: SocketAddr,
    api: Router,
    pending: Vec<(&'static str, String)>,
}

impl HttpService {
    /// A service serving `api` on `addr`.
    pub fn new(name: &'static str, addr: SocketAddr, api: Router) -> Self {
        Self {
            name,
            addr,
            api,
            pending: Vec::new(),
        }
    }

    /// Reports `check` as not ready with `detail` for as long as the service runs.
    pub fn not_ready(mut self, check: &'static str, detail: impl Into<String>) -> Self {
        self.pending.push((check, detail.into()));
        self
    }
}

impl crate::service::Service for HttpService {
    fn name(&self) -> &'static str {
        self.name
    }

    fn run(self: Box<Self>, ctx: crate::service::ServiceContext) -> crate::service::ServiceFuture {
        Box::pin(async move {
            for (check, detail) in &self.pending {
                ctx.readiness.set(check, false, detail.clone());
            }
            serve(self.name, self.addr, self.api, ctx.readiness, ctx.shutdown).await
        })
    }
}
