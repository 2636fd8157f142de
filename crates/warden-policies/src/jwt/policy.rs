//! `Jwt`: token extraction and verification.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{self, HeaderValue};
use http::request;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use warden_core::{Decision, Policy, PolicyError, ProblemKind, Rejection, RequestCtx};

/// A compiled verification key.
#[derive(Debug)]
pub(crate) struct Key {
    pub kid: Option<String>,
    pub key: Arc<DecodingKey>,
}

/// A compiled issuer.
#[derive(Debug)]
pub(crate) struct Issuer {
    pub issuer: String,
    pub audiences: Vec<String>,
    pub algorithms: Vec<Algorithm>,
    pub keys: Vec<Key>,
    pub kids: HashMap<String, usize>,
    pub jwks: Option<Arc<super::jwks::Jwks>>,
    pub introspector: Option<super::introspect::Introspector>,
    pub leeway_secs: u64,
    pub required_claims: Vec<String>,
    pub typ: Option<String>,
    pub consumer_claim: String,
    /// Keys come from the gateway's own authorization server.
    pub builtin: bool,
}

/// Compiled `jwt`.
#[derive(Debug)]
pub struct Jwt {
    pub(crate) issuers: Vec<Issuer>,
    pub(crate) query_param: Option<String>,
    pub(crate) max_token_bytes: usize,
    pub(crate) cache: Option<super::cache::TokenCache>,
    pub(crate) require: super::RequireConfig,
    pub(crate) anonymous: bool,
    pub(crate) require_certificate_bound: bool,
    pub(crate) forward: Vec<(String, http::HeaderName)>,
    /// The header names of `forward`, for removal of client copies.
    pub(crate) forward_names: Vec<http::HeaderName>,
    /// Revoked tokens and disabled consumers, once started with a store.
    pub(crate) directory: DirectorySlot,
    /// Shared state for DPoP proof replay (memory in this process until started).
    pub(crate) shared: SharedSlot,
}

/// Set once at start.
#[derive(Default)]
pub(crate) struct SharedSlot(std::sync::OnceLock<Arc<dyn warden_core::SharedState>>);

impl std::fmt::Debug for SharedSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SharedSlot({})",
            if self.0.get().is_some() { "set" } else { "unset" }
        )
    }
}

/// Set once at start when the gateway has a store.
#[derive(Default)]
pub(crate) struct DirectorySlot(std::sync::OnceLock<Arc<dyn warden_core::Directory>>);

impl std::fmt::Debug for DirectorySlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DirectorySlot({})",
            if self.0.get().is_some() { "set" } else { "unset" }
        )
    }
}

/// Why a token was refused (log only; the client always gets the same answer).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    Missing,
    Invalid(String),
}

fn invalid(why: impl Into<String>) -> Refusal {
    Refusal::Invalid(why.into())
}

