//! The endpoints.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header, request};
use serde_json::{Value, json};
use warden_core::RequestCtx;
use warden_store::Store;

use crate::client_auth::{self, Authenticated};
use crate::config::OAuthServerConfig;
use crate::keys::{Keys, now_secs};

/// Which built-in endpoint a route serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST {prefix}/token`.
    Token,
    /// `GET {prefix}/jwks`.
    Jwks,
    /// `GET /.well-known/oauth-authorization-server…`.
    Metadata,
}

impl Endpoint {
    /// Every endpoint with its path and method, for mounting.
    pub fn all(cfg: &OAuthServerConfig) -> [(Endpoint, String, Method); 3] {
        [
            (Self::Token, cfg.endpoint_path("token"), Method::POST),
            (Self::Jwks, cfg.endpoint_path("jwks"), Method::GET),
            (Self::Metadata, cfg.metadata_path(), Method::GET),
        ]
    }

    /// Route id of the mounted endpoint (ids starting with `warden:` are reserved).
    pub fn route_id(self) -> &'static str {
        match self {
            Self::Token => "warden:oauth-token",
            Self::Jwks => "warden:oauth-jwks",
            Self::Metadata => "warden:oauth-metadata",
        }
    }
}

/// The running authorization server.
pub struct OAuthServer {
    cfg: OAuthServerConfig,
    store: Store,
    keys: Keys,
    assertions: client_auth::ReplayCache,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    last_unknown_kid: tokio::sync::Mutex<Option<std::time::Instant>>,
}

impl std::fmt::Debug for OAuthServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthServer")
            .field("issuer", &self.cfg.issuer)
            .finish_non_exhaustive()
    }
}

/// How often keys are re-read (another gateway may have rotated them) and
/// rotation is checked.
const KEY_REFRESH: Duration = Duration::from_secs(60);

impl OAuthServer {
    /// Loads (or on first run creates) the signing keys, then keeps them
    /// current in the background until [`OAuthServer::stop`].
    pub async fn start(cfg: OAuthServerConfig, store: Store) -> Result<Arc<Self>, warden_store::StoreError> {
        let server = Arc::new(Self {
            cfg,
            store,
            keys: Keys::new(),
            assertions: client_auth::ReplayCache::default(),
            task: std::sync::Mutex::new(None),
            last_unknown_kid: tokio::sync::Mutex::new(None),
        });
        server.keys.refresh(&server.store, &server.cfg).await?;
        let weak = Arc::downgrade(&server);
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(KEY_REFRESH).await;
                let Some(s) = weak.upgrade() else { return };
                if let Err(e) = s.keys.refresh(&s.store, &s.cfg).await {
                    tracing::error!(error = %e, "cannot refresh token-signing keys; the current ones stay in use");
                }
            }
        });
        if let Ok(mut t) = server.task.lock() {
            *t = Some(task);
        }
        Ok(server)
    }

    /// Stops the key refresher.
    pub fn stop(&self) {
        if let Ok(mut t) = self.task.lock()
            && let Some(t) = t.take()
        {
            t.abort();
        }
    }

    /// The settings it runs with.
    pub fn config(&self) -> &OAuthServerConfig {
        &self.cfg
    }

    /// Answers one request to `endpoint`.
    pub async fn handle(
        &self,
        endpoint: Endpoint,
        req: &request::Parts,
        body: &Bytes,
        ctx: &RequestCtx,
    ) -> Response<Bytes> {
        match endpoint {
            Endpoint::Jwks => {
                let mut r = json_response(StatusCode::OK, &self.keys.ring().jwks);
                r.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
                r
            }
            Endpoint::Metadata => json_response(StatusCode::OK, &self.metadata()),
            Endpoint::Token => match self.token(req, body, ctx).await {
                Ok(v) => no_store(json_response(StatusCode::OK, &v)),
                Err(e) => no_store(e.response()),
            },
        }
    }

    fn metadata(&self) -> Value {
        json!({
            "issuer": self.cfg.issuer,
            "token_endpoint": self.cfg.endpoint_url("token"),
            "jwks_uri": self.cfg.endpoint_url("jwks"),
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported":
                ["client_secret_basic", "client_secret_post", "private_key_jwt", "tls_client_auth"],
            "token_endpoint_auth_signing_alg_values_supported": ["ES256", "ES384", "RS256", "PS256", "EdDSA"],
            "tls_client_certificate_bound_access_tokens": true,
            "response_types_supported": [],
        })
    }

    async fn token(&self, req: &request::Parts, body: &Bytes, ctx: &RequestCtx) -> Result<Value, OAuthError> {
        let ct = req
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct
            .split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
        {
            return Err(OAuthError::request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let form = crate::form::parse(body).map_err(OAuthError::request)?;
        let client = client_auth::authenticate(self, req, &form, ctx).await?;
        match form.get("grant_type").map(String::as_str) {
            Some("client_credentials") => self.client_credentials(&client, &form, ctx),
            Some(_) => Err(OAuthError::new(
                "unsupported_grant_type",
                "only client_credentials is supported",
            )),
            None => Err(OAuthError::request("grant_type is missing")),
        }
    }

    fn client_credentials(
        &self,
        client: &Authenticated,
        form: &HashMap<String, String>,
        ctx: &RequestCtx,
    ) -> Result<Value, OAuthError> {
        let scopes = granted_scopes(&client.client.scopes, form.get("scope").map(String::as_str))?;
        if let Some(resource) = form.get("resource")
            && resource != self.cfg.audience()
        {
            return Err(OAuthError::new("invalid_target", "unknown resource"));
        }
        let ring = self.keys.ring();
        let Some((kid, alg, key)) = &ring.signer else {
            tracing::error!("no usable signing key; token refused");
            return Err(OAuthError::server());
        };
        let now = now_secs();
        let ttl = i64::try_from(self.cfg.access_token_ttl_secs).unwrap_or(600);
        let mut claims = json!({
            "iss": self.cfg.issuer,
            "sub": client.client.client_id,
            "client_id": client.client.client_id,
            "aud": self.cfg.audience(),
            "iat": now,
            "exp": now + ttl,
            "jti": random_id(),
        });
        if !scopes.is_empty() {
            claims["scope"] = Value::String(scopes.join(" "));
        }
        // RFC 8705 §3: a client that authenticated with its certificate gets
        // a token bound to it.
        if client.bound_to_certificate
            && let Some(cert) = &ctx.client_cert
            && let Some(thumb) = hex_to_b64url(&cert.sha256)
        {
            claims["cnf"] = json!({ "x5t#S256": thumb });
        }
        let mut header = jsonwebtoken::Header::new(*alg);
        header.kid = Some(kid.clone());
        header.typ = Some("at+jwt".into());
        let token = jsonwebtoken::encode(&header, &claims, key).map_err(|e| {
            tracing::error!(error = %e, "token signing failed");
            OAuthError::server()
        })?;
        tracing::info!(client = %client.client.name, client_id = %client.client.client_id, scope = %scopes.join(" "), "access token issued");
        let mut answer = json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": ttl,
        });
        if !scopes.is_empty() {
            answer["scope"] = Value::String(scopes.join(" "));
        }
        Ok(answer)
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn assertions(&self) -> &client_auth::ReplayCache {
        &self.assertions
    }

    pub(crate) fn cfg(&self) -> &OAuthServerConfig {
        &self.cfg
    }
}

