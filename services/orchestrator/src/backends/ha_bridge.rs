//! The house as the action stage sees it ([`Home`]), and its client over
//! ha-bridge's HTTP API ([`HaBridgeClient`]):
//!
//! - `GET  /v1/entities?q=&domain=&area=`: entities (names, aliases, area).
//! - `GET  /v1/entities/{entity_id}`: one entity's state.
//! - `POST /v1/services/{domain}/{service}` `{entity_id, data}`: a call,
//!   answered with the targeted entities as they are after it.
//! - `GET  /v1/status`: the link to Home Assistant.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{BackendError, HA_BRIDGE, HOME_ASSISTANT, JsonApi, SetupError};

/// The house: what is in it, what state it is in, and calls that change it.
#[async_trait]
pub trait Home: Send + Sync + fmt::Debug {
    /// Entities matching `query` (all with an empty one), by entity id.
    async fn entities(&self, query: &EntityQuery) -> Result<Vec<Entity>, BackendError>;

    /// One entity as it is now.
    async fn entity(&self, entity_id: &str) -> Result<Entity, BackendError>;

    /// Runs `call`; the targeted entities as they are after it.
    async fn call(&self, call: &ServiceCall) -> Result<Vec<Entity>, BackendError>;

    /// Whether the link to the house is up.
    async fn status(&self) -> Result<HomeStatus, BackendError>;
}

/// An entity: a light, a lock, a sensor.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Entity {
    /// `light.kitchen_lights`.
    pub entity_id: String,
    /// `light`.
    pub domain: String,
    /// What people call it: `Kitchen Lights`.
    pub name: String,
    /// Other names the owner gave it.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The name of the area it is in.
    #[serde(default)]
    pub area: Option<String>,
    /// `on`, `locked`, `21.5`, `unavailable`.
    pub state: String,
    /// Home Assistant's attributes (`brightness`, `unit_of_measurement`, ...).
    #[serde(default)]
    pub attributes: Map<String, Value>,
}

impl Entity {
    /// The text attribute `name`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).and_then(Value::as_str)
    }

    /// Its device class (`temperature`, `door`, `garage`), if it has one.
    pub fn device_class(&self) -> Option<&str> {
        self.attribute("device_class")
    }
}

/// Which entities to list; every part given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntityQuery {
    /// Words of a name or alias.
    pub text: Option<String>,
    /// A domain: `light`.
    pub domain: Option<String>,
    /// An area's name or alias.
    pub area: Option<String>,
}

/// A service call: `light.turn_on` on entities, with data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceCall {
    /// The service's domain: `light`, `homeassistant`.
    pub domain: String,
    /// The service: `turn_on`.
    pub service: String,
    /// The targets.
    pub entity_ids: Vec<String>,
    /// Service data: `{"brightness_pct": 30}`.
    pub data: Map<String, Value>,
}

/// The link between ha-bridge and Home Assistant.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HomeStatus {
    /// Whether ha-bridge is in sync with Home Assistant.
    pub connected: bool,
    /// Entities it knows.
    #[serde(default)]
    pub entities: usize,
    /// Why it is not connected.
    #[serde(default)]
    pub error: Option<String>,
}

/// [`Home`] over ha-bridge's HTTP API.
#[derive(Debug, Clone)]
pub struct HaBridgeClient {
    api: JsonApi,
}

impl HaBridgeClient {
    /// A client for ha-bridge at `url` (`http://127.0.0.1:8600`), each call
    /// within `deadline`. Nothing connects yet.
    pub fn new(url: &str, deadline: Duration) -> Result<Self, SetupError> {
        Ok(Self {
            api: JsonApi::new(HA_BRIDGE, url, deadline)?,
        })
    }
}

/// ha-bridge's errors that mean Home Assistant itself is out of reach
/// become [`BackendError::Unavailable`] of `home-assistant`; the rest stay
/// as they are.
fn bridge_error(e: BackendError) -> BackendError {
    match e {
        BackendError::Rejected { code, message, .. }
            if matches!(
                code.as_str(),
                "ha_unreachable" | "ha_no_token" | "ha_auth_failed" | "ha_timeout"
            ) =>
        {
            BackendError::Unavailable {
                backend: HOME_ASSISTANT,
                detail: format!("{code}: {message}"),
            }
        }
        other => other,
    }
}

#[async_trait]
impl Home for HaBridgeClient {
    async fn entities(&self, query: &EntityQuery) -> Result<Vec<Entity>, BackendError> {
        let mut params = Vec::new();
        for (key, value) in [
            ("q", &query.text),
            ("domain", &query.domain),
            ("area", &query.area),
        ] {
            if let Some(value) = value {
                params.push((key, value.as_str()));
            }
        }
        let request = self.api.get(&["v1", "entities"]).query(&params);
        self.api.send(request).await.map_err(bridge_error)
    }

    async fn entity(&self, entity_id: &str) -> Result<Entity, BackendError> {
        let request = self.api.get(&["v1", "entities", entity_id]);
        self.api.send(request).await.map_err(bridge_error)
    }

    async fn call(&self, call: &ServiceCall) -> Result<Vec<Entity>, BackendError> {
        /// The part of ha-bridge's answer used here.
        #[derive(Deserialize)]
        struct CallResult {
            entities: Vec<Entity>,
        }
        let request = self
            .api
            .post(&["v1", "services", &call.domain, &call.service])
            .json(&json!({ "entity_id": call.entity_ids, "data": call.data }));
        let result: CallResult = self.api.send(request).await.map_err(bridge_error)?;
        Ok(result.entities)
    }

    async fn status(&self) -> Result<HomeStatus, BackendError> {
        self.api.send(self.api.get(&["v1", "status"])).await
    }
}
