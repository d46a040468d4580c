//! The mode service as a whole, over HTTP: calendars served by a local
//! HTTP server, a clock the test sets, the state in files or in a real
//! Redis, and restarts in the middle.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use athena_mode_service::config::CalendarSource;
use athena_mode_service::{Config, ManualClock};
use athena_runtime::http::Readiness;
use athena_store::StoreConfig;
use athena_store::testing::RedisServer;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// What the calendar server answers.
#[derive(Clone)]
enum Answer {
    Calendar(String),
    Status(u16),
    Hang,
}

/// A booking site's calendar export, on a local port.
struct CalendarServer {
    url: String,
    answer: Arc<Mutex<Answer>>,
}

impl CalendarServer {
    async fn start(answer: Answer) -> Self {
        let answer = Arc::new(Mutex::new(answer));
        let shared = answer.clone();
        let app = axum::Router::new().route(
            "/calendar/ical/42.ics",
            axum::routing::get(move || {
                let answer = shared.lock().unwrap().clone();
                async move {
                    match answer {
                        Answer::Calendar(text) => {
                            ([("content-type", "text/calendar")], text).into_response()
                        }
                        Answer::Status(s) => StatusCode::from_u16(s).unwrap().into_response(),
                        Answer::Hang => {
                            tokio::time::sleep(Duration::from_secs(60)).await;
                            Response::default()
                        }
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/calendar/ical/42.ics?s=secret-token",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, answer }
    }

    fn answer(&self, a: Answer) {
        *self.answer.lock().unwrap() = a;
    }
}

/// A calendar with one stay, 1–5 December 2026, and optionally cancelled.
fn stay(cancelled: bool) -> String {
    let status = if cancelled {
        "STATUS:CANCELLED\r\n"
    } else {
        ""
    };
    format!(
        "BEGIN:VCALENDAR\r\nPRODID:-//Test//Bookings//EN\r\nVERSION:2.0\r\n\
         BEGIN:VEVENT\r\nUID:stay-1@test\r\nSUMMARY:Reserved\r\n\
         DTSTART;VALUE=DATE:20261201\r\nDTEND;VALUE=DATE:20261205\r\n{status}END:VEVENT\r\n\
         END:VCALENDAR\r\n"
    )
}

/// The service running in this process, on its own port.
struct Running {
    base: String,
    http: reqwest::Client,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn start(config: &Config, clock: Arc<ManualClock>, wait_ready: bool) -> Self {
        // The listener is bound here, so no other socket can take its port
        // between choosing and binding it.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let config = config.clone();
        let shutdown = CancellationToken::new();
        let readiness = Readiness::default();
        let house = athena_mode_service::House::new(&config, clock).unwrap();
        let api = athena_mode_service::http_api::router(house.clone(), config.max_body_bytes);
        let serve = athena_runtime::http::serve_on(
            listener,
            athena_mode_service::NAME,
            api,
            readiness.clone(),
            shutdown.clone(),
        );
        let background =
            athena_mode_service::keep_current(house, config, readiness, shutdown.clone());
        let task = tokio::spawn(async move {
            let (a, b) = tokio::join!(serve, background);
            a.and(b)
        });
        let running = Self {
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            shutdown,
            task,
        };
        for _ in 0..800 {
            if let Ok(r) = running.http.get(running.url("/readyz")).send().await
                && (!wait_ready || r.status().is_success())
            {
                return running;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        if running.task.is_finished() {
            let ended = running.task.await;
            panic!("mode-service ended: {ended:?}");
        }
        let ready = running.get("/readyz").await;
        panic!("mode-service did not become ready: {ready:?}");
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .request(method, self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
}

fn config(calendar_url: &str, store: StoreConfig) -> Config {
    Config {
        calendars: vec![CalendarSource {
            name: "airbnb".into(),
            url: calendar_url.into(),
        }],
        poll_interval_secs: 3600,
        fetch_timeout_secs: 1,
        time_zone: "Europe/Amsterdam".into(),
        policy_check_secs: 0.05,
        store,
        ..Config::default()
    }
}

#[tokio::test]
async fn the_mode_follows_the_calendar_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let site = CalendarServer::start(Answer::Calendar(stay(false))).await;
    let clock = Arc::new(ManualClock::new(at("2026-12-01T12:00:00Z")));
    let config = config(
        &site.url,
        StoreConfig {
            redis_url: None,
            dir: Some(dir.path().to_owned()),
        },
    );
    let service = Running::start(&config, clock.clone(), true).await;

    // Before check-in (15:00 Amsterdam = 14:00 UTC): owner, and the next stay.
    let (status, mode) = service.get("/v1/mode").await;
    assert_eq!(status, StatusCode::OK, "{mode}");
    assert_eq!(mode["mode"], "owner");
    assert_eq!(mode["reason"]["kind"], "no_booking");
    assert_eq!(mode["reason"]["next_booking"], "2026-12-01T14:00:00Z");
    clock.set(at("2026-12-01T14:30:00Z"));
    let (_, mode) = service.get("/v1/mode").await;
    assert_eq!(mode["mode"], "guest");
    assert_eq!(mode["reason"]["uid"], "stay-1@test");
    assert_eq!(mode["reason"]["until"], "2026-12-05T10:00:00Z");
    // A question about another time.
    let (_, later) = service.get("/v1/mode?at=2026-12-05T10:00:00Z").await;
    assert_eq!(later["mode"], "owner");
    let (_, ahead) = service.get("/v1/bookings?days=10").await;
    assert_eq!(ahead["bookings"].as_array().unwrap().len(), 1);

    // The stay is cancelled on the site: owner mode after the next poll.
    site.answer(Answer::Calendar(stay(true)));
    let (_, calendars) = service
        .send(reqwest::Method::POST, "/v1/calendars/refresh", json!({}))
        .await;
    assert_eq!(calendars[0]["error"], Value::Null);
    assert!(
        !calendars[0]["url"].as_str().unwrap().contains("secret"),
        "the URL's secret is never shown: {calendars}"
    );
    assert_eq!(service.get("/v1/mode").await.1["mode"], "owner");

    // Rebooked; then the site breaks in every way: each failure is
    // reported and the last good calendar stays in use.
    site.answer(Answer::Calendar(stay(false)));
    service
        .send(reqwest::Method::POST, "/v1/calendars/refresh", json!({}))
        .await;
    assert_eq!(service.get("/v1/mode").await.1["mode"], "guest");
    let failures = [
        (
            Answer::Calendar("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:garbage\r\n".into()),
            "line",
        ),
        (
            Answer::Calendar("<html>login</html>".into()),
            "not an iCalendar",
        ),
        (Answer::Status(500), "HTTP 500"),
        (Answer::Hang, "no answer in 1 s"),
    ];
    for (answer, expected) in failures {
        site.answer(answer);
        let (_, calendars) = service
            .send(reqwest::Method::POST, "/v1/calendars/refresh", json!({}))
            .await;
        let error = calendars[0]["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            error.contains(expected),
            "{error:?} should say {expected:?}"
        );
        assert!(!error.contains("secret"), "{error}");
        assert_eq!(calendars[0]["events"], 1, "last good copy kept");
        assert_eq!(service.get("/v1/mode").await.1["mode"], "guest");
    }

    // An owner override until the 3rd, then a restart while the site is down.
    let (status, set) = service
        .send(
            reqwest::Method::PUT,
            "/v1/mode/override",
            json!({"mode": "owner", "until": "2026-12-03T09:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!(set["mode"], "owner");
    assert_eq!(set["reason"]["kind"], "override");
    service.stop().await;

    site.answer(Answer::Status(503));
    let service = Running::start(&config, clock.clone(), true).await;
    let (_, mode) = service.get("/v1/mode").await;
    assert_eq!(mode["mode"], "owner", "the override survived: {mode}");
    assert_eq!(mode["override"]["until"], "2026-12-03T09:00:00Z");
    // The override expires; the saved calendar (the site is still down)
    // puts the house back in guest mode.
    clock.set(at("2026-12-03T09:00:00Z"));
    let (_, mode) = service.get("/v1/mode").await;
    assert_eq!(mode["mode"], "guest", "{mode}");
    let (_, calendars) = service.get("/v1/calendars").await;
    assert_eq!(calendars[0]["events"], 1);
    assert!(calendars[0]["error"].as_str().unwrap().contains("HTTP 503"));

    // Overrides: set for minutes, cleared; nonsense refused.
    let (status, _) = service
        .send(
            reqwest::Method::PUT,
            "/v1/mode/override",
            json!({"mode": "owner", "minutes": 90}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, mode) = service.get("/v1/mode").await;
    assert_eq!(mode["override"]["until"], "2026-12-03T10:30:00Z");
    let (status, mode) = service
        .send(reqwest::Method::DELETE, "/v1/mode/override", Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mode["mode"], "guest");
    for (body, code) in [
        (
            json!({"mode": "owner", "until": "2026-12-01T00:00:00Z"}),
            "invalid_override",
        ),
        (json!({"mode": "owner"}), "invalid_override"),
        (
            json!({"mode": "owner", "until": "tomorrow"}),
            "invalid_time",
        ),
        (json!({"mode": "landlord", "minutes": 5}), "invalid_json"),
    ] {
        let (status, err) = service
            .send(reqwest::Method::PUT, "/v1/mode/override", body.clone())
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {err}");
        assert_eq!(err["error"]["code"], code, "{body}: {err}");
    }
    let (status, err) = service.get("/v1/mode?at=yesterday").await;
    assert_eq!(
        (status, err["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_time"))
    );
    service.stop().await;
}

#[tokio::test]
async fn policy_checks_follow_the_mode_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let policy_file = dir.path().join("policy.yaml");
    std::fs::write(&policy_file, athena_mode_service::policy::DEFAULT_YAML).unwrap();
    let calendar_file = dir.path().join("bookings.ics");
    std::fs::write(&calendar_file, stay(false)).unwrap();
    let clock = Arc::new(ManualClock::new(at("2026-12-02T12:00:00Z")));
    let mut config = config(
        calendar_file.to_str().unwrap(),
        StoreConfig {
            redis_url: None,
            dir: Some(dir.path().join("state")),
        },
    );
    config.policy_file = Some(policy_file.clone());
    let service = Running::start(&config, clock.clone(), true).await;
    let check = |body: Value| {
        let service = &service;
        async move {
            service
                .send(reqwest::Method::POST, "/v1/policy/check", body)
                .await
        }
    };

    // A guest is in (from the calendar file): the current mode decides.
    let (status, d) = check(json!({"intent": "HassTurnOn", "entity_id": "lock.front_door"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (d["mode"].clone(), d["allowed"].clone(), d["rule"].clone()),
        (json!("guest"), json!(false), json!("guest.domains.deny"))
    );
    let (_, d) = check(json!({"intent": "HassClimateSetTemperature",
        "entity_id": "climate.living_room", "data": {"temperature": 26}}))
    .await;
    assert_eq!(d["rule"], "guest.limits.climate.temperature");
    let (_, d) = check(json!({"intent": "HassTurnOn", "entity_id": "light.kitchen"})).await;
    assert_eq!(d["allowed"], true);
    let (_, d) = check(json!({"mode": "owner", "entity_id": "lock.front_door"})).await;
    assert_eq!(
        (d["mode"].clone(), d["allowed"].clone()),
        (json!("owner"), json!(true))
    );

    // The owner lets guests use the front door lock: reloaded on change.
    let edited = athena_mode_service::policy::DEFAULT_YAML.replace(
        "  entities: { allow: [], deny: [] }\n  limits:\n    climate",
        "  entities: { allow: [lock.front_door], deny: [] }\n  limits:\n    climate",
    );
    assert_ne!(edited, athena_mode_service::policy::DEFAULT_YAML);
    std::fs::write(&policy_file, &edited).unwrap();
    let mut allowed = false;
    for _ in 0..100 {
        let (_, d) = check(json!({"entity_id": "lock.front_door"})).await;
        if d["allowed"] == true {
            allowed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(allowed, "the edited policy was not picked up");

    // A broken edit is refused and reported; the last good policy stays.
    std::fs::write(&policy_file, "guest: [not, a, policy").unwrap();
    let mut report = Value::Null;
    for _ in 0..100 {
        report = service.get("/v1/policy").await.1;
        if report["error"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        report["error"].as_str().unwrap().contains("policy"),
        "{report}"
    );
    let (_, d) = check(json!({"entity_id": "lock.front_door"})).await;
    assert_eq!(d["allowed"], true, "previous policy kept");

    // Bad checks.
    for (body, code) in [
        (json!({}), "empty_action"),
        (json!({"mode": "landlord", "intent": "x"}), "invalid_mode"),
        (json!({"intent": "x", "colour": "red"}), "invalid_json"),
    ] {
        let (status, err) = check(body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(err["error"]["code"], code, "{body}: {err}");
    }
    let (status, _) = service
        .send(
            reqwest::Method::POST,
            "/v1/policy/check",
            json!({"intent": "x".repeat(100_000)}),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    service.stop().await;
}

#[tokio::test]
async fn overrides_live_in_redis() {
    let dir = tempfile::tempdir().unwrap();
    let mut redis = RedisServer::start(dir.path().join("redis"));
    let site = CalendarServer::start(Answer::Calendar(stay(false))).await;
    let clock = Arc::new(ManualClock::new(at("2026-12-02T12:00:00Z")));
    let config = config(
        &site.url,
        StoreConfig {
            redis_url: Some(redis.url()),
            dir: None,
        },
    );
    let service = Running::start(&config, clock.clone(), true).await;
    let (status, _) = service
        .send(
            reqwest::Method::PUT,
            "/v1/mode/override",
            json!({"mode": "owner", "until": "2026-12-04T00:00:00Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    service.stop().await;

    // A second instance (a restart, or another replica) sees it.
    let service = Running::start(&config, clock.clone(), true).await;
    let (_, mode) = service.get("/v1/mode").await;
    assert_eq!(mode["mode"], "owner", "{mode}");
    assert_eq!(mode["reason"]["kind"], "override");

    // Redis goes down: changes are refused (not silently lost); reads go on.
    redis.kill();
    let (status, err) = service
        .send(reqwest::Method::DELETE, "/v1/mode/override", Value::Null)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{err}");
    assert_eq!(err["error"]["code"], "state_unavailable");
    assert_eq!(service.get("/v1/mode").await.1["mode"], "owner");
    service.stop().await;

    // Starting while Redis is down: not ready, and no guess at the mode.
    let service = Running::start(&config, clock.clone(), false).await;
    let (status, ready) = service.get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready["checks"]["state"]["ready"], false, "{ready}");
    let (status, err) = service.get("/v1/mode").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(err["error"]["code"], "state_unavailable");

    // Redis returns (its append-only file kept the override): ready.
    redis.restart();
    let mut mode = Value::Null;
    for _ in 0..200 {
        let (status, body) = service.get("/v1/mode").await;
        if status == StatusCode::OK {
            mode = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(mode["reason"]["kind"], "override", "{mode}");
    let (status, mode) = service
        .send(reqwest::Method::DELETE, "/v1/mode/override", Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mode["mode"], "guest");
    service.stop().await;
}
