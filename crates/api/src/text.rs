//! Text into sentences, as it arrives.
//!
//! Each sentence is synthesized (and its audio sent) as soon as it is
//! complete, so the splitter is incremental: [`SentenceSplitter::push`]
//! takes text in pieces (an LLM's tokens) and returns the sentences that
//! are certainly complete; [`SentenceSplitter::finish`] returns the rest.
//!
//! A sentence ends at `.`, `!`, `?`, `…` (and their full-width forms), with
//! any closing quotes or brackets, followed by white space, or at a line
//! break. Not at: decimals and versions (`3.5`, `v1.2.3`), host names and
//! URLs (`example.com/a.b`), abbreviations (`Dr.`, `e.g.`, `etc.` before a
//! lower-case word), initials (`J. R. R. Tolkien`). A terminator at the very
//! end of the text received so far waits for the next character, which
//! decides. Sentences longer than [`MAX_SENTENCE_CHARS`] are cut at a comma,
//! semicolon or space, so that long text without punctuation still streams
//! with bounded memory and latency.

/// The longest sentence handed to the synthesizer, in characters.
pub const MAX_SENTENCE_CHARS: usize = 400;

/// Words after which a period never ends a sentence (titles and such).
const NEVER_FINAL: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "no", "e.g", "i.e", "cf", "approx",
    "fig", "mt", "gen", "col", "lt", "sgt", "capt", "rev", "hon",
];
/// Words after which a period ends a sentence only before a capital letter.
const MAYBE_FINAL: &[&str] = &[
    "etc", "inc", "ltd", "co", "corp", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep",
    "sept", "oct", "nov", "dec", "mon", "tue", "wed", "thu", "fri", "sat", "sun", "a.m", "p.m",
];

fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…' | '。' | '！' | '？')
}

fn is_closer(c: char) -> bool {
    matches!(c, '"' | '\'' | ')' | ']' | '}' | '”' | '’' | '»' | '」')
}

/// The word right before byte `at` (letters, digits, inner periods and
/// apostrophes).
fn word_before(text: &str, at: usize) -> &str {
    let head = &text[..at];
    let start = head
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_alphanumeric() || matches!(c, '.' | '\'' | '’')))
        .map_or(0, |(i, c)| i + c.len_utf8());
    &head[start..]
}

/// The end (byte index) of the first complete sentence of `text`, or
/// `None` if it is not known yet. With `at_end`, the text is all there is.
fn first_boundary(text: &str, at_end: bool) -> Option<usize> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (pos, c) = chars[i];
        if c == '\n' {
            return Some(pos + 1);
        }
        if !is_terminator(c) {
            i += 1;
            continue;
        }
        // Take the whole run: "?!", "...", closing quotes and brackets.
        let mut j = i + 1;
        while j < chars.len() && (is_terminator(chars[j].1) || is_closer(chars[j].1)) {
            j += 1;
        }
        let end = chars.get(j).map_or(text.len(), |(p, _)| *p);
        let Some(&(_, next)) = chars.get(j) else {
            // At the end of what has arrived: the next character decides.
            return at_end.then_some(text.len());
        };
        if !next.is_whitespace() {
            // 3.5, example.com, e.g.x: inside a token.
            i = j;
            continue;
        }
        if c == '.' && j == i + 1 {
            let word = word_before(text, pos).to_lowercase();
            let following = chars[j..]
                .iter()
                .map(|(_, c)| *c)
                .find(|c| !c.is_whitespace());
            let capital_follows = following.is_some_and(char::is_uppercase);
            let initial = word.chars().count() == 1 && word.chars().all(char::is_alphabetic);
            let never = NEVER_FINAL.contains(&word.as_str()) || initial;
            let maybe = MAYBE_FINAL.contains(&word.as_str());
            if never || (maybe && !capital_follows) {
                i = j;
                continue;
            }
            // Nothing but white space after it so far: wait for the next word.
            if following.is_none()
                && !at_end
                && (maybe || word.ends_with(|c: char| c.is_ascii_digit()))
            {
                return None;
            }
        }
        return Some(end);
    }
    None
}

/// Where to cut a sentence that grew too long: after the last comma or
/// semicolon in it, else the last space, else at the limit.
fn forced_cut(text: &str) -> usize {
    let limit = text
        .char_indices()
        .nth(MAX_SENTENCE_CHARS)
        .map_or(text.len(), |(i, _)| i);
    let window = &text[..limit];
    window
        .rfind([',', ';', ':'])
        .map(|i| i + 1)
        .or_else(|| window.rfind(char::is_whitespace))
        .filter(|&i| i > 0)
        .unwrap_or(limit)
}

/// Splits text that arrives in pieces into sentences.
#[derive(Debug, Default)]
pub struct SentenceSplitter {
    buffer: String,
}

impl SentenceSplitter {
    /// A splitter with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `text`; returns the sentences completed by it.
    pub fn push(&mut self, text: &str) -> Vec<String> {
        self.buffer.push_str(text);
        self.drain(false)
    }