impl Jwt {
    /// The bearer token of the request, if any.
    fn token<'a>(&self, req: &'a request::Parts) -> Result<(&'a str, bool), Refusal> {
        let mut auth = req.headers.get_all(header::AUTHORIZATION).iter();
        if let Some(v) = auth.next() {
            if auth.next().is_some() {
                return Err(invalid("more than one Authorization header"));
            }
            let v = v.to_str().map_err(|_| invalid("Authorization is not ASCII"))?;
            let (scheme, token) = v
                .split_once(' ')
                .ok_or_else(|| invalid("Authorization without a scheme"))?;
            if scheme.eq_ignore_ascii_case("bearer") {
                return Ok((token.trim(), false));
            }
            // RFC 9449 §7.1: a DPoP-bound token comes with the DPoP scheme.
            if scheme.eq_ignore_ascii_case("dpop") {
                return Ok((token.trim(), true));
            }
            return Err(Refusal::Missing);
        }
        let Some(param) = &self.query_param else {
            return Err(Refusal::Missing);
        };
        match crate::query::single(req, param) {
            Ok(Some(v)) => Ok((v, false)),
            Ok(None) => Err(Refusal::Missing),
            Err(()) => Err(invalid("token query parameter given more than once")),
        }
    }

    /// Removes the token query parameter, so the token does not travel on to
    /// the upstream (and its logs).
    fn strip_query_token(&self, req: &mut request::Parts) {
        if let Some(param) = &self.query_param {
            crate::query::strip(req, param);
        }
    }

    /// Verifies `token`; returns the issuer, its claims, and until when
    /// (epoch seconds) the result may be reused.
    pub(crate) async fn verify(&self, token: &str, now: u64) -> Result<(&Issuer, Map<String, Value>, u64), Refusal> {
        if token.is_empty() {
            return Err(Refusal::Missing);
        }
        if token.len() > self.max_token_bytes {
            return Err(invalid(format!("token of {} bytes", token.len())));
        }
        if token.bytes().filter(|b| *b == b'.').count() != 2 {
            return self.introspect(token, now).await;
        }
        let header = match jsonwebtoken::decode_header(token) {
            Ok(h) => h,
            // Not a JWT after all: an opaque token with two dots.
            Err(_) if self.issuers.iter().any(|i| i.introspector.is_some()) => {
                return self.introspect(token, now).await;
            }
            Err(e) => return Err(invalid(format!("bad header: {e}"))),
        };
        let issuer = self.issuer_for(token)?;
        if !issuer.algorithms.contains(&header.alg) {
            return Err(invalid(format!("algorithm {:?} not allowed", header.alg)));
        }
        if let Some(want) = &issuer.typ {
            let typ = header.typ.as_deref().unwrap_or("");
            let typ = typ.strip_prefix("application/").unwrap_or(typ);
            if !typ.eq_ignore_ascii_case(want) {
                return Err(invalid(format!("typ `{typ}` is not `{want}`")));
            }
        }
        let candidates = candidates(issuer, header.kid.as_deref(), header.alg).await?;
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.leeway = issuer.leeway_secs;
        validation.validate_nbf = true;
        validation.set_issuer(&[&issuer.issuer]);
        validation.set_audience(&issuer.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let mut last = invalid("no key for this token");
        for key in candidates {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation) {
                Ok(data) => {
                    check_claims(issuer, &data.claims, now)?;
                    let until = data
                        .claims
                        .get("exp")
                        .and_then(Value::as_u64)
                        .map_or(now, |exp| exp.saturating_add(issuer.leeway_secs));
                    return Ok((issuer, data.claims, until));
                }
                Err(e) => last = invalid(e.to_string()),
            }
        }
        Err(last)
    }

    /// An opaque token: the first issuer with an introspection endpoint that
    /// calls it active (and whose `iss`/`aud`/`exp` checks pass) owns it.
    async fn introspect(&self, token: &str, now: u64) -> Result<(&Issuer, Map<String, Value>, u64), Refusal> {
        let mut last = invalid("opaque token and no introspection endpoint");
        for issuer in &self.issuers {
            let Some(intro) = &issuer.introspector else { continue };
            match intro.introspect(token, now).await {
                Ok(answer) => {
                    if let Err(e) = super::introspect::check_answer(&answer, issuer, now) {
                        last = invalid(e);
                        continue;
                    }
                    if let Some(missing) = issuer.required_claims.iter().find(|c| !answer.contains_key(*c)) {
                        last = invalid(format!("missing claim `{missing}`"));
                        continue;
                    }
                    let named = |k: &str| matches!(answer.get(k), Some(Value::String(s)) if !s.is_empty());
                    if !named(&issuer.consumer_claim) && !named("client_id") {
                        last = invalid("introspection names no consumer");
                        continue;
                    }
                    let cap = now.saturating_add(intro.max_cache_secs);
                    let until = answer.get("exp").and_then(Value::as_u64).map_or(cap, |e| e.min(cap));
                    return Ok((issuer, answer, until));
                }
                Err(e) => last = invalid(format!("introspection: {e}")),
            }
        }
        Err(last)
    }

    /// The issuer to verify against: the only one, or the one the (not yet
    /// verified) `iss` names — used only to pick keys, then verified.
    fn issuer_for(&self, token: &str) -> Result<&Issuer, Refusal> {
        if let [only] = self.issuers.as_slice() {
            return Ok(only);
        }
        let claims: Map<String, Value> =
            jsonwebtoken::dangerous::insecure_decode_claims(token).map_err(|e| invalid(format!("bad payload: {e}")))?;
        let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
        self.issuers
            .iter()
            .find(|i| i.issuer == iss)
            .ok_or_else(|| invalid("unknown issuer"))
    }
}

