//! `RequestLimitsConfig`: the YAML shape of `type: request_limits`.

use serde::Deserialize;
use warden_core::OnError;

use super::RequestLimits;
use super::policy::JsonRule;
use crate::SpecError;
use crate::json_limits::{JsonLimits, MAX_DEPTH_CEILING};

/// `type: request_limits` — every cap is optional; unset caps fall back to the listener's.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestLimitsConfig {
    /// Largest request body, in bytes.
    pub max_body_bytes: Option<u64>,
    /// Most request header lines.
    pub max_headers: Option<usize>,
    /// Most header bytes (`name: value\r\n` summed).
    pub max_header_bytes: Option<usize>,
    /// Longest request target (path and query), in bytes.
    pub max_uri_bytes: Option<usize>,
    /// Shape limits for JSON request bodies (`application/json`, `…+json`).
    #[serde(default)]
    pub json: Option<JsonLimitsConfig>,
    /// What to do if the policy fails internally.
    #[serde(default)]
    pub on_error: OnError,
}

/// `json:` — limits on a JSON body's shape; every key has a default.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonLimitsConfig {
    /// Largest JSON body, in bytes (default: the route's body cap).
    pub max_bytes: Option<u64>,
    /// Deepest nesting of arrays and objects (default 32, at most 128).
    #[serde(default = "default_depth")]
    pub max_depth: usize,
    /// Most members in one object (default 1,000).
    #[serde(default = "default_keys")]
    pub max_object_keys: usize,
    /// Most items in one array (default 10,000).
    #[serde(default = "default_items")]
    pub max_array_items: usize,
    /// Longest string or key after unescaping, in bytes (default 65,536).
    #[serde(default = "default_string")]
    pub max_string_bytes: usize,
}

fn default_depth() -> usize {
    32
}
fn default_keys() -> usize {
    1000
}
fn default_items() -> usize {
    10_000
}
fn default_string() -> usize {
    65_536
}

impl RequestLimitsConfig {
    /// Checks the caps are usable.
    pub fn build(&self) -> Result<RequestLimits, Vec<SpecError>> {
        let mut errors = Vec::new();
        let mut positive = |key: &str, v: Option<u64>| {
            if v == Some(0) {
                errors.push(SpecError {
                    path: key.into(),
                    message: "must be greater than 0".into(),
                });
            }
        };
        positive("max_headers", self.max_headers.map(|v| v as u64));
        positive("max_header_bytes", self.max_header_bytes.map(|v| v as u64));
        positive("max_uri_bytes", self.max_uri_bytes.map(|v| v as u64));
        if let Some(json) = &self.json {
            positive("json.max_bytes", json.max_bytes);
            positive("json.max_depth", Some(json.max_depth as u64));
            positive("json.max_object_keys", Some(json.max_object_keys as u64));
            positive("json.max_array_items", Some(json.max_array_items as u64));
            positive("json.max_string_bytes", Some(json.max_string_bytes as u64));
        }
        if let Some(json) = self.json.as_ref().filter(|j| j.max_depth > MAX_DEPTH_CEILING) {
            errors.push(SpecError {
                path: "json.max_depth".into(),
                message: format!("{} is deeper than the {MAX_DEPTH_CEILING} allowed", json.max_depth),
            });
        }
        if self.max_body_bytes.is_none()
            && self.max_headers.is_none()
            && self.max_header_bytes.is_none()
            && self.max_uri_bytes.is_none()
            && self.json.is_none()
        {
            errors.push(SpecError {
                path: String::new(),
                message: "request_limits sets no limit; give at least one max_* key or json".into(),
            });
        }
        if errors.is_empty() {
            Ok(RequestLimits {
                max_body_bytes: self.max_body_bytes,
                max_headers: self.max_headers,
                max_header_bytes: self.max_header_bytes,
                max_uri_bytes: self.max_uri_bytes,
                json: self.json.as_ref().map(|j| JsonRule {
                    max_bytes: j.max_bytes,
                    limits: JsonLimits {
                        max_depth: j.max_depth,
                        max_object_keys: j.max_object_keys,
                        max_array_items: j.max_array_items,
                        max_string_bytes: j.max_string_bytes,
                    },
                }),
            })
        } else {
            Err(errors)
        }
    }
}
