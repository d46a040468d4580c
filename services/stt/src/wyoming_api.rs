//! Wyoming on port 10300, as Home Assistant's Wyoming integration uses
//! wyoming-faster-whisper: `describe` → `info`; `transcribe`, `audio-start`,
//! `audio-chunk`..., `audio-stop` → `transcript`. While audio arrives, words
//! that two partial transcripts agree on are streamed as
//! `transcript-start`/`transcript-chunk`, closed by `transcript-stop` before
//! the final `transcript` (which older clients read alone).

use std::sync::{Arc, OnceLock};

use athena_api::Error as ApiError;
use athena_audio::AudioFormat;
use wyoming::event::{Error, Pong, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop};
use wyoming::info::{Artifact, AsrModel, AsrProgram, Attribution, Info};
use wyoming::{Connection, ConnectionError, Event, Handler};

use crate::recognizer::{Recognizer, Utterance, stable_prefix};

/// Serves Wyoming clients once the model is loaded (`error` until then).
#[derive(Debug)]
pub struct SttEndpoint {
    recognizer: Arc<OnceLock<Arc<Recognizer>>>,
    model: String,
}

impl SttEndpoint {
    /// An endpoint for `model`, served by whatever recognizer `slot` holds.
    pub fn new(recognizer: Arc<OnceLock<Arc<Recognizer>>>, model: String) -> Self {
        Self { recognizer, model }
    }

    fn info(&self) -> Info {
        let loaded = self.recognizer.get();
        let attribution = |name: &str, url: &str| Attribution {
            name: name.into(),
            url: url.into(),
        };
        let (description, languages, version) = match loaded {
            Some(r) => (
                format!("{} on {}, {}", r.info().model, r.info().engine, r.device()),
                r.info().languages.clone(),
                Some(r.info().version.clone()),
            ),
            None => ("loading".to_owned(), Vec::new(), None),
        };
        Info {
            asr: vec![AsrProgram {
                artifact: Artifact {
                    name: "athena-stt".into(),
                    attribution: attribution("Athena", env!("CARGO_PKG_REPOSITORY")),
                    installed: loaded.is_some(),
                    description: Some(format!("Athena speech to text ({description})")),
                    version: Some(env!("CARGO_PKG_VERSION").into()),
                },
                models: vec![AsrModel {
                    artifact: Artifact {
                        name: self.model.clone(),
                        attribution: attribution("OpenAI", "https://github.com/openai/whisper"),
                        installed: loaded.is_some(),
                        description: Some(description),
                        version,
                    },
                    languages,
                    extra: Default::default(),
                }],
                supports_transcript_streaming: loaded
                    .is_some_and(|r| r.partial_interval().is_some()),
                requires_external_vad: true,
                extra: Default::default(),
            }],
            ..Info::default()
        }
    }
}

/// One request's state on a connection.
struct Request {
    utterance: Utterance,
    language: Option<String>,
    /// Seconds of audio at the last partial transcript.
    partial_at: f64,
    /// The last partial transcript.
    partial: String,
    /// Words already sent as `transcript-chunk`.
    sent: Vec<String>,
    /// `transcript-start` was sent.
    started: bool,
}

impl Request {
    fn new(recognizer: &Recognizer, language: Option<String>) -> Self {
        Self {
            utterance: recognizer.utterance(),
            language,
            partial_at: 0.0,
            partial: String::new(),
            sent: Vec::new(),
            started: false,
        }
    }
}

fn loading() -> Error {
    Error::new("unavailable", "the speech-to-text model is still loading")
}

fn api_error(e: &ApiError) -> Error {
    Error::new(e.kind.code(), e.message.clone())
}

