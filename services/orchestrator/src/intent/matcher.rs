//! Matching one template against the words of a transcript: a backtracking
//! search that tries every way the template can cover all the words and keeps
//! the best-scoring one. Each part of the template gets the position it starts
//! at and a continuation for the rest, so alternatives, optional words, slots
//! of several words and wildcards all backtrack the same way.

use std::collections::HashMap;

use super::template::Expression;
use super::{ListValue, Score, Slot, SlotList, SlotLists, SlotValue, numbers};

/// How many template parts one match may try: a bound on the work a
/// pathological template or transcript can cause; real sentences need hundreds.
const MAX_STEPS: usize = 100_000;

/// The best way a template covers a transcript.
#[derive(Debug)]
pub(super) struct Found {
    pub score: Score,
    /// The slots filled from the transcript, by slot name.
    pub slots: Vec<(String, Slot)>,
}

/// The best way `root` covers all of `words`, with slot values from the
/// caller's `lists` or, failing that, the sentence set's own `builtin` lists.
pub(super) fn best(
    root: &Expression,
    words: &[String],
    lists: &SlotLists,
    builtin: &HashMap<String, SlotList>,
) -> Option<Found> {
    let mut matcher = Matcher {
        words,
        lists,
        builtin,
        captured: Vec::new(),
        literal_words: 0,
        wildcard_words: 0,
        steps: 0,
        best: None,
    };
    matcher.expression(root, 0, &mut |matcher, at| {
        if at == matcher.words.len() {
            matcher.finish();
        }
    });
    matcher.best
}

/// A slot filled on the current path: its name, value and the words it took.
struct Capture<'a> {
    slot: &'a str,
    value: SlotValue,
    words: std::ops::Range<usize>,
}

/// The search state: the path taken so far and the best complete match.
struct Matcher<'a> {
    words: &'a [String],
    lists: &'a SlotLists,
    builtin: &'a HashMap<String, SlotList>,
    captured: Vec<Capture<'a>>,
    literal_words: usize,
    wildcard_words: usize,
    steps: usize,
    best: Option<Found>,
}

/// What to do with the position where a part of the template ended.
type Next<'n, 'a> = &'n mut dyn FnMut(&mut Matcher<'a>, usize);

impl<'a> Matcher<'a> {
    /// Matches `expression` from word `at`, calling `next` for each end.
    fn expression(&mut self, expression: &'a Expression, at: usize, next: Next<'_, 'a>) {
        if self.steps >= MAX_STEPS {
            return;
        }
        self.steps += 1;
        match expression {
            Expression::Word(word) => {
                if self.words.get(at) == Some(word) {
                    self.literal_words += 1;
                    next(self, at + 1);
                    self.literal_words -= 1;
                }
            }
            Expression::Sequence(items) => self.sequence(items, at, next),
            Expression::Alternative(alternatives) => {
                for alternative in alternatives {
                    self.expression(alternative, at, next);
                }
            }
            Expression::Slot { list, slot } => self.slot(list, slot, at, next),
            // Expanded when the sentences were loaded.
            Expression::Rule(_) => {}
        }
    }

    fn sequence(&mut self, items: &'a [Expression], at: usize, next: Next<'_, 'a>) {
        match items.split_first() {
            None => next(self, at),
            Some((first, rest)) => {
                self.expression(first, at, &mut |matcher, at| {
                    matcher.sequence(rest, at, next)
                });
            }
        }
    }

    fn slot(&mut self, list: &str, slot: &'a str, at: usize, next: Next<'_, 'a>) {
        let (lists, builtin, words) = (self.lists, self.builtin, self.words);
        let Some(list) = lists.lists.get(list).or_else(|| builtin.get(list)) else {
            return;
        };
        let rest = words.get(at..).unwrap_or_default();
        match list {
            SlotList::Values(values) => {
                for value in values.iter().filter(|value| value.is_prefix_of(rest)) {
                    let end = at + value.words.len();
                    self.capture(slot, value.value.clone(), at..end, next);
                }
            }
            SlotList::Range(range) => {
                for (len, number) in numbers::prefixes(rest) {
                    if range.contains(number) {
                        self.capture(slot, SlotValue::Number(number), at..at + len, next);
                    }
                }
            }
            SlotList::Wildcard => {
                for len in 1..=rest.len() {
                    let text = rest.get(..len).unwrap_or_default().join(" ");
                    self.wildcard_words += len;
                    self.capture(slot, SlotValue::Text(text), at..at + len, next);
                    self.wildcard_words -= len;
                }
            }
        }
    }

    fn capture(
        &mut self,
        slot: &'a str,
        value: SlotValue,
        words: std::ops::Range<usize>,
        next: Next<'_, 'a>,
    ) {
        let end = words.end;
        self.captured.push(Capture { slot, value, words });
        next(self, end);
        self.captured.pop();
    }

    /// Keeps the current path if it beats the best so far (ties keep the first).
    fn finish(&mut self) {
        let score = Score {
            literal_words: self.literal_words,
            wildcard_words: self.wildcard_words,
            slots: self.captured.len(),
        };
        if self.best.as_ref().is_some_and(|best| score <= best.score) {
            return;
        }
        let slots = self.captured.iter().map(|capture| {
            let text = self
                .words
                .get(capture.words.clone())
                .unwrap_or_default()
                .join(" ");
            let slot = Slot {
                value: capture.value.clone(),
                text,
            };
            (capture.slot.to_owned(), slot)
        });
        self.best = Some(Found {
            score,
            slots: slots.collect(),
        });
    }
}

impl ListValue {
    /// Whether `words` start with this value, its last word allowed to differ
    /// by a plural "s" either way ("kitchen light" and "kitchen lights").
    fn is_prefix_of(&self, words: &[String]) -> bool {
        let Some((last, init)) = self.words.split_last() else {
            return false;
        };
        let Some(spoken) = words.get(..self.words.len()) else {
            return false;
        };
        let Some((spoken_last, spoken_init)) = spoken.split_last() else {
            return false;
        };
        let plural = |a: &str, b: &str| a.strip_suffix('s') == Some(b);
        spoken_init == init
            && (spoken_last == last || plural(spoken_last, last) || plural(last, spoken_last))
    }
}
