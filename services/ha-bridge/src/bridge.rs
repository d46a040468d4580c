//! The bridge: the live copy of the home, kept by one WebSocket session
//! (snapshot, then `state_changed` events; reconnect with backoff and a
//! fresh snapshot after a drop), and the operations the API offers.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use athena_runtime::http::Readiness;
use serde::Serialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::access::{Access, domain_of};
use crate::client::{HaError, Rest, Session};
use crate::config::{Config, Secret};
use crate::home::{Area, Device, Entity, Home, Match, Query, RegistryEntry, State};

/// The readiness check this service reports.
pub const CHECK: &str = "home_assistant";

/// How the link to Home Assistant is.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    pub connected: bool,
    pub version: String,
    pub entities: usize,
    /// Snapshots taken (the first, then one per reconnection).
    pub syncs: u64,
    /// Why it is not connected.
    pub error: Option<String>,
    #[serde(skip)]
    cause: Option<HaError>,
}

/// What a service call did.
#[derive(Debug, Clone, Serialize)]
pub struct CallResult {
    /// States Home Assistant reports changed by the call.
    pub changed: Vec<State>,
    /// The targeted entities as they are now.
    pub entities: Vec<Entity>,
}

/// Shared by the sync task and the API.
#[derive(Debug)]
pub struct Bridge {
    config: Config,
    token: Secret,
    access: Access,
    rest: Rest,
    home: RwLock<Home>,
    status: RwLock<Status>,
}

impl Bridge {
    /// A bridge for `config` (nothing connects yet).
    pub fn new(config: Config) -> Result<Arc<Self>, String> {
        let token = config.resolve_token()?;
        let rest = Rest::new(&config, token.clone()).map_err(|e| e.to_string())?;
        Ok(Arc::new(Self {
            access: Access::new(&config),
            config,
            token,
            rest,
            home: RwLock::new(Home::default()),
            status: RwLock::new(Status::default()),
        }))
    }

    fn home(&self) -> std::sync::RwLockReadGuard<'_, Home> {
        self.home.read().unwrap_or_else(|p| p.into_inner())
    }

    fn home_mut(&self) -> std::sync::RwLockWriteGuard<'_, Home> {
        self.home.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The link's status.
    pub fn status(&self) -> Status {
        self.status
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_status(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.status.write().unwrap_or_else(|p| p.into_inner()));
    }

    /// The cache is usable only while connected: a stale copy would answer
    /// with states that may no longer hold.
    fn live(&self) -> Result<(), BridgeError> {
        let status = self.status();
        if status.connected {
            Ok(())
        } else {
            Err(BridgeError::Ha(status.cause.unwrap_or_else(|| {
                HaError::Unreachable("not connected yet".into())
            })))
        }
    }

    /// Entities matching `query` that the bridge may touch.
    pub fn search(&self, query: &Query) -> Result<Vec<Entity>, BridgeError> {
        self.live()?;
        Ok(self
            .home()
            .search(query, |id| self.access.entity(id).is_ok()))
    }

    /// One entity.
    pub fn entity(&self, entity_id: &str) -> Result<Entity, BridgeError> {
        self.live()?;
        self.access
            .entity(entity_id)
            .map_err(BridgeError::NotAllowed)?;
        self.home()
            .entity(entity_id)
            .ok_or_else(|| BridgeError::Ha(HaError::UnknownEntity(entity_id.to_owned())))
    }

    /// The entities a spoken name may mean.
    pub fn resolve(
        &self,
        name: &str,
        domain: Option<&str>,
        area: Option<&str>,
    ) -> Result<Vec<Match>, BridgeError> {
        self.live()?;
        Ok(self
            .home()
            .resolve(name, domain, area, |id| self.access.entity(id).is_ok()))
    }

    /// Calls `domain.service` on `entity_ids` (none: a domain-wide call)
    /// with `data`, after checking each is allowed and known.
    pub async fn call(
        &self,
        domain: &str,
        service: &str,
        entity_ids: &[String],
        data: serde_json::Map<String, Value>,
    ) -> Result<CallResult, BridgeError> {
        self.live()?;
        if entity_ids.is_empty() {
            self.access
                .domain(domain)
                .map_err(BridgeError::NotAllowed)?;
        }
        if !self.home().has_service(domain, service) {
            return Err(BridgeError::Ha(HaError::UnknownService(format!(
                "{domain}.{service}"
            ))));
        }
        for id in entity_ids {
            self.access.entity(id).map_err(BridgeError::NotAllowed)?;
            if self.home().entity(id).is_none() {
                return Err(BridgeError::Ha(HaError::UnknownEntity(id.clone())));
            }
        }
        let mut body = Value::Object(data);
        if !entity_ids.is_empty() {
            body["entity_id"] = json!(entity_ids);
        }
        let result = self.rest.call_service(domain, service, &body).await;
        metrics::counter!("ha_bridge_service_calls_total", "result" => if result.is_ok() { "ok" } else { "error" })
            .increment(1);
        let changed = result?;
        // The event will say the same; recording it now means a read right
        // after the call already sees the new state.
        self.home_mut().update(&changed);
        let home = self.home();
        let entities = entity_ids.iter().filter_map(|id| home.entity(id)).collect();
        Ok(CallResult { changed, entities })
    }

    /// Text for Home Assistant's own conversation agent.
    pub async fn converse(&self, body: &Value) -> Result<Value, BridgeError> {
        Ok(self.rest.conversation(body).await?)
    }

    /// Keeps the cache live until `shutdown`: connect, snapshot, follow
    /// events; after a drop, wait (doubling from `reconnect_min_ms` to
    /// `reconnect_max_ms`) and start over.
    pub async fn follow(
        self: Arc<Self>,
        readiness: Readiness,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        if self.token.is_empty() {
            // Nothing to try until the owner gives a token: say so once.
            let e = HaError::NoToken;
            warn!(url = %self.config.url, "{e}; the bridge stays idle");
            self.set_status(|s| {
                s.error = Some(e.to_string());
                s.cause = Some(e.clone());
            });
            readiness.set(CHECK, false, e.to_string());
            shutdown.cancelled().await;
            return Ok(());
        }
        let min = Duration::from_millis(self.config.reconnect_min_ms);
        let max = Duration::from_millis(self.config.reconnect_max_ms);
        let mut wait = min;
        loop {
            let result = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                r = self.session(&readiness, &mut wait, min) => r,
            };
            let e = match result {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            let was_connected = self.status().connected;
            self.set_status(|s| {
                s.connected = false;
                s.error = Some(e.to_string());
                s.cause = Some(e.clone());
            });
            metrics::gauge!("ha_bridge_connected").set(0.0);
            readiness.set(CHECK, false, e.to_string());
            if was_connected {
                warn!(error = %e, "lost Home Assistant; reconnecting");
            } else {
                warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "cannot reach Home Assistant");
            }
            // A rejected token will not get better soon: do not hammer.
            if e == HaError::Unauthorized {
                wait = max;
            }
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(max);
        }
    }

    async fn session(
        &self,
        readiness: &Readiness,
        wait: &mut Duration,
        min: Duration,
    ) -> Result<(), HaError> {
        let mut session = Session::connect(&self.config, &self.token).await?;
        // Subscribed before the snapshot, so nothing between is missed:
        // events that arrive meanwhile are queued and applied after it.
        for event in EVENTS {
            session
                .command(json!({"type": "subscribe_events", "event_type": event}))
                .await?;
        }
        let states: Vec<State> =
            serde_json::from_value(session.command(json!({"type": "get_states"})).await?)
                .map_err(|e| HaError::Protocol(format!("states: {e}")))?;
        let (registry, areas, devices) = registries(&mut session).await?;
        let services = session.command(json!({"type": "get_services"})).await?;
        let home = Home::new(states, registry, areas, devices).with_services(&services);
        let entities = home.len();
        *self.home_mut() = home;
        self.set_status(|s| {
            s.connected = true;
            s.version = session.version.clone();
            s.entities = entities;
            s.syncs += 1;
            s.error = None;
            s.cause = None;
        });
        metrics::gauge!("ha_bridge_connected").set(1.0);
        metrics::counter!("ha_bridge_syncs_total").increment(1);
        readiness.set(
            CHECK,
            true,
            format!("Home Assistant {}: {entities} entities", session.version),
        );
        info!(version = %session.version, entities, "Home Assistant in sync");
        *wait = min;
        loop {
            let event = session.next_event().await?;
            let data = &event["data"];
            if event["event_type"] != "state_changed" {
                // A name, alias or area changed: read the registries again.
                let (registry, areas, devices) = registries(&mut session).await?;
                self.home_mut().set_registries(registry, areas, devices);
                continue;
            }
            let mut home = self.home_mut();
            home.apply(data);
            let n = home.len();
            drop(home);
            self.set_status(|s| s.entities = n);
            metrics::counter!("ha_bridge_state_changes_total", "domain" => domain_of(data["entity_id"].as_str().unwrap_or_default()).to_owned())
                .increment(1);
        }
    }
}

