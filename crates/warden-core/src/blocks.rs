//! Dynamic blocks: a client address, a CIDR or a consumer refused for a
//! period, set at run time (admin API, `warden blocks`, later anomaly
//! detection) and held in the shared state so every gateway enforces it.
//!
//! A block is one entry of the shared map [`BLOCKS_MAP`]: the field is the
//! target's canonical text (`203.0.113.7/32`, `2001:db8::/64`,
//! `consumer:alice`), the value a small JSON document with the expiry.
//! Gateways read the map into a [`BlockSet`] and check every request against
//! it; expired entries stop counting at their expiry, whenever the map is
//! next read.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Name of the shared map holding blocks.
pub const BLOCKS_MAP: &str = "blocks";
/// Most blocks held at once (larger sets belong in `ip_rules` or a firewall).
pub const MAX_BLOCKS: usize = 10_000;
/// Longest block: 90 days.
pub const MAX_BLOCK_SECS: u64 = 90 * 86_400;

/// What a block refuses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BlockTarget {
    /// Client addresses in a network (a single address is a /32 or /128).
    Net(IpNet),
    /// An authenticated consumer, by name.
    Consumer(String),
}

impl BlockTarget {
    /// Parses `203.0.113.7`, `203.0.113.0/24`, `2001:db8::/64` or
    /// `consumer:NAME`. Host bits of a CIDR are cleared; a bare IPv6 address
    /// means its /64 (one subscriber holds a whole /64, as rate limits and
    /// connection caps count it; write `/128` for the single address);
    /// IPv4-mapped IPv6 (`::ffff:a.b.c.d`, as a CIDR too) is IPv4. Networks
    /// wider than /8 (IPv4) or /32 (IPv6) are refused: that is not a block
    /// but an outage. A consumer name is whatever the authentication named
    /// (store name, token `sub`, certificate principal): any text without
    /// control characters, up to 512 bytes.
    ///
    /// # Errors
    ///
    /// A message naming what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Some(name) = text.strip_prefix("consumer:") {
            let ok = !name.is_empty() && name.len() <= 512 && !name.chars().any(char::is_control);
            return if ok {
                Ok(Self::Consumer(name.to_owned()))
            } else {
                Err("a consumer name is 1–512 bytes without control characters".into())
            };
        }
        let net = if let Ok(ip) = text.parse::<IpAddr>() {
            match canonical(ip) {
                IpAddr::V6(v6) if !text.contains('.') => IpNet::new(IpAddr::V6(v6), 64).map_err(|e| e.to_string())?,
                other => IpNet::from(other),
            }
        } else {
            let net = text
                .parse::<IpNet>()
                .map_err(|_| format!("`{text}` is neither an IP address, a CIDR nor `consumer:NAME`"))?;
            mapped_to_v4(net)?
        };
        let widest = if net.addr().is_ipv4() { 8 } else { 32 };
        if net.prefix_len() < widest {
            return Err(format!(
                "`{text}` is wider than /{widest}; block narrower networks (or use ip_rules)"
            ));
        }
        Ok(Self::Net(net.trunc()))
    }

    /// The canonical text (the shared map's field).
    pub fn key(&self) -> String {
        match self {
            Self::Net(n) => n.to_string(),
            Self::Consumer(c) => format!("consumer:{c}"),
        }
    }
}

/// An IPv4-mapped IPv6 network (`::ffff:0:0/96` and narrower) as IPv4.
fn mapped_to_v4(net: IpNet) -> Result<IpNet, String> {
    let IpNet::V6(v6) = net else { return Ok(net) };
    let Some(v4) = v6.addr().to_ipv4_mapped() else {
        return Ok(net);
    };
    if v6.prefix_len() < 96 {
        return Err(format!("`{net}` mixes IPv4-mapped and other IPv6 addresses"));
    }
    IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96).map_err(|e| e.to_string())
}

/// IPv4-mapped IPv6 addresses are the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The stored value of one block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRecord {
    /// Expiry, Unix milliseconds.
    pub until_ms: i64,
    /// Set at, Unix milliseconds.
    pub created_ms: i64,
    /// Why (free text, shown to operators only, never to the client).
    pub reason: String,
    /// Who set it: `admin`, `cli`, a policy name.
    pub source: String,
}

/// One block: target and record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// What is refused.
    pub target: BlockTarget,
    /// Until when, and why.
    pub record: BlockRecord,
}

impl Block {
    /// The entry as the shared map stores it: (field, value).
    pub fn to_entry(&self) -> (String, String) {
        let value = serde_json::to_string(&self.record).unwrap_or_default();
        (self.target.key(), value)
    }

    /// Reads one map entry; `None` for an entry this version cannot read.
    pub fn from_entry(field: &str, value: &str) -> Option<Self> {
        Some(Self {
            target: BlockTarget::parse(field).ok()?,
            record: serde_json::from_str(value).ok()?,
        })
    }
}

/// The blocks in force, indexed for per-request checks.
#[derive(Debug, Default)]
pub struct BlockSet {
    hosts: HashMap<IpAddr, i64>,
    nets: Vec<(IpNet, i64)>,
    consumers: HashMap<String, i64>,
}

