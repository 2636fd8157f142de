//! Revocation (RFC 7009) and introspection (RFC 7662) of this server's
//! tokens, and the check that a token is one of its access tokens.

use bytes::Bytes;
use http::request;
use serde_json::{Value, json};
use warden_core::RequestCtx;

use crate::client_auth;
use crate::server::{OAuthError, OAuthServer};

impl OAuthServer {
    /// RFC 7009: a client revokes one of its own tokens. A refresh token
    /// takes its whole family (and the access tokens it produced) with it.
    pub(crate) async fn revoke(&self, req: &request::Parts, body: &Bytes, ctx: &RequestCtx) -> Result<(), OAuthError> {
        let form = Self::form(req, body)?;
        let client = client_auth::authenticate(self, req, &form, ctx).await?;
        let token = form
            .get("token")
            .ok_or_else(|| OAuthError::request("token is missing"))?;
        let id = &client.client.client_id;
        if token.starts_with("wrt_") {
            self.store().revoke_refresh_token(token, id).await.map_err(|e| {
                tracing::error!(error = %e, "cannot revoke a refresh token");
                OAuthError::server()
            })?;
            return Ok(());
        }
        if let Some(claims) = self.verify_own(token)
            && claims.get("client_id").and_then(Value::as_str) == Some(id.as_str())
            && let (Some(jti), Some(exp)) = (
                claims.get("jti").and_then(Value::as_str),
                claims.get("exp").and_then(Value::as_i64),
            )
        {
            self.store()
                .revoke_token(jti, exp, Some("revoked by its client"))
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "cannot revoke an access token");
                    OAuthError::server()
                })?;
            tracing::info!(client_id = %id, jti, "access token revoked by its client");
        }
        Ok(())
    }

    /// RFC 7662 for this server's access tokens. A client may introspect
    /// tokens issued to itself; one holding the `warden:introspect` scope
    /// (a resource server) may introspect any.
    pub(crate) async fn introspect(
        &self,
        req: &request::Parts,
        body: &Bytes,
        ctx: &RequestCtx,
    ) -> Result<Value, OAuthError> {
        let form = Self::form(req, body)?;
        let client = client_auth::authenticate(self, req, &form, ctx).await?;
        let token = form
            .get("token")
            .ok_or_else(|| OAuthError::request("token is missing"))?;
        let inactive = json!({ "active": false });
        let Some(claims) = self.verify_own(token) else {
            return Ok(inactive);
        };
        let own = claims.get("client_id").and_then(Value::as_str) == Some(client.client.client_id.as_str());
        let privileged = client.client.scopes.iter().any(|s| s == "warden:introspect");
        if !own && !privileged {
            return Ok(inactive);
        }
        // A token of a client disabled since is no longer active.
        let holder = claims.get("client_id").and_then(Value::as_str).unwrap_or("");
        match self.store().client(holder).await {
            Ok(Some(c)) if c.active => {}
            Ok(_) => return Ok(inactive),
            Err(e) => {
                tracing::error!(error = %e, "cannot check the token's client for introspection");
                return Err(OAuthError::server());
            }
        }
        if let Some(jti) = claims.get("jti").and_then(Value::as_str) {
            match self.store().is_token_revoked(jti).await {
                Ok(false) => {}
                Ok(true) => return Ok(inactive),
                Err(e) => {
                    tracing::error!(error = %e, "cannot check revocation for introspection");
                    return Err(OAuthError::server());
                }
            }
        }
        let mut answer = json!({ "active": true, "token_type": "Bearer" });
        for k in ["scope", "client_id", "sub", "iss", "aud", "exp", "iat", "jti", "cnf"] {
            if let Some(v) = claims.get(k) {
                answer[k] = v.clone();
            }
        }
        Ok(answer)
    }

    /// The claims of `token` if this server issued it and it is unexpired.
    pub(crate) fn verify_own(&self, token: &str) -> Option<serde_json::Map<String, Value>> {
        if token.len() > 8192 {
            return None;
        }
        let header = jsonwebtoken::decode_header(token).ok()?;
        // Access tokens only: identity tokens for upstreams carry another typ.
        if !header.typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("at+jwt")) {
            return None;
        }
        let kid = header.kid?;
        let ring = self.keys().ring();
        let jwk = ring.jwks["keys"]
            .as_array()?
            .iter()
            .find(|k| k["kid"] == kid.as_str())?;
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).ok()?;
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).ok()?;
        if !matches!(
            header.alg,
            jsonwebtoken::Algorithm::ES256 | jsonwebtoken::Algorithm::EdDSA
        ) || key.family() != header.alg.family()
        {
            return None;
        }
        let mut v = jsonwebtoken::Validation::new(header.alg);
        v.set_issuer(&[&self.cfg().issuer]);
        v.set_audience(&[self.cfg().audience()]);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        v.leeway = 0;
        jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key, &v)
            .ok()
            .map(|d| d.claims)
    }
}
