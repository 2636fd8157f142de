//! The per-request path: caps, request id and client address, path
//! normalisation, routing, the policy pipeline, the upstream exchange, response
//! rewriting, and — when the response body ends — metrics and the access log.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::header::{self, HeaderValue};
use http::uri::PathAndQuery;
use http::{Method, Request, Response, StatusCode, Version};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::time::Instant;
use warden_config::RouteRuntime;
use warden_config::router::{RouteMatch, normalize_path};
use warden_config::schema::UpstreamErrors;
use warden_config::snapshot::ListenerRuntime;
use warden_core::{Policy, ProblemKind, Rejection, RequestCtx};
use warden_policies::request_limits::uri_bytes;
use warden_tls::TlsFacts;

use crate::access_log::{AccessRecord, TlsLog, rfc3339};
use crate::body::{BodyFault, BodyPace, BodyStats, CappedBody, ProxyBody, TrackedBody, full};
use crate::client_head::HeadFacts;
use crate::forwarded::{self, Hop};
use crate::listener::ConnActivity;
use crate::pipeline;
use crate::respond::{self, REQUEST_ID};
use crate::state::{Runtime, Shared};
use crate::upstream::{self, InflightGuard, Outgoing, SendError};

/// What the handler knows about the client connection.
#[derive(Debug)]
pub struct ConnInfo {
    /// TCP peer.
    pub peer: SocketAddr,
    /// `http` or `https`.
    pub proto: &'static str,
    /// Activity, for the idle watchdog.
    pub activity: Arc<ConnActivity>,
    /// The peer as forwarding-header text, formatted once per connection.
    pub peer_text: forwarded::PeerText,
    /// The connection's `max_connections` slot; an upgrade tunnel keeps it.
    pub slot: Arc<crate::listener::Slot>,
    /// Handshake facts, on a TLS connection.
    pub tls: Option<TlsFacts>,
    /// `Strict-Transport-Security` for every response, on a TLS listener with HSTS on.
    pub hsts: Option<HeaderValue>,
    /// The listener's settings as of the accept.
    pub listener: Arc<ListenerRuntime>,
    /// What policies derived from this connection's client.
    pub memo: Arc<warden_core::ConnMemo>,
}

/// One request's place in the gateway-wide in-flight count.
struct InFlight(Arc<Shared>);

