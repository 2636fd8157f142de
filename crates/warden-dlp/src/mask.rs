//! Turning findings into an edited body, and scrubbing log lines.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

use crate::{Categories, Category, find};

/// What to do with a sensitive value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Replace every letter and digit but the last `keep` with `*`,
    /// separators kept (`**** **** **** 1111`).
    Mask {
        /// Letters and digits left visible at the end.
        keep: usize,
    },
    /// Replace the whole value with `[REDACTED]`.
    Redact,
}

/// One replacement in a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// The bytes replaced.
    pub range: std::ops::Range<usize>,
    /// What replaces them.
    pub with: String,
}

impl Action {
    /// The replacement for `value`; quoted when `bare` (a JSON number or
    /// literal turned into a string, so the document stays valid).
    pub fn replacement(self, value: &str, bare: bool) -> String {
        let text = match self {
            Self::Redact => "[REDACTED]".to_owned(),
            Self::Mask { keep } => {
                let total = value.chars().filter(|c| c.is_alphanumeric()).count();
                // Never more than half shown: `"pin":"1234"` keeps 2, not 4.
                let keep = keep.min(total / 2);
                let mut seen = 0;
                value
                    .chars()
                    .map(|c| {
                        if !c.is_alphanumeric() {
                            return c;
                        }
                        seen += 1;
                        if seen + keep > total { c } else { '*' }
                    })
                    .collect()
            }
        };
        if bare { format!("\"{text}\"") } else { text }
    }
}

/// `text` with the edits applied (edits in order, not overlapping).
pub fn apply(text: &str, edits: &[Edit]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for e in edits {
        if e.range.start < at || e.range.end > text.len() {
            continue;
        }
        out.push_str(&text[at..e.range.start]);
        out.push_str(&e.with);
        at = e.range.end;
    }
    out.push_str(&text[at..]);
    out
}

/// What log lines are scrubbed of: payment and identity numbers and every
/// kind of secret. E-mail addresses and phone numbers stay (logs name
/// consumers by them; documented).
pub const LOG_CATEGORIES: [Category; 7] = [
    Category::Card,
    Category::Iban,
    Category::NationalId,
    Category::CloudKey,
    Category::Token,
    Category::Jwt,
    Category::PrivateKey,
];

/// Credentials that only their context gives away, in log text: the value
/// after `password=`, `"api_key": "`, `Authorization: Bearer`, `Cookie:`;
/// the password in `scheme://user:password@host`. Group 1 is the secret.
static LOG_CREDENTIALS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        r#"(?i)\b(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?token|refresh[_-]?token|client[_-]?secret|session[_-]?id|authorization|cookie)["']?\s*[:=]\s*["']?(?:bearer\s+|basic\s+)?([^\s"'&,;]{3,})"#,
        r"://[^/\s:@]+:([^/\s@]+)@",
        r"(?i)\bbearer\s+([A-Za-z0-9._~+/=-]{12,})",
    ]
    .iter()
    .map(|p| {
        #[allow(clippy::expect_used)] // constant expressions, covered by the tests
        Regex::new(p).expect("log credential expressions compile")
    })
    .collect()
});

/// `line` with every value of [`LOG_CATEGORIES`] replaced by
/// `[REDACTED:category]`, and every credential its context gives away
/// (`password=…`, `Authorization: Bearer …`, `user:pass@`) by
/// `[REDACTED:credential]`; borrowed when there was nothing to scrub.
pub fn redact_log(line: &str) -> Cow<'_, str> {
    let cats: Categories = LOG_CATEGORIES.into_iter().collect();
    let mut edits: Vec<Edit> = find(line, cats)
        .into_iter()
        .map(|f| Edit {
            with: format!("[REDACTED:{}]", f.category.name()),
            range: f.range,
        })
        .collect();
    for re in LOG_CREDENTIALS.iter() {
        for c in re.captures_iter(line) {
            if let Some(m) = c.get(1) {
                edits.push(Edit {
                    with: "[REDACTED:credential]".into(),
                    range: m.range(),
                });
            }
        }
    }
    if edits.is_empty() {
        return Cow::Borrowed(line);
    }
    // In order; an edit inside an earlier (or longer) one goes.
    edits.sort_by_key(|e| (e.range.start, std::cmp::Reverse(e.range.end)));
    let mut kept: Vec<Edit> = Vec::with_capacity(edits.len());
    for e in edits {
        if kept.last().is_none_or(|last| e.range.start >= last.range.end) {
            kept.push(e);
        }
    }
    Cow::Owned(apply(line, &kept))
}

/// An `io::Write` that scrubs what it is given with [`redact_log`] before
/// passing it on: text is held until a newline (or a flush, or the end), so a
/// secret split across two writes is still seen whole. For log sinks (one
/// writer per line, as `tracing-subscriber` makes them).
pub struct RedactingWriter<W: std::io::Write> {
    inner: W,
    pending: Vec<u8>,
}

impl<W: std::io::Write> RedactingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            pending: Vec::new(),
        }
    }

    fn pass_on(&mut self, upto: usize) -> std::io::Result<()> {
        let chunk: Vec<u8> = self.pending.drain(..upto).collect();
        let text = String::from_utf8_lossy(&chunk);
        self.inner.write_all(redact_log(&text).as_bytes())
    }
}

impl<W: std::io::Write> std::io::Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if let Some(last) = self.pending.iter().rposition(|b| *b == b'\n') {
            self.pass_on(last + 1)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.pending.is_empty() {
            self.pass_on(self.pending.len())?;
        }
        self.inner.flush()
    }
}

impl<W: std::io::Write> Drop for RedactingWriter<W> {
    fn drop(&mut self) {
        let _ = std::io::Write::flush(self);
    }
}
