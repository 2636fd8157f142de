//! `jwt` config and its compilation into [`Jwt`].

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use warden_core::OnError;

use super::policy::{Issuer, Jwt, Key};
use crate::SpecError;

/// `type: jwt`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// Accepted issuers (at least one).
    pub issuers: Vec<IssuerConfig>,
    /// Also read the token from this query parameter (off unless set: query
    /// strings end up in logs, caches and `Referer` headers).
    #[serde(default)]
    pub query_param: Option<String>,
    /// Longest token accepted, checked before any decoding.
    #[serde(default = "default_max_token_bytes")]
    pub max_token_bytes: usize,
    /// Verified tokens remembered (until `exp` or a key-set change); 0 disables.
    #[serde(default = "default_cache_entries")]
    pub cache_entries: usize,
    /// Requests without any token pass as anonymous (no consumer); a token
    /// that is present must still be valid.
    #[serde(default)]
    pub anonymous: bool,
    /// Only certificate-bound tokens (RFC 8705 `cnf.x5t#S256`) are accepted.
    #[serde(default)]
    pub require_certificate_bound: bool,
    /// What this route asks beyond a valid token (step-up, token age).
    #[serde(default)]
    pub require: RequireConfig,
    /// Verified claims sent upstream as headers (`claim: header-name`); any
    /// copy of those headers the client sent is removed first.
    #[serde(default)]
    pub forward_claims: std::collections::BTreeMap<String, String>,
    /// What happens when the policy itself breaks.
    #[serde(default)]
    pub on_error: OnError,
}

/// Per-route requirements on a valid token.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RequireConfig {
    /// The token's `acr` must be one of these (step-up, RFC 9470).
    pub acr_values: Vec<String>,
    /// Every one of these must be in the token's `amr` list (e.g. `mfa`).
    pub amr: Vec<String>,
    /// The user must have authenticated (`auth_time`) at most this long ago.
    pub max_auth_age_secs: Option<u64>,
    /// The token must have been issued (`iat`) at most this long ago.
    pub max_token_age_secs: Option<u64>,
}

/// One trusted issuer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// Exact `iss` value.
    pub issuer: String,
    /// Accepted `aud` values; the token must name one (at least one required).
    pub audiences: Vec<String>,
    /// Algorithm allow-list, e.g. `[RS256, ES256]`. `none` cannot be named.
    pub algorithms: Vec<String>,
    /// Verification keys from files.
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
    /// Verification keys from the issuer's JWKS URL.
    #[serde(default)]
    pub jwks: Option<super::JwksConfig>,
    /// Opaque access tokens (anything that is not a JWT) are checked with
    /// this RFC 7662 introspection endpoint.
    #[serde(default)]
    pub introspection: Option<super::IntrospectionConfig>,
    /// OpenID Connect discovery: the JWKS URL comes from
    /// `{issuer}/.well-known/openid-configuration` (the `jwks` section is then
    /// optional and takes no `url`).
    #[serde(default)]
    pub discovery: bool,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    #[serde(default = "default_leeway_secs")]
    pub leeway_secs: u64,
    /// Claims that must be present besides `exp`, `iss` and `aud`.
    #[serde(default)]
    pub required_claims: Vec<String>,
    /// Required `typ` header, e.g. `at+jwt` (RFC 9068); off unless set.
    #[serde(default)]
    pub typ: Option<String>,
    /// Claim that names the consumer.
    #[serde(default = "default_consumer_claim")]
    pub consumer_claim: String,
    /// Tokens of the gateway's own authorization server (`oauth_server`):
    /// keys come from it in memory; `issuer` must be its issuer, and `keys`,
    /// `jwks`, `discovery` and `introspection` are not set.
    #[serde(default)]
    pub builtin: bool,
}

/// One verification key; exactly one of the two sources.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// `kid` this key answers to; a token with a `kid` only uses the key with that `kid`.
    #[serde(default)]
    pub kid: Option<String>,
    /// PEM public key: RSA (SPKI or PKCS#1), EC P-256/P-384, or Ed25519.
    #[serde(default)]
    pub public_key_file: Option<String>,
    /// File whose bytes are an HMAC secret (at least 32 bytes).
    #[serde(default)]
    pub hmac_secret_file: Option<String>,
}

