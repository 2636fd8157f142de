//! Rate limits and quotas as the shared state evaluates them: the types the
//! `rate_limit` policy hands to [`crate::SharedState::limit`], and the
//! arithmetic every backend shares (GCRA for rates, calendar windows for
//! quotas), so memory and Redis answer alike.

/// A calendar window of a quota, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// From the top of the hour.
    Hour,
    /// From midnight UTC.
    Day,
    /// From the first of the month, midnight UTC.
    Month,
}

impl Window {
    /// The window holding `now` (Unix seconds): its index (stable per
    /// window) and its end (Unix seconds).
    pub fn at(self, now: i64) -> (i64, i64) {
        match self {
            Self::Hour => {
                let i = now.div_euclid(3600);
                (i, (i + 1) * 3600)
            }
            Self::Day => {
                let i = now.div_euclid(86_400);
                (i, (i + 1) * 86_400)
            }
            Self::Month => {
                let (y, m) = year_month(now.div_euclid(86_400));
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                (y * 12 + m - 1, days_from_civil(ny, nm, 1) * 86_400)
            }
        }
    }

    /// Start and end (Unix seconds) of the window holding `now`.
    pub fn bounds(self, now: i64) -> (i64, i64) {
        let (_, end) = self.at(now);
        let start = match self {
            Self::Hour => end - 3600,
            Self::Day => end - 86_400,
            Self::Month => {
                let (y, m) = year_month(now.div_euclid(86_400));
                days_from_civil(y, m, 1) * 86_400
            }
        };
        (start, end)
    }

    /// One-letter code (used in keys and by the Redis script).
    pub fn code(self) -> &'static str {
        match self {
            Self::Hour => "h",
            Self::Day => "d",
            Self::Month => "m",
        }
    }
}

/// (year, month) of a day number since 1970-01-01 (H. Hinnant's algorithm).
fn year_month(days: i64) -> (i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m)
}

/// Day number since 1970-01-01 of a civil date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// What one limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// `limit` requests per `period_ms`, with bursts of up to `burst`
    /// (GCRA: one request every `period_ms / limit`, `burst` at once).
    Rate {
        /// Requests per period.
        limit: u64,
        /// Period length.
        period_ms: u64,
        /// Requests allowed at once (at least 1).
        burst: u64,
    },
    /// `limit` requests per calendar window.
    Quota {
        /// Requests per window.
        limit: u64,
        /// The window.
        window: Window,
    },
}

/// Whom a limit counts, namespaced by the policy (`rl:{bucket}:` and the
/// request's length-prefixed key values), with its keyed hash, computed
/// once when the subject is made: a subject kept for a connection's next
/// requests ([`crate::ConnMemo`]) is not hashed again.
///
/// Subjects are partly client-chosen (header values, claims), so the hash
/// is the standard library's SipHash under one random key per process:
/// every store in the process finds a subject by the same hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    text: String,
    hash: u64,
}

impl Subject {
    /// The subject `text`, hashed.
    pub fn new(text: impl Into<String>) -> Self {
        let text = text.into();
        let hash = subject_hash(&text);
        Self { text, hash }
    }

    /// Its text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Its keyed hash.
    pub fn hash(&self) -> u64 {
        self.hash
    }
}

/// The keyed hash of a subject's text: the one [`Subject::hash`] holds.
fn subject_hash(text: &str) -> u64 {
    use std::hash::BuildHasher as _;
    static KEY: std::sync::LazyLock<std::hash::RandomState> = std::sync::LazyLock::new(std::hash::RandomState::new);
    KEY.hash_one(text)
}

/// One limit to apply to one subject.
#[derive(Debug, Clone, Copy)]
pub struct LimitCheck<'a> {
    /// Whom it counts. The limits of a request keyed alike share it: a
    /// store in memory keeps them under one entry.
    pub subject: &'a Subject,
    /// Which limit of the subject it is (unique within the policy's bucket).
    pub name: &'a str,
    /// What it counts.
    pub kind: LimitKind,
}

impl LimitCheck<'_> {
    /// The counter's key in a store of single counters (Redis):
    /// `subject#name`. The subject's values are length-prefixed, so no two
    /// subject and name pairs make the same key.
    pub fn key(&self) -> String {
        let mut key = String::with_capacity(self.subject.as_str().len() + 1 + self.name.len());
        self.write_key(&mut key);
        key
    }

    /// Appends [`LimitCheck::key`] to `out`.
    pub fn write_key(&self, out: &mut String) {
        out.push_str(self.subject.as_str());
        out.push('#');
        out.push_str(self.name);
    }
}

