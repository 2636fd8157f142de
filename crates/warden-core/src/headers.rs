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
