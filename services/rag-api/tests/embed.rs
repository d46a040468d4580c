//! all-MiniLM-L6-v2 from the model catalog, computed here: paraphrases
//! close, unrelated sentences far, batching and padding change nothing,
//! and inputs beyond the window are refused.

#![allow(clippy::unwrap_used)]

use athena_rag_api::embed::{EmbedError, Embedder, Precision, cosine};

fn embedder(batch: usize) -> Embedder {
    let store = athena_models::Store::from_env().unwrap();
    let dir = store.ensure("all-minilm-l6-v2").unwrap();
    Embedder::load(&dir, false, batch, Precision::default()).unwrap()
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

/// candle's own `BertModel`, mean-pooled over real tokens one input at a
/// time (no padding at all): the reference the packed encoder must match.
fn reference(dir: &std::path::Path, texts: &[&str]) -> Vec<Vec<f32>> {
    use candle_core::{DType, Device, Tensor};
    use candle_transformers::models::bert::{BertModel, Config};
    let config: Config =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let weights = std::fs::read(dir.join("model.safetensors")).unwrap();
    let vb = candle_nn::VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
        .unwrap();
    let model = BertModel::load(vb, &config).unwrap();
    let mut tokenizer = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    tokenizer.with_padding(None);
    texts
        .iter()
        .map(|t| {
            let ids = tokenizer.encode(*t, true).unwrap().get_ids().to_vec();
            let ids = Tensor::new(ids.as_slice(), &Device::Cpu)
                .unwrap()
                .unsqueeze(0)
                .unwrap();
            let types = ids.zeros_like().unwrap();
            let hidden = model.forward(&ids, &types, None).unwrap();
            let mean = hidden.mean(1).unwrap().squeeze(0).unwrap();
            let v: Vec<f32> = mean.to_vec1().unwrap();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter().map(|x| x / norm).collect()
        })
        .collect()
}

#[test]
fn the_packed_encoder_matches_candles_bert() {
    let store = athena_models::Store::from_env().unwrap();
    let dir = store.ensure("all-minilm-l6-v2").unwrap();
    let texts = [
        "Hi.",
        "Where are the spare towels?",
        "The coffee machine takes pods; the descaling tablets are under the sink, next to the dishwasher salt.",
        "Check-out is at eleven in the morning: please leave the keys in the box by the door and close the windows.",
        "wifi",
        "Turn off the lights in the living room when you go to bed, and lock the garden gate.",
    ];
    let want = reference(&dir, &texts);
    for batch in [1, 4, 32] {
        let got = Embedder::load(&dir, false, batch, Precision::F32)
            .unwrap()
            .embed(&texts)
            .unwrap();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            let worst = g
                .iter()
                .zip(w)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-4, "batch {batch}, text {i}: off by {worst}");
        }
    }
}

/// The 8-bit products stay close to the trained model: each vector within
/// a cosine of 0.998 of candle's f32 `BertModel` (0.9990–0.9998 here), at every batch size, and
/// the same vector whatever the batch.
#[test]
fn eight_bit_products_stay_close_to_the_model() {
    let store = athena_models::Store::from_env().unwrap();
    let dir = store.ensure("all-minilm-l6-v2").unwrap();
    let texts = [
        "Hi.",
        "Where are the spare towels?",
        "The coffee machine takes pods; the descaling tablets are under the sink, next to the dishwasher salt.",
        "Check-out is at eleven in the morning: please leave the keys in the box by the door and close the windows.",
        "wifi",
        "What is the wifi password?",
        "Turn off the lights in the living room when you go to bed, and lock the garden gate.",
    ];
    let want = reference(&dir, &texts);
    let one = Embedder::load(&dir, false, 1, Precision::Q8)
        .unwrap()
        .embed(&texts)
        .unwrap();
    for batch in [1, 4, 32] {
        let got = Embedder::load(&dir, false, batch, Precision::Q8)
            .unwrap()
            .embed(&texts)
            .unwrap();
        for (i, ((g, w), o)) in got.iter().zip(&want).zip(&one).enumerate() {
            let c = cosine(g, w);
            assert!(c > 0.998, "batch {batch}, text {i}: cosine {c} to f32");
            let same = cosine(g, o);
            assert!(
                same > 0.99999,
                "batch {batch}, text {i}: cosine {same} to batch 1"
            );
        }
    }
}
