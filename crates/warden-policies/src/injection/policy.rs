//! `Injection`: what is scanned, and what a finding does.

use bytes::Bytes;
use http::request;
use warden_core::event::{self, EventKind};
use warden_core::{Decision, Policy, PolicyError, ProblemKind, Rejection, RequestCtx};
use warden_waf::{Categories, Category, Field, Finding, Scanner};

use super::fields::{self, Exception, Location, SKIPPED_HEADERS, Seg};
use super::stream;
use super::{Mode, Place};
use crate::json::{is_json, media_type};

/// Compiled `injection`.
#[derive(Debug, Clone)]
pub struct Injection {
    pub(crate) scanner: Scanner,
    pub(crate) mode: Mode,
    pub(crate) places: Vec<Place>,
    pub(crate) headers: Option<Vec<String>>,
    pub(crate) skip_headers: Vec<String>,
    pub(crate) url_fields: Vec<String>,
    pub(crate) exceptions: Vec<Exception>,
    pub(crate) unscannable: UnscannableAction,
}

/// A finding and where it was.
#[derive(Debug)]
pub(crate) struct Hit {
    pub finding: Finding,
    pub location: String,
}

impl Injection {
    pub(super) fn scans(&self, place: Place) -> bool {
        self.places.contains(&place)
    }

    /// Scans one value at `loc`.
    fn value(&self, value: &str, loc: Location<'_>, field: Field) -> Option<Hit> {
        self.value_in(value, loc, field, Categories::ALL)
    }

    /// Scans one value at `loc` for the categories in `only`.
    fn value_in(&self, value: &str, loc: Location<'_>, field: Field, only: Categories) -> Option<Hit> {
        let only = if self.exceptions.is_empty() {
            only
        } else {
            fields::checked_at(&self.exceptions, &loc).intersect(only)
        };
        let finding = self.scanner.scan_only(value, field, only)?;
        Some(Hit {
            finding,
            location: loc.pointer(),
        })
    }

    fn named(&self, name: &str) -> Field {
        Field {
            url_like: fields::url_like(name, &self.url_fields),
            ..Field::default()
        }
    }

    /// Scans the request head: path, query, headers, cookies.
    pub(crate) fn scan_head(&self, req: &request::Parts, path: &str) -> Option<Hit> {
        if self.scans(Place::Path) {
            let hit = path
                .split('/')
                .filter(|s| !s.is_empty())
                .enumerate()
                .find_map(|(i, seg)| self.value(seg, Location::Path(i), Field::default()));
            if hit.is_some() {
                return hit;
            }
        }
        if self.scans(Place::Query)
            && let Some(q) = req.uri.query()
        {
            for (k, v) in fields::pairs(q) {
                if let Some(hit) = self.name(&k, Location::Query(&k)) {
                    return Some(hit);
                }
                if let Some(hit) = self.value(&v, Location::Query(&k), self.named(&k)) {
                    return Some(hit);
                }
            }
        }
        if self.scans(Place::Headers) {
            for (name, value) in &req.headers {
                let name = name.as_str();
                let text = String::from_utf8_lossy(value.as_bytes());
                let field = Field {
                    in_header: true,
                    ..self.named(name)
                };
                let loc = Location::Header(name);
                let hit = if self.header_scanned(name) {
                    self.value(&text, loc, field)
                } else {
                    // Structured headers still reach loggers (Log4Shell came
                    // in all kinds of headers) and response builders.
                    let lookups = Categories::NONE.with(Category::Jndi).with(Category::Crlf);
                    let basic = fields::basic_credentials(name, &text);
                    self.value_in(&text, loc, field, lookups)
                        .or_else(|| basic.and_then(|creds| self.value_in(&creds, loc, field, lookups)))
                };
                if hit.is_some() {
                    return hit;
                }
            }
        }
        if self.scans(Place::Cookies) {
            for value in req.headers.get_all(http::header::COOKIE) {
                let text = String::from_utf8_lossy(value.as_bytes());
                for (k, v) in fields::cookies(&text) {
                    let hit = self.name(k, Location::Cookie(k));
                    if let Some(hit) = hit.or_else(|| self.value(v, Location::Cookie(k), self.named(k))) {
                        return Some(hit);
                    }
                }
            }
        }
        None
    }

