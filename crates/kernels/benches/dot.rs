//! Single-thread throughput of each kernel on a matrix larger than the
//! L2 cache, for one row of activations (decode) and for 16 (prompt):
//! `cargo bench -p athena-kernels --bench dot`.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::sync::atomic::AtomicU32;
use std::time::Instant;

use athena_kernels::{Format, Kernel, Matrix, Q8};

fn main() {
    let (rows, cols) = (16_384, 640);
    println!("{rows} × {cols} weights, one thread, best of 5");
    println!(
        "| kernel | format | MB | decode GB/s | decode ns/block | prompt (16 rows) ns/block/row |"
    );
    println!("|---|---|---|---|---|---|");
    for kernel in [Kernel::Avx2, Kernel::Avx512Vnni] {
        if !kernel.runs_here() {
            continue;
        }
        for format in [Format::Q4_1, Format::Q5_0, Format::Q5_1, Format::Q8_0] {
            let mut ggml = vec![0u8; rows * cols / 32 * format.block_bytes()];
            let mut state = 1u32;
            for (i, b) in ggml.iter_mut().enumerate() {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                // Small finite f16 scales in the first four bytes of a block.
                *b = if i % format.block_bytes() < 4 {
                    0x10
                } else {
                    (state >> 24) as u8
                };
            }
            let matrix = Matrix::new(format, &ggml, rows, cols, kernel).unwrap();
            let time = |m: usize| {
                let xs: Vec<f32> = (0..m * cols)
                    .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
                    .collect();
                let acts = Q8::quantize_row(&xs);
                let out: Vec<AtomicU32> = (0..m * rows).map(|_| AtomicU32::new(0)).collect();
                (0..5)
                    .map(|_| {
                        let start = Instant::now();
                        matrix.multiply(&acts, m, 0..matrix.units(), &out);
                        start.elapsed().as_secs_f64()
                    })
                    .fold(f64::MAX, f64::min)
            };
            let blocks = (rows * cols / 32) as f64;
            let decode = time(1);
            let prompt = time(16);
            println!(
                "| {kernel:?} | {format:?} | {} | {:.1} | {:.2} | {:.3} |",
                ggml.len() >> 20,
                ggml.len() as f64 / decode / 1e9,
                decode / blocks * 1e9,
                prompt / blocks / 16.0 * 1e9,
            );
        }
    }
}
