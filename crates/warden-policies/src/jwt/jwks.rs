//! JWKS: an issuer's keys fetched from its `jwks_uri`, cached per
//! `Cache-Control` (clamped), refetched once on an unknown `kid`
//! (single-flight, rate-limited), served stale within a grace period when the
//! identity provider is down, retried with bounded backoff.
//!
//! One [`Jwks`] per URL and settings is shared process-wide, so a config
//! reload keeps the keys already fetched (no 401 gap while refetching).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{JwkSet, PublicKeyUse};
use serde::Deserialize;

/// Longest configurable cache or grace time (7 days).
const MAX_DURATION_SECS: u64 = 7 * 86_400;

/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 1 << 20;

/// `issuers[].jwks`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwksConfig {
    /// `https://` URL of the key set (`http://` only for loopback hosts).
    /// Leave it out with `discovery: true` on the issuer: the URL then comes
    /// from the issuer's OpenID configuration.
    #[serde(default)]
    pub url: Option<String>,
    /// Shortest time keys are cached, whatever `Cache-Control` says.
    #[serde(default = "default_min_cache_secs")]
    pub min_cache_secs: u64,
    /// Longest time keys are cached without a refetch.
    #[serde(default = "default_max_cache_secs")]
    pub max_cache_secs: u64,
    /// After the cache time ran out and the provider cannot be reached, keep
    /// using the last keys this much longer.
    #[serde(default = "default_stale_grace_secs")]
    pub stale_grace_secs: u64,
    /// An unknown `kid` triggers a refetch at most this often.
    #[serde(default = "default_refetch_interval_secs")]
    pub refetch_interval_secs: u64,
    /// Timeout of one fetch.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_min_cache_secs() -> u64 {
    60
}
fn default_max_cache_secs() -> u64 {
    86_400
}
fn default_stale_grace_secs() -> u64 {
    3_600
}
fn default_refetch_interval_secs() -> u64 {
    10
}
fn default_timeout_ms() -> u64 {
    2_000
}

impl Default for JwksConfig {
    fn default() -> Self {
        Self {
            url: None,
            min_cache_secs: default_min_cache_secs(),
            max_cache_secs: default_max_cache_secs(),
            stale_grace_secs: default_stale_grace_secs(),
            refetch_interval_secs: default_refetch_interval_secs(),
            timeout_ms: default_timeout_ms(),
        }
    }
}

/// Why `url` may not be fetched: not http(s), or `http://` to a non-loopback host.
pub(crate) fn url_problem(url: &str) -> Option<String> {
    let Ok(u) = url.parse::<Uri>() else {
        return Some(format!("`{url}` is not a URL"));
    };
    let host = u.host().unwrap_or("").trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match u.scheme_str() {
        Some("https") if !host.is_empty() => None,
        Some("http") if loopback => None,
        Some("http") => Some("must be https:// (http:// only for loopback)".to_owned()),
        _ => Some(format!("`{url}` is not an http(s) URL")),
    }
}

impl JwksConfig {
    /// Problems with the settings, as `(key, message)`.
    pub fn check(&self, discovery: bool) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        match (&self.url, discovery) {
            (Some(url), false) => {
                if let Some(p) = url_problem(url) {
                    out.push(("url", p));
                }
            }
            (None, false) => out.push(("url", "required unless the issuer has `discovery: true`".into())),
            (Some(_), true) => out.push((
                "url",
                "leave it out with `discovery: true` (it comes from discovery)".into(),
            )),
            (None, true) => {}
        }
        if self.min_cache_secs == 0 || self.min_cache_secs > self.max_cache_secs {
            out.push(("min_cache_secs", "must be at least 1 and at most max_cache_secs".into()));
        }
        if self.max_cache_secs > MAX_DURATION_SECS || self.stale_grace_secs > MAX_DURATION_SECS {
            out.push((
                "max_cache_secs",
                format!("max_cache_secs and stale_grace_secs must be at most {MAX_DURATION_SECS} (7 days)"),
            ));
        }
        if self.refetch_interval_secs == 0 {
            out.push(("refetch_interval_secs", "must be at least 1".into()));
        }
        if self.timeout_ms == 0 {
            out.push(("timeout_ms", "must be greater than 0".into()));
        }
        out
    }
}