fn default_max_token_bytes() -> usize {
    8192
}
fn default_cache_entries() -> usize {
    10_000
}
fn default_leeway_secs() -> u64 {
    30
}
fn default_consumer_claim() -> String {
    "sub".into()
}

/// Shortest HMAC secret accepted (RFC 7518 §3.2: at least the hash size).
const MIN_HMAC_SECRET_BYTES: usize = 32;

impl JwtConfig {
    /// Makes relative key file paths relative to `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        let join = |p: &mut Option<String>| {
            if let Some(s) = p
                && Path::new(s.as_str()).is_relative()
            {
                *s = base.join(s.as_str()).to_string_lossy().into_owned();
            }
        };
        for i in &mut self.issuers {
            for k in &mut i.keys {
                join(&mut k.public_key_file);
                join(&mut k.hmac_secret_file);
            }
            if let Some(intro) = i.introspection.as_mut() {
                let mut f = Some(std::mem::take(&mut intro.client_secret_file));
                join(&mut f);
                intro.client_secret_file = f.unwrap_or_default();
            }
        }
    }

    /// Compiles the config, reporting every problem.
    pub fn build(&self) -> Result<Jwt, Vec<SpecError>> {
        let mut errors = Vec::new();
        let err = |errors: &mut Vec<SpecError>, path: String, message: String| errors.push(SpecError { path, message });
        if self.issuers.is_empty() {
            err(&mut errors, "issuers".into(), "at least one issuer is required".into());
        }
        if self.max_token_bytes == 0 || self.max_token_bytes > 65_536 {
            err(
                &mut errors,
                "max_token_bytes".into(),
                "must be between 1 and 65536".into(),
            );
        }
        let mut forward = Vec::new();
        for (claim, header) in &self.forward_claims {
            match http::HeaderName::from_bytes(header.as_bytes()) {
                Ok(h) if !warden_core::headers::is_reserved_or_ambiguous(h.as_str()) => {
                    forward.push((claim.clone(), h))
                }
                _ => err(
                    &mut errors,
                    format!("forward_claims.{claim}"),
                    format!("`{header}` is not a usable header name (reserved, underscore or invalid)"),
                ),
            }
        }
        if self
            .require
            .acr_values
            .iter()
            .chain(&self.require.amr)
            .any(|v| v.is_empty() || !v.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'))
        {
            err(
                &mut errors,
                "require".into(),
                "acr/amr values must be visible ASCII without spaces, `\"` or `\\`".into(),
            );
        }
        if self.cache_entries > 1_000_000 {
            err(&mut errors, "cache_entries".into(), "must be at most 1000000".into());
        }
        if let Some(q) = &self.query_param
            && q.trim().is_empty()
        {
            err(&mut errors, "query_param".into(), "must not be empty".into());
        }
        if self.issuers.iter().filter(|i| i.introspection.is_some()).count() > 1 {
            err(
                &mut errors,
                "issuers".into(),
                "at most one issuer per policy may use introspection (an opaque token names no issuer, so it would be sent to every endpoint)".into(),
            );
        }
        let mut issuers = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, cfg) in self.issuers.iter().enumerate() {
            let at = format!("issuers[{i}]");
            if !seen.insert(cfg.issuer.as_str()) {
                err(
                    &mut errors,
                    format!("{at}.issuer"),
                    format!("issuer `{}` is listed twice", cfg.issuer),
                );
            }
            if let Some(issuer) = build_issuer(cfg, &at, &mut errors) {
                issuers.push(issuer);
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Jwt {
            issuers,
            query_param: self.query_param.clone(),
            max_token_bytes: self.max_token_bytes,
            cache: super::cache::TokenCache::new(self.cache_entries),
            forward_names: forward.iter().map(|(_, h)| h.clone()).collect(),
            require: self.require.clone(),
            anonymous: self.anonymous,
            require_certificate_bound: self.require_certificate_bound,
            forward,
            directory: super::policy::DirectorySlot::default(),
            shared: super::policy::SharedSlot::default(),
        })
    }
}

