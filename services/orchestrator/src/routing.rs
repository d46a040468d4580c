//! Answers from the LLMs, for what no local intent understood: the routing
//! policy ([`RoutingPolicy`], YAML) says which model answers which
//! question, with which instructions, and whether passages from rag-api
//! come with it; [`Answers`] follows it.
//!
//! A question is answered so:
//!
//! 1. The first route whose conditions all hold picks the endpoint (`small`
//!    or `large`), else the `default` route. Conditions are kept simple:
//!    `any_words` (one of these words or phrases is in the question),
//!    `min_words`, `max_words`.
//! 2. The satellite's recent turns come from [`Memory`], so a follow-up
//!    reaches the model with what came before.
//! 3. A route with `rag: true` adds passages from rag-api, searched only in
//!    the collections mode-service's policy lets the current mode read
//!    ([`CollectionRules`]); without them (rag-api or mode-service down,
//!    nothing found) the model answers on its own.
//! 4. The answer is streamed: its pieces go to text to speech as they are
//!    written, so the first sentence is spoken before the answer is done.
//! 5. A route with `validate: true` (and a `validator` section) waits for
//!    the whole answer instead; when it sounds unsure (it has one of the
//!    validator's `hedges`, "I think", "maybe"...), the *other* model is
//!    asked whether it is right, yes or no. A "no" speaks `replies.unsure`
//!    instead; anything else (yes, an unclear reply, a validator that fails)
//!    speaks the answer.
//!
//! Each endpoint and rag-api has a [`Breaker`]: after `breaker.failures`
//! failures in a row a backend is not called for `breaker.cool_down_secs`.
//! A model that fails, is refused by its breaker, or says nothing within
//! its `first_token_secs` gives `replies.unavailable`, spoken at once; one
//! that fails midway ends with it. The answer path never fails.
//!
//! The policy file is read at start (a broken one is a configuration
//! error) and checked every few seconds ([`Answers::watch`]); a changed
//! file that is broken is refused with a warning, and the previous policy
//! stays. A file says only what differs from the built-in policy
//! ([`DEFAULT_YAML`]): its mappings are merged into the built-in ones,
//! its lists replace theirs.
//!
//! Metrics: `orchestrator_answers_total{route, outcome}` (`answered`,
//! `cut`: broke off midway, `abandoned`: nobody listened to the end,
//! `unsure`, `empty`, `refused`: breaker open, `failed`: error or no first
//! token in time), `orchestrator_llm_first_token_seconds{endpoint}`,
//! `orchestrator_backend_errors_total{backend, kind}`,
//! `orchestrator_answer_checks_total{verdict}`,
//! `orchestrator_rag_searches_total{outcome}`,
//! `orchestrator_routing_reloads_total{result}`, and the breakers'
//! `orchestrator_breaker_opened_total` and `_refusals_total{backend}`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use futures::stream::BoxStream;
use metrics::{counter, histogram};
use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::backends::breaker::{Breaker, BreakerSettings, Permit};
use crate::backends::llm::Role;
use crate::backends::rag::{Access, CollectionRules, Passage, RagClient};
use crate::backends::{
    AnswerStream, BackendError, ChatEndpoint, ChatMessage, ChatRequest, LLM_LARGE, LLM_SMALL,
    LlmClient, RAG_API,
};
use crate::memory::{Memory, MemorySettings, Turn};

/// The built-in policy: what a policy file is merged into.
pub const DEFAULT_YAML: &str = r#"# Which model answers a question no local intent understood, and how.
# A policy file says only what differs from this (mappings merge, lists
# replace); it is reloaded when it changes, and a broken edit is refused.
endpoints:
  # router-small-llm: fast, for short everyday questions.
  small:
    url: http://127.0.0.1:8400/v1        # any OpenAI-compatible server
    model: smollm2-135m-instruct
    api_key_env: null                    # an environment variable holding a key
    first_token_secs: 4                  # asking → first piece of text
    answer_secs: 15                      # asking → end of the answer
    max_tokens: 80
    temperature: 0.3
  # router-large-llm: slower, knows more; gets rag-api's passages.
  large:
    url: http://127.0.0.1:8401/v1
    model: qwen2.5-coder-0.5b-instruct
    api_key_env: null
    first_token_secs: 8
    answer_secs: 25
    max_tokens: 120
    temperature: 0.3
prompts:
  # Every answer's instructions. Answers are spoken, not read.
  system: >-
    You are Athena, the voice assistant of this home. Your answers are
    spoken aloud: reply in one to three short sentences of plain words,
    with no lists, no markdown, no emoji and no links. If you don't know,
    say so briefly.
  # Before the passages found for a question.
  knowledge: >-
    These passages from the home's documents may help. Use them when they
    answer the question, and don't mention them.
replies:
  # A model that is down, slow or refused by its breaker.
  unavailable: Sorry, I can't answer that right now.
  # The validator said the answer is wrong.
  unsure: Sorry, I'm not sure about that.
rag:
  url: null               # rag-api; null: the orchestrator's rag_api_url
  passages: 3             # at most this many, with a score of at least
  min_score: 0.25
  timeout_secs: 2         # each call to rag-api
breaker:
  failures: 3             # failures in a row that stop calls to a backend
  cool_down_secs: 30      # for this long; then one trial call
# The first route whose conditions all hold answers; else `default`.
routes:
  - name: knowledge
    when:
      any_words: [wifi, wi-fi, password, check out, checkout, check in,
                  house, home, manual, guide, recipe, explain, why, history]
    endpoint: large
    rag: true
  - name: short
    when: { max_words: 8 }
    endpoint: small
