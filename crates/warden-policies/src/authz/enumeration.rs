//! Enumeration detection: per subject (consumer, or client IP when
//! anonymous) and operation, the distinct object ids touched in a sliding
//! window. Memory is bounded twice: a window keeps at most `max_ids + 1`
//! ids (beyond that the answer is already "too many"), and at most
//! [`MAX_TRACKED`] subject–operation pairs are tracked at once.

use std::collections::HashMap;
use std::hash::{BuildHasher as _, RandomState};
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use warden_core::event::{self, EventKind};

/// Subject–operation pairs tracked at once; when full, idle ones are
/// dropped, and if none is idle new pairs go untracked until one is.
const MAX_TRACKED: usize = 100_000;

/// Blocked subjects remembered at once.
const MAX_BLOCKED: usize = 100_000;

/// `enumeration:` of an `authz` policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnumerationConfig {
    /// Length of the sliding window.
    #[serde(default = "default_window")]
    pub window_secs: u64,
    /// Distinct object ids per subject and operation allowed in a window;
    /// one more raises an `enumeration` event.
    pub max_distinct_ids: usize,
    /// When set, a flagged subject is refused (403) on every route with this
    /// policy for this long.
    #[serde(default)]
    pub block_secs: u64,
}

fn default_window() -> u64 {
    60
}

/// What recording one request found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Fine,
    /// Over the threshold (flag raised; not blocking).
    Flagged,
    /// The subject is blocked.
    Blocked,
}

#[derive(Default)]
struct Window {
    /// Keyed hash of an id → when it was last touched.
    ids: HashMap<u64, i64>,
    /// An event was raised for this window until then (one per window).
    flagged_until: i64,
}

#[derive(Default)]
struct Tracker {
    windows: HashMap<(Arc<str>, Arc<str>), Window>,
    blocked: HashMap<Arc<str>, i64>,
    /// When full, idle windows are swept at most once a second.
    next_sweep: i64,
}

/// The running detector of one `authz` policy.
pub(crate) struct Enumeration {
    window: i64,
    max_ids: usize,
    block: i64,
    hasher: RandomState,
    state: Mutex<Tracker>,
}

impl std::fmt::Debug for Enumeration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enumeration")
            .field("window", &self.window)
            .field("max_ids", &self.max_ids)
            .field("block", &self.block)
            .finish_non_exhaustive()
    }
}

impl Enumeration {
    pub(crate) fn new(cfg: &EnumerationConfig) -> Self {
        Self {
            window: i64::try_from(cfg.window_secs).unwrap_or(i64::MAX),
            max_ids: cfg.max_distinct_ids,
            block: i64::try_from(cfg.block_secs).unwrap_or(i64::MAX),
            hasher: RandomState::new(),
            state: Mutex::new(Tracker::default()),
        }
    }

    /// True while `subject` is blocked.
    pub(crate) fn is_blocked(&self, subject: &str, now: i64) -> bool {
        self.state
            .lock()
            .is_ok_and(|s| s.blocked.get(subject).is_some_and(|until| *until > now))
    }

