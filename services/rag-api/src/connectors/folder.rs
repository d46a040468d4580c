//! A folder the index follows.
//!
//! Every scan walks the folder (subfolders too) and compares each file's
//! size and modification time with the last scan's; only a file that
//! differs is read and put, and the engine re-embeds it only when its text
//! changed. A file of no known format (Markdown, HTML, text, PDF), a hidden one
//! and an editor's temporary file (`notes.md~`, `.#notes.md`, `*.swp`) are
//! not documents. A file modified less than `settle` ago may still be being
//! written: it waits for the next scan.
//!
//! A file that cannot be taken (binary, empty, too large, unreadable, a
//! PDF that is broken, encrypted or without text) is
//! recorded with its error and tried again only once it changes; an
//! earlier copy stays in the index. The collection's documents that came
//! from this folder and have no file any more are deleted on every
//! complete scan, the first after a restart included; a scan that could
//! not read part of the folder deletes nothing.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tracing::{debug, info, warn};

use super::{Kind, Link, Outcome, Problem, document_id};
use crate::config::FolderSource;
use crate::engine::{NewDocument, RagError};
use crate::ingest::{Format, IngestError};
use crate::store::{Access, Document, StoreError};

/// A folder to follow.
#[derive(Debug, Clone)]
pub struct Folder {
    pub path: PathBuf,
    /// Its own collection: documents there without a file here are deleted.
    pub collection: String,
    /// Who may search the collection, if it has to be created.
    pub access: Access,
    /// Time between scans.
    pub every: Duration,
    /// How long a file must be left alone before it is read.
    pub settle: Duration,
    /// Files larger than this are refused without being read.
    pub max_bytes: usize,
}

/// A file's size and time at the last scan that looked at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    modified: SystemTime,
}

/// A file found by a scan.
#[derive(Debug)]
struct Found {
    path: PathBuf,
    stamp: Result<Stamp, String>,
}

/// What a walk found: files of a known format by relative path (`/`
/// between folders), and whether every folder could be read.
#[derive(Debug, Default)]
struct Listing {
    files: BTreeMap<String, Found>,
    complete: bool,
}

/// The document id of the file at `relative`.
pub fn file_document_id(relative: &str) -> String {
    document_id(relative, relative)
}

/// Whether `doc` came from a folder connector: its source is a relative
/// path that gives its id (documents put through the API, or from a URL,
/// are left alone).
fn from_a_folder(doc: &Document) -> bool {
    !doc.source.contains("://") && file_document_id(&doc.source) == doc.id
}

/// Whether a file or folder named `name` is skipped: hidden, or an
/// editor's or downloader's temporary file.
pub fn ignored(name: &str) -> bool {
    name.starts_with('.')
        || name.starts_with('~')
        || name.ends_with('~')
        || (name.starts_with('#') && name.ends_with('#'))
        || [".swp", ".swx", ".tmp", ".part", ".crdownload"]
            .iter()
            .any(|ext| name.ends_with(ext))
}

impl Folder {
    /// The folder of a `[[rag_api.folders]]` entry, settling for a second.
    pub fn new(source: &FolderSource, max_bytes: usize) -> Self {
        Self {
            path: source.path.clone(),
            collection: source.collection.clone(),
            access: source.access,
            every: Duration::from_secs(source.scan_secs),
            settle: Duration::from_secs(1),
            max_bytes,
        }
    }

    /// Scans every `every` until shutdown.
    pub(super) async fn follow(self, link: Link) {
        let mut seen: HashMap<String, Stamp> = HashMap::new();
        loop {
            self.scan(&link, &mut seen).await;
            tokio::select! {
                () = tokio::time::sleep(self.every) => {}
                () = link.shutdown.cancelled() => return,
            }
        }
    }

