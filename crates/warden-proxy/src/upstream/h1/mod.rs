//! Warden's own HTTP/1.1 client side, for HTTP/1.1 upstreams.
//!
//! hyper's connection-level client drives every connection from a task of its
//! own and hands requests, responses and body chunks across channels: several
//! task wake-ups per proxied request, the largest userland cost left in the
//! proxy's profile. Here the request's own task does the whole exchange: it
//! writes the head (and a small body in the same write), reads and parses the
//! response head, and the response body reads straight from the socket as the
//! client side pulls it. When the body ends cleanly the connection goes back to
//! the worker's pool; on any doubt about framing it is dropped instead.
//!
//! What it deliberately does not do: pipelining (one request per connection
//! at a time), request trailers (dropped), response trailers (read and
//! dropped), transfer codings other than `chunked` (refused), and reading the
//! response while the request body is still being written (an upstream that
//! answers early and closes is still heard: its response is read after the
//! write fails).

mod chunked;
mod head;

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use http::{HeaderMap, Method, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::ServicePool;
use crate::body::{BoxError, ProxyBody};

pub(crate) use head::{ResponseFraming, ResponseHead};

use chunked::{Chunked, Step};
use head::RequestFraming;

/// Bodies up to this size that are ready at once go out in the same write as
/// the head.
const COALESCE_MAX: usize = 16 * 1024;
/// Read size for heads and bodies.
const READ_CHUNK: usize = 8 * 1024;
/// Interim (1xx) responses skipped before the final one, at most.
const MAX_INTERIM: usize = 8;

/// A connection's byte stream: clear text or TLS.
pub(crate) enum Stream {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// One HTTP/1.1 connection to a target, idle or in use by one request.
pub(crate) struct Conn {
    io: Stream,
    /// Bytes read and not yet consumed.
    buf: BytesMut,
    /// Scratch space for request heads, kept across requests.
    wbuf: Vec<u8>,
    /// The first-byte deadline's timer, kept across requests (see
    /// [`Conn::exchange_by`]).
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// An exchange that did not get its response head by its deadline.
#[derive(Debug)]
pub(crate) struct PastDeadline;

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("buffered", &self.buf.len()).finish()
    }
}

/// What to send.
pub(crate) struct RequestHead<'a> {
    pub method: &'a Method,
    pub path_and_query: &'a str,
    pub headers: &'a HeaderMap,
}

/// Why an exchange failed.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The request may have reached the upstream (some of it was written).
    pub sent: bool,
    /// The body, when none of it was taken (so the request can go elsewhere).
    pub body: Option<ProxyBody>,
    /// The request went out and the upstream closed (or reset) the
    /// connection without a single byte of response.
    pub unanswered: bool,
    pub message: String,
}

impl Failure {
    fn sent(message: impl Into<String>) -> Self {
        Self {
            sent: true,
            body: None,
            unanswered: false,
            message: message.into(),
        }
    }

    fn unsent(message: impl Into<String>) -> Self {
        Self {
            sent: false,
            ..Self::sent(message)
        }
    }
}

impl Conn {
    pub(crate) fn new(io: Stream) -> Self {
        Self {
            io,
            buf: BytesMut::new(),
            wbuf: Vec::with_capacity(1024),
            timer: None,
        }
    }

    /// [`Self::exchange`], abandoned at `deadline` (the connection is then
    /// unusable: drop it). The connection keeps one timer for its life and
    /// moves it forward for each request: moving a pending tokio timer later
    /// is one atomic update, where a timer per request is put into and taken
    /// out of the runtime's timer wheel every time. The price: while the
    /// connection sits idle its timer stays in the wheel with the waker of the
    /// last task that polled it, so at the old deadline (`first_byte_ms`
    /// after the last request) the wheel re-files it, or, if no request came,
    /// wakes that task once for nothing (harmless: futures allow spurious
    /// wake-ups); at most one such timer per pooled connection.
    pub(crate) async fn exchange_by(
        &mut self,
        req: &RequestHead<'_>,
        body: ProxyBody,
        deadline: tokio::time::Instant,
    ) -> Result<Result<ResponseHead, Failure>, PastDeadline> {
        let mut timer = match self.timer.take() {
            Some(mut timer) => {
                timer.as_mut().reset(deadline);
                timer
            }
            None => Box::pin(tokio::time::sleep_until(deadline)),
        };
        let outcome = tokio::select! {
            biased;
            r = self.exchange(req, body) => Ok(r),
            () = timer.as_mut() => Err(PastDeadline),
        };
        self.timer = Some(timer);
        outcome
    }

