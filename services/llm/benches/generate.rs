//! LLM serving speed: Athena's llm server (`athena serve router-small-llm`)
//! against llama.cpp's server as Python users run it (llama-cpp-python's
//! OpenAI-compatible `llama_cpp.server`), on the same GGUF file, 2 threads
//! each (`RAYON_NUM_THREADS` for candle, `--n_threads`/`--n_threads_batch`
//! for llama.cpp), a context of 4096 tokens each, in the same run.
//!
//! Both servers run at once and one client drives them over HTTP with
//! `/v1/completions`, alternating request by request (and which goes first)
//! with a pause before each request; every prompt is rendered here as plain
//! text (ChatML-like turns), so both sides see the same tokens, and greedy
//! (`temperature` 0, `repeat_penalty` 1) so both write the same answer.
//! Medians of ATHENA_BENCH_RUNS (5) after a warm-up, for each model of
//! ATHENA_BENCH_MODELS (a comma-separated list of catalog names):
//!
//! - **prompt tokens/s**: a ~500-token prompt (a house's event log) with
//!   `max_tokens` 1, made unique at its start (a nonce) so that no prefix
//!   cache helps either side; prompt tokens (from `usage`) ÷ latency.
//! - **decode tokens/s**: a request for a long story, 128 tokens, streamed;
//!   (tokens − 1) ÷ the time from the first to the last streamed token. The
//!   token counts come from `usage` (Athena's stream, llama.cpp's answer to
//!   the same request unstreamed) and are checked against each other.
//! - **time to first token** of a voice-sized request: a home-assistant
//!   system prompt (~200 tokens: the house, rooms, devices, rules) and one
//!   user sentence, streamed, to the first token: (a) with the prefix cache,
//!   the same system prompt every time and another sentence each run; (b)
//!   without, a nonce at the very start of the system prompt each run.
//!   llama-cpp-python reuses the longest common prefix with its previous
//!   prompt; Athena keeps the last few prompts (`prefix_cache`).
//!
//! Run: `scripts/bench-llm.sh` (it builds the release binary, pulls the
//! models and makes the venv). The servers' logs and the greedy answers go
//! to a temporary folder whose path is printed; the last lines of the
//! output check that the two servers counted and wrote the same.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

const DEFAULT_MODELS: &str = "smollm2-135m-instruct,gemma-3-270m,qwen2.5-coder-0.5b-instruct";
const THREADS: &str = "2";
const CONTEXT: &str = "4096";
/// Prompt tokens aimed at for the prompt-throughput measure.
const LONG_PROMPT_TOKENS: f64 = 500.0;
/// Log lines of the first, calibrating prompt.
const PROBE_LINES: usize = 40;
/// Tokens written for the decode measure.
const DECODE_TOKENS: u64 = 128;
/// Before every timed request: the other server's threads may still spin.
const PAUSE: Duration = Duration::from_millis(200);
/// Index of each server in the pairs below (and the tables' column order).
const LLAMA: usize = 0;
const ATHENA: usize = 1;

const SYSTEM_PROMPT: &str = "You are Athena, the voice assistant of the Miller family's house. Your answers are spoken aloud, so answer in one or two short sentences, without lists or markup. \
The house has a living room, a kitchen, a dining room, a hallway, a bathroom, an office, a garage and two bedrooms: the main bedroom and Emma's room. \
Devices: ceiling lights and a floor lamp in the living room; lights and an extractor fan in the kitchen; dimmable lights in the dining room; lights in the hallway, the bathroom, the office and both bedrooms; \
a thermostat in every room except the garage; roller blinds in the living room and both bedrooms; a smart lock on the front door; a garage door opener; a robot vacuum; speakers in the living room and the kitchen. \
Rules: never unlock the front door or open the garage without the spoken PIN. Never set a thermostat above 24 degrees. \
Between 22:00 and 07:00 keep the lights in Emma's room off unless the request comes from her room. \
When a request is unclear, ask one short question. When you act, say what you did. If you cannot do something, say so plainly.";

