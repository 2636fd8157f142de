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
    /// `POST {prefix}/revoke` (RFC 7009).
    Revoke,
    /// `POST {prefix}/introspect` (RFC 7662).
    Introspect,
}

impl Endpoint {
    /// Every endpoint with its path and method, for mounting.
    pub fn all(cfg: &OAuthServerConfig) -> [(Endpoint, String, Method); 5] {
        [
            (Self::Token, cfg.endpoint_path("token"), Method::POST),
            (Self::Jwks, cfg.endpoint_path("jwks"), Method::GET),
            (Self::Metadata, cfg.metadata_path(), Method::GET),
            (Self::Revoke, cfg.endpoint_path("revoke"), Method::POST),
            (Self::Introspect, cfg.endpoint_path("introspect"), Method::POST),
        ]
    }

    /// Route id of the mounted endpoint (ids starting with `warden:` are reserved).
    pub fn route_id(self) -> &'static str {
        match self {
            Self::Token => "warden:oauth-token",
            Self::Jwks => "warden:oauth-jwks",
            Self::Metadata => "warden:oauth-metadata",
            Self::Revoke => "warden:oauth-revoke",
            Self::Introspect => "warden:oauth-introspect",
        }
    }
}

/// The running authorization server.
pub struct OAuthServer {
    cfg: OAuthServerConfig,
    store: Store,
    keys: Keys,
    shared: Arc<dyn warden_core::SharedState>,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    last_unknown_kid: tokio::sync::Mutex<Option<std::time::Instant>>,
    identity_cache: crate::identity::IdentityCache,
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
    /// One-time claims (assertion and DPoP proof replay) go to `shared`, so
    /// in a cluster with Redis a proof works once across every gateway.
    pub async fn start(
        cfg: OAuthServerConfig,
        store: Store,
        shared: Arc<dyn warden_core::SharedState>,
    ) -> Result<Arc<Self>, warden_store::StoreError> {
        let server = Arc::new(Self {
            cfg,
            store,
            keys: Keys::new(),
            shared,
            task: std::sync::Mutex::new(None),
            last_unknown_kid: tokio::sync::Mutex::new(None),
            identity_cache: crate::identity::IdentityCache::default(),
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
            Endpoint::Revoke => match self.revoke(req, body, ctx).await {
                // RFC 7009 §2.2: 200 whether or not the token was valid.
                Ok(()) => no_store(Response::new(Bytes::new())),
                Err(e) => no_store(e.response()),
            },
            Endpoint::Introspect => match self.introspect(req, body, ctx).await {
                Ok(v) => no_store(json_response(StatusCode::OK, &v)),
                Err(e) => no_store(e.response()),
            },
        }
    }

    /// A form body, after the Content-Type check.
    pub(crate) fn form(req: &request::Parts, body: &Bytes) -> Result<HashMap<String, String>, OAuthError> {
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
        crate::form::parse(body).map_err(OAuthError::request)
    }

    fn metadata(&self) -> Value {
        json!({
            "issuer": self.cfg.issuer,
            "token_endpoint": self.cfg.endpoint_url("token"),
            "jwks_uri": self.cfg.endpoint_url("jwks"),
            "grant_types_supported": ["client_credentials", "refresh_token"],
            "revocation_endpoint": self.cfg.endpoint_url("revoke"),
            "introspection_endpoint": self.cfg.endpoint_url("introspect"),
            "revocation_endpoint_auth_methods_supported":
                ["client_secret_basic", "client_secret_post", "private_key_jwt", "tls_client_auth"],
            "introspection_endpoint_auth_methods_supported":
                ["client_secret_basic", "client_secret_post", "private_key_jwt", "tls_client_auth"],
            "token_endpoint_auth_methods_supported":
                ["client_secret_basic", "client_secret_post", "private_key_jwt", "tls_client_auth"],
            "token_endpoint_auth_signing_alg_values_supported": ["ES256", "ES384", "RS256", "PS256", "EdDSA"],
            "tls_client_certificate_bound_access_tokens": true,
            "dpop_signing_alg_values_supported": ["ES256", "ES384", "EdDSA", "RS256", "PS256"],
            "response_types_supported": [],
        })
    }

    async fn token(&self, req: &request::Parts, body: &Bytes, ctx: &RequestCtx) -> Result<Value, OAuthError> {
        let form = Self::form(req, body)?;
        let client = client_auth::authenticate(self, req, &form, ctx).await?;
        let jkt = self.dpop_proof(req, ctx).await?;
        let bind = Binding { jkt: jkt.as_deref() };
        match form.get("grant_type").map(String::as_str) {
            Some("client_credentials") => {
                let scopes = granted_scopes(&client.client.scopes, form.get("scope").map(String::as_str))?;
                self.check_resource(&form)?;
                self.issue(&client, &scopes, ctx, None, bind).await
            }
            Some("refresh_token") if client.client.refresh_tokens => self.refresh(&client, &form, ctx, bind).await,
            Some("refresh_token") => Err(OAuthError::new(
                "unauthorized_client",
                "this client is not registered for refresh tokens",
            )),
            Some(_) => Err(OAuthError::new(
                "unsupported_grant_type",
                "only client_credentials and refresh_token are supported",
            )),
            None => Err(OAuthError::request("grant_type is missing")),
        }
    }

    /// RFC 9449: a `DPoP` header on a token request must hold a valid, unused
    /// proof for this endpoint; the token is then bound to its key. Returns
    /// the key's thumbprint.
    async fn dpop_proof(&self, req: &request::Parts, ctx: &RequestCtx) -> Result<Option<String>, OAuthError> {
        let mut values = req.headers.get_all("dpop").iter();
        let Some(proof) = values.next() else { return Ok(None) };
        let bad = |why: &str| {
            tracing::info!(reason = why, "DPoP proof refused at the token endpoint");
            OAuthError::new("invalid_dpop_proof", "the DPoP proof is not valid")
        };
        if values.next().is_some() {
            return Err(bad("more than one DPoP header"));
        }
        let proof = proof.to_str().map_err(|_| bad("not ASCII"))?;
        let now = now_secs();
        // The URL the client used: the configured public one, or the one
        // this request arrived on.
        let configured = self.cfg.endpoint_url("token");
        let arrived = req
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| format!("{}://{h}{}", if ctx.secure { "https" } else { "http" }, req.uri.path()));
        let mut last = "no URL matched";
        let mut checked = None;
        for htu in std::iter::once(configured).chain(arrived) {
            let expect = warden_policies::dpop::Expect {
                htm: "POST",
                htu: &htu,
                access_token: None,
                now,
            };
            match warden_policies::dpop::verify(proof, &expect) {
                Ok(p) => {
                    checked = Some(p);
                    break;
                }
                Err(why) => last = why,
            }
        }
        let p = checked.ok_or_else(|| bad(last))?;
        // Acceptable for up to twice the iat window: remember it that long.
        let ttl = u64::try_from(warden_policies::dpop::MAX_PROOF_AGE_SECS * 2 + 1).unwrap_or(121);
        match self.shared.claim_once(&format!("dpop:{}:{}", p.jkt, p.jti), ttl).await {
            Ok(true) => Ok(Some(p.jkt)),
            Ok(false) => Err(bad("proof replayed")),
            Err(_) => Err(bad("replay check unavailable")),
        }
    }

