//! Headers the gateway owns between client and upstream: hop-by-hop stripping,
//! `X-Forwarded-For/-Proto/-Host`, `Forwarded` (RFC 7239), and the request id.
//!
//! Client-supplied forwarding headers and request ids are believed only when the
//! TCP peer is a configured trusted proxy; from anyone else they are replaced.

use std::net::IpAddr;
use std::sync::Arc;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// Hop-by-hop headers (RFC 9110 §7.6.1), plus the obsolete `proxy-connection`.
pub(crate) fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// Client-address headers some upstream frameworks believe; from an untrusted
/// client they can only be spoofed.
fn spoofable_client_address(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "x-real-ip"
            | "true-client-ip"
            | "x-client-ip"
            | "x-forwarded-port"
            | "x-forwarded-prefix"
            | "x-original-forwarded-for"
    )
}

/// Removes hop-by-hop headers, including those named in `Connection`. With
/// `upgrade` set, `Connection: upgrade` and `Upgrade` are kept for the handshake.
/// One pass over the names present; nothing is allocated when nothing goes.
pub fn strip_hop_by_hop(h: &mut HeaderMap, upgrade: bool) {
    scrub(h, upgrade, false);
}

/// [`strip_hop_by_hop`] for a request, also removing spoofable client-address
/// headers when the peer is not a trusted proxy — in the same single pass.
pub fn scrub_request(h: &mut HeaderMap, upgrade: bool, trusted: bool) {
    scrub(h, upgrade, !trusted);
}

fn scrub(h: &mut HeaderMap, upgrade: bool, untrusted: bool) {
    let mut doomed: Vec<HeaderName> = Vec::new();
    let mut has_connection = false;
    for name in h.keys() {
        if *name == header::CONNECTION {
            has_connection = true;
        }
        let hop = is_hop_by_hop(name) && !(upgrade && name == header::UPGRADE);
        if hop || (untrusted && spoofable_client_address(name)) {
            doomed.push(name.clone());
        }
    }
    if has_connection {
        for v in h.get_all(header::CONNECTION) {
            let Ok(v) = v.to_str() else { continue };
            for token in v.split(',') {
                if let Ok(name) = HeaderName::from_bytes(token.trim().as_bytes())
                    && !(upgrade && name == header::UPGRADE)
                    && !gateway_owned(&name)
                {
                    doomed.push(name);
                }
            }
        }
    }
    for name in doomed {
        h.remove(name);
    }
    if upgrade {
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// Headers the gateway writes or relies on; a `Connection` token naming one of
/// them is ignored, so a client (or a trusted proxy passing a client's header
/// through) cannot make the gateway delete them.
fn gateway_owned(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "x-forwarded-for"
            | "x-forwarded-proto"
            | "x-forwarded-host"
            | "forwarded"
            | "x-request-id"
            | "host"
            | "content-length"
            | "content-type"
            | "authorization"
            | "cookie"
    )
}

/// True when the request asks for a protocol upgrade (WebSocket).
pub fn wants_upgrade(h: &HeaderMap) -> bool {
    h.contains_key(header::UPGRADE) && connection_has(h, "upgrade")
}

/// True when a `Connection` header lists `token` (any case).
pub fn connection_has(h: &HeaderMap, token: &str) -> bool {
    h.get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The client address: the peer, or — when the peer is a trusted proxy — the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(h: &HeaderMap, peer: IpAddr, trusted: impl Fn(IpAddr) -> bool) -> IpAddr {
    if !trusted(peer) {
        return peer;
    }
    let entries: Vec<&str> = h
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    // Walk from the right. An entry that does not parse stops the walk: the
    // last address that did is the best we can vouch for, so an attacker's
    // entry further left is never reached by skipping junk.
    let mut client = peer;
    for entry in entries.iter().rev() {
        let Some(ip) = parse_xff_entry(entry) else { break };
        client = ip;
        if !trusted(ip) {
            break;
        }
    }
    client
}

/// An `X-Forwarded-For` entry: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:5678`.
fn parse_xff_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse() {
        return Some(ip);
    }
    if let Some(rest) = entry.strip_prefix('[') {
        return rest.split_once(']').and_then(|(ip, _)| ip.parse().ok());
    }
    entry.parse::<std::net::SocketAddr>().ok().map(|sa| sa.ip())
}

/// The TCP peer as header text, computed once per connection (keep-alive
/// connections carry many requests).
#[derive(Debug, Clone)]
pub struct PeerText {
    /// The peer address.
    pub ip: IpAddr,
    /// The address as an `X-Forwarded-For` value.
    value: HeaderValue,
    /// The RFC 7239 node: `192.0.2.1` or `"[2001:db8::1]"`.
    node: String,
}

impl PeerText {
    /// Formats `ip` once.
    pub fn new(ip: IpAddr) -> Self {
        let text = ip.to_string();
        let node = match ip {
            IpAddr::V4(_) => text.clone(),
            IpAddr::V6(_) => format!("\"[{text}]\""),
        };
        let value = HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        Self { ip, value, node }
    }
}

/// What the gateway writes about the hop it received.
pub struct Hop<'a> {
    /// TCP peer.
    pub peer: &'a PeerText,
    /// The peer is a trusted proxy.
    pub trusted: bool,
    /// `http` or `https`.
    pub proto: &'static str,
    /// The Host the client asked for.
    pub host: Option<&'a HeaderValue>,
}

