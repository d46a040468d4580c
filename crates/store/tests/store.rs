//! Both backends behave the same: values round-trip, expire, delete, and
//! a dead Redis is an error that says so, recovering when it returns.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use athena_store::testing::RedisServer;
use athena_store::{Store, StoreConfig, StoreError};
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Value {
    name: String,
    n: u32,
}

async fn exercise(store: &Store) {
    let v = Value {
        name: "kitchen".into(),
        n: 3,
    };
    assert_eq!(store.get::<Value>("absent").await.unwrap(), None);
    store.put("state", &v, None).await.unwrap();
    assert_eq!(store.get::<Value>("state").await.unwrap(), Some(v));
    store
        .put(
            "state",
            &Value {
                name: "hall".into(),
                n: 4,
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(store.get::<Value>("state").await.unwrap().unwrap().n, 4);
    // Read as the wrong type: an error naming the key, not a panic.
    assert!(matches!(
        store.get::<Vec<u8>>("state").await,
        Err(StoreError::Corrupt { .. })
    ));
    store
        .put("short", &1u8, Some(Duration::from_secs(1)))
        .await
        .unwrap();
    assert_eq!(store.get::<u8>("short").await.unwrap(), Some(1));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(store.get::<u8>("short").await.unwrap(), None, "expired");
    store.delete("state").await.unwrap();
    store.delete("state").await.unwrap();
    assert_eq!(store.get::<Value>("state").await.unwrap(), None);
    assert!(matches!(
        store.put("../escape", &1u8, None).await,
        Err(StoreError::InvalidKey(_))
    ));
}

#[tokio::test]
async fn files() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        redis_url: None,
        dir: Some(dir.path().to_owned()),
    };
    let store = Store::open(&config, "test").unwrap();
    exercise(&store).await;
    // Nothing temporary is left behind.
    store.put("kept", &5u8, None).await.unwrap();
    let names: Vec<_> = std::fs::read_dir(dir.path().join("test"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["kept.json".to_owned()]);
    // A second store on the same directory (a restart) sees it.
    let again = Store::open(&config, "test").unwrap();
    assert_eq!(again.get::<u8>("kept").await.unwrap(), Some(5));
}

#[tokio::test]
async fn redis() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = RedisServer::start(dir.path());
    let config = StoreConfig {
        redis_url: Some(server.url()),
        dir: None,
    };
    let store = Store::open(&config, "test").unwrap();
    assert!(store.describe().starts_with("redis redis://127.0.0.1:"));
    exercise(&store).await;

    store.put("kept", &7u8, None).await.unwrap();
    server.kill();
    let started = std::time::Instant::now();
    let err = store.get::<u8>("kept").await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "no hang");
    server.restart();
    // The connection manager reconnects; the append-only file kept the value.
    let mut value = None;
    for _ in 0..50 {
        if let Ok(v) = store.get::<u8>("kept").await {
            value = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(value, Some(7));
}

#[test]
fn a_bad_redis_url_is_a_config_error() {
    let config = StoreConfig {
        redis_url: Some("http://nope".into()),
        dir: None,
    };
    assert!(config.validate().is_err());
}
