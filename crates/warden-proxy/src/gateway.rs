//! [`Gateway`]: binds the listeners, starts the admin listener and the config
//! watcher, and shuts everything down in order.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use warden_config::schema::AccessLogConfig;
use warden_config::{ConfigError, Snapshot};

use crate::access_log::{AccessLog, AccessLogSink};
use crate::state::{ReloadOutcome, Shared};

/// How to start a gateway besides its config.
#[derive(Debug, Clone, Default)]
pub struct GatewayOptions {
    /// The file the config came from; enables reloads.
    pub config_path: Option<PathBuf>,
    /// Poll the config file for changes at this interval and reload on change.
    pub watch_interval: Option<Duration>,
    /// Overrides the config's `access_log` (tests use a memory sink).
    pub access_log: Option<AccessLogSink>,
    /// Worker runtimes that serve connections, one per core; empty: the
    /// runtime that calls [`Gateway::start`] serves everything.
    pub workers: Vec<tokio::runtime::Handle>,
    /// The wall clock requests are stamped with; `None`: the system clock
    /// (tests inject a [`warden_core::ManualClock`]).
    pub clock: Option<Arc<dyn warden_core::Clock>>,
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    shared: Arc<Shared>,
    listeners: Vec<SocketAddr>,
    admin: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    keys: Option<Arc<warden_store::StoreIndex>>,
    oauth: Option<Arc<warden_oauth::OAuthServer>>,
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not be bound.
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind {
        /// Which listener.
        what: String,
        /// Address.
        addr: String,
        /// OS error.
        source: std::io::Error,
    },
    /// The access log could not be opened.
    #[error("cannot open access log: {0}")]
    AccessLog(std::io::Error),
    /// The shared state (Redis) could not be reached.
    #[error("cannot open the shared state: {0}")]
    SharedState(String),
    /// The store could not be opened or read.
    #[error("cannot open the store: {0}")]
    Store(warden_store::StoreError),
}

async fn bind(what: &str, addr: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).await.map_err(|source| StartError::Bind {
        what: what.into(),
        addr: addr.into(),
        source,
    })
}

impl Gateway {
    /// Binds everything and starts serving `snapshot`.
    pub async fn start(snapshot: Snapshot, opts: GatewayOptions) -> Result<Self, StartError> {
        let sink = opts
            .access_log
            .clone()
            .unwrap_or_else(|| match &snapshot.config.access_log {
                AccessLogConfig::Stdout => AccessLogSink::Stdout,
                AccessLogConfig::Off => AccessLogSink::Off,
                AccessLogConfig::File(p) => AccessLogSink::File(p.into()),
            });
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let access_log = AccessLog::start(sink, metrics.access_log_dropped.clone()).map_err(StartError::AccessLog)?;
        let mut bound = Vec::new();
        for l in &snapshot.config.listeners {
            let socket = bind(&format!("listener `{}`", l.name), &l.bind).await?;
            bound.push((socket, Arc::<str>::from(l.name.as_str())));
        }
        let admin_listener = match &snapshot.config.admin.bind {
            Some(addr) => Some(bind("admin listener", addr).await?),
            None => None,
        };
        let store = match &snapshot.config.store {
            Some(config) => {
                let store = warden_store::Store::open(config).await.map_err(StartError::Store)?;
                tracing::info!(backend = ?store.backend(), "store opened");
                let report = store
                    .sync_declared_consumers(&snapshot.config.consumers)
                    .await
                    .map_err(StartError::Store)?;
                tracing::info!(?report, "declared consumers in the store");
                Some(store)
            }
            None => None,
        };
        let keys = match &store {
            Some(store) => Some(
                warden_store::StoreIndex::start(store.clone())
                    .await
                    .map_err(StartError::Store)?,
            ),
            None => None,
        };
        let shared = warden_shared::open(&snapshot.config.shared_state)
            .await
            .map_err(StartError::SharedState)?;
        let oauth = match (&snapshot.config.oauth_server, &store) {
            (Some(cfg), Some(store)) => Some(
                warden_oauth::OAuthServer::start(cfg.clone(), store.clone(), Arc::clone(&shared))
                    .await
                    .map_err(StartError::Store)?,
            ),
            _ => None,
        };
        let services = warden_core::Services {
            api_keys: keys.clone().map(|k| k as Arc<dyn warden_core::ApiKeyVerifier>),
            directory: keys.clone().map(|k| k as Arc<dyn warden_core::Directory>),
            local_issuer: oauth.clone().map(|o| o as Arc<dyn warden_core::LocalIssuer>),
            shared: Some(shared),
            clock: opts.clock.clone(),
        };
        let shared = Shared::new(
            snapshot,
            crate::state::Backends {
                services,
                store: store.clone(),
                oauth: oauth.clone(),
            },
            opts.config_path.clone(),
            access_log,
            metrics,
            opts.workers.len(),
        );
        let workers = Arc::new(opts.workers.clone());
        let (shutdown, rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut listeners = Vec::new();
        for (l, name) in bound {
            if let Ok(addr) = l.local_addr() {
                listeners.push(addr);
            }
            tasks.push(tokio::spawn(crate::listener::serve(
                l,
                name,
                Arc::clone(&shared),
                Arc::clone(&workers),
                rx.clone(),
            )));
        }
        let refresh = Duration::from_millis(shared.runtime().snapshot.config.shared_state.block_refresh_ms);
        tasks.push(tokio::spawn(crate::blocks::refresh_loop(
            Arc::downgrade(&shared),
            refresh,
            rx.clone(),
        )));
        let admin = admin_listener.as_ref().and_then(|l| l.local_addr().ok());
        if let Some(l) = admin_listener {
            tasks.push(tokio::spawn(crate::admin::serve(l, Arc::clone(&shared), rx.clone())));
        }
        if let Some(every) = opts.watch_interval {
            // Stamp the file now, not when the task first runs, so a change made
            // right after start is still seen as a change.
            let config = opts.config_path.map(|p| {
                let first = file_stamp(&p);
                (p, first)
            });
            tokio::spawn(watch_files(config, every, Arc::downgrade(&shared), rx));
        }
        tracing::info!(listeners = ?listeners, admin = ?admin, "warden started");
        Ok(Self {
            shared,
            listeners,
            admin,
            shutdown,
            tasks,
            keys,
            oauth,
        })
    }

    /// Bound addresses of the client listeners, in config order.
    pub fn listener_addrs(&self) -> &[SocketAddr] {
        &self.listeners
    }

    /// Bound address of the admin listener.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
    }