    async fn scan(&self, link: &Link, seen: &mut HashMap<String, Stamp>) {
        match link.ensure_collection(&self.collection, self.access).await {
            Ok(true) => seen.clear(),
            Ok(false) => {}
            Err(problem) => {
                warn!(folder = %self.path.display(), code = problem.code,
                    error = %problem.message, "cannot use the collection");
                return link.checked(Some(problem));
            }
        }
        let root = self.path.clone();
        let listing = tokio::select! {
            listed = tokio::task::spawn_blocking(move || list(&root)) => listed,
            () = link.shutdown.cancelled() => return,
        };
        let listing = match listing {
            Ok(Ok(listing)) => listing,
            Ok(Err(e)) => {
                let problem = Problem::new("unreadable", format!("cannot read the folder: {e}"));
                warn!(folder = %self.path.display(), error = %problem.message,
                    "scan failed; the index keeps its documents");
                return link.checked(Some(problem));
            }
            Err(e) => {
                let problem = Problem::new("internal_error", e.to_string());
                return link.checked(Some(problem));
            }
        };
        let mut error = None;
        if listing.complete {
            if let Err(problem) = self.delete_missing(link, &listing, seen).await {
                error = Some(problem);
            }
        } else {
            error = Some(Problem::new(
                "incomplete_scan",
                "part of the folder could not be read; nothing was deleted",
            ));
        }
        for (relative, found) in &listing.files {
            if link.shutdown.is_cancelled() {
                return;
            }
            let stamp = match &found.stamp {
                Ok(stamp) => *stamp,
                Err(e) => {
                    let problem = Problem::new("unreadable", format!("cannot read the file: {e}"));
                    let id = file_document_id(relative);
                    link.record(Kind::Folder, relative, &id, Outcome::error(problem));
                    continue;
                }
            };
            if seen.get(relative) == Some(&stamp) || self.still_written(stamp) {
                continue;
            }
            self.take(link, relative, &found.path, stamp).await;
            seen.insert(relative.clone(), stamp);
        }
        link.checked(error);
    }

    /// Whether the file changed too recently to be read now.
    fn still_written(&self, stamp: Stamp) -> bool {
        SystemTime::now()
            .duration_since(stamp.modified)
            .is_ok_and(|age| age < self.settle)
    }

    /// Deletes the documents (and forgets the files) that have no file any more.
    async fn delete_missing(
        &self,
        link: &Link,
        listing: &Listing,
        seen: &mut HashMap<String, Stamp>,
    ) -> Result<(), Problem> {
        let documents = link.rag.documents(&self.collection).await?;
        for doc in documents
            .iter()
            .filter(|d| from_a_folder(d) && !listing.files.contains_key(&d.source))
        {
            match link.rag.delete_document(&self.collection, &doc.id).await {
                Ok(()) | Err(RagError::Store(StoreError::UnknownDocument { .. })) => {
                    info!(folder = %self.path.display(), file = %doc.source, "file gone; document deleted");
                    metrics::counter!("rag_connector_deletes_total", "connector" => "folder")
                        .increment(1);
                }
                Err(e) => return Err(e.into()),
            }
        }
        seen.retain(|relative, _| listing.files.contains_key(relative));
        let gone: Vec<String> = {
            let reports = link.status.lock();
            reports
                .get(link.index)
                .map(|r| {
                    r.sources
                        .iter()
                        .filter(|s| !listing.files.contains_key(&s.source))
                        .map(|s| s.source.clone())
                        .collect()
                })
                .unwrap_or_default()
        };
        for source in gone {
            link.forget(&source);
        }
        Ok(())
    }

    /// Reads and puts one file, recording what came of it.
    async fn take(&self, link: &Link, relative: &str, path: &Path, stamp: Stamp) {
        let id = file_document_id(relative);
        let outcome = match self.read(path, stamp).await {
            Ok(bytes) => {
                let new = NewDocument {
                    bytes: Some(bytes),
                    format: Format::guess(relative),
                    source: Some(relative.to_owned()),
                    title: None,
                    ..NewDocument::default()
                };
                link.put(&self.collection, &id, new).await
            }
            Err(problem) => Err(problem),
        };
        let outcome = match outcome {
            Ok(outcome) => {
                if matches!(outcome, Outcome::Indexed { .. }) {
                    info!(folder = %self.path.display(), file = %relative, "file indexed");
                } else {
                    debug!(folder = %self.path.display(), file = %relative, "file unchanged");
                }
                outcome
            }
            Err(problem) => {
                warn!(folder = %self.path.display(), file = %relative, code = problem.code,
                    error = %problem.message, "file not taken; tried again once it changes");
                Outcome::error(problem)
            }
        };
        link.record(Kind::Folder, relative, &id, outcome);
    }

