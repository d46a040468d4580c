//! One model, many requests: a worker thread owns the model's time and runs
//! the active sequences round-robin, one step each (a chunk of prompt or one
//! new token), so a long prompt or a long answer never starves the others.
//! Requests beyond `parallel` wait in a bounded FIFO queue; beyond that they
//! are refused at once (busy).
//!
//! A prompt that starts like an earlier one (the system prompt every voice
//! request carries) continues from a copy of that prompt's keys and values:
//! the shared prefix is computed once. A sequence whose listener has gone
//! is dropped at its next step; one past its deadline ends with an error.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::grammar::{Grammar, Matcher, TokenSet};
use super::model::{Cache, Model, ModelError};
use super::sampler::{Sampler, SamplingParams};
use super::tokenizer::Tokenizer;

/// How the scheduler shares the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// Sequences generating at once.
    pub parallel: usize,
    /// Requests that may wait for a place; more are refused.
    pub queue: usize,
    /// Prompt tokens run in one step.
    pub prefill_chunk: usize,
    /// Prompts kept for prefix reuse.
    pub prefix_cache: usize,
}

/// What a request asks of the model.
#[derive(Debug, Clone)]
pub struct Job {
    /// The prompt's tokens (at least one).
    pub prompt: Vec<u32>,
    /// New tokens at most.
    pub max_tokens: usize,
    /// How tokens are chosen.
    pub sampling: SamplingParams,
    /// Texts that end the answer (not included in it).
    pub stop: Vec<String>,
    /// The grammar the answer must follow, if any.
    pub grammar: Option<Arc<Grammar>>,
    /// When to give up.
    pub deadline: Instant,
}

/// Why a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// The model finished, or a stop text came.
    Stop,
    /// `max_tokens` or the context was reached.
    Length,
}

impl FinishReason {
    /// OpenAI's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
        }
    }
}

/// Counts for a finished request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Of those, tokens reused from an earlier prompt.
    pub cached_tokens: usize,
    /// Tokens generated.
    pub completion_tokens: usize,
}

/// What a request hears back, in order: text pieces, then one end.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// More of the answer.
    Text(String),
    /// The answer is complete.
    Done {
        /// Why it ended.
        reason: FinishReason,
        /// Token counts.
        usage: Usage,
    },
    /// It failed; nothing more comes.
    Failed(EngineError),
}

/// Why a request could not be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// Every place and the whole queue are taken.
    #[error("the model is busy ({0} requests waiting); try again shortly")]
    Busy(usize),
    /// The prompt does not leave room for an answer.
    #[error(
        "the prompt has {prompt} tokens; with the answer it must fit in the model's context of {context} tokens"
    )]
    ContextLength {
        /// Prompt tokens.
        prompt: usize,
        /// The context.
        context: usize,
    },
    /// The deadline passed.
    #[error("the request took longer than its deadline")]
    Timeout,
    /// The engine is shutting down.
    #[error("the model is shutting down")]
    Stopped,
    /// Inference failed.
    #[error("inference failed: {0}")]
    Internal(String),
}

struct Submitted {
    job: Job,
    events: UnboundedSender<Event>,
    submitted: Instant,
}

/// The handle requests are submitted through; the worker stops when the
/// last handle is dropped.
#[derive(Debug, Clone)]
pub struct Scheduler {
    jobs: SyncSender<Submitted>,
    waiting: Arc<AtomicUsize>,
    context: usize,
}

