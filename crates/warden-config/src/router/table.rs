//! The routes of one host rule: exact paths in a hash map, templates and prefixes in
//! segment tries (children in sorted vectors), so a lookup walks the path's segments
//! once (plus a binary search per segment), whatever the number of routes.
//!
//! Candidates are tried from most to least specific: the exact pattern, then templates
//! (a literal segment before a parameter at each depth, so `/users/me` beats
//! `/users/{id}`), then prefixes (longest first; `/api/` before `/api`). The first
//! pattern with a route allowing the method wins. If patterns matched the path but
//! none allows the method, the answer is 405 with the union of their methods.

use std::collections::HashMap;
use std::sync::Arc;

use http::Method;

use super::params::Params;
use super::pattern::{Parsed, Segment};
use super::{Methods, RouteError, RouteMatch};

/// One route: its methods, its value, its parameter names (templates) and a label
/// naming it in error messages.
#[derive(Debug)]
pub(super) struct Route<T> {
    /// Methods this route answers.
    pub(super) methods: Methods,
    /// The caller's value.
    pub(super) value: T,
    /// Template parameter names in order; `None` when there are none.
    pub(super) names: Option<Arc<[Box<str>]>>,
    /// `GET template `/users/{id}` on any host`, for error messages.
    pub(super) label: Box<str>,
}

/// All routes of one host rule.
#[derive(Debug)]
pub(super) struct Table<T> {
    /// Exact patterns by full path.
    exact: HashMap<Box<str>, Vec<Route<T>>>,
    /// Root of the template trie.
    templates: TemplateNode<T>,
    /// Root of the prefix trie.
    prefixes: PrefixNode<T>,
}

/// A node of the template trie; the root stands for the leading `/`.
#[derive(Debug)]
struct TemplateNode<T> {
    /// Children by literal segment.
    literals: Literals<TemplateNode<T>>,
    /// The child reached by a `{param}` segment.
    param: Option<Box<TemplateNode<T>>>,
    /// Templates ending at this node.
    leaf: Option<TemplateLeaf<T>>,
}

/// The routes of templates with the same shape (same literals, params at the same
/// places), which may differ in parameter names and methods.
#[derive(Debug)]
struct TemplateLeaf<T> {
    /// Indices of the parameter segments.
    positions: Box<[usize]>,
    /// Routes with non-overlapping methods.
    routes: Vec<Route<T>>,
}

/// A node of the prefix trie; the root stands for the leading `/`.
#[derive(Debug)]
struct PrefixNode<T> {
    /// Children by literal segment.
    children: Literals<PrefixNode<T>>,
    /// Prefix without trailing slash (`/api`): matches here and below.
    bare: Vec<Route<T>>,
    /// Prefix with trailing slash (`/api/`, or `/` at the root): matches below only.
    slash: Vec<Route<T>>,
}

/// The children of a trie node by literal segment, sorted for binary search: cheaper
/// than hashing for the few children most nodes have, O(log n) for wide nodes.
#[derive(Debug)]
struct Literals<N>(Vec<(Box<str>, N)>);

impl<N> Default for Literals<N> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<N> Literals<N> {
    /// The child for `segment`.
    fn get(&self, segment: &str) -> Option<&N> {
        let index = self.0.binary_search_by(|(key, _)| (**key).cmp(segment)).ok()?;
        self.0.get(index).map(|(_, node)| node)
    }

    /// The child for `segment`, created empty if missing.
    fn get_or_insert(&mut self, segment: Box<str>) -> &mut N
    where
        N: Default,
    {
        let index = match self.0.binary_search_by(|(key, _)| (**key).cmp(&*segment)) {
            Ok(index) => index,
            Err(index) => {
                self.0.insert(index, (segment, N::default()));
                index
            }
        };
        &mut self.0[index].1
    }
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self {
            exact: HashMap::new(),
            templates: TemplateNode::default(),
            prefixes: PrefixNode::default(),
        }
    }
}

impl<T> Default for TemplateNode<T> {
    fn default() -> Self {
        Self {
            literals: Literals::default(),
            param: None,
            leaf: None,
        }
    }
}

impl<T> Default for PrefixNode<T> {
    fn default() -> Self {
        Self {
            children: Literals::default(),
            bare: Vec::new(),
            slash: Vec::new(),
        }
    }
}

impl<T> Table<T> {
    /// Adds a route for a parsed pattern, refusing one whose methods overlap a route
    /// of the same pattern.
    pub(super) fn insert(&mut self, parsed: Parsed, route: Route<T>) -> Result<(), RouteError> {
        match parsed {
            Parsed::Exact(path) => push_route(self.exact.entry(path).or_default(), route),
            Parsed::Prefix { segments, slash } => {
                let mut node = &mut self.prefixes;
                for segment in segments {
                    node = node.children.get_or_insert(segment);
                }
                push_route(if slash { &mut node.slash } else { &mut node.bare }, route)
            }
            Parsed::Template { segments, names } => {
                let mut route = route;
                if !names.is_empty() {
                    route.names = Some(names.into());
                }
                let mut node = &mut self.templates;
                let mut positions = Vec::new();
                for (index, segment) in segments.into_iter().enumerate() {
                    node = match segment {
                        Segment::Literal(text) => node.literals.get_or_insert(text),
                        Segment::Param => {
                            positions.push(index);
                            node.param.get_or_insert_with(Box::default)
                        }
                    };
                }
                let leaf = node.leaf.get_or_insert_with(|| TemplateLeaf {
                    positions: positions.into(),
                    routes: Vec::new(),
                });
                push_route(&mut leaf.routes, route)
            }
        }
    }