fn build_issuer(cfg: &IssuerConfig, at: &str, errors: &mut Vec<SpecError>) -> Option<Issuer> {
    let before = errors.len();
    let mut push = |path: String, message: String| errors.push(SpecError { path, message });
    if cfg.issuer.trim().is_empty() {
        push(format!("{at}.issuer"), "must not be empty".into());
    }
    if cfg.audiences.is_empty() {
        push(format!("{at}.audiences"), "at least one audience is required".into());
    }
    if cfg.leeway_secs > 300 {
        push(format!("{at}.leeway_secs"), "must be at most 300".into());
    }
    if cfg.consumer_claim.trim().is_empty() {
        push(format!("{at}.consumer_claim"), "must not be empty".into());
    }
    let mut keys = Vec::new();
    let mut kids = HashMap::new();
    if cfg.builtin {
        if !cfg.keys.is_empty() || cfg.jwks.is_some() || cfg.discovery || cfg.introspection.is_some() {
            push(
                format!("{at}.builtin"),
                "a built-in issuer takes its keys from the gateway: remove `keys`, `jwks`, `discovery` and `introspection`"
                    .into(),
            );
        }
        // The gateway signs other JWTs too (identity tokens for upstreams):
        // only its access tokens pass here.
        if cfg.typ.as_deref().is_some_and(|t| !t.eq_ignore_ascii_case("at+jwt")) {
            push(
                format!("{at}.typ"),
                "a built-in issuer's access tokens are always `at+jwt`; remove `typ` or set it to `at+jwt`".into(),
            );
        }
        if errors.len() > before {
            return None;
        }
        return Some(Issuer {
            issuer: cfg.issuer.clone(),
            audiences: cfg.audiences.clone(),
            algorithms: builtin_algorithms(cfg, at, errors)?,
            keys: Vec::new(),
            kids: HashMap::new(),
            jwks: Some(super::jwks::Jwks::local()),
            introspector: None,
            leeway_secs: cfg.leeway_secs,
            required_claims: cfg.required_claims.clone(),
            typ: Some("at+jwt".into()),
            consumer_claim: cfg.consumer_claim.clone(),
            builtin: true,
        });
    }
    let jwks_cfg = match (&cfg.jwks, cfg.discovery) {
        (Some(j), _) => Some(j.clone()),
        (None, true) => Some(super::JwksConfig::default()),
        (None, false) => None,
    };
    let introspector = cfg
        .introspection
        .as_ref()
        .and_then(|c| match super::introspect::Introspector::new(c) {
            Ok(i) => Some(i),
            Err(problems) => {
                for (key, message) in problems {
                    push(format!("{at}.introspection.{key}"), message);
                }
                None
            }
        });
    let verifies_jwts = !cfg.keys.is_empty() || jwks_cfg.is_some();
    if !verifies_jwts && cfg.introspection.is_none() {
        push(
            format!("{at}.keys"),
            "set `keys`, `jwks`, `discovery: true` or `introspection` (or a combination)".into(),
        );
    }
    let jwks = match &jwks_cfg {
        Some(j) => {
            let problems = j.check(cfg.discovery);
            for (key, message) in &problems {
                push(format!("{at}.jwks.{key}"), message.clone());
            }
            if problems.is_empty() {
                let discovery = cfg.discovery.then_some(cfg.issuer.as_str());
                super::jwks::Jwks::shared(j, discovery)
                    .map_err(|m| push(format!("{at}.issuer"), m))
                    .ok()
            } else {
                None
            }
        }
        None => None,
    };
    for (j, k) in cfg.keys.iter().enumerate() {
        let kat = format!("{at}.keys[{j}]");
        let key = match (&k.public_key_file, &k.hmac_secret_file) {
            (Some(file), None) => load_public_key(file)
                .map_err(|m| push(format!("{kat}.public_key_file"), m))
                .ok(),
            (None, Some(file)) => load_hmac(file)
                .map_err(|m| push(format!("{kat}.hmac_secret_file"), m))
                .ok(),
            _ => {
                push(
                    kat.clone(),
                    "set exactly one of `public_key_file`, `hmac_secret_file`".into(),
                );
                None
            }
        };
        if let Some(kid) = &k.kid
            && kids.insert(kid.clone(), keys.len()).is_some()
        {
            push(format!("{kat}.kid"), format!("kid `{kid}` is used twice"));
        }
        if let Some(key) = key {
            keys.push(Key {
                kid: k.kid.clone(),
                key: std::sync::Arc::new(key),
            });
        }
    }
    // JWKS keys are public keys: an issuer with a JWKS is asymmetric.
    let asymmetric = jwks_cfg.is_some()
        || keys
            .iter()
            .any(|k| k.key.family() != jsonwebtoken::AlgorithmFamily::Hmac);
    let mut algorithms = Vec::new();
    if cfg.algorithms.is_empty() && verifies_jwts {
        push(format!("{at}.algorithms"), "at least one algorithm is required".into());
    }
    for (j, name) in cfg.algorithms.iter().enumerate() {
        let aat = format!("{at}.algorithms[{j}]");
        let Ok(alg) = Algorithm::from_str(name) else {
            let why = if name.eq_ignore_ascii_case("none") {
                "`none` (unsigned tokens) is never accepted".to_owned()
            } else {
                format!("unknown algorithm `{name}`")
            };
            push(aat, why);
            continue;
        };
        if alg.family() == jsonwebtoken::AlgorithmFamily::Hmac && asymmetric {
            push(
                aat,
                format!("`{name}` is refused for an issuer with asymmetric keys (HMAC key confusion)"),
            );
            continue;
        }
        if jwks_cfg.is_none() && !keys.iter().any(|k| k.key.family() == alg.family()) {
            push(aat, format!("no configured key can verify `{name}`"));
            continue;
        }
        algorithms.push(alg);
    }
    if errors.len() > before {
        return None;
    }
    Some(Issuer {
        issuer: cfg.issuer.clone(),
        audiences: cfg.audiences.clone(),
        algorithms,
        keys,
        kids,
        jwks,
        introspector,
        leeway_secs: cfg.leeway_secs,
        required_claims: cfg.required_claims.clone(),
        typ: cfg.typ.clone(),
        consumer_claim: cfg.consumer_claim.clone(),
        builtin: false,
    })
}