impl std::fmt::Debug for Submitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submitted")
            .field("prompt_tokens", &self.job.prompt.len())
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// Starts the worker thread for `model`.
    pub fn start(model: Arc<Model>, tokenizer: Arc<Tokenizer>, config: SchedulerConfig) -> Self {
        let (jobs, rx) = std::sync::mpsc::sync_channel(config.queue);
        let waiting = Arc::new(AtomicUsize::new(0));
        let context = model.context();
        let worker = Worker {
            model,
            tokenizer,
            config,
            rx,
            waiting: waiting.clone(),
            active: VecDeque::new(),
            prefixes: Vec::new(),
            clock: 0,
            tokens: None,
        };
        let spawned = std::thread::Builder::new()
            .name("llm-scheduler".into())
            .spawn(move || worker.run());
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the scheduler thread");
        }
        Self {
            jobs,
            waiting,
            context,
        }
    }

    /// The context length sequences get.
    pub fn context(&self) -> usize {
        self.context
    }

    /// Queues `job`; its events arrive on the returned receiver. Dropping
    /// the receiver cancels the request.
    pub fn submit(&self, job: Job) -> Result<UnboundedReceiver<Event>, EngineError> {
        if job.prompt.is_empty() || job.prompt.len() >= self.context {
            return Err(EngineError::ContextLength {
                prompt: job.prompt.len(),
                context: self.context,
            });
        }
        let (events, rx) = unbounded_channel();
        let submitted = Submitted {
            job,
            events,
            submitted: Instant::now(),
        };
        self.waiting.fetch_add(1, Ordering::SeqCst);
        match self.jobs.try_send(submitted) {
            Ok(()) => {
                metrics::gauge!("llm_queue_depth").increment(1.0);
                Ok(rx)
            }
            Err(e) => {
                let waiting = self.waiting.fetch_sub(1, Ordering::SeqCst) - 1;
                match e {
                    TrySendError::Full(_) => {
                        metrics::counter!("llm_requests_refused_total").increment(1);
                        Err(EngineError::Busy(waiting))
                    }
                    TrySendError::Disconnected(_) => Err(EngineError::Stopped),
                }
            }
        }
    }
}

/// A prompt kept for prefix reuse.
struct Prefix {
    tokens: Vec<u32>,
    cache: Cache,
    used: u64,
}

struct Sequence {
    job: Job,
    events: UnboundedSender<Event>,
    submitted: Instant,
    cache: Cache,
    /// Prompt tokens already run.
    prompt_done: usize,
    cached_tokens: usize,
    generated: Vec<u32>,
    sampler: Sampler,
    matcher: Option<Matcher>,
    text: TextOut,
    first_token: bool,
}

enum Step {
    Continue,
    Finished,
}

struct Worker {
    model: Arc<Model>,
    tokenizer: Arc<Tokenizer>,
    config: SchedulerConfig,
    rx: Receiver<Submitted>,
    waiting: Arc<AtomicUsize>,
    active: VecDeque<Sequence>,
    prefixes: Vec<Prefix>,
    clock: u64,
    /// The vocabulary as grammars see it, made on first use.
    tokens: Option<Arc<TokenSet>>,
}

