//! Server-side request forgery, for fields that hold a URL.
//!
//! A URL is refused when its scheme is not `http`/`https`, or its host is
//! literally internal: loopback, private, link-local, carrier-grade NAT,
//! unspecified, multicast, cloud metadata names and addresses, `localhost`
//! and `*.localhost`, `*.internal`, and the public wildcard-DNS names that
//! point anywhere (`127.0.0.1.nip.io`). IPv4 is read the way `inet_aton` reads
//! it (decimal `2130706433`, hex `0x7f000001`, octal `0177.0.0.1`, short
//! `127.1`); IPv6 literals are checked including IPv4-mapped, compatible and
//! NAT64 forms. Names are never resolved: a public name that resolves to an
//! internal address (DNS rebinding) is the outbound proxy's job.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::normalize::Views;
use crate::rules::found;
use crate::{Category, Finding};

/// Checks the value as received.
pub(crate) fn check(value: &str) -> Option<Finding> {
    judge(&clean(value))
}

/// Checks a value outside a URL field: only when the whole value is an
/// `http:` or `https:` URL is its host judged.
pub(crate) fn check_http_value(value: &str) -> Option<Finding> {
    // Most values start with neither white space (which `trim` would drop)
    // nor an `h`: they are cleared by their first byte.
    if let Some(&first) = value.as_bytes().first()
        && first.is_ascii()
        && !char::from(first).is_whitespace()
        && first | 0x20 != b'h'
    {
        return None;
    }
    let v = value.trim();
    let starts = |p: &str| v.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p));
    if !(starts("http:") || starts("https:")) || v.contains(' ') {
        return None;
    }
    judge(&clean(v)).filter(|f| f.rule == "internal_host")
}

/// What URL parsers (WHATWG, Python's `urlsplit`) do first: tabs and line
/// breaks removed, back-slashes read as slashes.
fn clean(value: &str) -> String {
    value
        .trim()
        .chars()
        .filter(|c| !matches!(c, '\t' | '\r' | '\n'))
        .map(|c| if c == '\\' { '/' } else { c })
        .collect()
}

/// Checks the decoded, folded value (a host hidden behind `%31%32%37…` or
/// written in circled digits).
pub(crate) fn check_decoded(v: &Views<'_>) -> Option<Finding> {
    if v.folded == v.raw.to_ascii_lowercase() {
        None
    } else {
        judge(&clean(&v.folded))
    }
}

/// Schemes a fetched URL field may carry that are not fetched at all.
const INERT_SCHEMES: &[&str] = &["mailto", "tel", "sms", "urn", "geo"];

/// Schemes that reach other protocols (refused even without `//`).
const DANGEROUS_SCHEMES: &[&str] = &[
    "file",
    "gopher",
    "dict",
    "ftp",
    "ftps",
    "sftp",
    "tftp",
    "ldap",
    "ldaps",
    "jar",
    "netdoc",
    "php",
    "phar",
    "expect",
    "data",
    "javascript",
    "vbscript",
    "smb",
    "telnet",
    "ssh",
    "mysql",
    "redis",
    "imap",
    "pop3",
    "smtp",
    "jdbc",
    "zip",
    "glob",
    "ogg",
    "rtsp",
    "ws",
    "wss",
    "svn",
    "git",
];

fn judge(url: &str) -> Option<Finding> {
    let lower = url.to_ascii_lowercase();
    let (scheme, rest) = match split_scheme(&lower) {
        Some((s, r)) => (Some(s), r),
        None => (None, lower.as_str()),
    };
    // A URL has no space after its scheme (`PHP: echo …` is prose).
    if rest.starts_with(char::is_whitespace) {
        return None;
    }
    let bare = scheme.is_none();
    match scheme {
        Some("http" | "https") | None => {}
        Some(s) if DANGEROUS_SCHEMES.contains(&s) => return found(Category::Ssrf, "non_http_scheme"),
        Some(s) if INERT_SCHEMES.contains(&s) => return None,
        // Any other scheme with an authority is a URL for another protocol;
        // without one (`Note: …`) the value is not a URL at all.
        Some(_) if rest.starts_with("//") => return found(Category::Ssrf, "non_http_scheme"),
        Some(_) => return None,
    }
    if bare && lower.contains(char::is_whitespace) {
        return None;
    }
    let authority = match rest.strip_prefix("//") {
        Some(a) => a,
        None if !bare => rest.trim_start_matches('/'),
        // No scheme: only a bare host (or host:port/path) is judged.
        None => rest,
    };
    let end = authority.find(['/', '?', '#', '\\']).unwrap_or(authority.len());
    let authority = &authority[..end];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = strip_port(host_port);
    // Without a scheme, only something that looks like a host is judged
    // (`15/03/2024` is a date).
    if host.is_empty() || (bare && !host.contains(['.', ':']) && !INTERNAL_NAMES.contains(&host) && host_port == host) {
        return None;
    }
    internal_host(host).then_some(())?;
    found(Category::Ssrf, "internal_host")
}

/// `scheme:` per RFC 3986, when the value starts with one.
fn split_scheme(s: &str) -> Option<(&str, &str)> {
    let colon = s.find(':')?;
    let scheme = &s[..colon];
    let valid = scheme.len() > 1
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    // `localhost:8080` is a host and port, not a scheme.
    let port_follows = s[colon + 1..].starts_with(|c: char| c.is_ascii_digit());
    (valid && !port_follows).then(|| (scheme, &s[colon + 1..]))
}

