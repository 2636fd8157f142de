//! One pass over a JSON body: every key and string leaf is handed to a
//! visitor as the walk meets it, without building the document, and the
//! walk stops at the first finding. As strict as [`crate::json::parse_strict`]
//! (serde_json with a duplicate-key check): duplicate keys (compared
//! case-insensitively), invalid UTF-8, control bytes in strings, lone
//! surrogate escapes, numbers outside JSON's grammar or beyond `f64`, nesting
//! deeper than [`crate::json::MAX_DEPTH`] and trailing data are errors.
//!
//! Hand-written rather than driven by serde: the body's UTF-8 is checked once,
//! a string without escapes is found with one word-at-a-time scan and lent to
//! the visitor in place, and the path is kept as the visitor gets it. A test
//! runs it side by side with the serde-driven walk it replaced
//! (`stream_oracle`) on generated and mutated bodies: same refusals, same
//! visits in the same order.

use std::borrow::Cow;

use super::fields::Seg;
use crate::json::{KeySet, MAX_DEPTH};

/// What the visitor gets: the text, whether it is a key, and where it is.
pub(crate) type Visit<'f, T> = dyn for<'a> FnMut(&str, bool, &[Seg<'a>]) -> Option<T> + 'f;

/// Why the walk stopped early.
enum Stop<T> {
    /// Not strict JSON.
    Bad,
    /// The visitor's finding.
    Found(T),
}

type Step<T> = Result<(), Stop<T>>;

/// Walks `bytes`; `Ok(Some(_))` is the visitor's first finding, `Err` a body
/// that is not strict JSON.
pub(crate) fn walk<T>(bytes: &[u8], visit: &mut Visit<'_, T>) -> Result<Option<T>, ()> {
    // Invalid UTF-8 is an error where the parser reaches it (a finding
    // before it still wins): the walk reads the valid part, and a body cut
    // short there cannot end well.
    let (text, whole) = match std::str::from_utf8(bytes) {
        Ok(text) => (text, true),
        Err(e) => (std::str::from_utf8(&bytes[..e.valid_up_to()]).map_err(|_| ())?, false),
    };
    let mut w = Walker {
        text,
        b: text.as_bytes(),
        pos: 0,
        path: Vec::new(),
        visit,
    };
    w.ws();
    match w.value(0) {
        Ok(()) => {}
        Err(Stop::Found(t)) => return Ok(Some(t)),
        Err(Stop::Bad) => return Err(()),
    }
    w.ws();
    if w.pos != w.b.len() || !whole {
        return Err(());
    }
    Ok(None)
}

struct Walker<'a, 'v, 'f, T> {
    text: &'a str,
    b: &'a [u8],
    pos: usize,
    /// Keys (borrowed from the body unless they held an escape) and indices
    /// down to the value being read.
    path: Vec<Seg<'a>>,
    visit: &'v mut Visit<'f, T>,
}

impl<'a, T> Walker<'a, '_, '_, T> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Step<T> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(Stop::Bad)
        }
    }

    /// Hands `text` to the visitor (a key when `is_key`, the path's last
    /// step then being that key).
    fn visit(&mut self, text: &str, is_key: bool) -> Step<T> {
        match (self.visit)(text, is_key, &self.path) {
            Some(found) => Err(Stop::Found(found)),
            None => Ok(()),
        }
    }

    fn value(&mut self, depth: usize) -> Step<T> {
        match self.peek() {
            Some(b'"') => {
                let s = self.string()?;
                self.visit(&s, false)
            }
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(Stop::Bad),
        }
    }

    fn object(&mut self, depth: usize) -> Step<T> {
        if !self.open(b'}', depth)? {
            return Ok(());
        }
        let mut keys = KeySet::default();
        loop {
            if self.peek() != Some(b'"') {
                return Err(Stop::Bad);
            }
            let key = self.string()?;
            if !keys.insert(&key) {
                return Err(Stop::Bad);
            }
            self.path.push(Seg::Key(key));
            let outcome = self.member(depth);
            self.path.pop();
            outcome?;
            if !self.more(b'}')? {
                return Ok(());
            }
        }
    }

    /// The key on top of the path (visited), the colon and the value.
    fn member(&mut self, depth: usize) -> Step<T> {
        if let Some(Seg::Key(key)) = self.path.last() {
            // (The visitor gets the key and the path holding it: a cheap
            // copy of a borrowed key, a rare clone of an escaped one.)
            let key = key.clone();
            self.visit(&key, true)?;
        }
        self.ws();
        self.expect(b':')?;
        self.ws();
        self.value(depth + 1)
    }

    fn array(&mut self, depth: usize) -> Step<T> {
        if !self.open(b']', depth)? {
            return Ok(());
        }
        let mut i = 0;
        loop {
            self.path.push(Seg::Index(i));
            let outcome = self.value(depth + 1);
            self.path.pop();
            outcome?;
            if !self.more(b']')? {
                return Ok(());
            }
            i += 1;
        }
    }

    /// Enters the container at `pos` (nested `depth` deep): false when it is
    /// empty (and consumed with its `close`), true when a member or item
    /// follows.
    fn open(&mut self, close: u8, depth: usize) -> Result<bool, Stop<T>> {
        self.pos += 1;
        if depth >= MAX_DEPTH {
            return Err(Stop::Bad);
        }
        self.ws();
        if self.peek() == Some(close) {
            self.pos += 1;
            return Ok(false);
        }
        Ok(true)
    }

    /// After a member or item: true when a `,` says another follows, false
    /// when `close` ends the container.
    fn more(&mut self, close: u8) -> Result<bool, Stop<T>> {
        self.ws();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                self.ws();
                Ok(true)
            }
            Some(c) if c == close => {
                self.pos += 1;
                Ok(false)
            }
            _ => Err(Stop::Bad),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Step<T> {
        if self.b[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(Stop::Bad)
        }
    }

    /// A number in JSON's grammar. One with a fraction, an exponent or more
    /// digits than a `u64` surely holds is then read as serde_json reads it,
    /// so that one out of `f64`'s range (`1e400`) is refused as it refuses it.
    fn number(&mut self) -> Step<T> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let digits = |w: &mut Self| {
            let from = w.pos;
            while w.peek().is_some_and(|c| c.is_ascii_digit()) {
                w.pos += 1;
            }
            w.pos - from
        };
        let int_start = self.pos;
        let int = digits(self);
        if int == 0 || (int > 1 && self.b[int_start] == b'0') {
            return Err(Stop::Bad);
        }
        let mut plain = int <= 18;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if digits(self) == 0 {
                return Err(Stop::Bad);
            }
            plain = false;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if digits(self) == 0 {
                return Err(Stop::Bad);
            }
            plain = false;
        }
        if plain || serde_json::from_str::<f64>(&self.text[start..self.pos]).is_ok() {
            Ok(())
        } else {
            Err(Stop::Bad)
        }
    }

    /// A string at `pos` (its opening quote), borrowed when it holds no
    /// escape.
    fn string(&mut self) -> Result<Cow<'a, str>, Stop<T>> {
        let start = self.pos + 1;
        let at = warden_scan::first_special(&self.b[start..]).map(|n| start + n);
        match at.map(|i| (i, self.b[i])) {
            Some((end, b'"')) => {
                self.pos = end + 1;
                Ok(Cow::Borrowed(&self.text[start..end]))
            }
            Some((first, b'\\')) => self.escaped(start, first).map(Cow::Owned),
            // A control byte, or no closing quote.
            _ => Err(Stop::Bad),
        }
    }

    /// The rest of a string from its first escape at `at`, decoded.
    fn escaped(&mut self, start: usize, mut at: usize) -> Result<String, Stop<T>> {
        let mut out = String::with_capacity(at - start + 16);
        out.push_str(&self.text[start..at]);
        loop {
            // `at` is a backslash.
            let c = match self.b.get(at + 1) {
                Some(b'"') => '"',
                Some(b'\\') => '\\',
                Some(b'/') => '/',
                Some(b'b') => '\u{8}',
                Some(b'f') => '\u{c}',
                Some(b'n') => '\n',
                Some(b'r') => '\r',
                Some(b't') => '\t',
                Some(b'u') => {
                    let (c, used) = self.unicode(at)?;
                    out.push(c);
                    at += used;
                    at = self.plain_run(at, &mut out)?;
                    if self.b[at] == b'"' {
                        self.pos = at + 1;
                        return Ok(out);
                    }
                    continue;
                }
                _ => return Err(Stop::Bad),
            };
            out.push(c);
            at = self.plain_run(at + 2, &mut out)?;
            if self.b[at] == b'"' {
                self.pos = at + 1;
                return Ok(out);
            }
        }
    }

    /// Copies the unescaped run from `from` to the next quote or backslash
    /// into `out`, and says where that is; a control byte or the end of the
    /// body is an error.
    fn plain_run(&self, from: usize, out: &mut String) -> Result<usize, Stop<T>> {
        let rest = self.b.get(from..).ok_or(Stop::Bad)?;
        let n = warden_scan::first_special(rest).ok_or(Stop::Bad)?;
        let at = from + n;
        if self.b[at] < 0x20 {
            return Err(Stop::Bad);
        }
        out.push_str(&self.text[from..at]);
        Ok(at)
    }

    /// A `\uXXXX` escape at `at` (a surrogate pair takes two): the character
    /// and the bytes used. A lone surrogate is an error, as for serde_json.
    fn unicode(&self, at: usize) -> Result<(char, usize), Stop<T>> {
        let hex4 = |i: usize| -> Result<u32, Stop<T>> {
            let digits = self.b.get(i..i + 4).ok_or(Stop::Bad)?;
            digits.iter().try_fold(0u32, |acc, &d| {
                let v = char::from(d).to_digit(16).ok_or(Stop::Bad)?;
                Ok(acc * 16 + v)
            })
        };
        let first = hex4(at + 2)?;
        match first {
            0xD800..=0xDBFF => {
                if self.b.get(at + 6) != Some(&b'\\') || self.b.get(at + 7) != Some(&b'u') {
                    return Err(Stop::Bad);
                }
                let second = hex4(at + 8)?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(Stop::Bad);
                }
                let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                char::from_u32(code).map(|c| (c, 12)).ok_or(Stop::Bad)
            }
            _ => char::from_u32(first).map(|c| (c, 6)).ok_or(Stop::Bad),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

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
