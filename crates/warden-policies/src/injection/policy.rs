//! `Injection`: what is scanned, and what a finding does.

use bytes::Bytes;
use http::request;
use warden_core::event::{self, EventKind};
use warden_core::{Decision, Policy, PolicyError, ProblemKind, Rejection, RequestCtx};
use warden_waf::{Categories, Category, Field, Finding, Scanner};

use super::fields::{self, Exception, Location, SKIPPED_HEADERS, Seg};
use super::{Mode, Place};
use crate::json::{is_json, media_type, parse_strict};

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
}

/// A finding and where it was.
#[derive(Debug)]
pub(crate) struct Hit {
    pub finding: Finding,
    pub location: String,
}

impl Injection {
    fn scans(&self, place: Place) -> bool {
        self.places.contains(&place)
    }

    /// Scans one value at `loc`.
    fn value(&self, value: &str, loc: Location<'_>, field: Field) -> Option<Hit> {
        let only = if self.exceptions.is_empty() {
            Categories::ALL
        } else {
            fields::checked_at(&self.exceptions, &loc)
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
                let key = Field {
                    is_key: true,
                    ..Field::default()
                };
                if let Some(hit) = self.value(&k, Location::Query(&k), key) {
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
                if !self.header_scanned(name) {
                    continue;
                }
                let text = String::from_utf8_lossy(value.as_bytes());
                let field = Field {
                    in_header: true,
                    ..self.named(name)
                };
                if let Some(hit) = self.value(&text, Location::Header(name), field) {
                    return Some(hit);
                }
            }
        }
        if self.scans(Place::Cookies) {
            for value in req.headers.get_all(http::header::COOKIE) {
                let text = String::from_utf8_lossy(value.as_bytes());
                for (k, v) in fields::cookies(&text) {
                    if let Some(hit) = self.value(v, Location::Cookie(k), self.named(k)) {
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

    /// Scans a buffered body by its media type. `Err` for a JSON body that
    /// does not parse (it cannot be scanned).
    pub(crate) fn scan_body(&self, req: &request::Parts, body: &Bytes) -> Result<Option<Hit>, ()> {
        if body.is_empty() || !self.scans(Place::Body) {
            return Ok(None);
        }
        let media = media_type(req);
        if is_json(&media) {
            let value = parse_strict(body).map_err(|_| ())?;
            let mut path = Vec::new();
            return Ok(fields::walk_json(&value, &mut path, &mut |s, is_key, segs| {
                let field = if is_key {
                    Field {
                        is_key: true,
                        ..Field::default()
                    }
                } else {
                    self.named(fields::nearest_key(segs))
                };
                self.value(s, Location::Body(segs), field)
            }));
        }
        let text = String::from_utf8_lossy(body);
        if media == "application/x-www-form-urlencoded" {
            return Ok(fields::pairs(&text).find_map(|(k, v)| {
                let seg = [Seg::Key(&k)];
                let key = Field {
                    is_key: true,
                    ..Field::default()
                };
                self.value(&k, Location::Body(&seg), key)
                    .or_else(|| self.value(&v, Location::Body(&seg), self.named(&k)))
            }));
        }
        if media.ends_with("/xml") || media.ends_with("+xml") {
            let only = Categories::NONE.with(Category::Xxe);
            let finding = self.scanner.scan_only(&text, Field::default(), only);
            return Ok(finding.map(|finding| Hit {
                finding,
                location: "/body".into(),
            }));
        }
        Ok(None)
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
        Ok(match self.scan_body(req, body) {
            Ok(Some(hit)) => self.decide(hit, ctx),
            Ok(None) => Decision::Continue,
            Err(()) if self.mode == Mode::Report => Decision::Continue,
            Err(()) => Decision::Reject(
                Rejection::new(
                    ProblemKind::BadRequest,
                    "invalid_json",
                    "JSON body does not parse and cannot be scanned",
                )
                .with_detail("the request body is not valid JSON"),
            ),
        })
    }
}
