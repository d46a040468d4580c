//! The intents that act on the house or read it: on and off
//! (`HassTurnOn`, `HassTurnOff`), brightness (`HassLightSet`), covers
//! (`HassOpenCover`, `HassCloseCover`) and states (`HassGetState`). A
//! command names one entity (slot `name`, an entity id) or a group (slots
//! `area`, `domain`, `device_class`).

use serde_json::{Map, Value, json};

use super::speech::{self, the};
use super::{Actions, Permitted, Reply, Stop, answered, done};
use crate::backends::{Decision, Entity, EntityQuery, Mode, ServiceCall};
use crate::intent::IntentMatch;

/// What a command is about.
#[derive(Debug)]
enum Targets {
    /// One entity, by name.
    One(Entity),
    /// The entities of a kind, maybe in an area.
    Group {
        entities: Vec<Entity>,
        /// The kind, plural: `lights`, `blinds`.
        things: String,
        /// The area's name.
        area: Option<String>,
    },
}

/// How to switch an entity of one domain on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Switch {
    /// The service's domain.
    domain: &'static str,
    service: &'static str,
    /// What was asked, as an infinitive: `unlock`.
    ask: &'static str,
    /// What was done: `Unlocked`.
    did: &'static str,
}

/// Domains switched by their own `turn_on` and `turn_off`.
const SWITCHED: [&str; 11] = [
    "light",
    "switch",
    "fan",
    "input_boolean",
    "automation",
    "media_player",
    "climate",
    "humidifier",
    "siren",
    "remote",
    "water_heater",
];

/// The service that switches an entity of `domain` on (or off); none for
/// what cannot be switched (sensors, people, the sun).
fn switch_of(domain: &str, on: bool) -> Option<Switch> {
    let switch = |domain: &'static str, service, ask, did| {
        Some(Switch {
            domain,
            service,
            ask,
            did,
        })
    };
    if let Some(own) = SWITCHED.iter().copied().find(|d| *d == domain) {
        return if on {
            switch(own, "turn_on", "turn on", "Turned on")
        } else {
            switch(own, "turn_off", "turn off", "Turned off")
        };
    }
    match (domain, on) {
        ("lock", true) => switch("lock", "lock", "lock", "Locked"),
        ("lock", false) => switch("lock", "unlock", "unlock", "Unlocked"),
        ("cover", true) => switch("cover", "open_cover", "open", "Opened"),
        ("cover", false) => switch("cover", "close_cover", "close", "Closed"),
        ("valve", true) => switch("valve", "open_valve", "open", "Opened"),
        ("valve", false) => switch("valve", "close_valve", "close", "Closed"),
        ("vacuum", true) => switch("vacuum", "start", "start", "Started"),
        ("vacuum", false) => switch("vacuum", "return_to_base", "stop", "Sent back"),
        ("scene", true) => switch("scene", "turn_on", "turn on", "Turned on"),
        ("script", true) => switch("script", "turn_on", "run", "Started"),
        ("script", false) => switch("script", "turn_off", "stop", "Stopped"),
        ("button", true) => switch("button", "press", "press", "Pressed"),
        ("input_button", true) => switch("input_button", "press", "press", "Pressed"),
        (
            "sensor" | "binary_sensor" | "weather" | "sun" | "person" | "device_tracker" | "zone"
            | "event" | "image" | "camera" | "calendar" | "update" | "scene" | "button"
            | "input_button",
            _,
        ) => None,
        (_, true) => switch("homeassistant", "turn_on", "turn on", "Turned on"),
        (_, false) => switch("homeassistant", "turn_off", "turn off", "Turned off"),
    }
}

impl Targets {
    fn entities(&self) -> &[Entity] {
        match self {
            Self::One(entity) => std::slice::from_ref(entity),
            Self::Group { entities, .. } => entities,
        }
    }

