//! Converts a CTranslate2 (faster-whisper) Whisper directory into a Hugging
//! Face Whisper directory, the layout candle (and `transformers`) loads:
//!
//! ```text
//! model.safetensors   weights, Hugging Face names (below); matrices and
//!                     convolution kernels f16, the rest f32
//! config.json         WhisperConfig: sizes, suppressed tokens
//! tokenizer.json      copied from the CTranslate2 directory
//! ```
//!
//! The tensors are those of [`super::layout`], renamed segment by segment:
//! `encoder.blocks.N.attn.query` → `model.encoder.layers.N.self_attn.q_proj`,
//! `decoder.blocks.N.cross_attn_ln` → `model.decoder.layers.N.encoder_attn_layer_norm`,
//! `mlp.0`/`mlp.2` → `fc1`/`fc2`, `mlp_ln` → `final_layer_norm`,
//! `ln_post`/`ln` → `layer_norm`, `token_embedding` → `embed_tokens`,
//! `positional_embedding` → `embed_positions.weight`.

use std::collections::HashMap;
use std::path::Path;

use safetensors::Dtype;
use safetensors::tensor::TensorView;
use serde_json::{Value, json};

use super::ct2::Ct2Model;
use super::ggml::ConvertError;
use super::layout::{self, Role, TensorSink, WhisperHparams, WriteError};

/// The weights file in a Hugging Face model directory.
pub const WEIGHTS: &str = "model.safetensors";
/// The model configuration in a Hugging Face model directory.
pub const CONFIG: &str = "config.json";
/// The tokenizer in a Hugging Face (or CTranslate2) model directory.
pub const TOKENIZER: &str = "tokenizer.json";

/// The Hugging Face name of a tensor named as in OpenAI's checkpoints.
pub fn hf_name(openai: &str) -> String {
    let segments: Vec<&str> = openai.split('.').collect();
    let mut out = vec!["model"];
    let mut i = 0;
    while i < segments.len() {
        let seg = segments[i];
        let next = segments.get(i + 1).copied();
        let mapped = match (seg, next) {
            ("mlp", Some("0")) | ("mlp", Some("2")) => {
                i += 1;
                if next == Some("0") { "fc1" } else { "fc2" }
            }
            ("blocks", _) => "layers",
            ("attn_ln", _) => "self_attn_layer_norm",
            ("attn", _) => "self_attn",
            ("cross_attn_ln", _) => "encoder_attn_layer_norm",
            ("cross_attn", _) => "encoder_attn",
            ("query", _) => "q_proj",
            ("key", _) => "k_proj",
            ("value", _) => "v_proj",
            ("out", _) => "out_proj",
            ("mlp_ln", _) => "final_layer_norm",
            ("ln_post" | "ln", _) => "layer_norm",
            ("token_embedding", _) => "embed_tokens",
            ("positional_embedding", _) => "embed_positions.weight",
            (other, _) => other,
        };
        out.push(mapped);
        i += 1;
    }
    out.join(".")
}

/// Collects the layout's tensors under Hugging Face names.
#[derive(Default)]
struct Collector {
    tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
}

impl TensorSink for Collector {
    fn tensor(
        &mut self,
        name: &str,
        shape: &[usize],
        data: &[f32],
        role: Role,
    ) -> Result<(), WriteError> {
        let (dtype, bytes): (Dtype, Vec<u8>) = match role {
            Role::Matrix | Role::ConvKernel => (
                Dtype::F16,
                data.iter()
                    .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                    .collect(),
            ),
            Role::ConvBias | Role::Vector | Role::Position => (
                Dtype::F32,
                data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
        };
        self.tensors
            .push((hf_name(name), dtype, shape.to_vec(), bytes));
        Ok(())
    }
}

/// The `config.json` of the converted model: Whisper's sizes under
/// Hugging Face's names, and the tokens to suppress taken from the
/// CTranslate2 `config.json` where there is one.
fn hf_config(
    model: &Ct2Model,
    hp: &WhisperHparams,
    ct2_config: &Value,
) -> Result<Value, ConvertError> {
    let ffn = |side: &str| -> Result<usize, ConvertError> {
        Ok(model
            .get(&format!("{side}/layer_0/ffn/linear_0/bias"))?
            .len())
    };
    let ids = |key: &str| ct2_config.get(key).cloned().unwrap_or_else(|| json!([]));
    // Every Whisper vocabulary puts <|endoftext|> right before
    // <|startoftranscript|>; English-only ones start at 50256, the others
    // one later.
    let eot = if hp.n_vocab == 51864 { 50256 } else { 50257 };
    Ok(json!({
        "model_type": "whisper",
        "architectures": ["WhisperForConditionalGeneration"],
        "vocab_size": hp.n_vocab,
        "num_mel_bins": hp.n_mels,
        "d_model": hp.n_audio_state,
        "encoder_layers": hp.n_audio_layer,
        "encoder_attention_heads": hp.n_audio_head,
        "encoder_ffn_dim": ffn("encoder")?,
        "decoder_layers": hp.n_text_layer,
        "decoder_attention_heads": hp.n_text_head,
        "decoder_ffn_dim": ffn("decoder")?,
        "max_source_positions": hp.n_audio_ctx,
        "max_target_positions": hp.n_text_ctx,
        "activation_function": "gelu",
        "scale_embedding": false,
        "tie_word_embeddings": true,
        "torch_dtype": "float16",
        "eos_token_id": eot,
        "pad_token_id": eot,
        "bos_token_id": eot,
        "decoder_start_token_id": eot + 1,
        "suppress_tokens": ids("suppress_ids"),
        "begin_suppress_tokens": ids("suppress_ids_begin"),
    }))
}

/// Converts the CTranslate2 Whisper model in `ct2_dir` into a Hugging Face
/// directory at `out` (which must not exist). The directory appears
/// atomically: it is written under a temporary name next to `out` and
/// renamed when complete.
pub fn convert_ct2_to_hf(ct2_dir: &Path, out: &Path) -> Result<(), ConvertError> {
    let started = std::time::Instant::now();
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ConvertError::Io { path, source }
    };
    let tokenizer = ct2_dir.join(TOKENIZER);
    if !tokenizer.is_file() {
        return Err(ConvertError::MissingFile {
            dir: ct2_dir.to_owned(),
            file: TOKENIZER,
        });
    }
    let (model, hp) = layout::read_whisper(ct2_dir)?;
    let ct2_config_path = ct2_dir.join("config.json");
    let ct2_config: Value = match std::fs::read(&ct2_config_path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| ConvertError::Config {
            path: ct2_config_path.clone(),
            reason: format!("not valid JSON: {e}"),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => json!({}),
        Err(e) => return Err(io(&ct2_config_path)(e)),
    };

    let mut collector = Collector::default();
    layout::emit(&model, &hp, &mut collector).map_err(|e| e.with_path(out))?;
    let config = hf_config(&model, &hp, &ct2_config)?;

    let (parent, prefix) = layout::staging(out)?;
    let tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".partial")
        .tempdir_in(&parent)
        .map_err(io(&parent))?;

