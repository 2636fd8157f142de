#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};

use super::*;
use crate::Version;

const ORDERS: &str = r##"
openapi: 3.1.0
info: { title: Orders, version: "1" }
paths:
  /orders/{id}:
    parameters: [{ name: id, in: path, required: true, schema: { type: integer, minimum: 1 } }]
    get:
      parameters:
        - { name: X-Tenant, in: header, required: true, schema: { type: string, enum: [a, b] } }
    put:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                id: { type: integer, readOnly: true }
                quantity: { type: integer, maximum: 10 }
          text/csv: { schema: { type: string } }
"##;

fn validator() -> RequestValidator {
    RequestValidator::new(Spec::parse(ORDERS.as_bytes(), None).unwrap(), "/api".into(), false).unwrap()
}

fn params<'a>(path: &'a str, header: &'a dyn Fn(&str) -> Option<String>) -> Params<'a> {
    Params {
        path,
        query: &[],
        header,
        cookies: &[],
    }
}

#[test]
fn operations_are_found_under_the_base_path_only() {
    let v = validator();
    let get = v.operation("GET", "/api/orders/7").unwrap();
    assert_eq!(v.spec().operations[get].method, "GET");
    assert_eq!(v.operation("GET", "/orders/7"), Err(Violation::UndocumentedPath));
    assert_eq!(v.operation("GET", "/apiorders/7"), Err(Violation::UndocumentedPath));
    assert_eq!(
        v.operation("DELETE", "/api/orders/7"),
        Err(Violation::UndocumentedMethod {
            allowed: vec!["GET".into(), "PUT".into()]
        })
    );
}

#[test]
fn header_parameters_are_looked_up_by_lower_case_name_and_validated() {
    let v = validator();
    let op = v.operation("GET", "/api/orders/7").unwrap();
    let good = |n: &str| (n == "x-tenant").then(|| "a".to_owned());
    assert_eq!(v.check_params(op, &params("/api/orders/7", &good), true), Ok(()));
    let bad = |n: &str| (n == "x-tenant").then(|| "secret-tenant".to_owned());
    let Err(Violation::Invalid(d)) = v.check_params(op, &params("/api/orders/7", &bad), true) else {
        panic!("an enum violation")
    };
    assert!(d.starts_with("/header/X-Tenant") && !d.contains("secret-tenant"), "{d}");
    let none = |_: &str| None;
    assert!(v.check_params(op, &params("/api/orders/7", &none), true).is_err());
    let Err(Violation::Invalid(d)) = v.check_params(op, &params("/api/orders/0", &good), true) else {
        panic!("a minimum violation")
    };
    assert!(d.starts_with("/path/id"), "{d}");
}

