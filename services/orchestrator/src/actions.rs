//! The action stage: what happens once a command is understood. Every
//! action is first checked against the house's mode ([`ModePolicy`]); an
//! allowed one runs through the house ([`Home`]: ha-bridge) or the
//! satellite's timers, and the stage says what happened in a short sentence
//! for text to speech ([`Reply`]).
//!
//! - `devices`: on and off, brightness, covers, states.
//! - `timers`: timers per satellite, told as Wyoming timer events.
//! - `speech`: the English of the replies.
//!
//! The stage never fails: a backend that is down or slow gives a short
//! apology and an [`Outcome`] to count, within the backends' deadlines.
//! Where a command stops early is decided in one place (`Stop::reply`).

mod devices;
mod speech;
mod timers;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use chrono_tz::Tz;
use serde_json::{Map, Value};
use tokio::sync::{Mutex, mpsc};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::backends::{
    Action, BackendError, Decision, Entity, EntityQuery, ErrorKind, Home, MODE_SERVICE, Mode,
    ModeCause, ModePolicy,
};
use crate::intent::{IntentMatch, SlotLists};
use timers::{Spoken, TimerError, TimerView, Timers};

/// How the stage behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// How long the house's vocabulary (entity and area names) is used
    /// before it is read again.
    pub vocabulary_max_age: Duration,
    /// After a failed read, how long the last good copy is used before
    /// trying again.
    pub vocabulary_retry: Duration,
    /// The zone times are spoken in; none: the system's.
    pub time_zone: Option<Tz>,
    /// The most timers one satellite may have running.
    pub max_timers: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            vocabulary_max_age: Duration::from_secs(60),
            vocabulary_retry: Duration::from_secs(5),
            time_zone: None,
            max_timers: 16,
        }
    }
}

/// A satellite as the stage sees it: who it is, and where to send events
/// that come later (timers).
#[derive(Debug, Clone)]
pub struct SatelliteLink {
    /// A stable id (the same across reconnections), for its timers.
    pub id: String,
    /// Events for the satellite's connection.
    pub events: mpsc::Sender<wyoming::Event>,
}

/// What the stage did, and the sentence to speak.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// One or two short sentences for text to speech.
    pub speech: String,
    /// How it ended.
    pub outcome: Outcome,
}

/// How a command ended, for metrics and the pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The house or a timer changed as asked.
    Done,
    /// A question was answered.
    Answered,
    /// The mode's policy (or ha-bridge's access list) said no; nothing ran.
    Denied {
        /// The rule that decided: `guest.domains.deny`, `ha_bridge.access`.
        rule: String,
    },
    /// What the command names is not there: no such device, no lights in
    /// that area, no timer to cancel.
    NotFound,
    /// Understood, but not something that can be done: an intent without a
    /// handler, a sensor asked to turn on.
    Unsupported,
    /// A backend failed; nothing (more) was done.
    Failed {
        /// `ha-bridge`, `home-assistant` or `mode-service`.
        backend: &'static str,
        /// How it failed.
        kind: ErrorKind,
    },
}

impl Outcome {
    /// A label for metrics: `done`, `answered`, `denied`, `not_found`,
    /// `unsupported`, `failed`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Answered => "answered",
            Self::Denied { .. } => "denied",
            Self::NotFound => "not_found",
            Self::Unsupported => "unsupported",
            Self::Failed { .. } => "failed",
        }
    }
}

/// The action stage.
#[derive(Debug)]
pub struct Actions {
    /// The house, through ha-bridge.
    home: Arc<dyn Home>,
    /// What the current mode allows, through mode-service.
    policy: Arc<dyn ModePolicy>,
    /// Every satellite's timers.
    timers: Timers,
    /// The intent lists of the house, as last read.
    vocabulary: Mutex<Vocabulary>,
    settings: Settings,
}

/// The cached intent lists.
#[derive(Debug, Default)]
struct Vocabulary {
    /// The last good copy.
    lists: Option<Arc<SlotLists>>,
    /// When to read the house again.
    refresh_at: Option<Instant>,
}

/// Why a command stopped before it was done.
#[derive(Debug)]
enum Stop {
    /// A backend failed.
    Backend(BackendError),
    /// The policy said no to all of it.
    Denied {
        decision: Decision,
        /// What was asked, as a phrase after "can't": `unlock the Front Door`.
        asked: String,
    },
    /// What it names is not there; the sentence says what.
    NotFound(String),
    /// It cannot be done; the sentence says why.
    Unsupported(String),
}

