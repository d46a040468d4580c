//! The `[tts]` config section.

use std::net::SocketAddr;
use std::path::PathBuf;

use athena_models::ModelRef;
use athena_runtime::{Validate, WyomingConfig};
use serde::{Deserialize, Serialize};

/// How the tts service listens and speaks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTP: `/v1/audio/speech`, gRPC, and the ops endpoints.
    pub http: SocketAddr,
    /// Wyoming, for Home Assistant and satellites.
    pub wyoming: WyomingConfig,
    /// The voices to load: catalog names (`athena models list`) or paths of
    /// Piper `.onnx` files (with their `.onnx.json` beside them).
    pub voices: Vec<String>,
    /// The voice used when a request names none; empty for the first.
    pub default_voice: String,
    /// The ONNX Runtime library; empty for `ORT_DYLIB_PATH`, then the catalog's.
    pub onnxruntime: String,
    /// CPU threads for synthesis (one ONNX Runtime pool for the process).
    pub threads: usize,
    /// Try ONNX Runtime's CUDA provider (in builds with the `cuda` feature);
    /// falls back to the CPU.
    pub gpu: bool,
    /// Speaking rate for every voice (> 1 slower); unset for each voice's own.
    pub length_scale: Option<f32>,
    /// Voice variation; unset for each voice's own.
    pub noise_scale: Option<f32>,
    /// Variation of phoneme durations; unset for each voice's own.
    pub noise_w: Option<f32>,
    /// Output rate in Hz (resampled); 0 for each voice's own.
    pub sample_rate: u32,
    /// Silence after each sentence, in seconds.
    pub sentence_silence: f32,
    /// Audio frames (of 256 samples) in the first piece of a sentence that
    /// is sent before the rest is decoded; 0 sends whole sentences.
    pub first_chunk_frames: usize,
    /// Longest text accepted in one request, in characters.
    pub max_text_chars: usize,
    /// Sentences synthesized at once (across all requests).
    pub concurrency: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http: SocketAddr::from(([0, 0, 0, 0], 8200)),
            wyoming: WyomingConfig::listening_on("tcp://0.0.0.0:10200"),
            voices: vec!["en_US-joe-medium".into()],
            default_voice: String::new(),
            onnxruntime: String::new(),
            threads: 2,
            gpu: false,
            length_scale: None,
            noise_scale: None,
            noise_w: None,
            sample_rate: 0,
            sentence_silence: 0.2,
            first_chunk_frames: 32,
            max_text_chars: 100_000,
            concurrency: 1,
        }
    }
}

impl Config {
    /// The ONNX Runtime library the config names, if any.
    pub fn onnxruntime_path(&self) -> Option<PathBuf> {
        Some(PathBuf::from(&self.onnxruntime)).filter(|p| !p.as_os_str().is_empty())
    }

    /// The name of the default voice.
    pub fn default_voice_name(&self) -> String {
        if self.default_voice.is_empty() {
            self.voices
                .first()
                .map(|v| voice_name(v))
                .unwrap_or_default()
        } else {
            self.default_voice.clone()
        }
    }
}

/// The name a voice setting gives the voice: the catalog name, or the file
/// name without `.onnx`.
pub fn voice_name(setting: &str) -> String {
    ModelRef::parse(setting).name()
}

/// Checks the speaking scales a config or a request gives.
pub fn check_scale(
    name: &str,
    value: f32,
    range: std::ops::RangeInclusive<f32>,
) -> Result<(), String> {
    if value.is_finite() && range.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{name} must be between {} and {} (got {value})",
            range.start(),
            range.end()
        ))
    }
}

/// Output rates a request may ask for.
pub const SAMPLE_RATES: std::ops::RangeInclusive<u32> = 8_000..=48_000;
/// `length_scale` values a request may ask for.
pub const LENGTH_SCALES: std::ops::RangeInclusive<f32> = 0.1..=10.0;
/// `noise_scale` and `noise_w` values.
pub const NOISE_SCALES: std::ops::RangeInclusive<f32> = 0.0..=2.0;
/// `sentence_silence` values, in seconds.
pub const SENTENCE_SILENCES: std::ops::RangeInclusive<f32> = 0.0..=5.0;

