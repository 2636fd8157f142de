//! Fuzzes the request validator (the `contract` policy's engine) on the
//! 23-operation shop spec of the gateway's tests: any method, path, query,
//! header and cookie values and body. Input: a flags byte (method, media
//! type) and four NUL-separated parts: path, query, header value, body.
//! Invariants: no panic; the same request gets the same answer twice; a 400
//! names a location (`/body/…`, `/query/…`) first.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use warden_openapi::validate::{Doc, Params};
use warden_openapi::{RequestValidator, Spec, Violation};

const SPEC: &[u8] = include_bytes!("../../crates/warden/tests/fixtures/shop-api.yaml");
const METHODS: [&str; 6] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];
const MEDIA: [&str; 4] = [
    "application/json",
    "application/merge-patch+json",
    "text/plain",
    "image/png",
];

fn validator(strict: bool) -> &'static RequestValidator {
    static LOOSE: OnceLock<RequestValidator> = OnceLock::new();
    static STRICT: OnceLock<RequestValidator> = OnceLock::new();
    let cell = if strict { &STRICT } else { &LOOSE };
    cell.get_or_init(|| {
        let spec = Spec::parse(SPEC, None).expect("the shop spec loads");
        RequestValidator::new(spec, String::new(), strict).expect("the shop spec compiles")
    })
}

fn check(v: &RequestValidator, method: &str, media: &str, parts: &[&str; 4], body: &[u8]) -> Result<(), Violation> {
    let [path, query, header_value, _] = *parts;
    let query: Vec<(String, String)> = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (
                warden_openapi::percent_decode_lossy(k),
                warden_openapi::percent_decode_lossy(v),
            )
        })
        .collect();
    let header = |_: &str| Some(header_value.to_owned());
    let cookies: Vec<(String, String)> = header_value
        .split(';')
        .map(|c| {
            let (k, v) = c.trim().split_once('=').unwrap_or((c.trim(), ""));
            (k.to_owned(), v.trim_matches('"').to_owned())
        })
        .collect();
    let params = Params {
        path,
        query: &query,
        header: &header,
        cookies: &cookies,
    };
    let op = v.operation(method, path)?;
    v.check_params(op, &params, true)?;
    v.check_body(op, media, body, |b| serde_json::from_slice::<Value>(b).ok().map(|v| Doc::from_value(&v)))
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut split = rest.splitn(4, |b| *b == 0);
    let mut next = || String::from_utf8_lossy(split.next().unwrap_or_default()).into_owned();
    let (path, query, header, body) = (next(), next(), next(), next());
    let parts = [path.as_str(), query.as_str(), header.as_str(), body.as_str()];
    let method = METHODS[usize::from(flags & 7) % METHODS.len()];
    let media = MEDIA[usize::from(flags >> 3 & 3)];
    let v = validator(flags & 0x20 != 0);
    let first = check(v, method, media, &parts, body.as_bytes());
    assert_eq!(first, check(v, method, media, &parts, body.as_bytes()));
    if let Err(Violation::Invalid(detail)) = &first {
        assert!(detail.starts_with('/'), "{detail}");
    }
});
