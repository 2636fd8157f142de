//! SQL injection: libinjection's tokenizer and fingerprints as one signal,
//! our own rules for the shapes that matter (breaking out of a string and
//! changing the query's logic, UNION, stacked statements, time and error
//! oracles) as the other.

use std::sync::LazyLock;

use crate::normalize::Views;
use crate::rules::{Rule, RuleSet, found};
use crate::{Category, Finding, LIBINJECTION_MAX, Level};

/// Matched against the SQL views (lower-case, comments out, spaces collapsed).
const PATTERNS: &[Rule] = &[
    (
        "union_select",
        Level::Low,
        r"\bunion(\s+(all|distinct|distinctrow))?\s*\(*\s*select\b",
    ),
    (
        "numeric_boolean",
        Level::Medium,
        r"^\s*-?\d+\s*\)*\s+(or|and|xor|\|\||&&)\s+(not\s+)?(true|false|[\w.]+\s+is\s+(not\s+)?null)\b",
    ),
    (
        "numeric_or_number",
        Level::High,
        r"^\s*-?\d+\s+(or|and|xor)\s+\d+\s*(--|#|;|$)",
    ),
    (
        "quote_tautology",
        Level::Low,
        r#"['"`]\s*\)*\s*(or|and|xor|\|\||&&)\s*\(*\s*(['"]?[\w.]*['"]?|\d+)\s*(=|<>|!=|<=|>=|<|>|\blike\b|\bis\b|\brlike\b|\bregexp\b)"#,
    ),
    (
        "quote_boolean",
        Level::Low,
        r#"['"`]\s*\)*\s*(or|and|xor|\|\||&&)\s+(not\s+)?((true|false|null|\d+)\s*($|--|#|;|\)|=|<|>)|[\w.]+\s*\()"#,
    ),
    (
        "quote_comment",
        Level::Low,
        r#"['"`]\s*\)*\s*(--[\s+-]*$|--[^\s-]\S*$|#\s*$|/\*)"#,
    ),
    (
        "quote_statement",
        Level::Low,
        r#"['"`\d]\s*\)*\s*;\s*(drop|delete|insert|update|select|exec|execute|shutdown|declare|create|alter|truncate|waitfor)\b"#,
    ),
    (
        "stacked_statement",
        Level::Low,
        r";\s*(drop\s+(table|database|schema|view|user|function|procedure)|delete\s+from|insert\s+into|update\s+[\w.`]+\s+set|truncate\s+table|alter\s+(table|user|database)|create\s+(table|user|database|function|procedure|trigger)|declare\s+@|exec(ute)?\s*(\(|xp_|sp_|master\.)|shutdown\b)",
    ),
    (
        "time_oracle",
        Level::Low,
        r#"(['"`)]|\b(and|or|xor|select|if|then|case|when)\b|\|\||&&|[;(,=])\s*(sleep|pg_sleep|benchmark)\s*\(|waitfor\s+(delay|time)\s+'|dbms_pipe\.receive_message|dbms_lock\.sleep"#,
    ),
    (
        "error_oracle",
        Level::Low,
        r"\b(extractvalue|updatexml|xmltype|geometrycollection|multipoint|multipolygon|utl_inaddr\.get_host_name|ctxsys\.drithsx\.sn)\s*\(|\bfloor\s*\(\s*rand\s*\(|\bexp\s*\(\s*~",
    ),
    (
        "catalog_probe",
        Level::Medium,
        r"\b(information_schema|sysobjects|syscolumns|pg_catalog|sqlite_master|mysql\.user|all_tables|xp_cmdshell|sp_executesql|load_file\s*\(|into\s+(out|dump)file)\b|@@(version|datadir|hostname)",
    ),
    (
        "blind_probe",
        Level::Low,
        r"\b(and|or|xor|&&|\|\|)\s+\(*\s*(ascii|substr|substring|mid|ord|length|hex|unicode|char|if|iif|case|exists)\s*\(|\(\s*select\s+[\w@(*]",
    ),
    (
        "numeric_tautology",
        Level::Medium,
        r"\b(or|and|xor)\s+(\d+)\s*(=|<>|!=|\blike\b)\s*\d+\b",
    ),
    (
        "order_probe",
        Level::Medium,
        r#"['"`\d)]\s*(order|group)\s+by\s+\d+\s*(--|#|;|$)"#,
    ),
    (
        "sql_keywords",
        Level::High,
        r#"['"`]\s*\)*\s*(select|union|having|where|order\s+by|group\s+by)\b|\bchar\s*\(\s*\d+\s*(,\s*\d+\s*)+\)|\bconcat(_ws)?\s*\(|0x[0-9a-f]{8,}"#,
    ),
];

