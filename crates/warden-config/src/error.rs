//! Config errors: every problem found, each with the path of the key at fault.

use std::fmt;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Key path, e.g. `routes[2].policies[0].allow[1]`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// File path.
        path: String,
        /// OS error.
        source: std::io::Error,
    },
    /// The file is not valid YAML.
    #[error("not valid YAML: {0}")]
    Yaml(String),
    /// The file parsed but has problems; all of them are listed.
    #[error("{} problem(s) in config:\n{}", .0.len(), list(.0))]
    Invalid(Vec<ConfigIssue>),
}

impl ConfigError {
    /// The listed problems (empty for I/O and YAML errors).
    pub fn issues(&self) -> &[ConfigIssue] {
        match self {
            Self::Invalid(v) => v,
            _ => &[],
        }
    }
}

fn list(issues: &[ConfigIssue]) -> String {
    issues.iter().map(|i| format!("  - {i}")).collect::<Vec<_>>().join("\n")
}

/// Collects issues while walking a config.
#[derive(Debug, Default)]
pub(crate) struct Issues(pub Vec<ConfigIssue>);

impl Issues {
    pub(crate) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigIssue {
            path: path.into(),
            message: message.into(),
        });
    }
}
