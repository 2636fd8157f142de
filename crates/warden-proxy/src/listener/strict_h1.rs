//! Strict HTTP/1 request framing checker, run on every byte a client sends on a
//! plain HTTP/1 connection before hyper sees it.
//!
//! hyper is lenient where a security gateway must not be: it accepts a bare LF as a
//! line terminator and, when a request carries both `Content-Length` and
//! `Transfer-Encoding`, drops the length instead of refusing. Disagreements like these
//! between two HTTP parsers are what request smuggling is made of, so [`H1Framing`]
//! refuses every request whose framing is not unambiguous (RFC 9112): CRLF-only line
//! ends, a strict request line, token header names, no obs-fold, at most one
//! `Content-Length` value, `Transfer-Encoding: chunked` only and never beside a
//! `Content-Length`, strict chunk syntax, no framing fields in trailers.
//!
//! It is sans-IO: the connection feeds it the bytes it read, in order and split
//! anywhere; the first [`Violation`] means "answer 400 and close". It inspects only
//! framing, not semantics (hyper still parses and applies its own limits).
//!
//! Limits: an HTTP/2 prior-knowledge preface, and the bytes after an upgrade or
//! `CONNECT` request, pass through unchecked. hyper keeps such a connection alive
//! when the response is *not* `101` (or `2xx` to `CONNECT`), so whoever answers must
//! close the connection in that case (`Connection: close`), or the bytes that follow
//! would reach hyper as unchecked HTTP.

use thiserror::Error;

/// The HTTP/2 connection preface sent by prior-knowledge clients (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Length of [`H2_PREFACE`].
pub const H2_PREFACE_LEN: usize = H2_PREFACE.len();
/// Empty lines tolerated before a request line (RFC 9112 §2.2).
const MAX_EMPTY_LINES: u8 = 4;

/// Size caps applied by [`H1Framing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramingLimits {
    /// Most bytes in one request head (request line, header lines and the final
    /// CRLF) and in one trailer section; more is [`Violation::HeadTooLarge`].
    pub max_head_bytes: usize,
}

impl Default for FramingLimits {
    /// 64 KiB per head or trailer section.
    fn default() -> Self {
        Self {
            max_head_bytes: 64 * 1024,
        }
    }
}

/// Why a client's byte stream was refused. Each message is short and stable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Violation {
    /// A LF not preceded by CR.
    #[error("bare LF line terminator")]
    BareLf,
    /// A CR not followed by LF.
    #[error("bare CR")]
    BareCr,
    /// More empty lines before a request line than tolerated.
    #[error("too many empty lines before request line")]
    TooManyEmptyLines,
    /// The request line is not `method SP target SP version` with single spaces.
    #[error("malformed request line")]
    InvalidRequestLine,
    /// The method is not a token.
    #[error("invalid method")]
    InvalidMethod,
    /// The request-target holds whitespace or control characters.
    #[error("invalid request target")]
    InvalidRequestTarget,
    /// The version is neither `HTTP/1.1` nor `HTTP/1.0`.
    #[error("unsupported HTTP version")]
    InvalidVersion,
    /// A header line starts with whitespace (obsolete line folding).
    #[error("obsolete line folding")]
    ObsFold,
    /// A header name is empty, not a token, or not followed directly by `:`.
    #[error("invalid header name")]
    InvalidHeaderName,
    /// A header value holds a control character other than HT.
    #[error("invalid header value")]
    InvalidHeaderValue,
    /// The request head or a trailer section exceeds `max_head_bytes`.
    #[error("request head too large")]
    HeadTooLarge,
    /// A `Content-Length` value is not a plain decimal `u64`.
    #[error("invalid content-length")]
    InvalidContentLength,
    /// Two `Content-Length` fields disagree.
    #[error("conflicting content-length")]
    ConflictingContentLength,
    /// Both `Content-Length` and `Transfer-Encoding` are present.
    #[error("content-length with transfer-encoding")]
    ContentLengthWithTransferEncoding,
    /// `Transfer-Encoding` is not a single `chunked`, is repeated, or is in HTTP/1.0.
    #[error("unsupported transfer-encoding")]
    UnsupportedTransferEncoding,
    /// A trailer section carries `Content-Length` or `Transfer-Encoding`.
    #[error("framing header in trailers")]
    FramingHeaderInTrailer,
    /// A chunk size is missing, not hex, or longer than 16 digits.
    #[error("invalid chunk size")]
    InvalidChunkSize,
    /// A chunk extension holds a control character.
    #[error("invalid chunk extension")]
    InvalidChunkExtension,
    /// A chunk-size line (with extensions) is too long.
    #[error("chunk size line too long")]
    ChunkLineTooLong,
    /// Chunk data is not followed by exactly CRLF.
    #[error("invalid chunk terminator")]
    InvalidChunk,
    /// An HTTP/2 client sent more control frames than its budget (checked
    /// by the connection, not by this checker).
    #[error("HTTP/2 control-frame flood")]
    H2ControlFlood,
}

