//! The serde-driven walk the hand-written one in `stream` replaced, kept as
//! the oracle of a differential test: on every input, both must refuse the
//! same bodies and hand the visitor the same keys and strings, with the same
//! paths, in the same order, stopping at the same finding.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::fields::Seg;
use super::stream::Visit;
use crate::json::{KeySet, MAX_DEPTH};

/// Walks `bytes`; `Ok(Some(_))` is the visitor's first finding, `Err` a body
/// that is not strict JSON.
pub(crate) fn walk<T>(bytes: &[u8], visit: &mut Visit<'_, T>) -> Result<Option<T>, ()> {
    let state = State {
        path: RefCell::new(Vec::new()),
        found: RefCell::new(None),
        visit: RefCell::new(visit),
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let outcome = Node {
        state: &state,
        depth: 0,
    }
    .deserialize(&mut de);
    if let Some(found) = state.found.into_inner() {
        return Ok(Some(found));
    }
    outcome.and_then(|()| de.end()).map_err(|_| ())?;
    Ok(None)
}

/// The path to where the parser is, as the visitor gets it: keys borrowed
/// from the body (owned only when they held an escape), so nothing is
/// allocated per key or per leaf.
struct State<'de, 'v, 'f, T> {
    path: RefCell<Vec<Seg<'de>>>,
    found: RefCell<Option<T>>,
    visit: RefCell<&'v mut Visit<'f, T>>,
}

impl<T> State<'_, '_, '_, T> {
    /// Hands a string leaf (`Some`) or the key just pushed onto the path
    /// (`None`) to the visitor; a finding stops the parse.
    fn leaf<E: de::Error>(&self, text: Option<&str>) -> Result<(), E> {
        let path = self.path.borrow();
        let found = match text {
            Some(text) => (self.visit.borrow_mut())(text, false, &path),
            None => match path.last() {
                Some(Seg::Key(k)) => (self.visit.borrow_mut())(k, true, &path),
                _ => None,
            },
        };
        match found {
            Some(f) => {
                *self.found.borrow_mut() = Some(f);
                Err(E::custom("finding"))
            }
            None => Ok(()),
        }
    }
}

/// An object key, borrowed from the body unless it held an escape.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v))
    }
}

struct Node<'s, 'de, 'v, 'f, T> {
    state: &'s State<'de, 'v, 'f, T>,
    depth: usize,
}

impl<T> Clone for Node<'_, '_, '_, '_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Node<'_, '_, '_, '_, T> {}

impl<T> Node<'_, '_, '_, '_, T> {
    fn deeper<E: de::Error>(self) -> Result<Self, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format!("nested deeper than {MAX_DEPTH}")));
        }
        Ok(Self {
            depth: self.depth + 1,
            ..self
        })
    }
}

impl<'de, T> DeserializeSeed<'de> for Node<'_, 'de, '_, '_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, T> Visitor<'de> for Node<'_, 'de, '_, '_, T> {
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
        self.state.leaf(Some(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.deeper()?;
        let mut i = 0;
        loop {
            self.state.path.borrow_mut().push(Seg::Index(i));
            let more = seq.next_element_seed(inner);
            self.state.path.borrow_mut().pop();
            if more?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.deeper()?;
        let mut keys = KeySet::default();
        while let Some(key) = map.next_key_seed(Key)? {
            if !keys.insert(&key) {
                return Err(KeySet::duplicate());
            }
            self.state.path.borrow_mut().push(Seg::Key(key));
            let outcome = self.state.leaf(None).and_then(|()| map.next_value_seed(inner));
            self.state.path.borrow_mut().pop();
            outcome?;
        }
        Ok(())
    }
}

/// A visitor for the walks' differential tests: logs every visit as text
/// (kind, string, path) and takes a string `STOP` as a finding.
pub(super) fn logging_visitor(log: &mut String) -> impl for<'s> FnMut(&str, bool, &[Seg<'s>]) -> Option<String> + '_ {
    move |s, key, path| {
        log.push_str(if key { "k:" } else { "v:" });
        log.push_str(s);
        for seg in path {
            match seg {
                Seg::Key(k) => log.push_str(&format!("/{k}")),
                Seg::Index(i) => log.push_str(&format!("/{i}")),
            }
        }
        log.push('\n');
        (s == "STOP").then(|| format!("found at {}", path.len()))
    }
}

mod differential {
    #![allow(clippy::unwrap_used)]

    use super::super::stream;

    /// A walk under test: the hand-written one or the oracle.
    type Walk = fn(&[u8], &mut stream::Visit<'_, String>) -> Result<Option<String>, ()>;

    /// Every visit as text, and the outcome.
    fn run(json: &[u8], walker: Walk) -> String {
        let mut log = String::new();
        let outcome = walker(json, &mut super::logging_visitor(&mut log));
        format!("{outcome:?}\n{log}")
    }

    fn same(json: &[u8]) {
        let new = run(json, stream::walk);
        let old = run(json, super::walk);
        assert_eq!(new, old, "{:?}", String::from_utf8_lossy(json));
    }

    #[test]
    fn hand_picked_bodies_walk_as_the_serde_walk_did() {
        for body in crate::json_corpus::hand_picked() {
            same(&body);
        }
    }

    #[test]
    fn generated_and_mutated_bodies_walk_as_the_serde_walk_did() {
        crate::json_corpus::generated(50_000, same);
    }
}
