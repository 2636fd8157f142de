//! OS command injection: a shell separator (`;`, `|`, `&`, a line break, a
//! back-tick, `$(`) followed by a command. Words that are also English
//! (`cat`, `id`, `sleep`, `ping`) count only with a shell-looking argument or
//! at the very end, so "dogs & cats" and "I'll sleep on it; or not" pass.
//! Shell quoting tricks (`c'a't`, `w\ho\ami`, `${IFS}`, `{cat,/etc/passwd}`)
//! are undone first.

use std::borrow::Cow;
use std::sync::LazyLock;

use crate::normalize::Views;
use crate::rules::{Rule, RuleSet};
use crate::{Category, Finding, Level};

/// Commands that are not words anyone writes in prose.
const STRONG: &str = "whoami|uname|ifconfig|ipconfig|netstat|nslookup|wget|ncat|netcat|powershell|pwsh|cmd\\.exe|systeminfo|tasklist|taskkill|certutil|bitsadmin|wmic|useradd|crontab|xterm|traceroute|tracert|getent|mkfifo|busybox|rundll32|regsvr32|mshta|cscript|wscript|socat|xxd|lsof";

/// Commands that are also words or names people write in prose.
const WEAK: &str = "cat|id|ls|dir|echo|sleep|type|find|head|tail|more|less|kill|ps|env|set|touch|ping|rm|pwd|date|time|who|net|reg|sc|cp|mv|ln|awk|sed|tar|zip|unzip|mail|wall|exec|eval|export|print|printf|start|timeout|curl|nc|bash|sh|zsh|ksh|dash|csh|cmd|python[23]?|perl|ruby|php|node|telnet|tftp|ssh|scp|sudo|su|chmod|chown|passwd|base64|gcc|nohup|hostname|nmap|ver";

/// An argument that only a shell would take: a flag, a path, a variable, a
/// number, an address, a URL, a quoted string, a redirection.
const SHELL_ARG: &str =
    r#"\s+([-/$~.'"\\<>|&;]|\d|https?:|ftp:|[a-z0-9-]+\.[a-z]{2,}\b|(user|localgroup|query|add|view|use)\b)"#;

pub(crate) static SET: LazyLock<RuleSet> = LazyLock::new(|| RuleSet::new(Category::Cmd, &RULES));

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    // After a separator rare in prose (not a lone `&`, not a line break).
    let sep = r"(;|\|\|?|&&|`|\$\()";
    let path = r"(/(usr/)?(local/)?s?bin/)?";
    vec![
        (
            "separator_command",
            Level::Low,
            leak(format!(r"{sep}\s*{path}({STRONG})(\s|$|[;|&<>`)]|\.exe\b)")),
        ),
        (
            "separator_word_command",
            Level::Low,
            leak(format!(r"{sep}\s*{path}({WEAK})({SHELL_ARG}|\s*$|\s*[`)])")),
        ),
        (
            "line_command",
            Level::Low,
            leak(format!(r"[\n\r]\s*{path}({STRONG}|{WEAK})({SHELL_ARG}|\s*$)")),
        ),
        (
            "ampersand_command",
            Level::Low,
            leak(format!(r"&\s*{path}({STRONG})(\s|$)|&\s*{path}({WEAK}){SHELL_ARG}")),
        ),
        (
            "reverse_shell",
            Level::Low,
            r"/dev/(tcp|udp)/|\bnc(at)?\s+(-\w+\s+)*-[a-z]*e\b|\bbash\s+-i\b|\bsh\s+-i\b|\bmkfifo\b|powershell(\.exe)?\s+-(enc|encodedcommand|e|nop|noprofile|w|windowstyle|c|command|exec)\b|\bcmd(\.exe)?\s*/[ck]\b|certutil(\.exe)?\s+-urlcache|/bin/(ba|z|k|c|da)?sh\b",
        ),
        ("glob_path", Level::Low, leak(format!(r"{sep}\s*/[\w?*]*[?*][\w?*]*/"))),
        (
            "shell_redirect",
            Level::Medium,
            r">\s*/(tmp|var|etc|dev|root|home)/|<\s*/etc/",
        ),
        (
            "start_command",
            Level::High,
            leak(format!(r"^\s*{path}({STRONG}|{WEAK}){SHELL_ARG}")),
        ),
    ]
});

