//! One structure-aware pass over a JSON body: the text detectors on the raw
//! body, and per leaf, the field-name rules (secret fields, high-entropy
//! values in key-like fields).
//!
//! The walk feeds every string (keys too) and bare token to the detectors'
//! gate pass (`gate::Pass`) as it finds their ends, so the body is read
//! once; only the expressions whose gates opened then run over it.
//!
//! The walk is a tolerant tokenizer over the bytes (no tree is built): it
//! tracks whether a string is a key or a value, the nearest key of every
//! leaf, and whether a leaf sits under a secret-named field (`"credentials":
//! {"user": …}` counts for all its leaves). Raw string contents are what the
//! detectors see: a value hidden behind `\u` escapes is not decoded (the
//! upstream is not the adversary here; documented).

use crate::{Categories, Category, Detector, Finding, detect, gate, names};

/// A finding, and whether its value is a bare JSON token (a number or a
/// literal) that a replacement must quote to keep the JSON valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// What and where.
    pub finding: Finding,
    /// True when the range is (inside) a bare token, not a string.
    pub bare: bool,
}

/// What a key says about its values, decided once when the key is read.
#[derive(Debug, Clone, Copy, Default)]
struct KeyKind {
    secret: bool,
    key_like: bool,
    /// `name`/`key`/…: the member that names a name–value pair.
    pair_name: bool,
    /// `value`/`val`: the member that holds a name–value pair's value.
    pair_value: bool,
}

/// Keys longer than this are not read for meaning (no secret field has one).
const MAX_KEY: usize = 128;

fn kind(key: &str, structural: bool) -> KeyKind {
    if !structural || key.len() > MAX_KEY {
        return KeyKind::default();
    }
    let lower = |words: &[&str]| words.iter().any(|w| key.eq_ignore_ascii_case(w));
    let pair = KeyKind {
        pair_name: lower(&["name", "key", "variable", "parameter", "param"]),
        pair_value: lower(&["value", "val"]),
        ..KeyKind::default()
    };
    if !names::maybe_telling(key) {
        return pair;
    }
    KeyKind {
        secret: names::is_secret_field(key),
        key_like: names::is_key_like(key),
        ..pair
    }
}

/// A key read before in this body: its text, what it says, and its first
/// eight bytes (zero-padded) as a word, to try it in place with one compare.
struct Known<'a> {
    text: &'a str,
    kind: KeyKind,
    head: u64,
}

impl<'a> Known<'a> {
    fn new(text: &'a str, kind: KeyKind) -> Self {
        Known {
            text,
            kind,
            head: warden_scan::head(text.as_bytes()),
        }
    }

    /// Where the closing quote is when the string whose contents start at
    /// `b[start]` is this key written plainly.
    #[inline]
    fn at(&self, b: &[u8], start: usize) -> Option<usize> {
        warden_scan::name_then_quote(b, start, self.text.as_bytes(), self.head).then_some(start + self.text.len())
    }
}

struct Frame {
    object: bool,
    /// The kind of the key this container is the value of (arrays pass it to items).
    key: KeyKind,
    secret: bool,
    /// A name–value pair object (`{"name": "DB_PASSWORD", "value": "…"}`):
    /// its name means a secret.
    pair_secret: bool,
    /// Its `value` leaves (every one, if the name repeats), decided when
    /// the object closes (the name may come after them).
    pair_values: Vec<(std::ops::Range<usize>, bool)>,
}

/// The findings of `cats` in the JSON `body`, in order, not overlapping;
/// `None` when the body is not well-formed enough to walk (the caller then
/// treats it as text).
pub fn scan(body: &str, cats: Categories) -> Option<Vec<Hit>> {
    scan_with(&detect::ALL, body, cats)
}

