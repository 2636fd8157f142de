//! HTTP/1.1 heads on the upstream side: the request head warden writes, and
//! the response head it reads back, with the response's framing decided the
//! strict way (RFC 9112 §6.3). Anything ambiguous — `Transfer-Encoding` with
//! `Content-Length`, two different lengths, a coding other than `chunked` —
//! is an error: the connection is dropped and the client gets a 502, so an
//! upstream can never make warden misread where one response ends.

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};

use crate::listener::strict_h1::{LengthError, length_digits};

/// Most header lines accepted in one upstream response head.
pub(crate) const MAX_RESPONSE_HEADERS: usize = 128;

/// Largest upstream response head, in bytes.
pub(crate) const MAX_RESPONSE_HEAD_BYTES: usize = 64 * 1024;

/// How the request body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestFraming {
    /// No body at all.
    None,
    /// `Content-Length: n`, exactly `n` bytes follow.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Appends the request head to `out` and says how the body must be framed.
///
/// `headers` must already be scrubbed of hop-by-hop fields (the handler does
/// that); any `Content-Length` in them is taken as the body's length, written
/// once. Without one, a body that may be non-empty goes chunked, and an empty
/// body of a method that normally carries one gets `Content-Length: 0`.
pub(crate) fn encode_request(
    out: &mut Vec<u8>,
    method: &Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body_empty: bool,
) -> Result<RequestFraming, &'static str> {
    let declared = content_length(headers.get_all(CONTENT_LENGTH).iter())?;
    let framing = match declared {
        Some(n) => RequestFraming::Length(n),
        None if !body_empty => RequestFraming::Chunked,
        None => RequestFraming::None,
    };
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(path_and_query.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        if *name == CONTENT_LENGTH || *name == TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        RequestFraming::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        RequestFraming::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        RequestFraming::None => {
            if matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
                out.extend_from_slice(b"content-length: 0\r\n");
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    Ok(framing)
}

/// The one length all `Content-Length` values agree on (`None` when there
/// is none); different values, lists of different values, non-digits or a
/// value past `u64` are an error. Each value is read by the client side's
/// own [`length_digits`]: every parser in the path must agree.
fn content_length<'a>(values: impl Iterator<Item = &'a HeaderValue>) -> Result<Option<u64>, &'static str> {
    let mut found: Option<u64> = None;
    for value in values {
        for part in value.as_bytes().split(|b| *b == b',') {
            let n = length_digits(part.trim_ascii()).map_err(|e| match e {
                LengthError::NotDigits => "invalid Content-Length",
                LengthError::TooLarge => "Content-Length too large",
            })?;
            match found {
                Some(m) if m != n => return Err("conflicting Content-Length values"),
                _ => found = Some(n),
            }
        }
    }
    Ok(found)
}

/// How an upstream response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponseFraming {
    /// No body (HEAD, 1xx, 204, 304).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the upstream closes the connection.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub framing: ResponseFraming,
    /// The connection may carry another request after this response.
    pub keep_alive: bool,
}

/// Why a response head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeadError {
    /// Not HTTP, or a malformed line.
    Malformed,
    /// Bigger than [`MAX_RESPONSE_HEAD_BYTES`] or more than [`MAX_RESPONSE_HEADERS`] lines.
    TooLarge,
    /// Framing the gateway will not guess at.
    AmbiguousFraming(&'static str),
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed => f.write_str("malformed upstream response head"),
            Self::TooLarge => f.write_str("upstream response head too large"),
            Self::AmbiguousFraming(why) => write!(f, "upstream response framing refused: {why}"),
        }
    }
}

