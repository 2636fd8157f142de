//! The compiled `rate_limit` policy.

use std::sync::{Arc, OnceLock};

use http::{HeaderName, HeaderValue, request};
use smallvec::SmallVec;
use warden_core::limits::{LimitCheck, LimitKind, LimitOutcome, Outcomes, Subject, Window};
use warden_core::{
    Clock, ConnMemo, Decision, Policy, PolicyError, ProblemKind, Rejection, RequestCtx, ResponseHeaders, Services,
    SharedState,
};
use warden_shared::Limiter;

use super::config::{ThrottleConfig, Unavailable};
use super::keys::KeyPart;

/// One compiled limit.
#[derive(Debug, Clone)]
pub(crate) struct Limit {
    pub name: String,
    pub key: Vec<KeyPart>,
    pub kind: LimitKind,
    /// Its `RateLimit-Policy` item up to the window (`"name";q=N;w=`).
    policy_prefix: String,
    /// Its `RateLimit` item up to the remaining count (`"name";r=`).
    state_prefix: String,
    /// Its name among the checks (`name:r` or `name:q`).
    tag: String,
}

impl Limit {
    pub(crate) fn new(name: String, key: Vec<KeyPart>, kind: LimitKind) -> Self {
        let q = match kind {
            LimitKind::Rate { limit, .. } | LimitKind::Quota { limit, .. } => limit,
        };
        let policy_prefix = format!("\"{name}\";q={q};w=");
        let state_prefix = format!("\"{name}\";r=");
        let tag = match kind {
            LimitKind::Rate { .. } => format!("{name}:r"),
            LimitKind::Quota { .. } => format!("{name}:q"),
        };
        Self {
            name,
            key,
            kind,
            policy_prefix,
            state_prefix,
            tag,
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
    limits: LimitSet,
    concurrency: Vec<(Vec<KeyPart>, u64)>,
    in_flight: Arc<std::sync::Mutex<std::collections::HashMap<String, u64>>>,
    plans: Vec<(String, LimitSet)>,
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
            limits: LimitSet::new(limits),
            concurrency,
            in_flight: Arc::default(),
            plans: plans.into_iter().map(|(g, l)| (g, LimitSet::new(l))).collect(),
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

    /// The time of a request's first decision: the lent clock's (tests),
    /// else the request's own start time, which its context read already
    /// (microseconds ago: no second clock read per request).
    fn request_now_ms(&self, ctx: &RequestCtx) -> i64 {
        match self.clock.get() {
            Some(c) => c.now_ms(),
            None => ctx.now_ms,
        }
    }

    /// The limits for this caller: its first group with a plan, else the defaults.
    pub(super) fn limits_for(&self, ctx: &RequestCtx) -> &LimitSet {
        ctx.groups
            .iter()
            .find_map(|g| self.plans.iter().find(|(p, _)| **p == **g))
            .map_or(&self.limits, |(_, l)| l)
    }

    /// The request's subjects: one per distinct key among the limits of
    /// `set`, each `rl:{bucket}:` and the key's length-prefixed values.
    pub(super) fn subjects(&self, set: &LimitSet, req: &request::Parts, ctx: &RequestCtx) -> Subjects {
        let bucket = self.bucket.as_deref().or(ctx.route_id.as_deref()).unwrap_or("");
        set.first_of_key
            .iter()
            .map(|i| {
                // `{bucket}` is a Redis Cluster hash tag: every counter of a
                // request lands in one slot, as the atomic script needs.
                let mut subject = String::with_capacity(64);
                subject.push_str("rl:{");
                subject.push_str(bucket);
                subject.push_str("}:");
                for part in &set.limits[*i].key {
                    part.push_to(req, ctx, &mut subject);
                }
                Subject::new(subject)
            })
            .collect()
    }

    /// The request's subjects as [`RateLimit::subjects`] makes them, from
    /// the connection's memo when `set` is keyed only by what a connection
    /// keeps (client address, route) and this client's are there; made
    /// and filed there otherwise.
    pub(super) fn memo_subjects(&self, set: &LimitSet, req: &request::Parts, ctx: &RequestCtx) -> Option<Arc<Memo>> {
        let owner = set.memo?;
        let memo = ctx.conn_memo.as_deref()?;
        // A trusted proxy's connection carries many clients: kept subjects
        // would be replaced at nearly every request.
        if ctx.client_ip != ctx.peer_ip {
            return None;
        }
        // The route may be part of them (the bucket when the policy names
        // none, a `route` key), and a policy on a service serves several.
        let route = ctx.route_id.as_ref();
        let same_route = |kept: Option<&Arc<str>>| match (kept, route) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
            (a, b) => a.is_none() && b.is_none(),
        };
        if let Some(m) = memo.get::<Memo>(owner, ctx.client_ip)
            && same_route(m.route.as_ref())
        {
            return Some(m);
        }
        let m = Arc::new(Memo {
            route: route.cloned(),
            subjects: self.subjects(set, req, ctx),
        });
        memo.put(owner, ctx.client_ip, Arc::clone(&m));
        Some(m)
    }

    /// This node's share of `checks` (local fallback).
    fn share<'a>(&self, checks: &[LimitCheck<'a>]) -> Vec<LimitCheck<'a>> {
        let part = |n: u64| n.div_ceil(self.nodes).max(1);
        checks
            .iter()
            .map(|c| LimitCheck {
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
                ..*c
            })
            .collect()
    }
}

