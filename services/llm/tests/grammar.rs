//! Constrained decoding against a real vocabulary (SmolLM2's 49 k tokens):
//! the mask made by walking all tokens at once must say for every token
//! what checking it alone says, at structural places and inside strings.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::sync::Arc;
use std::time::Instant;

use athena_llm::engine::grammar::{Matcher, TokenSet};
use athena_llm::engine::json_schema::{Tool, ToolMode, schema_grammar, tool_grammar};
use athena_llm::engine::tokenizer::Tokenizer;
use candle_core::quantized::gguf_file::Content;
use serde_json::json;

fn tokenizer() -> Tokenizer {
    let mut file = std::fs::File::open(common::gguf("smollm2-135m-instruct")).unwrap();
    Tokenizer::from_gguf(&Content::read(&mut file).unwrap()).unwrap()
}

fn token_set(tok: &Tokenizer) -> TokenSet {
    let end = (0..tok.vocab_size() as u32)
        .filter(|&t| tok.is_end_of_generation(t))
        .collect();
    TokenSet::new(
        tok.vocab_size(),
        |t| Some(tok.token_bytes(t).into_owned()),
        end,
    )
}

/// At each prefix of `answer`: the mask equals the per-token check, and
/// the answer's own next bytes are allowed.
fn mask_agrees(tok: &Tokenizer, tokens: &TokenSet, mut m: Matcher, answer: &str, cuts: &[usize]) {
    let mut at = 0;
    for &cut in cuts {
        if cut > at {
            assert!(
                m.advance(&answer.as_bytes()[at..cut]),
                "{answer:?} up to {cut}"
            );
        }
        at = cut;
        let started = Instant::now();
        let mask = m.allowed(tokens);
        let took = started.elapsed();
        let mut allowed = 0;
        for id in 0..tok.vocab_size() as u32 {
            let alone = m.allows(tokens, id, &tok.token_bytes(id));
            assert_eq!(
                mask[id as usize],
                alone,
                "token {id} {:?} after {:?}",
                tok.piece(id),
                &answer[..cut]
            );
            allowed += usize::from(alone);
        }
        println!(
            "after {:?}: {allowed} tokens allowed, mask in {took:?}",
            &answer[..cut]
        );
        assert!(allowed > 0);
    }
    assert!(m.advance(&answer.as_bytes()[at..]));
    assert!(m.can_end());
}

#[test]
fn masks_agree_with_token_by_token_checks() {
    let tok = tokenizer();
    let tokens = token_set(&tok);
    let schema = json!({
        "type": "object",
        "properties": {
            "action": { "enum": ["turn_on", "turn_off", "toggle"] },
            "room": { "type": "string" },
            "brightness": { "type": "integer", "minimum": 0, "maximum": 100 }
        },
        "required": ["action", "room"]
    });
    let grammar = Arc::new(schema_grammar(&schema).unwrap());
    let answer = r#"{"action": "turn_on", "room": "kitchen \u00e9", "brightness": 75}"#;
    mask_agrees(
        &tok,
        &tokens,
        Matcher::new(grammar),
        answer,
        &[0, 1, 11, 13, 32, 40, 60, 61],
    );

    let tools = [Tool {
        name: "set_light".into(),
        parameters: json!({"type": "object", "properties": {"on": {"type": "boolean"}}, "required": ["on"]}),
    }];
    let grammar = Arc::new(tool_grammar(&tools, ToolMode::Auto, true).unwrap());
    mask_agrees(
        &tok,
        &tokens,
        Matcher::new(grammar.clone()),
        "Sure, here it is.",
        &[0, 3],
    );
    let call = r#"<tool_call>{"name": "set_light", "arguments": {"on": true}}</tool_call>"#;
    mask_agrees(&tok, &tokens, Matcher::new(grammar), call, &[5, 11, 30, 55]);
}
