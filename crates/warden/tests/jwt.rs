//! End-to-end JWT authentication: a valid token passes and names the
//! consumer; a battery of forged and malformed tokens is refused with the same
//! 401 problem document, each case its own test, and none reaches the upstream.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use warden_testkit::jwt::{TestIssuer, b64, hs256_sign, now, raw};
use warden_testkit::{MockUpstream, Reply, TestGateway, http1, send};

struct Setup {
    gw: TestGateway,
    up: MockUpstream,
    iss: TestIssuer,
}

async fn setup() -> Setup {
    setup_with("").await
}

async fn setup_with(top: &str) -> Setup {
    let up = MockUpstream::start("a").await;
    let iss = TestIssuer::new();
    let yaml = format!(
        "{top}services:\n  - name: api\n    targets: [\"{}\"]\nroutes:\n  - id: orders\n    path: {{ prefix: /orders }}\n    service: api\n    policies:\n{}  - id: query\n    path: {{ prefix: /q }}\n    service: api\n    policies:\n{}",
        up.addr,
        iss.policy_yaml(""),
        iss.policy_yaml("        query_param: access_token\n"),
    );
    Setup {
        gw: TestGateway::start(&yaml).await,
        up,
        iss,
    }
}

async fn call(gw: &TestGateway, path: &str, token: Option<&str>) -> Reply {
    let mut req = Request::get(gw.url(path));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    send(&http1(), req.body(Full::<Bytes>::default()).unwrap()).await
}

fn assert_refused(r: &Reply, s: &Setup) {
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.json()["type"], "urn:warden:problem:unauthorized");
    let challenge = r.headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer realm=\"warden\""), "{challenge}");
    assert!(r.json().get("detail").is_none(), "the reason must not be disclosed");
    assert_eq!(s.up.hits(), 0, "a refused request reached the upstream");
}

/// One test per forged token: `refused!(name, |iss| token)`.
macro_rules! refused {
    ($name:ident, $make:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let s = setup().await;
            let make: fn(&TestIssuer) -> String = $make;
            let token = make(&s.iss);
            let r = call(&s.gw, "/orders/1", Some(&token)).await;
            assert_refused(&r, &s);
            assert!(
                r.headers["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .contains("invalid_token")
            );
        }
    };
}

fn with(iss: &TestIssuer, key: &str, value: Value) -> Value {
    let mut c = iss.claims();
    c[key] = value;
    c
}

fn without(iss: &TestIssuer, key: &str) -> Value {
    let mut c = iss.claims();
    c.as_object_mut().unwrap().remove(key);
    c
}

fn none_alg(iss: &TestIssuer, alg: &str) -> String {
    raw(&json!({ "alg": alg, "typ": "JWT" }), &iss.claims(), b"")
}

