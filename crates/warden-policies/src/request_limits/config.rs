//! `RequestLimitsConfig`: the YAML shape of `type: request_limits`.

use serde::Deserialize;
use warden_core::OnError;

use super::RequestLimits;
use crate::SpecError;

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
    /// What to do if the policy fails internally.
    #[serde(default)]
    pub on_error: OnError,
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
        if self.max_body_bytes.is_none()
            && self.max_headers.is_none()
            && self.max_header_bytes.is_none()
            && self.max_uri_bytes.is_none()
        {
            errors.push(SpecError {
                path: String::new(),
                message: "request_limits sets no limit; give at least one max_* key".into(),
            });
        }
        if errors.is_empty() {
            Ok(RequestLimits {
                max_body_bytes: self.max_body_bytes,
                max_headers: self.max_headers,
                max_header_bytes: self.max_header_bytes,
                max_uri_bytes: self.max_uri_bytes,
            })
        } else {
            Err(errors)
        }
    }
}
