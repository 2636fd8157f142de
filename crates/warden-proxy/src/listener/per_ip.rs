//! Open connections per client address (IPv6 by /64), capped.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};

/// Connection counts of one listener.
#[derive(Debug)]
pub(crate) struct PerIp {
    counts: Mutex<HashMap<IpAddr, usize>>,
    cap: usize,
}

/// Holds one connection's place; gives it back when dropped.
#[derive(Debug)]
pub(crate) struct PerIpGuard {
    owner: Arc<PerIp>,
    key: IpAddr,
}

/// The address connections are counted by: IPv4 as is, IPv4-mapped IPv6 as
/// IPv4, other IPv6 by its /64.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl PerIp {
    pub(crate) fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            counts: Mutex::new(HashMap::new()),
            cap,
        })
    }

    /// A place for one more connection from `ip`, unless it has `cap` open.
    pub(crate) fn take(self: &Arc<Self>, ip: IpAddr) -> Option<PerIpGuard> {
        let key = key(ip);
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let n = counts.entry(key).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(PerIpGuard {
            owner: Arc::clone(self),
            key,
        })
    }
}

impl Drop for PerIpGuard {
    fn drop(&mut self) {
        let mut counts = self.owner.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = counts.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn one_address_and_one_64_share_a_cap_and_places_come_back() {
        let p = PerIp::new(2);
        let a = p.take("2001:db8:1:2::1".parse().unwrap()).unwrap();
        let _b = p.take("2001:db8:1:2::ffff".parse().unwrap()).unwrap();
        assert!(p.take("2001:db8:1:2::9".parse().unwrap()).is_none(), "same /64");
        assert!(p.take("2001:db8:1:3::9".parse().unwrap()).is_some());
        drop(a);
        assert!(p.take("2001:db8:1:2::9".parse().unwrap()).is_some());
        assert!(p.take("192.0.2.1".parse().unwrap()).is_some());
    }
}
