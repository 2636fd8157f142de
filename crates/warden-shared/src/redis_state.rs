//! Redis-backed state: atomic commands, Redis's own clock for expiry.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::ConnectionManager;

use crate::redis_conn::Conn;
use warden_core::limits::{LimitCheck, LimitKind, LimitOutcome, Outcomes};
use warden_core::{SharedState, SharedUnavailable};

use crate::{MemoryState, OnUnavailable};

/// State in Redis.
pub struct RedisState {
    conn: Conn,
    prefix: String,
    timeout: Duration,
    on_unavailable: OnUnavailable,
    fallback: MemoryState,
    /// For logging outages once, and recoveries.
    down: AtomicBool,
}

impl std::fmt::Debug for RedisState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisState")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisState {
    /// Connects (the connection manager reconnects by itself afterwards).
    pub async fn connect(
        url: &str,
        prefix: String,
        timeout: Duration,
        on_unavailable: OnUnavailable,
    ) -> Result<Self, String> {
        let shown = redact(url);
        let client = redis::Client::open(url).map_err(|e| format!("redis URL {shown}: {e}"))?;
        let conn = tokio::time::timeout(Duration::from_secs(5), ConnectionManager::new(client))
            .await
            .map_err(|_| format!("redis at {shown} did not answer within 5 s"))?
            .map_err(|e| format!("cannot connect to redis at {shown}: {e}"))?;
        tracing::info!(redis = %shown, "shared state in redis");
        Ok(Self::over(Conn::Single(conn), prefix, timeout, on_unavailable))
    }

    /// Connects to a Redis Cluster through any of `nodes` (the cluster client
    /// learns the slot map and follows MOVED/ASK redirections by itself).
    pub async fn connect_cluster(
        nodes: &[String],
        prefix: String,
        timeout: Duration,
        on_unavailable: OnUnavailable,
    ) -> Result<Self, String> {
        let shown: Vec<String> = nodes.iter().map(|n| redact(n)).collect();
        let client = redis::cluster::ClusterClient::builder(nodes.to_vec())
            .connection_timeout(Duration::from_secs(5))
            .response_timeout(timeout)
            .build()
            .map_err(|e| format!("redis cluster {shown:?}: {e}"))?;
        let conn = tokio::time::timeout(Duration::from_secs(5), client.get_async_connection())
            .await
            .map_err(|_| format!("redis cluster {shown:?} did not answer within 5 s"))?
            .map_err(|e| format!("cannot connect to redis cluster {shown:?}: {e}"))?;
        tracing::info!(redis_cluster = ?shown, "shared state in a redis cluster");
        Ok(Self::over(Conn::Cluster(conn), prefix, timeout, on_unavailable))
    }

    fn over(conn: Conn, prefix: String, timeout: Duration, on_unavailable: OnUnavailable) -> Self {
        Self {
            conn,
            prefix,
            timeout,
            on_unavailable,
            fallback: MemoryState::default(),
            down: AtomicBool::new(false),
        }
    }

    async fn set_nx(&self, key: &str, ttl_secs: u64) -> Result<bool, String> {
        let mut conn = self.conn.clone();
        let full = format!("{}{key}", self.prefix);
        let mut cmd = redis::cmd("SET");
        cmd.arg(&full).arg(1).arg("NX").arg("EX").arg(ttl_secs.max(1));
        match tokio::time::timeout(self.timeout, cmd.query_async::<Option<String>>(&mut conn)).await {
            Ok(Ok(answer)) => Ok(answer.is_some()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
        }
    }
}

/// Every limit of one request in one atomic step, on Redis's clock:
/// check all, then count all or none. KEYS: one counter per check; ARGV:
/// four per check — `r, limit, period_ms, burst` or `q, limit, window, -`.
/// Answers five integers per check: allowed, remaining, reset s, retry-after s,
/// retry-after ms.
const LIMIT_SCRIPT: &str = r"
local function civil(days)
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m
end
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = m > 2 and m - 3 or m + 9
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end
local function window(w, s)
  if w == 'h' then local i = math.floor(s / 3600); return i, (i + 1) * 3600 end
  if w == 'd' then local i = math.floor(s / 86400); return i, (i + 1) * 86400 end
  local y, m = civil(math.floor(s / 86400))
  local ny, nm = y, m + 1
  if m == 12 then ny, nm = y + 1, 1 end
  return y * 12 + m - 1, days_from_civil(ny, nm, 1) * 86400
