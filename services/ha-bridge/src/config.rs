//! The `[ha_bridge]` config section.

use std::net::SocketAddr;
use std::path::PathBuf;

use athena_runtime::config::Validate;
use serde::{Deserialize, Serialize};

pub use athena_runtime::config::Secret;

/// The bridge's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// HTTP API for the orchestrator, and ops endpoints.
    pub http: SocketAddr,
    /// Home Assistant's base URL (`http://homeassistant.local:8123`).
    pub url: String,
    /// A long-lived access token (`ATHENA__HA_BRIDGE__TOKEN`).
    pub token: Secret,
    /// Or a file holding it (a mounted secret); used when `token` is empty.
    pub token_file: Option<PathBuf>,
    /// Seconds one request to Home Assistant may take.
    pub request_timeout_secs: u64,
    /// First wait before reconnecting after a drop, in milliseconds; it
    /// doubles on each failure up to `reconnect_max_ms`.
    pub reconnect_min_ms: u64,
    /// Longest wait between reconnection attempts.
    pub reconnect_max_ms: u64,
    /// Domains the bridge may touch; empty = all but the denied ones.
    pub allow_domains: Vec<String>,
    /// Domains it never touches (locks and alarms unless the owner says).
    pub deny_domains: Vec<String>,
    /// Entities it may touch even in a denied domain.
    pub allow_entities: Vec<String>,
    /// Entities it never touches.
    pub deny_entities: Vec<String>,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http: SocketAddr::from(([0, 0, 0, 0], 8600)),
            url: "http://127.0.0.1:8123".into(),
            token: Secret::default(),
            token_file: None,
            request_timeout_secs: 10,
            reconnect_min_ms: 500,
            reconnect_max_ms: 30_000,
            allow_domains: Vec::new(),
            deny_domains: vec!["lock".into(), "alarm_control_panel".into()],
            allow_entities: Vec::new(),
            deny_entities: Vec::new(),
            max_body_bytes: 64 << 10,
        }
    }
}

impl Config {
    /// The token: `token`, else the contents of `token_file`.
    pub fn resolve_token(&self) -> Result<Secret, String> {
        if !self.token.is_empty() {
            return Ok(self.token.clone());
        }
        match &self.token_file {
            Some(path) => std::fs::read_to_string(path)
                .map(|s| Secret::from(s.as_str()))
                .map_err(|e| format!("cannot read token_file {}: {e}", path.display())),
            None => Ok(Secret::default()),
        }
    }

    /// The WebSocket API's URL.
    pub fn websocket_url(&self) -> String {
        let base = self.url.trim_end_matches('/');
        let base = base
            .strip_prefix("https://")
            .map(|rest| format!("wss://{rest}"))
            .or_else(|| {
                base.strip_prefix("http://")
                    .map(|rest| format!("ws://{rest}"))
            })
            .unwrap_or_else(|| base.to_owned());
        format!("{base}/api/websocket")
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), String> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(format!(
                "url must start with http:// or https://, not {:?}",
                self.url
            ));
        }
        if self.request_timeout_secs == 0 {
            return Err("request_timeout_secs must be at least 1".into());
        }
        if self.reconnect_min_ms == 0 || self.reconnect_max_ms < self.reconnect_min_ms {
            return Err("reconnect_min_ms must be at least 1 and at most reconnect_max_ms".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_never_shows() {
        let config = Config {
            token: Secret::from("abc.def.ghi"),
            ..Config::default()
        };
        assert!(!format!("{config:?}").contains("abc"));
        let json = serde_json::to_string(&config).unwrap_or_default();
        assert!(!json.contains("abc"), "{json}");
        assert_eq!(
            config.resolve_token().map(|t| t.expose().to_owned()),
            Ok("abc.def.ghi".into())
        );
    }

    #[test]
    fn websocket_url_follows_the_scheme() {
        let mut config = Config {
            url: "https://ha.example:8123/".into(),
            ..Config::default()
        };
        assert_eq!(
            config.websocket_url(),
            "wss://ha.example:8123/api/websocket"
        );
        config.url = "http://10.0.0.2:8123".into();
        assert_eq!(config.websocket_url(), "ws://10.0.0.2:8123/api/websocket");
        config.url = "ftp://x".into();
        assert!(config.validate().is_err());
    }
}
