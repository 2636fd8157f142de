//! OAuth clients and the token-signing keys of the built-in authorization
//! server. Client secrets are stored as HMACs; private signing keys are sealed
//! (AES-256-GCM) under a key derived from the server secret.

use base64::Engine as _;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, now_secs};

/// How a client proves who it is at the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_secret_basic`: HTTP Basic with the client id and secret.
    SecretBasic,
    /// `client_secret_post`: `client_id` and `client_secret` form fields.
    SecretPost,
    /// `private_key_jwt` (RFC 7523): a JWT assertion signed with this key (PEM).
    PrivateKeyJwt {
        /// SubjectPublicKeyInfo PEM.
        public_key_pem: String,
    },
    /// `tls_client_auth` (RFC 8705): the mTLS client certificate names the
    /// client: this SAN URI, SAN DNS name or subject DN.
    TlsClientAuth {
        /// The expected identity.
        identity: String,
    },
}

impl ClientAuth {
    /// The RFC 8414 / RFC 7591 method name.
    pub fn method(&self) -> &'static str {
        match self {
            Self::SecretBasic => "client_secret_basic",
            Self::SecretPost => "client_secret_post",
            Self::PrivateKeyJwt { .. } => "private_key_jwt",
            Self::TlsClientAuth { .. } => "tls_client_auth",
        }
    }

    fn uses_secret(&self) -> bool {
        matches!(self, Self::SecretBasic | Self::SecretPost)
    }
}

/// A registered client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    /// Random public id.
    pub client_id: String,
    /// Unique name.
    pub name: String,
    /// How it authenticates.
    pub auth: ClientAuth,
    /// Scopes it may ask for.
    pub scopes: Vec<String>,
    /// Whether it gets refresh tokens.
    pub refresh_tokens: bool,
    /// False when disabled.
    pub active: bool,
    /// Unix seconds.
    pub created_at: i64,
}

/// What `create_client` needs.
#[derive(Debug, Clone)]
pub struct NewClient {
    /// Unique name.
    pub name: String,
    /// How it will authenticate.
    pub auth: ClientAuth,
    /// Scopes it may ask for.
    pub scopes: Vec<String>,
    /// Whether it gets refresh tokens.
    pub refresh_tokens: bool,
}

/// A token-signing key, decrypted.
#[derive(Clone)]
pub struct SigningKey {
    /// Key id (the JWT `kid`).
    pub kid: String,
    /// `ES256` or `EdDSA`.
    pub alg: String,
    /// PKCS#8 private key.
    pub pkcs8: zeroize::Zeroizing<Vec<u8>>,
    /// The public key as a JWK.
    pub public_jwk: serde_json::Value,
    /// Unix seconds.
    pub created_at: i64,
    /// Signs until then.
    pub retires_at: i64,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("retires_at", &self.retires_at)
            .finish_non_exhaustive()
    }
}

fn client_from_row(row: &AnyRow) -> Result<OAuthClient, StoreError> {
    let method: String = row.try_get("auth_method")?;
    let auth = match method.as_str() {
        "client_secret_basic" => ClientAuth::SecretBasic,
        "client_secret_post" => ClientAuth::SecretPost,
        "private_key_jwt" => ClientAuth::PrivateKeyJwt {
            public_key_pem: row.try_get::<Option<String>, _>("public_key_pem")?.unwrap_or_default(),
        },
        "tls_client_auth" => ClientAuth::TlsClientAuth {
            identity: row.try_get::<Option<String>, _>("tls_identity")?.unwrap_or_default(),
        },
        other => {
            return Err(StoreError::Invalid(format!(
                "stored client auth method `{other}` is unknown"
            )));
        }
    };
    let scopes: String = row.try_get("scopes_json")?;
    let status: String = row.try_get("status")?;
    Ok(OAuthClient {
        client_id: row.try_get("client_id")?,
        name: row.try_get("name")?,
        auth,
        scopes: serde_json::from_str(&scopes).unwrap_or_default(),
        refresh_tokens: row.try_get::<i64, _>("refresh_tokens")? != 0,
        active: status == "active",
        created_at: row.try_get("created_at")?,
    })
}

macro_rules! client_select {
    () => {
        "SELECT client_id, name, auth_method, secret_hmac, public_key_pem, tls_identity, scopes_json, \
         refresh_tokens, status, created_at FROM oauth_clients"
    };
}

