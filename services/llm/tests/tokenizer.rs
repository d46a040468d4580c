//! The GGUF tokenizer on the real models of the catalog, against llama.cpp:
//! `data/golden_tokens.json` holds llama.cpp's token ids for a varied sample
//! of texts (made by `data/golden_tokens.py` with llama-cpp-python).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Instant;

use athena_llm::engine::tokenizer::{StreamDecoder, Tokenizer};
use candle_core::quantized::gguf_file::{self, Content, Value};
use serde::Deserialize;

const SMOLLM: &str = "smollm2-135m-instruct";
const QWEN: &str = "qwen2.5-coder-0.5b-instruct";
const GEMMA: &str = "gemma-3-270m";

#[derive(Deserialize)]
struct Golden {
    llama_cpp_python: String,
    models: Vec<GoldenModel>,
}

#[derive(Deserialize)]
struct GoldenModel {
    name: String,
    /// The GGUF file the ids were made with.
    file: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    /// Whether the text holds special-token texts (of some model).
    special: bool,
    ids: Ids,
}

/// llama.cpp's ids with `add_special` (`bos_`) or not, and `parse_special`
/// (`parse`) or not; those absent are the same as `plain`.
#[derive(Deserialize)]
struct Ids {
    plain: Vec<u32>,
    parse: Option<Vec<u32>>,
    bos_plain: Option<Vec<u32>>,
    bos_parse: Option<Vec<u32>>,
}

static GOLDEN: LazyLock<Golden> =
    LazyLock::new(|| serde_json::from_str(include_str!("data/golden_tokens.json")).unwrap());

fn golden(name: &str) -> &'static GoldenModel {
    GOLDEN.models.iter().find(|m| m.name == name).unwrap()
}

use common::gguf;

fn content(name: &str) -> Content {
    let mut file = std::fs::File::open(gguf(name)).unwrap();
    Content::read(&mut file).unwrap()
}

/// Each model's tokenizer, loaded once for all tests.
fn tokenizer(name: &str) -> Arc<Tokenizer> {
    static CACHE: LazyLock<Mutex<HashMap<String, Arc<Tokenizer>>>> =
        LazyLock::new(Default::default);
    let mut cache = CACHE.lock().unwrap();
    cache
        .entry(name.to_owned())
        .or_insert_with(|| Arc::new(Tokenizer::from_gguf(&content(name)).unwrap()))
        .clone()
}

