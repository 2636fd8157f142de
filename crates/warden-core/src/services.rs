//! [`Services`]: what a running gateway lends its policies when it starts them
//! (things that outlive one config snapshot, such as the store's credential
//! index), and the small traits those services implement.
//!
//! Policies depend on these traits only; the store crate implements them.

use std::sync::Arc;

/// Long-lived services handed to [`crate::Policy::start`].
#[derive(Clone, Default)]
pub struct Services {
    /// API-key verification against the store, when the gateway has a store.
    pub api_keys: Option<Arc<dyn ApiKeyVerifier>>,
    /// Revoked tokens and disabled consumers, when the gateway has a store.
    pub directory: Option<Arc<dyn Directory>>,
    /// The built-in authorization server's keys, when it is configured.
    pub local_issuer: Option<Arc<dyn LocalIssuer>>,
    /// State shared by every gateway of a cluster (Redis), or by this process
    /// only (memory). Without it, policies use process memory.
    pub shared: Option<Arc<dyn SharedState>>,
    /// The wall clock requests are stamped with (`None`: the system clock).
    pub clock: Option<Arc<dyn crate::Clock>>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("api_keys", &self.api_keys.is_some())
            .field("directory", &self.directory.is_some())
            .field("local_issuer", &self.local_issuer.is_some())
            .field("shared", &self.shared.is_some())
            .field("clock", &self.clock)
            .finish()
    }
}

/// Checks presented API keys. Runs on the request path: implementations answer
/// from memory, never from the database.
pub trait ApiKeyVerifier: Send + Sync + 'static {
    /// Verifies `presented` at `now` (Unix seconds).
    fn verify(&self, presented: &str, now: i64) -> Result<KeyOwner, KeyRefusal>;

    /// False until the first load from the store has completed.
    fn is_ready(&self) -> bool;

    /// Called after an unknown key: re-reads the store if it changed since
    /// the last load (rate-limited), so a key created a moment ago works on
    /// its first request. The default does nothing.
    fn refresh_on_miss(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async {})
    }
}

/// Revocations that apply to every credential kind. Answers from memory.
pub trait Directory: Send + Sync + 'static {
    /// True when the token with this `jti` was revoked (and has not expired).
    fn token_revoked(&self, jti: &str) -> bool;

    /// True when a consumer of this name exists in the store and is disabled.
    fn consumer_disabled(&self, consumer: &str) -> bool;

    /// True when an OAuth client of the built-in authorization server with
    /// this `client_id` is disabled: the tokens it already holds stop working.
    fn client_disabled(&self, client_id: &str) -> bool {
        let _ = client_id;
        false
    }
}

/// Fast state every gateway of a cluster sees: one-time claims now (replay
/// caches), counters with the rate-limit work.
pub trait SharedState: Send + Sync + 'static {
    /// Claims `key` for `ttl_secs`: `Ok(true)` the first time, `Ok(false)`
    /// while an earlier claim lives. `Err` when the shared store cannot answer
    /// and its configuration says to fail closed.
    fn claim_once<'a>(
        &'a self,
        key: &'a str,
        ttl_secs: u64,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, SharedUnavailable>> + Send + 'a>>;

    /// Applies `checks` to one request, all or nothing: when every check
    /// admits it, each one counts it; when any refuses, none does. One
    /// outcome per check, in order. `now_ms` is the gateway's clock; a
    /// shared backend uses its own clock instead, so node clocks do not
    /// matter. `Err` when the backend cannot answer: the caller decides
    /// (local fallback or fail closed).
    fn limit<'a>(
        &'a self,
        checks: &'a [crate::limits::LimitCheck<'a>],
        now_ms: i64,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<crate::limits::Outcomes, SharedUnavailable>> + Send + 'a>,
    >;

    /// [`SharedState::limit`] answered without waiting, by a store that
    /// lives in this process; `None` (the default) when the answer needs
    /// I/O, and the caller then awaits `limit`. Saves the boxed future on
    /// the in-memory store, which every rate-limited request goes through.
    fn limit_now(&self, checks: &[crate::limits::LimitCheck<'_>], now_ms: i64) -> Option<crate::limits::Outcomes> {
        let _ = (checks, now_ms);
        None
    }

    /// Adds 1 to counter `key` (created at 0 with a lifetime of `ttl_secs`;
    /// the lifetime is not extended) and returns the new value.
    fn bump<'a>(&'a self, key: &'a str, ttl_secs: u64) -> SharedFuture<'a, u64>;

    /// The value under `key` (0 when absent or expired).
    fn read<'a>(&'a self, key: &'a str) -> SharedFuture<'a, u64>;

    /// Sets `key` to `value` for `ttl_secs`.
    fn put<'a>(&'a self, key: &'a str, value: u64, ttl_secs: u64) -> SharedFuture<'a, ()>;

    /// Removes `key`.
    fn clear<'a>(&'a self, key: &'a str) -> SharedFuture<'a, ()>;

    /// Sets `field` of the small shared map `map` (dynamic blocks) to `value`.
    /// Always the shared backend: no local fallback (a change that only one
    /// node saw would be a silent split).
    fn map_set<'a>(&'a self, map: &'a str, field: &'a str, value: &'a str) -> SharedFuture<'a, ()>;

    /// Removes `field` from `map`; true when it was there.
    fn map_remove<'a>(&'a self, map: &'a str, field: &'a str) -> SharedFuture<'a, bool>;

    /// Every `(field, value)` of `map`, in no particular order.
    fn map_entries<'a>(&'a self, map: &'a str) -> SharedFuture<'a, Vec<(String, String)>>;
}

/// What the shared state's counter operations return.
pub type SharedFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, SharedUnavailable>> + Send + 'a>>;

/// The shared store could not answer (and the policy must fail closed).
#[derive(Debug, Clone, thiserror::Error)]
#[error("shared state unavailable: {0}")]
pub struct SharedUnavailable(pub String);

/// The built-in authorization server, as token verifiers see it.
pub trait LocalIssuer: Send + Sync + 'static {
    /// Its `iss`.
    fn issuer(&self) -> &str;

    /// Its published keys as a JWK Set document, and a number that changes
    /// whenever they do.
    fn jwks(&self) -> (u64, Arc<serde_json::Value>);

    /// A token named a key this process does not know (another gateway may
    /// have just made it): re-read the keys, rate-limited. Default: nothing.
    fn refresh_keys(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async {})
    }
}

impl std::fmt::Debug for dyn LocalIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LocalIssuer({})", self.issuer())
    }
}

/// Who an accepted API key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwner {
    /// Consumer name.
    pub consumer: Arc<str>,
    /// The key's public prefix (safe to log).
    pub prefix: Arc<str>,
    /// The consumer's groups.
    pub groups: Arc<[Arc<str>]>,
}

/// Why a presented API key was refused. The client is told only that the key
/// is not valid; the reason goes to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    /// Not shaped like a Warden key.
    Malformed,
    /// No key with that prefix, or the secret part does not match.
    Unknown,
    /// Past its expiry.
    Expired,
    /// Revoked.
    Revoked,
    /// The owning consumer is disabled.
    ConsumerDisabled,
}

impl KeyRefusal {
    /// Stable reason code for logs and metrics.
    pub fn code(self) -> &'static str {
        match self {
            Self::Malformed => "api_key_malformed",
            Self::Unknown => "api_key_unknown",
            Self::Expired => "api_key_expired",
            Self::Revoked => "api_key_revoked",
            Self::ConsumerDisabled => "consumer_disabled",
        }
    }
}