#[test]
fn bodies_are_parsed_only_when_json_and_checked_for_read_only_then_schema() {
    let v = validator();
    let op = v.operation("PUT", "/api/orders/7").unwrap();
    let parse = |b: &[u8]| serde_json::from_slice::<Value>(b).ok().map(|v| Doc::from_value(&v));
    assert_eq!(
        v.check_body(op, "application/json", br#"{"quantity":3}"#, parse),
        Ok(())
    );
    assert_eq!(
        v.check_body(op, "application/json", br#"{"id":1,"quantity":3}"#, parse),
        Err(Violation::Invalid("/body/id: read-only in the API contract".into()))
    );
    let Err(Violation::Invalid(d)) = v.check_body(op, "application/json", br#"{"quantity":11}"#, parse) else {
        panic!("a maximum violation")
    };
    assert!(d.starts_with("/body/quantity") && !d.contains("11"), "{d}");
    let never = |_: &[u8]| -> Option<Doc<'static>> { panic!("a CSV body is not parsed as JSON") };
    assert_eq!(v.check_body(op, "text/csv", b"1,2", never), Ok(()));
    assert_eq!(v.check_body(op, "text/plain", b"1", parse), Err(Violation::MediaType));
    assert_eq!(
        v.check_body(op, "application/json", b"{", parse),
        Err(Violation::Invalid("/body: not valid JSON".into()))
    );
}

#[test]
fn openapi_30_exclusive_bounds_are_read_as_draft_4_wrote_them() {
    let doc =
        json!({"type": "integer", "minimum": 0, "exclusiveMinimum": true, "maximum": 9, "exclusiveMaximum": false});
    let out = prepare(&doc, Version::V30, false);
    assert_eq!(out, json!({"type": "integer", "exclusiveMinimum": 0, "maximum": 9}));
}

#[test]
fn filtering_follows_refs_all_of_and_array_items_and_keeps_free_form_objects() {
    let doc = json!({"components": {"schemas": {
        "Base": {"type": "object", "properties": {"id": {"type": "string"}}},
        "Item": {"allOf": [{"$ref": "#/components/schemas/Base"}, {"properties": {"qty": {"type": "integer"}}}]}
    }}});
    let schema = json!({"type": "object", "properties": {
        "items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}},
        "meta": {"type": "object"},
        "extra": {"type": "object", "properties": {"a": {}}, "additionalProperties": {"type": "object", "properties": {"b": {}}}}
    }});
    let mut v = json!({"items": [{"id": "1", "qty": 2, "cost": 9}], "meta": {"any": 1}, "extra": {"a": 1, "z": {"b": 1, "c": 2}}, "secret": 1});
    let found = crate::filter::filter(&doc, &schema, &mut v, &[], true);
    assert_eq!(
        v,
        json!({"items": [{"id": "1", "qty": 2}], "meta": {"any": 1}, "extra": {"a": 1, "z": {"b": 1}}})
    );
    let mut undeclared = found.undeclared;
    undeclared.sort();
    assert_eq!(undeclared, ["/extra/z/c", "/items/0/cost", "/secret"]);
    let mut kept = json!({"secret": 1});
    let found = crate::filter::filter(&doc, &schema, &mut kept, &[], false);
    assert_eq!(
        (kept, found.undeclared),
        (json!({"secret": 1}), vec!["/secret".to_owned()])
    );
}

#[test]
fn scoped_properties_need_one_of_their_scopes() {
    let doc = json!({});
    let schema = json!({"properties": {"name": {}, "salary": {"x-warden-scopes": ["hr.read", "admin"]}}});
    let mut v = json!({"name": "Ada", "salary": 1});
    let found = crate::filter::filter(&doc, &schema, &mut v, &["users.read"], true);
    assert_eq!((v, found.scoped), (json!({"name": "Ada"}), vec!["/salary".to_owned()]));
    let mut v = json!({"name": "Ada", "salary": 1});
    crate::filter::filter(&doc, &schema, &mut v, &["admin"], true);
    assert_eq!(v["salary"], 1);
}

#[test]
fn a_response_is_found_by_code_then_range_then_default() {
    let spec = Spec::parse(
        br#"{"openapi":"3.1.0","info":{"title":"x","version":"1"},"paths":{"/a":{"get":{"responses":{"200":{"description":"ok"},"4XX":{"description":"c"},"default":{"description":"d"}}}}}}"#,
        None,
    )
    .unwrap();
    let op = &spec.operations[0];
    assert_eq!(op.response(200).unwrap().status, "200");
    assert_eq!(op.response(404).unwrap().status, "4XX");
    assert_eq!(op.response(503).unwrap().status, "DEFAULT");
}

#[test]
fn scopes_beside_a_ref_and_in_any_all_of_branch_count() {
    let doc = json!({"components": {"schemas": {"Ssn": {"type": "string"}, "User": {"properties": {"email": {}}}}}});
    let schema = json!({"allOf": [
        {"$ref": "#/components/schemas/User"},
        {"properties": {"email": {"x-warden-scopes": ["admin"]}, "ssn": {"$ref": "#/components/schemas/Ssn", "x-warden-scopes": ["pii"]}}}
    ]});
    let mut v = json!({"email": "a@example.com", "ssn": "123"});
    let found = crate::filter::filter(&doc, &schema, &mut v, &["users.read"], true);
    assert_eq!(v, json!({}));
    assert_eq!(found.scoped.len(), 2);
}

#[test]
fn cookie_parameters_are_checked_for_presence_and_value() {
    let spec = Spec::parse(
        br#"{"openapi":"3.1.0","info":{"title":"x","version":"1"},"paths":{"/a":{"get":{"parameters":[
            {"name":"session","in":"cookie","required":true,"schema":{"type":"string","pattern":"^[a-f0-9]{8}$"}},
            {"name":"tier","in":"cookie","schema":{"type":"integer","maximum":3}}],
            "responses":{"200":{"description":"ok"}}}}}}"#,
        None,
    )
    .unwrap();
    let v = RequestValidator::new(spec, String::new(), false).unwrap();
    let op = v.operation("GET", "/a").unwrap();
    let none = |_: &str| None;
    let check = |cookies: &[(&str, &str)]| {
        let cookies: Vec<(String, String)> = cookies.iter().map(|(k, x)| ((*k).into(), (*x).into())).collect();
        let p = Params {
            path: "/a",
            query: &[],
            header: &none,
            cookies: &cookies,
        };
        v.check_params(op, &p, false)
    };
    assert_eq!(check(&[("session", "0a1b2c3d"), ("tier", "2")]), Ok(()));
    assert_eq!(check(&[("theme", "dark"), ("session", "0a1b2c3d")]), Ok(()));
    assert_eq!(
        check(&[("theme", "dark")]),
        Err(Violation::Invalid(
            "/cookie/session: required by the API contract".into()
        ))
    );
    for (bad, at) in [
        (&[("session", "0a1b2c3d' OR 1=1")][..], "/cookie/session"),
        (&[("session", "0a1b2c3d"), ("tier", "9")], "/cookie/tier"),
        (&[("session", "0a1b2c3d"), ("tier", "two")], "/cookie/tier"),
    ] {
        let Err(Violation::Invalid(d)) = check(bad) else {
            panic!("{bad:?} is refused")
        };
        assert!(d.starts_with(at) && !d.contains("OR 1=1"), "{d}");
    }
}