/// Keys as last fetched.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    pub by_kid: HashMap<String, Arc<DecodingKey>>,
    pub unnamed: Vec<Arc<DecodingKey>>,
    /// Until when the keys are fresh; `None`: never fetched.
    fresh_until: Option<Instant>,
    stale_until: Option<Instant>,
}

impl KeySet {
    fn usable(&self, now: Instant) -> bool {
        self.stale_until.is_some_and(|t| now < t)
    }
}

/// Where the key set URL comes from.
#[derive(Debug)]
enum Source {
    /// Configured.
    Url(Uri),
    /// From `{issuer}/.well-known/openid-configuration`; the last `jwks_uri` seen.
    Discovery {
        config_url: Uri,
        issuer: String,
        jwks_uri: Mutex<Option<Uri>>,
    },
    /// The gateway's own authorization server, handed over at start; read
    /// in memory whenever its key generation moves (no HTTP).
    Local {
        issuer: OnceLock<Arc<dyn warden_core::LocalIssuer>>,
        /// The issuer's generation the current keys were built from.
        seen: AtomicU64,
    },
}

/// One key set URL and its cache.
#[derive(Debug)]
pub(crate) struct Jwks {
    cfg: JwksConfig,
    source: Source,
    label: String,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>,
    keys: ArcSwap<KeySet>,
    fetching: tokio::sync::Mutex<()>,
    last_attempt: Mutex<Option<Instant>>,
    /// Last refetch caused by an unknown `kid` (these are rate-limited;
    /// start-up and scheduled refreshes are not).
    last_kid_refetch: Mutex<Option<Instant>>,
    started: AtomicBool,
    /// Bumped when the fetched key set differs from the last one
    /// (invalidates cached verifications).
    generation: AtomicU64,
    /// Digest of the last key set, to tell a change from a refresh.
    last_digest: AtomicU64,
    /// Keys were fetched at least once (readiness).
    ever_fetched: AtomicBool,
    /// Fetch attempts so far (tests and logs).
    pub fetches: AtomicU64,
}

type Registry = Mutex<HashMap<(JwksConfig, Option<String>), Weak<Jwks>>>;

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

impl Jwks {
    /// The process-wide instance for `cfg` (created on first use); with
    /// `discovery_issuer`, the key set URL comes from that issuer's OpenID
    /// configuration.
    pub(crate) fn shared(cfg: &JwksConfig, discovery_issuer: Option<&str>) -> Result<Arc<Self>, String> {
        let key = (cfg.clone(), discovery_issuer.map(str::to_owned));
        let mut reg = registry().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        reg.retain(|_, w| w.strong_count() > 0);
        if let Some(j) = reg.get(&key).and_then(Weak::upgrade) {
            return Ok(j);
        }
        let (source, label) = match (discovery_issuer, &cfg.url) {
            (Some(issuer), _) => {
                let text = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
                if let Some(p) = url_problem(&text) {
                    return Err(format!("discovery URL {text}: {p}"));
                }
                let config_url = text.parse::<Uri>().map_err(|e| e.to_string())?;
                (
                    Source::Discovery {
                        config_url,
                        issuer: issuer.to_owned(),
                        jwks_uri: Mutex::new(None),
                    },
                    text,
                )
            }
            (None, Some(url)) => (Source::Url(url.parse::<Uri>().map_err(|e| e.to_string())?), url.clone()),
            (None, None) => return Err("no JWKS URL".into()),
        };
        let j = Arc::new(Self::new(cfg.clone(), source, label));
        reg.insert(key, Arc::downgrade(&j));
        Ok(j)
    }

    /// Keys of the built-in authorization server (see [`Jwks::set_local`]).
    pub(crate) fn local() -> Arc<Self> {
        let source = Source::Local {
            issuer: OnceLock::new(),
            seen: AtomicU64::new(u64::MAX),
        };
        Arc::new(Self::new(
            JwksConfig::default(),
            source,
            "built-in authorization server".into(),
        ))
    }