/// Strict HTTP/1 framing state for one client connection.
#[derive(Debug)]
pub struct H1Framing {
    limits: FramingLimits,
    state: State,
    lines: LineReader,
    head: HeadInfo,
    failed: Option<Violation>,
    h2: bool,
}

/// Where the checker is in the client's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Connection start: the bytes so far are a prefix of the HTTP/2 preface.
    Preface { matched: usize },
    /// Between requests, after `empty_lines` CRLFs (and a CR if `pending_cr`).
    Idle { empty_lines: u8, pending_cr: bool },
    /// Reading the request line and header lines.
    Head,
    /// Skipping a `Content-Length` body.
    Body { remaining: u64 },
    /// Reading a chunk-size line.
    ChunkSize(ChunkLine),
    /// Skipping chunk data.
    ChunkData { remaining: u64 },
    /// Expecting the CRLF after chunk data.
    ChunkDataEnd { seen_cr: bool },
    /// Reading trailer lines after the last chunk.
    Trailers,
    /// No longer inspecting.
    Passthrough,
}

/// How the body of the request whose head just ended is framed.
enum BodyKind {
    None,
    Length(u64),
    Chunked,
}

impl H1Framing {
    /// A checker for a new connection.
    #[must_use]
    pub fn new(limits: FramingLimits) -> Self {
        Self {
            limits,
            state: State::Preface { matched: 0 },
            lines: LineReader::default(),
            head: HeadInfo::default(),
            failed: None,
            h2: false,
        }
    }

