//! Active health checks: a task per pool probes every target with `GET path`
//! on its interval. `unhealthy_threshold` failures in a row take a target out;
//! `healthy_threshold` successes in a row bring it back. The task holds only a
//! weak reference, so it ends when a reload drops the pool.

use std::sync::Weak;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http::{Method, Request, Uri};
use warden_config::schema::ActiveHealthConfig;

use super::ServicePool;
use crate::body::empty;

pub(super) fn spawn_active(pool: Weak<ServicePool>, cfg: ActiveHealthConfig) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(cfg.interval_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(pool) = pool.upgrade() else { return };
            let probes = (0..pool.targets.len()).map(|i| probe(&pool, i, &cfg));
            let results = futures_util::future::join_all(probes).await;
            for (i, ok) in results.into_iter().enumerate() {
                pool.record_probe(i, ok, &cfg);
            }
        }
    });
}

/// Closes idle upstream connections past their idle timeout, even when no
/// traffic comes to take them; ends with the pool.
pub(super) fn spawn_reaper(pool: Weak<ServicePool>, idle: Duration) {
    tokio::spawn(async move {
        let every = (idle / 2).max(Duration::from_secs(1));
        loop {
            tokio::time::sleep(every).await;
            let Some(pool) = pool.upgrade() else { return };
            pool.reap_idle();
        }
    });
}

async fn probe(pool: &ServicePool, index: usize, cfg: &ActiveHealthConfig) -> bool {
    let uri = format!("{}://{}{}", pool.scheme(), pool.targets[index].authority, cfg.path);
    let Ok(uri) = uri.parse::<Uri>() else { return false };
    let mut req = Request::new(empty());
    *req.method_mut() = Method::GET;
    *req.uri_mut() = uri;
    if pool.config.protocol == warden_config::schema::UpstreamProtocol::Http2 {
        *req.version_mut() = http::Version::HTTP_2;
    }
    let timeout = Duration::from_millis(cfg.timeout_ms);
    match tokio::time::timeout(timeout, pool.client().request(req)).await {
        Ok(Ok(resp)) => {
            let ok = resp.status().is_success() || resp.status().is_redirection();
            drop(resp);
            ok
        }
        _ => false,
    }
}

impl ServicePool {
    fn record_probe(&self, index: usize, ok: bool, cfg: &ActiveHealthConfig) {
        let t = &self.targets[index];
        if ok {
            t.streak_fail.store(0, Ordering::Relaxed);
            let n = t.streak_ok.fetch_add(1, Ordering::Relaxed) + 1;
            if n >= cfg.healthy_threshold && !t.active_up.swap(true, Ordering::Relaxed) {
                // A target the probe brings back also leaves passive ejection.
                t.ejected_until_ms.store(0, Ordering::Relaxed);
                tracing::info!(service = %self.name, target = %t.authority, "target healthy again");
            }
        } else {
            t.streak_ok.store(0, Ordering::Relaxed);
            let n = t.streak_fail.fetch_add(1, Ordering::Relaxed) + 1;
            if n >= cfg.unhealthy_threshold && t.active_up.swap(false, Ordering::Relaxed) {
                tracing::warn!(service = %self.name, target = %t.authority, "target failed health checks");
            }
        }
        self.publish_health(index);
    }
}
