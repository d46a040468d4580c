//! Where the model comes from: a catalog name or a path, and which of the
//! three Whisper formats a path holds.

use std::path::{Path, PathBuf};

use crate::model::{ggml, hf};

pub use athena_models::ModelRef;

/// A Whisper model on disk, by format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelFiles {
    /// A whisper.cpp ggml file.
    Ggml(PathBuf),
    /// A Hugging Face directory (`model.safetensors`, `config.json`,
    /// `tokenizer.json`).
    HuggingFace(PathBuf),
    /// A CTranslate2 (faster-whisper) directory (`model.bin`, ...).
    Ct2(PathBuf),
}

impl ModelFiles {
    /// The format of the model at `path`, told by its files.
    pub fn detect(path: &Path) -> Result<Self, String> {
        if path.is_file() {
            let mut magic = [0u8; 4];
            let read = std::fs::File::open(path)
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic));
            return match read {
                Ok(()) if u32::from_le_bytes(magic) == ggml::GGML_MAGIC => {
                    Ok(Self::Ggml(path.to_owned()))
                }
                Ok(()) => Err(format!(
                    "{} is not a ggml model file (wrong magic number)",
                    path.display()
                )),
                Err(e) => Err(format!("cannot read {}: {e}", path.display())),
            };
        }
        if path.is_dir() {
            if path.join(hf::WEIGHTS).is_file() {
                return Ok(Self::HuggingFace(path.to_owned()));
            }
            if path.join("model.bin").is_file() {
                return Ok(Self::Ct2(path.to_owned()));
            }
            return Err(format!(
                "{} holds neither {} (Hugging Face) nor model.bin (CTranslate2)",
                path.display(),
                hf::WEIGHTS
            ));
        }
        Err(format!("{} does not exist", path.display()))
    }

    /// The format's name, for messages.
    pub fn format(&self) -> &'static str {
        match self {
            Self::Ggml(_) => "a ggml file",
            Self::HuggingFace(_) => "a Hugging Face safetensors directory",
            Self::Ct2(_) => "a CTranslate2 directory",
        }
    }
}

/// A name for derived files (conversions) of the model at `path`: its
/// file name and a digest of the full path, so two models with the same
/// directory name do not share a cache entry.
pub fn cache_key(path: &Path) -> String {
    use sha2::Digest;
    let full = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    let digest = sha2::Sha256::digest(full.to_string_lossy().as_bytes());
    let short: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    let name: String = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("local-{name}-{short}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn formats_are_told_by_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(
            ModelFiles::detect(&d.join("nothing"))
                .unwrap_err()
                .contains("does not exist")
        );
        assert!(ModelFiles::detect(d).unwrap_err().contains("neither"));
        std::fs::write(d.join("model.bin"), b"x").unwrap();
        assert_eq!(
            ModelFiles::detect(d).unwrap(),
            ModelFiles::Ct2(d.to_owned())
        );
        std::fs::write(d.join(hf::WEIGHTS), b"x").unwrap();
        assert_eq!(
            ModelFiles::detect(d).unwrap(),
            ModelFiles::HuggingFace(d.to_owned())
        );
        let file = d.join("ggml.bin");
        std::fs::write(&file, ggml::GGML_MAGIC.to_le_bytes()).unwrap();
        assert_eq!(
            ModelFiles::detect(&file).unwrap(),
            ModelFiles::Ggml(file.clone())
        );
        std::fs::write(&file, b"GGUF").unwrap();
        assert!(ModelFiles::detect(&file).unwrap_err().contains("magic"));
        let key = cache_key(&d.join("my model"));
        assert!(
            key.starts_with("local-my_model-") && key.len() == "local-my_model-".len() + 8,
            "{key}"
        );
    }
}
