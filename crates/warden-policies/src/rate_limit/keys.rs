//! A limit's key: its parts, and the values a request gives them.

use std::fmt::Write as _;
use std::net::IpAddr;

use http::{HeaderName, request};
use serde_json::Value;
use warden_core::RequestCtx;

/// One part of a limit's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyPart {
    Ip,
    Consumer,
    Credential,
    Route,
    Header(HeaderName),
    Claim(String),
}

impl KeyPart {
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        match s {
            "ip" => Ok(Self::Ip),
            "consumer" => Ok(Self::Consumer),
            "credential" => Ok(Self::Credential),
            "route" => Ok(Self::Route),
            _ => {
                if let Some(h) = s.strip_prefix("header:") {
                    return HeaderName::from_bytes(h.as_bytes())
                        .ok()
                        .filter(|n| n.as_str() == h)
                        .map(Self::Header)
                        .ok_or_else(|| format!("`{h}` is not a lower-case header name"));
                }
                if let Some(c) = s.strip_prefix("claim:").filter(|c| !c.is_empty()) {
                    return Ok(Self::Claim(c.to_owned()));
                }
                Err(format!(
                    "`{s}` is not ip, consumer, credential, route, header:NAME or claim:NAME"
                ))
            }
        }
    }

    /// Appends this part's value for the request to `out`. A part the
    /// request does not have (an anonymous consumer, a missing header) counts
    /// by client address instead, so a missing value never pools every such
    /// client together.
    fn write_value(&self, req: &request::Parts, ctx: &RequestCtx, out: &mut String) {
        let start = out.len();
        let found = match self {
            Self::Ip => false,
            Self::Consumer => ctx.consumer.as_deref().is_some_and(|c| {
                out.push_str("c=");
                out.push_str(c);
                true
            }),
            Self::Credential => ctx.credential.as_deref().is_some_and(|c| {
                out.push_str("k=");
                out.push_str(c);
                true
            }),
            Self::Route => {
                out.push_str("r=");
                out.push_str(ctx.route_id.as_deref().unwrap_or(""));
                true
            }
            // The header's or claim's name goes in too (two plans may key a
            // limit of one name by different ones), and the value's form:
            // no two distinct values write the same text.
            Self::Header(h) => req.headers.get(h).is_some_and(|v| {
                match std::str::from_utf8(v.as_bytes()) {
                    Ok(text) => {
                        let _ = write!(out, "hs:{h}={text}");
                    }
                    // Bytes that are not UTF-8 go in as hex.
                    Err(_) => {
                        let _ = write!(out, "hx:{h}=");
                        for b in v.as_bytes() {
                            let _ = write!(out, "{b:02x}");
                        }
                    }
                }
                true
            }),
            Self::Claim(c) => ctx.token_claims.as_deref().and_then(|m| m.get(c)).is_some_and(|v| {
                // The claim's name is length-prefixed: it may hold any character.
                match v {
                    Value::String(text) => {
                        let _ = write!(out, "ts{}:{c}{text}", c.len());
                    }
                    other => {
                        let _ = write!(out, "tj{}:{c}{other}", c.len());
                    }
                }
                true
            }),
        };
        if !found {
            out.truncate(start);
            out.push_str("ip=");
            write_client_net(out, ctx.client_ip);
        }
    }

    /// Appends this part to `key`, length-prefixed; values longer than 64
    /// bytes (a client-chosen header, say) go in as their SHA-256, so keys
    /// stay small.
    pub(super) fn push_to(&self, req: &request::Parts, ctx: &RequestCtx, key: &mut String) {
        let at = key.len();
        self.write_value(req, ctx, key);
        let len = key.len() - at;
        if len <= 64 {
            key.insert(at, ':');
            key.insert_str(at, itoa::Buffer::new().format(len));
        } else {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &key.as_bytes()[at..]);
            key.truncate(at);
            key.push_str("h:");
            for b in digest.as_ref() {
                let _ = write!(key, "{b:02x}");
            }
        }
    }
}

/// The client's address as counted: IPv4 as is, IPv6 by its /64 (one
/// subscriber usually holds a whole /64), IPv4-mapped IPv6 as IPv4.
pub(crate) fn client_net(ip: IpAddr) -> String {
    let mut out = String::with_capacity(24);
    write_client_net(&mut out, ip);
    out
}

fn write_client_net(out: &mut String, ip: IpAddr) {
    let v4 = match ip {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4,
            None => {
                let s = v6.segments();
                let _ = write!(out, "{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]);
                return;
            }
        },
    };
    // Dotted decimal by hand: this runs for every rate-limited request.
    for (i, b) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if b >= 100 {
            out.push(char::from(b'0' + b / 100));
        }
        if b >= 10 {
            out.push(char::from(b'0' + b / 10 % 10));
        }
        out.push(char::from(b'0' + b % 10));
    }
}
