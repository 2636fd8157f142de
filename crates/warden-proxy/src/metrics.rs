//! Prometheus metrics: requests by route and status, latency, upstream health,
//! ejections and config reloads. Rendered by the admin listener at `/metrics`.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A label value shared by reference count, so recording a request
/// allocates nothing.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct Name(pub Arc<str>);

impl EncodeLabelValue for Name {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> std::fmt::Result {
        encoder.write_str(&self.0)
    }
}

/// Labels of a finished request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Route id, or `-` when no route matched.
    pub route: Name,
    /// Response status.
    pub status: u16,
}

/// Labels of a latency observation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// Route id, or `-`.
    pub route: Name,
}

/// Labels of an upstream target.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    /// Service name.
    pub service: String,
    /// Target `host:port`.
    pub target: String,
}

/// Labels of a reload outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `ok` or `refused`.
    pub result: String,
}

/// Labels of `warden_tls_handshakes_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TlsLabels {
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: &'static str,
    /// Key-exchange group.
    pub group: &'static str,
    /// `true` when the key exchange was post-quantum.
    pub post_quantum: &'static str,
    /// `true` when the client presented a verified certificate.
    pub client_cert: &'static str,
}

/// Labels of `warden_security_events_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// Event kind (`enumeration`, `consumer_blocked`, …).
    pub kind: &'static str,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// Every metric the gateway keeps.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// `warden_requests_total{route,status}`.
    pub requests: Family<RequestLabels, Counter>,
    /// `warden_request_duration_seconds{route}`.
    pub latency: HistogramFamily,
    /// `warden_upstream_healthy{service,target}` (1 or 0).
    pub upstream_healthy: Family<TargetLabels, Gauge>,
    /// `warden_upstream_ejections_total{service,target}`.
    pub ejections: Family<TargetLabels, Counter>,
    /// `warden_config_reloads_total{result}`.
    pub reloads: Family<ReloadLabels, Counter>,
    /// `warden_access_log_dropped_total`: records lost to a full log queue.
    pub access_log_dropped: Counter,
    /// `warden_tls_handshakes_total{version,group,post_quantum,client_cert}`.
    pub tls_handshakes: Family<TlsLabels, Counter>,
    /// `warden_tls_handshake_failures_total`.
    pub tls_handshake_failures: Counter,
    /// `warden_security_events_total{kind}`, caught up from
    /// [`warden_core::event::counts`] at every scrape.
    pub security_events: Family<EventLabels, Counter>,
    no_route: Arc<str>,
    /// This instance, for the per-thread handle cache (tests run several
    /// gateways in one process).
    id: u64,
}

/// A thread's handles to the series one (instance, route, status) records
/// into: a request then costs no label hashing and no family lock.
struct Handles {
    owner: u64,
    /// Held, so its address cannot be reused by another route while cached.
    route: Arc<str>,
    status: u16,
    requests: Counter,
    latency: Histogram,
}

/// Most handles a thread keeps; past it a new one replaces an old one
/// (routes × statuses seen on one worker rarely come near).
const MAX_HANDLES: usize = 64;

thread_local! {
    static HANDLES: RefCell<Vec<Handles>> = const { RefCell::new(Vec::new()) };
}

