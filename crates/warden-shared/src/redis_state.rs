//! Redis-backed state: atomic commands, Redis's own clock for expiry.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::ConnectionManager;
use warden_core::{SharedState, SharedUnavailable};

use crate::{MemoryState, OnUnavailable};

/// State in Redis.
pub struct RedisState {
    conn: ConnectionManager,
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
        Ok(Self {
            conn,
            prefix,
            timeout,
            on_unavailable,
            fallback: MemoryState::default(),
            down: AtomicBool::new(false),
        })
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

impl SharedState for RedisState {
    fn claim_once<'a>(
        &'a self,
        key: &'a str,
        ttl_secs: u64,
    ) -> Pin<Box<dyn Future<Output = Result<bool, SharedUnavailable>> + Send + 'a>> {
        Box::pin(async move {
            match self.set_nx(key, ttl_secs).await {
                Ok(won) => {
                    if self.down.swap(false, Ordering::Relaxed) {
                        tracing::info!("redis answers again; shared state is shared again");
                    }
                    Ok(won)
                }
                Err(e) => {
                    if !self.down.swap(true, Ordering::Relaxed) {
                        tracing::error!(error = %e, on_unavailable = ?self.on_unavailable, "redis unavailable");
                    }
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

    /// A TCP proxy to the test Redis that can be cut (every connection
    /// dropped, new ones refused) and restored.
    struct Cuttable {
        addr: std::net::SocketAddr,
        up: std::sync::Arc<std::sync::atomic::AtomicBool>,
        conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    }

    impl Cuttable {
        async fn start() -> Self {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
            let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let target = url().trim_start_matches("redis://").trim_end_matches('/').to_owned();
            let (up2, conns2) = (up.clone(), conns.clone());
            tokio::spawn(async move {
                while let Ok((mut client, _)) = l.accept().await {
                    if !up2.load(Ordering::SeqCst) {
                        continue; // dropped: refused
                    }
                    let target = target.clone();
                    let h = tokio::spawn(async move {
                        if let Ok(mut server) = tokio::net::TcpStream::connect(&target).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    conns2.lock().unwrap().push(h);
                }
            });
            Self { addr, up, conns }
        }

        fn set(&self, up: bool) {
            self.up.store(up, Ordering::SeqCst);
            if !up {
                for h in self.conns.lock().unwrap().drain(..) {
                    h.abort();
                }
            }
        }
    }

    #[tokio::test]
    async fn a_redis_outage_falls_back_or_fails_closed_as_configured_and_recovers() {
        let proxy = Cuttable::start().await;
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
