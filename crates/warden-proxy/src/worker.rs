//! Worker identity. The binary runs one single-threaded tokio runtime per core
//! (like nginx's worker processes): the accept loop hands each connection to a
//! worker, and everything that connection does — its upstream connections
//! included — stays on that worker's thread. Measured on this machine, a
//! current-thread runtime per core serves about 2.4× the requests per second of
//! tokio's multi-threaded scheduler on the same core (docs/benchmarks.md).
//!
//! Upstream pools keep one HTTP client per worker, picked by [`slot`], so pooled
//! upstream connections are never shared across threads.

use std::cell::Cell;

thread_local! {
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Marks the current thread as worker `i` (call once, at the worker's start).
pub fn set_id(i: usize) {
    WORKER.with(|w| w.set(i + 1));
}

/// Client slot of this thread: `i + 1` on worker `i`, 0 on any other thread
/// (the control runtime's health checks use slot 0).
pub fn slot() -> usize {
    WORKER.with(Cell::get)
}

/// Worker threads, each running a current-thread tokio runtime until stopped.
#[derive(Debug)]
pub struct Workers {
    handles: Vec<tokio::runtime::Handle>,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Workers {
    /// Starts `n` worker threads (at least one).
    pub fn start(n: usize) -> std::io::Result<Self> {
        let (stop, rx) = tokio::sync::watch::channel(false);
        let mut handles = Vec::new();
        let mut threads = Vec::new();
        for i in 0..n.max(1) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            handles.push(rt.handle().clone());
            let mut rx = rx.clone();
            let thread = std::thread::Builder::new()
                .name(format!("warden-worker-{i}"))
                .spawn(move || {
                    set_id(i);
                    rt.block_on(async move {
                        let _ = rx.wait_for(|stopped| *stopped).await;
                    });
                })?;
            threads.push(thread);
        }
        Ok(Self {
            handles,
            stop: Some(stop),
            threads,
        })
    }

    /// Runtime handles, for [`crate::GatewayOptions::workers`].
    pub fn handles(&self) -> Vec<tokio::runtime::Handle> {
        self.handles.clone()
    }

    /// Stops every worker runtime (dropping whatever still runs on it) and joins the threads.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.shutdown();
    }
}
