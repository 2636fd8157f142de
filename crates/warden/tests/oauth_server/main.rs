//! The built-in authorization server end to end: clients registered with the
//! real CLI, tokens from the token endpoint with every client-authentication
//! method and grant, and those tokens accepted (or refused) by a `jwt` route.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod client_auth;
mod dpop;
mod grants;
mod support;
