//! Converts a CTranslate2 (faster-whisper) Whisper directory into the legacy
//! ggml model file whisper.cpp loads.
//!
//! The output is what whisper.cpp's `models/convert-pt-to-ggml.py` writes,
//! all integers little-endian `i32`:
//!
//! ```text
//! magic 0x67676d6c ("ggml")
//! hparams: n_vocab n_audio_ctx n_audio_state n_audio_head n_audio_layer
//!          n_text_ctx n_text_state n_text_head n_text_layer n_mels ftype(1 = f16)
//! mel filters: n_mel, n_fft (201), n_mel × n_fft f32            (see `mel.rs`)
//! vocab: count, then per token: length, bytes                     (ids below <|endoftext|>)
//! tensors: n_dims, name length, type (0 f32, 1 f16), dims innermost first, name, data
//! ```
//!
//! Names map as follows (`N` a layer index, `d` the model width):
//!
//! | CTranslate2 | whisper.cpp |
//! |---|---|
//! | `encoder/conv{1,2}/weight` `[d, in, 3]` | `encoder.conv{1,2}.weight` (f16) |
//! | `encoder/conv{1,2}/bias` `[d]` | `encoder.conv{1,2}.bias` as `[d, 1]` (f32) |
//! | `encoder/position_encodings/encodings` | `encoder.positional_embedding` (f32) |
//! | `encoder/layer_norm/{gamma,beta}` | `encoder.ln_post.{weight,bias}` |
//! | `*/layer_N/self_attention/layer_norm` | `*.blocks.N.attn_ln` |
//! | `*/layer_N/self_attention/linear_0` `[3d, d]` | `*.blocks.N.attn.{query,key,value}` (split by rows) |
//! | `*/layer_N/self_attention/linear_1` | `*.blocks.N.attn.out` |
//! | `decoder/layer_N/attention/layer_norm` | `decoder.blocks.N.cross_attn_ln` |
//! | `decoder/layer_N/attention/linear_0` | `decoder.blocks.N.cross_attn.query` |
//! | `decoder/layer_N/attention/linear_1` `[2d, d]` | `decoder.blocks.N.cross_attn.{key,value}` (split) |
//! | `decoder/layer_N/attention/linear_2` | `decoder.blocks.N.cross_attn.out` |
//! | `*/layer_N/ffn/layer_norm` | `*.blocks.N.mlp_ln` |
//! | `*/layer_N/ffn/linear_{0,1}` | `*.blocks.N.mlp.{0,2}` |
//! | `decoder/embeddings/weight` | `decoder.token_embedding.weight` (also the output projection) |
//! | `decoder/position_encodings/encodings` | `decoder.positional_embedding` (f32) |
//! | `decoder/layer_norm/{gamma,beta}` | `decoder.ln.{weight,bias}` |
//!
//! whisper.cpp has no key bias. CTranslate2 stores a zero one in the fused
//! projections (Whisper's key projection has none); it is dropped. Even a
//! non-zero key bias would not matter: it adds the same `q·b` to every score
//! of a query, which softmax cancels.
//!
//! Matrices (and conv kernels) are written as f16, vectors, conv biases and
//! positional embeddings as f32, the types whisper.cpp allocates for them.
//! Quantized CTranslate2 weights are dequantized first.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::ct2::{Ct2Error, Ct2Model};
pub use super::layout::WhisperHparams;
use super::layout::{self, Role, TensorSink, WriteError};
use super::mel;

/// ggml's file magic, "ggml" read as a little-endian `u32`.
pub const GGML_MAGIC: u32 = 0x6767_6d6c;

/// `GGML_FTYPE_MOSTLY_F16`: matrices in f16.
const FTYPE_F16: i32 = 1;

/// The precision of the weight matrices in a converted file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// 16-bit floats, as the CTranslate2 fp16 weights are.
    F16,
    /// 8-bit blocks of 32 with an f16 scale each (ggml `Q8_0`): half the
    /// memory traffic, no measurable loss on speech.
    #[default]
    Q8_0,
}

