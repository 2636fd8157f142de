//! Client authentication at the token endpoint: exactly one method per
//! request, and it must be the one the client was registered with.

use std::collections::HashMap;

use base64::Engine as _;
use http::{header, request};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use warden_core::RequestCtx;
use warden_store::{ClientAuth, OAuthClient};

use crate::keys::now_secs;
use crate::server::{OAuthError, OAuthServer};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A client that proved who it is.
pub(crate) struct Authenticated {
    pub client: OAuthClient,
    /// It authenticated with its TLS certificate (tokens are bound to it).
    pub bound_to_certificate: bool,
}

/// Credentials as presented.
struct Presented {
    basic: Option<(String, String)>,
    client_id: Option<String>,
}

pub(crate) async fn authenticate(
    server: &OAuthServer,
    req: &request::Parts,
    form: &HashMap<String, String>,
    ctx: &RequestCtx,
) -> Result<Authenticated, OAuthError> {
    let basic = basic_credentials(req)?;
    let tried_basic = basic.is_some();
    let secret = form.get("client_secret");
    let assertion = match (form.get("client_assertion_type"), form.get("client_assertion")) {
        (Some(t), Some(a)) if t == JWT_BEARER => Some(a.as_str()),
        (None, None) => None,
        _ => {
            return Err(OAuthError::request(
                "client_assertion needs client_assertion_type jwt-bearer",
            ));
        }
    };
    let methods = usize::from(basic.is_some()) + usize::from(secret.is_some()) + usize::from(assertion.is_some());
    if methods > 1 {
        return Err(OAuthError::request("more than one client authentication method"));
    }
    let presented = Presented {
        client_id: form.get("client_id").cloned(),
        basic,
    };
    let client_id = match (&presented.basic, &presented.client_id, assertion) {
        (Some((id, _)), Some(form_id), _) if id != form_id => {
            return Err(OAuthError::request("client_id differs from the Basic credentials"));
        }
        (Some((id, _)), _, _) => id.clone(),
        (None, Some(id), _) => id.clone(),
        // RFC 7523 §3: the assertion's `sub` is the client id (verified below).
        (None, None, Some(a)) => unverified_sub(a).ok_or_else(|| OAuthError::client(false))?,
        (None, None, None) => return Err(OAuthError::client(false)),
    };
    let client = match server.store().client(&client_id).await {
        Ok(Some(c)) if c.active => c,
        Ok(_) => {
            tracing::info!(client_id, "token request from an unknown or disabled client");
            return Err(OAuthError::client(tried_basic));
        }
        Err(e) => {
            tracing::error!(error = %e, "store unavailable for client authentication");
            return Err(OAuthError::client(tried_basic));
        }
    };
    let ok = match (&client.auth, &presented.basic, secret, assertion) {
        (ClientAuth::SecretBasic, Some((_, s)), None, None) => check_secret(server, &client_id, s).await,
        (ClientAuth::SecretPost, None, Some(s), None) => check_secret(server, &client_id, s).await,
        (ClientAuth::PrivateKeyJwt { public_key_pem }, None, None, Some(a)) => {
            match check_assertion(server, &client_id, public_key_pem, a) {
                Ok((claim, ttl)) => match server.shared().claim_once(&claim, ttl).await {
                    Ok(true) => true,
                    Ok(false) => {
                        tracing::info!(client_id, "client assertion replayed");
                        false
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot check assertion reuse; refused");
                        false
                    }
                },
                Err(why) => {
                    tracing::info!(client_id, reason = why, "client assertion refused");
                    false
                }
            }
        }
        (ClientAuth::TlsClientAuth { identity }, None, None, None) => {
            ctx.client_cert
                .as_ref()
                .is_some_and(|c| match IdentityKind::of(identity) {
                    IdentityKind::Uri => c.uris.iter().any(|u| u == identity),
                    IdentityKind::SubjectDn => c.subject == *identity,
                    IdentityKind::Dns => c.dns.iter().any(|d| d.eq_ignore_ascii_case(identity)),
                })
        }
        _ => false,
    };
    if !ok {
        tracing::info!(client_id, method = client.auth.method(), "client authentication failed");
        return Err(OAuthError::client(tried_basic));
    }
    Ok(Authenticated {
        bound_to_certificate: matches!(client.auth, ClientAuth::TlsClientAuth { .. }),
        client,
    })
}

async fn check_secret(server: &OAuthServer, client_id: &str, secret: &str) -> bool {
    server
        .store()
        .verify_client_secret(client_id, secret)
        .await
        .unwrap_or(false)
}

