//! JSON threat limits: the shape of a request document checked in one pass,
//! without building it — nesting depth, members per object, items per array,
//! bytes per string (keys included). Duplicate keys (compared the way
//! case-insensitive parsers compare them, as in [`crate::json`]), invalid
//! UTF-8, lone surrogates and trailing data are refused too.
//!
//! A violation names where it happened as a JSON pointer under `/body` and
//! which limit it broke, never the submitted value. Keys that are not plain
//! identifiers (`[A-Za-z0-9_.-]`, at most 64 bytes) show as `*` in the pointer,
//! so an attacker's key is not echoed either.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Deepest nesting a config may allow (serde_json's own recursion bound).
pub const MAX_DEPTH_CEILING: usize = 128;

/// Limits on a JSON document's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonLimits {
    /// Most nested arrays/objects (the top-level value is depth 0).
    pub max_depth: usize,
    /// Most members in one object.
    pub max_object_keys: usize,
    /// Most items in one array.
    pub max_array_items: usize,
    /// Longest string or key, in bytes (after unescaping).
    pub max_string_bytes: usize,
}

/// Where and how a document broke the limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonViolation {
    /// JSON pointer under `/body`, e.g. `/body/items/3/name`.
    pub pointer: String,
    /// Which rule, e.g. `more than 100 items`.
    pub problem: String,
}

impl fmt::Display for JsonViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pointer, self.problem)
    }
}

/// Checks `bytes` as one JSON document against `limits`.
pub fn check(bytes: &[u8], limits: &JsonLimits) -> Result<(), JsonViolation> {
    let state = State {
        limits,
        path: RefCell::new(Vec::new()),
        violation: RefCell::new(None),
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let outcome = Check {
        state: &state,
        depth: 0,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    match outcome {
        Ok(()) => Ok(()),
        Err(e) => Err(state.violation.into_inner().unwrap_or_else(|| JsonViolation {
            // serde_json's syntax messages carry no input, only positions.
            pointer: "/body".to_owned(),
            problem: format!("not valid JSON (line {}, column {})", e.line(), e.column()),
        })),
    }
}

struct State<'a> {
    limits: &'a JsonLimits,
    /// Where the parser is; turned into text only for a violation.
    path: RefCell<Vec<Segment>>,
    violation: RefCell<Option<JsonViolation>>,
}

impl State<'_> {
    /// Records the violation at the current path and returns the error that
    /// stops parsing.
    fn refuse<E: de::Error>(&self, problem: String) -> E {
        let mut pointer = String::from("/body");
        for segment in self.path.borrow().iter() {
            pointer.push('/');
            match segment {
                Segment::Index(i) => pointer.push_str(&i.to_string()),
                Segment::Key(k) => pointer.push_str(shown(k)),
            }
        }
        *self.violation.borrow_mut() = Some(JsonViolation { pointer, problem });
        E::custom("limit")
    }

    fn string<E: de::Error>(&self, len: usize) -> Result<(), E> {
        if len > self.limits.max_string_bytes {
            return Err(self.refuse(format!("string longer than {} bytes", self.limits.max_string_bytes)));
        }
        Ok(())
    }
}

pub(crate) use warden_openapi::shown;

/// One step of the path: an array index or an object key (the key the parser
/// already decoded, moved here; nothing is formatted unless refused).
enum Segment {
    Index(usize),
    Key(String),
}

