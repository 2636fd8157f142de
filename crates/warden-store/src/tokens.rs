//! Revoked tokens: a `jti` deny-list, durable (it must survive any restart,
//! so it lives in the store, not in Redis), kept until the token's expiry.

use sqlx::Row as _;

use crate::{Store, StoreError, now_secs};

/// A revoked token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedToken {
    /// The token's `jti`.
    pub jti: String,
    /// When the token expires (Unix seconds); the entry is dropped after.
    pub expires_at: i64,
    /// When it was revoked.
    pub revoked_at: i64,
    /// Why, if given.
    pub reason: Option<String>,
}

/// Longest `jti` accepted (RFC 7519 sets none; real ones are short).
const MAX_JTI: usize = 256;

impl Store {
    /// Revokes the token with id `jti` until `expires_at`. Revoking again keeps
    /// the later expiry. Entries past their expiry are pruned on the way.
    pub async fn revoke_token(&self, jti: &str, expires_at: i64, reason: Option<&str>) -> Result<(), StoreError> {
        if jti.is_empty() || jti.len() > MAX_JTI || jti.chars().any(char::is_control) {
            return Err(StoreError::Invalid(format!(
                "a token id must be 1–{MAX_JTI} printable characters"
            )));
        }
        let now = now_secs();
        if expires_at <= now {
            return Err(StoreError::Invalid(
                "the token has already expired; nothing to revoke".into(),
            ));
        }
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM revoked_tokens WHERE expires_at < $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO revoked_tokens (jti, expires_at, revoked_at, reason) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (jti) DO UPDATE SET expires_at = CASE WHEN revoked_tokens.expires_at > excluded.expires_at \
             THEN revoked_tokens.expires_at ELSE excluded.expires_at END",
        )
        .bind(jti)
        .bind(expires_at)
        .bind(now)
        .bind(reason)
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await
    }

    /// Revocations still in force, soonest expiry first.
    pub async fn revoked_tokens(&self) -> Result<Vec<RevokedToken>, StoreError> {
        let rows = sqlx::query(
            "SELECT jti, expires_at, revoked_at, reason FROM revoked_tokens WHERE expires_at > $1 ORDER BY expires_at, jti",
        )
        .bind(now_secs())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RevokedToken {
                    jti: r.try_get("jti")?,
                    expires_at: r.try_get("expires_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                    reason: r.try_get("reason")?,
                })
            })
            .collect()
    }

    /// Names of disabled consumers.
    pub(crate) async fn disabled_clients(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT client_id FROM oauth_clients WHERE status = 'disabled'")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get::<String, _>(0)?)).collect()
    }

    pub(crate) async fn disabled_consumers(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT name FROM consumers WHERE status = 'disabled'")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get::<String, _>(0)?)).collect()
    }
}
