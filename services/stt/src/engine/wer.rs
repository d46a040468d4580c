//! Word error rate, for checking and comparing engines on clips with known
//! transcripts.

/// Lowercases, drops apostrophes (`don't` → `dont`), turns every other
/// non-alphanumeric character into a space and splits into words.
pub fn normalize(text: &str) -> Vec<String> {
    let cleaned: String = text
        .chars()
        .filter(|&c| c != '\'' && c != '’')
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .flat_map(char::to_lowercase)
        .collect();
    cleaned.split_whitespace().map(str::to_owned).collect()
}

/// Word error rate of `hypothesis` against `reference`: (substitutions +
/// deletions + insertions) / reference words, after [`normalize`]. An empty
/// reference gives 0 for an empty hypothesis and 1 otherwise.
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    let r = normalize(reference);
    let h = normalize(hypothesis);
    if r.is_empty() {
        return if h.is_empty() { 0.0 } else { 1.0 };
    }
    // Levenshtein distance over words, one row at a time.
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    let mut cur = vec![0; h.len() + 1];
    for (i, rw) in r.iter().enumerate() {
        cur[0] = i + 1;
        for (j, hw) in h.iter().enumerate() {
            let substitution = prev[j] + usize::from(rw != hw);
            cur[j + 1] = substitution.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[h.len()] as f64 / r.len() as f64
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn normalization_ignores_case_and_punctuation() {
        assert_eq!(
            normalize("And so, my fellow Americans: don't!"),
            ["and", "so", "my", "fellow", "americans", "dont"]
        );
        assert_eq!(word_error_rate("Hello, World.", "hello world"), 0.0);
    }

    #[test]
    fn counts_substitutions_deletions_and_insertions() {
        let r = "the cat sat on the mat";
        assert_eq!(word_error_rate(r, "the cat sat on the mat"), 0.0);
        assert!((word_error_rate(r, "the dog sat on the mat") - 1.0 / 6.0).abs() < 1e-12);
        assert!((word_error_rate(r, "the cat sat on mat") - 1.0 / 6.0).abs() < 1e-12);
        assert!((word_error_rate(r, "the cat sat on the big mat") - 1.0 / 6.0).abs() < 1e-12);
        assert!((word_error_rate(r, "") - 1.0).abs() < 1e-12);
        // More insertions than reference words can exceed 1.
        assert!((word_error_rate("a", "b c d") - 3.0).abs() < 1e-12);
    }

    #[test]
    fn empty_reference() {
        assert_eq!(word_error_rate("", ""), 0.0);
        assert_eq!(word_error_rate("...", "words"), 1.0);
    }
}
