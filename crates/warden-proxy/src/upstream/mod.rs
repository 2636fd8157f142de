//! Upstream services: a pool of targets per service, target selection
//! (round-robin or power-of-two-choices on in-flight requests), passive ejection,
//! active health checks, and the pooled HTTP client that reaches them.
//!
//! Pools live across reloads: a reload reuses the pool of every service whose
//! config did not change, so health state and warm connections survive.

mod h1;
mod h1pool;
mod health;
mod send;

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http::uri::Authority;
use hyper_rustls::{FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::ServerName;
use warden_config::schema::{Balance, ServiceConfig, UpstreamProtocol};
use warden_tls::UpstreamTls;

use crate::body::ProxyBody;
use crate::metrics::Metrics;

pub(crate) use h1::Upgraded;
pub use send::{Outgoing, SendError, Sent, send};

/// Whether the ejection stored in `until` (0: none) is still on, reading
/// the time with `clock` only when there is one and at most once per `now`.
/// An ejection found over is cleared; a newer one stored meanwhile stays.
fn ejection_on(until: &AtomicU64, now: &Cell<Option<u64>>, clock: impl FnOnce() -> u64) -> bool {
    let at = until.load(Ordering::Relaxed);
    if at == 0 {
        return false;
    }
    let t = now.get().unwrap_or_else(|| {
        let t = clock();
        now.set(Some(t));
        t
    });
    if at > t {
        return true;
    }
    let _ = until.compare_exchange(at, 0, Ordering::Relaxed, Ordering::Relaxed);
    false
}

/// One upstream target and its health.
#[derive(Debug)]
pub struct Target {
    /// `host:port`.
    pub authority: Authority,
    inflight: AtomicUsize,
    failures: AtomicU32,
    /// Milliseconds since the pool's epoch until which the target is ejected.
    ejected_until_ms: AtomicU64,
    active_up: AtomicBool,
    streak_ok: AtomicU32,
    streak_fail: AtomicU32,
}

impl Target {
    fn new(authority: Authority) -> Self {
        Self {
            authority,
            inflight: AtomicUsize::new(0),
            failures: AtomicU32::new(0),
            ejected_until_ms: AtomicU64::new(0),
            active_up: AtomicBool::new(true),
            streak_ok: AtomicU32::new(0),
            streak_fail: AtomicU32::new(0),
        }
    }

    /// Requests in flight to this target.
    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::Relaxed)
    }
}

/// The pool of one service.
#[derive(Debug)]
pub struct ServicePool {
    /// Service name.
    pub name: Arc<str>,
    /// The config the pool was built from (reused on reload when equal).
    pub config: ServiceConfig,
    /// Targets in config order.
    pub targets: Vec<Target>,
    clients: Vec<Client<HttpsConnector<HttpConnector>, ProxyBody>>,
    /// TLS for this worker's own HTTP/1.1 connections, when the service has `tls`.
    pub(crate) tls: Option<UpstreamLink>,
    /// The TLS material the pool was built with (reused on reload only when equal).
    pub tls_stamp: Option<Vec<Option<(u64, usize)>>>,
    /// Own HTTP/1.1 pools, `[worker slot][target]`.
    h1: Vec<Vec<h1pool::H1Pool>>,
    next: AtomicUsize,
    epoch: Instant,
    metrics: Arc<Metrics>,
}

/// How HTTP/1.1 pool connections do TLS to a service's targets.
#[derive(Debug, Clone)]
pub(crate) struct UpstreamLink {
    /// Client config offering ALPN `http/1.1`.
    pub config: Arc<rustls::ClientConfig>,
    /// Fixed name for SNI and verification; else the target's host.
    pub server_name: Option<ServerName<'static>>,
}

/// The legacy client's connector: TLS when the service has `tls` (HTTPS
/// only, SNI as configured), else clear text.
fn connector(config: &ServiceConfig, tls: Option<&UpstreamTls>) -> HttpsConnector<HttpConnector> {
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(Duration::from_millis(config.timeouts.connect_ms)));
    http.set_nodelay(true);
    http.enforce_http(tls.is_none());
    let builder = HttpsConnectorBuilder::new();
    let schemes = match tls {
        Some(t) => {
            let b = builder.with_tls_config(t.base_config()).https_only();
            match t.server_name.as_ref() {
                Some(name) => b.with_server_name_resolver(FixedServerNameResolver::new(name.clone())),
                None => b,
            }
        }
        None => builder.with_tls_config(UpstreamTls::trust_nothing()).https_or_http(),
    };
    match config.protocol {
        UpstreamProtocol::Http1 => schemes.enable_http1().wrap_connector(http),
        UpstreamProtocol::Http2 => schemes.enable_http2().wrap_connector(http),
    }
}

