//! Warden's store: consumers and their API keys (OAuth clients and issued
//! tokens come next), on SQLite by default or PostgreSQL for a cluster.
//!
//! - [`StoreConfig`] is the `store:` section of the config file.
//! - [`Store`] opens the database (creating the SQLite file on first run),
//!   applies the migrations for its backend, and checks the server secret.
//! - [`StoreIndex`] is the request path's view: every API key's HMAC in memory,
//!   reloaded when the store's change counter moves (polled, and on
//!   PostgreSQL also pushed by `LISTEN/NOTIFY`), so changes made by the CLI or
//!   another gateway reach this one without a restart.
//!
//! Keys are never stored: only HMAC-SHA-256 of the key under the server
//! secret, which lives in a file outside the database. The store records an
//! identifier of that secret and refuses to open under a different one.

mod config;
mod consumers;
mod db;
mod index;
mod keys;
mod oauth;
mod refresh;
mod secret;
#[doc(hidden)]
pub mod testing;
mod tokens;

pub use config::{Backend, StoreConfig};
pub use consumers::{Consumer, ConsumerStatus, DeclaredConsumer, NewConsumer, SyncReport, check_name};
pub use db::Store;
pub use index::StoreIndex;
pub use keys::{ApiKeyRecord, CreatedKey, MAX_ACTIVE_KEYS, parse_key};
pub use oauth::{ClientAuth, NewClient, OAuthClient, SigningKey};
pub use refresh::{NewRefresh, RefreshGrant, RefreshOutcome};
pub use tokens::RevokedToken;

/// Everything that can go wrong talking to the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or answered with an error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Files in the data directory (secret, database) could not be used.
    #[error("{0}")]
    Io(String),
    /// The server secret does not match the one the store's keys were hashed under.
    #[error("{0}")]
    SecretMismatch(String),
    /// A named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with what is stored (duplicate name, too many keys).
    #[error("{0}")]
    Conflict(String),
    /// An argument is not acceptable (bad name, bad expiry).
    #[error("{0}")]
    Invalid(String),
}

/// Seconds since the Unix epoch, now.
pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `n` random bytes as lower-case hex.
pub(crate) fn random_hex(n: usize) -> String {
    use rand::RngCore as _;
    let mut b = vec![0u8; n];
    rand::rng().fill_bytes(&mut b);
    hex(&b)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}