/// A request's outcomes, one per check, in order: a route has a handful of
/// limits, so they stay inline (no allocation per request).
pub type Outcomes = smallvec::SmallVec<[LimitOutcome; 2]>;

/// The answer for one limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitOutcome {
    /// This limit lets the request through.
    pub allowed: bool,
    /// Requests left now (after this one, when it was admitted).
    pub remaining: u64,
    /// Seconds until the limit is fully available again (window end for quotas).
    pub reset_secs: u64,
    /// Seconds to wait before retrying (0 when allowed).
    pub retry_after_secs: u64,
    /// The same wait in milliseconds (for throttling, which waits it out).
    pub retry_after_ms: u64,
}

/// GCRA state of a rate limit: the theoretical arrival time, in ms.
/// `Some(tat)` to store (with its lifetime in ms) when admitted.
pub fn gcra(
    limit: u64,
    period_ms: u64,
    burst: u64,
    tat: Option<f64>,
    now_ms: f64,
) -> (LimitOutcome, Option<(f64, u64)>) {
    let interval = period_ms as f64 / limit.max(1) as f64;
    let tolerance = interval * burst.max(1) as f64;
    let start = tat.map_or(now_ms, |t| t.max(now_ms));
    let next = start + interval;
    let secs = |ms: f64| (ms.max(0.0) / 1000.0).ceil() as u64;
    if next - now_ms <= tolerance {
        let remaining = ((tolerance - (next - now_ms)) / interval).floor().max(0.0) as u64;
        let outcome = LimitOutcome {
            allowed: true,
            remaining,
            reset_secs: secs(next - now_ms),
            retry_after_secs: 0,
            retry_after_ms: 0,
        };
        (outcome, Some((next, (next - now_ms).ceil().max(1.0) as u64)))
    } else {
        let outcome = LimitOutcome {
            allowed: false,
            remaining: 0,
            reset_secs: secs(start - now_ms),
            retry_after_secs: secs(next - tolerance - now_ms).max(1),
            retry_after_ms: (next - tolerance - now_ms).ceil().max(1.0) as u64,
        };
        (outcome, None)
    }
}

/// A quota decision given the count so far in the window ending at `end`.
pub fn quota(limit: u64, count: u64, now: i64, end: i64) -> LimitOutcome {
    let reset = u64::try_from(end - now).unwrap_or(0);
    if count < limit {
        LimitOutcome {
            allowed: true,
            remaining: limit - count - 1,
            reset_secs: reset,
            retry_after_secs: 0,
            retry_after_ms: 0,
        }
    } else {
        LimitOutcome {
            allowed: false,
            remaining: 0,
            reset_secs: reset,
            retry_after_secs: reset.max(1),
            retry_after_ms: reset.max(1).saturating_mul(1000),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_windows_roll_over_at_their_boundaries() {
        // 2026-02-28 23:59:59 UTC, then a second later March begins.
        let feb_end = 1_772_323_199;
        let (feb, end) = Window::Month.at(feb_end);
        assert_eq!(end, feb_end + 1);
        assert_ne!(Window::Month.at(feb_end + 1).0, feb);
        // Leap year: 2028-02-29 exists.
        let leap = 1_835_395_200; // 2028-02-29 00:00:00
        assert_eq!(Window::Month.at(leap).1, leap + 86_400);
        // December rolls into the next year.
        let dec = 1_798_675_200; // 2026-12-31 00:00:00
        assert_eq!(Window::Month.at(dec).1, dec + 86_400);
        assert_eq!(Window::Day.at(86_399), (0, 86_400));
        assert_eq!(Window::Hour.at(3600), (1, 7200));
        assert_eq!(
            Window::Month.bounds(feb_end + 1),
            (feb_end + 1, feb_end + 1 + 31 * 86_400)
        );
    }

    #[test]
    fn gcra_admits_the_burst_then_the_rate() {
        // 10 per second, bursts of 5.
        let mut tat = None;
        let mut admitted = 0;
        for _ in 0..20 {
            let (o, store) = gcra(10, 1000, 5, tat, 0.0);
            if o.allowed {
                admitted += 1;
                tat = store.map(|s| s.0);
            } else {
                assert_eq!(o.retry_after_secs, 1);
            }
        }
        assert_eq!(admitted, 5);
        // 100 ms later one more fits.
        assert!(gcra(10, 1000, 5, tat, 100.0).0.allowed);
        assert!(!gcra(10, 1000, 5, tat, 99.0).0.allowed);
        assert_eq!(quota(3, 2, 0, 60).remaining, 0);
        assert!(!quota(3, 3, 0, 60).allowed);
    }
}
