//! A Wyoming connection over any byte stream, with read and write timeouts.
//!
//! Reading and writing are separate halves so that a handler can stream events
//! out (partial transcripts, audio) while it is still reading events in.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, sleep_until};
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;

use crate::codec::{Limits, ProtocolError, WyomingCodec};
use crate::event::{Error, Event, EventError};
use crate::frame::Frame;

/// The read half of a transport, boxed so that TCP, Unix sockets and stdio look alike.
pub type BoxedRead = Box<dyn AsyncRead + Send + Unpin>;
/// The write half of a transport.
pub type BoxedWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// Limits and timeouts of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionConfig {
    /// Frame size limits.
    pub limits: Limits,
    /// How long a peer may stay silent between events; `None` waits forever.
    pub idle_timeout: Option<Duration>,
    /// How long a peer may take to finish a frame it has started.
    pub frame_timeout: Duration,
    /// How long a write may wait for the peer to read.
    pub write_timeout: Duration,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            // Home Assistant pings every 2 s; a peer silent for 5 minutes is gone.
            idle_timeout: Some(Duration::from_secs(300)),
            frame_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// Why a connection could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The byte stream is not valid Wyoming.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// A known event type arrived with data of the wrong shape.
    #[error(transparent)]
    InvalidEvent(#[from] EventError),
    /// The peer sent nothing for too long.
    #[error("no event received for {0:?}")]
    IdleTimeout(Duration),
    /// The peer started a frame and did not finish it in time.
    #[error("frame not completed within {0:?}")]
    FrameTimeout(Duration),
    /// The peer did not read what was written to it in time.
    #[error("peer did not accept data within {0:?}")]
    WriteTimeout(Duration),
}

impl ConnectionError {
    /// The code of the `error` event that tells the peer what went wrong, or
    /// `None` when the peer can no longer be told (the transport failed).
    pub fn code(&self) -> Option<&'static str> {
        match self {
            Self::Protocol(ProtocolError::Io(_)) | Self::WriteTimeout(_) => None,
            Self::Protocol(e) => Some(e.code()),
            Self::InvalidEvent(e) => Some(e.code()),
            Self::IdleTimeout(_) => Some("idle-timeout"),
            Self::FrameTimeout(_) => Some("frame-timeout"),
        }
    }

    /// The `error` event to send to the peer, if it can still be told.
    pub fn to_event(&self) -> Option<Error> {
        self.code().map(|code| Error::new(code, self.to_string()))
    }
}

/// Reads frames and events, enforcing limits and timeouts.
pub struct EventReader {
    inner: FramedRead<BoxedRead, WyomingCodec>,
    idle_timeout: Option<Duration>,
    frame_timeout: Duration,
    /// When cancelled, a reader waiting between frames reports end of stream,
    /// so that idle connections close during a drain while busy ones finish.
    shutdown: CancellationToken,
}

impl std::fmt::Debug for EventReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventReader")
            .field("buffered", &self.inner.read_buffer().len())
            .finish_non_exhaustive()
    }
}

impl EventReader {
    /// A reader over `read`.
    pub fn new(read: BoxedRead, config: &ConnectionConfig, shutdown: CancellationToken) -> Self {
        Self {
            inner: FramedRead::new(read, WyomingCodec::new(config.limits)),
            idle_timeout: config.idle_timeout,
            frame_timeout: config.frame_timeout,
            shutdown,
        }
    }

