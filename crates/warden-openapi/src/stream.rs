//! Response filtering in one pass over the JSON bytes, with a compiled
//! [`FilterPlan`]: no document tree is built. Kept values are copied as they
//! came (numbers and escapes untouched); an object or array that loses a
//! member is written without insignificant whitespace. A body that is not
//! one valid JSON value (bad syntax, invalid UTF-8, nesting deeper than 128,
//! trailing data) is an error, as for a parser.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::filter::Removed;
use crate::plan::{Extra, FilterPlan, NodeId, ObjectRules};
use crate::shown;

/// Deepest nesting a body may have (about serde_json's limit); values are
/// filtered at every depth up to it, a deeper body is refused, never passed
/// on unfiltered.
const MAX_NESTING: usize = 128;
/// Findings recorded per kind (the rest are removed all the same): a body
/// of many small undeclared members costs no memory per member.
pub const MAX_FINDINGS: usize = 32;

/// The body is not one valid JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not valid JSON (at byte {0})")]
pub struct NotJson(pub usize);

/// A filtered body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filtered {
    /// The new body, when anything was removed; `None` keeps the original.
    pub body: Option<Vec<u8>>,
    /// What was found.
    pub removed: Removed,
}

impl FilterPlan {
    /// Filters `json` against the schema `root` (from [`FilterPlan::add`]):
    /// properties needing a scope the caller lacks are removed, and
    /// undeclared ones too when `drop_undeclared`.
    pub fn filter(
        &self,
        root: NodeId,
        json: &[u8],
        scopes: &[&str],
        drop_undeclared: bool,
    ) -> Result<Filtered, NotJson> {
        let text = std::str::from_utf8(json).map_err(|e| NotJson(e.valid_up_to()))?;
        let mut w = Walk {
            plan: self,
            text,
            src: json,
            pos: 0,
            out: Vec::with_capacity(json.len()),
            path: Vec::with_capacity(16),
            removed: Removed::default(),
            scopes,
            drop_undeclared,
            cut: false,
        };
        w.ws();
        w.value(Some(root), 0, true)?;
        w.ws();
        if w.pos != json.len() {
            return Err(NotJson(w.pos));
        }
        Ok(Filtered {
            body: w.cut.then_some(w.out),
            removed: w.removed,
        })
    }
}

enum Seg<'a> {
    Key(Cow<'a, str>),
    Index(usize),
}

struct Walk<'p, 'a> {
    plan: &'p FilterPlan,
    text: &'a str,
    src: &'a [u8],
    pos: usize,
    out: Vec<u8>,
    /// Where the walk is, for the pointers of what it removes.
    path: Vec<Seg<'a>>,
    removed: Removed,
    scopes: &'p [&'p str],
    drop_undeclared: bool,
    /// Something was removed: `out` is the new body.
    cut: bool,
}

