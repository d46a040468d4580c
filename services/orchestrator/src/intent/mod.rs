//! Local intent recognition: a transcript matched against template sentences
//! ([`template`]), so that "turn on the kitchen lights" becomes `HassTurnOn`
//! with `name` = `light.kitchen` without asking a language model.
//!
//! An [`IntentSet`] is loaded from YAML ([`IntentSet::english`] is built in):
//!
//! ```yaml
//! intents:                       # tried in order; the best match wins
//!   - intent: HassTurnOn
//!     slots: { domain: light }   # fixed slot values (optional)
//!     sentences: ["turn on [the] {name}"]
//! lists:                         # each: values, range or wildcard
//!   state: { values: ["on", { in: shut, out: closed }] }
//!   brightness: { range: { from: 0, to: 100, step: 1 } }
//!   timer_name: { wildcard: true }
//! expansion_rules:               # <name> in a sentence
//!   in_area: "(in|on) [the] {area}"
//! ```
//!
//! Lists that depend on the house (`name`: entity names and aliases → entity
//! id, `area`: area names → area id) come from the caller at match time as
//! [`SlotLists`]; a caller's list replaces a YAML list of the same name.
//!
//! When several sentences match, the best [`Score`] wins: fewest words taken
//! by wildcards, then most literal words, then fewest slots (so an entity's
//! own name "kitchen lights" beats area "kitchen" + domain "lights"), then the
//! first sentence in the file.

mod matcher;
mod numbers;
pub mod template;
mod words;

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use template::{Expression, Template, TemplateError};

/// The longest transcript matched, in words; longer ones are not commands.
const MAX_WORDS: usize = 48;

/// Template sentences for intents, with their lists and expansion rules.
#[derive(Debug, Clone)]
pub struct IntentSet {
    sentences: Vec<Sentence>,
    lists: HashMap<String, SlotList>,
}

/// One template sentence of an intent.
#[derive(Debug, Clone)]
struct Sentence {
    intent: String,
    /// Parsed, with expansion rules replaced by their definitions.
    template: Template,
    /// Slot values the sentence implies, such as `domain: light`.
    fixed: BTreeMap<String, SlotValue>,
}

/// Where the spoken value of a slot comes from.
#[derive(Debug, Clone)]
enum SlotList {
    /// Known phrases, each with its value.
    Values(Vec<ListValue>),
    /// A whole number, in digits or words.
    Range(NumberRange),
    /// Any words at all (at least one), such as a timer's name.
    Wildcard,
}

/// A phrase of a list and the value it stands for.
#[derive(Debug, Clone)]
struct ListValue {
    /// Normalized, never empty.
    words: Vec<String>,
    value: SlotValue,
}

/// The numbers a range list accepts: `from..=to` in steps of `step`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
struct NumberRange {
    from: i64,
    to: i64,
    #[serde(default = "one")]
    step: i64,
}

fn one() -> i64 {
    1
}

impl NumberRange {
    fn contains(&self, number: i64) -> bool {
        (self.from..=self.to).contains(&number)
            && number
                .checked_sub(self.from)
                .is_some_and(|offset| offset % self.step == 0)
    }
}

/// Lists of spoken phrases given at match time, such as entity names.
#[derive(Debug, Clone, Default)]
pub struct SlotLists {
    lists: HashMap<String, SlotList>,
}

impl SlotLists {
    /// No lists.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `spoken` to `list` as a way to say `value`: once per name and
    /// alias, e.g. `add("name", "Kitchen Lights", "light.kitchen")`. A
    /// phrase with no words in it is ignored.
    pub fn add(&mut self, list: &str, spoken: &str, value: impl Into<SlotValue>) -> &mut Self {
        let words = words::normalize(spoken);
        if words.is_empty() {
            return self;
        }
        let entry = self.lists.entry(list.to_owned());
        if let SlotList::Values(values) = entry.or_insert_with(|| SlotList::Values(Vec::new())) {
            values.push(ListValue {
                words,
                value: value.into(),
            });
        }
        self
    }
}

/// The value of a slot.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum SlotValue {
    /// A whole number: a brightness, a count of minutes.
    Number(i64),
    /// Text: an entity id, an area id, a state, a timer's name.
    Text(String),
}

impl From<&str> for SlotValue {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

impl From<String> for SlotValue {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<i64> for SlotValue {
    fn from(number: i64) -> Self {
        Self::Number(number)
    }
}

impl fmt::Display for SlotValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(number) => write!(f, "{number}"),
            Self::Text(text) => f.write_str(text),
        }
    }
}

