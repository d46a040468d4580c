//! Text to phonemes with espeak-ng, as Piper voices were trained.
//!
//! espeak-ng keeps global state, so every call goes through one lock.
//! espeak-ng gives phonemes without punctuation; Piper voices know the
//! punctuation symbols and speak differently before a comma or at a
//! question mark, so clauses are phonemized one at a time and their
//! punctuation put back between them, as Piper's own phonemizer does.

use std::sync::{Mutex, PoisonError};

static ESPEAK: Mutex<()> = Mutex::new(());

/// Where espeak-ng's data is looked for (a folder that contains
/// `espeak-ng-data`), read by espeak-rs at its first call.
pub const DATA_DIR_VARIABLE: &str = "PIPER_ESPEAKNG_DATA_DIRECTORY";

/// The files espeak-ng cannot start without.
const DATA_FILES: [&str; 4] = ["phontab", "phonindex", "phondata", "intonations"];

/// Checks the espeak-ng data folder named by [`DATA_DIR_VARIABLE`], if set:
/// espeak-rs would pass over a wrong one silently and look elsewhere.
pub fn check_data_dir() -> Result<(), PhonemizeError> {
    let Some(dir) = std::env::var_os(DATA_DIR_VARIABLE) else {
        return Ok(());
    };
    let data = std::path::Path::new(&dir).join("espeak-ng-data");
    match DATA_FILES.iter().find(|f| !data.join(f).is_file()) {
        None => Ok(()),
        Some(missing) => Err(PhonemizeError(format!(
            "{DATA_DIR_VARIABLE} is {}, but {} has no {missing}: set it to the folder \
             that contains espeak-ng-data (Debian package espeak-ng-data: \
             /usr/lib/{}-linux-gnu)",
            data.parent().unwrap_or(&data).display(),
            data.display(),
            std::env::consts::ARCH,
        ))),
    }
}

/// Why phonemes could not be made.
#[derive(Debug, thiserror::Error)]
#[error("espeak-ng: {0}")]
pub struct PhonemizeError(pub String);

/// The IPA phonemes of one sentence in espeak voice `voice` (`en-us`),
/// with `,` `;` `:` and the final `.` `?` `!` kept.
pub fn phonemize(sentence: &str, voice: &str) -> Result<String, PhonemizeError> {
    // Control characters (a NUL above all) mean nothing to say and would
    // stop espeak-ng: they become spaces.
    let sentence: String = sentence
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let _espeak = ESPEAK.lock().unwrap_or_else(PoisonError::into_inner);
    let mut out = String::new();
    for (clause, punctuation) in clauses(&sentence) {
        if !clause.chars().any(char::is_alphanumeric) {
            continue;
        }
        let phonemes = espeak_rs::text_to_phonemes(clause, voice, None)
            .map_err(|e| PhonemizeError(e.to_string()))?
            .join(" ");
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(phonemes.trim());
        if let Some(p) = punctuation {
            out.push(p);
        }
    }
    Ok(out)
}

/// A sentence's clauses, each with the punctuation that closes it.
fn clauses(sentence: &str) -> Vec<(&str, Option<char>)> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = sentence.char_indices().collect();
    for (k, &(i, c)) in chars.iter().enumerate() {
        let next_is_space = chars.get(k + 1).is_none_or(|(_, n)| n.is_whitespace());
        let closes = match c {
            ',' | ';' | ':' => next_is_space,
            '.' | '!' | '?' => next_is_space,
            _ => false,
        };
        if closes {
            out.push((&sentence[start..i], Some(c)));
            start = i + c.len_utf8();
        }
    }
    if start < sentence.len() {
        out.push((&sentence[start..], None));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clauses_keep_their_punctuation() {
        assert_eq!(
            clauses("Well, it is 3.5 degrees; nice?"),
            [
                ("Well", Some(',')),
                (" it is 3.5 degrees", Some(';')),
                (" nice", Some('?'))
            ]
        );
        assert_eq!(clauses("no stop"), [("no stop", None)]);
    }
}