impl Precision {
    /// ggml's `ftype` for the file header.
    fn ftype(self) -> i32 {
        match self {
            Self::F16 => FTYPE_F16,
            // GGML_FTYPE_MOSTLY_Q8_0
            Self::Q8_0 => 7,
        }
    }

    /// The name used in cache file names (`whisper-tiny.en.q8_0.ggml.bin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::F16 => "f16",
            Self::Q8_0 => "q8_0",
        }
    }

    fn matrix_kind(self) -> Kind {
        match self {
            Self::F16 => Kind::F16,
            Self::Q8_0 => Kind::Q8_0,
        }
    }
}

/// What can go wrong converting a model.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// A file the conversion needs is not in the CTranslate2 directory.
    #[error("{} is missing from the CTranslate2 model directory {}", .file, .dir.display())]
    MissingFile {
        /// The directory.
        dir: PathBuf,
        /// The missing file(s).
        file: &'static str,
    },
    /// `model.bin` could not be read or parsed.
    #[error(transparent)]
    Ct2(#[from] Ct2Error),
    /// The model is not a Whisper model.
    #[error("the CTranslate2 model is a {found}, not a WhisperSpec")]
    UnsupportedSpec {
        /// The spec name in the file.
        found: String,
    },
    /// A variable does not have the shape the hyperparameters imply.
    #[error("variable {name} has shape {found:?}, expected {expected:?}")]
    Shape {
        /// The variable.
        name: String,
        /// The shape it should have.
        expected: Vec<usize>,
        /// The shape it has.
        found: Vec<usize>,
    },
    /// The hyperparameters are inconsistent or out of range.
    #[error("unsupported Whisper hyperparameters: {0}")]
    Hparams(String),
    /// The CTranslate2 `config.json` is unusable.
    #[error("model configuration {}: {reason}", .path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The vocabulary file is unusable.
    #[error("vocabulary {}: {reason}", .path.display())]
    Vocabulary {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Reading an auxiliary file or writing the output failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// The file header: the hyperparameters, then the weight type.
fn header(hp: &WhisperHparams, precision: Precision) -> [i32; 11] {
    // validate() bounds every field by i32::MAX.
    [
        hp.n_vocab as i32,
        hp.n_audio_ctx as i32,
        hp.n_audio_state as i32,
        hp.n_audio_head as i32,
        hp.n_audio_layer as i32,
        hp.n_text_ctx as i32,
        hp.n_text_state as i32,
        hp.n_text_head as i32,
        hp.n_text_layer as i32,
        hp.n_mels as i32,
        precision.ftype(),
    ]
}

/// Converts the CTranslate2 Whisper model in `ct2_dir` (`model.bin` plus
/// `vocabulary.txt` or `vocabulary.json`) into a whisper.cpp ggml file at
/// `out`. The file appears atomically: it is written next to `out` under a
/// temporary name and renamed when complete, so a reader never sees half a
/// model and a failed conversion leaves nothing behind.
pub fn convert_ct2_to_ggml(ct2_dir: &Path, out: &Path) -> Result<(), ConvertError> {
    convert_ct2_to_ggml_as(ct2_dir, out, Precision::F16)
}

/// Like [`convert_ct2_to_ggml`], with the weight matrices in `precision`.
pub fn convert_ct2_to_ggml_as(
    ct2_dir: &Path,
    out: &Path,
    precision: Precision,
) -> Result<(), ConvertError> {
    let started = std::time::Instant::now();
    let (model, hp) = layout::read_whisper(ct2_dir)?;
    let vocab = read_vocabulary(ct2_dir)?;
    if vocab.len != hp.n_vocab {
        tracing::debug!(
            vocabulary = vocab.len,
            n_vocab = hp.n_vocab,
            "vocabulary size differs from the embedding rows"
        );
    }

    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| ConvertError::Io { path, source }
    };
    let (dir, prefix) = layout::staging(out)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".partial")
        .tempfile_in(&dir)
        .map_err(io_err(&dir))?;
    let tmp_path = tmp.path().to_owned();
    {
        let mut w = GgmlWriter {
            w: BufWriter::with_capacity(1 << 20, tmp.as_file_mut()),
            tensors: 0,
        };
        write_model(&mut w, &model, &hp, &vocab.tokens, precision)
            .map_err(|e| e.with_path(&tmp_path))?;
        w.w.flush().map_err(io_err(&tmp_path))?;
        tracing::debug!(tensors = w.tensors, "ggml tensors written");
    }
    tmp.as_file().sync_all().map_err(io_err(&tmp_path))?;
    tmp.persist(out).map_err(|e| ConvertError::Io {
        path: out.to_owned(),
        source: e.error,
    })?;
    tracing::info!(
        from = %ct2_dir.display(),
        to = %out.display(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "converted CTranslate2 Whisper model to ggml"
    );
    Ok(())
}

/// Converts unless `out` already exists; returns whether it converted.
/// `out` should be a cache path that names the source model (and its version),
/// since an existing file is taken as is.
pub fn ensure_converted(
    ct2_dir: &Path,
    out: &Path,
    precision: Precision,
) -> Result<bool, ConvertError> {
    if out.is_file() {
        return Ok(false);
    }
    convert_ct2_to_ggml_as(ct2_dir, out, precision)?;
    Ok(true)
}

/// What can be wrong with a ggml model file (see [`inspect`]).
#[derive(Debug, thiserror::Error)]
pub enum GgmlFileError {
    /// The file could not be read.
    #[error("cannot read ggml model {}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file does not start with ggml's magic.
    #[error("{} is not a ggml Whisper model (magic {found:#010x}, expected {GGML_MAGIC:#010x})", .path.display())]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The first four bytes, little-endian.
        found: u32,
    },
    /// The file ends before something it announces.
    #[error("ggml model {} is truncated: {what} at offset {offset} needs {needed} bytes, the file has {len}", .path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// What was being read.
        what: String,
        /// Where.
        offset: u64,
        /// Bytes needed.
        needed: u64,
        /// The file's length.
        len: u64,
    },
    /// A field is out of range.
    #[error("ggml model {} is invalid: {reason}", .path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// What [`inspect`] found in a ggml model file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgmlSummary {
    /// The hyperparameters.
    pub hparams: WhisperHparams,
    /// The file's `ftype` (1: f16 matrices).
    pub ftype: i32,
    /// Tokens in the file's vocabulary.
    pub vocab: usize,
    /// Tensors in the file.
    pub tensors: usize,
}

