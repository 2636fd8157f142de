//! End-to-end: path normalisation bypasses, method checks and IP rules. Each
//! attack is tried and must not reach the protected route; the benign
//! look-alike must pass.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use warden_testkit::{MockUpstream, TestGateway, get, raw};

async fn setup() -> (MockUpstream, MockUpstream, TestGateway) {
    let public = MockUpstream::start("public").await;
    let admin = MockUpstream::start("admin").await;
    let yaml = format!(
        r#"services:
  - name: public
    targets: ["{}"]
  - name: admin
    targets: ["{}"]
routes:
  - id: public
    path: {{ prefix: /public }}
    service: public
  - id: admin
    path: {{ prefix: /admin }}
    service: admin
    policies:
      - type: ip_rules
        deny: [127.0.0.1/32]
  - id: users
    methods: [GET, PUT]
    path: {{ template: "/users/{{id}}" }}
    service: public
  - id: me
    methods: [GET]
    path: {{ exact: /users/me }}
    service: admin
"#,
        public.addr, admin.addr
    );
    let gw = TestGateway::start(&yaml).await;
    (public, admin, gw)
}

/// Sends the path byte-for-byte (no client-side normalisation).
async fn raw_get(gw: &TestGateway, path: &str) -> String {
    raw(
        gw.addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traversal_into_the_admin_route_is_routed_as_admin_and_denied() {
    let (public, admin, gw) = setup().await;
    for attack in [
        "/public/../admin",
        "/public/%2e%2e/admin",
        "/public/%2E%2E/admin",
        "//admin",
        "/public/./../admin/x",
        "/public/.%2e/admin",
    ] {
        let resp = raw_get(&gw, attack).await;
        assert!(resp.starts_with("HTTP/1.1 403"), "{attack}: {resp}");
        assert!(resp.contains("urn:warden:problem:forbidden"), "{attack}: {resp}");
    }
    assert_eq!(admin.hits(), 0, "nothing reached the admin upstream");
    assert_eq!(public.hits(), 0, "and nothing was misrouted to public");
    // Benign look-alikes pass.
    assert!(raw_get(&gw, "/public/admin").await.starts_with("HTTP/1.1 200"));
    assert!(raw_get(&gw, "/public/a/../b").await.starts_with("HTTP/1.1 200"));
    assert_eq!(
        public.seen().last().unwrap().uri,
        "/public/b",
        "upstream sees the normalised path"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_slash_backslash_nul_and_bad_utf8_are_refused() {
    let (public, admin, gw) = setup().await;
    for attack in [
        "/admin%2F..",
        "/public%2F..%2Fadmin",
        "/public/%5C../admin",
        "/public/%00",
        "/public/%C3%28",
        "/public/%zz",
    ] {
        let resp = raw_get(&gw, attack).await;
        assert!(resp.starts_with("HTTP/1.1 400"), "{attack}: {resp}");
        assert!(resp.contains("application/problem+json"), "{attack}: {resp}");
    }
    assert_eq!(admin.hits() + public.hits(), 0);
    assert!(
        raw_get(&gw, "/public/caf%C3%A9").await.starts_with("HTTP/1.1 200"),
        "valid UTF-8 passes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn literal_beats_template_and_wrong_method_gets_405_with_allow() {
    let (public, admin, gw) = setup().await;
    assert_eq!(get(&gw.url("/users/me")).await.status, 200);
    assert_eq!(admin.hits(), 1, "/users/me is the exact route");
    assert_eq!(get(&gw.url("/users/42")).await.status, 200);
    assert_eq!(public.hits(), 1);
    let resp = raw(
        gw.addr,
        b"DELETE /users/42 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await
    .0;
    assert!(resp.starts_with("HTTP/1.1 405"), "{resp}");
    assert!(resp.to_lowercase().contains("allow: get, put"), "{resp}");
    let missing = get(&gw.url("/nothing-here")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["type"], "urn:warden:problem:route-not-found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_rules_allow_list_lets_only_listed_networks_in() {
    let up = MockUpstream::start("a").await;
    let yaml = format!(
        "services:\n  - name: a\n    targets: [\"{}\"]\nroutes:\n  - id: v4only\n    path: {{ prefix: /v4 }}\n    service: a\n    policies:\n      - type: ip_rules\n        allow: [127.0.0.0/8]\n  - id: other\n    path: {{ prefix: /other }}\n    service: a\n    policies:\n      - type: ip_rules\n        allow: [10.0.0.0/8, \"2001:db8::/32\"]\n",
        up.addr
    );
    let gw = TestGateway::start(&yaml).await;
    assert_eq!(get(&gw.url("/v4/x")).await.status, 200);
    let denied = get(&gw.url("/other/x")).await;
    assert_eq!(denied.status, 403);
    assert!(
        !denied.text().contains("127.0.0.1"),
        "the problem does not echo the address"
    );
    assert_eq!(up.hits(), 1);
    gw.wait_for_log_lines(2).await;
    assert_eq!(gw.access_log()[1]["rejection"], "ip_denied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_forwarded_for_cannot_bypass_ip_rules() {
    let up = MockUpstream::start("a").await;
    let yaml = format!(
        "services:\n  - name: a\n    targets: [\"{}\"]\nroutes:\n  - id: internal\n    path: {{ prefix: / }}\n    service: a\n    policies:\n      - type: ip_rules\n        allow: [10.0.0.0/8]\n",
        up.addr
    );
    let gw = TestGateway::start(&yaml).await;
    let resp = raw(
        gw.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.1.2.3\r\nConnection: close\r\n\r\n",
    )
    .await
    .0;
    assert!(resp.starts_with("HTTP/1.1 403"), "{resp}");
    assert_eq!(up.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tomcat_style_dot_parameters_and_trace_are_refused() {
    let (public, admin, gw) = setup().await;
    for attack in ["/public/..;/admin", "/public/.;/admin", "/public/%2e%2e;/admin"] {
        let resp = raw_get(&gw, attack).await;
        assert!(resp.starts_with("HTTP/1.1 400"), "{attack}: {resp}");
    }
    let resp = raw(
        gw.addr,
        b"TRACE /public/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await
    .0;
    assert!(resp.starts_with("HTTP/1.1 405"), "{resp}");
    assert_eq!(public.hits() + admin.hits(), 0);
    // Benign: a matrix parameter on an ordinary segment passes.
    assert!(raw_get(&gw, "/public/item;v=2").await.starts_with("HTTP/1.1 200"));
}