    /// True when an idle connection can take a request: the upstream has not
    /// closed it and has sent nothing unasked. One non-blocking `MSG_PEEK` on
    /// the socket, so bytes or a close that arrived a moment ago are seen
    /// even before the worker's reactor has noticed them.
    pub(crate) fn is_idle_alive(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let tcp = match &mut self.io {
            Stream::Tcp(s) => &*s,
            Stream::Tls(s) => {
                // Plaintext rustls already decrypted, or a close_notify, also
                // makes the connection unusable.
                let clean = s
                    .get_mut()
                    .1
                    .process_new_packets()
                    .is_ok_and(|st| st.plaintext_bytes_to_read() == 0 && !st.peer_has_closed());
                if !clean {
                    return false;
                }
                s.get_ref().0
            }
        };
        let mut probe = [MaybeUninit::<u8>::uninit(); 1];
        // Anything but "would block" — EOF, stray bytes, an error — means no.
        matches!(
            socket2::SockRef::from(tcp).peek(&mut probe),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock
        )
    }

    /// Sends the request and reads the final response head. Interim 1xx
    /// responses other than 101 are skipped. On failure, the body comes back
    /// in [`Failure::body`] when none of it was taken.
    pub(crate) async fn exchange(&mut self, req: &RequestHead<'_>, body: ProxyBody) -> Result<ResponseHead, Failure> {
        let mut body = body;
        let mut wbuf = std::mem::take(&mut self.wbuf);
        wbuf.clear();
        let result = self.send_and_read(&mut wbuf, req, &mut body).await;
        if wbuf.capacity() > 4 * COALESCE_MAX {
            wbuf = Vec::with_capacity(1024);
        }
        self.wbuf = wbuf;
        result.map_err(|(mut failure, untouched)| {
            if untouched && !failure.sent {
                failure.body = Some(body);
            }
            failure
        })
    }

    /// [`Self::exchange`]; the flag on failure says the body is untouched.
    async fn send_and_read(
        &mut self,
        wbuf: &mut Vec<u8>,
        req: &RequestHead<'_>,
        body: &mut ProxyBody,
    ) -> Result<ResponseHead, (Failure, bool)> {
        // Heads the client side accepted always encode; a failure here is
        // final (never retried elsewhere).
        let framing = head::encode_request(wbuf, req.method, req.path_and_query, req.headers, body.is_end_stream())
            .map_err(|e| (Failure::sent(e), false))?;
        // A small body that is already here goes out in the same write.
        let mut taken = false;
        let mut written: u64 = 0;
        let mut body_done = framing == RequestFraming::None;
        if !body_done && body.size_hint().exact().is_some_and(|n| n as usize <= COALESCE_MAX) {
            while wbuf.len() < COALESCE_MAX {
                let Some(next) = body.frame().now_or_never() else { break };
                taken = true;
                let frame = match next {
                    Some(Ok(frame)) => frame,
                    Some(Err(e)) => return Err((Failure::unsent(format!("request body failed: {e}")), false)),
                    None => {
                        end_body(wbuf, framing, written).map_err(|f| (f, false))?;
                        body_done = true;
                        break;
                    }
                };
                if let Ok(data) = frame.into_data() {
                    written += data.len() as u64;
                    check_length(framing, written).map_err(|f| (f, false))?;
                    frame_data(wbuf, framing, &data);
                }
            }
        }
        if let Err(e) = self.io.write_all(wbuf).await {
            // The request never went out whole: the upstream cannot act on it.
            return Err((Failure::unsent(format!("writing the request failed: {e}")), !taken));
        }
        if body_done {
            self.io
                .flush()
                .await
                .map_err(|e| (Failure::sent(format!("writing the request failed: {e}")), false))?;
            return read_head(&mut self.io, &mut self.buf, req.method)
                .await
                .map_err(|f| (f, false));
        }
        self.stream_body(req.method, body, framing, written)
            .await
            .map_err(|f| (f, false))
    }

    /// Writes the rest of the body while watching for the response. A final
    /// response that arrives first (an early 413 or 401) ends the upload:
    /// the rest of the body is not sent and the connection is not reused.
    async fn stream_body(
        &mut self,
        method: &Method,
        body: &mut ProxyBody,
        framing: RequestFraming,
        written: u64,
    ) -> Result<ResponseHead, Failure> {
        let (mut rd, mut wr) = tokio::io::split(&mut self.io);
        let write = async {
            write_body(&mut wr, body, framing, written).await?;
            wr.flush().await.map_err(write_failed)
        };
        let read = read_head(&mut rd, &mut self.buf, method);
        tokio::pin!(write, read);
        let write_error = tokio::select! {
            biased;
            outcome = &mut read => {
                let mut head = outcome?;
                head.keep_alive = false;
                return Ok(head);
            }
            outcome = &mut write => match outcome {
                Ok(()) => None,
                // The client's body failed (too large, too slow, cut): the
                // upstream has half a request and is not asked for more.
                Err(BodyWriteError::Source(failure)) => return Err(failure),
                // The upstream stopped taking the body: it may have answered.
                Err(BodyWriteError::Write(failure)) => Some(failure),
            },
        };
        match (read.await, write_error) {
            (Ok(head), None) => Ok(head),
            (Ok(mut head), Some(_)) => {
                head.keep_alive = false;
                Ok(head)
            }
            (Err(_), Some(failure)) | (Err(failure), None) => Err(failure),
        }
    }

