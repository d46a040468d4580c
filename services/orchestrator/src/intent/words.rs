//! Text to words, the same way for a transcript and for a template sentence:
//! lowercase, punctuation dropped (not a minus sign), "50%" read as "50 percent", "twenty-five" as
//! "twenty five" and the common contractions spelled out ("what's" → "what is"),
//! so that a template written either way matches a transcript written either way.

/// The words of `text`, normalized.
pub(super) fn normalize(text: &str) -> Vec<String> {
    let mut cleaned = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut previous = ' ';
    while let Some(c) = chars.next() {
        let between_digits =
            previous.is_ascii_digit() && chars.peek().is_some_and(char::is_ascii_digit);
        match c {
            c if c.is_alphanumeric() => cleaned.extend(c.to_lowercase()),
            '\'' | '’' | '‘' | '`' => cleaned.push('\''),
            '%' => cleaned.push_str(" percent "),
            '&' => cleaned.push_str(" and "),
            '.' if between_digits => cleaned.push('.'),
            '-' if !previous.is_alphanumeric()
                && chars.peek().is_some_and(char::is_ascii_digit) =>
            {
                cleaned.push('-');
            }
            ',' if between_digits => {}
            _ => cleaned.push(' '),
        }
        previous = c;
    }
    let mut words = Vec::new();
    for word in cleaned.split_whitespace() {
        spell_out(word, &mut words);
    }
    words
}

/// Words that "'s" after them means "is" ("what's"); after any other word it
/// is a possessive and only the apostrophe goes ("kid's" → "kids").
const IS_CONTRACTIONS: &[&str] = &[
    "what", "where", "when", "who", "why", "how", "that", "there", "here", "it", "he", "she",
];

/// Pushes `word` with its contraction spelled out and its apostrophes gone.
fn spell_out(word: &str, words: &mut Vec<String>) {
    let word = word.trim_matches('\'');
    if word.is_empty() {
        return;
    }
    if !word.contains('\'') {
        words.push(word.to_owned());
        return;
    }
    let (stem, expansion) = match word {
        "won't" => ("will", "not"),
        "can't" => ("can", "not"),
        "let's" => ("let", "us"),
        _ => {
            let suffixes = [
                ("n't", "not"),
                ("'re", "are"),
                ("'ll", "will"),
                ("'m", "am"),
                ("'ve", "have"),
                ("'d", "would"),
                ("'s", "is"),
            ];
            let found = suffixes.iter().find_map(|(suffix, expansion)| {
                let stem = word.strip_suffix(suffix)?;
                let is_possessive = *suffix == "'s" && !IS_CONTRACTIONS.contains(&stem);
                (!is_possessive && !stem.contains('\'')).then_some((stem, *expansion))
            });
            match found {
                Some(found) => found,
                None => {
                    words.push(word.replace('\'', ""));
                    return;
                }
            }
        }
    };
    words.push(stem.to_owned());
    words.push(expansion.to_owned());
}

#[cfg(test)]
mod tests {
    use super::normalize;

    fn check(text: &str, expected: &str) {
        assert_eq!(normalize(text).join(" "), expected, "normalizing {text:?}");
    }

    #[test]
    fn transcripts_become_plain_words() {
        check(
            " Turn on the Kitchen  Lights. ",
            "turn on the kitchen lights",
        );
        check("Set it to 50%.", "set it to 50 percent");
        check("from -5 to 10-20", "from -5 to 10 20");
        check("twenty-five, please!", "twenty five please");
        check(
            "What's the time? It's 2.5 or 1,000",
            "what is the time it is 2.5 or 1000",
        );
        check(
            "Don't stop; I’ll wait, we're here",
            "do not stop i will wait we are here",
        );
        check(
            "Won't you turn off the kid's room light",
            "will not you turn off the kids room light",
        );
        check("'quoted' ... !!!", "quoted");
        check("", "");
    }
}
