//! Why a configuration was refused, and where the offending value came from.

use std::fmt;
use std::path::PathBuf;

/// Where a configuration value came from. Shown in error messages so that an operator knows
/// whether to fix the file or the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Nobody set the key; the built-in default applies.
    Default,
    /// The TOML file; `path` is absent when the text was handed over directly
    /// ([`NodeConfig::load_from`](crate::NodeConfig::load_from)).
    File {
        /// The file the value was read from, if there was one.
        path: Option<PathBuf>,
    },
    /// An environment variable.
    Env {
        /// The variable's exact name, e.g. `METAMESH_RAFT__HEARTBEAT_MS`.
        var: String,
    },
}

impl Origin {
    /// The environment variable the value came from, if it came from one.
    pub fn env_var(&self) -> Option<&str> {
        match self {
            Origin::Env { var } => Some(var),
            Origin::Default | Origin::File { .. } => None,
        }
    }
}

/// Renders as a parenthesised suffix (with a leading space) or as nothing, so that messages read
/// `invalid value for raft.heartbeat_ms (from METAMESH_RAFT__HEARTBEAT_MS): …`.
impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str(" (default)"),
            Origin::File { path: Some(path) } => write!(f, " (in {})", path.display()),
            Origin::File { path: None } => Ok(()),
            Origin::Env { var } => write!(f, " (from {var})"),
        }
    }
}

/// A configuration that cannot be used. Every variant about a value names its key as a dotted
/// path (`raft.election_timeout_min_ms`, `peers[1].id`) and says where the value came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("cannot read config file {}", path.display())]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The file is not TOML. The message carries toml's line, column and excerpt.
    #[error("invalid toml{}: {message}", file.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default())]
    Syntax {
        /// The file, when there was one.
        file: Option<PathBuf>,
        /// The parser's explanation, with position.
        message: String,
    },
    /// An environment variable looks like a configuration override but cannot be one.
    #[error("invalid environment variable {var}: {reason}")]
    EnvVar {
        /// The variable's exact name.
        var: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A key without a default was set neither in the file nor in the environment.
    #[error("missing required key {key} (set it in the file or with {env_var})")]
    Missing {
        /// Dotted path of the key.
        key: String,
        /// The environment variable that could set it.
        env_var: String,
    },
    /// A key that does not exist, most likely a typo; refused so that it is not silently ignored.
    #[error("unknown key {key}{origin}: expected one of {expected}")]
    Unknown {
        /// Dotted path of the key as written.
        key: String,
        /// Where the key was written.
        origin: Origin,
        /// The keys that are allowed at that place, comma-separated.
        expected: String,
    },
    /// A key whose value has the wrong type or breaks a rule.
    #[error("invalid value for {key}{origin}: {reason}")]
    Invalid {
        /// Dotted path of the key.
        key: String,
        /// Where the value came from.
        origin: Origin,
        /// What was expected and what was found.
        reason: String,
    },
}

impl ConfigError {
    /// The dotted path of the key this error is about, if it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Missing { key, .. } | ConfigError::Unknown { key, .. } | ConfigError::Invalid { key, .. } => {
                Some(key)
            }
            ConfigError::Read { .. } | ConfigError::Syntax { .. } | ConfigError::EnvVar { .. } => None,
        }
    }

    /// The environment variable that supplied the bad value or key, if one did.
    pub fn env_var(&self) -> Option<&str> {
        match self {
            ConfigError::Unknown { origin, .. } | ConfigError::Invalid { origin, .. } => origin.env_var(),
            ConfigError::EnvVar { var, .. } => Some(var),
            ConfigError::Read { .. } | ConfigError::Syntax { .. } | ConfigError::Missing { .. } => None,
        }
    }
}