    /// Feed the next bytes read from the client, in order. Returns `Err` on the first
    /// violation (after which the connection is closed); later calls return it again.
    ///
    /// # Errors
    ///
    /// The first [`Violation`] found in the bytes fed so far.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), Violation> {
        if let Some(violation) = &self.failed {
            return Err(violation.clone());
        }
        self.run(bytes)
            .inspect_err(|violation| self.failed = Some(violation.clone()))
    }

    /// True once the checker has stopped inspecting (HTTP/2 prior-knowledge preface
    /// seen, or an upgrade/`CONNECT` request's head and body were complete):
    /// everything after is passed through unchecked.
    #[must_use]
    pub fn is_passthrough(&self) -> bool {
        matches!(self.state, State::Passthrough)
    }

    /// True when the connection opened with the HTTP/2 preface: everything
    /// after its first [`H2_PREFACE_LEN`] bytes is HTTP/2 frames.
    #[must_use]
    pub fn is_h2(&self) -> bool {
        self.h2
    }

    fn run(&mut self, mut input: &[u8]) -> Result<(), Violation> {
        while !input.is_empty() {
            let consumed = match self.state {
                State::Passthrough => return Ok(()),
                State::Preface { matched } => self.preface(matched, input)?,
                State::Idle {
                    empty_lines,
                    pending_cr,
                } => self.idle(empty_lines, pending_cr, input)?,
                State::Head => self.head_lines(input)?,
                State::Body { remaining } => {
                    let (consumed, left) = skip(remaining, input.len());
                    self.state = State::Body { remaining: left };
                    if left == 0 {
                        self.end_of_message();
                    }
                    consumed
                }
                State::ChunkSize(line) => self.chunk_size(line, input)?,
                State::ChunkData { remaining } => {
                    let (consumed, left) = skip(remaining, input.len());
                    self.state = if left == 0 {
                        State::ChunkDataEnd { seen_cr: false }
                    } else {
                        State::ChunkData { remaining: left }
                    };
                    consumed
                }
                State::ChunkDataEnd { seen_cr } => {
                    self.state = match (seen_cr, input[0]) {
                        (false, b'\r') => State::ChunkDataEnd { seen_cr: true },
                        (false, b'\n') => return Err(Violation::BareLf),
                        (true, b'\n') => State::ChunkSize(ChunkLine::default()),
                        _ => return Err(Violation::InvalidChunk),
                    };
                    1
                }
                State::Trailers => {
                    let (consumed, complete) = self.lines.read(input, self.limits)?;
                    if complete {
                        self.trailer_line()?;
                    }
                    consumed
                }
            };
            input = &input[consumed..];
        }
        Ok(())
    }

    /// Matches the HTTP/2 preface; on divergence replays the matched bytes as HTTP/1.
    fn preface(&mut self, matched: usize, input: &[u8]) -> Result<usize, Violation> {
        let expected = &H2_PREFACE[matched..];
        let available = input.len().min(expected.len());
        let common = input.iter().zip(expected).take_while(|(got, want)| got == want).count();
        if common < available {
            self.state = State::Idle {
                empty_lines: 0,
                pending_cr: false,
            };
            self.run(&H2_PREFACE[..matched + common])?;
            return Ok(common);
        }
        self.state = if matched + common == H2_PREFACE.len() {
            self.h2 = true;
            State::Passthrough
        } else {
            State::Preface {
                matched: matched + common,
            }
        };
        Ok(common)
    }

    /// Skips tolerated empty lines; the first other byte starts a request head.
    fn idle(&mut self, empty_lines: u8, pending_cr: bool, input: &[u8]) -> Result<usize, Violation> {
        self.state = match (pending_cr, input[0]) {
            (true, b'\n') if empty_lines >= MAX_EMPTY_LINES => {
                return Err(Violation::TooManyEmptyLines);
            }
            (true, b'\n') => State::Idle {
                empty_lines: empty_lines + 1,
                pending_cr: false,
            },
            (true, _) => return Err(Violation::BareCr),
            (false, b'\r') => State::Idle {
                empty_lines,
                pending_cr: true,
            },
            (false, b'\n') => return Err(Violation::BareLf),
            (false, _) => {
                self.head = HeadInfo::default();
                self.lines.start_section();
                self.state = State::Head;
                return Ok(0);
            }
        };
        Ok(1)
    }

    /// Reads the next line of the request head. A line that arrived whole in
    /// `input` (the usual case: a head comes in one read) is checked where it
    /// lies; one split across reads is gathered in the line buffer first.
    fn head_lines(&mut self, input: &[u8]) -> Result<usize, Violation> {
        if let Some((end, consumed)) = self.lines.whole_line(input, self.limits)? {
            self.head_line(&input[..end])?;
            return Ok(consumed);
        }
        let (consumed, complete) = self.lines.read(input, self.limits)?;
        if complete {
            let line = std::mem::take(&mut self.lines.buf);
            self.head_line(&line)?;
            // The buffer's allocation serves the next split line.
            self.lines.buf = line;
            self.lines.buf.clear();
        }
        Ok(consumed)
    }

    /// Handles one complete line of the request head.
    fn head_line(&mut self, line: &[u8]) -> Result<(), Violation> {
        if !self.head.seen_request_line {
            self.head.request_line(line)?;
        } else if line.is_empty() {
            match self.head.finish()? {
                BodyKind::None => self.end_of_message(),
                BodyKind::Length(remaining) => self.state = State::Body { remaining },
                BodyKind::Chunked => self.state = State::ChunkSize(ChunkLine::default()),
            }
        } else {
            self.head.field(line)?;
        }
        Ok(())
    }

    /// Handles one complete line of a trailer section.
    fn trailer_line(&mut self) -> Result<(), Violation> {
        let line = &self.lines.buf;
        if line.is_empty() {
            self.end_of_message();
        } else {
            let (name, _) = split_field(line)?;
            if is_framing_field(name) {
                return Err(Violation::FramingHeaderInTrailer);
            }
        }
        self.lines.buf.clear();
        Ok(())
    }

    /// Reads a chunk-size line byte by byte (it is short and bounded).
    fn chunk_size(&mut self, mut line: ChunkLine, input: &[u8]) -> Result<usize, Violation> {
        for (index, &byte) in input.iter().enumerate() {
            if let Some(size) = line.step(byte)? {
                self.state = if size == 0 {
                    self.lines.start_section();
                    State::Trailers
                } else {
                    State::ChunkData { remaining: size }
                };
                return Ok(index + 1);
            }
        }
        self.state = State::ChunkSize(line);
        Ok(input.len())
    }

    /// The current request is complete: next request, or passthrough after an upgrade.
    fn end_of_message(&mut self) {
        self.state = if self.head.upgrades() {
            State::Passthrough
        } else {
            State::Idle {
                empty_lines: 0,
                pending_cr: false,
            }
        };
    }
}

