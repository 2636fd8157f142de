//! The gateway's live state: the current [`Runtime`] (snapshot plus upstream
//! pools) behind an `ArcSwap`, and reload, which builds a new runtime beside the
//! old one and swaps it in, or refuses it and keeps the old one serving.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arc_swap::ArcSwap;
use warden_config::schema::ListenerConfig;
use warden_config::{ConfigError, Snapshot};
use warden_core::Clock as _;

use crate::access_log::AccessLog;
use crate::metrics::Metrics;
use crate::upstream::ServicePool;

/// One consistent view: a request reads one of these from start to end.
#[derive(Debug)]
pub struct Runtime {
    /// The compiled config.
    pub snapshot: Arc<Snapshot>,
    /// Upstream pools by service name.
    pub pools: HashMap<Arc<str>, Arc<ServicePool>>,
    /// Increments on every applied reload.
    pub generation: u64,
    /// The built-in authorization server (lives as long as the gateway).
    pub oauth: Option<Arc<warden_oauth::OAuthServer>>,
}

/// What a reload did.
#[derive(Debug)]
pub struct ReloadOutcome {
    /// New generation number.
    pub generation: u64,
    /// Settings that changed but only take effect after a restart.
    pub needs_restart: Vec<String>,
}

/// State shared by every listener, connection and request.
#[derive(Debug)]
pub struct Shared {
    current: ArcSwap<Runtime>,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Access log.
    pub access_log: AccessLog,
    /// Where the config came from (for reloads).
    pub config_path: Option<PathBuf>,
    draining: AtomicBool,
    /// Requests in flight in the whole gateway (overload shedding).
    pub in_flight: std::sync::atomic::AtomicUsize,
    generation: AtomicU64,
    workers: usize,
    services: warden_core::Services,
    store: Option<warden_store::Store>,
    oauth: Option<Arc<warden_oauth::OAuthServer>>,
    reload_lock: tokio::sync::Mutex<()>,
    /// Dynamic blocks in force (from the shared state).
    pub blocks: crate::blocks::Blocklist,
}

/// What the gateway keeps for its whole life, across reloads.
#[derive(Debug, Default)]
pub struct Backends {
    /// Lent to every snapshot's policies at start.
    pub services: warden_core::Services,
    /// The store, when the config has one.
    pub store: Option<warden_store::Store>,
    /// The built-in authorization server, when configured.
    pub oauth: Option<Arc<warden_oauth::OAuthServer>>,
}

