//! The chunk-size lines of a chunked request body (RFC 9112 §7.1), read
//! byte by byte: they are short and bounded.

use super::Violation;

/// Most bytes in one chunk-size line, extensions and CRLF included.
const MAX_CHUNK_LINE_BYTES: usize = 4096;
/// Most hex digits in a chunk size: 16 digits fill a `u64`.
const MAX_CHUNK_SIZE_DIGITS: u8 = 16;

/// Progress through one `chunk-size [ chunk-ext ] CRLF` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct ChunkLine {
    digits: u8,
    size: u64,
    phase: ChunkPhase,
    bytes: usize,
}

/// Which part of a chunk-size line comes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum ChunkPhase {
    /// Hex digits of the size.
    #[default]
    Digits,
    /// Whitespace after the size (RFC 9112 BWS), before `;` or CRLF.
    Whitespace,
    /// Chunk extensions, from the first `;` to the CR.
    Extensions,
    /// After the CR; only LF may follow.
    Cr,
}

impl ChunkLine {
    /// Takes one byte; returns the chunk size once the line's CRLF is complete.
    pub(super) fn step(&mut self, byte: u8) -> Result<Option<u64>, Violation> {
        self.bytes += 1;
        if self.bytes > MAX_CHUNK_LINE_BYTES {
            return Err(Violation::ChunkLineTooLong);
        }
        match (self.phase, byte) {
            (ChunkPhase::Cr, b'\n') => return Ok(Some(self.size)),
            (ChunkPhase::Cr, _) => return Err(Violation::BareCr),
            (_, b'\n') => return Err(Violation::BareLf),
            (_, b'\r') if self.digits == 0 => return Err(Violation::InvalidChunkSize),
            (_, b'\r') => self.phase = ChunkPhase::Cr,
            (ChunkPhase::Digits, _) => self.digit(byte)?,
            (ChunkPhase::Whitespace, b' ' | b'\t') => {}
            (ChunkPhase::Whitespace, b';') => self.phase = ChunkPhase::Extensions,
            (ChunkPhase::Whitespace, _) => return Err(Violation::InvalidChunkSize),
            (ChunkPhase::Extensions, _) => {
                if byte != b'\t' && (byte < 0x20 || byte == 0x7f) {
                    return Err(Violation::InvalidChunkExtension);
                }
            }
        }
        Ok(None)
    }

    /// A byte while reading the size's hex digits.
    fn digit(&mut self, byte: u8) -> Result<(), Violation> {
        let value = match byte {
            b'0'..=b'9' => byte - b'0',
            b'a'..=b'f' => byte - b'a' + 10,
            b'A'..=b'F' => byte - b'A' + 10,
            b' ' | b'\t' | b';' if self.digits > 0 => {
                self.phase = if byte == b';' {
                    ChunkPhase::Extensions
                } else {
                    ChunkPhase::Whitespace
                };
                return Ok(());
            }
            _ => return Err(Violation::InvalidChunkSize),
        };
        if self.digits == MAX_CHUNK_SIZE_DIGITS {
            return Err(Violation::InvalidChunkSize);
        }
        self.digits += 1;
        self.size = (self.size << 4) | u64::from(value);
        Ok(())
    }
}
