//! A reader for CTranslate2 `model.bin` files (the format faster-whisper ships).
//!
//! The file is little-endian throughout:
//!
//! ```text
//! u32            binary version (4, 5 or 6 are read; 6 is what CTranslate2 writes today)
//! string         spec name, e.g. "WhisperSpec"
//! u32            spec revision
//! u32            variable count
//! per variable:
//!   string       name, e.g. "encoder/layer_0/self_attention/linear_0/weight"
//!   u8           rank
//!   u32 × rank   dimensions, outermost first (row-major)
//!   u8           data type id (0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16)
//!   u32          byte count (must equal the element count × the type's size)
//!   bytes        the data
//! u32            alias count
//! per alias:     string alias, string target
//! ```
//!
//! A string is a `u16` length that counts a terminating NUL, then the bytes.
//! This layout is the one `ctranslate2/specs/model_spec.py` writes and
//! `src/models/model.cc` reads (binary versions below 4 stored an item size
//! instead of a type id and are not supported).
//!
//! Quantized weights (`int8`, `int16`) come with a companion variable
//! `<name>_scale`; [`Ct2Model::dequantized`] divides by it, as CTranslate2 does.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Binary versions this reader understands.
pub const SUPPORTED_VERSIONS: std::ops::RangeInclusive<u32> = 4..=6;

/// Largest rank a variable may declare (CTranslate2 uses at most 4).
const MAX_RANK: u8 = 8;

/// What can go wrong reading a CTranslate2 model.
#[derive(Debug, thiserror::Error)]
pub enum Ct2Error {
    /// The file could not be read.
    #[error("cannot read CTranslate2 model {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The first four bytes are not a binary version this reader knows
    /// (there is no other magic number in the format).
    #[error(
        "not a CTranslate2 model.bin this reader supports: binary version {found} (expected {}..={})",
        SUPPORTED_VERSIONS.start(),
        SUPPORTED_VERSIONS.end()
    )]
    UnsupportedVersion {
        /// The version read from the file.
        found: u32,
    },
    /// The file ends before something it announces.
    #[error(
        "truncated CTranslate2 model: {what} needs {needed} bytes at offset {offset}, but the file has {len} bytes"
    )]
    Truncated {
        /// What was being read.
        what: String,
        /// Where it starts.
        offset: usize,
        /// How many bytes it needs.
        needed: usize,
        /// The file's length.
        len: usize,
    },
    /// A variable has a data type id this reader does not know.
    #[error("variable {name}: unknown data type id {id}")]
    UnknownDType {
        /// The variable.
        name: String,
        /// The id read from the file.
        id: u8,
    },
    /// A variable (or an alias's target) is not in the model.
    #[error("variable {0} is missing from the CTranslate2 model")]
    MissingVariable(String),
    /// A variable is present but not usable as asked (shape, type, size).
    #[error("variable {name}: {reason}")]
    InvalidVariable {
        /// The variable.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The file is structurally wrong in a way not covered above.
    #[error("malformed CTranslate2 model: {0}")]
    Malformed(String),
}

/// The element type of a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// 32-bit IEEE float.
    F32,
    /// Signed 8-bit integer (quantized weights, flags).
    I8,
    /// Signed 16-bit integer (quantized weights, small scalars).
    I16,
    /// Signed 32-bit integer.
    I32,
    /// 16-bit IEEE float.
    F16,
    /// bfloat16.
    BF16,
}

impl DType {
    /// The type for a CTranslate2 type id (the order of `DataType` in `types.h`).
    pub fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::I8,
            2 => Self::I16,
            3 => Self::I32,
            4 => Self::F16,
            5 => Self::BF16,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::I8 => 1,
            Self::I16 | Self::F16 | Self::BF16 => 2,
            Self::F32 | Self::I32 => 4,
        }
    }

    /// Whether the type holds quantized (or integer) values rather than floats.
    pub fn is_integer(self) -> bool {
        matches!(self, Self::I8 | Self::I16 | Self::I32)
    }
}

/// Where a variable lives in the file.
#[derive(Debug, Clone)]
struct Entry {
    shape: Vec<usize>,
    dtype: DType,
    bytes: Range<usize>,
}