impl<'p, 'a> Walk<'p, 'a> {
    fn err<T>(&self) -> Result<T, NotJson> {
        Err(NotJson(self.pos))
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), NotJson> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            self.err()
        }
    }

    /// One value, filtered against `node` (`None`: kept whole), written to
    /// `out` when `emit`.
    fn value(&mut self, node: Option<NodeId>, depth: usize, emit: bool) -> Result<(), NotJson> {
        if depth > MAX_NESTING {
            return self.err();
        }
        let plan = self.plan;
        let start = self.pos;
        match self.peek() {
            Some(b'{') => match node.and_then(|n| plan.object(n)) {
                Some(rules) => return self.object(rules, depth, emit),
                None => self.skip_container(depth)?,
            },
            Some(b'[') => match node.and_then(|n| plan.items(n)) {
                Some(items) => return self.array(items, depth, emit),
                None => self.skip_container(depth)?,
            },
            Some(b'"') => {
                self.string()?;
            }
            Some(b't') => self.literal(b"true")?,
            Some(b'f') => self.literal(b"false")?,
            Some(b'n') => self.literal(b"null")?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            _ => return self.err(),
        }
        if emit {
            self.out.extend_from_slice(&self.src[start..self.pos]);
        }
        Ok(())
    }

    fn object(&mut self, rules: &'p ObjectRules, depth: usize, emit: bool) -> Result<(), NotJson> {
        self.pos += 1;
        if emit {
            self.out.push(b'{');
        }
        let mut first = true;
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            if emit {
                self.out.push(b'}');
            }
            return Ok(());
        }
        loop {
            self.ws();
            let key_start = self.pos;
            let escaped = self.string()?;
            let raw = &self.text[key_start..self.pos];
            // A name that does not decode (a lone surrogate escape, which
            // JavaScript and Python parsers accept) matches no declaration.
            let name: Option<Cow<'a, str>> = if escaped {
                serde_json::from_str::<String>(raw).ok().map(Cow::Owned)
            } else {
                Some(Cow::Borrowed(&raw[1..raw.len() - 1]))
            };
            self.ws();
            self.expect(b':')?;
            self.ws();
            // Which schema the value gets, or why it goes.
            let shown_name = name.as_deref().unwrap_or("");
            let (keep, child) = match name.as_deref().and_then(|n| rules.find(n)) {
                Some(p) if p.permitted(self.scopes) => (true, Some(p.node)),
                Some(_) => {
                    self.note(shown_name, true);
                    (false, None)
                }
                None => match rules.extra {
                    Extra::Any => (true, None),
                    Extra::Schema(s) => (true, Some(s)),
                    Extra::Nothing => {
                        self.note(shown_name, false);
                        (!self.drop_undeclared, None)
                    }
                },
            };
            let emit_member = emit && keep;
            if emit_member {
                if !first {
                    self.out.push(b',');
                }
                self.out.extend_from_slice(raw.as_bytes());
                self.out.push(b':');
                first = false;
            }
            if !keep {
                self.cut = true;
            }
            self.path.push(Seg::Key(name.unwrap_or_default()));
            self.value(child, depth + 1, emit_member)?;
            self.path.pop();
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return self.err(),
            }
        }
        if emit {
            self.out.push(b'}');
        }
        Ok(())
    }

    fn array(&mut self, items: NodeId, depth: usize, emit: bool) -> Result<(), NotJson> {
        self.pos += 1;
        if emit {
            self.out.push(b'[');
        }
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
        } else {
            let mut i = 0;
            loop {
                self.ws();
                if emit && i > 0 {
                    self.out.push(b',');
                }
                self.path.push(Seg::Index(i));
                self.value(Some(items), depth + 1, emit)?;
                self.path.pop();
                self.ws();
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b']') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return self.err(),
                }
                i += 1;
            }
        }
        if emit {
            self.out.push(b']');
        }
        Ok(())
    }

    /// Records a removal (or, for an undeclared property kept, a finding)
    /// at the current path plus `name`.
    fn note(&mut self, name: &str, scoped: bool) {
        let list = if scoped {
            &self.removed.scoped
        } else {
            &self.removed.undeclared
        };
        if list.len() >= MAX_FINDINGS {
            return;
        }
        let mut at = String::with_capacity(64);
        for seg in &self.path {
            at.push('/');
            match seg {
                Seg::Key(k) => at.push_str(shown(k)),
                Seg::Index(i) => {
                    let _ = write!(at, "{i}");
                }
            }
        }
        at.push('/');
        at.push_str(shown(name));
        if scoped {
            self.removed.scoped.push(at);
        } else {
            self.removed.undeclared.push(at);
        }
    }

    /// Checks a string; true when it holds an escape.
    fn string(&mut self) -> Result<bool, NotJson> {
        self.expect(b'"')?;
        let mut escaped = false;
        loop {
            let rest = &self.src[self.pos..];
            let Some(n) = memchr::memchr2(b'"', b'\\', rest) else {
                self.pos = self.src.len();
                return self.err();
            };
            // A raw control character is not allowed in a string (checked
            // without branching per byte).
            if rest[..n].iter().fold(false, |bad, &b| bad | (b < 0x20)) {
                self.pos += rest.iter().position(|&b| b < 0x20).unwrap_or(0);
                return self.err();
            }
            self.pos += n + 1;
            if rest[n] == b'"' {
                return Ok(escaped);
            }
            escaped = true;
            match self.peek() {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.pos += 1,
                Some(b'u') => {
                    let hex = self.src.get(self.pos + 1..self.pos + 5);
                    if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                        return self.err();
                    }
                    self.pos += 5;
                }
                _ => return self.err(),
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), NotJson> {
        if self.src[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            self.err()
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Result<(), NotJson> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return self.err(),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.need_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.need_digits()?;
        }
        Ok(())
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
    }

    fn need_digits(&mut self) -> Result<(), NotJson> {
        if !matches!(self.peek(), Some(b'0'..=b'9')) {
            return self.err();
        }
        self.digits();
        Ok(())
    }

    /// Checks an object or array that is kept whole.
    fn skip_container(&mut self, depth: usize) -> Result<(), NotJson> {
        let close = if self.peek() == Some(b'{') { b'}' } else { b']' };
        self.pos += 1;
        self.ws();
        if self.peek() == Some(close) {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.ws();
            if close == b'}' {
                self.string()?;
                self.ws();
                self.expect(b':')?;
                self.ws();
            }
            self.value(None, depth + 1, false)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b) if b == close => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return self.err(),
            }
        }
    }
}
