//! The text detectors: a cheap pass ([`crate::gate`]) says which expressions
//! could match; those then find the places, and checksums
//! (Luhn, mod 97) and number rules (SSN areas) drop the look-alikes.

use std::sync::LazyLock;

use regex::Regex;

use crate::gate::{self, Gate, Seen};
use crate::{Categories, Category, Finding};

/// ASCII word boundary (the Unicode one keeps the DFA off non-ASCII text).
macro_rules! b {
    () => {
        r"(?-u:\b)"
    };
}

/// `(category, expression, check, gate)`: the check sees the match and
/// returns the sub-range that is the value, or `None` for a look-alike; the
/// gate is what the expression cannot match without.
pub(crate) type Check = fn(&str) -> Option<std::ops::Range<usize>>;

pub(crate) const DETECTORS: &[(Category, &str, Check, Gate)] = &[
    (
        Category::Card,
        concat!(b!(), r"(?:[0-9][ -]?){12,18}[0-9]", b!()),
        card,
        Gate::Digits(13),
    ),
    (
        Category::Iban,
        concat!(b!(), r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}", b!()),
        iban,
        Gate::LettersDigits,
    ),
    (
        Category::NationalId,
        concat!(b!(), r"[0-9]{3}[- ][0-9]{2}[- ][0-9]{4}", b!()),
        ssn,
        Gate::Groups324,
    ),
    (
        Category::NationalId,
        concat!(
            b!(),
            r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]",
            b!()
        ),
        nino,
        Gate::LettersDigits,
    ),
    (
        Category::Email,
        r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}",
        whole,
        Gate::Byte(b'@'),
    ),
    (
        Category::Phone,
        r"\+[0-9]{1,3}(?:[ .-]?\(?[0-9]{1,4}\)?){2,5}",
        phone,
        Gate::ThenDigit(b'+'),
    ),
    (
        Category::Phone,
        r"\([0-9]{3}\) ?[0-9]{3}[-. ][0-9]{4}",
        whole,
        Gate::ThenDigit(b'('),
    ),
    (
        Category::Phone,
        concat!(b!(), r"[0-9]{3}[-.][0-9]{3}[-.][0-9]{4}", b!()),
        same_separator,
        Gate::Groups334,
    ),
    (
        Category::CloudKey,
        concat!(
            b!(),
            r"(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16}",
            b!()
        ),
        whole,
        Gate::CapitalA,
    ),
    (
        Category::CloudKey,
        concat!(b!(), r"AIza[0-9A-Za-z_-]{35}"),
        whole,
        Gate::CapitalA,
    ),
    (
        Category::Token,
        concat!(
            b!(),
            r"(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255}|glpat-[A-Za-z0-9_-]{20,64}",
            r"|xox[abposr]-[A-Za-z0-9-]{10,255}|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,255})"
        ),
        whole,
        Gate::TokenMark,
    ),
    (
        Category::Jwt,
        r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*",
        whole,
        Gate::Jwt,
    ),
    (
        Category::PrivateKey,
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----",
        whole,
        Gate::Pem,
    ),
];

/// The detectors of a set of categories, each expression compiled once.
#[derive(Debug)]
pub struct Detector {
    /// `(index into DETECTORS, its expression)`.
    each: Vec<(usize, Regex)>,
}

impl Detector {
    /// Compiles the detectors of `cats` (`SecretField` and `HighEntropy` have
    /// none: they are the JSON walk's).
    pub fn new(cats: Categories) -> Self {
        let chosen: Vec<usize> = (0..DETECTORS.len())
            .filter(|&i| cats.contains(DETECTORS[i].0))
            .collect();
        Self {
            each: chosen
                .iter()
                .map(|&i| {
                    #[allow(clippy::expect_used)]
                    let re = Regex::new(DETECTORS[i].1).expect("detector expression compiles");
                    (i, re)
                })
                .collect(),
        }
    }

    /// The sensitive values of `cats` (within the compiled ones) in `text`,
    /// in order, not overlapping.
    pub fn find(&self, text: &str, cats: Categories) -> Vec<Finding> {
        let mut out = Vec::new();
        self.find_into(text, cats, 0, &mut out);
        out
    }

    /// Appends the findings in `text` (ranges shifted by `offset`) to `out`.
    pub(crate) fn find_into(&self, text: &str, cats: Categories, offset: usize, out: &mut Vec<Finding>) {
        if text.len() < 6 || cats.is_empty() {
            return;
        }
        self.find_seen(text, cats, gate::scan(text.as_bytes()), offset, out);
    }

    /// [`Self::find_into`] with the gate pass over `text` already made.
    pub(crate) fn find_seen(&self, text: &str, cats: Categories, seen: Seen, offset: usize, out: &mut Vec<Finding>) {
        if text.len() < 6 || cats.is_empty() {
            return;
        }
        let start = out.len();
        for (i, re) in &self.each {
            let (category, _, check, gate) = DETECTORS[*i];
            if !cats.contains(category) || !seen.opens(gate) {
                continue;
            }
            for m in re.find_iter(text) {
                if category == Category::Card && in_decimal(text, m.start(), m.end()) {
                    continue;
                }
                let Some(r) = check(m.as_str()) else { continue };
                let mut range = m.start() + r.start..m.start() + r.end;
                if category == Category::PrivateKey {
                    range.end = pem_end(text, range.end);
                }
                out.push(Finding {
                    category,
                    range: range.start + offset..range.end + offset,
                });
            }
        }
        // In order; a finding that overlaps an earlier (or longer) one goes.
        let mut new = out.split_off(start);
        new.sort_by_key(|f| (f.range.start, std::cmp::Reverse(f.range.end)));
        for f in new {
            if out[start..].last().is_none_or(|last| f.range.start >= last.range.end) {
                out.push(f);
            }
        }
    }
}

