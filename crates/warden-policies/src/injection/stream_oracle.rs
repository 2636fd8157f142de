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

mod differential {
    #![allow(clippy::unwrap_used)]

    use super::super::fields::Seg;
    use super::super::stream;

    /// A walk under test: the hand-written one or the oracle.
    type Walk = fn(&[u8], &mut stream::Visit<'_, String>) -> Result<Option<String>, ()>;

    /// Every visit as text (kind, string, path), and the outcome; a string
    /// `STOP` is a finding.
    fn run(json: &[u8], walker: Walk) -> String {
        let mut log = String::new();
        let mut visit = |s: &str, key: bool, path: &[Seg<'_>]| -> Option<String> {
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
        };
        let outcome = walker(json, &mut visit);
        format!("{outcome:?}\n{log}")
    }

    fn same(json: &[u8]) {
        let new = run(json, stream::walk);
        let old = run(json, super::walk);
        assert_eq!(new, old, "{:?}", String::from_utf8_lossy(json));
    }

    #[test]
    fn hand_picked_bodies_walk_as_the_serde_walk_did() {
        let cases: &[&[u8]] = &[
            b"",
            b" ",
            b"1",
            b"-",
            b"-0",
            b"01",
            b"-01",
            b"0.",
            b"0.5",
            b".5",
            b"1e",
            b"1e+",
            b"1E-7",
            b"1e400",
            b"-1e400",
            b"1e-400",
            b"123456789012345678901234567890",
            b"18446744073709551616",
            b"-9223372036854775809",
            &[b'1'; 400],
            b"1.7976931348623157e308",
            b"1.7976931348623159e308",
            b"true",
            b"tru",
            b"truex",
            b"null ",
            b" false\n",
            b"nul",
            b"[]",
            b"[ ]",
            b"[1,]",
            b"[,1]",
            b"[1 2]",
            b"{}",
            b"{ }",
            b"{,}",
            b"{\"a\":1,}",
            b"{\"a\" 1}",
            b"{\"a\":}",
            b"{a:1}",
            b"{\"a\":1}x",
            b"{\"a\":1} ",
            b"\"\\ud800\"",
            b"\"\\udc00\"",
            b"\"\\ud800\\udc00\"",
            b"\"\\ud800\\u0041\"",
            b"\"\\ud800x\"",
            b"\"\\uD83D\\uDE00\"",
            b"\"\\udbff\\udfff\"",
            b"\"\\uDBFF\"",
            b"\"\\ud7ff\\ue000\\uffff\"",
            b"\"\\udfff\"",
            b"\"\\ud800\\udbff\"",
            b"\"\\u00e9\\u0000\"",
            b"\"\\x41\"",
            b"\"\\a\"",
            b"\"a\\",
            b"\"a\\u12\"",
            b"\"a\\u12G4\"",
            b"\"tab\there\"",
            b"\"nl\nx\"",
            b"\"del\x7f\"",
            b"\"\\/\\b\\f\\n\\r\\t\\\"\\\\\"",
            b"\"unterminated",
            b"{\"role\":\"user\",\"ROLE\":\"admin\"}",
            b"{\"mask\":1,\"ma\xc5\xbfk\":2}",
            b"{\"a\\u0041\":1,\"aa\":2}",
            b"{\"a\":{\"b\":[\"STOP\",\"never\"]}}",
            b"[\"STOP\"",
            b"[\"STOP\"]]",
            b"[\"STOP\",\xff]",
            b"[\"ok\",\xff]",
            b"[\"ok\xff\"]",
            b"[\"STOP\xff\"]",
            b"{\"STOP\":1,\"STOP\":2}",
            b"{\"k\":\"STOP\",\"k\":1}",
            b"\xef\xbb\xbf{}",
            b"{\"a\":1}\x00",
            b"\"\xc3\xa9\"",
            b"\"\xc3\"",
            b"[\"\xe2\x82\"]",
        ];
        for c in cases {
            same(c);
        }
        for n in [63, 64, 65] {
            same(format!("{}{}", "[".repeat(n), "]".repeat(n)).as_bytes());
            same(format!("{}\"STOP\"{}", "{\"a\":".repeat(n), "}".repeat(n)).as_bytes());
        }
        let keys = |n: usize| (0..n).map(|i| format!("\"k{i}\":1")).collect::<Vec<_>>().join(",");
        for extra in ["\"k3\":2", "\"K20\":2", "\"k40\":2", "\"k15\":2", "\"k16\":2"] {
            same(format!("{{{},{extra}}}", keys(17)).as_bytes());
            same(format!("{{{},{extra}}}", keys(40)).as_bytes());
        }
    }

    /// A small deterministic generator (xorshift), so a failure replays.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn pick<'x>(&mut self, items: &[&'x str]) -> &'x str {
            items[self.below(items.len())]
        }

        fn value(&mut self, out: &mut String, depth: usize) {
            match self.below(if depth > 4 { 3 } else { 6 }) {
                0 => out.push_str(self.pick(&[
                    "0", "-1", "12", "1.5", "-0.0", "1e3", "2E-2", "1e400", "01", "1.", "true", "false", "null",
                ])),
                1 | 2 => self.string(out),
                3 | 4 => {
                    out.push('{');
                    for i in 0..self.below(5) {
                        if i > 0 {
                            out.push(',');
                        }
                        self.string(out);
                        out.push_str(self.pick(&[":", " : ", ":\n"]));
                        self.value(out, depth + 1);
                    }
                    out.push('}');
                }
                _ => {
                    out.push('[');
                    for i in 0..self.below(5) {
                        if i > 0 {
                            out.push_str(self.pick(&[",", ", "]));
                        }
                        self.value(out, depth + 1);
                    }
                    out.push(']');
                }
            }
        }

        fn string(&mut self, out: &mut String) {
            out.push('"');
            for _ in 0..self.below(5) {
                out.push_str(self.pick(&[
                    "a",
                    "A",
                    "id",
                    "Id",
                    "STOP",
                    "é",
                    "\\u00e9",
                    "\\u0041",
                    "\\n",
                    "\\\"",
                    "\\\\",
                    "\\/",
                    "\\ud83d\\ude00",
                    "\\ud800",
                    "\\udc00",
                    " ",
                    "'",
                    "<",
                    "名",
                    "password_hash",
                    "PASSWORD_HASH",
                ]));
            }
            out.push('"');
        }
    }

    #[test]
    fn generated_and_mutated_bodies_walk_as_the_serde_walk_did() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        let noise: &[u8] = b"\"\\{}[]:,0123456789eE+-. tnu\x00\x1f\x7f\xff\xc3\xa9DdcC";
        for _ in 0..50_000 {
            let mut doc = String::new();
            g.value(&mut doc, 0);
            let mut bytes = doc.into_bytes();
            same(&bytes);
            // A few byte edits: deleted, replaced or inserted.
            for _ in 0..=g.below(3) {
                let at = g.below(bytes.len() + 1);
                let b = noise[g.below(noise.len())];
                match g.below(3) {
                    0 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    1 if at < bytes.len() => bytes[at] = b,
                    _ => bytes.insert(at, b),
                }
                same(&bytes);
            }
        }
    }
}
