//! Host rules of routes and the request's `Host`, brought to one comparable form.
//!
//! Both sides are lower-cased and lose a trailing dot (`API.Example.com.` is
//! `api.example.com`); the request side also loses its `:port`. A wildcard rule
//! `*.example.com` matches one or more labels before `.example.com`, never
//! `example.com` itself.

use std::borrow::Cow;
use std::fmt;

use super::RouteError;

/// The host part of a route, validated and normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum HostRule {
    /// Any host.
    Any,
    /// One exact host name (lower case, no port).
    Exact(Box<str>),
    /// A wildcard: the suffix including its leading dot, e.g. `.example.com`.
    Wildcard(Box<str>),
}

impl fmt::Display for HostRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any host"),
            Self::Exact(host) => write!(f, "host `{host}`"),
            Self::Wildcard(suffix) => write!(f, "host `*{suffix}`"),
        }
    }
}

impl HostRule {
    /// Parses the host of a route: `None`, `api.example.com`, `*.example.com` or `[::1]`.
    pub(super) fn parse(host: Option<&str>) -> Result<Self, RouteError> {
        let Some(raw) = host else {
            return Ok(Self::Any);
        };
        let invalid = |reason: &str| RouteError::InvalidHost {
            host: raw.to_owned(),
            reason: reason.to_owned(),
        };
        let host = raw.strip_suffix('.').unwrap_or(raw).to_ascii_lowercase();
        if host.is_empty() {
            return Err(invalid("host is empty; leave it out to match any host"));
        }
        if host == "*" {
            return Err(invalid("`*` alone is not a host; leave it out to match any host"));
        }
        if let Some(suffix) = host.strip_prefix('*') {
            let Some(name) = suffix.strip_prefix('.') else {
                return Err(invalid("a wildcard must be written `*.example.com`"));
            };
            check_name(name).map_err(invalid)?;
            return Ok(Self::Wildcard(suffix.into()));
        }
        if host.starts_with('[') {
            check_ipv6(&host).map_err(invalid)?;
        } else {
            check_name(&host).map_err(invalid)?;
        }
        Ok(Self::Exact(host.into()))
    }
}

/// Checks a dot-separated host name (or IPv4 address) without port or wildcard.
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.contains(':') {
        return Err("a port is not allowed here (ports are ignored when matching)");
    }
    if name.contains('*') {
        return Err("`*` is only allowed as the whole first label, as in `*.example.com`");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("host has an empty label");
        }
        let valid = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        if !label.bytes().all(valid) {
            return Err("host labels may contain only letters, digits, `-` and `_`");
        }
    }
    Ok(())
}

/// Checks a bracketed IPv6 literal such as `[::1]`, without port.
fn check_ipv6(host: &str) -> Result<(), &'static str> {
    let inner = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .ok_or("an IPv6 address must be written `[addr]`, without port")?;
    let valid = |b: u8| b.is_ascii_hexdigit() || b == b':' || b == b'.';
    if inner.is_empty() || !inner.bytes().all(valid) {
        return Err("not a valid IPv6 literal");
    }
    Ok(())
}

/// Brings a request's `Host` (or `:authority`) to the form of [`HostRule`]: port
/// stripped, one trailing dot removed, ASCII lower case. Allocates only when the
/// host has upper-case letters.
pub(super) fn normalize_request_host(host: &str) -> Cow<'_, str> {
    let host = if host.starts_with('[') {
        match host.find(']') {
            Some(end) => host.get(..=end).unwrap_or(host),
            None => host,
        }
    } else {
        host.split_once(':').map_or(host, |(name, _port)| name)
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

/// The wildcard suffixes a normalised host can match, longest first: for
/// `a.b.example.com` these are `.b.example.com`, `.example.com` and `.com`.
pub(super) fn wildcard_suffixes(host: &str) -> impl Iterator<Item = &str> {
    host.match_indices('.')
        .filter(|&(at, _)| at > 0)
        .filter_map(|(at, _)| host.get(at..))
}
