//! Answers from the LLMs against real components, no mocks: the real llm
//! service (SmolLM2 135M Instruct from the catalog, greedy, short answers)
//! serving in this process, a real `redis-server` for memory, real
//! rag-api and mode-service for passages. Backends that fail are real
//! sockets that misbehave: one that drops every connection (or forwards
//! it to the llm service once "back"), one that never answers, one that
//! answers garbage.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use athena_mode_service::SystemClock;
use athena_orchestrator::backends::llm::Role;
use athena_orchestrator::backends::{
    BackendError, BreakerState, ChatEndpoint, ChatMessage, ChatRequest, LLM_SMALL, LlmClient,
};
use athena_orchestrator::memory::{Memory, MemorySettings, Turn};
use athena_orchestrator::routing::{
    Answer, AnswerOutcome, AnswerSettings, Answers, EndpointName, RoutingPolicy, Speech,
};
use athena_runtime::http::Readiness;
use athena_store::StoreConfig;
use athena_store::testing::RedisServer;
use futures::StreamExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const MODEL: &str = "smollm2-135m-instruct";

/// The llm service with the catalog's SmolLM2, serving in this process on
/// its own thread for all the tests: its base URL (`http://…/v1`).
fn llm() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async move {
                let mut config = athena_llm::Config::new(0, MODEL);
                config.context = 1024;
                config.max_tokens = 40;
                config.parallel = 2;
                let load = config.clone();
                let llm = tokio::task::spawn_blocking(move || athena_llm::Llm::load(&load))
                    .await
                    .unwrap()
                    .unwrap_or_else(|e| panic!("cannot load {MODEL}: {e:#}"));
                let slot = athena_llm::http_api::Slot::default();
                slot.set(Arc::new(llm)).unwrap();
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(format!("http://{}/v1", listener.local_addr().unwrap()))
                    .unwrap();
                let api = athena_llm::http_api::router(slot, config, "router-small-llm");
                athena_runtime::http::serve_on(
                    listener,
                    "router-small-llm",
                    api,
                    Readiness::default(),
                    CancellationToken::new(),
                )
                .await
                .unwrap();
            });
        });
        rx.recv().unwrap()
    })
}

fn llm_addr() -> SocketAddr {
    let url = llm();
    url.trim_start_matches("http://")
        .trim_end_matches("/v1")
        .parse()
        .unwrap()
}

