//! The orchestrator's backends where they really run, and what a satellite
//! hears when one of them fails. stt, tts, ha-bridge and the small LLM each
//! run as their own `athena serve` process, so that each can be killed (a
//! crash), frozen with SIGSTOP (a hung server that still accepts
//! connections) and started again, while the orchestrator (with
//! mode-service) runs in another, against a real Home Assistant (its demo).
//! Then the same commands go through speech to text and text to speech over
//! Wyoming: Athena's own stt server and the reference `wyoming-piper` (its
//! PyPI package, on the same voice). Needs `ATHENA_HA_PYTHON` and
//! `ATHENA_PYTHON` (scripts/test.sh sets them).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::athena::{Process, espeak, home_assistant, listen_env, local_url, routing_policy};
use common::satellite::{Pace, Run, speak};
use common::{free_port, python};

/// Deadlines the orchestrator is given here (seconds): short, so that a
/// frozen backend is given up on quickly.
const TRANSCRIPT_SECS: u64 = 8;
const SPEECH_SECS: u64 = 6;

/// Slack over a deadline for what follows it (an apology is synthesized
/// and sent) on a busy 2-core machine.
const SLACK: Duration = Duration::from_secs(6);

/// A Python peer server; killed when dropped.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until something listens on `port`.
fn wait_listening(port: u16) {
    for _ in 0..600 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("nothing listens on port {port}");
}

