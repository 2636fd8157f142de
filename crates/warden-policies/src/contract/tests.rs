#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use warden_core::{Decision, Policy, ProblemKind, Rejection, RequestCtx};

use super::{Contract, ContractConfig};
use crate::block_on;

const USERS: &str = r##"
openapi: 3.0.3
info: { title: Users, version: "1" }
paths:
  /users:
    get:
      parameters:
        - { name: limit, in: query, schema: { type: integer } }
        - { name: x-tenant, in: header, required: true, schema: { type: string } }
    post:
      requestBody:
        required: true
        content:
          application/json: { schema: { $ref: "#/components/schemas/User" } }
  /users/me:
    get: {}
  /users/{id}:
    parameters: [{ name: id, in: path, required: true, schema: { type: string } }]
    get: {}
    patch:
      requestBody:
        content:
          application/json:
            schema:
              allOf:
                - $ref: "#/components/schemas/User"
                - { type: object, properties: { note: { type: string } } }
components:
  schemas:
    User:
      type: object
      properties:
        id: { type: string, readOnly: true }
        name: { type: string }
        role: { type: string, readOnly: true }
        is_admin: { type: boolean, readOnly: true }
        friends: { type: array, items: { $ref: "#/components/schemas/User" } }
"##;

fn contract(extra: &str) -> Contract {
    let dir = std::env::temp_dir().join(format!("warden-contract-{}-{}", std::process::id(), extra.len()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("users.yaml");
    std::fs::write(&spec, USERS).unwrap();
    let cfg: ContractConfig = serde_saphyr::from_str(&format!("spec: {}\n{extra}", spec.display())).unwrap();
    cfg.build().unwrap()
}

fn run(p: &Contract, method: &str, uri: &str, headers: &[(&str, &str)], body: &str) -> Option<Rejection> {
    let mut b = http::Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let (mut parts, ()) = b.body(()).unwrap().into_parts();
    let mut ctx = RequestCtx::new(Arc::from("r"), "127.0.0.1".parse().unwrap(), 1 << 20);
    ctx.path = parts.uri.path().to_owned();
    if let Decision::Reject(r) = block_on(p.on_request(&mut parts, &mut ctx)).unwrap() {
        return Some(r);
    }
    match block_on(p.on_request_body(&parts, &Bytes::from(body.to_owned()), &mut ctx)).unwrap() {
        Decision::Reject(r) => Some(r),
        Decision::Continue => None,
    }
}

const JSON: (&str, &str) = ("content-type", "application/json");
const TENANT: (&str, &str) = ("x-tenant", "t1");

#[test]
fn undocumented_paths_and_methods_get_404_and_405() {
    let p = contract("");
    assert_eq!(
        run(&p, "GET", "/admin", &[], "").unwrap().kind,
        ProblemKind::RouteNotFound
    );
    let r = run(&p, "DELETE", "/users/7", &[], "").unwrap();
    assert_eq!(r.kind, ProblemKind::MethodNotAllowed);
    assert!(r.headers.iter().any(|(n, v)| n == "allow" && v == "GET, PATCH"));
    assert!(run(&p, "GET", "/users/7", &[], "").is_none());
    assert!(
        run(&p, "GET", "/users/me", &[], "").is_none(),
        "a literal path wins over a template"
    );
}

#[test]
fn mass_assignment_of_read_only_properties_is_refused() {
    let p = contract("");
    for (body, at) in [
        (r#"{"name":"eve","role":"admin"}"#, "/body/role"),
        (r#"{"name":"eve","is_admin":true}"#, "/body/is_admin"),
        (
            r#"{"name":"eve","friends":[{"name":"a"},{"id":"u1"}]}"#,
            "/body/friends/1/id",
        ),
    ] {
        let r = run(&p, "POST", "/users", &[JSON], body).unwrap();
        assert_eq!(r.kind, ProblemKind::BadRequest);
        let detail = r.detail.unwrap();
        assert!(detail.starts_with(at), "{detail}");
        assert!(!detail.contains("admin\""), "{detail}");
    }
    // Through allOf, and the benign look-alike.
    assert!(run(&p, "PATCH", "/users/7", &[JSON], r#"{"role":"admin"}"#).is_some());
    assert!(
        run(
            &p,
            "PATCH",
            "/users/7",
            &[JSON],
            r#"{"name":"eve","note":"role: admin please"}"#
        )
        .is_none()
    );
    assert!(run(&p, "POST", "/users", &[JSON], r#"{"name":"eve"}"#).is_none());
}

#[test]
fn parameters_media_types_and_bodies_follow_the_contract() {
    let p = contract("");
    assert!(run(&p, "GET", "/users?limit=5", &[TENANT], "").is_none());
    let missing = run(&p, "GET", "/users", &[], "").unwrap();
    assert!(missing.detail.unwrap().starts_with("/header/x-tenant"));
    let unknown = run(&p, "GET", "/users?debug=1", &[TENANT], "").unwrap();
    assert!(unknown.detail.unwrap().starts_with("/query/debug"));
    assert_eq!(
        run(&p, "POST", "/users", &[("content-type", "text/xml")], "<u/>")
            .unwrap()
            .kind,
        ProblemKind::UnsupportedMediaType
    );
    assert!(
        run(&p, "POST", "/users", &[JSON], "")
            .unwrap()
            .detail
            .unwrap()
            .starts_with("/body: required")
    );
    assert!(
        run(&p, "GET", "/users/7", &[JSON], "{}").is_some(),
        "a body where none is documented"
    );
    let lenient = contract("refuse_unknown_query: false");
    assert!(run(&lenient, "GET", "/users?debug=1", &[TENANT], "").is_none());
}

#[test]
fn report_mode_lets_everything_through() {
    let p = contract("mode: report");
    assert!(run(&p, "GET", "/admin", &[], "").is_none());
    assert!(run(&p, "POST", "/users", &[JSON], r#"{"role":"admin"}"#).is_none());
}

#[test]
fn a_pinned_spec_that_changed_is_refused_at_load() {
    let dir = std::env::temp_dir().join(format!("warden-contract-pin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("users.yaml");
    std::fs::write(&spec, USERS).unwrap();
    let cfg: ContractConfig =
        serde_saphyr::from_str(&format!("spec: {}\nsha256: {}", spec.display(), "0".repeat(64))).unwrap();
    let errs = cfg.build().unwrap_err();
    assert!(errs[0].message.contains("the file changed"), "{errs:?}");
}

const SHOP: &str = r##"
openapi: 3.0.3
info: { title: Shop, version: "1" }
paths:
  /orders/{orderId}:
    parameters:
      - { name: orderId, in: path, required: true, schema: { type: string, format: uuid } }
    get:
      parameters:
        - { name: expand, in: query, schema: { type: boolean } }
        - { name: limit, in: query, schema: { type: integer, minimum: 1, maximum: 100 } }
    put:
      requestBody:
        content:
          application/json: { schema: { $ref: "#/components/schemas/Order" } }
components:
  schemas:
    Order:
      type: object
      required: [email, quantity]
      properties:
        email: { type: string, format: email }
        quantity: { type: integer, minimum: 1 }
        status: { type: string, enum: [new, paid] }
        coupon: { type: string, nullable: true }
        callback: { type: string, format: uri }
        address:
          type: object
          properties:
            zip: { type: string, maxLength: 10 }
"##;

fn shop(extra: &str) -> Contract {
    let dir = std::env::temp_dir().join(format!("warden-contract-shop-{}-{}", std::process::id(), extra.len()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("shop.yaml");
    std::fs::write(&spec, SHOP).unwrap();
    let cfg: ContractConfig = serde_saphyr::from_str(&format!("spec: {}\n{extra}", spec.display())).unwrap();
    cfg.build().unwrap()
}

const ORDER: &str = "/orders/7f3c9a2e-5b41-4d8e-9c2a-1e6f0b7d4a93";

fn detail(r: Option<Rejection>) -> String {
    r.and_then(|r| r.detail).unwrap_or_default()
}

#[test]
fn parameter_values_are_checked_against_their_schemas() {
    let p = shop("");
    assert!(run(&p, "GET", &format!("{ORDER}?expand=true&limit=10"), &[], "").is_none());
    assert!(detail(run(&p, "GET", "/orders/42", &[], "")).starts_with("/path/orderId"));
    assert!(detail(run(&p, "GET", &format!("{ORDER}?limit=abc"), &[], "")).starts_with("/query/limit"));
    assert!(detail(run(&p, "GET", &format!("{ORDER}?limit=500"), &[], "")).starts_with("/query/limit"));
    assert!(detail(run(&p, "GET", &format!("{ORDER}?expand=maybe"), &[], "")).starts_with("/query/expand"));
}

#[test]
fn json_bodies_are_validated_with_formats_enums_and_nullable() {
    let p = shop("");
    let put = |body: &str| run(&p, "PUT", ORDER, &[JSON], body);
    let ok = r#"{"email":"ada@example.com","quantity":2,"status":"paid","coupon":null,"callback":"https://example.com/cb","address":{"zip":"D02"}}"#;
    assert!(put(ok).is_none(), "{}", detail(put(ok)));
    for (body, at) in [
        (r#"{"email":"not-an-email","quantity":2}"#, "/body/email"),
        (r#"{"email":"ada@example.com","quantity":0}"#, "/body/quantity"),
        (r#"{"email":"ada@example.com","quantity":"2"}"#, "/body/quantity"),
        (
            r#"{"email":"ada@example.com","quantity":2,"status":"shipped"}"#,
            "/body/status",
        ),
        (
            r#"{"email":"ada@example.com","quantity":2,"address":{"zip":"12345678901"}}"#,
            "/body/address/zip",
        ),
        (r#"{"quantity":2}"#, "/body"),
    ] {
        let d = detail(put(body));
        assert!(d.starts_with(at), "{body}: {d}");
        assert!(
            !d.contains("not-an-email") && !d.contains("shipped") && !d.contains("12345678901"),
            "{d}"
        );
    }
}

#[test]
fn strict_mode_refuses_undeclared_properties() {
    let body = r#"{"email":"ada@example.com","quantity":2,"discount":100}"#;
    assert!(run(&shop(""), "PUT", ORDER, &[JSON], body).is_none());
    let d = detail(run(&shop("strict: true"), "PUT", ORDER, &[JSON], body));
    assert!(d.starts_with("/body") && d.contains("additionalProperties"), "{d}");
}

#[test]
fn inline_schemas_get_the_30_rewrites_too() {
    let dir = std::env::temp_dir().join(format!("warden-contract-inline-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = dir.join("inline.yaml");
    std::fs::write(
        &spec,
        "openapi: 3.0.3\ninfo: { title: x, version: '1' }\npaths:\n  /n:\n    put:\n      requestBody:\n        content:\n          application/json:\n            schema: { type: object, properties: { note: { type: string, nullable: true } } }\n",
    )
    .unwrap();
    let cfg: ContractConfig = serde_saphyr::from_str(&format!("spec: {}", spec.display())).unwrap();
    let inline = cfg.build().unwrap();
    assert!(run(&inline, "PUT", "/n", &[JSON], r#"{"note":null}"#).is_none());
    assert!(run(&inline, "PUT", "/n", &[JSON], r#"{"note":5}"#).is_some());
}

/// The route's `contract` then `injection` on one body, as the pipeline runs
/// them: each one's answer (`code: detail`), and whether the contract left
/// its scan for the injection policy.
fn pair(linked: bool, contract_extra: &str, content_type: &str, body: &str) -> (String, String, bool) {
    use crate::CompiledPolicy;
    let injection: crate::injection::InjectionConfig = serde_saphyr::from_str("{}").unwrap();
    let mut policies = [
        CompiledPolicy::Contract(contract(contract_extra)),
        CompiledPolicy::Injection(injection.build().unwrap()),
    ];
    if linked {
        crate::link(policies.iter_mut());
    }
    let req = http::Request::post("/users").header("content-type", content_type);
    let (parts, ()) = req.body(()).unwrap().into_parts();
    let mut ctx = RequestCtx::new(Arc::from("r"), "127.0.0.1".parse().unwrap(), 1 << 20);
    ctx.path = "/users".into();
    let body = Bytes::from(body.to_owned());
    let answer = |p: &CompiledPolicy, ctx: &mut RequestCtx| match block_on(p.on_request_body(&parts, &body, ctx)) {
        Ok(Decision::Reject(r)) => format!("{}: {}", r.code, r.detail.unwrap_or_default()),
        Ok(Decision::Continue) => "continue".to_owned(),
        Err(e) => format!("error {e:?}"),
    };
    let contract = answer(&policies[0], &mut ctx);
    let left = ctx.body_scan.is_some();
    let injection = answer(&policies[1], &mut ctx);
    assert!(ctx.body_scan.is_none(), "the scan left is taken");
    (contract, injection, left)
}

#[test]
fn a_contract_linked_to_injection_scans_the_body_once_with_the_same_answers() {
    let json = "application/json";
    let cases = [
        ("", json, r#"{"name":"x' OR '1'='1"}"#, true),
        (
            "",
            json,
            r#"{"name":"Siobhán O'Brien","friends":[{"name":"<b>hi</b> there"}]}"#,
            true,
        ),
        ("", json, r#"{"friends":[{"name":"ok"},{"$where":"sleep(100)"}]}"#, true),
        ("mode: report\n", json, r#"{"name":"<script>alert(1)</script>","#, true),
        (
            "mode: report\n",
            json,
            r#"{"name":"<script>alert(1)</script>","x":1,"X":2}"#,
            true,
        ),
        (
            "mode: report\n",
            json,
            r#"{"role":"admin","name":"../../etc/passwd"}"#,
            true,
        ),
        // Not walked as JSON by the injection policy: nothing is left.
        ("mode: report\n", "text/plain", r#"{"name":"x' OR '1'='1"}"#, false),
    ];
    for (extra, content_type, body, leaves) in cases {
        let alone = pair(false, extra, content_type, body);
        let linked = pair(true, extra, content_type, body);
        assert!(!alone.2, "{body}");
        assert_eq!(linked.2, leaves, "{body}");
        assert_eq!((&linked.0, &linked.1), (&alone.0, &alone.1), "{body}");
    }
    // The answers themselves: the attack is refused by the injection
    // policy, the look-alike passes, the broken body is a 400.
    let answers = |body: &str, extra: &str| {
        let (c, i, _) = pair(true, extra, json, body);
        (c, i)
    };
    let (c, i) = answers(r#"{"name":"x' OR '1'='1"}"#, "");
    assert_eq!(c, "continue");
    assert!(
        i.starts_with("injection_detected") && i.contains("sqli") && i.contains("/body/name"),
        "{i}"
    );
    assert_eq!(
        answers(r#"{"name":"Siobhán O'Brien"}"#, ""),
        ("continue".into(), "continue".into())
    );
    let (_, i) = answers(r#"{"name":"#, "mode: report\n");
    assert!(i.starts_with("invalid_json"), "{i}");
}
