//! Constrained decoding: a context-free grammar over bytes that an answer
//! must follow, and a matcher that says which tokens may come next.
//!
//! A grammar is a list of rules; a rule is a list of alternatives; an
//! alternative is a sequence of byte sets and rule references. The matcher
//! keeps every way the bytes so far can be read (a set of stacks, as
//! llama.cpp's grammar sampler does); a byte is accepted when some stack's
//! next element admits it. Stacks and sets of stacks are interned, which
//! makes the matcher a deterministic automaton built as it is used: each
//! transition is worked out once per answer.
//!
//! The sampler asks twice at most per token: the token it chose is checked
//! first (cheap, and right almost always); only when that token breaks the
//! grammar are all tokens checked ([`Matcher::allowed`]) and the choice made
//! again among the allowed ones. Drawing again from the renormalised
//! distribution after a rejection gives exactly the constrained
//! distribution, so nothing is lost by the shortcut.

use std::collections::HashMap;
use std::sync::Arc;

/// A set of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ByteSet([u64; 4]);

impl ByteSet {
    /// One byte.
    pub fn byte(b: u8) -> Self {
        let mut s = Self::default();
        s.insert(b);
        s
    }

    /// An inclusive range.
    pub fn range(lo: u8, hi: u8) -> Self {
        let mut s = Self::default();
        for b in lo..=hi {
            s.insert(b);
        }
        s
    }

    /// These bytes.
    pub fn of(bytes: &[u8]) -> Self {
        let mut s = Self::default();
        bytes.iter().for_each(|&b| s.insert(b));
        s
    }

    /// Every byte.
    pub fn all() -> Self {
        Self([u64::MAX; 4])
    }

    /// Every byte but these.
    pub fn except(bytes: &[u8]) -> Self {
        Self::all().without(bytes)
    }

    /// These bytes taken out.
    pub fn without(mut self, bytes: &[u8]) -> Self {
        for &b in bytes {
            self.0[usize::from(b >> 6)] &= !(1 << (b & 63));
        }
        self
    }

    /// Both.
    pub fn union(mut self, other: Self) -> Self {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a |= b;
        }
        self
    }

    fn insert(&mut self, b: u8) {
        self.0[usize::from(b >> 6)] |= 1 << (b & 63);
    }

    /// Whether `b` is in it.
    pub fn contains(&self, b: u8) -> bool {
        self.0[usize::from(b >> 6)] & (1 << (b & 63)) != 0
    }
}

/// One element of an alternative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elem {
    /// One byte from the set.
    Bytes(ByteSet),
    /// Whatever the rule matches.
    Rule(RuleId),
}

/// A rule's index in its grammar.
pub type RuleId = u32;

/// A sequence of elements.
pub type Seq = Vec<Elem>;

/// The bytes of `text`, one element each.
pub fn literal(text: &str) -> Seq {
    text.bytes()
        .map(|b| Elem::Bytes(ByteSet::byte(b)))
        .collect()
}

/// Builds a grammar rule by rule; rules may refer to rules defined later
/// (reserve them first), so recursion is possible. Rules must not be left
/// recursive.
#[derive(Debug, Default)]
pub struct Builder {
    rules: Vec<Vec<Seq>>,
}

impl Builder {
    /// A rule to define later.
    pub fn reserve(&mut self) -> RuleId {
        self.rules.push(Vec::new());
        (self.rules.len() - 1) as RuleId
    }

    /// Gives a reserved rule its alternatives.
    pub fn define(&mut self, id: RuleId, alternatives: Vec<Seq>) {
        self.rules[id as usize] = alternatives;
    }

    /// A new rule.
    pub fn rule(&mut self, alternatives: Vec<Seq>) -> RuleId {
        let id = self.reserve();
        self.define(id, alternatives);
        id
    }

    /// `item` repeated `min` to `max` times (no limit when `None`), as a
    /// sequence.
    pub fn repeat(&mut self, item: &[Elem], min: usize, max: Option<usize>) -> Seq {
        let mut seq: Seq = Vec::with_capacity(item.len() * min + 1);
        for _ in 0..min {
            seq.extend_from_slice(item);
        }
        match max {
            None => {
                // tail := item tail | ε
                let tail = self.reserve();
                let mut again = item.to_vec();
                again.push(Elem::Rule(tail));
                self.define(tail, vec![again, Vec::new()]);
                seq.push(Elem::Rule(tail));
            }
            Some(max) if max > min => {
                // opt_k := item opt_(k-1) | ε, opt_0 := ε
                let mut next: Option<RuleId> = None;
                for _ in min..max {
                    let mut again = item.to_vec();
                    again.extend(next.map(Elem::Rule));
                    next = Some(self.rule(vec![again, Vec::new()]));
                }
                seq.extend(next.map(Elem::Rule));
            }
            Some(_) => {}
        }
        seq
    }

