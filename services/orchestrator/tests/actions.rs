//! The action stage against real services, no mocks: a real Home Assistant
//! (its demo, [`athena_ha_bridge::testing`]; `ATHENA_HA_PYTHON` names the
//! venv's python), ha-bridge and mode-service running in this process on
//! free ports. Spoken commands go through the built-in English sentences
//! with the house's vocabulary, then [`Actions::handle`]; what they did is
//! read back from Home Assistant itself.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use athena_ha_bridge::testing::HomeAssistant;
use athena_mode_service::SystemClock;
use athena_orchestrator::actions::{Actions, Outcome, Reply, SatelliteLink, Settings};
use athena_orchestrator::backends::{
    BackendError, ErrorKind, HaBridgeClient, Home, ModeClient, ModePolicy,
};
use athena_orchestrator::intent::{IntentSet, SlotLists};
use athena_runtime::http::Readiness;
use athena_store::StoreConfig;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use wyoming::Event;

/// Each call's deadline against the real services (a lock takes 2 s in the
/// demo, and the machine may be busy).
const DEADLINE: Duration = Duration::from_secs(10);

/// ha-bridge serving its API on a port, until stopped.
struct Bridge {
    port: u16,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Bridge {
    /// Starts one for `config` on `port` (0: a free one).
    async fn start(config: athena_ha_bridge::Config, port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let bridge = athena_ha_bridge::Bridge::new(config.clone()).unwrap();
        let shutdown = CancellationToken::new();
        let readiness = Readiness::default();
        let api = athena_ha_bridge::http_api::router(bridge.clone(), config.max_body_bytes);
        let serve = athena_runtime::http::serve_on(
            listener,
            athena_ha_bridge::NAME,
            api,
            readiness.clone(),
            shutdown.clone(),
        );
        let follow = bridge.follow(readiness, shutdown.clone());
        let task = tokio::spawn(async move {
            let (served, followed) = tokio::join!(serve, follow);
            served.unwrap();
            followed.unwrap();
        });
        Self {
            port,
            shutdown,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits until it is in sync with Home Assistant (or says why not,
    /// when `connected` is false).
    async fn until_connected(&self, connected: bool) {
        let http = reqwest::Client::new();
        for _ in 0..900 {
            let status: Value = match http.get(format!("{}/v1/status", self.url())).send().await {
                Ok(r) => r.json().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            };
            let done = if connected {
                status["connected"] == true
            } else {
                status["connected"] == false && status["error"].is_string()
            };
            if done {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("ha-bridge never got connected = {connected}");
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap();
    }
}

/// mode-service on a free port, its state in `dir`.
struct ModeService {
    url: String,
    shutdown: CancellationToken,
}

impl ModeService {
    /// Starts one with `policy` (YAML; none: the built-in policy) and
    /// waits until it is ready.
    async fn start(dir: &std::path::Path, policy: Option<&str>) -> Self {
        let policy_file = policy.map(|yaml| {
            let path = dir.join("policy.yaml");
            std::fs::write(&path, yaml).unwrap();
            path
        });
        let config = athena_mode_service::Config {
            store: StoreConfig {
                redis_url: None,
                dir: Some(dir.join("state")),
            },
            policy_file,
            ..athena_mode_service::Config::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let house = athena_mode_service::House::new(&config, Arc::new(SystemClock)).unwrap();
        let shutdown = CancellationToken::new();
        let readiness = Readiness::default();
        let api = athena_mode_service::http_api::router(house.clone(), config.max_body_bytes);
        let serve = athena_runtime::http::serve_on(
            listener,
            athena_mode_service::NAME,
            api,
            readiness.clone(),
            shutdown.clone(),
        );
        let background =
            athena_mode_service::keep_current(house, config, readiness, shutdown.clone());
        tokio::spawn(async move { tokio::join!(serve, background) });
        let service = Self { url, shutdown };
        for _ in 0..400 {
            if let Ok(r) = reqwest::get(format!("{}/readyz", service.url)).await
                && r.status().is_success()
            {
                return service;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("mode-service did not become ready");
    }

    /// Sets the mode to `mode` for an hour.
    async fn set_mode(&self, mode: &str) {
        let r = reqwest::Client::new()
            .put(format!("{}/v1/mode/override", self.url))
            .json(&json!({"mode": mode, "minutes": 60}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
}

impl Drop for ModeService {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A satellite's link, and what it is sent.
fn satellite(id: &str) -> (SatelliteLink, mpsc::Receiver<Event>) {
    let (events, received) = mpsc::channel(16);
    let link = SatelliteLink {
        id: id.into(),
        events,
    };
    (link, received)
}

/// The stage over clients of the services at `bridge` and `mode`; the
/// vocabulary is read again for every command.
fn actions(bridge: &str, mode: &str, deadline: Duration) -> Actions {
    let home: Arc<dyn Home> = Arc::new(HaBridgeClient::new(bridge, deadline).unwrap());
    let policy: Arc<dyn ModePolicy> = Arc::new(ModeClient::new(mode, deadline).unwrap());
    let settings = Settings {
        vocabulary_max_age: Duration::ZERO,
        vocabulary_retry: Duration::ZERO,
        time_zone: Some(chrono_tz::UTC),
        ..Settings::default()
    };
    Actions::with_settings(home, policy, settings)
}

/// A command as spoken: recognized with the house's vocabulary, then run.
async fn say(actions: &Actions, link: &SatelliteLink, text: &str) -> Reply {
    let lists = actions.vocabulary().await.unwrap();
    say_with(actions, link, text, &lists).await
}

async fn say_with(actions: &Actions, link: &SatelliteLink, text: &str, lists: &SlotLists) -> Reply {
    let intents = IntentSet::english().unwrap();
    let Some(command) = intents.recognize(text, lists) else {
        panic!("{text:?} was not understood");
    };
    actions.handle(&command, link).await
}

fn reply(speech: &str, outcome: Outcome) -> Reply {
    Reply {
        speech: speech.into(),
        outcome,
    }
}

fn denied(rule: &str) -> Outcome {
    Outcome::Denied { rule: rule.into() }
}

/// The next event sent to a satellite, within `secs`.
async fn next_event(events: &mut mpsc::Receiver<Event>, secs: u64) -> Event {
    tokio::time::timeout(Duration::from_secs(secs), events.recv())
        .await
        .expect("an event in time")
        .expect("the channel open")
}

/// The built-in policy, with guests also allowed to ask the mode and
/// limited to half brightness.
fn guest_policy() -> String {
    let policy = athena_mode_service::policy::DEFAULT_YAML;
    let policy = policy.replacen(
        "    - HassGetState\n",
        "    - HassGetState\n    - AthenaGetMode\n",
        1,
    );
    let limited = policy.replacen(
        "    climate.temperature: { min: 18, max: 24 }\n",
        "    climate.temperature: { min: 18, max: 24 }\n    light.brightness_pct: { max: 50 }\n",
        1,
    );
    assert!(limited.contains("brightness_pct") && limited.contains("AthenaGetMode"));
    limited
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_drive_a_real_home_assistant() {
    let dir = tempfile::tempdir().unwrap();
    let ha_dir = dir.path().join("ha");
    std::fs::create_dir_all(&ha_dir).unwrap();
    let mut ha = HomeAssistant::new(&ha_dir);
    ha.start().await;
    let token = ha.token().await;

    // The demo puts nothing in areas: the kitchen (onboarding made it) gets
    // two lights, a new garden the outside temperature.
    let areas = ha
        .command(&token, json!({"type": "config/area_registry/list"}))
        .await;
    for (area, entities) in [
        (
            "Kitchen",
            &["light.kitchen_lights", "light.ceiling_lights"][..],
        ),
        ("Garden", &["sensor.outside_temperature"][..]),
    ] {
        let known = areas
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == area)
            .cloned();
        let found = match known {
            Some(found) => found,
            None => {
                ha.command(
                    &token,
                    json!({"type": "config/area_registry/create", "name": area}),
                )
                .await
            }
        };
        let area_id = found["area_id"].as_str().unwrap().to_owned();
        for entity in entities {
            ha.command(
                &token,
                json!({"type": "config/entity_registry/update", "entity_id": entity, "area_id": area_id}),
            )
            .await;
        }
    }
    let state = async |entity: &str| ha.state(&token, entity).await;

    // Locks are allowed at the bridge, so that the mode is what decides.
    let bridge_config = athena_ha_bridge::Config {
        deny_domains: vec!["alarm_control_panel".into()],
        reconnect_min_ms: 200,
        reconnect_max_ms: 1000,
        ..ha.bridge_config(&token)
    };
    let bridge = Bridge::start(bridge_config.clone(), 0).await;
    bridge.until_connected(true).await;
    let mode = ModeService::start(dir.path(), Some(&guest_policy())).await;
    let actions = actions(&bridge.url(), &mode.url, DEADLINE);
    let (link, _events) = satellite("kitchen-satellite");
    let lists = actions.vocabulary().await.unwrap();

    // Owner mode: on, off, brightness, by name and by area.
    assert_eq!(
        say(&actions, &link, "Turn off the kitchen lights.").await,
        reply("Turned off the Kitchen Lights.", Outcome::Done)
    );
    assert_eq!(state("light.kitchen_lights").await["state"], "off");
    assert_eq!(
        say(&actions, &link, "Turn on the kitchen lights").await,
        reply("Turned on the Kitchen Lights.", Outcome::Done)
    );
    assert_eq!(state("light.kitchen_lights").await["state"], "on");
    assert_eq!(
        say(&actions, &link, "Set the kitchen lights to 30%.").await,
        reply("Set the Kitchen Lights to 30 percent.", Outcome::Done)
    );
    let brightness = state("light.kitchen_lights").await["attributes"]["brightness"].clone();
    assert!(
        (76..=77).contains(&brightness.as_u64().unwrap()),
        "{brightness}"
    );
    assert_eq!(
        say(&actions, &link, "Is the kitchen light on?").await,
        reply("Yes, the Kitchen Lights are on.", Outcome::Answered)
    );
    assert_eq!(
        say(&actions, &link, "Turn off the lights in the kitchen.").await,
        reply("Turned off the lights in the Kitchen.", Outcome::Done)
    );
    for light in ["light.kitchen_lights", "light.ceiling_lights"] {
        assert_eq!(state(light).await["state"], "off", "{light}");
    }
    assert_eq!(
        say(&actions, &link, "Are the lights in the kitchen off?").await,
        reply("Yes, the lights in the Kitchen are off.", Outcome::Answered)
    );
    assert_eq!(
        say(&actions, &link, "Are the lights in the kitchen on?").await,
        reply(
            "No, none of the lights in the Kitchen are on.",
            Outcome::Answered
        )
    );

    // States read from Home Assistant.
    assert_eq!(
        say(&actions, &link, "What's the temperature in the garden?").await,
        reply(
            "It's 15.6 degrees Celsius in the Garden.",
            Outcome::Answered
        )
    );
    assert_eq!(
        say(&actions, &link, "Is the front door locked?").await,
        reply("Yes, the Front Door is locked.", Outcome::Answered)
    );
    assert_eq!(
        say(&actions, &link, "Is the kitchen door locked?").await,
        reply("No, the Kitchen Door is unlocked.", Outcome::Answered)
    );
    assert_eq!(
        say(&actions, &link, "Turn on the lights in the garden").await,
        reply("There are no lights in the Garden.", Outcome::NotFound)
    );

    // Covers and the mode.
    assert_eq!(
        say(&actions, &link, "Open the garage door.").await,
        reply("Opened the Garage Door.", Outcome::Done)
    );
    assert_eq!(state("cover.garage_door").await["state"], "open");
    assert_eq!(
        say(&actions, &link, "What mode is the house in?").await,
        reply("This house is in owner mode.", Outcome::Answered)
    );

    // Guest mode: no locks, at most half brightness, no timers; nothing
    // runs that the policy refuses.
    mode.set_mode("guest").await;
    let guest = say(&actions, &link, "What mode is the house in?").await;
    assert_eq!(guest.outcome, Outcome::Answered);
    assert!(
        guest
            .speech
            .starts_with("This house is in guest mode until "),
        "{guest:?}"
    );
    assert_eq!(
        say(&actions, &link, "Unlock the front door.").await,
        reply(
            "Sorry, guests can't unlock the Front Door.",
            denied("guest.domains.deny")
        )
    );
    assert_eq!(state("lock.front_door").await["state"], "locked");
    assert_eq!(
        say(&actions, &link, "Set the kitchen lights to 80 percent").await,
        reply(
            "Sorry, guests can't set the Kitchen Lights to 80 percent.",
            denied("guest.limits.light.brightness_pct")
        )
    );
    assert_eq!(state("light.kitchen_lights").await["state"], "off");
    assert_eq!(
        say(&actions, &link, "Set the kitchen lights to 40 percent").await,
        reply("Set the Kitchen Lights to 40 percent.", Outcome::Done)
    );
    assert_eq!(state("light.kitchen_lights").await["state"], "on");
    assert_eq!(
        say(&actions, &link, "Set a timer for 5 minutes").await,
        reply("Sorry, guests can't set timers.", denied("guest.intents"))
    );
    assert_eq!(
        say(&actions, &link, "Is the front door locked?").await,
        reply(
            "Sorry, guests can't check the Front Door.",
            denied("guest.domains.deny")
        )
    );

    // The owner again: the same lock opens and closes.
    mode.set_mode("owner").await;
    assert_eq!(
        say(&actions, &link, "Unlock the front door.").await,
        reply("Unlocked the Front Door.", Outcome::Done)
    );
    assert_eq!(state("lock.front_door").await["state"], "unlocked");
    assert_eq!(
        say(&actions, &link, "Lock the front door.").await,
        reply("Locked the Front Door.", Outcome::Done)
    );
    assert_eq!(state("lock.front_door").await["state"], "locked");
    assert_eq!(
        say(&actions, &link, "Lock the kitchen lights.").await,
        reply(
            "Sorry, the Kitchen Lights can't do that.",
            Outcome::Unsupported
        )
    );

    // Names from an outdated vocabulary: what the bridge says of them.
    let mut stale = SlotLists::new();
    stale.add("name", "Ghost Light", "light.ghost").add(
        "name",
        "Security",
        "alarm_control_panel.security",
    );
    assert_eq!(
        say_with(&actions, &link, "Turn on the ghost light", &stale).await,
        reply("Sorry, I couldn't find that device.", Outcome::NotFound)
    );
    assert_eq!(
        say_with(&actions, &link, "Turn on the security", &stale).await,
        reply(
            "Sorry, I'm not allowed to do that.",
            denied("ha_bridge.access")
        )
    );

    // ha-bridge goes away: an apology within the deadline, the last
    // vocabulary still understood; back, it works again.
    let port = bridge.port;
    bridge.stop().await;
    let started = Instant::now();
    assert_eq!(
        say(&actions, &link, "Turn off the kitchen lights.").await,
        reply(
            "Sorry, I can't reach the home right now.",
            Outcome::Failed {
                backend: "ha-bridge",
                kind: ErrorKind::Unavailable
            }
        )
    );
    assert!(started.elapsed() < 2 * DEADLINE, "{:?}", started.elapsed());
    assert_eq!(state("light.kitchen_lights").await["state"], "on");
    let bridge = Bridge::start(bridge_config.clone(), port).await;
    bridge.until_connected(true).await;
    assert_eq!(
        say(&actions, &link, "Turn off the kitchen lights.").await,
        reply("Turned off the Kitchen Lights.", Outcome::Done)
    );
    assert_eq!(state("light.kitchen_lights").await["state"], "off");

    // Home Assistant goes away behind the bridge: the same apology, for
    // the other backend.
    ha.stop().await;
    bridge.until_connected(false).await;
    assert_eq!(
        say_with(&actions, &link, "Turn on the kitchen lights.", &lists).await,
        reply(
            "Sorry, I can't reach the home right now.",
            Outcome::Failed {
                backend: "home-assistant",
                kind: ErrorKind::Unavailable
            }
        )
    );
    bridge.stop().await;
}

#[tokio::test]
async fn timers_tell_the_satellite() {
    let dir = tempfile::tempdir().unwrap();
    let mode = ModeService::start(dir.path(), None).await;
    // No house is needed for timers.
    let nowhere = format!(
        "http://127.0.0.1:{}",
        athena_runtime::free_local_port().unwrap()
    );
    let actions = actions(&nowhere, &mode.url, DEADLINE);
    let (link, mut events) = satellite("bedroom");
    let lists = SlotLists::new();
    let say = async |text: &str| say_with(&actions, &link, text, &lists).await;

    // A short timer: started, then finished.
    assert_eq!(
        say("Set a timer for 1 second").await,
        reply("Timer set for 1 second.", Outcome::Done)
    );
    let Event::TimerStarted(started) = next_event(&mut events, 5).await else {
        panic!("not timer-started");
    };
    assert_eq!(
        (
            started.total_seconds,
            started.start_seconds,
            started.name.as_deref()
        ),
        (1, Some(1), None)
    );
    let Event::TimerFinished(finished) = next_event(&mut events, 10).await else {
        panic!("not timer-finished");
    };
    assert_eq!(finished.id, started.id);

    // Two longer ones, one named: status, then cancelled one by one.
    assert_eq!(
        say("Set a pizza timer for 10 minutes").await,
        reply("Pizza timer set for 10 minutes.", Outcome::Done)
    );
    let Event::TimerStarted(pizza) = next_event(&mut events, 5).await else {
        panic!("not timer-started");
    };
    assert_eq!(
        (
            pizza.total_seconds,
            pizza.start_minutes,
            pizza.name.as_deref()
        ),
        (600, Some(10), Some("pizza"))
    );
    assert_eq!(
        say("Start a 5 minute timer").await,
        reply("Timer set for 5 minutes.", Outcome::Done)
    );
    let Event::TimerStarted(five) = next_event(&mut events, 5).await else {
        panic!("not timer-started");
    };
    let status = say("How much time is left on my pizza timer?").await;
    assert_eq!(status.outcome, Outcome::Answered);
    assert!(
        status.speech.starts_with("Your pizza timer has ") && status.speech.ends_with(" left."),
        "{status:?}"
    );
    let status = say("Timer status").await;
    assert!(
        status
            .speech
            .starts_with("You have 2 timers. The pizza timer has "),
        "{status:?}"
    );
    assert_eq!(
        say("Cancel my pizza timer").await,
        reply("Cancelled the pizza timer.", Outcome::Done)
    );
    let Event::TimerCancelled(cancelled) = next_event(&mut events, 5).await else {
        panic!("not timer-cancelled");
    };
    assert_eq!(cancelled.id, pizza.id);
    assert_eq!(
        say("Cancel the pizza timer").await,
        reply("There's no pizza timer.", Outcome::NotFound)
    );
    assert_eq!(
        say("Cancel the timer").await,
        reply("Cancelled the 5 minute timer.", Outcome::Done)
    );
    let Event::TimerCancelled(cancelled) = next_event(&mut events, 5).await else {
        panic!("not timer-cancelled");
    };
    assert_eq!(cancelled.id, five.id);
    assert_eq!(
        say("Cancel my timer").await,
        reply("There's no timer to cancel.", Outcome::NotFound)
    );
    assert_eq!(
        say("Timer status").await,
        reply("You have no timers.", Outcome::Answered)
    );

    // The satellite reconnects (a new channel) while a timer runs: the
    // timer finishes on the new connection.
    assert_eq!(
        say("Set a timer for 2 seconds").await,
        reply("Timer set for 2 seconds.", Outcome::Done)
    );
    let Event::TimerStarted(started) = next_event(&mut events, 5).await else {
        panic!("not timer-started");
    };
    let (again, mut new_events) = satellite("bedroom");
    let status = say_with(&actions, &again, "Timer status", &lists).await;
    assert!(status.speech.starts_with("Your timer has "), "{status:?}");
    let Event::TimerFinished(finished) = next_event(&mut new_events, 10).await else {
        panic!("not timer-finished");
    };
    assert_eq!(finished.id, started.id);
    assert!(events.try_recv().is_err(), "the old connection is not told");
}

/// A port that accepts connections and never answers.
async fn silent_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    url
}

#[tokio::test]
async fn a_backend_down_or_silent_gets_an_apology_in_time() {
    let deadline = Duration::from_millis(500);
    let mut lists = SlotLists::new();
    lists.add("name", "Kitchen Lights", "light.kitchen_lights");
    let (link, _events) = satellite("hall");

    // Both silent: timeouts, each within its deadline.
    let silent = silent_server().await;
    let actions = actions(&silent, &silent, deadline);
    let started = Instant::now();
    let e = actions.vocabulary().await.unwrap_err();
    assert!(
        matches!(
            e,
            BackendError::Timeout {
                backend: "ha-bridge",
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        say_with(&actions, &link, "Turn on the kitchen lights", &lists).await,
        reply(
            "Sorry, I can't reach the home right now.",
            Outcome::Failed {
                backend: "ha-bridge",
                kind: ErrorKind::Timeout
            }
        )
    );
    assert_eq!(
        say_with(&actions, &link, "Set a timer for 5 minutes", &lists).await,
        reply(
            "Sorry, I can't check what's allowed right now.",
            Outcome::Failed {
                backend: "mode-service",
                kind: ErrorKind::Timeout
            }
        )
    );
    assert!(started.elapsed() < 10 * deadline, "{:?}", started.elapsed());

    // Nothing listening: unavailable.
    let nowhere = format!(
        "http://127.0.0.1:{}",
        athena_runtime::free_local_port().unwrap()
    );
    let actions = self::actions(&nowhere, &nowhere, deadline);
    assert_eq!(
        say_with(&actions, &link, "What mode are we in?", &lists).await,
        reply(
            "Sorry, I can't check what's allowed right now.",
            Outcome::Failed {
                backend: "mode-service",
                kind: ErrorKind::Unavailable
            }
        )
    );

    // ha-bridge up but without a Home Assistant token: Home Assistant is
    // what is unavailable.
    let bridge = Bridge::start(athena_ha_bridge::Config::default(), 0).await;
    bridge.until_connected(false).await;
    let dir = tempfile::tempdir().unwrap();
    let mode = ModeService::start(dir.path(), None).await;
    let actions = self::actions(&bridge.url(), &mode.url, deadline);
    assert_eq!(
        say_with(&actions, &link, "Turn on the kitchen lights", &lists).await,
        reply(
            "Sorry, I can't reach the home right now.",
            Outcome::Failed {
                backend: "home-assistant",
                kind: ErrorKind::Unavailable
            }
        )
    );

    // Another service where ha-bridge should be: answers that make no sense.
    let confused = self::actions(&mode.url, &mode.url, deadline);
    assert_eq!(
        say_with(&confused, &link, "Turn on the kitchen lights", &lists).await,
        reply(
            "Sorry, something went wrong with the home.",
            Outcome::Failed {
                backend: "ha-bridge",
                kind: ErrorKind::Invalid
            }
        )
    );
    bridge.stop().await;
}
