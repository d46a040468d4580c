//! Sentence embeddings computed here with candle: a BERT encoder
//! (all-MiniLM-L6-v2 by default), mean pooling over the real tokens only,
//! then unit length, as sentence-transformers computes them.
//!
//! The packaged tokenizer pads every input to 128 tokens; padding and
//! truncation are turned off here. The encoder ([`bert`]) packs a batch's
//! tokens without padding; inputs are sorted by length before batching, so
//! the little padding attention needs stays small too.

pub mod bert;

use std::path::Path;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use tokenizers::Tokenizer;

pub use bert::Precision;
use bert::{Bert, BertConfig};

/// Why embedding failed.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The model directory lacks a file or holds a broken one.
    #[error("embedding model {dir}: {reason}")]
    Load { dir: String, reason: String },
    /// An input has more tokens than the model's window.
    #[error("input {index} has {tokens} tokens; the model reads at most {max}")]
    TooLong {
        index: usize,
        tokens: usize,
        max: usize,
    },
    /// An input is empty (or only whitespace).
    #[error("input {0} is empty")]
    Empty(usize),
    /// The computation failed.
    #[error("embedding failed: {0}")]
    Compute(String),
}

fn compute(e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Compute(e.to_string())
}

/// A loaded sentence-embedding model.
pub struct Embedder {
    model: Bert,
    tokenizer: Tokenizer,
    device: Device,
    dims: usize,
    max_tokens: usize,
    batch: usize,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("dims", &self.dims)
            .field("max_tokens", &self.max_tokens)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// The window a sentence-transformers model was trained for
/// (`sentence_bert_config.json`), else 256; never beyond the positions.
fn window(dir: &Path, positions: usize) -> usize {
    let configured = std::fs::read_to_string(dir.join("sentence_bert_config.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["max_seq_length"].as_u64())
        .and_then(|n| usize::try_from(n).ok());
    configured.unwrap_or(256).min(positions)
}

impl Embedder {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from
    /// `dir`, on the CPU or the first CUDA device; `batch` inputs per pass,
    /// the dense layers at `precision`.
    pub fn load(
        dir: &Path,
        gpu: bool,
        batch: usize,
        precision: Precision,
    ) -> Result<Self, EmbedError> {
        let fail = |reason: String| EmbedError::Load {
            dir: dir.display().to_string(),
            reason,
        };
        let device = if gpu {
            Device::new_cuda(0).map_err(|e| fail(format!("no CUDA device: {e}")))?
        } else {
            Device::Cpu
        };
        let config: BertConfig = std::fs::read_to_string(dir.join("config.json"))
            .map_err(|e| fail(format!("config.json: {e}")))
            .and_then(|t| {
                serde_json::from_str(&t).map_err(|e| fail(format!("config.json: {e}")))
            })?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| fail(format!("tokenizer.json: {e}")))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| fail(format!("tokenizer.json: {e}")))?;
        let weights = std::fs::read(dir.join("model.safetensors"))
            .map_err(|e| fail(format!("model.safetensors: {e}")))?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)
            .map_err(|e| fail(format!("model.safetensors: {e}")))?;
        let model = Bert::load(vb, &config, precision).map_err(|e| fail(e.to_string()))?;
        Ok(Self {
            model,
            tokenizer,
            device,
            dims: config.hidden_size,
            max_tokens: window(dir, config.max_position_embeddings),
            batch: batch.max(1),
        })
    }

    /// Vector length.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// The most tokens one input may have (special tokens included).
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Tokens `text` takes, special tokens included.
    pub fn count_tokens(&self, text: &str) -> Result<usize, EmbedError> {
        Ok(self.tokenizer.encode(text, true).map_err(compute)?.len())
    }

    /// Unit vectors for `texts`, in their order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut encodings = Vec::with_capacity(texts.len());
        for (index, text) in texts.iter().enumerate() {
            if text.trim().is_empty() {
                return Err(EmbedError::Empty(index));
            }
            let encoding = self.tokenizer.encode(*text, true).map_err(compute)?;
            if encoding.len() > self.max_tokens {
                return Err(EmbedError::TooLong {
                    index,
                    tokens: encoding.len(),
                    max: self.max_tokens,
                });
            }
            encodings.push(encoding);
        }
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| encodings[i].len());
        let mut out = vec![Vec::new(); texts.len()];
        for group in order.chunks(self.batch) {
            let batch: Vec<&tokenizers::Encoding> = group.iter().map(|&i| &encodings[i]).collect();
            for (&i, vector) in group.iter().zip(self.embed_batch(&batch)?) {
                out[i] = vector;
            }
        }
        Ok(out)
    }

    fn embed_batch(&self, batch: &[&tokenizers::Encoding]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let ids: Vec<&[u32]> = batch.iter().map(|e| e.get_ids()).collect();
        self.model
            .pooled(&ids)
            .and_then(|pooled| bert::normalize(&pooled))
            .and_then(|v| v.to_vec2::<f32>())
            .map_err(compute)
    }
}

/// Cosine of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
