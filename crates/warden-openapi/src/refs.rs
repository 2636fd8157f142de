//! `$ref`s: only local ones (`#/…`), never fetched from elsewhere.

use serde_json::Value;

use crate::{SpecProblem, escape, problem};

/// How many references are followed in a chain before giving up (a cycle of
/// `$ref`s that point at each other).
const MAX_CHAIN: usize = 32;

/// Checks every `$ref` in the document: local, and pointing at something.
pub(crate) fn check_all(doc: &Value, problems: &mut Vec<SpecProblem>) {
    // `(value, pointer, whether its keys are keywords)`: the keys of a
    // `properties` map are names, and examples, defaults, enums and consts
    // are data, so an `x-warden-scopes` there is not a scope list.
    let mut stack = vec![(doc, String::new(), true)];
    while let Some((v, at, keywords)) = stack.pop() {
        match v {
            Value::Object(map) => {
                if let Some(r) = map.get("$ref") {
                    check_one(doc, r, &format!("{at}/$ref"), problems);
                }
                if keywords && let Some(list) = map.get("x-warden-scopes") {
                    check_scopes(list, &format!("{at}/x-warden-scopes"), problems);
                }
                for (k, child) in map {
                    let pointer = format!("{at}/{}", escape(k));
                    match (keywords, k.as_str(), child) {
                        (true, "properties", Value::Object(props)) => {
                            for (name, schema) in props {
                                stack.push((schema, format!("{pointer}/{}", escape(name)), true));
                            }
                        }
                        (true, "example" | "examples" | "default" | "enum" | "const", _) | (false, ..) => {
                            stack.push((child, pointer, false));
                        }
                        _ => stack.push((child, pointer, true)),
                    }
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    stack.push((child, format!("{at}/{i}"), keywords));
                }
            }
            _ => {}
        }
    }
}

/// `x-warden-scopes` is a non-empty list of scope names. Anything else is
/// refused rather than read as "no restriction": a property meant to be
/// hidden must never be shown because of a typo.
fn check_scopes(list: &Value, at: &str, problems: &mut Vec<SpecProblem>) {
    let names = list.as_array().filter(|l| !l.is_empty());
    let ok = names.is_some_and(|l| l.iter().all(|n| n.as_str().is_some_and(|n| !n.is_empty())));
    if !ok {
        problems.push(problem(
            at,
            "`x-warden-scopes` must be a non-empty list of scope names (`[hr.read]`)",
        ));
    }
}

fn check_one(doc: &Value, r: &Value, at: &str, problems: &mut Vec<SpecProblem>) {
    let Some(r) = r.as_str() else {
        problems.push(problem(at, "`$ref` must be a string"));
        return;
    };
    let Some(pointer) = r.strip_prefix('#') else {
        problems.push(problem(
            at,
            format!("`{r}` is not a local reference; remote and file references are never fetched"),
        ));
        return;
    };
    if doc.pointer(pointer).is_none() {
        problems.push(problem(at, format!("`{r}` points at nothing in this document")));
    }
}

/// Follows `v`'s `$ref` chain to the object it names (`v` itself when it has
/// none). Broken or circular chains are reported and yield `v`.
pub(crate) fn resolve<'a>(doc: &'a Value, v: &'a Value, at: &str, problems: &mut Vec<SpecProblem>) -> &'a Value {
    let target = follow_ref(doc, v);
    if local(target).is_some_and(|p| doc.pointer(p).is_some()) {
        problems.push(problem(at, "`$ref` chain longer than 32 links (a cycle?)"));
        return v;
    }
    target
}

/// The schema `v`'s `$ref` names, one link on (`None` without a local
/// `$ref` to something).
pub(crate) fn step<'a>(doc: &'a Value, v: &'a Value) -> Option<&'a Value> {
    local(v).and_then(|p| doc.pointer(p))
}

fn local(v: &Value) -> Option<&str> {
    v.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#'))
}

/// Follows `v`'s local `$ref` chain, at most 32 links, to what it names;
/// stops at the first link that is not a local reference to something
/// (the loader reports those). The one `$ref` follower every schema reader uses.
pub fn follow_ref<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    let mut cur = v;
    for _ in 0..MAX_CHAIN {
        match local(cur).and_then(|p| doc.pointer(p)) {
            Some(target) => cur = target,
            None => return cur,
        }
    }
    cur
}
