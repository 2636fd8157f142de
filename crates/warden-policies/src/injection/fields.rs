//! Where values come from: locations, exceptions, URL-ness, and the
//! decoders for query strings, cookies, form bodies and JSON bodies.

use std::borrow::Cow;
use std::fmt::Write as _;

use warden_waf::Categories;

use super::Place;

/// Headers never scanned: structured values the gateway or the HTTP stack
/// parses strictly, credentials (base64 or tokens), and the `Cookie` header
/// (scanned cookie by cookie).
pub(crate) const SKIPPED_HEADERS: &[&str] = &[
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "authorization",
    "proxy-authorization",
    "cache-control",
    "connection",
    "content-length",
    "content-type",
    "content-encoding",
    "cookie",
    "host",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "if-range",
    "pragma",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-extensions",
    "sec-websocket-protocol",
    "sec-websocket-accept",
    "traceparent",
    "tracestate",
    "x-request-id",
    "dpop",
];

/// The name fragments that mark a field as a URL (SSRF checks apply) and
/// start with `pair` (two lower-case letters): `url`, `uri`, `href`, `link`,
/// `callback`, `webhook`, `redirect`, `endpoint`, `feed`, `proxy`, `src`,
/// `dest`.
const fn url_fragments(pair: [u8; 2]) -> &'static [&'static [u8]] {
    match &pair {
        b"ur" => &[b"url", b"uri"],
        b"hr" => &[b"href"],
        b"li" => &[b"link"],
        b"ca" => &[b"callback"],
        b"we" => &[b"webhook"],
        b"re" => &[b"redirect"],
        b"en" => &[b"endpoint"],
        b"fe" => &[b"feed"],
        b"pr" => &[b"proxy"],
        b"sr" => &[b"src"],
        b"de" => &[b"dest"],
        _ => &[],
    }
}

/// True when a field called `name` holds a URL: a fragment (see
/// [`url_fragments`]) anywhere in it, ASCII case-insensitively, or a name
/// the route lists. Called for every JSON leaf, so each position costs two
/// table lookups (is this byte, then the next, the start of a fragment); a
/// fragment is compared only where they are.
pub(crate) fn url_like(name: &str, extra: &[String]) -> bool {
    let b = name.as_bytes();
    let hit = b.windows(2).enumerate().any(|(i, w)| {
        PAIR_NEXT[usize::from(w[0])] & LETTER[usize::from(w[1])] != 0
            && url_fragments([w[0] | 0x20, w[1] | 0x20])
                .iter()
                .any(|f| b[i..].get(..f.len()).is_some_and(|s| s.eq_ignore_ascii_case(f)))
    });
    hit || extra.iter().any(|e| e.eq_ignore_ascii_case(name))
}

/// Per byte, its letter's bit (`a` lowest, either case); 0 for non-letters.
static LETTER: [u32; 256] = {
    let mut t = [0; 256];
    let mut c = 0;
    while c < 26 {
        t[b'a' as usize + c] = 1 << c;
        t[b'A' as usize + c] = 1 << c;
        c += 1;
    }
    t
};

/// Per byte (either case), the letters that follow it at the start of a
/// fragment, as [`LETTER`] bits: read off [`url_fragments`] itself.
static PAIR_NEXT: [u32; 256] = {
    let mut t = [0; 256];
    let mut a = 0;
    while a < 26 {
        let mut b = 0;
        while b < 26 {
            if !url_fragments([b'a' + a, b'a' + b]).is_empty() {
                t[(b'a' + a) as usize] |= 1 << b;
                t[(b'A' + a) as usize] |= 1 << b;
            }
            b += 1;
        }
        a += 1;
    }
    t
};

/// One step of a JSON location: a key (borrowed from the body unless it
/// held an escape) or an array index.
#[derive(Debug, Clone)]
pub(crate) enum Seg<'a> {
    Key(Cow<'a, str>),
    Index(usize),
}

/// Where a value sits, for the refusal's detail and for exceptions.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Location<'a> {
    Path(usize),
    Query(&'a str),
    Header(&'a str),
    Cookie(&'a str),
    /// A body location: a form field (one key) or a JSON pointer.
    Body(&'a [Seg<'a>]),
}

impl Location<'_> {
    /// The location as a pointer (`/query/q`, `/body/items/2`); names that are
    /// not plain are shown as `*` so the detail never carries attacker text.
    pub(crate) fn pointer(&self) -> String {
        let mut out = String::new();
        match self {
            Self::Path(i) => {
                let _ = write!(out, "/path/{i}");
            }
            Self::Query(n) => push(&mut out, "/query/", n),
            Self::Header(n) => push(&mut out, "/header/", n),
            Self::Cookie(n) => push(&mut out, "/cookie/", n),
            Self::Body(segs) => {
                out.push_str("/body");
                for s in *segs {
                    match s {
                        Seg::Key(k) => push(&mut out, "/", k),
                        Seg::Index(i) => {
                            let _ = write!(out, "/{i}");
                        }
                    }
                }
            }
        }
        out
    }

    fn place(&self) -> Place {
        match self {
            Self::Path(_) => Place::Path,
            Self::Query(_) => Place::Query,
            Self::Header(_) => Place::Headers,
            Self::Cookie(_) => Place::Cookies,
            Self::Body(_) => Place::Body,
        }
    }
}

