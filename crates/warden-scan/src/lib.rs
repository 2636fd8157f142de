//! Byte scans for the body inspectors: the response filter
//! (`warden-openapi`) looks for the end of every JSON string of a body. (The
//! data-leak walk in `warden-dlp` finds string ends in its gate pass, which
//! reads every byte of a string anyway.) Both walks read a repeated key in
//! place with [`name_then_quote`].

/// Where the first `"`, `\` or control byte (below 0x20) of `s` is: eight
/// bytes at a time, since most strings are short and hold none (cheaper than
/// a vector search's set-up, and one pass for all three), in safe code.
#[inline]
#[must_use]
pub fn first_special(s: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const QUOTE: u64 = LO * b'"' as u64;
    const BACKSLASH: u64 = LO * b'\\' as u64;
    const SPACE: u64 = LO * 0x20;
    let chunks = s.chunks_exact(8);
    let tail = chunks.remainder();
    for (k, c) in chunks.enumerate() {
        let x = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        let q = x ^ QUOTE;
        let b = x ^ BACKSLASH;
        // A byte's high bit ends up set where it is zero after the xor (or
        // below 0x20); the lowest such byte is exact (borrows only run upward).
        let hit = ((q.wrapping_sub(LO) & !q) | (b.wrapping_sub(LO) & !b) | (x.wrapping_sub(SPACE) & !x)) & HI;
        if hit != 0 {
            return Some(k * 8 + (hit.trailing_zeros() / 8) as usize);
        }
    }
    let done = s.len() - tail.len();
    tail.iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|i| done + i)
}

/// The first eight bytes of `name` as a little-endian word (zeros past its
/// end): what [`name_then_quote`] compares first.
#[inline]
#[must_use]
pub fn head(name: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    let n = name.len().min(8);
    word[..n].copy_from_slice(&name[..n]);
    u64::from_le_bytes(word)
}

/// True when `text[at..]` is `name` followed by a `"` (a JSON key or string
/// written plainly, read in place): the first eight bytes are one masked
/// word compare against `head` (`head(name)`), the rest compared only when
/// they match. False when fewer than eight bytes are left from `at`.
#[inline]
#[must_use]
pub fn name_then_quote(text: &[u8], at: usize, name: &[u8], head: u64) -> bool {
    let n = name.len();
    let end = at + n;
    let Some(w) = text.get(at..at + 8) else {
        return false;
    };
    let word = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
    let mask = if n >= 8 { u64::MAX } else { (1 << (8 * n)) - 1 };
    (word & mask) == head && text.get(end) == Some(&b'"') && (n <= 8 || text[at + 8..end] == name[8..])
}

#[cfg(test)]
mod tests {
    use super::first_special;

    #[test]
    fn the_string_scan_finds_the_first_quote_backslash_or_control_byte() {
        // Every position in and around an eight-byte block, with bytes that
        // sit next to the special ones (`!`, `#`, `[`, `]`, space, DEL,
        // non-ASCII).
        for len in 0..20 {
            for at in 0..=len {
                for special in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
                    let mut s: Vec<u8> = (0..len)
                        .map(|i| [b'!', b'#', b'[', b']', b' ', 0xc3, 0xa9, 0x7f][i % 8])
                        .collect();
                    let want = (at < len).then_some(at);
                    if at < len {
                        s[at] = special;
                        // A second special byte later never hides the first.
                        if at + 3 < len {
                            s[at + 3] = b'"';
                        }
                    }
                    assert_eq!(first_special(&s), want, "{s:?}");
                }
            }
        }
    }

    #[test]
    fn a_name_is_found_in_place_only_when_whole_and_followed_by_a_quote() {
        use super::{head, name_then_quote};
        let check = |text: &str, at: usize, name: &str| {
            name_then_quote(text.as_bytes(), at, name.as_bytes(), head(name.as_bytes()))
        };
        for name in ["", "id", "pass", "password", "password_hash", "created_at"] {
            let text = format!("\"{name}\":1,\"x\":2}}");
            assert!(check(&text, 1, name), "{name}");
        }
        // A longer key, one sharing the first eight bytes, another name.
        assert!(!check("\"password_hash\":1}", 1, "password"));
        assert!(!check("\"password_hasx\":1}", 1, "password_hash"));
        assert!(!check("\"passwore\":1,\"x\":2}", 1, "password"));
        assert!(!check("\"pass\":1,\"x\":2}", 1, "password"));
        // Fewer than eight bytes left: not read in place.
        assert!(!check("\"id\":1}", 1, "id"));
    }
}
