//! `data_leak`: sensitive values and secrets in response bodies.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::response;
use serde::Deserialize;
use warden_core::event::{self, EventKind};
use warden_core::{Decision, OnError, Policy, PolicyError, ProblemKind, Rejection, RequestCtx};
use warden_dlp::json::Hit;
use warden_dlp::{Action, Categories, Category, Edit, Finding};

use super::{check_max_inspect, default_max_inspect, looks_json, text_of};
use crate::SpecError;

/// What to do with one category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeakAction {
    /// Replace all but the last `keep_tail` letters and digits with `*`.
    Mask,
    /// Replace the value with `[REDACTED]`.
    Redact,
    /// Replace the whole response with a 502 problem document.
    Block,
    /// Let it through and record a `data_leak` event.
    Report,
    /// Not looked for.
    Allow,
}

/// `type: data_leak`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataLeakConfig {
    /// Bodies up to this many bytes are inspected (default 1 MiB); longer
    /// ones stream on with a `response_uninspected` event.
    #[serde(default = "default_max_inspect")]
    pub max_inspect_bytes: usize,
    /// Letters and digits `mask` leaves visible at the end (default 4).
    #[serde(default = "four")]
    pub keep_tail: usize,
    /// Per category (`card`, `iban`, `national_id`, `email`, `phone`,
    /// `cloud_key`, `token`, `jwt`, `private_key`, `high_entropy`,
    /// `secret_field`): what to do; unlisted ones keep their default.
    #[serde(default)]
    pub actions: BTreeMap<String, LeakAction>,
    /// Response headers not inspected (default `[set-cookie]`: session
    /// cookies are credentials by design).
    #[serde(default = "default_skip_headers")]
    pub skip_headers: Vec<String>,
    /// What to do if the policy fails internally.
    #[serde(default)]
    pub on_error: OnError,
}

fn four() -> usize {
    4
}

fn default_skip_headers() -> Vec<String> {
    vec!["set-cookie".to_owned()]
}

/// The default action of a category: payment and identity numbers masked,
/// contact details allowed (APIs return them by design), secrets redacted.
pub fn default_action(c: Category) -> LeakAction {
    match c {
        Category::Card | Category::Iban | Category::NationalId => LeakAction::Mask,
        Category::Email | Category::Phone => LeakAction::Allow,
        _ => LeakAction::Redact,
    }
}

