//! The Whisper tensor layout every converter shares: CTranslate2 variables
//! become tensors named as OpenAI's checkpoints (and whisper.cpp) name them,
//! in PyTorch shapes (outermost dimension first). A [`TensorSink`] (the ggml
//! writer, the safetensors writer) renames them and picks storage types by
//! [`Role`]. The mapping is tabled in [`super::ggml`].

use std::path::{Path, PathBuf};

use super::ct2::{Ct2Error, Ct2Model};
use super::ggml::ConvertError;

/// What a tensor is, which decides how each format stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// A weight matrix `[out, in]` (linear layers, token embeddings).
    Matrix,
    /// A convolution kernel `[out, in, width]`.
    ConvKernel,
    /// A convolution bias `[out]`.
    ConvBias,
    /// A vector: biases, layer-norm weights.
    Vector,
    /// Positional embeddings `[positions, width]`.
    Position,
}

/// Where [`emit`] puts tensors.
pub(crate) trait TensorSink {
    /// One tensor: `name` in OpenAI's naming, `shape` outermost first.
    fn tensor(
        &mut self,
        name: &str,
        shape: &[usize],
        data: &[f32],
        role: Role,
    ) -> Result<(), WriteError>;
}

/// Whisper's hyperparameters, as whisper.cpp's file header stores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WhisperHparams {
    /// Vocabulary size (51864 for `.en` models, 51865 or 51866 otherwise).
    pub n_vocab: usize,
    /// Encoder positions (1500 = 30 s).
    pub n_audio_ctx: usize,
    /// Encoder width.
    pub n_audio_state: usize,
    /// Encoder attention heads.
    pub n_audio_head: usize,
    /// Encoder layers.
    pub n_audio_layer: usize,
    /// Decoder positions (448).
    pub n_text_ctx: usize,
    /// Decoder width.
    pub n_text_state: usize,
    /// Decoder attention heads.
    pub n_text_head: usize,
    /// Decoder layers.
    pub n_text_layer: usize,
    /// Mel bands (80, or 128 for large-v3).
    pub n_mels: usize,
}

impl WhisperHparams {
    /// Reads the hyperparameters from a CTranslate2 Whisper model's variables.
    pub fn from_ct2(model: &Ct2Model) -> Result<Self, ConvertError> {
        let shape = |name: &str, rank: usize| -> Result<Vec<usize>, ConvertError> {
            let var = model.get(name)?;
            if var.shape.len() != rank {
                return Err(ConvertError::Hparams(format!(
                    "{name} has rank {}, expected {rank}",
                    var.shape.len()
                )));
            }
            Ok(var.shape.to_vec())
        };
        let embeddings = shape("decoder/embeddings/weight", 2)?;
        let audio_pos = shape("encoder/position_encodings/encodings", 2)?;
        let text_pos = shape("decoder/position_encodings/encodings", 2)?;
        let conv1 = shape("encoder/conv1/weight", 3)?;
        let count_layers = |side: &str| {
            (0..)
                .take_while(|i| model.contains(&format!("{side}/layer_{i}/ffn/linear_0/weight")))
                .count()
        };
        let heads = |side: &str, width: usize| -> Result<usize, ConvertError> {
            let name = format!("{side}/num_heads");
            if !model.contains(&name) {
                // Older specs: Whisper's heads are always 64 wide.
                return Ok(width / 64);
            }
            let n = model.get(&name)?.scalar_i64()?;
            usize::try_from(n)
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| ConvertError::Hparams(format!("{name} is {n}")))
        };
        let n_audio_state = audio_pos[1];
        let n_text_state = embeddings[1];
        let hp = Self {
            n_vocab: embeddings[0],
            n_audio_ctx: audio_pos[0],
            n_audio_state,
            n_audio_head: heads("encoder", n_audio_state)?,
            n_audio_layer: count_layers("encoder"),
            n_text_ctx: text_pos[0],
            n_text_state,
            n_text_head: heads("decoder", n_text_state)?,
            n_text_layer: count_layers("decoder"),
            n_mels: conv1[1],
        };
        hp.validate()?;
        Ok(hp)
    }

    pub(crate) fn validate(&self) -> Result<(), ConvertError> {
        let bad = |reason: String| Err(ConvertError::Hparams(reason));
        if self.n_text_state != self.n_audio_state {
            return bad(format!(
                "decoder width {} differs from encoder width {} (whisper.cpp needs them equal)",
                self.n_text_state, self.n_audio_state
            ));
        }
        if self.n_audio_layer == 0 || self.n_text_layer == 0 {
            return bad("no encoder or decoder layers found".into());
        }
        for (what, width, heads) in [
            ("encoder", self.n_audio_state, self.n_audio_head),
            ("decoder", self.n_text_state, self.n_text_head),
        ] {
            if heads == 0 || width % heads != 0 {
                return bad(format!(
                    "{what} width {width} is not divisible by {heads} heads"
                ));
            }
        }
        let fields = [
            self.n_vocab,
            self.n_audio_ctx,
            self.n_audio_state,
            self.n_text_ctx,
            self.n_mels,
        ];
        if fields.iter().any(|&v| v == 0 || v > i32::MAX as usize) {
            return bad(format!("a dimension is zero or too large: {self:?}"));
        }
        Ok(())
    }
}

