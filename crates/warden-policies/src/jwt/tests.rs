#![allow(clippy::unwrap_used)]

use super::{IssuerConfig, JwtConfig, KeyConfig};

const EC_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEp2uHdO8KfEVuoIY4Hcd9+1yzyj8K
EinfJRjn0Y8NSVS74A9fBjVF1s1HmM1Rp1lyfTMEAYNcmquzDerqRalKkQ==
-----END PUBLIC KEY-----
";

fn file(name: &str, bytes: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("warden-jwt-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_string_lossy().into_owned()
}

fn issuer(algorithms: &[&str], keys: Vec<KeyConfig>) -> IssuerConfig {
    IssuerConfig {
        issuer: "https://idp.test".into(),
        audiences: vec!["api".into()],
        algorithms: algorithms.iter().map(|a| (*a).to_owned()).collect(),
        keys,
        jwks: None,
        introspection: None,
        discovery: false,
        leeway_secs: 30,
        required_claims: vec![],
        typ: None,
        consumer_claim: "sub".into(),
        builtin: false,
    }
}

fn ec_key() -> KeyConfig {
    KeyConfig {
        kid: Some("ec-1".into()),
        public_key_file: Some(file("ec.pub.pem", EC_PUBLIC.as_bytes())),
        hmac_secret_file: None,
    }
}

fn config(issuers: Vec<IssuerConfig>) -> JwtConfig {
    JwtConfig {
        issuers,
        query_param: None,
        max_token_bytes: 8192,
        cache_entries: 100,
        require: super::config::RequireConfig::default(),
        anonymous: false,
        require_certificate_bound: false,
        forward_claims: Default::default(),
        on_error: warden_core::OnError::Deny,
    }
}

fn errors(c: &JwtConfig) -> Vec<String> {
    c.build()
        .expect_err("must be refused")
        .into_iter()
        .map(|e| format!("{}: {}", e.path, e.message))
        .collect()
}

#[test]
fn an_asymmetric_issuer_with_matching_algorithms_builds() {
    assert!(config(vec![issuer(&["ES256"], vec![ec_key()])]).build().is_ok());
}

#[test]
fn none_and_unknown_algorithms_are_refused_by_name() {
    let e = errors(&config(vec![issuer(&["none", "XS999"], vec![ec_key()])]));
    assert!(
        e.iter()
            .any(|m| m.contains("algorithms[0]") && m.contains("never accepted")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|m| m.contains("algorithms[1]") && m.contains("unknown algorithm")),
        "{e:?}"
    );
}

#[test]
fn hmac_is_refused_for_an_issuer_with_asymmetric_keys() {
    let secret = KeyConfig {
        kid: Some("h".into()),
        public_key_file: None,
        hmac_secret_file: Some(file("secret", &[7u8; 32])),
    };
    let e = errors(&config(vec![issuer(&["ES256", "HS256"], vec![ec_key(), secret])]));
    assert!(
        e.iter()
            .any(|m| m.contains("algorithms[1]") && m.contains("key confusion")),
        "{e:?}"
    );
}

#[test]
fn short_hmac_secrets_private_keys_and_missing_audiences_are_refused() {
    let short = KeyConfig {
        kid: None,
        public_key_file: None,
        hmac_secret_file: Some(file("short", b"tiny")),
    };
    let private = KeyConfig {
        kid: None,
        public_key_file: Some(file(
            "priv.pem",
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )),
        hmac_secret_file: None,
    };
    let mut i = issuer(&["HS256"], vec![short]);
    i.audiences.clear();
    let e = errors(&config(vec![i, issuer(&["ES256"], vec![private])]));
    let joined = e.join("\n");
    for want in [
        "issuers[0].audiences",
        "issuers[0].keys[0].hmac_secret_file",
        "at least 32",
        "issuers[1].keys[0].public_key_file",
        "private key",
    ] {
        assert!(joined.contains(want), "missing `{want}` in\n{joined}");
    }
}

#[test]
fn an_algorithm_no_key_can_verify_is_refused() {
    let e = errors(&config(vec![issuer(&["RS256"], vec![ec_key()])]));
    assert!(e.iter().any(|m| m.contains("no configured key can verify")), "{e:?}");
}

#[test]
fn jwks_urls_must_be_https_except_on_loopback_and_hmac_is_refused_beside_them() {
    let jwks = |url: &str| super::JwksConfig {
        url: Some(url.into()),
        min_cache_secs: 60,
        max_cache_secs: 86_400,
        stale_grace_secs: 3_600,
        refetch_interval_secs: 10,
        timeout_ms: 2_000,
    };
    let mut plain = issuer(&["RS256"], vec![]);
    plain.jwks = Some(jwks("http://idp.example.com/jwks"));
    let e = errors(&config(vec![plain]));
    assert!(
        e.iter()
            .any(|m| m.contains("issuers[0].jwks.url") && m.contains("https")),
        "{e:?}"
    );

    let mut local = issuer(&["RS256"], vec![]);
    local.jwks = Some(jwks("http://127.0.0.1:9/jwks"));
    assert!(config(vec![local]).build().is_ok());

    let mut hmac = issuer(&["HS256"], vec![]);
    hmac.jwks = Some(jwks("https://idp.example.com/jwks"));
    let e = errors(&config(vec![hmac]));
    assert!(e.iter().any(|m| m.contains("key confusion")), "{e:?}");
}

#[test]
fn a_builtin_issuer_takes_only_access_tokens() {
    let builtin = |typ: Option<&str>| IssuerConfig {
        builtin: true,
        typ: typ.map(str::to_owned),
        ..issuer(&["ES256"], vec![])
    };
    let got = errors(&config(vec![builtin(Some("JWT"))]));
    assert!(got.iter().any(|e| e.contains("typ") && e.contains("at+jwt")), "{got:?}");
    for ok in [None, Some("at+jwt")] {
        let built = config(vec![builtin(ok)]).build().unwrap();
        assert!(
            built.issuers.iter().all(|i| i.typ.as_deref() == Some("at+jwt")),
            "typ not forced for {ok:?}"
        );
    }
}
