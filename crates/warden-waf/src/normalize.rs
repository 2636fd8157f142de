//! Normalisation: the views of one value the detectors match against.
//!
//! Attackers hide payloads behind encodings a backend later undoes; the
//! detectors must see what the backend will see. Each decoding round undoes
//! percent-encoding (`%27`, `%u0027`), HTML character references (`&#x27;`,
//! `&#39`, `&apos;`), backslash escapes (`\u0027`, `\x27`, `\n`) and overlong
//! UTF-8 (`%c0%ae`); rounds repeat until nothing changes, at most
//! [`MAX_ROUNDS`] times. NUL bytes are dropped (and remembered).

use std::borrow::Cow;

/// Decoding rounds at most (double and triple encoding are caught; a value
/// needing more is unusual enough to be judged as it stands).
pub const MAX_ROUNDS: usize = 4;

/// One value, normalised several ways.
#[derive(Debug, PartialEq, Eq)]
pub struct Views<'a> {
    /// As received (after the transport's own decoding).
    pub raw: &'a str,
    /// Fully decoded, case kept (`raw` itself when nothing decodes).
    pub decoded: Cow<'a, str>,
    /// Decoded, lower-cased, full-width forms folded to ASCII (`raw` itself
    /// when it is ASCII, holds no capital and nothing decodes).
    pub folded: Cow<'a, str>,
    /// `folded` with SQL comments turned into spaces and whitespace collapsed
    /// (`None`: the same as `folded`).
    sql: Option<String>,
    /// `folded` with SQL comments removed outright (`UN/**/ION` → `union`),
    /// whitespace collapsed (`None`: the same as `sql`).
    sql_joined: Option<String>,
    /// Decoding uncovered a CR or LF that the raw value did not carry.
    pub hidden_break: bool,
    /// Decoding uncovered a NUL byte.
    pub hidden_nul: bool,
    /// Which ASCII bytes `folded` contains (bit `b` for byte `b`): detectors
    /// skip themselves in O(1) when the characters they need are absent.
    ascii: u128,
    /// No rule of any set matches `folded` (the union said so): the rule
    /// sets asked about `folded` (or about the SQL or traversal view, when
    /// that is `folded`) answer no without a pass of their own. Set by the
    /// scanner; false until then.
    pub(crate) quiet: bool,
}

impl<'a> Views<'a> {
    /// Normalises `raw`. Most values are text with no escape in it (ASCII,
    /// or ASCII and Latin letters): one pass over the bytes (and a look at
    /// each `%`, `&` or `\` there is) finds that out, and then the views borrow
    /// `raw` (or one lower-cased copy) and reuse that pass's byte set.
    pub fn new(raw: &'a str) -> Self {
        Self::with_bytes(raw, &ByteSet::of(raw.as_bytes()))
    }

    /// [`Views::new`] with the byte set of `raw` already read (the scanner
    /// reads it once for its plain-text test and for this).
    pub(crate) fn with_bytes(raw: &'a str, bytes: &ByteSet) -> Self {
        // (A `%`, `&` or `\` that starts no escape, as in "50% off" or
        // "Tom & Jerry", is literal: nothing decodes.)
        let literal = || !bytes.any(b"%&\\") || first_escape(raw.as_bytes()).is_none();
        if bytes.quiet_text(raw) && !bytes.has(0) && literal() {
            let folded = if !bytes.ascii_only() {
                // (Latin letters lower-case to Latin letters: no ASCII byte
                // appears or goes, so the byte set below still holds.)
                Cow::Owned(raw.to_lowercase())
            } else if bytes.has_capital() {
                Cow::Owned(raw.to_ascii_lowercase())
            } else {
                Cow::Borrowed(raw)
            };
            let ascii = bytes.lowered();
            let has = |b: u8| ascii & (1 << b) != 0;
            let comment = has(b'/') && has(b'*') && folded.contains("/*");
            let odd_space = [b'\t', b'\n', 0x0c, b'\r'].iter().any(|&c| has(c)) || (has(b' ') && folded.contains("  "));
            let sql = (comment || has(b'+') || odd_space).then(|| sql_view(&folded, " "));
            let sql_joined = comment.then(|| sql_view(&folded, ""));
            return Self {
                raw,
                decoded: Cow::Borrowed(raw),
                folded,
                sql,
                sql_joined,
                hidden_break: false,
                hidden_nul: false,
                ascii,
                quiet: false,
            };
        }
        Self::general(raw)
    }

