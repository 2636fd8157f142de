//! End-to-end: `warden import openapi` through the real binary. The config it
//! writes validates, and served by a gateway it routes exactly the spec's
//! operations and enforces their contract; a pinned spec that changed and a spec with a remote `$ref` are
//! refused with the reason.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use http::Request;
use http_body_util::Full;
use warden_testkit::{MockUpstream, TestGateway, http1, send, temp_dir};

const BIN: &str = env!("CARGO_BIN_EXE_warden");

fn spec(server: &str) -> String {
    format!(
        r##"openapi: 3.1.0
info: {{ title: Orders, version: "1" }}
servers: [{{ url: "http://{server}/v1" }}]
paths:
  /orders:
    get: {{ operationId: listOrders }}
    post:
      operationId: createOrder
      requestBody: {{ $ref: "#/components/requestBodies/Order" }}
  /orders/{{orderId}}:
    parameters: [{{ name: orderId, in: path, required: true, schema: {{ type: string }} }}]
    get: {{ operationId: showOrder }}
components:
  requestBodies:
    Order:
      content: {{ application/json: {{ schema: {{ type: object }} }} }}
"##
    )
}

fn import(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("import")
        .arg("openapi")
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_config_validates_and_routes_only_the_specs_operations() {
    let up = MockUpstream::start("orders").await;
    let dir = temp_dir("import-openapi");
    let spec_path = dir.join("orders.yaml");
    std::fs::write(&spec_path, spec(&up.addr.to_string())).unwrap();
    let out = import(&[spec_path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let config = String::from_utf8(out.stdout).unwrap();
    let config_path = dir.join("orders-gateway.yaml");
    std::fs::write(&config_path, &config).unwrap();
    let validated = Command::new(BIN).arg("validate").arg(&config_path).output().unwrap();
    assert!(
        validated.status.success(),
        "{}\n{config}",
        String::from_utf8_lossy(&validated.stdout)
    );

    // Served (the harness brings its own listener), only the operations route.
    let routes = &config[config.find("services:").unwrap()..];
    let gw = TestGateway::start(routes).await;
    let status = |method: &str, path: &str| {
        let req = Request::builder()
            .method(method)
            .uri(gw.url(path))
            .body(Full::default())
            .unwrap();
        async { send(&http1(), req).await.status.as_u16() }
    };
    assert_eq!(status("GET", "/orders").await, 200);
    assert_eq!(status("GET", "/orders/42").await, 200);
    assert_eq!(status("DELETE", "/orders/42").await, 405);
    assert_eq!(status("GET", "/admin").await, 404);
    // The routes carry the contract: an undeclared query parameter is refused.
    assert_eq!(status("GET", "/orders?debug=1").await, 400);
    assert_eq!(up.hits(), 2);
}

#[test]
fn a_changed_pinned_spec_and_remote_refs_are_refused() {
    let dir = temp_dir("import-openapi-bad");
    let spec_path = dir.join("orders.yaml");
    std::fs::write(&spec_path, spec("127.0.0.1:9")).unwrap();
    let pin = "0".repeat(64);
    let out = import(&[spec_path.to_str().unwrap(), "--sha256", &pin]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("the file changed"));

    std::fs::write(
        &spec_path,
        spec("127.0.0.1:9").replace("#/components/requestBodies/Order", "https://evil.example/o.json"),
    )
    .unwrap();
    let out = import(&[spec_path.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("never fetched") && err.contains("/paths/~1orders/post/requestBody"),
        "{err}"
    );
}
