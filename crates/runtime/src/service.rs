//! The shape of a runnable service, and the one place that starts services,
//! waits for a signal or a failure, and drains them within the grace period.
//!
//! A service binary and the all-in-one `athena` binary both go through
//! [`launch`]; they differ only in which services they build.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::{ConfigError, ConfigSource};
use crate::http::Readiness;
use crate::shutdown::{self, ShutdownConfig};
use crate::telemetry::{self, LogConfig};

/// The future a service runs as.
pub type ServiceFuture = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

/// What a running service is given.
#[derive(Debug, Clone)]
pub struct ServiceContext {
    /// Cancelled when the process should stop: stop accepting, finish what is in flight.
    pub shutdown: CancellationToken,
    /// This service's readiness checks, served on its `/readyz`.
    pub readiness: Readiness,
}

/// A service that runs until its context's shutdown token is cancelled.
pub trait Service: Send {
    /// The service's name, as in logs and metrics (`stt`, `router-small-llm`).
    fn name(&self) -> &'static str;

    /// Binds its ports, serves, and returns once drained after shutdown. An
    /// error (a port in use, a model that does not load) stops the process.
    fn run(self: Box<Self>, ctx: ServiceContext) -> ServiceFuture;
}

/// Exit status for an unusable configuration (`EX_CONFIG` in sysexits.h).
pub const EXIT_CONFIG: u8 = 78;

/// Runs `services` until `shutdown` is cancelled or one of them fails, then
/// gives them `config.grace_period()` to drain and aborts what is left.
pub async fn run_until_shutdown(
    services: Vec<Box<dyn Service>>,
    config: ShutdownConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut tasks = JoinSet::new();
    let mut readiness = Vec::new();
    for service in services {
        let name = service.name();
        let ctx = ServiceContext {
            shutdown: shutdown.clone(),
            readiness: Readiness::default(),
        };
        readiness.push(ctx.readiness.clone());
        let span = tracing::info_span!("service", name);
        tasks.spawn(tracing::Instrument::instrument(
            async move { (name, service.run(ctx).await) },
            span,
        ));
    }

    let mut failure: Option<anyhow::Error> = None;
    tokio::select! {
        // On a signal, services end as they drain: that is not a failure.
        biased;
        () = shutdown.cancelled() => {}
        Some(joined) = tasks.join_next() => {
            failure = ended_early(joined, shutdown.is_cancelled());
            shutdown.cancel();
        }
    }
    for r in &readiness {
        r.set("draining", false, "shutting down");
    }

    // A service that fails while the others drain (one of its own parts
    // failed and cancelled `shutdown`, say) fails the process all the same.
    let grace = config.grace_period();
    let drain = async {
        let mut first = None;
        while let Some(joined) = tasks.join_next().await {
            if let Some(failed) = ended_early(joined, true) {
                error!(error = format!("{failed:#}"), "while draining");
                first.get_or_insert(failed);
            }
        }
        first
    };
    match tokio::time::timeout(grace, drain).await {
        Ok(failed) => {
            info!("drained");
            failure = failure.or(failed);
        }
        Err(_) => {
            warn!(?grace, "grace period over; aborting what is left");
            tasks.abort_all();
        }
    }
    failure.map_or(Ok(()), Err)
}

