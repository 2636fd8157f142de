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
#[derive(Debug, Clone)]
pub(crate) enum Extra {
    Any,
    Nothing,
    /// Values filtered by this schema, shown to callers holding a scope of
    /// every list (its `x-warden-scopes`, as for a property).
    Schema(NodeId, Vec<Vec<Box<str>>>),
}

/// One declared property.
#[derive(Debug, Clone)]
pub(crate) struct Prop {
    pub name: Box<str>,
    /// The name's first eight bytes ([`warden_scan::head`]), compared before the name.
    pub head: u64,
    /// The schema of its first declaration.
    pub node: NodeId,
    /// Scope lists, one per `x-warden-scopes` met on its declarations (next
    /// to a `$ref` and in the referenced schema): the caller needs one scope
    /// of every list.
    pub needs: Vec<Vec<Box<str>>>,
    /// The name needs no escape in JSON (no `"`, `\\` or control
    /// character): its bytes between quotes are how a body writes it.
    pub plain: bool,
}

impl Prop {
    /// The caller may see this property.
    pub fn permitted(&self, scopes: &[&str]) -> bool {
        permitted(&self.needs, scopes)
    }
}

/// `scopes` holds a scope of every list of `needs`.
pub(crate) fn permitted(needs: &[Vec<Box<str>>], scopes: &[&str]) -> bool {
    needs.iter().all(|list| list.iter().any(|n| scopes.contains(&&**n)))
}

/// The scope lists governing a value declared by every schema of `decls`.
fn needs_of(doc: &Value, decls: &[&Value]) -> Vec<Vec<Box<str>>> {
    let mut lists = Vec::new();
    for decl in decls {
        scope_lists(doc, decl, &mut lists, &mut Vec::new(), 0);
    }
    lists
        .iter()
        .map(|l| l.iter().filter_map(Value::as_str).map(Box::from).collect())
        .collect()
}

/// True when a response's root schema carries `x-warden-scopes` (itself, or
/// its array items): a restriction that removing properties cannot enforce,
/// refused when the config loads.
pub fn root_is_scoped(doc: &Value, schema: &Value) -> bool {
    !needs_of(doc, &[schema]).is_empty()
}

/// Every response schema of a document, compiled; schemas reached through the
/// same `$ref` are compiled once, so recursive schemas are finite.
#[derive(Debug, Clone, Default)]
pub struct FilterPlan {
    pub(crate) nodes: Vec<Node>,
    /// Compiled schemas by the addresses of their (dereferenced) JSON
    /// values: valid only while compiling, against one document.
    seen: HashMap<Vec<usize>, NodeId>,
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
        self.node_for(doc, &[schema])
    }

    /// The node for values that must match every schema of `schemas` (one,
    /// or the several declarations of a property under `allOf`: a value
    /// declared free-form in one branch and with properties in another is
    /// filtered by the properties).
    fn node_for(&mut self, doc: &Value, schemas: &[&Value]) -> NodeId {
        let mut targets: Vec<&Value> = schemas.iter().map(|s| follow_ref(doc, s)).collect();
        let mut key: Vec<usize> = targets.iter().map(|t| std::ptr::from_ref(*t) as usize).collect();
        key.sort_unstable();
        key.dedup();
        if let Some(id) = self.seen.get(&key) {
            return *id;
        }
        let id = self.nodes.len();
        self.nodes.push(Node::default());
        self.seen.insert(key, id);

        let mut g = Gathered::default();
        let mut visited = Vec::new();
        for t in &targets {
            gather(doc, t, &mut g, &mut visited, 0);
        }
        // A typed map (`additionalProperties` with a schema, no properties)
        // has its values filtered too.
        let declared = g.declared || (g.extra.is_some() && !g.any);
        let object = if declared {
            let found = &g.found;
            let mut props: Vec<Prop> = Vec::new();
            for (i, (name, _)) in found.iter().enumerate() {
                if found[..i].iter().any(|(n, _)| n == name) {
                    continue;
                }
                let decls: Vec<&Value> = found.iter().filter(|(n, _)| n == name).map(|(_, d)| *d).collect();
                let needs = needs_of(doc, &decls);
                let node = self.node_for(doc, &decls);
                props.push(Prop {
                    name: Box::from(*name),
                    head: warden_scan::head(name.as_bytes()),
                    node,
                    needs,
                    plain: !name.contains(|c: char| c == '"' || c == '\\' || c.is_control()),
                });
            }
            props.sort_by(|a, b| a.name.cmp(&b.name));
            let extra = match (g.any, g.extra) {
                (true, _) => Extra::Any,
                (false, Some(s)) => Extra::Schema(self.compile(doc, s), needs_of(doc, &[s])),
                (false, None) => Extra::Nothing,
            };
            Some(ObjectRules { props, extra })
        } else {
            None
        };
        targets.retain(|t| items_of(doc, t, 0).is_some());
        let items = targets
            .first()
            .and_then(|t| items_of(doc, t, 0))
            .map(|s| self.compile(doc, s));
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
    /// Where the declaration of `name` is in `props`.
    pub fn position(&self, name: &str) -> Option<usize> {
        // Most objects declare a handful of properties: a scan that compares
        // lengths first beats a binary search of string comparisons.
        if self.props.len() <= 12 {
            // Length and first eight bytes settle most comparisons.
            let h = warden_scan::head(name.as_bytes());
            return self.props.iter().position(|p| {
                p.name.len() == name.len()
                    && p.head == h
                    && (name.len() <= 8 || p.name.as_bytes()[8..] == name.as_bytes()[8..])
            });
        }
        self.props.binary_search_by(|p| (*p.name).cmp(name)).ok()
    }
}

