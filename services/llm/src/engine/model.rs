//! One decoder-only transformer for the GGUF architectures Athena runs:
//! `llama` (SmolLM2, Llama 3), `qwen2` and `gemma3`.
//!
//! They differ in a few switches, read from the GGUF metadata and tensors:
//! biases on q/k/v (qwen2), rotary embedding interleaved (`llama`, whose
//! converter permutes q/k) or in halves (the others), norms on q and k and
//! after attention and feed-forward, GELU, a scaled embedding, and
//! sliding-window layers with their own rotary base (gemma3).
//!
//! The weights stay quantized (candle's `QMatMul`); the model is immutable
//! and shared, and every sequence brings its own [`Cache`] of keys and
//! values, which can be forked so that a shared prompt prefix is computed
//! once.

use std::path::Path;
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QTensor, ggml_file, gguf_file};

use athena_kernels::linear::Linear;
use candle_core::{DType, Device, Tensor};

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The file cannot be read as GGUF.
    #[error("{path}: not a readable GGUF file: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The architecture is not one Athena runs.
    #[error("architecture `{0}` is not supported (supported: llama, qwen2, gemma3)")]
    Architecture(String),
    /// The metadata or tensors are not what the architecture needs.
    #[error("{0}")]
    Malformed(String),
    /// The prompt does not fit in the context.
    #[error("{needed} tokens do not fit in the context of {context} tokens")]
    ContextFull {
        /// Tokens the sequence would hold.
        needed: usize,
        /// The context length.
        context: usize,
    },
    /// candle failed while computing.
    #[error("inference failed: {0}")]
    Compute(#[from] candle_core::Error),
}

/// The architectures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// Llama and its descendants (SmolLM2).
    Llama,
    /// Qwen 2 and 2.5.
    Qwen2,
    /// Gemma 3.
    Gemma3,
}

impl Architecture {
    fn parse(name: &str) -> Result<Self, ModelError> {
        match name {
            "llama" => Ok(Self::Llama),
            "qwen2" => Ok(Self::Qwen2),
            "gemma3" => Ok(Self::Gemma3),
            other => Err(ModelError::Architecture(other.to_owned())),
        }
    }

    /// Its name in GGUF metadata.
    pub fn name(self) -> &'static str {
        match self {
            Self::Llama => "llama",
            Self::Qwen2 => "qwen2",
            Self::Gemma3 => "gemma3",
        }
    }
}

/// The shape of a model, from its metadata.
#[derive(Debug, Clone)]
pub struct Hyper {
    /// Which architecture.
    pub architecture: Architecture,
    /// Transformer blocks.
    pub layers: usize,
    /// Width of the residual stream.
    pub embedding: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (grouped-query attention when fewer than `heads`).
    pub kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// The context length the model was trained for.
    pub trained_context: usize,
    /// Norm epsilon.
    pub rms_eps: f32,
    /// Rotary base of global-attention layers.
    pub rope_base: f32,
    /// Sliding-window layers: window length, rotary base, and which layers
    /// (layer `i` slides when `(i + 1) % pattern != 0`).
    pub sliding: Option<Sliding>,
    /// Vocabulary size.
    pub vocab: usize,
}

/// Local (sliding-window) attention, as Gemma 3 has it.
#[derive(Debug, Clone, Copy)]
pub struct Sliding {
    /// Keys further back than this are not seen.
    pub window: usize,
    /// Rotary base of sliding layers.
    pub rope_base: f32,
    /// Every `pattern`-th layer is global.
    pub pattern: usize,
}

struct Metadata<'a> {
    content: &'a gguf_file::Content,
    prefix: &'static str,
}

impl Metadata<'_> {
    fn get(&self, key: &str) -> Option<&gguf_file::Value> {
        self.content.metadata.get(&format!("{}.{key}", self.prefix))
    }

    fn usize(&self, key: &str) -> Result<usize, ModelError> {
        self.get(key)
            .ok_or_else(|| {
                ModelError::Malformed(format!("metadata {}.{key} is missing", self.prefix))
            })?
            .to_u32()
            .map(|v| v as usize)
            .map_err(|e| ModelError::Malformed(format!("metadata {}.{key}: {e}", self.prefix)))
    }

    fn usize_or(&self, key: &str, default: usize) -> Result<usize, ModelError> {
        if self.get(key).is_some() {
            self.usize(key)
        } else {
            Ok(default)
        }
    }

    fn f32_or(&self, key: &str, default: f32) -> Result<f32, ModelError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .to_f32()
                .map_err(|e| ModelError::Malformed(format!("metadata {}.{key}: {e}", self.prefix))),
        }
    }
}

