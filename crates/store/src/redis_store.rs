//! State in Redis: JSON strings under `athena:<namespace>:<key>`.

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Mutex;

use crate::StoreError;

/// How long connecting or one command may take.
const TIMEOUT: Duration = Duration::from_secs(3);

/// A Redis server, connected on first use and reconnected after a drop.
#[derive(Clone)]
pub struct RedisStore {
    client: redis::Client,
    namespace: String,
    described: String,
    connection: Arc<Mutex<Option<ConnectionManager>>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("server", &self.described)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// `url` with any password replaced.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!(
                "{}(credentials hidden)@{}",
                &url[..scheme + 3],
                &url[at + 1..]
            )
        }
        _ => url.to_owned(),
    }
}

impl RedisStore {
    /// A store at `url` under `namespace`; does not connect yet.
    pub fn new(url: &str, namespace: &str) -> Result<Self, StoreError> {
        let described = redact(url);
        let client = redis::Client::open(url).map_err(|e| StoreError::Unavailable {
            where_: described.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            client,
            namespace: namespace.to_owned(),
            described,
            connection: Arc::default(),
        })
    }

    /// The server, without credentials.
    pub fn describe(&self) -> &str {
        &self.described
    }

    fn key(&self, key: &str) -> String {
        format!("athena:{}:{key}", self.namespace)
    }

    fn unavailable(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Unavailable {
            where_: self.described.clone(),
            reason: e.to_string(),
        }
    }

    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let mut slot = self.connection.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1);
        let c = tokio::time::timeout(
            TIMEOUT,
            self.client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| self.unavailable("connection timed out"))?
        .map_err(|e| self.unavailable(e))?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Runs one command with a deadline.
    async fn run<T>(
        &self,
        command: impl AsyncFnOnce(&mut ConnectionManager) -> redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        let mut c = self.connection().await?;
        match tokio::time::timeout(TIMEOUT, command(&mut c)).await {
            Ok(result) => result.map_err(|e| self.unavailable(e)),
            Err(_) => Err(self.unavailable("command timed out")),
        }
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = self.key(key);
        self.run(async |c| c.get(&key).await).await
    }

    pub(crate) async fn put(
        &self,
        key: &str,
        value: String,
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        let key = self.key(key);
        match ttl {
            Some(ttl) => {
                self.run(async |c| c.set_ex(&key, &value, ttl.as_secs().max(1)).await)
                    .await
            }
            None => self.run(async |c| c.set(&key, &value).await).await,
        }
    }

    pub(crate) async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let key = self.key(key);
        self.run(async |c| c.del(&key).await).await
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact("redis://:s3cret@cache:6379/2"),
            "redis://(credentials hidden)@cache:6379/2"
        );
        assert_eq!(redact("redis://cache:6379"), "redis://cache:6379");
    }
}
