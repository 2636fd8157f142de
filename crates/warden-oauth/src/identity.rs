//! Short-lived identity tokens the gateway signs for upstreams: who called,
//! verified, in a form an upstream can check with the server's JWKS.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Value, json};

use crate::keys::now_secs;
use crate::server::OAuthServer;

/// Most identity tokens kept for reuse; the cache is cleared when full.
const MAX_CACHED: usize = 10_000;

/// Signed identity tokens by (consumer, audience, scope), reused while more
/// than half their life remains: ES256 signing costs tens of microseconds.
#[derive(Debug, Default)]
pub(crate) struct IdentityCache {
    tokens: Mutex<HashMap<CacheKey, (String, i64)>>,
}

/// Consumer, audience, scope.
type CacheKey = (String, String, String);

impl OAuthServer {
    /// A JWT for the upstream `audience` naming `consumer`: `iss` (this
    /// server), `sub`, `aud`, `iat`, `exp` (`ttl_secs` ahead), `scope` when
    /// the caller's token had one; `typ: warden-identity+jwt` so it can never
    /// pass as an access token. `None` when no key signs.
    pub fn identity_token(&self, consumer: &str, audience: &str, scope: Option<&str>, ttl_secs: u64) -> Option<String> {
        let now = now_secs();
        let ttl = i64::try_from(ttl_secs).unwrap_or(60);
        let key = (consumer.to_owned(), audience.to_owned(), scope.unwrap_or("").to_owned());
        if let Ok(cache) = self.identity_cache().tokens.lock()
            && let Some((token, exp)) = cache.get(&key)
            && exp - now > ttl / 2
        {
            return Some(token.clone());
        }
        let ring = self.keys().ring();
        let (kid, alg, signer) = ring.signer.as_ref()?;
        let mut claims = json!({
            "iss": self.config().issuer,
            "sub": consumer,
            "aud": audience,
            "iat": now,
            "exp": now + ttl,
            "jti": crate::server::random_id(),
        });
        if let Some(s) = scope {
            claims["scope"] = Value::String(s.to_owned());
        }
        let mut header = jsonwebtoken::Header::new(*alg);
        header.kid = Some(kid.clone());
        header.typ = Some("warden-identity+jwt".into());
        let token = jsonwebtoken::encode(&header, &claims, signer).ok()?;
        if let Ok(mut cache) = self.identity_cache().tokens.lock() {
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(key, (token.clone(), now + ttl));
        }
        Some(token)
    }
}