/// A filled slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// What the words stand for.
    pub value: SlotValue,
    /// The words as heard (normalized); empty for a slot the sentence fixes.
    pub text: String,
}

/// How well a sentence matched; a greater score is a better match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Score {
    /// Words matched by the template's own words.
    pub literal_words: usize,
    /// Words taken by wildcard slots.
    pub wildcard_words: usize,
    /// Slots filled from the transcript.
    pub slots: usize,
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .wildcard_words
            .cmp(&self.wildcard_words)
            .then(self.literal_words.cmp(&other.literal_words))
            .then(other.slots.cmp(&self.slots))
    }
}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A recognized intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentMatch {
    /// The intent's name, e.g. `HassTurnOn`.
    pub intent: String,
    /// The slots, spoken and fixed, by name.
    pub slots: BTreeMap<String, Slot>,
    /// How well it matched.
    pub score: Score,
    /// The template sentence that matched, as written (rules expanded).
    pub sentence: String,
}

impl IntentMatch {
    /// The value of slot `name`.
    pub fn value(&self, name: &str) -> Option<&SlotValue> {
        self.slots.get(name).map(|slot| &slot.value)
    }

    /// The value of slot `name` if it is text.
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.value(name)? {
            SlotValue::Text(text) => Some(text),
            SlotValue::Number(_) => None,
        }
    }

    /// The value of slot `name` if it is a number.
    pub fn number(&self, name: &str) -> Option<i64> {
        match self.value(name)? {
            SlotValue::Number(number) => Some(*number),
            SlotValue::Text(_) => None,
        }
    }

    /// The duration in slots `hours`, `minutes` and `seconds`, if any is set.
    pub fn duration(&self) -> Option<Duration> {
        let mut seconds = None;
        for (slot, unit) in [("hours", 3600), ("minutes", 60), ("seconds", 1)] {
            if let Some(count) = self.number(slot) {
                let part = u64::try_from(count).ok()?.checked_mul(unit)?;
                seconds = Some(seconds.unwrap_or(0_u64).checked_add(part)?);
            }
        }
        seconds.map(Duration::from_secs)
    }
}

/// `HassLightSet brightness=50 name=light.kitchen`.
impl fmt::Display for IntentMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.intent)?;
        for (name, slot) in &self.slots {
            write!(f, " {name}={}", slot.value)?;
        }
        Ok(())
    }
}

/// Sentences that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum IntentError {
    /// Not YAML, or not the shape described in [`crate::intent`].
    #[error("intent sentences are not valid: {0}")]
    Yaml(#[from] serde_yaml_ng::Error),
    /// A sentence or expansion rule does not parse.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A sentence uses an expansion rule that is not defined.
    #[error("sentence template \"{template}\" uses <{rule}>, which is not defined")]
    UnknownRule {
        /// The rule's name.
        rule: String,
        /// The sentence or rule that uses it.
        template: String,
    },
    /// An expansion rule contains itself.
    #[error("expansion rule <{0}> contains itself")]
    RecursiveRule(String),
    /// A list definition makes no sense.
    #[error("list {list}: {problem}")]
    InvalidList {
        /// The list's name.
        list: String,
        /// What is wrong.
        problem: &'static str,
    },
}

/// The YAML file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IntentFile {
    #[serde(default)]
    intents: Vec<IntentEntry>,
    #[serde(default)]
    lists: HashMap<String, ListEntry>,
    #[serde(default)]
    expansion_rules: HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IntentEntry {
    intent: String,
    sentences: Vec<String>,
    #[serde(default)]
    slots: BTreeMap<String, SlotValue>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListEntry {
    values: Option<Vec<ValueEntry>>,
    range: Option<NumberRange>,
    #[serde(default)]
    wildcard: bool,
}

/// A list value: `on`, or `{ in: shut, out: closed }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ValueEntry {
    Same(String),
    Mapped {
        #[serde(rename = "in")]
        spoken: String,
        #[serde(rename = "out")]
        value: SlotValue,
    },
}

impl IntentSet {
    /// The built-in English sentences (`intents/en.yaml`).
    pub fn english() -> Result<Self, IntentError> {
        Self::from_yaml(include_str!("../../intents/en.yaml"))
    }

