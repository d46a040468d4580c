//! Decisions every engine makes the same way: which audio is acceptable,
//! which language to ask for, how much encoder context a short utterance
//! gets (see [`super::TranscribeOptions::reduced_context`]), and when a
//! result is a decoding loop rather than speech.

use super::{EngineError, EngineInfo};

/// Samples per encoder frame: a 10 ms mel hop, halved again by the stride-2
/// convolution, so one encoder position covers 20 ms.
pub const SAMPLES_PER_AUDIO_CTX: usize = 320;
/// Silence kept after the audio in a reduced context (1 s), so the model
/// sees the end of speech as it does in training.
const REDUCED_CTX_MARGIN: usize = 50;
/// Reduced contexts are multiples of this.
const REDUCED_CTX_MULTIPLE: usize = 64;
/// The smallest reduced context (7.68 s). Whisper was trained on 30 s
/// windows; with much shorter ones it tends to loop ("asked, asked, ...").
/// Measured on tiny.en with cuts of jfk.wav: 256 positions looped for every
/// cut from 2.5 s to 5 s, 320 repeated phrases of a 2.5 s and 3 s cut, 384
/// and more gave the full-context text for every cut that fit.
const REDUCED_CTX_MIN: usize = 384;
/// A reduced-context result with more tokens than this many per second of
/// audio (plus [`PLAUSIBLE_TOKENS_BASE`]) is taken for a decoding loop and
/// redone with the full context. Fast speech is about 4–5 tokens a second.
const PLAUSIBLE_TOKENS_PER_SECOND: f32 = 6.0;
/// See [`PLAUSIBLE_TOKENS_PER_SECOND`].
const PLAUSIBLE_TOKENS_BASE: f32 = 10.0;
/// The encoder context to use for `samples` of audio when reducing it, or
/// `None` when the full context (`n_audio_ctx`, 1500 = 30 s) is needed anyway.
///
/// It covers the audio plus a second, rounded up to a multiple of 64, and at
/// least 384 positions (7.68 s).
pub fn reduced_audio_ctx(samples: usize, n_audio_ctx: usize) -> Option<usize> {
    let needed = samples.div_ceil(SAMPLES_PER_AUDIO_CTX) + REDUCED_CTX_MARGIN;
    let frames = needed
        .div_ceil(REDUCED_CTX_MULTIPLE)
        .saturating_mul(REDUCED_CTX_MULTIPLE)
        .max(REDUCED_CTX_MIN);
    (frames < n_audio_ctx).then_some(frames)
}

/// Whether `tokens` are too many for `seconds` of speech: the sign of a
/// decoding loop, which runs until the decoder's token limit.
pub fn looks_like_a_loop(tokens: usize, seconds: f32) -> bool {
    tokens as f32 > PLAUSIBLE_TOKENS_BASE + PLAUSIBLE_TOKENS_PER_SECOND * seconds
}

/// Hints longer than this (bytes) are cut.
const MAX_HINT_BYTES: usize = 1024;

