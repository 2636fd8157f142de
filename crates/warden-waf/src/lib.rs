//! Warden's injection detection engine.
//!
//! [`Scanner::scan`] looks at one decoded input value (a query value, a header,
//! a JSON string leaf, …) and answers with the first [`Finding`]: the attack
//! [`Category`] and the name of the rule that matched. It never returns or
//! stores the value itself.
//!
//! Every value is first normalised ([`normalize`]): repeated URL decoding (at
//! most [`normalize::MAX_ROUNDS`] rounds), HTML entities, `\u`/`%u`/`\x`
//! escapes, overlong UTF-8, full-width forms, case folding, and for SQL also
//! comment removal and whitespace collapsing. The detectors then run on the
//! views they need. SQL injection and XSS use libinjection (the pure-Rust port)
//! as one signal beside our own rules; the other categories are our own.
//!
//! Limits: libinjection sees at most the first [`LIBINJECTION_MAX`] bytes of a
//! value (its fingerprint only looks at the first tokens anyway); our own rules
//! see the whole value and run in linear time (`regex`). SSRF checks apply only
//! to fields marked [`Field::url_like`]; host names are judged literally, never
//! resolved. XML is checked for DTDs, entities and XInclude only.

mod normalize;
mod rules;
mod shell;
mod sql;
mod ssrf;
mod structure;
mod template;
mod xss;

pub use normalize::{MAX_ROUNDS, Views};

use normalize::ByteSet;

use std::sync::LazyLock;

/// Bytes of a value handed to libinjection.
pub const LIBINJECTION_MAX: usize = 4096;

/// An attack family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// SQL injection.
    Sqli,
    /// Cross-site scripting.
    Xss,
    /// Path traversal and sensitive file access.
    Traversal,
    /// OS command injection.
    Cmd,
    /// Server-side template injection.
    Ssti,
    /// NoSQL operator and JavaScript injection.
    Nosql,
    /// LDAP filter injection.
    Ldap,
    /// XML external entities, DTDs, XInclude.
    Xxe,
    /// CR/LF header injection and response splitting.
    Crlf,
    /// `${jndi:…}` and other Log4j-style lookups.
    Jndi,
    /// Server-side request forgery in URL fields.
    Ssrf,
}

impl Category {
    /// Every category, in report order.
    pub const ALL: [Category; 11] = [
        Self::Sqli,
        Self::Xss,
        Self::Traversal,
        Self::Cmd,
        Self::Ssti,
        Self::Nosql,
        Self::Ldap,
        Self::Xxe,
        Self::Crlf,
        Self::Jndi,
        Self::Ssrf,
    ];

    /// Stable name in config, events and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqli => "sqli",
            Self::Xss => "xss",
            Self::Traversal => "traversal",
            Self::Cmd => "cmd",
            Self::Ssti => "ssti",
            Self::Nosql => "nosql",
            Self::Ldap => "ldap",
            Self::Xxe => "xxe",
            Self::Crlf => "crlf",
            Self::Jndi => "jndi",
            Self::Ssrf => "ssrf",
        }
    }

    /// The category called `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// How eager the detectors are. Each rule has a confidence; a level runs the
/// rules at or above its floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Level {
    /// Only rules that (nearly) never match benign input.
    Low,
    /// The default: adds rules with rare false positives.
    #[default]
    Medium,
    /// Paranoid: adds broad rules that also catch unusual benign input.
    High,
}

impl Level {
    /// The level called `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "low" => Some(Self::Low),
            "medium" => Some(Self::Medium),
            "high" => Some(Self::High),
            _ => None,
        }
    }
}

/// A set of categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Categories(u16);

impl Categories {
    /// Every category.
    pub const ALL: Categories = Categories((1 << Category::ALL.len()) - 1);
    /// No category.
    pub const NONE: Categories = Categories(0);

    /// True when `c` is in the set.
    pub fn has(self, c: Category) -> bool {
        self.0 & c.bit() != 0
    }

    /// The set with `c` added.
    pub fn with(self, c: Category) -> Self {
        Self(self.0 | c.bit())
    }

    /// The set without the members of `other`.
    pub fn without(self, other: Categories) -> Self {
        Self(self.0 & !other.0)
    }

    /// The members of both sets.
    pub fn intersect(self, other: Categories) -> Self {
        Self(self.0 & other.0)
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

/// What kind of input a value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Field {
    /// The value is an object key or a parameter name, not a value: only the
    /// NoSQL operator check applies to names.
    pub is_key: bool,
    /// The field holds a URL (schema format `uri`/`url`, or its name says so):
    /// SSRF checks apply.
    pub url_like: bool,
    /// The value came in a header: any encoded line break counts as CRLF
    /// injection.
    pub in_header: bool,
}

/// What a scan found: the category and the rule, never the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    /// Attack family.
    pub category: Category,
    /// Name of the rule that matched (stable, for events and exceptions).
    pub rule: &'static str,
}

/// The compiled detectors at one sensitivity, for a set of categories.
#[derive(Debug, Clone, Copy)]
pub struct Scanner {
    level: Level,
    categories: Categories,
}

impl Scanner {
    /// A scanner running `categories` at `level`.
    pub fn new(level: Level, categories: Categories) -> Self {
        Self { level, categories }
    }

