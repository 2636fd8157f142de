//! Values captured by the `{name}` segments of a template route.
//!
//! Kept cheap: a route without parameters yields an empty [`Params`] that allocates
//! nothing; a template route allocates one string holding every captured value. The
//! names are shared with the route (a reference-count bump).

use std::fmt;
use std::sync::Arc;

/// The `{name}` captures of a matched template route, in pattern order.
///
/// Values are segments of the normalised path: never empty, never containing `/`,
/// and still percent-encoded where the normal form keeps escapes (`%3A`, `%C3%A9`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Params {
    /// Parameter names, in pattern order; `None` when the route has none.
    names: Option<Arc<[Box<str>]>>,
    /// The captured values joined with `/` (which no value contains).
    values: String,
}

impl Params {
    /// Captures the segments of `rest` (the path without its leading `/`) found at
    /// `positions` (ascending segment indices), naming them with `names`.
    pub(super) fn capture(names: Option<&Arc<[Box<str>]>>, positions: &[usize], rest: &str) -> Self {
        let Some(names) = names else {
            return Self::default();
        };
        let mut values = String::with_capacity(rest.len());
        let mut wanted = positions.iter().copied().peekable();
        for (index, segment) in rest.split('/').enumerate() {
            match wanted.peek() {
                None => break,
                Some(&position) if position == index => {
                    if !values.is_empty() {
                        values.push('/');
                    }
                    values.push_str(segment);
                    wanted.next();
                }
                Some(_) => {}
            }
        }
        Self {
            names: Some(Arc::clone(names)),
            values,
        }
    }

    /// The value captured by `{name}`, if the route has such a parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|&(n, _)| n == name).map(|(_, value)| value)
    }

    /// The `(name, value)` pairs in pattern order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let names = self.names.as_deref().unwrap_or_default();
        names.iter().map(AsRef::as_ref).zip(self.values.split('/'))
    }

    /// The number of captured parameters.
    pub fn len(&self) -> usize {
        self.names.as_deref().map_or(0, <[Box<str>]>::len)
    }

    /// True when the route captured nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}