fn env(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// A satellite speaks `pcm` to the orchestrator's Wyoming `port`.
async fn say(port: u16, pcm: &[u8]) -> Run {
    speak(port, pcm, Pace::Fast).await
}

/// A command that must work: no error, a spoken reply.
fn works(run: &Run) {
    assert!(run.error.is_none(), "{run:?}");
    assert!(run.audio_bytes > 8_000, "{run:?}");
    assert!(!run.reply.contains("Sorry"), "{run:?}");
}

/// A run that failed with `code`, in time, with the apology spoken when
/// `apology` says it can be.
fn failed(run: &Run, code: &str, deadline: Duration, apology: bool) {
    assert_eq!(run.error_code(), Some(code), "{run:?}");
    assert!(
        run.until_done < deadline + SLACK,
        "{code} took {:?} (deadline {deadline:?}): {run:?}",
        run.until_done
    );
    if apology {
        assert!(run.reply.starts_with("Sorry"), "{run:?}");
        assert!(run.audio_bytes > 8_000, "{run:?}");
    } else {
        assert_eq!(run.audio_bytes, 0, "{run:?}");
    }
}

#[test]
fn backends_fail_and_return_and_speak_wyoming() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let data = tempfile::tempdir().unwrap();
        let (mut ha, token, _ha_dir) = home_assistant().await;
        let light = "light.kitchen_lights";
        let data_dir = ("ATHENA_DATA_DIR", data.path().display().to_string());

        let (stt_http, stt_wyoming) = (free_port(), free_port());
        let (tts_http, tts_wyoming) = (free_port(), free_port());
        let (bridge_http, mode_http) = (free_port(), free_port());
        let (orchestrator_http, orchestrator_wyoming) = (free_port(), free_port());
        let llm_http = free_port();

        let mut stt = Process::start(
            &["stt"],
            [
                env(std::slice::from_ref(&data_dir)),
                listen_env("stt", stt_http, Some(stt_wyoming)),
            ]
            .concat(),
            vec![stt_http],
        );
        let mut tts = Process::start(
            &["tts"],
            [
                env(std::slice::from_ref(&data_dir)),
                listen_env("tts", tts_http, Some(tts_wyoming)),
            ]
            .concat(),
            vec![tts_http],
        );
        let mut bridge = Process::start(
            &["ha-bridge"],
            [
                env(&[
                    data_dir.clone(),
                    ("ATHENA__HA_BRIDGE__URL", ha.url()),
                    ("ATHENA__HA_BRIDGE__TOKEN", token.clone()),
                ]),
                listen_env("ha-bridge", bridge_http, None),
            ]
            .concat(),
            vec![bridge_http],
        );
        // Questions no local intent covers go to the small LLM.
        let mut llm = Process::start(
            &["router-small-llm"],
            [
                env(&[
                    data_dir.clone(),
                    ("ATHENA__ROUTER_SMALL_LLM__MAX_TOKENS", "40".to_owned()),
                ]),
                listen_env("router-small-llm", llm_http, None),
            ]
            .concat(),
            vec![llm_http],
        );
        let routing = routing_policy(data.path(), &local_url(llm_http));
        let mut main = Process::start(
            &["orchestrator", "mode-service"],
            [
                env(&[
                    data_dir.clone(),
                    ("ATHENA__ORCHESTRATOR__STT__URL", local_url(stt_http)),
                    ("ATHENA__ORCHESTRATOR__TTS__URL", local_url(tts_http)),
                    (
                        "ATHENA__ORCHESTRATOR__HA_BRIDGE_URL",
                        local_url(bridge_http),
                    ),
                    (
                        "ATHENA__ORCHESTRATOR__MODE_SERVICE_URL",
                        local_url(mode_http),
                    ),
                    (
                        "ATHENA__ORCHESTRATOR__TIMEOUTS__TRANSCRIPT_SECS",
                        TRANSCRIPT_SECS.to_string(),
                    ),
                    (
                        "ATHENA__ORCHESTRATOR__TIMEOUTS__SPEECH_SECS",
                        SPEECH_SECS.to_string(),
                    ),
                    (
                        "ATHENA__ORCHESTRATOR__ROUTING_POLICY",
                        routing.display().to_string(),
                    ),
                ]),
                listen_env(
                    "orchestrator",
                    orchestrator_http,
                    Some(orchestrator_wyoming),
                ),
                listen_env("mode-service", mode_http, None),
            ]
            .concat(),
            vec![orchestrator_http, mode_http],
        );
        let on = espeak("Turn on the kitchen lights.");
        let off = espeak("Turn off the kitchen lights.");
        let w = orchestrator_wyoming;
        let transcript_deadline = Duration::from_secs(TRANSCRIPT_SECS);
        let speech_deadline = Duration::from_secs(SPEECH_SECS);

        // Over gRPC, every backend up.
        let run = say(w, &on).await;
        works(&run);
        assert_eq!(ha.state(&token, light).await["state"], "on", "{run:?}");

        // stt crashed: the error, and the apology (tts still works), at
        // once; nothing happened at home. Back, it works again.
        stt.kill();
        let run = say(w, &off).await;
        failed(&run, "stt-failed", Duration::ZERO, true);
        assert_eq!(ha.state(&token, light).await["state"], "on");
        stt.restart();
        let run = say(w, &off).await;
        works(&run);
        assert_eq!(ha.state(&token, light).await["state"], "off", "{run:?}");

        // stt hung: given up on at the transcript deadline.
        stt.pause();
        let run = say(w, &on).await;
        failed(&run, "stt-timeout", transcript_deadline, true);
        assert_eq!(ha.state(&token, light).await["state"], "off");
        stt.resume();
        works(&say(w, &on).await);
        assert_eq!(ha.state(&token, light).await["state"], "on");

        // tts hung: the command is carried out, the reply given up on at
        // the speech deadline (no apology: there is no voice to say it).
        tts.pause();
        let run = say(w, &off).await;
        failed(&run, "tts-timeout", speech_deadline, false);
        assert_eq!(ha.state(&token, light).await["state"], "off");
        tts.resume();
        works(&say(w, &on).await);

        // tts crashed: told at once; back, it speaks again.
        tts.kill();
        let run = say(w, &off).await;
        failed(&run, "tts-failed", Duration::ZERO, false);
        tts.restart();
        works(&say(w, &on).await);
        assert_eq!(ha.state(&token, light).await["state"], "on");

        // ha-bridge crashed: the user hears that the home is out of reach,
        // in time; back, the home answers again.
        bridge.kill();
        let run = say(w, &off).await;
        assert!(run.error.is_none(), "{run:?}");
        assert!(run.reply.contains("can't reach the home"), "{run:?}");
        assert!(run.until_done < Duration::from_secs(3) + SLACK, "{run:?}");
        assert_eq!(ha.state(&token, light).await["state"], "on");
        bridge.restart();
        works(&say(w, &off).await);
        assert_eq!(ha.state(&token, light).await["state"], "off");

        // The LLM crashed: the question gets a short spoken apology at
        // once (not an error: the pipeline worked); back, it answers again.
        let question = espeak("What is the capital of France?");
        works(&say(w, &question).await);
        llm.kill();
        let run = say(w, &question).await;
        assert!(run.error.is_none(), "{run:?}");
        assert!(run.reply.contains("can't answer"), "{run:?}");
        assert!(run.until_done < SLACK, "{run:?}");
        llm.restart();
        works(&say(w, &question).await);

        // Over Wyoming: Athena's stt server, and the reference wyoming-piper
        // speaking with the same voice.
        let voice_dir = athena_models::Store::from_env()
            .unwrap()
            .ensure("en_US-joe-medium")
            .unwrap();
        let piper_port = free_port();
        let mut piper = Peer(
            Command::new(python())
                .args(["-m", "wyoming_piper", "--uri"])
                .arg(format!("tcp://127.0.0.1:{piper_port}"))
                .args(["--voice", "en_US-joe-medium", "--data-dir"])
                .arg(&voice_dir)
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap(),
        );
        wait_listening(piper_port);
        main.set_env(
            "ATHENA__ORCHESTRATOR__STT__URL",
            &format!("tcp://127.0.0.1:{stt_wyoming}"),
        );
        main.set_env(
            "ATHENA__ORCHESTRATOR__TTS__URL",
            &format!("tcp://127.0.0.1:{piper_port}"),
        );
        main.restart();
        let run = say(w, &on).await;
        works(&run);
        assert!(run.transcript.to_lowercase().contains("kitchen"), "{run:?}");
        assert_eq!(ha.state(&token, light).await["state"], "on", "{run:?}");

        // The Wyoming stt server down: the apology comes from wyoming-piper.
        stt.kill();
        let run = say(w, &off).await;
        failed(&run, "stt-failed", Duration::ZERO, true);
        stt.restart();
        works(&say(w, &off).await);
        assert_eq!(ha.state(&token, light).await["state"], "off");

        // wyoming-piper down: told at once.
        let _ = piper.0.kill();
        let _ = piper.0.wait();
        let run = say(w, &on).await;
        failed(&run, "tts-failed", Duration::ZERO, false);

        // Athena's own tts over Wyoming.
        main.set_env(
            "ATHENA__ORCHESTRATOR__TTS__URL",
            &format!("tcp://127.0.0.1:{tts_wyoming}"),
        );
        main.restart();
        works(&say(w, &on).await);
        assert_eq!(ha.state(&token, light).await["state"], "on");
        ha.stop().await;
    });
}
