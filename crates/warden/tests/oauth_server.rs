//! The built-in authorization server end to end: clients registered with the
//! real CLI, tokens from the token endpoint with every client-authentication
//! method, and those tokens accepted (or refused) by a `jwt` route.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use serde_json::{Value, json};
use warden_testkit::jwt::TestIssuer;
use warden_testkit::pki::{CertFiles, TestCa};
use warden_testkit::{MockUpstream, Reply, TestGateway, http1, https, send};

const BIN: &str = env!("CARGO_BIN_EXE_warden");
const ISSUER: &str = "http://127.0.0.1";

fn cli(config: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "warden {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `client_id=…` and `client_secret=…` lines of `clients create`.
fn registered(out: &str) -> (String, Option<String>) {
    let get = |k: &str| out.lines().find_map(|l| l.strip_prefix(k)).map(str::to_owned);
    (get("client_id=").unwrap(), get("client_secret="))
}

fn store_yaml(dir: &Path) -> String {
    format!(
        "store:\n  data_dir: \"{}\"\noauth_server:\n  issuer: \"{ISSUER}\"\n  access_token_ttl_secs: 300\n",
        dir.display()
    )
}

fn api_route(up: &MockUpstream) -> String {
    format!(
        "services:\n  - name: api\n    targets: [\"{}\"]\nroutes:\n  - id: api\n    path: {{ prefix: /api }}\n    service: api\n    policies:\n      - type: jwt\n        issuers:\n          - issuer: \"{ISSUER}\"\n            builtin: true\n            audiences: [\"{ISSUER}\"]\n            algorithms: [ES256]\n            typ: at+jwt\n        forward_claims: {{ scope: x-scope }}\n",
        up.addr
    )
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let d = std::env::temp_dir()
        .join("warden-oauth-tests")
        .join(format!("{}-{nanos}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn post_form(gw: &TestGateway, body: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req =
        http::Request::post(gw.url("/oauth2/token")).header("content-type", "application/x-www-form-urlencoded");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(&http1(), req.body(Full::new(Bytes::from(body.to_owned()))).unwrap()).await
}

async fn get_with_token(gw: &TestGateway, token: &str) -> Reply {
    let req = http::Request::get(gw.url("/api/orders")).header("authorization", format!("Bearer {token}"));
    send(&http1(), req.body(Full::<Bytes>::default()).unwrap()).await
}

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// One bad token request and the RFC 6749 error it must get.
struct Case {
    body: String,
    headers: Vec<(&'static str, String)>,
    status: u16,
    error: &'static str,
}

fn case(body: &str, headers: Vec<(&'static str, String)>, status: u16, error: &'static str) -> Case {
    Case {
        body: body.to_owned(),
        headers,
        status,
        error,
    }
}

async fn plain_gateway() -> (TestGateway, MockUpstream) {
    let up = MockUpstream::start("api").await;
    let dir = temp_dir("plain");
    let gw = TestGateway::start(&format!("{}{}", store_yaml(&dir), api_route(&up))).await;
    (gw, up)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_secret_basic_gets_a_token_that_a_route_accepts() {
    let (gw, up) = plain_gateway().await;
    let out = cli(
        &gw.config_path,
        &[
            "clients",
            "create",
            "billing",
            "--scope",
            "orders:read",
            "--scope",
            "orders:write",
        ],
    );
    let (id, secret) = registered(&out);
    let secret = secret.unwrap();

    let r = post_form(
        &gw,
        "grant_type=client_credentials&scope=orders:read",
        &[("authorization", &basic(&id, &secret))],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.headers["cache-control"], "no-store");
    let body = r.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["scope"], "orders:read");
    let token = body["access_token"].as_str().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    let claims = claims_of(token);
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["client_id"], id.as_str());
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));

    // The route verifies it with the gateway's own keys.
    let r = get_with_token(&gw, token).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.seen().last().unwrap().headers["x-scope"], "orders:read");

    // The published key set holds the signing key; metadata names the endpoints.
    let jwks = warden_testkit::get(&gw.url("/oauth2/jwks")).await.json();
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == header["kid"])
    );
    assert!(jwks["keys"][0].get("d").is_none(), "private key material published");
    let meta = warden_testkit::get(&gw.url("/.well-known/oauth-authorization-server"))
        .await
        .json();
    assert_eq!(meta["issuer"], ISSUER);
    assert_eq!(meta["token_endpoint"], format!("{ISSUER}/oauth2/token"));
    assert_eq!(meta["jwks_uri"], format!("{ISSUER}/oauth2/jwks"));

    // No scope asked: everything the client may have.
    let r = post_form(
        &gw,
        "grant_type=client_credentials",
        &[("authorization", &basic(&id, &secret))],
    )
    .await;
    assert_eq!(r.json()["scope"], "orders:read orders:write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_token_requests_get_rfc6749_errors() {
    let (gw, _up) = plain_gateway().await;
    let (id, secret) = registered(&cli(&gw.config_path, &["clients", "create", "svc", "--scope", "read"]));
    let secret = secret.unwrap();
    let auth = basic(&id, &secret);
    let auth_header = || vec![("authorization", auth.clone())];
    let cases = [
        case(
            "grant_type=client_credentials",
            vec![("authorization", basic(&id, "wcs_wrong"))],
            401,
            "invalid_client",
        ),
        case(
            "grant_type=client_credentials",
            vec![("authorization", basic("wc_unknown", &secret))],
            401,
            "invalid_client",
        ),
        case("grant_type=client_credentials", vec![], 401, "invalid_client"),
        case(
            "grant_type=password&username=a&password=b",
            auth_header(),
            400,
            "unsupported_grant_type",
        ),
        case("scope=read", auth_header(), 400, "invalid_request"),
        case(
            "grant_type=client_credentials&scope=admin",
            auth_header(),
            400,
            "invalid_scope",
        ),
        case(
            "grant_type=client_credentials&grant_type=client_credentials",
            auth_header(),
            400,
            "invalid_request",
        ),
        // A secret-basic client may not send its secret in the body instead.
        case(
            &format!("grant_type=client_credentials&client_id={id}&client_secret={secret}"),
            vec![],
            401,
            "invalid_client",
        ),
        // Two methods at once.
        case(
            &format!("grant_type=client_credentials&client_secret={secret}"),
            auth_header(),
            400,
            "invalid_request",
        ),
    ];
    for c in cases {
        let hs: Vec<(&str, &str)> = c.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = post_form(&gw, &c.body, &hs).await;
        assert_eq!(r.status, c.status, "{}: {}", c.body, r.text());
        assert_eq!(r.json()["error"], c.error, "{}", c.body);
        assert!(!r.text().contains(&secret), "the answer echoes the secret");
        if c.status == 401 {
            assert!(r.headers.contains_key("www-authenticate"), "{}", c.body);
        }
    }
    // Not a form; wrong method.
    let req = http::Request::post(gw.url("/oauth2/token"))
        .header("content-type", "application/json")
        .header("authorization", &auth)
        .body(Full::new(Bytes::from("{}")))
        .unwrap();
    let r = send(&http1(), req).await;
    assert_eq!(
        (r.status.as_u16(), r.json()["error"].clone()),
        (400, json!("invalid_request"))
    );
    assert_eq!(warden_testkit::get(&gw.url("/oauth2/token")).await.status, 405);
    // A disabled client gets nothing.
    cli(&gw.config_path, &["clients", "disable", "svc"]);
    let r = post_form(&gw, "grant_type=client_credentials", &[("authorization", &auth)]).await;
    assert_eq!(r.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_secret_post_and_private_key_jwt() {
    let (gw, _up) = plain_gateway().await;
    let (id, secret) = registered(&cli(
        &gw.config_path,
        &[
            "clients",
            "create",
            "poster",
            "--auth",
            "client_secret_post",
            "--scope",
            "read",
        ],
    ));
    let body = format!(
        "grant_type=client_credentials&client_id={id}&client_secret={}",
        secret.unwrap()
    );
    let r = post_form(&gw, &body, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        get_with_token(&gw, r.json()["access_token"].as_str().unwrap())
            .await
            .status,
        200
    );

    let keys = TestIssuer::new();
    let (id, secret) = registered(&cli(
        &gw.config_path,
        &[
            "clients",
            "create",
            "signer",
            "--auth",
            "private_key_jwt",
            "--public-key",
            keys.ec.public_file.to_str().unwrap(),
            "--scope",
            "read",
        ],
    ));
    assert!(secret.is_none(), "private_key_jwt clients get no secret");
    let now = warden_testkit::jwt::now();
    let assertion = |key: &warden_testkit::jwt::TestKey, aud: &str, jti: &str, exp: u64| {
        let claims = json!({ "iss": id, "sub": id, "aud": aud, "jti": jti, "iat": now, "exp": exp });
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
            &claims,
            &key.encoding,
        )
        .unwrap()
    };
    let form = |a: &str| {
        format!(
            "grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={a}"
        )
    };
    let token_url = format!("{ISSUER}/oauth2/token");
    let good = assertion(&keys.ec, &token_url, "a-1", now + 60);
    let r = post_form(&gw, &form(&good), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        claims_of(r.json()["access_token"].as_str().unwrap())["sub"],
        id.as_str()
    );
    // The same assertion again: single use.
    assert_eq!(post_form(&gw, &form(&good), &[]).await.status, 401);
    // Signed by another key, for another audience, or living too long.
    for bad in [
        assertion(&keys.attacker_ec, &token_url, "a-2", now + 60),
        assertion(&keys.ec, "https://elsewhere.example/token", "a-3", now + 60),
        assertion(&keys.ec, &token_url, "a-4", now + 3600),
        assertion(&keys.ec, &token_url, "a-5", now - 120),
    ] {
        let r = post_form(&gw, &form(&bad), &[]).await;
        assert_eq!(
            (r.status.as_u16(), r.json()["error"].clone()),
            (401, json!("invalid_client"))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_client_auth_tokens_are_bound_to_the_certificate() {
    let up = MockUpstream::start("api").await;
    let mut ca = TestCa::new("oauth");
    let server = ca.server("server", &["127.0.0.1", "api.test"]);
    let robot = ca.client("robot", "robot", &["spiffe://example.org/robot"]);
    let other = ca.client("other", "other", &["spiffe://example.org/other"]);
    let dir = temp_dir("mtls");
    let yaml = format!(
        "listeners:\n  - name: tls\n    bind: 127.0.0.1:0\n    tls:\n      certificates: [{{ cert: \"{}\", key: \"{}\" }}]\n      client_auth: {{ mode: optional, ca: \"{}\" }}\n{}{}",
        server.cert_str(),
        server.key_str(),
        ca.ca_str(),
        store_yaml(&dir),
        api_route(&up)
    );
    let gw = TestGateway::start(&yaml).await;
    let (id, secret) = registered(&cli(
        &gw.config_path,
        &[
            "clients",
            "create",
            "robot",
            "--auth",
            "tls_client_auth",
            "--tls-identity",
            "spiffe://example.org/robot",
        ],
    ));
    assert!(secret.is_none());
    let token_request = |cert: Option<&CertFiles>| {
        let req = http::Request::post("/oauth2/token")
            .header("host", "api.test")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(format!(
                "grant_type=client_credentials&client_id={id}"
            ))))
            .unwrap();
        https(gw.addr, "api.test", ca.client_config(&["http/1.1"], cert), req)
    };
    // Without a certificate, or with another client's: refused.
    assert_eq!(token_request(None).await.unwrap().reply.status, 401);
    assert_eq!(token_request(Some(&other)).await.unwrap().reply.status, 401);
    let r = token_request(Some(&robot)).await.unwrap().reply;
    assert_eq!(r.status, 200, "{}", r.text());
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    assert!(
        claims_of(&token)["cnf"]["x5t#S256"].is_string(),
        "token not certificate-bound"
    );
    let call = |cert: Option<&CertFiles>| {
        let req = http::Request::get("/api/x")
            .header("host", "api.test")
            .header("authorization", format!("Bearer {token}"))
            .body(Full::<Bytes>::default())
            .unwrap();
        https(gw.addr, "api.test", ca.client_config(&["http/1.1"], cert), req)
    };
    assert_eq!(call(Some(&robot)).await.unwrap().reply.status, 200);
    // The stolen token over another certificate, or none, is refused.
    assert_eq!(call(Some(&other)).await.unwrap().reply.status, 401);
    assert_eq!(call(None).await.unwrap().reply.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_its_family() {
    let (gw, _up) = plain_gateway().await;
    let (id, secret) = registered(&cli(
        &gw.config_path,
        &[
            "clients",
            "create",
            "long-lived",
            "--scope",
            "read",
            "--scope",
            "write",
            "--refresh-tokens",
        ],
    ));
    let auth = basic(&id, &secret.unwrap());
    let first = post_form(&gw, "grant_type=client_credentials", &[("authorization", &auth)])
        .await
        .json();
    let r1 = first["refresh_token"].as_str().unwrap().to_owned();
    let a1 = first["access_token"].as_str().unwrap().to_owned();
    assert!(r1.starts_with("wrt_"));

    // Rotation: the refresh token is used up and replaced; scope may narrow.
    let second = post_form(
        &gw,
        &format!("grant_type=refresh_token&refresh_token={r1}&scope=read"),
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(second.status, 200, "{}", second.text());
    let second = second.json();
    assert_eq!(second["scope"], "read");
    let r2 = second["refresh_token"].as_str().unwrap().to_owned();
    let a2 = second["access_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2);
    // Widening is refused.
    let wide = post_form(
        &gw,
        &format!("grant_type=refresh_token&refresh_token={r2}&scope=read%20write"),
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(wide.json()["error"], "invalid_scope");
    assert_eq!(get_with_token(&gw, &a2).await.status, 200);

    // Someone replays the first (used) refresh token: refused, and the whole
    // family dies — the current refresh token and the access tokens it made.
    let replay = post_form(
        &gw,
        &format!("grant_type=refresh_token&refresh_token={r1}"),
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(
        (replay.status.as_u16(), replay.json()["error"].clone()),
        (400, json!("invalid_grant"))
    );
    let after = post_form(
        &gw,
        &format!("grant_type=refresh_token&refresh_token={r2}"),
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(
        after.json()["error"],
        "invalid_grant",
        "the family's live refresh token still works"
    );
    for a in [&a1, &a2] {
        let mut refused = false;
        for _ in 0..100 {
            if get_with_token(&gw, a).await.status == 401 {
                refused = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(refused, "an access token of the revoked family still works");
    }
    // Another client cannot use this client's refresh token.
    let (other, other_secret) = registered(&cli(
        &gw.config_path,
        &["clients", "create", "other", "--refresh-tokens"],
    ));
    let fresh = post_form(&gw, "grant_type=client_credentials", &[("authorization", &auth)])
        .await
        .json();
    let r = post_form(
        &gw,
        &format!(
            "grant_type=refresh_token&refresh_token={}",
            fresh["refresh_token"].as_str().unwrap()
        ),
        &[("authorization", &basic(&other, &other_secret.unwrap()))],
    )
    .await;
    assert_eq!(r.json()["error"], "invalid_grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_and_introspection_endpoints() {
    let (gw, _up) = plain_gateway().await;
    let (id, secret) = registered(&cli(&gw.config_path, &["clients", "create", "app", "--scope", "read"]));
    let auth = basic(&id, &secret.unwrap());
    let (rs, rs_secret) = registered(&cli(
        &gw.config_path,
        &["clients", "create", "resource-server", "--scope", "warden:introspect"],
    ));
    let rs_auth = basic(&rs, &rs_secret.unwrap());
    let (nosy, nosy_secret) = registered(&cli(&gw.config_path, &["clients", "create", "nosy"]));
    let nosy_auth = basic(&nosy, &nosy_secret.unwrap());
    let token = post_form(&gw, "grant_type=client_credentials", &[("authorization", &auth)])
        .await
        .json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let introspect = |who: String| {
        let body = format!("token={token}");
        let gw = &gw;
        async move {
            let req = http::Request::post(gw.url("/oauth2/introspect"))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("authorization", who)
                .body(Full::new(Bytes::from(body)))
                .unwrap();
            send(&http1(), req).await.json()
        }
    };
    let own = introspect(auth.clone()).await;
    assert_eq!(own["active"], true);
    assert_eq!(own["client_id"], id.as_str());
    assert_eq!(own["scope"], "read");
    assert_eq!(
        introspect(rs_auth.clone()).await["active"],
        true,
        "a resource server may introspect"
    );
    assert_eq!(
        introspect(nosy_auth).await,
        json!({ "active": false }),
        "other clients learn nothing"
    );

    // Another client cannot revoke it (200, nothing happens); its own client can.
    let revoke = |who: String| {
        let body = format!("token={token}&token_type_hint=access_token");
        let gw = &gw;
        async move {
            let req = http::Request::post(gw.url("/oauth2/revoke"))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("authorization", who)
                .body(Full::new(Bytes::from(body)))
                .unwrap();
            send(&http1(), req).await
        }
    };
    assert_eq!(revoke(rs_auth.clone()).await.status, 200);
    assert_eq!(get_with_token(&gw, &token).await.status, 200, "revoked by a stranger");
    assert_eq!(revoke(auth.clone()).await.status, 200);
    let mut refused = false;
    for _ in 0..100 {
        if get_with_token(&gw, &token).await.status == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(refused, "a revoked token still works on the route");
    assert_eq!(introspect(rs_auth).await["active"], false);
    // Garbage is not an error (RFC 7009 §2.2); a bad client is.
    let req = http::Request::post(gw.url("/oauth2/revoke"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", &auth)
        .body(Full::new(Bytes::from("token=garbage")))
        .unwrap();
    assert_eq!(send(&http1(), req).await.status, 200);
    let req = http::Request::post(gw.url("/oauth2/revoke"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from("token=garbage")))
        .unwrap();
    assert_eq!(send(&http1(), req).await.status, 401);
}

/// A DPoP proof (RFC 9449) signed by `key`, for `htm` `htu`, with `ath`
/// over `token` when given.
fn proof(key: &warden_testkit::jwt::TestKey, htm: &str, htu: &str, token: Option<&str>, jti: &str) -> String {
    let jwk: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(warden_testkit::jwt::jwk(key, jsonwebtoken::Algorithm::ES256, "k")).unwrap();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    h.typ = Some("dpop+jwt".into());
    h.jwk = Some(jwk);
    let mut claims = json!({ "jti": jti, "htm": htm, "htu": htu, "iat": warden_testkit::jwt::now() });
    if let Some(t) = token {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, t.as_bytes());
        claims["ath"] = json!(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref()));
    }
    jsonwebtoken::encode(&h, &claims, &key.encoding).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dpop_bound_tokens_need_a_fresh_proof_from_their_key() {
    let (gw, _up) = plain_gateway().await;
    let (id, secret) = registered(&cli(
        &gw.config_path,
        &["clients", "create", "dpop-app", "--scope", "read"],
    ));
    let auth = basic(&id, &secret.unwrap());
    let keys = TestIssuer::new();
    let token_url = gw.url("/oauth2/token");
    let p = proof(&keys.ec, "POST", &token_url, None, "t-1");
    let r = post_form(
        &gw,
        "grant_type=client_credentials",
        &[("authorization", &auth), ("dpop", &p)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["token_type"], "DPoP");
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    assert!(claims_of(&token)["cnf"]["jkt"].is_string());
    // The same proof again at the token endpoint: refused.
    let again = post_form(
        &gw,
        "grant_type=client_credentials",
        &[("authorization", &auth), ("dpop", &p)],
    )
    .await;
    assert_eq!(
        (again.status.as_u16(), again.json()["error"].clone()),
        (400, json!("invalid_dpop_proof"))
    );

    let api = gw.url("/api/orders");
    let call = |scheme: &str, proof: Option<String>| {
        let mut req = http::Request::get(&api).header("authorization", format!("{scheme} {token}"));
        if let Some(p) = proof {
            req = req.header("dpop", p);
        }
        let req = req.body(Full::<Bytes>::default()).unwrap();
        async move { send(&http1(), req).await }
    };
    let good = proof(&keys.ec, "GET", &api, Some(&token), "r-1");
    assert_eq!(call("DPoP", Some(good.clone())).await.status, 200);
    // Replayed proof, proof from another key, for another method or URL,
    // without `ath`, no proof, or the token sent as a bearer token: refused.
    let other_url = gw.url("/api/other");
    for (scheme, p, why) in [
        ("DPoP", Some(good), "replayed proof"),
        (
            "DPoP",
            Some(proof(&keys.attacker_ec, "GET", &api, Some(&token), "r-2")),
            "another key",
        ),
        (
            "DPoP",
            Some(proof(&keys.ec, "POST", &api, Some(&token), "r-3")),
            "another method",
        ),
        (
            "DPoP",
            Some(proof(&keys.ec, "GET", &other_url, Some(&token), "r-4")),
            "another URL",
        ),
        ("DPoP", Some(proof(&keys.ec, "GET", &api, None, "r-5")), "no ath"),
        ("DPoP", None, "no proof"),
        (
            "Bearer",
            Some(proof(&keys.ec, "GET", &api, Some(&token), "r-6")),
            "bearer scheme",
        ),
    ] {
        let r = call(scheme, p).await;
        assert_eq!(r.status, 401, "{why}");
    }
    // A fresh proof still works.
    let fresh = proof(&keys.ec, "GET", &api, Some(&token), "r-7");
    assert_eq!(call("DPoP", Some(fresh)).await.status, 200);

    // A plain bearer token may not be sent with the DPoP scheme.
    let plain = post_form(&gw, "grant_type=client_credentials", &[("authorization", &auth)])
        .await
        .json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let req = http::Request::get(&api)
        .header("authorization", format!("DPoP {plain}"))
        .header("dpop", proof(&keys.ec, "GET", &api, Some(&plain), "r-8"))
        .body(Full::<Bytes>::default())
        .unwrap();
    assert_eq!(send(&http1(), req).await.status, 401);
}
