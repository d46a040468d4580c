//! Endpoints (`tcp://`, `unix://`, `stdio://`), a server that accepts
//! connections and hands each to a [`Handler`], and a client that connects.
//!
//! The server bounds the number of open connections, answers protocol errors
//! with an `error` event before closing, and drains on shutdown: it stops
//! accepting, idle connections close, busy ones finish their current request.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::connection::{Connection, ConnectionConfig, ConnectionError};
use crate::event::Error;

/// Where a Wyoming program listens or is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `tcp://host:port`
    Tcp(String),
    /// `unix:///path/to/socket`
    Unix(PathBuf),
    /// `stdio://`: standard input and output.
    Stdio,
}

/// An endpoint URI that could not be understood.
#[derive(Debug, thiserror::Error)]
#[error("invalid Wyoming URI {uri:?}: expected tcp://HOST:PORT, unix://PATH or stdio://")]
pub struct InvalidEndpoint {
    uri: String,
}

impl FromStr for Endpoint {
    type Err = InvalidEndpoint;

    fn from_str(uri: &str) -> Result<Self, InvalidEndpoint> {
        let invalid = || InvalidEndpoint {
            uri: uri.to_owned(),
        };
        if let Some(addr) = uri.strip_prefix("tcp://") {
            let (host, port) = addr.rsplit_once(':').ok_or_else(invalid)?;
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(invalid());
            }
            Ok(Self::Tcp(addr.to_owned()))
        } else if let Some(path) = uri.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(invalid());
            }
            Ok(Self::Unix(PathBuf::from(path)))
        } else if uri == "stdio://" {
            Ok(Self::Stdio)
        } else {
            Err(invalid())
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(addr) => write!(f, "tcp://{addr}"),
            Self::Unix(path) => write!(f, "unix://{}", path.display()),
            Self::Stdio => f.write_str("stdio://"),
        }
    }
}

/// What a server does with each connection.
pub trait Handler: Send + Sync + 'static {
    /// Serves one connection until the peer leaves or an error ends it. A
    /// returned error is reported to the peer as an `error` event.
    fn handle<'a>(
        &'a self,
        conn: &'a mut Connection,
    ) -> impl Future<Output = Result<(), ConnectionError>> + Send + 'a;
}

/// Limits of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// Limits and timeouts of each connection.
    pub connection: ConnectionConfig,
    /// Connections open at once; one more is told `busy` and closed.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            connection: ConnectionConfig::default(),
            max_connections: 1024,
        }
    }
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

/// A bound Wyoming server, not yet serving.
pub struct Server {
    listener: Listener,
    config: ServerConfig,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr())
            .field("config", &self.config)
            .finish()
    }
}

