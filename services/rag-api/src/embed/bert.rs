//! A BERT encoder over packed batches: the tokens of every input in a
//! batch are one matrix of rows (no padding), so each dense layer is a
//! single matrix product over all of them. Only attention, which mixes
//! tokens within an input, is computed per input on a padded view, with
//! padded keys masked out. Mean pooling is one more product (each input's
//! rows averaged), so a batch of 32 short sentences costs about what its
//! tokens cost, not 32 separate passes.
//!
//! (candle's own `BertModel` multiplies a `[batch, seq, hidden]` tensor by
//! a weight broadcast over the batch, which runs as one small product per
//! input, each packing the whole weight matrix again.)
//!
//! Weights are the Hugging Face layout (`embeddings.*`, `encoder.layer.N.*`,
//! with or without a `bert.` prefix).

use athena_kernels::Kernel;
use athena_kernels::linear::Linear;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, D, DType, Device, Layout, Module, Result, Shape, Tensor,
};
use candle_nn::{Embedding, LayerNorm, VarBuilder};
use rayon::prelude::*;
use serde::Deserialize;

/// The fields of a BERT `config.json` the encoder reads.
#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_act")]
    pub hidden_act: String,
}

fn default_type_vocab() -> usize {
    2
}

fn default_eps() -> f64 {
    1e-12
}

fn default_act() -> String {
    "gelu".into()
}

/// How the dense layers' products are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats, as the model was trained: the vectors match
    /// sentence-transformers' to rounding.
    F32,
    /// Weights in 8-bit blocks of 32 (GGML's Q8_0, one f16 scale each) and
    /// activations quantized the same way per product, multiplied with the
    /// AVX-512 VNNI / AVX2 integer kernels of `athena-kernels`. A quarter of
    /// the weight memory (all-MiniLM-L6-v2's 6 layers: 11 MB, not 42 MB, so
    /// they stay in cache) and fewer cycles per product; vectors within a
    /// cosine of 0.998 of the f32 ones (0.9995 typically). On CPUs without AVX2, or on a GPU,
    /// the products stay f32.
    #[default]
    Q8,
}

/// A dense layer. In f32 the weight is kept transposed (`[inputs,
/// outputs]`, contiguous): gemm then reads it without repacking the
/// transpose on every call, which for a single short input cost more than
/// the product. What follows the product (bias, GELU or the residual) is
/// one pass of ours on the CPU ([`Epilogue`]).
#[derive(Debug)]
struct Dense {
    product: Product,
    bias: Tensor,
    bias_cpu: Vec<f32>,
}

#[derive(Debug)]
enum Product {
    /// `x · weight_t` by candle (gemm).
    F32 { weight_t: Tensor },
    /// By our 8-bit kernels.
    Q8(Linear),
}

impl Dense {
    fn new(weight: &Tensor, bias: Tensor, precision: Precision) -> Result<Self> {
        let quantized = precision == Precision::Q8
            && weight.device().is_cpu()
            && Kernel::best().is_some()
            && weight.dim(1)?.is_multiple_of(32);
        let product = if quantized {
            let q = QTensor::quantize(&weight.to_dtype(DType::F32)?, GgmlDType::Q8_0)?;
            Product::Q8(Linear::new(q)?)
        } else {
            Product::F32 {
                weight_t: weight.t()?.contiguous()?,
            }
        };
        Ok(Self {
            product,
            bias_cpu: bias.to_dtype(DType::F32)?.to_vec1()?,
            bias,
        })
    }

    fn on_cpu(x: &Tensor) -> bool {
        x.device().is_cpu() && x.dtype() == DType::F32
    }

    fn product(&self, x: &Tensor) -> Result<Tensor> {
        match &self.product {
            Product::F32 { weight_t } => x.matmul(weight_t),
            Product::Q8(linear) => linear.forward(x),
        }
    }

    /// `x·W + b`, then GELU (the erf form) when `gelu`.
    fn forward(&self, x: &Tensor, gelu: bool) -> Result<Tensor> {
        let y = self.product(x)?;
        if Self::on_cpu(&y) {
            let op = Epilogue {
                bias: &self.bias_cpu,
                gelu,
            };
            return y.apply_op1_no_bwd(&op);
        }
        let y = y.broadcast_add(&self.bias)?;
        if gelu { y.gelu_erf() } else { Ok(y) }
    }