/// Elements per block and bytes per block of the ggml tensor types a Whisper
/// file may hold.
fn ggml_type_layout(ttype: i32) -> Option<(u64, u64)> {
    Some(match ttype {
        0 => (1, 4),     // F32
        1 => (1, 2),     // F16
        2 => (32, 18),   // Q4_0
        3 => (32, 20),   // Q4_1
        6 => (32, 22),   // Q5_0
        7 => (32, 24),   // Q5_1
        8 => (32, 34),   // Q8_0
        10 => (256, 84), // Q2_K
        11 => (256, 110),
        12 => (256, 144),
        13 => (256, 176),
        14 => (256, 210), // Q6_K
        30 => (1, 2),     // BF16
        _ => return None,
    })
}

/// Checks a ggml Whisper file's structure without loading its weights:
/// magic, plausible hyperparameters, mel filters of the expected size, a
/// vocabulary and tensor records that fit in the file and end exactly at its
/// end. whisper.cpp trusts these lengths (a corrupt file can make it
/// allocate without bound or read garbage), so this runs before loading.
pub fn inspect(path: &Path) -> Result<GgmlSummary, GgmlFileError> {
    let io = |source| GgmlFileError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut r = FileCursor {
        r: std::io::BufReader::with_capacity(1 << 16, file),
        offset: 0,
        len,
        path,
    };
    let invalid = |reason: String| GgmlFileError::Invalid {
        path: path.to_owned(),
        reason,
    };
    let magic = r.i32(&|| "magic".into())? as u32;
    if magic != GGML_MAGIC {
        return Err(GgmlFileError::BadMagic {
            path: path.to_owned(),
            found: magic,
        });
    }
    const NAMES: [&str; 11] = [
        "n_vocab",
        "n_audio_ctx",
        "n_audio_state",
        "n_audio_head",
        "n_audio_layer",
        "n_text_ctx",
        "n_text_state",
        "n_text_head",
        "n_text_layer",
        "n_mels",
        "ftype",
    ];
    const LIMITS: [i32; 11] = [
        1 << 20,
        1 << 16,
        1 << 16,
        1 << 10,
        1 << 10,
        1 << 16,
        1 << 16,
        1 << 10,
        1 << 10,
        1 << 10,
        i32::MAX,
    ];
    let mut h = [0usize; 11];
    for (i, name) in NAMES.iter().enumerate() {
        let v = r.i32(&|| format!("hparam {name}"))?;
        let min = if *name == "ftype" { 0 } else { 1 };
        if v < min || v > LIMITS[i] {
            return Err(invalid(format!("hparam {name} = {v} is out of range")));
        }
        h[i] = v as usize;
    }
    let hparams = WhisperHparams {
        n_vocab: h[0],
        n_audio_ctx: h[1],
        n_audio_state: h[2],
        n_audio_head: h[3],
        n_audio_layer: h[4],
        n_text_ctx: h[5],
        n_text_state: h[6],
        n_text_head: h[7],
        n_text_layer: h[8],
        n_mels: h[9],
    };
    hparams.validate().map_err(|e| invalid(e.to_string()))?;

    let n_mel = r.i32(&|| "mel filter count".into())?;
    let n_fft = r.i32(&|| "mel filter length".into())?;
    if usize::try_from(n_mel).ok() != Some(hparams.n_mels) || n_fft != (mel::N_FFT / 2 + 1) as i32 {
        return Err(invalid(format!(
            "mel filters are {n_mel}x{n_fft}, expected {}x{}",
            hparams.n_mels,
            mel::N_FFT / 2 + 1
        )));
    }
    r.skip(n_mel as u64 * n_fft as u64 * 4, &|| "mel filters".into())?;

    let vocab = r.i32(&|| "vocabulary size".into())?;
    if vocab < 0 || vocab as usize > hparams.n_vocab {
        return Err(invalid(format!(
            "vocabulary of {vocab} tokens for n_vocab {}",
            hparams.n_vocab
        )));
    }
    for id in 0..vocab {
        let n = r.i32(&|| format!("length of token {id}"))?;
        if !(0..=1024).contains(&n) {
            return Err(invalid(format!("token {id} has length {n}")));
        }
        r.skip(n as u64, &|| format!("token {id}"))?;
    }

    let mut tensors = 0usize;
    while r.offset < len {
        let t = tensors;
        let n_dims = r.i32(&|| format!("tensor #{t} rank"))?;
        let name_len = r.i32(&|| format!("tensor #{t} name length"))?;
        let ttype = r.i32(&|| format!("tensor #{t} type"))?;
        if !(1..=4).contains(&n_dims) || !(1..=1024).contains(&name_len) {
            return Err(invalid(format!(
                "tensor #{t}: rank {n_dims}, name length {name_len}"
            )));
        }
        let (block, block_bytes) = ggml_type_layout(ttype)
            .ok_or_else(|| invalid(format!("tensor #{t}: unknown type {ttype}")))?;
        let mut elements = 1u64;
        for _ in 0..n_dims {
            let d = r.i32(&|| format!("tensor #{t} shape"))?;
            if d < 1 {
                return Err(invalid(format!("tensor #{t}: dimension {d}")));
            }
            elements = elements.saturating_mul(d as u64);
        }
        if elements > i32::MAX as u64 || !elements.is_multiple_of(block) {
            return Err(invalid(format!(
                "tensor #{t}: {elements} elements do not fit type {ttype}"
            )));
        }
        r.skip(name_len as u64, &|| format!("tensor #{t} name"))?;
        r.skip(elements / block * block_bytes, &|| {
            format!("tensor #{t} data")
        })?;
        tensors += 1;
    }
    if tensors == 0 {
        return Err(invalid("no tensors".into()));
    }
    Ok(GgmlSummary {
        hparams,
        ftype: h[10] as i32,
        vocab: vocab as usize,
        tensors,
    })
}

