//! The candle engine: Whisper in pure Rust on candle tensors, on the CPU,
//! or on CUDA or Metal when built with those features.
//!
//! It loads a Hugging Face Whisper directory (`model.safetensors`,
//! `config.json`, `tokenizer.json`; see [`crate::model::hf`]) once; the
//! network ([`net`]) is immutable and shared, and each call keeps its own
//! decoding state. Decoding matches the whisper.cpp engine: greedy, no
//! timestamps, special and non-speech tokens suppressed, audio longer than
//! 30 s cut into 30 s windows, and the same reduced encoder context for
//! short audio (see [`super::policy`]).

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use tokenizers::Tokenizer;

use super::{
    EngineError, EngineInfo, SAMPLE_RATE, TranscribeOptions, Transcriber, Transcription, policy,
};
use crate::model::{hf, mel};

mod net;

use net::{Net, Precision, Session};

/// Samples in one 30-second window.
const WINDOW_SAMPLES: usize = 30 * SAMPLE_RATE as usize;
/// A window whose <|nospeech|> probability is above this, and whose text
/// is unlikely (see [`LOGPROB_THRESHOLD`]), is taken for silence (Whisper's
/// and whisper.cpp's rule: it otherwise "hears" words in silence).
const NO_SPEECH_THRESHOLD: f32 = 0.6;
/// See [`NO_SPEECH_THRESHOLD`]: the mean log-probability of the tokens.
const LOGPROB_THRESHOLD: f32 = -1.0;

/// Settings of the candle engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandleConfig {
    /// CPU threads per transcription.
    pub threads: usize,
    /// Run on the GPU back-end compiled in (features `cuda`, `metal`).
    pub use_gpu: bool,
    /// Which GPU.
    pub gpu_device: usize,
    /// On the CPU, hold the decoder's matrices in 8 bits (ggml `Q8_0`):
    /// about twice as fast, no measurable loss on speech.
    pub quantize_decoder: bool,
}

impl Default for CandleConfig {
    fn default() -> Self {
        Self {
            threads: 2,
            use_gpu: true,
            gpu_device: 0,
            quantize_decoder: true,
        }
    }
}

/// The special tokens decoding needs.
#[derive(Debug, Clone)]
struct Specials {
    eot: u32,
    sot: u32,
    sot_prev: Option<u32>,
    transcribe: Option<u32>,
    no_timestamps: u32,
    /// <|nospeech|> (<|nocaptions|> in older vocabularies).
    no_speech: Option<u32>,
    /// Language codes and their tokens, in the model's order.
    languages: Vec<(String, u32)>,
}

impl Specials {
    fn read(tokenizer: &Tokenizer, multilingual: bool) -> Result<Self, String> {
        let id = |t: &str| tokenizer.token_to_id(t);
        let need = |t: &str| id(t).ok_or_else(|| format!("the tokenizer has no {t} token"));
        let sot = need("<|startoftranscript|>")?;
        // The language tokens follow <|startoftranscript|> up to
        // <|translate|>; English-only models have one (<|en|>) that they
        // are never given.
        let mut languages = Vec::new();
        if multilingual {
            let translate = need("<|translate|>")?;
            for token in sot + 1..translate {
                let Some(text) = tokenizer.id_to_token(token) else {
                    break;
                };
                if let Some(code) = text.strip_prefix("<|").and_then(|t| t.strip_suffix("|>")) {
                    languages.push((code.to_owned(), token));
                }
            }
            if languages.is_empty() {
                return Err("the tokenizer has no language tokens".into());
            }
        }
        Ok(Self {
            eot: need("<|endoftext|>")?,
            sot,
            sot_prev: id("<|startofprev|>"),
            transcribe: if multilingual {
                Some(need("<|transcribe|>")?)
            } else {
                None
            },
            no_timestamps: need("<|notimestamps|>")?,
            no_speech: id("<|nospeech|>").or_else(|| id("<|nocaptions|>")),
            languages,
        })
    }
}

/// Whisper on candle with one loaded model.
pub struct CandleWhisper {
    net: Net,
    device: Device,
    filters: Vec<f32>,
    tokenizer: Tokenizer,
    specials: Specials,
    /// 0 for allowed tokens, −∞ for suppressed ones, over the vocabulary.
    suppress: Tensor,
    /// Also suppressed as the first token: a blank and <|endoftext|>.
    suppress_begin: Vec<u32>,
    threads: rayon::ThreadPool,
    config: CandleConfig,
    info: EngineInfo,
}