    /// `x·W + b + residual`.
    fn forward_residual(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        let y = self.product(x)?;
        if Self::on_cpu(&y) && Self::on_cpu(residual) {
            let op = Epilogue {
                bias: &self.bias_cpu,
                gelu: false,
            };
            return y.apply_op2_no_bwd(&residual.contiguous()?, &op);
        }
        y.broadcast_add(&self.bias)?.add(residual)
    }
}

#[derive(Debug)]
struct Layer {
    /// Query, key and value in one product: `[3·hidden, hidden]`.
    qkv: Dense,
    attention_out: Dense,
    attention_norm: LayerNorm,
    intermediate: Dense,
    output: Dense,
    output_norm: LayerNorm,
}

/// The encoder.
#[derive(Debug)]
pub struct Bert {
    words: Embedding,
    positions: Embedding,
    /// Token type 0's embedding (single-segment inputs only).
    segment: Tensor,
    norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    hidden: usize,
    device: Device,
}

/// A dense layer's weight (`[outputs, inputs]`) and bias.
fn weights(vb: &VarBuilder<'_>, inputs: usize, outputs: usize) -> Result<(Tensor, Tensor)> {
    Ok((
        vb.get((outputs, inputs), "weight")?,
        vb.get(outputs, "bias")?,
    ))
}

fn dense(vb: VarBuilder<'_>, inputs: usize, outputs: usize, precision: Precision) -> Result<Dense> {
    let (weight, bias) = weights(&vb, inputs, outputs)?;
    Dense::new(&weight, bias, precision)
}

fn layer_norm(vb: VarBuilder<'_>, size: usize, eps: f64) -> Result<LayerNorm> {
    let weight = vb.get(size, "weight")?;
    let bias = vb.get(size, "bias")?;
    Ok(LayerNorm::new(weight, bias, eps))
}

