//! Server configuration, layered: command-line flags over environment variables over an
//! optional TOML file over defaults. The binary parses flags and environment (clap does
//! both); this module owns the file format, the defaults and the merge.

use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

/// Where `finops serve` listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// The embedded store used unless told otherwise: one SQLite file, no server needed.
pub const DEFAULT_STORE: &str = "sqlite://finops-data/finops.db";

/// The resolved configuration of a running server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The gRPC listen address.
    pub listen: SocketAddr,
    /// The event store URL: `sqlite://PATH` or `postgres://…`.
    pub store: String,
    /// Where to export spans over OTLP/gRPC, if anywhere.
    pub otlp_endpoint: Option<String>,
}

/// One layer of configuration; unset fields fall through to the next layer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigLayer {
    /// `listen = "0.0.0.0:50051"`
    pub listen: Option<String>,
    /// `store = "postgres://…"`
    pub store: Option<String>,
    /// `otlp_endpoint = "http://collector:4317"`
    pub otlp_endpoint: Option<String>,
}

/// A configuration that cannot be used, named precisely.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {reason}")]
    Unreadable {
        /// The file.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// The file is not valid TOML for this schema.
    #[error("config file {path} is invalid: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What the TOML parser said (with line and column).
        reason: String,
    },
    /// A value has the wrong form.
    #[error("invalid `{field}` = `{value}`: {reason}")]
    Value {
        /// The setting.
        field: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ConfigLayer {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Unreadable { path: path.display().to_string(), reason: e.to_string() })?;
        toml::from_str(&text)
            .map_err(|e| ConfigError::Invalid { path: path.display().to_string(), reason: e.to_string() })
    }

    /// This layer with the gaps filled from `lower`.
    pub fn over(self, lower: ConfigLayer) -> ConfigLayer {
        ConfigLayer {
            listen: self.listen.or(lower.listen),
            store: self.store.or(lower.store),
            otlp_endpoint: self.otlp_endpoint.or(lower.otlp_endpoint),
        }
    }

    /// Fills what is still unset with the defaults and checks the values.
    pub fn resolve(self) -> Result<ServerConfig, ConfigError> {
        let listen = self.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen.parse().map_err(|e: std::net::AddrParseError| ConfigError::Value {
            field: "listen",
            value: listen.clone(),
            reason: format!("{e} (expected HOST:PORT such as 127.0.0.1:50051)"),
        })?;
        let store = self.store.unwrap_or_else(|| DEFAULT_STORE.to_owned());
        if !(store.starts_with("sqlite:") || store.starts_with("postgres://") || store.starts_with("postgresql://")) {
            return Err(ConfigError::Value {
                field: "store",
                value: store,
                reason: "expected sqlite://PATH or postgres://USER@HOST/DB".into(),
            });
        }
        let otlp_endpoint = self.otlp_endpoint.filter(|e| !e.trim().is_empty());
        Ok(ServerConfig { listen, store, otlp_endpoint })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_environment_beat_file_beat_defaults() {
        let flags = ConfigLayer { listen: Some("0.0.0.0:1".into()), ..Default::default() };
        let file: ConfigLayer = toml::from_str("listen = \"0.0.0.0:2\"\nstore = \"postgres://db/x\"").unwrap();
        let config = flags.over(file).resolve().unwrap();
        assert_eq!(config.listen.port(), 1);
        assert_eq!(config.store, "postgres://db/x");
        assert_eq!(config.otlp_endpoint, None);
        let defaults = ConfigLayer::default().resolve().unwrap();
        assert_eq!(defaults.store, DEFAULT_STORE);
        assert_eq!(defaults.listen.to_string(), DEFAULT_LISTEN);
    }

    #[test]
    fn bad_values_name_the_setting() {
        let err = ConfigLayer { listen: Some("nowhere".into()), ..Default::default() }.resolve().unwrap_err();
        assert!(err.to_string().starts_with("invalid `listen` = `nowhere`"), "{err}");
        let err = ConfigLayer { store: Some("mysql://x".into()), ..Default::default() }.resolve().unwrap_err();
        assert!(err.to_string().contains("`store`"), "{err}");
        let err = toml::from_str::<ConfigLayer>("lissten = \"x\"").unwrap_err();
        assert!(err.to_string().contains("lissten"), "{err}");
    }
}
