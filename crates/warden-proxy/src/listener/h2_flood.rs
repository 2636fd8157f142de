//! [`H2FloodMeter`]: counts the HTTP/2 frames a client sends that cost the
//! server work without carrying a request — the control-frame floods of
//! CVE-2019-9512 (PING), -9515 (SETTINGS), -9513 (PRIORITY), -9518 (empty
//! DATA frames) and CVE-2023-44487 (RST_STREAM, rapid reset) — plus frame
//! types the server must ignore. hyper answers each PING and SETTINGS frame
//! and processes the rest without limit, so the budget lives here, on the
//! bytes read. hyper's own rapid-reset cap (`max_h2_pending_resets`) only
//! sees streams reset before the server accepted them; a client reset right
//! after the accept (the server keeping pace) costs a handler each time and
//! is caught here.
//!
//! Sans-IO like the HTTP/1 framing checker: the connection feeds every byte
//! after the client preface, split anywhere; only the 9-byte frame headers are
//! read, payloads are skipped. The budget is a token bucket per connection:
//! `per_sec` frames a second, bursts up to `per_sec`. WINDOW_UPDATE, HEADERS,
//! CONTINUATION and DATA with a payload are not counted (flow control and
//! header-size limits bound them), nor are SETTINGS acknowledgements of the
//! server's own SETTINGS or PING acknowledgements (the server sends those
//! frames at its own pace).

use std::time::Instant;

/// Length of an HTTP/2 frame header.
const FRAME_HEADER: usize = 9;

const DATA: u8 = 0x0;
const PRIORITY: u8 = 0x2;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PUSH_PROMISE: u8 = 0x5;
const PING: u8 = 0x6;
const WINDOW_UPDATE: u8 = 0x8;
const HEADERS: u8 = 0x1;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const PRIORITY_UPDATE: u8 = 0x10;
const FLAG_ACK: u8 = 0x1;
const FLAG_END_STREAM: u8 = 0x1;
const FLAG_PADDED: u8 = 0x8;

/// The budget of one client connection.
#[derive(Debug)]
pub struct H2FloodMeter {
    per_sec: f64,
    tokens: f64,
    last: Option<Instant>,
    header: [u8; FRAME_HEADER],
    have: usize,
    skip: u64,
    /// A padded DATA frame without END_STREAM whose pad-length byte is next:
    /// its payload length. It is empty (and costly) when the padding is all
    /// there is.
    padded_len: Option<u64>,
}

impl H2FloodMeter {
    /// A meter allowing `per_sec` control frames a second (burst `per_sec`).
    pub fn new(per_sec: u32) -> Self {
        let per_sec = f64::from(per_sec.max(1));
        Self {
            per_sec,
            tokens: per_sec,
            last: None,
            header: [0; FRAME_HEADER],
            have: 0,
            skip: 0,
            padded_len: None,
        }
    }

    /// Feeds the next bytes the client sent, read at `now`. False once the
    /// client has spent more than its budget: the connection should close.
    pub fn feed(&mut self, mut bytes: &[u8], now: Instant) -> bool {
        let mut refilled = false;
        while !bytes.is_empty() {
            if let Some(len) = self.padded_len.take() {
                // Pad length, then `len - 1 - pad` data bytes.
                self.skip -= 1;
                let pad = u64::from(bytes[0]);
                bytes = &bytes[1..];
                if len <= pad + 1 && !self.spend(now, &mut refilled) {
                    return false;
                }
                continue;
            }
            if self.skip > 0 {
                let n = usize::try_from(self.skip).unwrap_or(usize::MAX).min(bytes.len());
                self.skip -= n as u64;
                bytes = &bytes[n..];
                continue;
            }
            let n = (FRAME_HEADER - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have < FRAME_HEADER {
                break;
            }
            self.have = 0;
            let len = u64::from(u32::from_be_bytes([0, self.header[0], self.header[1], self.header[2]]));
            self.skip = len;
            let (kind, flags) = (self.header[3], self.header[4]);
            if kind == DATA && flags & FLAG_PADDED != 0 && flags & FLAG_END_STREAM == 0 && len > 0 {
                self.padded_len = Some(len);
                continue;
            }
            if costly(kind, flags, len) && !self.spend(now, &mut refilled) {
                return false;
            }
        }
        true
    }

    /// Charges one frame; false when the budget is spent.
    fn spend(&mut self, now: Instant, refilled: &mut bool) -> bool {
        if !*refilled {
            self.refill(now);
            *refilled = true;
        }
        self.tokens -= 1.0;
        self.tokens >= 0.0
    }

    fn refill(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let earned = now.saturating_duration_since(last).as_secs_f64() * self.per_sec;
            self.tokens = (self.tokens + earned).min(self.per_sec);
        }
        self.last = Some(now);
    }
}