/// Reads a file front to back, checking each length against the file's size
/// before reading or skipping.
struct FileCursor<'p> {
    r: std::io::BufReader<std::fs::File>,
    offset: u64,
    len: u64,
    path: &'p Path,
}

impl FileCursor<'_> {
    fn reserve(&self, n: u64, what: &dyn Fn() -> String) -> Result<(), GgmlFileError> {
        if self.offset.checked_add(n).is_none_or(|end| end > self.len) {
            return Err(GgmlFileError::Truncated {
                path: self.path.to_owned(),
                what: what(),
                offset: self.offset,
                needed: n,
                len: self.len,
            });
        }
        Ok(())
    }

    fn io(&self, source: std::io::Error) -> GgmlFileError {
        GgmlFileError::Io {
            path: self.path.to_owned(),
            source,
        }
    }

    fn i32(&mut self, what: &dyn Fn() -> String) -> Result<i32, GgmlFileError> {
        use std::io::Read;
        self.reserve(4, what)?;
        let mut b = [0u8; 4];
        self.r.read_exact(&mut b).map_err(|e| self.io(e))?;
        self.offset += 4;
        Ok(i32::from_le_bytes(b))
    }

    fn skip(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<(), GgmlFileError> {
        self.reserve(n, what)?;
        // reserve() bounds n by the file's length, which fits an i64.
        let step = i64::try_from(n).unwrap_or(i64::MAX);
        self.r.seek_relative(step).map_err(|e| self.io(e))?;
        self.offset += n;
        Ok(())
    }
}

