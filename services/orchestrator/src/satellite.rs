//! The Wyoming endpoint satellites connect to (port 10700).
//!
//! It answers `describe` with a truthful `info` and `ping` with `pong`, and
//! never leaves a peer waiting: a request it cannot serve, an unknown event
//! type, or an event with malformed data gets an `error` event with a code,
//! and the connection stays open. Framing errors close the connection after an
//! `error` (see [`wyoming::server`]).

use tracing::debug;
use wyoming::event::{Error, Pong};
use wyoming::info::{Artifact, Attribution, HandleProgram, Info, LanguageModel};
use wyoming::{Connection, ConnectionError, Event, Handler};

/// The pipeline stages that have no backend yet; `run-pipeline` needs them.
const MISSING_STAGES: &str = "speech-to-text, intent handling and text-to-speech";

/// Serves satellites and other Wyoming clients.
#[derive(Debug)]
pub struct SatelliteEndpoint {
    info: Info,
}

impl Default for SatelliteEndpoint {
    fn default() -> Self {
        Self::new()
    }
}

impl SatelliteEndpoint {
    /// An endpoint describing this orchestrator.
    pub fn new() -> Self {
        Self { info: describe() }
    }

    /// The `info` this endpoint answers `describe` with.
    pub fn info(&self) -> &Info {
        &self.info
    }

    /// The answer to one event, if it needs one.
    fn respond(&self, event: Event, state: &mut ConnectionState) -> Option<Event> {
        match event {
            Event::Describe(_) => Some(self.info.clone().into()),
            Event::Ping(ping) => Some(
                Pong {
                    text: ping.text,
                    ..Pong::default()
                }
                .into(),
            ),
            Event::RunPipeline(run) => Some(
                Error::new(
                    "stage-unavailable",
                    format!(
                        "cannot run the pipeline from {:?} to {:?}: {MISSING_STAGES} are not configured",
                        run.start_stage, run.end_stage
                    ),
                )
                .into(),
            ),
            // Audio without a pipeline run: say so once per stream, not per chunk.
            Event::AudioStart(_) | Event::AudioChunk(_) => {
                (!std::mem::replace(&mut state.warned_audio, true)).then(|| {
                    Error::new("no-pipeline", "audio received but no pipeline is running").into()
                })
            }
            Event::AudioStop(_) => {
                state.warned_audio = false;
                None
            }
            // Notifications from peers need no answer.
            Event::Pong(_)
            | Event::Error(_)
            | Event::Played(_)
            | Event::SatelliteConnected(_)
            | Event::SatelliteDisconnected(_)
            | Event::StreamingStarted(_)
            | Event::StreamingStopped(_) => None,
            other => Some(
                Error::new(
                    "unsupported-event",
                    format!("the orchestrator does not handle `{}` events", other.kind()),
                )
                .into(),
            ),
        }
    }
}

/// What one connection remembers between events.
#[derive(Debug, Default)]
struct ConnectionState {
    /// An `error` was already sent for the current stray audio stream.
    warned_audio: bool,
}

impl Handler for SatelliteEndpoint {
    async fn handle(&self, conn: &mut Connection) -> Result<(), ConnectionError> {
        let mut state = ConnectionState::default();
        while let Some(event) = conn.next_valid_event().await? {
            debug!(kind = event.kind(), "event");
            if let Some(answer) = self.respond(event, &mut state) {
                conn.send(answer).await?;
            }
        }
        Ok(())
    }
}

/// The orchestrator's `info`: a `handle` program for the whole pipeline,
/// reported as not installed until its stages have backends.
fn describe() -> Info {
    let attribution = Attribution {
        name: "Athena".into(),
        url: env!("CARGO_PKG_REPOSITORY").into(),
    };
    Info {
        handle: vec![HandleProgram {
            artifact: Artifact {
                name: "athena".into(),
                attribution: attribution.clone(),
                installed: false,
                description: Some(format!(
                    "Athena voice pipeline (not available: {MISSING_STAGES} are not configured)"
                )),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            },
            models: vec![LanguageModel {
                artifact: Artifact {
                    name: "athena-pipeline".into(),
                    attribution,
                    installed: false,
                    description: None,
                    version: Some(env!("CARGO_PKG_VERSION").into()),
                },
                languages: vec!["en".into()],
                extra: Default::default(),
            }],
            supports_handled_streaming: false,
            supports_home_control: false,
            extra: Default::default(),
        }],
        ..Info::default()
    }
}
