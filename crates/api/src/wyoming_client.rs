//! The service interfaces over Wyoming: speech to text and text to speech
//! served by any Wyoming program (Athena's own stt and tts, wyoming-piper,
//! wyoming-faster-whisper, ...), as Home Assistant uses them.
//!
//! - [`WyomingSpeechToText`]: `transcribe`, `audio-start`, the audio as it
//!   arrives, `audio-stop`; the answer is `transcript` (with
//!   `transcript-chunk`s first from servers that stream).
//! - [`WyomingTextToSpeech`]: the text is cut into sentences as it arrives
//!   and each is a plain `synthesize` on its own connection, which every
//!   Wyoming TTS server understands; its audio is passed on chunk by chunk.
//!
//! A connection that cannot be made is [`ErrorKind::Unavailable`]; an
//! `error` event keeps its kind when its code is one of Athena's.

use std::time::Duration;

use athena_audio::AudioFormat;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use wyoming::event::{
    AudioChunk, AudioStart, AudioStop, Describe, Synthesize, SynthesizeVoice, Transcribe,
};
use wyoming::{Connection, ConnectionConfig, Endpoint, Event, EventReader};

use crate::error::{Error, ErrorKind};
use crate::stt::{
    AudioStream, RecognitionConfig, RecognitionEvent, RecognitionStream, SpeechToText, SttModel,
    Transcript,
};
use crate::text::{SentenceSplitter, is_speakable};
use crate::tts::{SpeechSegment, SpeechStream, SynthesisConfig, TextStream, TextToSpeech, Voice};

/// How long a Wyoming server may stay silent while it owes an answer.
const SILENCE_LIMIT: Duration = Duration::from_secs(60);

/// One Wyoming server: where it is, and how its connections behave.
#[derive(Debug, Clone)]
struct Server {
    endpoint: Endpoint,
    /// What it is for, in messages ("speech to text").
    role: &'static str,
}

impl Server {
    fn new(uri: &str, role: &'static str) -> Result<Self, Error> {
        let endpoint: Endpoint = uri
            .parse()
            .map_err(|e| Error::invalid(format!("{role} at {uri:?}: {e}")))?;
        if matches!(endpoint, Endpoint::Stdio) {
            return Err(Error::invalid(format!(
                "{role}: a Wyoming server is reached over tcp:// or unix://, not stdio://"
            )));
        }
        Ok(Self { endpoint, role })
    }

    async fn connect(&self) -> Result<Connection, Error> {
        let config = ConnectionConfig {
            idle_timeout: Some(SILENCE_LIMIT),
            ..ConnectionConfig::default()
        };
        wyoming::connect(&self.endpoint, &config)
            .await
            .map_err(|e| {
                Error::unavailable(format!(
                    "{} at {} is unreachable: {e}",
                    self.role, self.endpoint
                ))
            })
    }

    /// The server's `info`.
    async fn describe(&self) -> Result<wyoming::Info, Error> {
        let mut conn = self.connect().await?;
        conn.send(Describe::default())
            .await
            .map_err(|e| self.broken(&e))?;
        loop {
            match self.next(&mut conn.reader).await? {
                Event::Info(info) => return Ok(*info),
                Event::Error(e) => return Err(self.refused(&e)),
                _ => {}
            }
        }
    }

    /// The next event the server sends; its hanging up is an error.
    async fn next(&self, reader: &mut EventReader) -> Result<Event, Error> {
        match reader.next_event().await {
            Ok(Some(event)) => Ok(event),
            Ok(None) => Err(Error::unavailable(format!(
                "{} at {} hung up before answering",
                self.role, self.endpoint
            ))),
            Err(e) => Err(self.broken(&e)),
        }
    }

    fn broken(&self, e: &wyoming::ConnectionError) -> Error {
        let kind = match e {
            wyoming::ConnectionError::IdleTimeout(_) => ErrorKind::Timeout,
            wyoming::ConnectionError::Protocol(_) | wyoming::ConnectionError::InvalidEvent(_) => {
                ErrorKind::Internal
            }
            _ => ErrorKind::Unavailable,
        };
        Error::new(kind, format!("{} at {}: {e}", self.role, self.endpoint))
    }

    /// An `error` event from the server as an error of ours.
    fn refused(&self, e: &wyoming::event::Error) -> Error {
        let kind = e
            .code
            .as_deref()
            .and_then(ErrorKind::from_code)
            .unwrap_or(ErrorKind::Internal);
        Error::new(
            kind,
            format!("{} at {}: {}", self.role, self.endpoint, e.text),
        )
    }
}

fn wire_format(format: AudioFormat) -> wyoming::AudioFormat {
    wyoming::AudioFormat {
        rate: format.rate(),
        width: format.width() as u16,
        channels: format.channels() as u16,
    }
}

fn domain_format(format: wyoming::AudioFormat, role: &str) -> Result<AudioFormat, Error> {
    AudioFormat::new(
        format.rate,
        u32::from(format.width),
        u32::from(format.channels),
    )
    .map_err(|e| Error::new(ErrorKind::Internal, format!("{role} sent audio as {e}")))
}

