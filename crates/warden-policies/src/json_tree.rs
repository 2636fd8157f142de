//! A JSON body as the contract's validators read it (a [`Doc`]), built by
//! [`crate::json_walk`]: the same document and the same refusals as
//! [`crate::json::parse_strict`] (tests compare the two on generated and
//! mutated bodies), at less cost. The body's UTF-8 is checked once rather
//! than per string, strings and keys are borrowed from the body unless they
//! held an escape, no key is hashed, and each object and array is built from
//! a shared stack at its exact size.

use std::borrow::Cow;

use serde_json::Number;
use warden_openapi::validate::{Doc, Members};

use crate::json_walk::{self, Events, Scalar};

/// `bytes` as one strict JSON document; `None` when it is not strict JSON
/// (see [`crate::json::parse_strict`] for what that refuses).
pub fn build(bytes: &[u8]) -> Option<Doc<'_>> {
    let mut tree = Tree::default();
    match json_walk::walk(bytes, &mut tree) {
        Ok(None) => tree.root,
        _ => None,
    }
}

/// [`build`], with `other` run in the same walk: the document (`None` when
/// the body is not strict JSON) and what `other` would have answered walked
/// alone: its stop (after which it is told nothing more, while the document
/// is built to the end), `Ok(None)`, or `Err` for a body that is not strict
/// JSON before it stopped.
pub(crate) fn build_along<'a, E: Events<'a>>(
    bytes: &'a [u8],
    other: &mut E,
) -> (Option<Doc<'a>>, Result<Option<E::Stop>, ()>) {
    let mut tee = Tee {
        tree: Tree::default(),
        other,
        stopped: None,
    };
    let walked = json_walk::walk(bytes, &mut tee);
    let doc = match walked {
        Ok(None) => tee.tree.root,
        _ => None,
    };
    let outcome = match (tee.stopped, walked) {
        (Some(stop), _) => Ok(Some(stop)),
        (None, Ok(None)) => Ok(None),
        (None, _) => Err(()),
    };
    (doc, outcome)
}

/// The tree and another sink in one walk.
struct Tee<'a, 'o, E: Events<'a>> {
    tree: Tree<'a>,
    other: &'o mut E,
    /// `other`'s stop, once it stopped.
    stopped: Option<E::Stop>,
}

impl<'a, E: Events<'a>> Tee<'a, '_, E> {
    /// `other`, unless it has stopped.
    fn live(&mut self) -> Option<&mut E> {
        if self.stopped.is_none() {
            Some(&mut *self.other)
        } else {
            None
        }
    }

    /// Keeps `other`'s stop, if a step gave one.
    fn note(&mut self, step: Option<Result<(), E::Stop>>) {
        if let Some(Err(stop)) = step {
            self.stopped = Some(stop);
        }
    }
}

impl<'a, E: Events<'a>> Events<'a> for Tee<'a, '_, E> {
    type Stop = ();

    fn open(&mut self, object: bool) {
        if let Some(o) = self.live() {
            o.open(object);
        }
        self.tree.open(object);
    }

    fn close(&mut self, object: bool) {
        if let Some(o) = self.live() {
            o.close(object);
        }
        self.tree.close(object);
    }

    fn key(&mut self, key: Cow<'a, str>) -> Result<(), ()> {
        let step = self.live().map(|o| o.key(key.clone()));
        self.note(step);
        self.tree.key(key)
    }

    fn member_end(&mut self) {
        if let Some(o) = self.live() {
            o.member_end();
        }
    }

    fn item(&mut self, index: usize) {
        if let Some(o) = self.live() {
            o.item(index);
        }
    }

    fn item_end(&mut self) {
        if let Some(o) = self.live() {
            o.item_end();
        }
    }

    fn string(&mut self, text: Cow<'a, str>) -> Result<(), ()> {
        let step = self.live().map(|o| o.string(text.clone()));
        self.note(step);
        self.tree.string(text)
    }

    fn scalar(&mut self, scalar: Scalar<'a>) -> Result<(), ()> {
        let step = self.live().map(|o| o.scalar(scalar));
        self.note(step);
        self.tree.scalar(scalar)
    }
}

