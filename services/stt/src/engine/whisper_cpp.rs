//! The whisper.cpp engine, through whisper-rs.
//!
//! The model (a ggml file, see [`crate::model::ggml`]) is loaded once into a
//! [`WhisperContext`] and shared. Each call runs on its own [`WhisperState`]
//! (the KV caches and compute buffers), taken from a small pool and put back
//! afterwards, so concurrent calls never share one and a sequence of calls
//! does not pay for allocating one each time. Decoding is greedy, without
//! timestamps, with non-speech tokens suppressed and no text carried over
//! from one call to the next.
//!
//! With [`TranscribeOptions::reduced_context`], audio shorter than the 30 s
//! window is encoded with a shorter encoder context (whisper.cpp's
//! `audio_ctx`), see [`reduced_audio_ctx`]: the encoder's cost grows with
//! its context, so a 3-second command costs a fraction of a full window.
//! A reduced-context result with implausibly many tokens (a decoding loop,
//! Whisper's failure mode on short windows) is redone with the full context.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

use super::{
    EngineError, EngineInfo, SAMPLE_RATE, TranscribeOptions, Transcriber, Transcription, policy,
};
use crate::model::ggml;

/// Settings of the whisper.cpp engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhisperCppConfig {
    /// CPU threads per transcription.
    pub threads: usize,
    /// Run on the GPU back-end compiled in (features `cuda`, `hipblas`,
    /// `vulkan`, `metal`); ignored without one.
    pub use_gpu: bool,
    /// Which GPU.
    pub gpu_device: i32,
    /// Use flash attention (on a 2-core AVX-512 CPU it was about 20% slower
    /// with tiny.en, hence off by default).
    pub flash_attn: bool,
    /// States kept for reuse between calls (one per concurrent call is ideal).
    pub max_idle_states: usize,
    /// Retry at higher temperatures when greedy decoding looks degenerate
    /// (whisper's default). Off by default: the result is then deterministic.
    pub temperature_fallback: bool,
    /// Weight precision when converting from CTranslate2.
    pub precision: crate::model::Precision,
}

impl Default for WhisperCppConfig {
    fn default() -> Self {
        Self {
            threads: 2,
            use_gpu: true,
            gpu_device: 0,
            flash_attn: false,
            max_idle_states: 2,
            temperature_fallback: false,
            precision: crate::model::Precision::default(),
        }
    }
}

/// whisper.cpp with one loaded model.
pub struct WhisperCpp {
    ctx: WhisperContext,
    states: Mutex<Vec<WhisperState>>,
    config: WhisperCppConfig,
    info: EngineInfo,
    n_audio_ctx: usize,
    max_prompt_tokens: usize,
}