/// A policy with both endpoints at the given URLs (SmolLM2, greedy, 40
/// tokens; patient deadlines for the real server on a busy machine),
/// `extra`, and unless it says otherwise no routes (the small endpoint
/// answers, without passages).
fn policy(small: &str, large: &str, extra: &str) -> String {
    let endpoint = |url: &str| {
        format!(
            "{{ url: '{url}', model: {MODEL}, max_tokens: 40, temperature: 0, \
             first_token_secs: 60, answer_secs: 120 }}"
        )
    };
    let routes = if extra.contains("routes:") {
        ""
    } else {
        "routes: []\n"
    };
    let yaml = format!(
        "endpoints:\n  small: {}\n  large: {}\n{routes}\
         default: {{ endpoint: small, rag: false }}\n{extra}",
        endpoint(small),
        endpoint(large)
    );
    // The tests' policies are valid ones.
    RoutingPolicy::from_yaml(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    yaml
}

/// Answers with the policy file `file`, memory as given, mode-service at
/// `mode` (nothing there by default: no passages, least privilege).
fn answers(file: &Path, memory: MemorySettings, mode: Option<&str>) -> Arc<Answers> {
    let nowhere = format!(
        "http://127.0.0.1:{}",
        athena_runtime::free_local_port().unwrap()
    );
    Arc::new(
        Answers::new(&AnswerSettings {
            policy_file: Some(file.to_owned()),
            rag_api_url: nowhere.clone(),
            mode_service_url: mode.map_or(nowhere, str::to_owned),
            mode_deadline: Duration::from_secs(10),
            memory,
        })
        .unwrap(),
    )
}

/// The pieces of a streamed answer.
async fn pieces(answer: Answer) -> Vec<String> {
    match answer.speech {
        Speech::Streamed { pieces, .. } => pieces.collect().await,
        Speech::Whole(text) => panic!("a whole answer, not a stream: {text:?}"),
    }
}

/// The text of a whole answer (an apology).
fn whole(answer: &Answer) -> &str {
    match &answer.speech {
        Speech::Whole(text) => text,
        Speech::Streamed { .. } => panic!("a streamed answer: {answer:?}"),
    }
}

const UNAVAILABLE: &str = "Sorry, I can't answer that right now.";

#[tokio::test]
async fn answers_stream_and_conversations_are_remembered_in_redis() {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(dir.path().join("redis"));
    let file = dir.path().join("routing.yaml");
    std::fs::write(&file, policy(llm(), llm(), "")).unwrap();
    let memory = MemorySettings {
        turns: 4,
        ttl_secs: 120,
        redis_url: Some(redis.url()),
    };
    let answers = answers(&file, memory.clone(), None);

    // Answered as it is written: several pieces.
    let question = "What is the capital of France?";
    let first = answers.answer(question, "kitchen").await;
    assert_eq!(
        (first.route.as_str(), first.endpoint, first.outcome),
        ("default", EndpointName::Small, AnswerOutcome::Streaming),
        "{first:?}"
    );
    assert_eq!(first.messages.len(), 2, "system and question: {first:?}");
    assert!(first.messages[0].content.contains("spoken aloud"));
    let pieces = pieces(first).await;
    let text = pieces.concat();
    assert!(pieces.len() > 3, "{pieces:?}");
    assert!(!text.trim().is_empty(), "{pieces:?}");

    // The turn is in Redis by the end of the stream: another orchestrator
    // (another Memory on the same server) sees it.
    let replica = Memory::new(&memory).unwrap();
    let turn = Turn {
        user: question.into(),
        assistant: text.trim().into(),
    };
    assert_eq!(replica.recall("kitchen").await, std::slice::from_ref(&turn));

    // A follow-up reaches the model with the previous turn.
    let follow_up = answers
        .answer("And how many people live there?", "kitchen")
        .await;
    let roles: Vec<Role> = follow_up.messages.iter().map(|m| m.role).collect();
    assert_eq!(
        roles,
        [Role::System, Role::User, Role::Assistant, Role::User]
    );
    assert_eq!(
        follow_up.messages[1..3],
        [
            ChatMessage::new(Role::User, question),
            ChatMessage::new(Role::Assistant, text.trim())
        ]
    );
    let second = follow_up.speech.text().await;
    assert_eq!(replica.recall("kitchen").await.len(), 2, "{second:?}");
    assert_eq!(replica.recall("kitchen").await[0], turn);

    // Each satellite has its own conversation.
    let elsewhere = answers.answer("What is two plus two?", "hall").await;
    assert_eq!(elsewhere.messages.len(), 2);
    elsewhere.speech.text().await;

    assert_eq!(replica.recall("hall").await.len(), 1);
    answers.memory().forget("hall").await;
    assert!(replica.recall("hall").await.is_empty());

    // A conversation is forgotten its time to live after its last turn
    // (by Redis itself: a memory with a short one, on the same server).
    let brief = Memory::new(&MemorySettings {
        ttl_secs: 1,
        ..memory
    })
    .unwrap();
    brief.remember("porch", turn.clone()).await;
    assert_eq!(brief.recall("porch").await, [turn]);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(brief.recall("porch").await.is_empty());
    assert!(replica.recall("porch").await.is_empty());
}

/// A backend that misbehaves on purpose: it drops every connection, or
/// (once "back") forwards it to `to`. Counts the connections it gets.
struct Gate {
    url: String,
    forward: Arc<Mutex<Option<SocketAddr>>>,
    connections: Arc<AtomicUsize>,
}

impl Gate {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let forward: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let connections = Arc::new(AtomicUsize::new(0));
        let (to, count) = (forward.clone(), connections.clone());
        tokio::spawn(async move {
            loop {
                let (mut inbound, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                let to = *to.lock().unwrap();
                if let Some(to) = to {
                    tokio::spawn(async move {
                        let mut outbound = TcpStream::connect(to).await.unwrap();
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    });
                }
            }
        });
        Self {
            url,
            forward,
            connections,
        }
    }

    fn forward_to(&self, to: SocketAddr) {
        *self.forward.lock().unwrap() = Some(to);
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Waits until `done` holds of the answers' policy (the watcher read the
/// file), for at most 10 s.
async fn until(answers: &Answers, done: impl Fn(&Answers) -> bool) {
    for _ in 0..200 {
        if done(answers) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the policy file was not taken in: {:?}", answers.status());
}

#[tokio::test]
async fn the_policy_file_routes_and_a_dead_endpoint_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::start().await;
    let file = dir.path().join("routing.yaml");
    let breaker = "breaker: { failures: 2, cool_down_secs: 3 }\n";
    std::fs::write(&file, policy(llm(), &gate.url, breaker)).unwrap();
    let answers = answers(&file, MemorySettings::default(), None);
    let stop = CancellationToken::new();
    let watcher = {
        let (answers, stop) = (answers.clone(), stop.clone());
        tokio::spawn(async move { answers.watch(Duration::from_millis(100), stop).await })
    };

    let question = "What is the capital of Italy?";
    let answer = answers.answer(question, "kitchen").await;
    assert_eq!(answer.endpoint, EndpointName::Small);
    assert!(!answer.speech.text().await.trim().is_empty());

    // Edited on disk: questions about capitals go to the large endpoint,
    // which drops every connection. Each ask is an apology, at once.
    let routes =
        "routes: [ { name: capitals, when: { any_words: [capital] }, endpoint: large } ]\n";
    std::fs::write(
        &file,
        policy(llm(), &gate.url, &format!("{breaker}{routes}")),
    )
    .unwrap();
    until(&answers, |a| a.policy().routes.len() == 1).await;
    for _ in 0..2 {
        let answer = answers.answer(question, "kitchen").await;
        assert_eq!(
            (answer.route.as_str(), answer.endpoint, answer.outcome),
            ("capitals", EndpointName::Large, AnswerOutcome::Failed)
        );
        assert_eq!(whole(&answer), UNAVAILABLE);
    }
    assert!(gate.connections() >= 2);
    assert!(matches!(
        answers.breaker(EndpointName::Large).state(),
        BreakerState::Open(_)
    ));

    // Open: the dead endpoint is not called at all.
    let hits = gate.connections();
    let answer = answers.answer(question, "kitchen").await;
    assert_eq!(answer.outcome, AnswerOutcome::Refused);
    assert_eq!(whole(&answer), UNAVAILABLE);
    assert_eq!(gate.connections(), hits);
    // The small endpoint has its own breaker.
    let other = answers.answer("Say hello.", "kitchen").await;
    assert_eq!(other.endpoint, EndpointName::Small);
    assert_eq!(other.outcome, AnswerOutcome::Streaming);
    other.speech.text().await;

    // A broken edit is refused; the policy in force stays.
    std::fs::write(&file, "routes: [ { name: capitals, endpoint: huge } ]\n").unwrap();
    until(&answers, |a| a.status().error.is_some()).await;
    assert_eq!(answers.policy().routes[0].name, "capitals");
    assert_eq!(
        answers.answer(question, "kitchen").await.outcome,
        AnswerOutcome::Refused
    );

    // The backend comes back: after the cool-down, one trial call goes
    // through and answers, and the breaker closes.
    gate.forward_to(llm_addr());
    while let BreakerState::Open(left) = answers.breaker(EndpointName::Large).state() {
        tokio::time::sleep(left + Duration::from_millis(50)).await;
    }
    let answer = answers.answer(question, "kitchen").await;
    assert_eq!(
        (answer.endpoint, answer.outcome),
        (EndpointName::Large, AnswerOutcome::Streaming)
    );
    assert_eq!(gate.connections(), hits + 1);
    assert!(!answer.speech.text().await.trim().is_empty());
    assert_eq!(
        answers.breaker(EndpointName::Large).state(),
        BreakerState::Closed
    );

    // Pointed back: the small endpoint answers again.
    std::fs::write(&file, policy(llm(), &gate.url, breaker)).unwrap();
    until(&answers, |a| {
        a.policy().routes.is_empty() && a.status().error.is_none()
    })
    .await;
    let answer = answers.answer(question, "kitchen").await;
    assert_eq!(
        (answer.route.as_str(), answer.endpoint),
        ("default", EndpointName::Small)
    );
    answer.speech.text().await;

    stop.cancel();
    watcher.await.unwrap().unwrap();
}

/// An HTTP server on a real socket that reads each request and answers
/// with `response` (raw bytes), then keeps the connection open without a
/// word more (`None`: never answers at all).
async fn misbehaving(response: Option<&'static [u8]>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    if request_complete(&request) {
                        break;
                    }
                }
                if let Some(response) = response {
                    socket.write_all(response).await.unwrap();
                }
                // Hold the connection until the client goes.
                let _ = socket.read(&mut buf).await;
                tokio::time::sleep(Duration::from_secs(60)).await;
            });
        }
    });
    url
}