    fn header_scanned(&self, name: &str) -> bool {
        match &self.headers {
            Some(only) => only.iter().any(|h| h == name),
            None => {
                !SKIPPED_HEADERS.contains(&name)
                    && !name.starts_with("sec-ch-")
                    && !name.starts_with("sec-fetch-")
                    && !self.skip_headers.iter().any(|h| h == name)
            }
        }
    }

    /// Scans a buffered body by its media type.
    pub(crate) fn scan_body(&self, req: &request::Parts, body: &Bytes) -> Result<Option<Hit>, Unscannable> {
        if body.is_empty() || !self.scans(Place::Body) {
            return Ok(None);
        }
        if encoded(req) {
            return Err(Unscannable::Encoded);
        }
        if !utf8_charset(req) {
            return Err(Unscannable::Charset);
        }
        let media = media_type(req);
        if is_json(&media) {
            return self.json(body).map_err(|()| Unscannable::BadJson);
        }
        let text = String::from_utf8_lossy(body);
        if media == "application/x-www-form-urlencoded" {
            return Ok(fields::pairs(&text).find_map(|(k, v)| {
                let seg = [Seg::Key(std::borrow::Cow::Borrowed(&k))];
                self.name(&k, Location::Body(&seg))
                    .or_else(|| self.value(&v, Location::Body(&seg), self.named(&k)))
            }));
        }
        if media.ends_with("/xml") || media.ends_with("+xml") {
            if !xml_utf8(&text) {
                return Err(Unscannable::Charset);
            }
            let only = Categories::NONE.with(Category::Xxe);
            let finding = self.scanner.scan_only(&text, Field::default(), only);
            return Ok(finding.map(|finding| Hit {
                finding,
                location: "/body".into(),
            }));
        }
        // No type, or plain text: many frameworks parse such bodies as JSON
        // anyway, so a body that parses is walked as JSON; otherwise the whole
        // body is one value.
        if media.is_empty() || media.starts_with("text/") {
            if let Ok(hit) = self.json(body) {
                return Ok(hit);
            }
            return Ok(self.value(&text, Location::Body(&[]), Field::default()));
        }
        Err(Unscannable::MediaType)
    }

    /// Walks a JSON body in one pass; `Err` when it is not strict JSON.
    fn json(&self, body: &[u8]) -> Result<Option<Hit>, ()> {
        stream::walk(body, &mut self.visitor())
    }

    /// What the JSON walk does with each key and string leaf.
    pub(super) fn visitor(&self) -> impl for<'s> FnMut(&str, bool, &[Seg<'s>]) -> Option<Hit> + '_ {
        |s, is_key, segs| {
            if is_key {
                self.name(s, Location::Body(segs))
            } else {
                self.value(s, Location::Body(segs), self.named(fields::nearest_key(segs)))
            }
        }
    }

    /// A parameter, field, cookie or key name: operators (`user[$ne]`) and,
    /// when it is not a plain word, every other category.
    /// (A plain word, most names, holds no `$` and fits no other category:
    /// it is cleared by one pass over its bytes.)
    fn name(&self, name: &str, loc: Location<'_>) -> Option<Hit> {
        if name.bytes().all(|b| NAME_BYTE[usize::from(b)]) {
            return None;
        }
        let key = Field {
            is_key: true,
            ..Field::default()
        };
        self.value(name, loc, key)
            .or_else(|| self.value(name, loc, Field::default()))
    }

    /// Emits the event and decides.
    fn decide(&self, hit: Hit, ctx: &RequestCtx) -> Decision {
        let detail = format!(
            "{} ({}) at {}",
            hit.finding.category.name(),
            hit.finding.rule,
            hit.location
        );
        let subject = ctx.client_ip.to_string();
        event::emit(EventKind::Injection, &ctx.request_id, &subject, &detail);
        match self.mode {
            Mode::Report => Decision::Continue,
            Mode::Enforce => Decision::Reject(
                Rejection::new(ProblemKind::Forbidden, "injection_detected", detail).with_detail(format!(
                    "the request was refused: possible {} injection in {}",
                    hit.finding.category.name(),
                    hit.location
                )),
            ),
        }
    }
}

/// The bytes of a plain name: ASCII letters and digits, `_`, `-` and `.`
/// (one table look-up per byte: this runs for every key of every body).
static NAME_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.');
        b += 1;
    }
    t
};