    /// The grammar whose answers are the matches of `root`.
    pub fn build(self, root: RuleId) -> Grammar {
        Grammar {
            rules: self.rules,
            root,
        }
    }
}

/// A compiled grammar.
#[derive(Debug, Clone)]
pub struct Grammar {
    rules: Vec<Vec<Seq>>,
    root: RuleId,
}

/// Where a stack is: the next element of one alternative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Pos {
    rule: RuleId,
    alt: u32,
    idx: u32,
}

impl Pos {
    fn next(self) -> Self {
        Self {
            idx: self.idx + 1,
            ..self
        }
    }
}

impl Grammar {
    fn seq(&self, pos: Pos) -> &[Elem] {
        &self.rules[pos.rule as usize][pos.alt as usize]
    }
}

/// An interned stack frame: a position and the frame below it.
type FrameId = u32;

/// What is left to match; `None` when the answer may end here.
type Stack = Option<FrameId>;

/// An interned set of stacks: where the answer is.
type StateId = u32;

/// A transition not yet worked out.
const UNKNOWN: u32 = u32::MAX;
/// No stack admits the byte.
const DEAD: u32 = u32::MAX - 1;

/// Deeper than any grammar we build; a guard against a left-recursive one.
const MAX_EXPANSION_DEPTH: usize = 512;

/// States whose transitions are remembered; past this they are worked out
/// each time (a guard for grammars with unbounded nesting).
const MAX_REMEMBERED: usize = 50_000;

#[derive(Debug, Clone)]
struct State {
    stacks: Box<[Stack]>,
    /// Transitions by byte, made on first use.
    next: Option<Box<[u32; 256]>>,
}

/// The grammar as a deterministic automaton, built lazily: frames and
/// sets of stacks are interned, so equal states are one state, and each
/// transition is worked out once. Inside a string every character leads
/// back to the same state, so walking the vocabulary there costs a table
/// look-up per byte.
#[derive(Debug, Clone, Default)]
struct Dfa {
    frames: Vec<(Pos, Stack)>,
    frame_ids: HashMap<(Pos, Stack), FrameId>,
    states: Vec<State>,
    state_ids: HashMap<Box<[Stack]>, StateId>,
}

impl Dfa {
    fn frame(&mut self, pos: Pos, below: Stack) -> FrameId {
        if let Some(&id) = self.frame_ids.get(&(pos, below)) {
            return id;
        }
        let id = self.frames.len() as FrameId;
        self.frames.push((pos, below));
        self.frame_ids.insert((pos, below), id);
        id
    }

    fn state(&mut self, mut stacks: Vec<Stack>) -> u32 {
        if stacks.is_empty() {
            return DEAD;
        }
        stacks.sort_unstable();
        stacks.dedup();
        let stacks = stacks.into_boxed_slice();
        if let Some(&id) = self.state_ids.get(&stacks) {
            return id;
        }
        let id = self.states.len() as StateId;
        self.state_ids.insert(stacks.clone(), id);
        self.states.push(State { stacks, next: None });
        id
    }

    /// Adds to `out` every stack `stack` can be read as whose top is a
    /// byte set (or that is empty).
    fn expand(&mut self, g: &Grammar, stack: Stack, out: &mut Vec<Stack>, depth: usize) {
        if depth > MAX_EXPANSION_DEPTH {
            return;
        }
        let Some(frame) = stack else {
            out.push(None);
            return;
        };
        let (pos, below) = self.frames[frame as usize];
        let seq = g.seq(pos);
        match seq.get(pos.idx as usize) {
            None => self.expand(g, below, out, depth + 1),
            Some(Elem::Bytes(_)) => out.push(stack),
            Some(&Elem::Rule(rule)) => {
                // What follows the rule; nothing when it ends the
                // alternative, so repetition does not grow the stack.
                let after = if pos.idx as usize + 1 == seq.len() {
                    below
                } else {
                    Some(self.frame(pos.next(), below))
                };
                for alt in 0..g.rules[rule as usize].len() {
                    let pos = Pos {
                        rule,
                        alt: alt as u32,
                        idx: 0,
                    };
                    let start = self.frame(pos, after);
                    self.expand(g, Some(start), out, depth + 1);
                }
            }
        }
    }