    /// How to speak of `entities` (some or all of the targets).
    fn describe(&self, entities: &[Entity]) -> String {
        match (self, entities) {
            (_, [entity]) => the(&entity.name),
            (Self::Group { things, area, .. }, _) if entities.len() == self.entities().len() => {
                match area {
                    Some(area) => format!("the {things} in {}", the(area)),
                    None => format!("the {things}"),
                }
            }
            _ => speech::join_and(&names(entities)),
        }
    }

    /// The domain the targets share (a group is read by domain).
    fn domain(&self) -> Option<&str> {
        let first = self.entities().first()?;
        self.entities()
            .iter()
            .all(|e| e.domain == first.domain)
            .then_some(first.domain.as_str())
    }
}

fn names(entities: &[Entity]) -> Vec<String> {
    entities.iter().map(|e| the(&e.name)).collect()
}

/// What to add when the policy allowed only some: "Guests can't use the
/// Pantry Light."
fn partly_denied(denied: &[(Entity, Decision)]) -> String {
    let Some((_, decision)) = denied.first() else {
        return String::new();
    };
    let entities: Vec<Entity> = denied.iter().map(|(e, _)| e.clone()).collect();
    let them = speech::join_and(&names(&entities));
    match &decision.mode {
        Mode::Guest => format!(" Guests can't use {them}."),
        Mode::Owner => format!(" I'm not allowed to use {them}."),
        Mode::Other(mode) => format!(" I can't use {them} in {mode} mode."),
    }
}

impl Actions {
    /// The entities `command` names; a fixed `domain` slot must agree with
    /// a named entity's.
    async fn targets(&self, command: &IntentMatch) -> Result<Targets, Stop> {
        let domain = command.text("domain");
        if let Some(entity_id) = command.text("name") {
            let entity = self.home.entity(entity_id).await?;
            if domain.is_some_and(|d| d != entity.domain) {
                return Err(Stop::Unsupported(format!(
                    "Sorry, {} can't do that.",
                    the(&entity.name)
                )));
            }
            return Ok(Targets::One(entity));
        }
        let area = command.text("area");
        if domain.is_none() && area.is_none() {
            return Err(Stop::Unsupported("Sorry, which device do you mean?".into()));
        }
        let query = EntityQuery {
            text: None,
            domain: domain.map(str::to_owned),
            area: area.map(str::to_owned),
        };
        let device_class = command.text("device_class");
        let mut entities = self.home.entities(&query).await?;
        if let Some(class) = device_class {
            entities.retain(|e| e.device_class() == Some(class));
        }
        let things = speech::things(device_class.or(domain).unwrap_or("device"));
        if entities.is_empty() {
            return Err(Stop::NotFound(match area {
                Some(area) => format!("There are no {things} in {}.", the(area)),
                None => format!("I couldn't find any {things}."),
            }));
        }
        Ok(Targets::Group {
            entities,
            things,
            area: area.map(str::to_owned),
        })
    }

    /// Runs `service` of `domain` on the allowed targets; says `did` and
    /// what was left out.
    async fn run(
        &self,
        targets: &Targets,
        permitted: Permitted,
        domain: &str,
        service: &str,
        data: Map<String, Value>,
        did: impl FnOnce(&str) -> String,
    ) -> Result<Reply, Stop> {
        let call = ServiceCall {
            domain: domain.to_owned(),
            service: service.to_owned(),
            entity_ids: permitted
                .allowed
                .iter()
                .map(|e| e.entity_id.clone())
                .collect(),
            data,
        };
        self.home.call(&call).await?;
        let what = targets.describe(&permitted.allowed);
        Ok(done(format!(
            "{}{}",
            did(&what),
            partly_denied(&permitted.denied)
        )))
    }

