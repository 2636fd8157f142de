//! Mass assignment: a request body that sets a `readOnly` property.

use std::collections::HashSet;

use serde_json::Value;

use super::Doc;
use crate::{follow_ref, shown};

/// Deepest schema nesting followed (recursive schemas end here).
const MAX_DEPTH: usize = 32;

/// The JSON pointer (under `/body`) of the first property in `body` that
/// `schema` marks `readOnly`, following local `$ref`s into `doc`.
pub(crate) fn first_read_only(doc: &Value, schema: &Value, body: &Doc<'_>) -> Option<String> {
    walk(doc, schema, body, &mut String::from("/body"), 0)
}

/// Schema nesting past which [`reachable`] stops looking and answers yes
/// (the walk has its own, lower bound).
const MAX_REACH_DEPTH: usize = 64;

/// True when a property marked `readOnly` can be reached from `schema`
/// through the edges the walk follows (`$ref`s, `allOf`/`oneOf`/`anyOf`,
/// `properties`, `items`). Decided once, when the contract loads: when false,
/// [`first_read_only`] finds nothing in any body and need not run (each of
/// its steps resolves `$ref`s and looks keys up in the document's maps).
/// Each schema is looked at once, so a recursive schema costs its size.
pub(crate) fn reachable(doc: &Value, schema: &Value) -> bool {
    any_read_only(doc, schema, &mut HashSet::new(), 0)
}

fn any_read_only(doc: &Value, schema: &Value, seen: &mut HashSet<*const Value>, depth: usize) -> bool {
    if depth > MAX_REACH_DEPTH {
        return true;
    }
    let schema = follow_ref(doc, schema);
    // (A schema met again was, or is being, looked at through its first
    // path: every edge out of it is covered there.)
    if !seen.insert(std::ptr::from_ref(schema)) {
        return false;
    }
    let subs = ["allOf", "oneOf", "anyOf"]
        .into_iter()
        .flat_map(|key| schema.get(key).and_then(Value::as_array).into_iter().flatten());
    let props = schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|p| p.values());
    for sub in subs.chain(schema.get("items")) {
        if any_read_only(doc, sub, seen, depth + 1) {
            return true;
        }
    }
    for prop in props {
        if follow_ref(doc, prop).get("readOnly").and_then(Value::as_bool) == Some(true)
            || any_read_only(doc, prop, seen, depth + 1)
        {
            return true;
        }
    }
    false
}

fn walk(doc: &Value, schema: &Value, body: &Doc<'_>, at: &mut String, depth: usize) -> Option<String> {
    if depth > MAX_DEPTH {
        return None;
    }
    let schema = follow_ref(doc, schema);
    // Composition: a readOnly marked in any branch counts.
    for key in ["allOf", "oneOf", "anyOf"] {
        for sub in schema.get(key).and_then(Value::as_array).into_iter().flatten() {
            if let Some(p) = walk(doc, sub, body, at, depth + 1) {
                return Some(p);
            }
        }
    }
    match body {
        Doc::Object(members) => {
            let props = schema.get("properties").and_then(Value::as_object);
            for (name, value) in members.iter() {
                let Some(prop) = props.and_then(|p| p.get(name)) else {
                    continue;
                };
                let len = at.len();
                at.push('/');
                at.push_str(shown(name));
                if follow_ref(doc, prop).get("readOnly").and_then(Value::as_bool) == Some(true) {
                    return Some(at.clone());
                }
                let found = walk(doc, prop, value, at, depth + 1);
                at.truncate(len);
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        Doc::Array(items) => {
            let item_schema = schema.get("items")?;
            for (i, item) in items.iter().enumerate() {
                let len = at.len();
                at.push('/');
                at.push_str(&i.to_string());
                let found = walk(doc, item_schema, item, at, depth + 1);
                at.truncate(len);
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Doc, first_read_only, reachable};

    #[test]
    fn a_read_only_property_is_reachable_through_every_edge_the_walk_follows() {
        let doc = json!({"components": {"schemas": {
            "Plain": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"$ref": "#/components/schemas/Plain"}}},
            "Marked": {"type": "object", "properties": {"id": {"type": "string", "readOnly": true}}},
            "MarkedRef": {"readOnly": true, "type": "string"},
            "Loop": {"type": "object", "properties": {"next": {"$ref": "#/components/schemas/Loop"}, "id": {"$ref": "#/components/schemas/MarkedRef"}}}
        }}});
        let reach = |s: serde_json::Value| reachable(&doc, &s);
        assert!(
            !reach(json!({"$ref": "#/components/schemas/Plain"})),
            "a recursive schema without readOnly"
        );
        assert!(!reach(
            json!({"type": "array", "items": {"type": "object", "properties": {"x": {}}}})
        ));
        assert!(
            !reach(json!({"type": "string", "readOnly": true})),
            "the body itself is no property"
        );
        assert!(reach(json!({"$ref": "#/components/schemas/Marked"})));
        assert!(reach(
            json!({"type": "array", "items": {"$ref": "#/components/schemas/Marked"}})
        ));
        assert!(reach(
            json!({"allOf": [{"$ref": "#/components/schemas/Plain"}, {"$ref": "#/components/schemas/Marked"}]})
        ));
        assert!(reach(
            json!({"oneOf": [{"type": "string"}, {"properties": {"deep": {"anyOf": [{"$ref": "#/components/schemas/Marked"}]}}}]})
        ));
        assert!(
            reach(json!({"$ref": "#/components/schemas/Loop"})),
            "through a $ref to a readOnly schema, in a loop"
        );
        // Where it says no, the walk finds nothing either, whatever the body.
        let plain = json!({"$ref": "#/components/schemas/Plain"});
        let body = Doc::from_value(&json!({"a": "x", "b": {"a": "y", "b": {"id": 1}}, "id": 2}));
        assert_eq!(first_read_only(&doc, &plain, &body), None);
        let looped = json!({"$ref": "#/components/schemas/Loop"});
        let body = Doc::from_value(&json!({"next": {"next": {"id": "set"}}}));
        assert_eq!(
            first_read_only(&doc, &looped, &body).as_deref(),
            Some("/body/next/next/id")
        );
    }
}