/// The events followed: states, and changes to what things are called.
const EVENTS: [&str; 4] = [
    "state_changed",
    "entity_registry_updated",
    "area_registry_updated",
    "device_registry_updated",
];

async fn registries(
    session: &mut Session,
) -> Result<(Vec<RegistryEntry>, Vec<Area>, Vec<Device>), HaError> {
    let mut entities: Vec<RegistryEntry> = list(session, "config/entity_registry/list").await?;
    // The list leaves aliases out; the full entries have them.
    if !entities.is_empty() {
        let ids: Vec<&str> = entities.iter().map(|e| e.entity_id.as_str()).collect();
        let command = json!({"type": "config/entity_registry/get_entries", "entity_ids": ids});
        match session.command(command).await {
            Ok(full) => {
                for e in &mut entities {
                    if let Some(aliases) = full[&e.entity_id]["aliases"].as_array() {
                        e.aliases = aliases
                            .iter()
                            .filter_map(|a| a.as_str().map(str::to_owned))
                            .collect();
                    }
                }
            }
            Err(e) => warn!(error = %e, "entity aliases not readable"),
        }
    }
    Ok((
        entities,
        list(session, "config/area_registry/list").await?,
        list(session, "config/device_registry/list").await?,
    ))
}

/// A registry list; a token without admin rights gets none (names then
/// come from the states' friendly names).
async fn list<T: serde::de::DeserializeOwned>(
    session: &mut Session,
    command: &str,
) -> Result<Vec<T>, HaError> {
    match session.command(json!({ "type": command })).await {
        Ok(v) => {
            serde_json::from_value(v).map_err(|e| HaError::Protocol(format!("{command}: {e}")))
        }
        Err(HaError::Unauthorized | HaError::Rejected(_)) => {
            warn!(
                command,
                "registry not readable with this token; using state names only"
            );
            Ok(Vec::new())
        }
        Err(e) => Err(e),
    }
}

/// Why an operation of the bridge failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BridgeError {
    #[error(transparent)]
    Ha(#[from] HaError),
    #[error("not allowed: {0}")]
    NotAllowed(String),
}