impl InFlight {
    /// A place, unless `max` requests are already in flight.
    fn take(shared: &Arc<Shared>, max: usize) -> Option<Self> {
        let before = shared.in_flight.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        if before >= max {
            shared.in_flight.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
            return None;
        }
        Some(Self(Arc::clone(shared)))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

struct InflightOnConn(Arc<ConnActivity>);

impl Drop for InflightOnConn {
    fn drop(&mut self) {
        self.0.end_request();
    }
}

/// Everything recorded about one exchange until its response body ends.
struct Exchange {
    ctx: RequestCtx,
    method: Method,
    /// Wall-clock start, read only when the access log is on.
    wall_start: Option<SystemTime>,
    /// The request id as a header value, built once.
    id_header: HeaderValue,
    route: Option<Arc<RouteRuntime>>,
    upstream: Option<http::uri::Authority>,
    guard: Option<InflightGuard>,
    body_stats: Arc<BodyStats>,
    deadline: Option<Instant>,
    _conn: InflightOnConn,
    /// Held until the response body ends.
    _in_flight: Option<InFlight>,
}

impl Exchange {
    fn reject(&mut self, rej: Rejection) -> Response<ProxyBody> {
        tracing::debug!(request_id = %self.ctx.request_id, code = rej.code, reason = %rej.reason, "request refused");
        self.ctx.rejection_code = Some(rej.code);
        respond::rejection(&rej, &self.ctx.request_id)
    }
}

/// Serves one request.
pub async fn handle(
    req: Request<Incoming>,
    conn: Arc<ConnInfo>,
    shared: Arc<Shared>,
) -> Result<Response<ProxyBody>, Infallible> {
    conn.activity.start_request();
    let on_conn = InflightOnConn(Arc::clone(&conn.activity));
    let rt = shared.runtime();
    let snap = &rt.snapshot;
    let peer = conn.peer.ip();
    let trusted = snap.is_trusted_proxy(peer);
    let (request_id, id_header) = forwarded::request_id(req.headers(), trusted);
    let mut ctx = RequestCtx::new(request_id, peer, snap.limits.max_body_bytes);
    ctx.client_ip = forwarded::client_ip(req.headers(), peer, |ip| snap.is_trusted_proxy(ip));
    ctx.client_cert = conn.tls.as_ref().and_then(|t| t.client.clone());
    ctx.secure = conn.tls.is_some();
    ctx.method = req.method().clone();
    ctx.conn_memo = Some(Arc::clone(&conn.memo));
    if shared.clock_injected() {
        ctx.now_secs = shared.now_secs();
    }
    // Boxed: it moves into `finish` and on into the response body's
    // completion; a pointer moves cheaper than the whole record.
    let mut ex = Box::new(Exchange {
        ctx,
        method: req.method().clone(),
        wall_start: shared.access_log.enabled().then(SystemTime::now),
        id_header,
        route: None,
        upstream: None,
        guard: None,
        body_stats: Arc::new(BodyStats::default()),
        deadline: None,
        _conn: on_conn,
        _in_flight: None,
    });
    // Overload shedding: past the gateway-wide cap, answer 503 at once
    // rather than queue (the admin listener is never shed).
    match InFlight::take(&shared, snap.limits.max_in_flight) {
        Some(place) => ex._in_flight = Some(place),
        None => {
            let rej = Rejection::new(
                ProblemKind::ServiceUnavailable,
                "overloaded",
                "in-flight cap reached".to_owned(),
            )
            .with_detail("the gateway is overloaded; retry shortly")
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"));
            let resp = ex.reject(rej);
            return Ok(finish(resp, ex, &conn, shared));
        }
    }
    if shared.blocks.address(ex.ctx.client_ip).is_some() {
        let resp = ex.reject(blocked("address"));
        return Ok(finish(resp, ex, &conn, shared));
    }
    // The strict framing checker stops inspecting after an Upgrade or CONNECT
    // head; if the upgrade is not taken, hyper would read further requests on
    // this connection unchecked, so such connections are closed instead.
    let facts = HeadFacts::of(req.headers());
    let upgrade_asked = req.method() == Method::CONNECT || facts.upgrade;
    // Boxed: the proxy future is large, and hyper moves the handler future
    // into its dispatcher; a pointer moves cheaper than kilobytes of state.
    let mut resp = match Box::pin(proxy(req, facts, &mut ex, &rt, &conn, trusted, &shared)).await {
        Ok(resp) => resp,
        Err(rej) => ex.reject(rej),
    };
    if upgrade_asked && resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(finish(resp, ex, &conn, shared))
}

/// A request from a blocked address or consumer: 403 that says no more
/// (neither the reason nor the expiry reaches the client).
fn blocked(what: &str) -> Rejection {
    refuse(
        ProblemKind::Forbidden,
        "blocked",
        format!("dynamic block on the {what}"),
    )
}

fn refuse(kind: ProblemKind, code: &'static str, reason: impl Into<String>) -> Rejection {
    Rejection::new(kind, code, reason)
}

fn check_caps(req: &Request<Incoming>, facts: &HeadFacts, rt: &Runtime) -> Result<(), Rejection> {
    let limits = &rt.snapshot.limits;
    let uri_len = uri_bytes(req.uri());
    if uri_len > limits.max_uri_bytes {
        return Err(refuse(
            ProblemKind::UriTooLong,
            "uri_too_long",
            format!("{uri_len} byte target"),
        ));
    }
    if req.headers().len() > limits.max_headers {
        return Err(refuse(
            ProblemKind::HeadersTooLarge,
            "too_many_headers",
            format!("{} headers", req.headers().len()),
        ));
    }
    let bytes = facts.bytes;
    if bytes > limits.max_header_bytes {
        return Err(refuse(
            ProblemKind::HeadersTooLarge,
            "header_bytes_exceeded",
            format!("{bytes} header bytes"),
        ));
    }
    Ok(())
}

/// The host the client asked for, without validation beyond UTF-8
/// (`host_field`: its first `Host` field).
fn request_host(req: &Request<Incoming>, host_field: Option<&HeaderValue>) -> Result<String, Rejection> {
    if let Some(a) = req.uri().authority() {
        // Absolute-form (HTTP/1) or :authority (HTTP/2) is what is routed; a
        // Host header naming anything else is refused, so the route chosen and
        // the host the upstream sees can never differ.
        if let Some(host) = host_field
            && !host.as_bytes().eq_ignore_ascii_case(a.as_str().as_bytes())
        {
            return Err(refuse(
                ProblemKind::BadRequest,
                "host_mismatch",
                "Host differs from the request's authority",
            ));
        }
        return Ok(a.as_str().to_owned());
    }
    match host_field.map(HeaderValue::to_str) {
        Some(Ok(h)) => Ok(h.to_owned()),
        Some(Err(_)) => Err(refuse(
            ProblemKind::BadRequest,
            "bad_host",
            "Host header is not visible ASCII",
        )),
        None if req.version() == Version::HTTP_11 => Err(refuse(
            ProblemKind::BadRequest,
            "missing_host",
            "HTTP/1.1 request without Host",
        )),
        None => Ok(String::new()),
    }
}

async fn proxy(
    mut req: Request<Incoming>,
    facts: HeadFacts,
    ex: &mut Exchange,
    rt: &Runtime,
    conn: &ConnInfo,
    trusted: bool,
    shared: &Arc<Shared>,
) -> Result<Response<ProxyBody>, Rejection> {
    check_caps(&req, &facts, rt)?;
    if req.method() == Method::TRACE {
        // TRACE echoes requests (cookies, auth headers) back: cross-site tracing.
        return Err(refuse(
            ProblemKind::MethodNotAllowed,
            "trace_refused",
            "TRACE is never proxied",
        ));
    }
    if facts.hosts > 1 {
        return Err(refuse(
            ProblemKind::BadRequest,
            "duplicate_host",
            "more than one Host header",
        ));
    }
    let host = request_host(&req, facts.host.as_ref())?;
    let path = normalize_path(req.uri().path())
        .map_err(|e| refuse(ProblemKind::BadRequest, "bad_path", e.to_string()).with_detail(e.to_string()))?;
    // The context keeps the normalised path; it is read from there.
    ex.ctx.path = path;
    let path = &ex.ctx.path;
    crate::client_cert::check_sni(conn, &host)?;
    if let Some(answer) =
        crate::client_cert::plain_http_answer(conn, &host, path, req.uri().query(), &ex.ctx.request_id)
    {
        return answer;
    }
    let route = match rt.snapshot.router.lookup(&host, req.method(), path) {
        RouteMatch::Found { value, params } => {
            ex.ctx.params = params.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
            Arc::clone(value)
        }
        RouteMatch::MethodNotAllowed { allow } => {
            let list = allow.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
            let mut rej = refuse(
                ProblemKind::MethodNotAllowed,
                "method_not_allowed",
                format!("{} {path}", req.method()),
            );
            if let Ok(v) = HeaderValue::from_str(&list) {
                rej = rej.with_header(header::ALLOW, v);
            }
            return Err(rej);
        }
        RouteMatch::NotFound => return Err(refuse(ProblemKind::RouteNotFound, "no_route", format!("{host} {path}"))),
    };
    ex.ctx.route_id = Some(Arc::clone(&route.id));
    ex.ctx.max_body_bytes = route.max_body_bytes;
    ex.route = Some(Arc::clone(&route));
    if let Some(rule) = &route.client_cert {
        crate::client_cert::check(rule, conn)?;
        // The verified certificate names the consumer unless an
        // authentication policy names one later.
        ex.ctx.consumer = ex.ctx.client_cert.as_ref().map(|c| Arc::from(c.principal()));
    }

    // Only WebSocket upgrades are tunnelled; any other Upgrade is stripped and
    // the request proxied as plain HTTP (with `Connection: close`, see handle()).
    let upgrade = req.version() == Version::HTTP_11
        && facts.upgrade
        && forwarded::wants_upgrade(req.headers())
        && req
            .headers()
            .get(header::UPGRADE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    // Hop-by-hop and spoofable headers go before the policies run: headers a
    // policy writes (verified claims) must not be removable by a client that
    // names them in `Connection`.
    forwarded::scrub_request(&mut parts.headers, upgrade, trusted);
    ex.ctx.auth_any = !route.any_auth_challenges.is_empty();
    if route.has_authz {
        ex.ctx.operation = Some(Arc::from(format!("{} {}", parts.method, route.pattern)));
    }
    pipeline::on_request(&route.policies, &mut parts, &mut ex.ctx).await?;
    if let Some(consumer) = &ex.ctx.consumer
        && shared.blocks.consumer(consumer).is_some()
    {
        return Err(blocked("consumer"));
    }
    if let Some((name, ttl)) = &route.identity_token {
        write_identity_token(&mut parts.headers, name, *ttl, &ex.ctx, &route, rt)?;
    }
    if ex.ctx.auth_any && !ex.ctx.authenticated {
        let mut rej = refuse(
            ProblemKind::Unauthorized,
            "credentials_missing",
            "no credential for any method",
        );
        for c in &route.any_auth_challenges {
            rej = rej.with_header(header::WWW_AUTHENTICATE, c.clone());
        }
        return Err(rej);
    }

    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared.filter(|len| *len > ex.ctx.max_body_bytes) {
        return Err(refuse(
            ProblemKind::PayloadTooLarge,
            "body_too_large",
            format!("declared {len} bytes"),
        )
        .closing());
    }
    let body_empty = body.is_end_stream();
    let pace = BodyPace {
        base: Duration::from_millis(rt.snapshot.limits.body_read_timeout_ms),
        min_rate: rt.snapshot.limits.min_body_rate_bytes_per_sec,
    };
    let capped = CappedBody::new(body, ex.ctx.max_body_bytes, pace, Arc::clone(&ex.body_stats));
    if let Some(endpoint) = route.builtin {
        return builtin(endpoint, &parts, capped, ex, rt).await;
    }
    let body: ProxyBody = if route.needs_body {
        let bytes = match capped.collect().await {
            Ok(c) => c.to_bytes(),
            Err(_) => return Err(body_fault(ex.body_stats.fault().unwrap_or(BodyFault::Broken))),
        };
        pipeline::on_request_body(&route.policies, &parts, &bytes, &mut ex.ctx).await?;
        full(bytes)
    } else {
        capped.boxed_unsync()
    };

    // The client's own Host value is reused (shared bytes) when it sent one.
    let host_value = match parts.headers.get(header::HOST) {
        Some(v) => Some(v.clone()),
        None => HeaderValue::from_str(&host).ok().filter(|_| !host.is_empty()),
    };
    let h = &mut parts.headers;
    // Room for the forwarding headers and the request id in one allocation,
    // instead of growing (and rehashing) the map header by header.
    h.reserve(8);
    h.remove(header::EXPECT);
    if route.response_body_limit.is_some() {
        // Inspected bodies must arrive readable and whole (see
        // response_body.rs): a range could split a secret across responses.
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        h.remove(header::RANGE);
        h.remove(header::IF_RANGE);
    }
    crate::client_cert::write_identity(h, &rt.snapshot.identity_headers, conn);
    forwarded::write_forwarded(
        h,
        &Hop {
            peer: &conn.peer_text,
            trusted,
            proto: conn.proto,
            host: host_value.as_ref(),
        },
    );
    h.insert(REQUEST_ID.clone(), ex.id_header.clone());
    if !h.contains_key(header::HOST)
        && let Some(v) = host_value
    {
        h.insert(header::HOST, v);
    }
    let pool = rt
        .pools
        .get(&*route.service)
        .ok_or_else(|| refuse(ProblemKind::ServiceUnavailable, "no_pool", "service has no pool"))?;
    let total = Duration::from_millis(pool.config.timeouts.total_ms);
    // An absurd configured timeout must not overflow the clock: a year is
    // as good as forever.
    let now = Instant::now();
    let deadline = now
        .checked_add(total)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 86_400));
    ex.deadline = Some(deadline);
    // The upstream sees the normalised path; when normalising changed nothing
    // the request's own (shared, already parsed) path-and-query is reused.
    let path_and_query = match parts.uri.path_and_query() {
        Some(pq) if pq.path() == ex.ctx.path => pq.clone(),
        original => {
            let text = match original.and_then(|pq| pq.query()) {
                Some(q) => format!("{}?{q}", ex.ctx.path),
                None => ex.ctx.path.clone(),
            };
            text.parse::<PathAndQuery>().map_err(|_| {
                refuse(
                    ProblemKind::BadRequest,
                    "bad_path",
                    "normalised path is not a valid URI",
                )
            })?
        }
    };
    let out = Outgoing {
        method: parts.method.clone(),
        path_and_query,
        headers: std::mem::take(&mut parts.headers),
        body_empty,
    };
    let sent = upstream::send(pool, out, body, &ex.body_stats, deadline)
        .await
        .map_err(send_error)?;
    ex.upstream = Some(sent.guard.target().authority.clone());
    let response = sent.response;
    ex.guard = Some(sent.guard);

    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        let idle = Duration::from_secs(rt.snapshot.limits.idle_timeout_secs);
        let watch = crate::tunnel::BlockWatch {
            shared: Arc::clone(shared),
            ip: ex.ctx.client_ip,
            consumer: ex.ctx.consumer.clone(),
        };
        return Ok(crate::tunnel::accept(
            response,
            sent.upgraded,
            client_upgrade,
            conn,
            idle,
            watch,
            &ex.ctx.request_id,
        ));
    }
    let (mut rparts, rbody) = response.into_parts();
    forwarded::strip_hop_by_hop(&mut rparts.headers, false);
    respond::strip_fingerprints(&mut rparts.headers);
    pipeline::on_response(&route.policies, &mut rparts, &mut ex.ctx).await?;
    let rbody = match route.response_body_limit {
        Some(limit) => {
            let (policies, method, deadline) = (&route.policies, &ex.method, ex.deadline);
            crate::response_body::inspect(policies, limit, method, &mut rparts, rbody, &mut ex.ctx, deadline).await?
        }
        None => rbody,
    };
    if rparts.status.is_server_error() && route.upstream_errors == UpstreamErrors::Replace {
        ex.ctx.rejection_code = Some("upstream_5xx");
        return Ok(respond::problem(
            ProblemKind::UpstreamError,
            Some(rparts.status),
            None,
            &ex.ctx.request_id,
        ));
    }
    if route.security_headers {
        respond::security_headers(&mut rparts.headers);
    }
    Ok(Response::from_parts(rparts, rbody))
}

