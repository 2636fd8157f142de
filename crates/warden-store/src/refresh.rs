//! Refresh tokens: single use, rotated on every use, and grouped in families
//! (RFC 9700 §4.14.2): presenting a used one again revokes the whole family,
//! including the access tokens it produced.

use base64::Engine as _;
use sqlx::Row as _;

use crate::{Store, StoreError, now_secs};

/// A refresh token as stored (without the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshGrant {
    /// Family id (all rotations of one original grant).
    pub family: String,
    /// The client it was issued to.
    pub client_id: String,
    /// Space-separated scopes.
    pub scope: String,
}

/// What presenting a refresh token led to.
#[derive(Debug, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// Valid and now used: issue the next pair in this family.
    Rotated(RefreshGrant),
    /// Unknown, expired, revoked, or issued to another client.
    Invalid,
    /// Already used: the family was revoked (a stolen token is in play).
    Reused,
}

/// A new refresh token to store with the access token it comes with.
#[derive(Debug)]
pub struct NewRefresh<'a> {
    /// Family to add to (`None`: a new family).
    pub family: Option<&'a str>,
    /// Client.
    pub client_id: &'a str,
    /// Scopes.
    pub scope: &'a str,
    /// Lifetime.
    pub ttl_secs: i64,
    /// The access token issued alongside.
    pub access_jti: &'a str,
    /// Its expiry.
    pub access_exp: i64,
}

impl Store {
    /// Stores a new refresh token and returns it (shown to the client only).
    /// `None` when `new.family` was revoked meanwhile (a reuse raced this
    /// rotation): nothing is issued.
    pub async fn issue_refresh_token(&self, new: &NewRefresh<'_>) -> Result<Option<String>, StoreError> {
        let token = {
            use rand::RngCore as _;
            let mut b = [0u8; 32];
            rand::rng().fill_bytes(&mut b);
            format!("wrt_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
        };
        let now = now_secs();
        let expires_at = now.saturating_add(new.ttl_secs);
        let mut tx = self.begin().await?;
        let family = match new.family {
            Some(family) => {
                // Takes the family row's lock: a concurrent revocation waits
                // for this transaction, or this one sees its result.
                let live = sqlx::query(
                    "UPDATE refresh_families SET expires_at = CASE WHEN expires_at > $1 THEN expires_at ELSE $1 END \
                     WHERE family = $2 AND client_id = $3 AND revoked_at IS NULL",
                )
                .bind(expires_at)
                .bind(family)
                .bind(new.client_id)
                .execute(&mut *tx)
                .await?;
                if live.rows_affected() != 1 {
                    return Ok(None);
                }
                family.to_owned()
            }
            None => {
                // New families are rare next to requests: prune here what
                // can no longer be used.
                sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM refresh_families WHERE expires_at < $1")
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                let family = crate::random_hex(16);
                sqlx::query(
                    "INSERT INTO refresh_families (family, client_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(&family)
                .bind(new.client_id)
                .bind(now)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?;
                family
            }
        };
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hmac, family, client_id, scope, created_at, expires_at, access_jti, access_exp) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(self.token_hmac(&token))
        .bind(family)
        .bind(new.client_id)
        .bind(new.scope)
        .bind(now)
        .bind(expires_at)
        .bind(new.access_jti)
        .bind(new.access_exp)
        .execute(&mut *tx)
        .await?;
        // Nothing the gateways index changed: no version bump.
        tx.commit().await?;
        Ok(Some(token))
    }

    /// Uses `token` for `client_id`: exactly one concurrent caller wins a
    /// valid token; a second use revokes the family and its access tokens.
    pub async fn use_refresh_token(&self, token: &str, client_id: &str) -> Result<RefreshOutcome, StoreError> {
        let hmac = self.token_hmac(token);
        let row = sqlx::query(
            "SELECT family, client_id, scope, expires_at, used_at, revoked_at FROM refresh_tokens WHERE token_hmac = $1",
        )
        .bind(&hmac)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(RefreshOutcome::Invalid);
        };
        let grant = RefreshGrant {
            family: row.try_get("family")?,
            client_id: row.try_get("client_id")?,
            scope: row.try_get("scope")?,
        };
        let now = now_secs();
        let expires_at: i64 = row.try_get("expires_at")?;
        let used: Option<i64> = row.try_get("used_at")?;
        let revoked: Option<i64> = row.try_get("revoked_at")?;
        if grant.client_id != client_id {
            return Ok(RefreshOutcome::Invalid);
        }
        if used.is_some() {
            self.revoke_family(&grant.family).await?;
            return Ok(RefreshOutcome::Reused);
        }
        if revoked.is_some() || expires_at <= now {
            return Ok(RefreshOutcome::Invalid);
        }
        // The conditional update is the single point of truth: of two
        // concurrent uses only one changes the row, and a row revoked or
        // expired since the read is not used.
        let done = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1 WHERE token_hmac = $2 AND used_at IS NULL \
             AND revoked_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(&hmac)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(RefreshOutcome::Rotated(grant));
        }
        let used_now = sqlx::query("SELECT used_at FROM refresh_tokens WHERE token_hmac = $1")
            .bind(&hmac)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get::<Option<i64>, _>(0))
            .transpose()?
            .flatten();
        if used_now.is_some() {
            self.revoke_family(&grant.family).await?;
            return Ok(RefreshOutcome::Reused);
        }
        Ok(RefreshOutcome::Invalid)
    }

    /// Revokes `token` (RFC 7009) and with it its family, if it is a refresh
    /// token issued to `client_id`. Returns whether it was one.
    pub async fn revoke_refresh_token(&self, token: &str, client_id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT family, client_id FROM refresh_tokens WHERE token_hmac = $1")
            .bind(self.token_hmac(token))
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) if r.try_get::<String, _>("client_id")? == client_id => {
                self.revoke_family(&r.try_get::<String, _>("family")?).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Revokes every refresh token of `family` and every access token they
    /// produced that has not expired, in one transaction.
    async fn revoke_family(&self, family: &str) -> Result<(), StoreError> {
        let now = now_secs();
        let mut tx = self.begin().await?;
        // The family row first: this waits for a rotation in flight, and the
        // statements after it see the token that rotation added.
        sqlx::query("UPDATE refresh_families SET revoked_at = $1 WHERE family = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(family)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE family = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(family)
            .execute(&mut *tx)
            .await?;
        let access =
            sqlx::query("SELECT access_jti, access_exp FROM refresh_tokens WHERE family = $1 AND access_exp > $2")
                .bind(family)
                .bind(now)
                .fetch_all(&mut *tx)
                .await?;
        for row in &access {
            sqlx::query(
                "INSERT INTO revoked_tokens (jti, expires_at, revoked_at, reason) VALUES ($1, $2, $3, 'refresh token reuse') \
                 ON CONFLICT (jti) DO NOTHING",
            )
            .bind(row.try_get::<String, _>("access_jti")?)
            .bind(row.try_get::<i64, _>("access_exp")?)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tracing::warn!(family, access_tokens = access.len(), "refresh token family revoked");
        self.commit(tx).await
    }

    /// True when `jti` is on the revocation list (for introspection).
    pub async fn is_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM revoked_tokens WHERE jti = $1 AND expires_at > $2")
            .bind(jti)
            .bind(now_secs())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    fn token_hmac(&self, token: &str) -> String {
        crate::hex(self.secret.tag(token.as_bytes()).as_ref())
    }
}
