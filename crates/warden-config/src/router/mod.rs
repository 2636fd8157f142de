//! Request routing: maps (host, method, normalised path) to the value of one route.
//!
//! Routes are indexed by host rule, then by path in per-host segment tries, so a lookup
//! costs O(host labels + path segments), independent of the number of routes.
//!
//! Precedence, most specific first:
//! - **Host**: exact host, then wildcard hosts (longest suffix first), then any host.
//!   A less specific host table is consulted only when the more specific one has no
//!   pattern matching the path at all (a 405 there is final).
//! - **Pattern**, within one host table: [`PathPattern::Exact`], then
//!   [`PathPattern::Template`] (at the first segment where two templates differ, a
//!   literal beats a `{param}`: `/users/me` beats `/users/{id}`), then
//!   [`PathPattern::Prefix`] (longest first).
//! - **Method**: the most specific pattern with a route allowing the method wins, so
//!   `GET /users/{id}` plus `Prefix("/")` for any method sends `DELETE /users/7` to the
//!   prefix. When patterns match the path but none allows the method, the answer is
//!   [`RouteMatch::MethodNotAllowed`] with the union of their methods, sorted.
//!
//! Paths given to [`Router::lookup`] must come from [`normalize_path`]; patterns must
//! already be in that normal form. A trailing slash is significant for exact and
//! template patterns (`/a/` is not `/a`).

mod host;
pub mod normalize;
#[cfg(test)]
mod normalize_tests;
mod params;
mod pattern;
mod table;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;

use http::Method;

use host::HostRule;
pub use normalize::{PathError, normalize_path};
pub use params::Params;
use table::{Route, Table};

/// The path part of a route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathPattern {
    /// Matches exactly this path; a trailing slash is significant.
    Exact(String),
    /// Matches this path and everything below it on a segment boundary: `/api` matches
    /// `/api`, `/api/` and `/api/x/y`, not `/apix`. `/api/` matches `/api/` and below
    /// but not `/api`; `/` matches every path.
    Prefix(String),
    /// Like `Exact`, but each `{name}` segment matches one non-empty segment and
    /// captures it into [`Params`]: `/users/{id}/orders/{order_id}`.
    Template(String),
}

impl PathPattern {
    /// The pattern text.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Exact(p) | Self::Prefix(p) | Self::Template(p) => p,
        }
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(p) => write!(f, "exact `{p}`"),
            Self::Prefix(p) => write!(f, "prefix `{p}`"),
            Self::Template(p) => write!(f, "template `{p}`"),
        }
    }
}

/// Why a route could not be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The path pattern is not a normal path, or its template syntax is wrong.
    #[error("invalid path pattern `{pattern}`: {reason}")]
    InvalidPattern {
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The host rule is malformed.
    #[error("invalid host `{host}`: {reason}")]
    InvalidHost {
        /// The host as given.
        host: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The method list is empty (which would match nothing).
    #[error("route {pattern} has an empty method list; leave it out to allow any method")]
    NoMethods {
        /// The pattern of the route.
        pattern: String,
    },
    /// Another route has the same host rule, the same pattern and an overlapping
    /// method set.
    #[error("duplicate route ({route}) overlaps ({existing}): same host, same pattern, overlapping methods")]
    Duplicate {
        /// The route being added.
        route: String,
        /// The route already present.
        existing: String,
    },
}

/// The answer of [`Router::lookup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteMatch<'a, T> {
    /// A route matched and allows the method.
    Found {
        /// The route's value.
        value: &'a T,
        /// Template captures; empty for exact and prefix routes.
        params: Params,
    },
    /// Routes match the path, but none allows the method (answer 405).
    MethodNotAllowed {
        /// The methods the matching patterns allow, sorted and deduplicated.
        allow: Vec<Method>,
    },
    /// No route matches the host and path (answer 404).
    NotFound,
}

/// The methods a route answers.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Methods {
    /// Every method.
    Any,
    /// These methods (non-empty, deduplicated).
    Only(Vec<Method>),
}

impl Methods {
    /// Whether `method` is answered.
    fn allows(&self, method: &Method) -> bool {
        match self {
            Self::Any => true,
            Self::Only(methods) => methods.contains(method),
        }
    }

    /// Whether some method is answered by both sets.
    fn overlaps(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Only(a), Self::Only(b)) => a.iter().any(|m| b.contains(m)),
            _ => true,
        }
    }
}

