//! Outbound satellites: the orchestrator dials each configured satellite (a
//! Wyoming server, such as `wyoming-satellite`), as Home Assistant does.
//!
//! For each one a loop connects, asks `describe` (the `info` it answers
//! proves it is a satellite and names it in the log), sends `run-satellite`,
//! then serves the connection as it would an inbound one
//! ([`SatelliteEndpoint::serve`]) under the configured name, pinging every
//! 2 s and giving up after 5 s without hearing anything. A refused or lost
//! connection is tried again after 1 s, doubling up to 30 s; the delay
//! starts over after a connection that stayed up. Shutdown ends every loop.
//!
//! Home Assistant sends `run-satellite` before `describe`; here the `info`
//! is awaited first, so that it is read by the handshake rather than by the
//! session (which answers events it does not handle with `error`). A
//! satellite sends nothing before it is told to run, so nothing is lost.
//!
//! Metrics: `orchestrator_satellite_connected{satellite}` (1 while
//! connected), `orchestrator_satellite_connection_attempts_total{satellite,
//! outcome="connected|failed"}`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use metrics::{counter, gauge};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};
use wyoming::event::{Describe, RunSatellite};
use wyoming::info::Satellite;
use wyoming::{Connection, ConnectionConfig, ConnectionError, Endpoint, Event};

use crate::config::OutboundSatellite;
use crate::satellite::{PeerOptions, SatelliteEndpoint};

/// Ping this often; give up when nothing was heard for this long (Home
/// Assistant's values).
pub const KEEPALIVE: (Duration, Duration) = (Duration::from_secs(2), Duration::from_secs(5));
/// Connecting and the answer to `describe`, together.
const HANDSHAKE: Duration = Duration::from_secs(5);
/// The first delay before connecting again.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest delay before connecting again.
const LAST_RETRY: Duration = Duration::from_secs(30);
/// A connection that lasted this long was healthy: the next retry waits
/// [`FIRST_RETRY`] again.
const HEALTHY: Duration = Duration::from_secs(10);

/// Keeps a connection to each of `satellites` until `shutdown`, serving
/// them through `endpoint`.
pub async fn run(
    satellites: Vec<OutboundSatellite>,
    endpoint: Arc<SatelliteEndpoint>,
    connection: ConnectionConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut loops = Vec::with_capacity(satellites.len());
    for satellite in satellites {
        let target = satellite
            .endpoint()
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("satellite {}", satellite.name))?;
        let span = info_span!("satellite", name = %satellite.name, uri = %satellite.uri);
        let link = Link {
            name: satellite.name,
            target,
            endpoint: &endpoint,
            connection: &connection,
        };
        loops.push(link.keep(&shutdown).instrument(span));
    }
    futures::future::join_all(loops).await;
    Ok(())
}

/// Why a connection to a satellite was not made.
#[derive(Debug, thiserror::Error)]
enum HandshakeError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("no connection and `info` within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    #[error("it closed the connection before answering `describe`")]
    Closed,
    #[error("it is not a satellite: its `info` has no `satellite`")]
    NotASatellite,
}

/// One configured satellite and what its loop needs.
struct Link<'a> {
    name: String,
    target: Endpoint,
    endpoint: &'a SatelliteEndpoint,
    connection: &'a ConnectionConfig,
}

impl Link<'_> {
    /// Connects, serves and reconnects until `shutdown`.
    async fn keep(self, shutdown: &CancellationToken) {
        let connected =
            gauge!("orchestrator_satellite_connected", "satellite" => self.name.clone());
        connected.set(0.0);
        let attempts = |outcome: &'static str| {
            counter!(
                "orchestrator_satellite_connection_attempts_total",
                "satellite" => self.name.clone(),
                "outcome" => outcome
            )
        };
        let mut backoff = Backoff::default();
        loop {
            let attempt = tokio::select! {
                () = shutdown.cancelled() => return,
                attempt = self.handshake() => attempt,
            };
            match attempt {
                Ok((mut conn, satellite)) => {
                    attempts("connected").increment(1);
                    connected.set(1.0);
                    info!(
                        described_as = %satellite.artifact.name,
                        area = satellite.area.as_deref().unwrap_or(""),
                        "satellite connected"
                    );
                    let since = Instant::now();
                    let options = PeerOptions {
                        name: self.name.clone(),
                        keepalive: Some(KEEPALIVE),
                    };
                    let ended = tokio::select! {
                        () = shutdown.cancelled() => None,
                        ended = self.endpoint.serve(&mut conn, options) => Some(ended),
                    };
                    connected.set(0.0);
                    let Some(ended) = ended else {
                        // Shutting down: the session is gone (and with it
                        // any run); close the connection politely.
                        let _ =
                            tokio::time::timeout(Duration::from_secs(1), conn.writer.close()).await;
                        return;
                    };
                    if since.elapsed() >= HEALTHY {
                        backoff.reset();
                    }
                    let retry_in = backoff.peek();
                    match ended {
                        Ok(()) => warn!(?retry_in, "the satellite closed the connection"),
                        Err(e) => warn!(error = %e, ?retry_in, "lost the satellite"),
                    }
                }
                Err(e) => {
                    attempts("failed").increment(1);
                    warn!(error = %e, retry_in = ?backoff.peek(), "cannot reach the satellite");
                }
            }
            let delay = backoff.next_delay();
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// Connects, reads the answer to `describe`, and tells the satellite to
    /// run.
    async fn handshake(&self) -> Result<(Connection, Satellite), HandshakeError> {
        let deadline = Instant::now() + HANDSHAKE;
        let mut conn = within(deadline, wyoming::connect(&self.target, self.connection))
            .await?
            .map_err(HandshakeError::Connect)?;
        let info = async {
            conn.send(Describe::default()).await?;
            loop {
                // Anything before the `info` (a satellite says nothing
                // unasked, but a peer may) is not for this handshake.
                match conn.next_event().await? {
                    Some(Event::Info(info)) => return Ok(info),
                    Some(_) => {}
                    None => return Err(HandshakeError::Closed),
                }
            }
        };
        let info = within(deadline, info).await??;
        let satellite = info.satellite.ok_or(HandshakeError::NotASatellite)?;
        conn.send(RunSatellite::default()).await?;
        Ok((conn, satellite))
    }
}

/// `future`'s output, unless `deadline` comes first.
async fn within<T>(
    deadline: Instant,
    future: impl Future<Output = T>,
) -> Result<T, HandshakeError> {
    tokio::time::timeout_at(deadline, future)
        .await
        .map_err(|_| HandshakeError::Timeout(HANDSHAKE))
}

/// Delays between attempts: doubling from [`FIRST_RETRY`] to [`LAST_RETRY`].
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: FIRST_RETRY }
    }
}

impl Backoff {
    /// The delay [`Self::next_delay`] will give.
    fn peek(&self) -> Duration {
        self.next
    }

    /// The delay before the next attempt; the one after is longer.
    fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (delay * 2).min(LAST_RETRY);
        delay
    }

    /// Starts over from [`FIRST_RETRY`].
    fn reset(&mut self) {
        self.next = FIRST_RETRY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_a_ceiling_and_start_over() {
        let mut backoff = Backoff::default();
        let delays: Vec<u64> = (0..7).map(|_| backoff.next_delay().as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), FIRST_RETRY);
    }
}