/// Replaces any client copy of the identity-token header (and its `_`
/// spelling) with a gateway-signed token for the verified consumer, if any.
fn write_identity_token(
    h: &mut http::HeaderMap,
    name: &http::HeaderName,
    ttl: u64,
    ctx: &warden_core::RequestCtx,
    route: &RouteRuntime,
    rt: &Runtime,
) -> Result<(), Rejection> {
    warden_core::headers::remove_with_lookalikes(h, std::slice::from_ref(name));
    let (Some(consumer), Some(server)) = (&ctx.consumer, &rt.oauth) else {
        return Ok(());
    };
    let scope = ctx
        .token_claims
        .as_ref()
        .and_then(|c| c.get("scope"))
        .and_then(|s| s.as_str());
    // The upstream relies on it: no token, no request.
    let value = server
        .identity_token(consumer, &route.service, scope, ttl)
        .and_then(|t| HeaderValue::from_str(&t).ok())
        .ok_or_else(|| {
            refuse(
                ProblemKind::ServiceUnavailable,
                "identity_token_unavailable",
                "no signing key for the identity token",
            )
        })?;
    h.insert(name.clone(), value);
    Ok(())
}

/// A route the gateway answers itself (the authorization server's endpoints).
async fn builtin(
    endpoint: warden_oauth::Endpoint,
    parts: &http::request::Parts,
    body: CappedBody<Incoming>,
    ex: &Exchange,
    rt: &Runtime,
) -> Result<Response<ProxyBody>, Rejection> {
    let bytes = match body.collect().await {
        Ok(c) => c.to_bytes(),
        Err(_) => return Err(body_fault(ex.body_stats.fault().unwrap_or(BodyFault::Broken))),
    };
    let Some(server) = &rt.oauth else {
        return Err(refuse(
            ProblemKind::ServiceUnavailable,
            "oauth_server_unavailable",
            "built-in route without a running authorization server",
        ));
    };
    let answer = server.handle(endpoint, parts, &bytes, &ex.ctx).await;
    let (head, bytes) = answer.into_parts();
    Ok(Response::from_parts(head, full(bytes)))
}

