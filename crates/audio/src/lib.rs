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
