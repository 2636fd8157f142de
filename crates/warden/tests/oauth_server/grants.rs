//! Refresh tokens, revocation and introspection.

use bytes::Bytes;
use http_body_util::Full;
use serde_json::json;
use warden_testkit::{http1, send};

use crate::support::*;

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
    assert_eq!(introspect(rs_auth.clone()).await["active"], false);
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

    // Disabling a client ends the tokens it already holds, not only its next
    // token request; another client's token keeps working.
    let (gone, gone_secret) = registered(&cli(&gw.config_path, &["clients", "create", "leaving"]));
    let gone_auth = basic(&gone, &gone_secret.unwrap());
    let mint = |auth: String| {
        let gw = &gw;
        async move {
            post_form(gw, "grant_type=client_credentials", &[("authorization", &auth)])
                .await
                .json()["access_token"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let held = mint(gone_auth).await;
    let other = mint(auth.clone()).await;
    assert_eq!(get_with_token(&gw, &held).await.status, 200);
    cli(&gw.config_path, &["clients", "disable", "leaving"]);
    let mut refused = false;
    for _ in 0..100 {
        if get_with_token(&gw, &held).await.status == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(refused, "a disabled client's token still works");
    assert_eq!(get_with_token(&gw, &other).await.status, 200);
    // …and introspection calls it inactive.
    let req = http::Request::post(gw.url("/oauth2/introspect"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", &rs_auth)
        .body(Full::new(Bytes::from(format!("token={held}"))))
        .unwrap();
    assert_eq!(send(&http1(), req).await.json()["active"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstream_gets_a_gateway_signed_identity_token_it_can_verify() {
    let up = warden_testkit::MockUpstream::start("api").await;
    let dir = warden_testkit::temp_dir("identity");
    let yaml = format!(
        "{}services:\n  - name: api\n    targets: [\"{}\"]\nroutes:\n  - id: keyed\n    path: {{ prefix: /keyed }}\n    service: api\n    identity_token: {{ ttl_secs: 30 }}\n    policies:\n      - type: api_key\n        anonymous: true\n  - id: bearer\n    path: {{ prefix: /bearer }}\n    service: api\n    policies:\n      - type: jwt\n        issuers:\n          - {{ issuer: \"{ISSUER}\", builtin: true, audiences: [\"{ISSUER}\", api], algorithms: [ES256] }}\n",
        store_yaml(&dir),
        up.addr
    );
    let gw = warden_testkit::TestGateway::start(&yaml).await;
    cli(&gw.config_path, &["consumers", "create", "frank"]);
    let key = cli(&gw.config_path, &["keys", "create", "--consumer", "frank"]);
    let call = |headers: Vec<(&'static str, String)>| {
        let mut req = http::Request::get(gw.url("/keyed/x"));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let req = req.body(Full::<Bytes>::default()).unwrap();
        async move { send(&http1(), req).await }
    };
    let r = call(vec![
        ("x-api-key", key.trim().to_owned()),
        ("x-warden-identity", "forged".into()),
    ])
    .await;
    assert_eq!(r.status, 200);
    let seen = up.seen();
    let token = seen.last().unwrap().headers["x-warden-identity"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(token, "forged");
    // Verifiable with the published keys, for this service, naming the consumer.
    let jwks = warden_testkit::get(&gw.url("/oauth2/jwks")).await.json();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("warden-identity+jwt"));
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"].as_str() == header.kid.as_deref())
        .unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&serde_json::from_value(jwk.clone()).unwrap()).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_audience(&["api"]);
    v.set_issuer(&[ISSUER]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &v)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], "frank");
    let life = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(life, 30);
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    // Signed with the access-token keys and carrying an audience the bearer
    // route accepts, it still never passes as an access token; a real access
    // token does.
    let bearer = |token: String| {
        let req = http::Request::get(gw.url("/bearer/x"))
            .header("authorization", format!("Bearer {token}"))
            .body(Full::<Bytes>::default())
            .unwrap();
        async move { send(&http1(), req).await.status }
    };
    assert_eq!(
        bearer(token.clone()).await,
        401,
        "an identity token passed as an access token"
    );
    let (id, secret) = registered(&cli(&gw.config_path, &["clients", "create", "m2m"]));
    let access = post_form(
        &gw,
        "grant_type=client_credentials",
        &[("authorization", &basic(&id, &secret.unwrap()))],
    )
    .await
    .json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(bearer(access).await, 200);
    // Anonymous: no identity token, and the client's forged one is gone.
    let r = call(vec![
        ("x-warden-identity", "forged".into()),
        ("x_warden_identity", "forged".into()),
    ])
    .await;
    assert_eq!(r.status, 200);
    let seen = up.seen();
    let last = &seen.last().unwrap().headers;
    assert!(!last.contains_key("x-warden-identity") && !last.contains_key("x_warden_identity"));
}
