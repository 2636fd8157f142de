//! Verified-token cache: a token that verified once is not verified again
//! until it expires or its issuer's key set changes.
//!
//! Keyed by the whole token string (an exact match: no hash collisions to
//! engineer), sharded to keep lock hold times short across worker threads,
//! bounded per shard. Only successes are cached; a refusal is always
//! recomputed.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::cache::{Expiring, Sharded};

/// What a cache hit restores.
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    pub issuer: usize,
    pub consumer: Arc<str>,
    pub claims: Arc<Map<String, Value>>,
    /// Usable while `now <= until` (the token's `exp` plus leeway).
    pub until: u64,
    /// The issuer's key-set generation at verification.
    pub key_generation: u64,
}

impl Expiring for Verified {
    fn until(&self) -> u64 {
        self.until
    }
}

#[derive(Debug)]
pub(crate) struct TokenCache(Sharded<Verified>);

impl TokenCache {
    /// A cache of at most `entries` tokens (0 disables it).
    pub(crate) fn new(entries: usize) -> Option<Self> {
        Sharded::new(entries).map(Self)
    }

    /// The cached verification of `token`, if still usable at `now` under
    /// key generation `generation(issuer)`.
    pub(crate) fn get(&self, token: &str, now: u64, generation: impl Fn(usize) -> u64) -> Option<Verified> {
        self.0
            .get(token, now, |hit| hit.key_generation == generation(hit.issuer))
    }

    /// Remembers a successful verification.
    pub(crate) fn put(&self, token: &str, v: Verified, now: u64) {
        self.0.put(token, v, now);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn entry(until: u64, generation: u64) -> Verified {
        Verified {
            issuer: 0,
            consumer: Arc::from("alice"),
            claims: Arc::new(Map::new()),
            until,
            key_generation: generation,
        }
    }

    #[test]
    fn entries_expire_with_the_token_and_with_a_key_set_change() {
        let c = TokenCache::new(100).unwrap();
        c.put("t", entry(1_000, 7), 900);
        assert!(c.get("t", 1_000, |_| 7).is_some());
        assert!(c.get("t", 1_001, |_| 7).is_none(), "past exp + leeway");
        c.put("t", entry(1_000, 7), 900);
        assert!(c.get("t", 950, |_| 8).is_none(), "keys changed since");
        assert!(c.get("t", 950, |_| 7).is_none(), "a stale entry is dropped, not kept");
        assert!(c.get("other", 950, |_| 7).is_none());
    }

    #[test]
    fn the_cache_stays_bounded() {
        let c = TokenCache::new(32).unwrap();
        for i in 0..10_000 {
            c.put(&format!("token-{i}"), entry(u64::MAX, 0), 0);
        }
        assert!(c.0.len() <= 32, "{} entries", c.0.len());
        assert!(TokenCache::new(0).is_none());
    }
}
