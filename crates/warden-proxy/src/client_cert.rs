//! Mutual TLS on the request path: a route's `client_cert` rule checked
//! against the identity the listener verified, the redirect/refuse answer of
//! plain-HTTP listeners, and the identity header sent upstream.

use http::header::{self, HeaderValue};
use http::{HeaderMap, Response, StatusCode};
use warden_config::schema::{ClientCertRule, PlainHttp};
use warden_core::{ProblemKind, Rejection};
use warden_tls::ClientIdentity;

use crate::body::{ProxyBody, empty};
use crate::handler::ConnInfo;

/// Refuses the request unless the connection carries a verified client
/// certificate that `rule` accepts.
pub fn check(rule: &ClientCertRule, conn: &ConnInfo) -> Result<(), Rejection> {
    let Some(id) = conn.tls.as_ref().and_then(|t| t.client.as_deref()) else {
        return Err(Rejection::new(
            ProblemKind::ClientCertRequired,
            "client_cert_missing",
            "route needs a client certificate; none was presented",
        ));
    };
    if rule.allows(id) {
        Ok(())
    } else {
        Err(Rejection::new(
            ProblemKind::ClientCertRequired,
            "client_cert_not_allowed",
            format!("client certificate `{}` ({}) is not allowed", id.principal(), id.sha256),
        ))
    }
}

/// Removes every configured identity header the client sent, then writes the
/// verified identity under this listener's header name, if it has one.
pub fn write_identity(h: &mut HeaderMap, all: &[http::HeaderName], conn: &ConnInfo) {
    warden_core::headers::remove_with_lookalikes(h, all);
    let (Some(name), Some(id)) = (
        conn.listener.identity_header.as_ref(),
        conn.tls.as_ref().and_then(|t| t.client.as_deref()),
    ) else {
        return;
    };
    if let Ok(v) = HeaderValue::from_str(&identity_value(id)) {
        h.insert(name.clone(), v);
    }
}

/// `hash=HEX;subject="DN";uri=URI;dns=NAME` (one `uri`/`dns` per SAN); every
/// byte outside visible ASCII, and `"` `\` `;` `,` inside values, is
/// percent-encoded so a crafted certificate cannot forge fields.
pub fn identity_value(id: &ClientIdentity) -> String {
    let mut out = format!("hash={};subject=\"{}\"", id.sha256, escape(&id.subject));
    for u in &id.uris {
        out.push_str(";uri=");
        out.push_str(&escape(u));
    }
    for d in &id.dns {
        out.push_str(";dns=");
        out.push_str(&escape(d));
    }
    out
}

fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_graphic() && !matches!(b, b'"' | b'\\' | b';' | b',' | b'%') || b == b' ' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Refuses (421) a request whose host is not the SNI name its TLS connection
/// was set up for, so a certificate (and, with HTTP/2, a connection) for one
/// host is never used to reach another host's routes.
pub fn check_sni(conn: &ConnInfo, host: &str) -> Result<(), Rejection> {
    let Some(sni) = conn.tls.as_ref().and_then(|t| t.sni.as_deref()) else {
        return Ok(());
    };
    let name = host
        .parse::<http::uri::Authority>()
        .map(|a| a.host().to_owned())
        .unwrap_or_default();
    if name.eq_ignore_ascii_case(sni) {
        Ok(())
    } else {
        Err(Rejection::new(
            ProblemKind::MisdirectedRequest,
            "sni_host_mismatch",
            format!("host `{name}` on a connection for `{sni}`"),
        ))
    }
}

/// What a plain-HTTP listener does before routing: `None` to serve, or the
/// answer (403 problem or 308 redirect).
pub fn plain_http_answer(
    conn: &ConnInfo,
    host: &str,
    path: &str,
    query: Option<&str>,
    request_id: &str,
) -> Option<Result<Response<ProxyBody>, Rejection>> {
    if conn.tls.is_some() {
        return None;
    }
    let refuse = || {
        Rejection::new(
            ProblemKind::HttpsRequired,
            "https_required",
            "plain-HTTP request on a listener that only accepts HTTPS",
        )
    };
    match conn.listener.plain_http {
        PlainHttp::Serve => None,
        PlainHttp::Refuse => Some(Err(refuse())),
        PlainHttp::Redirect => {
            let path_and_query = match query {
                Some(q) => format!("{path}?{q}"),
                None => path.to_owned(),
            };
            let Some(location) = https_location(host, conn.listener.https_port, &path_and_query) else {
                return Some(Err(refuse()));
            };
            let mut resp = Response::new(empty());
            *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
            resp.headers_mut().insert(header::LOCATION, location);
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            tracing::debug!(request_id, "plain HTTP redirected to HTTPS");
            Some(Ok(resp))
        }
    }
}

/// `https://HOST[:PORT]PATH` from the request's host (its port dropped).
fn https_location(host: &str, port: u16, path_and_query: &str) -> Option<HeaderValue> {
    let authority: http::uri::Authority = host.parse().ok()?;
    let name = authority.host();
    if name.is_empty() {
        return None;
    }
    let port = if port == 443 { String::new() } else { format!(":{port}") };
    HeaderValue::from_str(&format!("https://{name}{port}{path_and_query}")).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn identity_value_escapes_separators_and_non_ascii() {
        let id = ClientIdentity {
            subject: "CN=a\";hash=00,O=Ex ample".into(),
            dns: vec!["svc.example".into()],
            uris: vec!["spiffe://example.org/ns/a".into()],
            sha256: "ab".repeat(32),
        };
        let v = identity_value(&id);
        assert_eq!(
            v,
            format!(
                "hash={};subject=\"CN=a%22%3Bhash=00%2CO=Ex ample\";uri=spiffe://example.org/ns/a;dns=svc.example",
                "ab".repeat(32)
            )
        );
        assert_eq!(v.matches(";hash=").count(), 0);
    }

    #[test]
    fn redirect_location_keeps_path_and_swaps_port() {
        let l = https_location("api.example:8080", 443, "/a/b?x=1").unwrap();
        assert_eq!(l, "https://api.example/a/b?x=1");
        let l = https_location("api.example", 8443, "/").unwrap();
        assert_eq!(l, "https://api.example:8443/");
        let l = https_location("[::1]:80", 8443, "/x").unwrap();
        assert_eq!(l, "https://[::1]:8443/x");
        assert!(https_location("bad host", 443, "/").is_none());
        assert!(https_location("", 443, "/").is_none());
    }
}
