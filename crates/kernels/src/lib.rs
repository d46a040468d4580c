//! Products of GGML quantized weight matrices with 8-bit activations, for
//! the block formats small GGUF models carry and candle runs slowly: Q4_1
//! (SmolLM2's file), Q5_0 and Q5_1 (what k-quant files use where a row is
//! not a multiple of 256, e.g. Qwen2.5 0.5B's 896), and Q8_0 (the output
//! matrix of most small models, whose rows candle only runs through its
//! fast path when they are a multiple of 256).
//!
//! Two kernels, chosen once per CPU:
//! - **AVX-512 VNNI** ([`Kernel::Avx512Vnni`]): the matrix is repacked at
//!   load into tiles of 16 rows, interleaved so that one `vpdpbusd` adds 4
//!   products to each of the 16 rows' sums, with no horizontal sums and the
//!   scales read as vectors (the layout candle's and llama.cpp's repacked
//!   kernels use). Several activation rows share each weight load, which is
//!   what makes prompt processing fast.
//! - **AVX2** ([`Kernel::Avx2`]): the GGML blocks as they are, four rows at
//!   a time sharing the activations.
//!
//! Activations are quantized as candle quantizes them (blocks of 32, scale
//! = max |x| / 127 rounded to f16, Q8_1's sum also rounded to f16), so a
//! product here equals candle's up to the order of float additions.
//!
//! Safety: the kernels are `#[target_feature]` functions, whose intrinsics
//! are safe to use inside them; bytes are read into registers with
//! `bytemuck`. The one unsafe operation is calling them, done in
//! [`Matrix::multiply`] only for a kernel the CPU was found to run.

use std::ops::Range;
use std::sync::atomic::{AtomicU32, Ordering};

use half::f16;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
mod tiles;

#[cfg(feature = "candle")]
pub mod linear;

/// A block format with kernels here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// 32 × 4 bits, scale and minimum.
    Q4_1,
    /// 32 × 5 bits (offset 16), scale.
    Q5_0,
    /// 32 × 5 bits, scale and minimum.
    Q5_1,
    /// 32 × 8 bits, scale.
    Q8_0,
}

impl Format {
    /// Bytes per block of 32 weights.
    pub fn block_bytes(self) -> usize {
        match self {
            Self::Q4_1 => 20,
            Self::Q5_0 => 22,
            Self::Q5_1 => 24,
            Self::Q8_0 => 34,
        }
    }

    /// Whether blocks carry a minimum (multiplied by the activations' sum).
    fn with_min(self) -> bool {
        matches!(self, Self::Q4_1 | Self::Q5_1)
    }
}

/// 32 activations quantized to 8 bits: scale `d`, `s` = d × Σq (both
/// f16-rounded, as candle's Q8_0 and Q8_1 blocks store them) and the exact
/// integer sum.
#[derive(Debug, Clone, Copy)]
pub struct Q8 {
    d: f32,
    s: f32,
    sum: i32,
    q: [i8; 32],
}

impl Q8 {
    /// 32 activations.
    pub fn quantize(xs: &[f32; 32]) -> Self {
        let amax = xs.iter().fold(0f32, |a, x| a.max(x.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let d16 = f16::from_f32(d);
        let mut q = [0i8; 32];
        let mut sum = 0i32;
        for (q, &x) in q.iter_mut().zip(xs) {
            *q = (x * id).round() as i8;
            sum += i32::from(*q);
        }
        Self {
            d: d16.to_f32(),
            s: (f16::from_f32(sum as f32) * d16).to_f32(),
            sum,
            q,
        }
    }

    /// A row of activations, block by block (a last partial block is
    /// left out: rows are a multiple of 32 long).
    pub fn quantize_row(xs: &[f32]) -> Vec<Self> {
        xs.as_chunks::<32>().0.iter().map(Self::quantize).collect()
    }
}

/// How products are computed on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// GGML blocks as stored, 4 rows at a time (AVX2 and FMA).
    Avx2,
    /// Tiles of 16 rows (AVX-512 F, BW and VNNI).
    Avx512Vnni,
}

impl Kernel {
    /// The fastest kernel this CPU runs, if any.
    pub fn best() -> Option<Self> {
        static BEST: std::sync::OnceLock<Option<Kernel>> = std::sync::OnceLock::new();
        *BEST.get_or_init(|| {
            [Self::Avx512Vnni, Self::Avx2]
                .into_iter()
                .find(|k| k.runs_here())
        })
    }