    /// The next frame, or `None` at the end of the stream (or on shutdown while idle).
    pub async fn next_frame(&mut self) -> Result<Option<Frame>, ConnectionError> {
        let idle_deadline = self.idle_timeout.map(|d| Instant::now() + d);
        let mut frame_deadline: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if frame_deadline.is_none() && !self.inner.read_buffer().is_empty() {
                frame_deadline = Some(now + self.frame_timeout);
            }
            // Between frames, wake up every `frame_timeout` to notice a frame
            // that has started arriving, so that its own deadline applies.
            let wake_at = frame_deadline.unwrap_or_else(|| {
                let check = now + self.frame_timeout;
                idle_deadline.map_or(check, |idle| idle.min(check))
            });
            let idle = frame_deadline.is_none();
            tokio::select! {
                biased;
                next = self.inner.next() => {
                    return match next {
                        None => Ok(None),
                        Some(Ok(frame)) => Ok(Some(frame)),
                        Some(Err(e)) => Err(e.into()),
                    };
                }
                () = self.shutdown.cancelled(), if idle => return Ok(None),
                () = sleep_until(wake_at) => {
                    if frame_deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(ConnectionError::FrameTimeout(self.frame_timeout));
                    }
                    if frame_deadline.is_none()
                        && self.inner.read_buffer().is_empty()
                        && idle_deadline.is_some_and(|d| Instant::now() >= d)
                    {
                        return Err(ConnectionError::IdleTimeout(
                            self.idle_timeout.unwrap_or_default(),
                        ));
                    }
                }
            }
        }
    }

    /// Reads and drops what the peer is still sending, for at most `limit`
    /// bytes or `within`. Closing a socket with unread input makes the kernel
    /// reset the connection, which can destroy the `error` event just sent;
    /// draining first lets the peer read why it was closed.
    pub async fn discard_input(&mut self, limit: usize, within: Duration) {
        use tokio::io::AsyncReadExt;
        let inner = self.inner.get_mut();
        let mut buf = [0u8; 8192];
        let mut left = limit;
        let _ = tokio::time::timeout(within, async {
            while left > 0 {
                match inner.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => left = left.saturating_sub(n),
                }
            }
        })
        .await;
    }

    /// The next event, or `None` at the end of the stream.
    pub async fn next_event(&mut self) -> Result<Option<Event>, ConnectionError> {
        match self.next_frame().await? {
            Some(frame) => Ok(Some(Event::try_from(frame)?)),
            None => Ok(None),
        }
    }
}

/// Writes frames and events, with a timeout on each.
pub struct EventWriter {
    inner: FramedWrite<BoxedWrite, WyomingCodec>,
    write_timeout: Duration,
}

impl std::fmt::Debug for EventWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventWriter")
            .field("write_timeout", &self.write_timeout)
            .finish_non_exhaustive()
    }
}

impl EventWriter {
    /// A writer over `write`.
    pub fn new(write: BoxedWrite, config: &ConnectionConfig) -> Self {
        Self {
            inner: FramedWrite::new(write, WyomingCodec::new(config.limits)),
            write_timeout: config.write_timeout,
        }
    }

    /// Writes one frame and flushes it.
    pub async fn send_frame(&mut self, frame: &Frame) -> Result<(), ConnectionError> {
        match tokio::time::timeout(self.write_timeout, self.inner.send(frame)).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(ConnectionError::WriteTimeout(self.write_timeout)),
        }
    }

    /// Writes one event and flushes it.
    pub async fn send(&mut self, event: impl Into<Event>) -> Result<(), ConnectionError> {
        self.send_frame(&Frame::from(event.into())).await
    }

    /// Flushes and closes the write side.
    pub async fn close(&mut self) -> Result<(), ConnectionError> {
        match tokio::time::timeout(
            self.write_timeout,
            SinkExt::<&Frame>::close(&mut self.inner),
        )
        .await
        {
            Ok(result) => Ok(result?),
            Err(_) => Err(ConnectionError::WriteTimeout(self.write_timeout)),
        }
    }
}

/// Both halves of a connection and who is at the other end.
#[derive(Debug)]
pub struct Connection {
    /// Events from the peer.
    pub reader: EventReader,
    /// Events to the peer.
    pub writer: EventWriter,
    /// The peer's address, for logs.
    pub peer: String,
}

impl Connection {
    /// A connection over separate read and write halves.
    pub fn new(
        read: BoxedRead,
        write: BoxedWrite,
        peer: impl Into<String>,
        config: &ConnectionConfig,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            reader: EventReader::new(read, config, shutdown),
            writer: EventWriter::new(write, config),
            peer: peer.into(),
        }
    }

    /// A connection over one duplex stream.
    pub fn from_stream<S>(
        stream: S,
        peer: impl Into<String>,
        config: &ConnectionConfig,
        shutdown: CancellationToken,
    ) -> Self
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read, write) = tokio::io::split(stream);
        Self::new(Box::new(read), Box::new(write), peer, config, shutdown)
    }

    /// The next event from the peer.
    pub async fn next_event(&mut self) -> Result<Option<Event>, ConnectionError> {
        self.reader.next_event().await
    }

    /// Sends one event to the peer.
    pub async fn send(&mut self, event: impl Into<Event>) -> Result<(), ConnectionError> {
        self.writer.send(event).await
    }

    /// The next well-formed event. A known event with malformed data leaves
    /// the stream in sync: the peer is told what was wrong (an `error`
    /// event) and reading goes on. Framing errors end the connection.
    pub async fn next_valid_event(&mut self) -> Result<Option<Event>, ConnectionError> {
        loop {
            match self.reader.next_event().await {
                Err(ConnectionError::InvalidEvent(e)) => {
                    self.send(Error::new(e.code(), e.to_string())).await?;
                }
                other => return other,
            }
        }
    }
}
