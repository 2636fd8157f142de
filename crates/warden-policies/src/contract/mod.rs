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
//! Values are validated against their schemas (`jsonschema`, compiled at
//! load; formats checked; 3.0 `nullable` honoured): path, query and header
//! parameters (read as their schema's type) and JSON bodies. `strict: true`
//! treats every object schema as `additionalProperties: false`.
//!
//! Limits: cookie parameter values are checked for presence only; non-JSON
//! bodies for media type only.

mod config;
mod policy;
#[cfg(test)]
mod tests;

pub use config::ContractConfig;
pub(crate) use config::load_spec;
pub use policy::Contract;