    fn check_resource(&self, form: &HashMap<String, String>) -> Result<(), OAuthError> {
        match form.get("resource") {
            Some(r) if r != self.cfg.audience() => Err(OAuthError::new("invalid_target", "unknown resource")),
            _ => Ok(()),
        }
    }

    /// The refresh_token grant: the presented token is used up and replaced;
    /// a token used twice revokes its family.
    async fn refresh(
        &self,
        client: &Authenticated,
        form: &HashMap<String, String>,
        ctx: &RequestCtx,
        bind: Binding<'_>,
    ) -> Result<Value, OAuthError> {
        let token = form
            .get("refresh_token")
            .ok_or_else(|| OAuthError::request("refresh_token is missing"))?;
        let outcome = self
            .store
            .use_refresh_token(token, &client.client.client_id)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "refresh token lookup failed");
                OAuthError::server()
            })?;
        let grant = match outcome {
            warden_store::RefreshOutcome::Rotated(g) => g,
            warden_store::RefreshOutcome::Invalid => {
                return Err(OAuthError::new("invalid_grant", "the refresh token is not valid"));
            }
            warden_store::RefreshOutcome::Reused => {
                tracing::warn!(client_id = %client.client.client_id, "refresh token reused: its family is revoked");
                return Err(OAuthError::new("invalid_grant", "the refresh token is not valid"));
            }
        };
        let had: Vec<String> = grant
            .scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        // A refresh may narrow the scope, never widen it.
        let scopes = granted_scopes(&had, form.get("scope").map(String::as_str))?;
        self.issue(client, &scopes, ctx, Some(&grant.family), bind).await
    }

    /// Signs an access token (and, for clients registered for them, a
    /// refresh token in `family` or a new family).
    async fn issue(
        &self,
        client: &Authenticated,
        scopes: &[String],
        ctx: &RequestCtx,
        family: Option<&str>,
        bind: Binding<'_>,
    ) -> Result<Value, OAuthError> {
        let ring = self.keys.ring();
        let Some((kid, alg, key)) = &ring.signer else {
            tracing::error!("no usable signing key; token refused");
            return Err(OAuthError::server());
        };
        let now = now_secs();
        let ttl = i64::try_from(self.cfg.access_token_ttl_secs).unwrap_or(600);
        let jti = random_id();
        let mut claims = json!({
            "iss": self.cfg.issuer,
            "sub": client.client.client_id,
            "client_id": client.client.client_id,
            "aud": self.cfg.audience(),
            "iat": now,
            "exp": now + ttl,
            "jti": jti,
        });
        if !scopes.is_empty() {
            claims["scope"] = Value::String(scopes.join(" "));
        }
        // RFC 8705 §3: a client that authenticated with its certificate gets
        // a token bound to it.
        if client.bound_to_certificate
            && let Some(cert) = &ctx.client_cert
            && let Some(thumb) = cert.x5t_s256()
        {
            claims["cnf"] = json!({ "x5t#S256": thumb });
        }
        // RFC 9449 §6: bound to the DPoP proof's key.
        if let Some(jkt) = bind.jkt {
            if !claims["cnf"].is_object() {
                claims["cnf"] = json!({});
            }
            claims["cnf"]["jkt"] = Value::String(jkt.to_owned());
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
            "token_type": if bind.jkt.is_some() { "DPoP" } else { "Bearer" },
            "expires_in": ttl,
        });
        if !scopes.is_empty() {
            answer["scope"] = Value::String(scopes.join(" "));
        }
        if client.client.refresh_tokens {
            let refresh = self
                .store
                .issue_refresh_token(&warden_store::NewRefresh {
                    family,
                    client_id: &client.client.client_id,
                    scope: &scopes.join(" "),
                    ttl_secs: i64::try_from(self.cfg.refresh_token_ttl_secs).unwrap_or(86_400),
                    access_jti: &jti,
                    access_exp: now + ttl,
                })
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "cannot store a refresh token");
                    OAuthError::server()
                })?
                // The family was revoked while this rotation ran (a reuse
                // raced it): the access token signed above is never handed out.
                .ok_or_else(|| OAuthError::new("invalid_grant", "the refresh token is not valid"))?;
            answer["refresh_token"] = Value::String(refresh);
        }
        Ok(answer)
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn shared(&self) -> &dyn warden_core::SharedState {
        self.shared.as_ref()
    }

    pub(crate) fn keys(&self) -> &Keys {
        &self.keys
    }

    pub(crate) fn identity_cache(&self) -> &crate::identity::IdentityCache {
        &self.identity_cache
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

/// What an issued access token is bound to besides a client certificate.
#[derive(Clone, Copy)]
struct Binding<'a> {
    /// DPoP key thumbprint.
    jkt: Option<&'a str>,
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

pub(crate) fn random_id() -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut b = [0u8; 18];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
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

    pub(crate) fn server() -> Self {
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
