//! The Wyoming protocol, as Home Assistant's voice stack speaks it.
//!
//! - [`codec`]: framing (header line, data block, payload) with size limits.
//! - [`Frame`]: an event as it travels; [`Event`]: every event type, typed.
//! - [`info`]: the `info` structure that answers `describe`.
//! - [`connection`]: reading and writing events with timeouts.
//! - [`server`]: endpoints, a connection-bounded server with graceful drain, a client.
//!
//! Unknown event types and unknown fields pass through untouched, so newer
//! peers keep working with Athena.

pub mod codec;
pub mod connection;
pub mod event;
pub mod frame;
pub mod info;
pub mod server;
pub mod speech;

pub use codec::{Limits, PROTOCOL_VERSION, ProtocolError, WyomingCodec};
pub use connection::{Connection, ConnectionConfig, ConnectionError, EventReader, EventWriter};
pub use event::{AudioFormat, Event, EventError};
pub use frame::{Data, Frame};
pub use info::Info;
pub use server::{Endpoint, Handler, Server, ServerConfig, connect, serve_stdio};
