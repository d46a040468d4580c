//! Audio formats and PCM conversion, shared by every service that handles audio.
//!
//! A [`AudioFormat`] is validated once, when it comes in from the wire; code
//! that holds one can rely on it describing real PCM.

use std::fmt;

/// Interleaved little-endian signed PCM: samples per second, bytes per sample,
/// channels. Always valid (see [`AudioFormat::new`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AudioFormat {
    rate: u32,
    width: u16,
    channels: u16,
}

/// Audio that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The sample rate is outside 1 kHz – 384 kHz.
    #[error("unsupported sample rate {0} Hz (expected 1000 to 384000)")]
    Rate(u32),
    /// Not 1, 2 or 4 bytes per sample.
    #[error("unsupported sample width {0} bytes (expected 1, 2 or 4)")]
    Width(u32),
    /// No channels, or more than 8.
    #[error("unsupported channel count {0} (expected 1 to 8)")]
    Channels(u32),
    /// The bytes do not hold a whole number of frames.
    #[error("{len} bytes is not a whole number of {frame}-byte frames")]
    PartialFrame {
        /// Bytes received.
        len: usize,
        /// Bytes per frame (width × channels).
        frame: usize,
    },
}

impl AudioFormat {
    /// 16 kHz, 16-bit, mono: what speech recognition expects.
    pub const SPEECH: Self = Self {
        rate: 16_000,
        width: 2,
        channels: 1,
    };

    /// A format, if it describes PCM that Athena can handle.
    pub fn new(rate: u32, width: u32, channels: u32) -> Result<Self, FormatError> {
        if !(1_000..=384_000).contains(&rate) {
            return Err(FormatError::Rate(rate));
        }
        if !matches!(width, 1 | 2 | 4) {
            return Err(FormatError::Width(width));
        }
        if !(1..=8).contains(&channels) {
            return Err(FormatError::Channels(channels));
        }
        // Both fit: checked just above.
        Ok(Self {
            rate,
            width: width as u16,
            channels: channels as u16,
        })
    }

    /// Samples per second per channel.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Bytes per sample.
    pub fn width(&self) -> u32 {
        u32::from(self.width)
    }

    /// Interleaved channels.
    pub fn channels(&self) -> u32 {
        u32::from(self.channels)
    }

    /// Bytes per frame (one sample of every channel).
    pub fn frame_bytes(&self) -> usize {
        usize::from(self.width) * usize::from(self.channels)
    }

    /// Seconds of audio in `bytes` bytes.
    pub fn seconds(&self, bytes: usize) -> f64 {
        bytes as f64 / (self.frame_bytes() as f64 * f64::from(self.rate))
    }

    /// Decodes PCM in this format to mono samples in [-1, 1], averaging channels.
    /// 8-bit samples are signed, as in Wyoming (Python's `audioop`).
    pub fn to_mono_f32(&self, pcm: &[u8]) -> Result<Vec<f32>, FormatError> {
        let frame = self.frame_bytes();
        if !pcm.len().is_multiple_of(frame) {
            return Err(FormatError::PartialFrame {
                len: pcm.len(),
                frame,
            });
        }
        let width = usize::from(self.width);
        let channels = f32::from(self.channels);
        Ok(pcm
            .chunks_exact(frame)
            .map(|f| f.chunks_exact(width).map(sample).sum::<f32>() / channels)
            .collect())
    }
}

/// Resamples mono audio from `from` Hz to `to` Hz with a windowed-sinc
/// filter (Blackman window, 16 zero crossings each side). Going down, the
/// filter's cutoff follows the new Nyquist frequency, so tones above it are
/// removed instead of folding back into speech.
///
/// The ratio is reduced to `up/down`; output sample `n` sits at input
/// position `n·down/up`, so only `up` distinct filter phases exist, and their
/// taps are computed once per call.
pub fn resample(input: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || input.is_empty() || from == 0 || to == 0 {
        return input.to_vec();
    }
    const ZERO_CROSSINGS: f64 = 16.0;
    let g = gcd(from, to);
    let (up, down) = ((to / g) as usize, (from / g) as usize);
    let ratio = f64::from(to) / f64::from(from);
    // A little below Nyquist, so the transition band is not aliased.
    let cutoff = ratio.min(1.0) * 0.95;
    let reach = (ZERO_CROSSINGS / cutoff).ceil() as isize;
    let taps_per_phase = (2 * reach + 1) as usize;
    let half_width = ZERO_CROSSINGS / cutoff;
    let tap = |offset: f64| cutoff * sinc(offset * cutoff) * blackman(offset / half_width);
    // One row of taps per phase; rows for very many phases are not kept.
    let table: Option<Vec<f32>> = (up <= 4096).then(|| {
        (0..up)
            .flat_map(|phase| {
                let frac = phase as f64 / up as f64;
                (-reach..=reach).map(move |j| tap(j as f64 - frac) as f32)
            })
            .collect()
    });
    let out_len = (input.len() as f64 * ratio).round() as usize;
    let last = input.len() as isize - 1;
    (0..out_len)
        .map(|n| {
            let position = n * down;
            let (base, phase) = ((position / up) as isize, position % up);
            let mut acc = 0.0f32;
            for (i, j) in (-reach..=reach).enumerate() {
                let k = base + j;
                if k < 0 || k > last {
                    continue;
                }
                let weight = match &table {
                    Some(t) => t[phase * taps_per_phase + i],
                    None => tap(j as f64 - phase as f64 / up as f64) as f32,
                };
                acc += input[k as usize] * weight;
            }
            acc
        })
        .collect()
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-9 {
        1.0
    } else {
        let px = std::f64::consts::PI * x;
        px.sin() / px
    }
}

