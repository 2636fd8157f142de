//! The one-pass filter against the tree filter (the same rules, two ways),
//! and its JSON checking.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};

use crate::filter::{Removed, filter};
use crate::{FilterPlan, NotJson};

fn doc() -> Value {
    json!({"components": {"schemas": {
        "Base": {"type": "object", "properties": {"id": {"type": "string"}}},
        "Item": {"allOf": [{"$ref": "#/components/schemas/Base"}, {"properties": {"qty": {"type": "integer"}}}]},
        "Ssn": {"type": "string", "x-warden-scopes": ["pii"]},
        "Node": {"type": "object", "properties": {
            "name": {"type": "string"},
            "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}
        }},
        "Pet": {"oneOf": [
            {"properties": {"kind": {}, "bark": {}}},
            {"properties": {"kind": {}, "meow": {}, "secret": {"x-warden-scopes": ["admin"]}}}
        ]}
    }}})
}

fn schema() -> Value {
    json!({"type": "object", "properties": {
        "items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}},
        "meta": {"type": "object"},
        "extra": {"type": "object", "properties": {"a": {}}, "additionalProperties": {"type": "object", "properties": {"b": {}}}},
        "open": {"properties": {"a": {}}, "additionalProperties": true},
        "tree": {"$ref": "#/components/schemas/Node"},
        "pets": {"type": "array", "items": {"$ref": "#/components/schemas/Pet"}},
        "ssn": {"$ref": "#/components/schemas/Ssn"},
        "salary": {"x-warden-scopes": ["hr", "admin"]},
        "grid": {"type": "array", "items": {"type": "array", "items": {"properties": {"x": {}}}}}
    }})
}

/// Both filters on `v`; asserts they agree and returns the result.
fn both(doc: &Value, schema: &Value, v: &Value, scopes: &[&str], drop: bool) -> (Value, Removed) {
    let mut tree = v.clone();
    let mut want = filter(doc, schema, &mut tree, scopes, drop);
    let mut plan = FilterPlan::new();
    let root = plan.add(doc, schema);
    let bytes = serde_json::to_vec(v).unwrap();
    let got = plan.filter(root, &bytes, scopes, drop).unwrap();
    let body: Value = serde_json::from_slice(got.body.as_deref().unwrap_or(&bytes)).unwrap();
    assert!(body == tree, "bodies differ for {v} with {scopes:?}: {body} vs {tree}");
    let mut removed = got.removed;
    for list in [
        &mut want.undeclared,
        &mut want.scoped,
        &mut removed.undeclared,
        &mut removed.scoped,
    ] {
        list.sort();
    }
    assert_eq!(removed, want, "findings differ for {v}");
    // Nothing removed: the original bytes stay.
    if tree == *v {
        assert!(got.body.is_none(), "an unchanged body is not rewritten");
    }
    (body, removed)
}

#[test]
fn the_one_pass_filter_agrees_with_the_tree_filter_on_crafted_bodies() {
    let (d, s) = (doc(), schema());
    let v = json!({
        "items": [{"id": "1", "qty": 2, "cost": 9}, {"id": "2"}],
        "meta": {"any": {"deep": [1, 2]}},
        "extra": {"a": 1, "z": {"b": 1, "c": 2}},
        "open": {"a": 1, "whatever": [true]},
        "tree": {"name": "r", "children": [{"name": "c", "x": 1, "children": [{"name": "g", "y": null}]}]},
        "pets": [{"kind": "dog", "bark": true, "secret": 1}, {"kind": "cat", "meow": 2, "tail": 3}],
        "ssn": "078-05-1120",
        "salary": 10,
        "grid": [[{"x": 1, "y": 2}], []],
        "undeclared": {"k": 1}
    });
    for scopes in [&[][..], &["admin"], &["pii", "hr"]] {
        for drop in [true, false] {
            both(&d, &s, &v, scopes, drop);
        }
    }
    let (body, removed) = both(&d, &s, &v, &[], true);
    assert_eq!(
        body["tree"]["children"][0],
        json!({"name": "c", "children": [{"name": "g"}]})
    );
    assert!(removed.scoped.contains(&"/ssn".to_owned()) && removed.undeclared.contains(&"/undeclared".to_owned()));
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) % n
    }
}

