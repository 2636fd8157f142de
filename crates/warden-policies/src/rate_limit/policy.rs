//! The compiled `rate_limit` policy.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use http::{HeaderName, HeaderValue, request};
use serde_json::Value;
use warden_core::limits::{LimitCheck, LimitKind, LimitOutcome};
use warden_core::{Clock, Decision, Policy, PolicyError, ProblemKind, Rejection, RequestCtx, Services, SharedState};
use warden_shared::Limiter;

use super::config::{ThrottleConfig, Unavailable};

/// One part of a limit's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyPart {
    Ip,
    Consumer,
    Credential,
    Route,
    Header(HeaderName),
    Claim(String),
}

impl KeyPart {
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        match s {
            "ip" => Ok(Self::Ip),
            "consumer" => Ok(Self::Consumer),
            "credential" => Ok(Self::Credential),
            "route" => Ok(Self::Route),
            _ => {
                if let Some(h) = s.strip_prefix("header:") {
                    return HeaderName::from_bytes(h.as_bytes())
                        .ok()
                        .filter(|n| n.as_str() == h)
                        .map(Self::Header)
                        .ok_or_else(|| format!("`{h}` is not a lower-case header name"));
                }
                if let Some(c) = s.strip_prefix("claim:").filter(|c| !c.is_empty()) {
                    return Ok(Self::Claim(c.to_owned()));
                }
                Err(format!(
                    "`{s}` is not ip, consumer, credential, route, header:NAME or claim:NAME"
                ))
            }
        }
    }

    /// Writes this part's value for the request into `out` (cleared first).
    /// A part the request does not have (an anonymous consumer, a missing
    /// header) counts by client address instead, so a missing value never
    /// pools every such client together.
    fn write_value(&self, req: &request::Parts, ctx: &RequestCtx, out: &mut String) {
        out.clear();
        let found = match self {
            Self::Ip => false,
            Self::Consumer => ctx.consumer.as_deref().is_some_and(|c| {
                out.push_str("c=");
                out.push_str(c);
                true
            }),
            Self::Credential => ctx.credential.as_deref().is_some_and(|c| {
                out.push_str("k=");
                out.push_str(c);
                true
            }),
            Self::Route => {
                out.push_str("r=");
                out.push_str(ctx.route_id.as_deref().unwrap_or(""));
                true
            }
            Self::Header(h) => req.headers.get(h).is_some_and(|v| {
                out.push_str("h=");
                out.push_str(&String::from_utf8_lossy(v.as_bytes()));
                true
            }),
            Self::Claim(c) => ctx.token_claims.as_deref().and_then(|m| m.get(c)).is_some_and(|v| {
                out.push_str("t=");
                match v {
                    Value::String(s) => out.push_str(s),
                    other => {
                        let _ = write!(out, "{other}");
                    }
                }
                true
            }),
        };
        if !found {
            out.clear();
            out.push_str("ip=");
            write_client_net(out, ctx.client_ip);
        }
    }
}

/// The client's address as counted: IPv4 as is, IPv6 by its /64 (one
/// subscriber usually holds a whole /64), IPv4-mapped IPv6 as IPv4.
pub(crate) fn client_net(ip: IpAddr) -> String {
    let mut out = String::with_capacity(24);
    write_client_net(&mut out, ip);
    out
}

fn write_client_net(out: &mut String, ip: IpAddr) {
    let v4 = match ip {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4,
            None => {
                let s = v6.segments();
                let _ = write!(out, "{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]);
                return;
            }
        },
    };
    let mut n = itoa::Buffer::new();
    for (i, octet) in v4.octets().iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(n.format(*octet));
    }
}

/// Appends one key part, length-prefixed; values longer than 64 bytes (a
/// client-chosen header, say) go in as their SHA-256, so keys stay small.
fn push_part(key: &mut String, v: &str) {
    if v.len() <= 64 {
        key.push_str(itoa::Buffer::new().format(v.len()));
        key.push(':');
        key.push_str(v);
    } else {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, v.as_bytes());
        key.push_str("h:");
        for b in digest.as_ref() {
            let _ = write!(key, "{b:02x}");
        }
    }
}

/// One compiled limit.
#[derive(Debug, Clone)]
pub(crate) struct Limit {
    pub name: String,
    pub key: Vec<KeyPart>,
    pub kind: LimitKind,
    /// Its `RateLimit-Policy` item up to the window (`"name";q=N;w=`).
    policy_prefix: String,
}