    /// [`Views::new`] for any value: decoding rounds, Unicode folding, and
    /// the byte set read off the folded view.
    fn general(raw: &'a str) -> Self {
        let mut decoded = raw.to_owned();
        for _ in 0..MAX_ROUNDS {
            match decode_round(&decoded) {
                Some(next) => decoded = next,
                None => break,
            }
        }
        let hidden_nul = decoded.contains('\0');
        if hidden_nul {
            decoded.retain(|c| c != '\0');
        }
        let folded = fold(&decoded);
        let breaks = |s: &str| s.contains(['\r', '\n']);
        let hidden_break = breaks(&folded) && !breaks(raw);
        let needs_sql = folded.contains("/*") || folded.contains('+') || has_odd_space(&folded);
        let sql = needs_sql.then(|| sql_view(&folded, " "));
        let sql_joined = folded.contains("/*").then(|| sql_view(&folded, ""));
        let ascii = folded.bytes().filter(|b| b.is_ascii()).fold(0u128, |m, b| m | (1 << b));
        Self {
            raw,
            decoded: Cow::Owned(decoded),
            folded: Cow::Owned(folded),
            sql,
            sql_joined,
            hidden_break,
            hidden_nul,
            ascii,
            quiet: false,
        }
    }

    /// True when `folded` contains any of the ASCII bytes in `set`.
    pub fn has_any(&self, set: &[u8]) -> bool {
        let mask = set.iter().filter(|b| b.is_ascii()).fold(0u128, |m, b| m | (1 << b));
        self.ascii & mask != 0
    }

    /// True when both SQL views are `folded` itself.
    pub(crate) fn sql_is_folded(&self) -> bool {
        self.sql.is_none() && self.sql_joined.is_none()
    }

    /// `folded` with SQL comments turned into spaces, whitespace collapsed.
    pub fn sql(&self) -> &str {
        self.sql.as_deref().unwrap_or(&self.folded)
    }

    /// `folded` with SQL comments removed, whitespace collapsed.
    pub fn sql_joined(&self) -> &str {
        self.sql_joined.as_deref().unwrap_or_else(|| self.sql())
    }
}

/// `A`..=`Z` in the second word of a [`ByteSet`] (bytes 64 to 127).
const CAPITALS: u64 = ((1 << 26) - 1) << 1;

/// UTF-8 lead bytes 0xC3 to 0xC9 in the fourth word of a [`ByteSet`]
/// (bytes 192 to 255): U+00C0 to U+027F, where every [`quiet_letter`] is.
const LATIN_LEADS: u64 = 0b111_1111 << 3;

/// A letter of the Latin-1 Supplement or Latin Extended-A/B blocks (names
/// like Siobhán, Dún Laoghaire, Łódź, Ærø) that folding only lower-cases,
/// to another such letter: not `×` or `÷`, not `Ċ` or `č` (halves of the
/// pairs [`fold`] turns into a line break), not `İ` (which lower-cases to
/// an ASCII `i` and a combining dot), not the click letters `ǀ`..`ǃ` (which
/// Windows' best-fit conversion turns into `|` and `!`). No quiet letter is
/// whitespace, and none lower-cases to more than one character.
pub(crate) fn quiet_letter(c: char) -> bool {
    matches!(c as u32, 0xC0..=0x24F)
        && !matches!(
            c,
            '\u{D7}' | '\u{F7}' | '\u{10A}' | '\u{10D}' | '\u{130}' | '\u{1C0}'..='\u{1C3}'
        )
}

/// Which bytes a text holds, as a 256-bit set, read in one pass.
pub(crate) struct ByteSet([u64; 4]);

impl ByteSet {
    pub(crate) fn of(text: &[u8]) -> Self {
        let mut set = [0u64; 4];
        for &b in text {
            set[usize::from(b >> 6)] |= 1 << (b & 63);
        }
        Self(set)
    }

