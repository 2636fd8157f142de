//! Body types and wrappers: the boxed body both sides use, a request body that
//! enforces the byte cap and read deadline while streaming, and a response body
//! that counts bytes and runs a completion hook when it ends or is dropped.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Empty, Full};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

/// A deadline whose timer is only registered the first time the body has to
/// wait: small bodies that arrive with their headers never touch the timer
/// wheel.
#[derive(Debug)]
pub struct LazyDeadline {
    at: Instant,
    timer: Option<Pin<Box<Sleep>>>,
}

impl LazyDeadline {
    /// A deadline at `at`.
    pub fn new(at: Instant) -> Self {
        Self { at, timer: None }
    }

    /// When it expires.
    pub fn at(&self) -> Instant {
        self.at
    }

    /// Moves the deadline to `at` (re-arming the timer if it was registered).
    pub fn set(&mut self, at: Instant) {
        if at != self.at {
            self.at = at;
            if let Some(timer) = self.timer.as_mut() {
                timer.as_mut().reset(at);
            }
        }
    }

    /// Polls the deadline (registering its timer on first use).
    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        if Instant::now() >= self.at {
            return true;
        }
        let at = self.at;
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        timer.as_mut().poll(cx).is_ready()
    }
}

/// Any error a body may yield.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type on both sides of the proxy.
pub type ProxyBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// A body holding `bytes`.
pub fn full(bytes: Bytes) -> ProxyBody {
    Full::new(bytes).map_err(|never| match never {}).boxed_unsync()
}

/// An empty body.
pub fn empty() -> ProxyBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// Why a request body stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFault {
    /// More bytes than the cap.
    TooLarge,
    /// Not received before the deadline.
    TimedOut,
    /// The client's stream broke.
    Broken,
}

/// Shared record of a request body's progress, read after the exchange.
#[derive(Debug, Default)]
pub struct BodyStats {
    bytes: AtomicU64,
    fault: AtomicU8,
    ended: std::sync::atomic::AtomicBool,
}

impl BodyStats {
    /// Bytes received so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// True once the whole body was received.
    pub fn ended(&self) -> bool {
        self.ended.load(Ordering::Relaxed)
    }

    /// The fault that stopped the body, if any.
    pub fn fault(&self) -> Option<BodyFault> {
        match self.fault.load(Ordering::Relaxed) {
            1 => Some(BodyFault::TooLarge),
            2 => Some(BodyFault::TimedOut),
            3 => Some(BodyFault::Broken),
            _ => None,
        }
    }

    fn set_fault(&self, f: BodyFault) {
        let v = match f {
            BodyFault::TooLarge => 1,
            BodyFault::TimedOut => 2,
            BodyFault::Broken => 3,
        };
        self.fault.store(v, Ordering::Relaxed);
    }
}

/// The error a capped body yields.
#[derive(Debug, thiserror::Error)]
#[error("request body stopped: {0:?}")]
pub struct BodyStopped(pub BodyFault);

/// How long a request body may take. Without a rate (`min_rate` 0): `base`
/// from the head's arrival for the whole body. With one: a time budget that
/// starts at `base` and grows by one second for every `min_rate` bytes
/// received, but never reaches further than `base` ahead of now — so a
/// client that keeps below the rate runs out of time (slow POST), a large
/// upload at a healthy rate never does, and credit earned by a fast burst
/// cannot be banked for a long stall afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyPace {
    /// Time allowed before any extension, and the longest stall.
    pub base: Duration,
    /// Bytes per second that earn one more second; 0 turns extension off.
    pub min_rate: u64,
}

impl BodyPace {
    /// The deadline after `len` more bytes arrived at `now`, given the
    /// deadline so far. Time that passed while the body was not being read
    /// (the upstream applying back-pressure) is not the client's: an overdue
    /// deadline restarts from now.
    fn after(self, deadline: Instant, len: usize, now: Instant) -> Instant {
        if self.min_rate == 0 {
            return deadline;
        }
        let nanos = (len as u128) * 1_000_000_000 / u128::from(self.min_rate);
        let earned = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        let extended = deadline.max(now).checked_add(earned).unwrap_or(now + self.base);
        extended.min(now + self.base)
    }
}