impl fmt::Display for Methods {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any method"),
            Self::Only(methods) => {
                for (i, method) in methods.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    f.write_str(method.as_str())?;
                }
                Ok(())
            }
        }
    }
}

/// Collects routes, validating each, then builds a [`Router`].
#[derive(Debug)]
pub struct RouterBuilder<T> {
    /// The router under construction.
    router: Router<T>,
}

impl<T> Default for RouterBuilder<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> RouterBuilder<T> {
    /// An empty builder.
    pub fn new() -> Self {
        Self {
            router: Router {
                exact_hosts: HashMap::new(),
                wildcard_hosts: HashMap::new(),
                any_host: Table::default(),
                len: 0,
            },
        }
    }

    /// Adds a route.
    ///
    /// `host`: `None` matches any host; `Some("api.example.com")` one host
    /// (case-insensitive; the request's port is ignored); `Some("*.example.com")` any
    /// host with one or more labels before `.example.com`. `methods`: `None` matches
    /// any method.
    ///
    /// # Errors
    ///
    /// [`RouteError`] when the host or pattern is malformed, the method list is empty,
    /// or a route with the same host rule and pattern already covers one of the methods.
    pub fn add(
        &mut self,
        host: Option<&str>,
        methods: Option<&[Method]>,
        path: PathPattern,
        value: T,
    ) -> Result<(), RouteError> {
        let host = HostRule::parse(host)?;
        let methods = match methods {
            None => Methods::Any,
            Some([]) => {
                return Err(RouteError::NoMethods {
                    pattern: path.to_string(),
                });
            }
            Some(list) => {
                let mut unique: Vec<Method> = Vec::with_capacity(list.len());
                for method in list {
                    if !unique.contains(method) {
                        unique.push(method.clone());
                    }
                }
                Methods::Only(unique)
            }
        };
        let parsed = pattern::parse(&path)?;
        let label = format!("{methods} {path} on {host}");
        let route = Route {
            methods,
            value,
            names: None,
            label: label.into(),
        };
        let router = &mut self.router;
        let table = match host {
            HostRule::Any => &mut router.any_host,
            HostRule::Exact(name) => router.exact_hosts.entry(name).or_default(),
            HostRule::Wildcard(suffix) => router.wildcard_hosts.entry(suffix).or_default(),
        };
        table.insert(parsed, route)?;
        router.len += 1;
        Ok(())
    }

    /// Finishes the router.
    pub fn build(self) -> Router<T> {
        self.router
    }
}

/// An immutable routing table; build it with [`RouterBuilder`].
#[derive(Debug)]
pub struct Router<T> {
    /// Tables of exact host rules, by lower-case host.
    exact_hosts: HashMap<Box<str>, Table<T>>,
    /// Tables of wildcard host rules, by suffix with its leading dot (`.example.com`).
    wildcard_hosts: HashMap<Box<str>, Table<T>>,
    /// The table of routes without host rule.
    any_host: Table<T>,
    /// Number of routes.
    len: usize,
}

impl<T> Router<T> {
    /// A builder for a router.
    pub fn builder() -> RouterBuilder<T> {
        RouterBuilder::new()
    }

    /// Finds the route for a request.
    ///
    /// `host` is the `Host` header or `:authority` (a `:port` and a trailing dot are
    /// ignored, case does not matter); `normalized_path` must come from
    /// [`normalize_path`]. See the module documentation for precedence.
    pub fn lookup(&self, host: &str, method: &Method, normalized_path: &str) -> RouteMatch<'_, T> {
        if self.exact_hosts.is_empty() && self.wildcard_hosts.is_empty() {
            return self.any_host.lookup(method, normalized_path);
        }
        let host = host::normalize_request_host(host);
        if let Some(table) = self.exact_hosts.get(host.as_ref()) {
            let answer = table.lookup(method, normalized_path);
            if !matches!(answer, RouteMatch::NotFound) {
                return answer;
            }
        }
        if !self.wildcard_hosts.is_empty() {
            for suffix in host::wildcard_suffixes(&host) {
                if let Some(table) = self.wildcard_hosts.get(suffix) {
                    let answer = table.lookup(method, normalized_path);
                    if !matches!(answer, RouteMatch::NotFound) {
                        return answer;
                    }
                }
            }
        }
        self.any_host.lookup(method, normalized_path)
    }

    /// The number of routes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the router has no route.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}