default:
  endpoint: large
  rag: true
# Checks unsure answers of routes with `validate: true` with the other
# model before they are spoken (their answers are then not streamed).
validator:
  hedges: [i think, i believe, maybe, might, probably, not sure, i guess,
           possibly, perhaps]
  prompt: >-
    You check the answers of a voice assistant. Reply with one word: yes
    if the answer is correct and sensible for the question, no if it is not.
"#;

/// Which model answers questions (the policy's routes, and where each
/// endpoint is).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingPolicy {
    /// The two models.
    pub endpoints: Endpoints,
    /// Instructions for the models.
    pub prompts: Prompts,
    /// What is said when no answer is.
    pub replies: Replies,
    /// Passages from rag-api.
    pub rag: RagPolicy,
    /// When a backend is left alone.
    pub breaker: BreakerPolicy,
    /// Tried in order.
    pub routes: Vec<Route>,
    /// When no route matches.
    pub default: Target,
    /// Checks unsure answers of routes with `validate: true`.
    pub validator: Option<Validator>,
}

/// The two models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoints {
    /// Fast, for short everyday questions.
    pub small: EndpointPolicy,
    /// Slower, knows more.
    pub large: EndpointPolicy,
}

/// One model: where, and how it is asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointPolicy {
    /// The OpenAI-compatible API's base URL: `http://127.0.0.1:8400/v1`.
    pub url: String,
    /// The model's id there.
    pub model: String,
    /// An environment variable that holds an API key, if the server
    /// wants one.
    pub api_key_env: Option<String>,
    /// From asking to the first piece of text.
    pub first_token_secs: f64,
    /// From asking to the end of the answer.
    pub answer_secs: f64,
    /// New tokens at most.
    pub max_tokens: u32,
    /// Sampling temperature.
    pub temperature: f32,
}

/// Which endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointName {
    /// `endpoints.small`.
    Small,
    /// `endpoints.large`.
    Large,
}

impl EndpointName {
    /// `small` or `large`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Small => "small",
            Self::Large => "large",
        }
    }

    /// The backend's name in errors: `router-small-llm`, `router-large-llm`.
    pub fn backend(self) -> &'static str {
        match self {
            Self::Small => LLM_SMALL,
            Self::Large => LLM_LARGE,
        }
    }

    /// The other one (the validator's).
    pub fn other(self) -> Self {
        match self {
            Self::Small => Self::Large,
            Self::Large => Self::Small,
        }
    }
}

impl std::fmt::Display for EndpointName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Instructions for the models.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prompts {
    /// Every answer's (the system message).
    pub system: String,
    /// Put before the passages found for a question.
    pub knowledge: String,
}

/// What is said when no answer is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replies {
    /// A model that is down, slow, or left alone by its breaker.
    pub unavailable: String,
    /// The validator said the answer is wrong.
    pub unsure: String,
}

/// Passages from rag-api.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RagPolicy {
    /// rag-api's address; none: the orchestrator's `rag_api_url`.
    pub url: Option<String>,
    /// At most this many passages.
    pub passages: usize,
    /// Passages less similar to the question than this are left out.
    pub min_score: f32,
    /// Each call to rag-api.
    pub timeout_secs: f64,
}

/// When a backend is left alone.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerPolicy {
    /// Failures in a row that stop calls.
    pub failures: u32,
    /// For this long; then one trial call.
    pub cool_down_secs: f64,
}

/// A route: when its conditions hold, its endpoint answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Its name, in metrics and logs.
    pub name: String,
    /// All must hold (none given: every question).
    #[serde(default)]
    pub when: Conditions,
    /// Who answers.
    pub endpoint: EndpointName,
    /// Whether passages from rag-api come with the question.
    #[serde(default)]
    pub rag: bool,
    /// Whether an unsure answer is checked (see [`Validator`]).
    #[serde(default)]
    pub validate: bool,
}

/// Who answers when no route matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Who answers.
    pub endpoint: EndpointName,
    /// Whether passages from rag-api come with the question.
    #[serde(default)]
    pub rag: bool,
    /// Whether an unsure answer is checked.
    #[serde(default)]
    pub validate: bool,
}

/// What a question must be like for a route.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Conditions {
    /// One of these words or phrases is in the question (case and
    /// punctuation aside).
    pub any_words: Vec<String>,
    /// It has at least this many words.
    pub min_words: Option<usize>,
    /// It has at most this many words.
    pub max_words: Option<usize>,
}

/// The check of unsure answers by the other model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validator {
    /// An answer with one of these words or phrases is unsure.
    pub hedges: Vec<String>,
    /// The checking model's instructions; it is then given the question
    /// and the answer, and should say yes or no.
    pub prompt: String,
}

/// The route a question takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// The route's name (`default` for the default).
    pub name: String,
    /// What it does.
    pub target: Target,
}

impl Route {
    fn target(&self) -> Target {
        Target {
            endpoint: self.endpoint,
            rag: self.rag,
            validate: self.validate,
        }
    }
}

impl RoutingPolicy {
    /// The built-in policy.
    pub fn built_in() -> Self {
        // A test checks that it parses; this fallback is never taken.
        Self::from_yaml("{}").unwrap_or_else(|e| last_resort(&e))
    }

    /// A policy from YAML, merged into the built-in one and checked.
    pub fn from_yaml(text: &str) -> Result<Self, String> {
        let mut base: Value = serde_yaml_ng::from_str(DEFAULT_YAML)
            .map_err(|e| format!("the built-in policy: {e}"))?;
        let over: Value = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
        match over {
            Value::Null => {}
            Value::Mapping(_) => merge(&mut base, over),
            _ => return Err("a routing policy is a mapping".into()),
        }
        let policy: Self = serde_yaml_ng::from_value(base).map_err(|e| e.to_string())?;
        policy.check()?;
        Ok(policy)
    }