impl Server {
    /// Binds a TCP or Unix endpoint. A stale Unix socket file is replaced.
    pub async fn bind(endpoint: &Endpoint, config: ServerConfig) -> std::io::Result<Self> {
        let listener = match endpoint {
            Endpoint::Tcp(addr) => Listener::Tcp(TcpListener::bind(addr).await?),
            Endpoint::Unix(path) => {
                if path.exists() && UnixStream::connect(path).await.is_err() {
                    std::fs::remove_file(path)?;
                }
                Listener::Unix(UnixListener::bind(path)?, path.clone())
            }
            Endpoint::Stdio => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "stdio:// is served with serve_stdio, not bound",
                ));
            }
        };
        Ok(Self { listener, config })
    }

    /// The TCP address actually bound (useful after binding port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.listener {
            Listener::Tcp(l) => l.local_addr().ok(),
            Listener::Unix(..) => None,
        }
    }

    /// Accepts connections until `shutdown`, then waits for open ones to end.
    pub async fn serve<H: Handler>(self, handler: Arc<H>, shutdown: CancellationToken) {
        let slots = Arc::new(Semaphore::new(self.config.max_connections));
        let tasks = TaskTracker::new();
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = accept(&self.listener) => accepted,
            };
            let (conn, peer) = match accepted {
                Ok(ok) => ok,
                Err(e) => {
                    // Running out of file descriptors must not end the server.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let mut conn = match conn {
                Accepted::Tcp(s) => {
                    let _ = s.set_nodelay(true);
                    Connection::from_stream(s, &peer, &self.config.connection, shutdown.clone())
                }
                Accepted::Unix(s) => {
                    Connection::from_stream(s, &peer, &self.config.connection, shutdown.clone())
                }
            };
            let permit = slots.clone().try_acquire_owned();
            let handler = handler.clone();
            let span = info_span!("wyoming", peer = %peer);
            tasks.spawn(
                async move {
                    let Ok(_permit) = permit else {
                        metrics::counter!("wyoming_connections_refused_total").increment(1);
                        warn!("connection limit reached");
                        let busy = Error::new("busy", "too many connections, try again later");
                        let _ = conn.send(busy).await;
                        let _ = conn.writer.close().await;
                        return;
                    };
                    run_connection(handler.as_ref(), &mut conn).await;
                }
                .instrument(span),
            );
        }
        if let Listener::Unix(_, path) = &self.listener {
            let _ = std::fs::remove_file(path);
        }
        tasks.close();
        info!(
            open = tasks.len(),
            "stopped accepting; waiting for connections"
        );
        tasks.wait().await;
    }
}

/// Serves one connection over standard input and output.
pub async fn serve_stdio<H: Handler>(
    handler: Arc<H>,
    config: ConnectionConfig,
    shutdown: CancellationToken,
) {
    let mut conn = Connection::new(
        Box::new(tokio::io::stdin()),
        Box::new(tokio::io::stdout()),
        "stdio",
        &config,
        shutdown,
    );
    run_connection(handler.as_ref(), &mut conn).await;
}

/// Runs a handler on a connection, reports its error to the peer, closes.
async fn run_connection<H: Handler>(handler: &H, conn: &mut Connection) {
    metrics::counter!("wyoming_connections_total").increment(1);
    metrics::gauge!("wyoming_connections_open").increment(1.0);
    debug!("connected");
    if let Err(e) = handler.handle(conn).await {
        let code = e.code().unwrap_or("io-error");
        metrics::counter!("wyoming_connection_errors_total", "code" => code).increment(1);
        warn!(error = %e, code, "closing connection");
        if let Some(event) = e.to_event() {
            let _ = conn.send(event).await;
            let _ = conn.writer.close().await;
            conn.reader
                .discard_input(1 << 20, std::time::Duration::from_millis(500))
                .await;
        }
    }
    let _ = conn.writer.close().await;
    metrics::gauge!("wyoming_connections_open").decrement(1.0);
    debug!("disconnected");
}

enum Accepted {
    Tcp(TcpStream),
    Unix(UnixStream),
}

async fn accept(listener: &Listener) -> std::io::Result<(Accepted, String)> {
    match listener {
        Listener::Tcp(l) => {
            let (s, addr) = l.accept().await?;
            Ok((Accepted::Tcp(s), addr.to_string()))
        }
        Listener::Unix(l, path) => {
            let (s, _) = l.accept().await?;
            Ok((Accepted::Unix(s), format!("unix:{}", path.display())))
        }
    }
}

/// Connects to a Wyoming program as a client.
pub async fn connect(
    endpoint: &Endpoint,
    config: &ConnectionConfig,
) -> std::io::Result<Connection> {
    let never = CancellationToken::new();
    match endpoint {
        Endpoint::Tcp(addr) => {
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(Connection::from_stream(stream, addr, config, never))
        }
        Endpoint::Unix(path) => {
            let stream = UnixStream::connect(path).await?;
            Ok(Connection::from_stream(
                stream,
                path.display().to_string(),
                config,
                never,
            ))
        }
        Endpoint::Stdio => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a client cannot connect to stdio://",
        )),
    }
}
