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

impl BruteForce {
    pub(super) fn new(s: Settings) -> Self {
        Self {
            s,
            shared: OnceLock::new(),
            local: MemoryState::default(),
        }
    }

    fn state(&self) -> &dyn SharedState {
        match self.shared.get() {
            Some(s) => s.as_ref(),
            None => &self.local,
        }
    }

    fn key(ctx: &RequestCtx, what: &str, who: &str) -> String {
        format!("bf:{{{}}}:{what}:{who}", ctx.route_id.as_deref().unwrap_or(""))
    }

    /// Seconds left of a lock-out under `key`, if one is in force. The
    /// shared state failing counts as no lock-out (logged).
    async fn lock_left(&self, key: &str, now: i64) -> Option<u64> {
        match self.state().read(key).await {
            Ok(until) => u64::try_from(i64::try_from(until).unwrap_or(i64::MAX) - now)
                .ok()
                .filter(|left| *left > 0),
            Err(e) => {
                tracing::warn!(error = %e, "brute-force state unavailable; not enforced for this request");
                None
            }
        }
    }

    /// Locks `who` out (level-th time: `lockout · 2^(level−1)`, capped).
    async fn lock(&self, ctx: &RequestCtx, kind: &str, who: &str) {
        let st = self.state();
        let level = st
            .bump(&Self::key(ctx, &format!("level:{kind}"), who), 86_400)
            .await
            .unwrap_or(1);
        let factor = 1u64
            .checked_shl(u32::try_from(level.saturating_sub(1)).unwrap_or(63))
            .unwrap_or(u64::MAX);
        let secs = self.s.lockout_secs.saturating_mul(factor).min(self.s.max_lockout_secs);
        let until = u64::try_from(ctx.now_secs).unwrap_or(0).saturating_add(secs);
        let _ = st.put(&Self::key(ctx, &format!("lock:{kind}"), who), until, secs).await;
        let _ = st.clear(&Self::key(ctx, &format!("fail:{kind}"), who)).await;
        event::emit(
            EventKind::LockedOut,
            &ctx.request_id,
            who,
            &format!("{kind} locked out for {secs} s (lock-out {level})"),
        );
    }

    /// An identity was named: refuse it while locked out, and watch the
    /// address for credential stuffing.
    async fn check_identity(&self, raw: &str, ctx: &mut RequestCtx) -> Option<Decision> {
        // Case and surrounding space do not make another account.
        let id: String = raw.trim().to_lowercase().chars().take(MAX_IDENTITY).collect();
        if id.is_empty() {
            return None;
        }
        let ip = crate::rate_limit::client_net(ctx.client_ip);
        if let Some(st) = &self.s.stuffing {
            let seen = Self::key(ctx, &format!("seen:{ip}"), &id);
            if let Ok(true) = self.state().claim_once(&seen, st.window_secs).await
                && let Ok(n) = self.state().bump(&Self::key(ctx, "ids", &ip), st.window_secs).await
                && n == st.distinct_identities + 1
            {
                event::emit(
                    EventKind::CredentialStuffing,
                    &ctx.request_id,
                    &ip,
                    &format!(
                        "more than {} identities within {} s",
                        st.distinct_identities, st.window_secs
                    ),
                );
                if st.block_secs > 0 {
                    let until = u64::try_from(ctx.now_secs).unwrap_or(0).saturating_add(st.block_secs);
                    let _ = self
                        .state()
                        .put(&Self::key(ctx, "lock:ip", &ip), until, st.block_secs)
                        .await;
                    return Some(locked_out(st.block_secs, "address"));
                }
            }
        }
        if let Some(left) = self.lock_left(&Self::key(ctx, "lock:id", &id), ctx.now_secs).await {
            return Some(locked_out(left, "identity"));
        }
        ctx.attempted_identity = Some(Arc::from(id));
        None
    }

    fn identity_in_head(&self, req: &request::Parts) -> Option<String> {
        match &self.s.identity {
            Identity::Header(h) => req.headers.get(h).and_then(|v| v.to_str().ok()).map(str::to_owned),
            Identity::Basic => {
                let v = req.headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
                let (scheme, b64) = v.split_once(' ')?;
                if !scheme.eq_ignore_ascii_case("basic") {
                    return None;
                }
                let raw = base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()?;
                let text = String::from_utf8(raw).ok()?;
                text.split_once(':').map(|(u, _)| u.to_owned())
            }
            Identity::Form(_) | Identity::Json(_) => None,
        }
    }

    fn identity_in_body(&self, body: &[u8]) -> Option<String> {
        match &self.s.identity {
            Identity::Form(field) => std::str::from_utf8(body).ok()?.split('&').find_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                (decode_form(k)? == *field).then(|| decode_form(v)).flatten()
            }),
            Identity::Json(pointer) => {
                let doc = crate::json::parse_strict(body).ok()?;
                match doc.pointer(pointer)? {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    _ => None,
                }
            }
            _ => None,
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
        if let Some(id) = self.identity_in_head(req)
            && let Some(d) = self.check_identity(&id, ctx).await
        {
            return Ok(d);
        }
        Ok(Decision::Continue)
    }

    async fn on_request_body(
        &self,
        _req: &request::Parts,
        body: &bytes::Bytes,
        ctx: &mut RequestCtx,
    ) -> Result<Decision, PolicyError> {
        if let Some(id) = self.identity_in_body(body)
            && let Some(d) = self.check_identity(&id, ctx).await
        {
            return Ok(d);
        }
        Ok(Decision::Continue)
    }

    async fn on_response(&self, resp: &mut response::Parts, ctx: &mut RequestCtx) -> Result<Decision, PolicyError> {
        let status = resp.status.as_u16();
        let ip = crate::rate_limit::client_net(ctx.client_ip);
        let st = self.state();
        if self.s.failure_statuses.contains(&status) {
            if let Some(id) = ctx.attempted_identity.clone()
                && let Ok(n) = st.bump(&Self::key(ctx, "fail:id", &id), self.s.window_secs).await
                && n >= self.s.max_failures
            {
                self.lock(ctx, "id", &id).await;
            }
            if let Ok(n) = st.bump(&Self::key(ctx, "fail:ip", &ip), self.s.window_secs).await
                && n >= self.s.ip_max_failures
            {
                self.lock(ctx, "ip", &ip).await;
            }
        } else if resp.status.is_success()
            && let Some(id) = ctx.attempted_identity.clone()
        {
            // A success resets the identity's failures and its lock-out level.
            let _ = st.clear(&Self::key(ctx, "fail:id", &id)).await;
            let _ = st.clear(&Self::key(ctx, "level:id", &id)).await;
        }
        Ok(Decision::Continue)
    }
}
