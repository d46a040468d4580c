//! Matrix products of candle tensors by quantized weights (feature
//! `candle`), for the LLM's GGUF weights and the embedder's Q8_0 dense
//! layers. Most formats go to candle's `QMatMul`, whose CPU kernels are
//! fast for Q4_0 and the k-quants (with AVX-512 VNNI when rows are a
//! multiple of 256). Q4_1, Q5_0, Q5_1 and Q8_0, which candle multiplies
//! slowly (SmolLM2's Q4_1 file; k-quant files use Q5_0 where a row is not
//! a multiple of 256, as Qwen2.5 0.5B's 896; the output matrix of small
//! models is Q8_0 with rows of 576–896), go to this crate's kernels, with
//! activations quantized exactly as candle does, so the results agree with
//! candle's to rounding.
//!
//! Products of one input by several matrices (queries, keys and values;
//! gate and up) are computed together: the input is quantized once and
//! all rows are spread over the threads in one pass.

use std::sync::Arc;
use std::sync::atomic::AtomicU32;

use crate::{Format, Kernel, Matrix, Q8};
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Module, Tensor};

/// A weight matrix and how its products are computed.
#[derive(Debug)]
pub enum Linear {
    /// candle's kernels.
    Candle(QMatMul),
    /// Ours (x86-64 with AVX2 or AVX-512 VNNI).
    Own(Matrix),
}

impl Linear {
    /// The fastest way this CPU multiplies by `weight`.
    pub fn new(weight: QTensor) -> candle_core::Result<Self> {
        Self::shared(Arc::new(weight))
    }

    /// The same for a weight also used elsewhere (a tied embedding table).
    pub fn shared(weight: Arc<QTensor>) -> candle_core::Result<Self> {
        Self::with_kernel(weight, Kernel::best())
    }

    /// `weight` multiplied with `kernel` where it has one for the format,
    /// else by candle.
    pub fn with_kernel(weight: Arc<QTensor>, kernel: Option<Kernel>) -> candle_core::Result<Self> {
        if let (Some(format), Some(kernel), true) =
            (format(weight.dtype()), kernel, weight.device().is_cpu())
        {
            let (rows, cols) = weight.shape().dims2()?;
            if let Some(m) = Matrix::new(format, &weight.data()?, rows, cols, kernel) {
                return Ok(Self::Own(m));
            }
        }
        Ok(Self::Candle(QMatMul::from_arc(weight)?))
    }

    /// The matrix, when our kernels multiply by it.
    pub fn matrix(&self) -> Option<&Matrix> {
        match self {
            Self::Own(m) => Some(m),
            Self::Candle(_) => None,
        }
    }

    /// `x` (…, in) times the transposed weight: (…, out).
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::Candle(m) => m.forward(x),
            Self::Own(_) => {
                let [y] = Self::forward_all([self], x)?;
                Ok(y)
            }
        }
    }

    /// `x` times each of `matrices` (all with its columns): with our
    /// kernels, one quantization of `x` and one pass over the threads.
    pub fn forward_all<const N: usize>(
        matrices: [&Self; N],
        x: &Tensor,
    ) -> candle_core::Result<[Tensor; N]> {
        let own: Vec<&Matrix> = matrices
            .iter()
            .filter_map(|m| match m {
                Self::Own(m) => Some(m),
                Self::Candle(_) => None,
            })
            .collect();
        if own.len() < N {
            let outs = matrices
                .iter()
                .map(|m| m.forward(x))
                .collect::<candle_core::Result<Vec<_>>>()?;
            return outs
                .try_into()
                .map_err(|_| candle_core::Error::Msg("product count".into()));
        }
        let mut dims = x.dims().to_vec();
        let Some(&cols) = dims.last() else {
            candle_core::bail!("a matrix product needs at least one dimension");
        };
        if let Some(m) = own.iter().find(|m| m.cols() != cols) {
            candle_core::bail!("the input has {cols} columns, the weight {}", m.cols());
        }
        let xs: Vec<f32> = x
            .flatten_all()?
            .to_dtype(candle_core::DType::F32)?
            .to_vec1()?;
        let rows = xs.len() / cols;
        let acts = quantize(&xs, cols);
        let outs: Vec<Vec<AtomicU32>> = own
            .iter()
            .map(|m| (0..rows * m.rows()).map(|_| AtomicU32::new(0)).collect())
            .collect();
        // The units of all matrices in a row: a range of them may span
        // several matrices.
        let ends: Vec<usize> = own
            .iter()
            .scan(0, |end, m| {
                *end += m.units();
                Some(*end)
            })
            .collect();
        let total = ends.last().copied().unwrap_or(0);
        candle_core::utils::barrier_pool().execute_chunked(total, |range| {
            let mut start = 0;
            for ((m, out), &end) in own.iter().zip(&outs).zip(&ends) {
                let (first, last) = (range.start.max(start), range.end.min(end));
                if first < last {
                    m.multiply(&acts, rows, first - start..last - start, out);
                }
                start = end;
            }
        });
        let mut results = Vec::with_capacity(N);
        for (m, out) in own.iter().zip(outs) {
            let values: Vec<f32> = out
                .into_iter()
                .map(|v| f32::from_bits(v.into_inner()))
                .collect();
            if let Some(last) = dims.last_mut() {
                *last = m.rows();
            }
            results.push(Tensor::from_vec(values, dims.clone(), x.device())?);
        }
        results
            .try_into()
            .map_err(|_| candle_core::Error::Msg("product count".into()))
    }
}