/// Undoes shell quoting tricks: `${IFS}`/`$IFS` become spaces, quotes and
/// back-slashes inside words and brace lists disappear.
fn unquote(folded: &str) -> String {
    let s = if folded.contains("$ifs") || folded.contains("${ifs}") {
        Cow::Owned(
            folded
                .replace("${ifs}", " ")
                .replace("$ifs$9", " ")
                .replace("$ifs", " "),
        )
    } else {
        Cow::Borrowed(folded)
    };
    let b = s.as_bytes();
    // Found once, so the pass stays linear in the value's length.
    let first_open = b.iter().position(|&c| c == b'{').unwrap_or(usize::MAX);
    let first_lookup = s.find("${").unwrap_or(usize::MAX);
    let last_close = b.iter().rposition(|&c| c == b'}');
    // Every byte it drops or replaces is ASCII, so the text between them is
    // copied whole (a character never straddles them).
    let mut out = String::with_capacity(s.len());
    let mut from = 0;
    for (i, &c) in b.iter().enumerate() {
        if !matches!(c, b'\'' | b'"' | b'\\' | b'^' | b'{' | b',' | b'}') {
            continue;
        }
        let prev_word = i > 0 && b[i - 1].is_ascii_alphanumeric();
        let next_word = b.get(i + 1).is_some_and(|n| n.is_ascii_alphanumeric() || *n == b'/');
        let with = match c {
            b'\'' | b'"' | b'\\' | b'^' if prev_word && next_word => "",
            b'{' if next_word => " ",
            b',' if prev_word && last_close.is_some_and(|c| c > i) && first_open < i => " ",
            b'}' if prev_word && first_open < i && first_lookup.saturating_add(2) > i => "",
            _ => continue,
        };
        out.push_str(&s[from..i]);
        out.push_str(with);
        from = i + 1;
    }
    out.push_str(&s[from..]);
    out
}

/// Checks a normalised value.
pub(crate) fn check(v: &Views<'_>, level: Level) -> Option<Finding> {
    // Separators, redirections, paths and flags: every rule below `high`
    // needs one of them (a lone `mkfifo` word is not an attack).
    if level < Level::High && !v.has_any(b";|&`$\n\r<>/-") {
        return None;
    }
    if let Some(f) = SET.first_folded(v, level) {
        return Some(f);
    }
    // Only a value with quoting characters can hide a command behind them.
    if !v.has_any(b"'\"\\^{$") {
        return None;
    }
    let unquoted = unquote(&v.folded);
    if unquoted != v.folded {
        SET.first(&unquoted, level)
    } else {
        None
    }
}

/// Compiles every rule set now, so the first request does not pay for it.
pub(crate) fn warm() {
    LazyLock::force(&SET);
}

#[cfg(test)]
pub(crate) fn compiled() -> bool {
    SET.compiled()
}

#[cfg(test)]
mod tests {
    /// The character-by-character `unquote` the byte version replaced.
    fn unquote_by_char(folded: &str) -> String {
        let s = if folded.contains("$ifs") || folded.contains("${ifs}") {
            folded
                .replace("${ifs}", " ")
                .replace("$ifs$9", " ")
                .replace("$ifs", " ")
        } else {
            folded.to_owned()
        };
        let mut out = String::with_capacity(s.len());
        let b = s.as_bytes();
        let first_open = s.find('{').unwrap_or(usize::MAX);
        let first_lookup = s.find("${").unwrap_or(usize::MAX);
        let last_close = s.rfind('}');
        for (i, c) in s.char_indices() {
            let prev_word = i > 0 && b[i - 1].is_ascii_alphanumeric();
            let next_word = b
                .get(i + c.len_utf8())
                .is_some_and(|n| n.is_ascii_alphanumeric() || *n == b'/');
            match c {
                '\'' | '"' | '\\' | '^' if prev_word && next_word => {}
                '{' if next_word => out.push(' '),
                ',' if prev_word && last_close.is_some_and(|c| c > i) && first_open < i => out.push(' '),
                '}' if prev_word && first_open < i && first_lookup.saturating_add(2) > i => {}
                _ => out.push(c),
            }
        }
        out
    }

    #[test]
    fn unquoting_byte_by_byte_gives_what_unquoting_by_character_gave() {
        let alphabet = [
            "a", "1", "'", "\"", "\\", "^", "{", "}", ",", "/", "$", "é", " ", "ifs", "名",
        ];
        let mut texts = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = texts
                .iter()
                .filter(|t| t.chars().count() >= texts.last().map_or(0, |l| l.chars().count()))
                .flat_map(|t| alphabet.iter().map(move |a| format!("{t}{a}")))
                .collect();
            texts.extend(longer);
        }
        assert!(texts.len() > 50_000);
        for t in
            texts
                .iter()
                .map(String::as_str)
                .chain(["c'a't /e't'c/p'a's's'w'd", "{cat,/etc/passwd}", "${ifs}x$ifs$9y"])
        {
            assert_eq!(super::unquote(t), unquote_by_char(t), "{t:?}");
        }
    }
}
