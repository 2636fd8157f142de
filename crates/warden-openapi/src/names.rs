//! How request names and values are read and shown: percent-decoding that
//! never fails, and the one rule for naming a location in a refusal.

/// Percent-decoding that never fails (`+` is a space): a broken escape stays
/// literal, invalid UTF-8 becomes U+FFFD, so nothing hides behind a decoding
/// error.
pub fn percent_decode_lossy(s: &str) -> String {
    let b = s.as_bytes();
    if !b.iter().any(|c| matches!(c, b'%' | b'+')) {
        return s.to_owned();
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |j: usize| b.get(j).and_then(|c| (*c as char).to_digit(16));
        match (b[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', ..) => {
                out.push(b' ');
                i += 1;
            }
            (c, ..) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A name as a refusal or event shows it: itself when plain (ASCII letters,
/// digits, `_.-`, at most 64 bytes), else `*`, so a client-chosen name can
/// neither smuggle a value into a log nor forge a location.
pub fn shown(key: &str) -> &str {
    let plain = !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if plain { key } else { "*" }
}
