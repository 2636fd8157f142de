//! [`ConnActivity`]: request events and in-flight requests of one client
//! connection, for the idle watchdog. Only requests count as activity — not
//! bytes — so HTTP/2 keep-alive pings (which hyper sends while idle) or a
//! client trickling frames without requests cannot keep a connection open.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// Activity of one client connection.
#[derive(Debug, Default)]
pub struct ConnActivity {
    events: AtomicU64,
    inflight: AtomicUsize,
    /// The client opened HTTP/2 (its preface was read).
    h2: AtomicBool,
}

impl ConnActivity {
    /// A connection with no activity yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an activity event.
    pub fn touch(&self) {
        self.events.fetch_add(1, Ordering::Relaxed);
    }

    /// A request started on this connection.
    pub fn start_request(&self) {
        self.inflight.fetch_add(1, Ordering::Relaxed);
        self.touch();
    }

    /// A request's response finished (or was dropped).
    pub fn end_request(&self) {
        self.inflight.fetch_sub(1, Ordering::Relaxed);
        self.touch();
    }

    /// The client spoke the HTTP/2 preface: the connection is not HTTP/1.
    pub fn mark_h2(&self) {
        self.h2.store(true, Ordering::Relaxed);
    }

    /// True once the client spoke the HTTP/2 preface.
    pub fn is_h2(&self) -> bool {
        self.h2.load(Ordering::Relaxed)
    }

    /// Resolves once the connection has waited for its next request for at
    /// least `period`: no request in flight, none started or ended. Checked
    /// every quarter period, so it resolves between 1× and 1.25× `period`
    /// after the last request ended (or the connection opened). For HTTP/1
    /// this is the header read timeout: a head still incomplete then — a
    /// slowloris client's, or none at all on an idle keep-alive connection —
    /// costs the connection. One timer per connection, none per request. On
    /// a connection that turns out to be HTTP/2 it never resolves (and stops
    /// ticking), so nothing else watching the connection is disturbed.
    pub async fn waiting_for(&self, period: Duration) {
        let tick = (period / 4).max(Duration::from_millis(1));
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seen = self.events.load(Ordering::Relaxed);
        let mut quiet = 0u32;
        loop {
            ticks.tick().await;
            if self.is_h2() {
                return std::future::pending().await;
            }
            let now = self.events.load(Ordering::Relaxed);
            if now == seen && self.inflight.load(Ordering::Relaxed) == 0 {
                quiet += 1;
                if quiet >= 4 {
                    return;
                }
            } else {
                quiet = 0;
                seen = now;
            }
        }
    }

    /// Waits one `idle` period; true when no request started or ended in it and
    /// no request in flight at its end. An idle connection is therefore closed
    /// between one and two `idle` periods after its last byte.
    pub async fn idle_period(&self, idle: Duration) -> bool {
        let before = self.events.load(Ordering::Relaxed);
        tokio::time::sleep(idle).await;
        self.inflight.load(Ordering::Relaxed) == 0 && self.events.load(Ordering::Relaxed) == before
    }
}
