//! Rate limits and quotas in this process's memory: sharded, bounded (idle
//! counters are pruned, and the number of counters is capped), evaluated
//! all-or-nothing per request.
//!
//! Keys are partly attacker-chosen (header values, claims), so they are
//! hashed with the standard library's keyed SipHash — once per key and
//! request: the same hash picks the shard (from its middle bits) and finds
//! the counter in the shard's table.

use std::hash::{BuildHasher as _, RandomState};
use std::sync::{Mutex, MutexGuard};

use hashbrown::HashTable;
use smallvec::SmallVec;

use warden_core::limits::{self, LimitCheck, LimitKind, LimitOutcome};

const SHARDS: usize = 16;

/// Counters held at most (all shards together).
pub const MAX_COUNTERS: usize = 500_000;

#[derive(Debug, Clone, Copy)]
enum Value {
    /// GCRA theoretical arrival time, ms.
    Tat(f64),
    /// Quota count in window `window`.
    Count { window: i64, count: u64 },
}

/// One counter and its key.
#[derive(Debug)]
struct Entry {
    key: String,
    counter: Counter,
}

type Shard = HashTable<Entry>;

#[derive(Debug, Clone, Copy)]
struct Counter {
    value: Value,
    /// When the counter stops mattering (ms).
    expires_ms: i64,
}

/// The in-memory limiter.
#[derive(Debug)]
pub struct Limiter {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
    hasher: RandomState,
}

impl Default for Limiter {
    fn default() -> Self {
        Self::with_capacity(MAX_COUNTERS)
    }
}

impl Limiter {
    /// A limiter holding at most `counters` counters.
    pub fn with_capacity(counters: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashTable::new())).collect(),
            per_shard: counters.div_ceil(SHARDS).max(1),
            hasher: RandomState::new(),
        }
    }

    fn hash(&self, key: &str) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The shard for a key's hash: middle bits, independent of the low bits
    /// the table uses for buckets and the top bits it uses for tags.
    fn shard_of(hash: u64) -> usize {
        ((hash >> 32) as usize) % SHARDS
    }

    /// Counters held now.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map_or(0, |s| s.len())).sum()
    }

    /// True when no counter is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies `checks` all-or-nothing at `now_ms`.
    pub fn apply(&self, checks: &[LimitCheck], now_ms: i64) -> Vec<LimitOutcome> {
        // A request has a handful of checks: the scratch lists live on the
        // stack up to `N` of them.
        const N: usize = 8;
        let mut hashes: SmallVec<[u64; N]> = SmallVec::new();
        let mut idx: SmallVec<[usize; N]> = SmallVec::new();
        // The shards to lock, sorted (insertion sort) and distinct.
        let mut order: SmallVec<[usize; N]> = SmallVec::new();
        for c in checks {
            let h = self.hash(&c.key);
            let i = Self::shard_of(h);
            hashes.push(h);
            idx.push(i);
            if let Err(at) = order.binary_search(&i) {
                order.insert(at, i);
            }
        }
        // Shards are locked in index order: no two requests deadlock. A
        // request has a handful of checks, so a short list beats a map.
        let mut guards: SmallVec<[(usize, MutexGuard<'_, Shard>); N]> = SmallVec::new();
        for i in order {
            guards.push((
                i,
                self.shards[i].lock().unwrap_or_else(std::sync::PoisonError::into_inner),
            ));
        }
        // Each check's guard, in place of its shard.
        let mut at = idx;
        for i in &mut at {
            *i = guards.iter().position(|(j, _)| j == i).unwrap_or(0);
        }
        let now_s = now_ms.div_euclid(1000);
        let mut outcomes = Vec::with_capacity(checks.len());
        let mut writes: SmallVec<[Option<Counter>; N]> = SmallVec::new();
        for ((c, g), h) in checks.iter().zip(&at).zip(&hashes) {
            let current = guards[*g]
                .1
                .find(*h, |e| e.key == c.key)
                .map(|e| &e.counter)
                .filter(|e| e.expires_ms > now_ms);
            match c.kind {
                LimitKind::Rate {
                    limit,
                    period_ms,
                    burst,
                } => {
                    let tat = current.and_then(|e| match e.value {
                        Value::Tat(t) => Some(t),
                        Value::Count { .. } => None,
                    });
                    let (o, store) = limits::gcra(limit, period_ms, burst, tat, now_ms as f64);
                    outcomes.push(o);
                    writes.push(store.map(|(tat, ttl)| Counter {
                        value: Value::Tat(tat),
                        expires_ms: now_ms.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)),
                    }));
                }
                LimitKind::Quota { limit, window } => {
                    let (w, end) = window.at(now_s);
                    let count = current
                        .and_then(|e| match e.value {
                            Value::Count { window, count } if window == w => Some(count),
                            _ => None,
                        })
                        .unwrap_or(0);
                    let o = limits::quota(limit, count, now_s, end);
                    outcomes.push(o);
                    writes.push(o.allowed.then_some(Counter {
                        value: Value::Count {
                            window: w,
                            count: count + 1,
                        },
                        expires_ms: end.saturating_mul(1000),
                    }));
                }
            }
        }
        if outcomes.iter().all(|o| o.allowed) {
            for (((c, g), w), h) in checks.iter().zip(&at).zip(writes).zip(&hashes) {
                let Some(w) = w else { continue };
                let shard = &mut guards[*g].1;
                // In place when the counter exists: no key copy.
                if let Some(e) = shard.find_mut(*h, |e| e.key == c.key) {
                    e.counter = w;
                    continue;
                }
                if shard.len() >= self.per_shard {
                    make_room(shard, now_ms);
                }
                let entry = Entry {
                    key: c.key.clone(),
                    counter: w,
                };
                shard.insert_unique(*h, entry, |e| self.hasher.hash_one(&e.key));
            }
        }
        outcomes
    }
}