impl Hyper {
    /// Reads the shape of the model in `content`.
    pub fn from_gguf(content: &gguf_file::Content) -> Result<Self, ModelError> {
        let architecture = content
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .ok_or_else(|| {
                ModelError::Malformed("metadata general.architecture is missing".into())
            })?;
        let architecture = Architecture::parse(architecture)?;
        let md = Metadata {
            content,
            prefix: architecture.name(),
        };
        let embedding = md.usize("embedding_length")?;
        let heads = md.usize("attention.head_count")?;
        let kv_heads = md.usize_or("attention.head_count_kv", heads)?;
        let head_dim = md.usize_or("attention.key_length", embedding / heads.max(1))?;
        if heads == 0 || kv_heads == 0 || heads % kv_heads != 0 || head_dim % 2 != 0 {
            return Err(ModelError::Malformed(format!(
                "{heads} heads, {kv_heads} key/value heads of width {head_dim}: not a usable attention shape"
            )));
        }
        let sliding = if architecture == Architecture::Gemma3 {
            Some(Sliding {
                window: md.usize("attention.sliding_window")?,
                rope_base: md.f32_or("rope.local_freq_base", 10_000.0)?,
                pattern: md.usize_or("attention.sliding_window_type", 6)?.max(1),
            })
        } else {
            None
        };
        // candle gives dimensions outermost first: (vocab, embedding).
        let vocab = match content.tensor_infos.get("token_embd.weight") {
            Some(info) => info.shape.dims()[0],
            None => {
                return Err(ModelError::Malformed(
                    "tensor token_embd.weight is missing".into(),
                ));
            }
        };
        Ok(Self {
            architecture,
            layers: md.usize("block_count")?,
            embedding,
            heads,
            kv_heads,
            head_dim,
            trained_context: md.usize_or("context_length", 2048)?,
            rms_eps: md.f32_or("attention.layer_norm_rms_epsilon", 1e-6)?,
            rope_base: md.f32_or("rope.freq_base", 10_000.0)?,
            sliding,
            vocab,
        })
    }
}

/// One transformer block.
#[derive(Debug)]
struct Block {
    attn_norm: Tensor,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    q_bias: Option<Tensor>,
    k_bias: Option<Tensor>,
    v_bias: Option<Tensor>,
    q_norm: Option<Tensor>,
    k_norm: Option<Tensor>,
    post_attn_norm: Option<Tensor>,
    ffn_norm: Tensor,
    post_ffn_norm: Option<Tensor>,
    gate: Linear,
    up: Linear,
    down: Linear,
    /// Index into [`Model::ropes`].
    rope: usize,
    window: Option<usize>,
}

/// Rotary tables for one base: `cos`, `sin` of shape (context, head_dim / 2).
#[derive(Debug)]
struct Rope {
    cos: Tensor,
    sin: Tensor,
}

impl Rope {
    fn new(
        base: f32,
        head_dim: usize,
        context: usize,
        device: &Device,
    ) -> candle_core::Result<Self> {
        let inv: Vec<f32> = (0..head_dim)
            .step_by(2)
            .map(|i| 1.0 / base.powf(i as f32 / head_dim as f32))
            .collect();
        let inv = Tensor::from_vec(inv, (1, head_dim / 2), device)?;
        let positions = Tensor::arange(0u32, context as u32, device)?
            .to_dtype(DType::F32)?
            .reshape((context, 1))?;
        let angles = positions.matmul(&inv)?;
        Ok(Self {
            cos: angles.cos()?,
            sin: angles.sin()?,
        })
    }
}