/// Whether a frame of this type, flags and payload length counts against the budget.
fn costly(kind: u8, flags: u8, len: u64) -> bool {
    match kind {
        PING | SETTINGS => flags & FLAG_ACK == 0,
        PRIORITY | RST_STREAM => true,
        // An empty DATA frame that does not end its stream does nothing.
        DATA => len == 0 && flags & FLAG_END_STREAM == 0,
        // PRIORITY_UPDATE (RFC 9218) comes with requests, like HEADERS.
        HEADERS | CONTINUATION | WINDOW_UPDATE | GOAWAY | PRIORITY_UPDATE => false,
        // Clients may not push; hyper refuses it. Unknown types are ignored
        // by the server, so each is pure cost.
        PUSH_PROMISE => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
        let mut f = vec![len[1], len[2], len[3], kind, flags, 0, 0, 0, 0];
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn a_ping_flood_exhausts_the_budget_split_anywhere() {
        let now = Instant::now();
        let pings: Vec<u8> = (0..101).flat_map(|_| frame(PING, 0, &[7; 8])).collect();
        let mut m = H2FloodMeter::new(100);
        // Fed in 5-byte pieces: frame headers straddle reads.
        let mut ok = true;
        for piece in pings.chunks(5) {
            ok = m.feed(piece, now);
            if !ok {
                break;
            }
        }
        assert!(!ok, "the 101st ping in one instant is over a budget of 100");
        let mut m = H2FloodMeter::new(100);
        assert!(m.feed(&pings[..pings.len() - 17], now), "100 pings are within it");
    }

    #[test]
    fn the_budget_refills_over_time_and_acks_and_payload_frames_are_free() {
        let start = Instant::now();
        let mut m = H2FloodMeter::new(10);
        for s in 0..30u64 {
            let at = start + Duration::from_secs(s);
            let five: Vec<u8> = (0..5).flat_map(|_| frame(PING, 0, &[0; 8])).collect();
            assert!(m.feed(&five, at), "5 pings a second stay under 10 a second");
        }
        let mut m = H2FloodMeter::new(10);
        let mut free = Vec::new();
        free.extend(frame(PRIORITY_UPDATE, 0, &[0, 0, 0, 1, b'u', b'=', b'1']));
        // Padded DATA that carries data is free too.
        free.extend(frame(DATA, FLAG_PADDED, &[2, b'd', 0, 0]));
        for _ in 0..1000 {
            free.extend(frame(SETTINGS, FLAG_ACK, &[]));
            free.extend(frame(PING, FLAG_ACK, &[0; 8]));
            free.extend(frame(WINDOW_UPDATE, 0, &[0, 0, 1, 0]));
            free.extend(frame(DATA, 0, b"payload"));
            free.extend(frame(DATA, FLAG_END_STREAM, &[]));
        }
        assert!(
            m.feed(&free, start),
            "acknowledgements and frames with work in them cost nothing"
        );
    }

    #[test]
    fn empty_data_priority_reset_settings_and_unknown_frames_count() {
        let now = Instant::now();
        for f in [
            frame(DATA, 0, &[]),
            frame(PRIORITY, 0, &[0, 0, 0, 1, 16]),
            frame(RST_STREAM, 0, &[0, 0, 0, 8]),
            frame(SETTINGS, 0, &[]),
            frame(0xfa, 0, b"ignored"),
            // Padding only: as empty as an empty frame.
            frame(DATA, FLAG_PADDED, &[0]),
            frame(DATA, FLAG_PADDED, &[3, 0, 0, 0]),
        ] {
            let mut m = H2FloodMeter::new(3);
            let flood: Vec<u8> = (0..4).flat_map(|_| f.clone()).collect();
            assert!(!m.feed(&flood, now), "frame {:?} counts", &f[3..5]);
            // Split anywhere, it counts the same.
            let mut m = H2FloodMeter::new(3);
            assert!(
                !flood.chunks(1).all(|b| m.feed(b, now)),
                "frame {:?} byte by byte",
                &f[3..5]
            );
        }
    }
}
