//! The Wyoming endpoint satellites connect to (port 10700).
//!
//! Each connection is one satellite with its own state. `run-pipeline`
//! starts a [`Pipeline`] run (replacing one in progress); the satellite's
//! audio, `audio-stop` and `played` are passed to that run, whose events
//! (progress, the reply's audio, timers) go back on the same connection.
//! Reading and writing are separate, so `ping` and `describe` are answered
//! while a run waits on a backend.
//!
//! Nobody is left waiting: an unknown event type, or an event with
//! malformed data, gets an `error` event with a code and the connection
//! stays open. Framing errors close the connection after an `error` (see
//! [`wyoming::server`]).

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::debug;
use wyoming::event::{Error, Pong};
use wyoming::info::{Artifact, Attribution, HandleProgram, Info, LanguageModel};
use wyoming::{Connection, ConnectionError, Event, Handler};

use crate::actions::SatelliteLink;
use crate::pipeline::{Incoming, Pipeline};

/// Events queued towards one satellite before a run waits for the writer.
const OUTGOING: usize = 256;
/// Events from the satellite queued towards its run: about 30 s of audio
/// in 1024-sample chunks, more than a command lasts.
const INCOMING: usize = 512;

/// Serves satellites and other Wyoming clients.
#[derive(Debug)]
pub struct SatelliteEndpoint {
    info: Info,
    pipeline: Arc<Pipeline>,
}

impl SatelliteEndpoint {
    /// An endpoint running `pipeline` for its satellites.
    pub fn new(pipeline: Arc<Pipeline>) -> Self {
        Self {
            info: describe(),
            pipeline,
        }
    }

    /// The `info` this endpoint answers `describe` with.
    pub fn info(&self) -> &Info {
        &self.info
    }
}

/// A pipeline run in progress for a satellite. When the satellite leaves,
/// the run reads what it had already sent (a last `played`), then the end of
/// its input, and stops: nothing it does outlives its deadlines.
#[derive(Debug)]
struct ActiveRun {
    input: mpsc::Sender<Incoming>,
    task: JoinHandle<()>,
}

/// One connected satellite.
struct Session<'a> {
    endpoint: &'a SatelliteEndpoint,
    id: String,
    out: mpsc::Sender<Event>,
    run: Option<ActiveRun>,
    /// An `error` was already sent for the current stray audio stream.
    warned_audio: bool,
}

impl Session<'_> {
    async fn send(&self, event: impl Into<Event>) {
        // A closed channel means the writer failed; the handler returns
        // that error.
        let _ = self.out.send(event.into()).await;
    }

    /// Passes `incoming` to the run; false when no run is listening.
    fn pass_to_run(&mut self, incoming: Incoming) -> bool {
        let Some(run) = &self.run else {
            return false;
        };
        match run.input.try_send(incoming) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                // The run has stopped reading for longer than a command
                // lasts: end it rather than let audio pile up.
                if let Some(run) = self.run.take() {
                    run.task.abort();
                }
                false
            }
            // The run ended: late audio from a satellite that had not yet
            // seen the transcript is expected.
            Err(mpsc::error::TrySendError::Closed(_)) => true,
        }
    }

    async fn on_event(&mut self, event: Event) {
        match event {
            Event::Describe(_) => self.send(self.endpoint.info.clone()).await,
            Event::Ping(ping) => {
                self.send(Pong {
                    text: ping.text,
                    ..Pong::default()
                })
                .await;
            }
            Event::RunPipeline(request) => {
                if let Some(run) = self.run.take() {
                    run.task.abort();
                }
                self.warned_audio = false;
                let (input, rx) = mpsc::channel(INCOMING);
                let link = SatelliteLink {
                    id: self.id.clone(),
                    events: self.out.clone(),
                };
                let task = tokio::spawn(self.endpoint.pipeline.clone().run(request, rx, link));
                self.run = Some(ActiveRun { input, task });
            }
            Event::AudioChunk(chunk) => {
                let incoming = Incoming::Audio {
                    format: chunk.format,
                    audio: chunk.audio,
                };
                if !self.pass_to_run(incoming) {
                    self.stray_audio().await;
                }
            }
            Event::AudioStart(_) => {
                if self.run.is_none() {
                    self.stray_audio().await;
                }
            }
            Event::AudioStop(_) => {
                if !self.pass_to_run(Incoming::AudioStop) {
                    self.warned_audio = false;
                }
            }
            Event::Played(_) => {
                self.pass_to_run(Incoming::Played);
            }
            // Notifications from peers need no answer.
            Event::Pong(_)
            | Event::Error(_)
            | Event::SatelliteConnected(_)
            | Event::SatelliteDisconnected(_)
            | Event::StreamingStarted(_)
            | Event::StreamingStopped(_) => {}
            other => {
                self.send(Error::new(
                    "unsupported-event",
                    format!("the orchestrator does not handle `{}` events", other.kind()),
                ))
                .await;
            }
        }
    }

    /// Audio without a pipeline run: said once per stream, not per chunk.
    async fn stray_audio(&mut self) {
        if !std::mem::replace(&mut self.warned_audio, true) {
            self.send(Error::new(
                "no-pipeline",
                "audio received but no pipeline is running",
            ))
            .await;
        }
    }
}

impl Handler for SatelliteEndpoint {
    async fn handle(&self, conn: &mut Connection) -> Result<(), ConnectionError> {
        let (out, mut outgoing) = mpsc::channel::<Event>(OUTGOING);
        let mut session = Session {
            endpoint: self,
            id: conn.peer.clone(),
            out,
            run: None,
            warned_audio: false,
        };
        let Connection { reader, writer, .. } = conn;
        let reading = async {
            loop {
                match reader.next_event().await {
                    // A known event with malformed data: the stream is still
                    // in sync, so say what was wrong and read on.
                    Err(ConnectionError::InvalidEvent(e)) => {
                        session.send(Error::new(e.code(), e.to_string())).await;
                    }
                    Err(e) => return Err(e),
                    Ok(None) => return Ok(()),
                    Ok(Some(event)) => {
                        debug!(kind = event.kind(), "event");
                        session.on_event(event).await;
                    }
                }
            }
        };
        let writing = async {
            while let Some(event) = outgoing.recv().await {
                writer.send(event).await?;
            }
            Ok(())
        };
        let finished = tokio::select! {
            read = reading => Ok(read),
            written = writing => Err(written),
        };
        match finished {
            Ok(read) => {
                // Whatever was queued before the peer finished still goes out.
                drop(session);
                while let Ok(event) = outgoing.try_recv() {
                    if writer.send(event).await.is_err() {
                        break;
                    }
                }
                read
            }
            Err(written) => written,
        }
    }
}

/// The orchestrator's `info`: a `handle` program for the whole pipeline.
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
                installed: true,
                description: Some(
                    "Athena voice pipeline: speech to text, local intents, home control, text to speech"
                        .into(),
                ),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            },
            models: vec![LanguageModel {
                artifact: Artifact {
                    name: "athena-pipeline".into(),
                    attribution,
                    installed: true,
                    description: None,
                    version: Some(env!("CARGO_PKG_VERSION").into()),
                },
                languages: vec!["en".into()],
                extra: Default::default(),
            }],
            supports_handled_streaming: false,
            supports_home_control: true,
            extra: Default::default(),
        }],
        ..Info::default()
    }
}