/// Whether `bytes` hold a whole request (headers and `content-length`).
fn request_complete(bytes: &[u8]) -> bool {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    bytes.len() >= end + 4 + length
}

/// Deadlines short enough for a test, long enough for a busy machine.
fn impatient(url: &str) -> String {
    format!(
        "endpoints:\n  small: {{ url: '{url}', first_token_secs: 1, answer_secs: 3 }}\n\
         routes: []\ndefault: {{ endpoint: small, rag: false }}\n"
    )
}

#[tokio::test]
async fn silent_slow_and_garbled_servers_get_an_apology_within_the_deadlines() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("routing.yaml");

    // Accepts the connection, never answers: the apology comes at the
    // first-token deadline.
    let silent = misbehaving(None).await;
    std::fs::write(&file, impatient(&silent)).unwrap();
    let answers = answers(&file, MemorySettings::default(), None);
    let started = Instant::now();
    let answer = answers.answer("Who wrote the Odyssey?", "kitchen").await;
    let took = started.elapsed();
    assert_eq!(answer.outcome, AnswerOutcome::Failed);
    assert_eq!(whole(&answer), UNAVAILABLE);
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");

    // Starts an answer, then stalls: what was said, then the apology, at
    // the answer's deadline.
    let stalls = misbehaving(Some(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n\
          data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\n\n\
          data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Homer wrote\"}}]}\n\n",
    ))
    .await;
    std::fs::write(&file, impatient(&stalls)).unwrap();
    answers.reload().await;
    let started = Instant::now();
    let answer = answers.answer("Who wrote the Odyssey?", "kitchen").await;
    assert_eq!(answer.outcome, AnswerOutcome::Streaming);
    let text = answer.speech.text().await;
    let took = started.elapsed();
    assert_eq!(text, format!("Homer wrote {UNAVAILABLE}"));
    assert!(took >= Duration::from_secs(3), "{took:?}");
    assert!(took < Duration::from_secs(8), "{took:?}");
    // A broken-off answer is not remembered.
    assert!(answers.memory().recall("kitchen").await.is_empty());

    // Garbage is an invalid answer, not a hang: events that are not JSON,
    // and a body that is not an event stream.
    let garbled = misbehaving(Some(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n\
          data: <html><body>502 Bad Gateway</body></html>\n\n",
    ))
    .await;
    let html = misbehaving(Some(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 6\r\n\r\n<html>",
    ))
    .await;
    let request = ChatRequest {
        messages: vec![ChatMessage::new(Role::User, "Hi")],
        max_tokens: 8,
        temperature: 0.0,
    };
    for url in [&garbled, &html] {
        let client = LlmClient::new(
            LLM_SMALL,
            &ChatEndpoint {
                url: url.clone(),
                model: MODEL.into(),
                api_key: None,
                first_token: Duration::from_secs(5),
                answer: Duration::from_secs(5),
            },
        )
        .unwrap();
        let e = client.chat(&request).await.unwrap_err();
        assert!(matches!(e, BackendError::Invalid { .. }), "{url}: {e}");
    }
    std::fs::write(&file, impatient(&garbled)).unwrap();
    answers.reload().await;
    let answer = answers.answer("Who wrote the Odyssey?", "kitchen").await;
    assert_eq!(answer.outcome, AnswerOutcome::Failed);
    assert_eq!(whole(&answer), UNAVAILABLE);
}