/// A variable of a loaded model, borrowed from it.
#[derive(Debug, Clone, Copy)]
pub struct Variable<'a> {
    /// Its name (the target's name when reached through an alias).
    pub name: &'a str,
    /// Dimensions, outermost first.
    pub shape: &'a [usize],
    /// Element type.
    pub dtype: DType,
    /// Raw little-endian data.
    pub bytes: &'a [u8],
}

impl Variable<'_> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether it has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values as `f32`, converting floats exactly and integers by value
    /// (integers are not dequantized here; see [`Ct2Model::dequantized`]).
    pub fn to_f32(&self) -> Vec<f32> {
        let b = self.bytes;
        match self.dtype {
            DType::F32 => b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            DType::F16 => b
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::BF16 => b
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::I8 => b.iter().map(|&v| f32::from(v as i8)).collect(),
            DType::I16 => b
                .chunks_exact(2)
                .map(|c| f32::from(i16::from_le_bytes([c[0], c[1]])))
                .collect(),
            DType::I32 => b
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
                .collect(),
        }
    }

    /// The value of a scalar integer or boolean variable (rank 0 or one element).
    pub fn scalar_i64(&self) -> Result<i64, Ct2Error> {
        if self.len() != 1 {
            return Err(self.invalid(format!("expected a scalar, found shape {:?}", self.shape)));
        }
        let b = self.bytes;
        Ok(match self.dtype {
            DType::I8 => i64::from(b[0] as i8),
            DType::I16 => i64::from(i16::from_le_bytes([b[0], b[1]])),
            DType::I32 => i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            DType::F32 | DType::F16 | DType::BF16 => {
                return Err(self.invalid(format!(
                    "expected an integer scalar, found {:?}",
                    self.dtype
                )));
            }
        })
    }

    fn invalid(&self, reason: String) -> Ct2Error {
        Ct2Error::InvalidVariable {
            name: self.name.to_owned(),
            reason,
        }
    }
}

/// A CTranslate2 model read into memory.
#[derive(Debug)]
pub struct Ct2Model {
    data: Vec<u8>,
    binary_version: u32,
    spec_name: String,
    spec_revision: u32,
    entries: BTreeMap<String, Entry>,
    aliases: BTreeMap<String, String>,
}

