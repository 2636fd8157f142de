//! Verified-token cache: a token that verified once is not verified again
//! until it expires or its issuer's key set changes.
//!
//! Keyed by the whole token string (an exact match: no hash collisions to
//! engineer), sharded to keep lock hold times short across worker threads,
//! bounded per shard. Only successes are cached; a refusal is always
//! recomputed.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

const SHARDS: usize = 16;

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

#[derive(Debug)]
pub(crate) struct TokenCache {
    shards: Vec<Mutex<HashMap<Box<str>, Verified>>>,
    per_shard: usize,
    hasher: RandomState,
}

impl TokenCache {
    /// A cache of at most `entries` tokens (0 disables it).
    pub(crate) fn new(entries: usize) -> Option<Self> {
        (entries > 0).then(|| Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: entries.div_ceil(SHARDS),
            hasher: RandomState::new(),
        })
    }

    fn shard(&self, token: &str) -> &Mutex<HashMap<Box<str>, Verified>> {
        let i = usize::try_from(self.hasher.hash_one(token)).unwrap_or(0) % SHARDS;
        &self.shards[i]
    }

    /// The cached verification of `token`, if still usable at `now` under
    /// key generation `generation(issuer)`.
    pub(crate) fn get(&self, token: &str, now: u64, generation: impl Fn(usize) -> u64) -> Option<Verified> {
        let mut shard = self.shard(token).lock().ok()?;
        let hit = shard.get(token)?;
        if now <= hit.until && hit.key_generation == generation(hit.issuer) {
            return Some(hit.clone());
        }
        shard.remove(token);
        None
    }

    /// Remembers a successful verification.
    pub(crate) fn put(&self, token: &str, v: Verified, now: u64) {
        let Ok(mut shard) = self.shard(token).lock() else {
            return;
        };
        if shard.len() >= self.per_shard {
            shard.retain(|_, e| now <= e.until);
            if shard.len() >= self.per_shard {
                // Still full of live tokens: start over rather than grow.
                shard.clear();
            }
        }
        shard.insert(token.into(), v);
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
        let total: usize = c.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(total <= 32, "{total} entries");
        assert!(TokenCache::new(0).is_none());
    }
}