    /// No byte is 0x80 or above.
    fn ascii_only(&self) -> bool {
        self.0[2] | self.0[3] == 0
    }

    /// `text` (whose byte set this is) is ASCII, or ASCII and
    /// [`quiet_letter`]s: text that no decoding round or folding changes
    /// beyond lower-casing. The byte set rules most other text out (a lead
    /// byte outside the Latin blocks) before any character is decoded.
    pub(crate) fn quiet_text(&self, text: &str) -> bool {
        self.ascii_only() || (self.0[3] & !LATIN_LEADS == 0 && text.chars().all(|c| c.is_ascii() || quiet_letter(c)))
    }

    fn has(&self, b: u8) -> bool {
        self.0[usize::from(b >> 6)] & (1 << (b & 63)) != 0
    }

    fn any(&self, bytes: &[u8]) -> bool {
        bytes.iter().any(|&b| self.has(b))
    }

    /// [`ByteSet::of`] at compile time.
    pub(crate) const fn of_const(text: &[u8]) -> Self {
        let mut set = [0u64; 4];
        let mut i = 0;
        while i < text.len() {
            let b = text[i];
            set[(b >> 6) as usize] |= 1 << (b & 63);
            i += 1;
        }
        Self(set)
    }

    /// The set with every byte from 0x80 up added.
    pub(crate) const fn with_non_ascii(self) -> Self {
        Self([self.0[0], self.0[1], u64::MAX, u64::MAX])
    }

    /// Every byte of the text is in `allowed`.
    pub(crate) fn within(&self, allowed: &ByteSet) -> bool {
        (0..4).all(|i| self.0[i] & !allowed.0[i] == 0)
    }

    fn has_capital(&self) -> bool {
        self.0[1] & CAPITALS != 0
    }

    /// The ASCII bytes of the text once lower-cased (capitals moved onto
    /// their small letters), as [`Views`] keeps them.
    fn lowered(&self) -> u128 {
        let high = self.0[1];
        let low = u128::from(self.0[0]);
        low | (u128::from((high & !CAPITALS) | ((high & CAPITALS) << 32)) << 64)
    }
}

/// True when `s` has whitespace other than single spaces (Unicode
/// whitespace included): where the SQL view's collapsing changes something.
fn has_odd_space(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter()
        .enumerate()
        .any(|(i, c)| (c.is_ascii_whitespace() && *c != b' ') || (*c == b' ' && b.get(i + 1) == Some(&b' ')))
        || (!s.is_ascii() && s.chars().any(|c| !c.is_ascii() && c.is_whitespace()))
}

/// Lower-cases and folds look-alikes to what they stand for: full-width ASCII
/// (`＜` → `<`), division and other slashes, one-dot leaders, circled digits,
/// and the two-character pairs whose low bytes are CR LF (`嘍嘊`, `čĊ`), which
/// servers that keep only the low byte turn into a line break.
fn fold(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    let mut prev = 0u32;
    while let Some(c) = chars.next() {
        let code = c as u32;
        let mut pair = |a: u32, b: u32| prev == a || chars.peek().is_some_and(|n| *n as u32 == b);
        let mapped = match code {
            0xFF01..=0xFF5E => char::from_u32(code - 0xFEE0),
            0x2215 | 0x2044 | 0x29F8 => Some('/'),
            0x2216 | 0xFE68 | 0x29F9 => Some('\\'),
            0x2024 | 0xFE52 | 0x3002 | 0xFF61 => Some('.'),
            0x1D7CE..=0x1D7FF => char::from_u32('0' as u32 + (code - 0x1D7CE) % 10),
            0x24D0..=0x24E9 => char::from_u32('a' as u32 + code - 0x24D0),
            0x24B6..=0x24CF => char::from_u32('a' as u32 + code - 0x24B6),
            0x2460..=0x2468 => char::from_u32('1' as u32 + code - 0x2460),
            0x24EA | 0x24FF => Some('0'),
            0x2776..=0x277E => char::from_u32('1' as u32 + code - 0x2776),
            0x2780..=0x2788 => char::from_u32('1' as u32 + code - 0x2780),
            0x278A..=0x2792 => char::from_u32('1' as u32 + code - 0x278A),
            0x560A | 0x2028 | 0x2029 | 0x85 => Some('\n'),
            0x560D if pair(0x560A, 0x560A) => Some('\r'),
            0x010D if pair(0x010A, 0x010A) => Some('\r'),
            0x010A if pair(0x010D, 0x010D) => Some('\n'),
            _ => None,
        };
        match mapped {
            Some(m) => out.push(m.to_ascii_lowercase()),
            None => out.extend(c.to_lowercase()),
        }
        prev = code;
    }
    out
}

