//! The model's matrix products. Most go to candle's `QMatMul`, whose CPU
//! kernels use AVX2 for Q4_0, Q8_0 and the k-quants. GGUF files also carry
//! Q4_1, Q5_0 and Q5_1 (SmolLM2's Q4_1 file; k-quant files use Q5_0 where a
//! row is not a multiple of 256, as Qwen2.5 0.5B's 896), for which candle
//! has only a scalar loop, several times slower: those get the AVX2 kernels
//! here, with activations quantized exactly as candle does (Q8_0 / Q8_1,
//! blocks of 32), so the results agree with candle's to rounding.
//!
//! The kernels live in `athena-kernels` (the one crate allowed an unsafe
//! call: into AVX2 code once the CPU is known to have it). Without AVX2
//! everything goes to candle.

use athena_kernels::{Format, Q8};
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Module, Tensor};

/// A weight matrix and how its products are computed.
#[derive(Debug)]
pub enum Linear {
    /// candle's kernels.
    Candle(QMatMul),
    /// Ours (x86-64 with AVX2 only).
    Own(OwnMatMul),
}

impl Linear {
    /// The fastest way to multiply by `weight`.
    pub fn new(weight: QTensor) -> candle_core::Result<Self> {
        match OwnMatMul::new(&weight)? {
            Some(own) => Ok(Self::Own(own)),
            None => Ok(Self::Candle(QMatMul::from_qtensor(weight)?)),
        }
    }

    /// `x` (…, in) times the transposed weight: (…, out).
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::Candle(m) => m.forward(x),
            Self::Own(m) => m.forward(x),
        }
    }
}

fn format(dtype: GgmlDType) -> Option<Format> {
    match dtype {
        GgmlDType::Q4_1 => Some(Format::Q4_1),
        GgmlDType::Q5_0 => Some(Format::Q5_0),
        GgmlDType::Q5_1 => Some(Format::Q5_1),
        _ => None,
    }
}

/// A quantized weight matrix (rows = outputs) multiplied by our kernels.
#[derive(Debug)]
pub struct OwnMatMul {
    format: Format,
    /// The GGML blocks, row after row.
    blocks: Vec<u8>,
    rows: usize,
    cols: usize,
}

/// Output rows per work item.
const ROWS_PER_ITEM: usize = 16;

impl OwnMatMul {
    /// `None` when candle is as fast (another format, another device, or
    /// a CPU without AVX2 in this build).
    fn new(weight: &QTensor) -> candle_core::Result<Option<Self>> {
        let Some(format) = format(weight.dtype()) else {
            return Ok(None);
        };
        if !athena_kernels::available() || !weight.device().is_cpu() {
            return Ok(None);
        }
        let (rows, cols) = weight.shape().dims2()?;
        if !cols.is_multiple_of(32) {
            return Ok(None);
        }
        let blocks = weight.data()?.into_owned();
        if blocks.len() != rows * cols / 32 * format.block_bytes() {
            return Ok(None);
        }
        Ok(Some(Self {
            format,
            blocks,
            rows,
            cols,
        }))
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut dims = x.dims().to_vec();
        let Some(last) = dims.last_mut() else {
            candle_core::bail!("a matrix product needs at least one dimension");
        };
        if *last != self.cols {
            candle_core::bail!("the input has {} columns, the weight {}", last, self.cols);
        }
        *last = self.rows;
        let xs: Vec<f32> = x
            .flatten_all()?
            .to_dtype(candle_core::DType::F32)?
            .to_vec1()?;
        let m = xs.len() / self.cols;
        let acts: Vec<Q8> = xs
            .chunks_exact(32)
            .map(|b| Q8::quantize(b, self.format))
            .collect();
        let per_row = self.cols / 32;
        let row_bytes = per_row * self.format.block_bytes();
        let out: Vec<std::sync::atomic::AtomicU32> =
            (0..m * self.rows).map(|_| Default::default()).collect();
        let items = self.rows.div_ceil(ROWS_PER_ITEM);
        candle_core::utils::barrier_pool().execute_chunked(items, |range| {
            for item in range {
                let first = item * ROWS_PER_ITEM;
                let end = (first + ROWS_PER_ITEM).min(self.rows);
                let row = |j: usize| &self.blocks[j * row_bytes..(j + 1) * row_bytes];
                let store = |i: usize, j: usize, v: f32| {
                    out[i * self.rows + j].store(v.to_bits(), std::sync::atomic::Ordering::Relaxed);
                };
                let mut j = first;
                while j < end {
                    for i in 0..m {
                        let a = &acts[i * per_row..(i + 1) * per_row];
                        if j + 4 <= end {
                            let four = [row(j), row(j + 1), row(j + 2), row(j + 3)];
                            let v = athena_kernels::dot(self.format, four, a);
                            (0..4).for_each(|r| store(i, j + r, v[r]));
                        } else {
                            let [v] = athena_kernels::dot(self.format, [row(j)], a);
                            store(i, j, v);
                        }
                    }
                    j += if j + 4 <= end { 4 } else { 1 };
                }
            }
        });
        let out: Vec<f32> = out
            .into_iter()
            .map(|v| f32::from_bits(v.into_inner()))
            .collect();
        Tensor::from_vec(out, dims, x.device())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use candle_core::{Device, Module, Tensor};

    use super::*;

    /// Our products equal candle's (same activation quantization) for every
    /// format, for one row of activations and for several.
    #[test]
    fn products_agree_with_candle() {
        let device = Device::Cpu;
        let (rows, cols) = (40, 128);
        let w = Tensor::randn(0f32, 1.0, (rows, cols), &device).unwrap();
        for dtype in [GgmlDType::Q4_1, GgmlDType::Q5_0, GgmlDType::Q5_1] {
            let q = QTensor::quantize(&w, dtype).unwrap();
            let ours = match Linear::new(QTensor::quantize(&w, dtype).unwrap()).unwrap() {
                Linear::Own(m) => m,
                Linear::Candle(_) if !athena_kernels::available() => return,
                Linear::Candle(_) => panic!("{dtype:?} went to candle"),
            };
            let theirs = QMatMul::from_qtensor(q).unwrap();
            for m in [1, 7] {
                let x = Tensor::randn(0f32, 1.0, (1, m, cols), &device).unwrap();
                let flat = |t: candle_core::Result<Tensor>| -> Vec<f32> {
                    t.unwrap().flatten_all().unwrap().to_vec1().unwrap()
                };
                let (a, b) = (flat(ours.forward(&x)), flat(theirs.forward(&x)));
                assert_eq!(a.len(), m * rows);
                for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                        "{dtype:?} m={m} [{i}]: {a} vs {b}"
                    );
                }
            }
        }
    }
}
