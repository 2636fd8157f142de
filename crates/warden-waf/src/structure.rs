//! Detectors for injections into structured syntaxes: file paths
//! (traversal), NoSQL query documents, LDAP filters, XML (DTDs, entities,
//! XInclude) and HTTP headers (CR/LF).

use std::sync::LazyLock;

use crate::normalize::Views;
use crate::rules::{Rule, RuleSet, found};
use crate::{Category, Field, Finding, Level};

pub(crate) static TRAVERSAL: LazyLock<RuleSet> = LazyLock::new(|| RuleSet::new(Category::Traversal, TRAVERSAL_RULES));

/// Matched against the folded view with `\` turned into `/`.
const TRAVERSAL_RULES: &[Rule] = &[
    (
        "dot_dot_slash",
        Level::Low,
        r"(^|[/=:;?&\s'\x22])\.{2,}/|/\.{2,}(/|;|$)|\.\.;/|^\.\.$",
    ),
    (
        "sensitive_file",
        Level::Low,
        r"/etc/(passwd|shadow|group|hosts|issue|sudoers|crontab|master\.passwd)\b|/proc/(self|\d+)/|/\.ssh/|\bid_(rsa|dsa|ecdsa|ed25519)\b|/\.htpasswd|/\.aws/credentials|/windows/(system32|win\.ini|system\.ini)|\b(win|boot|system)\.ini\b|/system32/|c:/(windows|winnt|boot\.ini|inetpub)|/var/log/|/\.git/(config|head)|/\.env\b|/root/\.|\.(bash|zsh|sh|mysql|psql|python)_history\b",
    ),
    ("dot_dot_start", Level::Medium, r"^\.\.(/|$)|(^|/)\.\.\s*$"),
    (
        "config_file",
        Level::Medium,
        r"\bweb\.config\b|\.htaccess\b|/wp-config\.php|/etc/\w+",
    ),
];

/// Path traversal and sensitive files.
pub(crate) fn traversal(v: &Views<'_>, level: Level) -> Option<Finding> {
    if v.hidden_nul && level >= Level::Medium {
        return found(Category::Traversal, "encoded_nul");
    }
    // Every rule needs a slash, a dot or an underscore.
    if !v.has_any(b"/\\._") {
        return None;
    }
    // Without a backslash the slashed view is the folded one: the union has
    // spoken for it.
    if v.quiet && !v.has_any(b"\\") {
        return None;
    }
    let slashed = v.folded.replace('\\', "/");
    TRAVERSAL.first(&slashed, level)
}

/// MongoDB query and update operators.
const OPERATORS: &str = "ne|eq|gt|gte|lt|lte|in|nin|regex|where|exists|or|and|not|nor|expr|elemmatch|all|size|type|mod|text|function|accumulator|jsonschema|lookup|set|unset|push|pull|inc|rename|comment|options|search";

pub(crate) static NOSQL: LazyLock<RuleSet> = LazyLock::new(|| RuleSet::new(Category::Nosql, &NOSQL_RULES));

static NOSQL_RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    let op: &'static str = Box::leak(format!(r#"(^|[\[{{,\s'"(])['"]?\$({OPERATORS})['"]?\s*[:\]=]"#).into_boxed_str());
    vec![
        ("operator", Level::Low, op),
        ("where_clause", Level::Low, r"\$where\b"),
        (
            "javascript_injection",
            Level::Low,
            r#"['"]\s*;\s*return\b|\|\|\s*['"]?(1|a)['"]?\s*==\s*['"]?(1|a)|this\.\w+\.(match|constructor|length)|\bdb\.\w+\.(find|drop|remove|insert|update|delete)\w*\s*\(|\bfunction\s*\(\s*\)\s*\{\s*return\b|;\s*while\s*\(\s*true\s*\)"#,
        ),
        ("operator_key_text", Level::High, r"\$[a-z]+\s*:"),
    ]
});

/// NoSQL operators and JavaScript in a value.
pub(crate) fn nosql(v: &Views<'_>, level: Level) -> Option<Finding> {
    // Every rule needs an operator sign, a separator, a member access or a call.
    if !v.has_any(b"$|;.(") {
        return None;
    }
    NOSQL.first_folded(v, level)
}

/// An object key or parameter name: `$ne`, `user[$gt]`.
pub(crate) fn nosql_key(key: &str) -> Option<Finding> {
    if !key.contains('$') {
        return None;
    }
    let lower = key.to_ascii_lowercase();
    let names_operator = |name: &str| OPERATORS.split('|').any(|op| op == name);
    if let Some(op) = lower.strip_prefix('$')
        && names_operator(op)
    {
        return found(Category::Nosql, "operator_key");
    }
    for part in lower.split('[').skip(1) {
        let name = part.trim_end_matches(']');
        if let Some(op) = name.strip_prefix('$')
            && names_operator(op)
        {
            return found(Category::Nosql, "operator_key");
        }
    }
    None
}

