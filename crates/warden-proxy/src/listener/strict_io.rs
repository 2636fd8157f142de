//! [`StrictIo`]: the client socket as hyper sees it. Every byte read passes the
//! [`H1Framing`] checker first; on a violation the client gets a problem+json
//! 400 (431 for an oversized head) and the connection is closed, so hyper — and
//! the upstream — never see the request.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use warden_core::ProblemKind;

use super::activity::ConnActivity;
use super::h2_flood::H2FloodMeter;
use super::strict_h1::{FramingLimits, H1Framing, H2_PREFACE_LEN, Violation};

/// A client stream (TCP, or TLS over TCP) behind the strict framing checker
/// (HTTP/1) or the control-frame budget (HTTP/2).
#[derive(Debug)]
pub struct StrictIo<S> {
    inner: S,
    framing: H1Framing,
    refused: bool,
    /// Bytes read so far (to find where HTTP/2 frames start).
    read: u64,
    h2_frames_per_sec: u32,
    h2: Option<H2FloodMeter>,
    /// Told when the client turns out to speak HTTP/2.
    activity: Arc<ConnActivity>,
}

/// A stream that can push a short answer out without waiting (best effort),
/// used for the refusal written from inside `poll_read`.
pub trait SendNow {
    /// Writes `bytes` if the socket takes them now; otherwise drops them.
    fn send_now(&mut self, bytes: &[u8]);
}

impl SendNow for TcpStream {
    fn send_now(&mut self, bytes: &[u8]) {
        let _ = self.try_write(bytes);
    }
}

/// `io::Write` over a non-blocking socket write.
struct TryWriter<'a>(&'a TcpStream);

impl io::Write for TryWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl SendNow for tokio_rustls::server::TlsStream<TcpStream> {
    fn send_now(&mut self, bytes: &[u8]) {
        use std::io::Write as _;
        let (tcp, conn) = self.get_mut();
        if conn.writer().write_all(bytes).is_err() {
            return;
        }
        conn.send_close_notify();
        while conn.wants_write() {
            match conn.write_tls(&mut TryWriter(tcp)) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}

impl<S> StrictIo<S> {
    /// Wraps an accepted stream; an HTTP/2 client may send
    /// `h2_frames_per_sec` control frames a second (see [`H2FloodMeter`]).
    /// `activity` learns when the connection turns out to be HTTP/2.
    pub fn new(inner: S, limits: FramingLimits, h2_frames_per_sec: u32, activity: Arc<ConnActivity>) -> Self {
        Self {
            inner,
            framing: H1Framing::new(limits),
            refused: false,
            read: 0,
            h2_frames_per_sec,
            h2: None,
            activity,
        }
    }

    /// Checks freshly read bytes: HTTP/1 framing, or the HTTP/2 frame budget.
    fn check(&mut self, fresh: &[u8]) -> Result<(), Violation> {
        let offset = self.read;
        self.read += fresh.len() as u64;
        if let Some(meter) = self.h2.as_mut() {
            return if meter.feed(fresh, std::time::Instant::now()) {
                Ok(())
            } else {
                Err(Violation::H2ControlFlood)
            };
        }
        if self.framing.is_passthrough() {
            return Ok(());
        }
        self.framing.feed(fresh)?;
        if self.framing.is_h2() {
            let start = usize::try_from((H2_PREFACE_LEN as u64).saturating_sub(offset)).unwrap_or(0);
            let mut meter = H2FloodMeter::new(self.h2_frames_per_sec);
            let ok = meter.feed(&fresh[start.min(fresh.len())..], std::time::Instant::now());
            self.h2 = Some(meter);
            self.activity.mark_h2();
            if !ok {
                return Err(Violation::H2ControlFlood);
            }
        }
        Ok(())
    }
}

/// The raw bytes of the answer to a framing violation.
pub fn refusal_bytes(v: &Violation) -> Vec<u8> {
    let kind = if *v == Violation::HeadTooLarge {
        ProblemKind::HeadersTooLarge
    } else {
        ProblemKind::BadRequest
    };
    let id = crate::forwarded::new_request_id();
    let body = crate::respond::problem_json(kind, kind.status(), Some(&v.to_string()), &id);
    tracing::info!(request_id = %id, violation = %v, "malformed HTTP/1 framing refused; connection closed");
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\ncache-control: no-store\r\nx-content-type-options: nosniff\r\nx-request-id: {id}\r\nconnection: close\r\n\r\n{body}",
        kind.status().as_u16(),
        kind.status().canonical_reason().unwrap_or(""),
        body.len(),
    )
    .into_bytes()
}

impl<S: AsyncRead + SendNow + Unpin> AsyncRead for StrictIo<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.refused {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "connection refused for bad framing",
            )));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let fresh = &buf.filled()[before..];
                if fresh.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                if let Err(v) = this.check(fresh) {
                    this.refused = true;
                    if v == Violation::H2ControlFlood {
                        // No answer: a frame written from here could land in the
                        // middle of one of hyper's. The connection just closes.
                        tracing::info!(violation = %v, "HTTP/2 control-frame flood; connection closed");
                    } else {
                        // Best effort: the socket's send buffer is empty at
                        // this point in practice; a partial write just closes.
                        this.inner.send_now(&refusal_bytes(&v));
                    }
                    buf.set_filled(before);
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, v.to_string())));
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for StrictIo<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        Pin::new(&mut this.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