/// A built-in issuer's algorithms: what the gateway signs with (ES256, EdDSA).
fn builtin_algorithms(cfg: &IssuerConfig, at: &str, errors: &mut Vec<SpecError>) -> Option<Vec<Algorithm>> {
    let mut out = Vec::new();
    if cfg.algorithms.is_empty() {
        errors.push(SpecError {
            path: format!("{at}.algorithms"),
            message: "at least one algorithm is required (ES256 or EdDSA)".into(),
        });
    }
    for (j, name) in cfg.algorithms.iter().enumerate() {
        match Algorithm::from_str(name) {
            Ok(alg @ (Algorithm::ES256 | Algorithm::EdDSA)) => out.push(alg),
            _ => errors.push(SpecError {
                path: format!("{at}.algorithms[{j}]"),
                message: format!("the built-in server signs with ES256 or EdDSA, not `{name}`"),
            }),
        }
    }
    (out.len() == cfg.algorithms.len() && !out.is_empty()).then_some(out)
}

fn load_public_key(file: &str) -> Result<DecodingKey, String> {
    let pem = std::fs::read(file).map_err(|e| format!("cannot read `{file}`: {e}"))?;
    if String::from_utf8_lossy(&pem).contains("PRIVATE KEY") {
        return Err(format!("`{file}` holds a private key; give the public key only"));
    }
    DecodingKey::from_rsa_pem(&pem)
        .or_else(|_| DecodingKey::from_ec_pem(&pem))
        .or_else(|_| DecodingKey::from_ed_pem(&pem))
        .map_err(|_| format!("`{file}` is not a PEM RSA, EC or Ed25519 public key"))
}

fn load_hmac(file: &str) -> Result<DecodingKey, String> {
    let secret = std::fs::read(file).map_err(|e| format!("cannot read `{file}`: {e}"))?;
    if secret.len() < MIN_HMAC_SECRET_BYTES {
        return Err(format!(
            "`{file}` holds {} bytes; an HMAC secret needs at least {MIN_HMAC_SECRET_BYTES}",
            secret.len()
        ));
    }
    Ok(DecodingKey::from_secret(&secret))
}