#[derive(Default)]
struct Tree<'a> {
    /// The open containers, innermost last: object or array, and where its
    /// members or items start on their stack.
    open: Vec<(bool, usize)>,
    /// The members read so far of every open object; a key waits with a
    /// null until its value is read.
    members: Vec<(Cow<'a, str>, Doc<'a>)>,
    /// The items read so far of every open array.
    items: Vec<Doc<'a>>,
    root: Option<Doc<'a>>,
}

impl<'a> Tree<'a> {
    /// A value read: the pending member's, the open array's next, or the
    /// document.
    fn add(&mut self, value: Doc<'a>) {
        match self.open.last() {
            Some((true, _)) => {
                if let Some(member) = self.members.last_mut() {
                    member.1 = value;
                }
            }
            Some((false, _)) => self.items.push(value),
            None => self.root = Some(value),
        }
    }
}

/// A number as serde_json reads it: an integer of up to 18 digits directly,
/// anything else (fractions, exponents, longer integers, `-0`) by serde_json.
fn number(text: &str) -> Option<Number> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if digits.len() <= 18 && digits.bytes().all(|b| b.is_ascii_digit()) {
        let n = digits.bytes().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        match (negative, i64::try_from(n)) {
            (false, _) => return Some(Number::from(n)),
            (true, Ok(n)) if n != 0 => return Some(Number::from(-n)),
            _ => {}
        }
    }
    serde_json::from_str(text).ok()
}

impl<'a> Events<'a> for Tree<'a> {
    /// A number that serde_json would not read (cannot happen after the
    /// walk's own check, but is refused rather than replaced).
    type Stop = ();

    fn open(&mut self, object: bool) {
        let start = if object { self.members.len() } else { self.items.len() };
        self.open.push((object, start));
    }

    fn close(&mut self, _: bool) {
        let value = match self.open.pop() {
            Some((true, start)) => Doc::Object(Members::new(self.members.drain(start..).collect())),
            Some((false, start)) => Doc::Array(self.items.drain(start..).collect()),
            None => return,
        };
        self.add(value);
    }

    fn key(&mut self, key: Cow<'a, str>) -> Result<(), ()> {
        self.members.push((key, Doc::Null));
        Ok(())
    }

    fn string(&mut self, text: Cow<'a, str>) -> Result<(), ()> {
        self.add(Doc::String(text));
        Ok(())
    }

    fn scalar(&mut self, scalar: Scalar<'a>) -> Result<(), ()> {
        let value = match scalar {
            Scalar::Number(text) => Doc::Number(number(text).ok_or(())?),
            Scalar::Bool(b) => Doc::Bool(b),
            Scalar::Null => Doc::Null,
        };
        self.add(value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::Value;

    use super::*;
    use crate::json::parse_strict;
    use crate::json_corpus;

    /// Same outcome, same document: same members in the same order, same
    /// number kinds (`1` is not `1.0`), same signed zero.
    fn same(json: &[u8]) {
        let new = build(json).map(|doc| doc.to_value());
        let old = parse_strict(json).ok();
        assert_eq!(new, old, "{:?}", String::from_utf8_lossy(json));
        let text = |v: &Option<Value>| v.as_ref().map(|v| serde_json::to_string(v).unwrap());
        assert_eq!(text(&new), text(&old), "{:?}", String::from_utf8_lossy(json));
    }

    #[test]
    fn hand_picked_bodies_build_as_parse_strict_does() {
        for body in json_corpus::hand_picked() {
            same(&body);
        }
        for n in [
            "0",
            "-1",
            "-0",
            "-0.0",
            "7",
            "123456789012345678",
            "-123456789012345678",
        ] {
            same(n.as_bytes());
        }
        for n in [
            "1234567890123456789",
            "-9223372036854775808",
            "18446744073709551615",
            "1.0",
            "2e3",
        ] {
            same(n.as_bytes());
        }
        same(br#"{"b":1,"a":[{"y":null,"x":true},[],{}],"c":"\u00e9t\u00e9"}"#);
    }

    #[test]
    fn generated_and_mutated_bodies_build_as_parse_strict_does() {
        json_corpus::generated(50_000, same);
    }

    #[test]
    fn a_refused_body_builds_nothing() {
        for bad in [&br#"{"a":1,"A":2}"#[..], b"[1,", b"1e400", b"{\"a\":1} x", b"\"\xff\""] {
            assert_eq!(build(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
