//! The `[orchestrator]` config section: where it listens, the satellites it
//! connects to itself, the backends each stage calls (by URL, so any of
//! them may run elsewhere), how speech is detected, and how long each stage
//! may take.

use std::net::SocketAddr;
use std::path::PathBuf;

use athena_api::location::Location;
use athena_runtime::{Validate, WyomingConfig};
use serde::{Deserialize, Serialize};
use wyoming::Endpoint;

pub use crate::memory::MemorySettings;

/// The orchestrator's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTP API and ops endpoints (`/healthz`, `/readyz`, `/metrics`).
    pub http: SocketAddr,
    /// Where satellites connect.
    pub wyoming: WyomingConfig,
    /// Satellites the orchestrator connects to itself, as Home Assistant
    /// does (each is a Wyoming server, e.g. `wyoming-satellite`).
    pub satellites: Vec<OutboundSatellite>,
    /// Speech to text: where it is (gRPC, Wyoming or in-process).
    pub stt: SttBackend,
    /// Text to speech: where it is (gRPC, Wyoming or in-process).
    pub tts: TtsBackend,
    /// ha-bridge's HTTP address (entity names for intents, actions).
    pub ha_bridge_url: String,
    /// mode-service's HTTP address (what the current mode allows).
    pub mode_service_url: String,
    /// A YAML file of intent sentences to use instead of the built-in
    /// English set.
    pub intents: Option<PathBuf>,
    /// A YAML file saying which LLM answers what no intent matches
    /// ([`crate::routing`]), instead of the built-in policy; reloaded when
    /// it changes.
    pub routing_policy: Option<PathBuf>,
    /// rag-api's HTTP address (passages for answers), unless the routing
    /// policy names another.
    pub rag_api_url: String,
    /// Each satellite's recent turns, for follow-up questions.
    pub memory: MemorySettings,
    /// End-of-speech detection.
    pub vad: VadSettings,
    /// How long each stage may take.
    pub timeouts: Timeouts,
}

/// A satellite to connect to: `{ name = "kitchen", uri = "tcp://host:10700" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundSatellite {
    /// Its name in the registry and the HTTP API (`/v1/satellites/{name}`):
    /// letters, digits, `-`, `_` and `.`, so it never looks like the
    /// address an inbound satellite is named by.
    pub name: String,
    /// Where it listens: `tcp://HOST:PORT` or `unix://PATH`.
    pub uri: String,
}

impl OutboundSatellite {
    /// The longest name.
    pub const MAX_NAME: usize = 64;

    /// Where to connect (validated with the config).
    pub fn endpoint(&self) -> Result<Endpoint, String> {
        let endpoint: Endpoint = self
            .uri
            .parse()
            .map_err(|e: wyoming::server::InvalidEndpoint| e.to_string())?;
        if endpoint == Endpoint::Stdio {
            return Err("a satellite is reached over tcp:// or unix://, not stdio://".into());
        }
        Ok(endpoint)
    }

    fn validate(&self) -> Result<(), String> {
        let name = &self.name;
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if name.is_empty() || name.len() > Self::MAX_NAME || !name.chars().all(allowed) {
            return Err(format!(
                "satellites: name {name:?} must be 1 to {} letters, digits, '-', '_' or '.'",
                Self::MAX_NAME
            ));
        }
        self.endpoint()
            .map(|_| ())
            .map_err(|e| format!("satellites: {name}: {e}"))
    }
}

/// The speech-to-text backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SttBackend {
    /// Where the service is: `http://stt:8300` (Athena's gRPC),
    /// `tcp://host:10300` (any Wyoming server), or `in-process` (the stt
    /// service in the same `athena` process).
    pub url: String,
    /// Model name; none for the service's default.
    pub model: Option<String>,
    /// Spoken language; none for the model's default.
    pub language: Option<String>,
}

/// The text-to-speech backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TtsBackend {
    /// Where the service is: `http://tts:8200` (Athena's gRPC),
    /// `tcp://host:10200` (any Wyoming server, e.g. wyoming-piper), or
    /// `in-process` (the tts service in the same `athena` process).
    pub url: String,
    /// Voice name; none for the service's default.
    pub voice: Option<String>,
}

/// When a satellite's command has ended.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VadSettings {
    /// A frame is speech when its score is at least this (0–1).
    pub threshold: f32,
    /// Speech must last this long to count (coughs and clicks do not).
    pub min_speech_ms: u32,
    /// Silence this long after speech ends the command.
    pub end_silence_ms: u32,
    /// Silence after which what was said so far is transcribed at once; if
    /// it is a complete local command and no speech followed meanwhile, the
    /// command ends there instead of after `end_silence_ms` (0: off).
    pub command_silence_ms: u32,
    /// Audio kept from before speech was detected, so the first word is
    /// transcribed whole.
    pub preroll_ms: u32,
}

