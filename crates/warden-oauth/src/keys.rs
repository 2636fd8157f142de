//! The signing keys: generated, sealed into the store, rotated, published.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey};
use warden_store::{SigningKey, Store, StoreError};

use crate::config::OAuthServerConfig;

/// A successor key is made this long before the current one retires: several
/// key refreshes (every 60 s on each gateway) publish it before it signs.
const ROTATION_LEAD_SECS: i64 = 600;

/// The key that signs now, and everything published.
pub(crate) struct Ring {
    /// `(kid, alg, key)` of the newest key still signing.
    pub signer: Option<(String, Algorithm, Arc<EncodingKey>)>,
    /// The JWK Set document.
    pub jwks: Arc<serde_json::Value>,
    /// Digest of the published kids, to tell a change from a reload.
    digest: String,
}

/// The keys, reloaded from the store and rotated on schedule.
pub(crate) struct Keys {
    ring: ArcSwap<Ring>,
    generation: AtomicU64,
    /// One refresh at a time in this process (no duplicate new keys).
    refreshing: tokio::sync::Mutex<()>,
}

impl Keys {
    pub(crate) fn new() -> Self {
        Self {
            ring: ArcSwap::from_pointee(Ring {
                signer: None,
                jwks: Arc::new(serde_json::json!({ "keys": [] })),
                digest: String::new(),
            }),
            generation: AtomicU64::new(0),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn ring(&self) -> Arc<Ring> {
        self.ring.load_full()
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Reads the keys from the store; when none signs any more (first run,
    /// or the current one retired), makes a new one first. Several gateways
    /// may do this at once: each may add a key, all are published, the newest
    /// signs.
    pub(crate) async fn refresh(&self, store: &Store, cfg: &OAuthServerConfig) -> Result<(), StoreError> {
        let _one = self.refreshing.lock().await;
        let overlap = i64::try_from(cfg.key_overlap_secs).unwrap_or(i64::MAX);
        let mut keys = store.signing_keys(overlap).await?;
        let now = now_secs();
        // The key that signs now retires at `until`; its successor is made
        // ahead of time with `created_at = until`, so every gateway publishes
        // it before any token is signed with it.
        let until = keys
            .iter()
            .filter(|k| k.created_at <= now && k.retires_at > now)
            .map(|k| k.retires_at)
            .max();
        let successor_ready = |at: i64| keys.iter().any(|k| k.created_at >= at && k.retires_at > at);
        let make = match until {
            None => Some(now),
            Some(at) if at - now < ROTATION_LEAD_SECS && !successor_ready(at) => Some(at),
            Some(_) => None,
        };
        if let Some(from) = make {
            let key = generate(&cfg.signing_alg, from, cfg.key_rotation_secs)?;
            tracing::info!(kid = %key.kid, alg = %key.alg, signs_from = from, "new token-signing key");
            store.add_signing_key(&key).await?;
            keys = store.signing_keys(overlap).await?;
        }
        let signer = keys
            .iter()
            .filter(|k| k.retires_at > now && k.created_at <= now)
            .max_by_key(|k| k.created_at)
            .and_then(|k| encoding(k).map(|(alg, enc)| (k.kid.clone(), alg, Arc::new(enc))));
        // Published keys are derived from the sealed private keys, never taken
        // from the stored `public_jwk` column: whoever can write the database
        // but not unseal cannot slip in a verification key of their own.
        let published: Vec<serde_json::Value> = keys
            .iter()
            .filter_map(|k| {
                let jwk = public_jwk(&k.alg, &k.kid, &k.pkcs8);
                if jwk.as_ref() != Some(&k.public_jwk) {
                    tracing::error!(kid = %k.kid, "stored public key does not match the sealed private key; the derived one is published");
                }
                jwk
            })
            .collect();
        let digest = keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>().join(",");
        let changed = self.ring.load().digest != digest;
        self.ring.store(Arc::new(Ring {
            signer,
            jwks: Arc::new(serde_json::json!({ "keys": published })),
            digest,
        }));
        if changed {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        Ok(())
    }
}

fn encoding(k: &SigningKey) -> Option<(Algorithm, EncodingKey)> {
    match k.alg.as_str() {
        "ES256" => Some((Algorithm::ES256, EncodingKey::from_ec_der(&k.pkcs8))),
        "EdDSA" => Some((Algorithm::EdDSA, EncodingKey::from_ed_der(&k.pkcs8))),
        other => {
            tracing::error!(kid = %k.kid, alg = other, "signing key with an unknown algorithm skipped");
            None
        }
    }
}

/// A fresh key pair for `alg`, signing for `rotation_secs` from `now`.
pub(crate) fn generate(alg: &str, now: i64, rotation_secs: u64) -> Result<SigningKey, StoreError> {
    let rng = SystemRandom::new();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let kid = {
        use rand::RngCore as _;
        let mut b = [0u8; 12];
        rand::rng().fill_bytes(&mut b);
        b64(&b)
    };
    let pkcs8 = match alg {
        "EdDSA" => Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(keygen_failed)?
            .as_ref()
            .to_vec(),
        _ => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(keygen_failed)?
            .as_ref()
            .to_vec(),
    };
    let alg = if alg == "EdDSA" { "EdDSA" } else { "ES256" };
    let jwk = public_jwk(alg, &kid, &pkcs8).ok_or_else(|| keygen_failed(()))?;
    Ok(SigningKey {
        kid,
        alg: alg.into(),
        pkcs8: zeroize::Zeroizing::new(pkcs8),
        public_jwk: jwk,
        created_at: now,
        retires_at: now.saturating_add(i64::try_from(rotation_secs).unwrap_or(i64::MAX)),
    })
}

/// The public JWK of a PKCS#8 private key; `None` for a key that does not parse.
fn public_jwk(alg: &str, kid: &str, pkcs8: &[u8]) -> Option<serde_json::Value> {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    match alg {
        "EdDSA" => {
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8).ok()?;
            Some(serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "x": b64(pair.public_key().as_ref()),
                "kid": kid, "alg": "EdDSA", "use": "sig",
            }))
        }
        "ES256" => {
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8).ok()?;
            // Uncompressed point: 0x04 || x || y.
            let point = pair.public_key().as_ref();
            let (x, y) = point.get(1..33).zip(point.get(33..65))?;
            Some(serde_json::json!({
                "kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y),
                "kid": kid, "alg": "ES256", "use": "sig",
            }))
        }
        _ => None,
    }
}

pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn keygen_failed<E>(_: E) -> StoreError {
    StoreError::Io("cannot generate a signing key".into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn cfg(alg: &str) -> OAuthServerConfig {
        serde_json::from_value(serde_json::json!({
            "issuer": "https://as.test", "signing_alg": alg, "key_overlap_secs": 3600
        }))
        .unwrap()
    }

    async fn store(dir: &std::path::Path) -> Store {
        Store::open(&warden_store::StoreConfig {
            data_dir: dir.to_path_buf(),
            ..warden_store::StoreConfig::default()
        })
        .await
        .unwrap()
    }

    fn kids(ring: &Ring) -> Vec<String> {
        ring.jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn first_key_rotation_overlap_and_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let keys = Keys::new();
        let now = now_secs();
        // A key that retired 10 s ago (still published within the overlap)
        // and one that retired two hours ago (past the overlap: dropped).
        let retired = generate("ES256", now - 100, 90).unwrap();
        let ancient = generate("ES256", now - 9000, 1800).unwrap();
        store.add_signing_key(&retired).await.unwrap();
        store.add_signing_key(&ancient).await.unwrap();
        keys.refresh(&store, &cfg("ES256")).await.unwrap();
        let ring = keys.ring();
        let (signing_kid, alg, _) = ring.signer.as_ref().unwrap();
        assert_eq!(*alg, Algorithm::ES256);
        assert_ne!(*signing_kid, retired.kid, "a retired key must not sign");
        let published = kids(&ring);
        assert_eq!(published.len(), 2, "{published:?}");
        assert!(published.contains(&retired.kid) && published.contains(signing_kid));
        assert!(!published.contains(&ancient.kid));
        let generation = keys.generation();
        // A second refresh changes nothing: no new key, same generation.
        keys.refresh(&store, &cfg("ES256")).await.unwrap();
        assert_eq!(kids(&keys.ring()), published);
        assert_eq!(keys.generation(), generation);
        // Private keys are sealed at rest: the stored column is not the PKCS#8.
        let sealed: String = stored_sealed(&store, signing_kid).await;
        assert!(!sealed.is_empty());
        let pkcs8 = base64::engine::general_purpose::STANDARD.encode(&retired.pkcs8[..]);
        assert!(!sealed.contains(&pkcs8[..20]));
    }

    #[tokio::test]
    async fn a_public_key_swapped_in_the_database_is_not_published() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let keys = Keys::new();
        keys.refresh(&store, &cfg("ES256")).await.unwrap();
        let honest = keys.ring().jwks.clone();
        let kid = kids(&keys.ring()).remove(0);
        // Someone with write access to the database but not the server
        // secret replaces the public half with a key of their own.
        let theirs = generate("ES256", 0, 60).unwrap();
        let mut planted = theirs.public_jwk.clone();
        planted["kid"] = serde_json::Value::String(kid.clone());
        sqlx::query("UPDATE signing_keys SET public_jwk = $1 WHERE kid = $2")
            .bind(planted.to_string())
            .bind(&kid)
            .execute(store.pool())
            .await
            .unwrap();
        let fresh = Keys::new();
        fresh.refresh(&store, &cfg("ES256")).await.unwrap();
        let published = fresh.ring().jwks.clone();
        assert_eq!(published, honest, "the planted key was published");
        assert!(!published.to_string().contains(planted["x"].as_str().unwrap()));
    }

    #[tokio::test]
    async fn a_successor_is_published_before_it_signs() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let now = now_secs();
        // The current key retires in 5 minutes: within the lead time.
        let current = generate("ES256", now - 100, 400).unwrap();
        store.add_signing_key(&current).await.unwrap();
        let keys = Keys::new();
        keys.refresh(&store, &cfg("ES256")).await.unwrap();
        let ring = keys.ring();
        assert_eq!(
            ring.signer.as_ref().unwrap().0,
            current.kid,
            "the current key still signs"
        );
        let published = kids(&ring);
        assert_eq!(published.len(), 2, "the successor is published ahead: {published:?}");
        // Refreshing again makes no third key.
        keys.refresh(&store, &cfg("ES256")).await.unwrap();
        assert_eq!(kids(&keys.ring()).len(), 2);
    }

    #[tokio::test]
    async fn eddsa_keys_sign_tokens_their_jwk_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let keys = Keys::new();
        keys.refresh(&store, &cfg("EdDSA")).await.unwrap();
        let ring = keys.ring();
        let (kid, alg, enc) = ring.signer.as_ref().unwrap();
        assert_eq!(*alg, Algorithm::EdDSA);
        let mut h = jsonwebtoken::Header::new(*alg);
        h.kid = Some(kid.clone());
        let token = jsonwebtoken::encode(&h, &serde_json::json!({ "sub": "x", "exp": now_secs() + 60 }), enc).unwrap();
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(ring.jwks["keys"][0].clone()).unwrap();
        let dec = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let mut v = jsonwebtoken::Validation::new(Algorithm::EdDSA);
        v.required_spec_claims.clear();
        jsonwebtoken::decode::<serde_json::Value>(&token, &dec, &v).unwrap();
    }

    /// The stored (sealed) private key of `kid`.
    async fn stored_sealed(store: &Store, kid: &str) -> String {
        store.sealed_signing_key(kid).await.unwrap().unwrap()
    }
}