/// Drops expired counters; if none had expired, drops a tenth of the shard,
/// rate counters first (they refill within their period; a quota dropped
/// would hand its owner a fresh month): the cap holds even under a flood of
/// distinct keys.
fn make_room(shard: &mut Shard, now_ms: i64) {
    let before = shard.len();
    shard.retain(|e| e.counter.expires_ms > now_ms);
    if shard.len() == before {
        let want = before / 10 + 1;
        let mut dropped = 0;
        shard.retain(|e| {
            let drop = dropped < want && matches!(e.counter.value, Value::Tat(_));
            dropped += usize::from(drop);
            !drop
        });
        shard.retain(|_| {
            let drop = dropped < want;
            dropped += usize::from(drop);
            !drop
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_core::limits::Window;

    fn rate(key: &str, limit: u64) -> LimitCheck {
        LimitCheck {
            key: key.into(),
            kind: LimitKind::Rate {
                limit,
                period_ms: 60_000,
                burst: limit,
            },
        }
    }

    #[test]
    fn a_refusal_by_one_limit_counts_against_none() {
        let l = Limiter::default();
        let day = LimitCheck {
            key: "q".into(),
            kind: LimitKind::Quota {
                limit: 2,
                window: Window::Day,
            },
        };
        let both = [rate("r", 100), day];
        assert!(l.apply(&both, 0).iter().all(|o| o.allowed));
        assert!(l.apply(&both, 1).iter().all(|o| o.allowed));
        let third = l.apply(&both, 2);
        assert!(third[0].allowed && !third[1].allowed);
        // The rate limit was not charged for the refused request.
        assert_eq!(l.apply(&[rate("r", 100)], 3)[0].remaining, 97);
        // The next day the quota is back.
        assert!(l.apply(&both, 86_400_000).iter().all(|o| o.allowed));
    }

    #[test]
    fn counters_stay_capped_under_a_flood_of_keys() {
        let l = Limiter::with_capacity(1_000);
        for i in 0..50_000 {
            l.apply(&[rate(&format!("ip:{i}"), 10)], 0);
        }
        assert!(l.len() <= 1_000 + SHARDS, "{}", l.len());
    }
}
