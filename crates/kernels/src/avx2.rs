//! The AVX2 kernel over GGML blocks as stored: `N` rows at a time sharing
//! each block of activations.

use std::arch::x86_64::*;

use crate::{Format, Q8, f16_at};

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

/// Σ x·y of signed bytes (|x| ≤ 128, |y| ≤ 127, so pairs fit in i16), as
/// 8 partial sums.
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
const Q8_0: u8 = 3;

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

#[inline]
#[target_feature(enable = "avx2,fma")]
fn read_q8_0(b: &[u8]) -> (__m256i, f32, f32) {
    (bytemuck::pod_read_unaligned(&b[2..34]), f16_at(b, 0), 0.0)
}

/// `N` rows of weights · one row of activations: the activations are
/// loaded once per block for all rows, and the rows' sums are
/// independent, so their latencies overlap.
#[target_feature(enable = "avx2,fma")]
fn dot_rows<const F: u8, const N: usize>(rows: [&[u8]; N], acts: &[Q8]) -> [f32; N] {
    let size = [20, 22, 24, 34][usize::from(F)];
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
                Q5_1 => read_q5_1(b),
                _ => read_q8_0(b),
            };
            let products = if F == Q5_0 || F == Q8_0 {
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
pub(crate) fn dot<const N: usize>(format: Format, rows: [&[u8]; N], acts: &[Q8]) -> [f32; N] {
    match format {
        Format::Q4_1 => dot_rows::<Q4_1, N>(rows, acts),
        Format::Q5_0 => dot_rows::<Q5_0, N>(rows, acts),
        Format::Q5_1 => dot_rows::<Q5_1, N>(rows, acts),
        Format::Q8_0 => dot_rows::<Q8_0, N>(rows, acts),
    }
}