// ---- speech to text --------------------------------------------------------

/// Speech to text served by a Wyoming ASR program.
#[derive(Debug, Clone)]
pub struct WyomingSpeechToText {
    server: Server,
}

impl WyomingSpeechToText {
    /// A client for the server at `uri` (`tcp://host:port` or
    /// `unix://path`); nothing is connected until it is used.
    pub fn new(uri: &str) -> Result<Self, Error> {
        Ok(Self {
            server: Server::new(uri, "speech to text")?,
        })
    }
}

#[async_trait::async_trait]
impl SpeechToText for WyomingSpeechToText {
    async fn describe(&self) -> Result<Vec<SttModel>, Error> {
        let info = self.server.describe().await?;
        Ok(info
            .asr
            .into_iter()
            .flat_map(|program| program.models)
            .map(|model| SttModel {
                name: model.artifact.name,
                languages: model.languages,
                installed: model.artifact.installed,
                description: model.artifact.description.unwrap_or_default(),
                version: model.artifact.version.unwrap_or_default(),
            })
            .collect())
    }

    async fn recognize(
        &self,
        config: RecognitionConfig,
        audio: AudioStream,
    ) -> Result<RecognitionStream, Error> {
        let conn = self.server.connect().await?;
        let (tx, rx) = mpsc::channel(16);
        let server = self.server.clone();
        tokio::spawn(async move {
            let done = tx.clone();
            tokio::select! {
                result = transcribe(&server, conn, config, audio, &tx) => {
                    if let Err(e) = result {
                        let _ = tx.send(Err(e)).await;
                    }
                }
                // The caller stopped listening: hang up.
                () = done.closed() => {}
            }
        });
        Ok(ReceiverStream::new(rx).boxed())
    }
}

/// Sends `audio` to the server while reading what it says, until the
/// final transcript.
async fn transcribe(
    server: &Server,
    conn: Connection,
    config: RecognitionConfig,
    mut audio: AudioStream,
    results: &mpsc::Sender<Result<RecognitionEvent, Error>>,
) -> Result<(), Error> {
    let Connection {
        mut reader,
        mut writer,
        ..
    } = conn;
    let format = wire_format(config.format);
    let sending = async {
        writer
            .send(Transcribe {
                name: config.model.clone(),
                language: config.language.clone(),
                transcript_names: (!config.hints.is_empty()).then(|| config.hints.clone()),
                ..Transcribe::default()
            })
            .await?;
        writer
            .send(AudioStart {
                format,
                timestamp: None,
                extra: Default::default(),
            })
            .await?;
        while let Some(chunk) = audio.next().await {
            // The caller's audio failed: the utterance is abandoned.
            let Ok(chunk) = chunk else {
                return Ok(false);
            };
            writer
                .send(AudioChunk {
                    format,
                    timestamp: None,
                    audio: chunk,
                    extra: Default::default(),
                })
                .await?;
        }
        writer.send(AudioStop::default()).await?;
        Ok::<_, wyoming::ConnectionError>(true)
    };
    let receiving = async {
        let mut partial = String::new();
        loop {
            match server.next(&mut reader).await? {
                Event::TranscriptChunk(chunk) if config.partial_results => {
                    partial.push_str(&chunk.text);
                    let _ = results
                        .send(Ok(RecognitionEvent::Partial(partial.clone())))
                        .await;
                }
                Event::Transcript(t) => {
                    return Ok(Transcript {
                        text: t.text,
                        language: t.language.or_else(|| config.language.clone()),
                        audio_seconds: 0.0,
                    });
                }
                Event::Error(e) => return Err(server.refused(&e)),
                _ => {}
            }
        }
    };
    tokio::pin!(sending, receiving);
    // Audio goes out while answers come in; a server may answer (with an
    // error) before the audio is over.
    let transcript = tokio::select! {
        sent = &mut sending => match sent {
            Ok(true) => receiving.await?,
            Ok(false) => return Err(Error::invalid("the audio ended with an error")),
            Err(e) => {
                // Writing failed: the server may have said why before it hung up.
                match tokio::time::timeout(Duration::from_secs(1), receiving).await {
                    Ok(Err(said)) => return Err(said),
                    _ => return Err(server.broken(&e)),
                }
            }
        },
        transcript = &mut receiving => transcript?,
    };
    let _ = results.send(Ok(RecognitionEvent::Final(transcript))).await;
    Ok(())
}

// ---- text to speech --------------------------------------------------------

/// Text to speech served by a Wyoming TTS program.
#[derive(Debug, Clone)]
pub struct WyomingTextToSpeech {
    server: Server,
}

impl WyomingTextToSpeech {
    /// A client for the server at `uri` (`tcp://host:port` or
    /// `unix://path`); nothing is connected until it is used.
    pub fn new(uri: &str) -> Result<Self, Error> {
        Ok(Self {
            server: Server::new(uri, "text to speech")?,
        })
    }
}

