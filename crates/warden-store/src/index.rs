//! [`StoreIndex`]: what the request path needs from the store, in memory and
//! kept in step with it: every API key's HMAC, the disabled consumers, and the
//! revoked token ids.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use warden_core::{ApiKeyVerifier, Directory, KeyOwner, KeyRefusal};

use crate::secret::ServerSecret;
use crate::{Backend, Store, StoreError, parse_key};

struct Entry {
    tag: Vec<u8>,
    owner: KeyOwner,
    consumer_active: bool,
    expires_at: Option<i64>,
    revoked: bool,
}

/// Everything a load produces, swapped in at once.
#[derive(Default)]
struct Loaded {
    keys: HashMap<Box<str>, Entry>,
    disabled: std::collections::HashSet<Box<str>>,
    /// `client_id`s of disabled OAuth clients.
    disabled_clients: std::collections::HashSet<Box<str>>,
    /// Revoked `jti` → the token's expiry.
    revoked: HashMap<Box<str>, i64>,
}

/// The request path's view of the store.
pub struct StoreIndex {
    secret: Arc<ServerSecret>,
    entries: ArcSwap<Loaded>,
    /// Store version the entries were read at (-1: never loaded).
    version: AtomicI64,
    ready: AtomicBool,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
    /// For refreshes asked for by a request with an unknown key: one at a
    /// time, at most one per [`MISS_REFRESH_EVERY`].
    store: Store,
    /// Loads are serialised, so an older read can never overwrite a newer one.
    refresh_lock: tokio::sync::Mutex<()>,
    last_miss_refresh: tokio::sync::Mutex<Option<Instant>>,
}

/// However many unknown keys arrive, the store is asked at most this often
/// on their behalf.
const MISS_REFRESH_EVERY: Duration = Duration::from_millis(200);

/// How long a request with an unknown key waits for that refresh.
const MISS_REFRESH_TIMEOUT: Duration = Duration::from_secs(1);

impl std::fmt::Debug for StoreIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreIndex")
            .field("keys", &self.entries.load().keys.len())
            .field("version", &self.version.load(Ordering::Relaxed))
            .finish()
    }
}

impl StoreIndex {
    /// Loads every key from `store`, then keeps following its changes in the
    /// background until [`StoreIndex::stop`].
    pub async fn start(store: Store) -> Result<Arc<Self>, StoreError> {
        let index = Arc::new(Self {
            secret: Arc::clone(&store.secret),
            entries: ArcSwap::from_pointee(Loaded::default()),
            version: AtomicI64::new(-1),
            ready: AtomicBool::new(false),
            tasks: std::sync::Mutex::new(Vec::new()),
            store: store.clone(),
            refresh_lock: tokio::sync::Mutex::new(()),
            last_miss_refresh: tokio::sync::Mutex::new(None),
        });
        index.refresh(&store).await?;
        let nudge = Arc::new(Notify::new());
        let mut tasks = vec![tokio::spawn(follow(
            store.clone(),
            Arc::clone(&index),
            Arc::clone(&nudge),
        ))];
        if store.backend == Backend::Postgres {
            tasks.push(tokio::spawn(listen(Arc::clone(&store.url), nudge)));
        }
        if let Ok(mut t) = index.tasks.lock() {
            *t = tasks;
        }
        Ok(index)
    }

    /// Stops following the store; the keys loaded last stay in force.
    pub fn stop(&self) {
        if let Ok(mut tasks) = self.tasks.lock() {
            for t in tasks.drain(..) {
                t.abort();
            }
        }
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.entries.load().keys.len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Re-reads the store when its change counter moved since the last read.
    pub async fn refresh(&self, store: &Store) -> Result<bool, StoreError> {
        let _one_at_a_time = self.refresh_lock.lock().await;
        // The version is read before the rows: a change landing in between
        // makes the next poll read again, never skip a change.
        let version = store.version().await?;
        if version == self.version.load(Ordering::Acquire) {
            return Ok(false);
        }
        let rows = store.index_rows().await?;
        let disabled = store.disabled_consumers().await?;
        let disabled_clients = store.disabled_clients().await?;
        let revoked = store.revoked_tokens().await?;
        let mut map = HashMap::with_capacity(rows.len());
        for row in rows {
            let Some(tag) = crate::unhex(&row.key_hmac) else {
                tracing::warn!(key = %row.prefix, "stored key hash is not hex; key ignored");
                continue;
            };
            map.insert(
                row.prefix.clone().into_boxed_str(),
                Entry {
                    tag,
                    owner: KeyOwner {
                        consumer: row.consumer.into(),
                        prefix: row.prefix.into(),
                        groups: row.groups.into_iter().map(Arc::from).collect(),
                    },
                    consumer_active: row.consumer_active,
                    expires_at: row.expires_at,
                    revoked: row.revoked,
                },
            );
        }
        let keys = map.len();
        self.entries.store(Arc::new(Loaded {
            keys: map,
            disabled: disabled.into_iter().map(String::into_boxed_str).collect(),
            disabled_clients: disabled_clients.into_iter().map(String::into_boxed_str).collect(),
            revoked: revoked
                .into_iter()
                .map(|t| (t.jti.into_boxed_str(), t.expires_at))
                .collect(),
        }));
        self.version.store(version, Ordering::Release);
        self.ready.store(true, Ordering::Release);
        tracing::debug!(version, keys, "API keys reloaded from the store");
        Ok(true)
    }
}

impl Drop for StoreIndex {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Directory for StoreIndex {
    fn token_revoked(&self, jti: &str) -> bool {
        // Entries are kept until the token's expiry; an expired token is
        // refused for its `exp` anyway.
        self.entries.load().revoked.contains_key(jti)
    }

