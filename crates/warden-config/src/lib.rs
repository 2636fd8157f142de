//! Warden's configuration: the file schema, two-stage loading (structure, then
//! meaning), and compilation into the immutable [`Snapshot`] the data plane reads.
//!
//! `warden validate`, start-up and reload all call [`load_str`] / [`load_file`],
//! so they accept and refuse exactly the same files.

mod compile;
mod error;
mod load;
pub mod router;
pub mod schema;
pub mod snapshot;

pub use error::{ConfigError, ConfigIssue};
pub use schema::FileConfig;
pub use snapshot::{PolicyInstance, RouteRuntime, Snapshot};

/// Parses, validates and compiles config text.
pub fn load_str(text: &str) -> Result<Snapshot, ConfigError> {
    let mut issues = error::Issues::default();
    let parsed = load::parse(text, &mut issues)?;
    match compile::compile(parsed, &mut issues) {
        Some(snapshot) if issues.0.is_empty() => Ok(snapshot),
        _ => Err(ConfigError::Invalid(issues.0)),
    }
}

/// Reads and loads a config file.
pub fn load_file(path: &std::path::Path) -> Result<Snapshot, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.display().to_string(),
        source,
    })?;
    load_str(&text)
}

#[cfg(test)]
mod tests;