/// An error while writing, before the output path is known to the message.
pub(crate) enum WriteError {
    Convert(ConvertError),
    Io(std::io::Error),
}

impl WriteError {
    pub(crate) fn with_path(self, path: &Path) -> ConvertError {
        match self {
            Self::Convert(e) => e,
            Self::Io(source) => ConvertError::Io {
                path: path.to_owned(),
                source,
            },
        }
    }
}

impl From<std::io::Error> for WriteError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<ConvertError> for WriteError {
    fn from(e: ConvertError) -> Self {
        Self::Convert(e)
    }
}

impl From<Ct2Error> for WriteError {
    fn from(e: Ct2Error) -> Self {
        Self::Convert(e.into())
    }
}

/// A variable's values, checked against the shape the hyperparameters imply.
fn load(model: &Ct2Model, name: &str, expected: &[usize]) -> Result<Vec<f32>, ConvertError> {
    let (shape, values) = model.dequantized(name)?;
    if shape != expected {
        return Err(ConvertError::Shape {
            name: name.to_owned(),
            expected: expected.to_vec(),
            found: shape,
        });
    }
    Ok(values)
}

/// Reads the CTranslate2 Whisper model in `ct2_dir` (its `model.bin`)
/// and its hyperparameters.
pub(crate) fn read_whisper(ct2_dir: &Path) -> Result<(Ct2Model, WhisperHparams), ConvertError> {
    let model_path = ct2_dir.join("model.bin");
    if !model_path.is_file() {
        return Err(ConvertError::MissingFile {
            dir: ct2_dir.to_owned(),
            file: "model.bin",
        });
    }
    let model = Ct2Model::read(&model_path)?;
    if model.spec_name() != "WhisperSpec" {
        return Err(ConvertError::UnsupportedSpec {
            found: model.spec_name().to_owned(),
        });
    }
    let hp = WhisperHparams::from_ct2(&model)?;
    Ok((model, hp))
}

/// Where a converter stages `out` before renaming it into place: the
/// folder `out` goes in (created) and the prefix of a hidden temporary name
/// there (`.<name>.`).
pub(crate) fn staging(out: &Path) -> Result<(PathBuf, String), ConvertError> {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|source| ConvertError::Io {
        path: dir.clone(),
        source,
    })?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    Ok((dir, format!(".{name}.")))
}

/// Emits every tensor of the Whisper model `model` (with hyperparameters
/// `hp`) into `sink`, encoder first, in the order whisper.cpp reads them.
pub(crate) fn emit(
    model: &Ct2Model,
    hp: &WhisperHparams,
    sink: &mut impl TensorSink,
) -> Result<(), WriteError> {
    // validate() made the encoder and decoder widths equal.
    let (d, n_mels) = (hp.n_audio_state, hp.n_mels);
    let mut e = Emitter { sink, model, d };

    e.copy(
        "encoder/conv1/weight",
        "encoder.conv1.weight",
        &[d, n_mels, 3],
        Role::ConvKernel,
    )?;
    e.copy(
        "encoder/conv1/bias",
        "encoder.conv1.bias",
        &[d],
        Role::ConvBias,
    )?;
    e.copy(
        "encoder/conv2/weight",
        "encoder.conv2.weight",
        &[d, d, 3],
        Role::ConvKernel,
    )?;
    e.copy(
        "encoder/conv2/bias",
        "encoder.conv2.bias",
        &[d],
        Role::ConvBias,
    )?;
    e.copy(
        "encoder/position_encodings/encodings",
        "encoder.positional_embedding",
        &[hp.n_audio_ctx, d],
        Role::Position,
    )?;
    for i in 0..hp.n_audio_layer {
        let src = |x: &str| format!("encoder/layer_{i}/{x}");
        let dst = |x: &str| format!("encoder.blocks.{i}.{x}");
        e.self_attention(&src("self_attention"), &dst("attn"))?;
        e.mlp(&src("ffn"), &dst(""))?;
    }
    e.norm("encoder/layer_norm", "encoder.ln_post")?;

    e.copy(
        "decoder/embeddings/weight",
        "decoder.token_embedding.weight",
        &[hp.n_vocab, d],
        Role::Matrix,
    )?;
    e.copy(
        "decoder/position_encodings/encodings",
        "decoder.positional_embedding",
        &[hp.n_text_ctx, d],
        Role::Position,
    )?;
    for i in 0..hp.n_text_layer {
        let src = |x: &str| format!("decoder/layer_{i}/{x}");
        let dst = |x: &str| format!("decoder.blocks.{i}.{x}");
        e.self_attention(&src("self_attention"), &dst("attn"))?;
        e.norm(&src("attention/layer_norm"), &dst("cross_attn_ln"))?;
        e.linear(&src("attention/linear_0"), &dst("cross_attn.query"))?;
        e.fused(
            &src("attention/linear_1"),
            &dst("cross_attn"),
            &["key", "value"],
        )?;
        e.linear(&src("attention/linear_2"), &dst("cross_attn.out"))?;
        e.mlp(&src("ffn"), &dst(""))?;
    }
    e.norm("decoder/layer_norm", "decoder.ln")?;
    Ok(())
}

