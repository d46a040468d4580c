//! Conversation memory: each satellite's last turns (what was asked, what
//! was answered), so a follow-up question ("and how tall is it?") reaches
//! the model with what came before. A conversation is forgotten `ttl` after
//! its last turn.
//!
//! Kept in Redis when a URL is configured (one JSON value per satellite,
//! `athena:orchestrator:conversation.<satellite>`, with Redis's own
//! expiry: every orchestrator replica sees the same conversation), in this
//! process otherwise. Memory is a help, not a need: a store that fails is
//! logged and counted, and the question is answered without it.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use athena_store::{Store, StoreConfig, StoreError};
use metrics::counter;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tracing::warn;

/// The store's namespace (the service's name).
const NAMESPACE: &str = "orchestrator";

/// In-process conversations kept before expired ones are swept.
const SWEEP_ABOVE: usize = 256;

/// How much is remembered, for how long, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemorySettings {
    /// Turns kept per satellite (0: none).
    pub turns: usize,
    /// Seconds after its last turn that a conversation is forgotten.
    pub ttl_secs: u64,
    /// `redis://[:password@]host:port[/db]`: keep conversations there;
    /// none: in this process.
    pub redis_url: Option<String>,
}

impl Default for MemorySettings {
    fn default() -> Self {
        Self {
            turns: 4,
            ttl_secs: 300,
            redis_url: None,
        }
    }
}

impl MemorySettings {
    /// Checks what can be checked without connecting.
    pub fn validate(&self) -> Result<(), String> {
        if self.turns > 64 {
            return Err("memory.turns must be at most 64".into());
        }
        if self.ttl_secs == 0 || self.ttl_secs > 86_400 {
            return Err("memory.ttl_secs must be between 1 and 86400".into());
        }
        StoreConfig {
            redis_url: self.redis_url.clone(),
            dir: None,
        }
        .validate()
        .map_err(|e| format!("memory.{e}"))
    }
}

/// One exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    /// What was asked.
    pub user: String,
    /// What was answered.
    pub assistant: String,
}

/// Every satellite's recent turns.
#[derive(Debug)]
pub struct Memory {
    turns: usize,
    ttl: Duration,
    place: Place,
}

#[derive(Debug)]
enum Place {
    /// Redis (through `athena_store`).
    Store(Store),
    /// This process: turns and when they expire, by satellite.
    Local(Mutex<HashMap<String, (Instant, Vec<Turn>)>>),
}

impl Memory {
    /// The memory `settings` describe. Connects lazily: a Redis that is
    /// down now is a warning on first use.
    pub fn new(settings: &MemorySettings) -> Result<Self, StoreError> {
        let place = match &settings.redis_url {
            Some(url) => Place::Store(Store::open(
                &StoreConfig {
                    redis_url: Some(url.clone()),
                    dir: None,
                },
                NAMESPACE,
            )?),
            None => Place::Local(Mutex::default()),
        };
        Ok(Self {
            turns: settings.turns,
            ttl: Duration::from_secs(settings.ttl_secs.max(1)),
            place,
        })
    }

    /// Where conversations are kept, for logs.
    pub fn describe(&self) -> String {
        match &self.place {
            Place::Store(store) => store.describe(),
            Place::Local(_) => "this process".into(),
        }
    }

    /// `satellite`'s recent turns, oldest first (none when forgotten, or
    /// when the store fails).
    pub async fn recall(&self, satellite: &str) -> Vec<Turn> {
        if self.turns == 0 {
            return Vec::new();
        }
        match &self.place {
            Place::Store(store) => match store.get::<Vec<Turn>>(&key(satellite)).await {
                Ok(turns) => turns.unwrap_or_default(),
                Err(e) => {
                    trouble("recall", &e);
                    Vec::new()
                }
            },
            Place::Local(map) => {
                let map = map.lock().unwrap_or_else(PoisonError::into_inner);
                match map.get(satellite) {
                    Some((expires, turns)) if Instant::now() < *expires => turns.clone(),
                    _ => Vec::new(),
                }
            }
        }
    }

    /// Adds `turn` to `satellite`'s conversation (dropping the oldest
    /// beyond the limit) and keeps it for another `ttl`.
    pub async fn remember(&self, satellite: &str, turn: Turn) {
        if self.turns == 0 {
            return;
        }
        let mut turns = self.recall(satellite).await;
        turns.push(turn);
        let excess = turns.len().saturating_sub(self.turns);
        turns.drain(..excess);
        match &self.place {
            Place::Store(store) => {
                if let Err(e) = store.put(&key(satellite), &turns, Some(self.ttl)).await {
                    trouble("remember", &e);
                }
            }
            Place::Local(map) => {
                let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
                let now = Instant::now();
                if map.len() >= SWEEP_ABOVE {
                    map.retain(|_, (expires, _)| now < *expires);
                }
                map.insert(satellite.to_owned(), (now + self.ttl, turns));
            }
        }
    }

    /// Forgets `satellite`'s conversation.
    pub async fn forget(&self, satellite: &str) {
        match &self.place {
            Place::Store(store) => {
                if let Err(e) = store.delete(&key(satellite)).await {
                    trouble("forget", &e);
                }
            }
            Place::Local(map) => {
                map.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(satellite);
            }
        }
    }
}

fn trouble(what: &'static str, e: &StoreError) {
    warn!(error = %e, "conversation memory: cannot {what}; answering without it");
    counter!("orchestrator_memory_errors_total", "operation" => what).increment(1);
}

/// The store key of `satellite`'s conversation: its id with what a key may
/// not hold (`:` of an address) replaced, and cut to fit.
pub fn key(satellite: &str) -> String {
    let id: String = satellite
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(160)
        .collect();
    format!("conversation.{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(n: usize) -> Turn {
        Turn {
            user: format!("q{n}"),
            assistant: format!("a{n}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn keeps_the_last_turns_until_they_expire() {
        let memory = Memory::new(&MemorySettings {
            turns: 2,
            ttl_secs: 60,
            redis_url: None,
        })
        .unwrap_or_else(|e| panic!("{e}"));
        for n in 0..3 {
            memory.remember("kitchen", turn(n)).await;
        }
        assert_eq!(memory.recall("kitchen").await, [turn(1), turn(2)]);
        assert!(memory.recall("hall").await.is_empty());
        tokio::time::advance(Duration::from_secs(59)).await;
        memory.remember("kitchen", turn(3)).await;
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(memory.recall("kitchen").await, [turn(2), turn(3)]);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(memory.recall("kitchen").await.is_empty());
        memory.remember("kitchen", turn(4)).await;
        memory.forget("kitchen").await;
        assert!(memory.recall("kitchen").await.is_empty());
    }

    #[test]
    fn keys_are_store_keys() {
        assert_eq!(key("10.0.0.7:5512"), "conversation.10.0.0.7_5512");
        assert_eq!(key("kitchen"), "conversation.kitchen");
    }
}