/// Tries to parse one response head at the start of `buf`. `Ok(None)` means
/// more bytes are needed; on success the head's bytes are removed from `buf`.
pub(crate) fn parse_response(buf: &mut BytesMut, method: &Method) -> Result<Option<ResponseHead>, HeadError> {
    let Some(len) = head_len(buf)? else {
        return Ok(None);
    };
    // Header values share the head's bytes instead of being copied one by one.
    let head: Bytes = buf.split_to(len).freeze();
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_RESPONSE_HEADERS];
    let mut parsed = httparse::Response::new(&mut []);
    // httparse's defaults are the strict ones: no obsolete line folding, no
    // whitespace before the colon, no invalid bytes in names or values, no
    // bare CR. It must end the head exactly where it was found above.
    match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut parsed, &head, &mut slots) {
        Ok(httparse::Status::Complete(n)) if n == len => {}
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        _ => return Err(HeadError::Malformed),
    }
    let status = parsed
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or(HeadError::Malformed)?;
    let version = match parsed.version {
        Some(1) => Version::HTTP_11,
        Some(0) => Version::HTTP_10,
        _ => return Err(HeadError::Malformed),
    };
    // Room for what the gateway adds on the way out (security headers, the
    // request id), so the map is allocated once.
    let mut headers = HeaderMap::with_capacity(parsed.headers.len() + 8);
    let mut facts = Facts::default();
    // A 101 goes to the tunnel whole; any other response loses its
    // hop-by-hop and fingerprint headers on the way out, so those are never
    // put in the map (no insert now, no removal later).
    let keep_all = status == StatusCode::SWITCHING_PROTOCOLS;
    for h in parsed.headers.iter() {
        let name = field_name(h.name.as_bytes())?;
        let value = HeaderValue::from_maybe_shared(head.slice_ref(h.value)).map_err(|_| HeadError::Malformed)?;
        facts.note(&name, &value);
        if keep_all || !stripped_on_the_way_out(&name, &value) {
            headers.append(name, value);
        }
    }
    let framing = framing(status, method, &headers, &facts)?;
    // `Content-Length: 0005` or `5, 5` (or the field twice) goes on as one
    // plain `5`, so no parser downstream has to agree with this one.
    if let ResponseFraming::Length(n) = framing
        && !(facts.lengths == 1 && facts.plain_length)
    {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(n));
    }
    let keep_alive = version == Version::HTTP_11 && !facts.close && framing != ResponseFraming::UntilClose;
    Ok(Some(ResponseHead {
        status,
        headers,
        framing,
        keep_alive,
    }))
}

/// The length of the response head at the start of `buf`, through its empty
/// line; `None` while it is incomplete. Lines end in CRLF, nothing else: the
/// head ends at the first empty line. (RFC 9112 §2.2 lets a recipient accept
/// a bare LF; warden does not, on either side, so it never has to guess where
/// a head ends.) One pass over the line ends.
fn head_len(buf: &[u8]) -> Result<Option<usize>, HeadError> {
    let mut bare_lf = false;
    for i in memchr::memchr_iter(b'\n', buf) {
        if i == 0 || buf[i - 1] != b'\r' {
            bare_lf = true;
        } else if i >= 3 && buf[i - 3..i - 1] == *b"\r\n" {
            let len = i + 1;
            if len > MAX_RESPONSE_HEAD_BYTES {
                return Err(HeadError::TooLarge);
            }
            return if bare_lf {
                Err(HeadError::Malformed)
            } else {
                Ok(Some(len))
            };
        }
    }
    if buf.len() > MAX_RESPONSE_HEAD_BYTES {
        return Err(HeadError::TooLarge);
    }
    // A bare LF never becomes part of a valid head: refused without waiting
    // for the rest.
    if bare_lf {
        return Err(HeadError::Malformed);
    }
    Ok(None)
}

/// [`HeaderName::from_bytes`], with the fields upstreams send most answered
/// by a length switch and one case-insensitive comparison instead of its
/// lower-casing copy and table match.
fn field_name(raw: &[u8]) -> Result<HeaderName, HeadError> {
    use http::header::{CACHE_CONTROL, CONTENT_TYPE, DATE, ETAG, LAST_MODIFIED, SERVER, SET_COOKIE, VARY};
    let is = |name: &str| raw.eq_ignore_ascii_case(name.as_bytes());
    let known = match raw.len() {
        4 if is("date") => Some(DATE),
        4 if is("etag") => Some(ETAG),
        4 if is("vary") => Some(VARY),
        6 if is("server") => Some(SERVER),
        10 if is("connection") => Some(CONNECTION),
        10 if is("set-cookie") => Some(SET_COOKIE),
        12 if is("content-type") => Some(CONTENT_TYPE),
        13 if is("cache-control") => Some(CACHE_CONTROL),
        13 if is("last-modified") => Some(LAST_MODIFIED),
        14 if is("content-length") => Some(CONTENT_LENGTH),
        17 if is("transfer-encoding") => Some(TRANSFER_ENCODING),
        _ => None,
    };
    match known {
        Some(name) => Ok(name),
        None => HeaderName::from_bytes(raw).map_err(|_| HeadError::Malformed),
    }
}

/// What a response head says about its framing and its connection, noted
/// while its map is built (some of these fields never enter the map).
#[derive(Debug, Default)]
struct Facts {
    /// `Content-Length` fields.
    lengths: usize,
    /// The first `Content-Length` is plain: digits without a leading zero.
    plain_length: bool,
    /// `Transfer-Encoding` fields.
    codings: usize,
    /// The first `Transfer-Encoding` is exactly `chunked`.
    chunked: bool,
    /// `Connection` holds `close`.
    close: bool,
}

