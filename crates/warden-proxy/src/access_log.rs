//! The JSON access log: one line per request, written off the request path by a
//! background task.
//!
//! Redaction is structural: a record has no field for headers, cookies or the
//! query string, so `Authorization`, cookies and API keys (header or query
//! parameter) cannot reach the log. The path logged is the normalised path
//! without its query.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::mpsc;

/// Where access-log lines go.
#[derive(Debug, Clone)]
pub enum AccessLogSink {
    /// Standard output.
    Stdout,
    /// Append to a file.
    File(PathBuf),
    /// Kept in memory (tests).
    Memory(Arc<Mutex<Vec<String>>>),
    /// Not written.
    Off,
}

/// One access-log line.
#[derive(Debug, Serialize)]
pub struct AccessRecord {
    /// RFC 3339 UTC time the request started.
    pub time: String,
    /// Request id.
    pub request_id: Arc<str>,
    /// Client address as trusted.
    pub client_ip: IpAddr,
    /// Method.
    pub method: String,
    /// Normalised path, no query.
    pub path: String,
    /// Matched route.
    pub route: Option<Arc<str>>,
    /// Response status.
    pub status: u16,
    /// Milliseconds from request to end of response.
    pub latency_ms: f64,
    /// Request body bytes received.
    pub bytes_in: u64,
    /// Response body bytes sent.
    pub bytes_out: u64,
    /// Upstream target that answered.
    pub upstream: Option<String>,
    /// Why the gateway refused or failed the request.
    pub rejection: Option<&'static str>,
    /// Authenticated consumer.
    pub consumer: Option<Arc<str>>,
    /// The response body was sent to the end.
    pub completed: bool,
    /// TLS facts, on TLS listeners.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsLog>,
}

/// The `tls` object of an access-log line.
#[derive(Debug, Serialize)]
pub struct TlsLog {
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: &'static str,
    /// Cipher suite.
    pub cipher: &'static str,
    /// Key-exchange group.
    pub group: &'static str,
    /// The key exchange was post-quantum (hybrid ML-KEM).
    pub post_quantum: bool,
    /// SNI name sent by the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<Arc<str>>,
    /// Verified client certificate: its principal (first URI SAN, else DNS SAN, else subject).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<String>,
    /// Client certificate subject DN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_subject: Option<String>,
    /// Client certificate SHA-256.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_sha256: Option<String>,
}

impl From<&warden_tls::TlsFacts> for TlsLog {
    fn from(f: &warden_tls::TlsFacts) -> Self {
        let client = f.client.as_deref();
        Self {
            version: f.version,
            cipher: f.cipher,
            group: f.group,
            post_quantum: f.post_quantum,
            sni: f.sni.clone(),
            client_cert: client.map(|c| c.principal().to_owned()),
            client_subject: client.map(|c| c.subject.clone()),
            client_sha256: client.map(|c| c.sha256.clone()),
        }
    }
}

/// Records queued for the writer at most; beyond, records are dropped and
/// counted, so a stalled log destination cannot grow memory without bound.
pub const QUEUE_RECORDS: usize = 65_536;

/// Handle for writing access-log records.
#[derive(Debug, Clone)]
pub struct AccessLog {
    tx: Option<mpsc::Sender<AccessRecord>>,
    dropped: prometheus_client::metrics::counter::Counter,
}

impl AccessLog {
    /// Starts the writer task for `sink`; `dropped` counts records lost to a
    /// full queue (`warden_access_log_dropped_total`).
    pub fn start(sink: AccessLogSink, dropped: prometheus_client::metrics::counter::Counter) -> std::io::Result<Self> {
        let mut out: Box<dyn FnMut(&str) + Send> = match sink {
            AccessLogSink::Off => return Ok(Self { tx: None, dropped }),
            AccessLogSink::Stdout => {
                let mut w = std::io::BufWriter::new(std::io::stdout());
                Box::new(move |line: &str| {
                    let _ = writeln!(w, "{line}");
                    let _ = w.flush();
                })
            }
            AccessLogSink::File(path) => {
                let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
                let mut w = std::io::BufWriter::new(file);
                Box::new(move |line: &str| {
                    let _ = writeln!(w, "{line}");
                    let _ = w.flush();
                })
            }
            AccessLogSink::Memory(lines) => Box::new(move |line: &str| {
                if let Ok(mut l) = lines.lock() {
                    l.push(line.to_owned());
                }
            }),
        };
        let (tx, mut rx) = mpsc::channel::<AccessRecord>(QUEUE_RECORDS);
        tokio::task::spawn_blocking(move || {
            while let Some(rec) = rx.blocking_recv() {
                if let Ok(line) = serde_json::to_string(&rec) {
                    // Paths can carry card numbers and keys: scrubbed here,
                    // on the writer thread, off the request path.
                    out(&warden_dlp::redact_log(&line));
                }
            }
        });
        Ok(Self { tx: Some(tx), dropped })
    }

    /// Queues a record; drops (and counts) it when the queue is full.
    pub fn write(&self, rec: AccessRecord) {
        if let Some(tx) = &self.tx
            && tx.try_send(rec).is_err()
        {
            self.dropped.inc();
        }
    }

    /// Records dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }

    /// True when records are written somewhere.
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }
}

/// Formats a `SystemTime` as RFC 3339 UTC with milliseconds.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, dd) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(std::time::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let leap = std::time::UNIX_EPOCH + std::time::Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }
}