#[async_trait::async_trait]
impl TextToSpeech for WyomingTextToSpeech {
    async fn describe(&self) -> Result<Vec<Voice>, Error> {
        let info = self.server.describe().await?;
        Ok(info
            .tts
            .into_iter()
            .flat_map(|program| program.voices)
            .map(|voice| Voice {
                name: voice.artifact.name,
                languages: voice.languages,
                speakers: voice
                    .speakers
                    .unwrap_or_default()
                    .into_iter()
                    .map(|s| s.name)
                    .collect(),
                installed: voice.artifact.installed,
                description: voice.artifact.description.unwrap_or_default(),
                version: voice.artifact.version.unwrap_or_default(),
                sample_rate: 0,
            })
            .collect())
    }

    async fn synthesize(
        &self,
        config: SynthesisConfig,
        text: TextStream,
    ) -> Result<SpeechStream, Error> {
        // Fail now, not at the first sentence, when the server is down;
        // the connection is the first sentence's.
        let first = self.server.connect().await?;
        let (tx, rx) = mpsc::channel(16);
        let server = self.server.clone();
        tokio::spawn(async move {
            let done = tx.clone();
            tokio::select! {
                result = speak(&server, &config, text, first, &tx) => {
                    if let Err(e) = result {
                        let _ = tx.send(Err(e)).await;
                    }
                }
                () = done.closed() => {}
            }
        });
        Ok(ReceiverStream::new(rx).boxed())
    }
}

/// Speaks `text` sentence by sentence as it arrives, each on its own
/// connection (`first` for the first sentence).
async fn speak(
    server: &Server,
    config: &SynthesisConfig,
    mut text: TextStream,
    first: Connection,
    out: &mpsc::Sender<Result<SpeechSegment, Error>>,
) -> Result<(), Error> {
    let mut first = Some(first);
    let mut splitter = SentenceSplitter::new();
    let mut number = 0;
    loop {
        let (sentences, last) = match text.next().await {
            Some(piece) => (splitter.push(&piece?), false),
            None => (splitter.finish(), true),
        };
        for sentence in sentences.into_iter().filter(|s| is_speakable(s)) {
            let conn = match first.take() {
                Some(conn) => conn,
                None => server.connect().await?,
            };
            sentence_audio(server, conn, config, number, sentence, out).await?;
            number += 1;
        }
        if last {
            return Ok(());
        }
    }
}

/// One `synthesize` request on `conn`; its audio goes out chunk by chunk
/// as sentence `number`.
async fn sentence_audio(
    server: &Server,
    mut conn: Connection,
    config: &SynthesisConfig,
    number: u32,
    sentence: String,
    out: &mpsc::Sender<Result<SpeechSegment, Error>>,
) -> Result<(), Error> {
    let voice = (config.voice.is_some() || config.speaker.is_some()).then(|| SynthesizeVoice {
        name: config.voice.clone(),
        speaker: config.speaker.clone(),
        ..SynthesizeVoice::default()
    });
    conn.send(Synthesize {
        text: sentence.clone(),
        voice,
        ..Synthesize::default()
    })
    .await
    .map_err(|e| server.broken(&e))?;
    let mut format = None;
    loop {
        match server.next(&mut conn.reader).await? {
            Event::AudioStart(start) => format = Some(domain_format(start.format, server.role)?),
            Event::AudioChunk(chunk) => {
                let chunk_format = domain_format(chunk.format, server.role)?;
                let audio = convert(chunk.audio, chunk_format, config.sample_rate)?;
                let segment = SpeechSegment {
                    sentence: number,
                    text: sentence.clone(),
                    format: audio.0,
                    audio: audio.1,
                };
                if out.send(Ok(segment)).await.is_err() {
                    return Ok(());
                }
                format.get_or_insert(chunk_format);
            }
            Event::AudioStop(_) if format.is_some() => return Ok(()),
            Event::AudioStop(_) => {
                return Err(Error::new(
                    ErrorKind::Internal,
                    format!("{} sent no audio for {sentence:?}", server.role),
                ));
            }
            Event::Error(e) => return Err(server.refused(&e)),
            _ => {}
        }
    }
}

/// `audio` at the rate asked for (mono 16-bit when it must be resampled).
fn convert(
    audio: Bytes,
    format: AudioFormat,
    rate: Option<u32>,
) -> Result<(AudioFormat, Bytes), Error> {
    let Some(rate) = rate.filter(|&r| r != format.rate()) else {
        return Ok((format, audio));
    };
    let samples = format
        .to_mono_f32(&audio)
        .map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?;
    let resampled = athena_audio::resample(&samples, format.rate(), rate);
    let pcm: Vec<u8> = resampled
        .iter()
        .flat_map(|s| ((s.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes())
        .collect();
    let mono = AudioFormat::new(rate, 2, 1).map_err(|e| Error::invalid(e.to_string()))?;
    Ok((mono, Bytes::from(pcm)))
}