    fn new(cfg: JwksConfig, source: Source, label: String) -> Self {
        let https = https_connector(cfg.timeout_ms);
        Self {
            cfg,
            source,
            label,
            client: Client::builder(TokioExecutor::new()).build(https),
            keys: ArcSwap::from_pointee(KeySet::default()),
            fetching: tokio::sync::Mutex::new(()),
            last_attempt: Mutex::new(None),
            last_kid_refetch: Mutex::new(None),
            started: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            last_digest: AtomicU64::new(0),
            ever_fetched: AtomicBool::new(false),
            fetches: AtomicU64::new(0),
        }
    }

    /// Hands a local key set its source (at policy start).
    pub(crate) fn set_local(&self, source: &Arc<dyn warden_core::LocalIssuer>) {
        if let Source::Local { issuer, .. } = &self.source {
            let _ = issuer.set(Arc::clone(source));
            self.sync_local();
        }
    }

    /// Rebuilds a local key set when its source's generation moved.
    fn sync_local(&self) {
        let Source::Local { issuer, seen } = &self.source else {
            return;
        };
        let Some(src) = issuer.get() else { return };
        let (generation, doc) = src.jwks();
        if seen.load(Ordering::Acquire) == generation {
            return;
        }
        let Ok(set) = serde_json::from_value::<JwkSet>((*doc).clone()) else {
            tracing::error!("the built-in authorization server published an unreadable JWK set");
            return;
        };
        let (by_kid, unnamed) = decode_keys(&set);
        // Local keys never go stale: the source is this process.
        let forever = Instant::now().checked_add(Duration::from_secs(100 * 365 * 86_400));
        self.keys.store(Arc::new(KeySet {
            by_kid,
            unnamed,
            fresh_until: forever,
            stale_until: forever,
        }));
        self.generation.fetch_add(1, Ordering::SeqCst);
        seen.store(generation, Ordering::Release);
        self.ever_fetched.store(true, Ordering::SeqCst);
    }

    /// Current keys, if still within the stale grace period.
    pub(crate) fn current(&self) -> Option<Arc<KeySet>> {
        self.sync_local();
        let k = self.keys.load_full();
        k.usable(Instant::now()).then_some(k)
    }

    /// Changes whenever the key set is replaced.
    pub(crate) fn generation(&self) -> u64 {
        self.sync_local();
        self.generation.load(Ordering::SeqCst)
    }

    /// True once keys were fetched and are not past their grace period.
    pub(crate) fn usable(&self) -> bool {
        self.current().is_some()
    }

    /// Readiness: the first fetch has happened. (Keys that later fall past
    /// their grace period refuse tokens, but do not take the whole gateway —
    /// routes without JWT included — out of the load balancer.)
    pub(crate) fn is_ready(&self) -> bool {
        self.ever_fetched.load(Ordering::SeqCst)
    }