const DECODE_USER: &str = "Write a long story, at least six paragraphs, about a lighthouse keeper on a small island who finds a message in a bottle. Describe the sea, the weather, the village and its people in detail.";

const ROOMS: [&str; 8] = [
    "living room",
    "kitchen",
    "dining room",
    "hallway",
    "bathroom",
    "office",
    "main bedroom",
    "Emma's room",
];

const REQUESTS: [&str; 5] = [
    "Turn on the lights in the {}.",
    "Please turn off the lights in the {}.",
    "Set the thermostat in the {} to twenty one degrees.",
    "Dim the lights in the {} to thirty percent.",
    "Is anything still switched on in the {}?",
];

const DEVICES: [&str; 7] = [
    "ceiling light",
    "floor lamp",
    "thermostat",
    "roller blind",
    "speaker",
    "window sensor",
    "motion sensor",
];

const EVENTS: [&str; 7] = [
    "switched on",
    "switched off",
    "reported 21.5 degrees",
    "was opened",
    "was closed",
    "detected motion",
    "went offline for a minute",
];

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run scripts/bench-llm.sh"))
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn median_u64(xs: &[u64]) -> u64 {
    let mut xs = xs.to_vec();
    xs.sort_unstable();
    xs[xs.len() / 2]
}

/// A different text on every call (so that no two prompts share a start).
fn nonce() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    // SplitMix64's finaliser: neighbouring counters give unrelated texts.
    let mut x = (u64::from(t) << 32 | n).wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    format!("{:016x}", x ^ (x >> 31))
}

/// One system turn and one user turn, ChatML-style, as plain text.
fn chat(system: &str, user: &str) -> String {
    format!(
        "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
    )
}

/// A different voice command for each `i` (40 before they repeat).
fn user_sentence(i: usize) -> String {
    REQUESTS[i % REQUESTS.len()].replace("{}", ROOMS[(i / REQUESTS.len()) % ROOMS.len()])
}

/// A long prompt: a nonce, then `lines` lines of a house's event log.
fn log_prompt(nonce: &str, lines: usize) -> String {
    let mut text = format!(
        "[{nonce}] Event log of the Miller house for Tuesday. Read it and answer the question at the end.\n"
    );
    for i in 0..lines {
        text.push_str(&format!(
            "{:02}:{:02} {} {} {}.\n",
            6 + (i / 3) % 18,
            (i * 17 + 3) % 60,
            ROOMS[(i * 3) % ROOMS.len()],
            DEVICES[(i * 5 + 1) % DEVICES.len()],
            EVENTS[i % EVENTS.len()],
        ));
    }
    text.push_str("Question: which rooms still had a light on after 22:00?\nAnswer:");
    text
}

/// A server process; killed when dropped (also when the bench panics).
struct Server {
    name: &'static str,
    base: String,
    ready_path: &'static str,
    child: Child,
    started: Instant,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn spawn(
        name: &'static str,
        mut command: Command,
        port: u16,
        ready_path: &'static str,
        log: PathBuf,
    ) -> Self {
        let started = Instant::now();
        let child = command
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot start {command:?}: {e}"));
        Self {
            name,
            base: format!("http://127.0.0.1:{port}"),
            ready_path,
            child,
            started,
            log,
        }
    }

    /// Whether the server answers `ready_path` yet; panics when it has
    /// exited or is not ready after 5 minutes.
    fn is_ready(&mut self, agent: &ureq::Agent) -> bool {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "{} exited ({status}) before it was ready; its log: {}",
                self.name,
                self.log.display()
            );
        }
        assert!(
            self.started.elapsed() < Duration::from_secs(300),
            "{} never became ready; its log: {}",
            self.name,
            self.log.display()
        );
        agent
            .get(format!("{}{}", self.base, self.ready_path))
            .call()
            .is_ok_and(|r| r.status().is_success())
    }
}

