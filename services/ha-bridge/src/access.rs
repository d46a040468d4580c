//! Which entities the bridge will ever touch: the owner's allowlist and
//! denylist of domains and entities. An entity named in a list wins over
//! its domain; a denied entity wins over everything.

use crate::config::Config;

/// The rules, from the config.
#[derive(Debug, Clone, Default)]
pub struct Access {
    allow_domains: Vec<String>,
    deny_domains: Vec<String>,
    allow_entities: Vec<String>,
    deny_entities: Vec<String>,
}

impl Access {
    /// The rules of `config`.
    pub fn new(config: &Config) -> Self {
        Self {
            allow_domains: config.allow_domains.clone(),
            deny_domains: config.deny_domains.clone(),
            allow_entities: config.allow_entities.clone(),
            deny_entities: config.deny_entities.clone(),
        }
    }

    /// `Ok` when the bridge may touch `entity_id`, else the rule that says no.
    pub fn entity(&self, entity_id: &str) -> Result<(), String> {
        if self.deny_entities.iter().any(|e| e == entity_id) {
            return Err(format!("{entity_id} is on the bridge's denylist"));
        }
        if self.allow_entities.iter().any(|e| e == entity_id) {
            return Ok(());
        }
        self.domain(domain_of(entity_id))
    }

    /// `Ok` when the bridge may use services of `domain` at all.
    pub fn domain(&self, domain: &str) -> Result<(), String> {
        if self.deny_domains.iter().any(|d| d == domain) {
            return Err(format!("the {domain} domain is on the bridge's denylist"));
        }
        if !self.allow_domains.is_empty() && !self.allow_domains.iter().any(|d| d == domain) {
            return Err(format!(
                "the {domain} domain is not on the bridge's allowlist"
            ));
        }
        Ok(())
    }

    /// Whether any entity of `domain` is allowed by name.
    pub fn allows_some_entity_of(&self, domain: &str) -> bool {
        self.allow_entities.iter().any(|e| domain_of(e) == domain)
    }
}

/// `light` of `light.kitchen_lights`.
pub fn domain_of(entity_id: &str) -> &str {
    entity_id.split_once('.').map_or(entity_id, |(d, _)| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(allow_domains: &[&str], deny_entities: &[&str], allow_entities: &[&str]) -> Access {
        let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
        Access::new(&Config {
            allow_domains: strings(allow_domains),
            deny_entities: strings(deny_entities),
            allow_entities: strings(allow_entities),
            ..Config::default()
        })
    }

    #[test]
    fn rules_in_order() {
        // Defaults: everything but locks and alarms.
        let a = access(&[], &[], &[]);
        assert!(a.entity("light.kitchen_lights").is_ok());
        assert!(a.entity("lock.front_door").is_err());
        assert!(a.entity("alarm_control_panel.home").is_err());
        // An allowlist of domains shuts out the rest.
        let a = access(&["light"], &[], &[]);
        assert!(a.entity("light.x").is_ok());
        assert!(a.entity("switch.x").is_err());
        // A named entity wins over its domain; a denied one over all.
        let a = access(&[], &["light.bedroom"], &["lock.shed"]);
        assert!(a.entity("lock.shed").is_ok());
        assert!(a.entity("lock.front_door").is_err());
        assert!(a.entity("light.bedroom").is_err());
        assert!(a.allows_some_entity_of("lock"));
        assert!(
            a.entity("light.bedroom")
                .is_err_and(|e| e.contains("denylist"))
        );
    }
}
