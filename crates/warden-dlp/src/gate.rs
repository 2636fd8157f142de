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
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
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
    /// A dash at `i`: it may end a token prefix (`glpat-`, `xoxb-`) or start
    /// a PEM header.
    fn dash(&mut self, text: &[u8], i: usize) {
        self.token_mark |= token_before(text, i);
        self.pem |= text[i..].starts_with(b"-BEGIN ");
    }

    /// A marked byte other than a digit, quote or backslash at `i`.
    #[inline(never)]
    fn mark(&mut self, class: u8, text: &[u8], i: usize) {
        let next = text.get(i + 1);
        match class {
            DASH => self.dash(text, i),
            UNDERSCORE => self.token_mark |= token_before(text, i),
            AT => self.at = true,
            PLUS => self.plus_digit |= next.is_some_and(u8::is_ascii_digit),
            PAREN => self.paren_digit |= next.is_some_and(u8::is_ascii_digit),
            CAPITAL_A => self.capital_a |= next.is_some_and(u8::is_ascii_uppercase),
            CAPITAL_J => self.jwt |= i >= 2 && &text[i - 2..i] == b"ey",
            _ => {}
        }
    }

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

/// Byte classes: everything the gates look at is not [`OTHER`]. A space or
/// a dot matters only right after a digit (a separator inside a number),
/// which the digit branch looks at itself: both are [`OTHER`] here, so runs
/// of prose and domain names are skipped in one go.
const OTHER: u8 = 0;
const DIGIT: u8 = 1;
const DASH: u8 = 3;
const UNDERSCORE: u8 = 4;
const AT: u8 = 5;
const PLUS: u8 = 6;
const PAREN: u8 = 7;
const CAPITAL_A: u8 = 8;
const CAPITAL_J: u8 = 9;
/// `"` and `\`: other bytes to the gates, but where a JSON string ends or
/// escapes, which [`Pass::string`] stops at.
const QUOTE: u8 = 10;
const BACKSLASH: u8 = 11;

static CLASS: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    let mut t = [OTHER; 256];
    let mut d = b'0';
    while d <= b'9' {
        t[d as usize] = DIGIT;
        d += 1;
    }
    t[b'-' as usize] = DASH;
    t[b'_' as usize] = UNDERSCORE;
    t[b'@' as usize] = AT;
    t[b'+' as usize] = PLUS;
    t[b'(' as usize] = PAREN;
    t[b'A' as usize] = CAPITAL_A;
    t[b'J' as usize] = CAPITAL_J;
    t[b'"' as usize] = QUOTE;
    t[b'\\' as usize] = BACKSLASH;
    t
}

/// Reads `text` once.
pub(crate) fn scan(text: &[u8]) -> Seen {
    let mut pass = Pass::default();
    pass.feed(text, 0, text.len());
    pass.seen
}

/// The pass, resumable: a JSON walk feeds it the body's strings and bare
/// tokens one by one instead of reading the body a second time. Every byte
/// a walk skips (structure, whitespace) is one the gates read as other, and
/// every token starts after one, so feeding the tokens sees what [`scan`]
/// sees over the whole body.
///
/// A run of digits (with single separators between its groups) is read to
/// its end in one go, so the pass keeps no state between reads but what it
/// saw.
#[derive(Debug, Default)]
pub(crate) struct Pass {
    seen: Seen,
}

impl Pass {
    /// What the pass saw so far.
    pub(crate) fn seen(&self) -> Seen {
        self.seen
    }

    /// Reads `text[from..to]` (a token, or all of a text); the gates look
    /// around it in `text` as [`scan`] would.
    pub(crate) fn feed(&mut self, text: &[u8], from: usize, to: usize) {
        self.read::<false>(text, from, to);
    }

    /// Reads a JSON string's contents from `from` (just past its opening
    /// quote) and returns where its closing quote is, or `None` when the
    /// text ends first. An escaped byte never ends it; control bytes are
    /// read as other bytes (the walk is tolerant).
    pub(crate) fn string(&mut self, text: &[u8], from: usize) -> Option<usize> {
        let n = text.len();
        let mut i = from;
        loop {
            i = self.read::<true>(text, i, n);
            match text.get(i)? {
                b'"' => return Some(i),
                _ => {
                    // A backslash: the escaped byte (`"`, `\\`, a letter)
                    // is other to the gates; a digit after a bad escape is
                    // still read.
                    i += 1;
                    if i < n && matches!(CLASS[usize::from(text[i])], QUOTE | BACKSLASH) {
                        i += 1;
                    }
                }
            }
        }
    }

