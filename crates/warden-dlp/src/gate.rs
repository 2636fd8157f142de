//! A cheap first pass over a text that says which detectors could match
//! in it, so only those expressions run. Each gate is implied by its
//! detector's expression (a match cannot exist without the gate opening),
//! so nothing is missed; a gate may open on a look-alike, which the
//! expression then turns down.
//!
//! One scalar pass, a few instructions a byte: for an ordinary API
//! response (ids, dates, e-mail addresses, prose) most gates stay shut and
//! the pass replaces a multi-pattern automaton over the whole body.

/// What a detector's expression needs in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gate {
    /// At least this many digits with at most one separator (space, `-`
    /// or `.`) between two of them (card numbers).
    Digits(u8),
    /// Digit groups of 3 and 2 then 4 digits, one separator apart (SSN).
    Groups324,
    /// Digit groups of 3 and 3 then 4 digits, one separator apart (phone).
    Groups334,
    /// Two capital letters, an optional space, two digits (IBAN, NINO).
    LettersDigits,
    /// This byte followed by a digit (`+44…`, `(555)…`).
    ThenDigit(u8),
    /// This byte anywhere (`@`).
    Byte(u8),
    /// A capital `A` followed by a capital letter (cloud key prefixes).
    CapitalA,
    /// A `_` or `-` after `gh?`, `pat`, `sk`, `rk` or `xox?` (token prefixes).
    TokenMark,
    /// `eyJ` (JWT).
    Jwt,
    /// `-BEGIN ` (PEM).
    Pem,
}

/// What the pass saw.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Seen {
    longest_run: usize,
    groups_324: bool,
    groups_334: bool,
    letters_digits: bool,
    plus_digit: bool,
    paren_digit: bool,
    at: bool,
    capital_a: bool,
    token_mark: bool,
    jwt: bool,
    pem: bool,
}

impl Seen {
    /// True when `gate` is open.
    pub(crate) fn opens(&self, gate: Gate) -> bool {
        match gate {
            Gate::Digits(n) => self.longest_run >= usize::from(n),
            Gate::Groups324 => self.groups_324,
            Gate::Groups334 => self.groups_334,
            Gate::LettersDigits => self.letters_digits,
            Gate::ThenDigit(b'+') => self.plus_digit,
            Gate::ThenDigit(b'(') => self.paren_digit,
            Gate::Byte(b'@') => self.at,
            Gate::CapitalA => self.capital_a,
            Gate::TokenMark => self.token_mark,
            Gate::Jwt => self.jwt,
            Gate::Pem => self.pem,
            // A gate the pass does not track is always open.
            Gate::ThenDigit(_) | Gate::Byte(_) => true,
        }
    }
}

/// Byte classes: everything the gates look at is not [`OTHER`].
const OTHER: u8 = 0;
const DIGIT: u8 = 1;
const SPACE_DOT: u8 = 2;
const DASH: u8 = 3;
const UNDERSCORE: u8 = 4;
const AT: u8 = 5;
const PLUS: u8 = 6;
const PAREN: u8 = 7;
const CAPITAL_A: u8 = 8;
const CAPITAL_J: u8 = 9;

static CLASS: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    let mut t = [OTHER; 256];
    let mut d = b'0';
    while d <= b'9' {
        t[d as usize] = DIGIT;
        d += 1;
    }
    t[b' ' as usize] = SPACE_DOT;
    t[b'.' as usize] = SPACE_DOT;
    t[b'-' as usize] = DASH;
    t[b'_' as usize] = UNDERSCORE;
    t[b'@' as usize] = AT;
    t[b'+' as usize] = PLUS;
    t[b'(' as usize] = PAREN;
    t[b'A' as usize] = CAPITAL_A;
    t[b'J' as usize] = CAPITAL_J;
    t
}

