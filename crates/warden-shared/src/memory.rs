//! Process-local state.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use warden_core::{SharedState, SharedUnavailable};

/// Most claims remembered; when full of live ones, new claims are refused
/// (a replay cache that forgets early would accept replays).
const MAX_CLAIMS: usize = 200_000;

/// When full, expired claims are swept at most this often: a flood that
/// keeps the table full of live claims costs one scan per interval, not one
/// per request.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Claims in this process's memory.
#[derive(Debug, Default)]
pub struct MemoryState {
    inner: Mutex<Claims>,
    limiter: crate::Limiter,
}

#[derive(Debug, Default)]
struct Claims {
    until: HashMap<String, Instant>,
    next_sweep: Option<Instant>,
    /// Counters: value and expiry.
    counters: HashMap<String, (u64, Instant)>,
    /// Small maps (dynamic blocks): map → field → value.
    maps: HashMap<String, HashMap<String, String>>,
}

/// Most fields in one map; the callers cap far lower (blocks: 10,000).
const MAX_MAP_FIELDS: usize = 100_000;

/// Most counters kept; when full, expired ones go, then new keys are not kept.
const MAX_COUNTERS: usize = 200_000;

fn bump(c: &mut HashMap<String, (u64, Instant)>, key: &str, ttl_secs: u64, now: Instant) -> u64 {
    if let Some((v, until)) = c.get_mut(key)
        && *until > now
    {
        *v += 1;
        return *v;
    }
    if c.len() >= MAX_COUNTERS {
        c.retain(|_, (_, until)| *until > now);
    }
    // Still full of live counters: drop the ones closest to expiry rather
    // than stop counting new keys.
    if c.len() >= MAX_COUNTERS {
        evict_soonest(c, MAX_COUNTERS / 10);
    }
    c.insert(key.to_owned(), (1, now + Duration::from_secs(ttl_secs)));
    1
}

/// Drops the `n` counters that expire soonest.
fn evict_soonest(c: &mut HashMap<String, (u64, Instant)>, n: usize) {
    let mut by_expiry: Vec<(Instant, String)> = c.iter().map(|(k, (_, until))| (*until, k.clone())).collect();
    by_expiry.sort_unstable();
    for (_, k) in by_expiry.into_iter().take(n) {
        c.remove(&k);
    }
}

impl MemoryState {
    fn with_counters<T>(&self, f: impl FnOnce(&mut HashMap<String, (u64, Instant)>, Instant) -> T) -> T {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut inner.counters, Instant::now())
    }

    /// The synchronous claim (also the Redis fallback).
    pub fn claim(&self, key: &str, ttl: Duration) -> bool {
        let Ok(mut inner) = self.inner.lock() else {
            return false;
        };
        let now = Instant::now();
        let Claims {
            until: claims,
            next_sweep,
            ..
        } = &mut *inner;
        if claims.len() >= MAX_CLAIMS {
            if next_sweep.is_some_and(|at| now < at) {
                return false;
            }
            claims.retain(|_, until| *until > now);
            *next_sweep = Some(now + SWEEP_INTERVAL);
            if claims.len() >= MAX_CLAIMS {
                return false;
            }
        }
        if claims.get(key).is_some_and(|until| *until > now) {
            return false;
        }
        claims.insert(key.to_owned(), now + ttl);
        true
    }
}

