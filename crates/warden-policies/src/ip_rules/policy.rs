//! `IpRules`: the compiled allow/deny check.

use std::net::IpAddr;

use http::request;
use ipnet::IpNet;
use warden_core::{Decision, Policy, PolicyError, ProblemKind, Rejection, RequestCtx};

/// Compiled `ip_rules`.
#[derive(Debug)]
pub struct IpRules {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

impl IpRules {
    /// Builds from parsed, truncated networks.
    pub fn new(allow: Vec<IpNet>, deny: Vec<IpNet>) -> Self {
        Self { allow, deny }
    }

    /// True when `ip` may pass.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        if self.deny.iter().any(|n| n.contains(&ip)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&ip))
    }
}

/// Maps IPv4-mapped IPv6 addresses to IPv4 so `10.0.0.0/8` also covers `::ffff:10.1.2.3`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl Policy for IpRules {
    fn name(&self) -> &'static str {
        "ip_rules"
    }

    async fn on_request(&self, _req: &mut request::Parts, ctx: &mut RequestCtx) -> Result<Decision, PolicyError> {
        if self.permits(ctx.client_ip) {
            Ok(Decision::Continue)
        } else {
            Ok(Decision::Reject(Rejection::new(
                ProblemKind::Forbidden,
                "ip_denied",
                format!("client address {} is not allowed on this route", ctx.client_ip),
            )))
        }
    }
}