    fn consumer_disabled(&self, consumer: &str) -> bool {
        self.entries.load().disabled.contains(consumer)
    }

    fn client_disabled(&self, client_id: &str) -> bool {
        self.entries.load().disabled_clients.contains(client_id)
    }
}

impl ApiKeyVerifier for StoreIndex {
    fn verify(&self, presented: &str, now: i64) -> Result<KeyOwner, KeyRefusal> {
        let prefix = parse_key(presented).ok_or(KeyRefusal::Malformed)?;
        let entries = self.entries.load();
        let Some(e) = entries.keys.get(prefix) else {
            // The same work as for a known prefix, so timing does not tell
            // which prefixes exist.
            let _ = self.secret.tag(presented.as_bytes());
            return Err(KeyRefusal::Unknown);
        };
        // The secret part is checked first: knowing a (public) prefix tells
        // nothing about the key's state.
        if !self.secret.verify(presented.as_bytes(), &e.tag) {
            return Err(KeyRefusal::Unknown);
        }
        if e.revoked {
            return Err(KeyRefusal::Revoked);
        }
        if e.expires_at.is_some_and(|x| x <= now) {
            return Err(KeyRefusal::Expired);
        }
        if !e.consumer_active {
            return Err(KeyRefusal::ConsumerDisabled);
        }
        Ok(e.owner.clone())
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    fn refresh_on_miss(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            // Never queue behind another refresh: with a slow database a
            // spray of unknown keys would otherwise pile requests up.
            let Ok(mut last) = self.last_miss_refresh.try_lock() else {
                return;
            };
            if last.is_some_and(|t| t.elapsed() < MISS_REFRESH_EVERY) {
                return;
            }
            *last = Some(Instant::now());
            // Only a version query unless something changed; an error or a
            // slow answer keeps the current keys (the follower logs outages).
            let _ = tokio::time::timeout(MISS_REFRESH_TIMEOUT, self.refresh(&self.store)).await;
        })
    }
}

/// Polls the change counter (and wakes early when PostgreSQL announces a
/// change); reloads when it moved. A store outage keeps the last keys.
async fn follow(store: Store, index: Arc<StoreIndex>, nudge: Arc<Notify>) {
    let mut failing = false;
    loop {
        tokio::select! {
            () = nudge.notified() => {}
            () = tokio::time::sleep(store.poll) => {}
        }
        match index.refresh(&store).await {
            Ok(_) if failing => {
                failing = false;
                tracing::info!("store reachable again; API keys are current");
            }
            Ok(_) => {}
            Err(e) if !failing => {
                failing = true;
                tracing::error!(error = %e, "cannot read the store; serving the API keys loaded last");
            }
            Err(_) => {}
        }
    }
}

/// Wakes the follower on every `NOTIFY warden_store`. sqlx reconnects the
/// listener by itself; while it is down, polling carries on.
async fn listen(url: Arc<str>, nudge: Arc<Notify>) {
    loop {
        match sqlx::postgres::PgListener::connect(&url).await {
            Ok(mut l) => match l.listen(crate::db::CHANNEL).await {
                Ok(()) => loop {
                    match l.recv().await {
                        Ok(_) => nudge.notify_one(),
                        Err(e) => {
                            tracing::warn!(error = %e, "store change listener lost its connection");
                            break;
                        }
                    }
                },
                Err(e) => tracing::warn!(error = %e, "cannot LISTEN for store changes"),
            },
            Err(e) => tracing::warn!(error = %e, "cannot connect the store change listener"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
