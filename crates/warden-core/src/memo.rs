//! [`ConnMemo`]: what policies derived from a connection's client, kept
//! for the connection's next requests.

use std::any::Any;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Values a connection holds at most; a new owner takes the oldest slot.
const SLOTS: usize = 4;

/// Values policies derive from who the client is (its address, the route),
/// kept for the connection's next requests: a keep-alive client's
/// rate-limit subjects are built and hashed once, not once per request.
///
/// A value is filed under its owner (an id from [`ConnMemo::owner_id`], one
/// per compiled policy part and never reused, so a value made by a policy
/// that a reload replaced is never read by its successor) and under the
/// client address it was made for: a request from another address (a
/// trusted proxy forwarding many clients on one connection) misses and
/// replaces it. The owner checks anything else its value depends on.
/// At most four values per connection.
#[derive(Default)]
pub struct ConnMemo {
    slots: Mutex<Slots>,
}

#[derive(Default)]
struct Slots {
    slots: [Option<Slot>; SLOTS],
    /// The slot a new owner takes next.
    next: usize,
}

struct Slot {
    owner: u64,
    client: IpAddr,
    value: Arc<dyn Any + Send + Sync>,
}

impl ConnMemo {
    /// A new owner id: unique in the process.
    pub fn owner_id() -> u64 {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }

    /// `owner`'s value for `client`, when it has one of type `T`.
    pub fn get<T: Any + Send + Sync>(&self, owner: u64, client: IpAddr) -> Option<Arc<T>> {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = slots
            .slots
            .iter()
            .flatten()
            .find(|s| s.owner == owner && s.client == client)?;
        Arc::clone(&slot.value).downcast().ok()
    }

    /// Files `value` as `owner`'s for `client`, in place of `owner`'s
    /// earlier value (whatever its client), else of the oldest value.
    pub fn put<T: Any + Send + Sync>(&self, owner: u64, client: IpAddr, value: Arc<T>) {
        let mut guard = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let Slots { slots, next } = &mut *guard;
        let at = match slots.iter().position(|s| s.as_ref().is_some_and(|s| s.owner == owner)) {
            Some(at) => at,
            None => {
                let at = *next;
                *next = (at + 1) % SLOTS;
                at
            }
        };
        // The value it replaces is dropped outside the lock.
        let _old = slots[at].replace(Slot { owner, client, value });
        drop(guard);
    }

    /// Values held now.
    pub fn len(&self) -> usize {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.slots.iter().flatten().count()
    }

    /// True when it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for ConnMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnMemo").field("values", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_value_is_found_by_its_owner_and_client_only() {
        let m = ConnMemo::default();
        let (a, b) = (ConnMemo::owner_id(), ConnMemo::owner_id());
        assert_ne!(a, b);
        m.put(a, ip("192.0.2.1"), Arc::new(String::from("subject")));
        assert_eq!(
            m.get::<String>(a, ip("192.0.2.1")).as_deref().map(String::as_str),
            Some("subject")
        );
        assert!(m.get::<String>(a, ip("192.0.2.2")).is_none(), "another client");
        assert!(m.get::<String>(b, ip("192.0.2.1")).is_none(), "another owner");
        assert!(m.get::<u64>(a, ip("192.0.2.1")).is_none(), "another type");
    }

    #[test]
    fn an_owner_holds_one_value_and_the_memo_at_most_four() {
        let m = ConnMemo::default();
        let a = ConnMemo::owner_id();
        m.put(a, ip("192.0.2.1"), Arc::new(1_u32));
        m.put(a, ip("192.0.2.2"), Arc::new(2_u32));
        assert_eq!(m.len(), 1, "a new client replaces the owner's value");
        assert!(m.get::<u32>(a, ip("192.0.2.1")).is_none());
        assert_eq!(m.get::<u32>(a, ip("192.0.2.2")).as_deref(), Some(&2));
        let owners: Vec<u64> = (0..6).map(|_| ConnMemo::owner_id()).collect();
        for (i, o) in owners.iter().enumerate() {
            m.put(*o, ip("192.0.2.1"), Arc::new(u32::try_from(i).unwrap()));
        }
        assert_eq!(m.len(), SLOTS);
        assert!(m.get::<u32>(owners[0], ip("192.0.2.1")).is_none(), "the oldest went");
        assert_eq!(m.get::<u32>(owners[5], ip("192.0.2.1")).as_deref(), Some(&5));
    }
}