    /// Checks what makes sense.
    fn check(&self) -> Result<(), String> {
        for (name, e) in [
            ("small", &self.endpoints.small),
            ("large", &self.endpoints.large),
        ] {
            let at = |what: &str| format!("endpoints.{name}.{what}");
            if !(e.url.starts_with("http://") || e.url.starts_with("https://")) {
                return Err(format!("{} must be an http(s) URL", at("url")));
            }
            if e.model.trim().is_empty() {
                return Err(format!("{} must name a model", at("model")));
            }
            for (what, secs) in [
                ("first_token_secs", e.first_token_secs),
                ("answer_secs", e.answer_secs),
            ] {
                if !(secs.is_finite() && secs > 0.0 && secs <= 600.0) {
                    return Err(format!("{} must be between 0 and 600", at(what)));
                }
            }
            if e.first_token_secs > e.answer_secs {
                return Err(format!(
                    "{} must not be above answer_secs",
                    at("first_token_secs")
                ));
            }
            if e.max_tokens == 0 || e.max_tokens > 8192 {
                return Err(format!("{} must be between 1 and 8192", at("max_tokens")));
            }
            if !(0.0..=2.0).contains(&e.temperature) {
                return Err(format!("{} must be between 0 and 2", at("temperature")));
            }
        }
        if let Some(url) = &self.rag.url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err("rag.url must be an http(s) URL".into());
        }
        if self.rag.passages == 0 || self.rag.passages > 20 {
            return Err("rag.passages must be between 1 and 20".into());
        }
        if !(self.rag.timeout_secs.is_finite()
            && self.rag.timeout_secs > 0.0
            && self.rag.timeout_secs <= 60.0)
        {
            return Err("rag.timeout_secs must be between 0 and 60".into());
        }
        if self.breaker.failures == 0 {
            return Err("breaker.failures must be at least 1".into());
        }
        let cool_down = self.breaker.cool_down_secs;
        if !(cool_down.is_finite() && cool_down > 0.0 && cool_down <= 3600.0) {
            return Err("breaker.cool_down_secs must be between 0 and 3600".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for route in &self.routes {
            let name = route.name.trim();
            if name.is_empty() || name == "default" || !names.insert(name) {
                return Err(format!(
                    "route names must be given, unique and not `default`: {:?}",
                    route.name
                ));
            }
            let when = &route.when;
            if when.any_words.iter().any(|w| words(w).is_empty()) {
                return Err(format!(
                    "routes.{name}.when.any_words: an entry has no words"
                ));
            }
            if let (Some(lo), Some(hi)) = (when.min_words, when.max_words)
                && lo > hi
            {
                return Err(format!("routes.{name}.when: min_words is above max_words"));
            }
        }
        let validates = self.routes.iter().any(|r| r.validate) || self.default.validate;
        match &self.validator {
            Some(v) if v.hedges.is_empty() || v.hedges.iter().any(|h| words(h).is_empty()) => {
                Err("validator.hedges must be words or phrases".into())
            }
            Some(v) if v.prompt.trim().is_empty() => Err("validator.prompt is empty".into()),
            None if validates => Err("a route validates but there is no validator".into()),
            _ => Ok(()),
        }
    }

    /// The route `question` takes.
    pub fn route(&self, question: &str) -> Routed {
        let words = words(question);
        for route in &self.routes {
            if route.when.hold(&words) {
                return Routed {
                    name: route.name.clone(),
                    target: route.target(),
                };
            }
        }
        Routed {
            name: "default".into(),
            target: self.default,
        }
    }

    /// The endpoint `name`.
    pub fn endpoint(&self, name: EndpointName) -> &EndpointPolicy {
        match name {
            EndpointName::Small => &self.endpoints.small,
            EndpointName::Large => &self.endpoints.large,
        }
    }

    fn breaker_settings(&self) -> BreakerSettings {
        BreakerSettings {
            failures: self.breaker.failures,
            cool_down: Duration::from_secs_f64(self.breaker.cool_down_secs),
        }
    }
}

/// Never used: the built-in policy parses (a test holds it to that).
fn last_resort(error: &str) -> RoutingPolicy {
    warn!(%error, "the built-in routing policy does not parse");
    let endpoint = |url: &str| EndpointPolicy {
        url: url.into(),
        model: "default".into(),
        api_key_env: None,
        first_token_secs: 5.0,
        answer_secs: 20.0,
        max_tokens: 80,
        temperature: 0.3,
    };
    RoutingPolicy {
        endpoints: Endpoints {
            small: endpoint("http://127.0.0.1:8400/v1"),
            large: endpoint("http://127.0.0.1:8401/v1"),
        },
        prompts: Prompts {
            system: "Answer in one short spoken sentence.".into(),
            knowledge: String::new(),
        },
        replies: Replies {
            unavailable: "Sorry, I can't answer that right now.".into(),
            unsure: "Sorry, I'm not sure about that.".into(),
        },
        rag: RagPolicy {
            url: None,
            passages: 3,
            min_score: 0.25,
            timeout_secs: 2.0,
        },
        breaker: BreakerPolicy {
            failures: 3,
            cool_down_secs: 30.0,
        },
        routes: Vec::new(),
        default: Target {
            endpoint: EndpointName::Small,
            rag: false,
            validate: false,
        },
        validator: None,
    }
}

impl Conditions {
    fn hold(&self, words: &[String]) -> bool {
        self.min_words.is_none_or(|n| words.len() >= n)
            && self.max_words.is_none_or(|n| words.len() <= n)
            && (self.any_words.is_empty() || self.any_words.iter().any(|p| has_phrase(words, p)))
    }
}

/// `text`'s words, lowercase, without punctuation (`what's` stays whole).
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’'))
        .map(|w| w.trim_matches(|c| c == '\'' || c == '’').to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Whether `phrase`'s words come one after another in `words`.
fn has_phrase(words: &[String], phrase: &str) -> bool {
    let phrase = self::words(phrase);
    !phrase.is_empty() && words.windows(phrase.len()).any(|w| w == phrase.as_slice())
}

/// `over` merged into `base`: mappings key by key, anything else replaced.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Mapping(base), Value::Mapping(over)) => {
            for (key, value) in over {
                match base.get_mut(&key) {
                    Some(slot) if value.is_mapping() && slot.is_mapping() => merge(slot, value),
                    _ => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

// ---- answering ---------------------------------------------------------------

/// What the answer path is built from.
#[derive(Debug, Clone)]
pub struct AnswerSettings {
    /// The routing policy file; none: the built-in policy.
    pub policy_file: Option<PathBuf>,
    /// rag-api's address, unless the policy names another.
    pub rag_api_url: String,
    /// mode-service's address (which collections the mode allows).
    pub mode_service_url: String,
    /// Each call to mode-service.
    pub mode_deadline: Duration,
    /// Conversation memory.
    pub memory: MemorySettings,
}

/// What is said in answer, and how it came about.
#[derive(Debug)]
pub struct Answer {
    /// The route taken.
    pub route: String,
    /// The endpoint asked.
    pub endpoint: EndpointName,
    /// The prompt as sent: system, earlier turns, the question.
    pub messages: Vec<ChatMessage>,
    /// Passages from rag-api in the prompt.
    pub passages: Vec<Passage>,
    /// How it went, as far as known when the answer starts.
    pub outcome: AnswerOutcome,
    /// For a validated answer, the check.
    pub verdict: Option<Verdict>,
    /// What to say.
    pub speech: Speech,
}

/// What to say: a whole text, or an answer as it is written.
pub enum Speech {
    /// Known in full.
    Whole(String),
    /// Pieces of text as the model writes them; the stream ends with the
    /// answer (the turn is remembered by then).
    Streamed {
        /// The pieces.
        pieces: BoxStream<'static, String>,
        /// When the model must be done.
        ends_by: Instant,
    },
}

impl std::fmt::Debug for Speech {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Whole(text) => f.debug_tuple("Whole").field(text).finish(),
            Self::Streamed { ends_by, .. } => f
                .debug_struct("Streamed")
                .field("ends_by", ends_by)
                .finish_non_exhaustive(),
        }
    }
}

impl Speech {
    /// The whole text (waiting for a streamed answer's end).
    pub async fn text(self) -> String {
        match self {
            Self::Whole(text) => text,
            Self::Streamed { pieces, .. } => pieces.collect::<Vec<_>>().await.concat(),
        }
    }
}

/// How an answer went (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerOutcome {
    /// Being streamed (how it ends is counted then).
    Streaming,
    /// Answered whole.
    Answered,
    /// The validator said no: `replies.unsure` instead.
    Unsure,
    /// The model said nothing: `replies.unavailable`.
    Empty,
    /// The breaker left the model alone: `replies.unavailable`.
    Refused,
    /// The model failed or was too slow: `replies.unavailable`.
    Failed,
}

impl AnswerOutcome {
    /// `streaming`, `answered`, `unsure`, `empty`, `refused`, `failed`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Streaming => "streaming",
            Self::Answered => "answered",
            Self::Unsure => "unsure",
            Self::Empty => "empty",
            Self::Refused => "refused",
            Self::Failed => "failed",
        }
    }
}