impl std::fmt::Debug for CandleWhisper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CandleWhisper")
            .field("info", &self.info)
            .field("device", &self.device)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The device to run on: the compiled-in GPU when asked, else the CPU.
fn device(config: &CandleConfig) -> Result<Device, String> {
    if !config.use_gpu {
        return Ok(Device::Cpu);
    }
    if cfg!(feature = "cuda") {
        return Device::new_cuda(config.gpu_device).map_err(|e| format!("CUDA: {e}"));
    }
    if cfg!(feature = "metal") {
        return Device::new_metal(config.gpu_device).map_err(|e| format!("Metal: {e}"));
    }
    Ok(Device::Cpu)
}

/// The model size's usual name, from its width.
fn size_name(d_model: usize) -> &'static str {
    match d_model {
        384 => "tiny",
        512 => "base",
        768 => "small",
        1024 => "medium",
        1280 => "large",
        _ => "custom",
    }
}

impl CandleWhisper {
    /// Loads a Hugging Face Whisper directory. A GPU that fails to
    /// initialise is an error here; the caller decides to fall back.
    pub fn load(dir: &Path, config: CandleConfig) -> Result<Self, EngineError> {
        let load_error = |reason: String| EngineError::Load {
            path: dir.to_owned(),
            reason,
        };
        let started = std::time::Instant::now();
        for file in [hf::WEIGHTS, hf::CONFIG, hf::TOKENIZER] {
            if !dir.join(file).is_file() {
                return Err(load_error(format!(
                    "{file} is missing (a Hugging Face Whisper directory has {}, {} and {})",
                    hf::WEIGHTS,
                    hf::CONFIG,
                    hf::TOKENIZER
                )));
            }
        }
        let read = |file: &str| {
            std::fs::read(dir.join(file))
                .map_err(|e| load_error(format!("cannot read {file}: {e}")))
        };
        let model_config: net::Config =
            serde_json::from_slice(&read(hf::CONFIG)?).map_err(|e| {
                load_error(format!(
                    "{} is not a Whisper configuration: {e}",
                    hf::CONFIG
                ))
            })?;
        let tokenizer = Tokenizer::from_bytes(read(hf::TOKENIZER)?)
            .map_err(|e| load_error(format!("{} is not a tokenizer: {e}", hf::TOKENIZER)))?;
        let multilingual = model_config.vocab_size >= 51865;
        let specials = Specials::read(&tokenizer, multilingual).map_err(load_error)?;

        let device = device(&config).map_err(load_error)?;
        let precision = Precision {
            // candle's CPU kernels are f32; f16 halves GPU memory traffic.
            float: if device.is_cpu() {
                DType::F32
            } else {
                DType::F16
            },
            quantize_decoder: config.quantize_decoder,
        };
        let net = Net::load(
            &read(hf::WEIGHTS)?,
            model_config.clone(),
            precision,
            &device,
        )
        .map_err(|e| {
            load_error(format!(
                "{} does not hold this Whisper model: {e}",
                hf::WEIGHTS
            ))
        })?;

        let vocab = model_config.vocab_size;
        // Every special token (all ids past <|endoftext|>: start,
        // languages, tasks, timestamps) and the configured non-speech ones.
        let suppress: Vec<f32> = (0..vocab as u32)
            .map(|t| {
                if t > specials.eot || model_config.suppress_tokens.contains(&t) {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
            .collect();
        let suppress =
            Tensor::from_vec(suppress, vocab, &device).map_err(|e| load_error(e.to_string()))?;
        let blank = tokenizer.token_to_id("\u{120}");
        let suppress_begin = blank.into_iter().chain([specials.eot]).collect();

        let threads = rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads.max(1))
            .thread_name(|i| format!("candle-{i}"))
            .build()
            .map_err(|e| load_error(format!("cannot start worker threads: {e}")))?;
        let info = EngineInfo {
            engine: "candle".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            model: format!(
                "whisper {}{}",
                size_name(model_config.d_model),
                if multilingual { "" } else { ".en" }
            ),
            languages: if multilingual {
                specials.languages.iter().map(|(c, _)| c.clone()).collect()
            } else {
                vec!["en".into()]
            },
            detects_language: multilingual,
        };
        tracing::info!(
            model = %info.model,
            path = %dir.display(),
            device = ?device,
            elapsed_ms = started.elapsed().as_millis() as u64,
            threads = config.threads,
            "candle Whisper model loaded"
        );
        Ok(Self {
            filters: mel::whisper_filters(model_config.num_mel_bins),
            net,
            device,
            tokenizer,
            specials,
            suppress,
            suppress_begin,
            threads,
            config,
            info,
        })
    }

    /// Converts a CTranslate2 (faster-whisper) directory into the Hugging
    /// Face directory `hf_cache` unless that exists already, then loads it.
    pub fn from_ct2_dir(
        ct2_dir: &Path,
        hf_cache: &Path,
        config: CandleConfig,
    ) -> Result<Self, EngineError> {
        hf::ensure_hf(ct2_dir, hf_cache).map_err(|e| EngineError::Load {
            path: ct2_dir.to_owned(),
            reason: e.to_string(),
        })?;
        Self::load(hf_cache, config)
    }

    /// Whether it runs on a GPU.
    pub fn on_gpu(&self) -> bool {
        !self.device.is_cpu()
    }

    /// The hints as prompt tokens, at most half the text context (the most
    /// recent tokens win).
    fn prompt_tokens(&self, hints: &[String]) -> Result<Vec<u32>, EngineError> {
        let Some(text) = policy::hint_prompt(hints) else {
            return Ok(Vec::new());
        };
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| EngineError::Inference(format!("cannot tokenize the hints: {e}")))?;
        let mut tokens = encoding.get_ids().to_vec();
        policy::keep_last(&mut tokens, self.net.config().max_target_positions / 2 - 1);
        Ok(tokens)
    }
}

/// What decoding one window produced.
struct Decoded {
    tokens: Vec<u32>,
    language: String,
}

fn inference(e: candle_core::Error) -> EngineError {
    EngineError::Inference(e.to_string())
}

impl CandleWhisper {
    /// Encodes one window (at most 30 s) with `audio_ctx` encoder positions.
    fn encode(&self, audio: &[f32], audio_ctx: usize) -> Result<Session, EngineError> {
        let n_mels = self.net.config().num_mel_bins;
        let frames = 2 * audio_ctx;
        let mel = mel::log_mel_spectrogram(audio, &self.filters, n_mels, frames);
        let mel = Tensor::from_vec(mel, (1, n_mels, frames), &Device::Cpu).map_err(inference)?;
        self.net.encode(&mel).map_err(inference)
    }