impl DataLeakConfig {
    /// Checks the names and bounds, reporting every problem.
    pub fn build(&self) -> Result<DataLeak, Vec<SpecError>> {
        let mut errors = Vec::new();
        check_max_inspect(self.max_inspect_bytes, &mut errors);
        if self.keep_tail > 8 {
            errors.push(SpecError {
                path: "keep_tail".into(),
                message: format!("{} would show most of a value; at most 8", self.keep_tail),
            });
        }
        let mut actions = Category::ALL.map(default_action);
        for (name, action) in &self.actions {
            match Category::from_name(name) {
                Some(c) => actions[c as usize] = *action,
                None => errors.push(SpecError {
                    path: format!("actions.{name}"),
                    message: format!(
                        "unknown category; one of {}",
                        Category::ALL.map(Category::name).join(", ")
                    ),
                }),
            }
        }
        let mut skip_headers = Vec::new();
        for (i, name) in self.skip_headers.iter().enumerate() {
            match http::HeaderName::from_bytes(name.as_bytes()) {
                Ok(h) => skip_headers.push(h),
                Err(_) => errors.push(SpecError {
                    path: format!("skip_headers[{i}]"),
                    message: format!("`{name}` is not a header name"),
                }),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let active = Category::ALL
            .into_iter()
            .filter(|c| actions[*c as usize] != LeakAction::Allow)
            .collect();
        Ok(DataLeak {
            detector: warden_dlp::Detector::new(active),
            max_inspect: self.max_inspect_bytes,
            keep_tail: self.keep_tail,
            actions,
            active,
            skip_headers,
        })
    }
}

/// Compiled `data_leak`.
#[derive(Debug)]
pub struct DataLeak {
    /// The detectors of the active categories only.
    detector: warden_dlp::Detector,
    max_inspect: usize,
    keep_tail: usize,
    actions: [LeakAction; Category::ALL.len()],
    active: Categories,
    skip_headers: Vec<http::HeaderName>,
}

/// What one inspected text came to: findings counted per category and
/// action, the edits that mask or redact them, and whether one blocks.
#[derive(Default)]
struct Verdict {
    counts: BTreeMap<(&'static str, &'static str), usize>,
    block: bool,
}

impl Verdict {
    fn detail(&self) -> String {
        let parts: Vec<String> = self
            .counts
            .iter()
            .map(|((c, how), n)| format!("{c}:{how}x{n}"))
            .collect();
        parts.join(" ")
    }
}

impl DataLeak {
    fn action(&self, c: Category) -> LeakAction {
        self.actions[c as usize]
    }

    /// The findings in the body: structure-aware for JSON, else as text.
    fn hits(&self, resp: &response::Parts, text: &str) -> Vec<Hit> {
        if looks_json(resp, text)
            && let Some(hits) = warden_dlp::json::scan_with(&self.detector, text, self.active)
        {
            return hits;
        }
        self.detector
            .find(text, self.active)
            .into_iter()
            .map(|finding: Finding| Hit { finding, bare: false })
            .collect()
    }
}

impl DataLeak {
    /// Applies the categories' actions to `hits` in `text`: counted into
    /// `verdict`, and the masking and redacting edits returned.
    fn act(&self, text: &str, hits: &[Hit], verdict: &mut Verdict) -> Vec<Edit> {
        let mut edits = Vec::new();
        for h in hits {
            let c = h.finding.category;
            let action = self.action(c);
            let how = match action {
                LeakAction::Mask | LeakAction::Redact => {
                    let a = if action == LeakAction::Mask {
                        Action::Mask { keep: self.keep_tail }
                    } else {
                        Action::Redact
                    };
                    edits.push(Edit {
                        with: a.replacement(&text[h.finding.range.clone()], h.bare),
                        range: h.finding.range.clone(),
                    });
                    if action == LeakAction::Mask { "mask" } else { "redact" }
                }
                LeakAction::Block => {
                    verdict.block = true;
                    "block"
                }
                LeakAction::Report | LeakAction::Allow => "report",
            };
            *verdict.counts.entry((c.name(), how)).or_default() += 1;
        }
        edits
    }

    /// The findings in one response header value: the whole value when the
    /// header's name means a secret (`X-Api-Key`), else the text detectors.
    fn header_hits(&self, name: &http::HeaderName, value: &str) -> Vec<Hit> {
        if value.is_empty() {
            return Vec::new();
        }
        if self.active.contains(Category::SecretField) && warden_dlp::names::is_secret_field(name.as_str()) {
            let finding = Finding {
                category: Category::SecretField,
                range: 0..value.len(),
            };
            return vec![Hit { finding, bare: false }];
        }
        let cats = self
            .active
            .without(Category::SecretField)
            .without(Category::HighEntropy);
        self.detector
            .find(value, cats)
            .into_iter()
            .map(|finding| Hit { finding, bare: false })
            .collect()
    }

    fn emit(ctx: &RequestCtx, status: http::StatusCode, where_: &str, verdict: &Verdict) {
        event::emit(
            EventKind::DataLeak,
            &ctx.request_id,
            &ctx.client_ip.to_string(),
            &format!("status={} {where_}{}", status.as_u16(), verdict.detail()),
        );
    }
}

impl Policy for DataLeak {
    fn name(&self) -> &'static str {
        "data_leak"
    }

    fn response_body_limit(&self) -> Option<usize> {
        Some(self.max_inspect)
    }

    /// Response headers: every value but the skipped headers', with the
    /// body's categories and actions (non-ASCII bytes included).
    async fn on_response(&self, resp: &mut response::Parts, ctx: &mut RequestCtx) -> Result<Decision, PolicyError> {
        let mut verdict = Verdict::default();
        for (name, value) in &mut resp.headers {
            if self.skip_headers.contains(name) {
                continue;
            }
            // Bytes past ASCII (obs-text) are read as `~`, a non-word byte,
            // so the detectors' offsets are the value's own.
            let bytes = value.as_bytes();
            let text: std::borrow::Cow<'_, str> = match value.to_str() {
                Ok(ascii) => ascii.into(),
                Err(_) => bytes
                    .iter()
                    .map(|&b| if b.is_ascii() { char::from(b) } else { '~' })
                    .collect::<String>()
                    .into(),
            };
            let hits = self.header_hits(name, &text);
            if hits.is_empty() {
                continue;
            }
            let mut edits = self.act(&text, &hits, &mut verdict);
            if !edits.is_empty() {
                edits.sort_by_key(|e| e.range.start);
                let mut new = Vec::with_capacity(bytes.len());
                let mut from = 0;
                for e in &edits {
                    if e.range.start < from || e.range.end > bytes.len() {
                        continue;
                    }
                    new.extend_from_slice(&bytes[from..e.range.start]);
                    new.extend_from_slice(e.with.as_bytes());
                    from = e.range.end;
                }
                new.extend_from_slice(&bytes[from..]);
                // Masks and `[REDACTED]` are visible ASCII; the rest are the
                // value's own bytes: always a valid value.
                *value = http::HeaderValue::from_bytes(&new).map_err(|_| PolicyError {
                    policy: "data_leak",
                    message: "a masked header value is not a valid value".into(),
                })?;
            }
        }
        if verdict.counts.is_empty() {
            return Ok(Decision::Continue);
        }
        Self::emit(ctx, resp.status, "header ", &verdict);
        if verdict.block {
            return Ok(Decision::Reject(Rejection::new(
                ProblemKind::UpstreamError,
                "data_leak_blocked",
                format!("in a header: {}", verdict.detail()),
            )));
        }
        Ok(Decision::Continue)
    }

    async fn on_response_body(
        &self,
        resp: &mut response::Parts,
        body: &mut Bytes,
        ctx: &mut RequestCtx,
    ) -> Result<Decision, PolicyError> {
        let Some(text) = text_of(resp, body) else {
            return Ok(Decision::Continue);
        };
        let hits = self.hits(resp, text);
        if hits.is_empty() {
            return Ok(Decision::Continue);
        }
        let mut verdict = Verdict::default();
        let edits = self.act(text, &hits, &mut verdict);
        Self::emit(ctx, resp.status, "", &verdict);
        if verdict.block {
            return Ok(Decision::Reject(Rejection::new(
                ProblemKind::UpstreamError,
                "data_leak_blocked",
                verdict.detail(),
            )));
        }
        if !edits.is_empty() {
            *body = Bytes::from(warden_dlp::apply(text, &edits));
        }
        Ok(Decision::Continue)
    }
}
