//! `rate_limit` config and its compilation.

use std::collections::BTreeMap;

use serde::Deserialize;
use warden_core::OnError;
use warden_core::limits::{LimitKind, Window};

use super::keys::KeyPart;
use super::policy::{Limit, RateLimit, Settings};
use crate::SpecError;

/// `type: rate_limit`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// The limits every request must pass (all are counted, or none).
    #[serde(default)]
    pub limits: Vec<LimitConfig>,
    /// Requests in flight at once per key (this gateway).
    #[serde(default)]
    pub concurrency: Vec<ConcurrencyConfig>,
    /// Per-group replacements of `limits` (plans): the consumer's first
    /// group with a plan decides.
    #[serde(default)]
    pub plans: BTreeMap<String, Vec<LimitConfig>>,
    /// Counters are shared by every route naming the same bucket (default:
    /// the route's own).
    #[serde(default)]
    pub bucket: Option<String>,
    /// Send `RateLimit-Policy` and `RateLimit` on responses.
    #[serde(default = "yes")]
    pub headers: bool,
    /// When the shared state (Redis) cannot answer: `local` or `fail_closed`.
    #[serde(default)]
    pub on_shared_unavailable: Unavailable,
    /// Gateways sharing the limits: with the local fallback each allows
    /// `limit / nodes` (at least 1).
    #[serde(default = "one")]
    pub nodes: u64,
    /// Throttling: delay a request a rate limit refuses, when its place comes
    /// within `max_wait_ms`, instead of refusing it at once.
    #[serde(default)]
    pub throttle: Option<ThrottleConfig>,
    /// What happens when the policy itself breaks.
    #[serde(default)]
    pub on_error: OnError,
}

fn yes() -> bool {
    true
}

fn one() -> u64 {
    1
}

/// The fallback when Redis is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unavailable {
    /// Limit in this process's memory at its share.
    #[default]
    Local,
    /// Refuse with 503.
    FailClosed,
}

/// One limit.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitConfig {
    /// Name in the `RateLimit` headers (default `limit-N`).
    #[serde(default)]
    pub name: Option<String>,
    /// What is counted together: `ip`, `consumer`, `credential`, `route`,
    /// `header:NAME`, `claim:NAME` — several make a combination.
    pub key: Vec<String>,
    /// A rate…
    #[serde(default)]
    pub rate: Option<RateConfig>,
    /// …or a calendar quota.
    #[serde(default)]
    pub quota: Option<QuotaConfig>,
}

/// `throttle:` of a `rate_limit` policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Longest a request is held waiting for its place (1–30000).
    pub max_wait_ms: u64,
    /// Most requests held waiting at once through this policy, on this
    /// gateway (1–100000); beyond it requests are refused at once.
    #[serde(default = "default_max_waiting")]
    pub max_waiting: u64,
}

fn default_max_waiting() -> u64 {
    100
}

/// One concurrency limit.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConcurrencyConfig {
    /// What is counted together (as for `limits`).
    pub key: Vec<String>,
    /// Requests in flight at once.
    pub max: u64,
}

/// `rate:` of a limit.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    /// Requests…
    pub requests: u64,
    /// …per this many seconds.
    #[serde(default = "one")]
    pub per_secs: u64,
    /// Requests allowed at once (default: `requests`).
    #[serde(default)]
    pub burst: Option<u64>,
}

/// `quota:` of a limit.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    /// Requests per window.
    pub requests: u64,
    /// `hour`, `day` or `month` (calendar windows, UTC).
    pub per: String,
}