/// The hints as the text of an initial prompt: `" hint, hint"`, without
/// NULs, at most [`MAX_HINT_BYTES`]; `None` when there are none.
pub fn hint_prompt(hints: &[String]) -> Option<String> {
    let joined = hints
        .iter()
        .map(|h| h.replace('\0', " ").trim().to_owned())
        .filter(|h| !h.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    if joined.is_empty() {
        return None;
    }
    let mut text = format!(" {joined}");
    if text.len() > MAX_HINT_BYTES {
        let mut cut = MAX_HINT_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    Some(text)
}

/// Keeps the last `max` prompt tokens (the most recent words win, as in
/// Whisper).
pub fn keep_last<T>(tokens: &mut Vec<T>, max: usize) {
    if tokens.len() > max {
        tokens.drain(..tokens.len() - max);
    }
}

/// Rejects audio no engine can transcribe: empty, not finite, or more
/// samples than the C engines index.
pub fn check_audio(audio: &[f32]) -> Result<(), EngineError> {
    if audio.is_empty() {
        return Err(EngineError::InvalidAudio("no samples".into()));
    }
    if let Some(i) = audio.iter().position(|s| !s.is_finite()) {
        return Err(EngineError::InvalidAudio(format!(
            "sample {i} is not a finite number"
        )));
    }
    if audio.len() > i32::MAX as usize {
        return Err(EngineError::InvalidAudio("too many samples".into()));
    }
    Ok(())
}

/// The language to transcribe in for a request (`"en"`, `"de-DE"`,
/// `"auto"`, or none): an ISO 639-1 code the model knows, or `None` to
/// detect it (multilingual models). English-only models answer `"en"`.
pub fn language(requested: Option<&str>, info: &EngineInfo) -> Result<Option<String>, EngineError> {
    let code = requested
        .map(|l| {
            l.trim()
                .split(['-', '_'])
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase()
        })
        .filter(|l| !l.is_empty() && l != "auto");
    let supported = || {
        let list = &info.languages;
        if list.len() > 12 {
            format!("{}, ... ({} languages)", list[..12].join(", "), list.len())
        } else {
            list.join(", ")
        }
    };
    match code {
        None if info.detects_language => Ok(None),
        None => Ok(Some("en".into())),
        Some(code) if info.languages.contains(&code) => Ok(Some(code)),
        Some(_) => Err(EngineError::UnsupportedLanguage {
            language: requested.unwrap_or_default().to_owned(),
            supported: supported(),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::engine::SAMPLE_RATE;

    fn info(languages: &[&str], detects_language: bool) -> EngineInfo {
        EngineInfo {
            engine: "test".into(),
            version: "0".into(),
            model: "test".into(),
            languages: languages.iter().map(|l| (*l).to_owned()).collect(),
            detects_language,
        }
    }

    #[test]
    fn languages_resolve_to_codes_the_model_knows() {
        let en = info(&["en"], false);
        assert_eq!(language(None, &en).unwrap().as_deref(), Some("en"));
        assert_eq!(language(Some("en-US"), &en).unwrap().as_deref(), Some("en"));
        assert!(
            language(Some("de"), &en)
                .unwrap_err()
                .to_string()
                .contains("en")
        );
        let multi = info(&["en", "de"], true);
        assert_eq!(language(Some("auto"), &multi).unwrap(), None);
        assert_eq!(
            language(Some("DE_de"), &multi).unwrap().as_deref(),
            Some("de")
        );
    }

    #[test]
    fn hints_become_one_bounded_prompt() {
        assert_eq!(hint_prompt(&[]), None);
        assert_eq!(hint_prompt(&[" ".into()]), None);
        assert_eq!(
            hint_prompt(&["kitchen".into(), "a\0b".into()]).as_deref(),
            Some(" kitchen, a b")
        );
        let long = hint_prompt(&["é".repeat(2000)]).unwrap();
        assert!(long.len() <= MAX_HINT_BYTES);
        let mut tokens = vec![1, 2, 3, 4];
        keep_last(&mut tokens, 2);
        assert_eq!(tokens, [3, 4]);
    }

    #[test]
    fn bad_audio_is_rejected() {
        assert!(check_audio(&[]).is_err());
        assert!(
            check_audio(&[0.0, f32::NAN])
                .unwrap_err()
                .to_string()
                .contains("sample 1")
        );
        assert!(check_audio(&[0.0, 0.5]).is_ok());
    }

    #[test]
    fn loops_are_told_from_speech() {
        // The loops seen with too short a context ran to 220 tokens.
        assert!(looks_like_a_loop(220, 4.0));
        assert!(looks_like_a_loop(220, 11.0));
        // jfk.wav: 7 tokens for 4 s, 25 for 11 s.
        assert!(!looks_like_a_loop(7, 4.0));
        assert!(!looks_like_a_loop(25, 11.0));
        // A one-second command of a few words.
        assert!(!looks_like_a_loop(8, 1.0));
    }

    #[test]
    fn reduced_context_covers_the_audio_plus_a_margin() {
        let s = SAMPLE_RATE as usize;
        // 1 s: 50 + 50 frames, raised to the 384 minimum.
        assert_eq!(reduced_audio_ctx(s, 1500), Some(384));
        // 4 s: 200 + 50 = 250 → 384.
        assert_eq!(reduced_audio_ctx(4 * s, 1500), Some(384));
        // 7 s: 350 + 50 = 400 → 448.
        assert_eq!(reduced_audio_ctx(7 * s, 1500), Some(448));
        // 11 s: 550 + 50 = 600 → 640.
        assert_eq!(reduced_audio_ctx(11 * s, 1500), Some(640));
        // 20 s: 1000 + 50 = 1050 → 1088.
        assert_eq!(reduced_audio_ctx(20 * s, 1500), Some(1088));
        // 29 s would need 1500 + rounding: full context.
        assert_eq!(reduced_audio_ctx(29 * s, 1500), None);
        assert_eq!(reduced_audio_ctx(60 * s, 1500), None);
        // Every reduced context covers its audio.
        for samples in (1..30 * s).step_by(4801) {
            if let Some(ctx) = reduced_audio_ctx(samples, 1500) {
                assert!(ctx * SAMPLES_PER_AUDIO_CTX >= samples + REDUCED_CTX_MARGIN * 320);
                assert_eq!(ctx % REDUCED_CTX_MULTIPLE, 0);
            }
        }
    }
}