    /// Starts the refresh loop once per process-wide instance: fetch now,
    /// retry with backoff (0.5 s doubling to 30 s) until it works, then
    /// refresh when the cache time runs out.
    pub(crate) fn start(self: &Arc<Self>) {
        if matches!(self.source, Source::Local { .. }) {
            return;
        }
        if tokio::runtime::Handle::try_current().is_err() || self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(500);
            loop {
                let Some(j) = weak.upgrade() else { return };
                let wait = if j.refresh().await {
                    backoff = Duration::from_millis(500);
                    let k = j.keys.load();
                    k.fresh_until
                        .map_or(backoff, |t| t.saturating_duration_since(Instant::now()))
                        .max(Duration::from_secs(1))
                } else {
                    let w = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    w
                };
                drop(j);
                tokio::time::sleep(wait).await;
            }
        });
    }

    /// An unknown `kid` arrived: refetch unless one happened within
    /// `refetch_interval_secs`. Concurrent callers share one fetch.
    pub(crate) async fn refetch_for_unknown_kid(&self) {
        if let Source::Local { issuer, .. } = &self.source {
            if let Some(src) = issuer.get() {
                src.refresh_keys().await;
            }
            self.sync_local();
            return;
        }
        let since = Instant::now();
        let _one = self.fetching.lock().await;
        // Someone fetched while we waited for the lock: use their result.
        let fetched_meanwhile = self
            .last_attempt
            .lock()
            .map(|l| l.is_some_and(|t| t >= since))
            .unwrap_or(true);
        {
            let Ok(mut last) = self.last_kid_refetch.lock() else {
                return;
            };
            let too_soon = last.is_some_and(|t| t.elapsed() < Duration::from_secs(self.cfg.refetch_interval_secs));
            if fetched_meanwhile || too_soon {
                return;
            }
            *last = Some(Instant::now());
        }
        self.fetch_locked().await;
    }

    async fn refresh(&self) -> bool {
        let _one = self.fetching.lock().await;
        self.fetch_locked().await
    }

    /// Fetches and swaps in the keys; the caller holds `fetching`.
    async fn fetch_locked(&self) -> bool {
        if let Ok(mut l) = self.last_attempt.lock() {
            *l = Some(Instant::now());
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        match tokio::time::timeout(Duration::from_millis(self.cfg.timeout_ms), self.fetch()).await {
            Ok(Ok((set, max_age))) => {
                let ttl = max_age
                    .unwrap_or(self.cfg.min_cache_secs)
                    .clamp(self.cfg.min_cache_secs, self.cfg.max_cache_secs);
                let now = Instant::now();
                let fresh = now.checked_add(Duration::from_secs(ttl)).unwrap_or(now);
                let stale = fresh
                    .checked_add(Duration::from_secs(self.cfg.stale_grace_secs))
                    .unwrap_or(fresh);
                let digest = {
                    use std::hash::{Hash, Hasher};
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    serde_json::to_string(&set).unwrap_or_default().hash(&mut h);
                    h.finish()
                };
                if self.last_digest.swap(digest, Ordering::SeqCst) != digest
                    || !self.ever_fetched.load(Ordering::SeqCst)
                {
                    self.generation.fetch_add(1, Ordering::SeqCst);
                }
                let (by_kid, unnamed) = decode_keys(&set);
                tracing::info!(url = %self.label, keys = by_kid.len() + unnamed.len(), ttl_secs = ttl, "JWKS fetched");
                self.keys.store(Arc::new(KeySet {
                    by_kid,
                    unnamed,
                    fresh_until: Some(fresh),
                    stale_until: Some(stale),
                }));
                self.ever_fetched.store(true, Ordering::SeqCst);
                true
            }
            Ok(Err(e)) => {
                tracing::warn!(url = %self.label, error = %e, "JWKS fetch failed; cached keys stay in use within their grace period");
                false
            }
            Err(_) => {
                tracing::warn!(url = %self.label, "JWKS fetch timed out; cached keys stay in use within their grace period");
                false
            }
        }
    }

    async fn fetch(&self) -> Result<(JwkSet, Option<u64>), String> {
        let uri = match &self.source {
            Source::Url(u) => u.clone(),
            Source::Discovery { jwks_uri, .. } => {
                let known = jwks_uri.lock().ok().and_then(|u| u.clone());
                match known {
                    Some(u) => u,
                    None => self.discover().await?,
                }
            }
            Source::Local { .. } => return Err("the built-in key set is not fetched".into()),
        };
        let result = self.get_json::<JwkSet>(&uri).await;
        if result.is_err()
            && let Source::Discovery { jwks_uri, .. } = &self.source
            && let Ok(mut u) = jwks_uri.lock()
        {
            // The provider may have moved its key set: discover again next time.
            *u = None;
        }
        result
    }

    /// Reads the OpenID configuration; its `issuer` must be the configured
    /// issuer exactly (OpenID Connect Discovery §4.3) and its `jwks_uri`
    /// must pass the same URL rules as a configured one.
    async fn discover(&self) -> Result<Uri, String> {
        let Source::Discovery {
            config_url,
            issuer,
            jwks_uri,
        } = &self.source
        else {
            return Err("not a discovery source".into());
        };
        #[derive(Deserialize)]
        struct OpenIdConfiguration {
            issuer: String,
            jwks_uri: String,
        }
        let (doc, _) = self
            .get_json::<OpenIdConfiguration>(config_url)
            .await
            .map_err(|e| format!("discovery: {e}"))?;
        if doc.issuer != *issuer {
            return Err(format!("discovery names issuer `{}`, expected `{issuer}`", doc.issuer));
        }
        if let Some(p) = url_problem(&doc.jwks_uri) {
            return Err(format!("discovered jwks_uri: {p}"));
        }
        let uri = doc.jwks_uri.parse::<Uri>().map_err(|e| e.to_string())?;
        // The key set must come from the issuer's own host, over the issuer's
        // scheme: a discovery document cannot point the gateway at internal
        // services or downgrade it to plain HTTP.
        if uri.host() != config_url.host() || uri.scheme_str() != config_url.scheme_str() {
            return Err(format!(
                "discovered jwks_uri `{}` is not on the issuer's origin",
                doc.jwks_uri
            ));
        }
        if let Ok(mut u) = jwks_uri.lock() {
            *u = Some(uri.clone());
        }
        Ok(uri)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, uri: &Uri) -> Result<(T, Option<u64>), String> {
        let req = Request::get(uri.clone())
            .header(http::header::ACCEPT, "application/json")
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("status {}", resp.status()));
        }
        let max_age = resp
            .headers()
            .get(http::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        let body = Limited::new(resp.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        let value: T = serde_json::from_slice(&body).map_err(|e| format!("unexpected JSON: {e}"))?;
        Ok((value, max_age))
    }
}