    /// The connection after a 101: its stream and whatever the upstream sent
    /// after the response head.
    pub(crate) fn into_upgraded(self) -> (Stream, Bytes) {
        (self.io, self.buf.freeze())
    }
}

/// Why streaming the request body stopped.
enum BodyWriteError {
    /// The client's body failed or broke its declared length.
    Source(Failure),
    /// The upstream connection would not take it.
    Write(Failure),
}

fn write_failed(e: io::Error) -> BodyWriteError {
    BodyWriteError::Write(Failure::sent(format!("writing the request body failed: {e}")))
}

/// Streams the rest of the request body to `w` in its framing.
async fn write_body<W: AsyncWrite + Unpin>(
    w: &mut W,
    body: &mut ProxyBody,
    framing: RequestFraming,
    mut written: u64,
) -> Result<(), BodyWriteError> {
    let mut small = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| BodyWriteError::Source(Failure::sent(format!("request body failed: {e}"))))?;
        let Ok(data) = frame.into_data() else { continue };
        if data.is_empty() {
            continue;
        }
        written += data.len() as u64;
        check_length(framing, written).map_err(BodyWriteError::Source)?;
        if framing == RequestFraming::Chunked && data.len() <= 4096 {
            small.clear();
            frame_data(&mut small, framing, &data);
            w.write_all(&small).await.map_err(write_failed)?;
        } else if framing == RequestFraming::Chunked {
            small.clear();
            chunk_size_line(&mut small, data.len());
            w.write_all(&small).await.map_err(write_failed)?;
            w.write_all(&data).await.map_err(write_failed)?;
            w.write_all(b"\r\n").await.map_err(write_failed)?;
        } else {
            w.write_all(&data).await.map_err(write_failed)?;
        }
    }
    small.clear();
    end_body(&mut small, framing, written).map_err(BodyWriteError::Source)?;
    w.write_all(&small).await.map_err(write_failed)
}

/// Reads from `r` into `buf` until one final response head is parsed.
async fn read_head<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut BytesMut,
    method: &Method,
) -> Result<ResponseHead, Failure> {
    let mut interim = 0;
    loop {
        let parsed = if buf.is_empty() {
            Ok(None)
        } else {
            head::parse_response(buf, method)
        };
        match parsed {
            Ok(Some(h)) if h.status.is_informational() && h.status != StatusCode::SWITCHING_PROTOCOLS => {
                interim += 1;
                if interim > MAX_INTERIM {
                    return Err(Failure::sent("too many interim responses"));
                }
                continue;
            }
            Ok(Some(h)) => return Ok(h),
            Ok(None) => {}
            Err(e) => return Err(Failure::sent(e.to_string())),
        }
        buf.reserve(READ_CHUNK);
        let nothing_yet = buf.is_empty() && interim == 0;
        match r.read_buf(buf).await {
            Ok(0) if nothing_yet => return Err(unanswered("upstream closed the connection without answering")),
            Ok(0) => return Err(Failure::sent("upstream closed the connection inside a response head")),
            Ok(_) => {}
            Err(e) if nothing_yet && e.kind() == io::ErrorKind::ConnectionReset => {
                return Err(unanswered("upstream reset the connection without answering"));
            }
            Err(e) => return Err(Failure::sent(format!("reading the response failed: {e}"))),
        }
    }
}

fn unanswered(message: &str) -> Failure {
    Failure {
        unanswered: true,
        ..Failure::sent(message)
    }
}

/// Appends one data frame in the body's framing.
fn frame_data(out: &mut Vec<u8>, framing: RequestFraming, data: &[u8]) {
    if framing == RequestFraming::Chunked {
        if data.is_empty() {
            return;
        }
        chunk_size_line(out, data.len());
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    } else {
        out.extend_from_slice(data);
    }
}

/// Appends `{len:x}\r\n`.
fn chunk_size_line(out: &mut Vec<u8>, len: usize) {
    use std::io::Write as _;
    let _ = write!(out, "{len:x}\r\n");
}

/// A body may not run past its declared length.
fn check_length(framing: RequestFraming, written: u64) -> Result<(), Failure> {
    match framing {
        RequestFraming::Length(n) if written > n => Err(Failure::sent("request body longer than its Content-Length")),
        _ => Ok(()),
    }
}

