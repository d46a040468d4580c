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

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::debug;
use wyoming::event::{Error, Ping, PipelineStage, Pong, RunPipeline};
use wyoming::info::{Artifact, Attribution, HandleProgram, Info, LanguageModel};
use wyoming::{Connection, ConnectionError, Event, Handler};

use crate::actions::SatelliteLink;
use crate::pipeline::{Incoming, Pipeline};

/// Events queued towards one satellite before a run waits for the writer.
const OUTGOING: usize = 256;
/// Events from the satellite queued towards its run: about 30 s of audio
/// in 1024-sample chunks, more than a command lasts.
const INCOMING: usize = 512;

/// What can be asked of a connected satellite from outside its connection.
#[derive(Debug)]
pub enum Control {
    /// Speak `text` on it (a run from `tts` with `announce_text`).
    Announce(String),
    /// Send it an event (`pause-satellite`, `run-satellite`).
    Send(Box<Event>),
}

/// The satellites connected now, by name: inbound ones by their address,
/// outbound ones by their configured name.
#[derive(Debug, Default)]
pub struct Satellites {
    connected: Mutex<BTreeMap<String, mpsc::Sender<Control>>>,
}

/// Why a satellite could not be asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SatelliteError {
    /// No satellite of that name is connected.
    #[error("no satellite named {0:?} is connected")]
    Unknown(String),
    /// It has more requests waiting than it can take.
    #[error("satellite {0:?} is busy")]
    Busy(String),
}

impl Satellites {
    /// The names of the satellites connected now.
    pub fn names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Passes `control` to satellite `name`.
    pub fn control(&self, name: &str, control: Control) -> Result<(), SatelliteError> {
        let sender = self
            .lock()
            .get(name)
            .cloned()
            .ok_or_else(|| SatelliteError::Unknown(name.to_owned()))?;
        sender.try_send(control).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SatelliteError::Busy(name.to_owned()),
            mpsc::error::TrySendError::Closed(_) => SatelliteError::Unknown(name.to_owned()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, mpsc::Sender<Control>>> {
        self.connected
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Removes a satellite from the registry when its connection ends (if the
/// name was not taken over by a newer connection meanwhile).
struct Registration<'a> {
    satellites: &'a Satellites,
    name: String,
    control: mpsc::Sender<Control>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut connected = self.satellites.lock();
        if connected
            .get(&self.name)
            .is_some_and(|c| c.same_channel(&self.control))
        {
            connected.remove(&self.name);
        }
    }
}

/// How a connection to a satellite is kept.
#[derive(Debug, Clone)]
pub struct PeerOptions {
    /// Its name in the registry.
    pub name: String,
    /// Ping it this often, and give up on it when a pong is this late
    /// (outbound satellites, as Home Assistant does: every 2 s, 5 s).
    pub keepalive: Option<(Duration, Duration)>,
}

/// Serves satellites and other Wyoming clients.
#[derive(Debug)]
pub struct SatelliteEndpoint {
    info: Info,
    pipeline: Arc<Pipeline>,
    satellites: Arc<Satellites>,
}

impl SatelliteEndpoint {
    /// An endpoint running `pipeline` for its satellites.
    pub fn new(pipeline: Arc<Pipeline>) -> Self {
        Self {
            info: describe(),
            pipeline,
            satellites: Arc::default(),
        }
    }

    /// The `info` this endpoint answers `describe` with.
    pub fn info(&self) -> &Info {
        &self.info
    }

    /// The satellites connected now.
    pub fn satellites(&self) -> Arc<Satellites> {
        self.satellites.clone()
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
            Event::RunPipeline(request) => self.start_run(request),
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

    /// Starts a pipeline run, ending the one in progress.
    fn start_run(&mut self, request: RunPipeline) {
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

    async fn on_control(&mut self, control: Control) {
        match control {
            Control::Announce(text) => self.start_run(RunPipeline {
                start_stage: PipelineStage::Tts,
                end_stage: PipelineStage::Tts,
                wake_word_name: None,
                wake_word_names: None,
                announce_text: Some(text),
                restart_on_end: false,
                extra: Default::default(),
            }),
            Control::Send(event) => self.send(*event).await,
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

impl SatelliteEndpoint {
    /// Serves one satellite on `conn` until either side ends it.
    pub async fn serve(
        &self,
        conn: &mut Connection,
        peer: PeerOptions,
    ) -> Result<(), ConnectionError> {
        let (out, mut outgoing) = mpsc::channel::<Event>(OUTGOING);
        let (control, mut controls) = mpsc::channel::<Control>(8);
        self.satellites
            .lock()
            .insert(peer.name.clone(), control.clone());
        let _registration = Registration {
            satellites: &self.satellites,
            name: peer.name.clone(),
            control,
        };
        let mut session = Session {
            endpoint: self,
            id: peer.name.clone(),
            out,
            run: None,
            warned_audio: false,
        };
        let Connection { reader, writer, .. } = conn;
        let (every, patience) = peer
            .keepalive
            .unwrap_or((Duration::from_secs(3600), Duration::MAX));
        let mut ping = tokio::time::interval(every);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_heard = tokio::time::Instant::now();
        let reading = async {
            loop {
                tokio::select! {
                    // Reading a frame is cancel-safe: a partly read frame
                    // stays buffered in the reader.
                    next = reader.next_event() => match next {
                        // A known event with malformed data: the stream is
                        // still in sync, so say what was wrong and read on.
                        Err(ConnectionError::InvalidEvent(e)) => {
                            session.send(Error::new(e.code(), e.to_string())).await;
                        }
                        Err(e) => return Err(e),
                        Ok(None) => return Ok(()),
                        Ok(Some(event)) => {
                            last_heard = tokio::time::Instant::now();
                            debug!(kind = event.kind(), "event");
                            session.on_event(event).await;
                        }
                    },
                    Some(control) = controls.recv() => session.on_control(control).await,
                    _ = ping.tick(), if peer.keepalive.is_some() => {
                        if last_heard.elapsed() > patience {
                            return Err(ConnectionError::IdleTimeout(patience));
                        }
                        session.send(Ping::default()).await;
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

impl Handler for SatelliteEndpoint {
    async fn handle(&self, conn: &mut Connection) -> Result<(), ConnectionError> {
        let peer = PeerOptions {
            name: conn.peer.clone(),
            keepalive: None,
        };
        self.serve(conn, peer).await
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