impl Limit {
    pub(crate) fn new(name: String, key: Vec<KeyPart>, kind: LimitKind) -> Self {
        let q = match kind {
            LimitKind::Rate { limit, .. } | LimitKind::Quota { limit, .. } => limit,
        };
        let policy_prefix = format!("\"{name}\";q={q};w=");
        Self {
            name,
            key,
            kind,
            policy_prefix,
        }
    }
}

/// The policy-wide settings of a `rate_limit`, compiled.
pub(super) struct Settings {
    pub bucket: Option<String>,
    pub headers: bool,
    pub unavailable: Unavailable,
    pub nodes: u64,
    pub throttle: Option<ThrottleConfig>,
}

/// `type: rate_limit`, compiled.
pub struct RateLimit {
    limits: Vec<Limit>,
    concurrency: Vec<(Vec<KeyPart>, u64)>,
    in_flight: Arc<std::sync::Mutex<std::collections::HashMap<String, u64>>>,
    plans: Vec<(String, Vec<Limit>)>,
    bucket: Option<String>,
    headers: bool,
    unavailable: Unavailable,
    nodes: u64,
    throttle: Option<ThrottleConfig>,
    /// Requests waiting in throttling now.
    waiting: std::sync::atomic::AtomicU64,
    shared: OnceLock<Arc<dyn SharedState>>,
    clock: OnceLock<Arc<dyn Clock>>,
    /// Counters when no shared state was lent, and the local fallback.
    local: Limiter,
}

impl std::fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimit")
            .field("limits", &self.limits)
            .field("plans", &self.plans)
            .field("bucket", &self.bucket)
            .field("nodes", &self.nodes)
            .finish_non_exhaustive()
    }
}

impl RateLimit {
    pub(super) fn new(
        limits: Vec<Limit>,
        concurrency: Vec<(Vec<KeyPart>, u64)>,
        plans: Vec<(String, Vec<Limit>)>,
        settings: Settings,
    ) -> Self {
        let Settings {
            bucket,
            headers,
            unavailable,
            nodes,
            throttle,
        } = settings;
        Self {
            limits,
            concurrency,
            in_flight: Arc::default(),
            plans,
            bucket,
            headers,
            unavailable,
            nodes,
            throttle,
            waiting: std::sync::atomic::AtomicU64::new(0),
            shared: OnceLock::new(),
            clock: OnceLock::new(),
            local: Limiter::default(),
        }
    }

    fn now_ms(&self) -> i64 {
        match self.clock.get() {
            Some(c) => c.now_ms(),
            None => warden_core::SystemClock.now_ms(),
        }
    }

    /// The limits for this caller: its first group with a plan, else the defaults.
    fn limits_for(&self, ctx: &RequestCtx) -> &[Limit] {
        ctx.groups
            .iter()
            .find_map(|g| self.plans.iter().find(|(p, _)| **p == **g))
            .map_or(&self.limits, |(_, l)| l)
    }

    fn checks(&self, limits: &[Limit], req: &request::Parts, ctx: &RequestCtx) -> Vec<LimitCheck> {
        let bucket = self.bucket.as_deref().or(ctx.route_id.as_deref()).unwrap_or("");
        let mut value = String::with_capacity(64);
        limits
            .iter()
            .map(|l| {
                // `{bucket}` is a Redis Cluster hash tag: every counter of a
                // request lands in one slot, as the atomic script needs.
                let kind = match l.kind {
                    LimitKind::Rate { .. } => ":r:",
                    LimitKind::Quota { .. } => ":q:",
                };
                let mut key = String::with_capacity(64);
                key.push_str("rl:{");
                key.push_str(bucket);
                key.push_str("}:");
                key.push_str(&l.name);
                key.push_str(kind);
                for part in &l.key {
                    part.write_value(req, ctx, &mut value);
                    push_part(&mut key, &value);
                }
                LimitCheck { key, kind: l.kind }
            })
            .collect()
    }

    /// This node's share of `checks` (local fallback).
    fn share(&self, checks: &[LimitCheck]) -> Vec<LimitCheck> {
        let part = |n: u64| n.div_ceil(self.nodes).max(1);
        checks
            .iter()
            .map(|c| LimitCheck {
                key: c.key.clone(),
                kind: match c.kind {
                    LimitKind::Rate {
                        limit,
                        period_ms,
                        burst,
                    } => LimitKind::Rate {
                        limit: part(limit),
                        period_ms,
                        burst: part(burst),
                    },
                    LimitKind::Quota { limit, window } => LimitKind::Quota {
                        limit: part(limit),
                        window,
                    },
                },
            })
            .collect()
    }
}

