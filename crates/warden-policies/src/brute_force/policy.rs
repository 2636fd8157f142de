//! The compiled `brute_force` policy.

use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use http::{HeaderName, HeaderValue, request, response};
use warden_core::event::{self, EventKind};
use warden_core::{Decision, Policy, PolicyError, ProblemKind, Rejection, RequestCtx, Services, SharedState};
use warden_shared::MemoryState;

use super::config::StuffingConfig;

/// Where the attempted identity is.
#[derive(Debug, Clone)]
pub(crate) enum Identity {
    Form(String),
    Json(String),
    Header(HeaderName),
    Basic,
}

/// Longest identity kept (longer ones are cut: still one identity each).
const MAX_IDENTITY: usize = 256;

#[derive(Debug)]
pub(crate) struct Settings {
    pub identity: Identity,
    pub failure_statuses: Vec<u16>,
    pub max_failures: u64,
    pub ip_max_failures: u64,
    pub window_secs: u64,
    pub lockout_secs: u64,
    pub max_lockout_secs: u64,
    pub stuffing: Option<StuffingConfig>,
}

/// `type: brute_force`, compiled.
pub struct BruteForce {
    s: Settings,
    shared: OnceLock<Arc<dyn SharedState>>,
    local: MemoryState,
}

impl std::fmt::Debug for BruteForce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BruteForce")
            .field("settings", &self.s)
            .finish_non_exhaustive()
    }
}

fn locked_out(retry: u64, what: &str) -> Decision {
    Decision::Reject(
        Rejection::new(ProblemKind::TooManyRequests, "locked_out", format!("{what} locked out"))
            .with_detail(format!("too many failed attempts; retry in {retry} s"))
            .with_header(http::header::RETRY_AFTER, HeaderValue::from(retry.max(1))),
    )
}

/// A login whose identity the gateway cannot read is refused: what the
/// gateway cannot count, it does not let through.
fn unreadable() -> Decision {
    Decision::Reject(Rejection::new(
        ProblemKind::BadRequest,
        "identity_unreadable",
        "the login names no readable identity".to_owned(),
    ))
}

impl BruteForce {
    pub(super) fn new(s: Settings) -> Self {
        Self {
            s,
            shared: OnceLock::new(),
            local: MemoryState::default(),
        }
    }

    /// The shared state, or this process's memory when it cannot answer
    /// (logged): lock-outs keep working per node during a Redis outage
    /// instead of silently stopping.
    fn shared_failed(e: &warden_core::SharedUnavailable) {
        tracing::warn!(error = %e, "brute-force state unavailable; this gateway's memory decides");
    }

    async fn bump(&self, key: &str, ttl: u64) -> u64 {
        if let Some(s) = self.shared.get() {
            match s.bump(key, ttl).await {
                Ok(v) => return v,
                Err(e) => Self::shared_failed(&e),
            }
        }
        self.local.bump(key, ttl).await.unwrap_or(1)
    }

    async fn read(&self, key: &str) -> u64 {
        if let Some(s) = self.shared.get() {
            match s.read(key).await {
                Ok(v) => return v,
                Err(e) => Self::shared_failed(&e),
            }
        }
        self.local.read(key).await.unwrap_or(0)
    }

    async fn put(&self, key: &str, value: u64, ttl: u64) {
        if let Some(s) = self.shared.get() {
            match s.put(key, value, ttl).await {
                Ok(()) => return,
                Err(e) => Self::shared_failed(&e),
            }
        }
        let _ = self.local.put(key, value, ttl).await;
    }

    async fn clear(&self, key: &str) {
        if let Some(s) = self.shared.get() {
            match s.clear(key).await {
                Ok(()) => return,
                Err(e) => Self::shared_failed(&e),
            }
        }
        let _ = self.local.clear(key).await;
    }

    fn key(ctx: &RequestCtx, what: &str, who: &str) -> String {
        format!("bf:{{{}}}:{what}:{who}", ctx.route_id.as_deref().unwrap_or(""))
    }

    /// Seconds left of a lock-out under `key`, if one is in force.
    async fn lock_left(&self, key: &str, now: i64) -> Option<u64> {
        let until = self.read(key).await;
        u64::try_from(i64::try_from(until).unwrap_or(i64::MAX) - now)
            .ok()
            .filter(|left| *left > 0)
    }