    /// Reads from `text[i]` up to `to`, or (in a string, `STRING`) up to a
    /// quote or backslash, which it returns the place of.
    #[inline(always)]
    fn read<const STRING: bool>(&mut self, text: &[u8], mut i: usize, to: usize) -> usize {
        loop {
            // Ordinary bytes (letters, punctuation, spaces), then the
            // marked ones by how common they are (no jump table).
            while i < to && CLASS[usize::from(text[i])] == OTHER {
                i += 1;
            }
            if i >= to {
                return i;
            }
            match CLASS[usize::from(text[i])] {
                DIGIT => {
                    i = digits(&mut self.seen, text, i, to);
                    continue;
                }
                QUOTE | BACKSLASH if STRING => return i,
                QUOTE | BACKSLASH => {}
                class => self.seen.mark(class, text, i),
            }
            i += 1;
        }
    }
}

/// Reads the run of digits at `text[i]` (before `to`): groups of digits,
/// each but the last followed by one separator (space, dot or dash) and
/// then a digit. Returns where the run ends.
#[inline(always)]
fn digits(s: &mut Seen, text: &[u8], mut i: usize, to: usize) -> usize {
    // The run's digits, and the lengths of the two groups before this one.
    let (mut run, mut g1, mut g2) = (0, 0, 0);
    loop {
        let start = i;
        while i < to && text[i].is_ascii_digit() {
            i += 1;
        }
        let cur = i - start;
        run += cur;
        if cur >= 4 {
            s.groups_324 |= g2 == 3 && g1 == 2;
            s.groups_334 |= g2 == 3 && g1 == 3;
        }
        if cur >= 2 && start >= 2 {
            let up = |j: usize| text[j].is_ascii_uppercase();
            s.letters_digits |= (up(start - 2) && up(start - 1))
                || (start >= 3 && text[start - 1] == b' ' && up(start - 3) && up(start - 2));
        }
        // One separator then a digit keeps the run going.
        if i + 1 < to && matches!(text[i], b' ' | b'.' | b'-') && text[i + 1].is_ascii_digit() {
            if text[i] == b'-' {
                s.dash(text, i);
            }
            (g2, g1) = (g1, cur);
            i += 1;
            continue;
        }
        s.longest_run = s.longest_run.max(run);
        return i;
    }
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

    /// `text` as JSON string contents: quotes and backslashes escaped, and
    /// now and then an escape of another kind, a raw control byte or a
    /// backslash before a digit (which the tolerant walk reads on).
    fn json_string(text: &str, k: usize) -> String {
        let mut out = String::new();
        for (i, c) in text.chars().enumerate() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                _ => out.push(c),
            }
            match (i + k) % 23 {
                3 => out.push_str("\\u0041"),
                7 => out.push_str("\\n"),
                11 => out.push('\t'),
                13 => out.push_str("\\4"),
                _ => {}
            }
        }
        out
    }

    #[test]
    fn the_json_walk_feeds_the_pass_what_a_pass_over_the_whole_body_sees() {
        let texts = random_texts(6_000);
        let gates: Vec<Gate> = DETECTORS.iter().map(|d| d.3).collect();
        let (mut opened, mut shut) = (vec![0usize; gates.len()], vec![0usize; gates.len()]);
        for (k, t) in texts.chunks_exact(6).enumerate() {
            // A bare token: the text's own bytes up to a delimiter (the
            // tolerant walk reads `4111-1111` or `AB12` as one), or a number.
            let bare: String = t[2]
                .chars()
                .take_while(|c| !matches!(c, ',' | '}' | ']' | ' ' | '\t' | '\n' | '\r' | ':' | '"' | '{' | '['))
                .collect();
            let bare = if bare.is_empty() { "-12.5e3".to_owned() } else { bare };
            let digits: String = t[3].chars().filter(char::is_ascii_digit).collect();
            // Two rows with the same keys (the walk reads a repeated key
            // only once) and other values and spacing.
            let row = |ws: &str, v1: &str, v5: &str| {
                format!(
                    "{{\"{}\":{ws}\"{}\",{ws}\"n\": [{bare} ,{ws}{}{ws}, true, null],\"o\" :{{\"{}\":\"{}\"}}}}",
                    json_string(&t[0], k),
                    json_string(v1, k + 5),
                    if digits.is_empty() { "0" } else { &digits },
                    json_string(&t[4], k + 9),
                    json_string(v5, k + 17),
                )
            };
            let ws = [" ", "", "\n  ", "\t"][k % 4];
            let body = format!("[{},{ws}{}]", row(ws, &t[1], &t[5]), row("", &t[5], &t[1]));
            let whole = scan(body.as_bytes());
            let walked = crate::json::walk(&body, crate::Categories::ALL).map(|w| w.seen);
            assert_eq!(walked, Some(whole), "{body}");
            for (g, gate) in gates.iter().enumerate() {
                if whole.opens(*gate) {
                    opened[g] += 1;
                } else {
                    shut[g] += 1;
                }
            }
        }
        // The bodies reach every gate both ways.
        for (g, gate) in gates.iter().enumerate() {
            assert!(
                opened[g] > 0 && shut[g] > 0,
                "{gate:?}: {} open, {} shut",
                opened[g],
                shut[g]
            );
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