    /// Whether this CPU has what the kernel needs.
    pub fn runs_here(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            match self {
                Self::Avx2 => has!("avx2") && has!("fma"),
                Self::Avx512Vnni => {
                    has!("avx512f") && has!("avx512bw") && has!("avx512vnni") && has!("f16c")
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = self;
            false
        }
    }

    /// Rows of the matrix one unit of work covers.
    fn rows_per_unit(self) -> usize {
        match self {
            Self::Avx2 => 4,
            Self::Avx512Vnni => tiles::ROWS,
        }
    }
}

/// A weight matrix (rows = outputs, in blocks of 32 columns) laid out for a
/// kernel.
#[derive(Debug)]
pub struct Matrix {
    format: Format,
    kernel: Kernel,
    rows: usize,
    cols: usize,
    /// GGML blocks row after row (AVX2), or tiles (AVX-512).
    bytes: Vec<u8>,
}

impl Matrix {
    /// `rows` × `cols` weights as GGML blocks of `format`, laid out for
    /// `kernel`. `None` when the CPU cannot run it, `cols` is not a
    /// multiple of 32 or `ggml` is not the size it should be.
    pub fn new(
        format: Format,
        ggml: &[u8],
        rows: usize,
        cols: usize,
        kernel: Kernel,
    ) -> Option<Self> {
        if !kernel.runs_here()
            || cols == 0
            || !cols.is_multiple_of(32)
            || ggml.len() != rows * cols / 32 * format.block_bytes()
        {
            return None;
        }
        let bytes = match kernel {
            Kernel::Avx2 => ggml.to_vec(),
            Kernel::Avx512Vnni => tiles::pack(format, ggml, rows, cols),
        };
        Some(Self {
            format,
            kernel,
            rows,
            cols,
            bytes,
        })
    }

    /// Output rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Input columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The kernel it is laid out for.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Independent units of work, for spreading a product over threads.
    pub fn units(&self) -> usize {
        self.rows.div_ceil(self.kernel.rows_per_unit())
    }

    /// Row `r` of the matrix as floats (`out`: [`Matrix::cols`] long), so
    /// a tied embedding table need not be kept twice.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) {
        assert!(r < self.rows && out.len() == self.cols, "no such row");
        let per_row = self.cols / 32;
        let offset = Block::offset(self.format) as f32;
        for (b, out) in out.chunks_exact_mut(32).enumerate() {
            let block = match self.kernel {
                Kernel::Avx2 => {
                    let size = self.format.block_bytes();
                    let at = (r * per_row + b) * size;
                    Block::read(self.format, &self.bytes[at..at + size])
                }
                Kernel::Avx512Vnni => {
                    let record = tiles::block_bytes(self.format);
                    let at = ((r / tiles::ROWS) * per_row + b) * record;
                    tiles::read(self.format, &self.bytes[at..at + record], r % tiles::ROWS)
                }
            };
            let (d, m) = (block.d.to_f32(), block.m.to_f32());
            for (o, &q) in out.iter_mut().zip(&block.q) {
                *o = d * (f32::from(q) - offset) + m;
            }
        }
    }

