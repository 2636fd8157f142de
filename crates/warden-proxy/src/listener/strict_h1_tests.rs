//! Tests for the strict HTTP/1 framing checker: every rule has a refused case and a
//! benign look-alike, and every input is also checked fed byte by byte and split in
//! two at every boundary, which must give the same outcome as feeding it whole.

use super::{FramingLimits, H1Framing, Violation, is_token};

const LIMITS: FramingLimits = FramingLimits { max_head_bytes: 8192 };

/// Result of a whole feed sequence: the first error (or Ok) and passthrough.
type Outcome = (Result<(), Violation>, bool);

fn feed_chunks<'a>(limits: FramingLimits, chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut framing = H1Framing::new(limits);
    for chunk in chunks {
        if let Err(violation) = framing.feed(chunk) {
            return (Err(violation), framing.is_passthrough());
        }
    }
    (Ok(()), framing.is_passthrough())
}

/// Feeds `input` whole, byte by byte and split at every position; all must agree.
fn check_with(limits: FramingLimits, input: &[u8]) -> Outcome {
    let whole = feed_chunks(limits, [input]);
    let bytewise = feed_chunks(limits, input.chunks(1));
    assert_eq!(whole, bytewise, "byte-by-byte differs for {input:?}");
    for split in 0..=input.len() {
        let (head, tail) = input.split_at(split);
        let pieces = feed_chunks(limits, [head, tail]);
        assert_eq!(whole, pieces, "split at {split} differs for {input:?}");
    }
    whole
}

fn check(input: &[u8]) -> Outcome {
    check_with(LIMITS, input)
}

fn assert_ok(input: &[u8]) {
    assert_eq!(check(input), (Ok(()), false), "{:?}", String::from_utf8_lossy(input));
}

fn assert_violation(input: &[u8], expected: Violation) {
    assert_eq!(check(input).0, Err(expected), "{:?}", String::from_utf8_lossy(input));
}

fn assert_passthrough(input: &[u8]) {
    assert_eq!(check(input), (Ok(()), true), "{:?}", String::from_utf8_lossy(input));
}

/// A POST head with the given extra header lines (each ending in CRLF).
fn post(headers: &str) -> String {
    format!("POST /upload HTTP/1.1\r\nHost: example.com\r\n{headers}\r\n")
}

// ---- valid traffic ----

#[test]
fn valid_get() {
    assert_ok(b"GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n");
}

#[test]
fn valid_http10_get_without_headers() {
    assert_ok(b"GET / HTTP/1.0\r\n\r\n");
}

#[test]
fn valid_post_with_content_length() {
    assert_ok(format!("{}hello", post("Content-Length: 5\r\n")).as_bytes());
}

#[test]
fn body_bytes_are_not_inspected() {
    let body = "\n\r\0 GET / HTTP/9.9\n\n";
    let request = format!("{}{body}", post(&format!("Content-Length: {}\r\n", body.len())));
    assert_ok(request.as_bytes());
}

#[test]
fn request_after_body_is_inspected() {
    let input = format!("{}helloGET / HTTP/1.2\r\n\r\n", post("Content-Length: 5\r\n"));
    assert_violation(input.as_bytes(), Violation::InvalidVersion);
    let one_byte_too_many = format!("{}hello\"GET / HTTP/1.1\r\n\r\n", post("Content-Length: 5\r\n"));
    assert_violation(one_byte_too_many.as_bytes(), Violation::InvalidMethod);
}

#[test]
fn huge_content_length_body_spans_feeds() {
    let mut framing = H1Framing::new(LIMITS);
    let head = format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", u64::MAX);
    assert_eq!(framing.feed(head.as_bytes()), Ok(()));
    let garbage = vec![b'\n'; 1 << 20];
    for _ in 0..8 {
        assert_eq!(framing.feed(&garbage), Ok(()));
    }
    assert!(!framing.is_passthrough());
}

#[test]
fn content_length_body_then_next_request_across_feeds() {
    let mut framing = H1Framing::new(LIMITS);
    assert_eq!(framing.feed(post("Content-Length: 10\r\n").as_bytes()), Ok(()));
    assert_eq!(framing.feed(b"0123"), Ok(()));
    assert_eq!(framing.feed(b"456789GET / HTTP/1.1\r\n"), Ok(()));
    assert_eq!(framing.feed(b"Bad Name: x\r\n"), Err(Violation::InvalidHeaderName));
}

