//! The injection scan's JSON walk: every key and string leaf is handed to a
//! visitor with its path as [`crate::json_walk`] meets it, without building
//! the document, and the walk stops at the first finding. Keys on the path
//! are borrowed from the body unless they held an escape. A test runs it
//! side by side with the serde-driven walk it replaced (`stream_oracle`) on
//! generated and mutated bodies: same refusals, same visits in the same
//! order.

use std::borrow::Cow;

use super::fields::Seg;
use crate::json_walk::{self, Events, Scalar};

/// What the visitor gets: the text, whether it is a key, and where it is.
pub(crate) type Visit<'f, T> = dyn for<'a> FnMut(&str, bool, &[Seg<'a>]) -> Option<T> + 'f;

/// Walks `bytes`; `Ok(Some(_))` is the visitor's first finding, `Err` a body
/// that is not strict JSON.
pub(crate) fn walk<T>(bytes: &[u8], visit: &mut Visit<'_, T>) -> Result<Option<T>, ()> {
    json_walk::walk(bytes, &mut Scan::new(visit))
}

/// The sink: the path down to the value being read, and the visitor. (Also
/// run beside the contract's document builder: `json_tree::build_along`.)
pub(crate) struct Scan<'a, 'v, 'f, T> {
    path: Vec<Seg<'a>>,
    visit: &'v mut Visit<'f, T>,
}

impl<'v, 'f, T> Scan<'_, 'v, 'f, T> {
    pub(crate) fn new(visit: &'v mut Visit<'f, T>) -> Self {
        Self {
            path: Vec::new(),
            visit,
        }
    }
}

impl<'a, T> Events<'a> for Scan<'a, '_, '_, T> {
    type Stop = T;

    /// The visitor gets the key with the path holding it.
    fn key(&mut self, key: Cow<'a, str>) -> Result<(), T> {
        self.path.push(Seg::Key(key));
        let Some(Seg::Key(key)) = self.path.last() else {
            return Ok(());
        };
        match (self.visit)(key, true, &self.path) {
            Some(found) => Err(found),
            None => Ok(()),
        }
    }

    fn member_end(&mut self) {
        self.path.pop();
    }

    fn item(&mut self, index: usize) {
        self.path.push(Seg::Index(index));
    }

    fn item_end(&mut self) {
        self.path.pop();
    }

    fn string(&mut self, text: Cow<'a, str>) -> Result<(), T> {
        match (self.visit)(&text, false, &self.path) {
            Some(found) => Err(found),
            None => Ok(()),
        }
    }

    fn scalar(&mut self, _: Scalar<'a>) -> Result<(), T> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::json::MAX_DEPTH;

    fn strings(json: &str) -> Result<Vec<String>, ()> {
        let mut seen = Vec::new();
        let mut visit = |s: &str, key: bool, path: &[Seg<'_>]| -> Option<()> {
            seen.push(format!("{}{s}@{}", if key { "k:" } else { "" }, path.len()));
            None
        };
        walk(json.as_bytes(), &mut visit)?;
        Ok(seen)
    }

    #[test]
    fn every_key_and_string_is_visited_with_its_depth() {
        let seen = strings(r#"{"a":["x",{"b":"y"}],"n":1,"e":"\u00e9"}"#).unwrap();
        assert_eq!(seen, ["k:a@1", "x@2", "k:b@3", "y@3", "k:n@1", "k:e@1", "é@1"]);
    }

    #[test]
    fn strictness_matches_parse_strict() {
        for bad in [r#"{"a":1,"A":2}"#, r#"{"a":1} x"#, "[1,", "{\"a\":\"\\ud800\"}"] {
            assert!(strings(bad).is_err(), "{bad}");
        }
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(strings(&deep).is_err());
    }

    #[test]
    fn the_first_finding_stops_the_walk() {
        let mut calls = 0;
        let mut visit = |s: &str, _: bool, _: &[Seg<'_>]| -> Option<String> {
            calls += 1;
            (s == "bad").then(|| s.to_owned())
        };
        let found = walk(br#"["ok","bad","never",1"#, &mut visit).unwrap();
        assert_eq!(found.as_deref(), Some("bad"));
        assert_eq!(calls, 2);
    }
}
