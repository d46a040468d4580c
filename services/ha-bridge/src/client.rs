//! Home Assistant's two APIs: REST for service calls, single states and the
//! conversation agent; WebSocket for the snapshot (states and registries)
//! and the `state_changed` events that keep it current. The token goes in
//! a header or the auth message only; errors never carry it (nor URLs).

use std::collections::VecDeque;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::config::{Config, Secret};
use crate::home::State;

/// What can go wrong talking to Home Assistant, each with its own code in
/// the API so the orchestrator can say what happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HaError {
    #[error("Home Assistant is unreachable: {0}")]
    Unreachable(String),
    #[error("Home Assistant rejected the access token")]
    Unauthorized,
    #[error("no access token is configured (ha_bridge.token or token_file)")]
    NoToken,
    #[error("Home Assistant has no entity {0}")]
    UnknownEntity(String),
    #[error("Home Assistant has no service {0}")]
    UnknownService(String),
    #[error("Home Assistant refused the call: {0}")]
    Rejected(String),
    #[error("the call failed inside Home Assistant: {0}")]
    Failed(String),
    #[error("Home Assistant did not answer within {0} s")]
    Timeout(u64),
    #[error("Home Assistant answered something unexpected: {0}")]
    Protocol(String),
}

/// The REST API.
#[derive(Debug, Clone)]
pub struct Rest {
    http: reqwest::Client,
    base: String,
    token: Secret,
    timeout: u64,
}