/// The Blackman window over [-1, 1].
fn blackman(t: f64) -> f64 {
    if t.abs() >= 1.0 {
        return 0.0;
    }
    let a = std::f64::consts::PI * (t + 1.0);
    0.42 - 0.5 * a.cos() + 0.08 * (2.0 * a).cos()
}

/// One little-endian signed sample as a float in [-1, 1].
fn sample(bytes: &[u8]) -> f32 {
    match *bytes {
        [a] => f32::from(a as i8) / 128.0,
        [a, b] => f32::from(i16::from_le_bytes([a, b])) / 32_768.0,
        [a, b, c, d] => i32::from_le_bytes([a, b, c, d]) as f32 / 2_147_483_648.0,
        _ => 0.0,
    }
}

impl fmt::Display for AudioFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} Hz, {}-bit, {} channel(s)",
            self.rate,
            self.width * 8,
            self.channels
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn refuses_nonsense_formats() {
        assert_eq!(AudioFormat::new(0, 2, 1), Err(FormatError::Rate(0)));
        assert_eq!(AudioFormat::new(16_000, 3, 1), Err(FormatError::Width(3)));
        assert_eq!(
            AudioFormat::new(16_000, 2, 9),
            Err(FormatError::Channels(9))
        );
        assert_eq!(AudioFormat::new(16_000, 2, 1), Ok(AudioFormat::SPEECH));
    }

    fn tone(hz: f64, rate: u32, seconds: f64) -> Vec<f32> {
        let n = (f64::from(rate) * seconds) as usize;
        (0..n)
            .map(|i| {
                (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(rate)).sin() as f32 * 0.5
            })
            .collect()
    }

    /// Root mean square of the middle half (away from edge effects).
    fn rms(x: &[f32]) -> f64 {
        let mid = &x[x.len() / 4..x.len() * 3 / 4];
        (mid.iter()
            .map(|&s| f64::from(s) * f64::from(s))
            .sum::<f64>()
            / mid.len() as f64)
            .sqrt()
    }

    #[test]
    fn resampling_keeps_speech_and_drops_what_cannot_be_represented() {
        for (from, to) in [
            (48_000, 16_000),
            (44_100, 16_000),
            (8_000, 16_000),
            (22_050, 16_000),
        ] {
            let out = resample(&tone(440.0, from, 1.0), from, to);
            assert_eq!(out.len(), to as usize, "{from} -> {to}");
            let expected = tone(440.0, to, 1.0);
            let error: f64 = out[1000..out.len() - 1000]
                .iter()
                .zip(&expected[1000..])
                .map(|(a, b)| f64::from(a - b).abs())
                .fold(0.0, f64::max);
            assert!(error < 0.01, "{from} -> {to}: max error {error}");
        }
        // 10 kHz does not exist at 16 kHz: it must vanish, not alias to 6 kHz.
        let out = resample(&tone(10_000.0, 48_000, 1.0), 48_000, 16_000);
        assert!(rms(&out) < 0.01, "aliased: rms {}", rms(&out));
        // 3 kHz passes at full strength.
        let out = resample(&tone(3_000.0, 48_000, 1.0), 48_000, 16_000);
        assert!((rms(&out) - 0.5 / 2f64.sqrt()).abs() < 0.01);
        assert_eq!(resample(&[], 48_000, 16_000), Vec::<f32>::new());
    }

    #[test]
    fn decodes_and_mixes_down() {
        let stereo = AudioFormat::new(8_000, 2, 2).unwrap();
        let pcm: Vec<u8> = [i16::MAX, i16::MIN, 16_384, 16_384]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        let mono = stereo.to_mono_f32(&pcm).unwrap();
        assert_eq!(mono.len(), 2);
        assert!(mono[0].abs() < 1e-4, "full-scale opposite channels cancel");
        assert!((mono[1] - 0.5).abs() < 1e-6);
        assert_eq!(
            stereo.to_mono_f32(&pcm[..3]),
            Err(FormatError::PartialFrame { len: 3, frame: 4 })
        );
        assert!((stereo.seconds(32_000) - 1.0).abs() < 1e-9);
    }
}