impl From<BackendError> for Stop {
    fn from(e: BackendError) -> Self {
        Self::Backend(e)
    }
}

/// The entities an action would touch, split by the policy's say.
#[derive(Debug)]
struct Permitted {
    /// Those the policy allows.
    allowed: Vec<Entity>,
    /// Those it does not, with the decision.
    denied: Vec<(Entity, Decision)>,
}

impl Actions {
    /// The stage over `home` and `policy`, with default [`Settings`].
    pub fn new(home: Arc<dyn Home>, policy: Arc<dyn ModePolicy>) -> Self {
        Self::with_settings(home, policy, Settings::default())
    }

    /// The stage with `settings`.
    pub fn with_settings(
        home: Arc<dyn Home>,
        policy: Arc<dyn ModePolicy>,
        settings: Settings,
    ) -> Self {
        Self {
            home,
            policy,
            timers: Timers::new(settings.max_timers),
            vocabulary: Mutex::default(),
            settings,
        }
    }

    /// The intent lists of the house: list `name` (every entity's name and
    /// aliases → its entity id) and `area` (every area's name → itself, as
    /// ha-bridge finds areas by name). Read at most every
    /// `vocabulary_max_age`; when a read fails, the last good copy is used
    /// (and the house read again after `vocabulary_retry`); without one,
    /// the error.
    pub async fn vocabulary(&self) -> Result<Arc<SlotLists>, BackendError> {
        let mut cache = self.vocabulary.lock().await;
        let now = Instant::now();
        if let Some(lists) = &cache.lists
            && cache.refresh_at.is_some_and(|at| now < at)
        {
            return Ok(Arc::clone(lists));
        }
        match self.home.entities(&EntityQuery::default()).await {
            Ok(entities) => {
                let lists = Arc::new(vocabulary_of(&entities));
                debug!(entities = entities.len(), "vocabulary read");
                cache.lists = Some(Arc::clone(&lists));
                cache.refresh_at = Some(Instant::now() + self.settings.vocabulary_max_age);
                Ok(lists)
            }
            Err(e) => {
                cache.refresh_at = Some(Instant::now() + self.settings.vocabulary_retry);
                match &cache.lists {
                    Some(lists) => {
                        warn!(error = %e, "cannot read the house's names; using the last copy");
                        Ok(Arc::clone(lists))
                    }
                    None => Err(e),
                }
            }
        }
    }

    /// Runs `command` for `satellite` and says what happened.
    pub async fn handle(&self, command: &IntentMatch, satellite: &SatelliteLink) -> Reply {
        let intent = command.intent.as_str();
        let result = match intent {
            "HassTurnOn" => self.switch(command, true).await,
            "HassTurnOff" => self.switch(command, false).await,
            "HassLightSet" => self.light_set(command).await,
            "HassOpenCover" => self.cover(command, true).await,
            "HassCloseCover" => self.cover(command, false).await,
            "HassGetState" => self.get_state(command).await,
            "HassStartTimer" => self.start_timer(command, satellite).await,
            "HassCancelTimer" => self.cancel_timer(command, satellite).await,
            "HassTimerStatus" => self.timer_status(command, satellite).await,
            "AthenaGetMode" => self.get_mode(command).await,
            _ => Err(Stop::Unsupported("Sorry, I can't do that yet.".into())),
        };
        let reply = result.unwrap_or_else(|stop| stop.reply(command));
        debug!(%command, outcome = reply.outcome.label(), speech = %reply.speech, "action");
        reply
    }

    /// Asks the policy about `intent` on each of `entities` (with `service`
    /// and `data`); all denied stops with the first denial.
    async fn permit(
        &self,
        intent: &str,
        entities: Vec<Entity>,
        service: Option<&str>,
        data: &Map<String, Value>,
        asked: impl FnOnce() -> String,
    ) -> Result<Permitted, Stop> {
        let actions: Vec<Action> = entities
            .iter()
            .map(|entity| Action {
                intent: intent.to_owned(),
                domain: Some(entity.domain.clone()),
                entity_id: Some(entity.entity_id.clone()),
                service: service.map(str::to_owned),
                data: data.clone(),
            })
            .collect();
        let checks = actions.iter().map(|action| self.policy.check(action));
        let decisions = futures::future::join_all(checks).await;
        let mut permitted = Permitted {
            allowed: Vec::new(),
            denied: Vec::new(),
        };
        for (entity, decision) in entities.into_iter().zip(decisions) {
            let decision = decision?;
            if decision.allowed {
                permitted.allowed.push(entity);
            } else {
                debug!(entity = %entity.entity_id, rule = %decision.rule, reason = %decision.reason, "denied");
                permitted.denied.push((entity, decision));
            }
        }
        if permitted.allowed.is_empty() {
            if let Some((_, decision)) = permitted.denied.into_iter().next() {
                return Err(Stop::Denied {
                    decision,
                    asked: asked(),
                });
            }
            return Err(Stop::NotFound("I couldn't find that.".into()));
        }
        Ok(permitted)
    }

