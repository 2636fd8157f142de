//! API keys: `wdn_<prefix>_<secret>`, stored only as an HMAC.
//!
//! The prefix (12 hex digits, random) is public: it names the key in lists,
//! logs and revocations. The secret part is 32 random bytes (base64url). The
//! store keeps HMAC-SHA-256 of the whole key under the server secret.

use base64::Engine as _;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, now_secs};

/// Active (unrevoked, unexpired) keys a consumer may hold at once: two, so a
/// key can be rotated without downtime.
pub const MAX_ACTIVE_KEYS: i64 = 2;

const TAG: &str = "wdn_";
const PREFIX_LEN: usize = 12;
const SECRET_LEN: usize = 43; // 32 bytes, base64url without padding
const KEY_LEN: usize = TAG.len() + PREFIX_LEN + 1 + SECRET_LEN;

/// The public prefix of `key`, if `key` is shaped like a Warden API key.
pub fn parse_key(key: &str) -> Option<&str> {
    let b = key.as_bytes();
    if b.len() != KEY_LEN || !key.starts_with(TAG) || b[TAG.len() + PREFIX_LEN] != b'_' {
        return None;
    }
    let prefix = &key[TAG.len()..TAG.len() + PREFIX_LEN];
    let secret = &b[TAG.len() + PREFIX_LEN + 1..];
    let prefix_ok = prefix.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    let secret_ok = secret
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_');
    (prefix_ok && secret_ok).then_some(prefix)
}

/// A stored key (without anything secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Public prefix.
    pub prefix: String,
    /// Owner's name.
    pub consumer: String,
    /// Free-form label.
    pub label: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds, if it expires.
    pub expires_at: Option<i64>,
    /// Unix seconds, if revoked.
    pub revoked_at: Option<i64>,
}

impl ApiKeyRecord {
    /// Neither revoked nor expired at `now`.
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

/// A freshly created key: the only time the key itself exists outside the caller.
#[derive(Debug)]
pub struct CreatedKey {
    /// The key to hand to the consumer. Not stored anywhere.
    pub key: String,
    /// What the store holds about it.
    pub record: ApiKeyRecord,
}

/// One row of the in-memory index.
pub(crate) struct IndexRow {
    pub(crate) prefix: String,
    pub(crate) key_hmac: String,
    pub(crate) consumer: String,
    pub(crate) groups: Vec<String>,
    pub(crate) consumer_active: bool,
    pub(crate) expires_at: Option<i64>,
    pub(crate) revoked: bool,
}

macro_rules! keys_select {
    () => {
        "SELECT k.prefix, c.name, k.label, k.created_at, k.expires_at, k.revoked_at \
         FROM api_keys k JOIN consumers c ON c.id = k.consumer_id"
    };
}

fn record(row: &AnyRow) -> Result<ApiKeyRecord, StoreError> {
    Ok(ApiKeyRecord {
        prefix: row.try_get("prefix")?,
        consumer: row.try_get("name")?,
        label: row.try_get("label")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

impl Store {
    /// Creates a key for consumer `consumer`, valid until `expires_at` (Unix
    /// seconds) if given. Refused when the consumer already holds
    /// [`MAX_ACTIVE_KEYS`] active keys.
    pub async fn create_key(
        &self,
        consumer: &str,
        expires_at: Option<i64>,
        label: Option<&str>,
    ) -> Result<CreatedKey, StoreError> {
        let now = now_secs();
        if expires_at.is_some_and(|e| e <= now) {
            return Err(StoreError::Invalid("the expiry must be in the future".into()));
        }
        if let Some(l) = label
            && (l.len() > 200 || l.chars().any(char::is_control))
        {
            return Err(StoreError::Invalid(
                "the label must be at most 200 printable characters".into(),
            ));
        }
        let owner = self.consumer(consumer).await?.ok_or_else(|| {
            StoreError::NotFound(format!(
                "no consumer `{consumer}` (create it with `warden consumers create {consumer}`)"
            ))
        })?;
        let prefix = crate::random_hex(PREFIX_LEN / 2);
        let secret = {
            use rand::RngCore as _;
            let mut b = [0u8; 32];
            rand::rng().fill_bytes(&mut b);
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
        };
        let key = format!("{TAG}{prefix}_{secret}");
        let key_hmac = crate::hex(self.secret.tag(key.as_bytes()).as_ref());
        let mut tx = self.begin().await?;
        // Touching the consumer row first serialises concurrent creations for
        // one consumer (a row lock on PostgreSQL, the write lock on SQLite),
        // so the count below cannot be raced past the limit.
        sqlx::query("UPDATE consumers SET updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&owner.id)
            .execute(&mut *tx)
            .await?;
        let active: i64 = sqlx::query(
            "SELECT COUNT(*) FROM api_keys WHERE consumer_id = $1 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(&owner.id)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        if active >= MAX_ACTIVE_KEYS {
            return Err(StoreError::Conflict(format!(
                "consumer `{consumer}` already has {active} active keys (at most {MAX_ACTIVE_KEYS}); \
                 revoke one first (`warden keys revoke PREFIX`)"
            )));
        }
        sqlx::query(
            "INSERT INTO api_keys (id, prefix, consumer_id, key_hmac, label, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(crate::random_hex(16))
        .bind(&prefix)
        .bind(&owner.id)
        .bind(key_hmac)
        .bind(label)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await?;
        Ok(CreatedKey {
            key,
            record: ApiKeyRecord {
                prefix,
                consumer: owner.name,
                label: label.map(str::to_owned),
                created_at: now,
                expires_at,
                revoked_at: None,
            },
        })
    }

    /// Keys, of one consumer or of all, newest first.
    pub async fn keys(&self, consumer: Option<&str>) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let rows = match consumer {
            Some(name) => {
                sqlx::query(concat!(
                    keys_select!(),
                    " WHERE c.name = $1 ORDER BY k.created_at DESC, k.prefix"
                ))
                .bind(name)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(concat!(keys_select!(), " ORDER BY c.name, k.created_at DESC, k.prefix"))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(record).collect()
    }

    /// Revokes the key with public prefix `prefix` (a `wdn_…` key is accepted
    /// too and reduced to its prefix). Revoking twice is not an error.
    pub async fn revoke_key(&self, prefix: &str) -> Result<(), StoreError> {
        let prefix = parse_key(prefix).unwrap_or(prefix);
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE prefix = $2")
            .bind(now_secs())
            .bind(prefix)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no key with prefix `{prefix}`")));
        }
        self.commit(tx).await
    }

    /// Every key with its owner, for the in-memory index.
    pub(crate) async fn index_rows(&self) -> Result<Vec<IndexRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT k.prefix, k.key_hmac, k.expires_at, k.revoked_at, c.name, c.groups_json, c.status \
             FROM api_keys k JOIN consumers c ON c.id = k.consumer_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let groups: String = row.try_get("groups_json")?;
                let status: String = row.try_get("status")?;
                let revoked: Option<i64> = row.try_get("revoked_at")?;
                Ok(IndexRow {
                    prefix: row.try_get("prefix")?,
                    key_hmac: row.try_get("key_hmac")?,
                    consumer: row.try_get("name")?,
                    groups: serde_json::from_str(&groups).unwrap_or_default(),
                    consumer_active: status == "active",
                    expires_at: row.try_get("expires_at")?,
                    revoked: revoked.is_some(),
                })
            })
            .collect()
    }
}
