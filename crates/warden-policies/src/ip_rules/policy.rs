//! `IpRules`: the compiled allow/deny check.

use std::net::IpAddr;

use super::NetList;
use http::request;
use warden_core::{Decision, Policy, PolicyError, ProblemKind, Rejection, RequestCtx};

/// Compiled `ip_rules`.
#[derive(Debug)]
pub struct IpRules {
    allow: NetList,
    deny: NetList,
}

impl IpRules {
    /// Builds from parsed network lists.
    pub fn new(allow: NetList, deny: NetList) -> Self {
        Self { allow, deny }
    }

    /// True when `ip` may pass.
    pub fn permits(&self, ip: IpAddr) -> bool {
        !self.deny.contains(ip) && (self.allow.is_empty() || self.allow.contains(ip))
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
