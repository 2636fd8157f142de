//! End-to-end: the `csrf` policy in front of a real upstream. A cross-site
//! POST carrying the session cookie is refused before the upstream sees it;
//! the same request from the gateway's own origin, a GET, and a request
//! without cookies go through.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use http::Request;
use http_body_util::Full;
use warden_testkit::{MockUpstream, TestGateway, http1, send};

async fn post(gw: &TestGateway, method: &str, headers: &[(&str, &str)]) -> u16 {
    let mut b = Request::builder().method(method).uri(gw.url("/app/profile"));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let reply = send(&http1(), b.body(Full::default()).unwrap()).await;
    if reply.status == 403 {
        assert_eq!(reply.json()["type"], "urn:warden:problem:forbidden");
    }
    reply.status.as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_cookie_requests_are_refused_and_same_origin_ones_pass() {
    let up = MockUpstream::start("a").await;
    let yaml = format!(
        "services:\n  - name: a\n    targets: [\"{}\"]\nroutes:\n  - id: app\n    path: {{ prefix: /app }}\n    service: a\n    policies:\n      - type: csrf\n        session_cookies: [sid]\n        double_submit: {{ cookie: csrf, header: x-csrf-token }}\n",
        up.addr
    );
    let gw = TestGateway::start(&yaml).await;
    let own = format!("http://{}", gw.addr);
    let cookies = ("cookie", "sid=s3ss10n; csrf=t0k3n");

    assert_eq!(
        post(
            &gw,
            "POST",
            &[cookies, ("origin", "https://evil.example"), ("x-csrf-token", "t0k3n")]
        )
        .await,
        403
    );
    assert_eq!(
        post(&gw, "DELETE", &[cookies, ("x-csrf-token", "t0k3n")]).await,
        403,
        "no Origin, no Referer"
    );
    assert_eq!(
        post(&gw, "POST", &[cookies, ("origin", &own)]).await,
        403,
        "token header missing"
    );
    assert_eq!(up.hits(), 0, "nothing refused reached the upstream");

    assert_eq!(
        post(&gw, "POST", &[cookies, ("origin", &own), ("x-csrf-token", "t0k3n")]).await,
        200
    );
    let referer = format!("{own}/app/settings");
    assert_eq!(
        post(&gw, "PUT", &[cookies, ("referer", &referer), ("x-csrf-token", "t0k3n")]).await,
        200
    );
    assert_eq!(
        post(&gw, "GET", &[cookies, ("origin", "https://evil.example")]).await,
        200
    );
    assert_eq!(
        post(
            &gw,
            "POST",
            &[("authorization", "Bearer x"), ("origin", "https://evil.example")]
        )
        .await,
        200
    );
    assert_eq!(up.hits(), 4);
}
