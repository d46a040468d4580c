//! Template sentences: the grammar a local intent is written in.
//!
//! ```text
//! turn (on|off) [the] {name}      alternatives, an optional part, a slot
//! set a timer for {minutes} minute[s]
//! {timer_name:name} timer          a value from list `timer_name`, kept as slot `name`
//! <in_area>                        an expansion rule, defined beside the sentences
//! ```
//!
//! `[x]` is `(x|)`. A group glued to the end of a word, as in `minute[s]`,
//! adds to that word: its alternatives may only be single words or empty.
//! Literal text is normalized like a transcript (case, punctuation,
//! contractions), so `What's the time?` and `what is the time` are one template.

use std::fmt;

use super::words;

/// A template sentence, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The sentence as written, for messages.
    pub text: String,
    /// What it matches.
    pub root: Expression,
}

/// A part of a template sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expression {
    /// One normalized word, matched exactly.
    Word(String),
    /// Parts one after another; empty matches nothing, as the missing side of `[x]`.
    Sequence(Vec<Expression>),
    /// Any one of the parts, tried in order.
    Alternative(Vec<Expression>),
    /// A value from the list `list`, kept in the slot `slot`.
    Slot {
        /// The list whose spoken values match here.
        list: String,
        /// The slot the value is kept in.
        slot: String,
    },
    /// An expansion rule, replaced by its definition when sentences are loaded.
    Rule(String),
}

/// A template sentence that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem} at character {position} of sentence template \"{template}\"")]
pub struct TemplateError {
    /// The sentence as written.
    pub template: String,
    /// Where the problem is, in characters from the start.
    pub position: usize,
    /// What the problem is.
    pub problem: TemplateProblem,
}

/// What is wrong with a template sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TemplateProblem {
    /// A `(`, `[`, `{` or `<` without its closing bracket.
    #[error("'{0}' is never closed")]
    Unclosed(char),
    /// A closing bracket without its opening one.
    #[error("'{0}' closes nothing")]
    UnexpectedClose(char),
    /// `{}`, `{list:}` or `<>`.
    #[error("a slot, list or rule name is empty")]
    EmptyName,
    /// A group glued to a word holds more than single words, as in `minute[s and]`.
    #[error("a group glued to a word may only hold single words")]
    GluedGroup,
    /// Groups nested deeper than anyone writes them.
    #[error("groups are nested more than {MAX_DEPTH} deep")]
    TooDeep,
}

/// How deep groups may nest: parsing and matching recurse once per level.
const MAX_DEPTH: usize = 16;

/// Parses a template sentence.
pub fn parse(template: &str) -> Result<Template, TemplateError> {
    let mut parser = Parser {
        template,
        chars: template.chars().enumerate(),
        depth: 0,
    };
    let root = parser.group(None)?;
    Ok(Template {
        text: template.to_owned(),
        root,
    })
}

/// A cursor over the characters of a template.
struct Parser<'a> {
    template: &'a str,
    chars: std::iter::Enumerate<std::str::Chars<'a>>,
    /// Groups open around the cursor.
    depth: usize,
}

impl Parser<'_> {
    /// Parses alternatives up to the bracket that closes `open` (its position
    /// and character), or to the end of the template when `open` is `None`.
    fn group(&mut self, open: Option<(usize, char)>) -> Result<Expression, TemplateError> {
        let close = open.map(|(_, c)| if c == '(' { ')' } else { ']' });
        let mut alternatives = Vec::new();
        let mut items = Vec::new();
        let mut literal = String::new();
        loop {
            let Some((at, c)) = self.chars.next() else {
                if let Some((at, c)) = open {
                    return Err(self.error(at, TemplateProblem::Unclosed(c)));
                }
                flush(&mut literal, &mut items);
                alternatives.push(sequence(items));
                return Ok(alternative(alternatives));
            };
            match c {
                c if Some(c) == close => {
                    flush(&mut literal, &mut items);
                    alternatives.push(sequence(items));
                    if c == ']' {
                        alternatives.push(Expression::Sequence(Vec::new()));
                    }
                    return Ok(alternative(alternatives));
                }
                '|' => {
                    flush(&mut literal, &mut items);
                    alternatives.push(sequence(std::mem::take(&mut items)));
                }
                '(' | '[' => {
                    let glued = literal.chars().last().is_some_and(char::is_alphanumeric);
                    flush(&mut literal, &mut items);
                    if self.depth == MAX_DEPTH {
                        return Err(self.error(at, TemplateProblem::TooDeep));
                    }
                    self.depth += 1;
                    let group = self.group(Some((at, c)))?;
                    self.depth -= 1;
                    if glued {
                        let word = items.pop();
                        let suffixed = word.and_then(|word| glue(word, group));
                        items.push(
                            suffixed.ok_or_else(|| self.error(at, TemplateProblem::GluedGroup))?,
                        );
                    } else {
                        items.push(group);
                    }
                }
                '{' => {
                    flush(&mut literal, &mut items);
                    let name = self.name(at, c, '}')?;
                    let (list, slot) = name
                        .split_once(':')
                        .unwrap_or((name.as_str(), name.as_str()));
                    let (list, slot) = (list.trim(), slot.trim());
                    if list.is_empty() || slot.is_empty() {
                        return Err(self.error(at, TemplateProblem::EmptyName));
                    }
                    items.push(Expression::Slot {
                        list: list.to_owned(),
                        slot: slot.to_owned(),
                    });
                }
                '<' => {
                    flush(&mut literal, &mut items);
                    let name = self.name(at, c, '>')?;
                    items.push(Expression::Rule(name.trim().to_owned()));
                }
                ')' | ']' | '}' | '>' => {
                    return Err(self.error(at, TemplateProblem::UnexpectedClose(c)));
                }
                c => literal.push(c),
            }
        }
    }

    /// The name between `open` (at `at`) and `close`, not empty.
    fn name(&mut self, at: usize, open: char, close: char) -> Result<String, TemplateError> {
        let mut name = String::new();
        for (_, c) in self.chars.by_ref() {
            match c {
                c if c == close => {
                    return if name.trim().is_empty() {
                        Err(self.error(at, TemplateProblem::EmptyName))
                    } else {
                        Ok(name)
                    };
                }
                '(' | ')' | '[' | ']' | '{' | '}' | '<' | '>' | '|' => break,
                c => name.push(c),
            }
        }
        Err(self.error(at, TemplateProblem::Unclosed(open)))
    }

    fn error(&self, position: usize, problem: TemplateProblem) -> TemplateError {
        TemplateError {
            template: self.template.to_owned(),
            position,
            problem,
        }
    }
}