/// SQL view: block comments replaced by `sep` (MySQL `/*! … */` keeps its
/// content, which MySQL executes), whitespace runs collapsed to one space.
fn sql_view(folded: &str, sep: &str) -> String {
    let mut out = String::with_capacity(folded.len());
    let mut rest = folded;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("*/") else {
            // An unterminated comment swallows the rest of the query: keep
            // the marker, it is the signal.
            out.push_str(" /*");
            rest = "";
            break;
        };
        let (body, tail) = (&after[..end], &after[end + 2..]);
        if let Some(versioned) = body.strip_prefix('!') {
            out.push(' ');
            out.push_str(versioned.trim_start_matches(|c: char| c.is_ascii_digit()));
            out.push(' ');
        } else {
            out.push_str(sep);
        }
        rest = tail;
    }
    out.push_str(rest);
    collapse_space(&out)
}

/// Collapses whitespace runs (and `+`, form-encoding's space) to one space.
fn collapse_space(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_space = false;
    for c in s.chars() {
        if c.is_whitespace() || matches!(c, '\u{b}' | '\u{c}' | '+') {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out
}

/// One decoding round; `None` when nothing changed.
fn decode_round(s: &str) -> Option<String> {
    let b = s.as_bytes();
    // Nothing is copied unless something decodes: most `&`, `%` and `\` in
    // text are literal.
    let first = first_escape(b)?;
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[..first]);
    let mut changed = false;
    let mut i = first;
    while i < b.len() {
        let step = match b[i] {
            b'%' => percent(&b[i..], &mut out),
            b'&' => entity(&b[i..], &mut out),
            b'\\' => escape(&b[i..], &mut out),
            _ => 0,
        };
        if step == 0 {
            out.push(b[i]);
            i += 1;
        } else {
            changed = true;
            i += step;
        }
    }
    changed.then(|| utf8_lenient(&out))
}

/// Where the first escape that decodes starts, if any.
fn first_escape(b: &[u8]) -> Option<usize> {
    let mut scratch = Vec::new();
    let mut from = 0;
    while let Some(n) = b[from..].iter().position(|c| matches!(c, b'%' | b'&' | b'\\')) {
        let i = from + n;
        scratch.clear();
        let decodes = match b[i] {
            b'%' => percent(&b[i..], &mut scratch),
            b'&' => entity(&b[i..], &mut scratch),
            _ => escape(&b[i..], &mut scratch),
        } > 0;
        if decodes {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

fn hex(b: u8) -> Option<u32> {
    (b as char).to_digit(16)
}

fn hex_run(b: &[u8], n: usize) -> Option<u32> {
    if b.len() < n {
        return None;
    }
    b[..n].iter().try_fold(0u32, |acc, &d| Some(acc * 16 + hex(d)?))
}

fn push_char(code: u32, out: &mut Vec<u8>) {
    let c = char::from_u32(code).unwrap_or('\u{fffd}');
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

/// `%XX` (a raw byte) or `%uXXXX` (a code point). Returns bytes consumed.
fn percent(b: &[u8], out: &mut Vec<u8>) -> usize {
    if let Some(v) = hex_run(&b[1..], 2) {
        out.push(v as u8);
        return 3;
    }
    if matches!(b.get(1), Some(b'u' | b'U'))
        && let Some(v) = hex_run(&b[2..], 4)
    {
        push_char(v, out);
        return 6;
    }
    0
}

/// `\uXXXX`, `\u{X…}`, `\xXX`, and `\r` `\n` `\t` `\0`.
fn escape(b: &[u8], out: &mut Vec<u8>) -> usize {
    match b.get(1) {
        Some(b'u' | b'U') => {
            if let Some(v) = hex_run(&b[2..], 4) {
                push_char(v, out);
                return 6;
            }
            if b.get(2) == Some(&b'{')
                && let Some(end) = b[3..].iter().take(7).position(|&c| c == b'}')
                && let Some(v) = hex_run(&b[3..], end)
            {
                push_char(v, out);
                return end + 4;
            }
            0
        }
        Some(b'x' | b'X') => match hex_run(&b[2..], 2) {
            Some(v) => {
                out.push(v as u8);
                4
            }
            None => 0,
        },
        Some(b'r') => {
            out.push(b'\r');
            2
        }
        Some(b'n') => {
            out.push(b'\n');
            2
        }
        Some(b't') => {
            out.push(b'\t');
            2
        }
        Some(b'0') => {
            out.push(0);
            2
        }
        _ => 0,
    }
}

const NAMED: &[(&str, char)] = &[
    ("lt", '<'),
    ("gt", '>'),
    ("quot", '"'),
    ("apos", '\''),
    ("amp", '&'),
    ("sol", '/'),
    ("bsol", '\\'),
    ("colon", ':'),
    ("semi", ';'),
    ("lpar", '('),
    ("rpar", ')'),
    ("lsqb", '['),
    ("rsqb", ']'),
    ("lcub", '{'),
    ("rcub", '}'),
    ("equals", '='),
    ("period", '.'),
    ("comma", ','),
    ("excl", '!'),
    ("num", '#'),
    ("dollar", '$'),
    ("percnt", '%'),
    ("grave", '`'),
    ("tab", '\t'),
    ("newline", '\n'),
    ("nbsp", ' '),
];

/// `&#NN;`, `&#xHH;` (the `;` optional, as browsers allow) and the named
/// references attackers use.
fn entity(b: &[u8], out: &mut Vec<u8>) -> usize {
    if b.get(1) == Some(&b'#') {
        let (radix, start) = if matches!(b.get(2), Some(b'x' | b'X')) {
            (16, 3)
        } else {
            (10, 2)
        };
        // Browsers accept any number of leading zeros.
        let zeros = b[start..].iter().take_while(|c| **c == b'0').count();
        let significant = b[start + zeros..]
            .iter()
            .take(8)
            .take_while(|c| (**c as char).is_digit(radix))
            .count();
        let digits = zeros + significant;
        if digits == 0 {
            return 0;
        }
        let text = std::str::from_utf8(&b[start + zeros..start + digits]).unwrap_or("");
        let text = if text.is_empty() { "0" } else { text };
        let Ok(v) = u32::from_str_radix(text, radix) else {
            return 0;
        };
        push_char(v, out);
        let end = start + digits;
        return if b.get(end) == Some(&b';') { end + 1 } else { end };
    }
    let name_len = b[1..].iter().take(8).take_while(|c| c.is_ascii_alphabetic()).count();
    if name_len == 0 || b.get(1 + name_len) != Some(&b';') {
        return 0;
    }
    let name = std::str::from_utf8(&b[1..=name_len]).unwrap_or("").to_ascii_lowercase();
    match NAMED.iter().find(|(n, _)| *n == name) {
        Some((_, c)) => {
            push_char(*c as u32, out);
            name_len + 2
        }
        None => 0,
    }
}

/// UTF-8 decoding that also accepts overlong forms (`C0 AE` → `.`), which
/// lenient decoders in old stacks accept; other invalid bytes become U+FFFD.
fn utf8_lenient(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                break;
            }
            Err(e) => {
                let good = e.valid_up_to();
                out.push_str(std::str::from_utf8(&rest[..good]).unwrap_or(""));
                rest = &rest[good..];
                let cont = |i: usize| rest.get(i).is_some_and(|c| c & 0xC0 == 0x80);
                let (code, used) = match rest[0] {
                    0xC0 | 0xC1 if cont(1) => (((rest[0] as u32 & 0x1F) << 6) | (rest[1] as u32 & 0x3F), 2),
                    0xE0 if cont(1) && cont(2) => (((rest[1] as u32 & 0x3F) << 6) | (rest[2] as u32 & 0x3F), 3),
                    _ => (0xFFFD, 1),
                };
                out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                rest = &rest[used..];
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "normalize_tests.rs"]
mod tests;
