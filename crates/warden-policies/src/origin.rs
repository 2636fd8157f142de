//! Web origins (`scheme://host[:port]`), as the `csrf` and `cors` policies
//! compare them.

/// `scheme://host[:port]` in lower case, default ports dropped; `None` for
/// anything else (a path, a wildcard, no scheme).
pub(crate) fn normalise_origin(o: &str) -> Option<String> {
    let lower = o.trim().to_ascii_lowercase();
    let (scheme, rest) = lower.split_once("://")?;
    if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.contains(['/', '?', '#', '@', '*', ' ']) {
        return None;
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (inside, after) = v6.split_once(']')?;
        (
            format!("[{inside}]"),
            after.strip_prefix(':').or(after.is_empty().then_some(""))?,
        )
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h.to_owned(), p),
            None => (rest.to_owned(), ""),
        }
    };
    if host.is_empty() || host == "[]" || !port.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let default = port.is_empty() || (scheme == "http" && port == "80") || (scheme == "https" && port == "443");
    let host = if default { host } else { format!("{host}:{port}") };
    Some(format!("{scheme}://{host}"))
}