impl Shared {
    /// Builds the first runtime from `snapshot`.
    pub fn new(
        snapshot: Snapshot,
        backends: Backends,
        config_path: Option<PathBuf>,
        access_log: AccessLog,
        metrics: Arc<Metrics>,
        workers: usize,
    ) -> Arc<Self> {
        let Backends { services, store, oauth } = backends;
        snapshot.start_policies(&services);
        let pools = build_pools(&snapshot, &HashMap::new(), &metrics, workers);
        let runtime = Runtime {
            snapshot: Arc::new(snapshot),
            pools,
            generation: 1,
            oauth: oauth.clone(),
        };
        let clock: Arc<dyn warden_core::Clock> = match &services.clock {
            Some(c) => Arc::clone(c),
            None => Arc::new(warden_core::SystemClock),
        };
        let blocks = crate::blocks::Blocklist::new(services.shared.clone(), clock);
        Arc::new(Self {
            current: ArcSwap::from_pointee(runtime),
            blocks,
            metrics,
            access_log,
            config_path,
            draining: AtomicBool::new(false),
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            workers,
            services,
            store,
            oauth,
            generation: AtomicU64::new(1),
            reload_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// True when a clock was injected (tests); otherwise requests keep the
    /// system time their context was created with.
    pub fn clock_injected(&self) -> bool {
        self.services.clock.is_some()
    }

    /// Now, Unix seconds, by the gateway's clock.
    pub fn now_secs(&self) -> i64 {
        match &self.services.clock {
            Some(c) => c.now_secs(),
            None => warden_core::SystemClock.now_secs(),
        }
    }

    /// The runtime in force now.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.current.load_full()
    }

    /// True once shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Marks the gateway as draining (readiness turns 503).
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Re-reads the config file and applies it, or refuses it with every error.
    pub async fn reload_from_file(&self) -> Result<ReloadOutcome, ConfigError> {
        let Some(path) = self.config_path.clone() else {
            return Err(ConfigError::Yaml("no config file to reload from".into()));
        };
        let loaded = tokio::task::spawn_blocking(move || warden_config::load_file(&path))
            .await
            .map_err(|e| ConfigError::Yaml(format!("reload task failed: {e}")))?;
        match loaded {
            Ok(snapshot) => Ok(self.apply(snapshot).await),
            Err(e) => {
                self.metrics.reload(false);
                tracing::error!(error = %e, "config reload refused; the running config keeps serving");
                Err(e)
            }
        }
    }

    /// Swaps in an already validated snapshot, keeping unchanged pools.
    pub async fn apply(&self, snapshot: Snapshot) -> ReloadOutcome {
        let _one_at_a_time = self.reload_lock.lock().await;
        let old = self.runtime();
        let needs_restart = restart_only_changes(&old.snapshot, &snapshot);
        for what in &needs_restart {
            tracing::warn!(setting = %what, "changed setting needs a restart; the old value stays in force");
        }
        if old.snapshot.config.consumers != snapshot.config.consumers
            && let Some(store) = &self.store
        {
            match store.sync_declared_consumers(&snapshot.config.consumers).await {
                Ok(report) => tracing::info!(?report, "declared consumers updated"),
                Err(e) => tracing::error!(error = %e, "declared consumers could not be written to the store"),
            }
        }
        snapshot.start_policies(&self.services);
        let pools = build_pools(&snapshot, &old.pools, &self.metrics, self.workers);
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        self.current.store(Arc::new(Runtime {
            snapshot: Arc::new(snapshot),
            pools,
            generation,
            oauth: self.oauth.clone(),
        }));
        self.metrics.reload(true);
        tracing::info!(generation, "config reloaded");
        ReloadOutcome {
            generation,
            needs_restart,
        }
    }
}

fn build_pools(
    snapshot: &Snapshot,
    old: &HashMap<Arc<str>, Arc<ServicePool>>,
    metrics: &Arc<Metrics>,
    workers: usize,
) -> HashMap<Arc<str>, Arc<ServicePool>> {
    snapshot
        .config
        .services
        .iter()
        .map(|svc| {
            let tls = snapshot.upstream_tls.get(&svc.name);
            let stamp = tls.map(|t| t.stamp().to_vec());
            // Same config and the same TLS file contents: keep the warm pool.
            let reuse = old
                .get(svc.name.as_str())
                .filter(|p| p.config == *svc && p.tls_stamp == stamp);
            let pool = match reuse {
                Some(p) => Arc::clone(p),
                None => ServicePool::start(svc, tls.cloned(), Arc::clone(metrics), workers),
            };
            (Arc::from(svc.name.as_str()), pool)
        })
        .collect()
}

fn restart_only_changes(old: &Snapshot, new: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    let key = |ls: &[ListenerConfig]| {
        ls.iter()
            .map(|l| (l.name.clone(), l.bind.clone(), l.tls.is_some()))
            .collect::<Vec<_>>()
    };
    if key(&old.config.listeners) != key(&new.config.listeners) {
        out.push("listeners".into());
    }
    if old.config.admin != new.config.admin {
        out.push("admin".into());
    }
    if old.config.access_log != new.config.access_log {
        out.push("access_log".into());
    }
    if old.config.store != new.config.store {
        out.push("store".into());
    }
    if old.config.oauth_server != new.config.oauth_server {
        out.push("oauth_server".into());
    }
    if old.config.shared_state != new.config.shared_state {
        out.push("shared_state".into());
    }
    let (o, n) = (&old.limits, &new.limits);
    let restart_only = |l: &warden_config::schema::LimitsConfig| {
        (
            l.max_header_bytes,
            l.max_headers,
            l.header_read_timeout_ms,
            l.max_connections,
            l.max_h2_streams,
            l.max_connections_per_ip,
            l.max_h2_pending_resets,
            l.max_h2_control_frames_per_sec,
        )
    };
    if restart_only(o) != restart_only(n) {
        out.push("limits (connection-level caps)".into());
    }
    out
}