    /// The most likely token after `logits`, suppression applied (and the
    /// tokens that may not start a transcript, when `first`), with its
    /// log-probability.
    fn pick(&self, logits: &Tensor, first: bool) -> Result<(u32, f32), EngineError> {
        let logits = logits.broadcast_add(&self.suppress).map_err(inference)?;
        let mut values = logits.to_vec1::<f32>().map_err(inference)?;
        if first {
            for &t in &self.suppress_begin {
                values[t as usize] = f32::NEG_INFINITY;
            }
        }
        let (best, &max) = values
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .ok_or_else(|| EngineError::Inference("empty logits".into()))?;
        let sum: f32 = values.iter().map(|v| (v - max).exp()).sum();
        Ok((best as u32, -sum.ln()))
    }

    /// Greedy decoding of one encoded window.
    fn decode(
        &self,
        session: &mut Session,
        language: Option<&str>,
        prompt: &[u32],
    ) -> Result<Decoded, EngineError> {
        let s = &self.specials;
        let n_text_ctx = self.net.config().max_target_positions;
        let mut prefix = Vec::new();
        if let (Some(prev), false) = (s.sot_prev, prompt.is_empty()) {
            prefix.push(prev);
            prefix.extend_from_slice(prompt);
        }
        prefix.push(s.sot);
        // The prediction after <|startoftranscript|> holds the language
        // and the probability that there is no speech at all.
        let after_sot = self.net.step(session, &prefix).map_err(inference)?;
        let after_sot = after_sot.to_vec1::<f32>().map_err(inference)?;
        let language = match (s.transcribe, language) {
            // English-only: no language or task tokens.
            (None, _) => "en".to_owned(),
            (Some(_), Some(code)) => code.to_owned(),
            (Some(_), None) => s
                .languages
                .iter()
                .max_by(|a, b| after_sot[a.1 as usize].total_cmp(&after_sot[b.1 as usize]))
                .map_or_else(|| "en".to_owned(), |(code, _)| code.clone()),
        };
        let no_speech = s.no_speech.map_or(0.0, |token| {
            let max = after_sot.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = after_sot.iter().map(|v| (v - max).exp()).sum();
            (after_sot[token as usize] - max).exp() / sum
        });
        let mut prefix = Vec::new();
        if let Some(transcribe) = s.transcribe {
            let token = s
                .languages
                .iter()
                .find(|(code, _)| *code == language)
                .map(|(_, id)| *id)
                .ok_or_else(|| {
                    EngineError::Inference(format!("no token for language {language}"))
                })?;
            prefix.extend([token, transcribe]);
        }
        prefix.push(s.no_timestamps);
        // At most half the text context of output, as Whisper samples.
        let used = session.len() + prefix.len();
        let limit = (n_text_ctx / 2).min(n_text_ctx.saturating_sub(used + 1));
        let mut tokens = Vec::new();
        let mut logprob = 0.0;
        let mut logits = self.net.step(session, &prefix).map_err(inference)?;
        while tokens.len() < limit {
            let (next, p) = self.pick(&logits, tokens.is_empty())?;
            logprob += p;
            if next == s.eot {
                break;
            }
            tokens.push(next);
            logits = self.net.step(session, &[next]).map_err(inference)?;
        }
        let mean_logprob = logprob / (tokens.len() + 1) as f32;
        if no_speech > NO_SPEECH_THRESHOLD && mean_logprob < LOGPROB_THRESHOLD {
            tracing::debug!(no_speech, mean_logprob, "no speech in this window");
            tokens.clear();
        }
        Ok(Decoded { tokens, language })
    }

