//! The LLM router as OpenAI clients use it: the real `athena` binary with
//! the real SmolLM2 135M Instruct (GGUF, from the catalog), driven by the
//! official `openai` Python client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::Value;

use common::{Service, run_json};

const MODEL: &str = "smollm2-135m-instruct";

fn client(llm: &Service, case: &str, args: &[&str]) -> Value {
    let base = llm.base_url();
    let mut all = vec!["--base-url", base.as_str(), "--model", MODEL, case];
    all.extend_from_slice(args);
    run_json("openai_llm.py", &all)
}

fn start(extra: &[(&str, &str)]) -> Service {
    Service::start_http("router-small-llm", extra)
}

#[test]
fn openai_clients_chat_and_complete() {
    let llm = start(&[]);
    assert_eq!(
        client(&llm, "models", &[])["ids"],
        serde_json::json!([MODEL])
    );

    // A plain question, greedy: the right answer, whole.
    let r = client(&llm, "chat", &["--max-tokens", "40"]);
    let answer = r["content"].as_str().unwrap();
    assert!(answer.contains("Paris"), "{r}");
    assert_eq!(r["finish_reason"], "stop", "{r}");
    let prompt_tokens = r["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(prompt_tokens > 10, "{r}");

    // Streamed: the same answer in pieces, then the counts. The prompt is
    // the same, so its keys and values come from the prefix cache.
    let s = client(&llm, "chat-stream", &["--max-tokens", "40"]);
    assert_eq!(s["content"], r["content"], "{s}");
    assert!(s["chunks"].as_u64().unwrap() > 3, "{s}");
    assert_eq!(s["finish_reason"], "stop");
    assert_eq!(s["usage"]["prompt_tokens"].as_u64().unwrap(), prompt_tokens);
    let cached = s["usage"]["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    assert_eq!(
        cached,
        prompt_tokens - 1,
        "all but the last prompt token reused: {s}"
    );

    // A length limit and a stop text.
    let r = client(&llm, "chat", &["--max-tokens", "3"]);
    assert_eq!(r["finish_reason"], "length");
    assert_eq!(r["usage"]["completion_tokens"], 3);
    let r = client(&llm, "chat", &["--stop", "Paris", "--max-tokens", "40"]);
    assert_eq!(r["finish_reason"], "stop");
    let cut = r["content"].as_str().unwrap();
    assert!(!cut.contains("Paris") && answer.starts_with(cut), "{r}");

    // Sampling with a seed repeats itself; another seed (almost surely) not.
    let sampled = |seed: &str| {
        client(
            &llm,
            "chat",
            &[
                "--text",
                "Write a short poem about the sea.",
                "--temperature",
                "1.0",
                "--seed",
                seed,
                "--max-tokens",
                "30",
            ],
        )["content"]
            .clone()
    };
    // The first request computes the prompt whole; later ones take all but
    // its last token from the prefix cache, whose float rounding differs a
    // little (other kernels for one row than for many). Compare requests
    // made the same way: after a first one.
    let _ = sampled("1");
    let a = sampled("42");
    assert_eq!(a, sampled("42"));
    assert_ne!(a, sampled("7"));

    // Text completion, whole and streamed.
    let c = client(
        &llm,
        "complete",
        &["--text", "The capital of France is", "--max-tokens", "8"],
    );
    assert!(!c["text"].as_str().unwrap().is_empty(), "{c}");
    let cs = client(
        &llm,
        "complete",
        &[
            "--text",
            "The capital of France is",
            "--max-tokens",
            "8",
            "--stream",
        ],
    );
    assert_eq!(cs["text"], c["text"], "{cs}");
}

#[test]
fn structured_output_and_tool_calls_with_the_openai_client() {
    let llm = start(&[]);
    let command = [
        "--system",
        "Turn the request into a smart home command.",
        "--text",
        "Turn on the kitchen lights",
        "--max-tokens",
        "80",
    ];

    // The client's own structured-output helper: a strict JSON Schema from
    // a pydantic model, and the answer parsed back into it.
    let r = client(&llm, "parse", &command);
    assert_eq!(r["finish_reason"], "stop", "{r}");
    assert!(
        ["turn_on", "turn_off"].contains(&r["parsed"]["action"].as_str().unwrap()),
        "{r}"
    );
    assert!(r["parsed"]["room"].is_string(), "{r}");

    // Any JSON object, whole and streamed. (The second run reuses the
    // first one's prompt from the prefix cache, whose float rounding may
    // tip a close choice: the objects are compared for shape, not bytes.)
    let json_args = [
        "--text",
        "Describe a cat in JSON with its name and age.",
        "--max-tokens",
        "200",
    ];
    let whole = client(&llm, "json-object", &json_args);
    assert_eq!(whole["finish_reason"], "stop", "{whole}");
    assert!(whole["parsed"].is_object(), "{whole}");
    let mut streamed_args = json_args.to_vec();
    streamed_args.push("--stream");
    let streamed = client(&llm, "json-object", &streamed_args);
    assert_eq!(streamed["finish_reason"], "stop", "{streamed}");
    assert!(streamed["parsed"].is_object(), "{streamed}");

    // Tool calls: a call is required, then a named one, whole and streamed.
    let tools = |choice: &str, text: &str, stream: bool| {
        let mut args = vec![
            "--tool-choice",
            choice,
            "--text",
            text,
            "--max-tokens",
            "80",
        ];
        if stream {
            args.push("--stream");
        }
        client(&llm, "tools", &args)
    };
    let lights = "Turn on the lights in the kitchen.";
    let r = tools("required", lights, false);
    assert_eq!(r["finish_reason"], "tool_calls", "{r}");
    let call = &r["tool_calls"][0];
    assert_eq!(call["name"], "set_light", "{r}");
    assert!(call["arguments"]["room"].is_string(), "{r}");
    assert!(call["arguments"]["on"].is_boolean(), "{r}");
    let s = tools("required", lights, true);
    assert_eq!(s["finish_reason"], "tool_calls", "{s}");
    assert_eq!(s["tool_calls"][0]["name"], call["name"], "{s}");
    assert!(s["tool_calls"][0]["arguments"]["on"].is_boolean(), "{s}");
    let weather = "What is the weather like in Paris?";
    let r = tools("get_weather", weather, false);
    assert_eq!(r["tool_calls"][0]["name"], "get_weather", "{r}");
    assert!(r["tool_calls"][0]["arguments"]["city"].is_string(), "{r}");

    // `auto` lets the model choose: calls, or text, never both.
    for stream in [false, true] {
        for text in ["Tell me a short joke.", lights] {
            let r = tools("auto", text, stream);
            let calls = r["tool_calls"].as_array().unwrap();
            if r["finish_reason"] == "tool_calls" {
                assert!(!calls.is_empty() && r["content"] == "", "{r}");
                assert!(
                    ["set_light", "get_weather"].contains(&calls[0]["name"].as_str().unwrap()),
                    "{r}"
                );
            } else {
                assert!(calls.is_empty() && r["content"] != "", "{r}");
            }
        }
    }
    // `none`: text only.
    let r = tools("none", lights, false);
    assert_eq!(r["tool_calls"], serde_json::json!([]), "{r}");
    assert!(!r["content"].as_str().unwrap().is_empty(), "{r}");

    // The call's result sent back: the answer after it is text.
    let r = client(
        &llm,
        "tool-turn",
        &[
            "--tool-choice",
            "get_weather",
            "--text",
            weather,
            "--max-tokens",
            "60",
        ],
    );
    assert_eq!(r["first"][0]["name"], "get_weather", "{r}");
    assert_eq!(r["tool_calls"], serde_json::json!([]), "{r}");
    assert!(!r["content"].as_str().unwrap().is_empty(), "{r}");
}

#[test]
fn bad_requests_get_openai_errors_and_abandoned_streams_free_their_place() {
    // One place, so a sequence that kept generating would hold up the next.
    let llm = start(&[("ATHENA__ROUTER_SMALL_LLM__PARALLEL", "1")]);
    let error = |bad: &str| client(&llm, "error", &["--bad", bad]);
    for (bad, status, code) in [
        ("unknown-model", 404, "model_not_found"),
        ("invalid-json", 400, "invalid_json"),
        ("negative-max-tokens", 400, "invalid_request"),
        ("too-long", 400, "context_length_exceeded"),
        ("n", 400, "invalid_request"),
        ("unsupported-schema", 400, "unsupported_schema"),
        ("unknown-tool", 400, "invalid_request"),
        ("out-of-bounds", 422, "schema_violation"),
        ("no-messages", 400, "invalid_request"),
    ] {
        let e = error(bad);
        assert_eq!(e["status"], status, "{bad}: {e}");
        assert_eq!(e["code"], code, "{bad}: {e}");
        assert!(!e["message"].as_str().unwrap().is_empty(), "{bad}: {e}");
    }

    // A client that leaves mid-stream: its sequence is dropped at its next
    // step, and the next request is served at once.
    let r = client(&llm, "abandon", &["--chunks", "3", "--max-tokens", "3000"]);
    assert_eq!(r["chunks_read"], 3);
    let r = client(&llm, "chat", &["--max-tokens", "10"]);
    assert!(!r["content"].as_str().unwrap().is_empty(), "{r}");
    let metrics = std::process::Command::new("curl")
        .args(["-sf", &format!("{}/metrics", llm.base_url())])
        .output()
        .unwrap();
    let metrics = String::from_utf8_lossy(&metrics.stdout);
    let cancelled = metrics
        .lines()
        .find(|l| l.starts_with("llm_requests_cancelled_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(cancelled >= 1.0, "{metrics}");
}
