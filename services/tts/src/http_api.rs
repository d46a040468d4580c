//! `POST /v1/audio/speech`, the OpenAI-compatible endpoint: a JSON body
//! with `input`, `voice`, optional `model`, `response_format` (`wav` or
//! `pcm`) and `speed` (0.25 to 4). The body streams: each sentence's audio
//! is sent as soon as it is decoded. `wav` has a header with unknown
//! lengths (as streamed WAV does); `pcm` is 16-bit little-endian mono at
//! 24 kHz, as OpenAI sends it, unless `sample_rate` says otherwise.
//!
//! Other OpenAI fields (`instructions`) are accepted and ignored.
//! OpenAI's voice names (`alloy`, ...) mean the default voice, so that
//! tools written for OpenAI work unchanged; `GET /v1/audio/voices` lists
//! the real ones.

use athena_api::Error;
use athena_api::tts::SynthesisConfig;
use athena_runtime::ApiError;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;

use crate::{Slot, loaded};

/// OpenAI's voices; each means the default voice here.
const OPENAI_VOICES: &[&str] = &[
    "alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse",
    "marin", "cedar",
];

/// OpenAI's speech models; each means "the voice's own model".
const OPENAI_MODELS: &[&str] = &["tts-1", "tts-1-hd", "gpt-4o-mini-tts", "piper"];

/// The rate of `pcm` output when the request does not say (OpenAI's).
const PCM_RATE: u32 = 24_000;

#[derive(Clone)]
struct Api {
    synthesizer: Slot,
}

/// The HTTP routes; bodies are limited to what `max_text_chars` of text
/// can take (4 bytes a character) and some JSON around it.
pub fn router(synthesizer: Slot, max_text_chars: usize) -> Router {
    let limit = max_text_chars.saturating_mul(4).saturating_add(64 << 10);
    Router::new()
        .route("/v1/audio/speech", post(speech))
        .route("/v1/audio/voices", get(voices))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(Api { synthesizer })
}

#[derive(Debug, Deserialize)]
struct SpeechRequest {
    input: String,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    voice: Option<String>,
    #[serde(default)]
    response_format: Option<String>,
    #[serde(default)]
    speed: Option<f32>,
    /// Athena's: the output rate in Hz.
    #[serde(default)]
    sample_rate: Option<u32>,
    /// Athena's: a speaker of a multi-speaker voice.
    #[serde(default)]
    speaker: Option<String>,
    #[serde(default)]
    stream_format: Option<String>,
}

async fn voices(State(api): State<Api>) -> Result<Response, ApiError> {
    let synthesizer = loaded(&api.synthesizer)?;
    let voices: Vec<_> = synthesizer
        .describe()
        .into_iter()
        .map(|v| {
            json!({
                "name": v.name,
                "languages": v.languages,
                "speakers": v.speakers,
                "sample_rate": v.sample_rate,
                "description": v.description,
            })
        })
        .collect();
    Ok(
        Json(json!({ "voices": voices, "default": synthesizer.default_voice().name() }))
            .into_response(),
    )
}

async fn speech(
    State(api): State<Api>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let request: SpeechRequest = athena_runtime::http::json_body(body)?;
    let synthesizer = loaded(&api.synthesizer)?;
    let voice_names: Vec<&str> = synthesizer.voices().map(|v| v.name()).collect();
    let named = |name: &Option<String>| {
        name.as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
    };
    let model = named(&request.model);
    if let Some(m) = &model
        && !OPENAI_MODELS.contains(&m.as_str())
        && !voice_names.contains(&m.as_str())
    {
        return Err(ApiError::not_found(
            "model_not_found",
            format!(
                "model {m:?} is not served here (use tts-1, or a voice: {})",
                voice_names.join(", ")
            ),
        ));
    }
    let voice = match named(&request.voice) {
        Some(v) if OPENAI_VOICES.contains(&v.to_lowercase().as_str()) => {
            model.filter(|m| voice_names.contains(&m.as_str()))
        }
        other => other,
    };
    let format = request.response_format.as_deref().unwrap_or("wav");
    if !matches!(format, "wav" | "pcm") {
        return Err(ApiError::bad_request(
            "unsupported_response_format",
            format!("response_format {format:?} is not supported (wav, pcm)"),
        ));
    }
    if let Some(s) = request.stream_format.as_deref().filter(|s| *s != "audio") {
        return Err(ApiError::bad_request(
            "unsupported_stream_format",
            format!("stream_format {s:?} is not supported (audio)"),
        ));
    }
    let length_scale = match request.speed {
        None => None,
        Some(speed) if speed.is_finite() && (0.25..=4.0).contains(&speed) => {
            let own = synthesizer.default_voice().config().inference.length_scale;
            Some(own / speed)
        }
        Some(speed) => {
            return Err(ApiError::bad_request(
                "invalid_speed",
                format!("speed must be between 0.25 and 4.0 (got {speed})"),
            ));
        }
    };
    let sample_rate = request
        .sample_rate
        .or((format == "pcm").then_some(PCM_RATE));
    let config = SynthesisConfig {
        voice,
        speaker: request.speaker,
        length_scale,
        sample_rate,
        sentence_silence: None,
    };
    synthesizer
        .check_text(&request.input)
        .map_err(input_error)?;
    let plan = synthesizer.plan(&config)?;
    let rate = plan.format().rate();
    let text = futures::stream::iter([Ok::<_, Error>(request.input)]).boxed();
    let mut speech = synthesizer.speak(plan, text);
    // The first sentence is awaited here, so that a failure there is a
    // proper error response rather than a cut-off body.
    let first = match speech.next().await {
        Some(Ok(segment)) => segment.audio,
        Some(Err(e)) => return Err(e.into()),
        None => Bytes::new(),
    };
    let head = if format == "wav" {
        let mut head = wav_header(rate);
        head.extend_from_slice(&first);
        Bytes::from(head)
    } else {
        first
    };
    let rest = speech.map(|segment| match segment {
        Ok(segment) => Ok(segment.audio),
        Err(e) => {
            tracing::warn!(error = %e, "speech failed mid-stream; the response is cut short");
            Err(std::io::Error::other(e.message))
        }
    });
    let body = Body::from_stream(futures::stream::once(async { Ok(head) }).chain(rest));
    let content_type = if format == "wav" {
        "audio/wav"
    } else {
        "audio/pcm"
    };
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// Names the field in input errors, as OpenAI does.
fn input_error(e: Error) -> ApiError {
    ApiError::bad_request("invalid_input", format!("input: {}", e.message))
}

/// A WAV header for 16-bit mono PCM of unknown length (sizes set to the
/// maximum, as streaming encoders write them).
fn wav_header(rate: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(44);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&u32::MAX.to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes()); // PCM
    h.extend_from_slice(&1u16.to_le_bytes()); // mono
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&(rate * 2).to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&16u16.to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&u32::MAX.to_le_bytes());
    h
}
