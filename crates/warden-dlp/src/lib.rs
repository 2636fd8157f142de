//! Data-leak detection for responses and logs.
//!
//! [`find`] looks for sensitive values in text: payment card numbers (IIN
//! prefix and Luhn), IBANs (mod 97), national ids (US SSN, UK NINO), e-mail
//! addresses, phone numbers (international or `(415) 555-0134` form), cloud
//! provider keys, GitHub/GitLab/Slack/Stripe-style tokens, JWTs and PEM private
//! keys. [`json::scan`] walks a JSON body once, structure-aware: the same
//! detectors on every string and number leaf, plus [`names::is_secret_field`]
//! (`password`, `api_key`, `ssn`, …: the whole value is sensitive) and
//! high-entropy strings in key-like fields. [`apply`] turns findings into the
//! edited body (mask, keeping a tail; redact). [`redact_log`] scrubs a log
//! line. [`stack::leak`] recognises stack traces, framework error pages and
//! database errors.
//!
//! Every scan starts with one cheap pass over the input (`gate.rs`) that
//! says which detectors' expressions could match; only those expressions and
//! their checksums run, so clean text costs one scalar pass. A JSON body's
//! walk makes that pass itself as it reads the strings.

mod detect;
mod gate;
pub mod json;
mod mask;
pub mod names;
pub mod stack;
#[cfg(test)]
mod tests;

pub use detect::{Detector, find};
pub use mask::{Action, Edit, LOG_CATEGORIES, RedactingWriter, apply, redact_log};

use std::ops::Range;

/// A kind of sensitive value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// A payment card number (known IIN prefix, 13–19 digits, Luhn).
    Card,
    /// An IBAN with valid check digits.
    Iban,
    /// A US social security number or a UK national insurance number.
    NationalId,
    /// An e-mail address.
    Email,
    /// A phone number in international (`+44 20 …`) or `(415) 555-0134` form.
    Phone,
    /// A cloud provider access key id (AWS `AKIA…`/`ASIA…`, Google `AIza…`).
    CloudKey,
    /// A GitHub, GitLab, Slack or Stripe-style API token.
    Token,
    /// A JSON Web Token (`eyJ….eyJ….…`).
    Jwt,
    /// A PEM private key block.
    PrivateKey,
    /// A long, random-looking string in a key-like field (`*_key`, `*token*`).
    HighEntropy,
    /// The value of a field whose name means a secret (`password`, `ssn`, …).
    SecretField,
}

impl Category {
    /// Every category, in declaration order.
    pub const ALL: [Category; 11] = [
        Self::Card,
        Self::Iban,
        Self::NationalId,
        Self::Email,
        Self::Phone,
        Self::CloudKey,
        Self::Token,
        Self::Jwt,
        Self::PrivateKey,
        Self::HighEntropy,
        Self::SecretField,
    ];

    /// The config and event name (`card`, `secret_field`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Card => "card",
            Self::Iban => "iban",
            Self::NationalId => "national_id",
            Self::Email => "email",
            Self::Phone => "phone",
            Self::CloudKey => "cloud_key",
            Self::Token => "token",
            Self::Jwt => "jwt",
            Self::PrivateKey => "private_key",
            Self::HighEntropy => "high_entropy",
            Self::SecretField => "secret_field",
        }
    }

    /// The category with this name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Categories(u16);

impl Categories {
    /// Every category.
    pub const ALL: Self = Self((1 << Category::ALL.len()) - 1);
    /// No category.
    pub const NONE: Self = Self(0);

    /// True when `c` is in the set.
    pub fn contains(self, c: Category) -> bool {
        self.0 & c.bit() != 0
    }

    /// The set with `c` added.
    #[must_use]
    pub fn with(self, c: Category) -> Self {
        Self(self.0 | c.bit())
    }

    /// The set without `c`.
    #[must_use]
    pub fn without(self, c: Category) -> Self {
        Self(self.0 & !c.bit())
    }

    /// True when the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl FromIterator<Category> for Categories {
    fn from_iter<I: IntoIterator<Item = Category>>(iter: I) -> Self {
        iter.into_iter().fold(Self::NONE, Self::with)
    }
}

/// One sensitive value: what it is and where (byte range in the input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What was found.
    pub category: Category,
    /// Where, in bytes.
    pub range: Range<usize>,
}
