//! Typed, layered configuration: built-in defaults, then a TOML file, then
//! environment variables `ATHENA__SECTION__KEY` (`__` separates levels).
//!
//! One file configures every service: each reads its own section (`[stt]`,
//! `[orchestrator]`, ...), so the same file serves one process or many. Unknown
//! keys inside a section are errors, so a typo is caught at startup rather than
//! silently ignored.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The environment prefix; `ATHENA__STT__WYOMING__ADDR` sets `stt.wyoming.addr`.
pub const ENV_PREFIX: &str = "ATHENA__";

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The named file does not exist.
    #[error("config file {0} does not exist")]
    MissingFile(PathBuf),
    /// A value has the wrong type, a key is unknown, or the file is not TOML.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// The values parse but do not make sense together.
    #[error("invalid configuration in [{section}]: {reason}")]
    Rejected {
        /// The section.
        section: String,
        /// What is wrong.
        reason: String,
    },
}

/// Checks that go beyond types (ports that clash, empty names, ...).
pub trait Validate {
    /// `Err` says what is wrong, for people.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Where configuration comes from: an optional file, then the environment.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    file: Option<PathBuf>,
}

impl ConfigSource {
    /// Reads `file` (if given) and the environment.
    pub fn new(file: Option<PathBuf>) -> Result<Self, ConfigError> {
        if let Some(path) = &file
            && !path.is_file()
        {
            return Err(ConfigError::MissingFile(path.clone()));
        }
        Ok(Self { file })
    }

    /// The file, if one was given.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Loads and validates one section.
    pub fn section<T>(&self, name: &str) -> Result<T, ConfigError>
    where
        T: DeserializeOwned + Serialize + Default + Validate,
    {
        self.section_with_defaults(name, T::default())
    }

    /// Loads and validates one section whose defaults depend on more than its
    /// type (the two LLM routers share a type but not their ports).
    pub fn section_with_defaults<T>(&self, name: &str, defaults: T) -> Result<T, ConfigError>
    where
        T: DeserializeOwned + Serialize + Validate,
    {
        let mut figment = Figment::from(Serialized::default(name, defaults));
        if let Some(path) = &self.file {
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(Env::prefixed(ENV_PREFIX).split("__"));
        let value: T = figment
            .extract_inner(name)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        value.validate().map_err(|reason| ConfigError::Rejected {
            section: name.to_owned(),
            reason,
        })?;
        Ok(value)
    }
}

/// A secret (an access token, an API key): never printed, logged or
/// serialized; empty when none was given.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when none was given.
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.trim().to_owned())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_empty() {
            "(none)"
        } else {
            "(hidden)"
        })
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.is_empty() { "" } else { "(hidden)" })
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::from(
            <String as serde::Deserialize>::deserialize(d)?.as_str(),
        ))
    }
}

#[cfg(test)]
mod tests {
    // figment's test jail returns its own (large) error type.
    #![allow(clippy::unwrap_used, clippy::result_large_err)]
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Demo {
        port: u16,
        name: String,
        nested: Nested,
    }

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Nested {
        enabled: bool,
    }

    impl Default for Demo {
        fn default() -> Self {
            Self {
                port: 1,
                name: "default".into(),
                nested: Nested { enabled: false },
            }
        }
    }

    impl Validate for Demo {
        fn validate(&self) -> Result<(), String> {
            if self.port == 0 {
                return Err("port must not be 0".into());
            }
            Ok(())
        }
    }

    #[test]
    fn layers_defaults_file_env() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("a.toml", "[demo]\nport = 2\nname = \"file\"\n")?;
            jail.set_env("ATHENA__DEMO__NAME", "env");
            jail.set_env("ATHENA__DEMO__NESTED__ENABLED", "true");
            let source = ConfigSource::new(Some("a.toml".into())).unwrap();
            let demo: Demo = source.section("demo").unwrap();
            assert_eq!(demo.port, 2, "file beats defaults");
            assert_eq!(demo.name, "env", "env beats file");
            assert!(demo.nested.enabled, "env reaches nested keys");
            Ok(())
        });
    }

    #[test]
    fn reports_bad_config_clearly() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("typo.toml", "[demo]\nprot = 2\n")?;
            let err = ConfigSource::new(Some("typo.toml".into()))
                .unwrap()
                .section::<Demo>("demo")
                .unwrap_err();
            assert!(err.to_string().contains("prot"), "{err}");

            jail.create_file("type.toml", "[demo]\nport = \"many\"\n")?;
            let err = ConfigSource::new(Some("type.toml".into()))
                .unwrap()
                .section::<Demo>("demo")
                .unwrap_err();
            assert!(err.to_string().contains("port"), "{err}");

            jail.set_env("ATHENA__DEMO__PORT", "0");
            let err = ConfigSource::new(None)
                .unwrap()
                .section::<Demo>("demo")
                .unwrap_err();
            assert!(err.to_string().contains("must not be 0"), "{err}");

            let err = ConfigSource::new(Some("missing.toml".into())).unwrap_err();
            assert!(matches!(err, ConfigError::MissingFile(_)));
            Ok(())
        });
    }
}
