//! A named, levelled set of regular expressions matched in one pass.
//!
//! Patterns are compiled over bytes with Unicode mode off: `\b`, `\w` and
//! `\s` are ASCII, which keeps every rule on the lazy DFA (Unicode word
//! boundaries would push matching onto the much slower NFA simulation). The
//! views are already lower-cased and folded, so nothing is lost.

use regex::bytes::{RegexSet, RegexSetBuilder};

/// A compiled pattern.
pub(crate) type Regex = regex_automata::meta::Regex;

use crate::{Category, Finding, Level, Views};

/// One rule: a stable name, the lowest level it runs at, and its pattern
/// (matched against a lower-cased view).
pub(crate) type Rule = (&'static str, Level, &'static str);

/// Rules of one category: per level, one alternation that answers "does any
/// rule match" in a single early-exit pass (the common, benign case), and a
/// `RegexSet` that names the rule when one does.
#[derive(Debug)]
pub(crate) struct RuleSet {
    category: Category,
    rules: &'static [Rule],
    set: RegexSet,
    any: [Option<Regex>; 3],
}

impl RuleSet {
    /// Compiles `rules`. The patterns are constants checked by the unit tests,
    /// so a failure here is a programming error; it yields an empty set
    /// (which the tests catch) rather than a panic.
    pub(crate) fn new(category: Category, rules: &'static [Rule]) -> Self {
        let set = RegexSetBuilder::new(rules.iter().map(|r| r.2))
            .unicode(false)
            .build()
            .unwrap_or_else(|_| RegexSet::empty());
        let any = [Level::Low, Level::Medium, Level::High].map(|level| {
            let active: Vec<String> = rules
                .iter()
                .filter(|r| r.1 <= level)
                .map(|r| format!("(?:{})", r.2))
                .collect();
            if active.is_empty() {
                None
            } else {
                regex(&active.join("|"))
            }
        });
        Self {
            category,
            rules,
            set,
            any,
        }
    }

    /// The first rule active at `level` that matches `text`.
    pub(crate) fn first(&self, text: &str, level: Level) -> Option<Finding> {
        let any = self.any[level as usize].as_ref()?;
        if self.set.is_empty() || !any.is_match(text.as_bytes()) {
            return None;
        }
        self.set
            .matches(text.as_bytes())
            .into_iter()
            .map(|i| &self.rules[i])
            .find(|r| r.1 <= level)
            .map(|r| Finding {
                category: self.category,
                rule: r.0,
            })
    }

    /// [`RuleSet::first`] on the folded view, skipped when the union of every
    /// rule set found nothing there ([`Views::quiet`]).
    pub(crate) fn first_folded(&self, v: &Views<'_>, level: Level) -> Option<Finding> {
        if v.quiet { None } else { self.first(&v.folded, level) }
    }

    /// The patterns (for tests).
    #[cfg(test)]
    pub(crate) fn patterns(&self) -> impl Iterator<Item = &'static str> {
        self.rules.iter().map(|r| r.2)
    }

    /// True when every pattern compiled (for tests).
    #[cfg(test)]
    pub(crate) fn compiled(&self) -> bool {
        let levels = [Level::Low, Level::Medium, Level::High];
        self.set.len() == self.rules.len()
            && levels
                .iter()
                .all(|l| self.any[*l as usize].is_some() || !self.rules.iter().any(|r| r.1 <= *l))
    }
}

/// One alternation of every rule of `sets` active at `level`: a value it
/// does not match cannot match any of them, so one pass over a benign value
/// stands in for one pass per set. `None` when it does not compile (the sets
/// then run one by one, as they would without it).
/// It matches ASCII letters of either case: on lower-cased text (the views)
/// that is the rules' own answer, since no rule holds a capital, and it reads
/// a text as it came wherever the rules would match it lower-cased.
pub(crate) fn union(sets: &[&RuleSet], level: Level) -> Option<Regex> {
    let active: Vec<String> = sets
        .iter()
        .flat_map(|s| s.rules.iter())
        .filter(|r| r.1 <= level)
        .map(|r| format!("(?:{})", r.2))
        .collect();
    if active.is_empty() {
        return None;
    }
    regex(&format!("(?i:{})", active.join("|")))
}

/// Compiles one helper pattern; `None` (rules using it stay silent, tests
/// catch it) if it does not compile.
///
/// Built as `regex::bytes::RegexBuilder` builds with Unicode off (the same
/// syntax, size limits and match semantics), answering `is_match` only, and
/// without a literal prefilter: rule patterns start with bytes that are
/// common in text (`;`, `(`, `<`, a quote, a keyword's letters), so a
/// prefilter keeps stopping on candidates and handing them to the automaton.
/// Without it, the lazy DFA's single pass is cheaper on every value measured:
/// 57,402 against 67,917 instructions for the 33 string values of
/// `bench/order-1k.json`, 299,000 against 664,000 for 4 KiB of punctuated
/// prose, equal on base64 (`docs/benchmarks.md`).
pub(crate) fn regex(pattern: &str) -> Option<Regex> {
    use regex_automata::util::syntax;
    let config = Regex::config()
        .nfa_size_limit(Some(10 * (1 << 20)))
        .hybrid_cache_capacity(2 * (1 << 20))
        .utf8_empty(false)
        .which_captures(regex_automata::nfa::thompson::WhichCaptures::None)
        .auto_prefilter(false);
    Regex::builder()
        .configure(config)
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .build(pattern)
        .ok()
}

/// A finding for `category` and `rule`.
pub(crate) fn found(category: Category, rule: &'static str) -> Option<Finding> {
    Some(Finding { category, rule })
}
