//! The response body phase: on a route whose policies inspect responses, the
//! upstream body is buffered (bounded), handed to them in reverse order, and
//! sent on with a corrected `Content-Length`.
//!
//! - A body longer than the bound streams on uninspected: what was read goes
//!   first, the rest follows as it comes, and a `response_uninspected` event
//!   records it (the documented trade: no unbounded buffering).
//! - A compressed body (`Content-Encoding` other than `identity`) is refused
//!   with 502: the gateway asks for `Accept-Encoding: identity` on these
//!   routes, so an upstream that compresses anyway is not passed unchecked.
//! - HEAD answers and bodiless statuses (1xx, 204, 304) skip the phase.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, response};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tokio::time::Instant;
use warden_core::{ProblemKind, Rejection, RequestCtx};

use crate::body::{BoxError, ProxyBody};
use crate::pipeline::{self, Slot};

/// Validators and digests of the upstream's body, dropped when a policy
/// rewrites it (names made once, not parsed per response).
const STALE_WHEN_REWRITTEN: [HeaderName; 6] = [
    header::ETAG,
    HeaderName::from_static("content-md5"),
    HeaderName::from_static("digest"),
    HeaderName::from_static("repr-digest"),
    HeaderName::from_static("content-digest"),
    header::LAST_MODIFIED,
];

/// Inspects the response body with the policies' response phase.
pub(crate) async fn inspect<S: Slot>(
    policies: &[S],
    limit: usize,
    method: &Method,
    parts: &mut response::Parts,
    body: ProxyBody,
    ctx: &mut RequestCtx,
    deadline: Option<Instant>,
) -> Result<ProxyBody, Rejection> {
    let status = parts.status;
    if method == Method::HEAD || status.is_informational() || status.as_u16() == 204 || status.as_u16() == 304 {
        return Ok(body);
    }
    // Every `Content-Encoding` line and every coding in it: `identity` then
    // `gzip` on a second line is still gzip.
    let encoded = parts.headers.get_all(header::CONTENT_ENCODING).iter().any(|v| {
        v.as_bytes()
            .split(|b| *b == b',')
            .any(|c| !c.trim_ascii().is_empty() && !c.trim_ascii().eq_ignore_ascii_case(b"identity"))
    });
    if encoded {
        pipeline::uninspected(ctx, "compressed");
        return Err(Rejection::new(
            ProblemKind::UpstreamError,
            "upstream_compressed",
            "compressed response on a route that inspects responses",
        ));
    }
    let mut body = body;
    let mut buf = BytesMut::new();
    let mut trailers: Option<HeaderMap> = None;
    loop {
        let next = match deadline {
            Some(d) => tokio::time::timeout_at(d, body.frame()).await.map_err(|_| {
                Rejection::new(
                    ProblemKind::GatewayTimeout,
                    "upstream_timeout",
                    "response body too slow",
                )
            })?,
            None => body.frame().await,
        };
        let frame = match next {
            None => break,
            Some(Ok(f)) => f,
            Some(Err(e)) => {
                return Err(Rejection::new(
                    ProblemKind::BadGateway,
                    "upstream_failed",
                    format!("response body: {e}"),
                ));
            }
        };
        match frame.into_data() {
            Ok(data) => {
                buf.extend_from_slice(&data);
                if buf.len() > limit {
                    pipeline::on_response_too_long(policies, status, ctx)?;
                    let head = buf.freeze();
                    return Ok(Prefixed {
                        head: Some(head),
                        rest: body,
                    }
                    .boxed_unsync());
                }
            }
            Err(f) => trailers = f.into_trailers().ok(),
        }
    }
    let mut bytes = buf.freeze();
    let original = bytes.clone();
    pipeline::on_response_body(policies, parts, &mut bytes, ctx).await?;
    if bytes.as_ptr() != original.as_ptr() || bytes.len() != original.len() {
        // Rewritten for this caller (masked, filtered to their scopes): no
        // shared cache may keep it, and the upstream's validators and
        // digests describe another body.
        for name in STALE_WHEN_REWRITTEN {
            parts.headers.remove(name);
        }
        parts
            .headers
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    }
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    Ok(Whole {
        data: Some(bytes),
        trailers,
    }
    .boxed_unsync())
}

/// The bytes already read, then the rest of the upstream body.
struct Prefixed {
    head: Option<Bytes>,
    rest: ProxyBody,
}

impl Body for Prefixed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(head) = self.head.take() {
            return Poll::Ready(Some(Ok(Frame::data(head))));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }
}

/// An inspected body: its bytes, then its trailers if the upstream sent any.
struct Whole {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl Body for Whole {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(data) = self.data.take().filter(|d| !d.is_empty()) {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.as_ref().is_none_or(Bytes::is_empty) && self.trailers.is_none()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}