/// Tracks one in-flight request to a target; decrements on drop. (An
/// HTTP/1.1 connection goes back to the pool from the response body itself,
/// as soon as the upstream's response is read to the end.)
#[derive(Debug)]
pub struct InflightGuard {
    pool: Arc<ServicePool>,
    index: usize,
}

impl InflightGuard {
    /// The target's index in the pool.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The target.
    pub fn target(&self) -> &Target {
        &self.pool.targets[self.index]
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.pool.targets[self.index].inflight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ServicePool {
    /// Builds the pool and, when configured, starts its active health checker.
    /// Targets must already be validated `host:port` strings.
    pub fn start(
        config: &ServiceConfig,
        tls: Option<Arc<UpstreamTls>>,
        metrics: Arc<Metrics>,
        workers: usize,
    ) -> Arc<Self> {
        let targets = config
            .targets
            .iter()
            .filter_map(|t| t.parse::<Authority>().ok())
            .map(Target::new)
            .collect();
        let connector = connector(config, tls.as_deref());
        let tls_stamp = tls.as_ref().map(|t| t.stamp().to_vec());
        let clients = (0..=workers)
            .map(|_| {
                Client::builder(TokioExecutor::new())
                    .pool_timer(TokioTimer::new())
                    .timer(TokioTimer::new())
                    .pool_idle_timeout(Duration::from_secs(config.pool.idle_timeout_secs))
                    .pool_max_idle_per_host(config.pool.max_idle_per_target)
                    .http2_only(config.protocol == UpstreamProtocol::Http2)
                    .build(connector.clone())
            })
            .collect();
        let target_count = config.targets.len();
        let h1 = (0..=workers)
            .map(|_| {
                (0..target_count)
                    .map(|_| {
                        h1pool::H1Pool::new(
                            config.pool.max_idle_per_target,
                            Duration::from_secs(config.pool.idle_timeout_secs),
                        )
                    })
                    .collect()
            })
            .collect();
        let pool = Arc::new(Self {
            name: Arc::from(config.name.as_str()),
            config: config.clone(),
            targets,
            clients,
            tls_stamp,
            tls: tls.map(|t| UpstreamLink {
                config: t.client_config(b"http/1.1"),
                server_name: t.server_name.clone(),
            }),
            h1,
            next: AtomicUsize::new(0),
            epoch: Instant::now(),
            metrics,
        });
        for i in 0..pool.targets.len() {
            pool.publish_health(i);
        }
        if let Some(active) = &config.health.active {
            health::spawn_active(Arc::downgrade(&pool), active.clone());
        }
        health::spawn_reaper(
            Arc::downgrade(&pool),
            Duration::from_secs(config.pool.idle_timeout_secs),
        );
        pool
    }

    /// The calling worker's own HTTP/1.1 pool for target `index`.
    pub(crate) fn h1_pool(&self, index: usize) -> &h1pool::H1Pool {
        &self.h1[crate::worker::slot() % self.h1.len()][index]
    }

    /// Drops idle HTTP/1.1 connections past their idle timeout (every slot).
    pub(crate) fn reap_idle(&self) {
        for slot in &self.h1 {
            for p in slot {
                p.clear_expired();
            }
        }
    }

    /// `https` for TLS services, else `http`.
    pub(crate) fn scheme(&self) -> http::uri::Scheme {
        if self.tls.is_some() {
            http::uri::Scheme::HTTPS
        } else {
            http::uri::Scheme::HTTP
        }
    }

    /// The HTTP client of the calling worker.
    pub(crate) fn client(&self) -> &Client<HttpsConnector<HttpConnector>, ProxyBody> {
        &self.clients[crate::worker::slot() % self.clients.len()]
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// True when the target may receive traffic.
    pub fn is_healthy(&self, index: usize) -> bool {
        self.healthy_at(index, &Cell::new(None))
    }

    /// [`Self::is_healthy`], reading the clock only for a target under an
    /// ejection, and at most once for all the targets checked with the same
    /// `now`. An ejection found over is cleared, so the targets of a healthy
    /// service cost no clock read at all.
    fn healthy_at(&self, index: usize, now: &Cell<Option<u64>>) -> bool {
        let t = &self.targets[index];
        t.active_up.load(Ordering::Relaxed) && !ejection_on(&t.ejected_until_ms, now, || self.now_ms())
    }

    /// Picks a healthy target not in `exclude`; `None` when none is left.
    /// Allocates nothing: candidates are counted, then the k-th is taken.
    pub fn pick(self: &Arc<Self>, exclude: &[usize]) -> Option<InflightGuard> {
        let now = Cell::new(None);
        let eligible = |i: &usize| !exclude.contains(i) && self.healthy_at(*i, &now);
        let nth = |k: usize| (0..self.targets.len()).filter(eligible).nth(k);
        let n = (0..self.targets.len()).filter(eligible).count();
        let index = match (n, self.config.balance) {
            (0, _) => return None,
            (1, _) => nth(0)?,
            (n, Balance::RoundRobin) => nth(self.next.fetch_add(1, Ordering::Relaxed) % n)?,
            (n, Balance::LeastOutstanding) => {
                // Two distinct random candidates; the less busy one wins.
                let ka = rand::random_range(0..n);
                let kb = (ka + 1 + rand::random_range(0..n - 1)) % n;
                let (a, b) = (nth(ka)?, nth(kb)?);
                if self.targets[b].inflight() < self.targets[a].inflight() {
                    b
                } else {
                    a
                }
            }
        };
        self.targets[index].inflight.fetch_add(1, Ordering::Relaxed);
        Some(InflightGuard {
            pool: Arc::clone(self),
            index,
        })
    }

    /// Live traffic to `index` succeeded.
    pub fn record_success(&self, index: usize) {
        self.targets[index].failures.store(0, Ordering::Relaxed);
    }

    /// Live traffic to `index` failed (connect error, timeout or 5xx); ejects
    /// the target after `consecutive_failures` in a row.
    pub fn record_failure(&self, index: usize) {
        let passive = &self.config.health.passive;
        if passive.consecutive_failures == 0 {
            return;
        }
        let t = &self.targets[index];
        let n = t.failures.fetch_add(1, Ordering::Relaxed) + 1;
        // Never eject the last healthy target: failures a client can provoke
        // (a request the app answers with 500) must not take a whole service out.
        let others_healthy = (0..self.targets.len()).any(|i| i != index && self.is_healthy(i));
        if n >= passive.consecutive_failures && !others_healthy {
            t.failures.store(0, Ordering::Relaxed);
            tracing::warn!(service = %self.name, target = %t.authority, failures = n, "last healthy target failing; not ejected");
        } else if n >= passive.consecutive_failures {
            t.failures.store(0, Ordering::Relaxed);
            let until = self.now_ms() + passive.cooldown_secs * 1000;
            t.ejected_until_ms.store(until, Ordering::Relaxed);
            tracing::warn!(service = %self.name, target = %t.authority, failures = n, cooldown_secs = passive.cooldown_secs, "target ejected");
            self.metrics.ejections.get_or_create(&self.labels(index)).inc();
        }
        self.publish_health(index);
    }

    fn labels(&self, index: usize) -> crate::metrics::TargetLabels {
        crate::metrics::TargetLabels {
            service: self.name.to_string(),
            target: self.targets[index].authority.to_string(),
        }
    }

    fn publish_health(&self, index: usize) {
        let up = i64::from(self.is_healthy(index));
        self.metrics.upstream_healthy.get_or_create(&self.labels(index)).set(up);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ejection_holds_until_its_time_and_is_cleared_after() {
        let never = || -> u64 { panic!("no clock read without an ejection") };
        assert!(!ejection_on(&AtomicU64::new(0), &Cell::new(None), never));

        let until = AtomicU64::new(500);
        assert!(ejection_on(&until, &Cell::new(None), || 100));
        assert_eq!(until.load(Ordering::Relaxed), 500);
        assert!(!ejection_on(&until, &Cell::new(None), || 600));
        assert_eq!(until.load(Ordering::Relaxed), 0, "an ejection found over is cleared");

        // One clock read serves every target checked with the same `now`.
        let (a, b) = (AtomicU64::new(500), AtomicU64::new(700));
        let now = Cell::new(None);
        assert!(!ejection_on(&a, &now, || 600));
        assert!(ejection_on(&b, &now, never));

        // A newer ejection stored between the load and the clearing stays.
        let until = AtomicU64::new(500);
        let racing = || {
            until.store(9_000, Ordering::Relaxed);
            600
        };
        assert!(!ejection_on(&until, &Cell::new(None), racing));
        assert_eq!(until.load(Ordering::Relaxed), 9_000);
    }
}
