//! [`NetList`]: a parsed list of networks, matched with IPv4-mapped IPv6
//! addresses treated as IPv4. Shared by `ip_rules` and the config's
//! `trusted_proxies`, so both parse and match addresses the same way.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::SpecError;

/// Networks (CIDR blocks or single addresses, IPv4 and IPv6).
#[derive(Debug, Clone, Default)]
pub struct NetList {
    nets: Vec<IpNet>,
}

impl NetList {
    /// Parses `items`; each bad entry is reported as `key[i]`.
    pub fn parse(key: &str, items: &[String], errors: &mut Vec<SpecError>) -> Self {
        let mut nets = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let parsed = item
                .parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from));
            match parsed {
                Ok(net) => nets.push(net.trunc()),
                Err(_) => errors.push(SpecError {
                    path: format!("{key}[{i}]"),
                    message: format!("`{item}` is not an IP address or CIDR block"),
                }),
            }
        }
        Self { nets }
    }

    /// True when some network contains `ip` (`::ffff:a.b.c.d` matches as `a.b.c.d`).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// True when the list has no network.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }
}

/// Maps IPv4-mapped IPv6 addresses to IPv4 so `10.0.0.0/8` also covers `::ffff:10.1.2.3`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}
