//! A Piper voice: a VITS model in ONNX (`<voice>.onnx`) with its
//! configuration (`<voice>.onnx.json`), run by ONNX Runtime.
//!
//! One sentence in, its audio out: phonemes (espeak-ng) → ids (the voice's
//! `phoneme_id_map`, each phoneme followed by the pad symbol, between `^`
//! and `$`) → the model with `[noise_scale, length_scale, noise_w]` (and
//! the speaker for multi-speaker voices) → samples.
//!
//! The model is cut in two at its vocoder ([`super::split`]) when its
//! structure allows: the encoder runs once per sentence, the vocoder on
//! windows of frames, so the first piece of audio is out after a fraction
//! of the sentence's work. A model that cannot be cut runs whole.
//!
//! Loudness is fixed per voice: a calibration sentence spoken at load sets
//! the gain that brings its peak near full scale, and every sentence uses
//! it, so pieces of one sentence (and sentences of one reply) match.

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

/// Vocoder context on each side of a window, in frames: enough for the
/// window to decode to the samples the whole sequence gives (Piper's
/// HiFi-GAN: identical to 1e-7 from 12 frames on).
const CONTEXT_FRAMES: usize = 16;

/// Windows after the first grow up to this many frames.
const MAX_WINDOW_FRAMES: usize = 256;

/// Spoken at load to set the voice's gain.
const CALIBRATION: &str = "Calibrating the voice: one, two, three, four, five, six!";

/// How one sentence is spoken.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeakOptions {
    /// The VITS scales.
    pub scales: Scales,
    /// Speaker id (0 for single-speaker voices).
    pub speaker: i64,
    /// Frames in the first piece of audio; 0 for the whole sentence at once.
    pub first_frames: usize,
}

/// Where a voice runs. CPU threads are the process's shared ONNX Runtime
/// pool (`athena_onnx::init`).
#[derive(Debug, Clone, Default)]
pub struct Device {
    /// Try ONNX Runtime's CUDA provider.
    pub gpu: bool,
}

/// The network: whole, or cut in front of the vocoder.
enum Network {
    Whole(Mutex<Session>),
    Split {
        encoder: Mutex<Session>,
        decoder: Mutex<Session>,
        latent: String,
        /// The decoder also takes the speaker id.
        decoder_sid: bool,
    },
}

/// One loaded Piper voice.
pub struct PiperVoice {
    name: String,
    config: VoiceConfig,
    network: Network,
    device: String,
    gain: f32,
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
            .field("streaming", &self.streams())
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// A session for `model` on `device`: the CUDA provider if asked and it
/// works, the CPU otherwise (the reason is returned with it).
fn session(model: &[u8], device: &Device) -> Result<(Session, String), String> {
    let build = |gpu: bool| -> Result<Session, String> {
        let text = |e: &dyn std::fmt::Display| e.to_string();
        // Threads come from the process's shared pool (`athena_onnx::init`).
        // Sentences have every length: a memory plan cached per input shape
        // would grow with each new one.
        let mut builder = Session::builder()
            .map_err(|e| text(&e))?
            .with_memory_pattern(false)
            .map_err(|e| text(&e))?;
        if gpu {
            builder = builder
                .with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()])
                .map_err(|e| text(&e))?;
        }
        builder.commit_from_memory(model).map_err(|e| text(&e))
    };
    if device.gpu {
        match build(true) {
            Ok(session) => return Ok((session, "gpu (CUDA)".into())),
            Err(e) => {
                tracing::warn!(error = %e, "the CUDA provider is not available; using the CPU");
                metrics::counter!("tts_gpu_fallbacks_total").increment(1);
                return Ok((build(false)?, format!("cpu (CUDA failed: {e})")));
            }
        }
    }
    Ok((build(false)?, "cpu".into()))
}