/// A loaded model: immutable, shared by every sequence.
#[derive(Debug)]
pub struct Model {
    hyper: Hyper,
    context: usize,
    device: Device,
    /// The embedding table, quantized, on the CPU (rows are looked up);
    /// `None` when it is tied to the output matrix and that one is ours,
    /// which reads rows back (so the table is not held twice).
    embeddings: Option<Arc<QTensor>>,
    embed_scale: Option<f64>,
    blocks: Vec<Block>,
    norm: Tensor,
    output: Linear,
    ropes: Vec<Rope>,
}

/// Keys and values of one sequence, per layer, with room to grow.
#[derive(Debug)]
pub struct Cache {
    layers: Vec<(Tensor, Tensor)>,
    len: usize,
    capacity: usize,
    max: usize,
}

impl Cache {
    /// Positions held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A copy of the first `len` positions, to continue from independently.
    pub fn fork(&self, len: usize) -> Result<Self, ModelError> {
        let len = len.min(self.len);
        let capacity = grow(len.max(1), self.max);
        let layers = self
            .layers
            .iter()
            .map(|(k, v)| {
                Ok((
                    copy_prefix(k, len, capacity)?,
                    copy_prefix(v, len, capacity)?,
                ))
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(Self {
            layers,
            len,
            capacity,
            max: self.max,
        })
    }

    /// Makes room for `more` positions; returns the layers' views after
    /// appending is done by the caller.
    fn reserve(&mut self, more: usize) -> Result<(), ModelError> {
        let needed = self.len + more;
        if needed > self.max {
            return Err(ModelError::ContextFull {
                needed,
                context: self.max,
            });
        }
        if needed > self.capacity {
            let capacity = grow(needed, self.max);
            for (k, v) in &mut self.layers {
                *k = copy_prefix(k, self.len, capacity)?;
                *v = copy_prefix(v, self.len, capacity)?;
            }
            self.capacity = capacity;
        }
        Ok(())
    }
}

/// Capacity for `needed` positions: doubling from 64, at most `max`.
fn grow(needed: usize, max: usize) -> usize {
    needed.next_power_of_two().max(64).min(max)
}

/// A fresh (1, heads, capacity, dim) tensor whose first `len` positions are
/// those of `t`.
fn copy_prefix(t: &Tensor, len: usize, capacity: usize) -> candle_core::Result<Tensor> {
    let (b, h, _, d) = t.dims4()?;
    let fresh = Tensor::zeros((b, h, capacity, d), t.dtype(), t.device())?;
    if len > 0 {
        fresh.slice_set(&t.narrow(2, 0, len)?.contiguous()?, 2, 0)?;
    }
    Ok(fresh)
}

fn malformed(e: impl std::fmt::Display) -> ModelError {
    ModelError::Malformed(e.to_string())
}

impl Model {
    /// Reads the GGUF file at `path`: its metadata (for the tokenizer too)
    /// and the model, with room for `context` tokens (at most what it was
    /// trained for).
    pub fn load(
        path: &Path,
        context: usize,
        device: &Device,
    ) -> Result<(Self, gguf_file::Content), ModelError> {
        let file_error = |reason: String| ModelError::File {
            path: path.display().to_string(),
            reason,
        };
        let mut file = std::fs::File::open(path).map_err(|e| file_error(e.to_string()))?;
        let content = gguf_file::Content::read(&mut file).map_err(|e| file_error(e.to_string()))?;
        let hyper = Hyper::from_gguf(&content)?;
        let context = context.min(hyper.trained_context).max(1);
        let mut tensor = |name: &str, on: &Device| -> Result<QTensor, ModelError> {
            content
                .tensor(&mut file, name, on)
                .map_err(|e| ModelError::Malformed(format!("tensor {name}: {e}")))
        };
        let embeddings = Arc::new(tensor("token_embd.weight", &Device::Cpu)?);
        let dense = |t: QTensor| t.dequantize(device).map_err(malformed);
        let matmul = |t: QTensor| Linear::new(t).map_err(malformed);
        let has = |name: &str| content.tensor_infos.contains_key(name);

        let mut ropes = vec![Rope::new(hyper.rope_base, hyper.head_dim, context, device)?];
        if let Some(sliding) = hyper.sliding {
            ropes.push(Rope::new(
                sliding.rope_base,
                hyper.head_dim,
                context,
                device,
            )?);
        }
        let mut blocks = Vec::with_capacity(hyper.layers);
        for i in 0..hyper.layers {
            let name = |part: &str| format!("blk.{i}.{part}");
            let mut optional = |part: &str| -> Result<Option<Tensor>, ModelError> {
                let name = name(part);
                if has(&name) {
                    Ok(Some(dense(tensor(&name, device)?)?))
                } else {
                    Ok(None)
                }
            };
            let q_bias = optional("attn_q.bias")?;
            let k_bias = optional("attn_k.bias")?;
            let v_bias = optional("attn_v.bias")?;
            let q_norm = optional("attn_q_norm.weight")?;
            let k_norm = optional("attn_k_norm.weight")?;
            let post_attn_norm = optional("post_attention_norm.weight")?;
            let post_ffn_norm = optional("post_ffw_norm.weight")?;
            let sliding_layer = hyper.sliding.filter(|s| (i + 1) % s.pattern != 0);
            blocks.push(Block {
                attn_norm: dense(tensor(&name("attn_norm.weight"), device)?)?,
                q: matmul(tensor(&name("attn_q.weight"), device)?)?,
                k: matmul(tensor(&name("attn_k.weight"), device)?)?,
                v: matmul(tensor(&name("attn_v.weight"), device)?)?,
                o: matmul(tensor(&name("attn_output.weight"), device)?)?,
                q_bias,
                k_bias,
                v_bias,
                q_norm,
                k_norm,
                post_attn_norm,
                ffn_norm: dense(tensor(&name("ffn_norm.weight"), device)?)?,
                post_ffn_norm,
                gate: matmul(tensor(&name("ffn_gate.weight"), device)?)?,
                up: matmul(tensor(&name("ffn_up.weight"), device)?)?,
                down: matmul(tensor(&name("ffn_down.weight"), device)?)?,
                rope: usize::from(sliding_layer.is_some()),
                window: sliding_layer.map(|s| s.window),
            });
        }
        let norm = dense(tensor("output_norm.weight", device)?)?;
        // Models with tied embeddings have no output matrix: the embedding
        // table is used in reverse.
        let (output, embeddings) = if has("output.weight") {
            (matmul(tensor("output.weight", device)?)?, Some(embeddings))
        } else if device.is_cpu() {
            let output = Linear::shared(embeddings.clone()).map_err(malformed)?;
            let table = output.matrix().is_none().then_some(embeddings);
            (output, table)
        } else {
            (
                matmul(tensor("token_embd.weight", device)?)?,
                Some(embeddings),
            )
        };
        let embed_scale =
            (hyper.architecture == Architecture::Gemma3).then(|| (hyper.embedding as f64).sqrt());
        Ok((
            Self {
                hyper,
                context,
                device: device.clone(),
                embeddings,
                embed_scale,
                blocks,
                norm,
                output,
                ropes,
            },
            content,
        ))
    }

    /// The model's shape.
    pub fn hyper(&self) -> &Hyper {
        &self.hyper
    }

    /// The most tokens a sequence can hold.
    pub fn context(&self) -> usize {
        self.context
    }

    /// An empty cache for a new sequence.
    pub fn new_cache(&self) -> Result<Cache, ModelError> {
        let capacity = grow(1, self.context);
        let shape = (1, self.hyper.kv_heads, capacity, self.hyper.head_dim);
        let layers = (0..self.hyper.layers)
            .map(|_| {
                Ok((
                    Tensor::zeros(shape, DType::F32, &self.device)?,
                    Tensor::zeros(shape, DType::F32, &self.device)?,
                ))
            })
            .collect::<candle_core::Result<_>>()?;
        Ok(Cache {
            layers,
            len: 0,
            capacity,
            max: self.context,
        })
    }

    /// The embeddings of `tokens`: (1, n, embedding).
    fn embed(&self, tokens: &[u32]) -> Result<Tensor, ModelError> {
        let width = self.hyper.embedding;
        if let Some(t) = tokens.iter().find(|&&t| t as usize >= self.hyper.vocab) {
            return Err(ModelError::Malformed(format!(
                "token {t} is outside the vocabulary of {}",
                self.hyper.vocab
            )));
        }
        let x = match (&self.embeddings, self.output.matrix()) {
            (Some(table), _) => {
                let dtype = table.dtype();
                let row_bytes = width / dtype.block_size() * dtype.type_size();
                let data = table.data()?;
                let mut rows = Vec::with_capacity(tokens.len() * row_bytes);
                for &t in tokens {
                    let t = t as usize;
                    rows.extend_from_slice(&data[t * row_bytes..(t + 1) * row_bytes]);
                }
                let shape = vec![tokens.len(), width];
                ggml_file::qtensor_from_ggml(dtype, &rows, shape, &Device::Cpu)?
                    .dequantize(&Device::Cpu)?
            }
            (None, Some(matrix)) => {
                let mut rows = vec![0f32; tokens.len() * width];
                for (&t, row) in tokens.iter().zip(rows.chunks_exact_mut(width)) {
                    matrix.dequantize_row(t as usize, row);
                }
                Tensor::from_vec(rows, (tokens.len(), width), &Device::Cpu)?
            }
            (None, None) => {
                return Err(ModelError::Malformed("no embedding table".into()));
            }
        };
        let x = x.to_device(&self.device)?.unsqueeze(0)?;
        Ok(match self.embed_scale {
            Some(scale) => (x * scale)?,
            None => x,
        })
    }

    /// Runs `tokens` after what `cache` holds, appends their keys and values
    /// to it, and returns the logits (vocab) after the last one.
    pub fn forward(&self, tokens: &[u32], cache: &mut Cache) -> Result<Vec<f32>, ModelError> {
        if tokens.is_empty() {
            return Err(ModelError::Malformed("nothing to run".into()));
        }
        let start = cache.len;
        let n = tokens.len();
        cache.reserve(n)?;
        let mut x = self.embed(tokens)?;
        let mask = self.masks(start, n)?;
        for (block, (k_cache, v_cache)) in self.blocks.iter().zip(&cache.layers) {
            let h = candle_nn::ops::rms_norm(&x, &block.attn_norm, self.hyper.rms_eps)?;
            let h = self.attention(block, &h, start, k_cache, v_cache, &mask)?;
            let h = match &block.post_attn_norm {
                Some(w) => candle_nn::ops::rms_norm(&h, w, self.hyper.rms_eps)?,
                None => h,
            };
            x = (x + h)?;
            let h = candle_nn::ops::rms_norm(&x, &block.ffn_norm, self.hyper.rms_eps)?;
            let [gate, up] = Linear::forward_all([&block.gate, &block.up], &h)?;
            let gate = if self.hyper.architecture == Architecture::Gemma3 {
                gate.gelu()?
            } else {
                candle_nn::ops::silu(&gate)?
            };
            let h = block.down.forward(&(gate * up)?)?;
            let h = match &block.post_ffn_norm {
                Some(w) => candle_nn::ops::rms_norm(&h, w, self.hyper.rms_eps)?,
                None => h,
            };
            x = (x + h)?;
        }
        cache.len += n;
        let last = x.narrow(1, n - 1, 1)?;
        let last = candle_nn::ops::rms_norm(&last, &self.norm, self.hyper.rms_eps)?;
        let logits = self.output.forward(&last)?;
        Ok(logits.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?)
    }

    /// Additive attention masks for `n` queries after `start` cached
    /// positions: (global, sliding), `None` where nothing is masked.
    fn masks(
        &self,
        start: usize,
        n: usize,
    ) -> Result<(Option<Tensor>, Option<Tensor>), ModelError> {
        let total = start + n;
        let build = |window: Option<usize>| -> candle_core::Result<Option<Tensor>> {
            let blocked = |i: usize, j: usize| {
                let q = start + i;
                j > q || window.is_some_and(|w| q - j >= w)
            };
            let any = (0..n).any(|i| (0..total).any(|j| blocked(i, j)));
            if !any {
                return Ok(None);
            }
            let values: Vec<f32> = (0..n)
                .flat_map(|i| {
                    (0..total).map(move |j| {
                        if blocked(i, j) {
                            f32::NEG_INFINITY
                        } else {
                            0.0
                        }
                    })
                })
                .collect();
            Tensor::from_vec(values, (n, total), &self.device).map(Some)
        };
        let global = build(None)?;
        let sliding = match self.hyper.sliding {
            Some(s) => build(Some(s.window))?,
            None => None,
        };
        Ok((global, sliding))
    }

    fn attention(
        &self,
        block: &Block,
        x: &Tensor,
        start: usize,
        k_cache: &Tensor,
        v_cache: &Tensor,
        masks: &(Option<Tensor>, Option<Tensor>),
    ) -> Result<Tensor, ModelError> {
        let hy = &self.hyper;
        let (_, n, _) = x.dims3()?;
        let [q, k, v] = Linear::forward_all([&block.q, &block.k, &block.v], x)?;
        let heads =
            |y: Tensor, bias: &Option<Tensor>, heads: usize| -> candle_core::Result<Tensor> {
                let y = match bias {
                    Some(b) => y.broadcast_add(b)?,
                    None => y,
                };
                y.reshape((1, n, heads, hy.head_dim))?
                    .transpose(1, 2)?
                    .contiguous()
            };
        let mut q = heads(q, &block.q_bias, hy.heads)?;
        let mut k = heads(k, &block.k_bias, hy.kv_heads)?;
        let v = heads(v, &block.v_bias, hy.kv_heads)?;
        if let Some(w) = &block.q_norm {
            q = candle_nn::ops::rms_norm(&q, w, hy.rms_eps)?;
        }
        if let Some(w) = &block.k_norm {
            k = candle_nn::ops::rms_norm(&k, w, hy.rms_eps)?;
        }
        let rope = &self.ropes[block.rope];
        let cos = rope.cos.narrow(0, start, n)?;
        let sin = rope.sin.narrow(0, start, n)?;
        let (q, k) = if hy.architecture == Architecture::Llama {
            (
                candle_nn::rotary_emb::rope_i(&q, &cos, &sin)?,
                candle_nn::rotary_emb::rope_i(&k, &cos, &sin)?,
            )
        } else {
            (
                candle_nn::rotary_emb::rope(&q, &cos, &sin)?,
                candle_nn::rotary_emb::rope(&k, &cos, &sin)?,
            )
        };
        k_cache.slice_set(&k, 2, start)?;
        v_cache.slice_set(&v, 2, start)?;
        let total = start + n;
        // Views into the cache, not copies: the matmuls take the strides.
        let keys = k_cache.narrow(2, 0, total)?;
        let values = v_cache.narrow(2, 0, total)?;

        // Grouped-query attention without copying keys: the query heads of
        // one key/value head are stacked as extra rows.
        let group = hy.heads / hy.kv_heads;
        let q = q.reshape((1, hy.kv_heads, group * n, hy.head_dim))?;
        let scale = 1.0 / (hy.head_dim as f64).sqrt();
        let scores = (q.matmul(&keys.t()?)? * scale)?;
        let mask = if block.window.is_some() {
            &masks.1
        } else {
            &masks.0
        };
        let scores = match mask {
            Some(mask) => scores
                .reshape((1, hy.kv_heads, group, n, total))?
                .broadcast_add(mask)?
                .reshape((1, hy.kv_heads, group * n, total))?,
            None => scores,
        };
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = probs.matmul(&values)?;
        let out = out
            .reshape((1, hy.heads, n, hy.head_dim))?
            .transpose(1, 2)?
            .reshape((1, n, hy.heads * hy.head_dim))?;
        Ok(block.o.forward(&out)?)
    }
}

/// The dtype names of a file's tensors, for logs.
pub fn quantization(content: &gguf_file::Content) -> String {
    let mut kinds: Vec<GgmlDType> = content
        .tensor_infos
        .values()
        .map(|t| t.ggml_dtype)
        .collect();
    kinds.sort_by_key(|d| format!("{d:?}"));
    kinds.dedup();
    kinds
        .iter()
        .map(|d| format!("{d:?}"))
        .collect::<Vec<_>>()
        .join("+")
}

/// Which device `gpu` asks for: CUDA device 0 when built with `cuda` and
/// one is there, else the CPU, with the reason.
pub fn device(gpu: bool) -> (Device, String) {
    if !gpu {
        return (Device::Cpu, "cpu".into());
    }
    match Device::new_cuda(0) {
        Ok(d) => (d, "cuda:0".into()),
        Err(e) => (Device::Cpu, format!("cpu (CUDA unavailable: {e})")),
    }
}
