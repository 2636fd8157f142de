//! [`ConnActivity`]: request events and in-flight requests of one client
//! connection, for the idle watchdog. Only requests count as activity — not
//! bytes — so HTTP/2 keep-alive pings (which hyper sends while idle) or a
//! client trickling frames without requests cannot keep a connection open.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// Activity of one client connection.
#[derive(Debug, Default)]
pub struct ConnActivity {
    events: AtomicU64,
    inflight: AtomicUsize,
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

    /// Waits one `idle` period; true when no request started or ended in it and
    /// no request in flight at its end. An idle connection is therefore closed
    /// between one and two `idle` periods after its last byte.
    pub async fn idle_period(&self, idle: Duration) -> bool {
        let before = self.events.load(Ordering::Relaxed);
        tokio::time::sleep(idle).await;
        self.inflight.load(Ordering::Relaxed) == 0 && self.events.load(Ordering::Relaxed) == before
    }
}