impl Bert {
    /// Loads the weights from `vb` (a `bert.` prefix is found by itself),
    /// the dense layers at `precision`.
    pub fn load(vb: VarBuilder<'_>, config: &BertConfig, precision: Precision) -> Result<Self> {
        if !matches!(config.hidden_act.as_str(), "gelu" | "gelu_python") {
            candle_core::bail!(
                "activation {:?} is not supported (gelu is)",
                config.hidden_act
            );
        }
        if config.num_attention_heads == 0
            || !config
                .hidden_size
                .is_multiple_of(config.num_attention_heads)
        {
            candle_core::bail!("hidden_size is not a multiple of num_attention_heads");
        }
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
            vb.pp("bert")
        } else {
            vb
        };
        let (h, eps) = (config.hidden_size, config.layer_norm_eps);
        let e = vb.pp("embeddings");
        let words = Embedding::new(e.get((config.vocab_size, h), "word_embeddings.weight")?, h);
        let positions = Embedding::new(
            e.get(
                (config.max_position_embeddings, h),
                "position_embeddings.weight",
            )?,
            h,
        );
        let segment = e
            .get((config.type_vocab_size, h), "token_type_embeddings.weight")?
            .get(0)?;
        let norm = layer_norm(e.pp("LayerNorm"), h, eps)?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                let l = vb.pp(format!("encoder.layer.{i}"));
                let a = l.pp("attention");
                let (ws, bs): (Vec<Tensor>, Vec<Tensor>) = ["query", "key", "value"]
                    .iter()
                    .map(|name| weights(&a.pp("self").pp(*name), h, h))
                    .collect::<Result<Vec<_>>>()?
                    .into_iter()
                    .unzip();
                Ok(Layer {
                    qkv: Dense::new(&Tensor::cat(&ws, 0)?, Tensor::cat(&bs, 0)?, precision)?,
                    attention_out: dense(a.pp("output.dense"), h, h, precision)?,
                    attention_norm: layer_norm(a.pp("output.LayerNorm"), h, eps)?,
                    intermediate: dense(
                        l.pp("intermediate.dense"),
                        h,
                        config.intermediate_size,
                        precision,
                    )?,
                    output: dense(l.pp("output.dense"), config.intermediate_size, h, precision)?,
                    output_norm: layer_norm(l.pp("output.LayerNorm"), h, eps)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            words,
            positions,
            segment,
            norm,
            layers,
            heads: config.num_attention_heads,
            hidden: h,
            device: vb.device().clone(),
        })
    }

    /// Mean-pooled hidden states (not yet unit length), one row per input.
    pub fn pooled(&self, inputs: &[&[u32]]) -> Result<Tensor> {
        let lens: Vec<usize> = inputs.iter().map(|i| i.len()).collect();
        let (n, longest, total) = (
            inputs.len(),
            lens.iter().copied().max().unwrap_or(0),
            lens.iter().sum::<usize>(),
        );
        if n == 0 || longest == 0 {
            candle_core::bail!("nothing to encode");
        }
        let ids: Vec<u32> = inputs.iter().flat_map(|i| i.iter().copied()).collect();
        let positions: Vec<u32> = lens.iter().flat_map(|&l| 0..l as u32).collect();
        let dev = &self.device;
        let ids = Tensor::from_vec(ids, total, dev)?;
        let positions = Tensor::from_vec(positions, total, dev)?;

        let x = self
            .words
            .forward(&ids)?
            .add(&self.positions.forward(&positions)?)?
            .broadcast_add(&self.segment)?;
        let mut x = self.norm.forward(&x)?;
        let (h, heads) = (self.hidden, self.heads);
        let d = h / heads;
        let scale = 1.0 / (d as f64).sqrt();
        // Off the CPU, attention runs on a padded view, built once here.
        let padded = if Dense::on_cpu(&x) {
            None
        } else {
            Some(PaddedView::new(&lens, dev)?)
        };
        for layer in &self.layers {
            let qkv = layer.qkv.forward(&x, false)?;
            let context = match &padded {
                None => qkv.apply_op1_no_bwd(&PackedAttention {
                    lens: &lens,
                    heads,
                    scale: scale as f32,
                })?,
                Some(view) => self.padded_attention(&qkv, view, scale)?,
            };
            let attended = layer
                .attention_norm
                .forward(&layer.attention_out.forward_residual(&context, &x)?)?;
            let inner = layer.intermediate.forward(&attended, true)?;
            x = layer
                .output_norm
                .forward(&layer.output.forward_residual(&inner, &attended)?)?;
        }
        // Each input's mean: [n, total] averaging rows times [total, h].
        let mut average = vec![0f32; n * total];
        let mut start = 0;
        for (b, &len) in lens.iter().enumerate() {
            average[b * total + start..b * total + start + len].fill(1.0 / len as f32);
            start += len;
        }
        Tensor::from_vec(average, (n, total), dev)?.matmul(&x)
    }

    /// Attention on a padded view, by candle's ops (GPUs): packed queries,
    /// keys and values `[total, 3h]` to packed context `[total, h]`.
    fn padded_attention(&self, qkv: &Tensor, view: &PaddedView, scale: f64) -> Result<Tensor> {
        let (h, heads) = (self.hidden, self.heads);
        let d = h / heads;
        let (n, longest) = (view.inputs, view.longest);
        // [total, 3h] → padded [3, n, heads, longest, d].
        let qkv = qkv
            .index_select(&view.to_padded, 0)?
            .reshape((n, longest, 3, heads, d))?
            .permute((2, 0, 3, 1, 4))?
            .contiguous()?;
        let (q, k, v) = (qkv.get(0)?, qkv.get(1)?, qkv.get(2)?);
        let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(&view.mask)?;
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        weights
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((n * longest, h))?
            .index_select(&view.to_packed, 0)
    }
}

/// A batch's packed rows laid out padded, for attention by candle's ops.
#[derive(Debug)]
struct PaddedView {
    inputs: usize,
    longest: usize,
    /// Packed row of each padded place (padding points at row 0).
    to_padded: Tensor,
    /// Padded place of each packed row.
    to_packed: Tensor,
    /// 0 for real keys, the lowest float for padding: `[n, 1, 1, longest]`.
    mask: Tensor,
}

impl PaddedView {
    fn new(lens: &[usize], dev: &Device) -> Result<Self> {
        let (n, longest) = (lens.len(), lens.iter().copied().max().unwrap_or(0));
        let total = lens.iter().sum::<usize>();
        let mut to_padded = Vec::with_capacity(n * longest);
        let mut to_packed = Vec::with_capacity(total);
        let mut mask = vec![f32::MIN; n * longest];
        let mut start = 0u32;
        for (b, &len) in lens.iter().enumerate() {
            for s in 0..longest {
                let real = s < len;
                to_padded.push(if real { start + s as u32 } else { 0 });
                if real {
                    mask[b * longest + s] = 0.0;
                    to_packed.push((b * longest + s) as u32);
                }
            }
            start += len as u32;
        }
        Ok(Self {
            inputs: n,
            longest,
            to_padded: Tensor::from_vec(to_padded, n * longest, dev)?,
            to_packed: Tensor::from_vec(to_packed, total, dev)?,
            mask: Tensor::from_vec(mask, (n, 1, 1, longest), dev)?,
        })
    }
}