    /// Records that `subject` touched `ids` through `operation` at `now`.
    pub(crate) fn record(
        &self,
        subject: &Arc<str>,
        operation: &Arc<str>,
        ids: &[&str],
        now: i64,
        request_id: &str,
    ) -> Verdict {
        let Ok(mut state) = self.state.lock() else {
            return Verdict::Fine;
        };
        if state.blocked.get(subject).is_some_and(|until| *until > now) {
            return Verdict::Blocked;
        }
        if ids.is_empty() {
            return Verdict::Fine;
        }
        let horizon = now.saturating_sub(self.window);
        let key = (Arc::clone(subject), Arc::clone(operation));
        if !state.windows.contains_key(&key) && state.windows.len() >= MAX_TRACKED {
            if now < state.next_sweep {
                return Verdict::Fine;
            }
            state.next_sweep = now.saturating_add(1);
            state.windows.retain(|_, w| w.ids.values().any(|t| *t > horizon));
            if state.windows.len() >= MAX_TRACKED {
                tracing::warn!("enumeration tracking is full of active subjects; new ones go uncounted");
                return Verdict::Fine;
            }
        }
        let w = state.windows.entry(key).or_default();
        w.ids.retain(|_, t| *t > horizon);
        for id in ids {
            let h = self.hasher.hash_one(id);
            if w.ids.len() <= self.max_ids || w.ids.contains_key(&h) {
                w.ids.insert(h, now);
            }
        }
        if w.ids.len() <= self.max_ids {
            return Verdict::Fine;
        }
        let first = w.flagged_until <= now;
        if first {
            w.flagged_until = now.saturating_add(self.window);
            event::emit(
                EventKind::Enumeration,
                request_id,
                subject,
                &format!(
                    "more than {} distinct object ids via `{operation}` within {} s",
                    self.max_ids, self.window
                ),
            );
        }
        if self.block == 0 {
            return Verdict::Flagged;
        }
        if state.blocked.len() >= MAX_BLOCKED {
            state.blocked.retain(|_, until| *until > now);
        }
        if state.blocked.len() < MAX_BLOCKED {
            state
                .blocked
                .insert(Arc::clone(subject), now.saturating_add(self.block));
            event::emit(
                EventKind::ConsumerBlocked,
                request_id,
                subject,
                &format!("blocked for {} s after enumeration", self.block),
            );
        }
        Verdict::Blocked
    }

    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        self.state.lock().map_or(0, |s| s.windows.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(block: u64) -> Enumeration {
        Enumeration::new(&EnumerationConfig {
            window_secs: 60,
            max_distinct_ids: 30,
            block_secs: block,
        })
    }

    #[test]
    fn walking_ids_is_flagged_and_rereading_own_ones_is_not() {
        let d = det(0);
        let (alice, bob, op): (Arc<str>, Arc<str>, Arc<str>) = ("alice".into(), "bob".into(), "GET /o/{id}".into());
        let mut flagged_at = None;
        for i in 0..50 {
            let id = i.to_string();
            if d.record(&alice, &op, &[&id], 1_000 + i, "r") == Verdict::Flagged && flagged_at.is_none() {
                flagged_at = Some(i);
            }
        }
        assert_eq!(flagged_at, Some(30), "the 31st distinct id is the first over 30");
        for round in 0..200 {
            for id in ["1", "2", "3", "4", "5"] {
                assert_eq!(d.record(&bob, &op, &[id], 1_000 + round / 4, "r"), Verdict::Fine);
            }
        }
        // The window slides: the same walk spread over an hour is fine.
        let carol: Arc<str> = "carol".into();
        for i in 0..50 {
            let id = i.to_string();
            assert_eq!(d.record(&carol, &op, &[&id], 10_000 + i * 120, "r"), Verdict::Fine);
        }
    }

    #[test]
    fn a_block_lasts_its_period_and_memory_stays_capped() {
        let d = Enumeration::new(&EnumerationConfig {
            window_secs: 60,
            max_distinct_ids: 3,
            block_secs: 300,
        });
        let (mallory, op): (Arc<str>, Arc<str>) = ("mallory".into(), "GET /o/{id}".into());
        for i in 0..3 {
            assert_eq!(d.record(&mallory, &op, &[&i.to_string()], 0, "r"), Verdict::Fine);
        }
        assert_eq!(d.record(&mallory, &op, &["9"], 1, "r"), Verdict::Blocked);
        assert!(d.is_blocked("mallory", 300));
        assert_eq!(d.record(&mallory, &op, &[], 300, "r"), Verdict::Blocked);
        assert!(!d.is_blocked("mallory", 301));
        // One subject walking 100,000 ids keeps at most max + 1 of them.
        let many: Vec<String> = (0..100_000).map(|i| i.to_string()).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let eve: Arc<str> = "eve".into();
        d.record(&eve, &op, &refs, 1_000, "r");
        let held = d.state.lock().unwrap().windows[&(eve, op)].ids.len();
        assert_eq!(held, 4);
        assert_eq!(d.tracked(), 2);
    }
}