impl Rest {
    /// A client for `config.url` with `token`.
    pub fn new(config: &Config, token: Secret) -> Result<Self, HaError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.request_timeout_secs))
            .connect_timeout(Duration::from_secs(config.request_timeout_secs.min(5)))
            .build()
            .map_err(|e| HaError::Protocol(e.without_url().to_string()))?;
        Ok(Self {
            http,
            base: config.url.trim_end_matches('/').to_owned(),
            token,
            timeout: config.request_timeout_secs,
        })
    }

    async fn send(&self, request: reqwest::RequestBuilder, what: &str) -> Result<Value, HaError> {
        if self.token.is_empty() {
            return Err(HaError::NoToken);
        }
        let response = request
            .bearer_auth(self.token.expose())
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| self.transport(e))?;
        let message = || {
            serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| text.chars().take(200).collect())
        };
        match status.as_u16() {
            200..=299 => {
                serde_json::from_str(&text).map_err(|e| HaError::Protocol(format!("{what}: {e}")))
            }
            401 | 403 => Err(HaError::Unauthorized),
            404 => Err(HaError::Protocol(format!("{what}: not found"))),
            400..=499 => Err(HaError::Rejected(message())),
            _ => Err(HaError::Failed(format!("{what}: {status}: {}", message()))),
        }
    }

    fn transport(&self, e: reqwest::Error) -> HaError {
        if e.is_timeout() {
            HaError::Timeout(self.timeout)
        } else {
            HaError::Unreachable(e.without_url().to_string())
        }
    }

    /// Calls `domain.service` with `data`; returns the states it changed.
    pub async fn call_service(
        &self,
        domain: &str,
        service: &str,
        data: &Value,
    ) -> Result<Vec<State>, HaError> {
        let url = format!("{}/api/services/{domain}/{service}", self.base);
        let what = format!("{domain}.{service}");
        match self.send(self.http.post(url).json(data), &what).await {
            Err(HaError::Rejected(m)) if m.to_lowercase().contains("not found") => {
                Err(HaError::UnknownService(what))
            }
            Err(HaError::Protocol(m)) if m.ends_with("not found") => {
                Err(HaError::UnknownService(what))
            }
            other => serde_json::from_value(other?).map_err(|e| HaError::Protocol(e.to_string())),
        }
    }

    /// One entity's state, straight from Home Assistant.
    pub async fn state(&self, entity_id: &str) -> Result<State, HaError> {
        let url = format!("{}/api/states/{entity_id}", self.base);
        match self.send(self.http.get(url), entity_id).await {
            Err(HaError::Protocol(m)) if m.ends_with("not found") => {
                Err(HaError::UnknownEntity(entity_id.to_owned()))
            }
            other => serde_json::from_value(other?).map_err(|e| HaError::Protocol(e.to_string())),
        }
    }

    /// Hands `text` to Home Assistant's own conversation agent.
    pub async fn conversation(&self, body: &Value) -> Result<Value, HaError> {
        let url = format!("{}/api/conversation/process", self.base);
        self.send(self.http.post(url).json(body), "conversation")
            .await
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// An authenticated WebSocket session.
pub struct Session {
    socket: Socket,
    next_id: u64,
    /// Events that arrived while a command's result was awaited.
    events: VecDeque<Value>,
    timeout: Duration,
    /// Home Assistant's version, from its greeting.
    pub version: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Connects and authenticates.
    pub async fn connect(config: &Config, token: &Secret) -> Result<Self, HaError> {
        if token.is_empty() {
            return Err(HaError::NoToken);
        }
        let timeout = Duration::from_secs(config.request_timeout_secs);
        let (socket, _) = tokio::time::timeout(
            timeout,
            tokio_tungstenite::connect_async(config.websocket_url()),
        )
        .await
        .map_err(|_| HaError::Timeout(config.request_timeout_secs))?
        .map_err(|e| HaError::Unreachable(e.to_string()))?;
        let mut session = Self {
            socket,
            next_id: 1,
            events: VecDeque::new(),
            timeout,
            version: String::new(),
        };
        let hello = session.receive().await?;
        if hello["type"] != "auth_required" {
            return Err(HaError::Protocol(format!("greeting {}", hello["type"])));
        }
        session.version = hello["ha_version"].as_str().unwrap_or_default().to_owned();
        session
            .send(json!({"type": "auth", "access_token": token.expose()}))
            .await?;
        let answer = session.receive().await?;
        match answer["type"].as_str() {
            Some("auth_ok") => Ok(session),
            Some("auth_invalid") => Err(HaError::Unauthorized),
            other => Err(HaError::Protocol(format!("auth answer {other:?}"))),
        }
    }

    async fn send(&mut self, message: Value) -> Result<(), HaError> {
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .map_err(|e| HaError::Unreachable(e.to_string()))
    }

    /// The next JSON message (pings are answered by the library).
    async fn receive(&mut self) -> Result<Value, HaError> {
        loop {
            let message = self
                .socket
                .next()
                .await
                .ok_or_else(|| HaError::Unreachable("the connection closed".into()))?
                .map_err(|e| HaError::Unreachable(e.to_string()))?;
            match message {
                Message::Text(text) => {
                    return serde_json::from_str(&text)
                        .map_err(|e| HaError::Protocol(e.to_string()));
                }
                Message::Close(_) => {
                    return Err(HaError::Unreachable("the connection closed".into()));
                }
                _ => {}
            }
        }
    }

    /// Sends a command and returns its result.
    pub async fn command(&mut self, mut command: Value) -> Result<Value, HaError> {
        let id = self.next_id;
        self.next_id += 1;
        command["id"] = json!(id);
        let kind = command["type"].as_str().unwrap_or_default().to_owned();
        self.send(command).await?;
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let message = tokio::time::timeout_at(deadline, self.receive())
                .await
                .map_err(|_| HaError::Timeout(self.timeout.as_secs()))??;
            if message["type"] == "event" {
                self.events.push_back(message);
                continue;
            }
            if message["id"] != json!(id) {
                continue;
            }
            if message["success"] == json!(true) {
                return Ok(message["result"].clone());
            }
            let error = &message["error"];
            return Err(match error["code"].as_str() {
                Some("unauthorized") => HaError::Unauthorized,
                _ => HaError::Rejected(format!(
                    "{kind}: {}",
                    error["message"].as_str().unwrap_or("failed")
                )),
            });
        }
    }

    /// The next event (of any subscription): `event_type` and `data`.
    pub async fn next_event(&mut self) -> Result<Value, HaError> {
        loop {
            let message = match self.events.pop_front() {
                Some(m) => m,
                None => self.receive().await?,
            };
            if message["type"] == "event" {
                return Ok(message["event"].clone());
            }
        }
    }
}
