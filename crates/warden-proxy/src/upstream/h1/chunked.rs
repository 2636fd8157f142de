//! A strict decoder for the chunked transfer coding of upstream responses
//! (RFC 9112 §7.1). Sizes are hex digits only (no sign, no `0x`, no
//! whitespace before the size), lines end in CRLF, chunk extensions are
//! skipped but bounded, trailers are read and dropped. Any deviation is an
//! error and the connection is not reused.

use bytes::{Bytes, BytesMut};

/// Longest chunk-size line (size, extensions, CRLF).
const MAX_SIZE_LINE: usize = 4096;
/// Most bytes of trailer section accepted.
const MAX_TRAILERS: usize = 16 * 1024;

/// Where the decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunked {
    /// Expecting a chunk-size line.
    Size,
    /// Inside chunk data, this many bytes left.
    Data(u64),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one; bytes read so far.
    Trailers(usize),
    /// The body is complete.
    Done,
}

/// One decoding step's result.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Body bytes.
    Data(Bytes),
    /// Need more input.
    More,
    /// The body ended.
    Done,
}

impl Chunked {
    /// Decodes from the front of `buf`, consuming what it uses.
    pub(crate) fn step(&mut self, buf: &mut BytesMut) -> Result<Step, &'static str> {
        loop {
            match *self {
                Self::Done => return Ok(Step::Done),
                Self::Size => {
                    let Some(end) = line_end(buf, MAX_SIZE_LINE)? else {
                        return Ok(Step::More);
                    };
                    let line = buf.split_to(end + 2);
                    let size = parse_size(&line[..end])?;
                    *self = if size == 0 { Self::Trailers(0) } else { Self::Data(size) };
                }
                Self::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Step::More);
                    }
                    let take = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
                    let data = buf.split_to(take).freeze();
                    let left = left - take as u64;
                    *self = if left == 0 { Self::DataEnd } else { Self::Data(left) };
                    return Ok(Step::Data(data));
                }
                Self::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(Step::More);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err("chunk data not followed by CRLF");
                    }
                    let _ = buf.split_to(2);
                    *self = Self::Size;
                }
                Self::Trailers(seen) => {
                    let Some(end) = line_end(buf, MAX_TRAILERS.saturating_sub(seen))? else {
                        return Ok(Step::More);
                    };
                    let _ = buf.split_to(end + 2);
                    *self = if end == 0 {
                        Self::Done
                    } else {
                        Self::Trailers(seen + end + 2)
                    };
                }
            }
        }
    }
}

/// Index of the CRLF ending the first line of `buf`; a bare CR or LF, or no
/// line end within `max` bytes, is an error.
fn line_end(buf: &[u8], max: usize) -> Result<Option<usize>, &'static str> {
    for (i, b) in buf.iter().enumerate().take(max) {
        match b {
            b'\r' => {
                return match buf.get(i + 1) {
                    Some(b'\n') => Ok(Some(i)),
                    Some(_) => Err("bare CR in chunked framing"),
                    None => Ok(None),
                };
            }
            b'\n' => return Err("bare LF in chunked framing"),
            _ => {}
        }
    }
    if buf.len() >= max {
        Err("chunk line too long")
    } else {
        Ok(None)
    }
}

/// `1*HEXDIG [ chunk-ext ]`; the extension is skipped.
fn parse_size(line: &[u8]) -> Result<u64, &'static str> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err("chunk size is not hex");
    }
    if digits > 15 {
        return Err("chunk size too large");
    }
    // Optional whitespace (SP / HTAB only) may precede an extension.
    let blanks = line[digits..].iter().take_while(|b| matches!(b, b' ' | b'\t')).count();
    let rest = &line[digits + blanks..];
    if !rest.is_empty() && rest[0] != b';' {
        return Err("junk after chunk size");
    }
    let mut size = 0u64;
    for b in &line[..digits] {
        let d = char::from(*b).to_digit(16).unwrap_or(0);
        size = size * 16 + u64::from(d);
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in pieces of `piece` bytes.
    fn decode(input: &[u8], piece: usize) -> Result<(Vec<u8>, BytesMut), &'static str> {
        let mut state = Chunked::Size;
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut rest = input;
        loop {
            match state.step(&mut buf)? {
                Step::Data(d) => out.extend_from_slice(&d),
                Step::Done => return Ok((out, buf)),
                Step::More if rest.is_empty() => return Err("truncated"),
                Step::More => {
                    let n = piece.min(rest.len());
                    buf.extend_from_slice(&rest[..n]);
                    rest = &rest[n..];
                }
            }
        }
    }

    #[test]
    fn chunks_decode_whatever_the_read_sizes() {
        let wire = b"5\r\nhello\r\n7;name=val\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
        for piece in [1, 2, 3, 7, 64] {
            let (body, left) = decode(wire, piece).unwrap();
            assert_eq!(body, b"hello, world");
            // Bytes after the body are left for whoever reads next.
            assert!(b"NEXT".starts_with(&left), "piece {piece}: {left:?}");
        }
        assert_eq!(decode(b"A\r\n0123456789\r\n0\r\n\r\n", 4).unwrap().0, b"0123456789");
        assert_eq!(decode(b"0\r\n\r\n", 1).unwrap().0, b"");
    }

    #[test]
    fn malformed_chunking_is_refused() {
        for wire in [
            &b"-5\r\nhello\r\n0\r\n\r\n"[..],
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b" 5\r\nhello\r\n0\r\n\r\n",
            b"5 x\r\nhello\r\n0\r\n\r\n",
            b"5\x0c;a\r\nhello\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloXX0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"5\rhello\r\n0\r\n\r\n",
            b"ffffffffffffffffff\r\n",
            b"\r\n",
        ] {
            assert!(
                decode(wire, 64).is_err_and(|e| e != "truncated"),
                "accepted {:?}",
                String::from_utf8_lossy(wire)
            );
        }
    }

    #[test]
    fn endless_lines_are_refused() {
        let mut long = b"5;".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_SIZE_LINE));
        assert_eq!(decode(&long, 512).unwrap_err(), "chunk line too long");
        let mut trailers = b"0\r\n".to_vec();
        for _ in 0..2000 {
            trailers.extend_from_slice(b"X-T: 1234567\r\n");
        }
        assert_eq!(decode(&trailers, 512).unwrap_err(), "chunk line too long");
    }
}
