#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, Ordering};

use super::*;

const FORMATS: [Format; 4] = [Format::Q4_1, Format::Q5_0, Format::Q5_1, Format::Q8_0];

/// Weights decoded from the GGML block layouts by hand (independently of
/// `Block::read`), times the quantized activations.
fn reference(format: Format, row: &[u8], acts: &[Q8]) -> f32 {
    let mut total = 0f32;
    for (b, a) in row.chunks_exact(format.block_bytes()).zip(acts) {
        let d = f16_at(b, 0);
        let weights: [i32; 32] = match format {
            Format::Q8_0 => std::array::from_fn(|i| i32::from(b[2 + i] as i8)),
            _ => {
                let (qh, qs) = match format {
                    Format::Q4_1 => (0, &b[4..20]),
                    Format::Q5_0 => (u32::from_le_bytes([b[2], b[3], b[4], b[5]]), &b[6..22]),
                    _ => (u32::from_le_bytes([b[4], b[5], b[6], b[7]]), &b[8..24]),
                };
                std::array::from_fn(|i| {
                    let nibble = if i < 16 {
                        qs[i] & 0x0F
                    } else {
                        qs[i - 16] >> 4
                    };
                    let q = i32::from(nibble) | (((qh >> i) & 1) << 4) as i32;
                    if format == Format::Q5_0 { q - 16 } else { q }
                })
            }
        };
        let sumi: i32 = weights.iter().zip(a.q).map(|(w, y)| w * i32::from(y)).sum();
        let m = if format.with_min() { f16_at(b, 2) } else { 0.0 };
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
        if format.with_min() {
            let m = f16::from_f32(-0.05 + f32::from(b[2]) / 2000.0);
            b[2..4].copy_from_slice(&m.to_le_bytes());
        }
        out.extend(b);
    }
    out
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-4 * (1.0 + b.abs())
}

/// Every kernel, every format, single and several activation rows, a row
/// count that leaves partial tiles, products split into separate unit
/// ranges: each result equals the scalar reference.
#[test]
fn kernels_read_the_blocks_as_ggml_lays_them_out() {
    let (rows, cols) = (37, 96);
    for kernel in [Kernel::Avx2, Kernel::Avx512Vnni] {
        if !kernel.runs_here() {
            continue;
        }
        for format in FORMATS {
            let ggml = blocks(format, rows * cols / 32, rows as u32);
            let matrix = Matrix::new(format, &ggml, rows, cols, kernel).unwrap();
            assert_eq!(matrix.kernel(), kernel);
            for m in [1, 3, 4, 6] {
                let xs: Vec<f32> = (0..m * cols)
                    .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
                    .collect();
                let acts = Q8::quantize_row(&xs);
                let out: Vec<AtomicU32> = (0..m * rows).map(|_| AtomicU32::new(u32::MAX)).collect();
                let units = matrix.units();
                matrix.multiply(&acts, m, 0..units / 2, &out);
                matrix.multiply(&acts, m, units / 2..units, &out);
                let row_bytes = cols / 32 * format.block_bytes();
                for i in 0..m {
                    for j in 0..rows {
                        let fast = f32::from_bits(out[i * rows + j].load(Ordering::Relaxed));
                        let slow = reference(
                            format,
                            &ggml[j * row_bytes..(j + 1) * row_bytes],
                            &acts[i * cols / 32..(i + 1) * cols / 32],
                        );
                        assert!(
                            close(fast, slow),
                            "{kernel:?} {format:?} m={m} [{i},{j}]: {fast} vs {slow}"
                        );
                    }
                }
            }
        }
    }
}

/// Wrong sizes are refused, not read out of bounds.
#[test]
fn matrices_of_the_wrong_size_are_refused() {
    let Some(kernel) = Kernel::best() else {
        return;
    };
    let ggml = blocks(Format::Q8_0, 4, 1);
    assert!(Matrix::new(Format::Q8_0, &ggml, 2, 64, kernel).is_some());
    assert!(Matrix::new(Format::Q8_0, &ggml, 3, 64, kernel).is_none());
    assert!(Matrix::new(Format::Q8_0, &ggml[..ggml.len() - 1], 2, 64, kernel).is_none());
    assert!(Matrix::new(Format::Q8_0, &ggml, 4, 48, kernel).is_none());
}

/// Activations quantize as candle's Q8_0/Q8_1 blocks: scale from the
/// largest magnitude, f16-rounded scale and sum.
#[test]
fn activations_quantize_like_candle() {
    let mut xs = [0f32; 32];
    xs.iter_mut()
        .enumerate()
        .for_each(|(i, x)| *x = i as f32 - 10.0);
    let q = Q8::quantize(&xs);
    assert_eq!(q.q[0], -60); // -10 × 127 / 21, rounded
    assert_eq!(q.q[31], 127);
    assert_eq!(q.sum, q.q.iter().map(|&v| i32::from(v)).sum::<i32>());
    assert_eq!(q.d, f16::from_f32(21.0 / 127.0).to_f32());
    assert!((q.s - q.d * q.sum as f32).abs() < 0.1);
}

/// Rows read back from either layout are the blocks' values, d × (q −
/// offset) + m, as the reference decodes them.
#[test]
fn rows_read_back_from_every_layout() {
    let (rows, cols) = (21, 64);
    for kernel in [Kernel::Avx2, Kernel::Avx512Vnni] {
        if !kernel.runs_here() {
            continue;
        }
        for format in FORMATS {
            let ggml = blocks(format, rows * cols / 32, 7);
            let matrix = Matrix::new(format, &ggml, rows, cols, kernel).unwrap();
            let row_bytes = cols / 32 * format.block_bytes();
            let mut out = vec![0f32; cols];
            for r in 0..rows {
                matrix.dequantize_row(r, &mut out);
                // The row times a one-hot activation at column c is weight c.
                for c in [0, 5, 31, 32, 63] {
                    let mut xs = vec![0f32; cols];
                    xs[c] = 127.0;
                    let acts = Q8::quantize_row(&xs);
                    let slow = reference(format, &ggml[r * row_bytes..(r + 1) * row_bytes], &acts);
                    assert!(
                        close(out[c] * 127.0, slow),
                        "{kernel:?} {format:?} [{r},{c}]"
                    );
                }
            }
        }
    }
}
