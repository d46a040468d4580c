//! `POST /v1/audio/transcriptions`, the OpenAI-compatible endpoint many tools
//! speak: a multipart form with a WAV `file` (any PCM rate, width, channels),
//! optional `model`, `language`, `prompt` and `response_format` (`json`,
//! `text`, `verbose_json`).

use std::io::Cursor;
use std::sync::{Arc, OnceLock};

use athena_api::Error;
use athena_audio::AudioFormat;
use athena_runtime::ApiError;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

use crate::recognizer::Recognizer;

#[derive(Clone)]
struct Api {
    recognizer: Arc<OnceLock<Arc<Recognizer>>>,
}

/// The HTTP routes, with a body limit that fits `max_audio_secs` of CD audio.
pub fn router(recognizer: Arc<OnceLock<Arc<Recognizer>>>, max_audio_secs: u32) -> Router {
    let limit = (max_audio_secs as usize * 48_000 * 4 * 2).max(1 << 20) + (64 << 10);
    Router::new()
        .route("/v1/audio/transcriptions", post(transcriptions))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(Api { recognizer })
}

async fn transcriptions(State(api): State<Api>, mut form: Multipart) -> Result<Response, ApiError> {
    let recognizer = api
        .recognizer
        .get()
        .ok_or_else(|| {
            ApiError::unavailable("loading", "the speech-to-text model is still loading")
        })?
        .clone();
    let mut wav = None;
    let (mut model, mut language, mut prompt, mut format) = (None, None, None, None);
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| ApiError::bad_request("invalid_form", e.body_text()))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        let bytes = field
            .bytes()
            .await
            .map_err(|e| ApiError::bad_request("invalid_form", e.body_text()))?;
        let text = || String::from_utf8_lossy(&bytes).trim().to_owned();
        match name.as_str() {
            "file" => wav = Some(bytes.clone()),
            "model" => model = Some(text()),
            "language" => language = Some(text()),
            "prompt" => prompt = Some(text()),
            "response_format" => format = Some(text()),
            _ => {}
        }
    }
    let wav =
        wav.ok_or_else(|| ApiError::bad_request("missing_file", "the form has no `file` field"))?;
    // OpenAI's own model names are accepted and mean "the loaded model".
    if let Some(m) = model
        .as_deref()
        .filter(|m| !m.is_empty() && *m != recognizer.model() && !m.starts_with("whisper-1"))
    {
        return Err(ApiError::not_found(
            "model_not_found",
            format!(
                "model {m} is not loaded (this service runs {})",
                recognizer.model()
            ),
        ));
    }
    let mut utterance = recognizer.utterance();
    let (format_of_wav, pcm) = decode_wav(&wav)?;
    utterance.push(format_of_wav, &pcm)?;
    let hints: Vec<String> = prompt.into_iter().filter(|p| !p.is_empty()).collect();
    let t = recognizer
        .transcribe(&utterance, language.as_deref(), &hints)
        .await?;
    Ok(match format.as_deref().unwrap_or("json") {
        "text" => t.text.into_response(),
        "verbose_json" => Json(json!({
            "task": "transcribe",
            "language": t.language,
            "duration": t.audio_seconds,
            "text": t.text,
        }))
        .into_response(),
        "json" => Json(json!({ "text": t.text })).into_response(),
        other => {
            return Err(ApiError::bad_request(
                "unsupported_response_format",
                format!("response_format {other:?} is not supported (json, text, verbose_json)"),
            ));
        }
    })
}

/// The format and little-endian PCM of a WAV file (integer 8/16/32-bit or
/// float 32-bit; floats and 24-bit are converted to 16-bit).
fn decode_wav(bytes: &[u8]) -> Result<(AudioFormat, Vec<u8>), Error> {
    let reader = hound::WavReader::new(Cursor::new(bytes))
        .map_err(|e| Error::invalid(format!("`file` is not a WAV file: {e}")))?;
    let spec = reader.spec();
    let bad = |e: hound::Error| Error::invalid(format!("unreadable WAV data: {e}"));
    let (width, pcm): (u32, Vec<u8>) = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Int, 16) => (
            2,
            reader
                .into_samples::<i16>()
                .map(|s| s.map(i16::to_le_bytes))
                .collect::<Result<Vec<_>, _>>()
                .map_err(bad)?
                .concat(),
        ),
        (hound::SampleFormat::Int, 8) => (
            1,
            reader
                .into_samples::<i8>()
                .map(|s| s.map(|v| v.to_le_bytes()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(bad)?
                .concat(),
        ),
        (hound::SampleFormat::Int, 24 | 32) => {
            let shift = 32 - u32::from(spec.bits_per_sample);
            (
                4,
                reader
                    .into_samples::<i32>()
                    .map(|s| s.map(|v| (v << shift).to_le_bytes()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(bad)?
                    .concat(),
            )
        }
        (hound::SampleFormat::Float, 32) => (
            2,
            reader
                .into_samples::<f32>()
                .map(|s| s.map(|v| ((v.clamp(-1.0, 1.0) * 32_767.0) as i16).to_le_bytes()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(bad)?
                .concat(),
        ),
        (kind, bits) => {
            return Err(Error::invalid(format!(
                "unsupported WAV samples: {bits}-bit {kind:?}"
            )));
        }
    };
    let format = AudioFormat::new(spec.sample_rate, width, u32::from(spec.channels))?;
    Ok((format, pcm))
}