impl std::fmt::Debug for WhisperCpp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperCpp")
            .field("info", &self.info)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl WhisperCpp {
    /// Loads a ggml model file. The file's structure is checked first, so a
    /// corrupt or truncated file is an error rather than a crash in C++.
    pub fn load(path: &Path, config: WhisperCppConfig) -> Result<Self, EngineError> {
        let load_error = |reason: String| EngineError::Load {
            path: path.to_owned(),
            reason,
        };
        whisper_rs::install_logging_hooks();
        let summary = ggml::inspect(path).map_err(|e| load_error(e.to_string()))?;
        let path_str = path
            .to_str()
            .ok_or_else(|| load_error("the path is not UTF-8".into()))?;

        let mut params = WhisperContextParameters::default();
        params
            .use_gpu(
                config.use_gpu
                    && cfg!(any(
                        feature = "cuda",
                        feature = "hipblas",
                        feature = "vulkan",
                        feature = "metal"
                    )),
            )
            .gpu_device(config.gpu_device)
            .flash_attn(config.flash_attn);
        let started = std::time::Instant::now();
        let ctx = WhisperContext::new_with_params(path_str, params).map_err(|e| {
            load_error(format!("whisper.cpp rejected the model ({e}); see its log"))
        })?;
        let state = ctx
            .create_state()
            .map_err(|e| load_error(format!("cannot create a whisper.cpp state: {e}")))?;

        let multilingual = ctx.is_multilingual();
        let languages: Vec<String> = if multilingual {
            (0..=whisper_rs::get_lang_max_id())
                .filter_map(whisper_rs::get_lang_str)
                .map(str::to_owned)
                .collect()
        } else {
            vec!["en".to_owned()]
        };
        let size = ctx.model_type_readable_str_lossy().map_or_else(
            |_| format!("{} layers", summary.hparams.n_audio_layer),
            |s| s.into_owned(),
        );
        let info = EngineInfo {
            engine: "whisper.cpp".into(),
            version: whisper_rs::WHISPER_CPP_VERSION.into(),
            model: format!("whisper {size}{}", if multilingual { "" } else { ".en" }),
            languages,
            detects_language: multilingual,
        };
        let n_audio_ctx = usize::try_from(ctx.model_n_audio_ctx()).unwrap_or(1500);
        let max_prompt_tokens = usize::try_from(ctx.model_n_text_ctx() / 2 - 1).unwrap_or(0);
        tracing::info!(
            model = %info.model,
            path = %path.display(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            threads = config.threads,
            "whisper.cpp model loaded"
        );
        Ok(Self {
            ctx,
            states: Mutex::new(vec![state]),
            config,
            info,
            n_audio_ctx,
            max_prompt_tokens,
        })
    }

    /// Converts a CTranslate2 (faster-whisper) directory into `ggml_cache`
    /// unless that file exists already, then loads it.
    pub fn from_ct2_dir(
        ct2_dir: &Path,
        ggml_cache: &Path,
        config: WhisperCppConfig,
    ) -> Result<Self, EngineError> {
        crate::model::ensure_converted(ct2_dir, ggml_cache, config.precision).map_err(|e| {
            EngineError::Load {
                path: ct2_dir.to_owned(),
                reason: e.to_string(),
            }
        })?;
        Self::load(ggml_cache, config)
    }

    fn pool(&self) -> MutexGuard<'_, Vec<WhisperState>> {
        // A panic elsewhere cannot leave a Vec of states inconsistent.
        self.states.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take_state(&self) -> Result<WhisperState, EngineError> {
        if let Some(state) = self.pool().pop() {
            return Ok(state);
        }
        self.ctx
            .create_state()
            .map_err(|e| EngineError::Inference(format!("cannot create a whisper.cpp state: {e}")))
    }

    fn put_state(&self, state: WhisperState) {
        let mut pool = self.pool();
        if pool.len() < self.config.max_idle_states {
            pool.push(state);
        }
    }

    /// The language code to give whisper.cpp (`"auto"` to detect).
    fn language(&self, requested: Option<&str>) -> Result<String, EngineError> {
        Ok(policy::language(requested, &self.info)?.unwrap_or_else(|| "auto".into()))
    }

    /// The hints as prompt tokens: `" hint, hint"`, at most half the text
    /// context (the most recent tokens win, as in whisper.cpp).
    fn prompt_tokens(&self, hints: &[String]) -> Result<Vec<i32>, EngineError> {
        let Some(text) = policy::hint_prompt(hints) else {
            return Ok(Vec::new());
        };
        // Every token is at least one byte, so this bound is never exceeded
        // (whisper-rs mishandles a result that does not fit).
        let mut tokens = self
            .ctx
            .tokenize(&text, text.len() + 1)
            .map_err(|e| EngineError::Inference(format!("cannot tokenize the hints: {e}")))?;
        policy::keep_last(&mut tokens, self.max_prompt_tokens);
        Ok(tokens)
    }
}

/// What one whisper.cpp run produced.
struct Decoded {
    text: String,
    language: String,
    tokens: usize,
}

impl WhisperCpp {
    /// One whisper.cpp run over `audio` with the given encoder context
    /// (`None`: the model's full context).
    fn run(
        &self,
        audio: &[f32],
        language: &str,
        prompt: &[i32],
        audio_ctx: Option<usize>,
    ) -> Result<Decoded, EngineError> {
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(i32::try_from(self.config.threads.max(1)).unwrap_or(1));
        params.set_language(Some(language));
        params.set_translate(false);
        params.set_no_context(true);
        params.set_no_timestamps(true);
        params.set_single_segment(true);
        params.set_token_timestamps(false);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        params.set_suppress_blank(true);
        params.set_suppress_nst(true);
        params.set_temperature(0.0);
        if !self.config.temperature_fallback {
            params.set_temperature_inc(0.0);
        }
        if !prompt.is_empty() {
            params.set_tokens(prompt);
        }
        // 0 means the model's full context.
        params.set_audio_ctx(audio_ctx.map_or(0, |c| i32::try_from(c).unwrap_or(0)));

        let mut state = self.take_state()?;
        state
            .full(params, audio)
            .map_err(|e| EngineError::Inference(e.to_string()))?;
        let mut text = String::new();
        let mut tokens = 0;
        for segment in state.as_iter() {
            tokens += usize::try_from(segment.n_tokens()).unwrap_or(0);
            let piece = segment
                .to_str_lossy()
                .map_err(|e| EngineError::Inference(e.to_string()))?;
            let piece = piece.trim();
            if !piece.is_empty() {
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(piece);
            }
        }
        let language = if language == "auto" {
            whisper_rs::get_lang_str(state.full_lang_id_from_state())
                .unwrap_or("en")
                .to_owned()
        } else {
            language.to_owned()
        };
        self.put_state(state);
        Ok(Decoded {
            text,
            language,
            tokens,
        })
    }
}

impl Transcriber for WhisperCpp {
    fn describe(&self) -> EngineInfo {
        self.info.clone()
    }

    fn transcribe(
        &self,
        audio: &[f32],
        options: &TranscribeOptions,
    ) -> Result<Transcription, EngineError> {
        policy::check_audio(audio)?;
        let language = self.language(options.language.as_deref())?;
        let prompt = self.prompt_tokens(&options.hints)?;
        let audio_seconds = audio.len() as f32 / SAMPLE_RATE as f32;
        let reduced = if options.reduced_context {
            policy::reduced_audio_ctx(audio.len(), self.n_audio_ctx)
        } else {
            None
        };

        let started = std::time::Instant::now();
        let mut decoded = self.run(audio, &language, &prompt, reduced)?;
        let mut audio_ctx = reduced.unwrap_or(self.n_audio_ctx);
        if reduced.is_some() && policy::looks_like_a_loop(decoded.tokens, audio_seconds) {
            tracing::debug!(
                tokens = decoded.tokens,
                audio_seconds,
                audio_ctx,
                "reduced context looks like a decoding loop; redoing with the full context"
            );
            decoded = self.run(audio, &language, &prompt, None)?;
            audio_ctx = self.n_audio_ctx;
        }
        tracing::debug!(
            audio_seconds,
            audio_ctx,
            tokens = decoded.tokens,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "transcribed"
        );
        Ok(Transcription {
            text: decoded.text,
            language: decoded.language,
            audio_seconds,
        })
    }
}
