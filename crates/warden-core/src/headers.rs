//! Header names the gateway or HTTP itself owns. Configurable header names
//! that carry identity (client-certificate identity, forwarded token claims)
//! may not be one of these, nor contain `_` (which CGI-style stacks fold into
//! `-`, making two names one).

/// Owned by HTTP framing, by the gateway's forwarding headers, or carrying
/// credentials.
pub const RESERVED: [&str; 19] = [
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "te",
    "trailer",
    "upgrade",
    "keep-alive",
    "proxy-authorization",
    "authorization",
    "cookie",
    "set-cookie",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-request-id",
    "www-authenticate",
];

/// True when `name` (lower case, as `http::HeaderName` keeps it) may not be
/// configured as an identity header.
pub fn is_reserved_or_ambiguous(name: &str) -> bool {
    name.contains('_') || RESERVED.contains(&name)
}

/// Removes every header in `names` from `h`, with the spellings that use `_`
/// for `-` (`X_Client_Cert`), which CGI-style stacks (PHP, Rack, WSGI) read as
/// the same variable. For headers only the gateway may write.
pub fn remove_with_lookalikes(h: &mut http::HeaderMap, names: &[http::HeaderName]) {
    if names.is_empty() {
        return;
    }
    for name in names {
        h.remove(name);
    }
    let lookalikes: Vec<http::HeaderName> = h
        .keys()
        .filter(|k| k.as_str().contains('_'))
        .filter(|k| {
            let dashed = k.as_str().replace('_', "-");
            names.iter().any(|n| n.as_str() == dashed)
        })
        .cloned()
        .collect();
    for name in lookalikes {
        h.remove(name);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use http::{HeaderMap, HeaderName, HeaderValue};

    #[test]
    fn exact_names_and_underscore_spellings_go_others_stay() {
        let mut h = HeaderMap::new();
        for n in [
            "x-client-cert",
            "x_client_cert",
            "x_client-cert",
            "x-client-certs",
            "accept",
        ] {
            h.insert(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_static("v"),
            );
        }
        super::remove_with_lookalikes(&mut h, &[HeaderName::from_static("x-client-cert")]);
        let left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left.contains(&"x-client-certs") && left.contains(&"accept"));
    }
}
