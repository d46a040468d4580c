//! `athena serve` as a user runs it: the real binary, real ports, the
//! reference Python `wyoming` client, SIGTERM at the end.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Sections and the env variable that moves each listener.
const HTTP_SECTIONS: [&str; 8] = [
    "ORCHESTRATOR",
    "STT",
    "TTS",
    "ROUTER_SMALL_LLM",
    "ROUTER_LARGE_LLM",
    "RAG_API",
    "HA_BRIDGE",
    "MODE_SERVICE",
];

fn repo_root() -> PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("../..")
}

fn python() -> PathBuf {
    match std::env::var_os("ATHENA_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => panic!(
            "ATHENA_PYTHON is not set: run `scripts/test.sh`, or set it to the python of \
             the venv that `scripts/python-env.sh` prints"
        ),
    }
}

fn free_port() -> u16 {
    athena_runtime::free_local_port().unwrap()
}

/// Kills the server if the test fails before stopping it.
struct Server {
    child: Child,
    http: Vec<u16>,
    wyoming: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Server {
    let wyoming = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_athena"));
    cmd.arg("serve")
        .env(
            "ATHENA__ORCHESTRATOR__WYOMING__URI",
            format!("tcp://127.0.0.1:{wyoming}"),
        )
        .env(
            "ATHENA__STT__WYOMING__URI",
            format!("tcp://127.0.0.1:{}", free_port()),
        )
        .env(
            "ATHENA__TTS__WYOMING__URI",
            format!("tcp://127.0.0.1:{}", free_port()),
        )
        .env("ATHENA__LOG__FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut http = Vec::new();
    for section in HTTP_SECTIONS {
        let port = free_port();
        cmd.env(
            format!("ATHENA__{section}__HTTP"),
            format!("127.0.0.1:{port}"),
        );
        http.push(port);
    }
    let child = cmd.spawn().unwrap();
    Server {
        child,
        http,
        wyoming,
    }
}

/// A minimal HTTP GET; returns the status code and body.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_owned();
    Some((status, body))
}

fn wait_until_healthy(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if matches!(http_get(port, "/healthz"), Some((200, _))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("port {port} never became healthy");
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn serve_answers_the_reference_client_and_drains_on_sigterm() {
    let mut server = start();
    for &port in &server.http {
        wait_until_healthy(port);
    }
    let (status, body) = http_get(server.http[0], "/readyz").unwrap();
    assert_eq!(status, 200, "orchestrator ready: {body}");
    // The small router loads its model (from the catalog) and says so.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, body) = http_get(server.http[3], "/readyz").unwrap();
        if status == 200 {
            assert!(body.contains("SmolLM2"), "{body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "router-small-llm never ready: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, body) = http_get(server.http[3], "/v1/models").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("smollm2-135m-instruct"), "{body}");

    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(python())
        .arg(repo_root().join("tests/interop/describe.py"))
        .args(["--uri", &format!("tcp://127.0.0.1:{}", server.wyoming)])
        .output()
        .unwrap();
    assert!(status.success(), "{}", String::from_utf8_lossy(&stderr));
    let answer: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
    let handle = &answer["info"]["handle"][0];
    assert_eq!(handle["name"], "athena");
    assert_eq!(handle["installed"], true);
    assert_eq!(handle["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(answer["info"]["asr"], serde_json::json!([]));
    assert_eq!(answer["pong"], "athena");

    let (_, metrics) = http_get(server.http[0], "/metrics").unwrap();
    assert!(metrics.contains("wyoming_connections_total"), "{metrics}");

    sigterm(&server.child);
    let deadline = Instant::now() + Duration::from_secs(25);
    let exit = loop {
        if let Some(exit) = server.child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "athena did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut logs = String::new();
    server
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(exit.success(), "exit {exit:?}: {logs}");
    assert!(logs.contains("drained"), "{logs}");
}

#[test]
fn bad_config_exits_with_a_clear_message() {
    let dir = std::env::temp_dir().join(format!("athena-bad-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        ("[orchestrator]\nhtp = \"0.0.0.0:1\"\n", "htp"),
        (
            "[orchestrator.wyoming]\nuri = \"http://nope\"\n",
            "invalid Wyoming URI",
        ),
        ("[stt]\nhttp = \"not an address\"\n", "http"),
        ("this is = = not toml", "invalid configuration"),
    ];
    for (i, (toml, expected)) in cases.iter().enumerate() {
        let file = dir.join(format!("{i}.toml"));
        std::fs::write(&file, toml).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_athena"))
            .arg("--config")
            .arg(&file)
            .arg("serve")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{toml}: {stderr}");
        assert!(stderr.contains(expected), "{toml}: {stderr}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_athena"))
        .args(["--config", "/no/such/athena.toml", "serve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[test]
fn wyoming_over_stdio() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_athena"))
        .args(["serve", "orchestrator"])
        .env("ATHENA__ORCHESTRATOR__WYOMING__URI", "stdio://")
        .env(
            "ATHENA__ORCHESTRATOR__HTTP",
            format!("127.0.0.1:{}", free_port()),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"{\"type\":\"describe\"}\n").unwrap();
    stdin.flush().unwrap();

    // Read one event: a header line, then `data_length` bytes of data.
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut header = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut header).unwrap();
    let header: serde_json::Value = serde_json::from_str(&header).unwrap();
    assert_eq!(header["type"], "info");
    let mut data = vec![0; header["data_length"].as_u64().unwrap() as usize];
    stdout.read_exact(&mut data).unwrap();
    let info: serde_json::Value = serde_json::from_slice(&data).unwrap();
    assert_eq!(info["handle"][0]["name"], "athena");

    // The peer leaves: a stdio program ends with it.
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(25);
    loop {
        if let Some(exit) = child.try_wait().unwrap() {
            assert!(exit.success(), "{exit:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "athena did not exit when stdin closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
