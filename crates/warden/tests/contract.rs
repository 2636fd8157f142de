//! End-to-end: the `contract` policy with an OpenAPI document. Mass assignment
//! of `readOnly` `role` / `is_admin` is refused; an undocumented endpoint is
//! refused in enforce mode and reported (forwarded, event counted) in report
//! mode. A route with `contract` and `injection` (which share one read of the
//! body) gives each policy's answer, the contract's first.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use warden_testkit::{MockUpstream, TestGateway, http1, send, temp_dir};

const SPEC: &str = r##"openapi: 3.1.0
info: { title: Accounts, version: "1" }
paths:
  /accounts/{id}:
    parameters: [{ name: id, in: path, required: true, schema: { type: string } }]
    get: {}
    put:
      requestBody:
        required: true
        content: { application/json: { schema: { $ref: "#/components/schemas/Account" } } }
components:
  schemas:
    Account:
      type: object
      properties:
        name: { type: string }
        role: { type: string, readOnly: true }
        is_admin: { type: boolean, readOnly: true }
"##;

async fn setup() -> (MockUpstream, TestGateway) {
    let up = MockUpstream::start("a").await;
    let dir = temp_dir("contract-e2e");
    let spec = dir.join("accounts.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    let route = |id: &str, mode: &str| {
        format!(
            "  - id: {id}\n    path: {{ prefix: /{id} }}\n    service: a\n    policies:\n      - type: contract\n        spec: {}\n        base_path: /{id}\n        mode: {mode}\n",
            spec.display()
        )
    };
    let yaml = format!(
        "services:\n  - name: a\n    targets: [\"{}\"]\nroutes:\n{}{}{}      - type: injection\n",
        up.addr,
        route("api", "enforce"),
        route("report", "report"),
        route("both", "enforce")
    );
    (up, TestGateway::start(&yaml).await)
}

async fn put(gw: &TestGateway, path: &str, body: &'static str) -> warden_testkit::Reply {
    let req = Request::put(gw.url(path))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    send(&http1(), req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_fields_are_refused_and_undocumented_endpoints_refused_or_reported() {
    let (up, gw) = setup().await;
    for body in [r#"{"name":"eve","role":"admin"}"#, r#"{"name":"eve","is_admin":true}"#] {
        let reply = put(&gw, "/api/accounts/7", body).await;
        assert_eq!(reply.status, 400, "{}", reply.text());
        assert_eq!(reply.json()["type"], "urn:warden:problem:bad-request");
        let detail = reply.json()["detail"].as_str().unwrap().to_owned();
        assert!(
            detail.starts_with("/body/role") || detail.starts_with("/body/is_admin"),
            "{detail}"
        );
    }
    let undocumented = send(
        &http1(),
        Request::get(gw.url("/api/admin/users")).body(Full::default()).unwrap(),
    )
    .await;
    assert_eq!(undocumented.status, 404);
    assert_eq!(up.hits(), 0, "nothing outside the contract reached the upstream");

    assert_eq!(put(&gw, "/api/accounts/7", r#"{"name":"eve"}"#).await.status, 200);
    let reported = send(
        &http1(),
        Request::get(gw.url("/report/admin/users"))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(reported.status, 200, "report mode forwards");
    assert_eq!(up.hits(), 2);
    assert!(gw.security_events("contract").await >= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_and_injection_on_one_route_each_give_their_answer() {
    let (up, gw) = setup().await;
    // Valid for the contract, an injection for the injection policy.
    let attack = put(&gw, "/both/accounts/7", r#"{"name":"x' OR '1'='1"}"#).await;
    assert_eq!(attack.status, 403, "{}", attack.text());
    let detail = attack.json()["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("sqli") && detail.contains("/body/name"), "{detail}");
    // The contract speaks first: a read-only field is its 400.
    let mass = put(&gw, "/both/accounts/7", r#"{"name":"x' OR '1'='1","role":"admin"}"#).await;
    assert_eq!(mass.status, 400, "{}", mass.text());
    assert!(mass.json()["detail"].as_str().unwrap().starts_with("/body/role"));
    let broken = put(&gw, "/both/accounts/7", r#"{"name":"eve""#).await;
    assert_eq!(broken.status, 400, "{}", broken.text());
    assert_eq!(up.hits(), 0, "nothing refused reached the upstream");
    // The benign look-alike passes both.
    let fine = put(
        &gw,
        "/both/accounts/7",
        r#"{"name":"Siobhán O'Brien -- select a plan"}"#,
    )
    .await;
    assert_eq!(fine.status, 200, "{}", fine.text());
    assert_eq!(up.hits(), 1);
    assert_eq!(gw.security_events("injection").await, 1);
}