    /// Sentences from YAML in the shape described in [`crate::intent`].
    pub fn from_yaml(yaml: &str) -> Result<Self, IntentError> {
        let file: IntentFile = serde_yaml_ng::from_str(yaml)?;
        let rules = file
            .expansion_rules
            .iter()
            .map(|(name, text)| Ok((name.clone(), template::parse(text)?)))
            .collect::<Result<HashMap<_, _>, TemplateError>>()?;
        let mut sentences = Vec::new();
        for entry in file.intents {
            for text in &entry.sentences {
                let parsed = template::parse(text)?;
                let root = expand(&parsed.root, &parsed.text, &rules, &mut Vec::new())?;
                sentences.push(Sentence {
                    intent: entry.intent.clone(),
                    template: Template { root, ..parsed },
                    fixed: entry.slots.clone(),
                });
            }
        }
        let lists = file
            .lists
            .into_iter()
            .map(|(name, entry)| Ok((name.clone(), slot_list(&name, entry)?)))
            .collect::<Result<_, IntentError>>()?;
        Ok(Self { sentences, lists })
    }

    /// The intent `text` asks for, if one of the sentences says it.
    pub fn recognize(&self, text: &str, lists: &SlotLists) -> Option<IntentMatch> {
        let words = words::normalize(text);
        if words.is_empty() || words.len() > MAX_WORDS {
            return None;
        }
        let mut best: Option<(&Sentence, matcher::Found)> = None;
        for sentence in &self.sentences {
            let Some(found) = matcher::best(&sentence.template.root, &words, lists, &self.lists)
            else {
                continue;
            };
            if best
                .as_ref()
                .is_none_or(|(_, best)| found.score > best.score)
            {
                best = Some((sentence, found));
            }
        }
        let (sentence, found) = best?;
        let fixed = sentence.fixed.iter().map(|(name, value)| {
            let slot = Slot {
                value: value.clone(),
                text: String::new(),
            };
            (name.clone(), slot)
        });
        // Spoken slots override fixed ones of the same name.
        let slots = fixed.chain(found.slots).collect();
        Some(IntentMatch {
            intent: sentence.intent.clone(),
            slots,
            score: found.score,
            sentence: sentence.template.text.clone(),
        })
    }
}

/// `expression` with every rule replaced by its definition; `used` holds the
/// rules being expanded, to find one that contains itself.
fn expand(
    expression: &Expression,
    template: &str,
    rules: &HashMap<String, Template>,
    used: &mut Vec<String>,
) -> Result<Expression, IntentError> {
    let all = |items: &[Expression], used: &mut Vec<String>| {
        items
            .iter()
            .map(|item| expand(item, template, rules, used))
            .collect::<Result<_, _>>()
    };
    Ok(match expression {
        Expression::Rule(name) => {
            if used.contains(name) {
                return Err(IntentError::RecursiveRule(name.clone()));
            }
            let rule = rules.get(name).ok_or_else(|| IntentError::UnknownRule {
                rule: name.clone(),
                template: template.to_owned(),
            })?;
            used.push(name.clone());
            let expanded = expand(&rule.root, &rule.text, rules, used)?;
            used.pop();
            expanded
        }
        Expression::Sequence(items) => Expression::Sequence(all(items, used)?),
        Expression::Alternative(items) => Expression::Alternative(all(items, used)?),
        Expression::Word(_) | Expression::Slot { .. } => expression.clone(),
    })
}

/// The list `name` as written in YAML, checked.
fn slot_list(name: &str, entry: ListEntry) -> Result<SlotList, IntentError> {
    let invalid = |problem| IntentError::InvalidList {
        list: name.to_owned(),
        problem,
    };
    match entry {
        ListEntry {
            values: Some(values),
            range: None,
            wildcard: false,
        } => {
            let values = values.into_iter().map(|value| {
                let (spoken, value) = match value {
                    ValueEntry::Same(text) => (words::normalize(&text), SlotValue::Text(text)),
                    ValueEntry::Mapped { spoken, value } => (words::normalize(&spoken), value),
                };
                if spoken.is_empty() {
                    return Err(invalid("a value has no words"));
                }
                Ok(ListValue {
                    words: spoken,
                    value,
                })
            });
            Ok(SlotList::Values(values.collect::<Result<_, _>>()?))
        }
        ListEntry {
            values: None,
            range: Some(range),
            wildcard: false,
        } => {
            if range.from > range.to || range.step < 1 {
                return Err(invalid("a range needs from <= to and a step of at least 1"));
            }
            Ok(SlotList::Range(range))
        }
        ListEntry {
            values: None,
            range: None,
            wildcard: true,
        } => Ok(SlotList::Wildcard),
        _ => Err(invalid(
            "give exactly one of values, range or wildcard: true",
        )),
    }
}

#[cfg(test)]
mod tests;