fn body_fault(fault: BodyFault) -> Rejection {
    match fault {
        BodyFault::TooLarge => refuse(
            ProblemKind::PayloadTooLarge,
            "body_too_large",
            "streamed body passed the cap",
        ),
        BodyFault::TimedOut => refuse(ProblemKind::RequestTimeout, "body_timeout", "body not received in time"),
        BodyFault::Broken => refuse(ProblemKind::BadRequest, "body_broken", "client body stream failed"),
    }
    .closing()
}

fn send_error(e: SendError) -> Rejection {
    let reason = e.to_string();
    match e {
        SendError::NoHealthyTarget => refuse(ProblemKind::ServiceUnavailable, "no_healthy_target", reason),
        SendError::Connect { .. } => refuse(ProblemKind::BadGateway, "upstream_connect_failed", reason),
        SendError::Timeout { .. } => refuse(ProblemKind::GatewayTimeout, "upstream_timeout", reason),
        SendError::Exchange { .. } => refuse(ProblemKind::BadGateway, "upstream_failed", reason),
        SendError::Body(fault) => body_fault(fault),
    }
}

fn finish(
    mut resp: Response<ProxyBody>,
    mut ex: Box<Exchange>,
    conn: &ConnInfo,
    shared: Arc<Shared>,
) -> Response<ProxyBody> {
    resp.headers_mut().insert(REQUEST_ID.clone(), ex.id_header.clone());
    for (name, value) in ex.ctx.response_headers.drain(..) {
        // `Vary` adds to the upstream's list; other policy headers replace.
        if name == header::VARY {
            resp.headers_mut().append(name, value);
        } else {
            resp.headers_mut().insert(name, value);
        }
    }
    if let Some(hsts) = &conn.hsts {
        resp.headers_mut()
            .insert(header::STRICT_TRANSPORT_SECURITY, hsts.clone());
    }
    let tls = if shared.access_log.enabled() {
        conn.tls.clone()
    } else {
        None
    };
    let status = resp.status().as_u16();
    let deadline = ex.deadline;
    let (parts, body) = resp.into_parts();
    let body = TrackedBody::new(body, deadline, move |bytes_out, completed| {
        let mut ex = ex;
        // The target's in-flight count ends with the response.
        drop(ex.guard.take());
        let elapsed = ex.ctx.started.elapsed();
        shared
            .metrics
            .observe(ex.ctx.route_id.as_ref(), status, elapsed.as_secs_f64());
        if let Some(route) = &ex.route {
            for p in &route.policies {
                p.policy.on_complete(&ex.ctx);
            }
        }
        if shared.access_log.enabled() {
            shared.access_log.write(AccessRecord {
                time: ex.wall_start.map(rfc3339).unwrap_or_default(),
                request_id: Arc::clone(&ex.ctx.request_id),
                client_ip: ex.ctx.client_ip,
                method: ex.method.to_string(),
                path: ex.ctx.path.clone(),
                route: ex.ctx.route_id.clone(),
                status,
                // Microsecond resolution: more digits say nothing.
                latency_ms: (elapsed.as_secs_f64() * 1_000_000.0).round() / 1000.0,
                bytes_in: ex.body_stats.bytes(),
                bytes_out,
                upstream: ex.upstream.as_ref().map(ToString::to_string),
                rejection: ex.ctx.rejection_code,
                consumer: ex.ctx.consumer.clone(),
                completed,
                tls: tls.as_ref().map(TlsLog::from),
            });
        }
    });
    Response::from_parts(parts, body.boxed_unsync())
}

/// Compile-time check, never called: the handler future must stay `Send`, or
/// hyper cannot run it (a non-`Send` future shows up as an obscure error at
/// the listener instead of here).
#[allow(dead_code)]
fn _assert_send(req: Request<Incoming>, conn: Arc<ConnInfo>, shared: Arc<Shared>) {
    fn is_send<T: Send>(_: T) {}
    is_send(handle(req, conn, shared));
}
