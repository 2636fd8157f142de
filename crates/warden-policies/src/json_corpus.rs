//! Test-only JSON bodies for the strict walks' differential tests: hand-picked
//! edge cases of JSON's grammar and of the strictness rules, and a
//! deterministic generator of documents with random byte edits.

#![allow(clippy::unwrap_used)]

/// Edge cases: numbers, literals, separators, escapes and surrogates,
/// control and invalid bytes, duplicate keys, nesting at the depth limit,
/// objects on both sides of the duplicate check's small-object bound; some
/// hold the string `STOP`, which the injection walk's test treats as a
/// finding.
pub(crate) fn hand_picked() -> Vec<Vec<u8>> {
    let cases: &[&[u8]] = &[
        b"",
        b" ",
        b"1",
        b"-",
        b"-0",
        b"01",
        b"-01",
        b"0.",
        b"0.5",
        b".5",
        b"1e",
        b"1e+",
        b"1E-7",
        b"1e400",
        b"-1e400",
        b"1e-400",
        b"123456789012345678901234567890",
        b"18446744073709551616",
        b"-9223372036854775809",
        &[b'1'; 400],
        b"1.7976931348623157e308",
        b"1.7976931348623159e308",
        b"true",
        b"tru",
        b"truex",
        b"null ",
        b" false\n",
        b"nul",
        b"[]",
        b"[ ]",
        b"[1,]",
        b"[,1]",
        b"[1 2]",
        b"{}",
        b"{ }",
        b"{,}",
        b"{\"a\":1,}",
        b"{\"a\" 1}",
        b"{\"a\":}",
        b"{a:1}",
        b"{\"a\":1}x",
        b"{\"a\":1} ",
        b"\"\\ud800\"",
        b"\"\\udc00\"",
        b"\"\\ud800\\udc00\"",
        b"\"\\ud800\\u0041\"",
        b"\"\\ud800x\"",
        b"\"\\uD83D\\uDE00\"",
        b"\"\\udbff\\udfff\"",
        b"\"\\uDBFF\"",
        b"\"\\ud7ff\\ue000\\uffff\"",
        b"\"\\udfff\"",
        b"\"\\ud800\\udbff\"",
        b"\"\\u00e9\\u0000\"",
        b"\"\\x41\"",
        b"\"\\a\"",
        b"\"a\\",
        b"\"a\\u12\"",
        b"\"a\\u12G4\"",
        b"\"tab\there\"",
        b"\"nl\nx\"",
        b"\"del\x7f\"",
        b"\"\\/\\b\\f\\n\\r\\t\\\"\\\\\"",
        b"\"unterminated",
        b"{\"role\":\"user\",\"ROLE\":\"admin\"}",
        b"{\"mask\":1,\"ma\xc5\xbfk\":2}",
        b"{\"a\\u0041\":1,\"aa\":2}",
        b"{\"a\":{\"b\":[\"STOP\",\"never\"]}}",
        b"[\"STOP\"",
        b"[\"STOP\"]]",
        b"[\"STOP\",\xff]",
        b"[\"ok\",\xff]",
        b"[\"ok\xff\"]",
        b"[\"STOP\xff\"]",
        b"{\"STOP\":1,\"STOP\":2}",
        b"{\"k\":\"STOP\",\"k\":1}",
        b"\xef\xbb\xbf{}",
        b"{\"a\":1}\x00",
        b"\"\xc3\xa9\"",
        b"\"\xc3\"",
        b"[\"\xe2\x82\"]",
    ];
    let mut out: Vec<Vec<u8>> = cases.iter().map(|c| c.to_vec()).collect();
    let mut add = |body: &[u8]| out.push(body.to_vec());
    for n in [63, 64, 65] {
        add(format!("{}{}", "[".repeat(n), "]".repeat(n)).as_bytes());
        add(format!("{}\"STOP\"{}", "{\"a\":".repeat(n), "}".repeat(n)).as_bytes());
    }
    let keys = |n: usize| (0..n).map(|i| format!("\"k{i}\":1")).collect::<Vec<_>>().join(",");
    for extra in ["\"k3\":2", "\"K20\":2", "\"k40\":2", "\"k15\":2", "\"k16\":2"] {
        add(format!("{{{},{extra}}}", keys(17)).as_bytes());
        add(format!("{{{},{extra}}}", keys(40)).as_bytes());
    }
    out
}

/// `n` generated documents, each followed by a few byte-edited copies of
/// itself, handed to `check` one by one.
pub(crate) fn generated(n: usize, mut check: impl FnMut(&[u8])) {
    let mut g = Gen(0x9e37_79b9_7f4a_7c15);
    let noise: &[u8] = b"\"\\{}[]:,0123456789eE+-. tnu\x00\x1f\x7f\xff\xc3\xa9DdcC";
    for _ in 0..n {
        let mut doc = String::new();
        g.value(&mut doc, 0);
        let mut bytes = doc.into_bytes();
        check(&bytes);
        // A few byte edits: deleted, replaced or inserted.
        for _ in 0..=g.below(3) {
            let at = g.below(bytes.len() + 1);
            let b = noise[g.below(noise.len())];
            match g.below(3) {
                0 if at < bytes.len() => {
                    bytes.remove(at);
                }
                1 if at < bytes.len() => bytes[at] = b,
                _ => bytes.insert(at, b),
            }
            check(&bytes);
        }
    }
}

/// A small deterministic generator (xorshift), so a failure replays.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'x>(&mut self, items: &[&'x str]) -> &'x str {
        items[self.below(items.len())]
    }

    fn value(&mut self, out: &mut String, depth: usize) {
        match self.below(if depth > 4 { 3 } else { 6 }) {
            0 => out.push_str(self.pick(&[
                "0",
                "-0",
                "-1",
                "12",
                "1.5",
                "-0.0",
                "1e3",
                "2E-2",
                "1e400",
                "01",
                "1.",
                "true",
                "false",
                "null",
                "1234567890123456789",
                "-123456789012345678",
            ])),
            1 | 2 => self.string(out),
            3 | 4 => {
                out.push('{');
                for i in 0..self.below(5) {
                    if i > 0 {
                        out.push(',');
                    }
                    self.string(out);
                    out.push_str(self.pick(&[":", " : ", ":\n"]));
                    self.value(out, depth + 1);
                }
                out.push('}');
            }
            _ => {
                out.push('[');
                for i in 0..self.below(5) {
                    if i > 0 {
                        out.push_str(self.pick(&[",", ", "]));
                    }
                    self.value(out, depth + 1);
                }
                out.push(']');
            }
        }
    }

    fn string(&mut self, out: &mut String) {
        out.push('"');
        for _ in 0..self.below(5) {
            out.push_str(self.pick(&[
                "a",
                "A",
                "id",
                "Id",
                "STOP",
                "é",
                "\\u00e9",
                "\\u0041",
                "\\n",
                "\\\"",
                "\\\\",
                "\\/",
                "\\ud83d\\ude00",
                "\\ud800",
                "\\udc00",
                " ",
                "'",
                "<",
                "名",
                "password_hash",
                "PASSWORD_HASH",
            ]));
        }
        out.push('"');
    }
}
