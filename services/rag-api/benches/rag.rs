//! Retrieval benchmark, in two parts.
//!
//! 1. Embedding throughput: Athena's embedder against sentence-transformers
//!    (PyTorch, CPU) on the same all-MiniLM-L6-v2 weights and the same
//!    sentences, ATHENA_BENCH_THREADS (2) threads each, at batch 1 and 32;
//!    the two alternate round by round, medians of ATHENA_BENCH_RUNS (5).
//!    The vectors of both are compared too (cosine of each pair).
//! 2. Search latency of the embedded store (`VectorStore::search`, the query
//!    already a vector) at 10k and 100k vectors of 384 dimensions: p50/p99
//!    over 1000 queries, recall@10 against an exact scan, and the exact
//!    scan's own time for the ratio. The vectors are synthetic: clustered
//!    unit vectors (2000 clusters), the shape real chunk embeddings have.
//!
//! Run: `scripts/bench-rag.sh` (it builds the peer's venv and the model).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use athena_rag_api::embed::{Embedder, Precision, cosine};
use athena_rag_api::ingest::Format;
use athena_rag_api::store::hnsw::dot;
use athena_rag_api::store::{Access, Chunk, Collection, Document, EmbeddedStore, VectorStore};
use serde_json::{Value, json};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at]
}

/// Sentences from the house guide the tests use, and the guests' questions:
/// what a home's knowledge base holds, at the lengths it has.
fn sentences() -> Vec<String> {
    let data = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("tests/data");
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(data.join("house"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            let line = line.trim_start_matches(['#', '-', '*', ' ']).trim();
            if line.len() > 12 && !line.starts_with('<') {
                out.extend(line.split(". ").filter(|s| s.len() > 12).map(str::to_owned));
            }
        }
    }
    let questions: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(data.join("questions.json")).unwrap())
            .unwrap();
    out.extend(
        questions
            .iter()
            .map(|q| q["q"].as_str().unwrap().to_owned()),
    );
    // 256 in all: the corpus, then its sentences joined in pairs (longer
    // passages, as chunks are).
    let base = out.clone();
    let mut i = 0;
    while out.len() < 256 {
        out.push(format!(
            "{} {}",
            base[i % base.len()],
            base[(i * 7 + 3) % base.len()]
        ));
        i += 1;
    }
    out.truncate(256);
    out
}

struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    fn start(python: &str, threads: usize) -> Self {
        let script = std::path::PathBuf::from(
            std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
        )
        .join("benches/st_peer.py");
        let mut child = Command::new(python)
            .arg(script)
            .env("ATHENA_BENCH_THREADS", threads.to_string())
            .env("OMP_NUM_THREADS", threads.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the sentence-transformers peer");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut peer = Self {
            child,
            stdin,
            stdout,
        };
        let ready = peer.read();
        assert_eq!(ready["ready"], true, "{ready}");
        peer
    }

    fn read(&mut self) -> Value {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("peer said {line:?}: {e}"))
    }

    fn stop(mut self) {
        drop(self.stdin);
        self.child.wait().unwrap();
    }

    fn ask(&mut self, cmd: Value) -> Value {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
        self.read()
    }
}

