//! The AVX-512 VNNI kernel over the tiled layout (see `tiles`): for each
//! record, every group of 4 columns is one `vpdpbusd` per activation row,
//! adding 4 products to each of the tile's 16 row sums.

use std::arch::x86_64::*;

use crate::tiles::{self, ROWS};
use crate::{Block, Format, Q8};

const Q4_1: u8 = 0;
const Q5_0: u8 = 1;
const Q5_1: u8 = 2;
const Q8_0: u8 = 3;

/// One tile (all its records) · `MR` rows of activations: each row's 16
/// sums.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,f16c")]
pub(crate) fn tile<const MR: usize>(
    format: Format,
    tile: &[u8],
    acts: [&[Q8]; MR],
) -> [[f32; ROWS]; MR] {
    match format {
        Format::Q4_1 => records::<Q4_1, MR>(tile, acts),
        Format::Q5_0 => records::<Q5_0, MR>(tile, acts),
        Format::Q5_1 => records::<Q5_1, MR>(tile, acts),
        Format::Q8_0 => records::<Q8_0, MR>(tile, acts),
    }
}

const fn format(f: u8) -> Format {
    match f {
        Q4_1 => Format::Q4_1,
        Q5_0 => Format::Q5_0,
        Q5_1 => Format::Q5_1,
        _ => Format::Q8_0,
    }
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,f16c")]
fn load(bytes: &[u8], at: usize) -> __m512i {
    bytemuck::pod_read_unaligned(&bytes[at..at + 64])
}

/// 16 f16 → 16 f32.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,f16c")]
fn halves(bytes: &[u8], at: usize) -> __m512 {
    _mm512_cvtph_ps(bytemuck::pod_read_unaligned::<__m256i>(&bytes[at..at + 32]))
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,f16c")]
fn records<const F: u8, const MR: usize>(tile: &[u8], acts: [&[Q8]; MR]) -> [[f32; ROWS]; MR] {
    let format = format(F);
    let at = tiles::fields(format);
    let offset = Block::offset(format);
    let low = _mm512_set1_epi8(0x0F);
    let sixteen = _mm512_set1_epi8(0x10);
    let mut acc = [_mm512_setzero_ps(); MR];
    for (b, rec) in tile.chunks_exact(tiles::block_bytes(format)).enumerate() {
        // Every row's sum starts at -offset × Σ activations, which takes
        // the offset of the unsigned quants back out.
        let mut sums: [__m512i; MR] =
            std::array::from_fn(|i| _mm512_set1_epi32(-offset * acts[i][b].sum));
        let ys: [[i32; 8]; MR] = std::array::from_fn(|i| bytemuck::cast(acts[i][b].q));
        for g in 0..8 {
            let w = match F {
                Q8_0 => load(rec, at.quants + 64 * g),
                _ => {
                    let packed = load(rec, at.quants + 64 * (g % 4));
                    let nibbles = if g < 4 {
                        _mm512_and_si512(packed, low)
                    } else {
                        _mm512_and_si512(_mm512_srli_epi16::<4>(packed), low)
                    };
                    if F == Q5_0 || F == Q5_1 {
                        let high = u64::from_le_bytes(bytemuck::pod_read_unaligned(
                            &rec[at.high + 8 * g..at.high + 8 * g + 8],
                        ));
                        _mm512_mask_add_epi8(nibbles, high, nibbles, sixteen)
                    } else {
                        nibbles
                    }
                }
            };
            for i in 0..MR {
                sums[i] = _mm512_dpbusd_epi32(sums[i], w, _mm512_set1_epi32(ys[i][g]));
            }
        }
        let d = halves(rec, 0);
        for i in 0..MR {
            let scale = _mm512_mul_ps(d, _mm512_set1_ps(acts[i][b].d));
            acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums[i]), scale, acc[i]);
        }
        if F == Q4_1 || F == Q5_1 {
            let m = halves(rec, at.mins);
            for i in 0..MR {
                acc[i] = _mm512_fmadd_ps(m, _mm512_set1_ps(acts[i][b].s), acc[i]);
            }
        }
    }
    std::array::from_fn(|i| bytemuck::cast(acc[i]))
}