/// The validator's say on an unsure answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The answer did not sound unsure: not checked.
    Confident,
    /// The other model says it is right.
    Yes,
    /// The other model says it is wrong.
    No,
    /// No clear yes or no (or the other model failed): the answer stands.
    Unclear,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Self::Confident => "confident",
            Self::Yes => "yes",
            Self::No => "no",
            Self::Unclear => "unclear",
        }
    }
}

/// The policy in force: where it came from, and whether the file's latest
/// version was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyStatus {
    /// `built-in`, or the file.
    pub source: String,
    /// Why the file's latest version was refused (the previous policy
    /// stays in force).
    pub error: Option<String>,
}

/// Whether the policy file changed, and what came of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// No file, or not changed since it was read.
    Unchanged,
    /// The new policy is in force.
    Loaded,
    /// The new version was refused (why); the previous policy stays.
    Refused(String),
}

/// One model as the policy in force has it.
#[derive(Debug)]
struct Model {
    name: EndpointName,
    client: LlmClient,
    breaker: Breaker,
    max_tokens: u32,
    temperature: f32,
}

/// The policy in force, with its clients and breakers.
#[derive(Debug)]
struct Active {
    policy: Arc<RoutingPolicy>,
    small: Model,
    large: Model,
    rag: RagClient,
    rag_url: String,
    rag_breaker: Breaker,
}