    /// Finds the most specific route for `path` that allows `method`.
    pub(super) fn lookup<'a>(&'a self, method: &Method, path: &str) -> RouteMatch<'a, T> {
        let Some(rest) = path.strip_prefix('/') else {
            return RouteMatch::NotFound;
        };
        let mut seen = Collector::new(method);
        if let Some(routes) = self.exact.get(path)
            && let Some(route) = seen.consider(routes)
        {
            return found(route, Params::default());
        }
        let mut hit = None;
        walk_templates(&self.templates, Some(rest), &mut |leaf: &'a TemplateLeaf<T>| {
            let route = seen.consider(&leaf.routes);
            hit = route.map(|route| (route, &*leaf.positions));
            hit.is_some()
        });
        if let Some((route, positions)) = hit {
            let params = Params::capture(route.names.as_ref(), positions, rest);
            return found(route, params);
        }
        let mut hit = None;
        walk_prefixes(&self.prefixes, Some(rest), &mut |routes: &'a [Route<T>]| {
            hit = seen.consider(routes);
            hit.is_some()
        });
        match hit {
            Some(route) => found(route, Params::default()),
            None => seen.finish(),
        }
    }
}

/// Builds a `Found` answer.
fn found<T>(route: &Route<T>, params: Params) -> RouteMatch<'_, T> {
    RouteMatch::Found {
        value: &route.value,
        params,
    }
}

/// Adds `route` to the routes of one pattern unless its methods overlap another's.
fn push_route<T>(routes: &mut Vec<Route<T>>, route: Route<T>) -> Result<(), RouteError> {
    if let Some(existing) = routes.iter().find(|r| r.methods.overlaps(&route.methods)) {
        return Err(RouteError::Duplicate {
            route: route.label.into(),
            existing: existing.label.to_string(),
        });
    }
    routes.push(route);
    Ok(())
}

/// Splits the first segment off `rest`; the remainder is `None` after the last one.
fn split_segment(rest: &str) -> (&str, Option<&str>) {
    // A plain byte scan: segments are short, and `split_once`'s searcher
    // costs more to set up than the scan does.
    match rest.bytes().position(|b| b == b'/') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    }
}

/// Visits the template leaves matching `rest`, literal children before the parameter
/// child, until `visit` returns true. Returns whether it did.
fn walk_templates<'a, T, F>(node: &'a TemplateNode<T>, rest: Option<&str>, visit: &mut F) -> bool
where
    F: FnMut(&'a TemplateLeaf<T>) -> bool,
{
    let Some(rest) = rest else {
        return node.leaf.as_ref().is_some_and(visit);
    };
    let (segment, next) = split_segment(rest);
    if let Some(child) = node.literals.get(segment)
        && walk_templates(child, next, visit)
    {
        return true;
    }
    match &node.param {
        Some(child) if !segment.is_empty() => walk_templates(child, next, visit),
        _ => false,
    }
}

/// Visits the prefix routes matching `rest`, deepest (longest) first, the slash
/// variant before the bare one, until `visit` returns true. Returns whether it did.
fn walk_prefixes<'a, T, F>(node: &'a PrefixNode<T>, rest: Option<&str>, visit: &mut F) -> bool
where
    F: FnMut(&'a [Route<T>]) -> bool,
{
    if let Some(rest) = rest {
        let (segment, next) = split_segment(rest);
        if let Some(child) = node.children.get(segment)
            && walk_prefixes(child, next, visit)
        {
            return true;
        }
        if !node.slash.is_empty() && visit(&node.slash) {
            return true;
        }
    }
    !node.bare.is_empty() && visit(&node.bare)
}

/// Tracks, during one lookup, whether any pattern matched the path and which methods
/// the matching patterns allow.
struct Collector<'m> {
    /// The request method.
    method: &'m Method,
    /// Some pattern matched the path.
    matched: bool,
    /// Methods of matching patterns that did not allow `method`.
    allow: Vec<Method>,
}

impl<'m> Collector<'m> {
    /// Starts with nothing seen.
    fn new(method: &'m Method) -> Self {
        Self {
            method,
            matched: false,
            allow: Vec::new(),
        }
    }

    /// Records a matching pattern; returns its route allowing the method, if any.
    fn consider<'a, T>(&mut self, routes: &'a [Route<T>]) -> Option<&'a Route<T>> {
        if routes.is_empty() {
            return None;
        }
        self.matched = true;
        if let Some(route) = routes.iter().find(|r| r.methods.allows(self.method)) {
            return Some(route);
        }
        for route in routes {
            if let Methods::Only(methods) = &route.methods {
                for method in methods {
                    if !self.allow.contains(method) {
                        self.allow.push(method.clone());
                    }
                }
            }
        }
        None
    }

    /// The answer when no route allowed the method.
    fn finish<'a, T>(mut self) -> RouteMatch<'a, T> {
        if !self.matched {
            return RouteMatch::NotFound;
        }
        self.allow.sort();
        RouteMatch::MethodNotAllowed { allow: self.allow }
    }
}
