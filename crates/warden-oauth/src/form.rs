//! `application/x-www-form-urlencoded` bodies, strictly: every parameter at
//! most once (RFC 6749 §3.1, §3.2), valid UTF-8, bounded.

use std::collections::HashMap;

/// Most parameters a token request may carry.
const MAX_PARAMS: usize = 32;

/// Parses `body`; `Err` names the problem (for `error_description`).
pub(crate) fn parse(body: &[u8]) -> Result<HashMap<String, String>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_owned())?;
    let mut out = HashMap::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        if out.len() == MAX_PARAMS {
            return Err("too many parameters".into());
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (decode(k)?, decode(v)?);
        if out.insert(k.clone(), v).is_some() {
            return Err(format!("parameter `{k}` appears more than once"));
        }
    }
    Ok(out)
}

/// Percent-decoding with `+` as space.
pub(crate) fn decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| "bad percent-encoding".to_owned())?;
                out.push(hex);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "a parameter is not UTF-8".to_owned())
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn strict_parsing() {
        let f = parse(b"grant_type=client_credentials&scope=a+b%20c").unwrap_or_default();
        assert_eq!(f["grant_type"], "client_credentials");
        assert_eq!(f["scope"], "a b c");
        assert!(parse(b"a=1&a=2").is_err());
        assert!(parse(b"a=%zz").is_err());
        assert!(parse(b"a=%ff").is_err());
        assert!(parse(&[0xff]).is_err());
        let many: Vec<String> = (0..40).map(|i| format!("p{i}=1")).collect();
        assert!(parse(many.join("&").as_bytes()).is_err());
    }
}