impl SharedState for MemoryState {
    fn claim_once<'a>(
        &'a self,
        key: &'a str,
        ttl_secs: u64,
    ) -> Pin<Box<dyn Future<Output = Result<bool, SharedUnavailable>> + Send + 'a>> {
        Box::pin(async move { Ok(self.claim(key, Duration::from_secs(ttl_secs))) })
    }

    fn limit<'a>(
        &'a self,
        checks: &'a [warden_core::limits::LimitCheck<'a>],
        now_ms: i64,
    ) -> Pin<Box<dyn Future<Output = Result<warden_core::limits::Outcomes, SharedUnavailable>> + Send + 'a>> {
        Box::pin(async move { Ok(self.limiter.apply(checks, now_ms)) })
    }

    fn limit_now(
        &self,
        checks: &[warden_core::limits::LimitCheck<'_>],
        now_ms: i64,
    ) -> Option<warden_core::limits::Outcomes> {
        Some(self.limiter.apply(checks, now_ms))
    }

    fn bump<'a>(&'a self, key: &'a str, ttl_secs: u64) -> warden_core::SharedFuture<'a, u64> {
        Box::pin(async move { Ok(self.with_counters(|c, now| bump(c, key, ttl_secs, now))) })
    }

    fn read<'a>(&'a self, key: &'a str) -> warden_core::SharedFuture<'a, u64> {
        Box::pin(async move {
            Ok(self.with_counters(|c, now| c.get(key).filter(|(_, until)| *until > now).map_or(0, |(v, _)| *v)))
        })
    }

    fn put<'a>(&'a self, key: &'a str, value: u64, ttl_secs: u64) -> warden_core::SharedFuture<'a, ()> {
        Box::pin(async move {
            self.with_counters(|c, now| {
                if c.len() >= MAX_COUNTERS && !c.contains_key(key) {
                    c.retain(|_, (_, until)| *until > now);
                }
                if c.len() >= MAX_COUNTERS && !c.contains_key(key) {
                    evict_soonest(c, MAX_COUNTERS / 10);
                }
                c.insert(key.to_owned(), (value, now + Duration::from_secs(ttl_secs)));
            });
            Ok(())
        })
    }

    fn clear<'a>(&'a self, key: &'a str) -> warden_core::SharedFuture<'a, ()> {
        Box::pin(async move {
            self.with_counters(|c, _| c.remove(key));
            Ok(())
        })
    }

    fn map_set<'a>(&'a self, map: &'a str, field: &'a str, value: &'a str) -> warden_core::SharedFuture<'a, ()> {
        Box::pin(async move {
            let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let m = inner.maps.entry(map.to_owned()).or_default();
            if m.len() >= MAX_MAP_FIELDS && !m.contains_key(field) {
                return Err(SharedUnavailable(format!("map {map} is full")));
            }
            m.insert(field.to_owned(), value.to_owned());
            Ok(())
        })
    }

    fn map_remove<'a>(&'a self, map: &'a str, field: &'a str) -> warden_core::SharedFuture<'a, bool> {
        Box::pin(async move {
            let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            Ok(inner.maps.get_mut(map).is_some_and(|m| m.remove(field).is_some()))
        })
    }

    fn map_entries<'a>(&'a self, map: &'a str) -> warden_core::SharedFuture<'a, Vec<(String, String)>> {
        Box::pin(async move {
            let inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            Ok(inner
                .maps
                .get(map)
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_is_won_once_until_it_expires() {
        let m = MemoryState::default();
        assert!(m.claim("a", Duration::from_millis(30)));
        assert!(!m.claim("a", Duration::from_millis(30)));
        assert!(m.claim("b", Duration::from_millis(30)));
        std::thread::sleep(Duration::from_millis(40));
        assert!(
            m.claim("a", Duration::from_millis(30)),
            "expired claims can be made again"
        );
    }

    #[tokio::test]
    async fn limits_answered_now_and_awaited_share_one_set_of_counters() {
        use warden_core::limits::{LimitCheck, LimitKind, Subject};
        let m = MemoryState::default();
        let subject = Subject::new("rl:{r}:3:ip");
        let checks = [LimitCheck {
            subject: &subject,
            name: "a:r",
            kind: LimitKind::Rate {
                limit: 2,
                period_ms: 60_000,
                burst: 2,
            },
        }];
        let first = m.limit_now(&checks, 0).expect("memory answers at once");
        assert!(first[0].allowed);
        assert_eq!(first[0].remaining, 1);
        let second = m.limit(&checks, 1).await.unwrap();
        assert!(second[0].allowed);
        assert_eq!(second[0].remaining, 0);
        let third = m.limit_now(&checks, 2).expect("memory answers at once");
        assert!(
            !third[0].allowed,
            "the third request within the minute is over the limit"
        );
    }
}