fn build_limits(list: &[LimitConfig], at: &str, errors: &mut Vec<SpecError>) -> Vec<Limit> {
    let mut out = Vec::new();
    let mut names = std::collections::HashSet::new();
    let mut err = |path: String, message: String| errors.push(SpecError { path, message });
    for (i, l) in list.iter().enumerate() {
        let here = format!("{at}[{i}]");
        let mut key = Vec::new();
        if l.key.is_empty() {
            err(
                format!("{here}.key"),
                "name at least one of ip, consumer, credential, route, header:NAME, claim:NAME".into(),
            );
        }
        for (j, k) in l.key.iter().enumerate() {
            match KeyPart::parse(k) {
                Ok(p) => key.push(p),
                Err(e) => err(format!("{here}.key[{j}]"), e),
            }
        }
        let kind = match (&l.rate, &l.quota) {
            (Some(r), None) => {
                let burst = r.burst.unwrap_or(r.requests);
                if r.requests == 0 || r.per_secs == 0 || burst == 0 {
                    err(
                        format!("{here}.rate"),
                        "requests, per_secs and burst must be at least 1".into(),
                    );
                    None
                } else if r.per_secs > 31 * 86_400 {
                    err(
                        format!("{here}.rate.per_secs"),
                        "at most 2678400 (31 days); use a quota".into(),
                    );
                    None
                } else {
                    Some(LimitKind::Rate {
                        limit: r.requests,
                        period_ms: r.per_secs * 1000,
                        burst,
                    })
                }
            }
            (None, Some(q)) => {
                let window = match q.per.as_str() {
                    "hour" => Some(Window::Hour),
                    "day" => Some(Window::Day),
                    "month" => Some(Window::Month),
                    other => {
                        err(
                            format!("{here}.quota.per"),
                            format!("`{other}` is not hour, day or month"),
                        );
                        None
                    }
                };
                if q.requests == 0 {
                    err(format!("{here}.quota.requests"), "must be at least 1".into());
                }
                window.filter(|_| q.requests > 0).map(|window| LimitKind::Quota {
                    limit: q.requests,
                    window,
                })
            }
            _ => {
                err(here.clone(), "set exactly one of `rate`, `quota`".into());
                None
            }
        };
        let name = l.name.clone().unwrap_or_else(|| format!("limit-{i}"));
        if !names.insert(name.clone()) {
            err(
                format!("{here}.name"),
                format!("`{name}` names two limits; each needs its own"),
            );
        }
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
            err(format!("{here}.name"), "letters, digits, - _ . only".into());
        }
        if let Some(kind) = kind {
            out.push(Limit::new(name, key, kind));
        }
    }
    out
}

impl RateLimitConfig {
    /// Compiles the entry, reporting every problem.
    pub fn build(&self) -> Result<RateLimit, Vec<SpecError>> {
        let mut errors = Vec::new();
        let limits = build_limits(&self.limits, "limits", &mut errors);
        if self.limits.is_empty() && self.concurrency.is_empty() {
            errors.push(SpecError {
                path: "limits".into(),
                message: "at least one limit (or concurrency limit) is required".into(),
            });
        }
        let mut concurrency = Vec::new();
        for (i, c) in self.concurrency.iter().enumerate() {
            let mut key = Vec::new();
            if c.key.is_empty() {
                errors.push(SpecError {
                    path: format!("concurrency[{i}].key"),
                    message: "name at least one key part".into(),
                });
            }
            for (j, k) in c.key.iter().enumerate() {
                match KeyPart::parse(k) {
                    Ok(p) => key.push(p),
                    Err(message) => errors.push(SpecError {
                        path: format!("concurrency[{i}].key[{j}]"),
                        message,
                    }),
                }
            }
            if c.max == 0 {
                errors.push(SpecError {
                    path: format!("concurrency[{i}].max"),
                    message: "must be at least 1".into(),
                });
            }
            concurrency.push((key, c.max));
        }
        let mut plans = Vec::new();
        for (group, list) in &self.plans {
            plans.push((
                group.clone(),
                build_limits(list, &format!("plans.{group}"), &mut errors),
            ));
        }
        if self.nodes == 0 || self.nodes > 1000 {
            errors.push(SpecError {
                path: "nodes".into(),
                message: "must be 1–1000".into(),
            });
        }
        if let Some(b) = &self.bucket
            && (b.is_empty() || b.len() > 64 || !b.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c)))
        {
            errors.push(SpecError {
                path: "bucket".into(),
                message: "1–64 letters, digits, - _ .".into(),
            });
        }
        if let Some(t) = &self.throttle {
            if !(1..=30_000).contains(&t.max_wait_ms) {
                errors.push(SpecError {
                    path: "throttle.max_wait_ms".into(),
                    message: "must be 1–30000".into(),
                });
            }
            if !(1..=100_000).contains(&t.max_waiting) {
                errors.push(SpecError {
                    path: "throttle.max_waiting".into(),
                    message: "must be 1–100000".into(),
                });
            }
        }
        if errors.is_empty() {
            Ok(RateLimit::new(
                limits,
                concurrency,
                plans,
                Settings {
                    bucket: self.bucket.clone(),
                    headers: self.headers,
                    unavailable: self.on_shared_unavailable,
                    nodes: self.nodes,
                    throttle: self.throttle,
                },
            ))
        } else {
            Err(errors)
        }
    }
}