/// Activations quantized below this many values stay on one thread.
const PARALLEL_QUANTIZE: usize = 1 << 15;

/// `xs` (rows of `cols`) quantized row by row; the rows of a large input
/// (a prompt, an embedding batch) are spread over the threads.
fn quantize(xs: &[f32], cols: usize) -> Vec<Q8> {
    if xs.len() < PARALLEL_QUANTIZE || cols == 0 {
        return Q8::quantize_row(xs);
    }
    use rayon::prelude::*;
    let per_row = cols / 32;
    let mut acts = vec![Q8::quantize(&[0.0; 32]); xs.len() / cols * per_row];
    acts.par_chunks_mut(per_row * 16)
        .zip(xs.par_chunks(cols * 16))
        .for_each(|(acts, xs)| {
            for (acts, row) in acts.chunks_mut(per_row).zip(xs.chunks(cols)) {
                for (a, block) in acts.iter_mut().zip(row.as_chunks::<32>().0) {
                    *a = Q8::quantize(block);
                }
            }
        });
    acts
}

fn format(dtype: GgmlDType) -> Option<Format> {
    match dtype {
        GgmlDType::Q4_1 => Some(Format::Q4_1),
        GgmlDType::Q5_0 => Some(Format::Q5_0),
        GgmlDType::Q5_1 => Some(Format::Q5_1),
        GgmlDType::Q8_0 => Some(Format::Q8_0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use candle_core::{Device, Module, Tensor};

    use super::*;

    /// Our products equal candle's (same activation quantization) for
    /// every format and kernel, for one row of activations and for
    /// several, alone and computed together.
    #[test]
    fn products_agree_with_candle() {
        let device = Device::Cpu;
        let (rows, cols) = (40, 128);
        let w = Tensor::randn(0f32, 1.0, (rows, cols), &device).unwrap();
        let w2 = Tensor::randn(0f32, 1.0, (24, cols), &device).unwrap();
        for kernel in [Kernel::Avx2, Kernel::Avx512Vnni] {
            if !kernel.runs_here() {
                continue;
            }
            for dtype in [
                GgmlDType::Q4_1,
                GgmlDType::Q5_0,
                GgmlDType::Q5_1,
                GgmlDType::Q8_0,
            ] {
                let q = |w: &Tensor| QTensor::quantize(w, dtype).unwrap();
                let own = |w: &Tensor| Linear::with_kernel(Arc::new(q(w)), Some(kernel)).unwrap();
                let (ours, ours2) = (own(&w), own(&w2));
                assert!(matches!(ours, Linear::Own(_)), "{dtype:?} went to candle");
                let theirs = QMatMul::from_qtensor(q(&w)).unwrap();
                let theirs2 = QMatMul::from_qtensor(q(&w2)).unwrap();
                // 300 rows: quantized on several threads.
                for m in [1, 7, 300] {
                    let x = Tensor::randn(0f32, 1.0, (1, m, cols), &device).unwrap();
                    let flat =
                        |t: &Tensor| -> Vec<f32> { t.flatten_all().unwrap().to_vec1().unwrap() };
                    let [a, a2] = Linear::forward_all([&ours, &ours2], &x).unwrap();
                    let pairs = [
                        (
                            flat(&ours.forward(&x).unwrap()),
                            flat(&theirs.forward(&x).unwrap()),
                        ),
                        (flat(&a), flat(&theirs.forward(&x).unwrap())),
                        (flat(&a2), flat(&theirs2.forward(&x).unwrap())),
                    ];
                    assert_eq!(a.dims(), &[1, m, rows]);
                    assert_eq!(a2.dims(), &[1, m, 24]);
                    for (ours, theirs) in pairs {
                        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                            assert!(
                                (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                                "{kernel:?} {dtype:?} m={m} [{i}]: {a} vs {b}"
                            );
                        }
                    }
                }
            }
        }
    }
}
