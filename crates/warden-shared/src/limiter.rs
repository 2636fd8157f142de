//! Rate limits and quotas in this process's memory: sharded, bounded (idle
//! entries are pruned, and the number of entries is capped), evaluated
//! all-or-nothing per request.
//!
//! An entry holds every counter of one subject ([`LimitCheck::subject`]):
//! the limits of a request keyed alike (a per-second rate and a daily quota
//! by client address, say) cost one hash, one lock and one table probe
//! between them.
//!
//! Keys are partly attacker-chosen (header values, claims), so subjects are
//! hashed with the standard library's keyed SipHash, once, when the subject
//! is made ([`Subject`]): the same hash picks the shard (from its middle
//! bits) and finds the entry in the shard's table.

use std::sync::{Arc, Mutex, MutexGuard};

use hashbrown::HashTable;
use smallvec::SmallVec;

use warden_core::limits::{self, LimitCheck, LimitKind, LimitOutcome, Outcomes, Subject};

const SHARDS: usize = 16;

/// A request has a handful of checks: scratch lists live on the stack up
/// to this many.
const N: usize = 8;

/// Entries (subjects) held at most, all shards together.
pub const MAX_COUNTERS: usize = 500_000;

#[derive(Debug, Clone, Copy)]
enum Value {
    /// GCRA theoretical arrival time, ms.
    Tat(f64),
    /// Quota count in window `window`.
    Count { window: i64, count: u64 },
}

/// One subject's counters, each under its limit's name.
#[derive(Debug)]
struct Entry {
    subject: Subject,
    /// Usually one (a subject with one limit inline, the rest spill).
    counters: SmallVec<[(Arc<str>, Counter); 1]>,
}

impl Entry {
    fn index_of(&self, name: &str) -> Option<usize> {
        self.counters.iter().position(|(n, _)| **n == *name)
    }

    fn counter(&self, name: &str) -> Option<&Counter> {
        self.index_of(name).map(|i| &self.counters[i].1)
    }

    /// Stores `name`'s counter; a new one first clears the entry of
    /// expired counters (a limit renamed or removed by a reload, say).
    fn set(&mut self, name: &str, counter: Counter, names: &mut Names, now_ms: i64) {
        if let Some((_, c)) = self.counters.iter_mut().find(|(n, _)| **n == *name) {
            *c = counter;
            return;
        }
        self.counters.retain(|(_, c)| c.expires_ms > now_ms);
        self.counters.push((names.get(name), counter));
    }

    /// When its last counter stops mattering.
    fn expires_ms(&self) -> i64 {
        self.counters
            .iter()
            .map(|(_, c)| c.expires_ms)
            .max()
            .unwrap_or(i64::MIN)
    }

    fn is(&self, subject: &Subject) -> bool {
        self.subject.as_str() == subject.as_str()
    }
}

/// One lock's share of the entries, and the names its counters use.
#[derive(Debug, Default)]
struct Shard {
    table: HashTable<Entry>,
    names: Names,
}

#[derive(Debug, Clone, Copy)]
struct Counter {
    value: Value,
    /// When the counter stops mattering (ms).
    expires_ms: i64,
}

/// True when `a` and `b` are the same subject (usually the same value).
fn same(a: &Subject, b: &Subject) -> bool {
    std::ptr::eq(a, b) || a.as_str() == b.as_str()
}

/// Limit names, each held once per shard: counters share them rather
/// than carry a copy each (a million subjects would otherwise hold a
/// million copies). Under the shard's lock: no lock of its own.
#[derive(Debug, Default)]
struct Names(std::collections::HashSet<Arc<str>>);

impl Names {
    /// Names no counter holds any more are let go past this many.
    const PRUNE_AT: usize = 1024;

    /// The shared copy of `name`.
    fn get(&mut self, name: &str) -> Arc<str> {
        let names = &mut self.0;
        if let Some(n) = names.get(name) {
            return Arc::clone(n);
        }
        if names.len() >= Self::PRUNE_AT {
            names.retain(|n| Arc::strong_count(n) > 1);
        }
        let n: Arc<str> = name.into();
        names.insert(Arc::clone(&n));
        n
    }
}

/// The in-memory limiter.
#[derive(Debug)]
pub struct Limiter {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
}

impl Default for Limiter {
    fn default() -> Self {
        Self::with_capacity(MAX_COUNTERS)
    }
}

