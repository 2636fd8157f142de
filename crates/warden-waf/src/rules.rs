//! A named, levelled set of regular expressions matched in one pass.

use regex::{Regex, RegexSet};

use crate::{Category, Finding, Level};

/// One rule: a stable name, the lowest level it runs at, and its pattern
/// (matched against a lower-cased view).
pub(crate) type Rule = (&'static str, Level, &'static str);

/// Rules of one category, compiled into one `RegexSet`.
#[derive(Debug)]
pub(crate) struct RuleSet {
    category: Category,
    rules: &'static [Rule],
    set: RegexSet,
}

impl RuleSet {
    /// Compiles `rules`. The patterns are constants checked by the unit tests,
    /// so a failure here is a programming error; it yields an empty set
    /// (which the tests catch) rather than a panic.
    pub(crate) fn new(category: Category, rules: &'static [Rule]) -> Self {
        let set = RegexSet::new(rules.iter().map(|r| r.2)).unwrap_or_else(|_| RegexSet::empty());
        Self { category, rules, set }
    }

    /// The first rule active at `level` that matches `text`.
    pub(crate) fn first(&self, text: &str, level: Level) -> Option<Finding> {
        if self.set.is_empty() {
            return None;
        }
        self.set
            .matches(text)
            .into_iter()
            .map(|i| &self.rules[i])
            .find(|r| r.1 <= level)
            .map(|r| Finding {
                category: self.category,
                rule: r.0,
            })
    }

    /// True when every pattern compiled (for tests).
    #[cfg(test)]
    pub(crate) fn compiled(&self) -> bool {
        self.set.len() == self.rules.len()
    }
}

/// Compiles one helper pattern; `None` (rules using it stay silent, tests
/// catch it) if it does not compile.
pub(crate) fn regex(pattern: &str) -> Option<Regex> {
    Regex::new(pattern).ok()
}

/// A finding for `category` and `rule`.
pub(crate) fn found(category: Category, rule: &'static str) -> Option<Finding> {
    Some(Finding { category, rule })
}
