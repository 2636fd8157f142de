//! Response schemas compiled once for filtering: what [`crate::filter`]
//! works out from the document for every object it meets (following
//! `$ref`s, merging `allOf`/`oneOf`/`anyOf` branches, gathering
//! `x-warden-scopes`) is worked out here at load time, so filtering a
//! response is one pass over its bytes ([`crate::stream`]) with a sorted
//! lookup per property.
//!
//! The rules are the tree filter's, and a differential test holds the two
//! to the same answers.

use std::collections::HashMap;

use serde_json::Value;

use crate::follow_ref;

/// Deepest `allOf`/`oneOf`/`anyOf` nesting followed, as in the tree filter.
const MAX_DEPTH: usize = 64;

/// A compiled schema's index in its [`FilterPlan`].
pub type NodeId = usize;

/// What one schema lets through.
#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
    /// The object rules, when the schema (or a branch) lists `properties`;
    /// `None` is a free-form object, kept whole.
    pub object: Option<ObjectRules>,
    /// The schema of array items; `None` keeps arrays whole.
    pub items: Option<NodeId>,
}

/// Properties an object may have.
#[derive(Debug, Clone)]
pub(crate) struct ObjectRules {
    /// Declared properties, sorted by name.
    pub props: Vec<Prop>,
    /// What an undeclared property gets.
    pub extra: Extra,
}

/// What an object schema allows beyond its listed properties.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Extra {
    Any,
    Nothing,
    Schema(NodeId),
}

/// One declared property.
#[derive(Debug, Clone)]
pub(crate) struct Prop {
    pub name: Box<str>,
    /// The schema of its first declaration.
    pub node: NodeId,
    /// Scope lists, one per `x-warden-scopes` met on its declarations (next
    /// to a `$ref` and in the referenced schema): the caller needs one scope
    /// of every list.
    pub needs: Vec<Vec<Box<str>>>,
}

impl Prop {
    /// The caller may see this property.
    pub fn permitted(&self, scopes: &[&str]) -> bool {
        self.needs
            .iter()
            .all(|list| list.iter().any(|n| scopes.contains(&&**n)))
    }
}

/// Every response schema of a document, compiled; schemas reached through the
/// same `$ref` are compiled once, so recursive schemas are finite.
#[derive(Debug, Clone, Default)]
pub struct FilterPlan {
    pub(crate) nodes: Vec<Node>,
    /// Compiled schemas by the address of their (dereferenced) JSON value:
    /// valid only while compiling, against one document.
    seen: HashMap<usize, NodeId>,
}

impl FilterPlan {
    /// An empty plan.
    pub fn new() -> Self {
        Self::default()
    }

    /// Compiles `schema` (of the document `doc`) and returns its root.
    pub fn add(&mut self, doc: &Value, schema: &Value) -> NodeId {
        self.compile(doc, schema)
    }

    fn compile(&mut self, doc: &Value, schema: &Value) -> NodeId {
        let target = follow_ref(doc, schema);
        let addr = std::ptr::from_ref(target) as usize;
        if let Some(id) = self.seen.get(&addr) {
            return *id;
        }
        let id = self.nodes.len();
        self.nodes.push(Node::default());
        self.seen.insert(addr, id);

        let mut found: Vec<(&str, &Value)> = Vec::new();
        let mut extra = None::<&Value>;
        let mut any = false;
        let mut declared = false;
        gather(doc, target, &mut found, &mut extra, &mut any, &mut declared, 0);
        let object = if declared {
            let mut props: Vec<Prop> = Vec::new();
            for (i, (name, prop)) in found.iter().enumerate() {
                if found[..i].iter().any(|(n, _)| n == name) {
                    continue;
                }
                let mut needs = Vec::new();
                for (_, decl) in found.iter().filter(|(n, _)| n == name) {
                    for s in [*decl, follow_ref(doc, decl)] {
                        if let Some(list) = s.get("x-warden-scopes").and_then(Value::as_array) {
                            needs.push(list.iter().filter_map(Value::as_str).map(Box::from).collect());
                        }
                    }
                }
                let node = self.compile(doc, prop);
                props.push(Prop {
                    name: Box::from(*name),
                    node,
                    needs,
                });
            }
            props.sort_by(|a, b| a.name.cmp(&b.name));
            let extra = match (any, extra) {
                (true, _) => Extra::Any,
                (false, Some(s)) => Extra::Schema(self.compile(doc, s)),
                (false, None) => Extra::Nothing,
            };
            Some(ObjectRules { props, extra })
        } else {
            None
        };
        let items = items_of(doc, target, 0).map(|s| self.compile(doc, s));
        self.nodes[id] = Node { object, items };
        id
    }

    /// The rules of `node`'s objects.
    pub(crate) fn object(&self, node: NodeId) -> Option<&ObjectRules> {
        self.nodes.get(node).and_then(|n| n.object.as_ref())
    }

    /// The schema of `node`'s array items.
    pub(crate) fn items(&self, node: NodeId) -> Option<NodeId> {
        self.nodes.get(node).and_then(|n| n.items)
    }
}

impl ObjectRules {
    /// The declaration of `name`.
    pub fn find(&self, name: &str) -> Option<&Prop> {
        // Most objects declare a handful of properties: a scan that compares
        // lengths first beats a binary search of string comparisons.
        if self.props.len() <= 12 {
            return self
                .props
                .iter()
                .find(|p| p.name.len() == name.len() && *p.name == *name);
        }
        self.props
            .binary_search_by(|p| (*p.name).cmp(name))
            .ok()
            .map(|i| &self.props[i])
    }
}

/// Collects properties and `additionalProperties` through the branches, as
/// the tree filter's `collect` does (the last schema-valued
/// `additionalProperties` wins unless one says `true`).
fn gather<'a>(
    doc: &'a Value,
    schema: &'a Value,
    found: &mut Vec<(&'a str, &'a Value)>,
    extra: &mut Option<&'a Value>,
    any: &mut bool,
    declared: &mut bool,
    depth: usize,
) {
    if depth > MAX_DEPTH {
        return;
    }
    let schema = follow_ref(doc, schema);
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        *declared = true;
        found.extend(props.iter().map(|(n, s)| (n.as_str(), s)));
    }
    match schema.get("additionalProperties") {
        Some(Value::Bool(true)) => *any = true,
        Some(s @ Value::Object(_)) if !*any => *extra = Some(s),
        _ => {}
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        for sub in schema.get(key).and_then(Value::as_array).into_iter().flatten() {
            gather(doc, sub, found, extra, any, declared, depth + 1);
        }
    }
}

/// The first `items` found through the branches.
fn items_of<'a>(doc: &'a Value, schema: &'a Value, depth: usize) -> Option<&'a Value> {
    if depth > MAX_DEPTH {
        return None;
    }
    let schema = follow_ref(doc, schema);
    if let Some(i) = schema.get("items") {
        return Some(i);
    }
    ["allOf", "oneOf", "anyOf"]
        .iter()
        .flat_map(|k| schema.get(*k).and_then(Value::as_array).into_iter().flatten())
        .find_map(|sub| items_of(doc, sub, depth + 1))
}