/// Why the process must stop because a service ended, if it must.
fn ended_early(
    joined: Result<(&'static str, anyhow::Result<()>), tokio::task::JoinError>,
    draining: bool,
) -> Option<anyhow::Error> {
    match joined {
        Ok((_, Ok(()))) if draining => None,
        Ok((name, Ok(()))) => Some(anyhow::anyhow!("{name} stopped on its own")),
        Ok((name, Err(e))) => Some(e.context(format!("{name} failed"))),
        Err(e) => Some(anyhow::anyhow!("a service panicked: {e}")),
    }
}

/// The whole life of a service process: configuration, telemetry, the
/// services that `build` makes from the configuration, signals, drain.
///
/// A configuration error exits with [`EXIT_CONFIG`] and a message that says
/// what is wrong; a failure while running exits with 1.
pub fn launch<F>(config_file: Option<PathBuf>, build: F) -> ExitCode
where
    F: FnOnce(&ConfigSource) -> anyhow::Result<Vec<Box<dyn Service>>>,
{
    let loaded = ConfigSource::new(config_file).and_then(|source| {
        let log: LogConfig = source.section("log")?;
        let shutdown: ShutdownConfig = source.section("shutdown")?;
        Ok((source, log, shutdown))
    });
    let (source, log, shutdown_config) = match loaded {
        Ok(ok) => ok,
        Err(e) => return config_failure(&e),
    };
    telemetry::init_logging(&log);

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        telemetry::metrics();
        let services = match build(&source) {
            Ok(services) => services,
            Err(e) => {
                return match e.downcast_ref::<ConfigError>() {
                    Some(config_error) => config_failure(config_error),
                    None => {
                        error!(error = format!("{e:#}"), "cannot start");
                        ExitCode::FAILURE
                    }
                };
            }
        };
        let names: Vec<_> = services.iter().map(|s| s.name()).collect();
        info!(services = ?names, version = env!("CARGO_PKG_VERSION"), "starting");
        let shutdown = shutdown::on_signal();
        match run_until_shutdown(services, shutdown_config, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                error!(error = format!("{e:#}"), "stopped");
                ExitCode::FAILURE
            }
        }
    })
}

fn config_failure(e: &ConfigError) -> ExitCode {
    // Logging is not set up yet (its own config may be the problem): stderr.
    #[allow(clippy::print_stderr)]
    {
        eprintln!("athena: {e}");
    }
    ExitCode::from(EXIT_CONFIG)
}

/// A listener or worker that is one part of a service.
pub type Part<'a> = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + 'a>>;

/// Runs the parts of one service (its Wyoming, HTTP and gRPC listeners) side
/// by side. If one fails, `shutdown` is cancelled so the others stop too:
/// half a service is worse than a clear failure.
pub async fn run_parts(shutdown: &CancellationToken, parts: Vec<Part<'_>>) -> anyhow::Result<()> {
    let results = futures::future::join_all(parts.into_iter().map(|part| async move {
        let result = part.await;
        if result.is_err() {
            shutdown.cancel();
        }
        result
    }))
    .await;
    results.into_iter().collect()
}

/// Where a service's model (or voices, or index) will be once loaded; its
/// listeners open before that and answer "loading" until it is there.
pub type Slot<T> = std::sync::Arc<std::sync::OnceLock<std::sync::Arc<T>>>;

/// The part of a service that loads what it serves on a blocking thread:
/// readiness check `check` says `loading` until `load` returns, then what
/// `describe` says of the loaded value, which is put in `slot`. A failed
/// load fails the service.
pub fn loader<T, L, D>(
    ctx: &ServiceContext,
    check: &'static str,
    loading: String,
    slot: Slot<T>,
    load: L,
    describe: D,
) -> Part<'static>
where
    T: Send + Sync + 'static,
    L: FnOnce() -> anyhow::Result<T> + Send + 'static,
    D: FnOnce(&T) -> String + Send + 'static,
{
    let readiness = ctx.readiness.clone();
    let shutdown = ctx.shutdown.clone();
    readiness.set(check, false, loading.clone());
    Box::pin(async move {
        info!(check, %loading, "loading");
        // A shutdown does not wait for a model to finish loading.
        let loaded = tokio::select! {
            loaded = tokio::task::spawn_blocking(load) => loaded??,
            () = shutdown.cancelled() => return Ok(()),
        };
        let detail = describe(&loaded);
        info!(check, %detail, "ready");
        let _ = slot.set(std::sync::Arc::new(loaded));
        readiness.set(check, true, detail);
        Ok(())
    })
}

/// The command line every single-service binary accepts.
#[derive(Debug, clap::Parser)]
#[command(version)]
pub struct ServiceArgs {
    /// A TOML config file; `ATHENA__SECTION__KEY` variables override it.
    #[arg(long, env = "ATHENA_CONFIG")]
    pub config: Option<PathBuf>,
}

