//! The OpenAPI document and the routes agree: every route in `http_api.rs`
//! is documented, and every documented operation is served (an empty
//! service answers it with its own JSON error, never the router's 404/405).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use athena_rag_api::http_api;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

fn documented() -> BTreeSet<(String, String)> {
    let doc = http_api::openapi_document();
    assert!(doc.get("error").is_none(), "{doc}");
    assert_eq!(doc["openapi"], "3.1.0");
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            assert!(
                op["responses"].is_object(),
                "{method} {path} has no responses"
            );
            assert!(
                op["operationId"].is_string(),
                "{method} {path} has no operationId"
            );
            ops.insert((method.to_uppercase(), path.clone()));
        }
    }
    ops
}

/// The paths `http_api.rs` routes, read from its source.
fn routed() -> BTreeSet<String> {
    let source = include_str!("../src/http_api.rs");
    source
        .split(".route(")
        .skip(1)
        .map(|rest| {
            let rest = rest.trim_start().strip_prefix('"').unwrap();
            rest.split('"').next().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn every_route_is_documented() {
    let paths: BTreeSet<String> = documented().into_iter().map(|(_, p)| p).collect();
    let routed = routed();
    assert!(routed.len() >= 7, "{routed:?}");
    for path in &routed {
        assert!(
            paths.contains(path),
            "{path} is routed but not in openapi.yaml"
        );
    }
    for path in &paths {
        assert!(routed.contains(path), "{path} is documented but not routed");
    }
}

#[tokio::test]
async fn every_documented_operation_is_served() {
    let router = http_api::router(http_api::Slot::default(), 1 << 20, 3);
    for (method, path) in documented() {
        let uri = path
            .replace("{name}", "house_guide")
            .replace("{id}", "wifi");
        let request = Request::builder()
            .method(method.as_str())
            .uri(&uri)
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("{method} {uri}: {status} without a JSON body"));
        if path != "/openapi.json" {
            // Still loading: the service's own refusal, not a missing route.
            assert!(json["error"]["code"].is_string(), "{method} {uri}: {json}");
        }
    }
}
