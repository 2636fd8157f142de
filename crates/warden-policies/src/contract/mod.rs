//! `contract`: the API's OpenAPI document as a positive security model.
//!
//! Protects against requests the API never promised to accept: an
//! undocumented path or method (404/405), a missing required parameter, an
//! unknown query parameter, a request body of an undeclared media type, a
//! missing required body, and mass assignment: a JSON body that sets a
//! property the schema marks `readOnly` (`role`, `is_admin`, `id`), at any
//! depth, through `$ref`s, `allOf`/`oneOf`/`anyOf` and array items. Refusals
//! are 400 (404/405 for undocumented operations) problem documents naming the
//! location (`/body/role`, `/query/debug`), never the value; in `mode: report`
//! they are `contract` events only.
//!
//! Limits (this increment): parameter and body values are not yet checked
//! against their schemas' types, formats and constraints; strict mode
//! (`additionalProperties: false` everywhere) comes with that validator.

mod config;
mod policy;
mod readonly;
#[cfg(test)]
mod tests;

pub use config::ContractConfig;
pub use policy::Contract;
