//! `api_key` config and its compilation into [`ApiKey`].

use http::HeaderName;
use serde::Deserialize;
use warden_core::OnError;

use super::policy::ApiKey;
use crate::SpecError;

/// `type: api_key`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Request header that carries the key.
    #[serde(default = "default_header")]
    pub header: String,
    /// Also read the key from this query parameter (off unless set: query
    /// strings end up in logs, caches and `Referer` headers).
    #[serde(default)]
    pub query_param: Option<String>,
    /// Header that tells the upstream which consumer called (`null` to send
    /// none). Client-sent copies are always removed.
    #[serde(default = "default_consumer_header")]
    pub consumer_header: Option<String>,
    /// Only consumers in at least one of these groups pass (empty: any consumer).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Requests without a key pass as anonymous (no consumer); a key that is
    /// present must still be valid.
    #[serde(default)]
    pub anonymous: bool,
    /// What happens when the policy itself breaks (no store, say).
    #[serde(default)]
    pub on_error: OnError,
}

fn default_header() -> String {
    "x-api-key".into()
}

fn default_consumer_header() -> Option<String> {
    Some("x-warden-consumer".into())
}

impl ApiKeyConfig {
    /// Compiles the entry, reporting every problem.
    pub fn build(&self) -> Result<ApiKey, Vec<SpecError>> {
        let mut errors = Vec::new();
        let mut header_name = |field: &str, value: &str| match HeaderName::from_bytes(value.as_bytes()) {
            Ok(h) if !warden_core::headers::is_reserved_or_ambiguous(h.as_str()) => Some(h),
            Ok(_) => {
                errors.push(SpecError {
                    path: field.into(),
                    message: format!("`{value}` is a header the gateway manages itself"),
                });
                None
            }
            Err(_) => {
                errors.push(SpecError {
                    path: field.into(),
                    message: format!("`{value}` is not a valid header name"),
                });
                None
            }
        };
        let header = header_name("header", &self.header);
        let consumer_header = self
            .consumer_header
            .as_deref()
            .map(|h| header_name("consumer_header", h));
        if let (Some(h), Some(Some(c))) = (&header, &consumer_header)
            && h == c
        {
            errors.push(SpecError {
                path: "consumer_header".into(),
                message: "must differ from `header`".into(),
            });
        }
        if let Some(q) = &self.query_param
            && (q.is_empty() || !q.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
        {
            errors.push(SpecError {
                path: "query_param".into(),
                message: "must be a non-empty name of letters, digits, `_` and `-`".into(),
            });
        }
        for (i, g) in self.groups.iter().enumerate() {
            if g.trim().is_empty() {
                errors.push(SpecError {
                    path: format!("groups[{i}]"),
                    message: "must not be empty".into(),
                });
            }
        }
        match (header, errors.is_empty()) {
            (Some(header), true) => Ok(ApiKey::new(
                header,
                self.query_param.clone(),
                consumer_header.flatten(),
                self.groups.iter().map(|g| g.as_str().into()).collect(),
                self.anonymous,
            )),
            _ => Err(errors),
        }
    }
}
