//! Types every Warden crate shares: the [`Policy`] trait and its phases, the
//! [`Decision`] a phase returns, the per-request [`RequestCtx`], and the RFC 9457
//! problem types the gateway answers with.
//!
//! Nothing here does I/O; the proxy drives policies, the config crate builds them.

pub mod blocks;
pub mod clock;
pub mod ctx;
pub mod event;
pub mod headers;
pub mod limits;
pub mod memo;
pub mod policy;
pub mod problem;
pub mod services;

pub use clock::{Clock, ManualClock, SystemClock};
pub use ctx::{ClientIdentity, RequestCtx, ResponseHeaders};
pub use memo::ConnMemo;
pub use policy::{Decision, OnError, Policy, PolicyError};
pub use problem::{ProblemKind, Rejection};
pub use services::{
    ApiKeyVerifier, Directory, KeyOwner, KeyRefusal, LocalIssuer, Services, SharedFuture, SharedState,
    SharedUnavailable,
};
