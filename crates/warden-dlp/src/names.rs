//! What a JSON field's name says about its value.
//!
//! A name is split into words (`snake_case`, `kebab-case`, `camelCase`,
//! `dotted.names`) and lower-cased. A **secret field** holds a secret whatever
//! its value looks like: a word `password`, `passwd`, `passphrase`, `pwd`,
//! `secret`, `ssn`, `cvv`, `cvc`, `pin`, `otp` or `mfa`+`secret`; or the words
//! `api key`, `access token`, `refresh token`, `id token`, `auth token`,
//! `session token`, `private key`, `client secret`, `signing key`; or `hash`
//! and `salt` when the name is just that or also says `pass`/`pwd`
//! (`password_hash`, `pwdSalt`). `content_hash`, `sha256`, `etag` and
//! `next_page_token` are not secrets. A **key-like field** (`*key`, `*token`,
//! `*secret`, `credential*`, `signature`, `auth*`) gets the high-entropy check.

/// The name's words, lower case.
pub fn words(name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for ch in name.chars() {
        if !ch.is_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if ch.is_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = ch.is_lowercase() || ch.is_ascii_digit();
        cur.extend(ch.to_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

pub(crate) const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "pwd",
    "secret",
    "ssn",
    "cvv",
    "cvc",
    "cvv2",
    "pin",
    "otp",
];

pub(crate) const SECRET_PAIRS: &[(&str, &str)] = &[
    ("api", "key"),
    ("access", "token"),
    ("refresh", "token"),
    ("id", "token"),
    ("auth", "token"),
    ("session", "token"),
    ("bearer", "token"),
    ("private", "key"),
    ("client", "secret"),
    ("signing", "key"),
    ("secret", "key"),
];

/// True when the field's value is a secret by its name alone.
pub fn is_secret_field(name: &str) -> bool {
    // Every ASCII name these rules accept holds a telling fragment (a test
    // holds them to it): one automaton pass turns the rest (`content-type`,
    // `created_at`) down without splitting words. Non-ASCII names go through
    // the rules, whose lower-casing can map them onto ASCII words.
    if name.is_ascii() && !maybe_telling(name) {
        return false;
    }
    let w = words(name);
    let joined: String = w.concat();
    if w.iter().any(|x| SECRET_WORDS.contains(&x.as_str()))
        || matches!(
            joined.as_str(),
            "apikey" | "accesstoken" | "refreshtoken" | "privatekey" | "clientsecret"
        )
    {
        return true;
    }
    if w.windows(2)
        .any(|p| SECRET_PAIRS.contains(&(p[0].as_str(), p[1].as_str())))
    {
        return true;
    }
    let last = w.last().map(String::as_str);
    let about_password = joined.contains("pass") || joined.contains("pwd");
    matches!(last, Some("hash" | "salt")) && (w.len() == 1 || about_password)
}

/// True when a random-looking value in this field is likely a credential.
pub fn is_key_like(name: &str) -> bool {
    let w = words(name);
    let Some(last) = w.last().map(String::as_str) else {
        return false;
    };
    if w.iter()
        .any(|x| matches!(x.as_str(), "page" | "next" | "cursor" | "continuation" | "csrf"))
    {
        return false;
    }
    matches!(
        last,
        "key" | "token" | "secret" | "signature" | "credential" | "credentials"
    ) || w
        .first()
        .is_some_and(|f| matches!(f.as_str(), "auth" | "authorization" | "credential"))
}

/// True for a long (≥ 20), space-free, random-looking (Shannon entropy ≥ 3.5
/// bits per character, or ≥ 3.0 for hex) token.
pub fn high_entropy(value: &str) -> bool {
    let v = value.as_bytes();
    if !(20..=512).contains(&v.len())
        || !v
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'_' | b'-' | b'.'))
    {
        return false;
    }
    let mut counts = [0u32; 128];
    for &b in v {
        counts[usize::from(b)] += 1;
    }
    let n = v.len() as f64;
    let entropy: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum();
    let hex = v.iter().all(u8::is_ascii_hexdigit);
    let mixed = v.iter().any(u8::is_ascii_digit) && v.iter().any(u8::is_ascii_alphabetic);
    mixed && entropy >= if hex { 3.0 } else { 3.5 }
}

/// The fragments every secret or key-like name holds one of.
const FRAGMENTS: &[&str] = &[
    "pass",
    "pwd",
    "secret",
    "ssn",
    "cvv",
    "cvc",
    "pin",
    "otp",
    "key",
    "token",
    "hash",
    "salt",
    "signature",
    "credential",
    "auth",
];

static TELLING: std::sync::LazyLock<aho_corasick::AhoCorasick> = std::sync::LazyLock::new(|| {
    #[allow(clippy::expect_used)] // constant patterns, covered by every test
    aho_corasick::AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(FRAGMENTS)
        .expect("fragments compile")
});

/// False when `name` holds none of the fragments every secret or key-like
/// name has (`pass`, `pwd`, `secret`, `key`, `token`, …): one automaton pass,
/// no allocation.
pub fn maybe_telling(name: &str) -> bool {
    TELLING.is_match(name)
}