/// Emits tensors from the CTranslate2 variables of a model of width `d`.
struct Emitter<'a, S> {
    sink: &'a mut S,
    model: &'a Ct2Model,
    d: usize,
}

impl<S: TensorSink> Emitter<'_, S> {
    /// A variable as it is (shape checked).
    fn copy(
        &mut self,
        src: &str,
        dst: &str,
        shape: &[usize],
        role: Role,
    ) -> Result<(), WriteError> {
        let values = load(self.model, src, shape)?;
        self.sink.tensor(dst, shape, &values, role)
    }

    /// A layer norm: `gamma`/`beta` become `weight`/`bias`.
    fn norm(&mut self, src: &str, dst: &str) -> Result<(), WriteError> {
        let d = [self.d];
        self.copy(
            &format!("{src}/gamma"),
            &format!("{dst}.weight"),
            &d,
            Role::Vector,
        )?;
        self.copy(
            &format!("{src}/beta"),
            &format!("{dst}.bias"),
            &d,
            Role::Vector,
        )
    }

    /// A linear layer `[out, in]` with its bias.
    fn linear_sized(
        &mut self,
        src: &str,
        dst: &str,
        out: usize,
        inputs: usize,
    ) -> Result<(), WriteError> {
        self.copy(
            &format!("{src}/weight"),
            &format!("{dst}.weight"),
            &[out, inputs],
            Role::Matrix,
        )?;
        self.copy(
            &format!("{src}/bias"),
            &format!("{dst}.bias"),
            &[out],
            Role::Vector,
        )
    }

    /// A square linear layer `[d, d]`.
    fn linear(&mut self, src: &str, dst: &str) -> Result<(), WriteError> {
        self.linear_sized(src, dst, self.d, self.d)
    }

    /// A fused projection `[parts × d, d]`, split by rows into
    /// `dst.<part>`; the key gets no bias (Whisper has none).
    fn fused(&mut self, src: &str, dst: &str, parts: &[&str]) -> Result<(), WriteError> {
        let (d, n) = (self.d, parts.len());
        let weight = load(self.model, &format!("{src}/weight"), &[n * d, d])?;
        let bias = load(self.model, &format!("{src}/bias"), &[n * d])?;
        for (j, part) in parts.iter().enumerate() {
            let rows = &weight[j * d * d..(j + 1) * d * d];
            self.sink
                .tensor(&format!("{dst}.{part}.weight"), &[d, d], rows, Role::Matrix)?;
            let b = &bias[j * d..(j + 1) * d];
            if *part == "key" {
                let max = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                if max > 0.0 {
                    tracing::debug!(variable = %src, max, "dropping a non-zero key bias (softmax cancels it)");
                }
            } else {
                self.sink
                    .tensor(&format!("{dst}.{part}.bias"), &[d], b, Role::Vector)?;
            }
        }
        Ok(())
    }

    /// A self-attention block `src` (`layer_norm`, fused `linear_0`,
    /// `linear_1`) as `<dst>_ln`, `<dst>.query|key|value`, `<dst>.out`.
    fn self_attention(&mut self, src: &str, dst: &str) -> Result<(), WriteError> {
        self.norm(&format!("{src}/layer_norm"), &format!("{dst}_ln"))?;
        self.fused(&format!("{src}/linear_0"), dst, &["query", "key", "value"])?;
        self.linear(&format!("{src}/linear_1"), &format!("{dst}.out"))
    }

    /// The feed-forward block `src` (`layer_norm`, `linear_0`, `linear_1`)
    /// as `<block>mlp_ln`, `<block>mlp.0`, `<block>mlp.2`.
    fn mlp(&mut self, src: &str, block: &str) -> Result<(), WriteError> {
        let d = self.d;
        self.norm(&format!("{src}/layer_norm"), &format!("{block}mlp_ln"))?;
        let hidden = self.model.get(&format!("{src}/linear_0/bias"))?.len();
        self.linear_sized(
            &format!("{src}/linear_0"),
            &format!("{block}mlp.0"),
            hidden,
            d,
        )?;
        self.linear_sized(
            &format!("{src}/linear_1"),
            &format!("{block}mlp.2"),
            d,
            hidden,
        )
    }
}