impl warden_core::LocalIssuer for OAuthServer {
    fn issuer(&self) -> &str {
        &self.cfg.issuer
    }

    fn jwks(&self) -> (u64, Arc<Value>) {
        (self.keys.generation(), Arc::clone(&self.keys.ring().jwks))
    }

    fn refresh_keys(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            // At most once a second, never queued: a flood of made-up `kid`s
            // cannot turn into a flood of store queries.
            let Ok(mut last) = self.last_unknown_kid.try_lock() else {
                return;
            };
            if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
                return;
            }
            *last = Some(std::time::Instant::now());
            let refresh = self.keys.refresh(&self.store, &self.cfg);
            if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(2), refresh).await {
                tracing::warn!(error = %e, "cannot re-read token-signing keys");
            }
        })
    }
}

impl Drop for OAuthServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The scopes to grant: all the client may have when none are asked for,
/// else exactly those asked for, each of which it must be allowed.
fn granted_scopes(allowed: &[String], asked: Option<&str>) -> Result<Vec<String>, OAuthError> {
    let Some(asked) = asked else {
        return Ok(allowed.to_vec());
    };
    let mut out: Vec<String> = Vec::new();
    for s in asked.split(' ').filter(|s| !s.is_empty()) {
        if !allowed.iter().any(|a| a == s) {
            return Err(OAuthError::new(
                "invalid_scope",
                "a requested scope is not allowed for this client",
            ));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    Ok(out)
}

fn random_id() -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut b = [0u8; 18];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn hex_to_b64url(hex: &str) -> Option<String> {
    use base64::Engine as _;
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| hex.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect();
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes?))
}

fn json_response(status: StatusCode, v: &Value) -> Response<Bytes> {
    let mut r = Response::new(Bytes::from(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// RFC 6749 §5.1: token responses are never cached.
fn no_store(mut r: Response<Bytes>) -> Response<Bytes> {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// An RFC 6749 §5.2 error.
#[derive(Debug)]
pub(crate) struct OAuthError {
    pub code: &'static str,
    pub description: &'static str,
    pub status: StatusCode,
    /// Set when the client tried HTTP Basic (401 then names the scheme).
    pub basic_challenge: bool,
}

impl OAuthError {
    pub(crate) fn new(code: &'static str, description: &'static str) -> Self {
        Self {
            code,
            description,
            status: StatusCode::BAD_REQUEST,
            basic_challenge: false,
        }
    }

    pub(crate) fn request(description: impl Into<String>) -> Self {
        // Descriptions from parsing are fixed strings chosen by us; keep the
        // answer static so no client input is echoed.
        let d: String = description.into();
        tracing::debug!(reason = %d, "invalid token request");
        Self::new("invalid_request", "the request is malformed")
    }

    pub(crate) fn client(basic: bool) -> Self {
        Self {
            code: "invalid_client",
            description: "client authentication failed",
            status: StatusCode::UNAUTHORIZED,
            basic_challenge: basic,
        }
    }

    fn server() -> Self {
        Self {
            code: "server_error",
            description: "the token could not be issued",
            status: StatusCode::INTERNAL_SERVER_ERROR,
            basic_challenge: false,
        }
    }

    fn response(&self) -> Response<Bytes> {
        let mut r = json_response(
            self.status,
            &json!({ "error": self.code, "error_description": self.description }),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            let challenge = if self.basic_challenge {
                r#"Basic realm="warden""#
            } else {
                r#"Bearer realm="warden""#
            };
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::granted_scopes;

    #[test]
    fn scopes_are_a_subset_of_the_clients() {
        let allowed = vec!["read".to_owned(), "write".to_owned()];
        assert_eq!(granted_scopes(&allowed, None).ok(), Some(allowed.clone()));
        assert_eq!(
            granted_scopes(&allowed, Some("read read")).ok(),
            Some(vec!["read".to_owned()])
        );
        assert!(granted_scopes(&allowed, Some("read admin")).is_err());
    }
}
