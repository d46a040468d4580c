//! Pieces of spoken English: names with their article and verb, lists,
//! durations, states, measurements and times of day. Replies are read by
//! text to speech, so everything is words and plain numbers.

use chrono::{DateTime, Datelike, Local, NaiveDateTime, Timelike, Utc};
use chrono_tz::Tz;

use crate::backends::Entity;

/// `Kitchen Lights` → `the Kitchen Lights`; a name that already has its
/// determiner (`My Lamp`, `Anna's Lamp`, `The Den`) stays as it is.
pub fn the(name: &str) -> String {
    let first = name.split_whitespace().next().unwrap_or_default();
    let lower = first.to_lowercase();
    let determined = matches!(lower.as_str(), "the" | "my" | "our" | "a" | "an" | "your")
        || lower.ends_with("'s")
        || lower.ends_with("’s");
    if determined {
        name.to_owned()
    } else {
        format!("the {name}")
    }
}

/// Whether a name reads as plural (`Kitchen Lights`, `Blinds`).
pub fn is_plural(name: &str) -> bool {
    let last = name
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_lowercase();
    last.len() > 2
        && last.ends_with('s')
        && !["ss", "us", "is", "'s", "’s"]
            .iter()
            .any(|ending| last.ends_with(ending))
        && !matches!(last.as_str(), "gas" | "news" | "series" | "status")
}

/// `is` or `are`, agreeing with `name`.
pub fn be(name: &str) -> &'static str {
    if is_plural(name) { "are" } else { "is" }
}

/// `isn't` or `aren't`, agreeing with `name`.
pub fn be_not(name: &str) -> &'static str {
    if is_plural(name) { "aren't" } else { "isn't" }
}

/// The first letter in upper case.
pub fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `a`, `a and b`, `a, b and c`.
pub fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// What kind of thing of `domain` (or cover device class) is called, plural:
/// `lights`, `switches`, `garage doors`.
pub fn things(kind: &str) -> String {
    match kind {
        "switch" => "switches".into(),
        "garage" => "garage doors".into(),
        "media_player" => "media players".into(),
        "binary_sensor" => "sensors".into(),
        "input_boolean" => "switches".into(),
        other => format!("{}s", other.replace('_', " ")),
    }
}

/// `1 hour and 30 minutes`, `5 minutes`, `1 second`; `0 seconds` for zero.
pub fn duration(total_seconds: u64) -> String {
    let (hours, minutes, seconds) = hms(total_seconds);
    let mut parts = Vec::new();
    for (count, unit) in [(hours, "hour"), (minutes, "minute"), (seconds, "second")] {
        if count > 0 {
            parts.push(counted(count, unit));
        }
    }
    if parts.is_empty() {
        return "0 seconds".into();
    }
    join_and(&parts)
}

/// A remaining time as people say it: seconds only under ten minutes.
pub fn remaining(total_seconds: u64) -> String {
    if total_seconds >= 600 {
        // Rounded up to a minute: "10 minutes" rather than "9 minutes" at 9:58.
        duration(total_seconds.div_ceil(60) * 60)
    } else {
        duration(total_seconds)
    }
}

/// A duration as an adjective: `5 minute`, `1 hour 30 minute`.
pub fn duration_adjective(total_seconds: u64) -> String {
    let (hours, minutes, seconds) = hms(total_seconds);
    let mut parts = Vec::new();
    for (count, unit) in [(hours, "hour"), (minutes, "minute"), (seconds, "second")] {
        if count > 0 {
            parts.push(format!("{count} {unit}"));
        }
    }
    parts.join(" ")
}

fn hms(total_seconds: u64) -> (u64, u64, u64) {
    (
        total_seconds / 3600,
        total_seconds % 3600 / 60,
        total_seconds % 60,
    )
}

/// `1 minute`, `5 minutes`.
pub fn counted(count: u64, unit: &str) -> String {
    if count == 1 {
        format!("1 {unit}")
    } else {
        format!("{count} {unit}s")
    }
}

/// An entity's state in words: `on`, `locked`, `open`, `21.5 degrees
/// Celsius`, `unavailable`.
pub fn state(entity: &Entity) -> String {
    let state = entity.state.as_str();
    if entity.domain == "binary_sensor" {
        let opening = matches!(
            entity.device_class(),
            Some("door" | "garage_door" | "opening" | "window")
        );
        match (entity.device_class(), state) {
            (_, "on") if opening => return "open".into(),
            (_, "off") if opening => return "closed".into(),
            (Some("lock"), "on") => return "unlocked".into(),
            (Some("lock"), "off") => return "locked".into(),
            _ => {}
        }
    }
    if entity.domain == "sensor"
        && let Ok(value) = state.parse::<f64>()
    {
        return measurement(value, entity.attribute("unit_of_measurement"));
    }
    state.replace('_', " ")
}

/// `21.5 degrees Celsius`, `40 percent`, `3 kilowatt hours`.
pub fn measurement(value: f64, unit: Option<&str>) -> String {
    let number = number(value);
    let Some(unit) = unit.map(str::trim).filter(|u| !u.is_empty()) else {
        return number;
    };
    let spoken = match unit {
        "°C" => "degrees Celsius",
        "°F" => "degrees Fahrenheit",
        "K" => "kelvin",
        "%" => "percent",
        "W" => "watts",
        "kW" => "kilowatts",
        "Wh" => "watt hours",
        "kWh" => "kilowatt hours",
        "V" => "volts",
        "A" => "amperes",
        "lx" => "lux",
        "hPa" => "hectopascals",
        "mm" => "millimeters",
        "cm" => "centimeters",
        "m" => "meters",
        "km" => "kilometers",
        "km/h" => "kilometers per hour",
        "m/s" => "meters per second",
        "mph" => "miles per hour",
        "ppm" => "parts per million",
        "µg/m³" => "micrograms per cubic meter",
        "L" => "liters",
        "m³" => "cubic meters",
        "s" => "seconds",
        "min" => "minutes",
        "h" => "hours",
        other => other,
    };
    format!("{number} {spoken}")
}