    /// Multiplies `m` rows of activations (`acts`: `m` × cols/32 blocks,
    /// row after row) by the matrix rows of `units`, storing the results
    /// into `out` (`m` × [`Matrix::rows`], row-major; f32 bits, so that
    /// threads can fill disjoint parts of it).
    pub fn multiply(&self, acts: &[Q8], m: usize, units: Range<usize>, out: &[AtomicU32]) {
        let per_row = self.cols / 32;
        assert_eq!(acts.len(), m * per_row, "activations do not match");
        assert!(out.len() >= m * self.rows, "the output is short");
        assert!(units.end <= self.units(), "no such unit");
        let store = |i: usize, j: usize, v: f32| {
            out[i * self.rows + j].store(v.to_bits(), Ordering::Relaxed)
        };
        let act_row = |i: usize| &acts[i * per_row..(i + 1) * per_row];
        #[cfg(target_arch = "x86_64")]
        match self.kernel {
            Kernel::Avx2 => {
                let row_bytes = per_row * self.format.block_bytes();
                let row = |j: usize| &self.bytes[j * row_bytes..(j + 1) * row_bytes];
                for unit in units {
                    let first = unit * 4;
                    for i in 0..m {
                        if first + 4 <= self.rows {
                            let four = [row(first), row(first + 1), row(first + 2), row(first + 3)];
                            #[allow(unsafe_code)]
                            // SAFETY: `Matrix::new` checked the CPU runs the
                            // kernel (AVX2 and FMA).
                            let v = unsafe { avx2::dot(self.format, four, act_row(i)) };
                            (0..4).for_each(|r| store(i, first + r, v[r]));
                        } else {
                            for j in first..self.rows {
                                #[allow(unsafe_code)]
                                // SAFETY: as above.
                                let [v] = unsafe { avx2::dot(self.format, [row(j)], act_row(i)) };
                                store(i, j, v);
                            }
                        }
                    }
                }
            }
            Kernel::Avx512Vnni => {
                let tile_bytes = per_row * tiles::block_bytes(self.format);
                for unit in units {
                    let tile = &self.bytes[unit * tile_bytes..(unit + 1) * tile_bytes];
                    let first = unit * tiles::ROWS;
                    let live = (self.rows - first).min(tiles::ROWS);
                    let keep = |i: usize, sums: &[f32; tiles::ROWS]| {
                        for (r, &v) in sums[..live].iter().enumerate() {
                            store(i, first + r, v);
                        }
                    };
                    let mut i = 0;
                    while i + 4 <= m {
                        let four = [act_row(i), act_row(i + 1), act_row(i + 2), act_row(i + 3)];
                        #[allow(unsafe_code)]
                        // SAFETY: `Matrix::new` checked the CPU runs the
                        // kernel (AVX-512 F, BW, VNNI and F16C).
                        let sums = unsafe { avx512::tile(self.format, tile, four) };
                        sums.iter().enumerate().for_each(|(k, s)| keep(i + k, s));
                        i += 4;
                    }
                    for i in i..m {
                        #[allow(unsafe_code)]
                        // SAFETY: as above.
                        let [sums] = unsafe { avx512::tile(self.format, tile, [act_row(i)]) };
                        keep(i, &sums);
                    }
                }
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (units, store, act_row);
            unreachable!("no kernel runs off x86-64")
        }
    }
}

fn f16_at(bytes: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([bytes[at], bytes[at + 1]]).to_f32()
}

/// One GGML block read out: scale, minimum and the 32 quants as unsigned
/// bytes (Q5_0's value is the quant - 16, Q8_0's the quant - 128).
struct Block {
    d: f16,
    m: f16,
    q: [u8; 32],
}

impl Block {
    fn read(format: Format, b: &[u8]) -> Self {
        let d = f16::from_le_bytes([b[0], b[1]]);
        let half = |at: usize| f16::from_le_bytes([b[at], b[at + 1]]);
        let bits = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let (m, high, qs) = match format {
            Format::Q4_1 => (half(2), 0, &b[4..20]),
            Format::Q5_0 => (f16::ZERO, bits(2), &b[6..22]),
            Format::Q5_1 => (half(2), bits(4), &b[8..24]),
            Format::Q8_0 => {
                let q = std::array::from_fn(|i| (b[2 + i] as i8 as i16 + 128) as u8);
                return Self { d, m: f16::ZERO, q };
            }
        };
        let q = std::array::from_fn(|i| {
            let nibble = if i < 16 {
                qs[i] & 0x0F
            } else {
                qs[i - 16] >> 4
            };
            nibble | ((((high >> i) & 1) as u8) << 4)
        });
        Self { d, m, q }
    }

    /// What the unsigned quants are offset by.
    fn offset(format: Format) -> i32 {
        match format {
            Format::Q5_0 => 16,
            Format::Q8_0 => 128,
            Format::Q4_1 | Format::Q5_1 => 0,
        }
    }
}

#[cfg(test)]
mod tests;
