//! Token minting for JWT tests: an issuer with RSA and EC P-256 keys (public
//! halves written as PEM files for the gateway's config), an attacker with
//! keys of their own, and raw token assembly for malformed cases.

use std::path::PathBuf;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256};
use serde_json::{Value, json};

/// Issuer name used by [`TestIssuer::claims`].
pub const ISSUER: &str = "https://idp.test";
/// Audience used by [`TestIssuer::claims`].
pub const AUDIENCE: &str = "orders-api";

/// A key pair as signing key plus public PEM.
pub struct TestKey {
    /// For signing.
    pub encoding: EncodingKey,
    /// Public key PEM (SPKI).
    pub public_pem: String,
    /// Public key PEM file.
    pub public_file: PathBuf,
}

fn key(dir: &std::path::Path, name: &str, alg: &'static rcgen::SignatureAlgorithm) -> TestKey {
    let pair = KeyPair::generate_for(alg).unwrap();
    let private = pair.serialize_pem();
    let encoding = if alg == &PKCS_RSA_SHA256 {
        EncodingKey::from_rsa_pem(private.as_bytes()).unwrap()
    } else {
        EncodingKey::from_ec_pem(private.as_bytes()).unwrap()
    };
    let public_pem = pair.public_key_pem();
    let public_file = dir.join(format!("{name}.pub.pem"));
    std::fs::write(&public_file, &public_pem).unwrap();
    TestKey {
        encoding,
        public_pem,
        public_file,
    }
}

/// The trusted issuer's keys and an attacker's.
pub struct TestIssuer {
    /// Directory with the public key files.
    pub dir: PathBuf,
    /// Trusted RSA key (kid `rsa-1`).
    pub rsa: TestKey,
    /// Trusted EC P-256 key (kid `ec-1`).
    pub ec: TestKey,
    /// An RSA key the gateway does not know.
    pub attacker_rsa: TestKey,
    /// An EC key the gateway does not know.
    pub attacker_ec: TestKey,
}

impl Default for TestIssuer {
    fn default() -> Self {
        Self::new()
    }
}

impl TestIssuer {
    /// Fresh keys in a temp dir.
    pub fn new() -> Self {
        let dir = crate::temp_path("jwt");
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            rsa: key(&dir, "rsa", &PKCS_RSA_SHA256),
            ec: key(&dir, "ec", &PKCS_ECDSA_P256_SHA256),
            attacker_rsa: key(&dir, "attacker-rsa", &PKCS_RSA_SHA256),
            attacker_ec: key(&dir, "attacker-ec", &PKCS_ECDSA_P256_SHA256),
            dir,
        }
    }

    /// A `jwt` policy entry (YAML, indented for a route's `policies:` list)
    /// trusting this issuer's two keys with RS256 and ES256.
    pub fn policy_yaml(&self, extra: &str) -> String {
        format!(
            "      - type: jwt\n        issuers:\n          - issuer: {ISSUER}\n            audiences: [{AUDIENCE}]\n            algorithms: [RS256, ES256]\n            keys:\n              - {{ kid: rsa-1, public_key_file: \"{}\" }}\n              - {{ kid: ec-1, public_key_file: \"{}\" }}\n{extra}",
            self.rsa.public_file.display(),
            self.ec.public_file.display()
        )
    }

    /// Valid claims: `sub` alice, expiring in 5 minutes.
    pub fn claims(&self) -> Value {
        let now = now();
        json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 300 })
    }

    /// Signs `claims` with `key` under `alg`, with `kid`.
    pub fn sign(&self, alg: Algorithm, key: &TestKey, kid: Option<&str>, claims: &Value) -> String {
        let mut h = Header::new(alg);
        h.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&h, claims, &key.encoding).unwrap()
    }

    /// A valid RS256 token for `claims`.
    pub fn rs256(&self, claims: &Value) -> String {
        self.sign(Algorithm::RS256, &self.rsa, Some("rsa-1"), claims)
    }

    /// A valid ES256 token for `claims`.
    pub fn es256(&self, claims: &Value) -> String {
        self.sign(Algorithm::ES256, &self.ec, Some("ec-1"), claims)
    }
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `b64(header).b64(payload).b64(signature)` from raw parts.
pub fn raw(header: &Value, payload: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload.to_string().as_bytes()),
        b64(signature)
    )
}

