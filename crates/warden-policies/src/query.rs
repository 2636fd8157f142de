//! Query-string credential helpers shared by the authentication policies.

use http::request;

/// The value of query parameter `param`; `Err` when it appears more than once
/// (in any spelling), so a second copy cannot be read by someone else.
pub(crate) fn single<'a>(req: &'a request::Parts, param: &str) -> Result<Option<&'a str>, ()> {
    let query = req.uri.query().unwrap_or("");
    let mut found = query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .filter(|(k, _)| names_param(k, param));
    let first = found.next();
    if found.next().is_some() {
        return Err(());
    }
    Ok(first.map(|(_, v)| v))
}

/// Rewrites the request URI without query parameter `param` (every spelling).
pub(crate) fn strip(req: &mut request::Parts, param: &str) {
    let Some(query) = req.uri.query() else { return };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|kv| !names_param(kv.split_once('=').map_or(*kv, |(k, _)| k), param))
        .collect();
    let pq = if kept.is_empty() {
        req.uri.path().to_owned()
    } else {
        format!("{}?{}", req.uri.path(), kept.join("&"))
    };
    let mut parts = req.uri.clone().into_parts();
    if let Ok(pq) = pq.parse() {
        parts.path_and_query = Some(pq);
        if let Ok(uri) = http::Uri::from_parts(parts) {
            req.uri = uri;
        }
    }
}

/// True when query key `k` is `param`, also in a percent-encoded spelling
/// (`access%5Ftoken`), so an encoded duplicate cannot slip past the
/// duplicate check or survive stripping.
fn names_param(k: &str, param: &str) -> bool {
    if k == param {
        return true;
    }
    if !k.contains('%') {
        return false;
    }
    let bytes = k.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(h) = bytes.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(std::str::from_utf8(h).unwrap_or("zz"), 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out == param.as_bytes()
}