/// Reads `text` once.
pub(crate) fn scan(text: &[u8]) -> Seen {
    let mut s = Seen::default();
    // The run of digits being read: all its digits, the current group's,
    // the two groups before it, and whether the last byte was a separator.
    let (mut run, mut cur, mut g1, mut g2, mut sep) = (0usize, 0usize, 0usize, 0usize, false);
    let n = text.len();
    let mut i = 0;
    while i < n {
        let c = text[i];
        let class = CLASS[usize::from(c)];
        if class == OTHER {
            // Ordinary bytes (letters, quotes, punctuation) in one go.
            i += 1;
            while i < n && CLASS[usize::from(text[i])] == OTHER {
                i += 1;
            }
            (run, cur, g1, g2, sep) = (0, 0, 0, 0, false);
            continue;
        }
        match class {
            DIGIT => {
                // A whole group of digits at once (a group always starts
                // after a separator or another byte: `cur` is 0 here).
                let start = i;
                while i < n && text[i].is_ascii_digit() {
                    i += 1;
                }
                cur = i - start;
                run += cur;
                sep = false;
                s.longest_run = s.longest_run.max(run);
                if cur >= 4 {
                    s.groups_324 |= g2 == 3 && g1 == 2;
                    s.groups_334 |= g2 == 3 && g1 == 3;
                }
                if cur >= 2 && start >= 2 {
                    let up = |j: usize| text[j].is_ascii_uppercase();
                    s.letters_digits |= (up(start - 2) && up(start - 1))
                        || (start >= 3 && text[start - 1] == b' ' && up(start - 3) && up(start - 2));
                }
                continue;
            }
            SPACE_DOT | DASH if !sep && cur > 0 => {
                (g2, g1, cur, sep) = (g1, cur, 0, true);
                if class == DASH {
                    s.token_mark |= token_before(text, i);
                    s.pem |= text[i..].starts_with(b"-BEGIN ");
                }
                i += 1;
                continue;
            }
            DASH => {
                s.token_mark |= token_before(text, i);
                s.pem |= text[i..].starts_with(b"-BEGIN ");
            }
            UNDERSCORE => s.token_mark |= token_before(text, i),
            AT => s.at = true,
            PLUS => s.plus_digit |= text.get(i + 1).is_some_and(u8::is_ascii_digit),
            PAREN => s.paren_digit |= text.get(i + 1).is_some_and(u8::is_ascii_digit),
            CAPITAL_A => s.capital_a |= text.get(i + 1).is_some_and(u8::is_ascii_uppercase),
            CAPITAL_J => s.jwt |= i >= 2 && &text[i - 2..i] == b"ey",
            _ => {}
        }
        (run, cur, g1, g2, sep) = (0, 0, 0, 0, false);
        i += 1;
    }
    s
}

