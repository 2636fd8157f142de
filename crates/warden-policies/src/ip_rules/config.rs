//! `IpRulesConfig`: the YAML shape of `type: ip_rules`.

use serde::Deserialize;
use warden_core::OnError;

use super::{IpRules, NetList};
use crate::SpecError;

/// `type: ip_rules` — `allow` and `deny` CIDR lists.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpRulesConfig {
    /// Only these networks pass (empty: every address not denied passes).
    #[serde(default)]
    pub allow: Vec<String>,
    /// These networks are refused with 403, even when also allowed.
    #[serde(default)]
    pub deny: Vec<String>,
    /// What to do if the policy fails internally.
    #[serde(default)]
    pub on_error: OnError,
}

impl IpRulesConfig {
    /// Parses every CIDR, listing each bad one.
    pub fn build(&self) -> Result<IpRules, Vec<SpecError>> {
        let mut errors = Vec::new();
        let allow = NetList::parse("allow", &self.allow, &mut errors);
        let deny = NetList::parse("deny", &self.deny, &mut errors);
        if self.allow.is_empty() && self.deny.is_empty() {
            errors.push(SpecError {
                path: String::new(),
                message: "ip_rules needs at least one `allow` or `deny` entry".into(),
            });
        }
        if errors.is_empty() {
            Ok(IpRules::new(allow, deny))
        } else {
            Err(errors)
        }
    }
}
