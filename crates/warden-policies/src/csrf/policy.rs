//! `Csrf`: the origin and double-submit checks.

use http::{Method, header, request};
use warden_core::{Decision, Policy, PolicyError, ProblemKind, Rejection, RequestCtx};

use crate::origin::normalise_origin;

/// Compiled `csrf`.
#[derive(Debug, Clone)]
pub struct Csrf {
    /// Normalised allowed origins; empty: the gateway's own origin.
    pub(crate) origins: Vec<String>,
    pub(crate) session_cookies: Vec<String>,
    pub(crate) allow_missing_origin: bool,
    /// Cookie name and header for the double-submit check.
    pub(crate) double_submit: Option<(String, http::HeaderName)>,
}

/// The value of cookie `name`, if sent (first copy). Read as bytes: one
/// cookie with non-ASCII text must not hide the others.
fn cookie<'a>(req: &'a request::Parts, name: &str) -> Option<&'a [u8]> {
    req.headers
        .get_all(header::COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
        .filter_map(|c| {
            let eq = c.iter().position(|b| *b == b'=')?;
            Some((c[..eq].trim_ascii(), c[eq + 1..].trim_ascii()))
        })
        .find(|(k, _)| *k == name.as_bytes())
        .map(|(_, v)| v)
}

impl Csrf {
    fn cookie_authenticated(&self, req: &request::Parts) -> bool {
        if self.session_cookies.is_empty() {
            return req.headers.contains_key(header::COOKIE);
        }
        self.session_cookies.iter().any(|name| cookie(req, name).is_some())
    }

    /// The origin the request claims: `Origin`, else the origin of `Referer`.
    /// A header that is present but unreadable yields `""`, which never
    /// matches (it is not "missing").
    fn claimed_origin(req: &request::Parts) -> Option<String> {
        if let Some(origin) = req.headers.get(header::ORIGIN) {
            // `null` never matches: normalise_origin refuses it.
            return Some(origin.to_str().ok().and_then(normalise_origin).unwrap_or_default());
        }
        let referer = req.headers.get(header::REFERER)?;
        let origin = referer.to_str().ok().and_then(|r| {
            let (scheme, rest) = r.split_once("://")?;
            let authority = rest.split(['/', '?', '#']).next()?;
            normalise_origin(&format!("{scheme}://{authority}"))
        });
        Some(origin.unwrap_or_default())
    }

    fn own_origin(req: &request::Parts, ctx: &RequestCtx) -> Option<String> {
        let host = req
            .uri
            .authority()
            .map(|a| a.as_str())
            .or_else(|| req.headers.get(header::HOST).and_then(|v| v.to_str().ok()))?;
        normalise_origin(&format!("{}://{host}", if ctx.secure { "https" } else { "http" }))
    }

    /// Why the request is refused, if it is.
    pub(crate) fn check(&self, req: &request::Parts, ctx: &RequestCtx) -> Option<&'static str> {
        if matches!(req.method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
            || !self.cookie_authenticated(req)
        {
            return None;
        }
        match Self::claimed_origin(req) {
            None if self.allow_missing_origin => {}
            None => return Some("an unsafe cookie-authenticated request without Origin or Referer"),
            Some(origin) => {
                let allowed = if self.origins.is_empty() {
                    Self::own_origin(req, ctx).is_some_and(|own| own == origin)
                } else {
                    self.origins.contains(&origin)
                };
                if !allowed {
                    return Some("a cookie-authenticated request from another origin");
                }
            }
        }
        if let Some((name, header)) = &self.double_submit {
            let sent = req.headers.get(header).map(|v| v.as_bytes());
            let expected = cookie(req, name);
            let matches = match (sent, expected) {
                (Some(a), Some(b)) if !b.is_empty() => aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok(),
                _ => false,
            };
            if !matches {
                return Some("the CSRF token header does not repeat the CSRF cookie");
            }
        }
        None
    }
}

impl Policy for Csrf {
    fn name(&self) -> &'static str {
        "csrf"
    }

    async fn on_request(&self, req: &mut request::Parts, ctx: &mut RequestCtx) -> Result<Decision, PolicyError> {
        Ok(match self.check(req, ctx) {
            Some(reason) => Decision::Reject(
                Rejection::new(ProblemKind::Forbidden, "csrf_refused", reason)
                    .with_detail("the request was refused as a possible cross-site request forgery"),
            ),
            None => Decision::Continue,
        })
    }
}