/// `21.5`, `21`, `-3.25`: at most two decimals, none when whole.
pub fn number(value: f64) -> String {
    let rounded = (value * 100.0).round() / 100.0;
    let text = format!("{rounded:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.to_owned()
    }
}

/// When `at` is, as heard at `now` in `zone` (none: the system's):
/// `6 PM`, `11:30 AM tomorrow`, `noon on Saturday`, `3 PM on December 5`.
pub fn time(at: DateTime<Utc>, now: DateTime<Utc>, zone: Option<Tz>) -> String {
    let local = |t: DateTime<Utc>| -> NaiveDateTime {
        match zone {
            Some(zone) => t.with_timezone(&zone).naive_local(),
            None => t.with_timezone(&Local).naive_local(),
        }
    };
    let (at, now) = (local(at), local(now));
    let clock = match (at.hour(), at.minute()) {
        (12, 0) => "noon".to_owned(),
        (0, 0) => "midnight".to_owned(),
        (hour, minute) => {
            let half = if hour < 12 { "AM" } else { "PM" };
            let hour12 = match hour % 12 {
                0 => 12,
                h => h,
            };
            if minute == 0 {
                format!("{hour12} {half}")
            } else {
                format!("{hour12}:{minute:02} {half}")
            }
        }
    };
    let days = (at.date() - now.date()).num_days();
    match days {
        0 => clock,
        1 => format!("{clock} tomorrow"),
        2..=6 => format!("{clock} on {}", at.format("%A")),
        _ => format!("{clock} on {} {}", at.format("%B"), at.day()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn entity(id: &str, state: &str, attributes: serde_json::Value) -> Entity {
        Entity {
            entity_id: id.into(),
            domain: id.split('.').next().unwrap_or_default().into(),
            name: "X".into(),
            aliases: Vec::new(),
            area: None,
            state: state.into(),
            attributes: attributes.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn names_take_an_article_and_a_verb() {
        assert_eq!(the("Kitchen Lights"), "the Kitchen Lights");
        assert_eq!(the("Anna's Lamp"), "Anna's Lamp");
        assert_eq!(the("The Den"), "The Den");
        assert_eq!(be("Kitchen Lights"), "are");
        assert_eq!(be("Front Door"), "is");
        assert_eq!(be("Glass Cabinet Class"), "is");
        assert_eq!(be("Living Room Blinds"), "are");
        assert_eq!(be("Gas"), "is");
        assert_eq!(be_not("Porch Lights"), "aren't");
        assert_eq!(capitalize("pizza timer"), "Pizza timer");
        let items = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(join_and(&items(&["a"])), "a");
        assert_eq!(join_and(&items(&["a", "b", "c"])), "a, b and c");
        assert_eq!(things("switch"), "switches");
        assert_eq!(things("garage"), "garage doors");
        assert_eq!(things("light"), "lights");
    }

    #[test]
    fn durations_in_words() {
        assert_eq!(duration(1), "1 second");
        assert_eq!(duration(300), "5 minutes");
        assert_eq!(duration(5400), "1 hour and 30 minutes");
        assert_eq!(duration(3723), "1 hour, 2 minutes and 3 seconds");
        assert_eq!(duration(0), "0 seconds");
        assert_eq!(remaining(252), "4 minutes and 12 seconds");
        assert_eq!(remaining(598), "9 minutes and 58 seconds");
        assert_eq!(remaining(1190), "20 minutes");
        assert_eq!(duration_adjective(5400), "1 hour 30 minute");
    }

    #[test]
    fn states_and_measurements_in_words() {
        let temperature = entity(
            "sensor.outside",
            "12.50",
            json!({"unit_of_measurement": "°C", "device_class": "temperature"}),
        );
        assert_eq!(state(&temperature), "12.5 degrees Celsius");
        let door = entity("binary_sensor.door", "on", json!({"device_class": "door"}));
        assert_eq!(state(&door), "open");
        assert_eq!(
            state(&entity("climate.hall", "heat_cool", json!({}))),
            "heat cool"
        );
        assert_eq!(state(&entity("lock.front", "locked", json!({}))), "locked");
        assert_eq!(
            state(&entity(
                "sensor.power",
                "-0.001",
                json!({"unit_of_measurement": "W"})
            )),
            "0 watts"
        );
        assert_eq!(number(21.0), "21");
        assert_eq!(number(54.375), "54.38");
    }

    #[test]
    fn times_of_day_relative_to_now() {
        let at = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default()
        };
        let now = at("2026-12-01T09:00:00Z");
        let utc = Some(chrono_tz::UTC);
        assert_eq!(time(at("2026-12-01T18:00:00Z"), now, utc), "6 PM");
        assert_eq!(
            time(at("2026-12-02T11:30:00Z"), now, utc),
            "11:30 AM tomorrow"
        );
        assert_eq!(
            time(at("2026-12-05T12:00:00Z"), now, utc),
            "noon on Saturday"
        );
        assert_eq!(
            time(at("2026-12-25T15:00:00Z"), now, utc),
            "3 PM on December 25"
        );
        // 10:00 UTC is 11:00 in Amsterdam.
        assert_eq!(
            time(
                at("2026-12-05T10:00:00Z"),
                now,
                Some(chrono_tz::Europe::Amsterdam)
            ),
            "11 AM on Saturday"
        );
    }
}