/// Element type of an output tensor.
#[derive(Debug, Clone, Copy)]
enum Kind {
    F32,
    F16,
    Q8_0,
}

struct GgmlWriter<W: Write> {
    w: W,
    tensors: usize,
}

impl<W: Write> GgmlWriter<W> {
    fn i32(&mut self, v: i32) -> std::io::Result<()> {
        self.w.write_all(&v.to_le_bytes())
    }

    /// One tensor; `shape` outermost first (PyTorch order), written reversed.
    fn tensor(
        &mut self,
        name: &str,
        shape: &[usize],
        data: &[f32],
        kind: Kind,
    ) -> std::io::Result<()> {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        self.i32(shape.len() as i32)?;
        self.i32(name.len() as i32)?;
        self.i32(match kind {
            Kind::F32 => 0,
            Kind::F16 => 1,
            Kind::Q8_0 => 8,
        })?;
        for &d in shape.iter().rev() {
            self.i32(d as i32)?;
        }
        self.w.write_all(name.as_bytes())?;
        let bytes: Vec<u8> = match kind {
            Kind::F32 => data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Kind::F16 => data
                .iter()
                .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                .collect(),
            Kind::Q8_0 => quantize_q8_0(data),
        };
        self.w.write_all(&bytes)?;
        self.tensors += 1;
        Ok(())
    }
}

/// ggml's `Q8_0`: blocks of 32 values as an f16 scale (`max |x| / 127`)
/// followed by 32 rounded `i8`s. Rows must be a multiple of 32 long, as
/// every Whisper matrix is.
fn quantize_q8_0(data: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 32 * 34);
    for block in data.chunks(32) {
        let amax = block.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d == 0.0 { 0.0 } else { 1.0 / d };
        out.extend_from_slice(&half::f16::from_f32(d).to_le_bytes());
        out.extend(block.iter().map(|&v| ((v * id).round() as i8) as u8));
    }
    out
}