/// Ids of [`Metrics`] instances.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("warden");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        let upstream_healthy = Family::<TargetLabels, Gauge>::default();
        let ejections = Family::<TargetLabels, Counter>::default();
        let reloads = Family::<ReloadLabels, Counter>::default();
        let access_log_dropped = Counter::default();
        registry.register("requests", "Requests answered, by route and status", requests.clone());
        registry.register(
            "request_duration_seconds",
            "Time from request to end of response",
            latency.clone(),
        );
        registry.register(
            "upstream_healthy",
            "1 when the target receives traffic",
            upstream_healthy.clone(),
        );
        registry.register("upstream_ejections", "Passive ejections of a target", ejections.clone());
        registry.register("config_reloads", "Config reloads by result", reloads.clone());
        registry.register(
            "access_log_dropped",
            "Access-log records dropped because the writer fell behind",
            access_log_dropped.clone(),
        );
        let tls_handshakes = Family::<TlsLabels, Counter>::default();
        let tls_handshake_failures = Counter::default();
        registry.register(
            "tls_handshakes",
            "Completed TLS handshakes by version, key-exchange group and client certificate",
            tls_handshakes.clone(),
        );
        registry.register(
            "tls_handshake_failures",
            "TLS handshakes that failed or timed out",
            tls_handshake_failures.clone(),
        );
        let security_events = Family::<EventLabels, Counter>::default();
        registry.register("security_events", "Security events by kind", security_events.clone());
        Self {
            registry,
            security_events,
            tls_handshakes,
            tls_handshake_failures,
            requests,
            latency,
            upstream_healthy,
            ejections,
            reloads,
            access_log_dropped,
            no_route: Arc::from("-"),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Records a finished request (`None`: no route matched). The series'
    /// handles are looked up in the families once per thread, route and
    /// status, then kept.
    pub fn observe(&self, route: Option<&Arc<str>>, status: u16, seconds: f64) {
        let route = route.unwrap_or(&self.no_route);
        let uncached = || {
            let (requests, latency) = self.handles(route, status);
            requests.inc();
            latency.observe(seconds);
        };
        // A body dropped while the thread's locals are torn down still counts.
        let cached = HANDLES.try_with(|cell| {
            let Ok(mut handles) = cell.try_borrow_mut() else {
                uncached();
                return;
            };
            let found = handles
                .iter()
                .find(|h| h.owner == self.id && h.status == status && Arc::ptr_eq(&h.route, route));
            if let Some(h) = found {
                h.requests.inc();
                h.latency.observe(seconds);
                return;
            }
            let (requests, latency) = self.handles(route, status);
            requests.inc();
            latency.observe(seconds);
            let new = Handles {
                owner: self.id,
                route: Arc::clone(route),
                status,
                requests,
                latency,
            };
            if handles.len() >= MAX_HANDLES {
                // Full: one old handle makes room, so a worker with more
                // series than slots still finds most of them.
                handles.swap_remove(0);
            }
            handles.push(new);
        });
        if cached.is_err() {
            uncached();
        }
    }

    /// The families' series for a route and status (made when new).
    fn handles(&self, route: &Arc<str>, status: u16) -> (Counter, Histogram) {
        let route = Name(Arc::clone(route));
        let requests = self
            .requests
            .get_or_create(&RequestLabels {
                route: route.clone(),
                status,
            })
            .clone();
        let latency = self.latency.get_or_create(&RouteLabels { route }).clone();
        (requests, latency)
    }

    /// Records a completed handshake.
    pub fn tls_handshake(&self, f: &warden_tls::TlsFacts) {
        let flag = |b: bool| if b { "true" } else { "false" };
        self.tls_handshakes
            .get_or_create(&TlsLabels {
                version: f.version,
                group: f.group,
                post_quantum: flag(f.post_quantum),
                client_cert: flag(f.client.is_some()),
            })
            .inc();
    }

    /// Records a failed or timed-out handshake.
    pub fn tls_handshake_failed(&self) {
        self.tls_handshake_failures.inc();
    }

    /// Records a reload outcome.
    pub fn reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "refused" };
        self.reloads
            .get_or_create(&ReloadLabels { result: result.into() })
            .inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        for (kind, n) in warden_core::event::counts() {
            let c = self.security_events.get_or_create(&EventLabels { kind: kind.name() });
            c.inc_by(n.saturating_sub(c.get()));
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `warden_requests_total{route, status}` as rendered, if present.
    fn count(m: &Metrics, route: &str, status: u16) -> Option<u64> {
        let want = format!("warden_requests_total{{route=\"{route}\",status=\"{status}\"}} ");
        let text = m.render();
        let line = text.lines().find(|l| l.starts_with(&want))?;
        line[want.len()..].trim().parse().ok()
    }

    #[test]
    fn cached_handles_count_into_the_right_series_of_the_right_instance() {
        let (a, b) = (Metrics::new(), Metrics::new());
        let users: Arc<str> = Arc::from("users");
        let orders: Arc<str> = Arc::from("orders");
        for _ in 0..3 {
            a.observe(Some(&users), 200, 0.001);
        }
        a.observe(Some(&users), 404, 0.001);
        a.observe(Some(&orders), 200, 0.001);
        a.observe(None, 404, 0.001);
        b.observe(Some(&users), 200, 0.001);
        for (m, route, status, n) in [
            (&a, "users", 200, 3),
            (&a, "users", 404, 1),
            (&a, "orders", 200, 1),
            (&a, "-", 404, 1),
            (&b, "users", 200, 1),
        ] {
            assert_eq!(count(m, route, status), Some(n), "{route} {status}");
        }
        assert_eq!(count(&b, "users", 404), None, "instances keep their own series");
        assert!(
            a.render()
                .contains("warden_request_duration_seconds_count{route=\"users\"} 4")
        );
    }

    #[test]
    fn a_full_handle_cache_replaces_handles_without_losing_counts() {
        let m = Metrics::new();
        let routes: Vec<Arc<str>> = (0..MAX_HANDLES + 5).map(|i| Arc::from(format!("r{i}"))).collect();
        for _ in 0..2 {
            for r in &routes {
                m.observe(Some(r), 200, 0.001);
            }
        }
        for i in [0, MAX_HANDLES, MAX_HANDLES + 4] {
            assert_eq!(count(&m, &format!("r{i}"), 200), Some(2), "r{i}");
        }
    }
}