impl PiperVoice {
    /// Loads `model` (`.onnx`) and its `.onnx.json` next to it. ONNX
    /// Runtime must be loaded first (`athena_onnx::init`).
    pub fn load(name: &str, model: &Path, device: &Device) -> Result<Self, VoiceError> {
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
        let bytes = std::fs::read(model).map_err(|e| load(format!("cannot read it: {e}")))?;
        let ort_error = |e: String| load(format!("ONNX Runtime cannot load it: {e}"));
        // Cut in front of the vocoder when the structure allows; the whole
        // model is given to ONNX Runtime only when it does not.
        let (network, inputs, device_name) = match super::split::split(&bytes) {
            Ok(halves) => {
                let (encoder, device_name) = session(&halves.encoder, device).map_err(ort_error)?;
                let (decoder, _) = session(&halves.decoder, device).map_err(ort_error)?;
                let mut inputs: Vec<String> = encoder
                    .inputs()
                    .iter()
                    .map(|i| i.name().to_owned())
                    .collect();
                inputs.extend(halves.decoder_inputs.iter().cloned());
                let network = Network::Split {
                    encoder: Mutex::new(encoder),
                    decoder: Mutex::new(decoder),
                    decoder_sid: halves.decoder_inputs.iter().any(|i| i == "sid"),
                    latent: halves.latent,
                };
                (network, inputs, device_name)
            }
            Err(e) => {
                let (whole, device_name) = session(&bytes, device).map_err(ort_error)?;
                tracing::info!(voice = name, reason = %e, "the voice runs whole (first audio waits for whole sentences)");
                let inputs = whole.inputs().iter().map(|i| i.name().to_owned()).collect();
                (Network::Whole(Mutex::new(whole)), inputs, device_name)
            }
        };
        let has = |input: &str| inputs.iter().any(|i| i == input);
        for needed in ["input", "input_lengths", "scales"] {
            if !has(needed) {
                return Err(load(format!(
                    "not a Piper model: no input {needed:?} (has {inputs:?})"
                )));
            }
        }
        if (config.num_speakers > 1) != has("sid") {
            return Err(load(format!(
                "the configuration says {} speaker(s) but the model has {} speaker input",
                config.num_speakers,
                if has("sid") { "a" } else { "no" }
            )));
        }
        let mut voice = Self {
            name: name.to_owned(),
            config,
            network,
            device: device_name,
            gain: 1.0,
            pad,
            bos,
            eos,
        };
        let calibration = voice.speak(CALIBRATION, voice.config.inference, 0)?;
        let peak = calibration.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        voice.gain = 0.9 / peak.max(0.01);
        Ok(voice)
    }

    /// The voice's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its configuration.
    pub fn config(&self) -> &VoiceConfig {
        &self.config
    }

    /// Where it runs (`cpu`, `gpu (CUDA)`, or why the GPU is not used).
    pub fn device(&self) -> &str {
        &self.device
    }

    /// Whether a sentence's audio comes in pieces (the model could be cut).
    pub fn streams(&self) -> bool {
        matches!(self.network, Network::Split { .. })
    }