    /// Asks the policy about `intent`, which touches no entity.
    async fn permit_intent(&self, intent: &str, asked: &str) -> Result<(), Stop> {
        let action = Action {
            intent: intent.to_owned(),
            ..Action::default()
        };
        let decision = self.policy.check(&action).await?;
        if decision.allowed {
            return Ok(());
        }
        debug!(intent, rule = %decision.rule, reason = %decision.reason, "denied");
        Err(Stop::Denied {
            decision,
            asked: asked.to_owned(),
        })
    }

    /// `AthenaGetMode`: the mode and until when; with slot `mode`, whether
    /// it is that one.
    async fn get_mode(&self, command: &IntentMatch) -> Result<Reply, Stop> {
        self.permit_intent(&command.intent, "ask about the house mode")
            .await?;
        let status = self.policy.mode().await?;
        let now = Utc::now();
        let until = match status.cause {
            ModeCause::Override { until } | ModeCause::Booking { until } => Some(until),
            ModeCause::NoBooking { .. } | ModeCause::Other => None,
        };
        let mut statement = format!("this house is in {} mode", status.mode);
        if let Some(until) = until {
            statement.push_str(" until ");
            statement.push_str(&speech::time(until, now, self.settings.time_zone));
        }
        let speech = match command.text("mode") {
            Some(asked) if asked.eq_ignore_ascii_case(status.mode.name()) => {
                format!("Yes, {statement}.")
            }
            Some(_) => format!("No, {statement}."),
            None => format!("{}.", speech::capitalize(&statement)),
        };
        Ok(answered(speech))
    }

    /// `HassStartTimer`: a timer of the spoken length, maybe named.
    async fn start_timer(
        &self,
        command: &IntentMatch,
        satellite: &SatelliteLink,
    ) -> Result<Reply, Stop> {
        let total = command.duration().unwrap_or_default();
        if total.is_zero() {
            return Err(Stop::Unsupported(
                "Sorry, a timer needs a length, like 5 minutes.".into(),
            ));
        }
        self.permit_intent(&command.intent, "set timers").await?;
        let name = command.text("name").map(str::to_owned);
        let spoken = Spoken {
            hours: command.number("hours"),
            minutes: command.number("minutes"),
            seconds: command.number("seconds"),
        };
        let timer = self
            .timers
            .start(satellite, name, total, spoken)
            .await
            .map_err(|_| Stop::Unsupported("Sorry, you have too many timers running.".into()))?;
        let label = match &timer.name {
            Some(name) => format!("{name} timer"),
            None => "timer".into(),
        };
        Ok(done(format!(
            "{} set for {}.",
            speech::capitalize(&label),
            speech::duration(timer.total_seconds)
        )))
    }

    /// `HassCancelTimer`: the named timer, else the newest.
    async fn cancel_timer(
        &self,
        command: &IntentMatch,
        satellite: &SatelliteLink,
    ) -> Result<Reply, Stop> {
        self.permit_intent(&command.intent, "cancel timers").await?;
        let name = command.text("name");
        match self.timers.cancel(satellite, name).await {
            Ok(timer) => Ok(done(format!("Cancelled {}.", timer_label(&timer)))),
            Err(TimerError::NotFound) => Err(Stop::NotFound(match name {
                Some(name) => format!("There's no {name} timer."),
                None => "There's no timer to cancel.".into(),
            })),
            Err(TimerError::TooMany) => Err(Stop::Unsupported("Sorry, I can't do that.".into())),
        }
    }