impl Store {
    /// Registers a client. Returns it and, for secret-based methods, the
    /// secret (shown once; only its HMAC is stored).
    pub async fn create_client(&self, new: &NewClient) -> Result<(OAuthClient, Option<String>), StoreError> {
        crate::consumers::check_name("client name", &new.name)?;
        for s in &new.scopes {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\') {
                return Err(StoreError::Invalid(format!("scope `{s}` is not a valid scope token")));
            }
        }
        match &new.auth {
            ClientAuth::PrivateKeyJwt { public_key_pem } if !public_key_pem.contains("-----BEGIN PUBLIC KEY-----") => {
                return Err(StoreError::Invalid(
                    "private_key_jwt needs a PEM public key (-----BEGIN PUBLIC KEY-----)".into(),
                ));
            }
            ClientAuth::TlsClientAuth { identity } if identity.trim().is_empty() => {
                return Err(StoreError::Invalid(
                    "tls_client_auth needs the certificate identity (SAN URI, DNS name or subject DN)".into(),
                ));
            }
            _ => {}
        }
        if self.client_by_name(&new.name).await?.is_some() {
            return Err(StoreError::Conflict(format!("client `{}` already exists", new.name)));
        }
        let client_id = format!("wc_{}", crate::random_hex(12));
        let secret = new.auth.uses_secret().then(|| {
            use rand::RngCore as _;
            let mut b = [0u8; 32];
            rand::rng().fill_bytes(&mut b);
            format!("wcs_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
        });
        let secret_hmac = secret
            .as_ref()
            .map(|s| crate::hex(self.secret.tag(s.as_bytes()).as_ref()));
        let (pem, identity) = match &new.auth {
            ClientAuth::PrivateKeyJwt { public_key_pem } => (Some(public_key_pem.clone()), None),
            ClientAuth::TlsClientAuth { identity } => (None, Some(identity.clone())),
            _ => (None, None),
        };
        let scopes = serde_json::to_string(&new.scopes).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO oauth_clients (client_id, name, auth_method, secret_hmac, public_key_pem, tls_identity, \
             scopes_json, refresh_tokens, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'active', $9)",
        )
        .bind(&client_id)
        .bind(&new.name)
        .bind(new.auth.method())
        .bind(secret_hmac)
        .bind(pem)
        .bind(identity)
        .bind(scopes)
        .bind(i64::from(new.refresh_tokens))
        .bind(now_secs())
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await?;
        let client = self
            .client(&client_id)
            .await?
            .ok_or_else(|| StoreError::NotFound("client vanished after creation".into()))?;
        Ok((client, secret))
    }

    /// The client with `client_id`.
    pub async fn client(&self, client_id: &str) -> Result<Option<OAuthClient>, StoreError> {
        let row = sqlx::query(concat!(client_select!(), " WHERE client_id = $1"))
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(client_from_row).transpose()
    }

    /// The client called `name`.
    pub async fn client_by_name(&self, name: &str) -> Result<Option<OAuthClient>, StoreError> {
        let row = sqlx::query(concat!(client_select!(), " WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(client_from_row).transpose()
    }

    /// Every client, by name.
    pub async fn clients(&self) -> Result<Vec<OAuthClient>, StoreError> {
        let rows = sqlx::query(concat!(client_select!(), " ORDER BY name"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(client_from_row).collect()
    }

    /// Checks a presented client secret in constant time. False for unknown
    /// clients, clients without a secret, and disabled clients.
    pub async fn verify_client_secret(&self, client_id: &str, presented: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT secret_hmac, status FROM oauth_clients WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        let stored = match &row {
            Some(r) if r.try_get::<String, _>("status")? == "active" => {
                r.try_get::<Option<String>, _>("secret_hmac")?
            }
            _ => None,
        };
        let Some(tag) = stored.as_deref().and_then(crate::unhex) else {
            // Same work either way.
            let _ = self.secret.tag(presented.as_bytes());
            return Ok(false);
        };
        Ok(self.secret.verify(presented.as_bytes(), &tag))
    }

    /// Enables or disables a client.
    pub async fn set_client_active(&self, name: &str, active: bool) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("UPDATE oauth_clients SET status = $1 WHERE name = $2")
            .bind(if active { "active" } else { "disabled" })
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no client `{name}`")));
        }
        self.commit(tx).await
    }

    /// Adds a signing key (sealed at rest).
    pub async fn add_signing_key(&self, key: &SigningKey) -> Result<(), StoreError> {
        let sealed = self.secret.seal(&key.pkcs8, key.kid.as_bytes())?;
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_sealed, public_jwk, created_at, retires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&key.kid)
        .bind(&key.alg)
        .bind(sealed)
        .bind(key.public_jwk.to_string())
        .bind(key.created_at)
        .bind(key.retires_at)
        .execute(&mut *tx)
        .await?;
        self.commit(tx).await
    }

    /// The sealed private key of `kid` as stored (tests check it is sealed).
    pub async fn sealed_signing_key(&self, kid: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT private_sealed FROM signing_keys WHERE kid = $1")
            .bind(kid)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<String, _>(0)).transpose()?)
    }

    /// Signing keys not yet past `retires_at + overlap_secs`, newest first.
    /// Older ones are deleted on the way.
    pub async fn signing_keys(&self, overlap_secs: i64) -> Result<Vec<SigningKey>, StoreError> {
        let cutoff = now_secs().saturating_sub(overlap_secs);
        sqlx::query("DELETE FROM signing_keys WHERE retires_at < $1")
            .bind(cutoff)
            .execute(&self.pool)
            .await?;
        let rows = sqlx::query(
            "SELECT kid, alg, private_sealed, public_jwk, created_at, retires_at FROM signing_keys \
             ORDER BY created_at DESC, kid",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let kid: String = row.try_get("kid")?;
            let sealed: String = row.try_get("private_sealed")?;
            let Some(pkcs8) = self.secret.open(&sealed, kid.as_bytes()) else {
                tracing::error!(kid, "signing key cannot be unsealed with this server secret; skipped");
                continue;
            };
            let jwk: String = row.try_get("public_jwk")?;
            out.push(SigningKey {
                kid,
                alg: row.try_get("alg")?,
                pkcs8: zeroize::Zeroizing::new(pkcs8),
                public_jwk: serde_json::from_str(&jwk).map_err(|e| StoreError::Invalid(e.to_string()))?,
                created_at: row.try_get("created_at")?,
                retires_at: row.try_get("retires_at")?,
            });
        }
        Ok(out)
    }
}
