//! Small durable state for Athena services: a few JSON values by key
//! (mode-service's override and last good calendars, the orchestrator's
//! conversation memory), kept in Redis when a URL is configured and in
//! local files otherwise.
//!
//! Files are written atomically (a temporary file, `fsync`, `rename`, then
//! `fsync` of the directory), so a crash leaves the old value or the new
//! one, never half of either. Redis values are JSON strings under
//! `athena:<namespace>:<key>`. Both honour an optional time to live.

mod file;
mod redis_store;
#[cfg(feature = "testing")]
pub mod testing;

use std::path::PathBuf;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use file::FileStore;
pub use redis_store::RedisStore;

/// Where state is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `redis://[:password@]host:port[/db]`; when set, state lives there.
    pub redis_url: Option<String>,
    /// Otherwise, the directory for state files (default: the data
    /// directory, see [`default_data_dir`]).
    pub dir: Option<PathBuf>,
}

impl StoreConfig {
    /// Checks what can be checked without connecting.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(url) = &self.redis_url {
            redis::Client::open(url.as_str())
                .map_err(|e| format!("redis_url {}: {e}", redis_store::redact(url)))?;
        }
        Ok(())
    }
}

/// What went wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or written (Redis down, disk full).
    #[error("state store unavailable ({where_}): {reason}")]
    Unavailable { where_: String, reason: String },
    /// A stored value is not what the reader expects.
    #[error("stored value {key:?} cannot be read: {reason}")]
    Corrupt { key: String, reason: String },
    /// A key with characters a file name or Redis key should not have.
    #[error("invalid state key {0:?}")]
    InvalidKey(String),
}

/// The data directory: `ATHENA_DATA_DIR`, else `$XDG_DATA_HOME/athena`,
/// else `~/.local/share/athena`, else `./athena-data`.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ATHENA_DATA_DIR") {
        return dir.into();
    }
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(dir).join("athena");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/share/athena"),
        None => PathBuf::from("athena-data"),
    }
}

/// A store for one service's state (`namespace` is its name).
#[derive(Debug, Clone)]
pub enum Store {
    File(FileStore),
    Redis(RedisStore),
}

impl Store {
    /// The store `config` names, for `namespace`. Connects lazily: a Redis
    /// that is down now is an error on first use, not here.
    pub fn open(config: &StoreConfig, namespace: &str) -> Result<Self, StoreError> {
        check_key(namespace)?;
        match &config.redis_url {
            Some(url) => Ok(Self::Redis(RedisStore::new(url, namespace)?)),
            None => {
                let dir = config.dir.clone().unwrap_or_else(default_data_dir);
                Ok(Self::File(FileStore::new(dir.join(namespace))))
            }
        }
    }

    /// Where the state lives, for logs and status (no password).
    pub fn describe(&self) -> String {
        match self {
            Self::File(f) => format!("file {}", f.dir().display()),
            Self::Redis(r) => format!("redis {}", r.describe()),
        }
    }

    /// The value under `key`, if there is one and it has not expired.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        check_key(key)?;
        let raw = match self {
            Self::File(f) => f.get(key).await?,
            Self::Redis(r) => r.get(key).await?,
        };
        raw.map(|text| {
            serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                key: key.to_owned(),
                reason: e.to_string(),
            })
        })
        .transpose()
    }

    /// Stores `value` under `key`, for `ttl` if given. Returns once durable.
    pub async fn put<T: Serialize + Sync>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        check_key(key)?;
        let text = serde_json::to_string(value).map_err(|e| StoreError::Corrupt {
            key: key.to_owned(),
            reason: e.to_string(),
        })?;
        match self {
            Self::File(f) => f.put(key, text, ttl).await,
            Self::Redis(r) => r.put(key, text, ttl).await,
        }
    }

    /// Removes `key` (nothing happens if it is absent).
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        check_key(key)?;
        match self {
            Self::File(f) => f.delete(key).await,
            Self::Redis(r) => r.delete(key).await,
        }
    }
}

/// Keys are names: letters, digits, `-`, `_`, `.` (not leading), at most 200.
fn check_key(key: &str) -> Result<(), StoreError> {
    let ok = !key.is_empty()
        && key.len() <= 200
        && !key.starts_with('.')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidKey(key.to_owned()))
    }
}