refused!(alg_none_lowercase, |i| none_alg(i, "none"));
refused!(alg_none_capitalised, |i| none_alg(i, "None"));
refused!(alg_none_upper_case, |i| none_alg(i, "NONE"));
refused!(alg_none_mixed_case_with_a_real_signature, |i| {
    let valid = i.rs256(&i.claims());
    let sig = valid.rsplit('.').next().unwrap().to_owned();
    let h = b64(json!({ "alg": "nOnE", "kid": "rsa-1" }).to_string().as_bytes());
    let p = b64(i.claims().to_string().as_bytes());
    format!("{h}.{p}.{sig}")
});
refused!(hs256_signed_with_the_rsa_public_key, |i| {
    let h = b64(json!({ "alg": "HS256", "typ": "JWT", "kid": "rsa-1" })
        .to_string()
        .as_bytes());
    let p = b64(i.claims().to_string().as_bytes());
    let msg = format!("{h}.{p}");
    let sig = hs256_sign(i.rsa.public_pem.as_bytes(), &msg);
    format!("{msg}.{}", b64(&sig))
});
refused!(empty_signature, |i| {
    let t = i.rs256(&i.claims());
    let (msg, _) = t.rsplit_once('.').unwrap();
    format!("{msg}.")
});
refused!(stripped_signature, |i| {
    let t = i.rs256(&i.claims());
    t.rsplit_once('.').unwrap().0.to_owned()
});
refused!(tampered_payload, |i| {
    let t = i.rs256(&i.claims());
    let parts: Vec<&str> = t.split('.').collect();
    let forged = b64(with(i, "sub", json!("admin")).to_string().as_bytes());
    format!("{}.{forged}.{}", parts[0], parts[2])
});
refused!(expired, |i| i.rs256(&with(i, "exp", json!(now() - 3600))));
refused!(not_before_in_the_future, |i| i.rs256(&with(
    i,
    "nbf",
    json!(now() + 3600)
)));
refused!(issued_in_the_future, |i| i.es256(&with(i, "iat", json!(now() + 3600))));
refused!(wrong_issuer, |i| i.rs256(&with(i, "iss", json!("https://evil.test"))));
refused!(wrong_audience, |i| i.rs256(&with(i, "aud", json!("billing-api"))));
refused!(issuer_as_an_array, |i| i.rs256(&with(
    i,
    "iss",
    json!([warden_testkit::jwt::ISSUER, "https://evil.test"])
)));
refused!(missing_exp, |i| i.rs256(&without(i, "exp")));
refused!(missing_subject, |i| i.es256(&without(i, "sub")));
refused!(kid_with_path_traversal, |i| i.sign(
    Algorithm::RS256,
    &i.attacker_rsa,
    Some("../../../../../../etc/passwd"),
    &i.claims()
));
refused!(kid_with_sql, |i| i.sign(
    Algorithm::RS256,
    &i.attacker_rsa,
    Some("x' UNION SELECT 'secret' --"),
    &i.claims()
));
refused!(jku_pointing_at_an_attacker_key_set, |i| {
    let mut h = jsonwebtoken::Header::new(Algorithm::RS256);
    h.kid = Some("attacker".into());
    h.jku = Some("https://attacker.test/jwks.json".into());
    jsonwebtoken::encode(&h, &i.claims(), &i.attacker_rsa.encoding).unwrap()
});
refused!(x5u_pointing_at_an_attacker_certificate, |i| {
    let mut h = jsonwebtoken::Header::new(Algorithm::RS256);
    h.x5u = Some("https://attacker.test/cert.pem".into());
    jsonwebtoken::encode(&h, &i.claims(), &i.attacker_rsa.encoding).unwrap()
});
refused!(embedded_jwk_of_the_attacker, |i| {
    let mut h = jsonwebtoken::Header::new(Algorithm::ES256);
    h.jwk = Some(jsonwebtoken::jwk::Jwk::from_encoding_key(&i.attacker_ec.encoding, Algorithm::ES256).unwrap());
    jsonwebtoken::encode(&h, &i.claims(), &i.attacker_ec.encoding).unwrap()
});
refused!(ecdsa_signature_r_and_s_zero, |i| raw(
    &json!({ "alg": "ES256", "typ": "JWT", "kid": "ec-1" }),
    &i.claims(),
    &[0u8; 64]
));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_of_100_kilobytes() {
    // Listener caps raised so the token reaches the policy's own size check
    // (with the default 16 KiB head cap the listener answers 431 first).
    let s = setup_with("limits: { max_header_bytes: 262144 }\n").await;
    let token = s.iss.rs256(&with(&s.iss, "pad", json!("x".repeat(100 * 1024))));
    let r = call(&s.gw, "/orders/1", Some(&token)).await;
    assert_refused(&r, &s);
    let s = setup().await;
    let r = call(&s.gw, "/orders/1", Some(&token)).await;
    assert_eq!(r.status, 431);
    assert_eq!(s.up.hits(), 0);
}
refused!(non_base64_garbage, |_| "%%%not*a*token%%%".to_owned());
refused!(three_dots_of_nothing, |_| "..".to_owned());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_in_the_query_string_of_a_header_only_route_is_ignored() {
    let s = setup().await;
    let token = s.iss.rs256(&s.iss.claims());
    let r = call(&s.gw, &format!("/orders/1?access_token={token}"), None).await;
    assert_refused(&r, &s);
    assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"warden\"");
    // The route that opts in accepts the same token there.
    let r = call(&s.gw, &format!("/q/1?access_token={token}"), None).await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_token_gets_a_plain_bearer_challenge() {
    let s = setup().await;
    let r = call(&s.gw, "/orders/1", None).await;
    assert_refused(&r, &s);
    assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"warden\"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_rs256_and_es256_tokens_pass_and_name_the_consumer() {
    let s = setup().await;
    for token in [s.iss.rs256(&s.iss.claims()), s.iss.es256(&s.iss.claims())] {
        let r = call(&s.gw, "/orders/1", Some(&token)).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(s.up.hits(), 2);
    s.gw.wait_for_log_lines(2).await;
    for line in s.gw.access_log() {
        assert_eq!(line["consumer"], "alice");
    }
    // Within the leeway (30 s), a just-expired token still passes.
    let r = call(
        &s.gw,
        "/orders/1",
        Some(&s.iss.rs256(&with(&s.iss, "exp", json!(now() - 5)))),
    )
    .await;
    assert_eq!(r.status, 200);
}

async fn gateway_with(policy_extra: &str) -> (TestGateway, MockUpstream, TestIssuer) {
    let up = MockUpstream::start("a").await;
    let iss = TestIssuer::new();
    let yaml = format!(
        "services:\n  - name: api\n    targets: [\"{}\"]\nroutes:\n  - id: admin\n    path: {{ prefix: /admin }}\n    service: api\n    policies:\n{}",
        up.addr,
        iss.policy_yaml(policy_extra),
    );
    (TestGateway::start(&yaml).await, up, iss)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_up_challenges_follow_rfc_9470() {
    let (gw, up, iss) = gateway_with(
        "        require:\n          acr_values: [\"urn:example:mfa\", \"urn:example:hwk\"]\n          max_auth_age_secs: 300\n",
    )
    .await;
    // Valid token, no acr: step-up with the acceptable values and max age.
    let r = call(&gw, "/admin/x", Some(&iss.rs256(&iss.claims()))).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.headers["www-authenticate"],
        "Bearer realm=\"warden\", error=\"insufficient_user_authentication\", error_description=\"A different authentication level is required\", acr_values=\"urn:example:mfa urn:example:hwk\", max_age=\"300\""
    );
    assert_eq!(r.json()["type"], "urn:warden:problem:unauthorized");
    // Right acr, but the user authenticated an hour ago.
    let mut c = with(&iss, "acr", json!("urn:example:mfa"));
    c["auth_time"] = json!(now() - 3600);
    let r = call(&gw, "/admin/x", Some(&iss.rs256(&c))).await;
    assert_eq!(r.status, 401);
    let challenge = r.headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("error_description=\"More recent authentication is required\""),
        "{challenge}"
    );
    assert!(challenge.contains("max_age=\"300\""), "{challenge}");
    assert_eq!(up.hits(), 0);
    // Right acr, recent authentication: through.
    c["auth_time"] = json!(now() - 60);
    assert_eq!(call(&gw, "/admin/x", Some(&iss.rs256(&c))).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_amr_entries_and_maximum_token_age() {
    let (gw, _up, iss) =
        gateway_with("        require:\n          amr: [mfa]\n          max_token_age_secs: 600\n").await;
    let r = call(&gw, "/admin/x", Some(&iss.rs256(&with(&iss, "amr", json!(["pwd"]))))).await;
    assert_eq!(r.status, 401);
    assert!(
        r.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_user_authentication")
    );
    let good = with(&iss, "amr", json!(["pwd", "mfa"]));
    assert_eq!(call(&gw, "/admin/x", Some(&iss.rs256(&good))).await.status, 200);
    // A valid, unexpired token issued too long ago is refused like any invalid token.
    let mut old = good.clone();
    old["iat"] = json!(now() - 3600);
    let r = call(&gw, "/admin/x", Some(&iss.rs256(&old))).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.headers["www-authenticate"],
        "Bearer realm=\"warden\", error=\"invalid_token\""
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verified_claims_go_upstream_and_client_copies_never_do() {
    let (gw, up, iss) = gateway_with("        forward_claims: { sub: x-consumer-id, scope: x-consumer-scope }\n").await;
    let token = iss.rs256(&with(&iss, "scope", json!("orders:read orders:write")));
    let req = Request::get(gw.url("/admin/x"))
        .header("authorization", format!("Bearer {token}"))
        .header("x-consumer-id", "admin")
        .header("x_consumer_id", "admin")
        .header("x-consumer-scope", "everything")
        .body(Full::<Bytes>::default())
        .unwrap();
    assert_eq!(send(&http1(), req).await.status, 200);
    // Without a token the forged headers are dropped too (and the request refused).
    let req = Request::get(gw.url("/admin/x"))
        .header("x-consumer-id", "admin")
        .body(Full::<Bytes>::default())
        .unwrap();
    assert_eq!(send(&http1(), req).await.status, 401);
    let seen = up.seen();
    assert_eq!(seen.len(), 1);
    let ids: Vec<_> = seen[0].headers.get_all("x-consumer-id").iter().collect();
    assert_eq!(ids, ["alice"]);
    assert!(
        !seen[0].headers.contains_key("x_consumer_id"),
        "underscore spelling reached the upstream"
    );
    assert_eq!(seen[0].headers["x-consumer-scope"], "orders:read orders:write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_token_is_refused_when_repeated_and_never_forwarded() {
    let s = setup().await;
    let token = s.iss.rs256(&s.iss.claims());
    let other = s.iss.rs256(&with(&s.iss, "sub", json!("mallory")));
    for q in [
        format!("access_token={token}&access_token={other}"),
        format!("access_token={token}&access%5Ftoken={other}"),
    ] {
        let r = call(&s.gw, &format!("/q/1?{q}"), None).await;
        assert_eq!(r.status, 401, "{q}");
    }
    assert_eq!(s.up.hits(), 0);
    let r = call(&s.gw, &format!("/q/1?a=1&access_token={token}&b=2"), None).await;
    assert_eq!(r.status, 200);
    let seen = s.up.seen();
    assert_eq!(seen[0].uri, "/q/1?a=1&b=2", "the token must not travel upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cannot_drop_claim_headers_through_connection() {
    let (gw, up, iss) = gateway_with("        forward_claims: { sub: x-consumer-id }\n").await;
    let req = Request::get(gw.url("/admin/x"))
        .header("authorization", format!("Bearer {}", iss.rs256(&iss.claims())))
        .header("connection", "x-consumer-id")
        .body(Full::<Bytes>::default())
        .unwrap();
    assert_eq!(send(&http1(), req).await.status, 200);
    assert_eq!(up.seen()[0].headers["x-consumer-id"], "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auth_time_in_the_future_is_not_recent() {
    let (gw, _up, iss) = gateway_with("        require:\n          max_auth_age_secs: 300\n").await;
    let r = call(
        &gw,
        "/admin/x",
        Some(&iss.rs256(&with(&iss, "auth_time", json!(now() + 86_400)))),
    )
    .await;
    assert_eq!(r.status, 401);
    let r = call(
        &gw,
        "/admin/x",
        Some(&iss.rs256(&with(&iss, "auth_time", json!(now() - 10)))),
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_several_issuers_the_consumer_is_namespaced_by_issuer() {
    let up = MockUpstream::start("a").await;
    let iss = TestIssuer::new();
    let yaml = format!(
        "services:\n  - name: api\n    targets: [\"{}\"]\nroutes:\n  - id: r\n    path: {{ prefix: / }}\n    service: api\n    policies:\n      - type: jwt\n        issuers:\n          - issuer: {}\n            audiences: [{}]\n            algorithms: [RS256]\n            keys: [{{ kid: rsa-1, public_key_file: \"{}\" }}]\n          - issuer: https://partner.test\n            audiences: [{}]\n            algorithms: [ES256]\n            keys: [{{ kid: ec-1, public_key_file: \"{}\" }}]\n",
        up.addr,
        warden_testkit::jwt::ISSUER,
        warden_testkit::jwt::AUDIENCE,
        iss.rsa.public_file.display(),
        warden_testkit::jwt::AUDIENCE,
        iss.ec.public_file.display(),
    );
    let gw = TestGateway::start(&yaml).await;
    let ours = iss.rs256(&iss.claims());
    let partner = iss.es256(&with(&iss, "iss", json!("https://partner.test")));
    assert_eq!(call(&gw, "/x", Some(&ours)).await.status, 200);
    assert_eq!(call(&gw, "/x", Some(&partner)).await.status, 200);
    // The partner's key cannot sign for the first issuer.
    let forged = iss.sign(Algorithm::ES256, &iss.ec, Some("ec-1"), &iss.claims());
    assert_eq!(call(&gw, "/x", Some(&forged)).await.status, 401);
    gw.wait_for_log_lines(3).await;
    let log = gw.access_log();
    assert_eq!(log[0]["consumer"], format!("{}#alice", warden_testkit::jwt::ISSUER));
    assert_eq!(log[1]["consumer"], "https://partner.test#alice");
}