/// mode-service on a free port with its built-in policy (guests may
/// search `house_guide` only).
async fn mode_service(dir: &Path) -> (String, CancellationToken) {
    let config = athena_mode_service::Config {
        store: StoreConfig {
            redis_url: None,
            dir: Some(dir.join("mode")),
        },
        ..athena_mode_service::Config::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let house = athena_mode_service::House::new(&config, Arc::new(SystemClock)).unwrap();
    let shutdown = CancellationToken::new();
    let readiness = Readiness::default();
    let api = athena_mode_service::http_api::router(house.clone(), config.max_body_bytes);
    let serve = athena_runtime::http::serve_on(
        listener,
        athena_mode_service::NAME,
        api,
        readiness.clone(),
        shutdown.clone(),
    );
    let background = athena_mode_service::keep_current(house, config, readiness, shutdown.clone());
    tokio::spawn(async move { tokio::join!(serve, background) });
    for _ in 0..400 {
        if let Ok(r) = reqwest::get(format!("{url}/readyz")).await
            && r.status().is_success()
        {
            return (url, shutdown);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("mode-service did not become ready");
}

/// rag-api on a free port with its index in `dir` and the catalog's
/// embedding model.
async fn rag_api(dir: &Path) -> (String, CancellationToken) {
    let config = athena_rag_api::config::Config {
        dir: Some(dir.join("rag")),
        ..athena_rag_api::default_config()
    };
    let load = config.clone();
    let rag = tokio::task::spawn_blocking(move || athena_rag_api::load(&load))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("rag-api: {e:#}"));
    let slot = athena_rag_api::http_api::Slot::default();
    slot.set(Arc::new(rag)).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let api = athena_rag_api::http_api::router(slot, 1 << 20, 3);
    let shutdown = CancellationToken::new();
    let serve = athena_runtime::http::serve_on(
        listener,
        athena_rag_api::NAME,
        api,
        Readiness::default(),
        shutdown.clone(),
    );
    tokio::spawn(serve);
    (url, shutdown)
}

#[tokio::test]
async fn guests_read_only_the_collections_their_mode_allows() {
    let dir = tempfile::tempdir().unwrap();
    let (mode, _mode_stop) = mode_service(dir.path()).await;
    let (rag, _rag_stop) = rag_api(dir.path()).await;
    let http = reqwest::Client::new();
    // One guest collection the policy allows guests, one guest-labelled
    // one it does not, one for the owner only.
    for (name, access, text) in [
        (
            "house_guide",
            "guest",
            "The guest Wi-Fi password is sunflower42.",
        ),
        (
            "guest_extras",
            "guest",
            "The Wi-Fi router is in the hall closet.",
        ),
        (
            "owner_documents",
            "owner",
            "The office Wi-Fi password is granite77.",
        ),
    ] {
        let r = http
            .post(format!("{rag}/v1/collections"))
            .json(&json!({"name": name, "access": access}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        let r = http
            .put(format!("{rag}/v1/collections/{name}/documents/wifi"))
            .json(&json!({"text": text, "title": "Wi-Fi"}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
    let file = dir.path().join("routing.yaml");
    let knowledge = format!(
        "routes: [ {{ name: knowledge, when: {{ any_words: [wifi] }}, endpoint: small, rag: true }} ]\n\
         rag: {{ url: '{rag}', passages: 5, min_score: -1 }}\n"
    );
    std::fs::write(&file, policy(llm(), llm(), &knowledge)).unwrap();
    let answers = answers(&file, MemorySettings::default(), Some(&mode));
    let set_mode = async |name: &str| {
        let r = http
            .put(format!("{mode}/v1/mode/override"))
            .json(&json!({"mode": name, "minutes": 60}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    };
    let collections = |answer: &Answer| {
        let mut names: Vec<String> = answer
            .passages
            .iter()
            .map(|p| p.collection.clone())
            .collect();
        names.sort();
        names
    };

    set_mode("guest").await;
    let answer = answers
        .answer("What is the wifi password?", "guest-room")
        .await;
    assert_eq!(answer.route, "knowledge");
    assert_eq!(collections(&answer), ["house_guide"], "{answer:?}");
    let system = &answer.messages[0].content;
    assert!(system.contains("sunflower42"), "{system}");
    assert!(
        !system.contains("granite77") && !system.contains("closet"),
        "{system}"
    );
    assert!(!answer.speech.text().await.trim().is_empty());

    set_mode("owner").await;
    let answer = answers.answer("What is the wifi password?", "office").await;
    assert_eq!(
        collections(&answer),
        ["guest_extras", "house_guide", "owner_documents"],
        "{answer:?}"
    );
    assert!(answer.messages[0].content.contains("granite77"));
    answer.speech.text().await;
}
