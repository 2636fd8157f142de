//! Response filtering: a JSON value cut down to what its schema declares.
//!
//! An object whose schema (with its `allOf`/`oneOf`/`anyOf` branches, through
//! local `$ref`s) lists `properties` keeps only those, plus whatever an
//! explicit `additionalProperties: true` or schema lets through (an absent
//! `additionalProperties` counts as `false` here: the point is to return only
//! what the contract promises). An object schema with no properties at all is
//! a free-form map and is kept whole. Arrays are filtered item by item with
//! `items`. A property whose schema carries `x-warden-scopes: [a, b]` (next to
//! its `$ref` or in the referenced schema) is kept only for a caller holding
//! one of those scopes; a property declared in several `allOf` branches needs
//! the scopes of every declaration. `oneOf`/`anyOf` branches are merged: a
//! property any branch declares is kept.

use serde_json::Value;

use crate::plan::{Gathered, gather};
use crate::shown;

/// Deepest value nesting filtered (a parsed body nests no deeper).
const MAX_NESTING: usize = 128;

/// What filtering found: JSON pointers (names shown by the one rule), at
/// most [`crate::stream::MAX_FINDINGS`] of each kind (the rest are removed
/// all the same).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removed {
    /// Properties the schema does not declare (removed when asked to).
    pub undeclared: Vec<String>,
    /// Properties that need a scope the caller lacks (always removed).
    pub scoped: Vec<String>,
}

/// Removes from `value` every property that needs a scope the caller lacks,
/// and, when `drop_undeclared`, every property `schema` does not declare;
/// returns what it found.
pub fn filter(doc: &Value, schema: &Value, value: &mut Value, scopes: &[&str], drop_undeclared: bool) -> Removed {
    let mut removed = Removed::default();
    let mut walker = Walker {
        doc,
        scopes,
        drop_undeclared,
        removed: &mut removed,
    };
    walker.walk(schema, value, &mut String::new(), 0);
    removed
}

struct Walker<'a, 'r> {
    doc: &'a Value,
    scopes: &'a [&'a str],
    drop_undeclared: bool,
    removed: &'r mut Removed,
}

/// Keeps a finding, up to [`crate::stream::MAX_FINDINGS`] of a kind.
fn record(list: &mut Vec<String>, at: &str) {
    if list.len() < crate::stream::MAX_FINDINGS {
        list.push(at.to_owned());
    }
}

fn items<'a>(doc: &'a Value, schema: &'a Value, depth: usize) -> Option<&'a Value> {
    crate::plan::items_of(doc, schema, depth)
}

/// True when the caller may see a property with this schema: every scope
/// list on the way ([`crate::plan::scope_lists`]) must be met.
fn allowed(doc: &Value, prop: &Value, scopes: &[&str]) -> bool {
    let mut lists = Vec::new();
    crate::plan::scope_lists(doc, prop, &mut lists, &mut Vec::new(), 0);
    lists
        .iter()
        .all(|need| need.iter().filter_map(Value::as_str).any(|n| scopes.contains(&n)))
}

impl Walker<'_, '_> {
    fn walk(&mut self, schema: &Value, value: &mut Value, at: &mut String, depth: usize) {
        if depth > MAX_NESTING {
            return;
        }
        let doc = self.doc;
        match value {
            Value::Object(map) => {
                let mut shape = Gathered::default();
                gather(doc, schema, &mut shape, &mut Vec::new(), 0);
                // A typed map (`additionalProperties` with a schema, no
                // properties) has its values filtered too.
                if shape.extra.is_some() && !shape.any {
                    shape.declared = true;
                }
                if !shape.declared {
                    // A free-form object (`type: object` alone, or no schema).
                    return;
                }
                map.retain(|name, child| {
                    let len = at.len();
                    at.push('/');
                    at.push_str(shown(name));
                    // Declared more than once (`allOf` branches): every
                    // declaration's scopes must be met.
                    let mut decls = shape.found.iter().filter(|(n, _)| *n == name.as_str());
                    let first = decls.clone().next();
                    let permitted = decls.all(|(_, prop)| allowed(doc, prop, self.scopes));
                    let keep = match first {
                        Some((_, prop)) if permitted => {
                            // Declared in several `allOf` branches: the
                            // value must match them all.
                            let all: Vec<&Value> = shape
                                .found
                                .iter()
                                .filter(|(n, _)| *n == name.as_str())
                                .map(|(_, p)| *p)
                                .collect();
                            if all.len() > 1 {
                                let both = serde_json::json!({ "allOf": all });
                                self.walk(&both, child, at, depth + 1);
                            } else {
                                self.walk(prop, child, at, depth + 1);
                            }
                            true
                        }
                        Some(_) => {
                            record(&mut self.removed.scoped, at);
                            false
                        }
                        None => match (shape.any, shape.extra) {
                            (true, _) => true,
                            (false, Some(s)) if allowed(doc, s, self.scopes) => {
                                self.walk(s, child, at, depth + 1);
                                true
                            }
                            (false, Some(_)) => {
                                record(&mut self.removed.scoped, at);
                                false
                            }
                            (false, None) => {
                                record(&mut self.removed.undeclared, at);
                                !self.drop_undeclared
                            }
                        },
                    };
                    at.truncate(len);
                    keep
                });
            }
            Value::Array(list) => {
                let Some(item) = items(doc, schema, 0) else { return };
                for (i, child) in list.iter_mut().enumerate() {
                    let len = at.len();
                    at.push('/');
                    at.push_str(&i.to_string());
                    self.walk(item, child, at, depth + 1);
                    at.truncate(len);
                }
            }
            _ => {}
        }
    }
}