/// Every golden case of `name`, with every flag combination, must give
/// llama.cpp's ids.
fn matches_llama_cpp(name: &str) {
    let tok = tokenizer(name);
    let model = golden(name);
    let file = gguf(name);
    assert_eq!(
        file.file_name().unwrap().to_str().unwrap(),
        model.file,
        "{name}: the catalog's file is not the one the golden ids were made with"
    );
    let mut checked = 0;
    let mut mismatches = Vec::new();
    for case in &model.cases {
        let ids = &case.ids;
        for (add_special, parse_special, expected) in [
            (false, false, &ids.plain),
            (false, true, ids.parse.as_ref().unwrap_or(&ids.plain)),
            (true, false, ids.bos_plain.as_ref().unwrap_or(&ids.plain)),
            (true, true, ids.bos_parse.as_ref().unwrap_or(&ids.plain)),
        ] {
            let got = tok.encode(&case.text, add_special, parse_special);
            checked += 1;
            if &got != expected {
                mismatches.push(format!(
                    "{:?} add_special={add_special} parse_special={parse_special}\n  \
                     llama.cpp: {expected:?}\n  ours:      {got:?}",
                    case.text
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{name}: {} of {checked} encodings differ from llama-cpp-python {}:\n{}",
        mismatches.len(),
        GOLDEN.llama_cpp_python,
        mismatches.join("\n")
    );
}

#[test]
fn smollm_matches_llama_cpp() {
    matches_llama_cpp(SMOLLM);
}

#[test]
fn qwen_matches_llama_cpp() {
    matches_llama_cpp(QWEN);
}

#[test]
fn gemma_matches_llama_cpp() {
    matches_llama_cpp(GEMMA);
}

#[test]
fn plain_texts_decode_back() {
    for name in [SMOLLM, QWEN, GEMMA] {
        let tok = tokenizer(name);
        for case in golden(name).cases.iter().filter(|c| !c.special) {
            // BOS is a control token: it decodes to nothing.
            for add_special in [false, true] {
                let ids = tok.encode(&case.text, add_special, false);
                assert_eq!(tok.decode(&ids), case.text, "{name}");
            }
        }
    }
}

#[test]
fn token_bytes_stream_to_the_text() {
    for name in [SMOLLM, QWEN, GEMMA] {
        let tok = tokenizer(name);
        for case in golden(name).cases.iter().filter(|c| !c.special) {
            let ids = tok.encode(&case.text, false, false);
            let bytes: Vec<u8> = ids
                .iter()
                .flat_map(|&id| tok.token_bytes(id).into_owned())
                .collect();
            assert_eq!(bytes, case.text.as_bytes(), "{name}: {:?}", case.text);

            let mut decoder = StreamDecoder::new();
            let mut streamed: String = ids.iter().map(|&id| decoder.push_token(&tok, id)).collect();
            streamed.push_str(&decoder.finish());
            assert_eq!(streamed, case.text, "{name}");
        }
    }
}

#[test]
fn chatml_special_tokens() {
    for name in [SMOLLM, QWEN] {
        let tok = tokenizer(name);
        let im_start = tok.token_id("<|im_start|>").unwrap();
        let im_end = tok.token_id("<|im_end|>").unwrap();
        let endoftext = tok.token_id("<|endoftext|>").unwrap();
        assert_eq!(tok.eos(), im_end, "{name}");
        assert!(tok.is_end_of_generation(im_end), "{name}");
        assert!(tok.is_end_of_generation(endoftext), "{name}");
        assert!(!tok.is_end_of_generation(im_start), "{name}");
        assert!(tok.is_control(im_start) && tok.is_control(im_end), "{name}");
        assert_eq!(tok.piece(im_end), "<|im_end|>");
        assert!(tok.token_bytes(im_end).is_empty());
        assert!(!tok.adds_bos(), "{name}");

        let ids = tok.encode("<|im_start|>user\nhi<|im_end|>\n", true, true);
        assert_eq!(ids.first(), Some(&im_start), "{name}");
        assert!(ids.contains(&im_end), "{name}");
        assert_eq!(tok.decode(&ids), "user\nhi\n", "{name}");
        // Without parse_special the control texts are plain text.
        let ids = tok.encode("<|im_start|>user\nhi<|im_end|>\n", true, false);
        assert!(!ids.contains(&im_start) && !ids.contains(&im_end), "{name}");
    }
    let qwen = tokenizer(QWEN);
    // Qwen's <tool_call> is user-defined: matched even in plain text, and
    // printed.
    let tool_call = qwen.token_id("<tool_call>").unwrap();
    assert_eq!(qwen.encode("<tool_call>", false, false), vec![tool_call]);
    assert_eq!(qwen.token_bytes(tool_call).as_ref(), b"<tool_call>");
}

#[test]
fn gemma_special_tokens() {
    let tok = tokenizer(GEMMA);
    let bos = tok.token_id("<bos>").unwrap();
    let eos = tok.token_id("<eos>").unwrap();
    let end_of_turn = tok.token_id("<end_of_turn>").unwrap();
    let start_of_turn = tok.token_id("<start_of_turn>").unwrap();
    assert_eq!(tok.vocab_size(), 262_144);
    assert_eq!(tok.bos(), Some(bos));
    assert_eq!(tok.eos(), eos);
    assert!(tok.adds_bos());
    assert!(tok.is_end_of_generation(eos));
    assert!(tok.is_end_of_generation(end_of_turn));
    assert!(!tok.is_end_of_generation(start_of_turn));
    let ids = tok.encode("<start_of_turn>user\nhi<end_of_turn>\n", true, true);
    assert_eq!(&ids[..2], &[bos, start_of_turn]);
    assert_eq!(tok.decode(&ids), "user\nhi\n");
    // llama.cpp ends generations on `</s>` too (a heuristic for PaddleOCR),
    // which makes it a control token.
    let s = tok.token_id("</s>").unwrap();
    assert!(tok.is_end_of_generation(s) && tok.is_control(s));
    // Byte-fallback tokens print as their byte.
    let byte = tok.token_id("<0x0A>").unwrap();
    assert_eq!(tok.token_bytes(byte).as_ref(), b"\n");
}

#[test]
fn missing_tokenizer_metadata_is_a_clear_error() {
    // A GGUF file with no tokenizer at all.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-tokenizer.gguf");
    let arch = Value::String("llama".to_owned());
    let mut file = std::fs::File::create(&path).unwrap();
    gguf_file::write(&mut file, &[("general.architecture", &arch)], &[]).unwrap();
    drop(file);
    let mut file = std::fs::File::open(&path).unwrap();
    let bare = Content::read(&mut file).unwrap();
    let err = Tokenizer::from_gguf(&bare).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the GGUF metadata has no tokenizer.ggml.model"
    );

    // A real model's metadata, stripped of one part or another.
    let mut content = content(SMOLLM);
    content.metadata.remove("tokenizer.ggml.merges");
    let err = Tokenizer::from_gguf(&content).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the GGUF metadata has no tokenizer.ggml.merges"
    );
    content.metadata.remove("tokenizer.ggml.tokens");
    let err = Tokenizer::from_gguf(&content).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the GGUF metadata has no tokenizer.ggml.tokens"
    );
    content.metadata.insert(
        "tokenizer.ggml.pre".to_owned(),
        Value::String("kimi-k2".to_owned()),
    );
    let err = Tokenizer::from_gguf(&content).unwrap_err().to_string();
    assert!(
        err.starts_with("unsupported pre-tokenizer `kimi-k2` (supported: default,"),
        "{err}"
    );
    content.metadata.insert(
        "tokenizer.ggml.model".to_owned(),
        Value::String("t5".to_owned()),
    );
    let err = Tokenizer::from_gguf(&content).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unsupported tokenizer model `t5` (supported: gpt2, llama)"
    );
}

