//! Response filtering in one pass over the JSON bytes, with a compiled
//! [`FilterPlan`]: no document tree is built. A filtered body is the
//! original with the removed members (and the comma that separated each)
//! cut out: everything kept, whitespace included, stays byte for byte. A
//! body that is not
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
/// Object schemas per body whose member order is remembered.
const MAX_ORDERS: usize = 16;
/// In a remembered order: a member that is no declared property.
const UNDECLARED: u32 = u32::MAX;

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
        self.filter_noting(root, json, scopes, drop_undeclared, MAX_FINDINGS)
    }

    /// [`FilterPlan::filter`], recording at most `max_findings` (at most
    /// [`MAX_FINDINGS`]) pointers per kind: a caller that only needs to
    /// know whether anything was found asks for one.
    pub fn filter_noting(
        &self,
        root: NodeId,
        json: &[u8],
        scopes: &[&str],
        drop_undeclared: bool,
        max_findings: usize,
    ) -> Result<Filtered, NotJson> {
        let text = std::str::from_utf8(json).map_err(|e| NotJson(e.valid_up_to()))?;
        let mut w = Walk {
            plan: self,
            text,
            src: json,
            pos: 0,
            cuts: Vec::new(),
            removed: Removed::default(),
            scopes,
            drop_undeclared,
            max_findings: max_findings.min(MAX_FINDINGS),
            orders: Vec::new(),
        };
        w.ws();
        w.value(Some(root), None, 0)?;
        w.ws();
        if w.pos != json.len() {
            return Err(NotJson(w.pos));
        }
        let body = (!w.cuts.is_empty()).then(|| {
            let mut out = Vec::with_capacity(json.len());
            let mut from = 0;
            for (a, b) in &w.cuts {
                out.extend_from_slice(&json[from..*a]);
                from = *b;
            }
            out.extend_from_slice(&json[from..]);
            out
        });
        Ok(Filtered {
            body,
            removed: w.removed,
        })
    }
}

/// A step of the path to where the walk is: a property name (its raw
/// bytes in the body, quotes included) or an array index.
#[derive(Clone, Copy)]
enum Seg {
    Key(usize, usize),
    Index(usize),
}

/// Where a value is: its step, and the container's place (`None` at the
/// root). Each level keeps its step on the stack and hands its children a
/// reference: nothing is built per member, only when a pointer is written.
#[derive(Clone, Copy)]
struct At<'x> {
    up: Option<&'x At<'x>>,
    seg: Seg,
}

struct Walk<'p, 'a> {
    plan: &'p FilterPlan,
    text: &'a str,
    src: &'a [u8],
    pos: usize,
    /// Byte ranges of the body to leave out, in order, not overlapping:
    /// what is removed, with the comma that separated it.
    cuts: Vec<(usize, usize)>,
    removed: Removed,
    scopes: &'p [&'p str],
    drop_undeclared: bool,
    max_findings: usize,
    /// Per object schema met, the members of its first object in order (an
    /// index into its `props`, or [`UNDECLARED`]).
    orders: Vec<(NodeId, Vec<u32>)>,
}