#[test]
fn chunked_post_with_extensions_and_trailers() {
    let input = post("Transfer-Encoding: chunked\r\n")
        + "5;name=value;quoted=\"a b;c\"\r\nhello\r\n"
        + "A ; ext\r\n0123456789\r\n"
        + "0\r\nChecksum: abc\r\nX-Trace: 1\r\n\r\n";
    assert_ok(input.as_bytes());
}

#[test]
fn chunked_without_trailers() {
    assert_ok((post("Transfer-Encoding: chunked\r\n") + "3\r\nabc\r\n0\r\n\r\n").as_bytes());
}

#[test]
fn chunk_data_is_not_inspected() {
    let input = post("Transfer-Encoding: chunked\r\n") + "4\r\n\n\r\0x\r\n0\r\n\r\n";
    assert_ok(input.as_bytes());
}

#[test]
fn chunk_size_upper_and_lower_hex() {
    let data = "x".repeat(0x1f);
    let input = post("Transfer-Encoding: chunked\r\n") + &format!("1F\r\n{data}\r\n1f\r\n{data}\r\n0\r\n\r\n");
    assert_ok(input.as_bytes());
}

#[test]
fn chunk_size_with_sixteen_hex_digits() {
    let input = post("Transfer-Encoding: chunked\r\n") + "000000000000000a\r\n0123456789\r\n0\r\n\r\n";
    assert_ok(input.as_bytes());
}

#[test]
fn pipelined_get_post_get() {
    let input = format!(
        "GET /a HTTP/1.1\r\nHost: h\r\n\r\n{}hello{}4\r\nwxyz\r\n0\r\n\r\nGET /c HTTP/1.1\r\nHost: h\r\n\r\n",
        post("Content-Length: 5\r\n"),
        post("Transfer-Encoding: chunked\r\n"),
    );
    assert_ok(input.as_bytes());
}

#[test]
fn pipelined_violation_in_third_request() {
    let input = format!(
        "GET /a HTTP/1.1\r\n\r\n{}helloGET /c HTTP/1.1\r\nX: 1\n\r\n",
        post("Content-Length: 5\r\n")
    );
    assert_violation(input.as_bytes(), Violation::BareLf);
}