impl Handler for SttEndpoint {
    async fn handle(&self, conn: &mut Connection) -> Result<(), ConnectionError> {
        let mut language: Option<String> = None;
        let mut request: Option<Request> = None;
        while let Some(event) = conn.next_valid_event().await? {
            match event {
                Event::Describe(_) => conn.send(self.info()).await?,
                Event::Ping(p) => {
                    conn.send(Pong {
                        text: p.text,
                        ..Pong::default()
                    })
                    .await?;
                }
                Event::Transcribe(t) => {
                    if let Some(name) = t
                        .name
                        .as_deref()
                        .filter(|n| !n.is_empty() && *n != self.model)
                    {
                        let message =
                            format!("unknown model {name:?}; this service runs {}", self.model);
                        conn.send(Error::new("not-found", message)).await?;
                        continue;
                    }
                    language = t.language.filter(|l| !l.is_empty());
                    request = None;
                }
                Event::AudioStart(_) | Event::AudioChunk(_) => {
                    let Some(recognizer) = self.recognizer.get() else {
                        conn.send(loading()).await?;
                        continue;
                    };
                    let req =
                        request.get_or_insert_with(|| Request::new(recognizer, language.clone()));
                    let Event::AudioChunk(chunk) = event else {
                        continue;
                    };
                    let pushed = AudioFormat::new(
                        chunk.format.rate,
                        u32::from(chunk.format.width),
                        u32::from(chunk.format.channels),
                    )
                    .map_err(ApiError::from)
                    .and_then(|format| req.utterance.push(format, &chunk.audio));
                    if let Err(e) = pushed {
                        conn.send(api_error(&e)).await?;
                        request = None;
                        continue;
                    }
                    if let Some(interval) = recognizer.partial_interval()
                        && req.utterance.seconds() - req.partial_at >= interval
                    {
                        req.partial_at = req.utterance.seconds();
                        stream_partial(conn, recognizer, req).await?;
                    }
                }
                Event::AudioStop(_) => {
                    let Some(recognizer) = self.recognizer.get() else {
                        conn.send(loading()).await?;
                        continue;
                    };
                    let Some(mut req) = request.take() else {
                        conn.send(Error::new("invalid-argument", "audio-stop without audio"))
                            .await?;
                        continue;
                    };
                    match recognizer
                        .transcribe(&req.utterance, req.language.as_deref(), &[])
                        .await
                    {
                        Ok(t) => {
                            if req.started {
                                // The rest of the final text, if it still
                                // agrees with what was streamed; the final
                                // `transcript` is authoritative either way.
                                let words: Vec<&str> = t.text.split_whitespace().collect();
                                if words.len() > req.sent.len()
                                    && words.starts_with(
                                        &req.sent.iter().map(String::as_str).collect::<Vec<_>>(),
                                    )
                                {
                                    let rest = words[req.sent.len()..].join(" ");
                                    conn.send(chunk(&req.sent, rest)).await?;
                                }
                                conn.send(TranscriptStop::default()).await?;
                            }
                            req.started = false;
                            conn.send(Transcript {
                                text: t.text,
                                language: t.language,
                                ..Default::default()
                            })
                            .await?;
                        }
                        Err(e) => conn.send(api_error(&e)).await?,
                    }
                }
                // Notifications need no answer.
                Event::Error(_) | Event::Pong(_) => {}
                other => {
                    let message =
                        format!("the stt service does not handle `{}` events", other.kind());
                    conn.send(Error::new("unsupported-event", message)).await?;
                }
            }
        }
        Ok(())
    }
}

/// A `transcript-chunk` of `new` words, spaced from those already `sent`.
fn chunk(sent: &[String], new: String) -> TranscriptChunk {
    let text = if sent.is_empty() {
        new
    } else {
        format!(" {new}")
    };
    TranscriptChunk {
        text,
        ..Default::default()
    }
}

/// Transcribes what has arrived (if the engine is free) and sends the words
/// that this partial and the previous one agree on and that were not sent yet.
async fn stream_partial(
    conn: &mut Connection,
    recognizer: &Recognizer,
    req: &mut Request,
) -> Result<(), ConnectionError> {
    let Some(text) = recognizer
        .partial(&req.utterance, req.language.as_deref())
        .await
    else {
        return Ok(());
    };
    // The last agreed word may still be cut off mid-word ("asked" for "ask
    // not"): it waits for the next partial.
    let mut stable: Vec<String> = stable_prefix(&req.partial, &text)
        .into_iter()
        .map(str::to_owned)
        .collect();
    stable.pop();
    req.partial = text;
    if stable.len() <= req.sent.len() || !stable.starts_with(&req.sent) {
        return Ok(());
    }
    if !req.started {
        conn.send(TranscriptStart {
            language: req.language.clone(),
            ..Default::default()
        })
        .await?;
        req.started = true;
    }
    let new = stable[req.sent.len()..].join(" ");
    let event = chunk(&req.sent, new);
    req.sent = stable;
    conn.send(event).await
}