/// Skips up to `remaining` body bytes of `available`: (bytes consumed, bytes left).
fn skip(remaining: u64, available: usize) -> (usize, u64) {
    match usize::try_from(remaining) {
        Ok(remaining) if remaining <= available => (remaining, 0),
        _ => {
            let taken = u64::try_from(available).unwrap_or(u64::MAX);
            (available, remaining.saturating_sub(taken))
        }
    }
}

/// Collects CRLF-terminated lines of a head or trailer section, counting its bytes.
#[derive(Debug, Default)]
struct LineReader {
    /// The current line so far, without its terminator.
    buf: Vec<u8>,
    /// A CR ended the last input; the next byte must be LF.
    pending_cr: bool,
    /// Bytes of the current section, terminators included.
    section_bytes: usize,
}

impl LineReader {
    fn start_section(&mut self) {
        self.buf.clear();
        self.pending_cr = false;
        self.section_bytes = 0;
    }

    fn count(&mut self, bytes: usize, limits: FramingLimits) -> Result<(), Violation> {
        self.section_bytes = self.section_bytes.saturating_add(bytes);
        if self.section_bytes > limits.max_head_bytes {
            return Err(Violation::HeadTooLarge);
        }
        Ok(())
    }

    /// When no line is in progress and `input` starts with a whole
    /// CRLF-terminated line: counts it and returns (where the line ends,
    /// bytes consumed with its CRLF). Anything else (a partial line, a bare
    /// CR or LF) is left to [`LineReader::read`], which gives the same
    /// outcome byte by byte.
    fn whole_line(&mut self, input: &[u8], limits: FramingLimits) -> Result<Option<(usize, usize)>, Violation> {
        if self.pending_cr || !self.buf.is_empty() {
            return Ok(None);
        }
        let Some(end) = memchr::memchr2(b'\r', b'\n', input) else {
            return Ok(None);
        };
        if input[end] != b'\r' || input.get(end + 1) != Some(&b'\n') {
            return Ok(None);
        }
        self.count(end + 2, limits)?;
        Ok(Some((end, end + 2)))
    }

    /// Consumes input up to the end of the current line: (bytes consumed, whether
    /// the line in `buf` is complete).
    fn read(&mut self, input: &[u8], limits: FramingLimits) -> Result<(usize, bool), Violation> {
        if self.pending_cr {
            self.count(1, limits)?;
            if input.first() != Some(&b'\n') {
                return Err(Violation::BareCr);
            }
            self.pending_cr = false;
            return Ok((1, true));
        }
        match memchr::memchr2(b'\r', b'\n', input) {
            None => {
                self.count(input.len(), limits)?;
                self.buf.extend_from_slice(input);
                Ok((input.len(), false))
            }
            Some(end) => {
                self.count(end + 1, limits)?;
                if input[end] == b'\n' {
                    return Err(Violation::BareLf);
                }
                self.buf.extend_from_slice(&input[..end]);
                self.pending_cr = true;
                Ok((end + 1, false))
            }
        }
    }
}

/// What the head of the current request says about framing.
#[derive(Debug, Default)]
struct HeadInfo {
    seen_request_line: bool,
    http10: bool,
    connect: bool,
    content_length: Option<u64>,
    chunked: bool,
    upgrade_field: bool,
    connection_upgrade: bool,
}