pin_project! {
    /// Request body that enforces a byte cap and a pace while it streams.
    pub struct CappedBody<B> {
        #[pin]
        inner: B,
        max: u64,
        seen: u64,
        pace: BodyPace,
        deadline: LazyDeadline,
        stats: Arc<BodyStats>,
    }
}

impl<B> CappedBody<B> {
    /// Wraps `inner`, allowing `max` bytes at the given pace.
    pub fn new(inner: B, max: u64, pace: BodyPace, stats: Arc<BodyStats>) -> Self {
        Self {
            inner,
            max,
            seen: 0,
            pace,
            deadline: LazyDeadline::new(Instant::now() + pace.base),
            stats,
        }
    }
}

impl<B> Body for CappedBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    *this.seen += data.len() as u64;
                    this.stats.bytes.store(*this.seen, Ordering::Relaxed);
                    if this.pace.min_rate > 0 {
                        let at = this.pace.after(this.deadline.at(), data.len(), Instant::now());
                        this.deadline.set(at);
                    }
                    if *this.seen > *this.max {
                        this.stats.set_fault(BodyFault::TooLarge);
                        return Poll::Ready(Some(Err(Box::new(BodyStopped(BodyFault::TooLarge)))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.stats.set_fault(BodyFault::Broken);
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                this.stats.ended.store(true, Ordering::Relaxed);
                Poll::Ready(None)
            }
            Poll::Pending => {
                if this.deadline.poll_expired(cx) {
                    this.stats.set_fault(BodyFault::TimedOut);
                    return Poll::Ready(Some(Err(Box::new(BodyStopped(BodyFault::TimedOut)))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project! {
    /// Response body that counts bytes, enforces a deadline, and calls `on_done`
    /// exactly once: at the end of the stream, on error, or when dropped early.
    pub struct TrackedBody<B: Body, F: FnOnce(u64, bool)> {
        #[pin]
        inner: B,
        deadline: Option<LazyDeadline>,
        sent: u64,
        on_done: Option<F>,
    }

    impl<B: Body, F: FnOnce(u64, bool)> PinnedDrop for TrackedBody<B, F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(done) = this.on_done.take() {
                done(*this.sent, this.inner.is_end_stream());
            }
        }
    }
}

impl<B: Body, F: FnOnce(u64, bool)> TrackedBody<B, F> {
    /// Wraps `inner`; the stream fails if it is not done by `deadline`.
    pub fn new(inner: B, deadline: Option<Instant>, on_done: F) -> Self {
        Self {
            inner,
            deadline: deadline.map(LazyDeadline::new),
            sent: 0,
            on_done: Some(on_done),
        }
    }
}

impl<B, F> Body for TrackedBody<B, F>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
    F: FnOnce(u64, bool),
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    *this.sent += data.len() as u64;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                if let Some(done) = this.on_done.take() {
                    done(*this.sent, false);
                }
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                if let Some(done) = this.on_done.take() {
                    done(*this.sent, true);
                }
                Poll::Ready(None)
            }
            Poll::Pending => {
                if let Some(deadline) = this.deadline.as_mut()
                    && deadline.poll_expired(cx)
                {
                    if let Some(done) = this.on_done.take() {
                        done(*this.sent, false);
                    }
                    return Poll::Ready(Some(Err("response exceeded the total timeout".into())));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body that never yields.
    struct Stalled;

    fn pace(base_ms: u64, min_rate: u64) -> BodyPace {
        BodyPace {
            base: Duration::from_millis(base_ms),
            min_rate,
        }
    }

    /// A body yielding `chunk` bytes every `every`, `left` times.
    struct Trickle {
        chunk: usize,
        every: Duration,
        left: usize,
        next: Pin<Box<Sleep>>,
    }

    /// `n` bytes at once, then a stall.
    struct Burst(Option<usize>);

    impl Burst {
        fn new(n: usize) -> Self {
            Self(Some(n))
        }
    }

    impl Body for Burst {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            match self.0.take() {
                Some(n) => Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'b'; n]))))),
                None => Poll::Pending,
            }
        }
    }

    fn trickle(chunk: usize, every: Duration, left: usize) -> Trickle {
        let next = Box::pin(tokio::time::sleep(every));
        Trickle {
            chunk,
            every,
            left,
            next,
        }
    }

    impl Body for Trickle {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            if self.left == 0 {
                return Poll::Ready(None);
            }
            if self.next.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let at = Instant::now() + self.every;
            self.next.as_mut().reset(at);
            self.left -= 1;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'x'; self.chunk])))))
        }
    }

    #[tokio::test]
    async fn a_body_below_the_minimum_rate_runs_out_of_time_and_one_above_it_does_not() {
        let tick = Duration::from_millis(100);
        // 10 bytes a tick against 1,000 B/s: earns 10 ms a tick, so it is cut
        // soon after the 300 ms base, long before its 1,000 bytes are in.
        let stats = Arc::new(BodyStats::default());
        let slow = CappedBody::new(trickle(10, tick, 100), 10_000, pace(300, 1000), Arc::clone(&stats));
        assert!(slow.collect().await.is_err());
        assert_eq!(stats.fault(), Some(BodyFault::TimedOut));
        assert!(stats.bytes() < 200, "cut after {} bytes", stats.bytes());
        // 200 bytes a tick for 10 ticks: three times past the base, never late.
        let stats = Arc::new(BodyStats::default());
        let steady = CappedBody::new(trickle(200, tick, 10), 10_000, pace(300, 1000), Arc::clone(&stats));
        assert_eq!(steady.collect().await.unwrap().to_bytes().len(), 2000);
        assert_eq!(stats.fault(), None);
        // A fast burst earns no more than the base ahead: 2,000 bytes at once
        // (2 s of credit) and then silence is cut after the 300 ms base.
        let stats = Arc::new(BodyStats::default());
        let banked = CappedBody::new(Burst::new(2000), 10_000, pace(300, 1000), Arc::clone(&stats));
        assert!(banked.collect().await.is_err());
        assert_eq!(stats.fault(), Some(BodyFault::TimedOut));
        assert_eq!(stats.bytes(), 2000);
        // Without a rate the base is the whole allowance.
        let stats = Arc::new(BodyStats::default());
        let capped = CappedBody::new(trickle(200, tick, 10), 10_000, pace(350, 0), Arc::clone(&stats));
        assert!(capped.collect().await.is_err());
        assert!(stats.bytes() < 2000);
        assert_eq!(stats.fault(), Some(BodyFault::TimedOut));
    }

    impl Body for Stalled {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn a_stalled_body_times_out_and_the_fault_is_recorded() {
        let stats = Arc::new(BodyStats::default());
        let body = CappedBody::new(Stalled, 100, pace(50, 0), Arc::clone(&stats));
        let Err(err) = body.collect().await else {
            panic!("a stalled body must time out")
        };
        assert!(err.to_string().contains("TimedOut"), "{err}");
        assert_eq!(stats.fault(), Some(BodyFault::TimedOut));
    }

    #[tokio::test]
    async fn a_body_over_the_cap_is_cut_off_and_a_small_one_passes_without_a_timer() {
        let stats = Arc::new(BodyStats::default());
        let big = CappedBody::new(
            Full::new(Bytes::from(vec![0u8; 101])),
            100,
            pace(5000, 0),
            Arc::clone(&stats),
        );
        assert!(big.collect().await.is_err());
        assert_eq!(stats.fault(), Some(BodyFault::TooLarge));
        let stats = Arc::new(BodyStats::default());
        let small = CappedBody::new(
            Full::new(Bytes::from_static(b"ok")),
            100,
            pace(5000, 0),
            Arc::clone(&stats),
        );
        assert_eq!(small.collect().await.unwrap().to_bytes(), Bytes::from_static(b"ok"));
        assert!(stats.ended());
        assert_eq!(stats.fault(), None);
    }
}
