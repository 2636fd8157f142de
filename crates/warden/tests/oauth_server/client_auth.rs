//! Client authentication methods and RFC 6749 errors.

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use serde_json::{Value, json};
use warden_testkit::jwt::TestIssuer;
use warden_testkit::pki::{CertFiles, TestCa};
use warden_testkit::{MockUpstream, TestGateway, https};
use warden_testkit::{http1, send};

use crate::support::*;

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
    let dir = warden_testkit::temp_dir("mtls");
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

    // A DNS-name identity matches a DNS SAN only: a certificate carrying the
    // same text as a URI SAN (or as its CN) does not pass for it.
    let (dns_id, _) = registered(&cli(
        &gw.config_path,
        &[
            "clients",
            "create",
            "host-robot",
            "--auth",
            "tls_client_auth",
            "--tls-identity",
            "robot.example.org",
        ],
    ));
    let spec = |dns: &[&str], uris: &[&str]| warden_testkit::pki::LeafSpec {
        cn: "robot.example.org".into(),
        dns: dns.iter().map(|s| (*s).to_owned()).collect(),
        uris: uris.iter().map(|s| (*s).to_owned()).collect(),
        client: true,
        from_days: -1,
        to_days: 30,
    };
    let by_uri = ca.leaf("by-uri", &spec(&[], &["robot.example.org"]));
    let by_dns = ca.leaf("by-dns", &spec(&["robot.example.org"], &[]));
    let dns_request = |cert: &CertFiles| {
        let req = http::Request::post("/oauth2/token")
            .header("host", "api.test")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(format!(
                "grant_type=client_credentials&client_id={dns_id}"
            ))))
            .unwrap();
        https(gw.addr, "api.test", ca.client_config(&["http/1.1"], Some(cert)), req)
    };
    assert_eq!(dns_request(&by_uri).await.unwrap().reply.status, 401);
    assert_eq!(dns_request(&by_dns).await.unwrap().reply.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_endpoint_takes_rate_limits_against_secret_guessing() {
    let up = MockUpstream::start("api").await;
    let dir = warden_testkit::temp_dir("oauth-limits");
    let limits = "  policies:\n    - type: rate_limit\n      limits:\n        - { name: per-ip, key: [ip], rate: { requests: 3, per_secs: 3600 } }\n";
    let gw = TestGateway::start(&format!("{}{limits}{}", store_yaml(&dir), api_route(&up))).await;
    let (id, _) = registered(&cli(&gw.config_path, &["clients", "create", "target"]));
    let guess = basic(&id, "wcs_wrong");
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            post_form(&gw, "grant_type=client_credentials", &[("authorization", &guess)])
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
    // Policies that need the body or the answer do not fit the endpoints.
    let bad = format!(
        "{}  policies:\n    - type: authz\n      policies: \"permit(principal, action, resource);\"\n{}",
        store_yaml(&dir),
        api_route(&up)
    );
    let err = warden_config::load_str(&bad).unwrap_err().to_string();
    assert!(err.contains("oauth_server.policies[0]"), "{err}");
}