impl Ct2Model {
    /// Reads and parses a `model.bin` file.
    pub fn read(path: &Path) -> Result<Self, Ct2Error> {
        let data = std::fs::read(path).map_err(|source| Ct2Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(data)
    }

    /// Parses the bytes of a `model.bin` file.
    pub fn parse(data: Vec<u8>) -> Result<Self, Ct2Error> {
        let mut r = Reader {
            data: &data,
            pos: 0,
        };
        let binary_version = r.u32("binary version")?;
        if !SUPPORTED_VERSIONS.contains(&binary_version) {
            return Err(Ct2Error::UnsupportedVersion {
                found: binary_version,
            });
        }
        let spec_name = r.string("spec name")?;
        let spec_revision = r.u32("spec revision")?;
        let count = r.u32("variable count")?;

        let mut entries = BTreeMap::new();
        for index in 0..count {
            let name = r.string(&format!("name of variable #{index}"))?;
            let rank = r.u8(&format!("rank of {name}"))?;
            if rank > MAX_RANK {
                return Err(Ct2Error::InvalidVariable {
                    name,
                    reason: format!("rank {rank} exceeds {MAX_RANK}"),
                });
            }
            let mut shape = Vec::with_capacity(usize::from(rank));
            for _ in 0..rank {
                shape.push(r.u32(&format!("shape of {name}"))? as usize);
            }
            let id = r.u8(&format!("data type of {name}"))?;
            let dtype = DType::from_id(id).ok_or_else(|| Ct2Error::UnknownDType {
                name: name.clone(),
                id,
            })?;
            let num_bytes = r.u32(&format!("byte count of {name}"))? as usize;
            let expected = shape
                .iter()
                .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
                .ok_or_else(|| Ct2Error::InvalidVariable {
                    name: name.clone(),
                    reason: format!("shape {shape:?} overflows"),
                })?;
            if num_bytes != expected {
                return Err(Ct2Error::InvalidVariable {
                    name,
                    reason: format!(
                        "{num_bytes} bytes announced, but shape {shape:?} of {dtype:?} needs {expected}"
                    ),
                });
            }
            let bytes = r.skip(num_bytes, &format!("data of {name}"))?;
            if entries
                .insert(
                    name.clone(),
                    Entry {
                        shape,
                        dtype,
                        bytes,
                    },
                )
                .is_some()
            {
                return Err(Ct2Error::Malformed(format!(
                    "variable {name} appears twice"
                )));
            }
        }

        let mut aliases = BTreeMap::new();
        let count = r.u32("alias count")?;
        for index in 0..count {
            let alias = r.string(&format!("alias #{index}"))?;
            let target = r.string(&format!("target of alias {alias}"))?;
            if !entries.contains_key(&target) {
                return Err(Ct2Error::MissingVariable(format!(
                    "{target} (target of alias {alias})"
                )));
            }
            aliases.insert(alias, target);
        }
        if r.pos != data.len() {
            tracing::debug!(
                trailing = data.len() - r.pos,
                "CTranslate2 model has trailing bytes after the aliases"
            );
        }

        Ok(Self {
            data,
            binary_version,
            spec_name,
            spec_revision,
            entries,
            aliases,
        })
    }

    /// The file's binary version.
    pub fn binary_version(&self) -> u32 {
        self.binary_version
    }

    /// The model spec's name, e.g. `WhisperSpec`.
    pub fn spec_name(&self) -> &str {
        &self.spec_name
    }

    /// The model spec's revision.
    pub fn spec_revision(&self) -> u32 {
        self.spec_revision
    }

    /// Variable names, sorted (aliases not included).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Aliases and their targets.
    pub fn aliases(&self) -> impl Iterator<Item = (&str, &str)> {
        self.aliases.iter().map(|(a, t)| (a.as_str(), t.as_str()))
    }

    /// Whether a variable (or alias) exists.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name) || self.aliases.contains_key(name)
    }

    /// A variable by name, following an alias if needed.
    pub fn get(&self, name: &str) -> Result<Variable<'_>, Ct2Error> {
        let (name, entry) = self
            .entries
            .get_key_value(name)
            .or_else(|| {
                self.aliases
                    .get(name)
                    .and_then(|target| self.entries.get_key_value(target))
            })
            .ok_or_else(|| Ct2Error::MissingVariable(name.to_owned()))?;
        Ok(Variable {
            name,
            shape: &entry.shape,
            dtype: entry.dtype,
            bytes: &self.data[entry.bytes.clone()],
        })
    }

    /// A variable's values as `f32`: floats converted exactly, quantized
    /// integers divided by their `<name>_scale` (one scale for the whole
    /// tensor or one per row, as CTranslate2 stores them).
    pub fn dequantized(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), Ct2Error> {
        let var = self.get(name)?;
        let mut values = var.to_f32();
        if var.dtype.is_integer() {
            let scale_name = format!("{name}_scale");
            let scale = self
                .get(&scale_name)
                .map_err(|_| Ct2Error::InvalidVariable {
                    name: name.to_owned(),
                    reason: format!(
                        "{:?} weights need a scale variable {scale_name}, which is missing",
                        var.dtype
                    ),
                })?;
            let scales = scale.to_f32();
            let rows = var.shape.first().copied().unwrap_or(1);
            let per_row = match scales.len() {
                1 => false,
                n if n == rows && rows > 0 => true,
                n => {
                    return Err(
                        var.invalid(format!("scale {scale_name} has {n} values for {rows} rows"))
                    );
                }
            };
            let row_len = values.len().checked_div(rows).unwrap_or(0);
            for (i, v) in values.iter_mut().enumerate() {
                let s = if per_row {
                    scales[i / row_len]
                } else {
                    scales[0]
                };
                if s == 0.0 || !s.is_finite() {
                    return Err(var.invalid(format!("scale {s} in {scale_name} is unusable")));
                }
                *v /= s;
            }
        }
        Ok((var.shape.to_vec(), values))
    }
}

