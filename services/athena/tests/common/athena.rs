//! The whole voice pipeline in one `athena serve` process (orchestrator,
//! stt, tts, ha-bridge, mode-service) for tests against a real Home
//! Assistant, and commands spoken by espeak-ng as a microphone hears them.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// The services of one `athena serve` process; killed when dropped.
pub struct Athena {
    child: Child,
    /// The orchestrator's HTTP API.
    pub orchestrator: u16,
    /// The orchestrator's Wyoming endpoint, where satellites connect.
    pub wyoming: u16,
    /// tts's HTTP (and gRPC) port.
    pub tts: u16,
    /// ha-bridge's HTTP API.
    pub ha_bridge: u16,
}

impl Drop for Athena {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Athena {
    /// Starts the pipeline against the Home Assistant at `ha_url` and waits
    /// until every service is ready.
    pub fn start(ha_url: &str, token: &str, data: &std::path::Path) -> Self {
        Self::start_with(ha_url, token, data, &[])
    }

    /// As [`Self::start`], with more environment (config) for the process.
    pub fn start_with(
        ha_url: &str,
        token: &str,
        data: &std::path::Path,
        extra_env: &[(&str, &str)],
    ) -> Self {
        let (orchestrator, wyoming, stt, tts, ha_bridge, mode) = (
            free_port(),
            free_port(),
            free_port(),
            free_port(),
            free_port(),
            free_port(),
        );
        let local = |port: u16| format!("127.0.0.1:{port}");
        let url = |port: u16| format!("http://127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_athena"))
            .args([
                "serve",
                "orchestrator",
                "stt",
                "tts",
                "ha-bridge",
                "mode-service",
            ])
            .env("ATHENA_DATA_DIR", data)
            .env("ATHENA__ORCHESTRATOR__HTTP", local(orchestrator))
            .env(
                "ATHENA__ORCHESTRATOR__WYOMING__URI",
                format!("tcp://127.0.0.1:{wyoming}"),
            )
            .env("ATHENA__ORCHESTRATOR__STT__URL", url(stt))
            .env("ATHENA__ORCHESTRATOR__TTS__URL", url(tts))
            .env("ATHENA__ORCHESTRATOR__HA_BRIDGE_URL", url(ha_bridge))
            .env("ATHENA__ORCHESTRATOR__MODE_SERVICE_URL", url(mode))
            .env("ATHENA__STT__HTTP", local(stt))
            .env(
                "ATHENA__STT__WYOMING__URI",
                format!("tcp://127.0.0.1:{}", free_port()),
            )
            .env("ATHENA__TTS__HTTP", local(tts))
            .env(
                "ATHENA__TTS__WYOMING__URI",
                format!("tcp://127.0.0.1:{}", free_port()),
            )
            .env("ATHENA__HA_BRIDGE__HTTP", local(ha_bridge))
            .env("ATHENA__HA_BRIDGE__URL", ha_url)
            .env("ATHENA__HA_BRIDGE__TOKEN", token)
            .env("ATHENA__MODE_SERVICE__HTTP", local(mode))
            .envs(extra_env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let athena = Self {
            child,
            orchestrator,
            wyoming,
            tts,
            ha_bridge,
        };
        for port in [orchestrator, stt, tts, ha_bridge, mode] {
            athena.wait_ready(port);
        }
        athena
    }

    /// Sends SIGTERM and waits (at most `within`) for the process to
    /// drain and exit; its exit status.
    pub fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM");
        let deadline = Instant::now() + within;
        loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                return exit;
            }
            assert!(
                Instant::now() < deadline,
                "athena did not exit within {within:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_ready(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(180);
        while Instant::now() < deadline {
            let ready = Command::new("curl")
                .args(["-sf", &format!("http://127.0.0.1:{port}/readyz")])
                .output()
                .is_ok_and(|o| o.status.success());
            if ready {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("the service on port {port} never became ready");
    }
}

/// `text` spoken by espeak-ng (`en-us`, 145 words a minute), as a
/// satellite's microphone would hear it: 16 kHz, 16-bit mono, with half a
/// second of silence before and 1.5 s after.
pub fn espeak(text: &str) -> Vec<u8> {
    let out = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "145", "--stdout", text])
        .output()
        .expect("espeak-ng runs (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A WAV whose sizes are left open (it was streamed): the rate from the
    // header, the samples after the `data` tag.
    let wav = out.stdout;
    let rate = u32::from_le_bytes(wav[24..28].try_into().unwrap());
    let data = wav.windows(4).position(|w| w == b"data").unwrap() + 8;
    let samples: Vec<f32> = wav[data..]
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect();
    let mut pcm = vec![0u8; 16_000];
    for s in athena_audio::resample(&samples, rate, 16_000) {
        pcm.extend_from_slice(&((s.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes());
    }
    pcm.extend(vec![0u8; 48_000]);
    pcm
}
