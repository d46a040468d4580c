//! ONNX Runtime, loaded once per process from a shared library.
//!
//! Athena builds `ort` with `load-dynamic`: nothing is downloaded at build
//! time, and the library is found at run time, in this order: the path the
//! service's config names, `ORT_DYLIB_PATH`, then the catalog's
//! `onnxruntime` (fetched on first use). `ort` waits forever when its
//! library is missing, so [`init`] checks the file before `ort` sees it and
//! every engine calls [`init`] before it creates a session.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// The catalog entry of the ONNX Runtime library.
pub const CATALOG_NAME: &str = "onnxruntime";

/// Why ONNX Runtime is not available.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// The library file is not there or not readable.
    #[error("ONNX Runtime library {}: {reason}", .path.display())]
    Missing {
        /// The path tried.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The catalog could not provide the library.
    #[error("cannot get ONNX Runtime from the model catalog: {0}")]
    Catalog(String),
    /// ONNX Runtime refused to load (wrong version, wrong platform).
    #[error("cannot load ONNX Runtime from {}: {reason}", .path.display())]
    Load {
        /// The library.
        path: PathBuf,
        /// What ort said.
        reason: String,
    },
    /// Another library is already loaded in this process.
    #[error(
        "ONNX Runtime is already loaded from {}; one process uses one library (asked for {})",
        .loaded.display(), .asked.display()
    )]
    Conflict {
        /// The library loaded first.
        loaded: PathBuf,
        /// The one asked for now.
        asked: PathBuf,
    },
}

/// Where the library is: `configured` if given, else `ORT_DYLIB_PATH`,
/// else the catalog's copy (fetched if needed).
pub fn locate(configured: Option<&Path>) -> Result<PathBuf, OnnxError> {
    if let Some(path) = configured.filter(|p| !p.as_os_str().is_empty()) {
        return Ok(path.to_owned());
    }
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let store = athena_models::Store::from_env().map_err(|e| OnnxError::Catalog(e.to_string()))?;
    let dir = store
        .ensure(CATALOG_NAME)
        .map_err(|e| OnnxError::Catalog(e.to_string()))?;
    let catalog =
        athena_models::Catalog::built_in().map_err(|e| OnnxError::Catalog(e.to_string()))?;
    let spec = catalog
        .get(CATALOG_NAME)
        .map_err(|e| OnnxError::Catalog(e.to_string()))?;
    let file = spec
        .files
        .first()
        .ok_or_else(|| OnnxError::Catalog("the catalog entry lists no file".into()))?;
    Ok(dir.join(&file.path))
}

/// Checks that `path` looks like a loadable shared library (an ELF or
/// Mach-O file), without loading it.
pub fn check(path: &Path) -> Result<(), OnnxError> {
    let missing = |reason: String| OnnxError::Missing {
        path: path.to_owned(),
        reason,
    };
    let mut magic = [0u8; 4];
    let mut file = std::fs::File::open(path).map_err(|e| missing(e.to_string()))?;
    std::io::Read::read_exact(&mut file, &mut magic)
        .map_err(|e| missing(format!("cannot read it: {e}")))?;
    const ELF: [u8; 4] = [0x7f, b'E', b'L', b'F'];
    const MACH_O: [[u8; 4]; 2] = [[0xcf, 0xfa, 0xed, 0xfe], [0xca, 0xfe, 0xba, 0xbe]];
    if magic != ELF && !MACH_O.contains(&magic) {
        return Err(missing("not a shared library".into()));
    }
    Ok(())
}

static LOADED: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Loads ONNX Runtime from `path` (see [`locate`]) unless already loaded
/// from it, with one thread pool of `threads` threads that every session of
/// the process shares (sessions with pools of their own would spin against
/// each other on a small machine). Safe to call from every engine; the
/// first call wins.
pub fn init(path: &Path, threads: usize) -> Result<(), OnnxError> {
    let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(first) = loaded.as_ref() {
        return if same_file(first, path) {
            Ok(())
        } else {
            Err(OnnxError::Conflict {
                loaded: first.clone(),
                asked: path.to_owned(),
            })
        };
    }
    check(path)?;
    let load = |e: ort::Error| OnnxError::Load {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    // `init_from` first: it names the library, and any other ort call
    // before it loads the default one (or waits forever for it).
    let builder = ort::init_from(path).map_err(load)?;
    let pool = ort::environment::GlobalThreadPoolOptions::default()
        .with_intra_threads(threads.max(1))
        .and_then(|p| p.with_inter_threads(1))
        // Idle threads sleep rather than spin: the CPU they would burn is
        // what the other engines of the process (whisper.cpp, candle) need
        // while speech is synthesized.
        .and_then(|p| p.with_spin_control(false))
        .map_err(load)?;
    builder
        .with_name("athena")
        .with_global_thread_pool(pool)
        .commit();
    // Its arena messages are many and say nothing to an operator.
    if let Ok(env) = ort::environment::Environment::current() {
        env.set_log_level(ort::logging::LogLevel::Warning);
    }
    tracing::info!(library = %path.display(), "ONNX Runtime loaded");
    *loaded = Some(path.to_owned());
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn missing_and_wrong_files_are_refused_before_ort_sees_them() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("libonnxruntime.so");
        let err = init(&missing, 1).unwrap_err();
        assert!(matches!(err, OnnxError::Missing { .. }), "{err}");
        assert!(err.to_string().contains("libonnxruntime.so"), "{err}");
        std::fs::write(&missing, b"not a library at all").unwrap();
        let err = init(&missing, 1).unwrap_err();
        assert!(err.to_string().contains("not a shared library"), "{err}");
        // Nothing was loaded by the failures.
        assert!(LOADED.lock().unwrap().is_none());
    }

    #[test]
    fn a_configured_path_wins() {
        let p = Path::new("/opt/ort/libonnxruntime.so");
        assert_eq!(locate(Some(p)).unwrap(), p);
    }
}
