//! `ContractConfig`: the YAML shape of `type: contract`.

use serde::Deserialize;
use warden_core::OnError;
use warden_openapi::Spec;

use super::Contract;
use crate::SpecError;
use crate::injection::Mode;

/// `type: contract`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractConfig {
    /// The OpenAPI 3.0/3.1 document (YAML or JSON), relative to the config file.
    pub spec: String,
    /// Refuse the document unless its SHA-256 (hex) is this.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Path prefix the API is mounted under at the gateway (`/v1`); stripped
    /// before matching the spec's paths. Default: none.
    #[serde(default)]
    pub base_path: String,
    /// `enforce` (refuse, the default) or `report` (events only).
    #[serde(default)]
    pub mode: Mode,
    /// Refuse query parameters the operation does not declare (default true).
    #[serde(default = "yes")]
    pub refuse_unknown_query: bool,
    /// Treat every object schema as `additionalProperties: false` unless it
    /// says otherwise (default false).
    #[serde(default)]
    pub strict: bool,
    /// What to do if the policy fails internally.
    #[serde(default)]
    pub on_error: OnError,
}

fn yes() -> bool {
    true
}

impl ContractConfig {
    /// Makes a relative `spec` path relative to `base` (the config's directory).
    pub fn resolve_paths(&mut self, base: &std::path::Path) {
        if std::path::Path::new(&self.spec).is_relative() {
            self.spec = base.join(&self.spec).to_string_lossy().into_owned();
        }
    }

    /// Loads and checks the document, reporting every problem.
    pub fn build(&self) -> Result<Contract, Vec<SpecError>> {
        let spec = load_spec(&self.spec, self.sha256.as_deref(), &self.base_path)?;
        Contract::new(
            spec,
            self.base_path.clone(),
            self.mode,
            self.refuse_unknown_query,
            self.strict,
        )
        .map_err(|errs| {
            errs.into_iter()
                .map(|message| SpecError {
                    path: "spec".into(),
                    message,
                })
                .collect()
        })
    }
}

/// Loads a spec named in a policy (checking its pin) and checks `base_path`.
pub(crate) fn load_spec(path: &str, sha256: Option<&str>, base_path: &str) -> Result<Spec, Vec<SpecError>> {
    if !base_path.is_empty() && (!base_path.starts_with('/') || base_path.ends_with('/')) {
        return Err(vec![SpecError {
            path: "base_path".into(),
            message: format!("`{base_path}` must start with `/` and not end with one"),
        }]);
    }
    Spec::load(std::path::Path::new(path), sha256).map_err(|problems| {
        problems
            .into_iter()
            .map(|p| SpecError {
                path: "spec".into(),
                message: format!("{path}: {p}"),
            })
            .collect()
    })
}