/// Waits until both servers are ready; seconds from each one's start.
fn wait_ready(agent: &ureq::Agent, mut servers: [&mut Server; 2]) -> [f64; 2] {
    let mut ready = [None; 2];
    loop {
        for (server, ready) in servers.iter_mut().zip(&mut ready) {
            if ready.is_none() && server.is_ready(agent) {
                *ready = Some(server.started.elapsed().as_secs_f64());
            }
        }
        if let [Some(a), Some(b)] = ready {
            return [a, b];
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_port() -> u16 {
    athena_runtime::free_local_port().unwrap()
}

/// The body of a greedy `/v1/completions` request.
fn request(model: &str, prompt: &str, max_tokens: u64, stream: bool) -> Value {
    let mut body = json!({
        "model": model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "top_p": 1.0,
        "repeat_penalty": 1.0,
        "stream": stream,
    });
    if stream {
        // Athena sends the counts last; llama-cpp-python ignores it.
        body["stream_options"] = json!({ "include_usage": true });
    }
    body
}

fn post(agent: &ureq::Agent, server: &Server, body: &Value) -> ureq::Body {
    let response = agent
        .post(format!("{}/v1/completions", server.base))
        .header("content-type", "application/json")
        .send(body.to_string())
        .unwrap_or_else(|e| panic!("{}: {e}", server.name));
    let status = response.status();
    let mut body = response.into_body();
    assert!(
        status.is_success(),
        "{}: HTTP {status}: {}",
        server.name,
        body.read_to_string().unwrap_or_default()
    );
    body
}

/// What a whole (unstreamed) answer says.
#[derive(Debug, Clone)]
struct Whole {
    seconds: f64,
    text: String,
    finish: String,
    prompt_tokens: u64,
    completion_tokens: u64,
    /// Athena only (`prompt_tokens_details.cached_tokens`).
    cached_tokens: Option<u64>,
}

fn complete(agent: &ureq::Agent, server: &Server, body: &Value) -> Whole {
    let start = Instant::now();
    let answer: Value = serde_json::from_str(&post(agent, server, body).read_to_string().unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", server.name));
    let seconds = start.elapsed().as_secs_f64();
    let usage = &answer["usage"];
    Whole {
        seconds,
        text: answer["choices"][0]["text"].as_str().unwrap().to_owned(),
        finish: answer["choices"][0]["finish_reason"]
            .as_str()
            .unwrap_or("?")
            .to_owned(),
        prompt_tokens: usage["prompt_tokens"].as_u64().unwrap(),
        completion_tokens: usage["completion_tokens"].as_u64().unwrap(),
        cached_tokens: usage["prompt_tokens_details"]["cached_tokens"].as_u64(),
    }
}

/// What a streamed answer took: seconds from sending the request to the
/// first and the last piece of text, and to the end of the stream.
#[derive(Debug, Clone)]
struct Streamed {
    first: Option<f64>,
    last: Option<f64>,
    end: f64,
    /// Events that carried text.
    pieces: usize,
    text: String,
    /// Athena's last event (`include_usage`).
    usage: Option<Value>,
}

impl Streamed {
    /// Time to the first token (to the end when no text came at all).
    fn first_token(&self) -> f64 {
        self.first.unwrap_or(self.end)
    }
}

fn stream(agent: &ureq::Agent, server: &Server, body: &Value) -> Streamed {
    let start = Instant::now();
    let reader = BufReader::new(post(agent, server, body).into_reader());
    let mut s = Streamed {
        first: None,
        last: None,
        end: 0.0,
        pieces: 0,
        text: String::new(),
        usage: None,
    };
    for line in reader.lines() {
        let line = line.unwrap_or_else(|e| panic!("{}: {e}", server.name));
        let Some(data) = line.strip_prefix("data:") else {
            continue;
        };
        let data = data.trim();
        if data == "[DONE]" {
            break;
        }
        let event: Value = serde_json::from_str(data)
            .unwrap_or_else(|e| panic!("{}: {e} in {data:?}", server.name));
        assert!(
            event.get("error").is_none(),
            "{}: error in the stream: {event}",
            server.name
        );
        let choice = &event["choices"][0];
        if let Some(text) = choice["text"].as_str()
            && !text.is_empty()
        {
            let now = start.elapsed().as_secs_f64();
            s.first.get_or_insert(now);
            s.last = Some(now);
            s.pieces += 1;
            s.text.push_str(text);
        }
        if event["usage"].is_object() {
            s.usage = Some(event["usage"].clone());
        }
    }
    s.end = start.elapsed().as_secs_f64();
    s
}

/// Runs `once(run, server)` for both servers in every run, alternating
/// which goes first, with a pause before each request.
fn alternate<T>(runs: usize, mut once: impl FnMut(usize, usize) -> T) -> [Vec<T>; 2] {
    let mut out = [Vec::new(), Vec::new()];
    for run in 0..runs {
        let order = if run % 2 == 0 {
            [LLAMA, ATHENA]
        } else {
            [ATHENA, LLAMA]
        };
        for server in order {
            std::thread::sleep(PAUSE);
            out[server].push(once(run, server));
        }
    }
    out
}

/// Everything measured on one model; pairs are `[llama.cpp, Athena]`.
#[derive(Debug)]
struct Results {
    model: String,
    /// Seconds from start to ready (both servers start at once).
    ready: [f64; 2],
    prompt_tokens: [u64; 2],
    prompt_rate: [f64; 2],
    /// Athena's median cached prompt tokens in the prompt measure (0 wanted).
    prompt_cached: u64,
    decode_tokens: [u64; 2],
    decode_pieces: [usize; 2],
    decode_finish: [String; 2],
    /// Characters the two greedy answers share from the start, and their lengths.
    decode_common: usize,
    decode_chars: [usize; 2],
    decode_rate: [f64; 2],
    voice_tokens: u64,
    ttft_cached: [f64; 2],
    ttft_uncached: [f64; 2],
    /// Athena's median cached prompt tokens with and without the shared prefix.
    voice_cached: [u64; 2],
    /// The one-minute load average before and after (other work on the
    /// machine makes every figure slower, Athena's more than llama.cpp's).
    load: [String; 2],
}

/// The one-minute load average, where the system tells it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

fn usage_u64(usage: Option<&Value>, key: &str) -> Option<u64> {
    let usage = usage?;
    match key {
        "cached_tokens" => usage["prompt_tokens_details"]["cached_tokens"].as_u64(),
        _ => usage[key].as_u64(),
    }
}

fn bench_model(
    model: &str,
    gguf: &Path,
    python: &str,
    athena: &str,
    logs: &Path,
    runs: usize,
) -> Results {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(600)))
        .http_status_as_error(false)
        .build()
        .into();

    let port = free_port();
    let mut llama_cmd = Command::new(python);
    llama_cmd
        .args(["-m", "llama_cpp.server", "--model"])
        .arg(gguf)
        .args(["--model_alias", model])
        .args(["--n_threads", THREADS, "--n_threads_batch", THREADS])
        .args(["--n_ctx", CONTEXT, "--host", "127.0.0.1", "--port"])
        .arg(port.to_string());
    let mut llama = Server::spawn(
        "llama.cpp",
        llama_cmd,
        port,
        "/v1/models",
        logs.join(format!("{model}-llama-cpp.log")),
    );

    let port = free_port();
    let mut athena_cmd = Command::new(athena);
    athena_cmd
        .args(["serve", "router-small-llm"])
        .env(
            "ATHENA__ROUTER_SMALL_LLM__HTTP",
            format!("127.0.0.1:{port}"),
        )
        .env("ATHENA__ROUTER_SMALL_LLM__MODEL", model)
        .env("ATHENA__ROUTER_SMALL_LLM__CONTEXT", CONTEXT)
        .env("RAYON_NUM_THREADS", THREADS);
    let mut athena = Server::spawn(
        "Athena",
        athena_cmd,
        port,
        "/readyz",
        logs.join(format!("{model}-athena.log")),
    );

    let ready = wait_ready(&agent, [&mut llama, &mut athena]);
    let load_before = load_average();
    let servers = [&llama, &athena];

    // Prompt throughput. The first prompt warms both up and tells how many
    // log lines make about 500 tokens of this model's tokenizer.
    let probe = log_prompt(&nonce(), PROBE_LINES);
    let probed = servers.map(|s| complete(&agent, s, &request(model, &probe, 1, false)));
    assert_eq!(
        probed[LLAMA].prompt_tokens, probed[ATHENA].prompt_tokens,
        "{model}: the same prompt has a different number of tokens"
    );
    let lines = ((PROBE_LINES as f64 * LONG_PROMPT_TOKENS / probed[ATHENA].prompt_tokens as f64)
        .round() as usize)
        .max(1);
    let prompts: Vec<String> = (0..runs).map(|_| log_prompt(&nonce(), lines)).collect();
    let prompt = alternate(runs, |run, s| {
        complete(&agent, servers[s], &request(model, &prompts[run], 1, false))
    });
    for (a, b) in prompt[LLAMA].iter().zip(&prompt[ATHENA]) {
        assert_eq!(
            a.prompt_tokens, b.prompt_tokens,
            "{model}: the same prompt has a different number of tokens"
        );
    }
    let rates = |w: &[Whole]| {
        median(
            w.iter()
                .map(|w| w.prompt_tokens as f64 / w.seconds)
                .collect(),
        )
    };
    let tokens = |w: &[Whole]| median_u64(&w.iter().map(|w| w.prompt_tokens).collect::<Vec<_>>());
    let prompt_cached = median_u64(
        &prompt[ATHENA]
            .iter()
            .map(|w| w.cached_tokens.unwrap_or(0))
            .collect::<Vec<_>>(),
    );

    // Decode: first the whole answer from each (the counts and the text),
    // then streamed runs after a warm-up.
    let story = chat("You are a helpful assistant.", DECODE_USER);
    let story_request = request(model, &story, DECODE_TOKENS, true);
    let whole = servers.map(|s| complete(&agent, s, &request(model, &story, DECODE_TOKENS, false)));
    let common = whole[LLAMA]
        .text
        .chars()
        .zip(whole[ATHENA].text.chars())
        .take_while(|(a, b)| a == b)
        .count();
    for s in servers {
        stream(&agent, s, &story_request);
    }
    let decode = alternate(runs, |_, s| stream(&agent, servers[s], &story_request));
    let decode_tokens = [
        whole[LLAMA].completion_tokens,
        usage_u64(
            decode[ATHENA].last().and_then(|s| s.usage.as_ref()),
            "completion_tokens",
        )
        .unwrap_or(whole[ATHENA].completion_tokens),
    ];
    let decode_rate = |s: usize| {
        median(
            decode[s]
                .iter()
                .map(|d| {
                    let n = usage_u64(d.usage.as_ref(), "completion_tokens")
                        .unwrap_or(decode_tokens[s]);
                    (n.saturating_sub(1)) as f64 / (d.last.unwrap() - d.first.unwrap())
                })
                .collect(),
        )
    };
    let mut answers = String::new();
    for (s, name) in [(LLAMA, "llama.cpp"), (ATHENA, "Athena")] {
        answers.push_str(&format!(
            "== {name}, whole ({} tokens, {}):\n{}\n",
            whole[s].completion_tokens, whole[s].finish, whole[s].text
        ));
        for (i, d) in decode[s].iter().enumerate() {
            answers.push_str(&format!("== {name}, streamed run {i}:\n{}\n", d.text));
        }
    }
    std::fs::write(logs.join(format!("{model}-answers.txt")), answers).unwrap();

    // Time to first token of a voice request, with the system prompt in
    // the prefix cache (after a warm-up with it), then without.
    let voice = |s: usize, system: &str, i: usize| {
        stream(
            &agent,
            servers[s],
            &request(model, &chat(system, &user_sentence(i)), 1, true),
        )
    };
    for s in [LLAMA, ATHENA] {
        voice(s, SYSTEM_PROMPT, ROOMS.len() * REQUESTS.len() - 1);
    }
    let cached = alternate(runs, |run, s| voice(s, SYSTEM_PROMPT, run));
    let uncached = alternate(runs, |run, s| {
        voice(s, &format!("[{}] {SYSTEM_PROMPT}", nonce()), run)
    });
    let ttft = |v: &[Streamed]| median(v.iter().map(Streamed::first_token).collect());
    let athena_usage = |v: &[Streamed], key: &str| {
        median_u64(
            &v.iter()
                .filter_map(|s| usage_u64(s.usage.as_ref(), key))
                .collect::<Vec<_>>(),
        )
    };

    Results {
        model: model.to_owned(),
        ready,
        prompt_tokens: [tokens(&prompt[LLAMA]), tokens(&prompt[ATHENA])],
        prompt_rate: [rates(&prompt[LLAMA]), rates(&prompt[ATHENA])],
        prompt_cached,
        decode_tokens,
        decode_pieces: [
            decode[LLAMA].last().unwrap().pieces,
            decode[ATHENA].last().unwrap().pieces,
        ],
        decode_finish: [whole[LLAMA].finish.clone(), whole[ATHENA].finish.clone()],
        decode_common: common,
        decode_chars: [
            whole[LLAMA].text.chars().count(),
            whole[ATHENA].text.chars().count(),
        ],
        decode_rate: [decode_rate(LLAMA), decode_rate(ATHENA)],
        voice_tokens: athena_usage(&cached[ATHENA], "prompt_tokens"),
        ttft_cached: [ttft(&cached[LLAMA]), ttft(&cached[ATHENA])],
        ttft_uncached: [ttft(&uncached[LLAMA]), ttft(&uncached[ATHENA])],
        voice_cached: [
            athena_usage(&cached[ATHENA], "cached_tokens"),
            athena_usage(&uncached[ATHENA], "cached_tokens"),
        ],
        load: [load_before, load_average()],
    }
}

fn main() {
    let python = env("ATHENA_BENCH_PYTHON");
    let athena = env("ATHENA_BENCH_BIN");
    let runs: usize = std::env::var("ATHENA_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|r| *r > 0)
        .unwrap_or(5);
    let models: Vec<String> = std::env::var("ATHENA_BENCH_MODELS")
        .unwrap_or_else(|_| DEFAULT_MODELS.to_owned())
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
        .collect();
    let store = athena_models::Store::from_env().unwrap();
    let logs = std::env::temp_dir().join(format!("athena-bench-llm-{}", std::process::id()));
    std::fs::create_dir_all(&logs).unwrap();
    eprintln!("server logs: {}", logs.display());

    let mut results = Vec::new();
    for model in &models {
        let dir = store.ensure(model).unwrap();
        let file = store
            .catalog()
            .get(model)
            .unwrap()
            .files
            .iter()
            .find(|f| f.path.ends_with(".gguf"))
            .unwrap_or_else(|| panic!("{model} has no .gguf file"))
            .path
            .clone();
        eprintln!("{model}: {}", dir.join(&file).display());
        let r = bench_model(model, &dir.join(file), &python, &athena, &logs, runs);
        eprintln!(
            "{model} (llama.cpp / Athena): prompt {:.0} / {:.0} tokens/s, decode {:.1} / {:.1} tokens/s, \
             first token {:.0} / {:.0} ms cached, {:.0} / {:.0} ms uncached",
            r.prompt_rate[LLAMA],
            r.prompt_rate[ATHENA],
            r.decode_rate[LLAMA],
            r.decode_rate[ATHENA],
            r.ttft_cached[LLAMA] * 1e3,
            r.ttft_cached[ATHENA] * 1e3,
            r.ttft_uncached[LLAMA] * 1e3,
            r.ttft_uncached[ATHENA] * 1e3,
        );
        results.push(r);
    }

    let threads = format!("{THREADS} threads each, context {CONTEXT}, median of {runs}");
    println!("\nPrompt processing, tokens/s ({threads}; higher is better)\n");
    println!("| model | prompt tokens | llama.cpp | Athena | Athena ÷ llama.cpp |");
    println!("|---|---|---|---|---|");
    for r in &results {
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.2}× |",
            r.model,
            r.prompt_tokens[ATHENA],
            r.prompt_rate[LLAMA],
            r.prompt_rate[ATHENA],
            r.prompt_rate[ATHENA] / r.prompt_rate[LLAMA]
        );
    }

    println!(
        "\nDecoding, tokens/s after the first, greedy, {DECODE_TOKENS} tokens streamed ({threads}; higher is better)\n"
    );
    println!("| model | tokens (llama.cpp / Athena) | llama.cpp | Athena | Athena ÷ llama.cpp |");
    println!("|---|---|---|---|---|");
    for r in &results {
        println!(
            "| {} | {} / {} | {:.1} | {:.1} | {:.2}× |",
            r.model,
            r.decode_tokens[LLAMA],
            r.decode_tokens[ATHENA],
            r.decode_rate[LLAMA],
            r.decode_rate[ATHENA],
            r.decode_rate[ATHENA] / r.decode_rate[LLAMA]
        );
    }

    println!(
        "\nTime to first token, voice request: system prompt + one sentence, streamed ({threads}; lower is better)\n"
    );
    println!(
        "| model | prompt tokens | llama.cpp cached | llama.cpp uncached | cached ÷ uncached | Athena cached | Athena uncached | cached ÷ uncached | Athena ÷ llama.cpp cached | Athena ÷ llama.cpp uncached |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in &results {
        let ms = |s: f64| format!("{:.0} ms", s * 1e3);
        println!(
            "| {} | {} | {} | {} | {:.2} | {} | {} | {:.2} | {:.2}× | {:.2}× |",
            r.model,
            r.voice_tokens,
            ms(r.ttft_cached[LLAMA]),
            ms(r.ttft_uncached[LLAMA]),
            r.ttft_cached[LLAMA] / r.ttft_uncached[LLAMA],
            ms(r.ttft_cached[ATHENA]),
            ms(r.ttft_uncached[ATHENA]),
            r.ttft_cached[ATHENA] / r.ttft_uncached[ATHENA],
            r.ttft_cached[ATHENA] / r.ttft_cached[LLAMA],
            r.ttft_uncached[ATHENA] / r.ttft_uncached[LLAMA],
        );
    }

    println!("\nChecks:\n");
    for r in &results {
        let same = if r.decode_common == r.decode_chars[LLAMA]
            && r.decode_common == r.decode_chars[ATHENA]
        {
            "identical".to_owned()
        } else {
            format!(
                "the same for the first {} of {} / {} characters",
                r.decode_common, r.decode_chars[LLAMA], r.decode_chars[ATHENA]
            )
        };
        println!(
            "- {}: load average {} before, {} after; ready {:.1} s (llama.cpp) / {:.1} s (Athena) after the start; \
             decode (llama.cpp / Athena): finish {} / {}, {} / {} streamed pieces, greedy answers {same}; \
             Athena's cached prompt tokens: {} in the prompt measure, {} / {} of {} with / without the shared system prompt",
            r.model,
            r.load[0],
            r.load[1],
            r.ready[LLAMA],
            r.ready[ATHENA],
            r.decode_finish[LLAMA],
            r.decode_finish[ATHENA],
            r.decode_pieces[LLAMA],
            r.decode_pieces[ATHENA],
            r.prompt_cached,
            r.voice_cached[0],
            r.voice_cached[1],
            r.voice_tokens,
        );
    }
}