type Outcomes = (Vec<LimitOutcome>, i64);

impl RateLimit {
    /// Applies `checks` once (shared state, or local memory), with the time
    /// used; `Err` is the refusal when the shared state is down and the
    /// policy fails closed.
    async fn decide(&self, checks: &[LimitCheck]) -> Result<Outcomes, Decision> {
        let now_ms = self.now_ms();
        let outcomes = match self.shared.get() {
            None => self.local.apply(checks, now_ms),
            Some(shared) => match shared.limit(checks, now_ms).await {
                Ok(o) => o,
                Err(e) => match self.unavailable {
                    Unavailable::Local => self.local.apply(&self.share(checks), now_ms),
                    Unavailable::FailClosed => {
                        tracing::warn!(error = %e, "rate limits cannot be checked; refused (fail_closed)");
                        return Err(Decision::Reject(
                            Rejection::new(ProblemKind::ServiceUnavailable, "rate_limit_unavailable", e.to_string())
                                .with_header(http::header::RETRY_AFTER, HeaderValue::from_static("1")),
                        ));
                    }
                },
            },
        };
        Ok((outcomes, now_ms))
    }

    /// Throttling: while the refusing limits' next place is due within the
    /// remaining `max_wait_ms`, waits for it and asks again (other waiters
    /// may take it first). `None` when this request does not wait at all
    /// (a quota refused it, its place is too far, or `max_waiting` requests
    /// wait already); otherwise the last decision.
    async fn wait_turn(
        &self,
        checks: &[LimitCheck],
        first: &[LimitOutcome],
        t: ThrottleConfig,
    ) -> Option<Result<Outcomes, Decision>> {
        use std::sync::atomic::Ordering;
        let due = |outcomes: &[LimitOutcome]| {
            let mut wait = 0;
            for (c, o) in checks.iter().zip(outcomes).filter(|(_, o)| !o.allowed) {
                if matches!(c.kind, LimitKind::Quota { .. }) {
                    return None;
                }
                wait = wait.max(o.retry_after_ms);
            }
            Some(wait)
        };
        let start = tokio::time::Instant::now();
        let budget = std::time::Duration::from_millis(t.max_wait_ms);
        let wait = due(first).filter(|w| *w <= t.max_wait_ms)?;
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= t.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        struct Leave<'a>(&'a std::sync::atomic::AtomicU64);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let _leave = Leave(&self.waiting);
        let mut wait = std::time::Duration::from_millis(wait);
        loop {
            tokio::time::sleep(wait).await;
            let (outcomes, now_ms) = match self.decide(checks).await {
                Ok(o) => o,
                Err(refused) => return Some(Err(refused)),
            };
            if outcomes.iter().all(|o| o.allowed) {
                return Some(Ok((outcomes, now_ms)));
            }
            let left = budget.saturating_sub(start.elapsed());
            match due(&outcomes).map(std::time::Duration::from_millis) {
                Some(next) if next <= left => wait = next,
                _ => return Some(Ok((outcomes, now_ms))),
            }
        }
    }
}

/// Places taken in the in-flight counts; given back when the exchange ends.
struct Held {
    counts: Arc<std::sync::Mutex<std::collections::HashMap<String, u64>>>,
    keys: Vec<String>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for k in &self.keys {
            if let Some(n) = counts.get_mut(k) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    counts.remove(k);
                }
            }
        }
    }
}

impl RateLimit {
    /// Takes a place in every concurrency limit, or refuses (429) when one is full.
    fn take_concurrency(&self, req: &request::Parts, ctx: &mut RequestCtx) -> Option<Decision> {
        if self.concurrency.is_empty() {
            return None;
        }
        let bucket = self.bucket.as_deref().or(ctx.route_id.as_deref()).unwrap_or("");
        let keys: Vec<(String, u64)> = self
            .concurrency
            .iter()
            .enumerate()
            .map(|(i, (parts, max))| {
                let mut key = format!("cc:{bucket}:{i}:");
                let mut value = String::new();
                for p in parts {
                    p.write_value(req, ctx, &mut value);
                    push_part(&mut key, &value);
                }
                (key, *max)
            })
            .collect();
        let mut counts = self.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if keys.iter().any(|(k, max)| counts.get(k).copied().unwrap_or(0) >= *max) {
            return Some(Decision::Reject(
                Rejection::new(
                    ProblemKind::TooManyRequests,
                    "too_many_in_flight",
                    "concurrency limit reached".to_owned(),
                )
                .with_detail("too many requests in flight; retry shortly")
                .with_header(http::header::RETRY_AFTER, HeaderValue::from_static("1")),
            ));
        }
        for (k, _) in &keys {
            *counts.entry(k.clone()).or_insert(0) += 1;
        }
        drop(counts);
        ctx.holds.push(Arc::new(Held {
            counts: Arc::clone(&self.in_flight),
            keys: keys.into_iter().map(|(k, _)| k).collect(),
        }));
        None
    }
}