#[test]
fn leading_empty_lines_tolerated_up_to_four() {
    assert_ok(b"\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    assert_ok(b"GET / HTTP/1.1\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    assert_violation(
        b"\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n\r\n",
        Violation::TooManyEmptyLines,
    );
}

#[test]
fn empty_line_with_bare_lf_or_cr() {
    assert_violation(b"\nGET / HTTP/1.1\r\n\r\n", Violation::BareLf);
    assert_violation(b"\rGET / HTTP/1.1\r\n\r\n", Violation::BareCr);
}

// ---- HTTP/2 preface ----

#[test]
fn http2_preface_goes_passthrough() {
    assert_passthrough(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\x12\x04\0\0\0\0\0\n\r\n");
}

#[test]
fn partial_http2_preface_waits() {
    assert_eq!(check(b"PRI * HTTP/2.0\r\n\r\nSM\r\n"), (Ok(()), false));
}

#[test]
fn diverging_from_preface_is_checked_as_http1() {
    assert_ok(b"PUT /p HTTP/1.1\r\nContent-Length: 1\r\n\r\nx");
    assert_ok(b"PRI /x HTTP/1.1\r\n\r\n");
    assert_violation(b"PRI * HTTP/2.0\r\n\r\nXM\r\n\r\n", Violation::InvalidVersion);
    assert_violation(b"PRI * HTTP/2.0\rX", Violation::BareCr);
}

#[test]
fn preface_only_at_connection_start() {
    assert_violation(
        b"GET / HTTP/1.1\r\n\r\nPRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        Violation::InvalidVersion,
    );
}

// ---- upgrade and CONNECT ----

#[test]
fn upgrade_goes_passthrough_after_head() {
    let input = b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x85\n\r\0garbage";
    assert_passthrough(input);
}

#[test]
fn upgrade_without_connection_upgrade_stays_checked() {
    let input = b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.1\n\r\n";
    assert_violation(input, Violation::BareLf);
    assert_ok(b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n");
    assert_ok(b"GET / HTTP/1.1\r\nConnection: upgrade\r\n\r\n");
    assert_ok(b"GET / HTTP/1.1\r\nConnection: upgrades\r\nUpgrade: x\r\n\r\n");
}

#[test]
fn http10_upgrade_stays_checked() {
    let input = b"GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\nGET / HTTP/1.1\n\r\n";
    assert_violation(input, Violation::BareLf);
}

#[test]
fn connect_goes_passthrough() {
    assert_passthrough(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01\n");
    assert_ok(b"connect example.com:443 HTTP/1.1\r\n\r\n");
}

#[test]
fn upgrade_with_body_goes_passthrough_after_body() {
    let head = b"POST / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: x\r\nContent-Length: 3\r\n\r\n";
    assert_eq!(check(&[&head[..], b"ab"].concat()), (Ok(()), false));
    assert_passthrough(&[&head[..], b"abc\n\n"].concat());
    let chunked = b"POST / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n\n";
    assert_passthrough(chunked);
}

// ---- request line ----

#[test]
fn invalid_version() {
    assert_violation(b"GET / HTTP/1.2\r\n\r\n", Violation::InvalidVersion);
    assert_violation(b"GET / http/1.1\r\n\r\n", Violation::InvalidVersion);
    assert_violation(b"GET / HTTP/2.0\r\n\r\n", Violation::InvalidVersion);
    assert_ok(b"GET / HTTP/1.0\r\n\r\n");
}

#[test]
fn request_line_spacing() {
    assert_violation(b"GET  / HTTP/1.1\r\n\r\n", Violation::InvalidRequestLine);
    assert_violation(b"GET /  HTTP/1.1\r\n\r\n", Violation::InvalidRequestLine);
    assert_violation(b"GET / HTTP/1.1 \r\n\r\n", Violation::InvalidRequestLine);
    assert_violation(b" GET / HTTP/1.1\r\n\r\n", Violation::InvalidRequestLine);
    assert_violation(b"GET /\r\n\r\n", Violation::InvalidRequestLine);
    assert_violation(b"GET\t/ HTTP/1.1\r\n\r\n", Violation::InvalidRequestLine);
    assert_ok(b"GET / HTTP/1.1\r\n\r\n");
}

#[test]
fn method_must_be_token() {
    assert_violation(b"G(T / HTTP/1.1\r\n\r\n", Violation::InvalidMethod);
    assert_violation(b"GET\t/ x HTTP/1.1\r\n\r\n", Violation::InvalidMethod);
    assert_ok(b"M-SEARCH * HTTP/1.1\r\n\r\n");
}

#[test]
fn request_target_without_controls() {
    assert_violation(b"GET /a\x7fb HTTP/1.1\r\n\r\n", Violation::InvalidRequestTarget);
    assert_violation(b"GET /a\x01b HTTP/1.1\r\n\r\n", Violation::InvalidRequestTarget);
    assert_violation(b"GET /a\tb HTTP/1.1\r\n\r\n", Violation::InvalidRequestTarget);
    assert_ok("GET /caf\u{e9}?a=[1]&b=%20#f HTTP/1.1\r\n\r\n".as_bytes());
    assert_ok(b"OPTIONS * HTTP/1.1\r\n\r\n");
    assert_ok(b"GET http://example.com/x HTTP/1.1\r\n\r\n");
}

// ---- line endings ----

#[test]
fn bare_lf_in_request_line() {
    assert_violation(b"GET / HTTP/1.1\nHost: h\r\n\r\n", Violation::BareLf);
}

#[test]
fn bare_lf_in_headers() {
    assert_violation(b"GET / HTTP/1.1\r\nHost: h\nX: 1\r\n\r\n", Violation::BareLf);
    assert_violation(b"GET / HTTP/1.1\r\nHost: h\r\n\n", Violation::BareLf);
}

#[test]
fn bare_lf_in_chunk_lines() {
    let te = post("Transfer-Encoding: chunked\r\n");
    assert_violation((te.clone() + "5\nhello\r\n0\r\n\r\n").as_bytes(), Violation::BareLf);
    assert_violation((te.clone() + "5;a=b\nhello\r\n0\r\n\r\n").as_bytes(), Violation::BareLf);
    assert_violation((te.clone() + "5\r\nhello\n0\r\n\r\n").as_bytes(), Violation::BareLf);
    assert_violation((te.clone() + "0\nX: 1\r\n\r\n").as_bytes(), Violation::BareLf);
    assert_violation((te + "0\r\nX: 1\n\r\n").as_bytes(), Violation::BareLf);
}

#[test]
fn bare_cr() {
    assert_violation(b"GET / HTTP/1.1\rHost: h\r\n\r\n", Violation::BareCr);
    assert_violation(b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", Violation::BareCr);
    assert_violation(b"GET / HTTP/1.1\r\n\r\r\n", Violation::BareCr);
    let te = post("Transfer-Encoding: chunked\r\n");
    assert_violation((te + "5\r\rhello\r\n0\r\n\r\n").as_bytes(), Violation::BareCr);
}

// ---- header lines ----

#[test]
fn obs_fold() {
    assert_violation(b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", Violation::ObsFold);
    assert_violation(b"GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n", Violation::ObsFold);
    assert_ok(b"GET / HTTP/1.1\r\nX: a \t b\t\r\n\r\n");
}

#[test]
fn space_before_colon() {
    assert_violation(b"GET / HTTP/1.1\r\nHost : h\r\n\r\n", Violation::InvalidHeaderName);
    assert_violation(
        b"POST / HTTP/1.1\r\nTransfer-Encoding\t: chunked\r\n\r\n",
        Violation::InvalidHeaderName,
    );
    assert_ok(b"GET / HTTP/1.1\r\nHost:h\r\nX:  spaced  \r\n\r\n");
}

#[test]
fn empty_header_name() {
    assert_violation(b"GET / HTTP/1.1\r\n: value\r\n\r\n", Violation::InvalidHeaderName);
    assert_ok(b"GET / HTTP/1.1\r\nX: :value:\r\n\r\n");
}

#[test]
fn header_name_must_be_token() {
    assert_violation(b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n", Violation::InvalidHeaderName);
    assert_violation(b"GET / HTTP/1.1\r\nX(y): 1\r\n\r\n", Violation::InvalidHeaderName);
    assert_violation(b"GET / HTTP/1.1\r\nX\x00: 1\r\n\r\n", Violation::InvalidHeaderName);
    assert_ok(b"GET / HTTP/1.1\r\nX-Custom_Header.v2~!: 1\r\n\r\n");
}

#[test]
fn control_chars_in_header_value() {
    assert_violation(b"GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", Violation::InvalidHeaderValue);
    assert_violation(b"GET / HTTP/1.1\r\nX: a\x1bb\r\n\r\n", Violation::InvalidHeaderValue);
    assert_violation(b"GET / HTTP/1.1\r\nX: a\x7fb\r\n\r\n", Violation::InvalidHeaderValue);
    assert_ok(b"GET / HTTP/1.1\r\nX: a\tb \xc3\xa9 \xff\r\nY:\r\n\r\n");
}

#[test]
fn head_too_large() {
    let limits = FramingLimits { max_head_bytes: 64 };
    let head = |value: &str| format!("GET / HTTP/1.1\r\nX: {value}\r\n\r\n");
    let exact = head(&"a".repeat(64 - head("").len()));
    assert_eq!(exact.len(), 64);
    assert_eq!(check_with(limits, exact.as_bytes()), (Ok(()), false));
    let over = head(&"a".repeat(65 - head("").len()));
    assert_eq!(check_with(limits, over.as_bytes()).0, Err(Violation::HeadTooLarge));
    let endless = format!("GET /{} HTTP/1.1", "a".repeat(100));
    assert_eq!(check_with(limits, endless.as_bytes()).0, Err(Violation::HeadTooLarge));
}

#[test]
fn head_limit_is_per_request() {
    let limits = FramingLimits { max_head_bytes: 40 };
    let one = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
    assert!(one.len() <= 40);
    assert_eq!(check_with(limits, one.repeat(5).as_bytes()), (Ok(()), false));
}

#[test]
fn trailer_section_too_large() {
    let limits = FramingLimits { max_head_bytes: 64 };
    let head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    let ok = format!("{head}0\r\nX: {}\r\n\r\n", "a".repeat(50));
    assert_eq!(check_with(limits, ok.as_bytes()), (Ok(()), false));
    let over = format!("{head}0\r\nX: {}\r\n\r\n", "a".repeat(70));
    assert_eq!(check_with(limits, over.as_bytes()).0, Err(Violation::HeadTooLarge));
}

// ---- Content-Length ----

#[test]
fn content_length_syntax() {
    let with = |value: &str| format!("{}hello", post(&format!("Content-Length:{value}\r\n")));
    assert_violation(with(" +5").as_bytes(), Violation::InvalidContentLength);
    assert_violation(with(" -5").as_bytes(), Violation::InvalidContentLength);
    assert_violation(with(" 5, 5").as_bytes(), Violation::InvalidContentLength);
    assert_violation(with(" 5 5").as_bytes(), Violation::InvalidContentLength);
    assert_violation(with(" 0x5").as_bytes(), Violation::InvalidContentLength);
    assert_violation(with("").as_bytes(), Violation::InvalidContentLength);
    assert_violation(
        with(" 18446744073709551616").as_bytes(),
        Violation::InvalidContentLength,
    );
    assert_ok(with(" 5").as_bytes());
    assert_ok(with("5").as_bytes());
    assert_ok(with(" \t5 \t").as_bytes());
    assert_ok(with(" 005").as_bytes());
    assert_ok(post("content-length: 0\r\n").as_bytes());
}

#[test]
fn conflicting_content_lengths() {
    let two = post("Content-Length: 5\r\nContent-Length: 6\r\n") + "hello!";
    assert_violation(two.as_bytes(), Violation::ConflictingContentLength);
    let same = post("Content-Length: 5\r\ncontent-length: 5\r\n") + "hello";
    assert_ok(same.as_bytes());
}

// ---- Transfer-Encoding ----

#[test]
fn content_length_with_transfer_encoding_both_orders() {
    let body = "5\r\nhello\r\n0\r\n\r\n";
    let cl_first = post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n") + body;
    let te_first = post("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n") + body;
    assert_violation(cl_first.as_bytes(), Violation::ContentLengthWithTransferEncoding);
    assert_violation(te_first.as_bytes(), Violation::ContentLengthWithTransferEncoding);
    assert_ok((post("Transfer-Encoding: chunked\r\n") + body).as_bytes());
    assert_ok((post("Content-Length: 5\r\n") + "hello").as_bytes());
}

#[test]
fn uppercase_chunked_with_content_length() {
    let input = post("TRANSFER-ENCODING: CHUNKED\r\ncontent-length: 5\r\n") + "5\r\nhello\r\n0\r\n\r\n";
    assert_violation(input.as_bytes(), Violation::ContentLengthWithTransferEncoding);
    let alone = post("transfer-encoding:  Chunked \t\r\n") + "5\r\nhello\r\n0\r\n\r\n";
    assert_ok(alone.as_bytes());
}

#[test]
fn transfer_encoding_other_than_single_chunked() {
    for value in [
        "chunked, chunked",
        "xchunked",
        "gzip, chunked",
        "chunked;q=1",
        "identity",
        "",
    ] {
        let input = post(&format!("Transfer-Encoding: {value}\r\n")) + "0\r\n\r\n";
        assert_violation(input.as_bytes(), Violation::UnsupportedTransferEncoding);
    }
}

#[test]
fn repeated_transfer_encoding_line() {
    let input = post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n") + "0\r\n\r\n";
    assert_violation(input.as_bytes(), Violation::UnsupportedTransferEncoding);
}

#[test]
fn transfer_encoding_in_http10() {
    let input = b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert_violation(input, Violation::UnsupportedTransferEncoding);
    assert_ok(b"POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi");
}

// ---- chunked body ----

#[test]
fn invalid_chunk_size() {
    let te = post("Transfer-Encoding: chunked\r\n");
    for line in ["zz", "", "-1", "0x5", ";ext", " 5", "5 x", "5\t \x01"] {
        let input = format!("{te}{line}\r\nhello\r\n0\r\n\r\n");
        assert_violation(input.as_bytes(), Violation::InvalidChunkSize);
    }
    assert_ok(format!("{te}5 \t;x\r\nhello\r\n5\t\r\nhello\r\n0\r\n\r\n").as_bytes());
}

#[test]
fn chunk_size_with_seventeen_hex_digits() {
    let te = post("Transfer-Encoding: chunked\r\n");
    assert_violation(
        (te.clone() + "00000000000000005\r\nhello\r\n0\r\n\r\n").as_bytes(),
        Violation::InvalidChunkSize,
    );
    assert_violation((te + "10000000000000000\r\n").as_bytes(), Violation::InvalidChunkSize);
}

#[test]
fn chunk_extension_controls() {
    let te = post("Transfer-Encoding: chunked\r\n");
    assert_violation(
        (te.clone() + "5;a=\0\r\nhello\r\n0\r\n\r\n").as_bytes(),
        Violation::InvalidChunkExtension,
    );
    assert_violation(
        (te.clone() + "5;a=\"\x7f\"\r\nhello\r\n0\r\n\r\n").as_bytes(),
        Violation::InvalidChunkExtension,
    );
    assert_ok((te + "5;a=\"x\\\"\ty\";b\r\nhello\r\n0;last\r\n\r\n").as_bytes());
}

#[test]
fn chunk_line_too_long() {
    let te = post("Transfer-Encoding: chunked\r\n");
    let long = format!("{te}5;{}\r\nhello\r\n0\r\n\r\n", "a".repeat(5000));
    assert_eq!(
        feed_chunks(LIMITS, [long.as_bytes()]).0,
        Err(Violation::ChunkLineTooLong)
    );
    let fits = format!("{te}5;{}\r\nhello\r\n0\r\n\r\n", "a".repeat(4000));
    assert_eq!(feed_chunks(LIMITS, [fits.as_bytes()]), (Ok(()), false));
}

#[test]
fn missing_crlf_after_chunk_data() {
    let te = post("Transfer-Encoding: chunked\r\n");
    assert_violation(
        (te.clone() + "5\r\nhello!\r\n0\r\n\r\n").as_bytes(),
        Violation::InvalidChunk,
    );
    assert_violation(
        (te.clone() + "5\r\nhello\rX0\r\n\r\n").as_bytes(),
        Violation::InvalidChunk,
    );
    assert_violation(
        (te.clone() + "5\r\nhel\r\n0\r\n\r\n").as_bytes(),
        Violation::InvalidChunk,
    );
    assert_ok((te + "5\r\nhello\r\n0\r\n\r\n").as_bytes());
}

#[test]
fn trailer_lines_follow_header_rules() {
    let te = post("Transfer-Encoding: chunked\r\n");
    assert_violation((te.clone() + "0\r\nX: a\r\n b\r\n\r\n").as_bytes(), Violation::ObsFold);
    assert_violation(
        (te.clone() + "0\r\nX : a\r\n\r\n").as_bytes(),
        Violation::InvalidHeaderName,
    );
    assert_violation(
        (te.clone() + "0\r\nX: \0\r\n\r\n").as_bytes(),
        Violation::InvalidHeaderValue,
    );
    assert_violation((te.clone() + "0\r\nX: 1\r\n\rGET").as_bytes(), Violation::BareCr);
    assert_ok((te + "0\r\nX: a\tb\r\n\r\n").as_bytes());
}

#[test]
fn framing_headers_in_trailers() {
    let te = post("Transfer-Encoding: chunked\r\n");
    assert_violation(
        (te.clone() + "0\r\nContent-Length: 5\r\n\r\n").as_bytes(),
        Violation::FramingHeaderInTrailer,
    );
    assert_violation(
        (te.clone() + "0\r\ntransfer-encoding: chunked\r\n\r\n").as_bytes(),
        Violation::FramingHeaderInTrailer,
    );
    assert_ok((te + "0\r\nContent-Type: text/plain\r\n\r\n").as_bytes());
}

// ---- behaviour of the checker itself ----

#[test]
fn violation_is_sticky() {
    let mut framing = H1Framing::new(LIMITS);
    assert_eq!(framing.feed(b"GET / HTTP/1.1\n"), Err(Violation::BareLf));
    assert_eq!(framing.feed(b"\r\n"), Err(Violation::BareLf));
    assert_eq!(framing.feed(b""), Err(Violation::BareLf));
}

#[test]
fn empty_feeds_are_harmless() {
    let mut framing = H1Framing::new(LIMITS);
    for chunk in [&b""[..], b"GET / HTTP/1.1\r", b"", b"\n\r", b"", b"\n"] {
        assert_eq!(framing.feed(chunk), Ok(()));
    }
}

#[test]
fn messages_are_short_and_stable() {
    assert_eq!(Violation::BareLf.to_string(), "bare LF line terminator");
    assert_eq!(
        Violation::ContentLengthWithTransferEncoding.to_string(),
        "content-length with transfer-encoding"
    );
    assert_eq!(Violation::HeadTooLarge.to_string(), "request head too large");
}

#[test]
fn token_table_is_rfc_9110_tchar() {
    for b in 0..=255_u8 {
        let tchar = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        assert_eq!(is_token(&[b]), tchar, "byte {b:#04x}");
    }
    assert!(!is_token(b""));
}
