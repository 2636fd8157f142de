//! The decision cache: Cedar's answer for one principal, action, resource
//! and the context attributes the policies actually read, kept for a short
//! TTL (never past the token's `exp`). It lives in the compiled policy, so a
//! reload with changed policies starts with an empty one.
//!
//! The key is an exact, length-prefixed encoding of every input that can
//! change the answer: two requests share an entry only when Cedar would see
//! the same principal, groups, action, resource and read attributes.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Arc;

use http::request;
use serde_json::Value;
use warden_core::RequestCtx;

use crate::cache::{Expiring, Sharded};

/// Keys longer than this are not cached.
const MAX_KEY_BYTES: usize = 1024;

/// Which `context` attributes the policies read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ContextReads {
    /// Only these (`context.NAME`).
    Some(BTreeSet<String>),
    /// The context is used as a whole (`context has …`, `context["…"]`):
    /// every attribute is part of the key.
    All,
}

impl ContextReads {
    /// Over-approximates from the policy text: every `context.NAME` counts,
    /// and any other use of `context` means all of it.
    pub(crate) fn of(text: &str) -> Self {
        let b = text.as_bytes();
        let mut names = BTreeSet::new();
        let mut i = 0;
        while let Some(found) = text.get(i..).and_then(|t| t.find("context")) {
            let start = i + found;
            let end = start + "context".len();
            i = end;
            let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
            if start > 0 && b.get(start - 1).copied().is_some_and(ident) || b.get(end).copied().is_some_and(ident) {
                continue; // part of a longer word
            }
            let mut j = end;
            while b.get(j).is_some_and(u8::is_ascii_whitespace) {
                j += 1;
            }
            if b.get(j) != Some(&b'.') {
                return Self::All;
            }
            j += 1;
            while b.get(j).is_some_and(u8::is_ascii_whitespace) {
                j += 1;
            }
            let name_end = (j..b.len()).find(|&k| !ident(b[k])).unwrap_or(b.len());
            if name_end == j {
                return Self::All;
            }
            names.insert(text[j..name_end].to_owned());
        }
        Self::Some(names)
    }

    fn reads(&self, name: &str) -> bool {
        match self {
            Self::All => true,
            Self::Some(names) => names.contains(name),
        }
    }
}

/// A cached answer.
#[derive(Debug, Clone)]
pub(crate) struct Cached {
    pub allowed: bool,
    pub determining: Arc<[String]>,
    pub until: u64,
}

impl Expiring for Cached {
    fn until(&self) -> u64 {
        self.until
    }
}

pub(crate) struct Decisions {
    cache: Sharded<Cached>,
    reads: ContextReads,
    ttl_secs: u64,
    context_headers: Vec<http::HeaderName>,
}

impl std::fmt::Debug for Decisions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decisions")
            .field("reads", &self.reads)
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

fn put(key: &mut String, v: &str) {
    let _ = write!(key, "{}:{v}", v.len());
}

impl Decisions {
    pub(crate) fn new(
        entries: usize,
        ttl_secs: u64,
        policy_text: &str,
        context_headers: Vec<http::HeaderName>,
    ) -> Option<Self> {
        Some(Self {
            cache: Sharded::new(entries)?,
            reads: ContextReads::of(policy_text),
            ttl_secs,
            context_headers,
        })
    }

    /// The key for this request.
    pub(crate) fn key(&self, req: &request::Parts, ctx: &RequestCtx) -> String {
        let mut key = String::with_capacity(128);
        match &ctx.consumer {
            Some(c) => put(&mut key, c),
            None => key.push('-'),
        }
        let _ = write!(key, "{}|", ctx.groups.len());
        for g in ctx.groups.iter() {
            put(&mut key, g);
        }
        put(&mut key, ctx.operation.as_deref().unwrap_or(""));
        put(&mut key, ctx.route_id.as_deref().unwrap_or(""));
        let claims = ctx.token_claims.as_deref();
        let claim = |name: &str| {
            claims
                .and_then(|c| c.get(name))
                .map_or_else(String::new, Value::to_string)
        };
        for name in [
            "ip",
            "time",
            "hour",
            "authenticated",
            "authentication",
            "mtls",
            "mtls_identity",
            "tls",
            "scopes",
            "amr",
            "acr",
            "method",
            "params",
            "headers",
            "device",
        ] {
            if !self.reads.reads(name) {
                continue;
            }
            let v = match name {
                "ip" => ctx.client_ip.to_string(),
                "time" => ctx.now_secs.to_string(),
                "hour" => (ctx.now_secs.rem_euclid(86_400) / 3600).to_string(),
                "authenticated" => ctx.consumer.is_some().to_string(),
                "authentication" => ctx.auth_method.unwrap_or("none").to_owned(),
                "mtls" => ctx.client_cert.is_some().to_string(),
                "mtls_identity" => ctx
                    .client_cert
                    .as_ref()
                    .map_or_else(String::new, |c| c.principal().to_owned()),
                "tls" => ctx.secure.to_string(),
                "scopes" => claim("scope"),
                "amr" => claim("amr"),
                "acr" => claim("acr"),
                "method" => req.method.to_string(),
                "device" => super::policy::device_class(req).to_owned(),
                "headers" => {
                    let mut h = String::new();
                    for name in &self.context_headers {
                        put(&mut h, &super::policy::header_value(req, name));
                    }
                    h
                }
                _ => {
                    let mut p = String::new();
                    for (k, v) in &ctx.params {
                        put(&mut p, k);
                        put(&mut p, v);
                    }
                    p
                }
            };
            put(&mut key, name);
            put(&mut key, &v);
        }
        key
    }