    /// `HassTimerStatus`: the time left on each timer (or the named one).
    async fn timer_status(
        &self,
        command: &IntentMatch,
        satellite: &SatelliteLink,
    ) -> Result<Reply, Stop> {
        self.permit_intent(&command.intent, "check timers").await?;
        let name = command.text("name");
        let timers = self.timers.status(satellite, name);
        let left = |t: &TimerView| speech::remaining(t.remaining_seconds);
        let speech = match (timers.as_slice(), name) {
            ([], Some(name)) => return Err(Stop::NotFound(format!("There's no {name} timer."))),
            ([], None) => "You have no timers.".into(),
            ([timer], _) => format!(
                "Your {} has {} left.",
                timer
                    .name
                    .as_ref()
                    .map_or("timer".into(), |n| format!("{n} timer")),
                left(timer)
            ),
            (timers, _) => {
                let each: Vec<String> = timers
                    .iter()
                    .map(|t| format!("{} has {} left", timer_label(t), left(t)))
                    .collect();
                format!(
                    "You have {} timers. {}.",
                    timers.len(),
                    speech::capitalize(&speech::join_and(&each))
                )
            }
        };
        Ok(answered(speech))
    }
}

impl Stop {
    /// The reply for a command that stopped here: the one place where a
    /// failure becomes words and an outcome (and is logged).
    fn reply(self, command: &IntentMatch) -> Reply {
        match self {
            Self::Denied { decision, asked } => Reply {
                speech: refusal(&decision.mode, &asked),
                outcome: Outcome::Denied {
                    rule: decision.rule,
                },
            },
            Self::NotFound(speech) => Reply {
                speech,
                outcome: Outcome::NotFound,
            },
            Self::Unsupported(speech) => Reply {
                speech,
                outcome: Outcome::Unsupported,
            },
            Self::Backend(e) => {
                warn!(%command, error = %e, "action failed");
                let (speech, outcome) = match (e.backend(), e.kind(), e.code()) {
                    (_, _, Some("unknown_entity")) => {
                        ("Sorry, I couldn't find that device.", Outcome::NotFound)
                    }
                    (_, _, Some("not_allowed")) => (
                        "Sorry, I'm not allowed to do that.",
                        Outcome::Denied {
                            rule: "ha_bridge.access".into(),
                        },
                    ),
                    (MODE_SERVICE, _, _) => {
                        ("Sorry, I can't check what's allowed right now.", failed(&e))
                    }
                    (_, ErrorKind::Rejected, _) => {
                        ("Sorry, the home didn't accept that.", failed(&e))
                    }
                    (_, ErrorKind::Invalid, _) => {
                        ("Sorry, something went wrong with the home.", failed(&e))
                    }
                    (_, ErrorKind::Unavailable | ErrorKind::Timeout, _) => {
                        ("Sorry, I can't reach the home right now.", failed(&e))
                    }
                };
                Reply {
                    speech: speech.into(),
                    outcome,
                }
            }
        }
    }
}

fn failed(e: &BackendError) -> Outcome {
    Outcome::Failed {
        backend: e.backend(),
        kind: e.kind(),
    }
}

/// A polite no that names nothing of the policy: "Sorry, guests can't
/// unlock the Front Door."
fn refusal(mode: &Mode, asked: &str) -> String {
    match mode {
        Mode::Guest => format!("Sorry, guests can't {asked}."),
        Mode::Owner => format!("Sorry, I'm not allowed to {asked}."),
        Mode::Other(mode) => format!("Sorry, I can't {asked} in {mode} mode."),
    }
}

fn done(speech: String) -> Reply {
    Reply {
        speech,
        outcome: Outcome::Done,
    }
}

fn answered(speech: String) -> Reply {
    Reply {
        speech,
        outcome: Outcome::Answered,
    }
}

/// `the pizza timer`, `the 5 minute timer`.
fn timer_label(timer: &TimerView) -> String {
    match &timer.name {
        Some(name) => format!("the {name} timer"),
        None => format!(
            "the {} timer",
            speech::duration_adjective(timer.total_seconds)
        ),
    }
}

/// The lists `name` and `area` for `entities`.
fn vocabulary_of(entities: &[Entity]) -> SlotLists {
    let mut lists = SlotLists::new();
    let mut areas = BTreeSet::new();
    for entity in entities {
        for name in std::iter::once(&entity.name).chain(&entity.aliases) {
            lists.add("name", name, entity.entity_id.as_str());
        }
        if let Some(area) = &entity.area {
            areas.insert(area.as_str());
        }
    }
    for area in areas {
        lists.add("area", area, area);
    }
    lists
}
