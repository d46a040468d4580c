//! Owner and guest mode: the booking calendars decide the mode, the policy
//! decides what each mode may do.
//!
//! - [`calendar`]: booking calendars read from iCalendar.
//! - [`schedule`]: the mode at an instant, and why.
//! - [`policy`]: what each mode may do, from YAML.
//! - [`house`]: the service's state (calendars with their last good copy,
//!   the override, the policy) and where it is kept ([`athena_store`]).
//! - [`http_api`]: the API the orchestrator and owners use.
//!
//! The service loop loads the saved state (retrying while the store is
//! down), fetches the calendars every `poll_interval_secs`, and checks the
//! policy file for changes every `policy_check_secs`.

pub mod calendar;
pub mod clock;
pub mod config;
pub mod fetch;
pub mod house;
pub mod http_api;
pub mod policy;
pub mod schedule;

use std::sync::Arc;
use std::time::Duration;

use athena_runtime::http::{self, Readiness};
use athena_runtime::service::{self, Service, ServiceContext, ServiceFuture};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::warn;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::Config;
pub use house::House;

/// The service's name in logs, metrics and `/healthz`.
pub const NAME: &str = "mode-service";

/// The config section this service reads (`ATHENA__MODE_SERVICE__*` overrides it).
pub const SECTION: &str = "mode_service";

/// The readiness check for the saved state.
pub const STATE_CHECK: &str = "state";

/// Built-in defaults: HTTP on port 8800, UTC, check-in 15:00, check-out 11:00.
pub fn default_config() -> Config {
    Config::default()
}

/// The service, ready to run.
#[derive(Debug)]
pub struct ModeService {
    config: Config,
    clock: Arc<dyn Clock>,
}

/// The service for `config`, on the system clock.
pub fn service(config: Config) -> ModeService {
    with_clock(config, Arc::new(SystemClock))
}

/// The service on another clock (tests).
pub fn with_clock(config: Config, clock: Arc<dyn Clock>) -> ModeService {
    ModeService { config, clock }
}

impl Service for ModeService {
    fn name(&self) -> &'static str {
        NAME
    }

    fn run(self: Box<Self>, ctx: ServiceContext) -> ServiceFuture {
        Box::pin(async move {
            let config = self.config;
            let house = House::new(&config, self.clock).map_err(anyhow::Error::msg)?;
            let api = http_api::router(house.clone(), config.max_body_bytes);
            let http = http::serve(
                NAME,
                config.http,
                api,
                ctx.readiness.clone(),
                ctx.shutdown.clone(),
            );
            let background =
                keep_current(house, config, ctx.readiness.clone(), ctx.shutdown.clone());
            service::run_parts(&ctx.shutdown, vec![Box::pin(background), Box::pin(http)]).await
        })
    }
}

/// The background loop: load the saved state, then poll the calendars and
/// watch the policy file until `shutdown`.
pub async fn keep_current(
    house: Arc<House>,
    config: Config,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    readiness.set(
        STATE_CHECK,
        false,
        format!("loading from {}", house.store()),
    );
    let tick = Duration::from_secs_f64(config.policy_check_secs.min(5.0));
    let poll = Duration::from_secs(config.poll_interval_secs);
    let mut next_poll = Instant::now();
    loop {
        if !house.is_loaded() {
            match house.restore().await {
                Ok(()) => readiness.set(STATE_CHECK, true, house.store()),
                Err(e) => {
                    warn!(error = %e, "cannot load the saved state; retrying");
                    readiness.set(STATE_CHECK, false, e.to_string());
                }
            }
        }
        house.reload_policy().await;
        if house.is_loaded() && Instant::now() >= next_poll {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                _ = house.refresh() => {}
            }
            next_poll = Instant::now() + poll;
        }
        house.observe();
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(tick) => {}
        }
    }
}
