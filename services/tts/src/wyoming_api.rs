//! Wyoming on port 10200, as Home Assistant's Wyoming integration uses
//! wyoming-piper:
//!
//! - `describe` → `info` (voices, languages, speakers);
//! - `synthesize` → `audio-start`, `audio-chunk`..., `audio-stop`, the
//!   chunks of each sentence sent as soon as they are decoded;
//! - streaming: `synthesize-start`, `synthesize-chunk`... (and a whole
//!   `synthesize`, sent for older servers and ignored here),
//!   `synthesize-stop` → for each sentence `audio-start`, chunks,
//!   `audio-stop`, then `synthesize-stopped`. Sentences are spoken while
//!   text is still arriving: audio and incoming chunks are interleaved.

use athena_api::Error as ApiError;
use athena_api::tts::{SpeechSegment, SpeechStream, SynthesisConfig};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;
use wyoming::event::{AudioFormat as WireFormat, Error, Pong, SynthesizeStopped, SynthesizeVoice};
use wyoming::info::{Artifact, Attribution, Info, TtsProgram, TtsVoice, TtsVoiceSpeaker};
use wyoming::speech::{Framing, SpeechFramer};
use wyoming::{Connection, ConnectionError, Event, Handler};

use crate::{Slot, loaded};

/// Serves Wyoming clients once the voices are loaded (`error` until then).
#[derive(Debug)]
pub struct TtsEndpoint {
    synthesizer: Slot,
}

impl TtsEndpoint {
    /// An endpoint served by whatever synthesizer `slot` holds.
    pub fn new(synthesizer: Slot) -> Self {
        Self { synthesizer }
    }

    fn info(&self) -> Info {
        let attribution = |name: &str, url: &str| Attribution {
            name: name.into(),
            url: url.into(),
        };
        let synthesizer = self.synthesizer.get();
        let voices = synthesizer
            .map(|s| s.describe())
            .unwrap_or_default()
            .into_iter()
            .map(|v| TtsVoice {
                artifact: Artifact {
                    name: v.name,
                    attribution: attribution("Piper", "https://github.com/OHF-Voice/piper1-gpl"),
                    installed: v.installed,
                    description: Some(v.description),
                    version: None,
                },
                languages: v.languages,
                speakers: (!v.speakers.is_empty()).then(|| {
                    v.speakers
                        .into_iter()
                        .map(|name| TtsVoiceSpeaker { name })
                        .collect()
                }),
                extra: Default::default(),
            })
            .collect();
        Info {
            tts: vec![TtsProgram {
                artifact: Artifact {
                    name: "athena-tts".into(),
                    attribution: attribution("Athena", env!("CARGO_PKG_REPOSITORY")),
                    installed: synthesizer.is_some(),
                    description: Some(
                        if synthesizer.is_some() {
                            "Athena text to speech (Piper voices)"
                        } else {
                            "Athena text to speech (loading)"
                        }
                        .into(),
                    ),
                    version: Some(env!("CARGO_PKG_VERSION").into()),
                },
                voices,
                supports_synthesize_streaming: true,
                extra: Default::default(),
            }],
            ..Info::default()
        }
    }
}

fn api_error(e: &ApiError) -> Error {
    Error::new(e.kind.code(), e.message.clone())
}

/// The request a Wyoming `voice` makes: by name, else by language.
fn request(
    synthesizer: &crate::Synthesizer,
    voice: Option<SynthesizeVoice>,
) -> Result<SynthesisConfig, ApiError> {
    let voice = voice.unwrap_or_default();
    let name = match (voice.name.filter(|n| !n.is_empty()), voice.language) {
        (Some(name), _) => Some(name),
        (None, Some(language)) if !language.is_empty() => Some(
            synthesizer
                .voice_for_language(&language)
                .ok_or_else(|| ApiError::not_found(format!("no voice speaks {language:?}")))?
                .name()
                .to_owned(),
        ),
        (None, _) => None,
    };
    Ok(SynthesisConfig {
        voice: name,
        speaker: voice.speaker.filter(|s| !s.is_empty()),
        ..SynthesisConfig::default()
    })
}

/// Sends speech segments as audio events.
#[derive(Debug)]
struct Player(SpeechFramer);

impl Player {
    fn new(framing: Framing) -> Self {
        Self(SpeechFramer::new(framing))
    }

    async fn play(
        &mut self,
        conn: &mut Connection,
        segment: &SpeechSegment,
    ) -> Result<(), ConnectionError> {
        let format = WireFormat {
            rate: segment.format.rate(),
            width: segment.format.width() as u16,
            channels: segment.format.channels() as u16,
        };
        for event in self.0.segment(segment.sentence, format, &segment.audio) {
            conn.send(event).await?;
        }
        Ok(())
    }

    async fn close(&mut self, conn: &mut Connection) -> Result<(), ConnectionError> {
        if let Some(stop) = self.0.close() {
            conn.send(stop).await?;
        }
        Ok(())
    }
}

/// A streamed request in progress.
struct Streaming {
    /// Text for the synthesizer; dropped at `synthesize-stop`.
    text: Option<mpsc::UnboundedSender<Result<String, ApiError>>>,
    /// Its speech; `None` when the request was refused at its start.
    speech: Option<SpeechStream>,
    player: Player,
}

/// What came first: an event from the client (boxed: events are large) or
/// the next piece of speech.
enum Next {
    Event(Option<Box<Event>>),
    Speech(Option<Result<SpeechSegment, ApiError>>),
}

