//! Dot products of GGML quantized weight blocks with 8-bit activations, in
//! AVX2, for the formats candle only runs as scalar loops: Q4_1 (SmolLM2's
//! GGUF), Q5_0 and Q5_1 (what k-quant files use for rows that are not a
//! multiple of 256, e.g. Qwen2.5 0.5B's 896).
//!
//! Activations are quantized as candle quantizes them (blocks of 32, scale
//! = max |x| / 127 rounded to f16, Q8_1's sum also rounded to f16), so a
//! product here equals candle's up to the order of float additions.
//!
//! Safety: the kernels are `#[target_feature(enable = "avx2,fma")]`
//! functions, whose intrinsics are safe to use inside them; blocks are read
//! into registers with `bytemuck`. The one unsafe operation is calling
//! them, done only after the CPU was found to have AVX2 and FMA.

use half::f16;

/// A block format with a kernel here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// 32 × 4 bits, scale and minimum.
    Q4_1,
    /// 32 × 5 bits (offset 16), scale.
    Q5_0,
    /// 32 × 5 bits, scale and minimum.
    Q5_1,
}

impl Format {
    /// Bytes per block of 32 weights.
    pub fn block_bytes(self) -> usize {
        match self {
            Self::Q4_1 => 20,
            Self::Q5_0 => 22,
            Self::Q5_1 => 24,
        }
    }

    /// Whether activations carry their sum (formats with a minimum).
    fn with_sum(self) -> bool {
        self != Self::Q5_0
    }
}

/// 32 activations quantized to 8 bits: scale `d` and `s` = d × Σq (both
/// f16-rounded, as candle's Q8_0 and Q8_1 blocks store them).
#[derive(Debug, Clone, Copy)]
pub struct Q8 {
    d: f32,
    s: f32,
    q: [i8; 32],
}

impl Q8 {
    /// 32 activations, quantized for multiplying blocks of `format`.
    pub fn quantize(xs: &[f32], format: Format) -> Self {
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
        let s = if format.with_sum() {
            (f16::from_f32(sum as f32) * d16).to_f32()
        } else {
            0.0
        };
        Self {
            d: d16.to_f32(),
            s,
            q,
        }
    }
}

/// Whether this CPU runs the kernels.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *AVAILABLE.get_or_init(|| {
            std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `N` rows of weights (whole blocks of `format`, as many as `acts`) ·