/// Load and encode times; the bounds hold for optimised builds (run with
/// `cargo test --release -p athena-llm --test tokenizer -- --nocapture
/// timing` to see them).
#[test]
fn timing() {
    let golden = golden(GEMMA);
    let prompt: String = golden
        .cases
        .iter()
        .filter(|c| !c.special)
        .map(|c| c.text.as_str())
        .collect::<Vec<_>>()
        .concat()
        .chars()
        .cycle()
        .take(2000)
        .collect();
    for name in [GEMMA, QWEN] {
        let content = content(name);
        let start = Instant::now();
        let tok = Tokenizer::from_gguf(&content).unwrap();
        let load = start.elapsed();
        tok.encode(&prompt, true, true);
        let start = Instant::now();
        let runs = 20;
        for _ in 0..runs {
            std::hint::black_box(tok.encode(&prompt, true, true));
        }
        let encode = start.elapsed() / runs;
        eprintln!(
            "{name}: from_gguf {load:?}, encode of {} chars {encode:?} ({} tokens)",
            prompt.chars().count(),
            tok.encode(&prompt, true, true).len()
        );
        if !cfg!(debug_assertions) {
            assert!(load.as_secs_f64() < 1.0, "{name}: load took {load:?}");
            assert!(
                encode.as_secs_f64() < 0.010,
                "{name}: encode took {encode:?}"
            );
        }
    }
}
