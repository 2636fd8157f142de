//! DPoP-bound tokens.

use bytes::Bytes;
use http_body_util::Full;
use serde_json::json;
use warden_testkit::jwt::TestIssuer;
use warden_testkit::{http1, send};

use warden_testkit::jwt::dpop_proof;

use crate::support::*;

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
    let p = dpop_proof(&keys.ec, "POST", &token_url, None, "t-1");
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
    let good = dpop_proof(&keys.ec, "GET", &api, Some(&token), "r-1");
    assert_eq!(call("DPoP", Some(good.clone())).await.status, 200);
    // Replayed proof, proof from another key, for another method or URL,
    // without `ath`, no proof, or the token sent as a bearer token: refused.
    let other_url = gw.url("/api/other");
    for (scheme, p, why) in [
        ("DPoP", Some(good), "replayed proof"),
        (
            "DPoP",
            Some(dpop_proof(&keys.attacker_ec, "GET", &api, Some(&token), "r-2")),
            "another key",
        ),
        (
            "DPoP",
            Some(dpop_proof(&keys.ec, "POST", &api, Some(&token), "r-3")),
            "another method",
        ),
        (
            "DPoP",
            Some(dpop_proof(&keys.ec, "GET", &other_url, Some(&token), "r-4")),
            "another URL",
        ),
        ("DPoP", Some(dpop_proof(&keys.ec, "GET", &api, None, "r-5")), "no ath"),
        ("DPoP", None, "no proof"),
        (
            "Bearer",
            Some(dpop_proof(&keys.ec, "GET", &api, Some(&token), "r-6")),
            "bearer scheme",
        ),
    ] {
        let r = call(scheme, p).await;
        assert_eq!(r.status, 401, "{why}");
    }
    // A fresh proof still works.
    let fresh = dpop_proof(&keys.ec, "GET", &api, Some(&token), "r-7");
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
        .header("dpop", dpop_proof(&keys.ec, "GET", &api, Some(&plain), "r-8"))
        .body(Full::<Bytes>::default())
        .unwrap();
    assert_eq!(send(&http1(), req).await.status, 401);
}
