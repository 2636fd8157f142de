//! What the handler reads from a client's request head before any policy
//! runs, gathered in one pass over its fields (which the header-bytes cap
//! walks anyway) instead of one hashed lookup per question.

use http::header::{self, HeaderMap, HeaderValue};
use warden_policies::request_limits::field_bytes;

/// The fields of a client's request head the handler decides on first.
#[derive(Debug, Default)]
pub struct HeadFacts {
    /// Bytes of all fields, counted as the header-bytes cap counts them.
    pub bytes: usize,
    /// How many `Host` fields there are.
    pub hosts: usize,
    /// The first `Host` value.
    pub host: Option<HeaderValue>,
    /// An `Upgrade` field is present.
    pub upgrade: bool,
}

impl HeadFacts {
    /// One pass over `h`.
    pub fn of(h: &HeaderMap) -> Self {
        let mut facts = Self::default();
        for (name, value) in h {
            facts.bytes += field_bytes(name, value);
            if name == header::HOST {
                if facts.hosts == 0 {
                    facts.host = Some(value.clone());
                }
                facts.hosts += 1;
            } else if name == header::UPGRADE {
                facts.upgrade = true;
            }
        }
        facts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_policies::request_limits::header_bytes;

    fn map(fields: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in fields {
            h.append(*n, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn facts_agree_with_the_lookups_they_replace() {
        for fields in [
            &[][..],
            &[("host", "a.example"), ("accept", "*/*")][..],
            &[("host", "a.example"), ("x-a", "1"), ("host", "b.example")][..],
            &[
                ("upgrade", "websocket"),
                ("connection", "upgrade"),
                ("x-a", "1"),
                ("x-a", "2"),
            ][..],
        ] {
            let h = map(fields);
            let facts = HeadFacts::of(&h);
            assert_eq!(facts.bytes, header_bytes(&h), "{fields:?}");
            assert_eq!(facts.hosts, h.get_all(header::HOST).iter().count(), "{fields:?}");
            assert_eq!(facts.host.as_ref(), h.get(header::HOST), "{fields:?}");
            assert_eq!(facts.upgrade, h.contains_key(header::UPGRADE), "{fields:?}");
        }
    }
}