/// Appends the body's end (the last chunk) and checks a declared length.
fn end_body(out: &mut Vec<u8>, framing: RequestFraming, written: u64) -> Result<(), Failure> {
    match framing {
        RequestFraming::Chunked => out.extend_from_slice(b"0\r\n\r\n"),
        RequestFraming::Length(n) if n != written => {
            return Err(Failure::sent("request body shorter or longer than its Content-Length"));
        }
        _ => {}
    }
    Ok(())
}

/// Where a connection goes when its response body ended cleanly: the
/// calling worker's pool for the target it belongs to.
pub(crate) struct Home {
    pub pool: Arc<ServicePool>,
    pub target: usize,
}

/// A response body read straight from the upstream connection.
pub(crate) struct UpstreamBody {
    conn: Option<Conn>,
    state: BodyState,
    keep_alive: bool,
    home: Option<Home>,
}

#[derive(Debug, Clone, Copy)]
enum BodyState {
    Length(u64),
    Chunked(Chunked),
    UntilClose,
    Done,
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamBody").field("state", &self.state).finish()
    }
}

impl UpstreamBody {
    /// The body of the response `head` read from `conn`; `home` takes the
    /// connection back once the body ended cleanly.
    pub(crate) fn new(conn: Conn, head: &ResponseHead, home: Home) -> Self {
        let state = match head.framing {
            ResponseFraming::Empty | ResponseFraming::Length(0) => BodyState::Done,
            ResponseFraming::Length(n) => BodyState::Length(n),
            ResponseFraming::Chunked => BodyState::Chunked(Chunked::Size),
            ResponseFraming::UntilClose => BodyState::UntilClose,
        };
        let mut body = Self {
            conn: Some(conn),
            state,
            keep_alive: head.keep_alive,
            home: Some(home),
        };
        if matches!(body.state, BodyState::Done) {
            body.finish();
        }
        body
    }

    /// The body ended: the connection goes home if nothing about it is doubtful.
    fn finish(&mut self) {
        self.state = BodyState::Done;
        let (Some(conn), Some(home)) = (self.conn.take(), self.home.take()) else {
            return;
        };
        // Bytes past the end of the response were never asked for.
        if self.keep_alive && conn.buf.is_empty() {
            home.pool.h1_pool(home.target).put(conn);
        }
    }

    fn fail(&mut self, message: String) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.conn = None;
        self.state = BodyState::Done;
        Poll::Ready(Some(Err(message.into())))
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match &mut this.state {
                BodyState::Done => return Poll::Ready(None),
                BodyState::Length(left) if !conn.buf.is_empty() => {
                    let take = usize::try_from(*left).map_or(conn.buf.len(), |l| l.min(conn.buf.len()));
                    let data = conn.buf.split_to(take).freeze();
                    *left -= take as u64;
                    if *left == 0 {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                BodyState::Chunked(decoder) => match decoder.step(&mut conn.buf) {
                    Ok(Step::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                    Ok(Step::Done) => {
                        this.finish();
                        return Poll::Ready(None);
                    }
                    Ok(Step::More) => {}
                    Err(e) => return this.fail(format!("upstream body: {e}")),
                },
                BodyState::UntilClose if !conn.buf.is_empty() => {
                    let data = conn.buf.split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                BodyState::Length(_) | BodyState::UntilClose => {}
            }
            conn.buf.reserve(READ_CHUNK);
            match tokio_util::io::poll_read_buf(Pin::new(&mut conn.io), cx, &mut conn.buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return this.fail(format!("reading the upstream body failed: {e}")),
                Poll::Ready(Ok(0)) => {
                    if matches!(this.state, BodyState::UntilClose) {
                        this.conn = None;
                        this.state = BodyState::Done;
                        return Poll::Ready(None);
                    }
                    return this.fail("upstream closed the connection inside a response body".to_owned());
                }
                Poll::Ready(Ok(_)) => {}
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, BodyState::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.state {
            BodyState::Done => SizeHint::with_exact(0),
            BodyState::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}

/// Turns a response head into `http` response parts.
pub(crate) fn into_parts(head: ResponseHead) -> http::response::Parts {
    let (mut parts, ()) = http::Response::new(()).into_parts();
    parts.status = head.status;
    parts.version = Version::HTTP_11;
    parts.headers = head.headers;
    parts
}

/// An upgraded upstream connection: first the bytes already read, then the stream.
pub(crate) struct Upgraded {
    pre: Bytes,
    io: Stream,
}

impl std::fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upgraded").field("buffered", &self.pre.len()).finish()
    }
}

impl Upgraded {
    pub(crate) fn new(conn: Conn) -> Self {
        let (io, pre) = conn.into_upgraded();
        Self { pre, io }
    }
}

impl AsyncRead for Upgraded {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.pre.is_empty() {
            let n = this.pre.len().min(buf.remaining());
            buf.put_slice(&this.pre.split_to(n));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Upgraded {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
