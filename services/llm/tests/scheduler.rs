//! The scheduler with a real model (SmolLM2 135M): requests share the
//! model fairly, a full queue refuses, deadlines end requests, a repeated
//! prompt is served from the prefix cache, and grammars hold.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use athena_llm::engine::json_schema::schema_grammar;
use athena_llm::engine::model::Model;
use athena_llm::engine::sampler::SamplingParams;
use athena_llm::engine::scheduler::{
    EngineError, Event, FinishReason, Job, Scheduler, SchedulerConfig, Usage, deadline_in,
};
use athena_llm::engine::tokenizer::Tokenizer;
use candle_core::Device;
use tokio::sync::mpsc::UnboundedReceiver;

fn scheduler(parallel: usize, queue: usize) -> (Scheduler, Arc<Tokenizer>) {
    let (model, content) =
        Model::load(&common::gguf("smollm2-135m-instruct"), 1024, &Device::Cpu).unwrap();
    let tokenizer = Arc::new(Tokenizer::from_gguf(&content).unwrap());
    let config = SchedulerConfig {
        parallel,
        queue,
        prefill_chunk: 64,
        prefix_cache: 2,
    };
    (
        Scheduler::start(Arc::new(model), tokenizer.clone(), config),
        tokenizer,
    )
}

fn job(tokenizer: &Tokenizer, text: &str, max_tokens: usize) -> Job {
    Job {
        prompt: tokenizer.encode(text, true, false),
        max_tokens,
        sampling: SamplingParams {
            temperature: 0.0,
            ..SamplingParams::default()
        },
        stop: Vec::new(),
        grammar: None,
        deadline: deadline_in(600),
    }
}

/// Everything a request hears: its text and how it ended.
fn drain(
    rx: &mut UnboundedReceiver<Event>,
) -> (String, Result<(FinishReason, Usage), EngineError>) {
    let mut text = String::new();
    while let Some(event) = rx.blocking_recv() {
        match event {
            Event::Text(t) => text.push_str(&t),
            Event::Done { reason, usage } => return (text, Ok((reason, usage))),
            Event::Failed(e) => return (text, Err(e)),
        }
    }
    (text, Err(EngineError::Stopped))
}

const STORY: &str = "Once upon a time, in a small village by the sea,";

#[test]
fn a_short_request_is_not_held_up_by_a_long_one() {
    let (s, tok) = scheduler(2, 4);
    let mut long = s.submit(job(&tok, STORY, 100)).unwrap();
    // The long one is under way before the short one comes.
    assert!(matches!(long.blocking_recv(), Some(Event::Text(_))));
    let mut short = s.submit(job(&tok, "The capital of France is", 5)).unwrap();
    let (_, end) = drain(&mut short);
    let (reason, usage) = end.unwrap();
    assert_eq!((reason, usage.completion_tokens), (FinishReason::Length, 5));
    // The long one is still going: the two took turns.
    let mut still_going = 0;
    while let Ok(event) = long.try_recv() {
        assert!(matches!(event, Event::Text(_)), "{event:?}");
        still_going += 1;
    }
    let (_, end) = drain(&mut long);
    let (_, usage) = end.unwrap();
    assert!(usage.completion_tokens > 5 + still_going, "{usage:?}");
}

#[test]
fn a_full_queue_refuses_and_deadlines_end_requests() {
    let (s, tok) = scheduler(1, 1);
    let mut running = s.submit(job(&tok, STORY, 200)).unwrap();
    assert!(matches!(running.blocking_recv(), Some(Event::Text(_))));
    let mut queued = s.submit(job(&tok, STORY, 2)).unwrap();
    assert!(matches!(
        s.submit(job(&tok, STORY, 2)),
        Err(EngineError::Busy(1))
    ));
    drop(running); // cancelled: the queued one gets the place
    let (_, end) = drain(&mut queued);
    assert_eq!(end.unwrap().0, FinishReason::Length);

    let mut late = job(&tok, STORY, 500);
    late.deadline = Instant::now() + Duration::from_millis(200);
    let (_, end) = drain(&mut s.submit(late).unwrap());
    assert_eq!(end, Err(EngineError::Timeout));
}

#[test]
fn a_repeated_prompt_comes_from_the_prefix_cache() {
    let (s, tok) = scheduler(1, 4);
    let first = job(&tok, STORY, 8);
    let n = first.prompt.len();
    let (_, end) = drain(&mut s.submit(first).unwrap());
    assert_eq!(end.unwrap().1.cached_tokens, 0);
    // The same prompt, then a longer one starting with it.
    let (_, end) = drain(&mut s.submit(job(&tok, STORY, 8)).unwrap());
    assert_eq!(end.unwrap().1.cached_tokens, n - 1);
    let longer = format!("{STORY} there lived an old fisherman");
    let (_, end) = drain(&mut s.submit(job(&tok, &longer, 8)).unwrap());
    assert_eq!(end.unwrap().1.cached_tokens, n);
}

#[test]
fn a_grammar_holds_whatever_the_sampler_wants() {
    let (s, tok) = scheduler(1, 4);
    let schema = serde_json::json!({
        "type": "object",
        "properties": {
            "colour": { "enum": ["red", "green", "blue"] },
            "count": { "type": "integer", "minimum": 1, "maximum": 9 }
        },
        "required": ["colour", "count"],
        "additionalProperties": false
    });
    let grammar = Arc::new(schema_grammar(&schema).unwrap());
    for seed in 0..4 {
        // Hot sampling over a prompt that has nothing to do with JSON.
        let mut j = job(&tok, STORY, 200);
        j.sampling = SamplingParams {
            temperature: 1.5,
            top_k: 0,
            top_p: 1.0,
            seed: Some(seed),
            ..SamplingParams::default()
        };
        j.grammar = Some(grammar.clone());
        let (text, end) = drain(&mut s.submit(j).unwrap());
        assert_eq!(end.unwrap().0, FinishReason::Stop, "{text}");
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(
            ["red", "green", "blue"].contains(&value["colour"].as_str().unwrap()),
            "{text}"
        );
        assert!(
            (1..=9).contains(&value["count"].as_i64().unwrap()),
            "{text}"
        );
    }
}
