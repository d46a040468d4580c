//! The house's mode service state: the calendars (last good copy of each),
//! the manual override, the policy, and where they are kept. Everything
//! the HTTP API and the background loop do goes through [`House`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use athena_store::{Store, StoreError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::calendar::{self, Event};
use crate::clock::Clock;
use crate::config::{CalendarSource, Config};
use crate::fetch;
use crate::policy::{Action, Decision, Policy};
use crate::schedule::{self, Booking, HouseRules, Mode, Override, Reason};

/// The longest override accepted.
pub const MAX_OVERRIDE: chrono::Duration = chrono::Duration::days(366);

/// What can go wrong for a caller.
#[derive(Debug, thiserror::Error)]
pub enum HouseError {
    /// The state store cannot be read or written: nothing was changed.
    #[error("{0}")]
    State(#[from] StoreError),
    /// The saved state has not been loaded yet (the store was down at start).
    #[error("the saved state (overrides) is not loaded yet: {0}")]
    NotLoaded(String),
    /// An override that makes no sense.
    #[error("{0}")]
    InvalidOverride(String),
}

/// The mode at an instant, with why.
#[derive(Debug, Clone, Serialize)]
pub struct ModeReport {
    pub at: DateTime<Utc>,
    pub mode: Mode,
    pub reason: Reason,
    /// The override in force at `at`, if any.
    #[serde(rename = "override")]
    pub manual: Option<Override>,
}

/// A policy decision, with the mode it was made for.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub mode: Mode,
    #[serde(flatten)]
    pub decision: Decision,
}

/// One calendar as the status shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CalendarStatus {
    pub name: String,
    /// The URL without its query (where booking sites put a secret).
    pub url: String,
    /// Events in the copy in use.
    pub events: usize,
    /// When the copy in use was fetched; none = no good copy yet.
    pub fetched_at: Option<DateTime<Utc>>,
    pub last_attempt: Option<DateTime<Utc>>,
    /// Why the last attempt failed; the previous copy stays in use.
    pub error: Option<String>,
}

/// The policy in force.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyReport {
    /// `built-in` or the file.
    pub source: String,
    pub loaded_at: DateTime<Utc>,
    /// Why the file's latest version was refused; the previous stays.
    pub error: Option<String>,
    pub policy: Policy,
}

/// A calendar as saved: its text, so a restart has it even if the site is down.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SavedCalendar {
    text: String,
    fetched_at: DateTime<Utc>,
}

#[derive(Debug)]
struct CalendarState {
    source: CalendarSource,
    events: Vec<Event>,
    text: Option<String>,
    fetched_at: Option<DateTime<Utc>>,
    last_attempt: Option<DateTime<Utc>>,
    error: Option<String>,
}

#[derive(Debug)]
struct PolicyState {
    policy: Arc<Policy>,
    source: String,
    loaded_at: DateTime<Utc>,
    /// The file's text last seen (loaded or refused), to notice changes.
    seen: Option<String>,
    error: Option<String>,
}

#[derive(Debug)]
struct Inner {
    loaded: bool,
    manual: Option<Override>,
    calendars: Vec<CalendarState>,
    policy: PolicyState,
    last_mode: Option<Mode>,
}

const OVERRIDE_KEY: &str = "override";

fn calendar_key(name: &str) -> String {
    format!("calendar-{name}")
}

/// The mode service's state and operations.
#[derive(Debug)]
pub struct House {
    rules: HouseRules,
    clock: Arc<dyn Clock>,
    store: Store,
    http: reqwest::Client,
    fetch_timeout: Duration,
    max_calendar_bytes: usize,
    policy_file: Option<PathBuf>,
    inner: Mutex<Inner>,
    /// Writes to the store happen one at a time, in order.
    writes: tokio::sync::Mutex<()>,
}

