//! The injection scan run inside the contract's parse, so a route with both
//! policies reads its JSON body once. The `contract` policy, linked to the
//! route's `injection` ([`crate::link`]), builds its document with the
//! injection's visitor in the same walk ([`crate::json_tree::build_along`])
//! and leaves the outcome in the request context; this policy takes it
//! instead of walking the body again. Only where the scan would walk the
//! body as JSON anyway ([`Injection::walks_as_json`]): the outcome is the one
//! its own walk would give (same walk, same visitor; a test compares them).

use std::sync::Arc;

use bytes::Bytes;
use http::request;
use warden_core::RequestCtx;
use warden_openapi::validate::Doc;

use super::policy::{Hit, Injection, encoded, utf8_charset};
use super::{Place, stream};
use crate::json::is_json;
use crate::json_tree;

/// The scan's outcome for one body: the walk's first finding, none, or
/// `Err` for a body that is not strict JSON.
struct ScannedAlong {
    /// The body scanned (where its bytes are, and how many): a later
    /// policy is handed the same buffer.
    body: (usize, usize),
    outcome: Result<Option<Hit>, ()>,
}

fn identity(body: &[u8]) -> (usize, usize) {
    (body.as_ptr() as usize, body.len())
}

impl Injection {
    /// True when [`Injection::scan_body`] would walk `body` as JSON
    /// (`media`: the request's media type, as `media_type` gives it).
    pub(crate) fn walks_as_json(&self, req: &request::Parts, media: &str, body: &[u8]) -> bool {
        !body.is_empty() && self.scans(Place::Body) && !encoded(req) && utf8_charset(req) && is_json(media)
    }

    /// Builds the contract's document of `body` and scans it in the same
    /// walk; the scan's outcome is left in `ctx` for [`Self::scanned_along`].
    pub(crate) fn build_and_scan<'b>(&self, body: &'b [u8], ctx: &mut RequestCtx) -> Option<Doc<'b>> {
        let mut visit = self.visitor();
        let (doc, outcome) = json_tree::build_along(body, &mut stream::Scan::new(&mut visit));
        let scanned = ScannedAlong {
            body: identity(body),
            outcome,
        };
        ctx.body_scan = Some(Arc::new(scanned));
        doc
    }

    /// The outcome [`Self::build_and_scan`] left for `body`, if it did.
    pub(crate) fn scanned_along(&self, body: &Bytes, ctx: &mut RequestCtx) -> Option<Result<Option<Hit>, ()>> {
        let left = ctx.body_scan.take()?.downcast::<ScannedAlong>().ok()?;
        let left = Arc::try_unwrap(left).ok()?;
        (left.body == identity(body)).then_some(left.outcome)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::super::stream_oracle::logging_visitor as visitor;
    use super::*;
    use crate::json_corpus;

    /// The scan run beside the builder visits what it visits alone, in the
    /// same order, and ends the same way; the document is the builder's.
    fn same(body: &[u8]) {
        let mut alone = String::new();
        let outcome = stream::walk(body, &mut visitor(&mut alone));
        let mut along = String::new();
        let mut visit = visitor(&mut along);
        let (doc, outcome_along) = json_tree::build_along(body, &mut stream::Scan::new(&mut visit));
        drop(visit);
        let shown = String::from_utf8_lossy(body);
        assert_eq!(outcome_along, outcome, "{shown:?}");
        assert_eq!(along, alone, "{shown:?}");
        assert_eq!(doc, json_tree::build(body), "{shown:?}");
    }

    #[test]
    fn the_scan_along_the_builder_answers_as_the_scan_alone() {
        for body in json_corpus::hand_picked() {
            same(&body);
        }
        // A finding, then a body that goes bad: the finding wins, no document.
        same(br#"{"a":"STOP","b":[1,}"#);
        same(br#"[{"k":"x"},"STOP",{"STOP":"y"}]"#);
        json_corpus::generated(20_000, same);
    }
}
