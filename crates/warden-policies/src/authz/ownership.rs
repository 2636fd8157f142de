//! Ownership lookups: a binding whose object's owner is known to another
//! service. `GET {url with the id}` answers `{"owner": "alice"}` or
//! `{"owners": ["alice", "bob"]}` (200), or 404 for no owner; anything else
//! (another status, a timeout, bad JSON) refuses the request. Answers are
//! cached per object id for `cache_secs`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use crate::cache::{Expiring, Sharded};

/// Largest answer read.
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// `owner_lookup:` of a binding.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnerLookupConfig {
    /// URL with `{id}` where the (percent-encoded) object id goes;
    /// `https://` (`http://` only for loopback).
    pub url: String,
    /// How long an answer is reused.
    #[serde(default = "default_cache_secs")]
    pub cache_secs: u64,
    /// Connect plus answer time allowed.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_cache_secs() -> u64 {
    30
}

fn default_timeout_ms() -> u64 {
    1000
}

#[derive(Clone)]
struct Owners {
    owners: Arc<[String]>,
    until: u64,
}

impl Expiring for Owners {
    fn until(&self) -> u64 {
        self.until
    }
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    owners: Vec<String>,
}

pub(crate) struct OwnerLookup {
    url: String,
    cache_secs: u64,
    timeout: Duration,
    cache: Option<Sharded<Owners>>,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl std::fmt::Debug for OwnerLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnerLookup")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl OwnerLookupConfig {
    /// Problems with this lookup's settings.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        // `{id}` only in the path: an id must never choose the host, port
        // or query of the request the gateway makes.
        let path_start = self
            .url
            .find("://")
            .and_then(|i| self.url[i + 3..].find('/').map(|j| i + 3 + j));
        let query_start = self.url.find('?').unwrap_or(self.url.len());
        match (self.url.find("{id}"), path_start) {
            (None, _) => out.push("`url` must contain `{id}`".to_owned()),
            (Some(at), Some(p)) if at > p && at < query_start => {}
            _ => out.push("`{id}` must be in the URL's path, not its host, port or query".to_owned()),
        }
        if let Some(p) = crate::jwt::url_problem(&self.url.replace("{id}", "x")) {
            out.push(format!("`url` {p}"));
        }
        if self.cache_secs > 3600 {
            out.push("`cache_secs` must be at most 3600".to_owned());
        }
        if !(1..=30_000).contains(&self.timeout_ms) {
            out.push("`timeout_ms` must be 1–30000".to_owned());
        }
        out
    }

    pub(crate) fn build(&self) -> OwnerLookup {
        OwnerLookup {
            url: self.url.clone(),
            cache_secs: self.cache_secs,
            timeout: Duration::from_millis(self.timeout_ms),
            cache: Sharded::new(if self.cache_secs > 0 { 10_000 } else { 0 }),
            client: Client::builder(TokioExecutor::new()).build(crate::jwt::https_connector(self.timeout_ms)),
        }
    }
}

impl OwnerLookup {
    /// The owners of object `id`; `Err` when the service gave no usable answer.
    pub(crate) async fn owners(&self, id: &str, now: u64) -> Result<Arc<[String]>, String> {
        if let Some(hit) = self.cache.as_ref().and_then(|c| c.get(id, now, |_| true)) {
            return Ok(hit.owners);
        }
        let owners = tokio::time::timeout(self.timeout, self.ask(id))
            .await
            .map_err(|_| "ownership lookup timed out".to_owned())??;
        if let Some(c) = &self.cache {
            let entry = Owners {
                owners: Arc::clone(&owners),
                until: now.saturating_add(self.cache_secs),
            };
            c.put(id, entry, now);
        }
        Ok(owners)
    }

    async fn ask(&self, id: &str) -> Result<Arc<[String]>, String> {
        let url = self.url.replace("{id}", &encode(id));
        let req = Request::get(url)
            .header(http::header::ACCEPT, "application/json")
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        if status == http::StatusCode::NOT_FOUND {
            return Ok(Arc::from(Vec::new()));
        }
        if status != http::StatusCode::OK {
            return Err(format!("ownership service answered {status}"));
        }
        let body = Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| format!("ownership answer: {e}"))?
            .to_bytes();
        let answer: Answer = serde_json::from_slice(&body).map_err(|e| format!("ownership answer: {e}"))?;
        let mut owners = answer.owners;
        owners.extend(answer.owner);
        Ok(owners.into())
    }
}

/// Percent-encodes everything but letters, digits, `-`, `_` and `~` (dots
/// too: an id of `..` must not become a dot segment), so an id cannot change
/// the lookup URL's path or query.
fn encode(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_id_goes_in_the_path_only() {
        let problems = |url: &str| {
            super::OwnerLookupConfig {
                url: url.into(),
                cache_secs: 30,
                timeout_ms: 1000,
            }
            .problems()
        };
        assert!(problems("https://owners.internal/objects/{id}").is_empty());
        for bad in [
            "https://{id}.owners.internal/x",
            "https://owners.internal:{id}/x",
            "https://owners.internal/x?id={id}",
            "https://owners.internal/x",
        ] {
            assert!(!problems(bad).is_empty(), "{bad}");
        }
    }

    #[test]
    fn ids_cannot_escape_their_path_segment() {
        assert_eq!(super::encode("a-1"), "a-1");
        assert_eq!(super::encode("../admin?x=1#"), "%2E%2E%2Fadmin%3Fx%3D1%23");
    }
}
