//! Request path normalisation, run once per request before routing.
//!
//! Two spellings of the same resource must reach the same route, or a policy bound to
//! `/admin` could be bypassed with `/public/%2e%2e/admin` or `//admin`. This module
//! turns a raw request path into one canonical form and refuses the spellings that
//! upstreams disagree on (encoded slashes, backslashes, NUL and control bytes).
//!
//! The canonical form: percent-escapes of unreserved characters are decoded, every
//! other escape is kept with upper-case hex, literal non-ASCII characters are
//! percent-encoded (so `/café` and `/caf%C3%A9` are the same path), duplicate slashes
//! are merged and dot segments are removed (RFC 3986 §5.2.4). A trailing slash is kept.
//!
//! Limits: the query string is not handled here, and the result is a routing key, not
//! a decoded file name (reserved escapes such as `%3A` stay encoded).

/// Why a raw request path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/` (this includes `*` and absolute URIs).
    #[error("path must start with `/`")]
    NotAbsolute,
    /// The path contains `%2F`, which upstreams disagree on.
    #[error("path contains an encoded slash (`%2F`)")]
    EncodedSlash,
    /// The path contains `\` or `%5C`, which some servers treat as a separator.
    #[error("path contains a backslash (`\\` or `%5C`)")]
    Backslash,
    /// The path contains a NUL byte, literal or `%00`.
    #[error("path contains a NUL byte (`%00`)")]
    Nul,
    /// The percent-decoded path is not valid UTF-8.
    #[error("percent-decoded path is not valid UTF-8")]
    InvalidUtf8,
    /// A `%` is not followed by two hex digits.
    #[error("path contains a `%` that is not followed by two hex digits")]
    BadPercentEncoding,
    /// The path contains a control character (below 0x20, or 0x7F), literal or encoded.
    #[error("path contains a control character")]
    ControlChar,
    /// A `.` or `..` segment carries a `;` parameter (`/a/..;/b`): Tomcat and
    /// Spring resolve it as `..`, so it would climb where this router did not.
    #[error("path contains a dot segment with a `;` parameter")]
    DotSegmentParameter,
}

/// Normalises the raw path of a request URI (without its query string).
///
/// Already-normal ASCII paths (the common case) cost one scan and one copy.
///
/// # Errors
///
/// Returns a [`PathError`] when the path is not absolute, is badly percent-encoded,
/// or contains an encoded slash, a backslash, a NUL or control byte, or bytes that do
/// not decode to UTF-8.
pub fn normalize_path(raw: &str) -> Result<String, PathError> {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    let normal = if is_plain(bytes) {
        raw.to_owned()
    } else {
        remove_dot_segments(&decode(bytes)?)
    };
    if normal.contains(';')
        && normal
            .split('/')
            .any(|seg| seg.starts_with(".;") || seg.starts_with("..;"))
    {
        return Err(PathError::DotSegmentParameter);
    }
    Ok(normal)
}

/// True when `bytes` (starting with `/`) is printable ASCII without `%` or `\`, with no
/// empty segment except a trailing one, and no `.` or `..` segment.
fn is_plain(bytes: &[u8]) -> bool {
    let mut seg_len = 0usize;
    let mut dots = 0usize;
    for &b in bytes.iter().skip(1) {
        match b {
            b'/' => {
                if seg_len == 0 || (seg_len == dots && dots <= 2) {
                    return false;
                }
                seg_len = 0;
                dots = 0;
            }
            b'.' => {
                seg_len += 1;
                dots += 1;
            }
            b'%' | b'\\' | 0..=0x1F | 0x7F..=0xFF => return false,
            _ => seg_len += 1,
        }
    }
    !(seg_len > 0 && seg_len == dots && dots <= 2)
}

/// Decodes percent-escapes into the canonical spelling, refusing dangerous bytes.
fn decode(bytes: &[u8]) -> Result<String, PathError> {
    let mut out = String::with_capacity(bytes.len() + 8);
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex_value);
            let lo = bytes.get(i + 2).copied().and_then(hex_value);
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(PathError::BadPercentEncoding);
            };
            let v = (hi << 4) | lo;
            if v == b'/' {
                return Err(PathError::EncodedSlash);
            }
            check_byte(v)?;
            if is_unreserved(v) {
                out.push(char::from(v));
            } else {
                push_escape(&mut out, v);
            }
            decoded.push(v);
            i += 3;
        } else {
            check_byte(b)?;
            if b.is_ascii() {
                out.push(char::from(b));
            } else {
                push_escape(&mut out, b);
            }
            decoded.push(b);
            i += 1;
        }
    }
    if std::str::from_utf8(&decoded).is_err() {
        return Err(PathError::InvalidUtf8);
    }
    Ok(out)
}

/// Refuses a backslash, NUL or control byte, whether literal or decoded.
fn check_byte(b: u8) -> Result<(), PathError> {
    match b {
        b'\\' => Err(PathError::Backslash),
        0 => Err(PathError::Nul),
        0x01..=0x1F | 0x7F => Err(PathError::ControlChar),
        _ => Ok(()),
    }
}

/// RFC 3986 unreserved characters: ALPHA / DIGIT / `-` / `.` / `_` / `~`.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// The value of one hex digit.
fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Appends `%XX` with upper-case hex.
fn push_escape(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0x0F)]));
}

/// Merges duplicate slashes and removes `.` and `..` segments; `path` starts with `/`.
///
/// A trailing slash is kept, and a final `.` or `..` leaves one (`/a/b/..` → `/a/`).
fn remove_dot_segments(path: &str) -> String {
    let body = path.strip_prefix('/').unwrap_or(path);
    let mut out = String::with_capacity(path.len());
    let mut trailing_slash = false;
    let mut segments = body.split('/').peekable();
    while let Some(segment) = segments.next() {
        match segment {
            "" | "." => {}
            ".." => {
                let cut = out.rfind('/').unwrap_or(0);
                out.truncate(cut);
            }
            _ => {
                out.push('/');
                out.push_str(segment);
            }
        }
        if segments.peek().is_none() {
            trailing_slash = matches!(segment, "" | "." | "..");
        }
    }
    if out.is_empty() || trailing_slash {
        out.push('/');
    }
    out
}