/// Deadlines, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timeouts {
    /// Waiting for speech to start once listening.
    pub no_speech_secs: f64,
    /// The longest command, from the start of speech.
    pub max_speech_secs: f64,
    /// From the end of speech to the transcript.
    pub transcript_secs: f64,
    /// One call to ha-bridge or mode-service.
    pub action_secs: f64,
    /// Speaking a reply (synthesis of the whole reply).
    pub speech_secs: f64,
    /// Waiting for the satellite's `played` after the reply's audio.
    pub played_secs: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http: SocketAddr::from(([0, 0, 0, 0], 8700)),
            wyoming: WyomingConfig::listening_on("tcp://0.0.0.0:10700"),
            satellites: Vec::new(),
            stt: SttBackend::default(),
            tts: TtsBackend::default(),
            ha_bridge_url: "http://127.0.0.1:8600".into(),
            mode_service_url: "http://127.0.0.1:8800".into(),
            intents: None,
            routing_policy: None,
            rag_api_url: "http://127.0.0.1:8500".into(),
            memory: MemorySettings::default(),
            vad: VadSettings::default(),
            timeouts: Timeouts::default(),
        }
    }
}

impl Default for SttBackend {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8300".into(),
            model: None,
            language: None,
        }
    }
}

impl Default for TtsBackend {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8200".into(),
            voice: None,
        }
    }
}

impl Default for VadSettings {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            min_speech_ms: 64,
            end_silence_ms: 500,
            preroll_ms: 300,
            command_silence_ms: 150,
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            no_speech_secs: 8.0,
            max_speech_secs: 15.0,
            transcript_secs: 10.0,
            action_secs: 3.0,
            speech_secs: 20.0,
            played_secs: 60.0,
        }
    }
}

impl VadSettings {
    /// The detector's settings.
    pub fn endpointer(&self) -> athena_vad::VadConfig {
        athena_vad::VadConfig {
            threshold: self.threshold,
            min_speech_ms: self.min_speech_ms,
            end_silence_ms: self.end_silence_ms,
            ..athena_vad::VadConfig::default()
        }
    }
}

impl Timeouts {
    fn all(&self) -> [(&'static str, f64); 6] {
        [
            ("no_speech_secs", self.no_speech_secs),
            ("max_speech_secs", self.max_speech_secs),
            ("transcript_secs", self.transcript_secs),
            ("action_secs", self.action_secs),
            ("speech_secs", self.speech_secs),
            ("played_secs", self.played_secs),
        ]
    }
}

/// Seconds as a duration (validated positive and finite).
pub fn secs(s: f64) -> std::time::Duration {
    std::time::Duration::from_secs_f64(s.max(0.0))
}

impl Validate for Config {
    fn validate(&self) -> Result<(), String> {
        self.wyoming.validate()?;
        let mut names = std::collections::BTreeSet::new();
        for satellite in &self.satellites {
            satellite.validate()?;
            if !names.insert(satellite.name.as_str()) {
                return Err(format!(
                    "satellites: the name {:?} is used twice",
                    satellite.name
                ));
            }
        }
        for (name, url) in [("stt.url", &self.stt.url), ("tts.url", &self.tts.url)] {
            Location::parse(url).map_err(|e| format!("{name}: {e}"))?;
        }
        for (name, url) in [
            ("ha_bridge_url", &self.ha_bridge_url),
            ("mode_service_url", &self.mode_service_url),
            ("rag_api_url", &self.rag_api_url),
        ] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!(
                    "{name} must be an http:// or https:// URL, not {url:?}"
                ));
            }
        }
        for (name, value) in self.timeouts.all() {
            if !(value.is_finite() && value > 0.0 && value < 86_400.0) {
                return Err(format!(
                    "timeouts.{name} must be between 0 and 86400 seconds"
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.vad.threshold) {
            return Err("vad.threshold must be between 0 and 1".into());
        }
        if self.vad.end_silence_ms == 0 || self.vad.end_silence_ms > 10_000 {
            return Err("vad.end_silence_ms must be between 1 and 10000".into());
        }
        if self.vad.command_silence_ms > self.vad.end_silence_ms {
            return Err("vad.command_silence_ms must be at most vad.end_silence_ms".into());
        }
        if self.vad.preroll_ms > 5_000 {
            return Err("vad.preroll_ms must be at most 5000".into());
        }
        self.memory.validate()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_satellites(satellites: &[(&str, &str)]) -> Config {
        Config {
            satellites: satellites
                .iter()
                .map(|(name, uri)| OutboundSatellite {
                    name: (*name).into(),
                    uri: (*uri).into(),
                })
                .collect(),
            ..Config::default()
        }
    }

    #[test]
    fn satellites_are_checked() {
        let ok = with_satellites(&[
            ("kitchen", "tcp://192.0.2.1:10700"),
            ("living-room.2", "unix:///run/satellite.sock"),
        ]);
        assert_eq!(ok.validate(), Ok(()));
        for (satellites, problem) in [
            (vec![("", "tcp://h:1")], "name \"\""),
            (vec![("127.0.0.1:5", "tcp://h:1")], "letters, digits"),
            (vec![("a/b", "tcp://h:1")], "letters, digits"),
            (vec![("kitchen", "stdio://")], "not stdio://"),
            (vec![("kitchen", "http://h:1")], "invalid Wyoming URI"),
            (
                vec![("kitchen", "tcp://h:1"), ("kitchen", "tcp://h:2")],
                "used twice",
            ),
        ] {
            let error = with_satellites(&satellites)
                .validate()
                .err()
                .unwrap_or_default();
            assert!(error.contains(problem), "{satellites:?}: {error}");
        }
    }
}
