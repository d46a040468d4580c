//! What the service tests share: the reference Python peers, free ports,
//! a service started from the real `athena` binary, one at a time, and the
//! whole pipeline in one process ([`athena`]).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod athena;
pub mod satellite;

pub fn repo_root() -> PathBuf {
    std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    )
    .join("../..")
}

pub fn python() -> PathBuf {
    PathBuf::from(std::env::var_os("ATHENA_PYTHON").expect(
        "ATHENA_PYTHON is not set: run scripts/test.sh, or set it to the venv python that scripts/python-env.sh prints",
    ))
}

/// Runs a Python peer program; returns the JSON it printed.
pub fn run_json(script: &str, args: &[&str]) -> Value {
    let out = Command::new(python())
        .arg(repo_root().join("tests/interop").join(script))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub fn free_port() -> u16 {
    athena_runtime::free_local_port().unwrap()
}

/// One service at a time: inference uses both cores of a small machine,
/// and several services spinning their thread pools side by side slow
/// each other down by orders of magnitude.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// One service of the real `athena` binary, with its HTTP and Wyoming
/// ports; killed when dropped.
pub struct Service {
    child: Child,
    pub http: u16,
    pub wyoming: u16,
    _turn: std::sync::MutexGuard<'static, ()>,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    /// Starts `athena serve <name>` (config section `name`) and waits
    /// until it is ready.
    pub fn start(name: &str, extra_env: &[(&str, &str)]) -> Self {
        Self::start_with(name, true, extra_env)
    }

    /// Starts a service that has no Wyoming listener (HTTP only).
    pub fn start_http(name: &str, extra_env: &[(&str, &str)]) -> Self {
        Self::start_with(name, false, extra_env)
    }

    fn start_with(name: &str, has_wyoming: bool, extra_env: &[(&str, &str)]) -> Self {
        let turn = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (http, wyoming) = (free_port(), free_port());
        let section = name.to_uppercase().replace('-', "_");
        let mut command = Command::new(env!("CARGO_BIN_EXE_athena"));
        command.args(["serve", name]).env(
            format!("ATHENA__{section}__HTTP"),
            format!("127.0.0.1:{http}"),
        );
        if has_wyoming {
            command.env(
                format!("ATHENA__{section}__WYOMING__URI"),
                format!("tcp://127.0.0.1:{wyoming}"),
            );
        }
        let child = command
            .envs(extra_env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let service = Self {
            child,
            http,
            wyoming,
            _turn: turn,
        };
        service.wait_ready(name);
        service
    }

    fn wait_ready(&self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            let ready = std::process::Command::new("curl")
                .args(["-sf", &format!("http://127.0.0.1:{}/readyz", self.http)])
                .output()
                .is_ok_and(|o| o.status.success());
            if ready {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("{name} never became ready");
    }

    /// Its Wyoming URI.
    pub fn uri(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.wyoming)
    }

    /// Its HTTP base URL.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }
}