/// `max-age` of a `Cache-Control` value; `no-store`/`no-cache` count as 0.
fn max_age(v: &str) -> Option<u64> {
    let mut out = None;
    for d in v.split(',').map(str::trim) {
        if d.eq_ignore_ascii_case("no-store") || d.eq_ignore_ascii_case("no-cache") {
            return Some(0);
        }
        if let Some(n) = d.strip_prefix("max-age=") {
            out = n.trim_matches('"').parse().ok();
        }
    }
    out
}

/// Signing keys of the set: entries for encryption (`use: enc`) and entries
/// that do not decode are skipped.
fn decode_keys(set: &JwkSet) -> (HashMap<String, Arc<DecodingKey>>, Vec<Arc<DecodingKey>>) {
    let mut by_kid = HashMap::new();
    let mut unnamed = Vec::new();
    for jwk in &set.keys {
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let Ok(key) = DecodingKey::from_jwk(jwk) else { continue };
        match &jwk.common.key_id {
            Some(kid) => {
                by_kid.insert(kid.clone(), Arc::new(key));
            }
            None => unnamed.push(Arc::new(key)),
        }
    }
    (by_kid, unnamed)
}

/// An HTTP/1.1 connector for identity-provider calls: TLS verified against
/// the system roots (plain HTTP only where the URL checks allowed it).
pub(crate) fn https_connector(timeout_ms: u64) -> hyper_rustls::HttpsConnector<HttpConnector> {
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let tls = match builder.with_safe_default_protocol_versions() {
        Ok(b) => b
            .with_root_certificates(warden_tls::native_roots())
            .with_no_client_auth(),
        Err(_) => rustls::ClientConfig::builder()
            .with_root_certificates(warden_tls::native_roots())
            .with_no_client_auth(),
    };
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_millis(timeout_ms)));
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http)
}

#[cfg(test)]
mod tests {
    use super::max_age;

    #[test]
    fn cache_control_max_age_is_read_and_no_store_means_zero() {
        assert_eq!(max_age("public, max-age=300"), Some(300));
        assert_eq!(max_age("max-age=\"60\""), Some(60));
        assert_eq!(max_age("no-store"), Some(0));
        assert_eq!(max_age("private"), None);
    }
}