impl Active {
    /// The clients `policy` needs; breakers are kept from `previous` for
    /// endpoints whose URL did not change.
    fn new(
        policy: RoutingPolicy,
        default_rag_url: &str,
        previous: Option<&Active>,
    ) -> Result<Self, String> {
        let settings = policy.breaker_settings();
        let model = |name: EndpointName| -> Result<Model, String> {
            let ep = policy.endpoint(name);
            let api_key = match &ep.api_key_env {
                Some(var) => Some(
                    std::env::var(var)
                        .map_err(|_| format!("endpoints.{name}.api_key_env: {var} is not set"))?,
                ),
                None => None,
            };
            let endpoint = ChatEndpoint {
                url: ep.url.clone(),
                model: ep.model.clone(),
                api_key,
                first_token: Duration::from_secs_f64(ep.first_token_secs),
                answer: Duration::from_secs_f64(ep.answer_secs),
            };
            let client = LlmClient::new(name.backend(), &endpoint).map_err(|e| e.to_string())?;
            let breaker = previous
                .map(|p| p.model(name))
                .filter(|m| m.client.base_url() == ep.url && m.breaker.settings() == settings)
                .map_or_else(
                    || Breaker::new(name.backend(), settings),
                    |m| m.breaker.clone(),
                );
            Ok(Model {
                name,
                client,
                breaker,
                max_tokens: ep.max_tokens,
                temperature: ep.temperature,
            })
        };
        let small = model(EndpointName::Small)?;
        let large = model(EndpointName::Large)?;
        let rag_url = policy
            .rag
            .url
            .clone()
            .unwrap_or_else(|| default_rag_url.to_owned());
        let rag = RagClient::new(&rag_url, Duration::from_secs_f64(policy.rag.timeout_secs))
            .map_err(|e| e.to_string())?;
        let rag_breaker = previous
            .filter(|p| p.rag_url == rag_url && p.rag_breaker.settings() == settings)
            .map_or_else(
                || Breaker::new(RAG_API, settings),
                |p| p.rag_breaker.clone(),
            );
        Ok(Self {
            policy: Arc::new(policy),
            small,
            large,
            rag,
            rag_url,
            rag_breaker,
        })
    }

    fn model(&self, name: EndpointName) -> &Model {
        match name {
            EndpointName::Small => &self.small,
            EndpointName::Large => &self.large,
        }
    }
}

/// The answer path: the routing policy in force, the models, rag-api,
/// and conversation memory.
#[derive(Debug)]
pub struct Answers {
    /// The policy file, if one is configured.
    file: Option<PathBuf>,
    /// rag-api's address when the policy names none.
    rag_api_url: String,
    /// Which collections the mode allows.
    rules: CollectionRules,
    memory: Arc<Memory>,
    active: RwLock<Arc<Active>>,
    /// The file as last read (none: not yet, or no file).
    seen: Mutex<Option<Seen>>,
}

/// A version of the policy file: its stamp, and why it was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    stamp: Stamp,
    /// So a broken file is reported once.
    error: Option<String>,
}

/// When the file was modified, and its length: a change of either is a
/// new version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

impl Answers {
    /// The answer path `settings` describe. Reads the policy file now: a
    /// missing or broken one is a configuration error.
    pub fn new(settings: &AnswerSettings) -> anyhow::Result<Self> {
        use anyhow::Context;
        let (policy, seen) = match &settings.policy_file {
            None => (RoutingPolicy::built_in(), None),
            Some(path) => {
                let meta = std::fs::metadata(path)
                    .with_context(|| format!("routing_policy {}", path.display()))?;
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("routing_policy {}", path.display()))?;
                let policy = RoutingPolicy::from_yaml(&text)
                    .map_err(|e| anyhow::anyhow!("routing_policy {}: {e}", path.display()))?;
                let stamp = Stamp {
                    modified: meta.modified().ok(),
                    len: meta.len(),
                };
                (policy, Some(Seen { stamp, error: None }))
            }
        };
        let active = Active::new(policy, &settings.rag_api_url, None)
            .map_err(|e| anyhow::anyhow!("routing policy: {e}"))?;
        let rules = CollectionRules::new(&settings.mode_service_url, settings.mode_deadline)?;
        let memory = Memory::new(&settings.memory).context("memory")?;
        Ok(Self {
            file: settings.policy_file.clone(),
            rag_api_url: settings.rag_api_url.clone(),
            rules,
            memory: Arc::new(memory),
            active: RwLock::new(Arc::new(active)),
            seen: Mutex::new(seen),
        })
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<RoutingPolicy> {
        self.active().policy.clone()
    }

    /// Where the policy in force came from, and whether the file's latest
    /// version was refused.
    pub fn status(&self) -> PolicyStatus {
        let error = self
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .and_then(|s| s.error.clone());
        PolicyStatus {
            source: self
                .file
                .as_ref()
                .map_or_else(|| "built-in".to_owned(), |p| p.display().to_string()),
            error,
        }
    }

    /// Conversation memory.
    pub fn memory(&self) -> &Memory {
        &self.memory
    }

    /// The breaker of endpoint `name` in the policy in force.
    pub fn breaker(&self, name: EndpointName) -> Breaker {
        self.active().model(name).breaker.clone()
    }