    /// Returns what is left as the last sentence(s).
    pub fn finish(&mut self) -> Vec<String> {
        self.drain(true)
    }

    fn drain(&mut self, at_end: bool) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let cut = match first_boundary(&self.buffer, at_end) {
                Some(end) if self.buffer[..end].chars().count() <= MAX_SENTENCE_CHARS => end,
                _ if self.buffer.chars().count() > MAX_SENTENCE_CHARS => forced_cut(&self.buffer),
                Some(end) => forced_cut(&self.buffer[..end]),
                None if at_end && !self.buffer.trim().is_empty() => self.buffer.len(),
                None => break,
            };
            let rest = self.buffer.split_off(cut);
            let sentence = std::mem::replace(&mut self.buffer, rest);
            let sentence = sentence.split_whitespace().collect::<Vec<_>>().join(" ");
            if !sentence.is_empty() {
                out.push(sentence);
            }
            if self.buffer.is_empty() {
                break;
            }
        }
        if at_end {
            self.buffer.clear();
        }
        out
    }
}

/// Splits a whole text into sentences.
pub fn sentences(text: &str) -> Vec<String> {
    let mut splitter = SentenceSplitter::new();
    let mut out = splitter.push(text);
    out.extend(splitter.finish());
    out
}

/// Whether `text` has anything to say: a letter or a digit.
pub fn is_speakable(text: &str) -> bool {
    text.chars().any(char::is_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_sentences() {
        assert_eq!(
            sentences("Turn on the lights. Is it late? Yes!  Good night."),
            ["Turn on the lights.", "Is it late?", "Yes!", "Good night."]
        );
        assert_eq!(sentences("No final stop"), ["No final stop"]);
        assert_eq!(
            sentences("Wait... what?! \"Really.\" Okay."),
            ["Wait...", "what?!", "\"Really.\"", "Okay."]
        );
    }

    #[test]
    fn numbers_urls_abbreviations_and_initials_stay_whole() {
        assert_eq!(
            sentences("It is 21.5 degrees. Version 1.2.3 is out."),
            ["It is 21.5 degrees.", "Version 1.2.3 is out."]
        );
        assert_eq!(
            sentences("See example.com/a.b for more. Thanks."),
            ["See example.com/a.b for more.", "Thanks."]
        );
        assert_eq!(
            sentences("Dr. Smith met Mr. Jones at St. Mary's. They talked."),
            ["Dr. Smith met Mr. Jones at St. Mary's.", "They talked."]
        );
        assert_eq!(
            sentences("Bring fruit, e.g. apples, etc. and bread. Then leave."),
            ["Bring fruit, e.g. apples, etc. and bread.", "Then leave."]
        );
        assert_eq!(
            sentences("Bring fruit etc. Then leave."),
            ["Bring fruit etc.", "Then leave."]
        );
        assert_eq!(
            sentences("J. R. R. Tolkien wrote it. The end."),
            ["J. R. R. Tolkien wrote it.", "The end."]
        );
        assert_eq!(sentences("Line one\nLine two"), ["Line one", "Line two"]);
    }

    #[test]
    fn pieces_give_the_same_sentences_as_the_whole() {
        let text =
            "The temperature is 21.5 degrees. Dr. Who arrives at 3 p.m. Tomorrow? Maybe! See you.";
        let whole = sentences(text);
        for size in [1, 2, 3, 5, 8] {
            let mut splitter = SentenceSplitter::new();
            let mut got = Vec::new();
            let chars: Vec<char> = text.chars().collect();
            for piece in chars.chunks(size) {
                got.extend(splitter.push(&piece.iter().collect::<String>()));
            }
            got.extend(splitter.finish());
            assert_eq!(got, whole, "pieces of {size}");
        }
        // A sentence is given out as soon as the next word starts.
        let mut splitter = SentenceSplitter::new();
        assert!(splitter.push("Hello there.").is_empty());
        assert_eq!(splitter.push(" How"), ["Hello there."]);
        assert!(splitter.push(" are you").is_empty());
        assert_eq!(splitter.finish(), ["How are you"]);
    }

    #[test]
    fn long_text_without_stops_is_cut() {
        let long = "word ".repeat(1000);
        let parts = sentences(&long);
        assert!(parts.len() > 10);
        assert!(
            parts
                .iter()
                .all(|p| p.chars().count() <= MAX_SENTENCE_CHARS)
        );
        assert_eq!(parts.join(" ").split_whitespace().count(), 1000);
        let commas = "one, two, three ".repeat(200);
        assert!(
            sentences(&commas)
                .iter()
                .all(|p| p.ends_with(',') || p.ends_with("three"))
        );
        let no_spaces = "x".repeat(1000);
        assert_eq!(sentences(&no_spaces).concat(), no_spaces);
    }

    #[test]
    fn speakable() {
        assert!(is_speakable("Hi."));
        assert!(is_speakable("42"));
        assert!(!is_speakable("?!... --"));
        assert!(!is_speakable("  "));
    }
}