impl Worker {
    fn run(mut self) {
        loop {
            if self.active.is_empty() {
                match self.rx.recv() {
                    Ok(s) => self.admit(s),
                    Err(_) => return,
                }
                continue;
            }
            while self.active.len() < self.config.parallel {
                match self.rx.try_recv() {
                    Ok(s) => self.admit(s),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            metrics::gauge!("llm_active_sequences").set(self.active.len() as f64);
            if let Some(mut seq) = self.active.pop_front() {
                match self.step(&mut seq) {
                    Step::Continue => self.active.push_back(seq),
                    Step::Finished => {}
                }
            }
        }
    }

    /// Takes a waiting request: a cache, from the best prefix if any.
    fn admit(&mut self, s: Submitted) {
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        metrics::gauge!("llm_queue_depth").decrement(1.0);
        if s.events.is_closed() {
            return;
        }
        let prompt = &s.job.prompt;
        // Reuse at most all but the last prompt token: its logits are needed.
        let best = self
            .prefixes
            .iter_mut()
            .map(|p| {
                let common = p
                    .tokens
                    .iter()
                    .zip(prompt)
                    .take_while(|(a, b)| a == b)
                    .count()
                    .min(prompt.len() - 1);
                (common, p)
            })
            .filter(|(common, _)| *common > 0)
            .max_by_key(|(common, _)| *common);
        let (cache, cached) = match best {
            Some((common, p)) => {
                self.clock += 1;
                p.used = self.clock;
                (p.cache.fork(common), common)
            }
            None => (self.model.new_cache(), 0),
        };
        let cache = match cache {
            Ok(c) => c,
            Err(e) => {
                let _ = s
                    .events
                    .send(Event::Failed(EngineError::Internal(e.to_string())));
                return;
            }
        };
        metrics::counter!("llm_prompt_tokens_total").increment(prompt.len() as u64);
        metrics::counter!("llm_prompt_tokens_cached_total").increment(cached as u64);
        let sampler = Sampler::new(s.job.sampling.clone());
        let matcher = s.job.grammar.clone().map(Matcher::new);
        let text = TextOut::new(s.job.stop.clone());
        self.active.push_back(Sequence {
            cache,
            prompt_done: cached,
            cached_tokens: cached,
            generated: Vec::new(),
            sampler,
            matcher,
            text,
            first_token: true,
            job: s.job,
            events: s.events,
            submitted: s.submitted,
        });
    }

    fn token_set(&mut self) -> Arc<TokenSet> {
        let tokenizer = &self.tokenizer;
        self.tokens
            .get_or_insert_with(|| {
                let end = (0..tokenizer.vocab_size() as u32)
                    .filter(|&t| tokenizer.is_end_of_generation(t))
                    .collect();
                Arc::new(TokenSet::new(
                    tokenizer.vocab_size(),
                    |t| Some(tokenizer.token_bytes(t).into_owned()),
                    end,
                ))
            })
            .clone()
    }

    fn remember(&mut self, seq: &Sequence) {
        if self.config.prefix_cache == 0 {
            return;
        }
        let tokens = &seq.job.prompt;
        // An entry this prompt extends (or repeats) is replaced by it.
        self.prefixes
            .retain(|p| !(p.tokens.len() <= tokens.len() && tokens.starts_with(&p.tokens)));
        if self.prefixes.len() >= self.config.prefix_cache
            && let Some(oldest) = self
                .prefixes
                .iter()
                .enumerate()
                .min_by_key(|(_, p)| p.used)
                .map(|(i, _)| i)
        {
            self.prefixes.swap_remove(oldest);
        }
        if let Ok(cache) = seq.cache.fork(tokens.len()) {
            self.clock += 1;
            self.prefixes.push(Prefix {
                tokens: tokens.clone(),
                cache,
                used: self.clock,
            });
        }
    }

    fn step(&mut self, seq: &mut Sequence) -> Step {
        if seq.events.is_closed() {
            return cancelled();
        }
        if Instant::now() > seq.job.deadline {
            let _ = seq.events.send(Event::Failed(EngineError::Timeout));
            metrics::counter!("llm_requests_timed_out_total").increment(1);
            return Step::Finished;
        }
        let prompt_len = seq.job.prompt.len();
        let logits = if seq.prompt_done < prompt_len {
            let end = (seq.prompt_done + self.config.prefill_chunk.max(1)).min(prompt_len);
            let chunk = &seq.job.prompt[seq.prompt_done..end];
            let logits = self.model.forward(chunk, &mut seq.cache);
            seq.prompt_done = end;
            if end < prompt_len {
                return match logits {
                    Ok(_) => Step::Continue,
                    Err(e) => fail(seq, &e),
                };
            }
            if logits.is_ok() {
                self.remember(seq);
            }
            logits
        } else {
            let last = seq.generated.last().copied().unwrap_or_default();
            self.model.forward(&[last], &mut seq.cache)
        };
        let mut logits = match logits {
            Ok(l) => l,
            Err(e) => return fail(seq, &e),
        };
        // Only the penalty window of the conversation, not all of it.
        let window = seq.job.sampling.repeat_last_n;
        let from_prompt = window.saturating_sub(seq.generated.len());
        let recent: Vec<u32> = seq.job.prompt[prompt_len.saturating_sub(from_prompt)..]
            .iter()
            .chain(&seq.generated[seq.generated.len().saturating_sub(window)..])
            .copied()
            .collect();
        let token = match seq.matcher.as_mut() {
            None => seq.sampler.sample(&mut logits, &recent, &seq.generated),
            Some(matcher) => {
                let tokens = self.token_set();
                let history = History {
                    recent: &recent,
                    generated: &seq.generated,
                };
                match constrained(
                    &mut seq.sampler,
                    matcher,
                    &tokens,
                    &self.tokenizer,
                    &mut logits,
                    &history,
                ) {
                    Some(t) => t,
                    None => return fail_grammar(seq),
                }
            }
        };
        if seq.first_token {
            seq.first_token = false;
            metrics::histogram!("llm_time_to_first_token_seconds")
                .record(seq.submitted.elapsed().as_secs_f64());
        }
        metrics::counter!("llm_completion_tokens_total").increment(1);
        if self.tokenizer.is_end_of_generation(token) {
            return finish(seq, FinishReason::Stop);
        }
        seq.generated.push(token);
        let bytes = self.tokenizer.token_bytes(token);
        let complete = seq.matcher.as_mut().is_some_and(|m| {
            m.advance(&bytes);
            m.must_end()
        });
        let (text, stopped) = seq.text.push(&bytes);
        if !text.is_empty() && seq.events.send(Event::Text(text)).is_err() {
            return cancelled();
        }
        if stopped || complete {
            return finish(seq, FinishReason::Stop);
        }
        if seq.generated.len() >= seq.job.max_tokens || seq.cache.len() + 1 >= self.model.context()
        {
            return finish(seq, FinishReason::Length);
        }
        Step::Continue
    }
}

/// What the penalties look at.
struct History<'a> {
    recent: &'a [u32],
    generated: &'a [u32],
}

/// The next token under a grammar: the sampler's choice when the grammar
/// allows it, else a choice among the tokens it allows (`None` if none).
fn constrained(
    sampler: &mut Sampler,
    matcher: &mut Matcher,
    tokens: &TokenSet,
    tokenizer: &Tokenizer,
    logits: &mut [f32],
    history: &History<'_>,
) -> Option<u32> {
    let mut trial = logits.to_vec();
    let token = sampler.sample(&mut trial, history.recent, history.generated);
    if matcher.allows(tokens, token, &tokenizer.token_bytes(token)) {
        return Some(token);
    }
    metrics::counter!("llm_grammar_masks_total").increment(1);
    let mask = matcher.allowed(tokens);
    if !mask.iter().any(|&ok| ok) {
        return None;
    }
    for (l, ok) in logits.iter_mut().zip(&mask) {
        if !ok {
            *l = f32::NEG_INFINITY;
        }
    }
    let token = sampler.sample(logits, history.recent, history.generated);
    // Penalties can push every allowed logit to -inf; stay in the grammar.
    Some(if mask.get(token as usize) == Some(&true) {
        token
    } else {
        mask.iter().position(|&ok| ok).unwrap_or_default() as u32
    })
}

fn fail_grammar(seq: &Sequence) -> Step {
    let _ = seq.events.send(Event::Failed(EngineError::Internal(
        "no token continues the required format".into(),
    )));
    Step::Finished
}

/// The listener has gone: the sequence is dropped and its place freed.
fn cancelled() -> Step {
    metrics::counter!("llm_requests_cancelled_total").increment(1);
    Step::Finished
}

fn fail(seq: &Sequence, e: &ModelError) -> Step {
    tracing::error!(error = %e, "inference failed");
    let _ = seq
        .events
        .send(Event::Failed(EngineError::Internal(e.to_string())));
    Step::Finished
}

fn finish(seq: &mut Sequence, reason: FinishReason) -> Step {
    let rest = seq.text.finish();
    if !rest.is_empty() {
        let _ = seq.events.send(Event::Text(rest));
    }
    let _ = seq.events.send(Event::Done {
        reason,
        usage: Usage {
            prompt_tokens: seq.job.prompt.len(),
            cached_tokens: seq.cached_tokens,
            completion_tokens: seq.generated.len(),
        },
    });
    metrics::histogram!("llm_request_seconds").record(seq.submitted.elapsed().as_secs_f64());
    Step::Finished
}

/// Token bytes to text: whole UTF-8 characters only, and nothing that may
/// be the start of a stop text until it is known not to be.
#[derive(Debug, Default)]
pub struct TextOut {
    bytes: Vec<u8>,
    held: String,
    stops: Vec<String>,
    stopped: bool,
}

impl TextOut {
    /// For stop texts `stops` (empty ones are ignored).
    pub fn new(stops: Vec<String>) -> Self {
        Self {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            ..Default::default()
        }
    }