/// A cursor over the file's bytes that reports truncation with context.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn skip(&mut self, n: usize, what: &str) -> Result<Range<usize>, Ct2Error> {
        let start = self.pos;
        let end = start
            .checked_add(n)
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| Ct2Error::Truncated {
                what: what.to_owned(),
                offset: start,
                needed: n,
                len: self.data.len(),
            })?;
        self.pos = end;
        Ok(start..end)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], Ct2Error> {
        let range = self.skip(N, what)?;
        let mut out = [0; N];
        out.copy_from_slice(&self.data[range]);
        Ok(out)
    }

    fn u8(&mut self, what: &str) -> Result<u8, Ct2Error> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, Ct2Error> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: &str) -> Result<u32, Ct2Error> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn string(&mut self, what: &str) -> Result<String, Ct2Error> {
        let len = usize::from(self.u16(what)?);
        let range = self.skip(len, what)?;
        let bytes = &self.data[range];
        let Some((&0, text)) = bytes.split_last() else {
            return Err(Ct2Error::Malformed(format!(
                "{what} at offset {} is not NUL-terminated",
                self.pos - len
            )));
        };
        String::from_utf8(text.to_vec())
            .map_err(|_| Ct2Error::Malformed(format!("{what} is not UTF-8")))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Writes a `model.bin` in CTranslate2's layout, for tests.
    #[derive(Default)]
    pub(crate) struct Writer {
        vars: Vec<(String, Vec<u32>, u8, Vec<u8>)>,
        aliases: Vec<(String, String)>,
    }

    fn put_string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u16 + 1).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    impl Writer {
        pub(crate) fn var(&mut self, name: &str, shape: &[u32], dtype: u8, data: Vec<u8>) {
            self.vars
                .push((name.to_owned(), shape.to_vec(), dtype, data));
        }

        pub(crate) fn f32(&mut self, name: &str, shape: &[u32], values: &[f32]) {
            let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            self.var(name, shape, 0, data);
        }

        pub(crate) fn f16(&mut self, name: &str, shape: &[u32], values: &[f32]) {
            let data = values
                .iter()
                .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                .collect();
            self.var(name, shape, 4, data);
        }

        pub(crate) fn alias(&mut self, alias: &str, target: &str) {
            self.aliases.push((alias.to_owned(), target.to_owned()));
        }

        pub(crate) fn bytes(&self, spec: &str) -> Vec<u8> {
            let mut out = Vec::new();
            out.extend_from_slice(&6u32.to_le_bytes());
            put_string(&mut out, spec);
            out.extend_from_slice(&3u32.to_le_bytes());
            out.extend_from_slice(&(self.vars.len() as u32).to_le_bytes());
            for (name, shape, dtype, data) in &self.vars {
                put_string(&mut out, name);
                out.push(shape.len() as u8);
                for d in shape {
                    out.extend_from_slice(&d.to_le_bytes());
                }
                out.push(*dtype);
                out.extend_from_slice(&(data.len() as u32).to_le_bytes());
                out.extend_from_slice(data);
            }
            out.extend_from_slice(&(self.aliases.len() as u32).to_le_bytes());
            for (a, t) in &self.aliases {
                put_string(&mut out, a);
                put_string(&mut out, t);
            }
            out
        }
    }

    fn sample() -> Writer {
        let mut w = Writer::default();
        w.f32("a/f32", &[2, 2], &[1.0, -2.0, 3.5, 0.25]);
        w.f16("a/f16", &[3], &[0.5, -1.0, 65504.0]);
        // int8 weights 2x3 with one scale per row: value = q / scale.
        w.var("a/q", &[2, 3], 1, vec![127, 0, (-127i8) as u8, 10, 20, 30]);
        w.f32("a/q_scale", &[2], &[127.0, 10.0]);
        w.var("a/flag", &[], 1, vec![1]);
        w.var("a/heads", &[], 2, 6i16.to_le_bytes().to_vec());
        w.alias("a/alias", "a/f16");
        w
    }

    #[test]
    fn reads_every_type_and_alias() {
        let model = Ct2Model::parse(sample().bytes("TestSpec")).unwrap();
        assert_eq!(model.binary_version(), 6);
        assert_eq!(model.spec_name(), "TestSpec");
        assert_eq!(model.spec_revision(), 3);
        assert_eq!(model.names().count(), 6);

        let v = model.get("a/f32").unwrap();
        assert_eq!(v.shape, &[2, 2]);
        assert_eq!(v.dtype, DType::F32);
        assert_eq!(v.to_f32(), vec![1.0, -2.0, 3.5, 0.25]);

        assert_eq!(
            model.get("a/f16").unwrap().to_f32(),
            vec![0.5, -1.0, 65504.0]
        );
        let alias = model.get("a/alias").unwrap();
        assert_eq!(alias.name, "a/f16");
        assert_eq!(alias.dtype, DType::F16);

        let (shape, q) = model.dequantized("a/q").unwrap();
        assert_eq!(shape, vec![2, 3]);
        assert_eq!(q, vec![1.0, 0.0, -1.0, 1.0, 2.0, 3.0]);
        // Floats pass through dequantized() unchanged.
        assert_eq!(
            model.dequantized("a/f32").unwrap().1,
            vec![1.0, -2.0, 3.5, 0.25]
        );

        assert_eq!(model.get("a/flag").unwrap().scalar_i64().unwrap(), 1);
        assert_eq!(model.get("a/heads").unwrap().scalar_i64().unwrap(), 6);
        assert!(model.get("a/f32").unwrap().scalar_i64().is_err());
    }

    #[test]
    fn missing_variable_is_named() {
        let model = Ct2Model::parse(sample().bytes("TestSpec")).unwrap();
        let err = model.get("nope").unwrap_err();
        assert!(matches!(&err, Ct2Error::MissingVariable(n) if n == "nope"));
        assert!(err.to_string().contains("nope"));
    }

    #[test]
    fn quantized_without_scale_is_an_error() {
        let mut w = Writer::default();
        w.var("q", &[1, 2], 1, vec![1, 2]);
        let model = Ct2Model::parse(w.bytes("S")).unwrap();
        let err = model.dequantized("q").unwrap_err();
        assert!(err.to_string().contains("q_scale"), "{err}");
    }

    #[test]
    fn bad_version_is_rejected() {
        let mut bytes = sample().bytes("TestSpec");
        bytes[..4].copy_from_slice(&0x6767_6d6cu32.to_le_bytes());
        let err = Ct2Model::parse(bytes).unwrap_err();
        assert!(matches!(
            err,
            Ct2Error::UnsupportedVersion { found: 0x6767_6d6c }
        ));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = sample().bytes("TestSpec");
        for len in 0..bytes.len() {
            let err = Ct2Model::parse(bytes[..len].to_vec()).unwrap_err();
            assert!(
                matches!(err, Ct2Error::Truncated { .. }),
                "prefix of {len} bytes: {err}"
            );
        }
    }

    #[test]
    fn unknown_dtype_is_named() {
        let mut w = Writer::default();
        w.var("weird", &[1], 42, vec![0]);
        let err = Ct2Model::parse(w.bytes("S")).unwrap_err();
        assert!(matches!(&err, Ct2Error::UnknownDType { name, id: 42 } if name == "weird"));
    }

    #[test]
    fn byte_count_must_match_shape() {
        let mut w = Writer::default();
        w.var("short", &[4], 0, vec![0; 12]);
        let err = Ct2Model::parse(w.bytes("S")).unwrap_err();
        assert!(matches!(&err, Ct2Error::InvalidVariable { name, .. } if name == "short"));
    }

    #[test]
    fn alias_to_nothing_is_an_error() {
        let mut w = Writer::default();
        w.f32("x", &[1], &[1.0]);
        w.alias("y", "z");
        let err = Ct2Model::parse(w.bytes("S")).unwrap_err();
        assert!(matches!(err, Ct2Error::MissingVariable(_)));
    }

    #[test]
    fn missing_file_is_an_io_error_with_the_path() {
        let err = Ct2Model::read(Path::new("/nonexistent/model.bin")).unwrap_err();
        assert!(matches!(err, Ct2Error::Io { .. }));
        assert!(err.to_string().contains("/nonexistent/model.bin"));
    }
}