fn push(out: &mut String, prefix: &str, name: &str) {
    out.push_str(prefix);
    out.push_str(crate::json_limits::shown(name));
}

/// A compiled `exceptions[]` entry.
#[derive(Debug, Clone)]
pub(crate) struct Exception {
    place: Place,
    /// Name, or pointer segments for the body.
    name: String,
    segments: Vec<String>,
    categories: Categories,
}

impl Exception {
    pub(crate) fn new(place: Place, name: &str, categories: Categories) -> Self {
        let segments = name.trim_start_matches('/').split('/').map(str::to_owned).collect();
        let name = if place == Place::Headers {
            name.to_ascii_lowercase()
        } else {
            name.to_owned()
        };
        Self {
            place,
            name,
            segments,
            categories,
        }
    }

    fn matches(&self, loc: &Location<'_>) -> bool {
        if self.place != loc.place() {
            return false;
        }
        match loc {
            Location::Path(i) => self.name.parse() == Ok(*i),
            Location::Query(n) | Location::Cookie(n) => self.name == *n,
            Location::Header(n) => self.name.eq_ignore_ascii_case(n),
            Location::Body(segs) => {
                segs.len() == self.segments.len()
                    && segs.iter().zip(&self.segments).all(|(s, want)| {
                        want == "*"
                            || match s {
                                Seg::Key(k) => k.as_ref() == want.as_str(),
                                Seg::Index(i) => want.parse() == Ok(*i),
                            }
                    })
            }
        }
    }
}

/// The categories checked at `loc`, once exceptions are taken off.
pub(crate) fn checked_at(exceptions: &[Exception], loc: &Location<'_>) -> Categories {
    exceptions
        .iter()
        .filter(|e| e.matches(loc))
        .fold(Categories::ALL, |acc, e| acc.without(e.categories))
}

/// `a=b&c=d` pairs, percent-decoded (`+` is a space), invalid escapes and
/// bytes kept as they are so nothing hides behind a decoding error.
pub(crate) fn pairs(s: &str) -> impl Iterator<Item = (String, String)> + '_ {
    s.split('&').filter(|kv| !kv.is_empty()).map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (decode_lossy(k), decode_lossy(v))
    })
}

pub(crate) use warden_openapi::percent_decode_lossy as decode_lossy;

/// The decoded `user:password` of a `Basic` `Authorization` header.
pub(crate) fn basic_credentials(name: &str, value: &str) -> Option<String> {
    use base64::Engine as _;
    if name != "authorization" && name != "proxy-authorization" {
        return None;
    }
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(token.trim()).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// `name=value` pairs of a `Cookie` header; quotes around a value dropped.
pub(crate) fn cookies(header: &str) -> impl Iterator<Item = (&str, &str)> {
    header.split(';').filter_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        Some((k.trim(), v.trim().trim_matches('"')))
    })
}

/// The name that decides URL-ness for a JSON location: the nearest key.
pub(crate) fn nearest_key<'p>(path: &'p [Seg<'_>]) -> &'p str {
    path.iter()
        .rev()
        .find_map(|s| match s {
            Seg::Key(k) => Some(k.as_ref()),
            Seg::Index(_) => None,
        })
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::{LETTER, PAIR_NEXT, url_fragments, url_like};

    /// The two-letter prefilter passes every fragment the table holds: each
    /// fragment, on its own and in capitals, names a URL field; and the pair
    /// table opens on exactly the pairs that start a fragment, in any case.
    #[test]
    fn every_fragment_of_the_table_gets_past_the_pair_table() {
        let mut seen = 0;
        for a in b'a'..=b'z' {
            for b in b'a'..=b'z' {
                let starts = !url_fragments([a, b]).is_empty();
                for (x, y) in [(a, b), (a - 0x20, b), (a, b - 0x20), (a - 0x20, b - 0x20)] {
                    assert_eq!(
                        PAIR_NEXT[usize::from(x)] & LETTER[usize::from(y)] != 0,
                        starts,
                        "{a} {b}"
                    );
                }
                for f in url_fragments([a, b]) {
                    assert_eq!(&f[..2], &[a, b]);
                    let f = std::str::from_utf8(f).unwrap_or_default();
                    assert!(url_like(f, &[]) && url_like(&f.to_ascii_uppercase(), &[]), "{f}");
                    seen += 1;
                }
            }
        }
        assert_eq!(seen, 12);
    }
}