end
local t = redis.call('TIME')
local secs = tonumber(t[1])
local now = secs * 1000 + math.floor(tonumber(t[2]) / 1000)
local out, writes, all = {}, {}, true
for i = 1, #KEYS do
  local b = (i - 1) * 4
  local limit = tonumber(ARGV[b + 2])
  if ARGV[b + 1] == 'r' then
    local interval = tonumber(ARGV[b + 3]) / limit
    local tol = interval * tonumber(ARGV[b + 4])
    local tat = tonumber(redis.call('GET', KEYS[i]) or now) or now
    local start = math.max(tat, now)
    local nxt = start + interval
    if nxt - now <= tol then
      table.insert(out, 1); table.insert(out, math.floor((tol - (nxt - now)) / interval))
      table.insert(out, math.ceil((nxt - now) / 1000)); table.insert(out, 0); table.insert(out, 0)
      writes[i] = {string.format('%.3f', nxt), math.max(1, math.ceil(nxt - now)), false}
    else
      all = false
      table.insert(out, 0); table.insert(out, 0)
      table.insert(out, math.ceil((start - now) / 1000))
      table.insert(out, math.max(1, math.ceil((nxt - tol - now) / 1000)))
      table.insert(out, math.max(1, math.ceil(nxt - tol - now)))
    end
  else
    local idx, e = window(ARGV[b + 3], secs)
    local count = 0
    local cur = redis.call('GET', KEYS[i])
    if cur then
      local ci, cc = string.match(cur, '^(-?%d+):(%d+)$')
      if ci and tonumber(ci) == idx then count = tonumber(cc) end
    end
    local reset = e - secs
    if count < limit then
      table.insert(out, 1); table.insert(out, limit - count - 1); table.insert(out, reset); table.insert(out, 0)
      table.insert(out, 0)
      writes[i] = {idx .. ':' .. (count + 1), e + 60, true}
    else
      all = false
      table.insert(out, 0); table.insert(out, 0); table.insert(out, reset); table.insert(out, math.max(1, reset))
      table.insert(out, math.max(1, reset) * 1000)
    end
  end
end
if all then
  for i = 1, #KEYS do
    local w = writes[i]
    if w[3] then
      redis.call('SET', KEYS[i], w[1], 'EXAT', w[2])
    else
      redis.call('SET', KEYS[i], w[1], 'PX', w[2])
    end
  end
end
return out
";

impl RedisState {
    async fn run_limits(&self, checks: &[LimitCheck<'_>]) -> Result<Outcomes, String> {
        static SCRIPT: std::sync::LazyLock<redis::Script> =
            std::sync::LazyLock::new(|| redis::Script::new(LIMIT_SCRIPT));
        let mut inv = SCRIPT.prepare_invoke();
        for c in checks {
            let mut key = String::with_capacity(self.prefix.len() + c.subject.as_str().len() + 1 + c.name.len());
            key.push_str(&self.prefix);
            c.write_key(&mut key);
            inv.key(key);
            match c.kind {
                LimitKind::Rate {
                    limit,
                    period_ms,
                    burst,
                } => {
                    inv.arg("r").arg(limit.max(1)).arg(period_ms.max(1)).arg(burst.max(1));
                }
                LimitKind::Quota { limit, window } => {
                    inv.arg("q").arg(limit).arg(window.code()).arg("-");
                }
            }
        }
        let mut conn = self.conn.clone();
        let answer: Vec<i64> = match tokio::time::timeout(self.timeout, inv.invoke_async(&mut conn)).await {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err(format!("no answer within {} ms", self.timeout.as_millis())),
        };
        if answer.len() != checks.len() * 5 {
            return Err(format!("limit script answered {} values", answer.len()));
        }
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(answer
            .chunks_exact(5)
            .map(|c| LimitOutcome {
                allowed: c[0] == 1,
                remaining: n(c[1]),
                reset_secs: n(c[2]),
                retry_after_secs: n(c[3]),
                retry_after_ms: n(c[4]),
            })
            .collect())
    }

    fn note_outcome(&self, failure: Option<&str>) {
        match failure {
            None => {
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!("redis answers again; shared state is shared again");
                }
            }
            Some(e) => {
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::error!(error = %e, on_unavailable = ?self.on_unavailable, "redis unavailable");
                }
            }
        }
    }
}