    fn start(&mut self, g: &Grammar) -> u32 {
        let mut out = Vec::new();
        for alt in 0..g.rules[g.root as usize].len() {
            let pos = Pos {
                rule: g.root,
                alt: alt as u32,
                idx: 0,
            };
            let start = self.frame(pos, None);
            self.expand(g, Some(start), &mut out, 0);
        }
        self.state(out)
    }

    /// The state after `byte`, or [`DEAD`].
    fn step(&mut self, g: &Grammar, state: StateId, byte: u8) -> u32 {
        let s = state as usize;
        if let Some(next) = &self.states[s].next
            && next[usize::from(byte)] != UNKNOWN
        {
            return next[usize::from(byte)];
        }
        let mut out = Vec::new();
        for i in 0..self.states[s].stacks.len() {
            let Some(frame) = self.states[s].stacks[i] else {
                continue;
            };
            let (pos, below) = self.frames[frame as usize];
            if let Some(Elem::Bytes(set)) = g.seq(pos).get(pos.idx as usize)
                && set.contains(byte)
            {
                let advanced = self.frame(pos.next(), below);
                self.expand(g, Some(advanced), &mut out, 0);
            }
        }
        let next = self.state(out);
        if s < MAX_REMEMBERED {
            self.states[s]
                .next
                .get_or_insert_with(|| Box::new([UNKNOWN; 256]))[usize::from(byte)] = next;
        }
        next
    }

    fn walk(&mut self, g: &Grammar, mut state: StateId, bytes: &[u8]) -> u32 {
        for &b in bytes {
            state = self.step(g, state, b);
            if state == DEAD {
                break;
            }
        }
        state
    }
}

/// The tokens a grammar is checked against, sorted by their bytes so that
/// tokens sharing a prefix are walked once for it.
#[derive(Debug)]
pub struct TokenSet {
    /// (bytes, token id), sorted.
    tokens: Vec<(Box<[u8]>, u32)>,
    /// Bytes each token shares with the one before it.
    shared: Vec<usize>,
    /// Tokens that end the answer.
    end: Vec<u32>,
    vocab: usize,
}

impl TokenSet {
    /// From every token's bytes (`None` for tokens that are never text:
    /// control tokens) and the end-of-generation tokens.
    pub fn new(vocab: usize, bytes: impl Fn(u32) -> Option<Vec<u8>>, end: Vec<u32>) -> Self {
        let mut tokens: Vec<(Box<[u8]>, u32)> = (0..vocab as u32)
            .filter_map(|id| bytes(id).filter(|b| !b.is_empty()).map(|b| (b.into(), id)))
            .collect();
        tokens.sort_unstable();
        let shared = std::iter::once(0)
            .chain(tokens.windows(2).map(|w| {
                w[0].0
                    .iter()
                    .zip(w[1].0.iter())
                    .take_while(|(a, b)| a == b)
                    .count()
            }))
            .collect();
        Self {
            tokens,
            shared,
            end,
            vocab,
        }
    }
}

/// Where an answer is in its grammar.
#[derive(Debug, Clone)]
pub struct Matcher {
    grammar: Arc<Grammar>,
    dfa: Dfa,
    state: StateId,
}

impl Matcher {
    /// At the start of an answer.
    pub fn new(grammar: Arc<Grammar>) -> Self {
        let mut dfa = Dfa::default();
        let state = dfa.start(&grammar);
        Self {
            grammar,
            dfa,
            state,
        }
    }

    /// Whether `bytes` may come next.
    pub fn accepts(&mut self, bytes: &[u8]) -> bool {
        self.state != DEAD
            && !bytes.is_empty()
            && self.dfa.walk(&self.grammar, self.state, bytes) != DEAD
    }

    /// Takes `bytes`; false (and no change) when they break the grammar.
    pub fn advance(&mut self, bytes: &[u8]) -> bool {
        if self.state == DEAD || bytes.is_empty() {
            return false;
        }
        let next = self.dfa.walk(&self.grammar, self.state, bytes);
        if next == DEAD {
            return false;
        }
        self.state = next;
        true
    }

    fn stacks(&self) -> &[Stack] {
        self.dfa
            .states
            .get(self.state as usize)
            .map(|s| &*s.stacks)
            .unwrap_or_default()
    }

    /// Whether the answer may end here.
    pub fn can_end(&self) -> bool {
        self.stacks().iter().any(Option::is_none)
    }