impl Policy for Injection {
    fn name(&self) -> &'static str {
        "injection"
    }

    fn needs_request_body(&self) -> bool {
        self.scans(Place::Body)
    }

    async fn on_request(&self, req: &mut request::Parts, ctx: &mut RequestCtx) -> Result<Decision, PolicyError> {
        Ok(match self.scan_head(req, &ctx.path) {
            Some(hit) => self.decide(hit, ctx),
            None => Decision::Continue,
        })
    }

    async fn on_request_body(
        &self,
        req: &request::Parts,
        body: &Bytes,
        ctx: &mut RequestCtx,
    ) -> Result<Decision, PolicyError> {
        // The contract may have scanned the body for this policy while it
        // parsed it (`along.rs`).
        let scanned = match self.scanned_along(body, ctx) {
            Some(outcome) => outcome.map_err(|()| Unscannable::BadJson),
            None => self.scan_body(req, body),
        };
        Ok(match scanned {
            Ok(Some(hit)) => self.decide(hit, ctx),
            Ok(None) => Decision::Continue,
            Err(_) if self.mode == Mode::Report || self.unscannable == UnscannableAction::Allow => Decision::Continue,
            Err(Unscannable::BadJson) => Decision::Reject(
                Rejection::new(
                    ProblemKind::BadRequest,
                    "invalid_json",
                    "JSON body does not parse and cannot be scanned",
                )
                .with_detail("the request body is not valid JSON"),
            ),
            Err(why) => Decision::Reject(
                Rejection::new(ProblemKind::UnsupportedMediaType, "unscannable_body", why.reason())
                    .with_detail(why.reason()),
            ),
        })
    }
}

/// A `Content-Encoding` other than `identity`: a compressed body would be
/// scanned as noise, and some frameworks inflate it before parsing.
pub(super) fn encoded(req: &request::Parts) -> bool {
    req.headers.get_all(http::header::CONTENT_ENCODING).iter().any(|v| {
        !v.to_str()
            .is_ok_and(|v| v.split(',').all(|c| c.trim().eq_ignore_ascii_case("identity")))
    })
}

/// Why a body could not be scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unscannable {
    /// A JSON body that does not parse.
    BadJson,
    /// `Content-Encoding` other than `identity`.
    Encoded,
    /// A charset (or XML encoding) other than UTF-8.
    Charset,
    /// A media type the policy cannot read (multipart, binary, …).
    MediaType,
}

impl Unscannable {
    fn reason(self) -> &'static str {
        match self {
            Self::BadJson => "the request body is not valid JSON",
            Self::Encoded => "a compressed request body cannot be inspected",
            Self::Charset => "only UTF-8 request bodies can be inspected",
            Self::MediaType => "the request body's media type cannot be inspected on this route",
        }
    }
}

/// What to do with a body the policy cannot read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnscannableAction {
    /// Refuse it: 415 (400 for JSON that does not parse). The default.
    #[default]
    Refuse,
    /// Let it through unscanned.
    Allow,
}

/// True when the `Content-Type` names no charset, or UTF-8 / US-ASCII.
pub(super) fn utf8_charset(req: &request::Parts) -> bool {
    let Some(ct) = req
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return true;
    };
    ct.split(';').skip(1).all(|param| match param.trim().split_once('=') {
        Some((k, v)) if k.trim().eq_ignore_ascii_case("charset") => {
            let v = v.trim().trim_matches('"');
            v.eq_ignore_ascii_case("utf-8") || v.eq_ignore_ascii_case("utf8") || v.eq_ignore_ascii_case("us-ascii")
        }
        _ => true,
    })
}

/// True when an XML document declares no encoding, or UTF-8 / US-ASCII (a
/// UTF-7 or EBCDIC document would be read differently by the upstream).
fn xml_utf8(text: &str) -> bool {
    let head = text.trim_start_matches('\u{feff}');
    let Some(decl) = head.strip_prefix("<?xml").and_then(|d| d.split("?>").next()) else {
        return true;
    };
    let lower = decl.to_ascii_lowercase();
    let Some(at) = lower.find("encoding") else { return true };
    let value = lower[at + 8..].trim_start().trim_start_matches('=').trim_start();
    let value = value.trim_start_matches(['"', '\'']);
    value.starts_with("utf-8") || value.starts_with("us-ascii")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_plain_name_table_is_letters_digits_underscore_dash_dot() {
        for b in 0..=255u8 {
            let want = b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.');
            assert_eq!(super::NAME_BYTE[usize::from(b)], want, "{b:#x}");
        }
    }
}