/// Self-attention over packed rows on the CPU, with no padding and no
/// copies: queries, keys and values are read where the qkv product left
/// them (`[total, 3h]`, each input's rows in turn) and the context is
/// written packed (`[total, h]`). Inputs run in parallel; each input's heads
/// one after the other (an input is at most 256 tokens).
#[derive(Debug, Clone, Copy)]
struct PackedAttention<'a> {
    lens: &'a [usize],
    heads: usize,
    scale: f32,
}

/// `a·b`, eight lanes at a time (so that it compiles to SIMD).
fn dot8(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a8, a_rest) = a.as_chunks::<8>();
    let (b8, b_rest) = b.as_chunks::<8>();
    for (x, y) in a8.iter().zip(b8) {
        for l in 0..8 {
            lanes[l] += x[l] * y[l];
        }
    }
    let tail: f32 = a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + tail
}

impl PackedAttention<'_> {
    /// One input's context (`out`: its `len` rows of `h`) from its rows of
    /// `qkv`.
    fn input(&self, qkv: &[f32], out: &mut [f32], h: usize) {
        let len = out.len() / h;
        let d = h / self.heads;
        let row = |i: usize| &qkv[i * 3 * h..(i + 1) * 3 * h];
        let mut weights = vec![0f32; len];
        for head in 0..self.heads {
            let (q_at, k_at, v_at) = (head * d, h + head * d, 2 * h + head * d);
            for i in 0..len {
                let q = &row(i)[q_at..q_at + d];
                let mut max = f32::MIN;
                for (j, w) in weights.iter_mut().enumerate() {
                    *w = dot8(q, &row(j)[k_at..k_at + d]) * self.scale;
                    max = max.max(*w);
                }
                let mut sum = 0.0;
                for w in &mut weights {
                    *w = (*w - max).exp();
                    sum += *w;
                }
                let context = &mut out[i * h + head * d..i * h + head * d + d];
                context.fill(0.0);
                for (j, w) in weights.iter().enumerate() {
                    let w = w / sum;
                    for (c, v) in context.iter_mut().zip(&row(j)[v_at..v_at + d]) {
                        *c += w * v;
                    }
                }
            }
        }
    }
}

impl CustomOp1 for PackedAttention<'_> {
    fn name(&self) -> &'static str {
        "packed-attention"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let qkv = floats(storage, layout)?;
        let (total, three_h) = layout.shape().dims2()?;
        let h = three_h / 3;
        if three_h % 3 != 0 || h % self.heads != 0 || self.lens.iter().sum::<usize>() != total {
            candle_core::bail!("attention: {:?} for inputs {:?}", layout.shape(), self.lens);
        }
        let mut out = vec![0f32; total * h];
        // Each input's rows, in and out.
        let mut parts = Vec::with_capacity(self.lens.len());
        let (mut rest, mut start) = (out.as_mut_slice(), 0);
        for &len in self.lens {
            let (mine, after) = rest.split_at_mut(len * h);
            parts.push((&qkv[start * three_h..(start + len) * three_h], mine));
            rest = after;
            start += len;
        }
        if parts.len() == 1 {
            parts
                .into_iter()
                .for_each(|(qkv, out)| self.input(qkv, out, h));
        } else {
            parts
                .into_par_iter()
                .for_each(|(qkv, out)| self.input(qkv, out, h));
        }
        Ok((CpuStorage::F32(out), Shape::from((total, h))))
    }
}

/// erf by Abramowitz and Stegun 7.1.28: `1 − (1 + a₁x + … + a₆x⁶)^−16` for
/// x ≥ 0, odd-extended; absolute error below 3·10⁻⁷, no branches and no
/// `exp`, so the loop compiles to SIMD.
const ERF: [f32; 6] = [
    0.070_523_08,
    0.042_282_01,
    0.009_270_527,
    0.000_152_014_3,
    0.000_276_567_2,
    0.000_043_063_8,
];