fn random_value(r: &mut Rng, depth: usize) -> Value {
    const KEYS: [&str; 20] = [
        "items", "meta", "extra", "open", "tree", "pets", "ssn", "salary", "grid", "id", "qty", "name", "children",
        "kind", "bark", "meow", "secret", "a", "b", "x",
    ];
    match r.next(if depth > 4 { 4 } else { 7 }) {
        0 => Value::Null,
        1 => json!(r.next(1000)),
        2 => json!(format!("s{}\"\\é", r.next(9))),
        3 => json!(r.next(2) == 0),
        4 | 5 => {
            let mut m = serde_json::Map::new();
            for _ in 0..r.next(6) {
                let k = KEYS[r.next(KEYS.len() as u64) as usize];
                let k = if r.next(8) == 0 { format!("{k}_x") } else { k.to_owned() };
                m.insert(k, random_value(r, depth + 1));
            }
            Value::Object(m)
        }
        _ => Value::Array((0..r.next(4)).map(|_| random_value(r, depth + 1)).collect()),
    }
}

#[test]
fn the_one_pass_filter_agrees_with_the_tree_filter_on_random_bodies() {
    let (d, s) = (doc(), schema());
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let mut removed_any = 0;
    for i in 0..3000 {
        let mut v = random_value(&mut r, 0);
        if !v.is_object() {
            v = json!({"items": [v]});
        }
        let scopes: &[&str] = [&[][..], &["admin"], &["pii", "hr"]][i % 3];
        let (_, removed) = both(&d, &s, &v, scopes, i % 2 == 0);
        removed_any += usize::from(!removed.undeclared.is_empty() || !removed.scoped.is_empty());
    }
    // The generator reaches the interesting cases.
    assert!(removed_any > 500, "{removed_any}");
}

fn users_plan() -> (FilterPlan, usize) {
    let mut plan = FilterPlan::new();
    let root = plan.add(&doc(), &schema());
    (plan, root)
}

#[test]
fn kept_values_keep_their_bytes_and_an_untouched_body_is_not_rewritten() {
    let (plan, root) = users_plan();
    let body = br#" { "items" : [ { "id" : "1", "qty" : 1.50e3 } ], "meta": {"a": "\u00e9\n"} } "#;
    let got = plan.filter(root, body, &[], true).unwrap();
    assert_eq!(got.body, None);
    assert_eq!(got.removed, Removed::default());
    let body = br#"{"items":[{"id":"1","qty":1.50e3,"cost":-0.0}],"meta":{"a":"\u00e9"}}"#;
    let got = plan.filter(root, body, &[], true).unwrap();
    assert_eq!(
        String::from_utf8(got.body.unwrap()).unwrap(),
        r#"{"items":[{"id":"1","qty":1.50e3}],"meta":{"a":"\u00e9"}}"#
    );
}