/// HMAC-SHA256 over `message` with `secret` (for key-confusion tokens).
pub fn hs256_sign(secret: &[u8], message: &str) -> Vec<u8> {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    aws_lc_rs::hmac::sign(&key, message.as_bytes()).as_ref().to_vec()
}

/// A local JWKS endpoint (`GET /jwks`): the set it serves can be changed,
/// it can be taken down (503) and brought back, and it counts requests.
#[derive(Clone)]
pub struct JwksServer {
    /// Bound address.
    pub addr: std::net::SocketAddr,
    state: std::sync::Arc<JwksState>,
}

struct JwksState {
    set: std::sync::Mutex<Value>,
    up: std::sync::atomic::AtomicBool,
    hits: std::sync::atomic::AtomicUsize,
    cache_control: std::sync::Mutex<String>,
    /// `issuer` named by the discovery document (default: the server's base URL).
    discovery_issuer: std::sync::Mutex<Option<String>>,
}

/// A public JWK for `key` under `alg`, with `kid`.
pub fn jwk(key: &TestKey, alg: Algorithm, kid: &str) -> Value {
    let mut j = jsonwebtoken::jwk::Jwk::from_encoding_key(&key.encoding, alg).unwrap();
    j.common.key_id = Some(kid.to_owned());
    serde_json::to_value(j).unwrap()
}

impl JwksServer {
    /// Serves `{"keys": keys}` on a free loopback port.
    pub async fn start(keys: Vec<Value>) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = std::sync::Arc::new(JwksState {
            set: std::sync::Mutex::new(json!({ "keys": keys })),
            up: std::sync::atomic::AtomicBool::new(true),
            hits: std::sync::atomic::AtomicUsize::new(0),
            cache_control: std::sync::Mutex::new("max-age=300".into()),
            discovery_issuer: std::sync::Mutex::new(None),
        });
        let st = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let st = st.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let st = st.clone();
                        async move {
                            st.hits.fetch_add(1, Ordering::SeqCst);
                            let base = format!("http://{addr}");
                            let (status, body) = if !st.up.load(Ordering::SeqCst) {
                                (503, String::new())
                            } else if req.uri().path() == "/.well-known/openid-configuration" {
                                let issuer = st
                                    .discovery_issuer
                                    .lock()
                                    .unwrap()
                                    .clone()
                                    .unwrap_or_else(|| base.clone());
                                (
                                    200,
                                    json!({ "issuer": issuer, "jwks_uri": format!("{base}/jwks") }).to_string(),
                                )
                            } else {
                                (200, st.set.lock().unwrap().to_string())
                            };
                            let cc = st.cache_control.lock().unwrap().clone();
                            Ok::<_, std::convert::Infallible>(
                                http::Response::builder()
                                    .status(status)
                                    .header("content-type", "application/json")
                                    .header("cache-control", cc)
                                    .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self { addr, state }
    }

    /// `http://addr/jwks`.
    pub fn url(&self) -> String {
        format!("http://{}/jwks", self.addr)
    }

    /// Replaces the served keys.
    pub fn set_keys(&self, keys: Vec<Value>) {
        *self.state.set.lock().unwrap() = json!({ "keys": keys });
    }

    /// Answers 503 (false) or the key set (true).
    pub fn set_up(&self, up: bool) {
        self.state.up.store(up, std::sync::atomic::Ordering::SeqCst);
    }

    /// Sets the `Cache-Control` header value.
    pub fn set_cache_control(&self, v: &str) {
        *self.state.cache_control.lock().unwrap() = v.to_owned();
    }

    /// The server's base URL, the issuer its discovery document names by default.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Makes the discovery document name another issuer.
    pub fn set_discovery_issuer(&self, issuer: &str) {
        *self.state.discovery_issuer.lock().unwrap() = Some(issuer.to_owned());
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.state.hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A DPoP proof (RFC 9449) signed by `key`, for `htm` `htu`, with `ath`
/// over `token` when given.
pub fn dpop_proof(key: &TestKey, htm: &str, htu: &str, token: Option<&str>, jti: &str) -> String {
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk(key, jsonwebtoken::Algorithm::ES256, "k")).unwrap();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    h.typ = Some("dpop+jwt".into());
    h.jwk = Some(jwk);
    let mut claims = json!({ "jti": jti, "htm": htm, "htu": htu, "iat": now() });
    if let Some(t) = token {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, t.as_bytes());
        claims["ath"] = json!(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref()));
    }
    jsonwebtoken::encode(&h, &claims, &key.encoding).unwrap()
}