    fn active(&self) -> Arc<Active> {
        self.active
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads the policy file again if it changed (by its modification time
    /// and length); a broken one is refused and the previous policy stays.
    pub async fn reload(&self) -> Reload {
        let Some(path) = &self.file else {
            return Reload::Unchanged;
        };
        let (stamp, text) = match read_changed(path, &self.seen).await {
            Changed::No => return Reload::Unchanged,
            Changed::Unreadable(error) => return self.refuse(None, error),
            Changed::Yes(stamp, text) => (stamp, text),
        };
        let previous = self.active();
        let built = RoutingPolicy::from_yaml(&text)
            .and_then(|policy| Active::new(policy, &self.rag_api_url, Some(&previous)));
        match built {
            Ok(active) => {
                *self.active.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(active);
                *self.seen.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some(Seen { stamp, error: None });
                info!(file = %path.display(), "routing policy reloaded");
                counter!("orchestrator_routing_reloads_total", "result" => "ok").increment(1);
                Reload::Loaded
            }
            Err(e) => self.refuse(Some(stamp), format!("{}: {e}", path.display())),
        }
    }

    /// Refuses a new version of the file (warning once per error).
    /// An unreadable file has no stamp: it is read again next time.
    fn refuse(&self, stamp: Option<Stamp>, error: String) -> Reload {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let known = seen.as_ref().and_then(|s| s.error.as_deref()) == Some(error.as_str());
        if !known {
            warn!(%error, "routing policy refused; keeping the previous one");
            counter!("orchestrator_routing_reloads_total", "result" => "error").increment(1);
        }
        let stamp = stamp.unwrap_or(Stamp {
            modified: None,
            len: u64::MAX,
        });
        *seen = Some(Seen {
            stamp,
            error: Some(error.clone()),
        });
        Reload::Refused(error)
    }

    /// Checks the policy file every `every` until `shutdown`.
    pub async fn watch(&self, every: Duration, shutdown: CancellationToken) -> anyhow::Result<()> {
        if self.file.is_none() {
            return Ok(());
        }
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(every) => {}
            }
            self.reload().await;
        }
    }

    /// Answers `question` from `satellite`. Never fails: a backend that
    /// does gives `replies.unavailable`, within the endpoint's
    /// first-token deadline (plus rag-api's, for a route with passages).
    pub async fn answer(&self, question: &str, satellite: &str) -> Answer {
        let active = self.active();
        let policy = active.policy.clone();
        let routed = policy.route(question);
        let history = self.memory.recall(satellite).await;
        let passages = if routed.target.rag {
            self.passages(&active, question).await
        } else {
            Vec::new()
        };
        let messages = prompt(&policy, &history, &passages, question);
        let model = active.model(routed.target.endpoint);
        debug!(route = %routed.name, endpoint = %model.name, turns = history.len(), passages = passages.len(), "asking");
        let mut answer = Answer {
            route: routed.name.clone(),
            endpoint: model.name,
            messages,
            passages,
            outcome: AnswerOutcome::Failed,
            verdict: None,
            speech: Speech::Whole(policy.replies.unavailable.clone()),
        };
        let request = ChatRequest {
            messages: answer.messages.clone(),
            max_tokens: model.max_tokens,
            temperature: model.temperature,
        };
        let (mut stream, permit) = match ask(model, &request).await {
            Ok(asked) => asked,
            Err(outcome) => return counted(answer, outcome),
        };
        let first = match stream.next().await {
            Some(Ok(first)) => first,
            Some(Err(e)) => {
                judge(permit, &e);
                return counted(answer, AnswerOutcome::Failed);
            }
            None => {
                permit.succeed();
                return counted(answer, AnswerOutcome::Empty);
            }
        };
        if routed.target.validate
            && let Some(validator) = &policy.validator
        {
            let text = match stream.collect().await {
                Ok(rest) => {
                    permit.succeed();
                    format!("{first}{rest}")
                }
                Err(e) => {
                    judge(permit, &e);
                    warn!(error = %e, "the answer broke off");
                    return counted(answer, AnswerOutcome::Failed);
                }
            };
            let verdict = if hedges(validator, &text) {
                check(active.model(model.name.other()), validator, question, &text).await
            } else {
                Verdict::Confident
            };
            counter!("orchestrator_answer_checks_total", "verdict" => verdict.label()).increment(1);
            answer.verdict = Some(verdict);
            if verdict == Verdict::No {
                answer.speech = Speech::Whole(policy.replies.unsure.clone());
                return counted(answer, AnswerOutcome::Unsure);
            }
            self.memory
                .remember(
                    satellite,
                    Turn {
                        user: question.to_owned(),
                        assistant: text.trim().to_owned(),
                    },
                )
                .await;
            answer.speech = Speech::Whole(text);
            return counted(answer, AnswerOutcome::Answered);
        }
        let ends_by = stream.deadline();
        let pieces = relay(
            stream,
            permit,
            first,
            Conversation {
                memory: self.memory.clone(),
                satellite: satellite.to_owned(),
                question: question.to_owned(),
                route: routed.name,
                cut: policy.replies.unavailable.clone(),
            },
        );
        answer.outcome = AnswerOutcome::Streaming;
        answer.speech = Speech::Streamed { pieces, ends_by };
        answer
    }

    /// Passages for `question` from the collections the mode allows; none
    /// when rag-api or mode-service fails (the model answers on its own).
    async fn passages(&self, active: &Active, question: &str) -> Vec<Passage> {
        let count = |outcome: &'static str| {
            counter!("orchestrator_rag_searches_total", "outcome" => outcome).increment(1);
        };
        let Ok(permit) = active.rag_breaker.admit() else {
            count("refused");
            return Vec::new();
        };
        let collections = match active.rag.collections().await {
            Ok(c) => c,
            Err(e) => {
                judge(permit, &e);
                warn!(error = %e, "no passages");
                count("failed");
                return Vec::new();
            }
        };
        let access: Access = match self.rules.access(&collections).await {
            Ok(access) => access,
            Err(e) => {
                // Least privilege: without mode-service's word, nothing.
                permit.succeed();
                warn!(error = %e, "cannot tell which collections the mode allows; no passages");
                count("no_policy");
                return Vec::new();
            }
        };
        if access.collections.is_empty() {
            permit.succeed();
            count("none_allowed");
            return Vec::new();
        }
        let rag = &active.policy.rag;
        match active
            .rag
            .search(question, &access, rag.passages, rag.min_score)
            .await
        {
            Ok(passages) => {
                permit.succeed();
                count(if passages.is_empty() {
                    "none_found"
                } else {
                    "found"
                });
                passages
            }
            Err(e) => {
                judge(permit, &e);
                warn!(error = %e, "no passages");
                count("failed");
                Vec::new()
            }
        }
    }
}