fn write_model<W: Write>(
    w: &mut GgmlWriter<W>,
    model: &Ct2Model,
    hp: &WhisperHparams,
    tokens: &[Vec<u8>],
    precision: Precision,
) -> Result<(), WriteError> {
    w.w.write_all(&GGML_MAGIC.to_le_bytes())?;
    for v in header(hp, precision) {
        w.i32(v)?;
    }

    let filters = mel::whisper_filters(hp.n_mels);
    w.i32(hp.n_mels as i32)?;
    w.i32((mel::N_FFT / 2 + 1) as i32)?;
    let bytes: Vec<u8> = filters.iter().flat_map(|v| v.to_le_bytes()).collect();
    w.w.write_all(&bytes)?;

    w.i32(tokens.len() as i32)?;
    for token in tokens {
        w.i32(token.len() as i32)?;
        w.w.write_all(token)?;
    }

    layout::emit(
        model,
        hp,
        &mut GgmlSink {
            w,
            matrix: precision.matrix_kind(),
        },
    )
}

/// Stores the layout's tensors as whisper.cpp allocates them: matrices in
/// the chosen precision, convolution kernels in f16, the rest in f32, and
/// convolution biases as `[d, 1]` to broadcast over time.
struct GgmlSink<'a, W: Write> {
    w: &'a mut GgmlWriter<W>,
    matrix: Kind,
}

impl<W: Write> TensorSink for GgmlSink<'_, W> {
    fn tensor(
        &mut self,
        name: &str,
        shape: &[usize],
        data: &[f32],
        role: Role,
    ) -> Result<(), WriteError> {
        match role {
            Role::Matrix => self.w.tensor(name, shape, data, self.matrix)?,
            Role::ConvKernel => self.w.tensor(name, shape, data, Kind::F16)?,
            Role::ConvBias => self.w.tensor(name, &[data.len(), 1], data, Kind::F32)?,
            Role::Vector | Role::Position => self.w.tensor(name, shape, data, Kind::F32)?,
        }
        Ok(())
    }
}

/// The vocabulary whisper.cpp wants: the byte-level BPE tokens as raw bytes,
/// that is every id below `<|endoftext|>` (the first special token, whose
/// id is `len`); whisper.cpp names the special tokens itself.
struct Vocabulary {
    tokens: Vec<Vec<u8>>,
    len: usize,
}

