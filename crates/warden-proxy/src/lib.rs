//! Warden's data plane: listeners (with strict HTTP/1 framing), the request
//! handler and policy pipeline driver, upstream pools with health checking,
//! uniform problem+json responses, the access log, metrics, the admin listener,
//! hot reload and graceful shutdown.

pub mod access_log;
pub mod admin;
pub mod blocks;
pub mod body;
pub mod client_cert;
pub mod client_head;
pub mod forwarded;
pub mod gateway;
pub mod handler;
pub mod listener;
pub mod metrics;
pub mod pipeline;
pub mod respond;
mod response_body;
pub mod state;
pub mod tunnel;
pub mod upstream;
pub mod worker;

pub use access_log::AccessLogSink;
pub use gateway::{Gateway, GatewayOptions, StartError};