    /// Adds a token's bytes; returns the text that can go out now and
    /// whether a stop text was reached (the text before it is returned, the
    /// stop text and anything after it are not).
    pub fn push(&mut self, bytes: &[u8]) -> (String, bool) {
        if self.stopped {
            return (String::new(), true);
        }
        self.bytes.extend_from_slice(bytes);
        let valid = match std::str::from_utf8(&self.bytes) {
            Ok(s) => s.len(),
            Err(e) if e.error_len().is_some() => {
                // Not UTF-8 and never will be: replace what is broken.
                let text = String::from_utf8_lossy(&self.bytes).into_owned();
                self.bytes.clear();
                self.held.push_str(&text);
                return self.release();
            }
            Err(e) => e.valid_up_to(),
        };
        let rest = self.bytes.split_off(valid);
        let whole = std::mem::replace(&mut self.bytes, rest);
        self.held.push_str(&String::from_utf8_lossy(&whole));
        self.release()
    }

    fn release(&mut self) -> (String, bool) {
        if let Some(at) = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min()
        {
            self.held.truncate(at);
            self.stopped = true;
            return (std::mem::take(&mut self.held), true);
        }
        // Hold back the longest tail that could begin a stop text.
        let keep = self
            .stops
            .iter()
            .flat_map(|s| {
                (1..s.len())
                    .filter(|&n| s.is_char_boundary(n) && self.held.ends_with(&s[..n]))
                    .max()
            })
            .max()
            .unwrap_or(0);
        let cut = self.held.len() - keep;
        let tail = self.held.split_off(cut);
        (std::mem::replace(&mut self.held, tail), false)
    }

