//! The home as Home Assistant describes it: entity states and the entity,
//! area and device registries, kept current by `state_changed` events, and
//! the lookups the orchestrator needs (search, and a spoken name resolved
//! to entities).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::access::domain_of;

/// One entity's state as Home Assistant sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub entity_id: String,
    pub state: String,
    #[serde(default)]
    pub attributes: serde_json::Map<String, Value>,
    #[serde(default)]
    pub last_changed: String,
}

/// An entity registry entry (the parts used here).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RegistryEntry {
    pub entity_id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub original_name: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub area_id: Option<String>,
    #[serde(default)]
    pub device_id: Option<String>,
}

/// An area registry entry.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Area {
    pub area_id: String,
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// A device registry entry.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Device {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub name_by_user: Option<String>,
    #[serde(default)]
    pub area_id: Option<String>,
}

/// An entity as the bridge's API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entity {
    pub entity_id: String,
    pub domain: String,
    pub name: String,
    pub aliases: Vec<String>,
    pub area: Option<String>,
    pub device: Option<String>,
    pub state: String,
    pub attributes: serde_json::Map<String, Value>,
    pub last_changed: String,
}

/// An entity a spoken name may mean, with how well it matches (0–1).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Match {
    pub score: f32,
    pub entity: Entity,
}

/// Everything known about the home.
#[derive(Debug, Clone, Default)]
pub struct Home {
    states: HashMap<String, State>,
    registry: HashMap<String, RegistryEntry>,
    areas: HashMap<String, Area>,
    devices: HashMap<String, Device>,
    /// Service names by domain; `None` when not known.
    services: Option<HashMap<String, Vec<String>>>,
}

/// What a search asks for; every given part must match.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Query {
    /// Words in the name, an alias or the entity id.
    #[serde(default)]
    pub q: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
    /// An area's name or alias.
    #[serde(default)]
    pub area: Option<String>,
}

impl Home {
    /// A home from a full snapshot.
    pub fn new(
        states: Vec<State>,
        registry: Vec<RegistryEntry>,
        areas: Vec<Area>,
        devices: Vec<Device>,
    ) -> Self {
        Self {
            states: states
                .into_iter()
                .map(|s| (s.entity_id.clone(), s))
                .collect(),
            registry: registry
                .into_iter()
                .map(|e| (e.entity_id.clone(), e))
                .collect(),
            areas: areas.into_iter().map(|a| (a.area_id.clone(), a)).collect(),
            devices: devices.into_iter().map(|d| (d.id.clone(), d)).collect(),
            services: None,
        }
    }

    /// Replaces the registries (names, aliases, areas changed).
    pub fn set_registries(
        &mut self,
        registry: Vec<RegistryEntry>,
        areas: Vec<Area>,
        devices: Vec<Device>,
    ) {
        let fresh = Self::new(Vec::new(), registry, areas, devices);
        self.registry = fresh.registry;
        self.areas = fresh.areas;
        self.devices = fresh.devices;
    }

    /// The services Home Assistant offers, from `get_services`
    /// (`{domain: {service: description}}`).
    pub fn with_services(mut self, services: &Value) -> Self {
        self.services = services.as_object().map(|domains| {
            domains
                .iter()
                .map(|(d, s)| {
                    (
                        d.clone(),
                        s.as_object()
                            .map(|s| s.keys().cloned().collect())
                            .unwrap_or_default(),
                    )
                })
                .collect()
        });
        self
    }

    /// Whether `domain.service` exists (true when the list is not known).
    pub fn has_service(&self, domain: &str, service: &str) -> bool {
        self.services.as_ref().is_none_or(|s| {
            s.get(domain)
                .is_some_and(|names| names.iter().any(|n| n == service))
        })
    }

    /// Entities with a state.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// True when no state is known.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// Applies a `state_changed` event's data: a new state, or removal.
    pub fn apply(&mut self, data: &Value) {
        let Some(id) = data.get("entity_id").and_then(Value::as_str) else {
            return;
        };
        match data.get("new_state") {
            Some(v) if !v.is_null() => {
                if let Ok(state) = serde_json::from_value::<State>(v.clone()) {
                    self.states.insert(id.to_owned(), state);
                }
            }
            _ => {
                self.states.remove(id);
            }
        }
    }

    /// Records states returned by a service call.
    pub fn update(&mut self, states: &[State]) {
        for s in states {
            self.states.insert(s.entity_id.clone(), s.clone());
        }
    }