/// RFC 6749 §2.3.1: `Basic base64(urlencode(id):urlencode(secret))`.
fn basic_credentials(req: &request::Parts) -> Result<Option<(String, String)>, OAuthError> {
    let mut values = req.headers.get_all(header::AUTHORIZATION).iter();
    let Some(v) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(OAuthError::request("more than one Authorization header"));
    }
    let v = v
        .to_str()
        .map_err(|_| OAuthError::request("Authorization is not ASCII"))?;
    let Some((scheme, rest)) = v.split_once(' ') else {
        return Err(OAuthError::client(true));
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::client(true));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| OAuthError::client(true))?;
    let text = String::from_utf8(decoded).map_err(|_| OAuthError::client(true))?;
    let (id, secret) = text.split_once(':').ok_or_else(|| OAuthError::client(true))?;
    let id = crate::form::decode(id).map_err(|_| OAuthError::client(true))?;
    let secret = crate::form::decode(secret).map_err(|_| OAuthError::client(true))?;
    Ok(Some((id, secret)))
}

fn unverified_sub(assertion: &str) -> Option<String> {
    let claims: Map<String, Value> = jsonwebtoken::dangerous::insecure_decode_claims(assertion).ok()?;
    claims.get("sub").and_then(Value::as_str).map(str::to_owned)
}

/// RFC 7523 §3 with RFC 7521 §5.2: signed by the client's key, `iss` and
/// `sub` are the client, `aud` is the token endpoint or the issuer, short
/// lived, and used once.
/// Returns the replay-claim key and how long to hold it.
fn check_assertion(
    server: &OAuthServer,
    client_id: &str,
    pem: &str,
    assertion: &str,
) -> Result<(String, u64), &'static str> {
    if assertion.len() > 8192 {
        return Err("assertion too large");
    }
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| "unreadable assertion header")?;
    let allowed = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];
    if !allowed.contains(&header.alg) {
        return Err("assertion algorithm not allowed");
    }
    let key = DecodingKey::from_rsa_pem(pem.as_bytes())
        .or_else(|_| DecodingKey::from_ec_pem(pem.as_bytes()))
        .or_else(|_| DecodingKey::from_ed_pem(pem.as_bytes()))
        .map_err(|_| "registered public key unreadable")?;
    if key.family() != header.alg.family() {
        return Err("assertion algorithm does not fit the registered key");
    }
    let cfg = server.cfg();
    let mut v = Validation::new(header.alg);
    v.leeway = 30;
    v.set_issuer(&[client_id]);
    v.sub = Some(client_id.to_owned());
    v.set_audience(&[cfg.endpoint_url("token"), cfg.issuer.clone()]);
    v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    let data = jsonwebtoken::decode::<Map<String, Value>>(assertion, &key, &v).map_err(|_| "assertion invalid")?;
    let now = now_secs();
    let exp = data.claims.get("exp").and_then(Value::as_i64).ok_or("exp missing")?;
    let max = i64::try_from(cfg.max_assertion_lifetime_secs).unwrap_or(300);
    if exp > now + max + 30 {
        return Err("assertion lives too long");
    }
    if let Some(iat) = data.claims.get("iat").and_then(Value::as_i64)
        && iat > now + 30
    {
        return Err("assertion issued in the future");
    }
    let jti = data.claims.get("jti").and_then(Value::as_str).ok_or("jti missing")?;
    // Remembered past `exp` by the leeway, so it cannot come back then.
    let ttl = u64::try_from(exp + 30 - now).unwrap_or(1).max(1);
    Ok((format!("assertion:{client_id}:{jti}"), ttl))
}

/// Which certificate field a registered `tls_client_auth` identity is
/// compared with (RFC 8705 §2.1.2 registers one field per client). Told from
/// its shape: a URI starts with a scheme, a DN has `=`, a DNS name neither,
/// so a DNS SAN can never stand in for a URI identity or the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdentityKind {
    Uri,
    SubjectDn,
    Dns,
}

impl IdentityKind {
    pub(crate) fn of(identity: &str) -> Self {
        let scheme_len = identity
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
            .count();
        let has_scheme = scheme_len > 0
            && identity.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
            && identity.as_bytes().get(scheme_len) == Some(&b':');
        if has_scheme {
            Self::Uri
        } else if identity.contains('=') {
            Self::SubjectDn
        } else {
            Self::Dns
        }
    }
}

#[cfg(test)]
mod identity_kind_tests {
    use super::IdentityKind;

    #[test]
    fn each_identity_names_one_certificate_field() {
        for (id, kind) in [
            ("spiffe://example.org/robot", IdentityKind::Uri),
            ("urn:example:robot", IdentityKind::Uri),
            ("CN=robot,O=Example", IdentityKind::SubjectDn),
            ("CN=host:8443", IdentityKind::SubjectDn),
            ("robot.example.org", IdentityKind::Dns),
        ] {
            assert_eq!(IdentityKind::of(id), kind, "{id}");
        }
    }
}