    /// `HassTurnOn` / `HassTurnOff`.
    pub(super) async fn switch(&self, command: &IntentMatch, on: bool) -> Result<Reply, Stop> {
        let targets = self.targets(command).await?;
        let Some(domain) = targets.domain() else {
            return Err(Stop::Unsupported(
                "Sorry, I can switch only one kind of device at a time.".into(),
            ));
        };
        let Some(switch) = switch_of(domain, on) else {
            let how = if on { "on" } else { "off" };
            let what = targets.describe(targets.entities());
            return Err(Stop::Unsupported(format!(
                "Sorry, {what} can't be turned {how}."
            )));
        };
        let data = Map::new();
        let permitted = self
            .permit(
                &command.intent,
                targets.entities().to_vec(),
                Some(switch.service),
                &data,
                || format!("{} {}", switch.ask, targets.describe(targets.entities())),
            )
            .await?;
        self.run(
            &targets,
            permitted,
            switch.domain,
            switch.service,
            data,
            |what| format!("{} {what}.", switch.did),
        )
        .await
    }

    /// `HassLightSet`: brightness in percent.
    pub(super) async fn light_set(&self, command: &IntentMatch) -> Result<Reply, Stop> {
        let Some(brightness) = command.number("brightness").map(|b| b.clamp(0, 100)) else {
            return Err(Stop::Unsupported("Sorry, to what brightness?".into()));
        };
        let targets = self.targets(command).await?;
        if targets.domain() != Some("light") {
            let what = targets.describe(targets.entities());
            return Err(Stop::Unsupported(format!("Sorry, {what} can't be dimmed.")));
        }
        let mut data = Map::new();
        data.insert("brightness_pct".into(), json!(brightness));
        let permitted = self
            .permit(
                &command.intent,
                targets.entities().to_vec(),
                Some("turn_on"),
                &data,
                || {
                    format!(
                        "set {} to {brightness} percent",
                        targets.describe(targets.entities())
                    )
                },
            )
            .await?;
        self.run(&targets, permitted, "light", "turn_on", data, |what| {
            format!("Set {what} to {brightness} percent.")
        })
        .await
    }

    /// `HassOpenCover` / `HassCloseCover`.
    pub(super) async fn cover(&self, command: &IntentMatch, open: bool) -> Result<Reply, Stop> {
        let targets = self.targets(command).await?;
        let (service, ask, did) = if open {
            ("open_cover", "open", "Opened")
        } else {
            ("close_cover", "close", "Closed")
        };
        if targets.domain() != Some("cover") {
            let what = targets.describe(targets.entities());
            return Err(Stop::Unsupported(format!(
                "Sorry, {what} can't be {}.",
                if open { "opened" } else { "closed" }
            )));
        }
        let data = Map::new();
        let permitted = self
            .permit(
                &command.intent,
                targets.entities().to_vec(),
                Some(service),
                &data,
                || format!("{ask} {}", targets.describe(targets.entities())),
            )
            .await?;
        self.run(&targets, permitted, "cover", service, data, |what| {
            format!("{did} {what}.")
        })
        .await
    }

    /// `HassGetState`: a state, a yes or no (slot `state`), or the
    /// temperature in an area (slot `device_class`: `temperature`).
    pub(super) async fn get_state(&self, command: &IntentMatch) -> Result<Reply, Stop> {
        if command.text("name").is_none() && command.text("device_class") == Some("temperature") {
            return self.temperature(command).await;
        }
        let targets = self.targets(command).await?;
        let permitted = self
            .permit(
                &command.intent,
                targets.entities().to_vec(),
                None,
                &Map::new(),
                || format!("check {}", targets.describe(targets.entities())),
            )
            .await?;
        let asked = command.text("state");
        let entities = &permitted.allowed;
        let speech = match (entities.as_slice(), asked) {
            ([entity], asked) => one_state(entity, asked),
            (_, Some(asked)) => {
                let (yes, no): (Vec<&Entity>, Vec<&Entity>) =
                    entities.iter().partition(|e| speech::state(e) == asked);
                let all = targets.describe(entities);
                if no.is_empty() {
                    format!("Yes, {all} are {asked}.")
                } else if yes.is_empty() {
                    format!("No, none of {all} are {asked}.")
                } else {
                    let others: Vec<Entity> = no.into_iter().cloned().collect();
                    let verb = if others.len() == 1 {
                        speech::be_not(&others[0].name)
                    } else {
                        "aren't"
                    };
                    format!("No, {} {verb} {asked}.", speech::join_and(&names(&others)))
                }
            }
            (_, None) => {
                let each: Vec<String> = entities
                    .iter()
                    .map(|e| {
                        format!(
                            "{} {} {}",
                            the(&e.name),
                            speech::be(&e.name),
                            speech::state(e)
                        )
                    })
                    .collect();
                format!("{}.", speech::capitalize(&speech::join_and(&each)))
            }
        };
        Ok(answered(format!(
            "{speech}{}",
            partly_denied(&permitted.denied)
        )))
    }