/// `main` of a binary that runs one service: parses [`ServiceArgs`], loads the
/// service's config `section` over `defaults`, builds the service and runs it.
pub fn run_single<C, S>(section: &'static str, defaults: C, build: impl FnOnce(C) -> S) -> ExitCode
where
    C: serde::de::DeserializeOwned + serde::Serialize + crate::Validate,
    S: Service + 'static,
{
    let args = <ServiceArgs as clap::Parser>::parse();
    launch(args.config, |source| {
        let config: C = source.section_with_defaults(section, defaults)?;
        Ok(vec![Box::new(build(config)) as Box<dyn Service>])
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    /// Takes `drain` to finish after shutdown; records whether it finished.
    struct Slow {
        drain: Duration,
        finished: Arc<AtomicBool>,
        fail: bool,
    }

    impl Service for Slow {
        fn name(&self) -> &'static str {
            "slow"
        }

        fn run(self: Box<Self>, ctx: ServiceContext) -> ServiceFuture {
            Box::pin(async move {
                if self.fail {
                    anyhow::bail!("port in use");
                }
                ctx.shutdown.cancelled().await;
                tokio::time::sleep(self.drain).await;
                self.finished.store(true, Ordering::SeqCst);
                Ok(())
            })
        }
    }

    fn slow(drain_ms: u64, fail: bool) -> (Box<dyn Service>, Arc<AtomicBool>) {
        let finished = Arc::new(AtomicBool::new(false));
        let service = Slow {
            drain: Duration::from_millis(drain_ms),
            finished: finished.clone(),
            fail,
        };
        (Box::new(service), finished)
    }

    fn grace(secs: u64) -> ShutdownConfig {
        ShutdownConfig {
            grace_period_secs: secs,
        }
    }

    #[tokio::test]
    async fn in_flight_work_finishes_within_the_grace_period() {
        let (service, finished) = slow(200, false);
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        run_until_shutdown(vec![service], grace(5), shutdown)
            .await
            .unwrap();
        assert!(finished.load(Ordering::SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn work_past_the_grace_period_is_aborted() {
        let (service, finished) = slow(60_000, false);
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        run_until_shutdown(vec![service], grace(1), shutdown)
            .await
            .unwrap();
        assert!(!finished.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn one_failing_service_stops_the_others() {
        let (failing, _) = slow(0, true);
        let (healthy, finished) = slow(10, false);
        let shutdown = CancellationToken::new();
        let err = run_until_shutdown(vec![failing, healthy], grace(5), shutdown.clone())
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("port in use"), "{err:#}");
        assert!(shutdown.is_cancelled());
        assert!(finished.load(Ordering::SeqCst), "the healthy one drained");
    }

    /// As a service whose model fails to load: `run_parts` cancels the
    /// shutdown token for its listeners before the service returns its error.
    #[derive(Debug)]
    struct FailsToLoad;

    impl Service for FailsToLoad {
        fn name(&self) -> &'static str {
            "loader"
        }

        fn run(self: Box<Self>, ctx: ServiceContext) -> ServiceFuture {
            Box::pin(async move {
                let load: Part<'_> = Box::pin(async { anyhow::bail!("no espeak-ng data") });
                let listen: Part<'_> = Box::pin(async {
                    ctx.shutdown.cancelled().await;
                    Ok(())
                });
                run_parts(&ctx.shutdown, vec![load, listen]).await
            })
        }
    }

    #[tokio::test]
    async fn a_part_that_fails_fails_the_process() {
        let (healthy, finished) = slow(10, false);
        let shutdown = CancellationToken::new();
        let err = run_until_shutdown(
            vec![Box::new(FailsToLoad), healthy],
            grace(5),
            shutdown.clone(),
        )
        .await
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("loader failed: no espeak-ng data"),
            "{err:#}"
        );
        assert!(finished.load(Ordering::SeqCst), "the healthy one drained");
    }
}