/// Keys that may verify a token with `kid` and `alg`: by `kid` from the
/// configured keys, then the JWKS (refetched once, rate-limited, when the
/// `kid` is unknown); without `kid`, every unnamed key of the right family.
async fn candidates(issuer: &Issuer, kid: Option<&str>, alg: Algorithm) -> Result<Vec<Arc<DecodingKey>>, Refusal> {
    let family = alg.family();
    if let Some(kid) = kid {
        if let Some(k) = issuer.kids.get(kid).and_then(|i| issuer.keys.get(*i)) {
            return Ok(vec![Arc::clone(&k.key)]);
        }
        let Some(jwks) = &issuer.jwks else {
            return Err(invalid("unknown kid"));
        };
        if let Some(k) = jwks.current().and_then(|s| s.by_kid.get(kid).cloned()) {
            return Ok(vec![k]);
        }
        jwks.refetch_for_unknown_kid().await;
        return jwks
            .current()
            .and_then(|s| s.by_kid.get(kid).cloned())
            .map(|k| vec![k])
            .ok_or_else(|| invalid("unknown kid"));
    }
    let mut out: Vec<Arc<DecodingKey>> = issuer
        .keys
        .iter()
        .filter(|k| k.kid.is_none() && k.key.family() == family)
        .map(|k| Arc::clone(&k.key))
        .collect();
    if let Some(set) = issuer.jwks.as_ref().and_then(|j| j.current()) {
        out.extend(set.unnamed.iter().filter(|k| k.family() == family).cloned());
    }
    Ok(out)
}

fn check_claims(issuer: &Issuer, claims: &Map<String, Value>, now: u64) -> Result<(), Refusal> {
    // The library also accepts `iss` as an array that contains the issuer.
    if claims.get("iss").and_then(Value::as_str) != Some(issuer.issuer.as_str()) {
        return Err(invalid("iss is not exactly the issuer"));
    }
    if let Some(iat) = claims.get("iat") {
        let iat = iat.as_u64().ok_or_else(|| invalid("iat is not a number"))?;
        if iat > now.saturating_add(issuer.leeway_secs) {
            return Err(invalid("iat in the future"));
        }
    }
    for c in &issuer.required_claims {
        if !claims.contains_key(c) {
            return Err(invalid(format!("missing claim `{c}`")));
        }
    }
    match claims.get(&issuer.consumer_claim) {
        Some(Value::String(s)) if !s.is_empty() => Ok(()),
        _ => Err(invalid(format!("no `{}` claim", issuer.consumer_claim))),
    }
}

/// The token as the request carried it.
pub(crate) struct Presented {
    /// The token, when it came with the `DPoP` scheme (else `None`: Bearer).
    pub token: Option<String>,
}

/// Sender constraint (RFC 9449): a token with `cnf.jkt` is usable only with
/// the `DPoP` scheme and a fresh, unused proof signed by the key with that
/// thumbprint, for this method and URL and this token (`ath`). A token
/// without it may not be sent with the `DPoP` scheme.
fn check_dpop(
    claims: &Map<String, Value>,
    req: &request::Parts,
    ctx: &RequestCtx,
    presented: &Presented,
    now: u64,
) -> Result<Option<String>, &'static str> {
    let jkt = claims
        .get("cnf")
        .and_then(Value::as_object)
        .and_then(|c| c.get("jkt"))
        .and_then(Value::as_str);
    let Some(jkt) = jkt else {
        return if presented.token.is_some() {
            Err("DPoP scheme with a token that is not DPoP-bound")
        } else {
            Ok(None)
        };
    };
    let Some(token) = presented.token.as_deref() else {
        return Err("DPoP-bound token sent as a bearer token");
    };
    let mut proofs = req.headers.get_all("dpop").iter();
    let proof = proofs.next().ok_or("DPoP-bound token without a proof")?;
    if proofs.next().is_some() {
        return Err("more than one DPoP proof");
    }
    let proof = proof.to_str().map_err(|_| "DPoP proof is not ASCII")?;
    let host = req
        .uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| req.headers.get(header::HOST).and_then(|h| h.to_str().ok()))
        .ok_or("request without a host")?;
    let htu = format!(
        "{}://{host}{}",
        if ctx.secure { "https" } else { "http" },
        req.uri.path()
    );
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let checked = crate::dpop::verify(
        proof,
        &crate::dpop::Expect {
            htm: req.method.as_str(),
            htu: &htu,
            access_token: Some(token),
            now,
        },
    )?;
    if checked.jkt != jkt {
        return Err("DPoP proof signed by another key");
    }
    Ok(Some(format!("dpop:{jkt}:{}", checked.jti)))
}

