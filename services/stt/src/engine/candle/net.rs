//! Whisper's network on candle tensors, written for inference on small
//! machines:
//!
//! - the encoder keeps float weights (f32 on the CPU, f16 on GPUs): it
//!   multiplies whole matrices, where float GEMM is fastest;
//! - the decoder produces one token at a time, a matrix–vector product per
//!   weight, which is bound by memory traffic: on the CPU its matrices (and
//!   the output projection, the largest of all) are 8-bit (ggml `Q8_0`);
//! - the decoder keeps its self-attention keys and values between steps, so
//!   each step computes one position, not the whole sequence again; the
//!   cross-attention keys and values are computed once per window.
//!
//! Tensor names are those of Hugging Face checkpoints (see
//! [`crate::model::hf`]).

use std::collections::HashMap;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{D, DType, Device, Module, Result, Tensor};
use candle_nn::LayerNorm;
use candle_nn::ops::softmax_last_dim;

/// The sizes of a Whisper model, from a Hugging Face `config.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Config {
    /// Mel bands.
    pub num_mel_bins: usize,
    /// Encoder positions (1500 = 30 s).
    pub max_source_positions: usize,
    /// Width.
    pub d_model: usize,
    /// Encoder heads.
    pub encoder_attention_heads: usize,
    /// Encoder layers.
    pub encoder_layers: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Decoder positions (448).
    pub max_target_positions: usize,
    /// Decoder heads.
    pub decoder_attention_heads: usize,
    /// Decoder layers.
    pub decoder_layers: usize,
    /// Tokens never to produce (non-speech symbols).
    #[serde(default)]
    pub suppress_tokens: Vec<u32>,
}

/// How to hold the weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Precision {
    /// Type of the encoder's weights and activations.
    pub float: DType,
    /// Quantize the decoder's matrices to 8 bits.
    pub quantize_decoder: bool,
}

/// The weights of a checkpoint, taken by name with their shapes checked.
struct Weights {
    tensors: HashMap<String, Tensor>,
    device: Device,
}

impl Weights {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| candle_core::Error::Msg(format!("tensor {name} is missing")))?;
        if t.dims() != shape {
            return Err(candle_core::Error::Msg(format!(
                "tensor {name} has shape {:?}, expected {shape:?}",
                t.dims()
            )));
        }
        Ok(t.clone())
    }

    fn float(&self, name: &str, shape: &[usize], dtype: DType) -> Result<Tensor> {
        self.get(name, shape)?
            .to_dtype(dtype)?
            .to_device(&self.device)
    }

    fn norm(&self, prefix: &str, d: usize, dtype: DType) -> Result<LayerNorm> {
        Ok(LayerNorm::new(
            self.float(&format!("{prefix}.weight"), &[d], dtype)?,
            self.float(&format!("{prefix}.bias"), &[d], dtype)?,
            1e-5,
        ))
    }

    fn linear(
        &self,
        prefix: &str,
        out: usize,
        inputs: usize,
        bias: bool,
        p: Dense,
    ) -> Result<Linear> {
        let weight = self.get(&format!("{prefix}.weight"), &[out, inputs])?;
        let weight = p.matrix(weight, &self.device)?;
        let bias = if bias {
            Some(self.float(&format!("{prefix}.bias"), &[out], p.dtype)?)
        } else {
            None
        };
        Ok(Linear { weight, bias })
    }
}

/// How one part of the network holds its matrices.
#[derive(Debug, Clone, Copy)]
struct Dense {
    dtype: DType,
    quantize: bool,
}

impl Dense {
    fn matrix(self, w: Tensor, device: &Device) -> Result<Matrix> {
        // Quantized matrices are a CPU optimisation; GPUs get floats.
        if self.quantize && device.is_cpu() && w.dim(1)? % GgmlDType::Q8_0.block_size() == 0 {
            let q = QTensor::quantize(&w.to_dtype(DType::F32)?, GgmlDType::Q8_0)?;
            return Ok(Matrix::Quantized(QMatMul::from_qtensor(q)?));
        }
        Ok(Matrix::Float(w.to_dtype(self.dtype)?.to_device(device)?))
    }
}