#[derive(Clone, Copy)]
struct Check<'s, 'a> {
    state: &'s State<'a>,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Check<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Check<'_, '_> {
    fn deeper<E: de::Error>(self) -> Result<Self, E> {
        let max = self.state.limits.max_depth;
        if self.depth >= max {
            return Err(self.state.refuse(format!("nested deeper than {max}")));
        }
        Ok(Self {
            state: self.state,
            depth: self.depth + 1,
        })
    }
}

impl<'de> Visitor<'de> for Check<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.state.string(v.len())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.deeper()?;
        let max = self.state.limits.max_array_items;
        let mut index = 0usize;
        loop {
            self.state.path.borrow_mut().push(Segment::Index(index));
            let item = seq.next_element_seed(inner);
            self.state.path.borrow_mut().pop();
            if item?.is_none() {
                return Ok(());
            }
            index += 1;
            if index > max {
                return Err(self.state.refuse(format!("more than {max} items")));
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.deeper()?;
        let max = self.state.limits.max_object_keys;
        let mut seen = crate::json::KeySet::default();
        while let Some(key) = map.next_key::<String>()? {
            self.state.string(key.len())?;
            if seen.len() == max {
                return Err(self.state.refuse(format!("more than {max} members")));
            }
            let duplicate = !seen.insert(&key);
            self.state.path.borrow_mut().push(Segment::Key(key));
            if duplicate {
                let e = self
                    .state
                    .refuse("duplicate key (compared case-insensitively)".to_owned());
                self.state.path.borrow_mut().pop();
                return Err(e);
            }
            let value = map.next_value_seed(inner);
            self.state.path.borrow_mut().pop();
            value?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const LIMITS: JsonLimits = JsonLimits {
        max_depth: 4,
        max_object_keys: 3,
        max_array_items: 3,
        max_string_bytes: 8,
    };

    fn refused(doc: &str) -> JsonViolation {
        check(doc.as_bytes(), &LIMITS).unwrap_err()
    }

    /// `doc` is refused at `pointer` for `problem`.
    fn assert_refused(doc: &str, pointer: &str, problem: &str) {
        let v = refused(doc);
        assert_eq!((v.pointer.as_str(), v.problem.as_str()), (pointer, problem), "{doc}");
    }

    #[test]
    fn documents_within_the_limits_pass() {
        for doc in [
            r#"{"a":1,"b":[1,2,3],"c":{"d":{"e":"12345678"}}}"#,
            r#"[[[[]]]]"#,
            r#""short""#,
            r#"{"name":"O'Brien","n":-1.5e3,"t":[true,null]}"#,
            "{\"caf\u{e9}\":\"\u{e9}\u{e9}\u{e9}\u{e9}\"}",
        ] {
            assert_eq!(check(doc.as_bytes(), &LIMITS), Ok(()), "{doc}");
        }
    }

    #[test]
    fn each_limit_is_enforced_at_its_location() {
        assert_refused(r#"{"a":{"b":{"c":{"d":{}}}}}"#, "/body/a/b/c/d", "nested deeper than 4");
        assert_refused(r#"{"items":[1,2,3,4]}"#, "/body/items", "more than 3 items");
        assert_refused(r#"{"a":1,"b":2,"c":3,"d":4}"#, "/body", "more than 3 members");
        assert_refused(
            r#"{"list":[{"name":"123456789"}]}"#,
            "/body/list/0/name",
            "string longer than 8 bytes",
        );
        let v = refused(r#"{"a_very_long_key":1}"#);
        assert_eq!(v.problem, "string longer than 8 bytes");
    }

    #[test]
    fn escapes_count_after_decoding() {
        // Nine escaped characters are nine bytes: over the limit, however
        // they were spelled on the wire.
        assert!(check(br#""\u0061\u0061\u0061\u0061\u0061\u0061\u0061\u0061\u0061""#, &LIMITS).is_err());
        assert!(check(br#""\u0061\u0061\u0061\u0061\u0061\u0061\u0061\u0061""#, &LIMITS).is_ok());
    }

    #[test]
    fn duplicates_bad_utf8_surrogates_and_trailing_data_are_refused() {
        assert_refused(
            r#"{"role":"user","Role":"admin"}"#,
            "/body/Role",
            "duplicate key (compared case-insensitively)",
        );
        assert!(
            refused(r#"{"role":1,"\u0072ole":2}"#)
                .problem
                .starts_with("duplicate key")
        );
        for bad in [&b"\"\xff\""[..], br#""\ud800""#, b"{} {}", b"{\"a\":}", b""] {
            let v = check(bad, &LIMITS).unwrap_err();
            assert!(v.problem.starts_with("not valid JSON"), "{v}");
        }
    }

    #[test]
    fn submitted_values_and_odd_keys_are_not_echoed() {
        let v = refused(r#"{"<script>":{"x":"<img src=x onerror=alert(1)>"}}"#);
        assert_eq!(v.pointer, "/body/*/x");
        assert!(!v.to_string().contains('<'));
        let v = refused(r#"{"a":"SECRET_VALUE_HERE"}"#);
        assert!(!v.to_string().contains("SECRET"), "{v}");
    }
}