fn read_vocabulary(dir: &Path) -> Result<Vocabulary, ConvertError> {
    let txt = dir.join("vocabulary.txt");
    let json = dir.join("vocabulary.json");
    let (path, strings): (PathBuf, Vec<String>) = if txt.is_file() {
        let text = std::fs::read_to_string(&txt).map_err(|source| ConvertError::Io {
            path: txt.clone(),
            source,
        })?;
        let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
        if lines.last().is_some_and(String::is_empty) {
            lines.pop();
        }
        (txt, lines)
    } else if json.is_file() {
        let text = std::fs::read_to_string(&json).map_err(|source| ConvertError::Io {
            path: json.clone(),
            source,
        })?;
        let list = serde_json::from_str(&text).map_err(|e| ConvertError::Vocabulary {
            path: json.clone(),
            reason: format!("not a JSON list of strings: {e}"),
        })?;
        (json, list)
    } else {
        return Err(ConvertError::MissingFile {
            dir: dir.to_owned(),
            file: "vocabulary.txt (or vocabulary.json)",
        });
    };
    let eot = strings
        .iter()
        .position(|t| t == "<|endoftext|>")
        .ok_or_else(|| ConvertError::Vocabulary {
            path: path.clone(),
            reason: "no <|endoftext|> token".into(),
        })?;
    let inverse = char_to_byte();
    let tokens = strings[..eot]
        .iter()
        .enumerate()
        .map(|(id, token)| {
            decode_byte_level(token, &inverse).ok_or_else(|| ConvertError::Vocabulary {
                path: path.clone(),
                reason: format!("token {id} ({token:?}) is not byte-level BPE"),
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Vocabulary {
        tokens,
        len: strings.len(),
    })
}

/// GPT-2's byte-to-unicode table: printable bytes map to themselves, the
/// others to U+0100 onwards, in byte order.
fn byte_to_char() -> [char; 256] {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for b in 0..=255u8 {
        table[usize::from(b)] = if printable(b) {
            char::from(b)
        } else {
            let c = char::from_u32(next).unwrap_or('\0');
            next += 1;
            c
        };
    }
    table
}

/// The inverse of [`byte_to_char`], indexed by code point (all below U+0200).
fn char_to_byte() -> Vec<Option<u8>> {
    let mut inverse = vec![None; 512];
    for (b, c) in byte_to_char().into_iter().enumerate() {
        inverse[c as usize] = Some(b as u8);
    }
    inverse
}

/// A byte-level BPE token (as in `vocabulary.txt`) back to its bytes.
fn decode_byte_level(token: &str, inverse: &[Option<u8>]) -> Option<Vec<u8>> {
    token
        .chars()
        .map(|c| inverse.get(c as usize).copied().flatten())
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn byte_level_tokens_decode_to_bytes() {
        let inv = char_to_byte();
        let decode_byte_level = |t: &str| decode_byte_level(t, &inv);
        assert_eq!(decode_byte_level("hello").unwrap(), b"hello");
        assert_eq!(decode_byte_level("Ġthe").unwrap(), b" the");
        assert_eq!(decode_byte_level("Ċ").unwrap(), b"\n");
        assert_eq!(decode_byte_level("Ā").unwrap(), vec![0u8]);
        // "é" is U+00E9, printable: the byte 0xE9 (half of a UTF-8 pair).
        assert_eq!(decode_byte_level("Ã©").unwrap(), "é".as_bytes());
        assert_eq!(decode_byte_level("日"), None);
        let table = byte_to_char();
        let mut seen: Vec<char> = table.to_vec();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 256, "the table is a bijection");
    }

    #[test]
    fn header_is_the_hparams_then_f16() {
        let hp = WhisperHparams {
            n_vocab: 51864,
            n_audio_ctx: 1500,
            n_audio_state: 384,
            n_audio_head: 6,
            n_audio_layer: 4,
            n_text_ctx: 448,
            n_text_state: 384,
            n_text_head: 6,
            n_text_layer: 4,
            n_mels: 80,
        };
        assert_eq!(
            header(&hp, Precision::F16),
            [51864, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 1]
        );
        assert_eq!(header(&hp, Precision::Q8_0)[10], 7);
    }

    #[test]
    fn tensor_records_reverse_dims_and_pick_the_type() {
        let mut w = GgmlWriter {
            w: Vec::new(),
            tensors: 0,
        };
        w.tensor("a.b", &[2, 3], &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], Kind::F16)
            .unwrap();
        let b = &w.w;
        let i32_at = |o: usize| i32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        assert_eq!(i32_at(0), 2); // n_dims
        assert_eq!(i32_at(4), 3); // name length
        assert_eq!(i32_at(8), 1); // f16
        assert_eq!((i32_at(12), i32_at(16)), (3, 2)); // innermost first
        assert_eq!(&b[20..23], b"a.b");
        assert_eq!(b.len(), 23 + 6 * 2);
        assert_eq!(half::f16::from_le_bytes([b[25], b[26]]).to_f32(), 1.0);
    }

    #[test]
    fn missing_model_bin_is_reported_with_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let err = convert_ct2_to_ggml(dir.path(), &dir.path().join("out.bin")).unwrap_err();
        assert!(matches!(
            err,
            ConvertError::MissingFile {
                file: "model.bin",
                ..
            }
        ));
        assert!(err.to_string().contains("model.bin"));
        assert!(!dir.path().join("out.bin").exists());
    }

    #[test]
    fn other_specs_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = crate::model::ct2::tests::Writer::default();
        w.f32("x", &[1], &[1.0]);
        std::fs::write(dir.path().join("model.bin"), w.bytes("TransformerSpec")).unwrap();
        let err = convert_ct2_to_ggml(dir.path(), &dir.path().join("out.bin")).unwrap_err();
        assert!(matches!(err, ConvertError::UnsupportedSpec { .. }), "{err}");
    }
}