/// A weight matrix `[out, in]`.
#[derive(Debug, Clone)]
enum Matrix {
    Float(Tensor),
    Quantized(QMatMul),
}

impl Matrix {
    /// `x · Wᵀ` for `x` of shape `[batch, positions, in]`.
    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Float(w) => x.broadcast_matmul(&w.t()?),
            Self::Quantized(q) => q.forward(x),
        }
    }
}

/// A linear layer.
#[derive(Debug, Clone)]
struct Linear {
    weight: Matrix,
    bias: Option<Tensor>,
}

impl Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.weight.apply(x)?;
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

/// Multi-head attention's projections.
#[derive(Debug, Clone)]
struct Attention {
    query: Linear,
    key: Linear,
    value: Linear,
    out: Linear,
    heads: usize,
}

impl Attention {
    fn load(w: &Weights, prefix: &str, d: usize, heads: usize, p: Dense) -> Result<Self> {
        Ok(Self {
            query: w.linear(&format!("{prefix}.q_proj"), d, d, true, p)?,
            key: w.linear(&format!("{prefix}.k_proj"), d, d, false, p)?,
            value: w.linear(&format!("{prefix}.v_proj"), d, d, true, p)?,
            out: w.linear(&format!("{prefix}.out_proj"), d, d, true, p)?,
            heads,
        })
    }

    /// `[1, positions, d]` → `[1, heads, positions, d / heads]`.
    fn split(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        x.reshape((b, t, self.heads, d / self.heads))?
            .transpose(1, 2)?
            .contiguous()
    }

    /// Keys and values of `x`, split into heads.
    fn keys_values(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((
            self.split(&self.key.forward(x)?)?,
            self.split(&self.value.forward(x)?)?,
        ))
    }

    /// Attention of the queries from `x` over `keys`/`values`; `mask` is
    /// added to the scores.
    fn attend(
        &self,
        x: &Tensor,
        keys: &Tensor,
        values: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let q = self.split(&self.query.forward(x)?)?;
        let scale = 1.0 / ((q.dim(D::Minus1)? as f64).sqrt());
        let mut scores = (q.matmul(&keys.t()?)? * scale)?;
        if let Some(mask) = mask {
            scores = scores.broadcast_add(mask)?;
        }
        let weights = softmax_last_dim(&scores)?;
        let mixed = weights.matmul(values)?.transpose(1, 2)?.flatten_from(2)?;
        self.out.forward(&mixed)
    }
}

/// A feed-forward block.
#[derive(Debug, Clone)]
struct Mlp {
    norm: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

impl Mlp {
    fn load(w: &Weights, prefix: &str, d: usize, p: Dense) -> Result<Self> {
        let hidden = w
            .tensors
            .get(&format!("{prefix}.fc1.bias"))
            .map(|b| b.elem_count())
            .unwrap_or(4 * d);
        Ok(Self {
            norm: w.norm(&format!("{prefix}.final_layer_norm"), d, p.dtype)?,
            fc1: w.linear(&format!("{prefix}.fc1"), hidden, d, true, p)?,
            fc2: w.linear(&format!("{prefix}.fc2"), d, hidden, true, p)?,
        })
    }

