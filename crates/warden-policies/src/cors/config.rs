//! `CorsConfig`: the YAML shape of `type: cors`.

use http::{HeaderName, HeaderValue, Method};
use serde::Deserialize;
use warden_core::OnError;

use super::Cors;
use crate::SpecError;
use crate::origin::normalise_origin;

/// `type: cors`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    /// Origins allowed to call (`https://app.example.com`), or `["*"]` for
    /// any origin (only without credentials).
    pub allow_origins: Vec<String>,
    /// Methods allowed cross-origin (default GET, HEAD, POST).
    #[serde(default = "default_methods")]
    pub allow_methods: Vec<String>,
    /// Request headers allowed beyond the CORS-safelisted ones.
    #[serde(default)]
    pub allow_headers: Vec<String>,
    /// Response headers the calling page may read beyond the safelisted ones.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// Let the browser send cookies and read credentialed responses.
    #[serde(default)]
    pub allow_credentials: bool,
    /// How long a browser may cache a preflight answer (default 600 s, at most 86,400).
    #[serde(default = "default_max_age")]
    pub max_age_secs: u32,
    /// What to do if the policy fails internally.
    #[serde(default)]
    pub on_error: OnError,
}

fn default_methods() -> Vec<String> {
    vec!["GET".into(), "HEAD".into(), "POST".into()]
}

fn default_max_age() -> u32 {
    600
}

impl CorsConfig {
    /// Checks every entry, reporting every problem.
    pub fn build(&self) -> Result<Cors, Vec<SpecError>> {
        let mut errors = Vec::new();
        let mut err = |path: String, message: String| errors.push(SpecError { path, message });
        let wildcard = self.allow_origins.iter().any(|o| o == "*");
        let mut origins = Vec::new();
        for (i, o) in self.allow_origins.iter().enumerate() {
            if o == "*" {
                continue;
            }
            match normalise_origin(o) {
                Some(n) => origins.push(n),
                None => err(
                    format!("allow_origins[{i}]"),
                    format!("`{o}` is not an origin; write scheme://host[:port] or \"*\""),
                ),
            }
        }
        if self.allow_origins.is_empty() {
            err("allow_origins".into(), "lists no origin".into());
        }
        if wildcard && self.allow_credentials {
            err(
                "allow_credentials".into(),
                "cannot be true with the wildcard origin \"*\": list the origins that may send credentials".into(),
            );
        }
        let mut methods = Vec::new();
        for (i, m) in self.allow_methods.iter().enumerate() {
            match Method::from_bytes(m.to_ascii_uppercase().as_bytes()) {
                Ok(m) => methods.push(m),
                Err(_) => err(format!("allow_methods[{i}]"), format!("`{m}` is not a method")),
            }
        }
        let mut names = |list: &[String], key: &str| -> Vec<HeaderName> {
            let mut out = Vec::new();
            for (i, h) in list.iter().enumerate() {
                match HeaderName::from_bytes(h.as_bytes()) {
                    Ok(n) => out.push(n),
                    Err(_) => err(format!("{key}[{i}]"), format!("`{h}` is not a header name")),
                }
            }
            out
        };
        let allow_headers = names(&self.allow_headers, "allow_headers");
        let expose_headers = names(&self.expose_headers, "expose_headers");
        if self.max_age_secs > 86_400 {
            err(
                "max_age_secs".into(),
                format!("{} is more than 86400", self.max_age_secs),
            );
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let join = |items: Vec<String>| HeaderValue::from_str(&items.join(", ")).ok();
        Ok(Cors {
            wildcard,
            origins,
            allow_methods_value: join(methods.iter().map(|m| m.to_string()).collect()),
            methods,
            allow_headers,
            expose_headers_value: join(expose_headers.iter().map(|h| h.to_string()).collect()),
            credentials: self.allow_credentials,
            max_age: HeaderValue::from(self.max_age_secs),
        })
    }
}