/// Whether the file changed since it was last read.
enum Changed {
    No,
    Unreadable(String),
    /// Its new stamp and text.
    Yes(Stamp, String),
}

async fn read_changed(path: &Path, seen: &Mutex<Option<Seen>>) -> Changed {
    let meta = match tokio::fs::metadata(path).await {
        Ok(meta) => meta,
        Err(e) => return Changed::Unreadable(format!("cannot read {}: {e}", path.display())),
    };
    let stamp = Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
    };
    let unchanged = seen
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .is_some_and(|s| s.stamp == stamp);
    if unchanged {
        return Changed::No;
    }
    match tokio::fs::read_to_string(path).await {
        Ok(text) => Changed::Yes(stamp, text),
        Err(e) => Changed::Unreadable(format!("cannot read {}: {e}", path.display())),
    }
}

/// The messages for `question`: instructions (with passages), earlier
/// turns, the question.
fn prompt(
    policy: &RoutingPolicy,
    history: &[Turn],
    passages: &[Passage],
    question: &str,
) -> Vec<ChatMessage> {
    let mut system = policy.prompts.system.trim().to_owned();
    if !passages.is_empty() {
        system.push_str("\n\n");
        system.push_str(policy.prompts.knowledge.trim());
        for passage in passages {
            system.push_str("\n\n");
            let source = [passage.title.trim(), passage.heading.trim()]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(", ");
            if !source.is_empty() {
                system.push_str(&format!("[{source}] "));
            }
            system.push_str(passage.text.trim());
        }
    }
    let mut messages = vec![ChatMessage::new(Role::System, system)];
    for turn in history {
        messages.push(ChatMessage::new(Role::User, turn.user.clone()));
        messages.push(ChatMessage::new(Role::Assistant, turn.assistant.clone()));
    }
    messages.push(ChatMessage::new(Role::User, question.trim()));
    messages
}

/// Asks `model` through its breaker; the first piece is in when this
/// returns.
async fn ask(
    model: &Model,
    request: &ChatRequest,
) -> Result<(AnswerStream, Permit), AnswerOutcome> {
    let permit = model.breaker.admit().map_err(|open| {
        debug!(%open, "not asking");
        AnswerOutcome::Refused
    })?;
    match model.client.chat(request).await {
        Ok(stream) => {
            histogram!("orchestrator_llm_first_token_seconds", "endpoint" => model.name.as_str())
                .record(stream.first_token().as_secs_f64());
            Ok((stream, permit))
        }
        Err(e) => {
            warn!(error = %e, "no answer from the model");
            judge(permit, &e);
            Err(AnswerOutcome::Failed)
        }
    }
}

/// Tells the breaker about a failed call: the backend's fault counts,
/// a refusal of the request does not (the backend is up).
fn judge(permit: Permit, e: &BackendError) {
    counter!(
        "orchestrator_backend_errors_total",
        "backend" => e.backend(),
        "kind" => e.kind().as_str()
    )
    .increment(1);
    if e.is_backend_fault() {
        permit.fail();
    } else {
        permit.succeed();
    }
}

/// Counts `answer` as ending with `outcome`.
fn counted(mut answer: Answer, outcome: AnswerOutcome) -> Answer {
    answer.outcome = outcome;
    count_answer(&answer.route, outcome.label());
    answer
}

fn count_answer(route: &str, outcome: &'static str) {
    counter!("orchestrator_answers_total", "route" => route.to_owned(), "outcome" => outcome)
        .increment(1);
}

/// Whether `answer` has one of the validator's hedges.
fn hedges(validator: &Validator, answer: &str) -> bool {
    let words = words(answer);
    validator.hedges.iter().any(|h| has_phrase(&words, h))
}

/// Asks `model` whether `answer` answers `question`, yes or no.
async fn check(model: &Model, validator: &Validator, question: &str, answer: &str) -> Verdict {
    let request = ChatRequest {
        messages: vec![
            ChatMessage::new(Role::System, validator.prompt.trim()),
            ChatMessage::new(
                Role::User,
                format!("Question: {question}\nAnswer: {answer}\nIs the answer right? Yes or no?"),
            ),
        ],
        max_tokens: 4,
        temperature: 0.0,
    };
    let Ok((stream, permit)) = ask(model, &request).await else {
        return Verdict::Unclear;
    };
    match stream.collect().await {
        Ok(reply) => {
            permit.succeed();
            match words(&reply).first().map(String::as_str) {
                Some("yes") => Verdict::Yes,
                Some("no") => Verdict::No,
                _ => Verdict::Unclear,
            }
        }
        Err(e) => {
            judge(permit, &e);
            Verdict::Unclear
        }
    }
}

/// What a streamed answer is remembered and counted with at its end.
struct Conversation {
    memory: Arc<Memory>,
    satellite: String,
    question: String,
    route: String,
    /// Said after an answer that breaks off.
    cut: String,
}