    /// Transcribes one window (at most 30 s) with the given context.
    fn window(
        &self,
        audio: &[f32],
        audio_ctx: usize,
        language: Option<&str>,
        prompt: &[u32],
    ) -> Result<Decoded, EngineError> {
        let mut session = self.encode(audio, audio_ctx)?;
        self.decode(&mut session, language, prompt)
    }

    fn text(&self, tokens: &[u32]) -> Result<String, EngineError> {
        let text = self
            .tokenizer
            .decode(tokens, true)
            .map_err(|e| EngineError::Inference(format!("cannot decode tokens: {e}")))?;
        Ok(text.trim().to_owned())
    }

    fn run(
        &self,
        audio: &[f32],
        options: &TranscribeOptions,
    ) -> Result<Transcription, EngineError> {
        let requested = policy::language(options.language.as_deref(), &self.info)?;
        let n_audio_ctx = self.net.config().max_source_positions;
        let prompt = self.prompt_tokens(&options.hints)?;
        let audio_seconds = audio.len() as f32 / SAMPLE_RATE as f32;
        let started = std::time::Instant::now();

        let mut pieces = Vec::new();
        let mut language = requested;
        for window in audio.chunks(WINDOW_SAMPLES) {
            let reduced = if options.reduced_context {
                policy::reduced_audio_ctx(window.len(), n_audio_ctx)
            } else {
                None
            };
            let ctx = reduced.unwrap_or(n_audio_ctx);
            let mut decoded = self.window(window, ctx, language.as_deref(), &prompt)?;
            let seconds = window.len() as f32 / SAMPLE_RATE as f32;
            if reduced.is_some() && policy::looks_like_a_loop(decoded.tokens.len(), seconds) {
                tracing::debug!(
                    tokens = decoded.tokens.len(),
                    seconds,
                    ctx,
                    "reduced context looks like a decoding loop; redoing with the full context"
                );
                decoded = self.window(window, n_audio_ctx, language.as_deref(), &prompt)?;
            }
            // Later windows keep the language the first one found.
            language = Some(decoded.language);
            let piece = self.text(&decoded.tokens)?;
            if !piece.is_empty() {
                pieces.push(piece);
            }
        }
        tracing::debug!(
            audio_seconds,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "transcribed"
        );
        Ok(Transcription {
            text: pieces.join(" "),
            language: language.unwrap_or_else(|| "en".into()),
            audio_seconds,
        })
    }
}

impl Transcriber for CandleWhisper {
    fn describe(&self) -> EngineInfo {
        self.info.clone()
    }

    fn transcribe(
        &self,
        audio: &[f32],
        options: &TranscribeOptions,
    ) -> Result<Transcription, EngineError> {
        policy::check_audio(audio)?;
        self.threads.install(|| self.run(audio, options))
    }
}