/// GELU, `0.5·x·(1 + erf(x/√2))` (the exact form BERT was trained with),
/// of each value in place. candle's runs a scalar `erf` in double precision
/// on one thread, which cost as much as the matrix products around it.
pub fn gelu_in_place(xs: &mut [f32]) {
    for v in xs {
        let x = *v;
        let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
        let p = 1.0
            + z * (ERF[0] + z * (ERF[1] + z * (ERF[2] + z * (ERF[3] + z * (ERF[4] + z * ERF[5])))));
        let p2 = p * p;
        let p4 = p2 * p2;
        let p8 = p4 * p4;
        let erf = (1.0 - 1.0 / (p8 * p8)).copysign(x);
        *v = 0.5 * x * (1.0 + erf);
    }
}

/// What follows a dense layer's product, in one pass over its rows: the
/// bias, then GELU, or the residual (as the second operand). candle's
/// element-wise ops each make a pass of their own and synchronise threads
/// for it, which cost more than the additions.
#[derive(Debug, Clone, Copy)]
pub struct Epilogue<'a> {
    pub bias: &'a [f32],
    pub gelu: bool,
}

/// Rows per task: small products stay on one thread.
const EPILOGUE_FLOATS_PER_TASK: usize = 1 << 15;

impl Epilogue<'_> {
    fn run(&self, out: &mut [f32], residual: Option<&[f32]>) {
        let cols = self.bias.len();
        let rows_per_task = (EPILOGUE_FLOATS_PER_TASK / cols.max(1)).max(1);
        let finish = |(t, chunk): (usize, &mut [f32])| {
            for (r, row) in chunk.chunks_mut(cols).enumerate() {
                for (v, b) in row.iter_mut().zip(self.bias) {
                    *v += b;
                }
                if let Some(res) = residual {
                    let at = (t * rows_per_task + r) * cols;
                    for (v, x) in row.iter_mut().zip(&res[at..at + cols]) {
                        *v += x;
                    }
                }
                if self.gelu {
                    gelu_in_place(row);
                }
            }
        };
        if out.len() <= EPILOGUE_FLOATS_PER_TASK {
            finish((0, out));
        } else {
            out.par_chunks_mut(rows_per_task * cols)
                .enumerate()
                .for_each(finish);
        }
    }
}

/// The f32 values of a contiguous CPU tensor.
fn floats<'a>(storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        candle_core::bail!("epilogue: f32 only");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("epilogue: contiguous input only");
    };
    Ok(&data[start..end])
}

fn check_cols(layout: &Layout, cols: usize) -> Result<()> {
    if layout.shape().dims().last() != Some(&cols) {
        candle_core::bail!("epilogue: {:?} columns, not {cols}", layout.shape());
    }
    Ok(())
}

impl CustomOp1 for Epilogue<'_> {
    fn name(&self) -> &'static str {
        "dense-epilogue"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        check_cols(layout, self.bias.len())?;
        let mut out = floats(storage, layout)?.to_vec();
        self.run(&mut out, None);
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

impl CustomOp2 for Epilogue<'_> {
    fn name(&self) -> &'static str {
        "dense-epilogue-residual"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        check_cols(l1, self.bias.len())?;
        if l1.shape() != l2.shape() {
            candle_core::bail!("epilogue: residual {:?} for {:?}", l2.shape(), l1.shape());
        }
        let mut out = floats(s1, l1)?.to_vec();
        self.run(&mut out, Some(floats(s2, l2)?));
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// Unit length along the last dimension.
pub fn normalize(x: &Tensor) -> Result<Tensor> {
    let norms = x
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12, f64::MAX)?;
    x.broadcast_div(&norms)?.to_dtype(DType::F32)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn gelu_matches_the_erf_form() {
        let xs: Vec<f32> = (-2000..=2000).map(|i| i as f32 * 0.005).collect();
        let want = Tensor::new(xs.as_slice(), &Device::Cpu)
            .unwrap()
            .gelu_erf()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let mut got = xs.clone();
        gelu_in_place(&mut got);
        for ((x, g), w) in xs.iter().zip(&got).zip(&want) {
            assert!((g - w).abs() < 1e-6, "gelu({x}) = {g}, not {w}");
        }
        let mut extremes = [f32::MAX, -f32::MAX, 1e4, -1e4, 0.0];
        gelu_in_place(&mut extremes);
        assert_eq!(extremes[2], 1e4);
        assert_eq!(extremes[3], 0.0);
        assert_eq!(extremes[4], 0.0);
        assert!(extremes.iter().all(|v| v.is_finite()));
    }
}
