//! The write-ahead log: records appended and `fsync`ed before a write is
//! acknowledged; on start, replayed up to the first torn or corrupt
//! record (a crash mid-append), which is cut off.
//!
//! A record is `[payload length u32][crc32 of payload u32][payload]`, all
//! little-endian; the payload is `[json length u32][json][f32 vectors]`.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Chunk, Collection, Document};

/// One change.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    CreateCollection {
        collection: Collection,
    },
    DeleteCollection {
        name: String,
    },
    PutDocument {
        document: Document,
        chunks: Vec<Chunk>,
    },
    DeleteDocument {
        collection: String,
        id: String,
    },
}

/// Largest record accepted when reading (a bigger length is corruption).
const MAX_RECORD: u32 = 1 << 30;

fn encode(op: &Op, dims: usize) -> std::io::Result<Vec<u8>> {
    let json = serde_json::to_vec(op)?;
    let mut payload = Vec::with_capacity(4 + json.len());
    payload.extend_from_slice(&u32::try_from(json.len()).unwrap_or(u32::MAX).to_le_bytes());
    payload.extend_from_slice(&json);
    if let Op::PutDocument { chunks, .. } = op {
        for c in chunks {
            if c.vector.len() != dims {
                return Err(std::io::Error::other("vector of the wrong length"));
            }
            for x in &c.vector {
                payload.extend_from_slice(&x.to_le_bytes());
            }
        }
    }
    let mut record = Vec::with_capacity(8 + payload.len());
    record.extend_from_slice(
        &u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    record.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    record.extend_from_slice(&payload);
    Ok(record)
}

fn decode(payload: &[u8], dims: usize) -> Option<Op> {
    let json_len = usize::try_from(u32::from_le_bytes(payload.get(..4)?.try_into().ok()?)).ok()?;
    let json = payload.get(4..4 + json_len)?;
    let mut op: Op = serde_json::from_slice(json).ok()?;
    let mut floats = payload[4 + json_len..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    if let Op::PutDocument { chunks, .. } = &mut op {
        for c in chunks {
            c.vector = floats.by_ref().take(dims).collect();
            if c.vector.len() != dims {
                return None;
            }
        }
    }
    Some(op)
}

/// Reads every whole record of `path`; returns them and the length of the
/// good prefix.
pub fn read(path: &Path, dims: usize) -> std::io::Result<(Vec<Op>, u64)> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    };
    let mut reader = BufReader::new(file);
    let mut ops = Vec::new();
    let mut good = 0u64;
    loop {
        let mut head = [0u8; 8];
        if reader.read_exact(&mut head).is_err() {
            break;
        }
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if len > MAX_RECORD {
            break;
        }
        let mut payload = vec![0u8; len as usize];
        if reader.read_exact(&mut payload).is_err() || crc32fast::hash(&payload) != crc {
            break;
        }
        let Some(op) = decode(&payload, dims) else {
            break;
        };
        ops.push(op);
        good += 8 + u64::from(len);
    }
    Ok((ops, good))
}

/// An open log, appended to.
#[derive(Debug)]
pub struct Wal {
    path: PathBuf,
    file: File,
    dims: usize,
    len: u64,
}

impl Wal {
    /// Opens `path` for appending after its first `good` bytes (anything
    /// after them is a torn write and is cut off).
    pub fn open(path: &Path, dims: usize, good: u64) -> std::io::Result<Self> {
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(path)?;
        file.set_len(good)?;
        file.seek(SeekFrom::Start(good))?;
        file.sync_all()?;
        Ok(Self {
            path: path.to_owned(),
            file,
            dims,
            len: good,
        })
    }

    /// Appends `op` and waits until it is on disk.
    pub fn append(&mut self, op: &Op) -> std::io::Result<()> {
        let record = encode(op, self.dims)?;
        if let Err(e) = self
            .file
            .write_all(&record)
            .and_then(|()| self.file.sync_data())
        {
            // Leave no half record for the next append to follow.
            let _ = self.file.set_len(self.len);
            let _ = self.file.seek(SeekFrom::Start(self.len));
            return Err(e);
        }
        self.len += record.len() as u64;
        Ok(())
    }

    /// Bytes in the log.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Replaces the log's contents with `ops` (compaction): written to a
    /// temporary file, synced, renamed over the log.
    pub fn rewrite(&mut self, ops: &[Op]) -> std::io::Result<()> {
        let temp = self.path.with_extension("compact");
        let mut out = File::create(&temp)?;
        let mut len = 0u64;
        for op in ops {
            let record = encode(op, self.dims)?;
            out.write_all(&record)?;
            len += record.len() as u64;
        }
        out.sync_all()?;
        std::fs::rename(&temp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        let mut file = OpenOptions::new().read(true).write(true).open(&self.path)?;
        file.seek(SeekFrom::End(0))?;
        self.file = file;
        self.len = len;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::store::Access;

    fn put(id: &str, dims: usize) -> Op {
        Op::PutDocument {
            document: Document {
                id: id.into(),
                collection: "c".into(),
                source: id.into(),
                title: id.into(),
                format: crate::ingest::Format::Text,
                bytes: 1,
                sha256: String::new(),
                chunks: 1,
                updated: 0,
            },
            chunks: vec![Chunk {
                position: 0,
                heading: String::new(),
                text: "t".into(),
                vector: vec![0.5; dims],
            }],
        }
    }

    #[test]
    fn a_torn_tail_is_cut_off_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.wal");
        let mut wal = Wal::open(&path, 4, 0).unwrap();
        let create = Op::CreateCollection {
            collection: Collection {
                name: "c".into(),
                access: Access::Guest,
                description: String::new(),
            },
        };
        wal.append(&create).unwrap();
        wal.append(&put("a", 4)).unwrap();
        let whole = wal.len();
        wal.append(&put("b", 4)).unwrap();
        drop(wal);
        // A crash mid-append: half of the last record.
        let bytes = std::fs::read(&path).unwrap();
        let torn =
            usize::try_from(whole).unwrap() + (bytes.len() - usize::try_from(whole).unwrap()) / 2;
        std::fs::write(&path, &bytes[..torn]).unwrap();
        let (ops, good) = read(&path, 4).unwrap();
        assert_eq!(ops.len(), 2);
        assert_eq!(good, whole);
        // A flipped bit in the last record: also cut.
        let mut flipped = bytes.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        assert_eq!(read(&path, 4).unwrap().0.len(), 2);
        // Appending after the cut leaves a log that reads whole.
        let mut wal = Wal::open(&path, 4, good).unwrap();
        wal.append(&put("c", 4)).unwrap();
        let (ops, _) = read(&path, 4).unwrap();
        assert_eq!(ops.len(), 3);
        assert!(
            matches!(&ops[2], Op::PutDocument { document, chunks } if document.id == "c" && chunks[0].vector == vec![0.5; 4])
        );
        // Compaction keeps what it is given.
        wal.rewrite(&ops[..2]).unwrap();
        assert_eq!(read(&path, 4).unwrap().0.len(), 2);
    }
}