pub(crate) static LDAP: LazyLock<RuleSet> = LazyLock::new(|| RuleSet::new(Category::Ldap, LDAP_RULES));

const LDAP_RULES: &[Rule] = &[
    (
        "filter_breakout",
        Level::Low,
        r"\*\s*\)\s*\(|\)\s*\(\s*[|&!]|\)\s*\(\s*[\w;.-]+\s*[~<>]?=\s*\*?",
    ),
    (
        "filter_composition",
        Level::Low,
        r"\(\s*[|&!]\s*\(\s*[\w;.-]+\s*[~<>]?=",
    ),
    ("probe_characters", Level::Low, r"\*\s*\(\s*\)\s*[|&]"),
    (
        "match_all",
        Level::Medium,
        r"\(\s*[\w;.-]+\s*=\s*\*\s*\)|\(\s*objectclass\s*=|^\*\s*\)|\)\s*\(\s*&\s*\)|\(\s*\|\s*\)",
    ),
];

/// LDAP filter injection.
pub(crate) fn ldap(v: &Views<'_>, level: Level) -> Option<Finding> {
    if !v.has_any(b"()") {
        return None;
    }
    LDAP.first_folded(v, level)
}

pub(crate) static XXE: LazyLock<RuleSet> = LazyLock::new(|| RuleSet::new(Category::Xxe, XXE_RULES));

const XXE_RULES: &[Rule] = &[
    ("doctype", Level::Low, r"<!\s*doctype\b"),
    (
        "entity_declaration",
        Level::Low,
        r"<!\s*(entity|element|attlist|notation)\b",
    ),
    (
        "external_reference",
        Level::Low,
        r#"\b(system|public)\s+['"](file|https?|ftp|php|expect|jar|netdoc|gopher|data|dict):"#,
    ),
    (
        "xinclude",
        Level::Low,
        r"xi:include\b|xmlns:xi\s*=|www\.w3\.org/2001/xinclude",
    ),
    ("stylesheet_pi", Level::Medium, r"<\?xml-stylesheet\b|<xsl:"),
    ("parameter_entity", Level::Medium, r"%[a-z_][\w.-]*;"),
];

/// XML external entities and DTDs.
pub(crate) fn xxe(v: &Views<'_>, level: Level) -> Option<Finding> {
    // Every rule needs a markup sign, a parameter-entity sign or a URL colon.
    if !v.has_any(b"<%:") {
        return None;
    }
    XXE.first_folded(v, level)
}

pub(crate) static CRLF: LazyLock<RuleSet> = LazyLock::new(|| RuleSet::new(Category::Crlf, CRLF_RULES));

const CRLF_RULES: &[Rule] = &[
    (
        "header_injection",
        Level::Low,
        r"[\r\n]\s*(set-cookie|location|content-(type|length|disposition|security-policy)|refresh|transfer-encoding|x-[\w-]+|access-control-[\w-]+|cache-control|www-authenticate|authorization|link|host)\s*:",
    ),
    (
        "response_splitting",
        Level::Low,
        r"[\r\n]\s*http/\d(\.\d)?\s+\d{3}|[\r\n]\s*[\r\n]\s*<(html|script|body|svg)",
    ),
];

/// CR/LF injection. A line break that only appears after decoding, followed
/// by a header-like `name:`, counts even for unknown header names; at level
/// `high`, any decoded line break in a header counts (`C:\report` decodes to
/// one, so not by default).
pub(crate) fn crlf(v: &Views<'_>, field: Field, level: Level) -> Option<Finding> {
    if !v.has_any(b"\r\n") {
        return None;
    }
    if field.in_header && v.hidden_break && level == Level::High {
        return found(Category::Crlf, "encoded_line_break_in_header");
    }
    if let Some(f) = CRLF.first_folded(v, level) {
        return Some(f);
    }
    if v.hidden_break
        && HIDDEN_HEADER
            .as_ref()
            .is_some_and(|re| re.is_match(v.folded.as_bytes()))
    {
        return found(Category::Crlf, "encoded_header_line");
    }
    None
}

static HIDDEN_HEADER: LazyLock<Option<crate::rules::Regex>> =
    LazyLock::new(|| crate::rules::regex(r"[\r\n][\t ]*[\w-]+[\t ]*:"));

/// Compiles every rule set now, so the first request does not pay for it.
pub(crate) fn warm() {
    for set in [&TRAVERSAL, &NOSQL, &LDAP, &XXE, &CRLF] {
        LazyLock::force(set);
    }
    LazyLock::force(&HIDDEN_HEADER);
}

#[cfg(test)]
pub(crate) fn compiled() -> bool {
    TRAVERSAL.compiled()
        && NOSQL.compiled()
        && LDAP.compiled()
        && XXE.compiled()
        && CRLF.compiled()
        && HIDDEN_HEADER.is_some()
}