    /// Locks `who` out (level-th time: `lockout · 2^(level−1)`, capped).
    async fn lock(&self, ctx: &RequestCtx, kind: &str, who: &str) -> u64 {
        let level = self
            .bump(&Self::key(ctx, &format!("level:{kind}"), who), 86_400)
            .await
            .max(1);
        let factor = 1u64
            .checked_shl(u32::try_from(level.saturating_sub(1)).unwrap_or(63))
            .unwrap_or(u64::MAX);
        let secs = self.s.lockout_secs.saturating_mul(factor).min(self.s.max_lockout_secs);
        let until = u64::try_from(ctx.now_secs).unwrap_or(0).saturating_add(secs);
        self.put(&Self::key(ctx, &format!("lock:{kind}"), who), until, secs)
            .await;
        self.clear(&Self::key(ctx, &format!("fail:{kind}"), who)).await;
        event::emit(
            EventKind::LockedOut,
            &ctx.request_id,
            who,
            &format!("{kind} locked out for {secs} s (lock-out {level})"),
        );
        secs
    }

    /// An identity was named: refuse it while locked out, count the attempt
    /// (before the upstream answers, so parallel guesses count too), and
    /// watch the address for credential stuffing.
    async fn check_identity(&self, raw: &str, ctx: &mut RequestCtx) -> Option<Decision> {
        // Case and surrounding space do not make another account.
        let id: String = raw.trim().to_lowercase().chars().take(MAX_IDENTITY).collect();
        if id.is_empty() {
            return Some(unreadable());
        }
        let ip = crate::rate_limit::client_net(ctx.client_ip);
        if let Some(st) = &self.s.stuffing {
            let seen = Self::key(ctx, &format!("seen:{ip}"), &id);
            if self.read(&seen).await == 0 {
                self.put(&seen, 1, st.window_secs).await;
                let n = self.bump(&Self::key(ctx, "ids", &ip), st.window_secs).await;
                if n == st.distinct_identities + 1 {
                    event::emit(
                        EventKind::CredentialStuffing,
                        &ctx.request_id,
                        &ip,
                        &format!(
                            "more than {} identities within {} s",
                            st.distinct_identities, st.window_secs
                        ),
                    );
                }
                // Every new identity past the threshold blocks again.
                if n > st.distinct_identities && st.block_secs > 0 {
                    let until = u64::try_from(ctx.now_secs).unwrap_or(0).saturating_add(st.block_secs);
                    self.put(&Self::key(ctx, "lock:ip", &ip), until, st.block_secs).await;
                    return Some(locked_out(st.block_secs, "address"));
                }
            }
        }
        if let Some(left) = self.lock_left(&Self::key(ctx, "lock:id", &id), ctx.now_secs).await {
            return Some(locked_out(left, "identity"));
        }
        // The attempt counts now; a success gives it back. Exactly one
        // request sees the count pass the limit, so one burst locks once.
        let n = self.bump(&Self::key(ctx, "fail:id", &id), self.s.window_secs).await;
        if n > self.s.max_failures {
            if n == self.s.max_failures + 1 {
                let secs = self.lock(ctx, "id", &id).await;
                return Some(locked_out(secs, "identity"));
            }
            return Some(locked_out(self.s.lockout_secs, "identity"));
        }
        ctx.attempted_identity = Some(Arc::from(id));
        None
    }