/// A client's subjects, kept in its connection's memo.
pub(super) struct Memo {
    /// The route they were made on.
    route: Option<Arc<str>>,
    subjects: Subjects,
}

/// The checks of `set` for a request with these `subjects` ([`RateLimit::subjects`]).
#[inline]
pub(super) fn checks<'a>(set: &'a LimitSet, subjects: &'a [Subject]) -> Checks<'a> {
    // Pushed one by one: `collect`'s size-hint bookkeeping costs more than
    // a route's one or two limits.
    let mut checks = Checks::new();
    for (l, k) in set.limits.iter().zip(&set.key_of) {
        checks.push(LimitCheck {
            subject: &subjects[*k],
            name: &l.tag,
            kind: l.kind,
        });
    }
    checks
}

/// A request's outcomes and the time they were decided at (ms).
type Decided = (Outcomes, i64);

/// A request's checks: a route has a handful of limits, so they stay inline.
pub(super) type Checks<'a> = SmallVec<[LimitCheck<'a>; 4]>;

/// A request's subjects: limits keyed alike share one.
pub(super) type Subjects = SmallVec<[Subject; 2]>;

/// A request's subjects: kept in its connection's memo, or made for it.
pub(super) enum RequestSubjects {
    Kept(Arc<Memo>),
    Made(Subjects),
}

impl RequestSubjects {
    pub(super) fn get(&self) -> &[Subject] {
        match self {
            Self::Kept(m) => &m.subjects,
            Self::Made(s) => s,
        }
    }
}

