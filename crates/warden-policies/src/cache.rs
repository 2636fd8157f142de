//! A bounded, sharded cache of values that expire, keyed by exact strings
//! (no hash collisions to engineer: a key is compared in full). Shared by
//! the verified-token cache and the authorization decision cache.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

const SHARDS: usize = 16;

/// A cached value that is usable while `now <= until()`.
pub(crate) trait Expiring: Clone {
    fn until(&self) -> u64;
}

#[derive(Debug)]
pub(crate) struct Sharded<V> {
    shards: Vec<Mutex<HashMap<Box<str>, V>>>,
    per_shard: usize,
    hasher: RandomState,
}

impl<V: Expiring> Sharded<V> {
    /// A cache of at most `entries` values (0: no cache).
    pub(crate) fn new(entries: usize) -> Option<Self> {
        (entries > 0).then(|| Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: entries.div_ceil(SHARDS),
            hasher: RandomState::new(),
        })
    }

    fn shard(&self, key: &str) -> &Mutex<HashMap<Box<str>, V>> {
        let i = usize::try_from(self.hasher.hash_one(key)).unwrap_or(0) % SHARDS;
        &self.shards[i]
    }

    /// The value under `key` if unexpired at `now` and `fresh` says it still
    /// holds; a stale one is dropped.
    pub(crate) fn get(&self, key: &str, now: u64, fresh: impl Fn(&V) -> bool) -> Option<V> {
        let mut shard = self.shard(key).lock().ok()?;
        let hit = shard.get(key)?;
        if now <= hit.until() && fresh(hit) {
            return Some(hit.clone());
        }
        shard.remove(key);
        None
    }

    /// Remembers `v` under `key`. A full shard drops its expired entries,
    /// and if still full starts over rather than grow.
    pub(crate) fn put(&self, key: &str, v: V, now: u64) {
        let Ok(mut shard) = self.shard(key).lock() else {
            return;
        };
        if shard.len() >= self.per_shard {
            shard.retain(|_, e| now <= e.until());
            if shard.len() >= self.per_shard {
                shard.clear();
            }
        }
        shard.insert(key.into(), v);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map_or(0, |s| s.len())).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone)]
    struct V(u64);

    impl Expiring for V {
        fn until(&self) -> u64 {
            self.0
        }
    }

    #[test]
    fn values_expire_and_the_cache_stays_bounded() {
        let c = Sharded::new(32).unwrap();
        c.put("k", V(1_000), 900);
        assert!(c.get("k", 1_000, |_| true).is_some());
        assert!(c.get("k", 1_001, |_| true).is_none());
        c.put("k", V(1_000), 900);
        assert!(c.get("k", 950, |_| false).is_none(), "no longer fresh");
        assert!(c.get("k", 950, |_| true).is_none(), "a stale entry is dropped");
        for i in 0..10_000 {
            c.put(&format!("key-{i}"), V(u64::MAX), 0);
        }
        assert!(c.len() <= 32, "{} entries", c.len());
        assert!(Sharded::<V>::new(0).is_none());
    }
}