    /// The factor that brings this voice's samples to 16-bit full scale.
    pub fn gain(&self) -> f32 {
        self.gain
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

    /// The speakers' names, by id.
    pub fn speakers(&self) -> Vec<String> {
        if self.config.num_speakers <= 1 {
            return Vec::new();
        }
        let mut named: Vec<(&i64, &String)> = self
            .config
            .speaker_id_map
            .iter()
            .map(|(n, id)| (id, n))
            .collect();
        named.sort();
        if named.is_empty() {
            (0..self.config.num_speakers)
                .map(|i| i.to_string())
                .collect()
        } else {
            named.into_iter().map(|(_, n)| n.clone()).collect()
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

    /// Speaks one sentence: all its samples at the voice's rate.
    pub fn speak(
        &self,
        sentence: &str,
        scales: Scales,
        speaker: i64,
    ) -> Result<Vec<f32>, VoiceError> {
        let mut all = Vec::new();
        let options = SpeakOptions {
            scales,
            speaker,
            first_frames: 0,
        };
        self.speak_in_pieces(sentence, &options, &mut |piece| {
            all.extend_from_slice(&piece);
            true
        })?;
        Ok(all)
    }

    /// Speaks one sentence, handing each piece of audio (f32 samples at the
    /// voice's rate) to `emit` as soon as it is decoded; `emit` returns
    /// false to stop early (the listener left).
    pub fn speak_in_pieces(
        &self,
        sentence: &str,
        options: &SpeakOptions,
        emit: &mut dyn FnMut(Vec<f32>) -> bool,
    ) -> Result<(), VoiceError> {
        let phonemes = phonemize(sentence, &self.config.espeak.voice)?;
        let ids = self.phoneme_ids(&phonemes);
        if ids.len() <= 2 {
            return Ok(());
        }
        let err = |e: ort::Error| VoiceError::Inference(e.to_string());
        let n = ids.len();
        let input = Tensor::<i64>::from_array(([1usize, n], ids)).map_err(err)?;
        let lengths = Tensor::<i64>::from_array(([1usize], vec![n as i64])).map_err(err)?;
        let s = options.scales;
        let scales =
            Tensor::<f32>::from_array(([3usize], vec![s.noise_scale, s.length_scale, s.noise_w]))
                .map_err(err)?;
        let multi = self.config.num_speakers > 1;
        let sid = || Tensor::<i64>::from_array(([1usize], vec![options.speaker]));
        let run = |session: &Mutex<Session>| -> Result<(Vec<usize>, Vec<f32>), VoiceError> {
            let mut session = session.lock().unwrap_or_else(PoisonError::into_inner);
            let inputs = if multi {
                ort::inputs![
                    "input" => input.clone(), "input_lengths" => lengths.clone(),
                    "scales" => scales.clone(), "sid" => sid().map_err(err)?
                ]
            } else {
                ort::inputs![
                    "input" => input.clone(), "input_lengths" => lengths.clone(),
                    "scales" => scales.clone()
                ]
            };
            let outputs = session.run(inputs).map_err(err)?;
            let (shape, values) = outputs[0].try_extract_tensor::<f32>().map_err(err)?;
            let shape = shape.iter().map(|&d| d.max(0) as usize).collect();
            Ok((shape, values.to_vec()))
        };
        match &self.network {
            Network::Whole(session) => {
                let (_, audio) = run(session)?;
                emit(audio);
                Ok(())
            }
            Network::Split {
                encoder,
                decoder,
                latent,
                decoder_sid,
            } => {
                let (shape, z) = run(encoder)?;
                let &[1, channels, frames] = shape.as_slice() else {
                    return Err(VoiceError::Inference(format!(
                        "the encoder gave a latent of shape {shape:?}, not [1, channels, frames]"
                    )));
                };
                let mut decoder = decoder.lock().unwrap_or_else(PoisonError::into_inner);
                let first = if options.first_frames == 0 {
                    frames
                } else {
                    options.first_frames
                };
                let (mut start, mut window) = (0, first);
                while start < frames {
                    let end = (start + window).min(frames);
                    let (from, to) = (
                        start.saturating_sub(CONTEXT_FRAMES),
                        (end + CONTEXT_FRAMES).min(frames),
                    );
                    let width = to - from;
                    let mut part = Vec::with_capacity(channels * width);
                    for c in 0..channels {
                        part.extend_from_slice(&z[c * frames + from..c * frames + to]);
                    }
                    let part = Tensor::<f32>::from_array(([1usize, channels, width], part))
                        .map_err(err)?;
                    let outputs = if *decoder_sid {
                        decoder.run(
                            ort::inputs![latent.as_str() => part, "sid" => sid().map_err(err)?],
                        )
                    } else {
                        decoder.run(ort::inputs![latent.as_str() => part])
                    }
                    .map_err(err)?;
                    let (_, audio) = outputs[0].try_extract_tensor::<f32>().map_err(err)?;
                    if audio.len() % width != 0 {
                        return Err(VoiceError::Inference(format!(
                            "the vocoder gave {} samples for {width} frames",
                            audio.len()
                        )));
                    }
                    let hop = audio.len() / width;
                    let piece = audio[(start - from) * hop..(end - from) * hop].to_vec();
                    if !emit(piece) {
                        return Ok(());
                    }
                    start = end;
                    window = (window * 2).min(MAX_WINDOW_FRAMES.max(first));
                }
                Ok(())
            }
        }
    }
}

/// Samples as 16-bit PCM with `gain` (a voice's [`PiperVoice::gain`]),
/// clipped at full scale.
pub fn to_pcm16(samples: &[f32], gain: f32) -> Vec<i16> {
    let gain = gain * 32767.0;
    samples
        .iter()
        .map(|s| (s * gain).round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}