impl BlockSet {
    /// Indexes `blocks` (entries already expired at `now_ms` are left out,
    /// and no more than [`MAX_BLOCKS`] are taken, whatever the shared state
    /// holds).
    pub fn new(blocks: &[Block], now_ms: i64) -> Self {
        let mut set = Self::default();
        for b in blocks.iter().filter(|b| b.record.until_ms > now_ms).take(MAX_BLOCKS) {
            let until = b.record.until_ms;
            match &b.target {
                BlockTarget::Net(n) if n.prefix_len() == n.max_prefix_len() => {
                    set.hosts.insert(n.addr(), until);
                }
                BlockTarget::Net(n) => set.nets.push((*n, until)),
                BlockTarget::Consumer(c) => {
                    set.consumers.insert(c.clone(), until);
                }
            }
        }
        set
    }

    /// True when nothing is blocked (the common case: checks cost nothing).
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.nets.is_empty() && self.consumers.is_empty()
    }

    /// Until when `ip` is blocked, if it is at `now_ms`.
    pub fn address(&self, ip: IpAddr, now_ms: i64) -> Option<i64> {
        let ip = canonical(ip);
        let host = self.hosts.get(&ip).copied().filter(|u| *u > now_ms);
        let net = self
            .nets
            .iter()
            .filter(|(n, u)| *u > now_ms && n.contains(&ip))
            .map(|(_, u)| *u)
            .max();
        host.max(net)
    }

    /// Until when consumer `name` is blocked, if it is at `now_ms`.
    pub fn consumer(&self, name: &str, now_ms: i64) -> Option<i64> {
        self.consumers.get(name).copied().filter(|u| *u > now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(target: &str, until_ms: i64) -> Block {
        Block {
            target: BlockTarget::parse(target).unwrap(),
            record: BlockRecord {
                until_ms,
                created_ms: 0,
                reason: "test".into(),
                source: "test".into(),
            },
        }
    }

    #[test]
    fn targets_parse_to_canonical_keys_and_bad_ones_are_refused() {
        assert_eq!(BlockTarget::parse("203.0.113.7").unwrap().key(), "203.0.113.7/32");
        assert_eq!(
            BlockTarget::parse("::ffff:203.0.113.7").unwrap().key(),
            "203.0.113.7/32"
        );
        assert_eq!(BlockTarget::parse("203.0.113.77/24").unwrap().key(), "203.0.113.0/24");
        assert_eq!(BlockTarget::parse("2001:db8::1:2/64").unwrap().key(), "2001:db8::/64");
        assert_eq!(
            BlockTarget::parse("2001:db8::1:2").unwrap().key(),
            "2001:db8::/64",
            "bare IPv6: its /64"
        );
        assert_eq!(
            BlockTarget::parse("2001:db8::1:2/128").unwrap().key(),
            "2001:db8::1:2/128"
        );
        assert_eq!(
            BlockTarget::parse("::ffff:203.0.113.0/120").unwrap().key(),
            "203.0.113.0/24"
        );
        assert_eq!(BlockTarget::parse("consumer:alice").unwrap().key(), "consumer:alice");
        for name in [
            "spiffe://example.org/ns/prod/sa/api",
            "auth0|64f1",
            "CN=svc,O=Acme",
            "team:ops+1",
            "bob smith",
        ] {
            let t = BlockTarget::parse(&format!("consumer:{name}")).unwrap();
            assert_eq!(t, BlockTarget::Consumer(name.into()), "{name}");
            assert_eq!(BlockTarget::parse(&t.key()).unwrap(), t, "the key reads back");
        }
        for bad in [
            "0.0.0.0/0",
            "::/0",
            "0.0.0.0/1",
            "10.0.0.0/7",
            "2001::/16",
            "::ffff:0:0/95",
            "consumer:",
            "consumer:a\nb",
            "bob",
            "10.0.0.300",
            "",
        ] {
            assert!(BlockTarget::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn addresses_networks_and_consumers_are_blocked_until_expiry_only() {
        let set = BlockSet::new(
            &[
                block("203.0.113.7", 1000),
                block("198.51.100.0/24", 2000),
                block("2001:db8::/64", 3000),
                block("consumer:mallory", 4000),
                block("192.0.2.1", 10),
            ],
            100,
        );
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(set.address(ip("203.0.113.7"), 500), Some(1000));
        assert_eq!(set.address(ip("::ffff:203.0.113.7"), 500), Some(1000), "mapped form");
        assert_eq!(set.address(ip("203.0.113.8"), 500), None, "the neighbour");
        assert_eq!(set.address(ip("198.51.100.200"), 500), Some(2000));
        assert_eq!(set.address(ip("198.51.101.1"), 500), None);
        assert_eq!(set.address(ip("2001:db8::abcd:1"), 500), Some(3000), "same /64");
        assert_eq!(set.address(ip("2001:db8:0:1::1"), 500), None, "next /64");
        assert_eq!(set.consumer("mallory", 500), Some(4000));
        assert_eq!(set.consumer("alice", 500), None);
        assert_eq!(set.address(ip("192.0.2.1"), 500), None, "expired before indexing");
        assert_eq!(set.address(ip("203.0.113.7"), 1000), None, "expired at its time");
        assert_eq!(set.consumer("mallory", 4001), None);
    }

    #[test]
    fn entries_round_trip_and_unreadable_ones_are_skipped() {
        let b = block("consumer:eve", 99);
        let (field, value) = b.to_entry();
        assert_eq!(Block::from_entry(&field, &value), Some(b));
        assert_eq!(Block::from_entry("consumer:eve", "not json"), None);
        assert_eq!(Block::from_entry("nonsense", &value), None);
    }
}
