//! A Piper voice: a VITS model in ONNX (`<voice>.onnx`) with its
//! configuration (`<voice>.onnx.json`), run by ONNX Runtime.
//!
//! One sentence in, its audio out: phonemes (espeak-ng) → ids (the voice's
//! `phoneme_id_map`, each phoneme followed by the pad symbol, between `^`
//! and `$`) → the model with `[noise_scale, length_scale, noise_w]` (and
//! the speaker for multi-speaker voices) → samples, peak-normalized to
//! 16-bit PCM as Piper does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use ort::session::Session;
use ort::value::Tensor;
use serde::Deserialize;

use super::phonemize::{PhonemizeError, phonemize};

/// What a voice can do, from its `.onnx.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct VoiceConfig {
    /// Output sample rate.
    pub audio: AudioConfig,
    /// The espeak-ng voice for phonemes.
    pub espeak: EspeakConfig,
    /// Default synthesis settings.
    pub inference: Scales,
    /// Speakers (1 for most voices).
    #[serde(default = "one")]
    pub num_speakers: u32,
    /// Speaker names → ids, for multi-speaker voices.
    #[serde(default)]
    pub speaker_id_map: HashMap<String, i64>,
    /// Phoneme (one character) → ids.
    pub phoneme_id_map: HashMap<String, Vec<i64>>,
    /// The voice's language, e.g. `en_US`.
    #[serde(default)]
    pub language: Option<Language>,
}

fn one() -> u32 {
    1
}

/// `audio` of a voice configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct AudioConfig {
    /// Hz.
    pub sample_rate: u32,
}

/// `espeak` of a voice configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct EspeakConfig {
    /// e.g. `en-us`.
    pub voice: String,
}

/// `language` of a voice configuration.
#[derive(Debug, Clone, Deserialize)]
pub struct Language {
    /// e.g. `en_US`.
    pub code: String,
}

/// The three VITS scales.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Scales {
    /// Variation of the voice (0.667).
    pub noise_scale: f32,
    /// Speaking rate: above 1 slower, below 1 faster.
    pub length_scale: f32,
    /// Variation of phoneme durations (0.8).
    pub noise_w: f32,
}

/// Why a voice failed.
#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    /// The files are missing or unreadable.
    #[error("voice {}: {reason}", .path.display())]
    Load {
        /// The model file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Phonemization failed.
    #[error(transparent)]
    Phonemize(#[from] PhonemizeError),
    /// A speaker the voice does not have.
    #[error("speaker {speaker} is not one of this voice's {count} speakers")]
    UnknownSpeaker {
        /// Asked for.
        speaker: String,
        /// How many there are.
        count: u32,
    },
    /// ONNX Runtime failed.
    #[error("synthesis failed: {0}")]
    Inference(String),
}

/// One loaded Piper voice.
pub struct PiperVoice {
    name: String,
    config: VoiceConfig,
    session: Mutex<Session>,
    pad: i64,
    bos: i64,
    eos: i64,
}

impl std::fmt::Debug for PiperVoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PiperVoice")
            .field("name", &self.name)
            .field("sample_rate", &self.config.audio.sample_rate)
            .field("speakers", &self.config.num_speakers)
            .finish_non_exhaustive()
    }
}

impl PiperVoice {
    /// Loads `model` (`.onnx`) and its `.onnx.json` next to it. ONNX
    /// Runtime must be loaded first (`athena_onnx::init`).
    pub fn load(name: &str, model: &Path, threads: usize) -> Result<Self, VoiceError> {
        let load = |reason: String| VoiceError::Load {
            path: model.to_owned(),
            reason,
        };
        let config_path = PathBuf::from(format!("{}.json", model.display()));
        let config: VoiceConfig = serde_json::from_slice(
            &std::fs::read(&config_path)
                .map_err(|e| load(format!("cannot read {}: {e}", config_path.display())))?,
        )
        .map_err(|e| {
            load(format!(
                "{} is not a Piper voice configuration: {e}",
                config_path.display()
            ))
        })?;
        let id = |symbol: &str| {
            config
                .phoneme_id_map
                .get(symbol)
                .and_then(|ids| ids.first().copied())
                .ok_or_else(|| load(format!("the phoneme map has no {symbol:?}")))
        };
        let (pad, bos, eos) = (id("_")?, id("^")?, id("$")?);
        if !model.is_file() {
            return Err(load("the model file does not exist".into()));
        }
        let ort_error =
            |e: &dyn std::fmt::Display| load(format!("ONNX Runtime cannot load it: {e}"));
        let session = Session::builder()
            .map_err(|e| ort_error(&e))?
            .with_intra_threads(threads.max(1))
            .map_err(|e| ort_error(&e))?
            .with_inter_threads(1)
            .map_err(|e| ort_error(&e))?
            .commit_from_file(model)
            .map_err(|e| ort_error(&e))?;
        let inputs: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        for needed in ["input", "input_lengths", "scales"] {
            if !inputs.contains(&needed) {
                return Err(load(format!(
                    "not a Piper model: no input {needed:?} (has {inputs:?})"
                )));
            }
        }
        Ok(Self {
            name: name.to_owned(),
            config,
            session: Mutex::new(session),
            pad,
            bos,
            eos,
        })
    }