/// [`scan`] with a [`Detector`] compiled for the categories in use.
pub fn scan_with(detector: &Detector, body: &str, cats: Categories) -> Option<Vec<Hit>> {
    let Walked {
        mut hits,
        strings,
        seen,
    } = walk(body, cats)?;
    let b = body.as_bytes();
    let mut text = Vec::new();
    detector.find_seen(
        body,
        cats.without(Category::SecretField).without(Category::HighEntropy),
        seen,
        0,
        &mut text,
    );
    for mut f in text {
        let quoted = in_any(&strings, f.range.start);
        if !quoted && f.range.start > 0 && b[f.range.start - 1] == b'-' {
            // `-4111…`: the replacement (a string) takes the sign's place too.
            f.range.start -= 1;
        }
        hits.push(Hit {
            finding: f,
            bare: !quoted,
        });
    }
    hits.sort_by_key(|h| (h.finding.range.start, std::cmp::Reverse(h.finding.range.end)));
    let mut out: Vec<Hit> = Vec::with_capacity(hits.len());
    for h in hits {
        if out
            .last()
            .is_none_or(|last| h.finding.range.start >= last.finding.range.end)
        {
            out.push(h);
        }
    }
    Some(out)
}

/// What the walk over a body found.
pub(crate) struct Walked {
    /// The field-name rules' findings.
    hits: Vec<Hit>,
    /// String value ranges, in order, to tell quoted text findings from bare.
    strings: Vec<std::ops::Range<usize>>,
    /// The text detectors' gate pass over the body.
    pub(crate) seen: gate::Seen,
}

/// The structure-aware walk; `None` when the body is not well-formed
/// enough to walk.
pub(crate) fn walk(body: &str, cats: Categories) -> Option<Walked> {
    let b = body.as_bytes();
    let structural = cats.contains(Category::SecretField) || cats.contains(Category::HighEntropy);
    let mut hits: Vec<Hit> = Vec::new();
    // (Sized for a string every 32 bytes, about what API bodies hold: no
    // regrowing on the way.)
    let mut strings: Vec<std::ops::Range<usize>> = Vec::with_capacity(b.len() / 32);
    let mut stack: Vec<Frame> = Vec::new();
    let mut key = KeyKind::default();
    let mut known: Vec<Known<'_>> = Vec::new();
    // The index in `known` of the last key read.
    let mut last_known = usize::MAX - 1;
    let mut expect_key = false;
    let mut i = 0;
    let mut saw_value = false;
    // The text detectors' gate pass, fed every string and bare token (see
    // `gate::Pass`): the body is read once.
    let mut pass = gate::Pass::default();
    while i < b.len() {
        // Strings first: they are most of the tokens (the match below
        // compiles to a jump table).
        if b[i] == b'"' {
            let start = i + 1;
            // Keys repeat (every row of a list has the same ones, in the
            // same order): each distinct key is classified once per
            // body, and the one after the last key is tried first, in
            // place. What a key gives the gate pass depends on its raw
            // bytes alone (every gate that looks back or ahead needs
            // letters, digits or spaces there, and the quotes around a
            // key are neither), so a repeat is not read again.
            if expect_key
                && let Some(k) = known.get(last_known + 1)
                && let Some(end) = k.at(b, start)
            {
                key = k.kind;
                last_known += 1;
                i = end + 1;
                continue;
            }
            // To the closing quote, skipping escapes (and control
            // bytes, which a string should not hold but this walk
            // tolerates), with the gate pass reading it on the way.
            let j = pass.string(b, start)?;
            let text = &body[start..j];
            if expect_key {
                let found = known.iter().position(|k| k.text == text);
                key = match found {
                    Some(at) => {
                        last_known = at;
                        known[at].kind
                    }
                    None => {
                        let fresh = kind(text, structural);
                        if known.len() < 64 {
                            known.push(Known::new(text, fresh));
                            last_known = known.len() - 1;
                        }
                        fresh
                    }
                };
            } else {
                strings.push(start..j);
                leaf(text, start, key, &stack, cats, structural, false, &mut hits);
                pair_member(text, start, key, &mut stack, false);
                saw_value = true;
            }
            i = j + 1;
            continue;
        }
        match b[i] {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'{' | b'[' => {
                let parent_secret = stack.last().is_some_and(|f| f.secret);
                let secret = parent_secret || key.secret;
                stack.push(Frame {
                    object: b[i] == b'{',
                    key,
                    secret,
                    pair_secret: false,
                    pair_values: Vec::new(),
                });
                expect_key = b[i] == b'{';
                saw_value = true;
                i += 1;
            }
            b'}' | b']' => {
                let frame = stack.pop()?;
                if frame.object != (b[i] == b'}') {
                    return None;
                }
                if frame.pair_secret && cats.contains(Category::SecretField) && !frame.secret {
                    for (range, bare) in frame.pair_values {
                        hits.push(Hit {
                            finding: Finding {
                                category: Category::SecretField,
                                range,
                            },
                            bare,
                        });
                    }
                }
                key = stack.last().map_or(
                    KeyKind::default(),
                    |f| if f.object { KeyKind::default() } else { f.key },
                );
                expect_key = false;
                i += 1;
            }
            b',' => {
                let top = stack.last()?;
                expect_key = top.object;
                if !top.object {
                    key = top.key;
                }
                i += 1;
            }
            b':' => {
                expect_key = false;
                i += 1;
            }
            _ => {
                let start = i;
                while i < b.len() && !matches!(b[i], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r' | b':') {
                    i += 1;
                }
                pass.feed(b, start, i);
                leaf(&body[start..i], start, key, &stack, cats, structural, true, &mut hits);
                pair_member(&body[start..i], start, key, &mut stack, true);
                saw_value = true;
            }
        }
    }
    if !stack.is_empty() || !saw_value {
        return None;
    }
    Some(Walked {
        hits,
        strings,
        seen: pass.seen(),
    })
}