    /// The file's bytes, refusing a file too large to be a document (the
    /// engine checks the text, or reads the PDF).
    async fn read(&self, path: &Path, stamp: Stamp) -> Result<Vec<u8>, Problem> {
        let too_large = |size: u64| {
            RagError::Ingest(IngestError::TooLarge {
                size: usize::try_from(size).unwrap_or(usize::MAX),
                max: self.max_bytes,
            })
        };
        if stamp.size > self.max_bytes as u64 {
            return Err(too_large(stamp.size).into());
        }
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|e| Problem::new("unreadable", format!("cannot read the file: {e}")))?;
        if bytes.len() > self.max_bytes {
            return Err(too_large(bytes.len() as u64).into());
        }
        Ok(bytes)
    }
}

/// The files of known formats under `root`. Symbolic links to files are
/// followed; links to folders are not (they can make loops).
fn list(root: &Path) -> io::Result<Listing> {
    let mut listing = Listing {
        complete: true,
        ..Listing::default()
    };
    let mut folders = vec![(root.to_path_buf(), String::new())];
    while let Some((folder, prefix)) = folders.pop() {
        let entries = match std::fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(e) if prefix.is_empty() => return Err(e),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(_) => {
                listing.complete = false;
                continue;
            }
        };
        for entry in entries {
            let Ok(entry) = entry else {
                listing.complete = false;
                continue;
            };
            // A name that is not UTF-8 cannot be a source: never indexed.
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if ignored(&name) {
                continue;
            }
            let path = entry.path();
            let Ok(mut kind) = entry.file_type() else {
                listing.complete = false;
                continue;
            };
            if kind.is_symlink() {
                match std::fs::metadata(&path) {
                    Ok(target) if target.is_file() => kind = target.file_type(),
                    _ => continue,
                }
            }
            let relative = format!("{prefix}{name}");
            if kind.is_dir() {
                folders.push((path, format!("{relative}/")));
            } else if kind.is_file() && Format::guess(&name).is_some() {
                let stamp = match std::fs::metadata(&path) {
                    Ok(m) => Ok(Stamp {
                        size: m.len(),
                        modified: m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    }),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => Err(e.to_string()),
                };
                listing.files.insert(relative, Found { path, stamp });
            }
        }
    }
    Ok(listing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_and_hidden_files_are_not_documents() {
        for name in [
            ".hidden.md",
            ".#notes.md",
            "notes.md~",
            ".notes.md.swp",
            "notes.swp",
            "#notes.md#",
            "~$report.txt",
            "page.html.part",
        ] {
            assert!(ignored(name), "{name}");
        }
        for name in ["notes.md", "Guide.HTML", "a~b.txt"] {
            assert!(!ignored(name), "{name}");
        }
    }

    #[test]
    fn only_folder_documents_are_the_folders() {
        let doc = |id: &str, source: &str| Document {
            id: id.into(),
            collection: "c".into(),
            source: source.into(),
            title: String::new(),
            format: Format::Text,
            bytes: 1,
            sha256: String::new(),
            chunks: 1,
            updated: 0,
        };
        assert!(from_a_folder(&doc(&file_document_id("a/b.md"), "a/b.md")));
        assert!(!from_a_folder(&doc("b", "a/b.md")), "put through the API");
        let url = "https://example.org/b.md";
        assert!(!from_a_folder(&doc(&file_document_id(url), url)));
    }
}