    let weights = tmp.path().join(WEIGHTS);
    let views = collector
        .tensors
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            TensorView::new(*dtype, shape.clone(), bytes).map(|view| (name.clone(), view))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ConvertError::Hparams(format!("inconsistent tensor: {e}")))?;
    let metadata = HashMap::from([("format".to_owned(), "pt".to_owned())]);
    safetensors::tensor::serialize_to_file(views, Some(metadata), &weights).map_err(|e| {
        ConvertError::Io {
            path: weights.clone(),
            source: std::io::Error::other(e.to_string()),
        }
    })?;
    let config_path = tmp.path().join(CONFIG);
    let pretty =
        serde_json::to_vec_pretty(&config).map_err(|e| ConvertError::Hparams(e.to_string()))?;
    std::fs::write(&config_path, pretty).map_err(io(&config_path))?;
    let tokenizer_copy = tmp.path().join(TOKENIZER);
    std::fs::copy(&tokenizer, &tokenizer_copy).map_err(io(&tokenizer_copy))?;

    let kept = tmp.keep();
    std::fs::rename(&kept, out).map_err(|source| {
        let _ = std::fs::remove_dir_all(&kept);
        ConvertError::Io {
            path: out.to_owned(),
            source,
        }
    })?;
    tracing::info!(
        from = %ct2_dir.display(),
        to = %out.display(),
        tensors = collector.tensors.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "converted CTranslate2 Whisper model to safetensors"
    );
    Ok(())
}

/// Converts unless `out` already holds a converted model; returns whether
/// it converted. `out` should be a cache path that names the source model.
pub fn ensure_hf(ct2_dir: &Path, out: &Path) -> Result<bool, ConvertError> {
    if out.join(WEIGHTS).is_file() && out.join(CONFIG).is_file() {
        return Ok(false);
    }
    convert_ct2_to_hf(ct2_dir, out)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn names_follow_transformers() {
        let cases = [
            ("encoder.conv1.weight", "model.encoder.conv1.weight"),
            (
                "encoder.positional_embedding",
                "model.encoder.embed_positions.weight",
            ),
            (
                "encoder.blocks.3.attn.query.weight",
                "model.encoder.layers.3.self_attn.q_proj.weight",
            ),
            (
                "encoder.blocks.0.attn_ln.bias",
                "model.encoder.layers.0.self_attn_layer_norm.bias",
            ),
            (
                "encoder.blocks.0.attn.out.weight",
                "model.encoder.layers.0.self_attn.out_proj.weight",
            ),
            (
                "encoder.blocks.1.mlp.0.weight",
                "model.encoder.layers.1.fc1.weight",
            ),
            (
                "encoder.blocks.1.mlp.2.bias",
                "model.encoder.layers.1.fc2.bias",
            ),
            (
                "encoder.blocks.1.mlp_ln.weight",
                "model.encoder.layers.1.final_layer_norm.weight",
            ),
            ("encoder.ln_post.weight", "model.encoder.layer_norm.weight"),
            (
                "decoder.token_embedding.weight",
                "model.decoder.embed_tokens.weight",
            ),
            (
                "decoder.blocks.2.cross_attn_ln.weight",
                "model.decoder.layers.2.encoder_attn_layer_norm.weight",
            ),
            (
                "decoder.blocks.2.cross_attn.value.bias",
                "model.decoder.layers.2.encoder_attn.v_proj.bias",
            ),
            ("decoder.ln.bias", "model.decoder.layer_norm.bias"),
        ];
        for (openai, hf) in cases {
            assert_eq!(hf_name(openai), hf, "{openai}");
        }
    }

    #[test]
    fn missing_tokenizer_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("model.bin"), b"x").unwrap();
        let out = dir.path().join("out");
        let err = convert_ct2_to_hf(dir.path(), &out).unwrap_err();
        assert!(err.to_string().contains(TOKENIZER), "{err}");
        assert!(!out.exists());
    }
}
