//! What each mode may do, from YAML (the built-in default is
//! `policy/default.yaml`): intents, domains and entities allowed or denied,
//! numeric limits on service data, and the knowledge collections that may
//! be searched. A check names the rule that decided it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::schedule::Mode;

/// The policy the service starts with when no file is configured.
pub const DEFAULT_YAML: &str = include_str!("../policy/default.yaml");

/// Allowed and denied names; `"*"` in `allow` allows all.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Lists {
    pub allow: Vec<String>,
    pub deny: Vec<String>,
}

/// An inclusive numeric range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// One mode's rules.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rules {
    pub intents: Vec<String>,
    pub domains: Lists,
    pub entities: Lists,
    /// `"domain.attribute"` → range of the attribute in service data.
    pub limits: BTreeMap<String, Limit>,
    pub rag_collections: Vec<String>,
}

/// The whole policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub owner: Rules,
    pub guest: Rules,
}

/// Something the assistant is about to do.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Action {
    pub intent: Option<String>,
    pub domain: Option<String>,
    pub entity_id: Option<String>,
    pub service: Option<String>,
    pub data: serde_json::Map<String, Value>,
    /// A knowledge collection to search.
    pub collection: Option<String>,
}

/// The answer to a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    /// The rule that decided (`guest.domains.deny`, ...).
    pub rule: String,
    /// For people.
    pub reason: String,
}

impl Policy {
    /// A policy from YAML, checked for sense.
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        let policy: Self = serde_yaml_ng::from_str(text).map_err(|e| format!("policy: {e}"))?;
        for (mode, rules) in [("owner", &policy.owner), ("guest", &policy.guest)] {
            for (key, limit) in &rules.limits {
                if key
                    .split_once('.')
                    .is_none_or(|(d, a)| d.is_empty() || a.is_empty())
                {
                    return Err(format!(
                        "policy: {mode}.limits key {key:?} is not domain.attribute"
                    ));
                }
                if let (Some(lo), Some(hi)) = (limit.min, limit.max)
                    && lo > hi
                {
                    return Err(format!(
                        "policy: {mode}.limits.{key}: min {lo} is above max {hi}"
                    ));
                }
            }
        }
        Ok(policy)
    }

    /// The built-in policy.
    pub fn default_policy() -> Self {
        // A test checks the file parses; a broken build-in is a bug.
        Self::from_yaml(DEFAULT_YAML).unwrap_or_else(|_| Self {
            owner: Rules::default(),
            guest: Rules::default(),
        })
    }

    /// Whether `mode` allows `action`, and by which rule.
    pub fn check(&self, mode: Mode, action: &Action) -> Decision {
        let (name, rules) = match mode {
            Mode::Owner => ("owner", &self.owner),
            Mode::Guest => ("guest", &self.guest),
        };
        let deny = |rule: &str, reason: String| Decision {
            allowed: false,
            rule: format!("{name}.{rule}"),
            reason,
        };
        let domain = action.domain.clone().or_else(|| {
            action
                .entity_id
                .as_deref()
                .and_then(|e| e.split_once('.'))
                .map(|(d, _)| d.to_owned())
        });
        let mut entity_allowed = false;
        if let Some(id) = &action.entity_id {
            if rules.entities.deny.contains(id) {
                return deny(
                    "entities.deny",
                    format!("{id} is not available in {name} mode"),
                );
            }
            entity_allowed = rules.entities.allow.contains(id);
        }
        if let (Some(d), false) = (&domain, entity_allowed) {
            if rules.domains.deny.contains(d) {
                return deny(
                    "domains.deny",
                    format!("{d} devices are not available in {name} mode"),
                );
            }
            if !allows(&rules.domains.allow, d) {
                return deny(
                    "domains.allow",
                    format!("{d} devices are not among those allowed in {name} mode"),
                );
            }
        }
        if let Some(intent) = &action.intent
            && !allows(&rules.intents, intent)
        {
            return deny("intents", format!("{intent} is not allowed in {name} mode"));
        }
        if let Some(d) = &domain {
            for (key, limit) in &rules.limits {
                let Some((ld, attribute)) = key.split_once('.') else {
                    continue;
                };
                let Some(value) = action
                    .data
                    .get(attribute)
                    .and_then(Value::as_f64)
                    .filter(|_| ld == d)
                else {
                    continue;
                };
                let below = limit.min.is_some_and(|lo| value < lo);
                let above = limit.max.is_some_and(|hi| value > hi);
                if below || above {
                    let range = format!(
                        "{}–{}",
                        limit.min.map_or("…".into(), |v| v.to_string()),
                        limit.max.map_or("…".into(), |v| v.to_string())
                    );
                    return deny(
                        &format!("limits.{key}"),
                        format!("{attribute} {value} is outside {range} in {name} mode"),
                    );
                }
            }
        }
        if let Some(c) = &action.collection
            && !allows(&rules.rag_collections, c)
        {
            return deny(
                "rag_collections",
                format!("the {c} collection is not searchable in {name} mode"),
            );
        }
        Decision {
            allowed: true,
            rule: format!("{name}.allowed"),
            reason: format!("allowed in {name} mode"),
        }
    }
}