/// Sender constraint (RFC 8705): a token with `cnf.x5t#S256` is usable only
/// over a connection whose verified client certificate has that SHA-256
/// thumbprint.
fn check_binding(claims: &Map<String, Value>, ctx: &RequestCtx, required: bool) -> Result<(), String> {
    let cnf = claims.get("cnf").and_then(Value::as_object);
    let Some(thumb) = cnf.and_then(|c| c.get("x5t#S256")) else {
        return if required {
            Err("token is not certificate-bound".into())
        } else {
            Ok(())
        };
    };
    let Some(cert) = &ctx.client_cert else {
        return Err("certificate-bound token without a client certificate".into());
    };
    let presented = cert.x5t_s256().ok_or("bad certificate fingerprint")?;
    if thumb.as_str() == Some(presented.as_str()) {
        Ok(())
    } else {
        Err("token bound to another client certificate".into())
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

pub(crate) fn refusal(r: &Refusal) -> Rejection {
    let (code, reason, challenge) = match r {
        Refusal::Missing => ("jwt_missing", "no bearer token".to_owned(), r#"Bearer realm="warden""#),
        Refusal::Invalid(why) => (
            "jwt_invalid",
            why.clone(),
            r#"Bearer realm="warden", error="invalid_token""#,
        ),
    };
    Rejection::new(ProblemKind::Unauthorized, code, reason)
        .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge))
}

/// Who a verified token names, and whether the gateway issued it.
struct Identified {
    consumer: Arc<str>,
    claims: Arc<Map<String, Value>>,
    builtin: bool,
}

impl Jwt {
    /// A verified token: route requirements, then the consumer, the claims
    /// and the claim headers.
    async fn accept(
        &self,
        req: &mut request::Parts,
        ctx: &mut RequestCtx,
        presented: &Presented,
        token: Identified,
        now: u64,
    ) -> Decision {
        let Identified {
            consumer,
            claims,
            builtin,
        } = token;
        if let Some(dir) = self.directory.0.get() {
            // Checked on every request, cached verification or not: a
            // revocation applies from the next request on.
            if let Some(Value::String(jti)) = claims.get("jti")
                && dir.token_revoked(jti)
            {
                return Decision::Reject(refusal(&Refusal::Invalid("token revoked".into())));
            }
            if dir.consumer_disabled(&consumer) {
                return Decision::Reject(refusal(&Refusal::Invalid("consumer disabled".into())));
            }
            // Our own tokens name the client they were issued to; disabling
            // it ends them, not only its next token request.
            if builtin
                && let Some(Value::String(client)) = claims.get("client_id")
                && dir.client_disabled(client)
            {
                return Decision::Reject(refusal(&Refusal::Invalid("client disabled".into())));
            }
        }
        if let Err(r) = super::require::check(&self.require, &claims, now) {
            return Decision::Reject(r);
        }
        if let Err(why) = check_binding(&claims, ctx, self.require_certificate_bound) {
            return Decision::Reject(refusal(&Refusal::Invalid(why)));
        }
        match check_dpop(&claims, req, ctx, presented, now) {
            Err(why) => return Decision::Reject(refusal(&Refusal::Invalid(why.into()))),
            Ok(Some(claim)) => {
                // Single use across every route and, with Redis, every gateway.
                let ttl = u64::try_from(crate::dpop::MAX_PROOF_AGE_SECS * 2 + 1).unwrap_or(121);
                let first = match self.shared.0.get() {
                    Some(shared) => shared.claim_once(&claim, ttl).await,
                    None => Ok(crate::dpop::global_replay().first_use(
                        &claim,
                        i64::try_from(now + ttl).unwrap_or(i64::MAX),
                        i64::try_from(now).unwrap_or(i64::MAX),
                    )),
                };
                match first {
                    Ok(true) => {}
                    Ok(false) => return Decision::Reject(refusal(&Refusal::Invalid("DPoP proof replayed".into()))),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot check DPoP proof reuse; refused");
                        return Decision::Reject(refusal(&Refusal::Invalid("DPoP replay check unavailable".into())));
                    }
                }
            }
            Ok(None) => {}
        }
        self.strip_query_token(req);
        for (claim, header) in &self.forward {
            if let Some(v) = claims.get(claim).and_then(super::require::header_value) {
                req.headers.insert(header.clone(), v);
            }
        }
        if let Some(Value::Array(groups)) = claims.get("groups") {
            ctx.groups = groups.iter().filter_map(Value::as_str).map(Arc::from).collect();
        }
        ctx.consumer = Some(consumer);
        ctx.credential = claims
            .get("jti")
            .and_then(Value::as_str)
            .map(|j| Arc::from(format!("jti:{j}")));
        ctx.token_claims = Some(claims);
        ctx.authenticated = true;
        ctx.auth_method = Some("jwt");

        Decision::Continue
    }
}