    /// `x + mlp(x)`.
    fn residual(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.fc1.forward(&self.norm.forward(x)?)?.gelu_erf()?;
        x + self.fc2.forward(&h)?
    }
}

#[derive(Debug, Clone)]
struct EncoderBlock {
    attn_norm: LayerNorm,
    attn: Attention,
    mlp: Mlp,
}

/// The audio encoder.
#[derive(Debug, Clone)]
struct Encoder {
    conv1: (Tensor, Tensor),
    conv2: (Tensor, Tensor),
    positions: Tensor,
    blocks: Vec<EncoderBlock>,
    norm: LayerNorm,
    dtype: DType,
}

impl Encoder {
    fn load(w: &Weights, c: &Config, dtype: DType) -> Result<Self> {
        let d = c.d_model;
        let p = Dense {
            dtype,
            quantize: false,
        };
        let conv = |name: &str, inputs: usize| -> Result<(Tensor, Tensor)> {
            Ok((
                w.float(
                    &format!("model.encoder.{name}.weight"),
                    &[d, inputs, 3],
                    dtype,
                )?,
                w.float(&format!("model.encoder.{name}.bias"), &[d], dtype)?
                    .reshape((1, d, 1))?,
            ))
        };
        let blocks = (0..c.encoder_layers)
            .map(|i| {
                let prefix = format!("model.encoder.layers.{i}");
                Ok(EncoderBlock {
                    attn_norm: w.norm(&format!("{prefix}.self_attn_layer_norm"), d, dtype)?,
                    attn: Attention::load(
                        w,
                        &format!("{prefix}.self_attn"),
                        d,
                        c.encoder_attention_heads,
                        p,
                    )?,
                    mlp: Mlp::load(w, &prefix, d, p)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            conv1: conv("conv1", c.num_mel_bins)?,
            conv2: conv("conv2", d)?,
            positions: w.float(
                "model.encoder.embed_positions.weight",
                &[c.max_source_positions, d],
                dtype,
            )?,
            blocks,
            norm: w.norm("model.encoder.layer_norm", d, dtype)?,
            dtype,
        })
    }

    /// `[1, n_mels, 2·ctx]` log-mel frames → `[1, ctx, d]`.
    fn forward(&self, mel: &Tensor) -> Result<Tensor> {
        let mel = mel.to_dtype(self.dtype)?;
        let x = mel.conv1d(&self.conv1.0, 1, 1, 1, 1)?;
        let x = x.broadcast_add(&self.conv1.1)?.gelu_erf()?;
        let x = x.conv1d(&self.conv2.0, 1, 2, 1, 1)?;
        let x = x.broadcast_add(&self.conv2.1)?.gelu_erf()?;
        let x = x.transpose(1, 2)?;
        let positions = x.dim(1)?;
        let mut x = x.broadcast_add(&self.positions.narrow(0, 0, positions)?)?;
        for block in &self.blocks {
            let h = block.attn_norm.forward(&x)?;
            let (k, v) = block.attn.keys_values(&h)?;
            x = (&x + block.attn.attend(&h, &k, &v, None)?)?;
            x = block.mlp.residual(&x)?;
        }
        self.norm.forward(&x)
    }
}

#[derive(Debug, Clone)]
struct DecoderBlock {
    attn_norm: LayerNorm,
    attn: Attention,
    cross_norm: LayerNorm,
    cross: Attention,
    mlp: Mlp,
}

/// The text decoder.
#[derive(Debug, Clone)]
struct Decoder {
    /// Token embeddings for lookup, `[vocab, d]`.
    embeddings: Tensor,
    /// The output projection: the same embeddings as a matrix.
    logits: Matrix,
    positions: Tensor,
    blocks: Vec<DecoderBlock>,
    norm: LayerNorm,
    dtype: DType,
}

impl Decoder {
    fn load(w: &Weights, c: &Config, p: Dense) -> Result<Self> {
        let d = c.d_model;
        let embeddings = w.get("model.decoder.embed_tokens.weight", &[c.vocab_size, d])?;
        let blocks = (0..c.decoder_layers)
            .map(|i| {
                let prefix = format!("model.decoder.layers.{i}");
                let heads = c.decoder_attention_heads;
                Ok(DecoderBlock {
                    attn_norm: w.norm(&format!("{prefix}.self_attn_layer_norm"), d, p.dtype)?,
                    attn: Attention::load(w, &format!("{prefix}.self_attn"), d, heads, p)?,
                    cross_norm: w.norm(&format!("{prefix}.encoder_attn_layer_norm"), d, p.dtype)?,
                    cross: Attention::load(w, &format!("{prefix}.encoder_attn"), d, heads, p)?,
                    mlp: Mlp::load(w, &prefix, d, p)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            logits: p.matrix(embeddings.clone(), &w.device)?,
            embeddings: embeddings.to_dtype(p.dtype)?.to_device(&w.device)?,
            positions: w.float(
                "model.decoder.embed_positions.weight",
                &[c.max_target_positions, d],
                p.dtype,
            )?,
            blocks,
            norm: w.norm("model.decoder.layer_norm", d, p.dtype)?,
            dtype: p.dtype,
        })
    }
}

/// Whisper, loaded once and shared by every call.
#[derive(Debug, Clone)]
pub struct Net {
    encoder: Encoder,
    decoder: Decoder,
    config: Config,
    device: Device,
}

/// One window's decoding state: the cross-attention keys and values of
/// the encoded audio, and the self-attention keys and values so far.
#[derive(Debug)]
pub struct Session {
    cross: Vec<(Tensor, Tensor)>,
    past: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

impl Session {
    /// Positions decoded so far.
    pub fn len(&self) -> usize {
        self.len
    }
}

impl Net {
    /// Loads the network from a safetensors buffer.
    pub fn load(
        weights: &[u8],
        config: Config,
        precision: Precision,
        device: &Device,
    ) -> Result<Self> {
        let w = Weights {
            tensors: candle_core::safetensors::load_buffer(weights, &Device::Cpu)?,
            device: device.clone(),
        };
        let encoder = Encoder::load(&w, &config, precision.float)?;
        let decoder = Decoder::load(
            &w,
            &config,
            Dense {
                dtype: precision.float,
                quantize: precision.quantize_decoder,
            },
        )?;
        Ok(Self {
            encoder,
            decoder,
            config,
            device: device.clone(),
        })
    }

    /// The model's sizes.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Encodes log-mel frames `[1, n_mels, 2·ctx]` and prepares a decoding
    /// session over them.
    pub fn encode(&self, mel: &Tensor) -> Result<Session> {
        let encoded = self.encoder.forward(&mel.to_device(&self.device)?)?;
        let encoded = encoded.to_dtype(self.decoder.dtype)?;
        let cross = self
            .decoder
            .blocks
            .iter()
            .map(|b| b.cross.keys_values(&encoded))
            .collect::<Result<Vec<_>>>()?;
        Ok(Session {
            past: vec![None; cross.len()],
            cross,
            len: 0,
        })
    }

    /// Feeds `tokens` (the prefix first, then one token at a time) and
    /// returns the logits `[vocab]` (f32) after the last of them.
    pub fn step(&self, session: &mut Session, tokens: &[u32]) -> Result<Tensor> {
        let dec = &self.decoder;
        let n = tokens.len();
        if session.len + n > self.config.max_target_positions {
            return Err(candle_core::Error::Msg("the text context is full".into()));
        }
        let ids = Tensor::new(tokens, &self.device)?;
        let x = dec.embeddings.index_select(&ids, 0)?;
        let x = (x + dec.positions.narrow(0, session.len, n)?)?;
        let mut x = x.unsqueeze(0)?;
        // A causal mask among the new positions (the past is all visible).
        let past = session.len;
        let mask = if n > 1 {
            let m: Vec<f32> = (0..n)
                .flat_map(|i| {
                    (0..past + n).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 })
                })
                .collect();
            Some(Tensor::from_vec(m, (n, past + n), &self.device)?.to_dtype(dec.dtype)?)
        } else {
            None
        };
        for (i, block) in dec.blocks.iter().enumerate() {
            let h = block.attn_norm.forward(&x)?;
            let (k, v) = block.attn.keys_values(&h)?;
            let (k, v) = match session.past[i].take() {
                Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?),
                None => (k, v),
            };
            x = (&x + block.attn.attend(&h, &k, &v, mask.as_ref())?)?;
            session.past[i] = Some((k, v));
            let h = block.cross_norm.forward(&x)?;
            let (ck, cv) = &session.cross[i];
            x = (&x + block.cross.attend(&h, ck, cv, None)?)?;
            x = block.mlp.residual(&x)?;
        }
        session.len += n;
        let last = dec.norm.forward(&x.narrow(1, n - 1, 1)?)?;
        dec.logits.apply(&last)?.flatten_all()?.to_dtype(DType::F32)
    }
}