pub(crate) static SET: LazyLock<RuleSet> = LazyLock::new(|| RuleSet::new(Category::Sqli, PATTERNS));

/// Compiles every rule set now, so the first request does not pay for it.
pub(crate) fn warm() {
    LazyLock::force(&SET);
    LazyLock::force(&SQL_CONTEXT);
    LazyLock::force(&SQL_WORDS);
}

/// Full check of a normalised value.
pub(crate) fn check(v: &Views<'_>, level: Level) -> Option<Finding> {
    // (When both SQL views are the folded one, the union has spoken for them.)
    if !(v.quiet && v.sql_is_folded()) {
        if let Some(f) = SET.first(v.sql(), level) {
            return Some(f);
        }
        if v.sql_joined() != v.sql()
            && let Some(f) = SET.first(v.sql_joined(), level)
        {
            return Some(f);
        }
    }
    libinjection(v.decoded.as_bytes(), v.sql(), level)
}

static SQL_CONTEXT: LazyLock<Option<crate::rules::Regex>> = LazyLock::new(|| {
    crate::rules::regex(
        r#"['"`)\d]\s*(\b(or|and|xor|not|union|select|like|rlike|regexp|having|limit|order|group|procedure|into|where|between|is|div|mod|sounds)\b|;|--|#|/\*|\|\||&&|[=<>])"#,
    )
});

/// libinjection's verdict on the first [`LIBINJECTION_MAX`] bytes.
fn libinjection(bytes: &[u8], sql_view: &str, level: Level) -> Option<Finding> {
    let bytes = &bytes[..bytes.len().min(LIBINJECTION_MAX)];
    // At the lowest level libinjection alone is not trusted: its fingerprints
    // flag some prose with quotes.
    if level == Level::Low {
        return None;
    }
    // libinjection's fingerprints also fit some code snippets, and it parses
    // each value several times over: it is asked only where a value takes an
    // SQL shape (a string, number or bracket closed and followed by an
    // operator or keyword) and speaks SQL, and its verdict confirms that.
    let matches = |re: &Option<crate::rules::Regex>| re.as_ref().is_some_and(|re| re.is_match(sql_view.as_bytes()));
    (matches(&SQL_CONTEXT) && matches(&SQL_WORDS)).then_some(())?;
    sqli_verdict(bytes).then_some(())?;
    found(Category::Sqli, "libinjection_sqli")
}

/// libinjection's SQLi verdict: `detect_sqli(bytes).is_injection()` without
/// its last step. `detect_sqli` tokenises the value once more after its
/// verdict, only to report the fingerprint (unused here): about half its
/// cost on a value that is not an injection.
fn sqli_verdict(bytes: &[u8]) -> bool {
    libinjectionrs::SqliState::new(bytes, libinjectionrs::SqliFlags::FLAG_NONE).detect()
}

static SQL_WORDS: LazyLock<Option<crate::rules::Regex>> = LazyLock::new(|| {
    crate::rules::regex(
        r"\b(select|union|insert|update|delete|drop|or|and|xor|not|sleep|benchmark|waitfor|exec|having|order|group|from|where|like|null|true|false)\b|--|#|/\*",
    )
});

#[cfg(test)]
pub(crate) fn compiled() -> bool {
    SET.compiled() && SQL_CONTEXT.is_some() && SQL_WORDS.is_some()
}

#[cfg(test)]
mod tests {
    /// The verdict without the fingerprint pass is `detect_sqli`'s, on
    /// injections (every quote context libinjection tries) and look-alikes.
    #[test]
    fn the_verdict_is_detect_sqli_s() {
        let values: &[&str] = &[
            "1' OR '1'='1",
            "1\" or \"1\"=\"1",
            "1 union select password from users--",
            "admin'--",
            "1; drop table users",
            "' union select null,null-- ",
            "1) or (1=1",
            "-1 or 1=1#",
            "1 or sleep(5)",
            "x' and extractvalue(1,concat(0x7e,version()))--",
            "Last order arrived 1 or 2 days late -- no big deal. Thanks <3",
            "Siobhán O'Brien",
            "select a plan from the menu",
            "Ring twice; if no answer leave with the neighbour at no. 16 (Mrs. D'Arcy).",
            "O'Reilly & Sons -- since 1999",
            "",
            "1",
            "'",
            "\"",
            "/*",
        ];
        let mut refused = 0;
        for v in values {
            let want = libinjectionrs::detect_sqli(v.as_bytes()).is_injection();
            assert_eq!(super::sqli_verdict(v.as_bytes()), want, "{v}");
            refused += usize::from(want);
        }
        // Both kinds are in the list.
        assert!(refused >= 8 && refused < values.len(), "{refused}");
    }
}