impl HeadInfo {
    /// `method SP request-target SP HTTP-version`, single spaces only.
    fn request_line(&mut self, line: &[u8]) -> Result<(), Violation> {
        let mut parts = line.split(|&b| b == b' ');
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Violation::InvalidRequestLine);
        };
        if method.is_empty() || target.is_empty() || version.is_empty() {
            return Err(Violation::InvalidRequestLine);
        }
        if !is_token(method) {
            return Err(Violation::InvalidMethod);
        }
        if !target.iter().all(|&b| (0x21..=0x7e).contains(&b) || b >= 0x80) {
            return Err(Violation::InvalidRequestTarget);
        }
        self.http10 = match version {
            b"HTTP/1.1" => false,
            b"HTTP/1.0" => true,
            _ => return Err(Violation::InvalidVersion),
        };
        self.connect = method == b"CONNECT";
        self.seen_request_line = true;
        Ok(())
    }

    /// One header line of the head.
    fn field(&mut self, line: &[u8]) -> Result<(), Violation> {
        let (name, value) = split_field(line)?;
        if name.eq_ignore_ascii_case(b"content-length") {
            let length = parse_content_length(value)?;
            if self.content_length.is_some_and(|previous| previous != length) {
                return Err(Violation::ConflictingContentLength);
            }
            self.content_length = Some(length);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if self.http10 || self.chunked || !value.eq_ignore_ascii_case(b"chunked") {
                return Err(Violation::UnsupportedTransferEncoding);
            }
            self.chunked = true;
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            self.upgrade_field = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            let upgrade = value
                .split(|&b| b == b',')
                .any(|option| trim_ows(option).eq_ignore_ascii_case(b"upgrade"));
            self.connection_upgrade |= upgrade;
        }
        Ok(())
    }

    /// The head is complete: how its body is framed.
    fn finish(&self) -> Result<BodyKind, Violation> {
        match (self.content_length, self.chunked) {
            (Some(_), true) => Err(Violation::ContentLengthWithTransferEncoding),
            (None, true) => Ok(BodyKind::Chunked),
            (Some(length), false) if length > 0 => Ok(BodyKind::Length(length)),
            _ => Ok(BodyKind::None),
        }
    }

    /// Whether the connection may stop speaking HTTP/1 after this request. hyper
    /// honours `Upgrade` only in HTTP/1.1, so HTTP/1.0 stays checked.
    fn upgrades(&self) -> bool {
        self.connect || (!self.http10 && self.upgrade_field && self.connection_upgrade)
    }
}

/// Splits a field line into its name and OWS-trimmed value, checking both.
fn split_field(line: &[u8]) -> Result<(&[u8], &[u8]), Violation> {
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Err(Violation::ObsFold);
    }
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(Violation::InvalidHeaderName)?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if !is_token(name) {
        return Err(Violation::InvalidHeaderName);
    }
    if !value.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f)) {
        return Err(Violation::InvalidHeaderValue);
    }
    Ok((name, trim_ows(value)))
}

/// `Content-Length` and `Transfer-Encoding`, which must never appear in trailers.
fn is_framing_field(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"transfer-encoding")
}

/// 1+ ASCII digits that fit a `u64`; nothing else (no sign, no list).
fn parse_content_length(value: &[u8]) -> Result<u64, Violation> {
    length_digits(value).map_err(|_| Violation::InvalidContentLength)
}

/// Why a `Content-Length` value is not a length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthError {
    /// Empty, or something other than ASCII digits.
    NotDigits,
    /// Past `u64`.
    TooLarge,
}

/// One `Content-Length` value: 1+ ASCII digits (leading zeros allowed, as in
/// hyper). The client side here and the upstream client both read lengths
/// with this, so the two can never disagree on one.
pub fn length_digits(value: &[u8]) -> Result<u64, LengthError> {
    if value.is_empty() {
        return Err(LengthError::NotDigits);
    }
    value.iter().try_fold(0u64, |length, &b| {
        if !b.is_ascii_digit() {
            return Err(LengthError::NotDigits);
        }
        length
            .checked_mul(10)
            .and_then(|length| length.checked_add(u64::from(b - b'0')))
            .ok_or(LengthError::TooLarge)
    })
}

/// RFC 9110 `tchar`, one entry per byte value.
const TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        // `b < 256`: the cast keeps every value.
        #[allow(clippy::cast_possible_truncation)]
        let byte = b as u8;
        table[b] = byte.is_ascii_alphanumeric();
        b += 1;
    }
    let extra = b"!#$%&'*+-.^_`|~";
    let mut i = 0;
    while i < extra.len() {
        table[extra[i] as usize] = true;
        i += 1;
    }
    table
};

/// RFC 9110 `token`: 1+ tchar.
fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(|&b| TCHAR[usize::from(b)])
}

/// Trims optional whitespace (SP / HT) on both sides.
fn trim_ows(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

#[path = "strict_h1_chunk.rs"]
mod chunk;
use chunk::ChunkLine;

#[cfg(test)]
#[path = "strict_h1_tests.rs"]
mod tests;