/// Every category's detectors, for the free functions.
pub(crate) static ALL: LazyLock<Detector> = LazyLock::new(|| Detector::new(Categories::ALL));

/// The sensitive values of `cats` in `text`, in order, not overlapping.
pub fn find(text: &str, cats: Categories) -> Vec<Finding> {
    ALL.find(text, cats)
}

/// The end of a PEM block: past its `-----END … PRIVATE KEY-----` when that
/// comes before the end of the JSON string it sits in (an unescaped `"`),
/// else that end. One forward pass, never past 64 KiB.
fn pem_end(text: &str, from: usize) -> usize {
    let b = text.as_bytes();
    let limit = b.len().min(from + 64 * 1024);
    let mut i = from;
    let mut escaped = false;
    while i < limit {
        match b[i] {
            b'\\' if !escaped => escaped = true,
            b'"' if !escaped => return i,
            b'-' if !escaped && b[i..].starts_with(b"-----END ") => {
                let close = b[i + 9..limit].windows(5).position(|w| w == b"-----");
                return close.map_or(i, |c| i + 9 + c + 5);
            }
            _ => escaped = false,
        }
        i += 1;
    }
    i
}

/// True when the digits at `start..end` are part of a decimal number
/// (`0.4111111111111111`, `4111111111111111.5`): a measurement, not a card.
fn in_decimal(text: &str, start: usize, end: usize) -> bool {
    let b = text.as_bytes();
    let before = start >= 2 && b[start - 1] == b'.' && b[start - 2].is_ascii_digit();
    let after = b.get(end) == Some(&b'.') && b.get(end + 1).is_some_and(u8::is_ascii_digit);
    before || after
}

fn whole(m: &str) -> Option<std::ops::Range<usize>> {
    Some(0..m.len())
}

fn digits(m: &str) -> Vec<u8> {
    m.bytes().filter(u8::is_ascii_digit).map(|d| d - b'0').collect()
}

/// The Luhn checksum holds.
pub(crate) fn luhn(d: &[u8]) -> bool {
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            let x = u32::from(x);
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 { y - 9 } else { y }
            } else {
                x
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn card(m: &str) -> Option<std::ops::Range<usize>> {
    // One kind of separator, used consistently or not at all.
    if m.contains(' ') && m.contains('-') {
        return None;
    }
    let d = digits(m);
    let len_ok = match d.first()? {
        4 => matches!(d.len(), 13 | 16 | 19),
        3 => d.len() == 15 && matches!(d[1], 4 | 7) || d.len() == 14 && matches!(d[1], 0 | 6 | 8) || d.len() == 16,
        2 | 5 => d.len() == 16 && (d[0] == 5 && (1..=5).contains(&d[1]) || d[0] == 2 && (2..=7).contains(&d[1])),
        6 => (16..=19).contains(&d.len()),
        _ => false,
    };
    (len_ok && luhn(&d)).then_some(0..m.len())
}

/// IBAN lengths of the countries most seen; others are checked whole.
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AT", 20),
    ("BE", 16),
    ("CH", 21),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("ES", 24),
    ("FI", 18),
    ("FR", 27),
    ("GB", 22),
    ("IE", 22),
    ("IT", 27),
    ("LU", 20),
    ("NL", 18),
    ("NO", 15),
    ("PL", 28),
    ("PT", 25),
    ("SE", 24),
];

fn iban(m: &str) -> Option<std::ops::Range<usize>> {
    let want = IBAN_LENGTHS.iter().find(|(c, _)| m.starts_with(c)).map(|(_, n)| *n);
    // The match may run on into the next word: take exactly `want` characters.
    let mut end = m.len();
    let mut compact = String::new();
    for (i, ch) in m.char_indices() {
        if ch == ' ' {
            continue;
        }
        if want.is_some_and(|n| compact.len() == n) {
            end = i;
            break;
        }
        compact.push(ch);
    }
    if want.is_some_and(|n| compact.len() != n) || !(15..=34).contains(&compact.len()) {
        return None;
    }
    let rotated = compact[4..].chars().chain(compact[..4].chars());
    let mut rem: u32 = 0;
    for ch in rotated {
        let v = ch.to_digit(36)?;
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    (rem == 1).then(|| 0..m[..end].trim_end().len())
}

fn ssn(m: &str) -> Option<std::ops::Range<usize>> {
    same_separator(m)?;
    let sep = if m.as_bytes()[3] == b' ' { ' ' } else { '-' };
    let (area, rest) = m.split_once(sep)?;
    let (group, serial) = rest.split_once(sep)?;
    let ok = area != "000" && area != "666" && !area.starts_with('9') && group != "00" && serial != "0000";
    ok.then_some(0..m.len())
}

/// `123-45-6789`, not `123-45 6789`.
fn same_separator(m: &str) -> Option<std::ops::Range<usize>> {
    let mut seps = m.bytes().filter(|b| !b.is_ascii_digit());
    let first = seps.next();
    seps.all(|s| Some(s) == first).then_some(0..m.len())
}

fn nino(m: &str) -> Option<std::ops::Range<usize>> {
    let prefix = &m[..2];
    (!matches!(prefix, "BG" | "GB" | "NK" | "KN" | "TN" | "NT" | "ZZ")).then_some(0..m.len())
}

fn phone(m: &str) -> Option<std::ops::Range<usize>> {
    let m = m.trim_end_matches(|c: char| !c.is_ascii_digit());
    (8..=15).contains(&digits(m).len()).then_some(0..m.len())
}