fn allows(list: &[String], name: &str) -> bool {
    list.iter().any(|n| n == "*" || n == name)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn action(v: Value) -> Action {
        serde_json::from_value(v).unwrap()
    }

    /// Every rule of the default policy, each deciding once.
    #[test]
    fn the_policy_table() {
        let p = Policy::default_policy();
        assert_eq!(Policy::from_yaml(DEFAULT_YAML).as_ref(), Ok(&p));
        let cases = [
            (
                Mode::Owner,
                json!({"intent": "HassTurnOn", "entity_id": "lock.front_door"}),
                "owner.allowed",
            ),
            (
                Mode::Guest,
                json!({"intent": "HassTurnOn", "entity_id": "light.kitchen"}),
                "guest.allowed",
            ),
            (
                Mode::Guest,
                json!({"intent": "HassTurnOff", "entity_id": "lock.front_door"}),
                "guest.domains.deny",
            ),
            (
                Mode::Guest,
                json!({"domain": "camera", "service": "snapshot"}),
                "guest.domains.deny",
            ),
            (
                Mode::Guest,
                json!({"entity_id": "vacuum.robot", "intent": "HassTurnOn"}),
                "guest.domains.allow",
            ),
            (
                Mode::Guest,
                json!({"intent": "HassNevermind"}),
                "guest.intents",
            ),
            (
                Mode::Guest,
                json!({"intent": "HassClimateSetTemperature", "entity_id": "climate.hall", "data": {"temperature": 28}}),
                "guest.limits.climate.temperature",
            ),
            (
                Mode::Guest,
                json!({"intent": "HassClimateSetTemperature", "entity_id": "climate.hall", "data": {"temperature": 21.5}}),
                "guest.allowed",
            ),
            (
                Mode::Guest,
                json!({"intent": "question", "collection": "owner_documents"}),
                "guest.rag_collections",
            ),
            (
                Mode::Guest,
                json!({"intent": "question", "collection": "house_guide"}),
                "guest.allowed",
            ),
            (
                Mode::Owner,
                json!({"intent": "question", "collection": "owner_documents"}),
                "owner.allowed",
            ),
        ];
        for (mode, a, rule) in cases {
            let d = p.check(mode, &action(a.clone()));
            assert_eq!(d.rule, rule, "{mode:?} {a}: {}", d.reason);
            assert_eq!(d.allowed, rule.ends_with(".allowed"), "{a}");
        }
    }

    #[test]
    fn named_entities_win_over_their_domain() {
        let yaml = DEFAULT_YAML.replacen(
            "  entities: { allow: [], deny: [] }\n  limits:\n",
            "  entities: { allow: [lock.shed], deny: [light.nursery] }\n  limits:\n",
            1,
        );
        let p = Policy::from_yaml(&yaml).unwrap();
        let check = |id: &str| {
            p.check(
                Mode::Guest,
                &action(json!({"intent": "HassTurnOn", "entity_id": id})),
            )
            .rule
        };
        assert_eq!(check("lock.shed"), "guest.allowed");
        assert_eq!(check("lock.front_door"), "guest.domains.deny");
        assert_eq!(check("light.nursery"), "guest.entities.deny");
    }

    #[test]
    fn bad_policies_are_refused() {
        for (yaml, expected) in [
            ("owner: {}\n", "guest"),
            ("owner: {}\nguest: {intents: 3}\n", "intents"),
            (
                "owner: {}\nguest: {limits: {temperature: {min: 1}}}\n",
                "domain.attribute",
            ),
            (
                "owner: {}\nguest: {limits: {climate.temperature: {min: 30, max: 20}}}\n",
                "above max",
            ),
            ("owner: {}\nguest: {colour: red}\n", "colour"),
        ] {
            let err = Policy::from_yaml(yaml).unwrap_err();
            assert!(err.contains(expected), "{yaml:?}: {err}");
        }
    }
}