/// one row of quantized activations; four rows at a time is fastest.
/// Panics when [`available`] is false.
pub fn dot<const N: usize>(format: Format, rows: [&[u8]; N], acts: &[Q8]) -> [f32; N] {
    assert!(available(), "AVX2 and FMA are needed");
    for row in rows {
        assert!(
            row.len() >= acts.len() * format.block_bytes(),
            "a row is short"
        );
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[allow(unsafe_code)]
        // SAFETY: the CPU has AVX2 and FMA (checked above), the only
        // requirement of calling a function with those target features.
        unsafe {
            avx2::dot(format, rows, acts)
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (format, rows, acts);
        unreachable!("available() is false off x86-64")
    }
}

fn f16_at(bytes: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([bytes[at], bytes[at + 1]]).to_f32()
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{Format, Q8, f16_at};

    #[target_feature(enable = "avx2,fma")]
    fn load16(bytes: &[u8]) -> __m128i {
        bytemuck::pod_read_unaligned(&bytes[..16])
    }

    /// 16 bytes of nibbles → 32 bytes: the low nibbles (weights 0–15), then
    /// the high ones (16–31).
    #[target_feature(enable = "avx2,fma")]
    fn nibbles(qs: &[u8]) -> __m256i {
        let low = load16(qs);
        let high = _mm_srli_epi16::<4>(low);
        _mm256_and_si256(_mm256_set_m128i(high, low), _mm256_set1_epi8(0x0F))
    }

    /// 32 bits → 32 bytes, all ones where the bit is set.
    #[target_feature(enable = "avx2,fma")]
    fn bits(x: u32) -> __m256i {
        // Byte i gets byte i / 8 of x; then every bit but bit i % 8 is set,
        // so the byte is all ones exactly when that bit was.
        let spread = _mm256_set_epi64x(
            0x0303_0303_0303_0303,
            0x0202_0202_0202_0202,
            0x0101_0101_0101_0101,
            0,
        );
        let bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(x as i32), spread);
        let others = _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe_u64 as i64);
        _mm256_cmpeq_epi8(_mm256_or_si256(bytes, others), _mm256_set1_epi64x(-1))
    }

    /// Σ x·y of unsigned by signed bytes, as 8 partial sums.
    #[target_feature(enable = "avx2,fma")]
    fn dot_u8_i8(x: __m256i, y: __m256i) -> __m256 {
        let pairs = _mm256_maddubs_epi16(x, y);
        _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
    }

    /// Σ x·y of signed bytes (|x| ≤ 16 here), as 8 partial sums.
    #[target_feature(enable = "avx2,fma")]
    fn dot_i8_i8(x: __m256i, y: __m256i) -> __m256 {
        dot_u8_i8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x))
    }

    #[target_feature(enable = "avx2,fma")]
    fn sum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_hadd_ps(s, s);
        _mm_cvtss_f32(_mm_hadd_ps(s, s))
    }

    /// Formats as constants, so each gets its own loop.
    const Q4_1: u8 = 0;
    const Q5_0: u8 = 1;
    const Q5_1: u8 = 2;

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn read_q4_1(b: &[u8]) -> (__m256i, f32, f32) {
        (nibbles(&b[4..20]), f16_at(b, 0), f16_at(b, 2))
    }

    /// value = (nibble | high bit << 4) - 16: where the high bit is clear,
    /// setting the byte's top four bits makes it nibble - 16 as a signed
    /// byte; where it is set, the nibble is the value.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn read_q5_0(b: &[u8]) -> (__m256i, f32, f32) {
        let high = bits(u32::from_le_bytes([b[2], b[3], b[4], b[5]]));
        let clear = _mm256_andnot_si256(high, _mm256_set1_epi8(0xF0_u8 as i8));
        (
            _mm256_or_si256(nibbles(&b[6..22]), clear),
            f16_at(b, 0),
            0.0,
        )
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn read_q5_1(b: &[u8]) -> (__m256i, f32, f32) {
        let high = bits(u32::from_le_bytes([b[4], b[5], b[6], b[7]]));
        let fifth = _mm256_and_si256(high, _mm256_set1_epi8(0x10));
        (
            _mm256_or_si256(nibbles(&b[8..24]), fifth),
            f16_at(b, 0),
            f16_at(b, 2),
        )
    }

    /// `N` rows of weights · one row of activations: the activations are
    /// loaded once per block for all rows, and the rows' sums are
    /// independent, so their latencies overlap.
    #[target_feature(enable = "avx2,fma")]
    fn dot_rows<const F: u8, const N: usize>(rows: [&[u8]; N], acts: &[Q8]) -> [f32; N] {
        let size = [20, 22, 24][usize::from(F)];
        let mut acc = [_mm256_setzero_ps(); N];
        let mut mins = [0f32; N];
        let mut rows = rows.map(|r| r.chunks_exact(size));
        for a in acts {
            let y: __m256i = bytemuck::cast(a.q);
            for r in 0..N {
                let Some(b) = rows[r].next() else {
                    continue;
                };
                let (x, d, m) = match F {
                    Q4_1 => read_q4_1(b),
                    Q5_0 => read_q5_0(b),
                    _ => read_q5_1(b),
                };
                let products = if F == Q5_0 {
                    dot_i8_i8(x, y)
                } else {
                    dot_u8_i8(x, y)
                };
                acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d * a.d), products, acc[r]);
                mins[r] += m * a.s;
            }
        }
        std::array::from_fn(|r| sum(acc[r]) + mins[r])
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn dot<const N: usize>(format: Format, rows: [&[u8]; N], acts: &[Q8]) -> [f32; N] {
        match format {
            Format::Q4_1 => dot_rows::<Q4_1, N>(rows, acts),
            Format::Q5_0 => dot_rows::<Q5_0, N>(rows, acts),
            Format::Q5_1 => dot_rows::<Q5_1, N>(rows, acts),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Weights from the block layouts by hand, against a scalar reference
    /// that reads the same bytes.
    fn reference(format: Format, row: &[u8], acts: &[Q8]) -> f32 {
        let mut total = 0f32;
        for (b, a) in row.chunks_exact(format.block_bytes()).zip(acts) {
            let d = f16_at(b, 0);
            let (m, qh, qs) = match format {
                Format::Q4_1 => (f16_at(b, 2), 0u32, &b[4..20]),
                Format::Q5_0 => (0.0, u32::from_le_bytes([b[2], b[3], b[4], b[5]]), &b[6..22]),
                Format::Q5_1 => (
                    f16_at(b, 2),
                    u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
                    &b[8..24],
                ),
            };
            let mut sumi = 0i32;
            for i in 0..32 {
                let nibble = if i < 16 {
                    qs[i] & 0x0F
                } else {
                    qs[i - 16] >> 4
                };
                let high = if format == Format::Q4_1 {
                    0
                } else {
                    ((qh >> i) & 1) << 4
                };
                let q = i32::from(nibble) | high as i32;
                let q = if format == Format::Q5_0 { q - 16 } else { q };
                sumi += q * i32::from(a.q[i]);
            }
            total += sumi as f32 * d * a.d + m * a.s;
        }
        total
    }

    /// A deterministic byte soup, with f16 fields kept finite.
    fn blocks(format: Format, n: usize, seed: u32) -> Vec<u8> {
        let mut state = seed;
        let mut next = || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        };
        let mut out = Vec::new();
        for _ in 0..n {
            let mut b: Vec<u8> = (0..format.block_bytes()).map(|_| next()).collect();
            let d = f16::from_f32(0.01 + f32::from(b[0]) / 1000.0);
            b[..2].copy_from_slice(&d.to_le_bytes());
            if format != Format::Q5_0 {
                let m = f16::from_f32(-0.05 + f32::from(b[2]) / 2000.0);
                b[2..4].copy_from_slice(&m.to_le_bytes());
            }
            out.extend(b);
        }
        out
    }

    #[test]
    fn kernels_read_the_blocks_as_ggml_lays_them_out() {
        if !available() {
            return;
        }
        let xs: Vec<f32> = (0..96)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
            .collect();
        for format in [Format::Q4_1, Format::Q5_0, Format::Q5_1] {
            let acts: Vec<Q8> = xs
                .chunks_exact(32)
                .map(|c| Q8::quantize(c, format))
                .collect();
            for seed in 0..8 {
                let row = blocks(format, 3, seed);
                let other = blocks(format, 3, seed + 100);
                let slow = reference(format, &row, &acts);
                let [one] = dot(format, [&row], &acts);
                let four = dot(format, [&other, &row, &other, &row], &acts);
                for fast in [one, four[1], four[3]] {
                    assert!(
                        (fast - slow).abs() <= 1e-4 * (1.0 + slow.abs()),
                        "{format:?}: {fast} vs {slow}"
                    );
                }
                let slow = reference(format, &other, &acts);
                assert!(
                    (four[0] - slow).abs() <= 1e-4 * (1.0 + slow.abs()),
                    "{format:?}"
                );
            }
        }
    }
}