/// The name a raw (quoted) JSON string stands for; `None` when it does not
/// decode (a lone surrogate escape, which JavaScript and Python parsers
/// accept).
#[inline]
fn decode(raw: &str, escaped: bool) -> Option<Cow<'_, str>> {
    if escaped {
        serde_json::from_str::<String>(raw).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(&raw[1..raw.len() - 1]))
    }
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

    /// A member's or item's value at `here`: a string (kept whole whatever
    /// its schema) is read directly, anything else through [`Walk::value`].
    #[inline]
    fn child(&mut self, node: Option<NodeId>, here: &At<'_>, depth: usize) -> Result<(), NotJson> {
        if depth <= MAX_NESTING && self.peek() == Some(b'"') {
            self.string().map(|_| ())
        } else {
            self.value(node, Some(here), depth)
        }
    }

    /// One value at `at`, filtered against `node` (`None`: kept whole).
    fn value(&mut self, node: Option<NodeId>, at: Option<&At<'_>>, depth: usize) -> Result<(), NotJson> {
        if depth > MAX_NESTING {
            return self.err();
        }
        let plan = self.plan;
        match self.peek() {
            Some(b'{') => match node.and_then(|n| plan.object(n).map(|r| (n, r))) {
                Some((n, rules)) => self.object(n, rules, at, depth),
                None => self.skip_container(depth),
            },
            Some(b'[') => match node.and_then(|n| plan.items(n)) {
                Some(items) => self.array(items, at, depth),
                None => self.skip_container(depth),
            },
            Some(b'"') => self.string().map(|_| ()),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => self.err(),
        }
    }

    fn object(
        &mut self,
        node: NodeId,
        rules: &'p ObjectRules,
        at: Option<&At<'_>>,
        depth: usize,
    ) -> Result<(), NotJson> {
        self.pos += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        // The order of the first object of this schema in the body: this
        // one records it, or tries its members in place as that order says.
        let order = self.orders.iter().position(|(n, _)| *n == node);
        let recording = order.is_none() && self.orders.len() < MAX_ORDERS;
        if recording {
            self.orders.push((node, Vec::new()));
        }
        let order = order.or(recording.then(|| self.orders.len() - 1));
        // Some member before this one is kept (a removed member then goes
        // with the comma before it, else with the comma after it).
        let mut kept_before = false;
        // Where the previous member's value ended.
        let mut prev_end = 0;
        let mut k = 0;
        loop {
            self.ws();
            let key_start = self.pos;
            let (name, prop) = match self.in_place(rules, order, k) {
                Some(p) => (Some(Cow::Borrowed(&*rules.props[p].name)), Some(p)),
                None => {
                    let escaped = self.string()?;
                    let name = decode(&self.text[key_start..self.pos], escaped);
                    let p = name.as_deref().and_then(|n| rules.position(n));
                    (name, p)
                }
            };
            let key_end = self.pos;
            if let Some(o) = order.filter(|_| recording) {
                self.orders[o].1.push(prop.map_or(UNDECLARED, |i| i as u32));
            }
            k += 1;
            self.ws();
            self.expect(b':')?;
            self.ws();
            // Which schema the value gets, or why it goes.
            let (keep, child) = match prop.map(|i| &rules.props[i]) {
                Some(p) if p.permitted(self.scopes) => (true, Some(p.node)),
                Some(_) => {
                    self.note(at, name.as_deref(), true);
                    (false, None)
                }
                None => match &rules.extra {
                    Extra::Any => (true, None),
                    Extra::Schema(s, needs) if crate::plan::permitted(needs, self.scopes) => (true, Some(*s)),
                    Extra::Schema(..) => {
                        self.note(at, name.as_deref(), true);
                        (false, None)
                    }
                    Extra::Nothing => {
                        self.note(at, name.as_deref(), false);
                        (!self.drop_undeclared, None)
                    }
                },
            };
            drop(name);
            let here = At {
                up: at,
                seg: Seg::Key(key_start, key_end),
            };
            self.child(child, &here, depth + 1)?;
            let value_end = self.pos;
            self.ws();
            let last = match self.peek() {
                Some(b',') => false,
                Some(b'}') => true,
                _ => return self.err(),
            };
            self.pos += 1;
            if keep {
                kept_before = true;
            } else if kept_before {
                self.cuts.push((prev_end, value_end));
            } else if last {
                self.cuts.push((key_start, value_end));
            } else {
                self.cuts.push((key_start, self.pos));
            }
            prev_end = value_end;
            if last {
                return Ok(());
            }
        }
    }

    fn array(&mut self, items: NodeId, at: Option<&At<'_>>, depth: usize) -> Result<(), NotJson> {
        self.pos += 1;
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        let mut i = 0;
        loop {
            self.ws();
            let here = At {
                up: at,
                seg: Seg::Index(i),
            };
            self.child(Some(items), &here, depth + 1)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return self.err(),
            }
            i += 1;
        }
    }

    /// The `k`th member's key, read in place when it is the property the
    /// first object of this schema held at that position, written plainly
    /// (the rows of a list hold the same members in the same order): its
    /// index in `rules.props`, with the key consumed. `None` leaves the key
    /// to be read and looked up.
    #[inline]
    fn in_place(&mut self, rules: &ObjectRules, order: Option<usize>, k: usize) -> Option<usize> {
        let at = *self.orders.get(order?)?.1.get(k)?;
        let prop = rules.props.get(at as usize)?;
        let name = prop.name.as_bytes();
        let hit = prop.plain
            && self.peek() == Some(b'"')
            && warden_scan::name_then_quote(self.src, self.pos + 1, name, prop.head);
        hit.then(|| {
            self.pos += name.len() + 2;
            at as usize
        })
    }

    /// Records a removal (or, for an undeclared property kept, a finding)
    /// of the member `name` (`None`: a name that does not decode) of the
    /// object at `at`.
    fn note(&mut self, at: Option<&At<'_>>, name: Option<&str>, scoped: bool) {
        let list = if scoped {
            &self.removed.scoped
        } else {
            &self.removed.undeclared
        };
        if list.len() >= self.max_findings {
            return;
        }
        let mut pointer = String::with_capacity(64);
        self.write_path(at, &mut pointer);
        pointer.push('/');
        pointer.push_str(shown(name.unwrap_or("")));
        if scoped {
            self.removed.scoped.push(pointer);
        } else {
            self.removed.undeclared.push(pointer);
        }
    }

    /// Writes the pointer of `at` (the root's first, so no list is built).
    fn write_path(&self, at: Option<&At<'_>>, out: &mut String) {
        let Some(at) = at else { return };
        self.write_path(at.up, out);
        out.push('/');
        match at.seg {
            Seg::Key(a, b) => {
                let raw = &self.text[a..b];
                let key = decode(raw, raw.contains('\\'));
                out.push_str(shown(key.as_deref().unwrap_or("")));
            }
            Seg::Index(i) => {
                let _ = write!(out, "{i}");
            }
        }
    }

    /// Checks a string; true when it holds an escape.
    #[inline]
    fn string(&mut self) -> Result<bool, NotJson> {
        self.expect(b'"')?;
        // Most strings hold no escape: one scan to the closing quote.
        match warden_scan::first_special(&self.src[self.pos..]) {
            Some(n) if self.src[self.pos + n] == b'"' => {
                self.pos += n + 1;
                Ok(false)
            }
            _ => self.escaped_string(),
        }
    }

    /// The rest of a string that holds an escape (or is broken).
    #[cold]
    #[inline(never)]
    fn escaped_string(&mut self) -> Result<bool, NotJson> {
        loop {
            let Some(n) = warden_scan::first_special(&self.src[self.pos..]) else {
                self.pos = self.src.len();
                return self.err();
            };
            self.pos += n;
            match self.src[self.pos] {
                b'"' => {
                    self.pos += 1;
                    return Ok(true);
                }
                b'\\' => self.pos += 1,
                // A raw control character is not allowed in a string.
                _ => return self.err(),
            }
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
            self.value(None, None, depth + 1)?;
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
