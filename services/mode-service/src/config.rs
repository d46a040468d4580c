//! The `[mode_service]` config section.

use std::net::SocketAddr;
use std::path::PathBuf;

use athena_runtime::config::Validate;
use athena_store::StoreConfig;
use chrono::NaiveTime;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::schedule::HouseRules;

/// One booking calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarSource {
    /// A short name for status and logs (`airbnb`, `booking`).
    pub name: String,
    /// The export URL (`https://...ics`), or a local file (`/path`, `file:///path`).
    pub url: String,
}

/// The service's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// HTTP API and ops endpoints.
    pub http: SocketAddr,
    /// The booking calendars; none = always owner mode unless overridden.
    pub calendars: Vec<CalendarSource>,
    /// Seconds between calendar fetches.
    pub poll_interval_secs: u64,
    /// Seconds one fetch may take.
    pub fetch_timeout_secs: u64,
    /// Largest calendar file accepted, in bytes.
    pub max_calendar_bytes: usize,
    /// The house's time zone (IANA name): all-day bookings and floating
    /// times are read in it.
    pub time_zone: String,
    /// Guest mode starts at this local time on a booking's first day (`HH:MM`).
    pub check_in: String,
    /// And ends at this local time on its last day.
    pub check_out: String,
    /// A policy YAML file (a mounted ConfigMap); none = the built-in policy.
    pub policy_file: Option<PathBuf>,
    /// Seconds between checks of the policy file for changes.
    pub policy_check_secs: f64,
    /// Where overrides and the last good calendars are kept.
    pub store: StoreConfig,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http: SocketAddr::from(([0, 0, 0, 0], 8800)),
            calendars: Vec::new(),
            poll_interval_secs: 600,
            fetch_timeout_secs: 20,
            max_calendar_bytes: 5 << 20,
            time_zone: "UTC".into(),
            check_in: "15:00".into(),
            check_out: "11:00".into(),
            policy_file: None,
            policy_check_secs: 2.0,
            store: StoreConfig::default(),
            max_body_bytes: 64 << 10,
        }
    }
}

fn time(what: &str, s: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(s, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M:%S"))
        .map_err(|_| format!("{what} must be a time like 15:00, not {s:?}"))
}

impl Config {
    /// Check-in, check-out and zone, parsed.
    pub fn house_rules(&self) -> Result<HouseRules, String> {
        Ok(HouseRules {
            zone: self
                .time_zone
                .parse::<Tz>()
                .map_err(|_| format!("time_zone {:?} is not an IANA zone", self.time_zone))?,
            check_in: time("check_in", &self.check_in)?,
            check_out: time("check_out", &self.check_out)?,
        })
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), String> {
        self.house_rules()?;
        self.store.validate()?;
        if self.poll_interval_secs == 0 || self.fetch_timeout_secs == 0 {
            return Err("poll_interval_secs and fetch_timeout_secs must be at least 1".into());
        }
        if self.policy_check_secs.is_nan() || self.policy_check_secs <= 0.0 {
            return Err("policy_check_secs must be above 0".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for c in &self.calendars {
            let plain = c
                .name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_');
            if c.name.is_empty() || !plain || !names.insert(c.name.as_str()) {
                return Err(format!(
                    "each calendar needs a name of its own, of letters, digits, - and _ \
                     ({:?} is empty, has other characters or is repeated)",
                    c.name
                ));
            }
            let known = ["http://", "https://", "file://", "/"]
                .iter()
                .any(|p| c.url.starts_with(p));
            if !known {
                return Err(format!(
                    "calendar {}: url must be http(s)://, file:// or an absolute path",
                    c.name
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_says_what_is_wrong() {
        assert!(Config::default().validate().is_ok());
        let bad = |c: Config| c.validate().err().unwrap_or_default();
        assert!(
            bad(Config {
                time_zone: "Mars/Olympus".into(),
                ..Config::default()
            })
            .contains("IANA")
        );
        assert!(
            bad(Config {
                check_in: "3pm".into(),
                ..Config::default()
            })
            .contains("check_in")
        );
        let cal = |name: &str, url: &str| CalendarSource {
            name: name.into(),
            url: url.into(),
        };
        assert!(
            bad(Config {
                calendars: vec![cal("a", "https://x/a.ics"), cal("a", "/b.ics")],
                ..Config::default()
            })
            .contains("repeated")
        );
        assert!(
            bad(Config {
                calendars: vec![cal("a", "ftp://x")],
                ..Config::default()
            })
            .contains("url")
        );
    }
}
