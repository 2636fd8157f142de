//! Stack traces, framework error pages and database errors in a response
//! body: what an upstream should never show a client, whatever the status.
//!
//! Each stack is recognised by lines only its runtime writes (a Java
//! `at pkg.Class.method(File.java:42)` frame, Python's `Traceback (most recent
//! call last):`, a PHP `Fatal error: … on line`, a Go `goroutine 1 [running]:`),
//! never by a lone word like "Exception", so prose about errors passes.

use std::sync::LazyLock;

use regex::RegexSet;

const SIGNS: &[(&str, &str)] = &[
    (
        "java",
        r"(?:\b|\\[tn])at [A-Za-z0-9_$.<>]+\((?:[A-Za-z0-9_$]+\.(?:java|kt|scala|groovy):\d+|Native Method|Unknown Source)\)",
    ),
    (
        "java",
        r#"Exception in thread "[^"]*" [a-z][\w.]*\.[A-Z]\w*(?:Exception|Error)"#,
    ),
    (
        "java",
        r"\b(?:java|javax|jakarta)\.[a-z][\w.]*\.[A-Z]\w*(?:Exception|Error)\b(?::|\s+at\b|\\n)",
    ),
    (
        "java",
        r"<h1>Whitelabel Error Page</h1>|HTTP Status \d{3} . [\w ]+</h1>.*Apache Tomcat",
    ),
    ("python", r"Traceback \(most recent call last\):"),
    ("python", r#"File \\?"[^"\\]+\.py\\?", line \d+, in \w+"#),
    (
        "python",
        r"You're seeing this error because you have <code>DEBUG = True</code>|Werkzeug Debugger",
    ),
    ("dotnet", r"(?:\b|\\[tn])at [\w.`<>]+\([^)]*\) in [^\n]*:line \d+"),
    (
        "dotnet",
        r"Server Error in '[^']*' Application|--- End of (?:inner exception )?stack trace",
    ),
    ("dotnet", r"\bSystem\.[A-Z][\w.]*Exception: "),
    (
        "node",
        r"(?:\b|\\[tn])at (?:[\w.$<>\[\] ]+ )?\(?(?:/|[A-Za-z]:\\|node:|file://)[^()\s]*\.(?:js|mjs|cjs|ts):\d+:\d+\)?",
    ),
    (
        "node",
        r"\b(?:TypeError|ReferenceError|SyntaxError|RangeError): [^\n]*(?:\n|\\n)\s*at ",
    ),
    (
        "php",
        r"(?:Fatal error|Parse error|Warning|Notice|Deprecated)(?:</b>)?: .{0,400}? in (?:<b>)?/?[\w/.-]+\.php(?:</b>)? on line",
    ),
    (
        "php",
        r"Stack trace:\s*(?:\n|\\n|<br ?/?>)?\s*#0 |PHP (?:Fatal error|Warning|Notice|Parse error):",
    ),
    (
        "php",
        r"Whoops, looks like something went wrong|Symfony\\Component\\\w+\\Exception",
    ),
    (
        "go",
        r"goroutine \d+ \[(?:running|runnable|syscall|chan receive|select|IO wait)\]:",
    ),
    ("go", r"panic: [^\n]*(?:\n|\\n)\s*(?:\n|\\n)?goroutine \d+"),
    ("ruby", r"[\w/.-]+\.rb:\d+:in [`'][^'`]+'"),
    (
        "ruby",
        r"ActionController::RoutingError|ActiveRecord::\w+Error|NoMethodError \(undefined method",
    ),
    (
        "database",
        r"You have an error in your SQL syntax|check the manual that corresponds to your (?:MySQL|MariaDB) server version",
    ),
    (
        "database",
        r"\bORA-\d{5}\b|\bPG::\w+Error\b|\bSQLSTATE\[[0-9A-Z]{5}\]|\bPSQLException\b",
    ),
    (
        "database",
        r"ERROR: +syntax error at or near|Unclosed quotation mark after the character string",
    ),
    (
        "database",
        r"Microsoft OLE DB Provider for SQL Server|\bsqlite3\.OperationalError\b|SQLite3::SQLException",
    ),
    (
        "database",
        r"\bMongo(?:Server)?Error\b: |\bcom\.mysql\.jdbc\.|\bDatabaseError at /",
    ),
];

static SET: LazyLock<RegexSet> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // constant expressions, covered by every test
    RegexSet::new(SIGNS.iter().map(|(_, p)| *p)).expect("stack expressions compile")
});

/// The stack (`java`, `python`, `dotnet`, `node`, `php`, `go`, `ruby`,
/// `database`) whose trace or error page `text` holds, if any.
pub fn leak(text: &str) -> Option<&'static str> {
    SET.matches(text).iter().next().map(|i| SIGNS[i].0)
}