/// `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers).
fn headers(
    limits: &[Limit],
    checks: &[LimitCheck],
    outcomes: &[LimitOutcome],
    now_secs: i64,
) -> [(HeaderName, String); 2] {
    let mut policy = String::with_capacity(64);
    let mut state = String::with_capacity(64);
    let mut n = itoa::Buffer::new();
    for ((l, c), o) in limits.iter().zip(checks).zip(outcomes) {
        let w = match c.kind {
            LimitKind::Rate { period_ms, .. } => period_ms / 1000,
            LimitKind::Quota { window, .. } => {
                let (start, end) = window.bounds(now_secs);
                u64::try_from(end - start).unwrap_or(0)
            }
        };
        if !policy.is_empty() {
            policy.push_str(", ");
            state.push_str(", ");
        }
        policy.push_str(&l.policy_prefix);
        policy.push_str(n.format(w));
        state.push('"');
        state.push_str(&l.name);
        state.push_str("\";r=");
        state.push_str(n.format(o.remaining));
        state.push_str(";t=");
        state.push_str(n.format(o.reset_secs));
    }
    [
        (HeaderName::from_static("ratelimit-policy"), policy),
        (HeaderName::from_static("ratelimit"), state),
    ]
}

impl Policy for RateLimit {
    fn name(&self) -> &'static str {
        "rate_limit"
    }

    fn start(&self, services: &Services) {
        if let Some(s) = &services.shared {
            let _ = self.shared.set(Arc::clone(s));
        }
        if let Some(c) = &services.clock {
            let _ = self.clock.set(Arc::clone(c));
        }
    }

    async fn on_request(&self, req: &mut request::Parts, ctx: &mut RequestCtx) -> Result<Decision, PolicyError> {
        if let Some(refused) = self.take_concurrency(req, ctx) {
            return Ok(refused);
        }
        let limits = self.limits_for(ctx);
        if limits.is_empty() {
            return Ok(Decision::Continue);
        }
        let checks = self.checks(limits, req, ctx);
        let (mut outcomes, mut now_ms) = match self.decide(&checks).await {
            Ok(o) => o,
            Err(refused) => return Ok(refused),
        };
        if outcomes.iter().any(|o| !o.allowed)
            && let Some(t) = self.throttle
            && let Some(late) = self.wait_turn(&checks, &outcomes, t).await
        {
            match late {
                Ok(o) => (outcomes, now_ms) = o,
                Err(refused) => return Ok(refused),
            }
        }
        let allowed = outcomes.iter().all(|o| o.allowed);
        if !allowed {
            // Nothing was counted: the limits that would have admitted the
            // request still have the place it would have taken.
            for o in outcomes.iter_mut().filter(|o| o.allowed) {
                o.remaining += 1;
            }
        }
        let mut extra = Vec::new();
        if self.headers {
            for (name, value) in headers(limits, &checks, &outcomes, now_ms.div_euclid(1000)) {
                if let Ok(v) = HeaderValue::from_str(&value) {
                    extra.push((name, v));
                }
            }
        }
        if allowed {
            ctx.response_headers.extend(extra);
            return Ok(Decision::Continue);
        }
        let retry = outcomes
            .iter()
            .filter(|o| !o.allowed)
            .map(|o| o.retry_after_secs)
            .max()
            .unwrap_or(1);
        let over: Vec<&str> = limits
            .iter()
            .zip(&outcomes)
            .filter(|(_, o)| !o.allowed)
            .map(|(l, _)| l.name.as_str())
            .collect();
        let mut r = Rejection::new(
            ProblemKind::TooManyRequests,
            "rate_limited",
            format!("over {}", over.join(", ")),
        )
        .with_detail(format!("retry in {retry} s"))
        .with_header(http::header::RETRY_AFTER, HeaderValue::from(retry));
        for (name, v) in extra {
            r = r.with_header(name, v);
        }
        Ok(Decision::Reject(r))
    }
}