    /// Whether the answer is complete and nothing may follow.
    pub fn must_end(&self) -> bool {
        self.stacks().iter().all(Option::is_none)
    }

    /// Whether `token` may come next (an end token when the answer may end).
    pub fn allows(&mut self, tokens: &TokenSet, token: u32, bytes: &[u8]) -> bool {
        if tokens.end.contains(&token) {
            self.can_end()
        } else {
            self.accepts(bytes)
        }
    }

    /// Which tokens may come next, as a mask over the vocabulary.
    pub fn allowed(&mut self, tokens: &TokenSet) -> Vec<bool> {
        let mut mask = vec![false; tokens.vocab];
        if self.can_end() {
            for &t in &tokens.end {
                if let Some(m) = mask.get_mut(t as usize) {
                    *m = true;
                }
            }
        }
        if self.state == DEAD {
            return mask;
        }
        // states[d]: the state after the first d bytes of the current
        // token; shorter than the token when it died on the way.
        let mut states: Vec<StateId> = vec![self.state];
        for ((bytes, id), &shared) in tokens.tokens.iter().zip(&tokens.shared) {
            if states.len() <= shared {
                // The previous token died within the prefix this one shares.
                continue;
            }
            states.truncate(shared + 1);
            while states.len() <= bytes.len() {
                let last = states[states.len() - 1];
                let next = self.dfa.step(&self.grammar, last, bytes[states.len() - 1]);
                if next == DEAD {
                    break;
                }
                states.push(next);
            }
            if states.len() == bytes.len() + 1 {
                mask[*id as usize] = true;
            }
        }
        mask
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// `"a" ("b" | "cd")* "!"`
    fn grammar() -> Arc<Grammar> {
        let mut g = Builder::default();
        let choice = g.rule(vec![literal("b"), literal("cd")]);
        let mut seq = literal("a");
        seq.extend(g.repeat(&[Elem::Rule(choice)], 0, None));
        seq.extend(literal("!"));
        let root = g.rule(vec![seq]);
        Arc::new(g.build(root))
    }

    #[test]
    fn bytes_follow_the_grammar() {
        let mut m = Matcher::new(grammar());
        assert!(!m.can_end());
        assert!(m.accepts(b"ab"));
        assert!(!m.accepts(b"b"));
        assert!(m.advance(b"abcd"));
        assert!(!m.advance(b"c!"));
        assert!(m.advance(b"c"));
        assert!(!m.accepts(b"!"));
        assert!(m.advance(b"d!"));
        assert!(m.can_end() && m.must_end());
        assert!(!m.accepts(b"b"));
    }

    #[test]
    fn bounded_repetition_stops_at_its_limit() {
        let mut g = Builder::default();
        let seq = g.repeat(&literal("x"), 1, Some(3));
        let root = g.rule(vec![seq]);
        let mut m = Matcher::new(Arc::new(g.build(root)));
        assert!(!m.can_end());
        assert!(m.advance(b"x"));
        assert!(m.can_end() && !m.must_end());
        assert!(m.advance(b"xx"));
        assert!(m.must_end());
        assert!(!m.accepts(b"x"));
    }

    #[test]
    fn the_mask_allows_exactly_the_tokens_that_fit() {
        let vocab: Vec<&[u8]> = vec![
            b"a", b"ab", b"abc", b"abcd", b"b", b"cd", b"c", b"d!", b"!", b"x", b"", b"bb!",
        ];
        let eos = vocab.len() as u32;
        let tokens = TokenSet::new(
            vocab.len() + 1,
            |id| vocab.get(id as usize).map(|b| b.to_vec()),
            vec![eos],
        );
        let mut m = Matcher::new(grammar());
        let allowed = |m: &mut Matcher| -> Vec<u32> {
            let mask = m.allowed(&tokens);
            (0..mask.len() as u32)
                .filter(|&i| mask[i as usize])
                .collect()
        };
        // "abc" ends inside "cd": allowed, the d may follow.
        assert_eq!(allowed(&mut m), vec![0, 1, 2, 3]);
        assert!(m.advance(b"a"));
        // b, cd, c, !, bb!; "d!" needs a c first.
        assert_eq!(allowed(&mut m), vec![4, 5, 6, 8, 11]);
        assert!(m.advance(b"!"));
        assert_eq!(allowed(&mut m), vec![eos]);
        for id in 0..vocab.len() as u32 {
            assert!(
                !m.allows(&tokens, id, vocab[id as usize]),
                "{id} after the end"
            );
        }
        assert!(m.allows(&tokens, eos, b""));
    }
}
