//! What the house's current mode allows ([`ModePolicy`]), and its client
//! over mode-service's HTTP API ([`ModeClient`]):
//!
//! - `POST /v1/policy/check` `{intent, domain, entity_id, service, data}`:
//!   allowed or not in the mode now, by which rule.
//! - `GET  /v1/mode`: the mode now, and why.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{BackendError, JsonApi, MODE_SERVICE, SetupError};

/// Who the house is set up for, and what that allows.
#[async_trait]
pub trait ModePolicy: Send + Sync + fmt::Debug {
    /// Whether the current mode allows `action`.
    async fn check(&self, action: &Action) -> Result<Decision, BackendError>;

    /// The current mode, and why.
    async fn mode(&self) -> Result<ModeStatus, BackendError>;
}

/// Something the assistant is about to do.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Action {
    /// The intent: `HassTurnOn`.
    pub intent: String,
    /// The domain of the entity acted on: `lock`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The entity acted on: `lock.front_door`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
    /// The service that would run, without its domain: `unlock`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The service data: `{"brightness_pct": 30}`.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub data: Map<String, Value>,
}

/// The house's mode.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub enum Mode {
    /// The owner is home (or nobody is booked).
    Owner,
    /// Guests are staying.
    Guest,
    /// A mode this version does not know.
    Other(String),
}

impl From<String> for Mode {
    fn from(name: String) -> Self {
        match name.as_str() {
            "owner" => Self::Owner,
            "guest" => Self::Guest,
            _ => Self::Other(name),
        }
    }
}

impl Mode {
    /// Its name: `owner`, `guest`.
    pub fn name(&self) -> &str {
        match self {
            Self::Owner => "owner",
            Self::Guest => "guest",
            Self::Other(name) => name,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The answer to a check.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Decision {
    /// The mode it was decided in.
    pub mode: Mode,
    /// Whether the action may run.
    pub allowed: bool,
    /// The rule that decided: `guest.domains.deny`.
    pub rule: String,
    /// Why, for logs (not for speech: it may name configuration).
    pub reason: String,
}

/// The mode now, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeStatus {
    /// The mode.
    pub mode: Mode,
    /// Why.
    pub cause: ModeCause,
}

/// Why the house is in its mode (without the booking's details, which may
/// name the guests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModeCause {
    /// Someone set it, until a time.
    Override {
        /// When it ends.
        until: DateTime<Utc>,
    },
    /// A booking, until check-out.
    Booking {
        /// When the stay ends.
        until: DateTime<Utc>,
    },
    /// No booking now.
    NoBooking {
        /// When the next stay starts, if one is known.
        next_booking: Option<DateTime<Utc>>,
    },
    /// A reason this version does not know.
    Other,
}

/// mode-service's answer to `GET /v1/mode`, the parts used here.
#[derive(Debug, Deserialize)]
struct ModeReport {
    mode: Mode,
    reason: Reason,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Reason {
    Override {
        until: DateTime<Utc>,
    },
    Booking {
        until: DateTime<Utc>,
    },
    NoBooking {
        #[serde(default)]
        next_booking: Option<DateTime<Utc>>,
    },
    #[serde(other)]
    Other,
}

/// [`ModePolicy`] over mode-service's HTTP API.
#[derive(Debug, Clone)]
pub struct ModeClient {
    api: JsonApi,
}

impl ModeClient {
    /// A client for mode-service at `url` (`http://127.0.0.1:8800`), each
    /// call within `deadline`. Nothing connects yet.
    pub fn new(url: &str, deadline: Duration) -> Result<Self, SetupError> {
        Ok(Self {
            api: JsonApi::new(MODE_SERVICE, url, deadline)?,
        })
    }
}

#[async_trait]
impl ModePolicy for ModeClient {
    async fn check(&self, action: &Action) -> Result<Decision, BackendError> {
        let request = self.api.post(&["v1", "policy", "check"]).json(action);
        self.api.send(request).await
    }

    async fn mode(&self) -> Result<ModeStatus, BackendError> {
        let report: ModeReport = self.api.send(self.api.get(&["v1", "mode"])).await?;
        let cause = match report.reason {
            Reason::Override { until } => ModeCause::Override { until },
            Reason::Booking { until } => ModeCause::Booking { until },
            Reason::NoBooking { next_booking } => ModeCause::NoBooking { next_booking },
            Reason::Other => ModeCause::Other,
        };
        Ok(ModeStatus {
            mode: report.mode,
            cause,
        })
    }
}