    /// One entity.
    pub fn entity(&self, entity_id: &str) -> Option<Entity> {
        self.states.get(entity_id).map(|s| self.describe(s))
    }

    /// Entities matching `query`, by entity id, among those `keep` keeps.
    pub fn search(&self, query: &Query, keep: impl Fn(&str) -> bool) -> Vec<Entity> {
        let words = query.q.as_deref().map(normalize).unwrap_or_default();
        let mut found: Vec<Entity> = self
            .states
            .values()
            .filter(|s| keep(&s.entity_id))
            .filter(|s| {
                query
                    .domain
                    .as_deref()
                    .is_none_or(|d| domain_of(&s.entity_id) == d)
            })
            .map(|s| self.describe(s))
            .filter(|e| query.area.as_deref().is_none_or(|a| self.in_area(e, a)))
            .filter(|e| {
                words.is_empty()
                    || names(e)
                        .iter()
                        .any(|n| contains_words(&normalize(n), &words))
            })
            .collect();
        found.sort_by(|a, b| a.entity_id.cmp(&b.entity_id));
        found
    }

    /// The entities a spoken `name` may mean, best first: an exact name or
    /// alias scores 1, a name whose words all appear (or that appears in
    /// the phrase) less, by how much of it is covered.
    pub fn resolve(
        &self,
        name: &str,
        domain: Option<&str>,
        area: Option<&str>,
        keep: impl Fn(&str) -> bool,
    ) -> Vec<Match> {
        let spoken = normalize(name);
        if spoken.is_empty() {
            return Vec::new();
        }
        let query = Query {
            q: None,
            domain: domain.map(str::to_owned),
            area: area.map(str::to_owned),
        };
        let mut matches: Vec<Match> = self
            .search(&query, keep)
            .into_iter()
            .filter_map(|entity| {
                let score = names(&entity)
                    .iter()
                    .map(|n| similarity(&spoken, &normalize(n)))
                    .fold(0.0, f32::max);
                (score >= 0.5).then_some(Match { score, entity })
            })
            .collect();
        matches.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.entity.entity_id.cmp(&b.entity.entity_id))
        });
        matches
    }

    fn describe(&self, s: &State) -> Entity {
        let entry = self.registry.get(&s.entity_id);
        let device = entry
            .and_then(|e| e.device_id.as_ref())
            .and_then(|id| self.devices.get(id));
        let area_id = entry
            .and_then(|e| e.area_id.clone())
            .or_else(|| device.and_then(|d| d.area_id.clone()));
        let friendly = s.attributes.get("friendly_name").and_then(Value::as_str);
        let name = entry
            .and_then(|e| e.name.clone())
            .or_else(|| friendly.map(str::to_owned))
            .or_else(|| entry.and_then(|e| e.original_name.clone()))
            .unwrap_or_else(|| object_id(&s.entity_id).replace('_', " "));
        Entity {
            entity_id: s.entity_id.clone(),
            domain: domain_of(&s.entity_id).to_owned(),
            name,
            aliases: entry.map(|e| e.aliases.clone()).unwrap_or_default(),
            area: area_id
                .and_then(|id| self.areas.get(&id))
                .map(|a| a.name.clone()),
            device: device.and_then(|d| d.name_by_user.clone().or_else(|| d.name.clone())),
            state: s.state.clone(),
            attributes: s.attributes.clone(),
            last_changed: s.last_changed.clone(),
        }
    }

    fn in_area(&self, entity: &Entity, area: &str) -> bool {
        let wanted = normalize(area);
        let Some(name) = &entity.area else {
            return false;
        };
        self.areas.values().filter(|a| &a.name == name).any(|a| {
            std::iter::once(&a.name)
                .chain(&a.aliases)
                .any(|n| normalize(n) == wanted)
        })
    }
}

fn object_id(entity_id: &str) -> &str {
    entity_id.split_once('.').map_or(entity_id, |(_, o)| o)
}

/// What an entity may be called: its name, aliases, and its object id.
fn names(e: &Entity) -> Vec<String> {
    let mut names = vec![e.name.clone(), object_id(&e.entity_id).replace('_', " ")];
    names.extend(e.aliases.iter().cloned());
    names
}

/// Lowercase words, punctuation dropped, without "the".
fn normalize(s: &str) -> Vec<String> {
    s.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && *w != "the")
        .map(|w| w.trim_end_matches('s').to_owned())
        .filter(|w| !w.is_empty())
        .collect()
}

fn contains_words(haystack: &[String], words: &[String]) -> bool {
    words.iter().all(|w| haystack.contains(w))
}

