//! Timers, kept per satellite in the orchestrator: each is a tokio task that
//! sleeps until its end and then tells the satellite (`timer-finished`).
//! Started and cancelled timers are told too (`timer-started`,
//! `timer-cancelled`), so a satellite can show them.
//!
//! A satellite that reconnects gets a new event channel; a timer tells the
//! channel its satellite used last, so a timer outlives a dropped connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tracing::debug;
use wyoming::Event;
use wyoming::event::{TimerCancelled, TimerFinished, TimerStarted};

use super::SatelliteLink;

/// How long telling a satellite about a timer may wait for room in its
/// channel.
const SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// The timers of every satellite.
#[derive(Debug)]
pub(crate) struct Timers {
    /// Shared with the timers' tasks, which remove themselves when done.
    satellites: Arc<Mutex<HashMap<String, Satellite>>>,
    /// For timer ids unique in this process.
    next_id: AtomicU64,
    /// The most timers one satellite may have running.
    max_per_satellite: usize,
}

/// One satellite's timers and where to tell it about them.
#[derive(Debug)]
struct Satellite {
    /// The channel of its latest connection.
    events: mpsc::Sender<Event>,
    /// Running timers, oldest first.
    timers: Vec<Timer>,
}

/// A running timer.
#[derive(Debug)]
struct Timer {
    id: String,
    /// Its name, as spoken (`pizza`).
    name: Option<String>,
    /// Its length.
    total: Duration,
    /// When it ends.
    ends_at: Instant,
    /// Its task, aborted when the timer is cancelled.
    task: AbortHandle,
}

/// A timer as the replies describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TimerView {
    /// Its name, if it has one.
    pub name: Option<String>,
    /// Its length, in seconds.
    pub total_seconds: u64,
    /// Seconds left, rounded up.
    pub remaining_seconds: u64,
}

/// How a timer's length was said, for `timer-started`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Spoken {
    /// The hours said, if any.
    pub hours: Option<i64>,
    /// The minutes said, if any.
    pub minutes: Option<i64>,
    /// The seconds said, if any.
    pub seconds: Option<i64>,
}

/// Why a timer could not be started or cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TimerError {
    /// The satellite has as many timers as it may.
    TooMany,
    /// No timer (with that name) is running.
    NotFound,
}

impl Timers {
    /// No timers; at most `max_per_satellite` per satellite.
    pub fn new(max_per_satellite: usize) -> Self {
        Self {
            satellites: Arc::default(),
            next_id: AtomicU64::new(1),
            max_per_satellite,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Satellite>> {
        lock(&self.satellites)
    }

    /// Starts a timer of `total` for `link` and tells the satellite.
    pub async fn start(
        &self,
        link: &SatelliteLink,
        name: Option<String>,
        total: Duration,
        spoken: Spoken,
    ) -> Result<TimerView, TimerError> {
        {
            let mut satellites = self.lock();
            let satellite = attach(&mut satellites, link);
            if satellite.timers.len() >= self.max_per_satellite {
                return Err(TimerError::TooMany);
            }
        }
        let id = format!("timer-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let started = TimerStarted {
            id: id.clone(),
            total_seconds: i64::try_from(total.as_secs()).unwrap_or(i64::MAX),
            name: name.clone(),
            start_hours: spoken.hours,
            start_minutes: spoken.minutes,
            start_seconds: spoken.seconds,
            ..TimerStarted::default()
        };
        // Told before the task exists, so `timer-started` always comes first.
        tell(&link.events, Event::TimerStarted(started)).await;
        let ends_at = Instant::now() + total;
        // Held until the timer is in the list, so that its task, however
        // short, finds it there.
        let mut held = self.lock();
        let satellites = Arc::clone(&self.satellites);
        let satellite_id = link.id.clone();
        let timer_id = id.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep_until(ends_at).await;
            let events = {
                let mut satellites = lock(&satellites);
                let Some(satellite) = satellites.get_mut(&satellite_id) else {
                    return;
                };
                satellite.timers.retain(|t| t.id != timer_id);
                satellite.events.clone()
            };
            debug!(satellite = %satellite_id, timer = %timer_id, "timer finished");
            let finished = TimerFinished {
                id: timer_id,
                ..TimerFinished::default()
            };
            tell(&events, Event::TimerFinished(finished)).await;
        });
        let timer = Timer {
            id,
            name,
            total,
            ends_at,
            task: task.abort_handle(),
        };
        let view = timer.view(Instant::now());
        attach(&mut held, link).timers.push(timer);
        Ok(view)
    }

