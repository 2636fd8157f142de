//! One strict pass over a JSON body, reporting what it reads to a sink
//! ([`Events`]) as it reads it: the injection scan takes every key and string
//! leaf with its path and stops at its first finding
//! (`injection::stream`); the contract builds the document
//! ([`crate::json_tree`]).
//!
//! As strict as [`crate::json::parse_strict`] (serde_json with a
//! duplicate-key check): duplicate keys (compared case-insensitively),
//! invalid UTF-8, control bytes in strings, lone surrogate escapes, numbers
//! outside JSON's grammar or beyond `f64`, nesting deeper than
//! [`crate::json::MAX_DEPTH`] and trailing data are errors. Tests run both
//! sinks side by side with serde-driven equivalents on generated and mutated
//! bodies.
//!
//! Hand-written rather than driven by serde: the body's UTF-8 is checked once
//! and a string without escapes is found with one word-at-a-time scan and
//! lent to the sink in place.

use std::borrow::Cow;

use crate::json::{KeySet, MAX_DEPTH};

/// A value that is neither a string nor a container.
#[derive(Clone, Copy)]
pub(crate) enum Scalar<'a> {
    /// A number in JSON's grammar and within `f64`'s range, as written.
    Number(&'a str),
    Bool(bool),
    Null,
}

/// What a walk reports, in document order. `Err` from a sink stops the walk
/// with that value.
pub(crate) trait Events<'a> {
    type Stop;

    /// An object (`true`) or an array begins.
    fn open(&mut self, _object: bool) {}
    /// The innermost open object (`true`) or array ends.
    fn close(&mut self, _object: bool) {}
    /// A member's key (no other key of its object folds to it); its value
    /// follows, then [`Events::member_end`].
    fn key(&mut self, key: Cow<'a, str>) -> Result<(), Self::Stop>;
    fn member_end(&mut self) {}
    /// An array's item `index` follows, then [`Events::item_end`].
    fn item(&mut self, _index: usize) {}
    fn item_end(&mut self) {}
    fn string(&mut self, text: Cow<'a, str>) -> Result<(), Self::Stop>;
    fn scalar(&mut self, scalar: Scalar<'a>) -> Result<(), Self::Stop>;
}

/// Why the walk stopped early.
enum Stop<T> {
    /// Not strict JSON.
    Bad,
    /// The sink's.
    Sink(T),
}

type Step<T> = Result<(), Stop<T>>;

/// Walks `bytes` into `sink`; `Ok(Some(_))` is the sink's stop, `Err` a body
/// that is not strict JSON.
pub(crate) fn walk<'a, E: Events<'a>>(bytes: &'a [u8], sink: &mut E) -> Result<Option<E::Stop>, ()> {
    // Invalid UTF-8 is an error where the parser reaches it (a stop before
    // it still wins): the walk reads the valid part, and a body cut short
    // there cannot end well.
    let (text, whole) = match std::str::from_utf8(bytes) {
        Ok(text) => (text, true),
        Err(e) => (std::str::from_utf8(&bytes[..e.valid_up_to()]).map_err(|_| ())?, false),
    };
    let mut w = Walker {
        text,
        b: text.as_bytes(),
        pos: 0,
        sink,
    };
    w.ws();
    match w.value(0) {
        Ok(()) => {}
        Err(Stop::Sink(t)) => return Ok(Some(t)),
        Err(Stop::Bad) => return Err(()),
    }
    w.ws();
    if w.pos != w.b.len() || !whole {
        return Err(());
    }
    Ok(None)
}

struct Walker<'a, 's, E> {
    text: &'a str,
    b: &'a [u8],
    pos: usize,
    sink: &'s mut E,
}

impl<'a, E: Events<'a>> Walker<'a, '_, E> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Step<E::Stop> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(Stop::Bad)
        }
    }

    fn value(&mut self, depth: usize) -> Step<E::Stop> {
        match self.peek() {
            Some(b'"') => {
                let s = self.string()?;
                self.sink.string(s).map_err(Stop::Sink)
            }
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b't') => self.literal(b"true", Scalar::Bool(true)),
            Some(b'f') => self.literal(b"false", Scalar::Bool(false)),
            Some(b'n') => self.literal(b"null", Scalar::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(Stop::Bad),
        }
    }

    fn object(&mut self, depth: usize) -> Step<E::Stop> {
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
            self.sink.key(key).map_err(Stop::Sink)?;
            self.ws();
            self.expect(b':')?;
            self.ws();
            self.value(depth + 1)?;
            self.sink.member_end();
            if !self.more(b'}')? {
                return Ok(());
            }
        }
    }

    fn array(&mut self, depth: usize) -> Step<E::Stop> {
        if !self.open(b']', depth)? {
            return Ok(());
        }
        let mut i = 0;
        loop {
            self.sink.item(i);
            self.value(depth + 1)?;
            self.sink.item_end();
            if !self.more(b']')? {
                return Ok(());
            }
            i += 1;
        }
    }

    /// Enters the container at `pos` (nested `depth` deep): false when it is
    /// empty (and consumed with its `close`), true when a member or item
    /// follows.
    fn open(&mut self, close: u8, depth: usize) -> Result<bool, Stop<E::Stop>> {
        self.pos += 1;
        if depth >= MAX_DEPTH {
            return Err(Stop::Bad);
        }
        let object = close == b'}';
        self.sink.open(object);
        self.ws();
        if self.peek() == Some(close) {
            self.pos += 1;
            self.sink.close(object);
            return Ok(false);
        }
        Ok(true)
    }

    /// After a member or item: true when a `,` says another follows, false
    /// when `close` ends the container.
    fn more(&mut self, close: u8) -> Result<bool, Stop<E::Stop>> {
        self.ws();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                self.ws();
                Ok(true)
            }
            Some(c) if c == close => {
                self.pos += 1;
                self.sink.close(close == b'}');
                Ok(false)
            }
            _ => Err(Stop::Bad),
        }
    }

    fn literal(&mut self, word: &[u8], scalar: Scalar<'a>) -> Step<E::Stop> {
        if self.b[self.pos..].starts_with(word) {
            self.pos += word.len();
            self.sink.scalar(scalar).map_err(Stop::Sink)
        } else {
            Err(Stop::Bad)
        }
    }

    /// A number in JSON's grammar. One with a fraction, an exponent or more
    /// digits than a `u64` surely holds is then read as serde_json reads it,
    /// so that one out of `f64`'s range (`1e400`) is refused as it refuses it.
    fn number(&mut self) -> Step<E::Stop> {
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
        let text = &self.text[start..self.pos];
        if plain || serde_json::from_str::<f64>(text).is_ok() {
            self.sink.scalar(Scalar::Number(text)).map_err(Stop::Sink)
        } else {
            Err(Stop::Bad)
        }
    }

    /// A string at `pos` (its opening quote), borrowed when it holds no
    /// escape. (Inlined into its two callers: it runs for every key and
    /// string, and a call's register saves cost as much as a short string's
    /// scan.)
    #[inline(always)]
    fn string(&mut self) -> Result<Cow<'a, str>, Stop<E::Stop>> {
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
    fn escaped(&mut self, start: usize, mut at: usize) -> Result<String, Stop<E::Stop>> {
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
    fn plain_run(&self, from: usize, out: &mut String) -> Result<usize, Stop<E::Stop>> {
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
    fn unicode(&self, at: usize) -> Result<(char, usize), Stop<E::Stop>> {
        let hex4 = |i: usize| -> Result<u32, Stop<E::Stop>> {
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
