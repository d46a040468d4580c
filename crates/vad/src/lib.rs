//! Voice activity: where speech starts and ends in 16 kHz mono audio.
//!
//! [`Endpointer`] follows a stream frame by frame (16 ms frames, scored by
//! earshot's small neural network, pure Rust, no ONNX Runtime) and reports
//! when speech starts and when it has ended: speech for at least
//! `min_speech_ms`, then silence for `end_silence_ms`. The orchestrator uses
//! it to decide when a satellite's command is over; [`speech_bounds`] lets
//! the stt service cut leading and trailing silence before transcribing.

/// Samples per frame: 16 ms at 16 kHz, what the detector takes.
pub const FRAME: usize = 256;
/// The only sample rate the detector takes.
pub const SAMPLE_RATE: u32 = 16_000;

/// How eagerly speech is detected and ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadConfig {
    /// A frame is speech when its score is at least this (0–1).
    pub threshold: f32,
    /// Speech must last this long to count (coughs and clicks do not).
    pub min_speech_ms: u32,
    /// Silence this long after speech ends the utterance.
    pub end_silence_ms: u32,
    /// Audio kept around speech when trimming, so word edges survive.
    pub pad_ms: u32,
}

impl Default for VadConfig {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            min_speech_ms: 64,
            end_silence_ms: 700,
            pad_ms: 200,
        }
    }
}

fn frames(ms: u32) -> usize {
    (ms as usize * SAMPLE_RATE as usize / 1000).div_ceil(FRAME)
}

/// A change in voice activity, at a position in samples from the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadEvent {
    /// Speech began (at the first speech frame).
    SpeechStarted {
        /// Sample position.
        at: usize,
    },
    /// Speech ended (at the end of the last speech frame), reported once
    /// `end_silence_ms` of silence followed it.
    SpeechEnded {
        /// Sample position.
        at: usize,
    },
}

/// Follows a stream of 16 kHz mono audio and reports speech start and end.
pub struct Endpointer {
    detector: earshot::Detector,
    config: VadConfig,
    pending: Vec<f32>,
    /// Frames scored so far.
    frame_index: usize,
    /// Consecutive speech frames (before speech is confirmed).
    speech_run: usize,
    /// Consecutive silent frames (while in speech).
    silence_run: usize,
    in_speech: bool,
    /// Frame index just after the last speech frame.
    last_speech_end: usize,
}

impl std::fmt::Debug for Endpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpointer")
            .field("config", &self.config)
            .field("frame_index", &self.frame_index)
            .field("in_speech", &self.in_speech)
            .finish_non_exhaustive()
    }
}

impl Endpointer {
    /// A fresh endpointer.
    pub fn new(config: VadConfig) -> Self {
        Self {
            detector: earshot::Detector::default(),
            config,
            pending: Vec::with_capacity(FRAME),
            frame_index: 0,
            speech_run: 0,
            silence_run: 0,
            in_speech: false,
            last_speech_end: 0,
        }
    }

    /// True while speech is going on.
    pub fn in_speech(&self) -> bool {
        self.in_speech
    }

    /// How long the silence after the last speech frame has lasted, in
    /// ms, while speech is going on (0 right after a speech frame, and
    /// outside speech).
    pub fn silence_ms(&self) -> u32 {
        let ms = self.silence_run * FRAME * 1000 / SAMPLE_RATE as usize;
        u32::try_from(ms).unwrap_or(u32::MAX)
    }

    /// Feeds samples (any length); returns what changed.
    pub fn push(&mut self, samples: &[f32]) -> Vec<VadEvent> {
        let mut events = Vec::new();
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (FRAME - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == FRAME {
                let score = self.detector.predict_f32(&self.pending);
                self.pending.clear();
                if let Some(event) = self.frame(score >= self.config.threshold) {
                    events.push(event);
                }
            }
        }
        events
    }

    fn frame(&mut self, speech: bool) -> Option<VadEvent> {
        let index = self.frame_index;
        self.frame_index += 1;
        if speech {
            self.speech_run += 1;
            self.silence_run = 0;
            self.last_speech_end = index + 1;
            if !self.in_speech && self.speech_run >= frames(self.config.min_speech_ms) {
                self.in_speech = true;
                let start = index + 1 - self.speech_run;
                return Some(VadEvent::SpeechStarted { at: start * FRAME });
            }
        } else {
            self.speech_run = 0;
            if self.in_speech {
                self.silence_run += 1;
                if self.silence_run >= frames(self.config.end_silence_ms) {
                    self.in_speech = false;
                    self.silence_run = 0;
                    return Some(VadEvent::SpeechEnded {
                        at: self.last_speech_end * FRAME,
                    });
                }
            }
        }
        None
    }
}

/// The span of `samples` that holds speech, padded by `pad_ms` each side, or
/// `None` if there is no speech at all.
pub fn speech_bounds(samples: &[f32], config: VadConfig) -> Option<(usize, usize)> {
    let mut endpointer = Endpointer::new(config);
    let mut first = None;
    let mut last = None;
    for event in endpointer.push(samples) {
        match event {
            VadEvent::SpeechStarted { at } => {
                first.get_or_insert(at);
            }
            VadEvent::SpeechEnded { at } => last = Some(at),
        }
    }
    if endpointer.in_speech() {
        last = Some(endpointer.last_speech_end * FRAME);
    }
    let pad = config.pad_ms as usize * SAMPLE_RATE as usize / 1000;
    let start = first?.saturating_sub(pad);
    let end = (last? + pad).min(samples.len());
    Some((start, end.max(start)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_is_not_speech() {
        let silence = vec![0.0f32; 16_000 * 3];
        assert_eq!(speech_bounds(&silence, VadConfig::default()), None);
        // Quiet white noise (about -46 dBFS).
        let mut x: u32 = 12345;
        let noise: Vec<f32> = (0..16_000 * 3)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((x >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * 0.01
            })
            .collect();
        assert_eq!(speech_bounds(&noise, VadConfig::default()), None);
    }
}
