//! A circuit breaker: after `failures` consecutive failed calls to a
//! backend, calls are refused at once for `cool_down` (the backend is not
//! hammered while it is down, and callers do not wait on its deadlines);
//! then one trial call goes through, and its outcome closes the breaker
//! again or opens it for another `cool_down`.
//!
//! Generic over the call: [`Breaker::admit`] hands out a [`Permit`] (or
//! says the breaker is open), and the caller reports how the call went with
//! [`Permit::succeed`] or [`Permit::fail`], once, whenever it knows (a
//! streamed answer knows at its end). A permit dropped without a verdict
//! (the caller gave up) decides nothing; if it was the trial, the next call
//! is the trial instead.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use metrics::counter;
use tokio::time::Instant;
use tracing::{info, warn};

/// When a breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive failures that open it (at least 1).
    pub failures: u32,
    /// How long it stays open before a trial call.
    pub cool_down: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failures: 3,
            cool_down: Duration::from_secs(30),
        }
    }
}

/// A breaker for one backend; clones share its state.
#[derive(Debug, Clone)]
pub struct Breaker {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The backend's name, in logs and metrics.
    name: String,
    settings: BreakerSettings,
    state: Mutex<State>,
}

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Calls go through; `failures` in a row so far.
    Closed { failures: u32 },
    /// Calls are refused until `until`; then the next is a trial.
    Open { until: Instant },
    /// A trial call is under way; others are refused meanwhile.
    Trial,
}

/// What a breaker says about its backend now (for status and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are refused for this long still.
    Open(Duration),
    /// The cool-down is over: the next call is the trial.
    HalfOpen,
    /// The trial call is under way; others are refused until it ends.
    Trial,
}

/// A refusal: the breaker is open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name} failed {failures} times in a row; not called for another {} ms", retry_in.as_millis())]
pub struct Open {
    /// The backend.
    pub name: String,
    /// The failures that open the breaker.
    pub failures: u32,
    /// How long until a trial call goes through (zero: a trial is under way).
    pub retry_in: Duration,
}

/// Leave to make one call; say how it went.
#[derive(Debug)]
#[must_use = "a permit decides nothing unless told how the call went"]
pub struct Permit {
    breaker: Breaker,
    /// Whether this call is the trial of an open breaker.
    trial: bool,
    /// Whether a verdict was given.
    done: bool,
}

impl Breaker {
    /// A closed breaker for backend `name`.
    pub fn new(name: impl Into<String>, settings: BreakerSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                name: name.into(),
                settings: BreakerSettings {
                    failures: settings.failures.max(1),
                    ..settings
                },
                state: Mutex::new(State::Closed { failures: 0 }),
            }),
        }
    }

    /// The backend's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Its settings.
    pub fn settings(&self) -> BreakerSettings {
        self.inner.settings
    }

    /// Leave for one call, or [`Open`] when the backend is not to be called.
    pub fn admit(&self) -> Result<Permit, Open> {
        let mut state = self.lock();
        let now = Instant::now();
        let trial = match *state {
            State::Closed { .. } => false,
            State::Open { until } if now >= until => {
                *state = State::Trial;
                info!(backend = %self.inner.name, "trying a call after the cool-down");
                true
            }
            State::Open { until } => return Err(self.refusal(until - now)),
            State::Trial => return Err(self.refusal(Duration::ZERO)),
        };
        Ok(Permit {
            breaker: self.clone(),
            trial,
            done: false,
        })
    }

    /// Where it stands now.
    pub fn state(&self) -> BreakerState {
        match *self.lock() {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { until } => match until.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => BreakerState::Open(left),
                _ => BreakerState::HalfOpen,
            },
            State::Trial => BreakerState::Trial,
        }
    }

    fn refusal(&self, retry_in: Duration) -> Open {
        counter!("orchestrator_breaker_refusals_total", "backend" => self.inner.name.clone())
            .increment(1);
        Open {
            name: self.inner.name.clone(),
            failures: self.inner.settings.failures,
            retry_in,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, trial: bool, ok: bool) {
        let mut state = self.lock();
        let settings = self.inner.settings;
        let was_open = !matches!(*state, State::Closed { .. });
        *state = match (ok, *state) {
            (true, _) => State::Closed { failures: 0 },
            // A call admitted before another opened the breaker: its
            // failure is old news.
            (false, State::Open { until }) if !trial => State::Open { until },
            (false, State::Closed { failures }) if failures + 1 < settings.failures && !trial => {
                State::Closed {
                    failures: failures + 1,
                }
            }
            (false, _) => {
                counter!("orchestrator_breaker_opened_total", "backend" => self.inner.name.clone())
                    .increment(1);
                warn!(
                    backend = %self.inner.name,
                    cool_down_ms = settings.cool_down.as_millis() as u64,
                    "backend failing; not calling it for a while"
                );
                State::Open {
                    until: Instant::now() + settings.cool_down,
                }
            }
        };
        if ok && was_open {
            info!(backend = %self.inner.name, "backend answers again");
        }
    }

    /// A trial that ended without a verdict: the next call is the trial.
    fn abandon_trial(&self) {
        let mut state = self.lock();
        if *state == State::Trial {
            *state = State::Open {
                until: Instant::now(),
            };
        }
    }
}