/// Moves the words of `literal` into `items`.
fn flush(literal: &mut String, items: &mut Vec<Expression>) {
    items.extend(words::normalize(literal).into_iter().map(Expression::Word));
    literal.clear();
}

/// `word` with each alternative of `group` appended: `minute` + `(s|)` is
/// `(minutes|minute)`. `None` when `word` is not a word or an alternative is
/// more than one word.
fn glue(word: Expression, group: Expression) -> Option<Expression> {
    let Expression::Word(word) = word else {
        return None;
    };
    let alternatives = match group {
        Expression::Alternative(alternatives) => alternatives,
        other => vec![other],
    };
    let words = alternatives.into_iter().map(|suffix| match suffix {
        Expression::Word(suffix) => Some(Expression::Word(format!("{word}{suffix}"))),
        Expression::Sequence(empty) if empty.is_empty() => Some(Expression::Word(word.clone())),
        _ => None,
    });
    Some(alternative(words.collect::<Option<_>>()?))
}

/// `items` in sequence; one item stands for itself.
fn sequence(mut items: Vec<Expression>) -> Expression {
    if items.len() == 1
        && let Some(item) = items.pop()
    {
        return item;
    }
    Expression::Sequence(items)
}

/// Any of `alternatives`; one stands for itself.
fn alternative(mut alternatives: Vec<Expression>) -> Expression {
    if alternatives.len() == 1
        && let Some(only) = alternatives.pop()
    {
        return only;
    }
    Expression::Alternative(alternatives)
}

/// The canonical template syntax: `[x]` is written `(x|)`.
impl fmt::Display for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |f: &mut fmt::Formatter<'_>, parts: &[Expression], separator| {
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    f.write_str(separator)?;
                }
                write!(f, "{part}")?;
            }
            Ok(())
        };
        match self {
            Self::Word(word) => f.write_str(word),
            Self::Sequence(items) => join(f, items, " "),
            Self::Alternative(alternatives) => {
                f.write_str("(")?;
                join(f, alternatives, "|")?;
                f.write_str(")")
            }
            Self::Slot { list, slot } if list == slot => write!(f, "{{{list}}}"),
            Self::Slot { list, slot } => write!(f, "{{{list}:{slot}}}"),
            Self::Rule(name) => write!(f, "<{name}>"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::{TemplateProblem, parse};

    fn check(template: &str, expected: &str) {
        let parsed = parse(template).map(|t| t.root.to_string());
        assert_eq!(parsed.as_deref(), Ok(expected), "parsing {template:?}");
    }

    fn check_error(template: &str, position: usize, problem: TemplateProblem) {
        let error = parse(template).unwrap_err();
        assert_eq!(
            (error.position, error.problem),
            (position, problem),
            "parsing {template:?}"
        );
    }

    #[test]
    fn templates_parse() {
        check("Turn on [the] {name}!", "turn on (the|) {name}");
        check(
            "(turn|switch) off <area> {domain}",
            "(turn|switch) off <area> {domain}",
        );
        check(
            "[a|an|the] { timer_name : name } timer",
            "(a|an|the|) {timer_name:name} timer",
        );
        check(
            "{hours} hour[s] [[and] {minutes} minute(s|)]",
            "{hours} (hours|hour) ((and|) {minutes} (minutes|minute)|)",
        );
        check(
            "What's the state of [the] {name}?",
            "what is the state of (the|) {name}",
        );
        check("((a|b) c|)", "((a|b) c|)");
        check("set it to {brightness}%", "set it to {brightness} percent");
        check("(a||b)", "(a||b)");
        check("", "");
    }

    #[test]
    fn errors_say_where() {
        use TemplateProblem::*;
        check_error("turn on (the light", 8, Unclosed('('));
        check_error("turn on [the (light]", 19, UnexpectedClose(']'));
        check_error("turn on the] light", 11, UnexpectedClose(']'));
        check_error("set {name to 5", 4, Unclosed('{'));
        check_error("set <rule", 4, Unclosed('<'));
        check_error("a {} b", 2, EmptyName);
        check_error("a {list:} b", 2, EmptyName);
        check_error("light[s of]", 5, GluedGroup);
        check_error("light[{name}]", 5, GluedGroup);
        check_error(&"(".repeat(100_000), 16, TooDeep);
        let message = parse("x (y").unwrap_err().to_string();
        assert_eq!(
            message,
            "'(' is never closed at character 2 of sentence template \"x (y\""
        );
    }
}
