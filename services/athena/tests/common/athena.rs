//! The whole voice pipeline in one `athena serve` process (orchestrator,
//! stt, tts, ha-bridge, mode-service) for tests against a real Home
//! Assistant, and commands spoken by espeak-ng as a microphone hears them.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use athena_ha_bridge::testing::HomeAssistant;

use super::{Service, free_port};

/// A real Home Assistant (its demo integration) started in a fresh
/// directory, and a token for it; the directory lives as long as the
/// returned guard.
pub async fn home_assistant() -> (HomeAssistant, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut ha = HomeAssistant::new(dir.path());
    ha.start().await;
    let token = ha.token().await;
    (ha, token, dir)
}

/// An `athena serve` process: its services and config (in the
/// environment), kept so that it can be stopped, paused and started again;
/// killed when dropped.
pub struct Process {
    services: Vec<String>,
    env: Vec<(String, String)>,
    /// HTTP ports whose `/readyz` says the process is up.
    ready: Vec<u16>,
    child: Option<Child>,
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Process {
    /// Starts `athena serve <services>` with `env` and waits until every
    /// port in `ready` answers `/readyz`.
    pub fn start(services: &[&str], env: Vec<(String, String)>, ready: Vec<u16>) -> Self {
        let mut process = Self {
            services: services.iter().map(|s| (*s).to_owned()).collect(),
            env,
            ready,
            child: None,
        };
        process.restart();
        process
    }

    /// Changes (or adds) a setting for the next [`Self::restart`].
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// Starts the process again (killing it first if it runs) and waits
    /// until it is ready.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new(env!("CARGO_BIN_EXE_athena"))
            .arg("serve")
            .args(&self.services)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(180);
        for &port in &self.ready {
            while !ready(port) {
                if let Some(exit) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                    panic!(
                        "athena serve {:?} exited ({exit}) before it was ready",
                        self.services
                    );
                }
                assert!(
                    Instant::now() < deadline,
                    "athena serve {:?}: port {port} never became ready",
                    self.services
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the process runs").id()
    }

    /// Its resident memory in KiB (VmRSS).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    /// CPU time it has used so far (user + system), in seconds.
    pub fn cpu_secs(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the command name (which is in parentheses).
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        ticks / 100.0
    }

    /// Kills the process (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the process (SIGSTOP): its ports accept connections and
    /// nothing answers, as a hung backend does.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Thaws a paused process (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, name: &str) {
        let child = self.child.as_ref().expect("the process runs");
        let status = Command::new("kill")
            .args([format!("-{name}"), child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name}");
    }

    /// Sends SIGTERM and waits (at most `within`) for the process to
    /// drain and exit; its exit status.
    pub fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        self.signal("TERM");
        let child = self.child.as_mut().expect("the process runs");
        let deadline = Instant::now() + within;
        loop {
            if let Some(exit) = child.try_wait().unwrap() {
                self.child = None;
                return exit;
            }
            assert!(
                Instant::now() < deadline,
                "athena did not exit within {within:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Whether the service on `port` answers `/readyz`.
fn ready(port: u16) -> bool {
    Command::new("curl")
        .args(["-sf", &format!("http://127.0.0.1:{port}/readyz")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The settings that put the service of config section `section` on
/// loopback ports: HTTP (and gRPC) on `http`, Wyoming on `wyoming`.
pub fn listen_env(section: &str, http: u16, wyoming: Option<u16>) -> Vec<(String, String)> {
    let section = section.to_uppercase().replace('-', "_");
    let mut env = vec![(
        format!("ATHENA__{section}__HTTP"),
        format!("127.0.0.1:{http}"),
    )];
    if let Some(port) = wyoming {
        env.push((
            format!("ATHENA__{section}__WYOMING__URI"),
            format!("tcp://127.0.0.1:{port}"),
        ));
    }
    env
}

/// `http://127.0.0.1:{port}`.
pub fn local_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// The whole pipeline in one `athena serve` process (orchestrator with stt
/// and tts in process, ha-bridge, mode-service).
pub struct Athena {
    /// The process.
    pub process: Process,
    /// The orchestrator's HTTP API.
    pub orchestrator: u16,
    /// The orchestrator's Wyoming endpoint, where satellites connect.
    pub wyoming: u16,
    /// tts's HTTP (and gRPC) port.
    pub tts: u16,
    /// ha-bridge's HTTP API.
    pub ha_bridge: u16,
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
        let mut env = vec![
            ("ATHENA_DATA_DIR".to_owned(), data.display().to_string()),
            (
                "ATHENA__ORCHESTRATOR__HA_BRIDGE_URL".to_owned(),
                local_url(ha_bridge),
            ),
            (
                "ATHENA__ORCHESTRATOR__MODE_SERVICE_URL".to_owned(),
                local_url(mode),
            ),
            ("ATHENA__HA_BRIDGE__URL".to_owned(), ha_url.to_owned()),
            ("ATHENA__HA_BRIDGE__TOKEN".to_owned(), token.to_owned()),
        ];
        env.extend(listen_env("orchestrator", orchestrator, Some(wyoming)));
        env.extend(listen_env("stt", stt, Some(free_port())));
        env.extend(listen_env("tts", tts, Some(free_port())));
        env.extend(listen_env("ha-bridge", ha_bridge, None));
        env.extend(listen_env("mode-service", mode, None));
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        let process = Process::start(
            &["orchestrator", "stt", "tts", "ha-bridge", "mode-service"],
            env,
            vec![orchestrator, stt, tts, ha_bridge, mode],
        );
        Self {
            process,
            orchestrator,
            wyoming,
            tts,
            ha_bridge,
        }
    }

    /// As [`Self::start`], with the small LLM (its own process, returned)
    /// answering what no local intent covers: the routing policy sends
    /// both endpoints to it.
    pub fn start_with_llm(ha_url: &str, token: &str, data: &std::path::Path) -> (Self, Service) {
        let llm = Service::start_http(
            "router-small-llm",
            &[("ATHENA__ROUTER_SMALL_LLM__MAX_TOKENS", "40")],
        );
        let routing = routing_policy(data, &llm.base_url());
        let athena = Self::start_with(
            ha_url,
            token,
            data,
            &[(
                "ATHENA__ORCHESTRATOR__ROUTING_POLICY",
                routing.to_str().unwrap(),
            )],
        );
        (athena, llm)
    }

    /// Sends SIGTERM and waits (at most `within`) for the process to
    /// drain and exit; its exit status.
    pub fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        self.process.terminate(within)
    }
}

/// A routing policy (written into `dir`) that sends every question no
/// local intent covers to the LLM server at `base_url` (both endpoints,
/// answers of at most 40 tokens); its path.
pub fn routing_policy(dir: &std::path::Path, base_url: &str) -> std::path::PathBuf {
    let path = dir.join("routing.yaml");
    let endpoint = format!(
        "{{ url: '{base_url}/v1', model: smollm2-135m-instruct, max_tokens: 40, \
         first_token_secs: 30, answer_secs: 60 }}"
    );
    std::fs::write(
        &path,
        format!(
            "endpoints: {{ small: {endpoint}, large: {endpoint} }}\n\
             default: {{ endpoint: small, rag: false }}\n"
        ),
    )
    .unwrap();
    path
}

/// `text` spoken by espeak-ng (`en-us`, 145 words a minute), as a
/// satellite's microphone would hear it: 16 kHz, 16-bit mono, with half a
/// second of silence before and 1.5 s after.
pub fn espeak(text: &str) -> Vec<u8> {
    espeak_phrases(&[text], 0)
}

/// `phrases` spoken by espeak-ng one after the other with exactly
/// `pause_ms` of silence between them (espeak-ng's own trailing silence
/// cut), padded as [`espeak`] pads.
pub fn espeak_phrases(phrases: &[&str], pause_ms: usize) -> Vec<u8> {
    let mut pcm = vec![0u8; 16_000];
    for (i, phrase) in phrases.iter().enumerate() {
        let mut speech = espeak_pcm(phrase);
        if i + 1 < phrases.len() {
            let end = speech
                .chunks_exact(2)
                .rposition(|s| i16::from_le_bytes([s[0], s[1]]).unsigned_abs() > 300)
                .map_or(0, |last| (last + 1) * 2);
            speech.truncate(end);
            speech.extend(vec![0u8; pause_ms * 32]);
        }
        pcm.extend(speech);
    }
    pcm.extend(vec![0u8; 48_000]);
    pcm
}

/// espeak-ng's speech for `text` as 16 kHz 16-bit mono PCM, unpadded.
fn espeak_pcm(text: &str) -> Vec<u8> {
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
    athena_audio::resample(&samples, rate, 16_000)
        .into_iter()
        .flat_map(|s| ((s.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes())
        .collect()
}