    /// Compiles every detector's rules now (they are compiled once per
    /// process, on first use otherwise): call it while loading configuration
    /// so the first request does not wait for it.
    pub fn warm() {
        sql::warm();
        xss::warm();
        shell::warm();
        template::warm();
        structure::warm();
        LazyLock::force(&UNION);
    }

    /// The scanner's level.
    pub fn level(&self) -> Level {
        self.level
    }

    /// Scans one value with every enabled category; the first finding wins.
    pub fn scan(&self, value: &str, field: Field) -> Option<Finding> {
        self.scan_only(value, field, self.categories)
    }

    /// Scans one value with the enabled categories that are also in `only`.
    pub fn scan_only(&self, value: &str, field: Field, only: Categories) -> Option<Finding> {
        let cats = Categories(self.categories.0 & only.0);
        if cats.is_empty() || value.is_empty() {
            return None;
        }
        if field.is_key {
            return cats.has(Category::Nosql).then(|| structure::nosql_key(value)).flatten();
        }
        if cats.has(Category::Ssrf) {
            // In a URL field every scheme and host is judged; anywhere else, a
            // value that is itself an http(s) URL has its host judged.
            let f = if field.url_like {
                ssrf::check(value)
            } else {
                ssrf::check_http_value(value)
            };
            if f.is_some() {
                return f;
            }
        }
        let bytes = ByteSet::of(value.as_bytes());
        let level = self.level;
        if is_plain(value, &bytes) && !plain_matches(value, level) {
            // Nothing in plain text decodes, and it holds no markup, quote,
            // separator or escape: only a rule could still match it (a
            // numeric SQL injection, `sysobjects`, `nc -e cmd.exe …`,
            // `win.ini`), and the union of every rule set says none does.
            return None;
        }
        let mut views = Views::with_bytes(value, &bytes);
        views.quiet = UNION[level as usize]
            .as_ref()
            .is_some_and(|re| !re.is_match(views.folded.as_bytes()));
        let run = |c: Category, f: &dyn Fn() -> Option<Finding>| if cats.has(c) { f() } else { None };
        run(Category::Jndi, &|| template::jndi(&views, level))
            .or_else(|| run(Category::Crlf, &|| structure::crlf(&views, field, level)))
            .or_else(|| run(Category::Xxe, &|| structure::xxe(&views, level)))
            .or_else(|| run(Category::Ssti, &|| template::ssti(&views, level)))
            .or_else(|| run(Category::Xss, &|| xss::check(&views, level)))
            .or_else(|| run(Category::Sqli, &|| sql::check(&views, level)))
            .or_else(|| run(Category::Cmd, &|| shell::check(&views, level)))
            .or_else(|| run(Category::Traversal, &|| structure::traversal(&views, level)))
            .or_else(|| run(Category::Nosql, &|| structure::nosql(&views, level)))
            .or_else(|| run(Category::Ldap, &|| structure::ldap(&views, level)))
            .or_else(|| {
                run(Category::Ssrf, &|| {
                    if field.url_like {
                        ssrf::check_decoded(&views)
                    } else {
                        None
                    }
                })
            })
    }
}

/// Per level, the union of every rule set: one pass that clears most values
/// of all of them at once. It matches ASCII letters of either case (no rule
/// holds a capital or a non-ASCII byte, which a test checks), so it answers
/// as the rules do on the folded view (and on the SQL and traversal views,
/// most often the folded one), and reads plain text as it came wherever the
/// rules would match it lower-cased.
static UNION: LazyLock<[Option<crate::rules::Regex>; 3]> =
    LazyLock::new(|| [Level::Low, Level::Medium, Level::High].map(|level| rules::union(&rule_sets(), level)));

/// Every rule set the union is made of.
fn rule_sets() -> [&'static rules::RuleSet; 10] {
    [
        &shell::SET,
        &xss::SET,
        &sql::SET,
        &template::SSTI,
        &template::JNDI,
        &structure::TRAVERSAL,
        &structure::NOSQL,
        &structure::LDAP,
        &structure::XXE,
        &structure::CRLF,
    ]
}

/// True when every character (`bytes` is the value's byte set) is an ASCII
/// letter, digit, space, `-`, `_`, `.` or `,`, or a Latin letter that
/// folding only lower-cases ([`normalize::quiet_letter`]: `Dún Laoghaire`),
/// and no two dots or two spaces meet: text whose every view is its
/// lower-cased self.
fn is_plain(value: &str, bytes: &ByteSet) -> bool {
    bytes.within(&PLAIN) && bytes.quiet_text(value) && !value.as_bytes().windows(2).any(|w| w == b".." || w == b"  ")
}

/// True when the union at `level` may match plain `value`'s folded view
/// (its lower-cased self), read on the value as it came. (The rules hold no
/// non-ASCII byte, so Latin capitals left as they are change nothing.)
fn plain_matches(value: &str, level: Level) -> bool {
    UNION[level as usize]
        .as_ref()
        .is_none_or(|union| union.is_match(value.as_bytes()))
}

/// The bytes [`is_plain`] allows: its ASCII characters and every byte of a
/// multi-byte one (which [`ByteSet::quiet_text`] then judges).
const PLAIN: ByteSet =
    ByteSet::of_const(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 -_.,").with_non_ascii();

#[cfg(test)]
mod tests;
