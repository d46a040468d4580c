//! The transformer on the real GGUF models of the catalog: greedy answers
//! against candle's own implementations of the same architectures
//! (candle-transformers), and against itself: all at once, token by token
//! with the cache, and from forked caches.

#![allow(clippy::unwrap_used)]

mod common;

use common::gguf;

use athena_llm::engine::model::Model;
use athena_llm::engine::tokenizer::Tokenizer;
use candle_core::{Device, Tensor};

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .unwrap()
        .0
}

/// Whether two sets of logits pick the same token, or tokens that are
/// within `tol` of each other's best in both (a near tie, which rounding
/// in different kernels may tip either way).
fn same_choice(a: &[f32], b: &[f32], tol: f32) -> bool {
    let (i, j) = (argmax(a), argmax(b));
    i == j || (a[j] >= a[i] - tol && b[i] >= b[j] - tol)
}

/// Greedy tokens after `prompt` from candle-transformers (llama, qwen2),
/// with the logits each was chosen from.
fn reference_greedy(name: &str, prompt: &[u32], n: usize) -> Vec<(u32, Vec<f32>)> {
    use candle_transformers::models::{quantized_llama, quantized_qwen2};
    let path = gguf(name);
    let mut file = std::fs::File::open(&path).unwrap();
    let content = candle_core::quantized::gguf_file::Content::read(&mut file).unwrap();
    let arch = content.metadata["general.architecture"]
        .to_string()
        .unwrap()
        .clone();
    type Forward = Box<dyn FnMut(&[u32], usize) -> Vec<f32>>;
    let mut forward: Forward = match arch.as_str() {
        "llama" => {
            let mut m =
                quantized_llama::ModelWeights::from_gguf(content, &mut file, &Device::Cpu).unwrap();
            Box::new(move |t: &[u32], pos: usize| {
                let x = Tensor::new(t, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
                m.forward(&x, pos)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap()
            })
        }
        "qwen2" => {
            let mut m =
                quantized_qwen2::ModelWeights::from_gguf(content, &mut file, &Device::Cpu).unwrap();
            Box::new(move |t: &[u32], pos: usize| {
                let x = Tensor::new(t, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
                m.forward(&x, pos)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap()
            })
        }
        other => panic!("no reference for {other}"),
    };
    let mut logits = forward(prompt, 0);
    let mut out = Vec::new();
    for i in 0..n {
        let t = argmax(&logits) as u32;
        let next = forward(&[t], prompt.len() + i);
        out.push((t, std::mem::replace(&mut logits, next)));
    }
    out
}

/// Our greedy tokens after `prompt`, and the prompt's logits.
fn greedy(model: &Model, prompt: &[u32], n: usize) -> (Vec<u32>, Vec<f32>) {
    let mut cache = model.new_cache().unwrap();
    let first = model.forward(prompt, &mut cache).unwrap();
    let mut logits = first.clone();
    let mut out = Vec::new();
    for _ in 0..n {
        let t = argmax(&logits) as u32;
        out.push(t);
        logits = model.forward(&[t], &mut cache).unwrap();
    }
    (out, first)
}

/// A chat prompt in the model's own format, tokenized by its tokenizer.
fn prompt(name: &str, model_content: &candle_core::quantized::gguf_file::Content) -> Vec<u32> {
    let tok = Tokenizer::from_gguf(model_content).unwrap();
    let text = if name.starts_with("gemma") {
        "The three primary colours are"
    } else {
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    };
    tok.encode(text, true, true)
}

fn check(name: &str, reference: bool) {
    let (model, content) = Model::load(&gguf(name), 512, &Device::Cpu).unwrap();
    let tokens = prompt(name, &content);
    let (ours, whole) = greedy(&model, &tokens, 12);
    let tok = Tokenizer::from_gguf(&content).unwrap();
    eprintln!("{name}: {:?}", tok.decode(&ours));
    if reference {
        // Led along candle's own greedy answer, up to the end of its turn,
        // every step picks what candle picks (but for near ties).
        let theirs = reference_greedy(name, &tokens, 12);
        let end = theirs
            .iter()
            .position(|(t, _)| tok.is_end_of_generation(*t))
            .map_or(theirs.len(), |p| p + 1);
        assert!(end > 3, "{name}: {theirs:?}");
        let mut cache = model.new_cache().unwrap();
        let mut logits = model.forward(&tokens, &mut cache).unwrap();
        for (step, (t, reference)) in theirs[..end].iter().enumerate() {
            let scale = reference.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            assert!(
                same_choice(&logits, reference, 0.01 * scale),
                "{name} step {step}: {} where candle has {t}",
                argmax(&logits)
            );
            assert!(
                max_diff(&logits, reference) < 0.08 * scale,
                "{name} step {step}"
            );
            logits = model.forward(&[*t], &mut cache).unwrap();
        }
    }

    // Token by token with the cache: the same logits as all at once.
    let mut cache = model.new_cache().unwrap();
    let mut last = Vec::new();
    for t in &tokens {
        last = model.forward(&[*t], &mut cache).unwrap();
    }
    assert_eq!(cache.len(), tokens.len());
    // One token at a time, activations are quantized per row by other
    // kernels than in a batch (as in llama.cpp): close, not identical.
    let scale = whole.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let diff = max_diff(&whole, &last);
    assert!(
        diff < 0.08 * scale,
        "{name}: one by one differs by {diff} (scale {scale})"
    );
    assert!(
        same_choice(&whole, &last, 0.01 * scale),
        "{name}: one by one"
    );

    // A prefix computed once, forked twice, continued differently.
    let split = tokens.len() / 2;
    let mut prefix = model.new_cache().unwrap();
    model.forward(&tokens[..split], &mut prefix).unwrap();
    let mut a = prefix.fork(split).unwrap();
    let from_fork = model.forward(&tokens[split..], &mut a).unwrap();
    let diff = max_diff(&whole, &from_fork);
    assert!(diff < 0.08 * scale, "{name}: from a fork differs by {diff}");
    assert!(
        same_choice(&whole, &from_fork, 0.01 * scale),
        "{name}: from a fork"
    );
    let mut b = prefix.fork(split).unwrap();
    model.forward(&[5, 6], &mut b).unwrap();
    let mut c = prefix.fork(split).unwrap();
    let again = model.forward(&tokens[split..], &mut c).unwrap();
    assert_eq!(from_fork, again, "the prefix was not disturbed");
}

#[test]
fn llama_smollm2_answers_as_candle_does() {
    check("smollm2-135m-instruct", true);
}

/// candle-transformers' gemma3 uses SiLU where Gemma 3 uses GELU, so it is
/// no reference: only the model's consistency with itself is checked here.
#[test]
fn gemma3_is_consistent() {
    check("gemma-3-270m", false);
}

#[test]
fn qwen2_answers_as_candle_does() {
    check("qwen2.5-coder-0.5b-instruct", true);
}

#[test]
fn the_context_is_a_limit() {
    let (model, _) = Model::load(&gguf("smollm2-135m-instruct"), 8, &Device::Cpu).unwrap();
    let mut cache = model.new_cache().unwrap();
    model.forward(&[1, 2, 3, 4, 5, 6], &mut cache).unwrap();
    let err = model.forward(&[7, 8, 9], &mut cache).unwrap_err();
    assert!(err.to_string().contains("do not fit"), "{err}");
    assert_eq!(cache.len(), 6, "a refused step leaves the cache as it was");
}