impl RateLimit {
    /// Applies `checks` once (shared state, or local memory), with the time
    /// used; `Err` is the refusal when the shared state is down and the
    /// policy fails closed.
    async fn decide(&self, checks: &[LimitCheck<'_>]) -> Result<Decided, Decision> {
        let now_ms = self.now_ms();
        match self.decide_now(checks, now_ms) {
            Some(o) => Ok(o),
            None => self.decide_shared(checks, now_ms).await,
        }
    }

    /// The request's subjects, from its connection's memo when the set's
    /// keys allow it.
    fn request_subjects(&self, set: &LimitSet, req: &request::Parts, ctx: &RequestCtx) -> RequestSubjects {
        match self.memo_subjects(set, req, ctx) {
            Some(m) => RequestSubjects::Kept(m),
            None => RequestSubjects::Made(self.subjects(set, req, ctx)),
        }
    }

    /// [`RateLimit::decide`] without waiting, when the counters are in this
    /// process (its own, or an in-memory shared state); `None` when the
    /// shared state needs I/O.
    fn decide_now(&self, checks: &[LimitCheck<'_>], now_ms: i64) -> Option<Decided> {
        let outcomes = match self.shared.get() {
            None => self.local.apply(checks, now_ms),
            Some(shared) => shared.limit_now(checks, now_ms)?,
        };
        Some((outcomes, now_ms))
    }

    /// [`RateLimit::decide`] with a shared state that needs I/O (Redis):
    /// only this path pays for futures.
    async fn decide_shared(&self, checks: &[LimitCheck<'_>], now_ms: i64) -> Result<Decided, Decision> {
        let Some(shared) = self.shared.get() else {
            return Ok((self.local.apply(checks, now_ms), now_ms));
        };
        let outcomes = match shared.limit(checks, now_ms).await {
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
        };
        Ok((outcomes, now_ms))
    }

    /// The decision for `outcomes` of `set`'s limits at `now_ms`: go on
    /// with the `RateLimit` headers, or a 429 saying which limits refused.
    fn verdict(&self, set: &LimitSet, mut outcomes: Outcomes, now_ms: i64, ctx: &mut RequestCtx) -> Decision {
        let allowed = outcomes.iter().all(|o| o.allowed);
        if !allowed {
            // Nothing was counted: the limits that would have admitted the
            // request still have the place it would have taken.
            for o in outcomes.iter_mut().filter(|o| o.allowed) {
                o.remaining += 1;
            }
        }
        let now_secs = now_ms.div_euclid(1000);
        if allowed {
            if self.headers {
                push_headers(set, &outcomes, now_secs, &mut ctx.response_headers);
            }
            return Decision::Continue;
        }
        let mut extra = ResponseHeaders::new();
        if self.headers {
            push_headers(set, &outcomes, now_secs, &mut extra);
        }
        let retry = outcomes
            .iter()
            .filter(|o| !o.allowed)
            .map(|o| o.retry_after_secs)
            .max()
            .unwrap_or(1);
        let over: Vec<&str> = set
            .limits()
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
        Decision::Reject(r)
    }

    /// Throttling: while the refusing limits' next place is due within the
    /// remaining `max_wait_ms`, waits for it and asks again (other waiters
    /// may take it first). `None` when this request does not wait at all
    /// (a quota refused it, its place is too far, or `max_waiting` requests
    /// wait already); otherwise the last decision.
    async fn wait_turn(
        &self,
        checks: &[LimitCheck<'_>],
        first: &[LimitOutcome],
        t: ThrottleConfig,
    ) -> Option<Result<Decided, Decision>> {
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
                for p in parts {
                    p.push_to(req, ctx, &mut key);
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

/// Each limit's window in seconds at `now_secs` (a month's varies).
fn window_secs(kind: LimitKind, now_secs: i64) -> u64 {
    match kind {
        LimitKind::Rate { period_ms, .. } => period_ms / 1000,
        LimitKind::Quota { window, .. } => {
            let (start, end) = window.bounds(now_secs);
            u64::try_from(end - start).unwrap_or(0)
        }
    }
}

/// The `RateLimit-Policy` value (draft-ietf-httpapi-ratelimit-headers).
fn policy_value(limits: &[Limit], now_secs: i64) -> Option<HeaderValue> {
    let mut v = String::with_capacity(64);
    for l in limits {
        if !v.is_empty() {
            v.push_str(", ");
        }
        v.push_str(&l.policy_prefix);
        v.push_str(itoa::Buffer::new().format(window_secs(l.kind, now_secs)));
    }
    HeaderValue::from_str(&v).ok()
}

/// One set of limits (the defaults, or a plan's) and, when none of its
/// windows is a calendar month, its `RateLimit-Policy` value, which then
/// never changes.
#[derive(Debug)]
pub(crate) struct LimitSet {
    limits: Vec<Limit>,
    /// The first limit of each distinct key, in order: the request's subjects.
    first_of_key: Vec<usize>,
    /// Each limit's subject (an index into `first_of_key`).
    key_of: Vec<usize>,
    fixed_policy: Option<HeaderValue>,
    /// The longest `RateLimit` value it can have.
    state_len: usize,
    /// Its owner id in connection memos, when every key is made of what a
    /// connection keeps (client address, route): its subjects are then
    /// made once per client and connection.
    memo: Option<u64>,
}

impl LimitSet {
    /// Its limits.
    pub(super) fn limits(&self) -> &[Limit] {
        &self.limits
    }

    fn new(limits: Vec<Limit>) -> Self {
        let monthly = |l: &Limit| {
            matches!(
                l.kind,
                LimitKind::Quota {
                    window: Window::Month,
                    ..
                }
            )
        };
        let fixed_policy = if limits.iter().any(monthly) {
            None
        } else {
            policy_value(&limits, 0)
        };
        let mut first_of_key: Vec<usize> = Vec::new();
        let key_of = (0..limits.len())
            .map(
                |i| match first_of_key.iter().position(|f| limits[*f].key == limits[i].key) {
                    Some(k) => k,
                    None => {
                        first_of_key.push(i);
                        first_of_key.len() - 1
                    }
                },
            )
            .collect();
        // Every item with 20-digit numbers.
        let state_len = limits.iter().map(|l| l.state_prefix.len() + 47).sum();
        let memo = limits
            .iter()
            .flat_map(|l| &l.key)
            .all(|p| matches!(p, KeyPart::Ip | KeyPart::Route))
            .then(ConnMemo::owner_id);
        Self {
            limits,
            first_of_key,
            key_of,
            fixed_policy,
            state_len,
            memo,
        }
    }
}

/// `RateLimit-Policy`, made once at compile time.
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit`, made once at compile time.
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// Appends `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers) to `out`.
fn push_headers(set: &LimitSet, outcomes: &[LimitOutcome], now_secs: i64, out: &mut ResponseHeaders) {
    let policy = match &set.fixed_policy {
        Some(v) => Some(v.clone()),
        None => policy_value(&set.limits, now_secs),
    };
    if let Some(v) = policy {
        out.push((RATELIMIT_POLICY, v));
    }
    if let Some(v) = state_value(set, outcomes) {
        out.push((RATELIMIT, v));
    }
}

/// The `RateLimit` value, written on the stack and copied once into the
/// value (one allocation) when it fits, as a route's handful of limits do.
pub(super) fn state_value(set: &LimitSet, outcomes: &[LimitOutcome]) -> Option<HeaderValue> {
    let mut stack = [0_u8; 192];
    let mut heap = Vec::new();
    let buf: &mut [u8] = if set.state_len <= stack.len() {
        &mut stack
    } else {
        heap.resize(set.state_len, 0);
        &mut heap
    };
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        let end = at + bytes.len();
        buf.get_mut(at..end).map(|b| b.copy_from_slice(bytes))?;
        at = end;
        Some(())
    };
    let mut n = itoa::Buffer::new();
    for (i, (l, o)) in set.limits.iter().zip(outcomes).enumerate() {
        if i > 0 {
            put(b", ")?;
        }
        put(l.state_prefix.as_bytes())?;
        put(n.format(o.remaining).as_bytes())?;
        put(b";t=")?;
        put(n.format(o.reset_secs).as_bytes())?;
    }
    HeaderValue::from_bytes(&buf[..at]).ok()
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
        let set = self.limits_for(ctx);
        if set.limits().is_empty() {
            return Ok(Decision::Continue);
        }
        let subjects = self.request_subjects(set, req, ctx);
        let checks = checks(set, subjects.get());
        let now_ms = self.request_now_ms(ctx);
        let (mut outcomes, mut now_ms) = match self.decide_now(&checks, now_ms) {
            Some(o) => o,
            None => match self.decide_shared(&checks, now_ms).await {
                Ok(o) => o,
                Err(refused) => return Ok(refused),
            },
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
        Ok(self.verdict(set, outcomes, now_ms, ctx))
    }

    fn on_request_now(&self, req: &mut request::Parts, ctx: &mut RequestCtx) -> Option<Result<Decision, PolicyError>> {
        // Concurrency places and throttling waits have their own bookkeeping:
        // such policies always take the awaited path.
        if !self.concurrency.is_empty() || self.throttle.is_some() {
            return None;
        }
        let set = self.limits_for(ctx);
        if set.limits().is_empty() {
            return Some(Ok(Decision::Continue));
        }
        let subjects = self.request_subjects(set, req, ctx);
        let checks = checks(set, subjects.get());
        // `None` (the shared state needs I/O) before anything was counted.
        let (outcomes, now_ms) = self.decide_now(&checks, self.request_now_ms(ctx))?;
        Some(Ok(self.verdict(set, outcomes, now_ms, ctx)))
    }
}