impl Handler for TtsEndpoint {
    async fn handle(&self, conn: &mut Connection) -> Result<(), ConnectionError> {
        let mut streaming: Option<Streaming> = None;
        loop {
            let speech = streaming.as_mut().and_then(|s| s.speech.as_mut());
            let next = match speech {
                Some(speech) => tokio::select! {
                    event = conn.reader.next_event() => Next::Event(match event {
                        Err(ConnectionError::InvalidEvent(e)) => {
                            conn.send(Error::new(e.code(), e.to_string())).await?;
                            continue;
                        }
                        other => other?.map(Box::new),
                    }),
                    segment = speech.next() => Next::Speech(segment),
                },
                None => Next::Event(conn.next_valid_event().await?.map(Box::new)),
            };
            let event = match next {
                Next::Event(Some(event)) => *event,
                Next::Event(None) => return Ok(()),
                Next::Speech(segment) => {
                    if let Some(s) = streaming.as_mut() {
                        forward(conn, s, segment).await?;
                    }
                    continue;
                }
            };
            match event {
                Event::Describe(_) => conn.send(self.info()).await?,
                Event::Ping(p) => {
                    conn.send(Pong {
                        text: p.text,
                        ..Pong::default()
                    })
                    .await?;
                }
                // Sent inside a stream for servers that do not stream.
                Event::Synthesize(_) if streaming.is_some() => {}
                Event::Synthesize(s) => {
                    if let Err(e) = self.synthesize(conn, s.text, s.voice).await? {
                        conn.send(api_error(&e)).await?;
                    }
                }
                Event::SynthesizeStart(start) => {
                    if streaming.is_some() {
                        conn.send(Error::new(
                            "invalid-argument",
                            "synthesize-start inside a stream; the earlier stream is dropped",
                        ))
                        .await?;
                    }
                    let (tx, rx) = mpsc::unbounded_channel();
                    let speech = loaded(&self.synthesizer).and_then(|synthesizer| {
                        let plan = synthesizer.plan(&request(&synthesizer, start.voice)?)?;
                        Ok(synthesizer.speak(plan, UnboundedReceiverStream::new(rx).boxed()))
                    });
                    let speech = match speech {
                        Ok(speech) => Some(speech),
                        Err(e) => {
                            conn.send(api_error(&e)).await?;
                            None
                        }
                    };
                    streaming = Some(Streaming {
                        text: Some(tx),
                        speech,
                        player: Player::new(Framing::PerSentence),
                    });
                }
                Event::SynthesizeChunk(chunk) => {
                    match streaming.as_ref().and_then(|s| s.text.as_ref()) {
                        Some(text) => {
                            let _ = text.send(Ok(chunk.text));
                        }
                        None => {
                            conn.send(Error::new(
                                "invalid-argument",
                                "synthesize-chunk without synthesize-start",
                            ))
                            .await?;
                        }
                    }
                }
                Event::SynthesizeStop(_) => {
                    let Some(mut s) = streaming.take() else {
                        conn.send(Error::new(
                            "invalid-argument",
                            "synthesize-stop without synthesize-start",
                        ))
                        .await?;
                        continue;
                    };
                    s.text = None;
                    while let Some(speech) = s.speech.as_mut() {
                        let segment = speech.next().await;
                        forward(conn, &mut s, segment).await?;
                    }
                    conn.send(SynthesizeStopped::default()).await?;
                }
                // Notifications need no answer.
                Event::Error(_) | Event::Pong(_) => {}
                other => {
                    let message =
                        format!("the tts service does not handle `{}` events", other.kind());
                    conn.send(Error::new("unsupported-event", message)).await?;
                }
            }
        }
    }
}

/// Sends one result of a stream's speech; at its end (or error) closes the
/// audio and forgets the speech.
async fn forward(
    conn: &mut Connection,
    s: &mut Streaming,
    segment: Option<Result<SpeechSegment, ApiError>>,
) -> Result<(), ConnectionError> {
    match segment {
        Some(Ok(segment)) => s.player.play(conn, &segment).await,
        Some(Err(e)) => {
            s.player.close(conn).await?;
            s.speech = None;
            conn.send(api_error(&e)).await
        }
        None => {
            s.speech = None;
            s.player.close(conn).await
        }
    }
}

impl TtsEndpoint {
    /// Speaks a whole text: one `audio-start`, the chunks of every sentence
    /// as they are ready, one `audio-stop`. The inner `Err` is the request's
    /// failure, to be told to the client.
    async fn synthesize(
        &self,
        conn: &mut Connection,
        text: String,
        voice: Option<SynthesizeVoice>,
    ) -> Result<Result<(), ApiError>, ConnectionError> {
        let speech = loaded(&self.synthesizer).and_then(|synthesizer| {
            let plan = synthesizer.plan(&request(&synthesizer, voice)?)?;
            synthesizer.check_text(&text)?;
            Ok(synthesizer.speak(plan, futures::stream::iter([Ok(text)]).boxed()))
        });
        let mut speech = match speech {
            Ok(speech) => speech,
            Err(e) => return Ok(Err(e)),
        };
        let mut player = Player::new(Framing::Whole);
        while let Some(segment) = speech.next().await {
            match segment {
                Ok(segment) => player.play(conn, &segment).await?,
                Err(e) => {
                    player.close(conn).await?;
                    return Ok(Err(e));
                }
            }
        }
        player.close(conn).await?;
        Ok(Ok(()))
    }
}
