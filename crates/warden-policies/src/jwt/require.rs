//! Route requirements on a verified token: step-up (RFC 9470 `acr`, `amr`,
//! `auth_time`) and a maximum token age; claim values as header values.

use http::HeaderValue;
use http::header;
use serde_json::{Map, Value};
use warden_core::{ProblemKind, Rejection};

use super::RequireConfig;
use super::policy::{Refusal, refusal};

/// Clock skew tolerated on `auth_time`.
const AUTH_TIME_SKEW_SECS: u64 = 60;

/// The RFC 9470 challenge: the token is valid but its authentication is too
/// weak or too old for this route.
fn step_up(description: &str, acr_values: &[String], max_age: Option<u64>) -> Rejection {
    let mut v = format!(
        r#"Bearer realm="warden", error="insufficient_user_authentication", error_description="{description}""#
    );
    if !acr_values.is_empty() {
        v.push_str(&format!(r#", acr_values="{}""#, acr_values.join(" ")));
    }
    if let Some(age) = max_age {
        v.push_str(&format!(r#", max_age="{age}""#));
    }
    let rej = Rejection::new(ProblemKind::Unauthorized, "step_up_required", description.to_owned());
    match HeaderValue::from_str(&v) {
        Ok(h) => rej.with_header(header::WWW_AUTHENTICATE, h),
        Err(_) => rej,
    }
}

/// Checks `req` against `claims` at `now`.
pub(crate) fn check(req: &RequireConfig, claims: &Map<String, Value>, now: u64) -> Result<(), Rejection> {
    if let Some(max) = req.max_token_age_secs {
        let fresh = claims
            .get("iat")
            .and_then(Value::as_u64)
            .is_some_and(|iat| now.saturating_sub(iat) <= max);
        if !fresh {
            return Err(refusal(&Refusal::Invalid("token older than max_token_age_secs".into())));
        }
    }
    let max_age = req.max_auth_age_secs;
    if !req.acr_values.is_empty() {
        let acr = claims.get("acr").and_then(Value::as_str).unwrap_or("");
        if !req.acr_values.iter().any(|a| a == acr) {
            return Err(step_up(
                "A different authentication level is required",
                &req.acr_values,
                max_age,
            ));
        }
    }
    if !req.amr.is_empty() {
        let amr: Vec<&str> = claims
            .get("amr")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !req.amr.iter().all(|m| amr.contains(&m.as_str())) {
            return Err(step_up(
                "Additional authentication methods are required",
                &req.acr_values,
                max_age,
            ));
        }
    }
    if let Some(max) = max_age {
        // An `auth_time` in the future (beyond clock skew) is not "recent".
        let recent = claims
            .get("auth_time")
            .and_then(Value::as_u64)
            .is_some_and(|t| t <= now.saturating_add(AUTH_TIME_SKEW_SECS) && now.saturating_sub(t) <= max);
        if !recent {
            return Err(step_up(
                "More recent authentication is required",
                &req.acr_values,
                Some(max),
            ));
        }
    }
    Ok(())
}

/// A claim as a header value: strings as they are, numbers and booleans as
/// text, arrays of strings joined by spaces (`scope` style); anything that is
/// not a valid header value is left out.
pub(crate) fn header_value(v: &Value) -> Option<HeaderValue> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()?
            .join(" "),
        _ => return None,
    };
    HeaderValue::from_str(&text).ok()
}