/// Notes a leaf that is the name or the value of a name–value pair.
fn pair_member(text: &str, start: usize, key: KeyKind, stack: &mut [Frame], bare: bool) {
    if !key.pair_name && !key.pair_value {
        return;
    }
    let Some(frame) = stack.last_mut().filter(|f| f.object) else {
        return;
    };
    // Only an identifier names a setting (`DB_PASSWORD`, `db.password`,
    // `api-key`); prose (`"Password manager"`) names a product.
    let identifier = |t: &str| {
        t.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
    };
    if key.pair_name && !bare && text.len() <= MAX_KEY && identifier(text) && names::is_secret_field(text) {
        frame.pair_secret = true;
    } else if key.pair_value && !text.is_empty() && !(bare && text == "null") {
        frame.pair_values.push((start..start + text.len(), bare));
    }
}

fn in_any(ranges: &[std::ops::Range<usize>], at: usize) -> bool {
    let i = ranges.partition_point(|r| r.end < at);
    ranges.get(i).is_some_and(|r| r.start <= at && at <= r.end)
}

#[allow(clippy::too_many_arguments)]
fn leaf(
    text: &str,
    start: usize,
    key: KeyKind,
    stack: &[Frame],
    cats: Categories,
    structural: bool,
    bare: bool,
    hits: &mut Vec<Hit>,
) {
    if !structural || text.is_empty() || (bare && text == "null") {
        return;
    }
    let range = start..start + text.len();
    let secret = stack.last().is_some_and(|f| f.secret) || key.secret;
    if secret && cats.contains(Category::SecretField) {
        hits.push(Hit {
            finding: Finding {
                category: Category::SecretField,
                range,
            },
            bare,
        });
    } else if !bare && cats.contains(Category::HighEntropy) && key.key_like && names::high_entropy(text) {
        hits.push(Hit {
            finding: Finding {
                category: Category::HighEntropy,
                range,
            },
            bare,
        });
    }
}
