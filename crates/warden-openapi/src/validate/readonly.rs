//! Mass assignment: a request body that sets a `readOnly` property.

use serde_json::Value;

use crate::{follow_ref, shown};

/// Deepest schema nesting followed (recursive schemas end here).
const MAX_DEPTH: usize = 32;

/// The JSON pointer (under `/body`) of the first property in `body` that
/// `schema` marks `readOnly`, following local `$ref`s into `doc`.
pub(crate) fn first_read_only(doc: &Value, schema: &Value, body: &Value) -> Option<String> {
    walk(doc, schema, body, &mut String::from("/body"), 0)
}

fn walk(doc: &Value, schema: &Value, body: &Value, at: &mut String, depth: usize) -> Option<String> {
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
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            for (name, value) in map {
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
        Value::Array(items) => {
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