    /// Cancels the timer called `name` (none: the newest) of `link`, and
    /// tells the satellite.
    pub async fn cancel(
        &self,
        link: &SatelliteLink,
        name: Option<&str>,
    ) -> Result<TimerView, TimerError> {
        let timer = {
            let mut satellites = self.lock();
            let satellite = attach(&mut satellites, link);
            let index = match name {
                Some(name) => satellite
                    .timers
                    .iter()
                    .rposition(|t| t.name.as_deref().is_some_and(|n| same_name(n, name))),
                None => satellite.timers.len().checked_sub(1),
            };
            satellite.timers.remove(index.ok_or(TimerError::NotFound)?)
        };
        timer.task.abort();
        let view = timer.view(Instant::now());
        let cancelled = TimerCancelled {
            id: timer.id,
            ..TimerCancelled::default()
        };
        tell(&link.events, Event::TimerCancelled(cancelled)).await;
        Ok(view)
    }

    /// The running timers of `link` (only those called `name`, if given),
    /// oldest first.
    pub fn status(&self, link: &SatelliteLink, name: Option<&str>) -> Vec<TimerView> {
        let mut satellites = self.lock();
        let now = Instant::now();
        attach(&mut satellites, link)
            .timers
            .iter()
            .filter(|t| {
                name.is_none_or(|name| t.name.as_deref().is_some_and(|n| same_name(n, name)))
            })
            .map(|t| t.view(now))
            .collect()
    }
}

impl Drop for Timers {
    /// Timers end with the stage that runs them.
    fn drop(&mut self) {
        for satellite in self.lock().values() {
            for timer in &satellite.timers {
                timer.task.abort();
            }
        }
    }
}

impl Timer {
    fn view(&self, now: Instant) -> TimerView {
        let left = self.ends_at.saturating_duration_since(now);
        TimerView {
            name: self.name.clone(),
            total_seconds: self.total.as_secs(),
            remaining_seconds: left.as_secs() + u64::from(left.subsec_nanos() > 0),
        }
    }
}

/// The satellite of `link`, with its latest channel.
fn attach<'a>(
    satellites: &'a mut HashMap<String, Satellite>,
    link: &SatelliteLink,
) -> &'a mut Satellite {
    let satellite = satellites
        .entry(link.id.clone())
        .or_insert_with(|| Satellite {
            events: link.events.clone(),
            timers: Vec::new(),
        });
    if !satellite.events.same_channel(&link.events) {
        satellite.events = link.events.clone();
    }
    satellite
}

fn lock(
    satellites: &Mutex<HashMap<String, Satellite>>,
) -> MutexGuard<'_, HashMap<String, Satellite>> {
    // The map stays consistent whatever panicked while it was held.
    satellites.lock().unwrap_or_else(|p| p.into_inner())
}

/// Names compared as spoken: case and spacing do not matter.
fn same_name(a: &str, b: &str) -> bool {
    let words = |s: &str| {
        s.split_whitespace()
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
    };
    words(a) == words(b)
}

/// Sends `event` to a satellite; one that is gone or not reading is
/// skipped (its timer still runs).
async fn tell(events: &mpsc::Sender<Event>, event: Event) {
    let kind = event.kind().to_owned();
    if let Err(e) = events.send_timeout(event, SEND_TIMEOUT).await {
        debug!(event = %kind, error = %e, "satellite not told about its timer");
    }
}
