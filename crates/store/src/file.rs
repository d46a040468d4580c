//! State in files, one per key, replaced atomically.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::StoreError;

/// A directory of `<key>.json` files.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
}

/// What a file holds: the value's JSON and when it expires.
#[derive(Serialize, Deserialize)]
struct Envelope {
    /// Seconds since the epoch; none = never.
    expires: Option<u64>,
    value: serde_json::Value,
}

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

impl FileStore {
    /// A store in `dir` (created on first write).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn unavailable(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Unavailable {
            where_: self.dir.display().to_string(),
            reason: e.to_string(),
        }
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let path = self.dir.join(format!("{key}.json"));
        let text = match tokio::fs::read_to_string(&path).await {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.unavailable(e)),
        };
        let envelope: Envelope = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
            key: key.to_owned(),
            reason: format!("{}: {e}", path.display()),
        })?;
        if envelope.expires.is_some_and(|t| t <= now_secs()) {
            self.delete(key).await?;
            return Ok(None);
        }
        Ok(Some(envelope.value.to_string()))
    }

    pub(crate) async fn put(
        &self,
        key: &str,
        value: String,
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        let value = serde_json::from_str(&value).map_err(|e| StoreError::Corrupt {
            key: key.to_owned(),
            reason: e.to_string(),
        })?;
        let envelope = Envelope {
            expires: ttl.map(|t| now_secs() + t.as_secs().max(1)),
            value,
        };
        let text = serde_json::to_vec(&envelope).map_err(|e| self.unavailable(e))?;
        let dir = self.dir.clone();
        let key = key.to_owned();
        tokio::task::spawn_blocking(move || write_atomically(&dir, &key, &text))
            .await
            .map_err(|e| self.unavailable(e))?
            .map_err(|e| self.unavailable(e))
    }

    pub(crate) async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match tokio::fs::remove_file(self.dir.join(format!("{key}.json"))).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.unavailable(e)),
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Temporary file, `fsync`, `rename` over the old one, `fsync` the directory.
fn write_atomically(dir: &Path, key: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let seq = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
    let temp = dir.join(format!(".{key}.{}.{seq}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, dir.join(format!("{key}.json")))?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}