fn strip_port(host_port: &str) -> &str {
    if let Some(rest) = host_port.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    match host_port.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host_port,
    }
}

const INTERNAL_NAMES: &[&str] = &[
    "localhost",
    "localhost.localdomain",
    "ip6-localhost",
    "ip6-loopback",
    "metadata",
    "metadata.google.internal",
    "instance-data",
    "instance-data.ec2.internal",
    "kubernetes.default",
    "kubernetes.default.svc",
];

const WILDCARD_DNS: &[&str] = &[
    ".nip.io",
    ".sslip.io",
    ".xip.io",
    ".localtest.me",
    ".lvh.me",
    ".vcap.me",
];

fn internal_host(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    if INTERNAL_NAMES.contains(&host)
        || host.ends_with(".localhost")
        || host.ends_with(".internal")
        || host.ends_with(".local")
        || host == "localtest.me"
        || WILDCARD_DNS.iter().any(|d| host.ends_with(d))
    {
        return true;
    }
    if let Some(v4) = parse_ipv4(host) {
        return internal_v4(v4);
    }
    let v6 = host.split('%').next().unwrap_or(host);
    v6.parse::<Ipv6Addr>().is_ok_and(internal_v6)
}

fn internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 198 && (18..20).contains(&b))
        || a >= 240
}

fn internal_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return internal_v4(v4);
    }
    // IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d).
    if (seg[..6] == [0; 6] && seg[6] != 0) || seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let o = ip.octets();
        return internal_v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (seg[0] & 0xfe00) == 0xfc00
        || (seg[0] & 0xffc0) == 0xfe80
        || (seg[0] & 0xffc0) == 0xfec0
}

/// IPv4 the way `inet_aton` reads it: one to four parts, each decimal, octal
/// (leading `0`) or hex (`0x`), the last part filling the remaining bytes.
fn parse_ipv4(host: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let nums: Vec<u64> = parts.iter().map(|p| parse_part(p)).collect::<Option<_>>()?;
    let (last, init) = nums.split_last()?;
    if init.iter().any(|n| *n > 255) {
        return None;
    }
    let room = 8 * (4 - init.len() as u32);
    if room < 64 && *last >= (1u64 << room) {
        return None;
    }
    let value = init
        .iter()
        .enumerate()
        .fold(*last, |acc, (i, n)| acc | (n << (24 - 8 * i as u32)));
    u32::try_from(value).ok().map(Ipv4Addr::from)
}

fn parse_part(p: &str) -> Option<u64> {
    if p.is_empty() {
        return None;
    }
    let (digits, radix) = if let Some(hex) = p.strip_prefix("0x") {
        (hex, 16)
    } else if p.len() > 1 && p.starts_with('0') {
        (&p[1..], 8)
    } else {
        (p, 10)
    };
    // Leading zeros are free, as for inet_aton (`0000000177` is octal 177).
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Some(0);
    }
    if digits.len() > 22 {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(url: &str) -> bool {
        check(url).is_some()
    }

    #[test]
    fn numeric_forms_of_loopback_are_internal() {
        for url in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://user:pw@127.0.0.1:8080/x",
            "http://0/",
            "http:\\\\127.0.0.1/",
            "http:/\\127.0.0.1/",
            "http:\t//127.0.0.1/",
            "http://0000000000000177.0.0.1/",
            "http://0x00000000007f.1/",
        ] {
            assert!(bad(url), "{url}");
        }
    }

    #[test]
    fn metadata_private_and_odd_schemes_are_refused() {
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://100.100.100.200/",
            "http://10.1.2.3/",
            "http://[fd00:ec2::254]/",
            "file:///etc/passwd",
            "gopher://example.com:70/_x",
            "localhost:6379",
            "http://127.0.0.1.nip.io/",
        ] {
            assert!(bad(url), "{url}");
        }
    }

    #[test]
    fn public_urls_pass() {
        for url in [
            "https://example.com/search?q=shoes&page=2",
            "http://93.184.216.34/",
            "https://[2606:2800:220:1:248:1893:25c8:1946]/",
            "https://api.github.com:443/repos",
            "example.com/path",
            "https://10.example.com/",
            "mailto-like text without scheme",
        ] {
            assert!(!bad(url), "{url}");
        }
    }

    #[test]
    fn a_value_is_judged_as_a_url_only_when_it_starts_with_http_after_white_space() {
        // Every ASCII first byte: only `h` and `H` lead to a judged URL.
        for first in 0u8..0x80 {
            let value = format!("{}ttp://127.0.0.1/", char::from(first));
            let judged = check_http_value(&value).is_some();
            assert_eq!(judged, first | 0x20 == b'h', "{value:?}");
        }
        // White space `trim` drops, ASCII or not, is looked past.
        for lead in [
            " ", "\t", "\n", "\r", "\u{b}", "\u{c}", "\u{85}", "\u{a0}", "\u{2028}", "\u{3000}",
        ] {
            for url in ["http://127.0.0.1/", "HTTPS://10.0.0.1/"] {
                let value = format!("{lead}{url}");
                assert!(check_http_value(&value).is_some(), "{value:?}");
            }
        }
        for value in [
            "",
            "h",
            "\u{a0}",
            "éhttp://127.0.0.1/",
            "xhttp://127.0.0.1/",
            "https://example.com/",
        ] {
            assert!(check_http_value(value).is_none(), "{value:?}");
        }
    }
}
