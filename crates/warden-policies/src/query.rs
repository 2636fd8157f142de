//! Query-string helpers: credentials read once and stripped (authentication
//! policies) and percent-decoding of values.

use http::request;

/// The value of query parameter `param`; `Err` when it appears more than once
/// (in any spelling), so a second copy cannot be read by someone else.
pub(crate) fn single<'a>(req: &'a request::Parts, param: &str) -> Result<Option<&'a str>, ()> {
    let query = req.uri.query().unwrap_or("");
    // Some parsers also split on `;` (Go before 1.17, older Python): a
    // second copy could hide behind one.
    if query.contains(';') {
        return Err(());
    }
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

/// True when query key `k` names `param` for some upstream parser: in a
/// percent-encoded spelling (`access%5Ftoken`), in another case (ASP.NET),
/// with `.`, space or `[` for `_` (PHP), or as an array (`user_id[]`,
/// `user_id[x]`). So a look-alike cannot slip past the duplicate check or
/// survive stripping.
fn names_param(k: &str, param: &str) -> bool {
    k == param || normalise(k) == normalise(param)
}

fn normalise(k: &str) -> Vec<u8> {
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
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    if let Some(open) = out.iter().position(|&b| b == b'[')
        && out[open..].contains(&b']')
    {
        out.truncate(open);
    }
    for b in &mut out {
        *b = match b.to_ascii_lowercase() {
            b'.' | b' ' | b'[' => b'_',
            other => other,
        };
    }
    out
}

/// Percent-decodes a query value (`+` is a space); `None` for a broken
/// escape or a result that is not UTF-8.
pub fn percent_decode(v: &str) -> Option<String> {
    let mut out = Vec::with_capacity(v.len());
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    fn req(q: &str) -> http::request::Parts {
        http::Request::get(format!("/x?{q}")).body(()).unwrap().into_parts().0
    }

    #[test]
    fn look_alike_copies_of_a_parameter_are_refused() {
        assert_eq!(super::single(&req("user_id=me"), "user_id"), Ok(Some("me")));
        for q in [
            "user_id=me&user.id=victim",
            "user_id=me&USER_ID=victim",
            "user_id=me&user%5Fid=victim",
            "user_id=me&user_id[]=victim",
            "user_id=me&user+id=victim",
            "x=;user_id=victim&user_id=me",
        ] {
            assert_eq!(super::single(&req(q), "user_id"), Err(()), "{q}");
        }
        // Benign neighbours stay readable.
        assert_eq!(
            super::single(&req("user_id=me&user_ids=a&other_id=b"), "user_id"),
            Ok(Some("me"))
        );
    }
}