impl Facts {
    fn note(&mut self, name: &HeaderName, value: &HeaderValue) {
        let v = value.as_bytes();
        if *name == CONTENT_LENGTH {
            if self.lengths == 0 {
                self.plain_length = !v.is_empty() && v.iter().all(u8::is_ascii_digit) && (v.len() == 1 || v[0] != b'0');
            }
            self.lengths += 1;
        } else if *name == TRANSFER_ENCODING {
            if self.codings == 0 {
                self.chunked = v.trim_ascii().eq_ignore_ascii_case(b"chunked");
            }
            self.codings += 1;
        } else if *name == CONNECTION {
            self.close |= tokens(v).any(|t| t.eq_ignore_ascii_case(b"close"));
        }
    }
}

/// The comma-separated tokens of a list value, trimmed.
fn tokens(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|b| *b == b',').map(<[u8]>::trim_ascii)
}

/// Whether the handler would remove this field from a proxied response
/// anyway: a fingerprint, or a hop-by-hop field. A `Connection` that names
/// anything but `keep-alive` stays, so the handler's scrub sees the fields
/// it names and removes them too.
fn stripped_on_the_way_out(name: &HeaderName, value: &HeaderValue) -> bool {
    if *name == CONNECTION {
        return tokens(value.as_bytes()).all(|t| t.eq_ignore_ascii_case(b"keep-alive"));
    }
    crate::respond::is_fingerprint(name) || crate::forwarded::is_hop_by_hop(name)
}