/// Writes `X-Forwarded-*` and `Forwarded`, keeping earlier hops only from trusted
/// peers. Expects a head [`scrub_request`] has already been through.
pub fn write_forwarded(h: &mut HeaderMap, hop: &Hop<'_>) {
    // Other client-address headers (X-Real-IP and the like) from an untrusted
    // client were already dropped by `scrub_request`, in the same pass as
    // the hop-by-hop headers.
    match hop.trusted.then(|| join(h, &X_FORWARDED_FOR)).flatten() {
        Some(prior) => set(h, &X_FORWARDED_FOR, &format!("{prior}, {}", hop.peer.node_plain())),
        None => {
            h.insert(X_FORWARDED_FOR.clone(), hop.peer.value.clone());
        }
    }
    if !(hop.trusted && h.contains_key(&X_FORWARDED_PROTO)) {
        h.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(hop.proto));
    }
    if !(hop.trusted && h.contains_key(&X_FORWARDED_HOST)) {
        match hop.host {
            Some(host) => {
                h.insert(X_FORWARDED_HOST.clone(), host.clone());
            }
            None => {
                h.remove(&X_FORWARDED_HOST);
            }
        }
    }
    let host = hop
        .host
        .and_then(|v| v.to_str().ok())
        .filter(|h| h.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'));
    // Sized exactly, so the header value takes the buffer without a copy.
    let parts = [
        "for=",
        hop.peer.node.as_str(),
        ";proto=",
        hop.proto,
        if host.is_some() { ";host=\"" } else { "" },
        host.unwrap_or(""),
        if host.is_some() { "\"" } else { "" },
    ];
    let mut element = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        element.extend_from_slice(p.as_bytes());
    }
    match hop.trusted.then(|| join(h, &FORWARDED)).flatten() {
        Some(prior) => set(
            h,
            &FORWARDED,
            &format!("{prior}, {}", String::from_utf8_lossy(&element)),
        ),
        None => put(
            h,
            &FORWARDED,
            HeaderValue::from_maybe_shared(bytes::Bytes::from(element)),
        ),
    }
}

impl PeerText {
    fn node_plain(&self) -> &str {
        self.value.to_str().unwrap_or("unknown")
    }
}

fn join(h: &HeaderMap, name: &HeaderName) -> Option<String> {
    let parts: Vec<&str> = h.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn set(h: &mut HeaderMap, name: &HeaderName, value: &str) {
    put(h, name, HeaderValue::from_str(value));
}

/// Sets `name` to `value`, or removes it when the value is not a valid one.
fn put(h: &mut HeaderMap, name: &HeaderName, value: Result<HeaderValue, header::InvalidHeaderValue>) {
    match value {
        Ok(v) => {
            h.insert(name.clone(), v);
        }
        Err(_) => {
            h.remove(name);
        }
    }
}

/// A request id as text and as a header value: the trusted peer's if
/// well-formed (its header value reused as it is), else a fresh random one
/// written once on the stack and copied into each form.
pub fn request_id(h: &HeaderMap, trusted: bool) -> (Arc<str>, HeaderValue) {
    if trusted
        && let Some(value) = h.get(&crate::respond::REQUEST_ID)
        && let Ok(v) = value.to_str()
        && !v.is_empty()
        && v.len() <= 128
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return (Arc::from(v), value.clone());
    }
    let hex = fresh_id();
    let text = id_text(&hex);
    let value = HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("-"));
    (Arc::from(text), value)
}

/// A fresh random request id: 32 lower-case hex digits.
pub fn new_request_id() -> String {
    id_text(&fresh_id()).to_owned()
}

/// 128 random bits as 32 lower-case hex digits.
fn fresh_id() -> [u8; 32] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = [0u8; 32];
    for (pair, byte) in id.chunks_exact_mut(2).zip(rand::random::<u128>().to_be_bytes()) {
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 0x0f)];
    }
    id
}