    /// The identity in the request head: `Ok(None)` when the request
    /// carries none (no login attempt to count), `Err` when it carries one
    /// the gateway cannot read unambiguously.
    fn identity_in_head(&self, req: &request::Parts) -> Result<Option<String>, ()> {
        match &self.s.identity {
            Identity::Header(h) => {
                let mut values = req.headers.get_all(h).iter();
                let Some(v) = values.next() else { return Ok(None) };
                if values.next().is_some() {
                    return Err(());
                }
                v.to_str().map(|v| Some(v.to_owned())).map_err(|_| ())
            }
            Identity::Basic => {
                let mut values = req.headers.get_all(http::header::AUTHORIZATION).iter();
                let Some(v) = values.next() else { return Ok(None) };
                if values.next().is_some() {
                    return Err(());
                }
                let v = v.to_str().map_err(|_| ())?;
                let Some((scheme, b64)) = v.split_once(' ') else {
                    return Ok(None);
                };
                if !scheme.eq_ignore_ascii_case("basic") {
                    return Ok(None);
                }
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|_| ())?;
                let text = String::from_utf8(raw).map_err(|_| ())?;
                text.split_once(':').map(|(u, _)| Some(u.to_owned())).ok_or(())
            }
            Identity::Form(_) | Identity::Json(_) => Ok(None),
        }
    }

    /// The identity in the body; `Err` when the body does not name one
    /// unambiguously (wrong content type, bad encoding, repeated field,
    /// duplicate JSON keys, missing field).
    fn identity_in_body(&self, req: &request::Parts, body: &[u8]) -> Result<String, ()> {
        let essence = crate::json::media_type(req);
        if req.headers.contains_key(http::header::CONTENT_ENCODING) {
            return Err(());
        }
        match &self.s.identity {
            Identity::Form(field) => {
                if essence != "application/x-www-form-urlencoded" {
                    return Err(());
                }
                let text = std::str::from_utf8(body).map_err(|_| ())?;
                let mut found = text.split('&').filter_map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (decode_form(k).as_deref() == Some(field.as_str())).then(|| decode_form(v))
                });
                let first = found.next().flatten().ok_or(())?;
                if found.next().is_some() {
                    return Err(());
                }
                Ok(first)
            }
            Identity::Json(pointer) => {
                if !crate::json::is_json(&essence) {
                    return Err(());
                }
                let doc = crate::json::parse_strict(body).map_err(|_| ())?;
                match doc.pointer(pointer) {
                    Some(serde_json::Value::String(s)) => Ok(s.clone()),
                    Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
                    _ => Err(()),
                }
            }
            _ => Err(()),
        }
    }
}

fn decode_form(v: &str) -> Option<String> {
    let mut out = Vec::with_capacity(v.len());
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

impl Policy for BruteForce {
    fn name(&self) -> &'static str {
        "brute_force"
    }

    fn needs_request_body(&self) -> bool {
        matches!(self.s.identity, Identity::Form(_) | Identity::Json(_))
    }

    fn start(&self, services: &Services) {
        if let Some(s) = &services.shared {
            let _ = self.shared.set(Arc::clone(s));
        }
    }

    async fn on_request(&self, req: &mut request::Parts, ctx: &mut RequestCtx) -> Result<Decision, PolicyError> {
        let ip = crate::rate_limit::client_net(ctx.client_ip);
        if let Some(left) = self.lock_left(&Self::key(ctx, "lock:ip", &ip), ctx.now_secs).await {
            return Ok(locked_out(left, "address"));
        }
        let decision = match self.identity_in_head(req) {
            Ok(None) => Decision::Continue,
            Ok(Some(id)) => self.check_identity(&id, ctx).await.unwrap_or(Decision::Continue),
            Err(()) => unreadable(),
        };
        // A safe request (fetching the login page) counts as an attempt but
        // can never reset one: only a real login's success gives attempts back.
        if req.method.is_safe() {
            ctx.attempted_identity = None;
        }
        Ok(decision)
    }

    async fn on_request_body(
        &self,
        req: &request::Parts,
        body: &bytes::Bytes,
        ctx: &mut RequestCtx,
    ) -> Result<Decision, PolicyError> {
        match self.identity_in_body(req, body) {
            Ok(id) => Ok(self.check_identity(&id, ctx).await.unwrap_or(Decision::Continue)),
            Err(()) => Ok(unreadable()),
        }
    }

    async fn on_response(&self, resp: &mut response::Parts, ctx: &mut RequestCtx) -> Result<Decision, PolicyError> {
        let status = resp.status.as_u16();
        if self.s.failure_statuses.contains(&status) {
            // The identity's attempt was counted on the way in; the address
            // counts failures.
            let ip = crate::rate_limit::client_net(ctx.client_ip);
            let n = self.bump(&Self::key(ctx, "fail:ip", &ip), self.s.window_secs).await;
            if n == self.s.ip_max_failures {
                self.lock(ctx, "ip", &ip).await;
            }
        } else if resp.status.is_success()
            && let Some(id) = ctx.attempted_identity.clone()
        {
            // A successful login gives its attempts back. The lock-out level
            // stays (it expires by itself), so lock-outs keep growing for an
            // account under steady attack.
            self.clear(&Self::key(ctx, "fail:id", &id)).await;
        }
        Ok(Decision::Continue)
    }
}