fn framing(
    status: StatusCode,
    method: &Method,
    headers: &HeaderMap,
    facts: &Facts,
) -> Result<ResponseFraming, HeadError> {
    let has_te = facts.codings > 0;
    if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || *method == Method::HEAD
    {
        if status == StatusCode::NO_CONTENT && has_te {
            return Err(HeadError::AmbiguousFraming("Transfer-Encoding on a 204"));
        }
        return Ok(ResponseFraming::Empty);
    }
    let length = if facts.lengths == 0 {
        None
    } else {
        content_length(headers.get_all(CONTENT_LENGTH).iter()).map_err(HeadError::AmbiguousFraming)?
    };
    if has_te {
        if length.is_some() {
            return Err(HeadError::AmbiguousFraming("both Transfer-Encoding and Content-Length"));
        }
        if !(facts.codings == 1 && facts.chunked) {
            return Err(HeadError::AmbiguousFraming("a transfer coding other than chunked"));
        }
        return Ok(ResponseFraming::Chunked);
    }
    Ok(match length {
        Some(n) => ResponseFraming::Length(n),
        None => ResponseFraming::UntilClose,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str, method: &Method) -> Result<Option<ResponseHead>, HeadError> {
        let mut buf = BytesMut::from(raw.as_bytes());
        parse_response(&mut buf, method)
    }

    fn framing_of(raw: &str) -> Result<ResponseFraming, HeadError> {
        parse(raw, &Method::GET).map(|h| h.expect("complete head").framing)
    }

    #[test]
    fn a_head_is_parsed_and_removed_from_the_buffer() {
        let mut buf = BytesMut::from(&b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\nX-A: 1\r\nx-a: 2\r\n\r\nhi"[..]);
        let head = parse_response(&mut buf, &Method::POST).unwrap().unwrap();
        assert_eq!(head.status, StatusCode::CREATED);
        assert_eq!(head.framing, ResponseFraming::Length(2));
        assert!(head.keep_alive);
        assert_eq!(head.headers.get_all("x-a").iter().count(), 2);
        assert_eq!(&buf[..], b"hi");
    }

    #[test]
    fn a_partial_head_asks_for_more_bytes() {
        assert!(parse("HTTP/1.1 200 OK\r\nContent-Le", &Method::GET).unwrap().is_none());
    }

    #[test]
    fn an_endless_head_is_too_large() {
        let raw = format!("HTTP/1.1 200 OK\r\nX-Big: {}", "a".repeat(MAX_RESPONSE_HEAD_BYTES + 1));
        assert_eq!(parse(&raw, &Method::GET).unwrap_err(), HeadError::TooLarge);
        let raw = format!(
            "HTTP/1.1 200 OK\r\nX-Big: {}\r\n\r\n",
            "a".repeat(MAX_RESPONSE_HEAD_BYTES)
        );
        assert_eq!(parse(&raw, &Method::GET).unwrap_err(), HeadError::TooLarge);
        let many: String = (0..=MAX_RESPONSE_HEADERS).map(|i| format!("x-{i}: 1\r\n")).collect();
        let raw = format!("HTTP/1.1 200 OK\r\n{many}\r\n");
        assert_eq!(parse(&raw, &Method::GET).unwrap_err(), HeadError::TooLarge);
    }

    #[test]
    fn smuggling_shaped_framing_is_refused() {
        for raw in [
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n",
            "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert!(
                matches!(framing_of(raw), Err(HeadError::AmbiguousFraming(_))),
                "accepted: {raw:?}"
            );
        }
    }

    #[test]
    fn malformed_heads_are_refused() {
        for raw in [
            "HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX-Space : a\r\n\r\n",
            "HTTP/2.0 200 OK\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "SSH-2.0-OpenSSH\r\n\r\n",
            "HTTP/1.1 200 OK\r\nBad\x01Name: a\r\n\r\n",
            "HTTP/1.1 200 OK\nContent-Length: 0\n\n",
            "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 0\r\n\r\n",
        ] {
            assert!(parse(raw, &Method::GET).is_err(), "accepted: {raw:?}");
        }
    }

    #[test]
    fn identical_repeated_lengths_are_one_length() {
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
            Ok(ResponseFraming::Length(5))
        );
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked \r\n\r\n"),
            Ok(ResponseFraming::Chunked)
        );
    }

    #[test]
    fn odd_but_agreeing_lengths_are_rewritten_plainly() {
        for raw in [
            "HTTP/1.1 200 OK\r\nContent-Length: 0005\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
        ] {
            let head = parse(raw, &Method::GET).unwrap().unwrap();
            let values: Vec<_> = head.headers.get_all(CONTENT_LENGTH).iter().collect();
            assert_eq!(values, ["5"], "{raw:?}");
        }
        assert_eq!(
            framing_of("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n"),
            Err(HeadError::AmbiguousFraming("Content-Length too large"))
        );
    }

    #[test]
    fn fields_stripped_on_the_way_out_never_enter_the_map() {
        let raw = "HTTP/1.1 200 OK\r\nServer: nginx/1.22\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\
                   X-Powered-By: PHP/8\r\nTrailer: x-sum\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n";
        let head = parse(raw, &Method::GET).unwrap().unwrap();
        assert!(head.keep_alive);
        assert_eq!(head.framing, ResponseFraming::Length(2));
        let names: Vec<_> = head.headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["content-type", "content-length"]);
        // A chunked body's coding decides the framing but is not forwarded.
        let head = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", &Method::GET)
            .unwrap()
            .unwrap();
        assert_eq!(head.framing, ResponseFraming::Chunked);
        assert!(head.headers.is_empty());
    }

    #[test]
    fn a_connection_naming_other_fields_and_a_101_stay_whole() {
        // The handler's scrub removes `X-Hop` (named in `Connection`) and
        // `Connection` itself; both must still be there for it to see.
        let raw = "HTTP/1.1 200 OK\r\nX-Hop: 1\r\nConnection: keep-alive, x-hop\r\nContent-Length: 0\r\n\r\n";
        let head = parse(raw, &Method::GET).unwrap().unwrap();
        assert!(head.headers.contains_key("x-hop"));
        assert!(head.headers.contains_key(CONNECTION));
        let raw = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\nServer: x\r\n\r\n";
        let head = parse(raw, &Method::GET).unwrap().unwrap();
        assert_eq!(head.headers.len(), 3);
    }

    #[test]
    fn known_field_names_are_the_names_from_bytes_gives() {
        for raw in [
            "date",
            "ETag",
            "Vary",
            "Server",
            "CONNECTION",
            "Set-Cookie",
            "content-Type",
            "Cache-Control",
            "last-modified",
            "Content-Length",
            "Transfer-Encoding",
            "x-date",
            "Dates",
            "content-typo",
            "X-Custom",
        ] {
            let expected = HeaderName::from_bytes(raw.as_bytes()).unwrap();
            assert_eq!(field_name(raw.as_bytes()).unwrap(), expected, "{raw}");
        }
        assert_eq!(field_name(b"bad name"), Err(HeadError::Malformed));
    }

    #[test]
    fn a_head_ends_at_its_first_empty_line_and_a_bare_lf_is_refused_early() {
        assert_eq!(head_len(b"HTTP/1.1 200 OK\r\nA: 1\r\n\r\nbody\n\n"), Ok(Some(25)));
        assert_eq!(head_len(b"HTTP/1.1 200 OK\r\nA: 1\r\n"), Ok(None));
        assert_eq!(head_len(b"HTTP/1.1 200 OK\r\nA: 1\n"), Err(HeadError::Malformed));
        assert_eq!(head_len(b"\nHTTP/1.1 200 OK\r\n\r\n"), Err(HeadError::Malformed));
        assert_eq!(head_len(b"\r\n\r\n"), Ok(Some(4)));
        // Past the size cap, size is what is reported, bare LF or not.
        let big = format!("HTTP/1.1 200 OK\nX: {}", "a".repeat(MAX_RESPONSE_HEAD_BYTES));
        assert_eq!(head_len(big.as_bytes()), Err(HeadError::TooLarge));
        let exact = format!(
            "HTTP/1.1 200 OK\r\nX: {}\r\n\r\n",
            "a".repeat(MAX_RESPONSE_HEAD_BYTES - 24)
        );
        assert_eq!(exact.len(), MAX_RESPONSE_HEAD_BYTES);
        assert_eq!(head_len(exact.as_bytes()), Ok(Some(MAX_RESPONSE_HEAD_BYTES)));
        let over = format!(
            "HTTP/1.1 200 OK\r\nX: {}\r\n\r\n",
            "a".repeat(MAX_RESPONSE_HEAD_BYTES - 23)
        );
        assert_eq!(head_len(over.as_bytes()), Err(HeadError::TooLarge));
    }

    #[test]
    fn bodiless_responses_ignore_their_length() {
        let head = parse("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", &Method::HEAD)
            .unwrap()
            .unwrap();
        assert_eq!(head.framing, ResponseFraming::Empty);
        assert_eq!(
            framing_of("HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n"),
            Ok(ResponseFraming::Empty)
        );
        assert_eq!(
            framing_of("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"),
            Ok(ResponseFraming::Empty)
        );
    }

    #[test]
    fn a_body_without_length_runs_to_close_and_ends_the_connection() {
        let head = parse("HTTP/1.1 200 OK\r\n\r\n", &Method::GET).unwrap().unwrap();
        assert_eq!(head.framing, ResponseFraming::UntilClose);
        assert!(!head.keep_alive);
        let head = parse(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n",
            &Method::GET,
        )
        .unwrap()
        .unwrap();
        assert!(!head.keep_alive);
        let head = parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", &Method::GET)
            .unwrap()
            .unwrap();
        assert!(!head.keep_alive);
    }

    fn encode(method: Method, headers: &[(&str, &str)], body_empty: bool) -> (String, RequestFraming) {
        let mut map = HeaderMap::new();
        for (n, v) in headers {
            map.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let mut out = Vec::new();
        let framing = encode_request(&mut out, &method, "/a?b=1", &map, body_empty).unwrap();
        (String::from_utf8(out).unwrap(), framing)
    }

    #[test]
    fn request_heads_carry_exactly_one_framing() {
        let (head, framing) = encode(Method::GET, &[("host", "api"), ("x-a", "1")], true);
        assert_eq!(head, "GET /a?b=1 HTTP/1.1\r\nhost: api\r\nx-a: 1\r\n\r\n");
        assert_eq!(framing, RequestFraming::None);

        let (head, framing) = encode(Method::POST, &[("content-length", "5"), ("content-length", "5")], false);
        assert_eq!(head, "POST /a?b=1 HTTP/1.1\r\ncontent-length: 5\r\n\r\n");
        assert_eq!(framing, RequestFraming::Length(5));

        let (head, framing) = encode(Method::POST, &[("transfer-encoding", "chunked")], false);
        assert_eq!(head, "POST /a?b=1 HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n");
        assert_eq!(framing, RequestFraming::Chunked);

        let (head, _) = encode(Method::PUT, &[], true);
        assert_eq!(head, "PUT /a?b=1 HTTP/1.1\r\ncontent-length: 0\r\n\r\n");
    }

    #[test]
    fn padded_request_lengths_are_read_like_the_client_side_reads_them() {
        let (head, framing) = encode(Method::POST, &[("content-length", "000000000000000000005")], false);
        assert_eq!(head, "POST /a?b=1 HTTP/1.1\r\ncontent-length: 5\r\n\r\n");
        assert_eq!(framing, RequestFraming::Length(5));
    }

    #[test]
    fn conflicting_request_lengths_are_refused() {
        let mut map = HeaderMap::new();
        map.append(CONTENT_LENGTH, HeaderValue::from_static("5"));
        map.append(CONTENT_LENGTH, HeaderValue::from_static("6"));
        assert!(encode_request(&mut Vec::new(), &Method::POST, "/", &map, false).is_err());
    }
}
