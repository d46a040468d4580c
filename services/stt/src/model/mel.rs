//! The mel filterbank Whisper's front end uses.
//!
//! Whisper computes its log-mel spectrogram with the filters of
//! `librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)` (128 bands for
//! large-v3): the Slaney mel scale (linear below 1 kHz, logarithmic above),
//! triangles between consecutive mel points, each scaled to unit area
//! ("Slaney" normalisation). whisper.cpp reads them from the model file, and
//! CTranslate2 directories do not carry them, so they are computed here, in
//! `f64` and rounded to `f32` the way librosa does.

/// Whisper's sample rate in Hz.
pub const SAMPLE_RATE: f64 = 16_000.0;

/// Whisper's FFT size (25 ms windows at 16 kHz).
pub const N_FFT: usize = 400;

/// Slaney scale: Hz per mel in the linear part.
const F_SP: f64 = 200.0 / 3.0;
/// Slaney scale: where the logarithmic part starts.
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn log_step() -> f64 {
    6.4f64.ln() / 27.0
}

/// Hz to mel on the Slaney scale (librosa's `hz_to_mel(htk=False)`).
pub fn hz_to_mel(hz: f64) -> f64 {
    if hz >= MIN_LOG_HZ {
        MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / log_step()
    } else {
        hz / F_SP
    }
}

/// Mel to Hz on the Slaney scale (librosa's `mel_to_hz(htk=False)`).
pub fn mel_to_hz(mel: f64) -> f64 {
    if mel >= MIN_LOG_MEL {
        MIN_LOG_HZ * (log_step() * (mel - MIN_LOG_MEL)).exp()
    } else {
        F_SP * mel
    }
}

/// The centre frequencies in Hz of `n_mels` bands from 0 Hz to `sample_rate / 2`,
/// with the two outer edges: `n_mels + 2` points evenly spaced in mel.
pub fn mel_points(sample_rate: f64, n_mels: usize) -> Vec<f64> {
    let n = n_mels + 2;
    let lo = hz_to_mel(0.0);
    let hi = hz_to_mel(sample_rate / 2.0);
    let step = (hi - lo) / (n - 1) as f64;
    (0..n)
        .map(|i| {
            let mel = if i == n - 1 { hi } else { lo + step * i as f64 };
            mel_to_hz(mel)
        })
        .collect()
}

/// The filterbank, row-major: `n_mels` rows of `n_fft / 2 + 1` weights.
pub fn mel_filterbank(sample_rate: f64, n_fft: usize, n_mels: usize) -> Vec<f32> {
    let n_freqs = n_fft / 2 + 1;
    let bin_hz = sample_rate / n_fft as f64;
    let points = mel_points(sample_rate, n_mels);
    let mut weights = Vec::with_capacity(n_mels * n_freqs);
    for i in 0..n_mels {
        let (left, centre, right) = (points[i], points[i + 1], points[i + 2]);
        // Slaney normalisation: each triangle gets unit area.
        let enorm = 2.0 / (right - left);
        for k in 0..n_freqs {
            let f = k as f64 * bin_hz;
            let lower = (f - left) / (centre - left);
            let upper = (right - f) / (right - centre);
            // librosa stores the triangle in f32, then scales it in place.
            let w = lower.min(upper).max(0.0) as f32;
            weights.push((f64::from(w) * enorm) as f32);
        }
    }
    weights
}

/// Whisper's filterbank for `n_mels` bands (80, or 128 for large-v3).
pub fn whisper_filters(n_mels: usize) -> Vec<f32> {
    mel_filterbank(SAMPLE_RATE, N_FFT, n_mels)
}

/// Samples between spectrogram frames (10 ms).
pub const HOP: usize = 160;

