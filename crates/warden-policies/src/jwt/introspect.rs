//! OAuth 2.0 token introspection (RFC 7662) for opaque access tokens: the
//! gateway asks the issuer's introspection endpoint, authenticating as a
//! client (HTTP Basic), whether a token is active. Results are cached by the
//! caller's verified-token cache, bounded by the token's `exp` and
//! `max_cache_secs`; inactive answers are remembered briefly so one bad
//! token repeated cannot make the gateway hammer the endpoint.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{Request, Uri, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Largest introspection response accepted.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Inactive answers remembered this long, at most this many.
const NEGATIVE_SECS: u64 = 30;
const NEGATIVE_ENTRIES: usize = 10_000;
/// Concurrent calls to one endpoint.
const MAX_CONCURRENT: usize = 32;

/// `issuers[].introspection`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntrospectionConfig {
    /// Introspection endpoint (`https://`; `http://` only for loopback).
    pub url: String,
    /// Client id the gateway authenticates as.
    pub client_id: String,
    /// File holding the client secret.
    pub client_secret_file: String,
    /// Longest time an active answer is reused (also capped by the token's `exp`).
    #[serde(default = "default_max_cache_secs")]
    pub max_cache_secs: u64,
    /// Timeout of one call.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_max_cache_secs() -> u64 {
    60
}
fn default_timeout_ms() -> u64 {
    2_000
}

/// A compiled introspection endpoint.
#[derive(Debug)]
pub(crate) struct Introspector {
    uri: Uri,
    authorization: String,
    pub max_cache_secs: u64,
    timeout: Duration,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    permits: tokio::sync::Semaphore,
    negative: Mutex<HashMap<Box<str>, u64>>,
}

/// What the endpoint said about an active token.
pub(crate) type Active = Map<String, Value>;

impl Introspector {
    pub(crate) fn new(cfg: &IntrospectionConfig) -> Result<Self, Vec<(&'static str, String)>> {
        let mut problems = Vec::new();
        if let Some(p) = super::jwks::url_problem(&cfg.url) {
            problems.push(("url", p));
        }
        if cfg.client_id.is_empty() || cfg.client_id.contains(':') {
            problems.push(("client_id", "must be non-empty and contain no `:`".to_owned()));
        }
        let secret = match std::fs::read_to_string(&cfg.client_secret_file) {
            Ok(s) if !s.trim().is_empty() => s.trim().to_owned(),
            Ok(_) => {
                problems.push(("client_secret_file", format!("`{}` is empty", cfg.client_secret_file)));
                String::new()
            }
            Err(e) => {
                problems.push((
                    "client_secret_file",
                    format!("cannot read `{}`: {e}", cfg.client_secret_file),
                ));
                String::new()
            }
        };
        if cfg.timeout_ms == 0 || cfg.max_cache_secs == 0 {
            problems.push((
                "timeout_ms",
                "timeout_ms and max_cache_secs must be greater than 0".to_owned(),
            ));
        }
        let uri = cfg.url.parse::<Uri>().ok();
        let (Some(uri), true) = (uri, problems.is_empty()) else {
            return Err(problems);
        };
        // RFC 6749 §2.3.1: form-encode id and secret before Basic encoding.
        let basic = format!("{}:{}", form(&cfg.client_id), form(&secret));
        let authorization = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(basic));
        Ok(Self {
            uri,
            authorization,
            max_cache_secs: cfg.max_cache_secs,
            timeout: Duration::from_millis(cfg.timeout_ms),
            client: Client::builder(TokioExecutor::new()).build(super::jwks::https_connector(cfg.timeout_ms)),
            permits: tokio::sync::Semaphore::new(MAX_CONCURRENT),
            negative: Mutex::new(HashMap::new()),
        })
    }

    /// The active token's claims, or why not.
    pub(crate) async fn introspect(&self, token: &str, now: u64) -> Result<Active, String> {
        if let Ok(neg) = self.negative.lock()
            && neg.get(token).is_some_and(|until| now <= *until)
        {
            return Err("inactive (remembered)".into());
        }
        // Waiting for a call slot counts against the same timeout.
        let _permit = tokio::time::timeout(self.timeout, self.permits.acquire())
            .await
            .map_err(|_| "introspection busy".to_owned())?
            .map_err(|e| e.to_string())?;
        let body = format!("token={}&token_type_hint=access_token", form(token));
        let req = Request::post(self.uri.clone())
            .header(header::AUTHORIZATION, &self.authorization)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let call = async {
            let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
            if !resp.status().is_success() {
                return Err(format!("introspection status {}", resp.status()));
            }
            let bytes = Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| format!("body: {e}"))?
                .to_bytes();
            serde_json::from_slice::<Map<String, Value>>(&bytes).map_err(|e| format!("not JSON: {e}"))
        };
        let answer = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| "introspection timed out".to_owned())??;
        if answer.get("active") != Some(&Value::Bool(true)) {
            self.remember_inactive(token, now);
            return Err("inactive".into());
        }
        Ok(answer)
    }

    fn remember_inactive(&self, token: &str, now: u64) {
        let Ok(mut neg) = self.negative.lock() else { return };
        if neg.len() >= NEGATIVE_ENTRIES {
            neg.retain(|_, until| now <= *until);
            if neg.len() >= NEGATIVE_ENTRIES {
                neg.clear();
            }
        }
        neg.insert(token.into(), now + NEGATIVE_SECS);
    }
}

/// `application/x-www-form-urlencoded` value encoding.
fn form(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(char::from(b)),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Checks an active answer against the issuer: an access token (not a
/// refresh token), `exp` not passed, `nbf`/`iat` not in the future, `iss` (if
/// given) exact, `aud` present and naming one of `audiences`, every required
/// claim present.
pub(crate) fn check_answer(answer: &Active, issuer: &super::policy::Issuer, now: u64) -> Result<(), String> {
    let (audiences, leeway) = (&issuer.audiences, issuer.leeway_secs);
    let issuer = issuer.issuer.as_str();
    if let Some(t) = answer.get("token_type")
        && !t
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer") || t.eq_ignore_ascii_case("access_token"))
    {
        return Err("not an access token (token_type)".into());
    }
    if answer
        .get("typ")
        .and_then(Value::as_str)
        .is_some_and(|t| t.eq_ignore_ascii_case("refresh") || t.eq_ignore_ascii_case("offline"))
    {
        return Err("a refresh token".into());
    }
    for claim in ["nbf", "iat"] {
        if let Some(v) = answer.get(claim)
            && v.as_u64().is_none_or(|t| t > now.saturating_add(leeway))
        {
            return Err(format!("{claim} in the future"));
        }
    }
    if let Some(exp) = answer.get("exp")
        && exp.as_u64().is_none_or(|e| e <= now)
    {
        return Err("expired".into());
    }
    if let Some(iss) = answer.get("iss")
        && iss.as_str() != Some(issuer)
    {
        return Err("issuer differs".into());
    }
    let names: Vec<&str> = match answer.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !names.iter().any(|n| audiences.iter().any(|a| a == n)) {
        return Err("audience missing or differs".into());
    }
    Ok(())
}