impl RedisState {
    /// Runs one command with the timeout, noting outages and recoveries.
    async fn command<T: redis::FromRedisValue>(&self, cmd: &mut redis::Cmd) -> Result<T, SharedUnavailable> {
        let mut conn = self.conn.clone();
        let r = match tokio::time::timeout(self.timeout, cmd.query_async::<T>(&mut conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
        };
        self.note_outcome(r.as_ref().err().map(String::as_str));
        r.map_err(SharedUnavailable)
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

/// INCR, with the lifetime set only when the counter is new.
const BUMP_SCRIPT: &str = r"
local v = redis.call('INCR', KEYS[1])
if v == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return v
";

impl SharedState for RedisState {
    fn bump<'a>(&'a self, key: &'a str, ttl_secs: u64) -> warden_core::SharedFuture<'a, u64> {
        Box::pin(async move {
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(BUMP_SCRIPT).arg(1).arg(self.key(key)).arg(ttl_secs.max(1));
            self.command::<u64>(&mut cmd).await
        })
    }

    fn read<'a>(&'a self, key: &'a str) -> warden_core::SharedFuture<'a, u64> {
        Box::pin(async move {
            let mut cmd = redis::cmd("GET");
            cmd.arg(self.key(key));
            Ok(self.command::<Option<u64>>(&mut cmd).await?.unwrap_or(0))
        })
    }

    fn put<'a>(&'a self, key: &'a str, value: u64, ttl_secs: u64) -> warden_core::SharedFuture<'a, ()> {
        Box::pin(async move {
            let mut cmd = redis::cmd("SET");
            cmd.arg(self.key(key)).arg(value).arg("EX").arg(ttl_secs.max(1));
            self.command::<()>(&mut cmd).await
        })
    }

    fn clear<'a>(&'a self, key: &'a str) -> warden_core::SharedFuture<'a, ()> {
        Box::pin(async move {
            let mut cmd = redis::cmd("DEL");
            cmd.arg(self.key(key));
            self.command::<()>(&mut cmd).await
        })
    }

    fn map_set<'a>(&'a self, map: &'a str, field: &'a str, value: &'a str) -> warden_core::SharedFuture<'a, ()> {
        Box::pin(async move {
            let mut cmd = redis::cmd("HSET");
            cmd.arg(self.key(map)).arg(field).arg(value);
            self.command::<()>(&mut cmd).await
        })
    }

    fn map_remove<'a>(&'a self, map: &'a str, field: &'a str) -> warden_core::SharedFuture<'a, bool> {
        Box::pin(async move {
            let mut cmd = redis::cmd("HDEL");
            cmd.arg(self.key(map)).arg(field);
            Ok(self.command::<u64>(&mut cmd).await? > 0)
        })
    }

    fn map_entries<'a>(&'a self, map: &'a str) -> warden_core::SharedFuture<'a, Vec<(String, String)>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("HGETALL");
            cmd.arg(self.key(map));
            // Bytes, not strings: one entry that is not UTF-8 (written by
            // something else) is skipped instead of failing every read.
            let all: std::collections::HashMap<Vec<u8>, Vec<u8>> = self.command(&mut cmd).await?;
            Ok(all
                .into_iter()
                .filter_map(|(k, v)| Some((String::from_utf8(k).ok()?, String::from_utf8(v).ok()?)))
                .collect())
        })
    }

    fn limit<'a>(
        &'a self,
        checks: &'a [LimitCheck<'a>],
        _now_ms: i64,
    ) -> Pin<Box<dyn Future<Output = Result<Outcomes, SharedUnavailable>> + Send + 'a>> {
        Box::pin(async move {
            // The policy decides what an outage means for its limits (local
            // fallback at its share, or fail closed), so errors go back to it.
            let r = self.run_limits(checks).await;
            self.note_outcome(r.as_ref().err().map(String::as_str));
            r.map_err(SharedUnavailable)
        })
    }

    fn claim_once<'a>(
        &'a self,
        key: &'a str,
        ttl_secs: u64,
    ) -> Pin<Box<dyn Future<Output = Result<bool, SharedUnavailable>> + Send + 'a>> {
        Box::pin(async move {
            match self.set_nx(key, ttl_secs).await {
                Ok(won) => {
                    self.note_outcome(None);
                    Ok(won)
                }
                Err(e) => {
                    self.note_outcome(Some(&e));
                    match self.on_unavailable {
                        OnUnavailable::Local => Ok(self.fallback.claim(key, Duration::from_secs(ttl_secs))),
                        OnUnavailable::FailClosed => Err(SharedUnavailable(e)),
                    }
                }
            }
        })
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match url
        .split_once("://")
        .and_then(|(s, rest)| rest.split_once('@').map(|(cred, host)| (s, cred, host)))
    {
        Some((scheme, cred, host)) => {
            let user = cred.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn prefix() -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        format!("warden-test:{}:{nanos}:", std::process::id())
    }

    fn url() -> String {
        std::env::var("WARDEN_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
    }

    #[tokio::test]
    async fn two_handles_share_claims_in_real_redis() {
        let p = prefix();
        let a = RedisState::connect(&url(), p.clone(), Duration::from_millis(500), OnUnavailable::FailClosed)
            .await
            .expect("Redis for tests (see .ci/run)");
        let b = RedisState::connect(&url(), p, Duration::from_millis(500), OnUnavailable::FailClosed)
            .await
            .unwrap();
        assert!(a.claim_once("proof-1", 5).await.unwrap());
        assert!(
            !b.claim_once("proof-1", 5).await.unwrap(),
            "the other node must see the claim"
        );
        assert!(b.claim_once("proof-2", 5).await.unwrap());
        // Concurrent claims of one key: exactly one wins.
        let (x, y) = tokio::join!(a.claim_once("race", 5), b.claim_once("race", 5));
        assert!(x.unwrap() ^ y.unwrap());
    }

    #[tokio::test]
    async fn a_redis_outage_falls_back_or_fails_closed_as_configured_and_recovers() {
        let target = url().trim_start_matches("redis://").trim_end_matches('/').to_owned();
        let proxy = crate::testing::Cuttable::start(&target).await.unwrap();
        let via = format!("redis://{}", proxy.addr);
        let local = RedisState::connect(&via, prefix(), Duration::from_millis(200), OnUnavailable::Local)
            .await
            .unwrap();
        let closed = RedisState::connect(&via, prefix(), Duration::from_millis(200), OnUnavailable::FailClosed)
            .await
            .unwrap();
        assert!(local.claim_once("k", 30).await.unwrap());
        proxy.set(false);
        // Local fallback: claims are still single-use, in this process.
        assert!(local.claim_once("during", 30).await.unwrap());
        assert!(!local.claim_once("during", 30).await.unwrap());
        // Fail closed: an error, never a silent "first use".
        assert!(closed.claim_once("x", 30).await.is_err());
        proxy.set(true);
        let mut back = false;
        for _ in 0..50 {
            if let Ok(true) = closed.claim_once(&format!("after-{back}"), 30).await {
                back = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(back, "did not recover when redis returned");
    }

    #[tokio::test]
    async fn limits_in_redis_are_exact_across_handles_and_all_or_nothing() {
        use warden_core::limits::Window;
        let p = prefix();
        let a = RedisState::connect(&url(), p.clone(), Duration::from_millis(500), OnUnavailable::FailClosed)
            .await
            .unwrap();
        let b = RedisState::connect(&url(), p, Duration::from_millis(500), OnUnavailable::FailClosed)
            .await
            .unwrap();
        // Borrowed by spawned tasks: made to last the test process.
        let t: &'static _ = Box::leak(Box::new(warden_core::limits::Subject::new("{t}")));
        let rate = LimitCheck {
            subject: t,
            name: "rate",
            kind: LimitKind::Rate {
                limit: 10,
                period_ms: 60_000,
                burst: 10,
            },
        };
        let quota = LimitCheck {
            subject: t,
            name: "quota",
            kind: LimitKind::Quota {
                limit: 12,
                window: Window::Day,
            },
        };
        // 30 concurrent decisions through two handles: exactly 10 admitted.
        let mut tasks = Vec::new();
        let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
        for i in 0..30 {
            let s = if i % 2 == 0 { a.clone() } else { b.clone() };
            let checks = [rate];
            tasks.push(tokio::spawn(async move { s.limit(&checks, 0).await.unwrap()[0] }));
        }
        let mut admitted = 0;
        for t in tasks {
            let o = t.await.unwrap();
            if o.allowed {
                admitted += 1;
            } else {
                assert!(o.retry_after_secs >= 1);
                // One place every 6 s: the next one is at most 6 s away, in ms.
                assert!((4000..=6000).contains(&o.retry_after_ms), "{}", o.retry_after_ms);
            }
        }
        assert_eq!(admitted, 10);
        // All or nothing: the rate refuses, so the quota is not charged.
        let both = [rate, quota];
        let o = a.limit(&both, 0).await.unwrap();
        assert!(!o[0].allowed && o[1].allowed);
        let q = a.limit(&[quota], 0).await.unwrap()[0];
        assert_eq!(q.remaining, 11, "the refused request was counted");
        // The script's calendar (Lua) agrees with the gateway's (Rust).
        let now = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .unwrap();
        let cal = warden_core::limits::Subject::new("{t}:cal");
        for window in [Window::Hour, Window::Day, Window::Month] {
            let check = LimitCheck {
                subject: &cal,
                name: window.code(),
                kind: LimitKind::Quota { limit: 5, window },
            };
            let got = i64::try_from(a.limit(&[check], 0).await.unwrap()[0].reset_secs).unwrap();
            let want = window.at(now).1 - now;
            assert!((got - want).abs() <= 2, "{window:?}: redis {got} s, gateway {want} s");
        }
    }

    #[tokio::test]
    async fn counters_are_shared_and_expire_in_redis_and_in_memory() {
        let p = prefix();
        let a = RedisState::connect(&url(), p.clone(), Duration::from_millis(500), OnUnavailable::FailClosed)
            .await
            .unwrap();
        let b = RedisState::connect(&url(), p, Duration::from_millis(500), OnUnavailable::FailClosed)
            .await
            .unwrap();
        let m = MemoryState::default();
        for s in [&a as &dyn SharedState, &m] {
            assert_eq!(s.bump("f", 60).await.unwrap(), 1);
            assert_eq!(s.bump("f", 60).await.unwrap(), 2);
            assert_eq!(s.read("f").await.unwrap(), 2);
            s.put("lock", 7, 1).await.unwrap();
            assert_eq!(s.read("lock").await.unwrap(), 7);
            s.clear("f").await.unwrap();
            assert_eq!(s.read("f").await.unwrap(), 0);
        }
        // The other handle sees the same counters.
        assert_eq!(a.bump("shared", 60).await.unwrap(), 1);
        assert_eq!(b.bump("shared", 60).await.unwrap(), 2);
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(a.read("lock").await.unwrap(), 0, "expired in redis");
        assert_eq!(m.read("lock").await.unwrap(), 0, "expired in memory");
    }

    #[tokio::test]
    async fn maps_are_shared_between_handles_in_real_redis_and_in_memory() {
        let p = prefix();
        let a = RedisState::connect(&url(), p.clone(), Duration::from_millis(500), OnUnavailable::Local)
            .await
            .unwrap();
        let b = RedisState::connect(&url(), p, Duration::from_millis(500), OnUnavailable::Local)
            .await
            .unwrap();
        let memory = crate::MemoryState::default();
        for (set, get) in [(&a as &dyn SharedState, &b as &dyn SharedState), (&memory, &memory)] {
            set.map_set("blocks", "10.0.0.1/32", "{\"x\":1}").await.unwrap();
            set.map_set("blocks", "consumer:eve", "v").await.unwrap();
            let mut seen = get.map_entries("blocks").await.unwrap();
            seen.sort();
            assert_eq!(
                seen,
                vec![
                    ("10.0.0.1/32".into(), "{\"x\":1}".into()),
                    ("consumer:eve".into(), "v".into())
                ]
            );
            assert!(get.map_remove("blocks", "consumer:eve").await.unwrap());
            assert!(!get.map_remove("blocks", "consumer:eve").await.unwrap(), "already gone");
            assert_eq!(set.map_entries("blocks").await.unwrap().len(), 1);
            assert!(get.map_entries("other").await.unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn an_unreachable_redis_at_start_is_an_error() {
        // Nothing listens on port 1.
        let err = RedisState::connect(
            "redis://127.0.0.1:1",
            prefix(),
            Duration::from_millis(100),
            OnUnavailable::Local,
        )
        .await
        .unwrap_err();
        assert!(err.contains("127.0.0.1:1"), "{err}");
        assert_eq!(redact("redis://user:pw@h:6379/0"), "redis://user:***@h:6379/0");
    }
}
