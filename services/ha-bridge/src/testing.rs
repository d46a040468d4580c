//! A real Home Assistant for tests (feature `testing`): PyPI
//! `homeassistant` with its `demo` integration, from the venv that
//! `scripts/python-env.sh ha-venv tests/ha-requirements.txt` makes
//! (`ATHENA_HA_PYTHON` names its python, else it is looked for in the
//! cache). It runs on a free port with its config in a directory the test
//! owns, and is killed when dropped. Being test support, it panics with
//! advice rather than returning errors.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::client::Session;
use crate::config::{Config, Secret};

/// A Home Assistant process on a config directory.
#[derive(Debug)]
pub struct HomeAssistant {
    /// Its config directory (`configuration.yaml`, storage, `hass.out`).
    dir: PathBuf,
    /// Where its HTTP and WebSocket APIs listen.
    port: u16,
    /// The process while it runs.
    child: Option<Child>,
}

impl HomeAssistant {
    /// The venv's python: `ATHENA_HA_PYTHON`, else
    /// `$ATHENA_CACHE_DIR/ha-venv/bin/python`; panics with advice if absent.
    pub fn python() -> PathBuf {
        if let Ok(python) = std::env::var("ATHENA_HA_PYTHON") {
            return python.into();
        }
        let cache = std::env::var("ATHENA_CACHE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/athena")
            });
        let python = cache.join("ha-venv/bin/python");
        assert!(
            python.exists(),
            "no Home Assistant venv at {}: run scripts/python-env.sh ha-venv tests/ha-requirements.txt \
             (scripts/test.sh does) or set ATHENA_HA_PYTHON",
            python.display()
        );
        python
    }

    /// One configured in `dir` (the demo, the APIs, the conversation
    /// agent), on a free port; not started yet.
    pub fn new(dir: &Path) -> Self {
        let port = athena_runtime::free_local_port().expect("a free local port");
        std::fs::write(
            dir.join("configuration.yaml"),
            format!(
                "homeassistant:\n  name: Test\n  latitude: 52.37\n  longitude: 4.89\n  elevation: 0\n  \
                 unit_system: metric\n  time_zone: UTC\n  country: NL\n\
                 http:\n  server_host: 127.0.0.1\n  server_port: {port}\n\
                 api:\nwebsocket_api:\ndemo:\nconversation:\n"
            ),
        )
        .expect("configuration.yaml written");
        Self {
            dir: dir.to_owned(),
            port,
            child: None,
        }
    }

    /// Its base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A bridge config for it with `token` (other fields default).
    pub fn bridge_config(&self, token: &str) -> Config {
        Config {
            url: self.url(),
            token: Secret::from(token),
            ..Config::default()
        }
    }

    /// Starts it and waits (up to 150 s) until its HTTP API answers.
    pub async fn start(&mut self) {
        let log = std::fs::File::create(self.dir.join("hass.out")).expect("hass.out created");
        let child = Command::new(Self::python())
            .args(["-m", "homeassistant", "--skip-pip", "-c"])
            .arg(&self.dir)
            .stdout(log.try_clone().expect("hass.out shared"))
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("Home Assistant started");
        self.child = Some(child);
        let http = reqwest::Client::new();
        for _ in 0..600 {
            if let Ok(r) = http
                .get(format!("{}/api/onboarding", self.url()))
                .send()
                .await
                && r.status().is_success()
            {
                return;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten());
            if let Some(status) = exited {
                let out = std::fs::read_to_string(self.dir.join("hass.out")).unwrap_or_default();
                panic!("Home Assistant exited ({status}):\n{out}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("Home Assistant did not start in 150 s");
    }

    /// Stops it as a service manager would (SIGTERM, so it saves its
    /// storage: tokens made moments before must survive a restart).
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        for _ in 0..300 {
            if child.try_wait().ok().flatten().is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Onboarding's first user, then a long-lived token as a user makes
    /// one. Call once, after the first start.
    pub async fn token(&self) -> String {
        let http = reqwest::Client::new();
        let client_id = format!("{}/", self.url());
        let user: Value = http
            .post(format!("{}/api/onboarding/users", self.url()))
            .json(
                &json!({"client_id": client_id, "name": "Test", "username": "test",
                          "password": "test-password-1", "language": "en"}),
            )
            .send()
            .await
            .expect("onboarding answered")
            .json()
            .await
            .expect("onboarding's JSON");
        let code = user["auth_code"].as_str().expect("an auth code");
        let token: Value = http
            .post(format!("{}/auth/token", self.url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=authorization_code&code={code}&client_id={client_id}"
            ))
            .send()
            .await
            .expect("the token endpoint answered")
            .json()
            .await
            .expect("the token endpoint's JSON");
        let access = token["access_token"].as_str().expect("an access token");
        let long = self
            .command(
                access,
                json!({"type": "auth/long_lived_access_token", "client_name": "athena-test", "lifespan": 30}),
            )
            .await;
        long.as_str().expect("a long-lived token").to_owned()
    }

    /// One WebSocket command (`{"type": ...}`) with `token`; its result.
    pub async fn command(&self, token: &str, command: Value) -> Value {
        let mut session = Session::connect(&self.bridge_config(token), &Secret::from(token))
            .await
            .expect("a WebSocket session");
        match session.command(command.clone()).await {
            Ok(result) => result,
            Err(e) => panic!("{command}: {e}"),
        }
    }

    /// An entity's state as Home Assistant itself reports it (REST), to
    /// check what a test did without going through the bridge.
    pub async fn state(&self, token: &str, entity_id: &str) -> Value {
        reqwest::Client::new()
            .get(format!("{}/api/states/{entity_id}", self.url()))
            .bearer_auth(token)
            .send()
            .await
            .expect("Home Assistant answered")
            .json()
            .await
            .expect("a state")
    }
}

impl Drop for HomeAssistant {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