    /// What is left at the end.
    pub fn finish(&mut self) -> String {
        if self.stopped {
            return String::new();
        }
        let mut out = std::mem::take(&mut self.held);
        out.push_str(&String::from_utf8_lossy(&std::mem::take(&mut self.bytes)));
        out
    }
}

/// How long a request may take, from a deadline in seconds.
pub fn deadline_in(seconds: u64) -> Instant {
    Instant::now() + Duration::from_secs(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&[u8]]) -> (String, bool) {
        let mut out = TextOut::new(stops.iter().map(|s| (*s).to_owned()).collect());
        let mut text = String::new();
        let mut stopped = false;
        for p in pieces {
            let (t, s) = out.push(p);
            text.push_str(&t);
            if s {
                stopped = true;
                break;
            }
        }
        if !stopped {
            text.push_str(&out.finish());
        }
        (text, stopped)
    }

    #[test]
    fn characters_split_over_tokens_come_out_whole() {
        let euro = "€".as_bytes();
        let mut out = TextOut::new(vec![]);
        assert_eq!(out.push(&euro[..1]).0, "");
        assert_eq!(out.push(&euro[1..]).0, "€");
    }

    #[test]
    fn stop_texts_end_the_answer_across_tokens() {
        assert_eq!(
            run(&["\nUser:"], &[b"Hello", b" there\n", b"Us", b"er: hi"]),
            ("Hello there".into(), true)
        );
        // A partial match that turns out not to be one is released.
        assert_eq!(
            run(&["\nUser:"], &[b"a\n", b"Us", b"ually"]),
            ("a\nUsually".into(), false)
        );
        assert_eq!(
            run(&[], &[b"x", &[0xff], b"y"]),
            ("x\u{fffd}y".into(), false)
        );
    }
}