    pub(crate) fn get(&self, key: &str, now: i64) -> Option<Cached> {
        if key.len() > MAX_KEY_BYTES {
            return None;
        }
        self.cache.get(key, u64::try_from(now).unwrap_or(0), |_| true)
    }

    /// Remembers an answer until the TTL ends or the token expires, whichever is first.
    pub(crate) fn put(&self, key: &str, ctx: &RequestCtx, allowed: bool, determining: &[String]) {
        // Long keys (huge header or parameter values) are not worth the
        // memory: such requests are decided every time.
        if key.len() > MAX_KEY_BYTES {
            return;
        }
        let now = u64::try_from(ctx.now_secs).unwrap_or(0);
        let mut until = now.saturating_add(self.ttl_secs);
        if let Some(exp) = ctx
            .token_claims
            .as_deref()
            .and_then(|c| c.get("exp"))
            .and_then(Value::as_u64)
        {
            until = until.min(exp);
        }
        let entry = Cached {
            allowed,
            determining: determining.into(),
            until,
        };
        self.cache.put(key, entry, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_reads_are_found_in_the_policy_text() {
        let r = ContextReads::of(
            "permit(principal, action, resource) when { context.hour >= 9 && context . amr.contains(\"mfa\") };\n// mycontext_x is not it",
        );
        assert_eq!(
            r,
            ContextReads::Some(["amr", "hour"].into_iter().map(String::from).collect())
        );
        assert_eq!(
            ContextReads::of("permit(principal, action, resource) when { context has ip };"),
            ContextReads::All
        );
        assert_eq!(ContextReads::of("when { context[\"ip\"] }"), ContextReads::All);
        assert_eq!(
            ContextReads::of("permit(principal, action, resource);"),
            ContextReads::Some(BTreeSet::new())
        );
    }
}

#[cfg(test)]
mod key_tests {
    use super::*;

    fn ctx(consumer: &str, hour: i64, ip: &str) -> RequestCtx {
        let mut c = RequestCtx::new("r".into(), ip.parse().unwrap(), 0);
        c.consumer = Some(consumer.into());
        c.operation = Some("GET /x".into());
        c.now_secs = 1_803_945_600 + hour * 3600;
        c
    }

    #[test]
    fn keys_change_with_what_policies_read_and_only_that() {
        let parts = http::Request::get("/x").body(()).unwrap().into_parts().0;
        let d = Decisions::new(
            10,
            60,
            "permit(principal, action, resource) when { context.hour < 17 };",
            Vec::new(),
        )
        .unwrap();
        let k = |c: &RequestCtx| d.key(&parts, c);
        assert_eq!(
            k(&ctx("alice", 10, "192.0.2.1")),
            k(&ctx("alice", 10, "192.0.2.9")),
            "ip is not read"
        );
        assert_ne!(k(&ctx("alice", 10, "192.0.2.1")), k(&ctx("alice", 18, "192.0.2.1")));
        assert_ne!(k(&ctx("alice", 10, "192.0.2.1")), k(&ctx("bob", 10, "192.0.2.1")));
        // Length prefixes: a consumer name cannot imitate another field.
        let mut grouped = ctx("a", 10, "192.0.2.1");
        grouped.groups = vec![std::sync::Arc::from("b")].into();
        assert_ne!(k(&grouped), k(&ctx("a1:b", 10, "192.0.2.1")));
    }

    #[test]
    fn an_entry_never_outlives_the_token() {
        let d = Decisions::new(10, 60, "permit(principal, action, resource);", Vec::new()).unwrap();
        let mut c = ctx("alice", 10, "192.0.2.1");
        let now = c.now_secs;
        c.token_claims = Some(std::sync::Arc::new(
            serde_json::from_value(serde_json::json!({ "exp": now + 5 })).unwrap(),
        ));
        d.put("k", &c, true, &[]);
        assert!(d.get("k", now + 5).is_some());
        assert!(d.get("k", now + 6).is_none(), "past the token's exp");
    }
}
