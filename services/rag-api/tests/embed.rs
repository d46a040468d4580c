//! all-MiniLM-L6-v2 from the model catalog, computed here: paraphrases
//! close, unrelated sentences far, batching and padding change nothing,
//! and inputs beyond the window are refused.

#![allow(clippy::unwrap_used)]

use athena_rag_api::embed::{EmbedError, Embedder, cosine};

fn embedder(batch: usize) -> Embedder {
    let store = athena_models::Store::from_env().unwrap();
    let dir = store.ensure("all-minilm-l6-v2").unwrap();
    Embedder::load(&dir, false, batch).unwrap()
}

#[test]
fn meanings_are_near_and_far() {
    let e = embedder(8);
    assert_eq!(e.dims(), 384);
    let v = e
        .embed(&[
            "A man is eating food.",
            "A man is eating a piece of bread.",
            "The new movie is awesome.",
            "The wifi password is on the fridge.",
        ])
        .unwrap();
    for x in &v {
        let norm: f32 = x.iter().map(|a| a * a).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
    }
    let paraphrase = cosine(&v[0], &v[1]);
    let unrelated = cosine(&v[0], &v[2]);
    assert!(paraphrase > 0.6, "paraphrase {paraphrase}");
    assert!(unrelated < 0.2, "unrelated {unrelated}");
    let q = e.embed(&["what's the wifi password?"]).unwrap();
    let best = (0..4)
        .max_by(|&a, &b| cosine(&q[0], &v[a]).total_cmp(&cosine(&q[0], &v[b])))
        .unwrap();
    assert_eq!(best, 3);
}

#[test]
fn batches_and_padding_change_nothing() {
    let texts = [
        "short",
        "a somewhat longer sentence about the coffee machine in the kitchen",
        "towels are in the hall cupboard",
    ];
    let one_by_one: Vec<Vec<f32>> = texts
        .iter()
        .map(|t| embedder(1).embed(&[t]).unwrap().remove(0))
        .collect();
    let batched = embedder(32).embed(&texts).unwrap();
    for (a, b) in one_by_one.iter().zip(&batched) {
        assert!(cosine(a, b) > 0.9999, "{}", cosine(a, b));
    }
}

#[test]
fn bad_inputs_are_refused() {
    let e = embedder(4);
    assert!(matches!(e.embed(&["ok", "  "]), Err(EmbedError::Empty(1))));
    let long = "word ".repeat(400);
    match e.embed(&["fine", &long]) {
        Err(EmbedError::TooLong { index, tokens, max }) => {
            assert_eq!((index, max), (1, 256));
            assert!(tokens > 256);
        }
        other => panic!("{other:?}"),
    }
}