    /// The shared state (runtime, metrics).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Reloads from the config file (SIGHUP, file change).
    pub async fn reload(&self) -> Result<ReloadOutcome, ConfigError> {
        self.shared.reload_from_file().await
    }

    /// Stops accepting, drains in-flight requests (bounded by
    /// `limits.drain_timeout_secs`), and returns when every listener is done.
    pub async fn shutdown(self) {
        self.shared.start_draining();
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        if let Some(keys) = &self.keys {
            keys.stop();
        }
        if let Some(oauth) = &self.oauth {
            oauth.stop();
        }
        tracing::info!("warden stopped");
    }
}

/// Modification time, size and FNV-1a hash of a file's contents.
type Stamp = (SystemTime, u64, u64);

fn file_stamp(p: &std::path::Path) -> Option<Stamp> {
    let meta = std::fs::metadata(p).ok()?;
    let text = std::fs::read(p).ok()?;
    let hash = text.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    });
    Some((meta.modified().ok()?, meta.len(), hash))
}

/// Polls the config file (when there is one) and every listener's TLS files.
/// A changed config file is reloaded (a refused reload leaves the old config
/// serving); changed certificate, key, CA or CRL files are re-read into the
/// listener's TLS config (unusable new files leave the old ones serving).
async fn watch_files(
    mut config: Option<(PathBuf, Option<Stamp>)>,
    every: Duration,
    shared: std::sync::Weak<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut last_upstream_try: Option<u64> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        let Some(shared) = shared.upgrade() else { return };
        if let Some((path, last)) = config.as_mut() {
            let now = file_stamp(path);
            if now.is_some() && now != *last {
                *last = now;
                tracing::info!(path = %path.display(), "config file changed; reloading");
                let _ = shared.reload_from_file().await;
            }
        }
        // File reads and certificate parsing stay off the async threads.
        let rt = shared.runtime();
        let Ok(upstream) = tokio::task::spawn_blocking(move || refresh_tls(&rt)).await else {
            continue;
        };
        // Try each new state of the upstream files once: a refused reload
        // (say, a half-copied key) is not retried until the files change again.
        if let Some(state) = upstream
            && config.is_some()
            && last_upstream_try != Some(state)
        {
            last_upstream_try = Some(state);
            tracing::info!("upstream TLS files changed; reloading");
            let _ = shared.reload_from_file().await;
        }
    }
}

/// Re-reads changed listener TLS files. When an upstream TLS file changed
/// (those are applied by a config reload, which rebuilds the affected pools),
/// returns a digest of the current upstream file states.
fn refresh_tls(rt: &crate::state::Runtime) -> Option<u64> {
    for l in &rt.snapshot.listeners {
        let Some(tls) = &l.tls else { continue };
        match tls.refresh() {
            Ok(true) => tracing::info!(listener = %l.name, "TLS files changed; new handshakes use them"),
            Ok(false) => {}
            Err(problems) => {
                let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
                tracing::error!(listener = %l.name, problems = ?list, "changed TLS files refused; the previous certificates keep serving");
            }
        }
    }
    if !rt.snapshot.upstream_tls.values().any(|t| t.files_changed()) {
        return None;
    }
    let mut names: Vec<&String> = rt.snapshot.upstream_tls.keys().collect();
    names.sort();
    let mut digest = std::collections::hash_map::DefaultHasher::new();
    for n in names {
        std::hash::Hash::hash(n, &mut digest);
        if let Some(t) = rt.snapshot.upstream_tls.get(n) {
            std::hash::Hash::hash(&t.current_stamp(), &mut digest);
        }
    }
    Some(std::hash::Hasher::finish(&digest))
}
