//! The bridge against a real Home Assistant ([`athena_ha_bridge::testing`]:
//! PyPI `homeassistant` with its `demo` integration, in the venv
//! `scripts/python-env.sh ha-venv tests/ha-requirements.txt` makes;
//! `ATHENA_HA_PYTHON` names its python):
//! the bridge's HTTP API lists, resolves and switches demo entities, sees
//! changes made elsewhere through its WebSocket cache, refuses what it must,
//! and survives Home Assistant going away and coming back.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use athena_ha_bridge::client::Session;
use athena_ha_bridge::config::{Config, Secret};
use athena_ha_bridge::testing::HomeAssistant;
use athena_ha_bridge::{Bridge, http_api};
use athena_runtime::http::Readiness;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

fn free_port() -> u16 {
    athena_runtime::free_local_port().unwrap()
}

/// A bridge serving its API on a free port.
async fn bridge(config: Config, shutdown: &CancellationToken) -> String {
    let bridge = Bridge::new(config.clone()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let api = http_api::router(bridge.clone(), config.max_body_bytes);
    tokio::spawn(async move { axum::serve(listener, api).await });
    tokio::spawn(bridge.follow(Readiness::default(), shutdown.clone()));
    format!("http://{addr}")
}

async fn get(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn post(url: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Asserts a response is the error `status` with `code`, returns its body.
fn refused((status, body): (u16, Value), expected: u16, code: &str) -> Value {
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (expected, Some(code)),
        "{body}"
    );
    body
}

/// Polls `check` every 100 ms for up to `secs`.
async fn until(secs: u64, what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..secs * 10 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_drives_a_real_home_assistant() {
    let dir = tempfile::tempdir().unwrap();
    let mut ha = HomeAssistant::new(dir.path());
    ha.start().await;
    let token = ha.token().await;
    let shutdown = CancellationToken::new();
    let config = Config {
        url: ha.url(),
        token: Secret::from(token.as_str()),
        reconnect_min_ms: 200,
        reconnect_max_ms: 1000,
        ..Config::default()
    };
    let api = bridge(config.clone(), &shutdown).await;
    until(60, "the first sync", async || {
        get(&format!("{api}/v1/status")).await.1["connected"] == true
    })
    .await;
    let (_, status) = get(&format!("{api}/v1/status")).await;
    assert!(status["entities"].as_u64().unwrap() > 50, "{status}");
    assert!(!status.to_string().contains(&token));

    // Search and resolve; locks are off limits by default.
    let (code, lights) = get(&format!("{api}/v1/entities?domain=light")).await;
    assert_eq!(code, 200);
    let ids: Vec<&str> = lights
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["entity_id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"light.kitchen_lights"), "{ids:?}");
    assert_eq!(
        get(&format!("{api}/v1/entities?domain=lock")).await.1,
        json!([])
    );
    let (_, found) = post(
        &format!("{api}/v1/resolve"),
        json!({"name": "the kitchen lights"}),
    )
    .await;
    assert_eq!(
        found[0]["entity"]["entity_id"], "light.kitchen_lights",
        "{found}"
    );
    assert_eq!(found[0]["score"], 1.0);

    // An alias the owner adds in Home Assistant is known at once.
    let mut owner = Session::connect(&config, &config.token).await.unwrap();
    owner
        .command(json!({"type": "config/entity_registry/update",
                        "entity_id": "light.kitchen_lights", "aliases": ["cooking lamp"]}))
        .await
        .unwrap();
    until(10, "the new alias", async || {
        let found = post(
            &format!("{api}/v1/resolve"),
            json!({"name": "cooking lamp"}),
        )
        .await
        .1;
        found[0]["entity"]["entity_id"] == "light.kitchen_lights"
    })
    .await;

    // Off and on again through the bridge, with the resulting state.
    let kitchen = format!("{api}/v1/services/light");
    let (code, off) = post(
        &format!("{kitchen}/turn_off"),
        json!({"entity_id": "light.kitchen_lights"}),
    )
    .await;
    assert_eq!(code, 200, "{off}");
    assert_eq!(off["entities"][0]["state"], "off", "{off}");
    let (code, on) = post(
        &format!("{kitchen}/turn_on"),
        json!({"entity_id": "light.kitchen_lights", "data": {"brightness": 100}}),
    )
    .await;
    assert_eq!(code, 200, "{on}");
    assert_eq!(on["entities"][0]["state"], "on");
    assert_eq!(on["entities"][0]["attributes"]["brightness"], 100);

    // A change made by someone else arrives through the WebSocket cache.
    let state = get(&format!("{api}/v1/entities/light.bed_light")).await.1["state"].clone();
    let other = if state == "on" { "turn_off" } else { "turn_on" };
    let changed = reqwest::Client::new()
        .post(format!("{}/api/services/light/{other}", ha.url()))
        .bearer_auth(&token)
        .json(&json!({"entity_id": "light.bed_light"}))
        .send()
        .await
        .unwrap();
    assert!(changed.status().is_success());
    until(10, "the state_changed event", async || {
        get(&format!("{api}/v1/entities/light.bed_light")).await.1["state"] != state
    })
    .await;

    // Clear refusals, each with its own code.
    let refusals = [
        ("lock/unlock", "lock.front_door", 403, "not_allowed"),
        ("light/turn_on", "light.nowhere", 404, "unknown_entity"),
        (
            "light/explode",
            "light.kitchen_lights",
            404,
            "unknown_service",
        ),
        ("light/turn_on", "not an id", 400, "invalid_entity_id"),
    ];
    for (service, entity, status, code) in refusals {
        let url = format!("{api}/v1/services/{service}");
        refused(
            post(&url, json!({ "entity_id": entity })).await,
            status,
            code,
        );
    }
    let (code, e) = get(&format!("{api}/v1/entities/lock.front_door")).await;
    assert_eq!(code, 403, "{e}");
    let r = reqwest::Client::new()
        .post(format!("{kitchen}/turn_on"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);

    // Home Assistant's own agent as a fallback.
    let (code, answer) = post(
        &format!("{api}/v1/conversation"),
        json!({"text": "turn off the kitchen lights"}),
    )
    .await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(
        answer["response"]["response_type"], "action_done",
        "{answer}"
    );

    // A wrong token: the bridge says so, without the token.
    let wrong = bridge(
        Config {
            token: Secret::from("not-a-token"),
            ..config.clone()
        },
        &shutdown,
    )
    .await;
    until(20, "the rejected token", async || {
        get(&format!("{wrong}/v1/status")).await.1["error"].is_string()
    })
    .await;
    let e = refused(
        get(&format!("{wrong}/v1/entities")).await,
        502,
        "ha_auth_failed",
    );
    assert!(!e.to_string().contains("not-a-token"));

    // Home Assistant goes away: the bridge reports it, then recovers.
    ha.stop().await;
    until(20, "the drop to be noticed", async || {
        get(&format!("{api}/v1/status")).await.1["connected"] == false
    })
    .await;
    refused(
        post(
            &format!("{kitchen}/turn_on"),
            json!({"entity_id": "light.kitchen_lights"}),
        )
        .await,
        503,
        "ha_unreachable",
    );
    let (code, _) = get(&format!("{api}/v1/entities/light.kitchen_lights")).await;
    assert_eq!(code, 503, "a stale cache is not served");
    ha.start().await;
    until(90, "the reconnection", async || {
        let s = get(&format!("{api}/v1/status")).await.1;
        s["connected"] == true && s["syncs"].as_u64() >= Some(2)
    })
    .await;
    let (code, on) = post(
        &format!("{kitchen}/turn_on"),
        json!({"entity_id": "light.kitchen_lights"}),
    )
    .await;
    assert_eq!(code, 200, "{on}");
    assert_eq!(on["entities"][0]["state"], "on");
    shutdown.cancel();
}

/// Without a token the bridge stays idle and says why, for every request.
#[tokio::test]
async fn without_a_token_the_bridge_says_so() {
    let shutdown = CancellationToken::new();
    let api = bridge(
        Config {
            url: "http://127.0.0.1:9".into(),
            ..Config::default()
        },
        &shutdown,
    )
    .await;
    until(5, "the status", async || {
        get(&format!("{api}/v1/status")).await.1["error"].is_string()
    })
    .await;
    refused(get(&format!("{api}/v1/entities")).await, 503, "ha_no_token");
    refused(
        post(
            &format!("{api}/v1/services/light/turn_on"),
            json!({"entity_id": "light.x"}),
        )
        .await,
        503,
        "ha_no_token",
    );
    shutdown.cancel();
}

/// Home Assistant not running at all: unreachable, not a hang.
#[tokio::test]
async fn an_absent_home_assistant_is_unreachable() {
    let shutdown = CancellationToken::new();
    let url = format!("http://127.0.0.1:{}", free_port());
    let api = bridge(
        Config {
            url,
            token: Secret::from("x"),
            ..Config::default()
        },
        &shutdown,
    )
    .await;
    until(10, "the status", async || {
        get(&format!("{api}/v1/status")).await.1["error"].is_string()
    })
    .await;
    refused(
        post(&format!("{api}/v1/resolve"), json!({"name": "kitchen"})).await,
        503,
        "ha_unreachable",
    );
    shutdown.cancel();
}
