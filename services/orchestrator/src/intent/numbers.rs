//! Spoken numbers: digits ("50", "-5") or English words ("fifty", "twenty five",
//! "a hundred", "one hundred and five", "two thousand"), as [`super::words`]
//! leaves them (lowercase, "twenty-five" already split). "a" and "an" alone
//! are one, so that "an hour" is one hour.

/// The longest number phrase a transcript is searched for ("nine hundred and
/// ninety nine thousand nine hundred and ninety nine" is longer, and unlikely).
const MAX_WORDS: usize = 8;

/// Every number that `words` starts with, as (words used, value), longest first.
pub(super) fn prefixes(words: &[String]) -> Vec<(usize, i64)> {
    (1..=words.len().min(MAX_WORDS))
        .rev()
        .filter_map(|len| Some((len, parse(words.get(..len)?)?)))
        .collect()
}

/// The number that all of `words` say, if they say one.
pub(super) fn parse(words: &[String]) -> Option<i64> {
    if let [word] = words
        && let digits = word.strip_prefix('-').unwrap_or(word)
        && !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        return word.parse().ok();
    }
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match words.iter().position(|w| *w == "thousand") {
        Some(at) => {
            let thousands = below_thousand(&words[..at])?;
            Some(thousands * 1000 + rest(&words[at + 1..], below_thousand)?)
        }
        None => below_thousand(&words),
    }
}

/// "seven", "a hundred", "three hundred and twelve".
fn below_thousand(words: &[&str]) -> Option<i64> {
    match words.iter().position(|w| *w == "hundred") {
        Some(at) => {
            let hundreds = match &words[..at] {
                [] | ["a" | "an"] => 1,
                [digit] => unit(digit).filter(|n| *n > 0)?,
                _ => return None,
            };
            Some(hundreds * 100 + rest(&words[at + 1..], below_hundred)?)
        }
        None => below_hundred(words),
    }
}

/// What follows "hundred" or "thousand": nothing, or "[and] <smaller number>".
fn rest(words: &[&str], smaller: fn(&[&str]) -> Option<i64>) -> Option<i64> {
    match words {
        [] => Some(0),
        ["and", rest @ ..] if !rest.is_empty() => smaller(rest),
        _ => smaller(words),
    }
}

/// "a", "seven", "seventeen", "seventy", "seventy seven".
fn below_hundred(words: &[&str]) -> Option<i64> {
    match words {
        ["a" | "an"] => Some(1),
        [word] => unit(word).or_else(|| tens(word)),
        [tens_word, unit_word] => {
            Some(tens(tens_word)? + unit(unit_word).filter(|n| (1..=9).contains(n))?)
        }
        _ => None,
    }
}

/// "zero" to "nineteen".
fn unit(word: &str) -> Option<i64> {
    const UNITS: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    UNITS
        .iter()
        .position(|u| *u == word)
        .and_then(|n| i64::try_from(n).ok())
}

/// "twenty" to "ninety".
fn tens(word: &str) -> Option<i64> {
    const TENS: [&str; 8] = [
        "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    let n = TENS.iter().position(|t| *t == word)?;
    i64::try_from(n).ok().map(|n| (n + 2) * 10)
}

#[cfg(test)]
mod tests {
    use super::{parse, prefixes};

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn numbers_in_digits_and_words() {
        let cases = [
            ("50", Some(50)),
            ("-5", Some(-5)),
            ("-", None),
            ("fifty", Some(50)),
            ("twenty five", Some(25)),
            ("nineteen", Some(19)),
            ("a hundred", Some(100)),
            ("one hundred", Some(100)),
            ("one hundred and five", Some(105)),
            ("two hundred forty two", Some(242)),
            ("an", Some(1)),
            ("a thousand", Some(1000)),
            ("three thousand six hundred", Some(3600)),
            ("two thousand and twelve", Some(2012)),
            ("one thousand two thousand", None),
            ("twenty fifty", None),
            ("twenty ten", None),
            ("five twenty", None),
            ("one hundred and", None),
            ("99999999999999999999999", None),
            ("2.5", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(&words(text)), expected, "{text:?}");
        }
    }

    #[test]
    fn prefixes_longest_first() {
        assert_eq!(prefixes(&words("twenty five minutes")), [(2, 25), (1, 20)]);
        assert_eq!(prefixes(&words("minutes")), []);
    }
}