fn embeddings(threads: usize, runs: usize) {
    let python = std::env::var("ATHENA_BENCH_PYTHON")
        .expect("ATHENA_BENCH_PYTHON is not set: run scripts/bench-rag.sh");
    let store = athena_models::Store::from_env().unwrap();
    let dir = store.ensure("all-minilm-l6-v2").unwrap();
    let ours = [Precision::F32, Precision::Q8].map(|precision| {
        (
            precision,
            Embedder::load(&dir, false, 32, precision).unwrap(),
        )
    });
    let texts = sentences();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let tokens: usize = refs
        .iter()
        .map(|t| ours[0].1.count_tokens(t).unwrap())
        .sum();
    let mut peer = Peer::start(&python, threads);
    peer.ask(json!({ "sentences": texts }));
    // Warm-up, and agreement with the peer.
    let mut worst = [1.0f32; 2];
    for (w, (_, embedder)) in worst.iter_mut().zip(&ours) {
        embedder.embed(&refs[..32]).unwrap();
        for t in refs.iter().step_by(16) {
            let mine = embedder.embed(&[t]).unwrap().remove(0);
            let theirs: Vec<f32> = peer.ask(json!({ "vector": t }))["vector"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            *w = w.min(cosine(&mine, &theirs));
        }
    }

    println!(
        "\n## Embeddings: all-MiniLM-L6-v2, {} sentences ({tokens} tokens), {threads} threads, median of {runs}\n",
        texts.len()
    );
    println!(
        "| batch | sentence-transformers (f32) | Athena f32 | f32 ÷ peer | Athena q8 | q8 ÷ peer |"
    );
    println!("|---|---|---|---|---|---|");
    for batch in [1usize, 32] {
        let (mut mine, mut theirs) = ([Vec::new(), Vec::new()], Vec::new());
        for _ in 0..runs {
            for (times, (_, embedder)) in mine.iter_mut().zip(&ours) {
                let started = Instant::now();
                for group in refs.chunks(batch) {
                    embedder.embed(group).unwrap();
                }
                times.push(started.elapsed().as_secs_f64());
            }
            let answer = peer.ask(json!({ "batch": batch, "repeat": 1 }));
            theirs.push(answer["seconds"][0].as_f64().unwrap());
        }
        let rate = |times: &Vec<f64>| texts.len() as f64 / median(times.clone());
        let theirs = rate(&theirs);
        let [f32_rate, q8_rate] = [rate(&mine[0]), rate(&mine[1])];
        println!(
            "| {batch} | {theirs:.0} | {f32_rate:.0} | {:.2}× | {q8_rate:.0} | {:.2}× |",
            f32_rate / theirs,
            q8_rate / theirs
        );
    }
    peer.stop();
    for ((precision, _), w) in ours.iter().zip(worst) {
        println!(
            "\nLowest cosine between Athena's {precision:?} vectors and the peer's for the same sentence: {w:.5}"
        );
    }
}

/// Clustered unit vectors (2000 clusters), as in the tests.
fn clustered(n: usize, dims: usize, clusters: usize, seed: u64) -> Vec<Vec<f32>> {
    common::clustered(n, dims, clusters, 0.35, seed)
}

async fn search_at(n: usize) {
    const DIMS: usize = 384;
    const PER_DOC: usize = 100;
    const QUERIES: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), DIMS).unwrap();
    store
        .create_collection(Collection {
            name: "bench".into(),
            access: Access::Guest,
            description: String::new(),
        })
        .await
        .unwrap();
    // Queries come from the same clusters as the data (as questions are
    // about what the documents say), but are not among the stored vectors.
    let mut vectors = clustered(n + QUERIES, DIMS, 2000, 1);
    let queries = vectors.split_off(n);
    let started = Instant::now();
    for (d, group) in vectors.chunks(PER_DOC).enumerate() {
        let chunks = group
            .iter()
            .enumerate()
            .map(|(position, v)| Chunk {
                position,
                heading: String::new(),
                text: format!("chunk {position} of document {d}"),
                vector: v.clone(),
            })
            .collect::<Vec<_>>();
        let doc = Document {
            id: format!("doc-{d}"),
            collection: "bench".into(),
            source: format!("doc-{d}.txt"),
            title: String::new(),
            format: Format::Text,
            bytes: 0,
            sha256: String::new(),
            chunks: chunks.len(),
            updated: 0,
        };
        store.put_document(doc, chunks).await.unwrap();
    }
    let stored = started.elapsed().as_secs_f64();
    while !store.indexed() {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let indexed = started.elapsed().as_secs_f64();
    let names = vec!["bench".to_owned()];
    let (mut graph_ms, mut exact_ms) = (Vec::new(), Vec::new());
    let (mut found, mut wanted) = (0usize, 0usize);
    for q in &queries {
        let t = Instant::now();
        let hits = store.search(&names, q, 10, -1.0).await.unwrap();
        graph_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let mut all: Vec<(f32, usize)> = vectors
            .iter()
            .enumerate()
            .map(|(i, v)| (dot(q, v), i))
            .collect();
        all.select_nth_unstable_by(9, |a, b| b.0.total_cmp(&a.0));
        exact_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let truth: Vec<String> = all[..10]
            .iter()
            .map(|&(_, i)| format!("{}/{}", i / PER_DOC, i % PER_DOC))
            .collect();
        found += hits
            .iter()
            .filter(|h| {
                let d = h.document.trim_start_matches("doc-");
                truth.contains(&format!("{d}/{}", h.position))
            })
            .count();
        wanted += 10;
    }
    graph_ms.sort_by(f64::total_cmp);
    exact_ms.sort_by(f64::total_cmp);
    println!(
        "| {n} | {:.3} | {:.3} | {:.3} | {:.2} | {:.3} | {:.1} s ({:.0}/s) | {:.1} s |",
        percentile(&graph_ms, 0.5),
        percentile(&graph_ms, 0.99),
        percentile(&exact_ms, 0.5),
        percentile(&exact_ms, 0.5) / percentile(&graph_ms, 0.5),
        found as f64 / wanted as f64,
        stored,
        n as f64 / stored,
        indexed,
    );
}

#[tokio::main]
async fn main() {
    let threads = env_or("ATHENA_BENCH_THREADS", 2);
    let runs = env_or("ATHENA_BENCH_RUNS", 5);
    let only = std::env::var("ATHENA_BENCH_ONLY").unwrap_or_default();
    if only.is_empty() || only == "embed" {
        embeddings(threads, runs);
    }
    if only.is_empty() || only == "search" {
        println!("\n## Search: embedded store, 384 dimensions, top 10, 1000 queries (ms)\n");
        println!(
            "| vectors | p50 | p99 | exact scan p50 | exact ÷ index | recall@10 | stored in (rate) | searchable by graph after |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        for n in [10_000, 100_000] {
            search_at(n).await;
        }
    }
}
