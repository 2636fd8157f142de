//! A client connection's watchdog beside its hyper connection future, polled
//! only when one of the watchdog's own timers or signals woke the task.
//!
//! `tokio::select!` polls every branch on every wake-up: on a busy
//! connection, woken twice per request by its sockets, that re-polled the
//! header-read and idle timers and the shutdown signal each time (about 1,000
//! instructions per proxied request). [`Gate`] gives the watchdog a waker of
//! its own, so its futures are polled when they asked to be.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use tokio::sync::watch;

use super::activity::ConnActivity;

/// What the watchdog saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// No complete request head within the header read timeout.
    HeadTimeout,
    /// An idle period passed without requests.
    Idle,
    /// The gateway is shutting down.
    Stop,
}

/// Which of the two futures finished first.
#[derive(Debug)]
pub enum Either<A> {
    /// The connection ended.
    Conn(A),
    /// The watchdog has something to say.
    Watch(Event),
}

/// Set by the watchdog's waker; wakes the connection's task.
#[derive(Debug)]
struct Flag {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// Polls a connection on every wake-up and its watchdog only when woken
/// for it (and after [`Gate::rearm`], for a new watchdog future).
#[derive(Debug)]
pub struct Gate {
    flag: Arc<Flag>,
    waker: Waker,
}

impl Gate {
    /// A gate whose first poll polls the watchdog (to arm its timers).
    pub fn new() -> Self {
        let flag = Arc::new(Flag {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        let waker = Waker::from(Arc::clone(&flag));
        Self { flag, waker }
    }

    /// A new watchdog future is in place: poll it next time.
    pub fn rearm(&self) {
        self.flag.woken.store(true, Ordering::Release);
    }

    /// One poll of the pair: the watchdog first when it was woken, then the
    /// connection.
    pub fn poll<C, W>(&self, cx: &mut Context<'_>, conn: Pin<&mut C>, watch: Pin<&mut W>) -> Poll<Either<C::Output>>
    where
        C: Future,
        W: Future<Output = Event>,
    {
        self.flag.task.register(cx.waker());
        if self.flag.woken.swap(false, Ordering::AcqRel) {
            let mut own = Context::from_waker(&self.waker);
            if let Poll::Ready(event) = watch.poll(&mut own) {
                return Poll::Ready(Either::Watch(event));
            }
        }
        conn.poll(cx).map(Either::Conn)
    }
}

/// The watchdog: the header read timeout (`head`; HTTP/1 only, see
/// [`ConnActivity::waiting_for`]), the idle timeout and shutdown (`stop`;
/// `None` once the connection is closing).
pub async fn run(
    activity: &ConnActivity,
    head: Option<Duration>,
    idle: Duration,
    stop: Option<&mut watch::Receiver<bool>>,
) -> Event {
    let head_wait = async {
        match head {
            Some(period) => activity.waiting_for(period).await,
            None => std::future::pending().await,
        }
    };
    let idle_and_stop = async {
        let Some(stop) = stop else {
            return std::future::pending().await;
        };
        loop {
            tokio::select! {
                idle_now = activity.idle_period(idle) => if idle_now { return Event::Idle },
                _ = stop.changed() => return Event::Stop,
            }
        }
    };
    tokio::select! {
        () = head_wait => Event::HeadTimeout,
        event = idle_and_stop => event,
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::sync::atomic::AtomicUsize;
    use std::task::Waker;

    use super::*;

    /// The connection task's waker: counts its wake-ups.
    #[derive(Default)]
    struct Task(AtomicUsize);

    impl Wake for Task {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A future that counts its polls, keeps the waker it was given, and
    /// finishes with `Event::Idle` once `done` is set.
    struct Counted<'a> {
        polls: &'a Cell<u32>,
        waker: &'a RefCell<Option<Waker>>,
        done: &'a Cell<bool>,
    }

    impl Future for Counted<'_> {
        type Output = Event;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Event> {
            self.polls.set(self.polls.get() + 1);
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            if self.done.get() {
                Poll::Ready(Event::Idle)
            } else {
                Poll::Pending
            }
        }
    }

    #[test]
    fn the_watchdog_is_polled_only_when_its_own_waker_fired() {
        let (conn_polls, dog_polls) = (Cell::new(0), Cell::new(0));
        let (conn_waker, dog_waker) = (RefCell::new(None), RefCell::new(None));
        let (conn_done, dog_done) = (Cell::new(false), Cell::new(false));
        let mut conn = std::pin::pin!(Counted {
            polls: &conn_polls,
            waker: &conn_waker,
            done: &conn_done,
        });
        let mut dog = std::pin::pin!(Counted {
            polls: &dog_polls,
            waker: &dog_waker,
            done: &dog_done,
        });
        let gate = Gate::new();
        let task = Arc::new(Task::default());
        let task_waker = Waker::from(Arc::clone(&task));
        let mut cx = Context::from_waker(&task_waker);
        // The first poll arms both.
        assert!(gate.poll(&mut cx, conn.as_mut(), dog.as_mut()).is_pending());
        assert_eq!((conn_polls.get(), dog_polls.get()), (1, 1));
        // Wake-ups for the connection (its sockets) leave the watchdog alone.
        for _ in 0..5 {
            conn_waker.borrow().as_ref().unwrap().wake_by_ref();
            assert!(gate.poll(&mut cx, conn.as_mut(), dog.as_mut()).is_pending());
        }
        assert_eq!((conn_polls.get(), dog_polls.get()), (6, 1));
        // The watchdog's own wake-up wakes the task, gets the watchdog
        // polled, and its answer through.
        dog_done.set(true);
        let woken = task.0.load(Ordering::Relaxed);
        dog_waker.borrow().as_ref().unwrap().wake_by_ref();
        assert_eq!(task.0.load(Ordering::Relaxed), woken + 1, "the task was not woken");
        match gate.poll(&mut cx, conn.as_mut(), dog.as_mut()) {
            Poll::Ready(Either::Watch(Event::Idle)) => {}
            other => panic!("expected the watchdog's event, got {other:?}"),
        }
        assert_eq!(dog_polls.get(), 2);
        // The connection finishing is reported as such.
        conn_done.set(true);
        gate.rearm();
        dog_done.set(false);
        assert!(matches!(
            gate.poll(&mut cx, conn.as_mut(), dog.as_mut()),
            Poll::Ready(Either::Conn(Event::Idle))
        ));
        assert_eq!(dog_polls.get(), 3, "rearm polls a new watchdog once");
    }
}