/// The id's digits as text. Hex digits are ASCII, so this never falls back.
fn id_text(id: &[u8; 32]) -> &str {
    std::str::from_utf8(id).unwrap_or("00000000000000000000000000000000")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn hop_by_hop_and_connection_listed_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("keep-alive, x-secret-hop"));
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("te", HeaderValue::from_static("gzip"));
        h.insert("upgrade", HeaderValue::from_static("h2c"));
        h.insert("x-end-to-end", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("x-end-to-end"));
    }

    #[test]
    fn upgrade_handshake_keeps_upgrade_headers() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("Upgrade"));
        h.insert("upgrade", HeaderValue::from_static("websocket"));
        assert!(wants_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["connection"], "upgrade");
    }

    #[test]
    fn spoofed_xff_from_untrusted_peer_is_ignored_and_replaced() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        h.insert("forwarded", HeaderValue::from_static("for=1.2.3.4"));
        h.insert("x-forwarded-host", HeaderValue::from_static("evil.example"));
        let peer = ip("198.51.100.9");
        assert_eq!(client_ip(&h, peer, |_| false), peer);
        write_forwarded(
            &mut h,
            &Hop {
                peer: &PeerText::new(peer),
                trusted: false,
                proto: "http",
                host: Some(&HeaderValue::from_static("api.example.com")),
            },
        );
        assert_eq!(h["x-forwarded-for"], "198.51.100.9");
        assert_eq!(h["x-forwarded-host"], "api.example.com");
        assert_eq!(h["forwarded"], "for=198.51.100.9;proto=http;host=\"api.example.com\"");
    }

    #[test]
    fn trusted_peer_chain_is_extended_and_client_is_rightmost_untrusted() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("9.9.9.9, 203.0.113.5, 10.0.0.2"),
        );
        let trusted = |ip: IpAddr| matches!(ip, IpAddr::V4(v4) if v4.octets()[0] == 10);
        let peer = ip("10.0.0.1");
        assert_eq!(client_ip(&h, peer, trusted), ip("203.0.113.5"));
        write_forwarded(
            &mut h,
            &Hop {
                peer: &PeerText::new(peer),
                trusted: true,
                proto: "http",
                host: None,
            },
        );
        assert_eq!(h["x-forwarded-for"], "9.9.9.9, 203.0.113.5, 10.0.0.2, 10.0.0.1");
    }

    #[test]
    fn junk_or_port_forms_in_a_trusted_chain_do_not_let_spoofed_entries_through() {
        let trusted = |ip: IpAddr| matches!(ip, IpAddr::V4(v4) if v4.octets()[0] == 10);
        let peer = ip("10.0.0.1");
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, garbage, 10.0.0.2"),
        );
        assert_eq!(
            client_ip(&h, peer, trusted),
            ip("10.0.0.2"),
            "stops at junk, never reaches 6.6.6.6"
        );
        h.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6, 203.0.113.5:4711"));
        assert_eq!(client_ip(&h, peer, trusted), ip("203.0.113.5"));
        h.insert("x-forwarded-for", HeaderValue::from_static("[2001:db8::7]:443"));
        assert_eq!(client_ip(&h, peer, trusted), ip("2001:db8::7"));
    }

    #[test]
    fn connection_cannot_delete_headers_the_gateway_owns() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("x-forwarded-for, forwarded, host, x-junk"),
        );
        h.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.5"));
        h.insert("forwarded", HeaderValue::from_static("for=203.0.113.5"));
        h.insert("host", HeaderValue::from_static("api"));
        h.insert("x-junk", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h, false);
        assert!(h.contains_key("x-forwarded-for") && h.contains_key("forwarded") && h.contains_key("host"));
        h.insert("x-real-ip", HeaderValue::from_static("6.6.6.6"));
        h.insert("true-client-ip", HeaderValue::from_static("6.6.6.6"));
        h.insert("x-original-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        let peer = PeerText::new(ip("198.51.100.1"));
        // As in the handler: the untrusted client's head is scrubbed first.
        scrub_request(&mut h, false, false);
        write_forwarded(
            &mut h,
            &Hop {
                peer: &peer,
                trusted: false,
                proto: "http",
                host: None,
            },
        );
        assert!(
            !h.contains_key("x-real-ip")
                && !h.contains_key("true-client-ip")
                && !h.contains_key("x-original-forwarded-for"),
            "spoofable client-IP headers kept"
        );
        assert!(!h.contains_key("x-junk"));
    }

    #[test]
    fn ipv6_forwarded_node_is_quoted() {
        let mut h = HeaderMap::new();
        write_forwarded(
            &mut h,
            &Hop {
                peer: &PeerText::new(ip("::1")),
                trusted: false,
                proto: "http",
                host: None,
            },
        );
        assert_eq!(h["forwarded"], "for=\"[::1]\";proto=http");
    }

    #[test]
    fn request_id_is_accepted_only_from_trusted_peers_and_only_when_well_formed() {
        let mut h = HeaderMap::new();
        h.insert("x-request-id", HeaderValue::from_static("abc-123"));
        let (id, value) = request_id(&h, true);
        assert_eq!((&*id, value.to_str().unwrap()), ("abc-123", "abc-123"));
        assert_ne!(&*request_id(&h, false).0, "abc-123");
        h.insert("x-request-id", HeaderValue::from_static("bad id<script>"));
        let (generated, value) = request_id(&h, true);
        assert_eq!(generated.len(), 32);
        assert!(
            generated
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(value.to_str().unwrap(), &*generated, "both forms carry the same id");
        assert_ne!(request_id(&h, false).0, generated, "ids are random");
    }
}
