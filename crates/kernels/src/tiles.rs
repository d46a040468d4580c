//! The tiled layout of the AVX-512 kernel: rows in tiles of [`ROWS`], and in
//! a tile, one record per block of 32 columns holding those columns of all
//! its rows, so a tile is read front to back exactly once per product.
//!
//! A record (all fields for the tile's 16 rows, unused rows zero):
//! - scales `d` as 16 f16, then minimums `m` as 16 f16 (Q4_1, Q5_1);
//! - the quants as unsigned bytes in *groups* of 4 columns: group g is 64
//!   bytes, byte 4r + j = row r's quant of column 4g + j, which is what
//!   `vpdpbusd` multiplies by 4 activations broadcast to every row. Q8_0
//!   stores the 8 groups as bytes; the 4- and 5-bit formats store nibbles,
//!   group g in the low half and group g + 4 in the high half of 4 vectors;
//! - Q5_0 and Q5_1: the fifth bits, a u64 per group (bit 4r + j), ready as
//!   a byte mask.

use half::f16;

use crate::{Block, Format};

/// Rows per tile: one per 32-bit lane of a 512-bit register.
pub const ROWS: usize = 16;

/// Bytes of one record (16 rows × 32 columns), the same as 16 GGML blocks.
pub fn block_bytes(format: Format) -> usize {
    ROWS * format.block_bytes()
}

/// Where the fields of a record start.
pub struct Fields {
    pub mins: usize,
    pub quants: usize,
    pub high: usize,
}

pub const fn fields(format: Format) -> Fields {
    let scales = 2 * ROWS;
    let mins = scales;
    let quants = match format {
        Format::Q4_1 | Format::Q5_1 => mins + 2 * ROWS,
        Format::Q5_0 | Format::Q8_0 => mins,
    };
    let high = quants + ROWS * 32 / 2;
    Fields { mins, quants, high }
}

/// Repacks `rows` × `cols` GGML blocks into tiles (the last one padded
/// with zero rows).
pub fn pack(format: Format, ggml: &[u8], rows: usize, cols: usize) -> Vec<u8> {
    let per_row = cols / 32;
    let size = format.block_bytes();
    let record = block_bytes(format);
    let at = fields(format);
    let tiles = rows.div_ceil(ROWS);
    let mut out = vec![0u8; tiles * per_row * record];
    for (t, tile) in out.chunks_exact_mut(per_row * record).enumerate() {
        for (b, rec) in tile.chunks_exact_mut(record).enumerate() {
            for r in 0..ROWS.min(rows - t * ROWS) {
                let row = t * ROWS + r;
                let start = (row * per_row + b) * size;
                let block = Block::read(format, &ggml[start..start + size]);
                rec[2 * r..2 * r + 2].copy_from_slice(&block.d.to_le_bytes());
                if format.with_min() {
                    rec[at.mins + 2 * r..at.mins + 2 * r + 2]
                        .copy_from_slice(&block.m.to_le_bytes());
                }
                for (k, &q) in block.q.iter().enumerate() {
                    let (g, j) = (k / 4, k % 4);
                    if format == Format::Q8_0 {
                        rec[at.quants + 64 * g + 4 * r + j] = q;
                        continue;
                    }
                    let byte = at.quants + 64 * (g % 4) + 4 * r + j;
                    rec[byte] |= (q & 0x0F) << if g < 4 { 0 } else { 4 };
                    if q & 0x10 != 0 {
                        let bit = 4 * r + j;
                        rec[at.high + 8 * g + bit / 8] |= 1 << (bit % 8);
                    }
                }
            }
        }
    }
    out
}

/// Row `r` of one record, as [`pack`] wrote it.
pub fn read(format: Format, rec: &[u8], r: usize) -> Block {
    let at = fields(format);
    let half = |at: usize| f16::from_le_bytes([rec[at], rec[at + 1]]);
    let q = std::array::from_fn(|k| {
        let (g, j) = (k / 4, k % 4);
        if format == Format::Q8_0 {
            return rec[at.quants + 64 * g + 4 * r + j];
        }
        let byte = rec[at.quants + 64 * (g % 4) + 4 * r + j];
        let nibble = if g < 4 { byte & 0x0F } else { byte >> 4 };
        let bit = 4 * r + j;
        let high = match format {
            Format::Q5_0 | Format::Q5_1 => (rec[at.high + 8 * g + bit / 8] >> (bit % 8)) & 1,
            _ => 0,
        };
        nibble | high << 4
    });
    Block {
        d: half(2 * r),
        m: if format.with_min() {
            half(at.mins + 2 * r)
        } else {
            f16::ZERO
        },
        q,
    }
}