/// 1 for the same words; otherwise the share of the longer one's words
/// the shorter covers, when it covers all of its own.
fn similarity(spoken: &[String], name: &[String]) -> f32 {
    if name.is_empty() {
        return 0.0;
    }
    if spoken == name {
        return 1.0;
    }
    let (short, long) = if spoken.len() <= name.len() {
        (spoken, name)
    } else {
        (name, spoken)
    };
    if contains_words(long, short) {
        0.9 * short.len() as f32 / long.len() as f32
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn home() -> Home {
        let state = |id: &str, name: &str, s: &str| State {
            entity_id: id.into(),
            state: s.into(),
            attributes: json!({ "friendly_name": name })
                .as_object()
                .cloned()
                .unwrap_or_default(),
            last_changed: String::new(),
        };
        Home::new(
            vec![
                state("light.kitchen_lights", "Kitchen Lights", "on"),
                state("light.bed_light", "Bed Light", "off"),
                state("switch.decorative_lights", "Decorative Lights", "on"),
                state("lock.front_door", "Front Door", "locked"),
            ],
            vec![
                RegistryEntry {
                    entity_id: "light.bed_light".into(),
                    aliases: vec!["night lamp".into()],
                    area_id: Some("bedroom".into()),
                    ..RegistryEntry::default()
                },
                RegistryEntry {
                    entity_id: "light.kitchen_lights".into(),
                    device_id: Some("d1".into()),
                    ..RegistryEntry::default()
                },
            ],
            vec![
                Area {
                    area_id: "bedroom".into(),
                    name: "Bedroom".into(),
                    aliases: vec!["master bedroom".into()],
                },
                Area {
                    area_id: "kitchen".into(),
                    name: "Kitchen".into(),
                    aliases: vec![],
                },
            ],
            vec![Device {
                id: "d1".into(),
                name: Some("Ceiling".into()),
                area_id: Some("kitchen".into()),
                ..Device::default()
            }],
        )
    }

    #[test]
    fn names_aliases_and_areas_resolve() {
        let h = home();
        let all = |_: &str| true;
        let best = |name: &str, area: Option<&str>| {
            h.resolve(name, None, area, all)
                .first()
                .map(|m| m.entity.entity_id.clone())
        };
        assert_eq!(
            best("the kitchen lights", None).as_deref(),
            Some("light.kitchen_lights")
        );
        assert_eq!(
            best("Kitchen light", None).as_deref(),
            Some("light.kitchen_lights")
        );
        assert_eq!(best("night lamp", None).as_deref(), Some("light.bed_light"));
        assert_eq!(
            best("bed light", Some("master bedroom")).as_deref(),
            Some("light.bed_light")
        );
        assert_eq!(best("bed light", Some("kitchen")), None);
        assert_eq!(best("garage door", None), None);
        // The device's area is the entity's when the entity has none.
        assert_eq!(
            h.entity("light.kitchen_lights")
                .and_then(|e| e.area)
                .as_deref(),
            Some("Kitchen")
        );
        assert_eq!(h.resolve("", None, None, all), vec![]);
    }

    #[test]
    fn search_filters_and_events_update() {
        let mut h = home();
        let lights = h.search(
            &Query {
                domain: Some("light".into()),
                ..Query::default()
            },
            |_| true,
        );
        assert_eq!(lights.len(), 2);
        // Plurals match singulars; what `keep` drops is never found.
        let lit = h.search(
            &Query {
                q: Some("lights".into()),
                ..Query::default()
            },
            |_| true,
        );
        assert_eq!(
            lit.iter().map(|e| e.entity_id.as_str()).collect::<Vec<_>>(),
            [
                "light.bed_light",
                "light.kitchen_lights",
                "switch.decorative_lights"
            ]
        );
        let door = |keep: fn(&str) -> bool| {
            h.search(
                &Query {
                    q: Some("front door".into()),
                    ..Query::default()
                },
                keep,
            )
            .len()
        };
        assert_eq!(door(|_| true), 1);
        assert_eq!(door(|id| !id.starts_with("lock.")), 0);
        h.apply(&json!({"entity_id": "light.bed_light", "new_state": {"entity_id": "light.bed_light", "state": "on", "attributes": {}, "last_changed": "t"}}));
        assert_eq!(
            h.entity("light.bed_light").map(|e| e.state).as_deref(),
            Some("on")
        );
        h.apply(&json!({"entity_id": "light.bed_light", "new_state": null}));
        assert!(h.entity("light.bed_light").is_none());
        assert_eq!(h.len(), 3);
    }
}
