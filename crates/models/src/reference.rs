//! A model setting: a name in the catalog, or a path of the user's.

use std::path::{Path, PathBuf};

/// A model setting: a catalog name or a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelRef {
    /// A name in the model catalog (`whisper-tiny.en`).
    Catalog(String),
    /// A file or directory of the user's.
    Path(PathBuf),
}

impl ModelRef {
    /// Paths are absolute, or start with `.` or `~`, or contain a `/`;
    /// anything else is a catalog name.
    pub fn parse(setting: &str) -> Self {
        let s = setting.trim();
        if s.starts_with('.') || s.contains('/') || s.contains(std::path::MAIN_SEPARATOR) {
            let path = match (s.strip_prefix("~/"), std::env::var_os("HOME")) {
                (Some(rest), Some(home)) => Path::new(&home).join(rest),
                _ => PathBuf::from(s),
            };
            Self::Path(path)
        } else {
            Self::Catalog(s.to_owned())
        }
    }

    /// What to call it: the catalog name, or the file name without its
    /// extension (`.onnx`, `.gguf`, ...).
    pub fn name(&self) -> String {
        match self {
            Self::Catalog(name) => name.clone(),
            Self::Path(path) => path
                .file_stem()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths_are_told_apart() {
        assert_eq!(
            ModelRef::parse("whisper-tiny.en"),
            ModelRef::Catalog("whisper-tiny.en".into())
        );
        assert_eq!(
            ModelRef::parse("/m/ggml.bin"),
            ModelRef::Path("/m/ggml.bin".into())
        );
        assert_eq!(ModelRef::parse("./tiny"), ModelRef::Path("./tiny".into()));
        assert_eq!(ModelRef::parse("/m/joe.onnx").name(), "joe");
        assert_eq!(ModelRef::parse("smollm2").name(), "smollm2");
        assert_eq!(
            ModelRef::parse("models/tiny"),
            ModelRef::Path("models/tiny".into())
        );
    }
}