#[test]
fn an_escaped_property_name_is_read_as_its_value() {
    let (plan, root) = users_plan();
    // `sal\u0061ry` is `salary`: escaping the name does not hide it.
    let got = plan
        .filter(
            root,
            br#"{"sal\u0061ry":1,"\u0069tems":[],"undeclared\u0021":2}"#,
            &[],
            true,
        )
        .unwrap();
    assert_eq!(String::from_utf8(got.body.unwrap()).unwrap(), r#"{"\u0069tems":[]}"#);
    assert_eq!(got.removed.scoped, ["/salary"]);
    assert_eq!(got.removed.undeclared, ["/*"]);
    // A repeated name is filtered every time it appears.
    let got = plan
        .filter(root, br#"{"salary":1,"meta":{},"salary":2}"#, &[], true)
        .unwrap();
    assert_eq!(String::from_utf8(got.body.unwrap()).unwrap(), r#"{"meta":{}}"#);
}

#[test]
fn a_body_that_is_not_one_json_value_is_refused() {
    let (plan, root) = users_plan();
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let bad: [&[u8]; 16] = [
        b"",
        b"{",
        br#"{"items":[1,]}"#,
        br#"{"a":1}{"#,
        br#"{"a":1} x"#,
        br#"{"a":01}"#,
        br#"{"a":-}"#,
        br#"{"a":1.}"#,
        br#"{"a":"\x"}"#,
        br#"{"a":"\u12G4"}"#,
        b"{\"a\":\"tab\there\"}",
        b"{\"a\":\"\xff\"}",
        br#"{"a" 1}"#,
        br#"{a:1}"#,
        b"tru",
        deep.as_bytes(),
    ];
    for body in bad {
        assert!(
            matches!(plan.filter(root, body, &[], true), Err(NotJson(_))),
            "{}",
            String::from_utf8_lossy(body)
        );
        assert!(serde_json::from_slice::<Value>(body).is_err(), "serde_json agrees");
    }
    for good in [&b"[]"[..], b"null", b"-0.5E+2", br#""x""#, b" {} "] {
        assert!(plan.filter(root, good, &[], true).is_ok());
    }
}

#[test]
fn deep_values_are_filtered_at_every_depth_and_deeper_bodies_refused() {
    let (d, s) = (doc(), schema());
    // 50 tree levels: 100 levels of nesting, past the old 64-level cut-off.
    let mut v = json!({"name": "leaf", "password_hash": "x"});
    for _ in 0..50 {
        v = json!({"name": "n", "children": [v]});
    }
    let (body, removed) = both(&d, &s, &json!({ "tree": v }), &[], true);
    assert!(!body.to_string().contains("password_hash"));
    assert_eq!(removed.undeclared.len(), 1);
    let (plan, root) = users_plan();
    let deep = format!("{{\"tree\":{}{}", "{\"children\":[".repeat(70), "]}".repeat(70) + "}");
    assert!(plan.filter(root, deep.as_bytes(), &[], true).is_err(), "140 levels");
    // The limit holds for a string as for a container: 128 levels pass, 129 do not.
    let at = |inner: &str, k: usize| format!("{{\"tree\":{}{inner}{}}}", "{\"children\":[".repeat(k), "]}".repeat(k));
    assert!(
        plan.filter(root, at("{\"name\":\"x\"}", 63).as_bytes(), &[], true)
            .is_ok(),
        "128 levels"
    );
    assert!(
        plan.filter(root, at("\"x\"", 64).as_bytes(), &[], true).is_err(),
        "a string at 129 levels"
    );
}

#[test]
fn a_property_declared_twice_is_filtered_by_every_declaration_and_typed_maps_by_their_values() {
    let d = json!({"components": {"schemas": {
        "User": {"properties": {"id": {}, "salary": {"x-warden-scopes": ["hr"]}}},
        "Envelope": {"properties": {"data": {"type": "object"}, "meta": {}}},
        "Loop": {"allOf": [{"$ref": "#/components/schemas/Loop"}, {"$ref": "#/components/schemas/Loop"}], "properties": {"a": {}}}
    }}});
    let s = json!({
        "allOf": [{"$ref": "#/components/schemas/Envelope"}, {"properties": {"data": {"$ref": "#/components/schemas/User"}}}],
        "properties": {
            "by_id": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/User"}},
            "loop": {"$ref": "#/components/schemas/Loop"}
        }
    });
    let v = json!({
        "data": {"id": 1, "password_hash": "x", "salary": 5},
        "meta": {"page": 1},
        "by_id": {"42": {"id": 42, "password_hash": "y", "salary": 6}},
        "loop": {"a": 1, "b": 2}
    });
    let (body, removed) = both(&d, &s, &v, &[], true);
    assert_eq!(
        body,
        json!({"data": {"id": 1}, "meta": {"page": 1}, "by_id": {"42": {"id": 42}}, "loop": {"a": 1}})
    );
    assert_eq!(removed.scoped, ["/by_id/42/salary", "/data/salary"]);
    let (body, _) = both(&d, &s, &v, &["hr"], true);
    assert_eq!(body["data"], json!({"id": 1, "salary": 5}));
}

#[test]
fn a_name_that_does_not_decode_is_undeclared_and_findings_are_capped() {
    let (plan, root) = users_plan();
    // A lone surrogate: accepted by JavaScript and Python parsers.
    let got = plan
        .filter(root, br#"{"\ud800":1,"meta":{},"salary":2}"#, &[], true)
        .unwrap();
    assert_eq!(String::from_utf8(got.body.unwrap()).unwrap(), r#"{"meta":{}}"#);
    assert_eq!(got.removed.undeclared, ["/*"]);
    let many: Vec<String> = (0..500).map(|i| format!("\"k{i}\":{i}")).collect();
    let body = format!("{{{},\"meta\":{{}}}}", many.join(","));
    let got = plan.filter(root, body.as_bytes(), &[], true).unwrap();
    assert_eq!(String::from_utf8(got.body.unwrap()).unwrap(), r#"{"meta":{}}"#);
    assert_eq!(got.removed.undeclared.len(), crate::stream::MAX_FINDINGS);
}

#[test]
fn scopes_on_an_alias_of_an_alias_or_in_a_branch_hide_the_property() {
    let d = json!({"components": {"schemas": {
        "Alias": {"$ref": "#/components/schemas/Plain", "x-warden-scopes": ["pii"]},
        "Plain": {"type": "string"},
        "Secret": {"type": "string", "x-warden-scopes": ["admin"]}
    }}});
    let s = json!({"properties": {
        "id": {},
        "ssn": {"$ref": "#/components/schemas/Alias"},
        "token": {"allOf": [{"$ref": "#/components/schemas/Secret"}], "description": "wrapped"}
    }});
    let v = json!({"id": 1, "ssn": "078-05-1120", "token": "t"});
    let (body, removed) = both(&d, &s, &v, &[], true);
    assert_eq!(body, json!({"id": 1}));
    assert_eq!(removed.scoped.len(), 2, "{removed:?}");
    let (body, _) = both(&d, &s, &v, &["pii"], true);
    assert_eq!(body, json!({"id": 1, "ssn": "078-05-1120"}));
    let (body, _) = both(&d, &s, &v, &["pii", "admin"], true);
    assert_eq!(body, v, "the scopes of every list held: all shown");
}

#[test]
fn names_that_share_their_first_eight_bytes_are_told_apart() {
    let d = json!({});
    let s = json!({"properties": {"customer_id": {}, "customer": {}, "custome": {}, "": {}}});
    let v =
        json!({"customer_id": 1, "customer_ix": 2, "customer": 3, "customers": 4, "custome": 5, "custom": 6, "": 7});
    let (body, removed) = both(&d, &s, &v, &[], true);
    assert_eq!(body, json!({"customer_id": 1, "customer": 3, "custome": 5, "": 7}));
    assert_eq!(removed.undeclared.len(), 3);
}

#[test]
fn scopes_on_array_items_and_on_additional_properties_hide_the_values() {
    let d = json!({"components": {"schemas": {
        "Ssn": {"type": "string", "x-warden-scopes": ["pii"]}
    }}});
    let s = json!({
        "properties": {"id": {}, "ssns": {"type": "array", "items": {"$ref": "#/components/schemas/Ssn"}}},
        "additionalProperties": {"type": "string", "x-warden-scopes": ["admin"]}
    });
    let v = json!({"id": 1, "ssns": ["078-05-1120"], "db_password": "x"});
    let (body, removed) = both(&d, &s, &v, &[], true);
    assert_eq!(body, json!({"id": 1}));
    assert_eq!(removed.scoped.len(), 2, "{removed:?}");
    let (body, _) = both(&d, &s, &v, &["pii"], true);
    assert_eq!(body, json!({"id": 1, "ssns": ["078-05-1120"]}));
    let (body, _) = both(&d, &s, &v, &["pii", "admin"], true);
    assert_eq!(body, v);
    // The root's own restriction is the loader's to refuse.
    assert!(crate::root_is_scoped(
        &d,
        &json!({"type": "array", "items": {"$ref": "#/components/schemas/Ssn"}})
    ));
    assert!(!crate::root_is_scoped(&d, &s));
}

#[test]
fn a_scope_list_too_deep_to_read_hides_the_property() {
    // 70 nested allOf levels above the restriction: past the reading depth,
    // so the property is hidden from everyone rather than shown.
    let mut deep = json!({"type": "string", "x-warden-scopes": ["pii"]});
    for _ in 0..70 {
        deep = json!({"allOf": [deep]});
    }
    let d = json!({});
    let s = json!({"properties": {"id": {}, "ssn": deep}});
    let v = json!({"id": 1, "ssn": "078-05-1120"});
    let (body, _) = both(&d, &s, &v, &["pii"], true);
    assert_eq!(body, json!({"id": 1}));
}

#[test]
fn rows_are_read_in_place_yet_every_key_as_itself() {
    // The first row sets the order the later ones are tried in: a key that
    // starts like the expected one (or shares its first eight bytes), the
    // expected one escaped, another order and a name with a quote must each
    // still be read as what they are.
    let doc = json!({});
    let schema = json!({"type": "array", "items": {"type": "object", "properties": {
        "id": {}, "name": {}, "role": {"x-warden-scopes": ["admin"]}, "created_at": {}
    }}});
    let raw = br#"[{"id":1,"name":"a","role":"r","created_at":"t"},{"id":2,"names":"b","role":"r"},{"id":3,"n\u0061me":"c","role":"r"},{"role":"r","name":"d","id":4},{"id":5,"name\"":"e"},{"id":6,"name":"f","role":"r","created_by":"x"}]"#;
    let mut plan = FilterPlan::new();
    let root = plan.add(&doc, &schema);
    let got = plan.filter(root, raw, &[], true).unwrap();
    let body: Value = serde_json::from_slice(got.body.as_deref().unwrap()).unwrap();
    let want = json!([{"id": 1, "name": "a", "created_at": "t"}, {"id": 2}, {"id": 3, "name": "c"}, {"name": "d", "id": 4}, {"id": 5}, {"id": 6, "name": "f"}]);
    assert_eq!(body, want);
    let mut tree: Value = serde_json::from_slice(raw).unwrap();
    filter(&doc, &schema, &mut tree, &[], true);
    assert_eq!(tree, want);
}