/// What [`gather`] found in a schema and its branches.
#[derive(Default)]
pub(crate) struct Gathered<'a> {
    /// Property declarations, in order (a name may come more than once).
    pub found: Vec<(&'a str, &'a Value)>,
    /// The last schema-valued `additionalProperties`.
    pub extra: Option<&'a Value>,
    /// Some `additionalProperties: true`.
    pub any: bool,
    /// Some `properties`.
    pub declared: bool,
}

/// Collects properties and `additionalProperties` through the branches, as
/// both filters use it (the last schema-valued
/// `additionalProperties` wins unless one says `true`). A schema met twice
/// (`A: {allOf: [{$ref: A}, {$ref: A}]}`) is read once.
pub(crate) fn gather<'a>(
    doc: &'a Value,
    schema: &'a Value,
    g: &mut Gathered<'a>,
    visited: &mut Vec<usize>,
    depth: usize,
) {
    let schema = follow_ref(doc, schema);
    let addr = std::ptr::from_ref(schema) as usize;
    if depth > MAX_DEPTH || visited.contains(&addr) {
        return;
    }
    visited.push(addr);
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        g.declared = true;
        g.found.extend(props.iter().map(|(n, s)| (n.as_str(), s)));
    }
    match schema.get("additionalProperties") {
        Some(Value::Bool(true)) => g.any = true,
        Some(s @ Value::Object(_)) => g.extra = Some(s),
        _ => {}
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        for sub in schema.get(key).and_then(Value::as_array).into_iter().flatten() {
            gather(doc, sub, g, visited, depth + 1);
        }
    }
}

/// Every `x-warden-scopes` list that governs a property declared as
/// `schema`: on the declaration itself, on every schema its `$ref` chain
/// passes through (an alias of an alias), in its `allOf`/`oneOf`/`anyOf`
/// branches, and in its `items` (a list of restricted values is restricted
/// as a whole). The caller needs a scope of each list: a restriction written
/// anywhere on the way is never missed, and a schema too deep to read adds a
/// list nobody holds. The loader has checked every list is a non-empty list
/// of names.
pub(crate) fn scope_lists<'a>(
    doc: &'a Value,
    schema: &'a Value,
    out: &mut Vec<&'a [Value]>,
    visited: &mut Vec<usize>,
    depth: usize,
) {
    if depth > MAX_DEPTH {
        out.push(&[]);
        return;
    }
    let mut cur = Some(schema);
    while let Some(s) = cur {
        let addr = std::ptr::from_ref(s) as usize;
        if visited.contains(&addr) {
            return;
        }
        visited.push(addr);
        if let Some(list) = s.get("x-warden-scopes").and_then(Value::as_array) {
            out.push(list);
        }
        for key in ["allOf", "oneOf", "anyOf"] {
            for sub in s.get(key).and_then(Value::as_array).into_iter().flatten() {
                scope_lists(doc, sub, out, visited, depth + 1);
            }
        }
        if let Some(items) = s.get("items") {
            scope_lists(doc, items, out, visited, depth + 1);
        }
        cur = crate::refs::step(doc, s);
    }
}

/// The first `items` found through the branches.
pub(crate) fn items_of<'a>(doc: &'a Value, schema: &'a Value, depth: usize) -> Option<&'a Value> {
    first_items(doc, schema, &mut Vec::new(), depth)
}

/// The first `items` through the branches, each schema read once (a
/// self-referencing `allOf` would otherwise double the work per level).
fn first_items<'a>(doc: &'a Value, schema: &'a Value, visited: &mut Vec<usize>, depth: usize) -> Option<&'a Value> {
    let schema = follow_ref(doc, schema);
    let addr = std::ptr::from_ref(schema) as usize;
    if depth > MAX_DEPTH || visited.contains(&addr) {
        return None;
    }
    visited.push(addr);
    if let Some(i) = schema.get("items") {
        return Some(i);
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        for sub in schema.get(key).and_then(Value::as_array).into_iter().flatten() {
            if let Some(i) = first_items(doc, sub, visited, depth + 1) {
                return Some(i);
            }
        }
    }
    None
}
