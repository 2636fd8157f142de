//! Shared helpers: the CLI, a gateway with the authorization server, forms.

use std::path::Path;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use serde_json::Value;
use warden_testkit::{MockUpstream, Reply, TestGateway, http1, send};

pub const BIN: &str = env!("CARGO_BIN_EXE_warden");
pub const ISSUER: &str = "http://127.0.0.1";

pub fn cli(config: &Path, args: &[&str]) -> String {
    warden_testkit::run_cli(BIN, config, args)
}

/// `client_id=…` and `client_secret=…` lines of `clients create`.
pub fn registered(out: &str) -> (String, Option<String>) {
    let get = |k: &str| out.lines().find_map(|l| l.strip_prefix(k)).map(str::to_owned);
    (get("client_id=").unwrap(), get("client_secret="))
}

pub fn store_yaml(dir: &Path) -> String {
    format!(
        "store:\n  data_dir: \"{}\"\noauth_server:\n  issuer: \"{ISSUER}\"\n  access_token_ttl_secs: 300\n",
        dir.display()
    )
}

pub fn api_route(up: &MockUpstream) -> String {
    format!(
        "services:\n  - name: api\n    targets: [\"{}\"]\nroutes:\n  - id: api\n    path: {{ prefix: /api }}\n    service: api\n    policies:\n      - type: jwt\n        issuers:\n          - issuer: \"{ISSUER}\"\n            builtin: true\n            audiences: [\"{ISSUER}\"]\n            algorithms: [ES256]\n            typ: at+jwt\n        forward_claims: {{ scope: x-scope }}\n",
        up.addr
    )
}

pub async fn post_form(gw: &TestGateway, body: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req =
        http::Request::post(gw.url("/oauth2/token")).header("content-type", "application/x-www-form-urlencoded");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(&http1(), req.body(Full::new(Bytes::from(body.to_owned()))).unwrap()).await
}

pub async fn get_with_token(gw: &TestGateway, token: &str) -> Reply {
    let req = http::Request::get(gw.url("/api/orders")).header("authorization", format!("Bearer {token}"));
    send(&http1(), req.body(Full::<Bytes>::default()).unwrap()).await
}

pub fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

pub fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// One bad token request and the RFC 6749 error it must get.
pub struct Case {
    pub body: String,
    pub headers: Vec<(&'static str, String)>,
    pub status: u16,
    pub error: &'static str,
}

pub fn case(body: &str, headers: Vec<(&'static str, String)>, status: u16, error: &'static str) -> Case {
    Case {
        body: body.to_owned(),
        headers,
        status,
        error,
    }
}

pub async fn plain_gateway() -> (TestGateway, MockUpstream) {
    let up = MockUpstream::start("api").await;
    let dir = warden_testkit::temp_dir("plain");
    let gw = TestGateway::start(&format!("{}{}", store_yaml(&dir), api_route(&up))).await;
    (gw, up)
}
