//! Owner and guest mode: the booking calendar decides the mode, the policy decides what guests may do.
//!
//! Built so far: `calendar` (booking calendars read from iCalendar),
//! `schedule` (the mode at an instant, and why) and `policy` (what each
//! mode may do, from YAML). Still a frame as a service:
//! configuration, `/healthz`, `/readyz` and `/metrics`, graceful drain;
//! until the state store, calendar polling and API are in, the `policy` readiness
//! check fails and says why, so nothing routes work to it.

pub mod calendar;
pub mod policy;
pub mod schedule;

use athena_runtime::http::{HttpConfig, HttpService};

/// The service's name in logs, metrics and `/healthz`.
pub const NAME: &str = "mode-service";

/// The config section this service reads (`ATHENA__MODE_SERVICE__*` overrides it).
pub const SECTION: &str = "mode_service";

/// The `[mode_service]` config section.
pub type Config = HttpConfig;

/// Built-in defaults: HTTP on port 8800.
pub fn default_config() -> Config {
    HttpConfig::on_port(8800)
}

/// The service, ready to run.
pub fn service(config: Config) -> HttpService {
    HttpService::new(NAME, config.http, axum::Router::new())
        .not_ready("policy", "no mode policy is built into this version yet")
}