/// The rest of `stream` (after `first`) as a stream of pieces, read by a
/// task that tells the breaker, counts, and remembers the turn at the end
/// (before the pieces' stream ends).
fn relay(
    mut stream: AnswerStream,
    permit: Permit,
    first: String,
    conversation: Conversation,
) -> BoxStream<'static, String> {
    let (tx, rx) = mpsc::channel::<String>(64);
    tokio::spawn(async move {
        let mut text = first.clone();
        if tx.send(first).await.is_err() {
            return;
        }
        let outcome = loop {
            match stream.next().await {
                None => {
                    permit.succeed();
                    break "answered";
                }
                Some(Ok(piece)) => {
                    text.push_str(&piece);
                    if tx.send(piece).await.is_err() {
                        // Nobody listens any more (speech failed).
                        break "abandoned";
                    }
                }
                Some(Err(e)) => {
                    warn!(error = %e, "the answer broke off");
                    judge(permit, &e);
                    let _ = tx.send(format!(" {}", conversation.cut)).await;
                    break "cut";
                }
            }
        };
        count_answer(&conversation.route, outcome);
        if outcome == "answered" {
            conversation
                .memory
                .remember(
                    &conversation.satellite,
                    Turn {
                        user: conversation.question,
                        assistant: text.trim().to_owned(),
                    },
                )
                .await;
        }
        drop(tx);
    });
    ReceiverStream::new(rx).boxed()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_built_in_policy_parses() {
        let policy = RoutingPolicy::from_yaml("").unwrap();
        assert_eq!(policy, RoutingPolicy::built_in());
        assert_eq!(policy.endpoints.small.model, "smollm2-135m-instruct");
        assert!(policy.validator.is_some());
    }

    #[test]
    fn routes_by_words_and_length() {
        let policy = RoutingPolicy::built_in();
        let route = |q: &str| policy.route(q).name;
        assert_eq!(route("What's the Wi-Fi password?"), "knowledge");
        assert_eq!(route("When is check out?"), "knowledge");
        assert_eq!(route("Who wrote the Odyssey?"), "short");
        assert_eq!(
            route("Tell me a story about a dragon who lived under a mountain"),
            "default"
        );
        // "checkers" is not "check", nor "wifi" part of another word.
        assert_eq!(
            route("Can you teach me checkers and other games tonight please"),
            "default"
        );
    }

    #[test]
    fn a_file_says_what_differs() {
        let policy = RoutingPolicy::from_yaml(
            "endpoints: { small: { url: 'http://10.0.0.2:9000/v1' } }\n\
             routes: [ { name: all, endpoint: large, when: { min_words: 1 } } ]\n",
        )
        .unwrap();
        assert_eq!(policy.endpoints.small.url, "http://10.0.0.2:9000/v1");
        assert_eq!(policy.endpoints.small.model, "smollm2-135m-instruct");
        assert_eq!(policy.routes.len(), 1);
        assert_eq!(policy.route("hi").name, "all");
        assert_eq!(policy.route("").name, "default");
    }

    #[test]
    fn nonsense_is_refused() {
        for (yaml, why) in [
            ("[1, 2]", "mapping"),
            ("endpoints: { small: { url: 'ftp://x' } }", "http"),
            (
                "endpoints: { small: { first_token_secs: 30 } }",
                "answer_secs",
            ),
            ("endpoints: { large: { max_tokens: 0 } }", "max_tokens"),
            ("routes: [ { name: a, endpoint: medium } ]", "medium"),
            (
                "routes: [ { name: a, endpoint: small, whence: {} } ]",
                "whence",
            ),
            (
                "routes: [ { name: a, endpoint: small }, { name: a, endpoint: large } ]",
                "unique",
            ),
            (
                "routes: [ { name: a, endpoint: small, when: { min_words: 3, max_words: 2 } } ]",
                "min_words",
            ),
            (
                "routes: [ { name: a, endpoint: small, when: { any_words: ['?'] } } ]",
                "no words",
            ),
            (
                "validator: null\ndefault: { endpoint: small, validate: true }",
                "validator",
            ),
            ("breaker: { failures: 0 }", "failures"),
            ("rag: { passages: 0 }", "passages"),
            ("colour: blue", "colour"),
        ] {
            let e = RoutingPolicy::from_yaml(yaml).unwrap_err();
            assert!(e.contains(why), "{yaml}: {e}");
        }
    }

    #[test]
    fn the_prompt_has_instructions_passages_turns_and_the_question() {
        let policy = RoutingPolicy::built_in();
        let history = [Turn {
            user: "Who built the Eiffel Tower?".into(),
            assistant: "Gustave Eiffel's company.".into(),
        }];
        let passages = [Passage {
            score: 0.8,
            collection: "house_guide".into(),
            title: "Guide".into(),
            heading: "Internet".into(),
            text: "The Wi-Fi is Athena-Guest.".into(),
        }];
        let messages = prompt(&policy, &history, &passages, " How tall is it? ");
        let roles: Vec<Role> = messages.iter().map(|m| m.role).collect();
        assert_eq!(
            roles,
            [Role::System, Role::User, Role::Assistant, Role::User]
        );
        assert!(messages[0].content.starts_with("You are Athena"));
        assert!(
            messages[0]
                .content
                .contains("[Guide, Internet] The Wi-Fi is Athena-Guest.")
        );
        assert_eq!(messages[3].content, "How tall is it?");
    }

    #[test]
    fn hedges_are_whole_words() {
        let validator = RoutingPolicy::built_in().validator.unwrap();
        assert!(hedges(&validator, "I think it was Homer."));
        assert!(hedges(&validator, "It might be Homer."));
        assert!(!hedges(&validator, "Homer, a mighty poet."));
    }
}
