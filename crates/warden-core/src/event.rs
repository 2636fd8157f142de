//! Typed security events: each writes one structured log line (target
//! `warden::event`) and counts towards `warden_security_events_total{kind}`.

use std::sync::Mutex;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// A consumer touched more distinct object ids than allowed in a window.
    Enumeration,
    /// A consumer was blocked for a period.
    ConsumerBlocked,
    /// An identity (or a client address) was locked out after failed logins.
    LockedOut,
    /// One client address tried many distinct identities (credential stuffing).
    CredentialStuffing,
    /// An injection attack was found in a request (refused, or reported only).
    Injection,
    /// A request broke the API contract (refused, or reported only).
    Contract,
    /// Sensitive data or a secret in a response (masked, redacted, blocked or reported).
    DataLeak,
    /// A stack trace, framework error page or database error in a response.
    ErrorLeak,
    /// A response carried what its OpenAPI document does not declare.
    ResponseContract,
    /// A response body was too long to inspect (or compressed) and its fate is logged.
    ResponseUninspected,
}

impl EventKind {
    /// Stable name in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::Enumeration => "enumeration",
            Self::ConsumerBlocked => "consumer_blocked",
            Self::LockedOut => "locked_out",
            Self::CredentialStuffing => "credential_stuffing",
            Self::Injection => "injection",
            Self::Contract => "contract",
            Self::DataLeak => "data_leak",
            Self::ErrorLeak => "error_leak",
            Self::ResponseContract => "response_contract",
            Self::ResponseUninspected => "response_uninspected",
        }
    }
}

static COUNTS: Mutex<Vec<(EventKind, u64)>> = Mutex::new(Vec::new());

/// Records one event: a warning line with its fields, and the counter.
pub fn emit(kind: EventKind, request_id: &str, subject: &str, detail: &str) {
    tracing::warn!(
        target: "warden::event",
        event = kind.name(),
        request_id,
        subject,
        detail,
        "security event"
    );
    count(kind);
}

/// Counts an event towards `warden_security_events_total{kind}` without a
/// log line: for routine outcomes a policy is configured to handle (a
/// response filtered to its contract) that would flood the log.
pub fn count(kind: EventKind) {
    if let Ok(mut counts) = COUNTS.lock() {
        match counts.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((kind, 1)),
        }
    }
}

/// Events so far, per kind (for `/metrics`).
pub fn counts() -> Vec<(EventKind, u64)> {
    COUNTS.lock().map(|c| c.clone()).unwrap_or_default()
}
