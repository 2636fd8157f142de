//! JSON Schema validation of request values, with `jsonschema` (remote
//! references off: the crate is built without its HTTP and file resolvers).
//!
//! Each schema is compiled once, at config load, against the whole OpenAPI
//! document so its local `$ref`s resolve: the document gets the schema under
//! `x-warden-target` and a root `$ref` to it. Both versions are validated as
//! draft 2020-12 (so every format is known: email, uuid, date-time, date, uri,
//! ipv4, ipv6, …); OpenAPI 3.0 documents are rewritten first: `nullable: true`
//! becomes a `null` type, and the boolean `exclusiveMinimum`/`exclusiveMaximum`
//! of draft 4 become the numeric form. Strict mode
//! adds `additionalProperties: false` to every object schema that lists
//! `properties`, does not say otherwise and is not combined with
//! `allOf`/`anyOf`/`oneOf` (where it would refuse the other branches' members).

use crate::Version;
use jsonschema::json::Json;
use jsonschema::{Draft, Validator};
use serde_json::Value;

/// The document prepared for compilation (3.0 rewrites, strict mode).
pub fn prepare(doc: &Value, version: Version, strict: bool) -> Value {
    let mut doc = doc.clone();
    rewrite(&mut doc, version, strict, 0);
    doc
}

fn rewrite(v: &mut Value, version: Version, strict: bool, depth: usize) {
    if depth > 256 {
        return;
    }
    match v {
        Value::Object(map) => {
            if version == Version::V30 && map.get("nullable").and_then(Value::as_bool) == Some(true) {
                if let Some(Value::String(t)) = map.get("type").cloned() {
                    map.insert("type".into(), serde_json::json!([t, "null"]));
                }
                if let Some(Value::Array(e)) = map.get_mut("enum")
                    && !e.contains(&Value::Null)
                {
                    e.push(Value::Null);
                }
            }
            if version == Version::V30 {
                for (flag, bound) in [("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")] {
                    if let Some(Value::Bool(on)) = map.get(flag).cloned() {
                        map.remove(flag);
                        if on && let Some(limit) = map.remove(bound) {
                            map.insert(flag.into(), limit);
                        }
                    }
                }
            }
            let combined = ["allOf", "anyOf", "oneOf"].iter().any(|k| map.contains_key(*k));
            if strict && map.contains_key("properties") && !map.contains_key("additionalProperties") && !combined {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            for child in map.values_mut() {
                rewrite(child, version, strict, depth + 1);
            }
        }
        Value::Array(items) => {
            for child in items {
                rewrite(child, version, strict, depth + 1);
            }
        }
        _ => {}
    }
}

/// Compiles `schema` (a part of `prepared`, possibly with local `$ref`s)
/// for instances in the representation `F` (`serde_json::Value` for
/// parameters, [`super::Doc`] for bodies).
pub(crate) fn compile<F: Json>(prepared: &Value, schema: &Value) -> Result<Validator<F>, String> {
    let mut root = prepared.clone();
    if let Value::Object(map) = &mut root {
        map.insert("x-warden-target".into(), schema.clone());
        map.insert("$ref".into(), Value::String("#/x-warden-target".into()));
        // Keys that would change how the root is read as a schema.
        for k in ["$schema", "$id", "id", "jsonSchemaDialect"] {
            map.remove(k);
        }
    }
    jsonschema::options_for::<F>()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
        .map_err(|e| format!("schema does not compile: {}", e.kind().keyword()))
}

/// The first failure as `location: keyword`, the location under `prefix`
/// with non-plain names shown as `*`; never the value.
///
/// A valid value (the common case) is recognised by `is_valid`, which keeps
/// no locations; only an invalid one pays for `iter_errors`' error records.
pub(crate) fn first_error<'v, F: Json>(
    validator: &'v Validator<F>,
    value: F::Node<'v>,
    prefix: &str,
) -> Option<String> {
    if validator.is_valid(value.clone()) {
        return None;
    }
    let error = validator.iter_errors(value).next()?;
    let mut at = String::from(prefix);
    for segment in error.instance_path().to_string().split('/').skip(1) {
        at.push('/');
        at.push_str(crate::shown(segment));
    }
    Some(format!(
        "{at}: does not match the API contract ({})",
        error.kind().keyword()
    ))
}