/// Whisper's log-mel spectrogram of `samples` (16 kHz mono), `frames`
/// frames long, laid out band by band (`n_mels × frames`, as the encoder
/// takes it). Audio shorter than the frames is padded with silence, as
/// Whisper pads every window; longer audio is cut.
///
/// Like Whisper: a periodic Hann window of 400 samples, centred frames
/// (the audio reflected at its start), power spectrum, the mel filters,
/// `log10` floored at 1e-10, values raised to at least the maximum minus 8,
/// then scaled by `(x + 4) / 4`.
pub fn log_mel_spectrogram(
    samples: &[f32],
    filters: &[f32],
    n_mels: usize,
    frames: usize,
) -> Vec<f32> {
    let n_freqs = N_FFT / 2 + 1;
    debug_assert_eq!(filters.len(), n_mels * n_freqs);
    let half = N_FFT / 2;
    // Centred frames: frame t covers samples [t·HOP − 200, t·HOP + 200).
    // Whisper reflects the padded signal at both ends; past the audio the
    // signal is silence, so only the start needs reflecting.
    let sample = |i: isize| -> f32 {
        let i = i.unsigned_abs();
        samples.get(i).copied().unwrap_or(0.0)
    };
    let window: Vec<f32> = (0..N_FFT)
        .map(|i| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / N_FFT as f64).cos()) as f32)
        .collect();
    let fft = rustfft::FftPlanner::<f32>::new().plan_fft_forward(N_FFT);
    let mut buffer = vec![rustfft::num_complex::Complex32::default(); N_FFT];
    let mut scratch =
        vec![rustfft::num_complex::Complex32::default(); fft.get_inplace_scratch_len()];
    let mut power = vec![0.0f32; n_freqs];
    let mut mel = vec![0.0f32; n_mels * frames];
    for t in 0..frames {
        let start = (t * HOP) as isize - half as isize;
        for (k, (b, w)) in buffer.iter_mut().zip(&window).enumerate() {
            *b = rustfft::num_complex::Complex32::new(sample(start + k as isize) * w, 0.0);
        }
        fft.process_with_scratch(&mut buffer, &mut scratch);
        for (p, c) in power.iter_mut().zip(&buffer) {
            *p = c.norm_sqr();
        }
        for (band, weights) in filters.chunks_exact(n_freqs).enumerate() {
            let energy: f32 = weights.iter().zip(&power).map(|(w, p)| w * p).sum();
            mel[band * frames + t] = energy.max(1e-10).log10();
        }
    }
    let floor = mel.iter().copied().fold(f32::NEG_INFINITY, f32::max) - 8.0;
    for v in &mut mel {
        *v = (v.max(floor) + 4.0) / 4.0;
    }
    mel
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const N_FREQS: usize = N_FFT / 2 + 1;

    fn row(filters: &[f32], i: usize) -> &[f32] {
        &filters[i * N_FREQS..(i + 1) * N_FREQS]
    }

    #[test]
    fn scale_round_trips_and_is_continuous_at_1khz() {
        for hz in [0.0, 100.0, 999.0, 1000.0, 1001.0, 4000.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-9, "{hz}");
        }
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
        assert!((hz_to_mel(999.999_999) - hz_to_mel(1000.0)).abs() < 1e-6);
    }

    #[test]
    fn shape_and_non_negativity() {
        let f = whisper_filters(80);
        assert_eq!(f.len(), 80 * 201);
        assert!(f.iter().all(|&w| w >= 0.0 && w.is_finite()));
        // No empty filter.
        for i in 0..80 {
            assert!(row(&f, i).iter().any(|&w| w > 0.0), "filter {i} is empty");
        }
        assert_eq!(whisper_filters(128).len(), 128 * 201);
    }

    #[test]
    fn each_peak_is_next_to_its_centre_frequency() {
        let f = whisper_filters(80);
        let points = mel_points(SAMPLE_RATE, 80);
        let bin_hz = SAMPLE_RATE / N_FFT as f64;
        for i in 0..80 {
            let r = row(&f, i);
            let peak = (0..N_FREQS)
                .max_by(|&a, &b| r[a].total_cmp(&r[b]))
                .unwrap_or(0);
            let centre_bin = points[i + 1] / bin_hz;
            assert!(
                (peak as f64 - centre_bin).abs() < 1.0,
                "filter {i}: peak at bin {peak}, centre at bin {centre_bin:.2}"
            );
            // Support lies strictly between the outer edges.
            for (k, &w) in r.iter().enumerate() {
                let hz = k as f64 * bin_hz;
                if w > 0.0 {
                    assert!(hz > points[i] && hz < points[i + 2], "filter {i} bin {k}");
                }
            }
        }
    }

    #[test]
    fn slaney_normalisation_gives_unit_area() {
        let f = whisper_filters(80);
        let points = mel_points(SAMPLE_RATE, 80);
        let bin_hz = SAMPLE_RATE / N_FFT as f64;
        for i in 0..80 {
            let area: f64 = row(&f, i).iter().map(|&w| f64::from(w) * bin_hz).sum();
            let width_bins = (points[i + 2] - points[i]) / bin_hz;
            // Sampling a narrow triangle with 40 Hz bins is coarse; wide ones
            // integrate to 1 closely.
            let tolerance = if width_bins > 8.0 { 0.01 } else { 0.1 };
            assert!((area - 1.0).abs() < tolerance, "filter {i}: area {area}");
            // The peak height is at most the ideal triangle's, 2 / width.
            let max = row(&f, i).iter().copied().fold(0.0f32, f32::max);
            assert!(f64::from(max) <= 2.0 / (points[i + 2] - points[i]) + 1e-9);
        }
    }

    /// Values of `whisper/assets/mel_filters.npz` (`mel_80`) from the
    /// openai-whisper package, which librosa generated.
    #[test]
    fn matches_openai_whisper_assets() {
        let f = whisper_filters(80);
        let known: &[(usize, usize, f32)] = &[
            (0, 1, 0.024_862_595),
            (1, 1, 0.001_990_822),
            (1, 2, 0.022_871_772),
            (2, 3, 0.020_880_95),
            (10, 10, 0.019_908_218),
            (10, 11, 0.004_954_375),
            (40, 42, 0.005_411_105),
            (40, 43, 0.014_735_566),
            (40, 44, 0.006_518_19),
            (79, 186, 0.000_366_741_67),
            (79, 192, 0.003_164_711_9),
            (79, 193, 0.003_141_313_3),
            (79, 199, 0.000_448_759),
        ];
        for &(i, k, want) in known {
            let got = f[i * N_FREQS + k];
            assert!(
                (got - want).abs() <= want * 1e-5,
                "filter {i} bin {k}: {got} != {want}"
            );
        }
        // Zeros where the reference has zeros.
        assert_eq!(f[0], 0.0);
        assert_eq!(f[2], 0.0);
        assert_eq!(f[79 * N_FREQS + 185], 0.0);
        assert_eq!(f[79 * N_FREQS + 200], 0.0);
    }

    #[test]
    fn spectrogram_of_a_tone_peaks_in_its_band() {
        let filters = whisper_filters(80);
        // One second of 1 kHz, then silence up to 2 s of frames.
        let tone: Vec<f32> = (0..16_000)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16_000.0).sin() * 0.5)
            .collect();
        let frames = 200;
        let mel = log_mel_spectrogram(&tone, &filters, 80, frames);
        assert_eq!(mel.len(), 80 * frames);
        let points = mel_points(SAMPLE_RATE, 80);
        let band_of_1khz = (0..80)
            .min_by(|&a, &b| {
                (points[a + 1] - 1000.0)
                    .abs()
                    .total_cmp(&(points[b + 1] - 1000.0).abs())
            })
            .unwrap();
        let at = |band: usize, t: usize| mel[band * frames + t];
        // Mid-tone, the 1 kHz band is the loudest.
        let loudest = (0..80)
            .max_by(|&a, &b| at(a, 50).total_cmp(&at(b, 50)))
            .unwrap();
        assert_eq!(loudest, band_of_1khz);
        // The silence after it sits at the floor: the maximum minus 8, scaled.
        let max = mel.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        assert!((at(band_of_1khz, 150) - (max - 2.0)).abs() < 1e-5);
        assert!(mel.iter().all(|v| v.is_finite()));
    }
}
