//! Warden's configuration: the file schema, two-stage loading (structure, then
//! meaning), and compilation into the immutable [`Snapshot`] the data plane reads.
//!
//! `warden validate`, start-up and reload all call [`load_str`] / [`load_file`],
//! so they accept and refuse exactly the same files.

mod compile;
mod error;
mod load;
mod paths;
pub mod router;
pub mod schema;
pub mod snapshot;

pub use error::{ConfigError, ConfigIssue};
pub use schema::FileConfig;
pub use snapshot::{PolicyInstance, RouteRuntime, Snapshot};

/// Parses, validates and compiles config text. Relative file paths in it
/// are taken relative to the working directory.
pub fn load_str(text: &str) -> Result<Snapshot, ConfigError> {
    load_with_base(text, None)
}

fn load_with_base(text: &str, base: Option<&std::path::Path>) -> Result<Snapshot, ConfigError> {
    let mut issues = error::Issues::default();
    let mut parsed = load::parse(text, &mut issues)?;
    if let Some(base) = base {
        paths::resolve(&mut parsed, base);
    }
    match compile::compile(parsed, &mut issues) {
        Some(snapshot) if issues.0.is_empty() => Ok(snapshot),
        _ => Err(ConfigError::Invalid(issues.0)),
    }
}

/// Reads and loads a config file. Relative file paths in it (certificates,
/// keys, CA bundles, CRLs, the access-log file) are taken relative to the
/// file's own directory, so the result does not depend on the working
/// directory of whoever starts, reloads or validates it.
pub fn load_file(path: &std::path::Path) -> Result<Snapshot, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let base = path.parent().filter(|p| !p.as_os_str().is_empty());
    load_with_base(&text, Some(base.unwrap_or_else(|| std::path::Path::new("."))))
}

#[cfg(test)]
mod tests;
