//! DPoP proofs (RFC 9449): a JWT signed with the client's private key whose
//! public key rides in the header; binds a request (method, URL, time, and
//! for resource requests the access token) to that key.
//!
//! Used by the token endpoint (to bind issued tokens) and by the `jwt` policy
//! (to check a bound token is presented by its key holder).

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// How far a proof's `iat` may be from now, either way.
pub const MAX_PROOF_AGE_SECS: i64 = 60;

/// Longest proof accepted.
const MAX_PROOF_BYTES: usize = 4096;

/// What the proof must match.
#[derive(Debug)]
pub struct Expect<'a> {
    /// HTTP method of the request.
    pub htm: &'a str,
    /// `scheme://host[:port]/path` of the request (query and fragment ignored).
    pub htu: &'a str,
    /// The access token presented with it (resource requests only).
    pub access_token: Option<&'a str>,
    /// Now, Unix seconds.
    pub now: i64,
}

/// A valid proof.
#[derive(Debug)]
pub struct Proof {
    /// RFC 7638 SHA-256 thumbprint of the proof key (base64url): `cnf.jkt`.
    pub jkt: String,
    /// The proof's `jti` (for replay checks).
    pub jti: String,
}

/// Checks `proof` against `expect`. The error says why (for logs only).
pub fn verify(proof: &str, expect: &Expect<'_>) -> Result<Proof, &'static str> {
    if proof.len() > MAX_PROOF_BYTES {
        return Err("proof too large");
    }
    let head_b64 = proof.split('.').next().ok_or("proof is not a JWT")?;
    let head: Map<String, Value> = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head_b64)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("unreadable proof header")?;
    if head.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return Err("proof typ is not dpop+jwt");
    }
    let jwk = head.get("jwk").and_then(Value::as_object).ok_or("proof without jwk")?;
    // A public key only: a header carrying private parameters is refused.
    if ["d", "p", "q", "dp", "dq", "qi", "k"]
        .iter()
        .any(|k| jwk.contains_key(*k))
    {
        return Err("proof jwk carries private key material");
    }
    let header = jsonwebtoken::decode_header(proof).map_err(|_| "unreadable proof header")?;
    let allowed = [
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
        Algorithm::RS256,
        Algorithm::PS256,
    ];
    if !allowed.contains(&header.alg) {
        return Err("proof algorithm not allowed");
    }
    let parsed: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(Value::Object(jwk.clone())).map_err(|_| "proof jwk unreadable")?;
    let key = DecodingKey::from_jwk(&parsed).map_err(|_| "proof jwk unusable")?;
    if key.family() != header.alg.family() {
        return Err("proof algorithm does not fit its key");
    }
    let mut v = Validation::new(header.alg);
    v.required_spec_claims.clear();
    v.validate_exp = false;
    v.validate_aud = false;
    let claims = jsonwebtoken::decode::<Map<String, Value>>(proof, &key, &v)
        .map_err(|_| "proof signature invalid")?
        .claims;
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or("proof without jti")?;
    if claims.get("htm").and_then(Value::as_str) != Some(expect.htm) {
        return Err("proof htm does not match the request");
    }
    let htu = claims.get("htu").and_then(Value::as_str).ok_or("proof without htu")?;
    if normalize_url(htu).as_deref() != normalize_url(expect.htu).as_deref() {
        return Err("proof htu does not match the request");
    }
    let iat = claims.get("iat").and_then(Value::as_i64).ok_or("proof without iat")?;
    if (iat - expect.now).abs() > MAX_PROOF_AGE_SECS {
        return Err("proof iat outside the accepted window");
    }
    match (expect.access_token, claims.get("ath").and_then(Value::as_str)) {
        (Some(token), Some(ath)) if ath == sha256_b64(token.as_bytes()) => {}
        (Some(_), _) => return Err("proof ath does not match the access token"),
        (None, _) => {}
    }
    Ok(Proof {
        jkt: thumbprint(jwk).ok_or("proof jwk has no thumbprint")?,
        jti: jti.to_owned(),
    })
}

/// RFC 7638 thumbprint: SHA-256 over the required members in lexical order.
pub fn thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let s = |k: &str| jwk.get(k).and_then(Value::as_str);
    let canonical = match s("kty")? {
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            s("crv")?,
            s("x")?,
            s("y")?
        ),
        "OKP" => format!(r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#, s("crv")?, s("x")?),
        "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, s("e")?, s("n")?),
        _ => return None,
    };
    // Members are base64url or short names: nothing to escape, but refuse
    // anything that would need it rather than hash a wrong form.
    if canonical.contains('\\') {
        return None;
    }
    Some(sha256_b64(canonical.as_bytes()))
}

fn sha256_b64(data: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d.as_ref())
}

/// `scheme://host[:port]/path`, scheme and host lower-cased, default ports
/// dropped, query and fragment removed (RFC 9449 §4.3 item 9).
pub fn normalize_url(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    let authority = authority.to_ascii_lowercase();
    let authority = match (scheme.as_str(), authority.rsplit_once(':')) {
        ("https", Some((h, "443"))) | ("http", Some((h, "80"))) => h.to_owned(),
        _ => authority,
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some(format!("{scheme}://{authority}{path}"))
}

/// Ids seen (proof `jti`s, client assertion `jti`s) until their time is up,
/// so each is accepted once. Per process, bounded: when full of live ids, new
/// ones are refused rather than remembered loosely.
#[derive(Debug, Default)]
pub struct ReplayCache {
    seen: Mutex<HashMap<String, i64>>,
}

/// The process-wide cache for DPoP proof ids (keyed by key thumbprint and
/// `jti`), shared by every route and the token endpoint and kept across
/// reloads.
pub fn global_replay() -> &'static ReplayCache {
    static CACHE: std::sync::OnceLock<ReplayCache> = std::sync::OnceLock::new();
    CACHE.get_or_init(ReplayCache::default)
}

/// Most ids remembered.
const MAX_REMEMBERED: usize = 100_000;

impl ReplayCache {
    /// True the first time `id` is seen; it is remembered until `until`.
    pub fn first_use(&self, id: &str, until: i64, now: i64) -> bool {
        let Ok(mut seen) = self.seen.lock() else { return false };
        if seen.len() >= MAX_REMEMBERED {
            seen.retain(|_, t| *t >= now);
            if seen.len() >= MAX_REMEMBERED {
                return false;
            }
        }
        if seen.get(id).is_some_and(|t| *t >= now) {
            return false;
        }
        seen.insert(id.to_owned(), until);
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn urls_normalise_for_comparison() {
        assert_eq!(
            normalize_url("HTTPS://API.Example.com:443/a/b?x=1#f").as_deref(),
            Some("https://api.example.com/a/b")
        );
        assert_eq!(normalize_url("http://h:8080").as_deref(), Some("http://h:8080/"));
        assert_eq!(normalize_url("http://user@h/").as_deref(), None);
        assert_eq!(normalize_url("nonsense"), None);
    }

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let jwk: Map<String, Value> = serde_json::from_str(
            r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
        )
        .unwrap();
        assert_eq!(thumbprint(&jwk).unwrap(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn an_id_is_accepted_once_until_it_expires() {
        let c = ReplayCache::default();
        assert!(c.first_use("j", 100, 50));
        assert!(!c.first_use("j", 100, 60));
        assert!(c.first_use("j", 200, 101), "remembered only until its time is up");
    }
}