impl Limiter {
    /// A limiter holding at most `entries` subjects.
    pub fn with_capacity(entries: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: entries.div_ceil(SHARDS).max(1),
        }
    }

    /// The shard for a key's hash: middle bits, independent of the low bits
    /// the table uses for buckets and the top bits it uses for tags.
    fn shard_of(hash: u64) -> usize {
        ((hash >> 32) as usize) % SHARDS
    }

    /// Subjects held now.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map_or(0, |s| s.table.len())).sum()
    }

    /// True when no counter is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies `checks` all-or-nothing at `now_ms`.
    pub fn apply(&self, checks: &[LimitCheck<'_>], now_ms: i64) -> Outcomes {
        let Some(first) = checks.first().map(|c| c.subject) else {
            return Outcomes::new();
        };
        if checks[1..].iter().all(|c| same(c.subject, first)) {
            self.apply_one(first, checks, now_ms)
        } else {
            self.apply_many(checks, now_ms)
        }
    }

    /// [`Limiter::apply`] when every check counts one subject (the usual
    /// case): one lock and one probe, the counters updated in place.
    fn apply_one(&self, subject: &Subject, checks: &[LimitCheck<'_>], now_ms: i64) -> Outcomes {
        let h = subject.hash();
        let mut guard = self.shards[Self::shard_of(h)]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Shard { table, names } = &mut *guard;
        let now_s = now_ms.div_euclid(1000);
        let mut outcomes = Outcomes::with_capacity(checks.len());
        // Each check's counter in the entry (its index), and what to store.
        let mut writes: SmallVec<[(Option<usize>, Option<Counter>); N]> = SmallVec::new();
        let entry = table.find_mut(h, |e| e.is(subject));
        for c in checks {
            let at = entry.as_deref().and_then(|e| e.index_of(c.name));
            let current = at
                .and_then(|i| entry.as_deref().map(|e| &e.counters[i].1))
                .filter(|e| e.expires_ms > now_ms);
            let (o, w) = decide(c.kind, current, now_ms, now_s);
            outcomes.push(o);
            writes.push((at, w));
        }
        if !outcomes.iter().all(|o| o.allowed) || writes.iter().all(|(_, w)| w.is_none()) {
            return outcomes;
        }
        if let Some(e) = entry {
            // By index first: a new counter may clear expired ones away.
            for (at, w) in &writes {
                if let (Some(i), Some(w)) = (at, w) {
                    e.counters[*i].1 = *w;
                }
            }
            for ((at, w), c) in writes.iter().zip(checks) {
                if let (None, Some(w)) = (at, w) {
                    e.set(c.name, *w, names, now_ms);
                }
            }
            return outcomes;
        }
        let counters = writes
            .iter()
            .zip(checks)
            .filter_map(|((_, w), c)| w.map(|w| (c.name, w)));
        self.insert(table, names, subject, counters, now_ms);
        outcomes
    }

    /// A new entry for `subject` holding `counters`, room made first when
    /// the table is full.
    fn insert<'n>(
        &self,
        table: &mut HashTable<Entry>,
        names: &mut Names,
        subject: &Subject,
        counters: impl Iterator<Item = (&'n str, Counter)>,
        now_ms: i64,
    ) {
        if table.len() >= self.per_shard {
            make_room(table, now_ms);
        }
        let mut entry = Entry {
            subject: subject.clone(),
            counters: SmallVec::new(),
        };
        for (name, w) in counters {
            entry.set(name, w, names, now_ms);
        }
        table.insert_unique(subject.hash(), entry, |e| e.subject.hash());
    }

    /// [`Limiter::apply`] over several subjects: every shard concerned is
    /// locked, the counters read, and written only when all admit.
    fn apply_many(&self, checks: &[LimitCheck<'_>], now_ms: i64) -> Outcomes {
        // The distinct subjects, with their hash and shard; each check's subject.
        let mut subjects: SmallVec<[(&Subject, u64, usize); N]> = SmallVec::new();
        let mut of: SmallVec<[usize; N]> = SmallVec::new();
        for c in checks {
            let i = match subjects.iter().position(|(t, _, _)| same(t, c.subject)) {
                Some(i) => i,
                None => {
                    let h = c.subject.hash();
                    subjects.push((c.subject, h, Self::shard_of(h)));
                    subjects.len() - 1
                }
            };
            of.push(i);
        }
        // Shards are locked in index order: no two requests deadlock. A
        // request has a handful of checks, so a short list beats a map.
        let mut order: SmallVec<[usize; N]> = subjects.iter().map(|(_, _, i)| *i).collect();
        order.sort_unstable();
        order.dedup();
        let mut guards: SmallVec<[(usize, MutexGuard<'_, Shard>); N]> = SmallVec::new();
        for i in order {
            guards.push((
                i,
                self.shards[i].lock().unwrap_or_else(std::sync::PoisonError::into_inner),
            ));
        }
        // Each subject's guard, in place of its shard.
        let guard_of: SmallVec<[usize; N]> = subjects
            .iter()
            .map(|(_, _, i)| guards.iter().position(|(j, _)| j == i).unwrap_or(0))
            .collect();
        let now_s = now_ms.div_euclid(1000);
        let mut outcomes = Outcomes::with_capacity(checks.len());
        let mut writes: SmallVec<[Option<Counter>; N]> = SmallVec::new();
        for (c, s) in checks.iter().zip(&of) {
            let (subject, h, _) = subjects[*s];
            let current = guards[guard_of[*s]]
                .1
                .table
                .find(h, |e| e.is(subject))
                .and_then(|e| e.counter(c.name))
                .filter(|e| e.expires_ms > now_ms);
            let (o, w) = decide(c.kind, current, now_ms, now_s);
            outcomes.push(o);
            writes.push(w);
        }
        if !outcomes.iter().all(|o| o.allowed) {
            return outcomes;
        }
        for (s, (subject, h, _)) in subjects.iter().enumerate() {
            let mine = || {
                checks
                    .iter()
                    .zip(&of)
                    .zip(&writes)
                    .filter(move |((_, o), _)| **o == s)
                    .filter_map(|((c, _), w)| w.map(|w| (c.name, w)))
            };
            if mine().next().is_none() {
                continue;
            }
            let Shard { table, names } = &mut *guards[guard_of[s]].1;
            // In place when the entry exists: no key copy.
            if let Some(e) = table.find_mut(*h, |e| e.is(subject)) {
                for (name, w) in mine() {
                    e.set(name, w, names, now_ms);
                }
                continue;
            }
            self.insert(table, names, subject, mine(), now_ms);
        }
        outcomes
    }
}

/// One limit's outcome given its counter, and the counter to store when the
/// request is admitted.
fn decide(kind: LimitKind, current: Option<&Counter>, now_ms: i64, now_s: i64) -> (LimitOutcome, Option<Counter>) {
    match kind {
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
            let w = store.map(|(tat, ttl)| Counter {
                value: Value::Tat(tat),
                expires_ms: now_ms.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)),
            });
            (o, w)
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
            let store = o.allowed.then_some(Counter {
                value: Value::Count {
                    window: w,
                    count: count + 1,
                },
                expires_ms: end.saturating_mul(1000),
            });
            (o, store)
        }
    }
}

/// Drops expired entries; if none had expired, drops a tenth of the
/// table, cheapest first: entries whose quotas have counted at most one
/// request (rates refill within their period; such a quota hands its owner
/// back one request, where dropping a used quota would hand back a fresh
/// month). A flood of distinct keys makes only such entries, so the cap
/// holds and the clients already counted keep their counts.
fn make_room(table: &mut HashTable<Entry>, now_ms: i64) {
    let before = table.len();
    table.retain(|e| e.expires_ms() > now_ms);
    if table.len() == before {
        let want = before / 10 + 1;
        let mut dropped = 0;
        table.retain(|e| {
            let cheap = e.counters.iter().all(|(_, c)| match c.value {
                Value::Tat(_) => true,
                Value::Count { count, .. } => count <= 1,
            });
            let drop = dropped < want && cheap;
            dropped += usize::from(drop);
            !drop
        });
        table.retain(|_| {
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

    fn rate<'a>(subject: &'a Subject, name: &'a str, limit: u64) -> LimitCheck<'a> {
        LimitCheck {
            subject,
            name,
            kind: LimitKind::Rate {
                limit,
                period_ms: 60_000,
                burst: limit,
            },
        }
    }

    fn daily<'a>(subject: &'a Subject, name: &'a str, limit: u64) -> LimitCheck<'a> {
        LimitCheck {
            subject,
            name,
            kind: LimitKind::Quota {
                limit,
                window: Window::Day,
            },
        }
    }

    #[test]
    fn a_refusal_by_one_limit_counts_against_none() {
        // Both limits on one subject (one entry), then on two subjects.
        for (rs, qs) in [("ip=1", "ip=1"), ("ip=1", "ip=2")] {
            let l = Limiter::default();
            let (rs, qs) = (Subject::new(rs), Subject::new(qs));
            let both = [rate(&rs, "r", 100), daily(&qs, "q", 2)];
            assert!(l.apply(&both, 0).iter().all(|o| o.allowed));
            assert!(l.apply(&both, 1).iter().all(|o| o.allowed));
            let third = l.apply(&both, 2);
            assert!(third[0].allowed && !third[1].allowed, "{rs:?} {qs:?}");
            // The rate limit was not charged for the refused request.
            assert_eq!(l.apply(&[rate(&rs, "r", 100)], 3)[0].remaining, 97, "{rs:?} {qs:?}");
            // The next day the quota is back.
            assert!(l.apply(&both, 86_400_000).iter().all(|o| o.allowed));
            assert_eq!(l.len(), if rs == qs { 1 } else { 2 });
        }
    }

    #[test]
    fn limits_of_one_subject_count_apart_by_name() {
        let l = Limiter::default();
        // Equal text in two subjects is one subject.
        let (a, b) = (Subject::new("rl:{x}:2:ip"), Subject::new("rl:{x}:2:ip"));
        assert_eq!(l.apply(&[rate(&a, "x", 3)], 0)[0].remaining, 2);
        let o = l.apply(&[rate(&b, "x", 3), rate(&b, "y", 3)], 1);
        assert_eq!((o[0].remaining, o[1].remaining), (1, 2));
        assert_eq!(l.len(), 1);
        // Another subject starts afresh.
        assert_eq!(
            l.apply(&[rate(&Subject::new("rl:{x}:2:iq"), "x", 3)], 2)[0].remaining,
            2
        );
    }

    #[test]
    fn limit_names_are_held_once_and_let_go_when_unused() {
        let l = Limiter::default();
        for i in 0..100 {
            l.apply(&[rate(&Subject::new(format!("s{i}")), "r", 10)], 0);
        }
        let held: usize = l.shards.iter().map(|s| s.lock().unwrap().names.0.len()).sum();
        let counters: usize = l
            .shards
            .iter()
            .flat_map(|s| {
                s.lock()
                    .unwrap()
                    .names
                    .0
                    .iter()
                    .map(|n| Arc::strong_count(n) - 1)
                    .collect::<Vec<_>>()
            })
            .sum();
        assert_eq!(counters, 100);
        assert!(held <= SHARDS, "{held} copies of one name for 100 counters");
        let mut n = Names::default();
        let kept = n.get("kept");
        for i in 0..Names::PRUNE_AT {
            drop(n.get(&format!("n{i}")));
        }
        assert_eq!(n.0.len(), 2, "unused names were let go, the one in use kept");
        assert!(Arc::ptr_eq(&kept, &n.get("kept")));
    }

    #[test]
    fn a_flood_of_new_keys_is_evicted_before_counted_quotas() {
        let l = Limiter::with_capacity(SHARDS * 10);
        let v = Subject::new("victim");
        let victim = |t| l.apply(&[rate(&v, "r", 1000), daily(&v, "q", 100)], t);
        for t in 0..5 {
            assert!(victim(t).iter().all(|o| o.allowed));
        }
        for i in 0..5_000 {
            let s = Subject::new(format!("flood{i}"));
            l.apply(&[rate(&s, "r", 1000), daily(&s, "q", 100)], 10);
        }
        assert!(l.len() <= SHARDS * 10 + SHARDS, "{}", l.len());
        assert_eq!(
            victim(20)[1].remaining,
            100 - 6,
            "the five earlier requests still count"
        );
    }

    #[test]
    fn counters_stay_capped_under_a_flood_of_keys() {
        let l = Limiter::with_capacity(1_000);
        for i in 0..50_000 {
            l.apply(&[rate(&Subject::new(format!("ip:{i}")), "r", 10)], 0);
        }
        assert!(l.len() <= 1_000 + SHARDS, "{}", l.len());
    }
}
