//! Server-side template injection (Jinja/Twig, ERB, Freemarker, Velocity,
//! Spring EL, Thymeleaf) and Log4j-style `${…}` lookups.
//!
//! A template marker alone is not an attack (`{{name}}` is a placeholder, and
//! `${user.name}` a JavaScript template literal); an expression inside one is:
//! arithmetic, a call, indexing, Python's dunder attributes, Java reflection.
//! Lookups are resolved the way Log4j resolves them (`${lower:j}` → `j`,
//! `${::-n}` → `n`, `${env:X:-d}` → `d`) before `${jndi:` is looked for.

use std::sync::LazyLock;

use crate::normalize::Views;
use crate::rules::{Rule, RuleSet, found};
use crate::{Category, Finding, Level};

pub(crate) static SSTI: LazyLock<RuleSet> = LazyLock::new(|| RuleSet::new(Category::Ssti, SSTI_RULES));

const SSTI_RULES: &[Rule] = &[
    (
        "brace_expression",
        Level::Low,
        r#"\{\{[^}]*([*+/%\[\]()|'"~]|\d\s*-\s*\d|__|\bself\b|\bconfig\b|\brequest\b|\bcycler\b|\blipsum\b|\bjoiner\b|\bnamespace\b|\b_self\b|\bconstructor\b)[^}]*\}\}"#,
    ),
    (
        "template_statement",
        Level::Low,
        r"\{%-?\s*(import|include|extends|set|for|if|macro|raw|print|call|filter|with|do|debug|block|from)\b",
    ),
    (
        "dollar_expression",
        Level::Low,
        r"\$\{[^}]*(\d\s*[*+/%-]\s*\d|\bt\s*\(|getclass|getruntime|runtime|processbuilder|class\.|\.exec\s*\(|\.forname\s*\(|@java|new\s+java)[^}]*\}",
    ),
    (
        "hash_expression",
        Level::Low,
        r"[#*@~]\{\s*[^}]*(\d\s*[*+/%-]\s*\d|\(|\bt\s*\(|getclass|runtime)[^}]*\}",
    ),
    ("razor_expression", Level::Low, r"@\(\s*[^)]*(\d\s*[*+/%-]\s*\d|\()"),
    (
        "smarty_call",
        Level::Low,
        r"\{\s*(system|exec|passthru|shell_exec|popen|proc_open|eval|php|fetch|include|math|function)\b[^}]*\}",
    ),
    ("ognl_expression", Level::Low, r"%\{[^}]*(#|@[\w.]+@|\(|\bnew\s)"),
    ("erb_tag", Level::Low, r"<%[=\-#]?[^%]*%>"),
    (
        "python_dunder",
        Level::Low,
        r"__(class|mro|subclasses|globals|builtins|base|bases|import|getattribute|reduce|code)__",
    ),
    (
        "freemarker_directive",
        Level::Low,
        r"<#(assign|include|import|if|list|macro|function|attempt|setting)\b|\?new\s*\(|freemarker\.template|\?api\b",
    ),
    (
        "velocity_directive",
        Level::Low,
        r"#set\s*\(\s*\$|#(foreach|evaluate|include|parse)\s*\(|\$class\.|\$\{?class\.inspect",
    ),
    (
        "java_reflection",
        Level::Low,
        r"java\.lang\.(runtime|processbuilder|system|class|reflect)|getruntime\s*\(\s*\)|\.getclass\s*\(\s*\)\.forname|javax\.script",
    ),
    ("brace_marker", Level::High, r"\{\{[^}]*\}\}|\{%|<%|\$\{[^}]*\}"),
];

/// Checks a normalised value for template injection.
pub(crate) fn ssti(v: &Views<'_>, level: Level) -> Option<Finding> {
    // Every rule needs one of these characters.
    if !v.has_any(b"{<#_@$?(.") {
        return None;
    }
    SSTI.first_folded(v, level)
}

pub(crate) static JNDI: LazyLock<RuleSet> = LazyLock::new(|| RuleSet::new(Category::Jndi, JNDI_RULES));

const JNDI_RULES: &[Rule] = &[
    ("jndi_lookup", Level::Low, r"\$\{\s*jndi\s*:"),
    (
        "jndi_protocol",
        Level::Low,
        r"jndi\s*:\s*(ldaps?|rmi|dns|iiop|corba|nds|nis|https?)\s*:",
    ),
    (
        "lookup_probe",
        Level::Low,
        r"\$\{\s*(env|sys|java|main|bundle|ctx|docker|k8s|spring|sd|web|jvmrunargs|log4j|marker|map|event|date|base64|lower|upper|::-)\s*:",
    ),
    ("nested_lookup", Level::Medium, r"\$\{[^}]*\$\{"),
];

/// Checks a normalised value for `${jndi:…}` and other lookups.
pub(crate) fn jndi(v: &Views<'_>, level: Level) -> Option<Finding> {
    // (The byte set rules most values out before either substring search.)
    let lookup = v.has_any(b"$") && v.folded.contains("${");
    let named = v.has_any(b"j") && v.folded.contains("jndi");
    if !lookup && !named {
        return None;
    }
    if let Some(f) = JNDI.first_folded(v, level) {
        return Some(f);
    }
    let resolved = resolve_lookups(&v.folded);
    if resolved.contains("${jndi:") || resolved.contains("jndi:ldap") || resolved.contains("jndi:rmi") {
        return found(Category::Jndi, "obfuscated_jndi");
    }
    None
}

/// Resolves innermost `${…}` lookups to their default or case-changed value,
/// at most 16 times.
fn resolve_lookups(s: &str) -> String {
    let mut out = s.to_owned();
    for _ in 0..16 {
        let Some(start) = innermost(&out) else { break };
        let Some(len) = out[start..].find('}') else { break };
        let inner = &out[start + 2..start + len];
        let value = if let Some(rest) = inner.strip_prefix("lower:").or_else(|| inner.strip_prefix("upper:")) {
            rest.to_owned()
        } else if let Some(pos) = inner.find(":-") {
            inner[pos + 2..].to_owned()
        } else if let Some(target) = inner.strip_prefix("jndi:") {
            // Keep the target visible; mark it resolved.
            format!("\u{1}jndi:{target}}}")
        } else {
            inner.to_owned()
        };
        out.replace_range(start..=start + len, &value);
    }
    out.replace('\u{1}', "${")
}

/// Start of the last `${` that has no `${` after it before its `}`.
fn innermost(s: &str) -> Option<usize> {
    let mut best = None;
    let mut from = 0;
    while let Some(pos) = s[from..].find("${") {
        let abs = from + pos;
        best = Some(abs);
        from = abs + 2;
    }
    best.filter(|b| s[*b..].contains('}'))
}

/// Compiles every rule set now, so the first request does not pay for it.
pub(crate) fn warm() {
    LazyLock::force(&SSTI);
    LazyLock::force(&JNDI);
}

#[cfg(test)]
pub(crate) fn compiled() -> bool {
    SSTI.compiled() && JNDI.compiled()
}

#[cfg(test)]
mod tests {
    use super::resolve_lookups;

    #[test]
    fn lookups_resolve_like_log4j() {
        assert_eq!(resolve_lookups("${${lower:j}ndi:ldap://x}"), "${jndi:ldap://x}");
        assert_eq!(
            resolve_lookups("${${::-j}${::-n}${::-d}${::-i}:rmi://x}"),
            "${jndi:rmi://x}"
        );
        assert_eq!(resolve_lookups("${j${k8s:k5:-nd}i:ldap://x}"), "${jndi:ldap://x}");
    }
}