impl Policy for Jwt {
    fn name(&self) -> &'static str {
        "jwt"
    }

    fn start(&self, services: &warden_core::Services) {
        if let Some(d) = &services.directory {
            let _ = self.directory.0.set(Arc::clone(d));
        }
        if let Some(sh) = &services.shared {
            let _ = self.shared.0.set(Arc::clone(sh));
        }
        for i in self.issuers.iter().filter(|i| i.builtin) {
            match (&services.local_issuer, &i.jwks) {
                (Some(local), Some(j)) if local.issuer() == i.issuer => j.set_local(local),
                _ => {
                    tracing::error!(issuer = %i.issuer, "built-in issuer without the matching oauth_server; its tokens are refused")
                }
            }
        }
        for i in &self.issuers {
            if let Some(j) = &i.jwks {
                j.start();
            }
        }
    }

    fn is_ready(&self) -> bool {
        self.issuers
            .iter()
            .all(|i| i.jwks.as_ref().is_none_or(|j| j.is_ready()))
    }

    async fn on_request(&self, req: &mut request::Parts, ctx: &mut RequestCtx) -> Result<Decision, PolicyError> {
        // Claim headers are the gateway's to write: drop the client's copies
        // whatever the outcome.
        warden_core::headers::remove_with_lookalikes(&mut req.headers, &self.forward_names);
        let (token, dpop_scheme) = match self.token(req) {
            Ok(t) => t,
            Err(Refusal::Missing) if self.anonymous || ctx.auth_any => return Ok(Decision::Continue),
            Err(r) => return Ok(Decision::Reject(refusal(&r))),
        };
        // Owned only for DPoP requests (the proof's `ath` covers the token).
        let presented = Presented {
            token: dpop_scheme.then(|| token.to_owned()),
        };
        let now = now_secs();
        // Key-set generation per issuer; keys past their grace period count
        // as a change, so no cached verification outlives usable keys.
        let generation = |i: usize| {
            self.issuers
                .get(i)
                .and_then(|iss| iss.jwks.as_ref())
                .map_or(0, |j| if j.usable() { j.generation() } else { u64::MAX })
        };
        if token.len() <= self.max_token_bytes
            && let Some(hit) = self.cache.as_ref().and_then(|c| c.get(token, now, generation))
        {
            let builtin = self.issuers.get(hit.issuer).is_some_and(|i| i.builtin);
            let identified = Identified {
                consumer: hit.consumer,
                claims: hit.claims,
                builtin,
            };
            return Ok(self.accept(req, ctx, &presented, identified, now).await);
        }
        // The key generation before verifying: a swap during verification
        // makes the entry stale rather than wrongly fresh.
        let before: Vec<u64> = (0..self.issuers.len()).map(generation).collect();
        match self.verify(token, now).await {
            Ok((issuer, claims, until)) => {
                let who = match (claims.get(&issuer.consumer_claim), claims.get("client_id")) {
                    (Some(Value::String(who)), _) | (_, Some(Value::String(who))) => who.as_str(),
                    _ => "",
                };
                // With several issuers, `sub` values are only unique per
                // issuer: `alice` from one provider is not `alice` from another.
                let consumer: Arc<str> = if self.issuers.len() > 1 {
                    Arc::from(format!("{}#{who}", issuer.issuer))
                } else {
                    Arc::from(who)
                };
                let claims = Arc::new(claims);
                let index = self.issuers.iter().position(|i| std::ptr::eq(i, issuer)).unwrap_or(0);
                let stable = before
                    .get(index)
                    .is_some_and(|g| *g != u64::MAX && *g == generation(index));
                if let Some(cache) = self.cache.as_ref().filter(|_| stable) {
                    let verified = super::cache::Verified {
                        issuer: index,
                        consumer: Arc::clone(&consumer),
                        claims: Arc::clone(&claims),
                        until,
                        key_generation: before.get(index).copied().unwrap_or(0),
                    };
                    cache.put(token, verified, now);
                }
                let identified = Identified {
                    consumer,
                    claims,
                    builtin: issuer.builtin,
                };
                Ok(self.accept(req, ctx, &presented, identified, now).await)
            }
            Err(r) => Ok(Decision::Reject(refusal(&r))),
        }
    }
}