    /// The voice's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its configuration.
    pub fn config(&self) -> &VoiceConfig {
        &self.config
    }

    /// The speaker id for `speaker` (a name or a number), or the first.
    pub fn speaker_id(&self, speaker: Option<&str>) -> Result<i64, VoiceError> {
        let Some(speaker) = speaker.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(0);
        };
        let unknown = || VoiceError::UnknownSpeaker {
            speaker: speaker.to_owned(),
            count: self.config.num_speakers,
        };
        if let Some(id) = self.config.speaker_id_map.get(speaker) {
            return Ok(*id);
        }
        match speaker.parse::<i64>() {
            Ok(id) if id >= 0 && id < i64::from(self.config.num_speakers) => Ok(id),
            _ => Err(unknown()),
        }
    }

    /// The model's input ids for IPA `phonemes`.
    pub fn phoneme_ids(&self, phonemes: &str) -> Vec<i64> {
        let mut ids = Vec::with_capacity(phonemes.len() * 2 + 2);
        ids.push(self.bos);
        let mut buf = [0u8; 4];
        for c in phonemes.chars() {
            if let Some(id) = self
                .config
                .phoneme_id_map
                .get(c.encode_utf8(&mut buf) as &str)
                .and_then(|v| v.first())
            {
                ids.push(*id);
                ids.push(self.pad);
            }
        }
        ids.push(self.eos);
        ids
    }

    /// Speaks one sentence: f32 samples at the voice's rate.
    pub fn speak(
        &self,
        sentence: &str,
        scales: Scales,
        speaker: i64,
    ) -> Result<Vec<f32>, VoiceError> {
        let phonemes = phonemize(sentence, &self.config.espeak.voice)?;
        let ids = self.phoneme_ids(&phonemes);
        if ids.len() <= 2 {
            return Ok(Vec::new());
        }
        self.infer(ids, scales, speaker)
    }

    fn infer(&self, ids: Vec<i64>, scales: Scales, speaker: i64) -> Result<Vec<f32>, VoiceError> {
        let err = |e: ort::Error| VoiceError::Inference(e.to_string());
        let n = ids.len();
        let input = Tensor::<i64>::from_array(([1usize, n], ids)).map_err(err)?;
        let lengths = Tensor::<i64>::from_array(([1usize], vec![n as i64])).map_err(err)?;
        let scales = Tensor::<f32>::from_array((
            [3usize],
            vec![scales.noise_scale, scales.length_scale, scales.noise_w],
        ))
        .map_err(err)?;
        let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        let outputs = if self.config.num_speakers > 1 {
            let sid = Tensor::<i64>::from_array(([1usize], vec![speaker])).map_err(err)?;
            session.run(ort::inputs![input, lengths, scales, sid])
        } else {
            session.run(ort::inputs![input, lengths, scales])
        }
        .map_err(err)?;
        let (_, audio) = outputs[0].try_extract_tensor::<f32>().map_err(err)?;
        Ok(audio.to_vec())
    }
}

/// Samples as 16-bit PCM, scaled so the loudest is at full scale (Piper's
/// normalization; silence stays silent).
pub fn to_pcm16(samples: &[f32]) -> Vec<i16> {
    let peak = samples.iter().fold(0.0f32, |m, s| m.max(s.abs())).max(0.01);
    let gain = 32767.0 / peak;
    samples
        .iter()
        .map(|s| (s * gain).round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}