/// A `_` or `-` at `i` ends a token prefix: `gh?_`, `…pat_`/`glpat-`,
/// `sk_`/`rk_`, `xox?-`.
fn token_before(text: &[u8], i: usize) -> bool {
    let back = |n: usize| i.checked_sub(n).map(|j| &text[j..i]);
    back(3).is_some_and(|w| w.starts_with(b"gh") || w == b"pat")
        || back(2).is_some_and(|w| w == b"sk" || w == b"rk")
        || back(4).is_some_and(|w| w.starts_with(b"xox"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::detect::DETECTORS;

    /// Texts put together from the pieces the expressions are made of.
    fn random_texts(n: usize) -> Vec<String> {
        const PIECES: &[&str] = &[
            "0",
            "1",
            "4",
            "5",
            "9",
            "12",
            "123",
            "1234",
            "4111",
            " ",
            " ",
            "-",
            ".",
            "+",
            "(",
            ")",
            "@",
            "_",
            "A",
            "K",
            "I",
            "S",
            "Z",
            "B",
            "G",
            "DE",
            "GB",
            "AB",
            "C",
            "a",
            "e",
            "y",
            "J",
            "gh",
            "p",
            "pat",
            "gl",
            "sk",
            "rk",
            "xox",
            "b",
            "live",
            "test",
            "-----BEGIN ",
            "PRIVATE KEY-----",
            "RSA ",
            "eyJ",
            "AKIA",
            "AIza",
            "x.com",
            "é",
            "\"",
            "ab",
            "Q",
            "45",
            "6789",
            "555",
            "0000",
            "ABCDEFGH",
            "qwertyuiopas",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        const SEPS: &[&str] = &["", " ", "", " ", "-", ".", "--", "(", ")", ") ", "x"];
        fn pick(next: &mut impl FnMut() -> u64, list: &[&'static str]) -> &'static str {
            list[(next() % list.len() as u64) as usize]
        }
        (0..n)
            .map(|i| {
                if i % 3 == 0 {
                    return (0..1 + next() % 40).map(|_| pick(&mut next, PIECES)).collect();
                }
                if i % 3 == 1 {
                    // Token-shaped: a prefix (or a look-alike), then long
                    // runs of token characters, some joined by dots.
                    const STARTS: &[&str] = &[
                        "ghp_",
                        "gho_",
                        "gh_",
                        "github_pat_",
                        "glpat-",
                        "xoxb-",
                        "xox-",
                        "sk_live_",
                        "rk_test_",
                        "sk_",
                        "eyJ",
                        "ey",
                        "eyJhbGciOi",
                        "AKIA",
                        "AIza",
                        "A",
                    ];
                    const CHARS: &[u8] = b"abcXYZ0189_-";
                    let mut text = String::from(pick(&mut next, PIECES));
                    for k in 0..1 + next() % 3 {
                        if k > 0 {
                            text.push('.');
                        }
                        text.push_str(pick(&mut next, STARTS));
                        text.extend(
                            (0..next() % 50).map(|_| char::from(CHARS[(next() % CHARS.len() as u64) as usize])),
                        );
                    }
                    return text;
                }
                // Digit groups between separators (phone numbers, ids).
                let mut text = String::from(pick(&mut next, PIECES));
                // Some in pairs (`AB 12 34 56 C`).
                let pairs = next() % 4 == 0;
                for _ in 0..1 + next() % 6 {
                    text.push_str(pick(&mut next, SEPS));
                    let len = if pairs { 2 } else { 1 + next() % 4 };
                    text.extend((0..len).map(|_| char::from(b'0' + (next() % 10) as u8)));
                }
                text.push_str(pick(&mut next, PIECES));
                text
            })
            .collect()
    }

    #[test]
    fn no_gate_shuts_on_a_text_its_expression_matches() {
        let compiled: Vec<(regex::Regex, Gate)> = DETECTORS
            .iter()
            .map(|(_, re, _, g)| (regex::Regex::new(re).unwrap(), *g))
            .collect();
        let mut matched = vec![0usize; compiled.len()];
        let mut shut = vec![0usize; compiled.len()];
        for text in random_texts(60_000) {
            let seen = scan(text.as_bytes());
            for (k, (re, gate)) in compiled.iter().enumerate() {
                let open = seen.opens(*gate);
                if re.is_match(&text) {
                    matched[k] += 1;
                    assert!(open, "{gate:?} shut on {text:?}, which {re} matches");
                } else if !open {
                    shut[k] += 1;
                }
            }
        }
        // The texts reach every expression, and every gate does shut.
        let unmatched: Vec<&str> = (0..compiled.len())
            .filter(|&k| matched[k] == 0)
            .map(|k| DETECTORS[k].1)
            .collect();
        assert!(unmatched.is_empty(), "no text matched {unmatched:?}");
        for k in 0..compiled.len() {
            assert!(shut[k] > 0, "{:?} never shut", compiled[k].1);
        }
    }

    #[test]
    fn an_ordinary_api_response_opens_few_gates() {
        let body = br#"{"id":"a6a3a450-6513-470e-a69e-0d37f2a74de4","created_at":"2026-01-10T08:30:00Z",
            "ip":"198.51.100.10","email":"ada@example.com","total":1234567,"hash":"$argon2id$v=19$m=65536"}"#;
        let seen = scan(body);
        let open: Vec<Gate> = DETECTORS.iter().map(|d| d.3).filter(|g| seen.opens(*g)).collect();
        assert_eq!(open, [Gate::Byte(b'@')]);
    }
}