impl Permit {
    /// The call went well: the breaker closes (its failures are forgotten).
    pub fn succeed(mut self) {
        self.done = true;
        self.breaker.record(self.trial, true);
    }

    /// The call failed: one more failure, maybe opening the breaker.
    pub fn fail(mut self) {
        self.done = true;
        self.breaker.record(self.trial, false);
    }

    /// Whether this call is the trial after a cool-down.
    pub fn is_trial(&self) -> bool {
        self.trial
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.done && self.trial {
            self.breaker.abandon_trial();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(
            "llm",
            BreakerSettings {
                failures: 2,
                cool_down: Duration::from_secs(10),
            },
        )
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_failures_then_tries_once() {
        let b = breaker();
        b.admit().unwrap().fail();
        b.admit().unwrap().succeed();
        b.admit().unwrap().fail();
        assert_eq!(b.state(), BreakerState::Closed, "not consecutive");
        b.admit().unwrap().fail();
        assert_eq!(b.state(), BreakerState::Open(Duration::from_secs(10)));
        let open = b.admit().unwrap_err();
        assert_eq!(open.retry_in, Duration::from_secs(10));
        assert_eq!(open.failures, 2);

        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let trial = b.admit().unwrap();
        assert!(trial.is_trial());
        assert_eq!(b.state(), BreakerState::Trial);
        assert_eq!(b.admit().unwrap_err().retry_in, Duration::ZERO);
        // A failed trial opens it again at once (one failure is enough).
        trial.fail();
        assert_eq!(b.state(), BreakerState::Open(Duration::from_secs(10)));

        tokio::time::advance(Duration::from_secs(10)).await;
        b.admit().unwrap().succeed();
        assert_eq!(b.state(), BreakerState::Closed);
        b.admit().unwrap().fail();
        assert_eq!(b.state(), BreakerState::Closed, "failures were forgotten");
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_trial_lets_the_next_call_try() {
        let b = breaker();
        b.admit().unwrap().fail();
        b.admit().unwrap().fail();
        tokio::time::advance(Duration::from_secs(10)).await;
        drop(b.admit().unwrap());
        assert!(b.admit().unwrap().is_trial());
    }

    #[tokio::test(start_paused = true)]
    async fn late_failures_do_not_extend_the_cool_down() {
        let b = breaker();
        let (first, second, third) = (b.admit().unwrap(), b.admit().unwrap(), b.admit().unwrap());
        first.fail();
        second.fail();
        tokio::time::advance(Duration::from_secs(5)).await;
        third.fail();
        assert_eq!(b.state(), BreakerState::Open(Duration::from_secs(5)));
    }
}