    /// The temperature in an area: its temperature sensors (the mean of
    /// several), else its thermostats' current temperature.
    async fn temperature(&self, command: &IntentMatch) -> Result<Reply, Stop> {
        let area = command.text("area");
        let query = |domain: &str| EntityQuery {
            text: None,
            domain: Some(domain.to_owned()),
            area: area.map(str::to_owned),
        };
        let reading = |e: &Entity| -> Option<f64> {
            match e.domain.as_str() {
                "sensor" => e
                    .state
                    .parse()
                    .ok()
                    .filter(|_| e.device_class() == Some("temperature")),
                _ => e
                    .attributes
                    .get("current_temperature")
                    .and_then(Value::as_f64),
            }
        };
        let mut entities: Vec<Entity> = self
            .home
            .entities(&query("sensor"))
            .await?
            .into_iter()
            .filter(|e| reading(e).is_some())
            .collect();
        if entities.is_empty() {
            entities = self
                .home
                .entities(&query("climate"))
                .await?
                .into_iter()
                .filter(|e| reading(e).is_some())
                .collect();
        }
        let place = area.map(|a| format!(" in {}", the(a))).unwrap_or_default();
        if entities.is_empty() {
            return Err(Stop::NotFound(format!(
                "I don't know the temperature{place}."
            )));
        }
        let permitted = self
            .permit(&command.intent, entities, None, &Map::new(), || {
                format!("check the temperature{place}")
            })
            .await?;
        let readings: Vec<f64> = permitted.allowed.iter().filter_map(reading).collect();
        let mean = readings.iter().sum::<f64>() / readings.len().max(1) as f64;
        let unit = permitted
            .allowed
            .iter()
            .find_map(|e| e.attribute("unit_of_measurement"));
        let value = match unit {
            Some(_) => speech::measurement((mean * 10.0).round() / 10.0, unit),
            None => format!("{} degrees", speech::number((mean * 10.0).round() / 10.0)),
        };
        Ok(answered(format!("It's {value}{place}.")))
    }
}

/// The state of one entity; with `asked`, as a yes or no.
fn one_state(entity: &Entity, asked: Option<&str>) -> String {
    let name = the(&entity.name);
    let be = speech::be(&entity.name);
    if entity.state == "unknown" {
        return format!("I don't know the state of {name}.");
    }
    let state = speech::state(entity);
    match asked {
        Some(asked) if asked == state => format!("Yes, {name} {be} {state}."),
        Some(_) => format!("No, {name} {be} {state}."),
        None => format!("{} {be} {state}.", speech::capitalize(&name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_by_domain() {
        let service = |domain: &str, on: bool| {
            switch_of(domain, on).map(|s| format!("{}.{} ({})", s.domain, s.service, s.did))
        };
        assert_eq!(
            service("light", true).as_deref(),
            Some("light.turn_on (Turned on)")
        );
        assert_eq!(
            service("lock", false).as_deref(),
            Some("lock.unlock (Unlocked)")
        );
        assert_eq!(
            service("cover", true).as_deref(),
            Some("cover.open_cover (Opened)")
        );
        assert_eq!(
            service("input_select", true).as_deref(),
            Some("homeassistant.turn_on (Turned on)")
        );
        assert_eq!(
            service("scene", true).as_deref(),
            Some("scene.turn_on (Turned on)")
        );
        assert_eq!(service("scene", false), None);
        assert_eq!(service("sensor", true), None);
    }
}