impl House {
    /// The house for `config` (validated), on `clock`. Reads the policy
    /// file now: a broken one at start is a configuration error.
    pub fn new(config: &Config, clock: Arc<dyn Clock>) -> Result<Arc<Self>, String> {
        let rules = config.house_rules()?;
        let store = Store::open(&config.store, crate::NAME).map_err(|e| e.to_string())?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("athena-mode-service/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        let now = clock.now();
        let policy = match &config.policy_file {
            None => PolicyState {
                policy: Arc::new(Policy::default_policy()),
                source: "built-in".into(),
                loaded_at: now,
                seen: None,
                error: None,
            },
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("policy_file {}: {e}", path.display()))?;
                let policy = Policy::from_yaml(&text)
                    .map_err(|e| format!("policy_file {}: {e}", path.display()))?;
                PolicyState {
                    policy: Arc::new(policy),
                    source: path.display().to_string(),
                    loaded_at: now,
                    seen: Some(text),
                    error: None,
                }
            }
        };
        let calendars = config
            .calendars
            .iter()
            .map(|source| CalendarState {
                source: source.clone(),
                events: Vec::new(),
                text: None,
                fetched_at: None,
                last_attempt: None,
                error: None,
            })
            .collect();
        Ok(Arc::new(Self {
            rules,
            clock,
            store,
            http,
            fetch_timeout: Duration::from_secs(config.fetch_timeout_secs),
            max_calendar_bytes: config.max_calendar_bytes,
            policy_file: config.policy_file.clone(),
            inner: Mutex::new(Inner {
                loaded: false,
                manual: None,
                calendars,
                policy,
                last_mode: None,
            }),
            writes: tokio::sync::Mutex::new(()),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Now, by the house's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Where the state is kept, for status.
    pub fn store(&self) -> String {
        self.store.describe()
    }

    /// True once the saved state is loaded.
    pub fn is_loaded(&self) -> bool {
        self.lock().loaded
    }

    /// Loads the override and the last good calendars from the store.
    pub async fn restore(&self) -> Result<(), StoreError> {
        let manual: Option<Override> = self.store.get(OVERRIDE_KEY).await?;
        let names: Vec<String> = self
            .lock()
            .calendars
            .iter()
            .map(|c| c.source.name.clone())
            .collect();
        let mut saved = BTreeMap::new();
        for name in names {
            if let Some(s) = self
                .store
                .get::<SavedCalendar>(&calendar_key(&name))
                .await?
            {
                saved.insert(name, s);
            }
        }
        let mut inner = self.lock();
        if inner.loaded {
            return Ok(());
        }
        inner.manual = manual;
        for c in &mut inner.calendars {
            // A fetch that already succeeded is newer than the saved copy.
            if c.fetched_at.is_some() {
                continue;
            }
            if let Some(s) = saved.remove(&c.source.name) {
                match calendar::parse(&s.text) {
                    Ok(events) => {
                        c.events = events;
                        c.text = Some(s.text);
                        c.fetched_at = Some(s.fetched_at);
                    }
                    Err(e) => warn!(calendar = %c.source.name, error = %e, "saved copy unreadable"),
                }
            }
        }
        inner.loaded = true;
        info!(store = %self.store.describe(), "state loaded");
        Ok(())
    }

    fn require_loaded(&self) -> Result<(), HouseError> {
        if self.lock().loaded {
            Ok(())
        } else {
            Err(HouseError::NotLoaded(self.store.describe()))
        }
    }

    /// The bookings between `from` and `until`, from every calendar.
    pub fn bookings(&self, from: DateTime<Utc>, until: DateTime<Utc>) -> Vec<Booking> {
        let inner = self.lock();
        let events = inner.calendars.iter().flat_map(|c| &c.events);
        schedule::bookings(events, &self.rules, from, until)
    }

    /// The mode at `at` (default now), and why.
    pub fn mode(&self, at: Option<DateTime<Utc>>) -> Result<ModeReport, HouseError> {
        self.require_loaded()?;
        let at = at.unwrap_or_else(|| self.clock.now());
        // A stay longer than a year is not a booking; this window sees any
        // stay in progress and the next one.
        let window = chrono::Duration::days(400);
        let bookings = self.bookings(at - window, at + window);
        let manual = self.lock().manual.clone().filter(|o| o.until > at);
        let (mode, reason) = schedule::mode_at(at, &bookings, manual.as_ref());
        Ok(ModeReport {
            at,
            mode,
            reason,
            manual,
        })
    }

    /// Sets the override, once it is stored.
    pub async fn set_override(
        &self,
        mode: Mode,
        until: DateTime<Utc>,
    ) -> Result<ModeReport, HouseError> {
        self.require_loaded()?;
        let now = self.clock.now();
        if until <= now {
            return Err(HouseError::InvalidOverride(format!(
                "until ({until}) is not in the future"
            )));
        }
        if until - now > MAX_OVERRIDE {
            return Err(HouseError::InvalidOverride(
                "an override may last at most 366 days".into(),
            ));
        }
        let o = Override { mode, until };
        {
            let _write = self.writes.lock().await;
            self.store.put(OVERRIDE_KEY, &o, None).await?;
            self.lock().manual = Some(o);
        }
        metrics::counter!("mode_overrides_total", "action" => "set").increment(1);
        info!(?mode, %until, "override set");
        self.observe();
        self.mode(None)
    }

    /// Clears the override, once that is stored.
    pub async fn clear_override(&self) -> Result<ModeReport, HouseError> {
        self.require_loaded()?;
        {
            let _write = self.writes.lock().await;
            self.store.delete(OVERRIDE_KEY).await?;
            self.lock().manual = None;
        }
        metrics::counter!("mode_overrides_total", "action" => "clear").increment(1);
        info!("override cleared");
        self.observe();
        self.mode(None)
    }

    /// Whether `action` is allowed in `mode` (default: the current mode).
    pub fn check(&self, mode: Option<Mode>, action: &Action) -> Result<CheckReport, HouseError> {
        let mode = match mode {
            Some(m) => m,
            None => self.mode(None)?.mode,
        };
        let policy = self.lock().policy.policy.clone();
        let decision = policy.check(mode, action);
        metrics::counter!("mode_policy_checks_total",
            "mode" => mode_name(mode), "allowed" => decision.allowed.to_string())
        .increment(1);
        Ok(CheckReport { mode, decision })
    }

    /// The policy in force.
    pub fn policy(&self) -> PolicyReport {
        let inner = self.lock();
        PolicyReport {
            source: inner.policy.source.clone(),
            loaded_at: inner.policy.loaded_at,
            error: inner.policy.error.clone(),
            policy: (*inner.policy.policy).clone(),
        }
    }

    /// Reads the policy file and, if it changed, loads it; a broken file
    /// is refused and the previous policy stays.
    pub async fn reload_policy(&self) {
        let Some(path) = &self.policy_file else {
            return;
        };
        let text = match tokio::fs::read_to_string(path).await {
            Ok(t) => t,
            Err(e) => {
                let error = format!("cannot read {}: {e}", path.display());
                let mut inner = self.lock();
                if inner.policy.error.as_deref() != Some(error.as_str()) {
                    warn!(%error, "policy file; keeping the previous policy");
                    metrics::counter!("mode_policy_reloads_total", "result" => "error")
                        .increment(1);
                    inner.policy.error = Some(error);
                    inner.policy.seen = None;
                }
                return;
            }
        };
        let mut inner = self.lock();
        if inner.policy.seen.as_deref() == Some(text.as_str()) {
            return;
        }
        match Policy::from_yaml(&text) {
            Ok(policy) => {
                inner.policy.policy = Arc::new(policy);
                inner.policy.loaded_at = self.clock.now();
                inner.policy.error = None;
                info!(file = %path.display(), "policy reloaded");
                metrics::counter!("mode_policy_reloads_total", "result" => "ok").increment(1);
            }
            Err(e) => {
                warn!(error = %e, "new policy refused; keeping the previous one");
                metrics::counter!("mode_policy_reloads_total", "result" => "error").increment(1);
                inner.policy.error = Some(e);
            }
        }
        inner.policy.seen = Some(text);
    }

    /// Each calendar's status.
    pub fn calendars(&self) -> Vec<CalendarStatus> {
        self.lock()
            .calendars
            .iter()
            .map(|c| CalendarStatus {
                name: c.source.name.clone(),
                url: fetch::shown(&c.source.url),
                events: c.events.len(),
                fetched_at: c.fetched_at,
                last_attempt: c.last_attempt,
                error: c.error.clone(),
            })
            .collect()
    }

    /// Fetches every calendar now; a failure keeps that calendar's last
    /// good copy and records why.
    pub async fn refresh(&self) -> Vec<CalendarStatus> {
        let sources: Vec<CalendarSource> = self
            .lock()
            .calendars
            .iter()
            .map(|c| c.source.clone())
            .collect();
        let fetches = sources.iter().map(|s| async move {
            let text = fetch::fetch(
                &self.http,
                &s.url,
                self.fetch_timeout,
                self.max_calendar_bytes,
            )
            .await;
            let parsed = text.and_then(|t| {
                calendar::parse(&t)
                    .map(|events| (t, events))
                    .map_err(|e| format!("not a usable calendar: {e}"))
            });
            (s.name.clone(), parsed)
        });
        let results = futures::future::join_all(fetches).await;
        let now = self.clock.now();
        for (name, result) in results {
            let outcome = if result.is_ok() { "ok" } else { "error" };
            metrics::counter!("mode_calendar_fetches_total",
                "calendar" => name.clone(), "result" => outcome)
            .increment(1);
            let changed = {
                let mut inner = self.lock();
                let Some(c) = inner.calendars.iter_mut().find(|c| c.source.name == name) else {
                    continue;
                };
                c.last_attempt = Some(now);
                match result {
                    Ok((text, events)) => {
                        c.error = None;
                        c.fetched_at = Some(now);
                        c.events = events;
                        metrics::gauge!("mode_calendar_events", "calendar" => name.clone())
                            .set(c.events.len() as f64);
                        (c.text.as_deref() != Some(text.as_str())).then(|| {
                            c.text = Some(text.clone());
                            text
                        })
                    }
                    Err(error) => {
                        warn!(calendar = %name, %error, "calendar fetch failed; keeping the last good copy");
                        c.error = Some(error);
                        None
                    }
                }
            };
            if let Some(text) = changed {
                let saved = SavedCalendar {
                    text,
                    fetched_at: now,
                };
                let _write = self.writes.lock().await;
                if let Err(e) = self.store.put(&calendar_key(&name), &saved, None).await {
                    warn!(calendar = %name, error = %e, "cannot save the calendar copy");
                }
            }
        }
        self.observe();
        self.calendars()
    }

    /// Notes the current mode: the gauge, and a log line on each change.
    pub fn observe(&self) {
        let Ok(report) = self.mode(None) else {
            return;
        };
        metrics::gauge!("mode_guest").set(f64::from(u8::from(report.mode == Mode::Guest)));
        let mut inner = self.lock();
        if inner.last_mode != Some(report.mode) {
            info!(mode = mode_name(report.mode), reason = ?report.reason, "mode");
            inner.last_mode = Some(report.mode);
        }
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Owner => "owner",
        Mode::Guest => "guest",
    }
}