impl Validate for Config {
    fn validate(&self) -> Result<(), String> {
        self.wyoming.validate()?;
        if self.voices.is_empty() {
            return Err("tts.voices must name at least one voice".into());
        }
        let catalog = athena_models::Catalog::built_in().map_err(|e| e.to_string())?;
        let mut names = Vec::new();
        for setting in &self.voices {
            match ModelRef::parse(setting) {
                ModelRef::Catalog(name) => {
                    let model = catalog.get(&name).map_err(|e| format!("tts.voices: {e}"))?;
                    if model.kind != athena_models::ModelKind::Tts {
                        return Err(format!("tts.voices: {name} is not a text-to-speech voice"));
                    }
                }
                ModelRef::Path(path) => {
                    if path.extension().is_none_or(|e| e != "onnx") {
                        return Err(format!(
                            "tts.voices: {} is not a Piper voice (a .onnx file)",
                            path.display()
                        ));
                    }
                    if !path.is_file() {
                        return Err(format!("tts.voices: {} does not exist", path.display()));
                    }
                }
            }
            let name = voice_name(setting);
            if names.contains(&name) {
                return Err(format!("tts.voices: {name} is listed twice"));
            }
            names.push(name);
        }
        let default = self.default_voice_name();
        if !names.contains(&default) {
            return Err(format!(
                "tts.default_voice {default} is not one of tts.voices ({})",
                names.join(", ")
            ));
        }
        if let Some(v) = self.length_scale {
            check_scale("tts.length_scale", v, LENGTH_SCALES)?;
        }
        for (name, value) in [
            ("tts.noise_scale", self.noise_scale),
            ("tts.noise_w", self.noise_w),
        ] {
            if let Some(v) = value {
                check_scale(name, v, NOISE_SCALES)?;
            }
        }
        check_scale(
            "tts.sentence_silence",
            self.sentence_silence,
            SENTENCE_SILENCES,
        )?;
        if self.sample_rate != 0 && !SAMPLE_RATES.contains(&self.sample_rate) {
            return Err(format!(
                "tts.sample_rate must be 0 (the voice's own) or between {} and {} Hz",
                SAMPLE_RATES.start(),
                SAMPLE_RATES.end()
            ));
        }
        for (name, value) in [
            ("threads", self.threads),
            ("concurrency", self.concurrency),
            ("max_text_chars", self.max_text_chars),
        ] {
            if value == 0 {
                return Err(format!("tts.{name} must be greater than 0"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
        assert_eq!(Config::default().default_voice_name(), "en_US-joe-medium");
    }

    #[test]
    fn bad_settings_say_what_is_wrong() {
        let bad = |f: fn(&mut Config)| {
            let mut c = Config::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert!(bad(|c| c.voices.clear()).contains("at least one"));
        assert!(bad(|c| c.voices = vec!["no-such-voice".into()]).contains("no-such-voice"));
        assert!(
            bad(|c| c.voices = vec!["whisper-tiny.en".into()]).contains("not a text-to-speech")
        );
        assert!(bad(|c| c.voices = vec!["/nowhere/v.onnx".into()]).contains("does not exist"));
        assert!(bad(|c| c.voices = vec!["/nowhere/v.bin".into()]).contains("not a Piper voice"));
        assert!(bad(|c| c.default_voice = "other".into()).contains("not one of"));
        assert!(bad(|c| c.length_scale = Some(0.0)).contains("length_scale"));
        assert!(bad(|c| c.noise_w = Some(f32::NAN)).contains("noise_w"));
        assert!(bad(|c| c.sample_rate = 100).contains("sample_rate"));
        assert!(bad(|c| c.sentence_silence = -1.0).contains("sentence_silence"));
        assert!(bad(|c| c.threads = 0).contains("threads"));
    }

    #[test]
    fn voices_are_named_after_their_files() {
        assert_eq!(voice_name("en_US-joe-medium"), "en_US-joe-medium");
        assert_eq!(
            voice_name("/v/de_DE-thorsten-high.onnx"),
            "de_DE-thorsten-high"
        );
    }
}
