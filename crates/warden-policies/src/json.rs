//! Strict JSON for security decisions: duplicate object keys are an error
//! (no parser-differential tricks: `{"owner":"me","owner":"victim"}` must not
//! mean one thing to the gateway and another to the upstream), and nesting is
//! bounded.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 64;

/// Parses `bytes` as one JSON value, refusing duplicate keys, invalid UTF-8
/// and nesting deeper than [`MAX_DEPTH`].
pub fn parse_strict(bytes: &[u8]) -> Result<Value, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = Strict { depth: 0 }.deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(v)
}

#[derive(Clone, Copy)]
struct Strict {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl Strict {
    fn deeper<E: de::Error>(self) -> Result<Self, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format!("nested deeper than {MAX_DEPTH}")));
        }
        Ok(Self { depth: self.depth + 1 })
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.deeper()?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(inner)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.deeper()?;
        let mut out = Map::new();
        let mut keys = KeySet::default();
        while let Some(key) = map.next_key::<String>()? {
            if !keys.insert(&key) {
                return Err(KeySet::duplicate());
            }
            let v = map.next_value_seed(inner)?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// The keys of one object, for the duplicate check. Go's encoding/json and
/// .NET match keys case-insensitively (Go also folds `ſ` and the Kelvin
/// sign): `owner` and `Owner` would be one key upstream, so they are one key
/// here. Small objects (most of them) are checked by a linear scan, larger
/// ones through a set.
#[derive(Default)]
pub(crate) struct KeySet {
    /// Per key of a small object: its first eight folded bytes as a word
    /// (zero-padded), its length, and where the rest of it sits in `tails`.
    /// A key of eight bytes or fewer is its word and length: no copy of it
    /// is kept, and most keys are that short.
    seen: [(u64, u32, u32, u32); FEW],
    count: usize,
    /// The folded bytes past the eighth of the longer keys, end to end.
    tails: Vec<u8>,
    /// Every folded key, once the object has more than [`FEW`] (made only
    /// then: a set's hasher seeds are read from thread-local state).
    many: Option<std::collections::HashSet<String>>,
}

/// `word` with every byte that is an ASCII capital lower-cased, all eight at
/// once (each byte's sums stay below 0x100, so none carries into the next).
fn lower_word(word: u64) -> u64 {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let low7 = word & !HI;
    let from_a = low7 + LO * u64::from(0x80 - b'A');
    let past_z = low7 + LO * u64::from(0x80 - b'Z' - 1);
    let capital = from_a & !past_z & !word & HI;
    word | (capital >> 2)
}

/// Keys an object may have before the set switches to hashing.
const FEW: usize = 16;

impl KeySet {
    /// Adds `key`; false when an equal key (after folding) was already there.
    pub(crate) fn insert(&mut self, key: &str) -> bool {
        let small = self.many.is_none()
            && self.count < FEW
            && key.len() < u32::MAX as usize / 8
            && self.tails.len() < u32::MAX as usize / 2;
        if small && key.is_ascii() {
            // (Folded as it is stored: ASCII folding is lower-casing.)
            return self.insert_small(key.as_bytes());
        }
        if small {
            let folded = fold(key);
            return self.insert_small(folded.as_bytes());
        }
        let mut many = match self.many.take() {
            Some(many) => many,
            None => (0..self.count).map(|i| self.folded(i)).collect(),
        };
        let fresh = many.insert(fold(key));
        self.many = Some(many);
        fresh
    }

    /// Adds a key given folded (or ASCII, folded here).
    fn insert_small(&mut self, key: &[u8]) -> bool {
        let head = lower_word(warden_scan::head(key));
        let start = self.tails.len();
        if key.len() > 8 {
            self.tails.extend(key[8..].iter().map(u8::to_ascii_lowercase));
        }
        let end = self.tails.len();
        // (Both fit in `u32`: `insert` keeps lengths far below its maximum.)
        let len = key.len() as u32;
        let tails = &self.tails;
        let duplicate = self.seen[..self.count]
            .iter()
            .any(|&(h, l, a, b)| h == head && l == len && tails[a as usize..b as usize] == tails[start..end]);
        self.seen[self.count] = (head, len, start as u32, end as u32);
        self.count += 1;
        !duplicate
    }

    /// The `i`th small key, folded, as a string.
    fn folded(&self, i: usize) -> String {
        let (head, len, a, b) = self.seen[i];
        let mut bytes: Vec<u8> = head.to_le_bytes()[..(len as usize).min(8)].to_vec();
        bytes.extend_from_slice(&self.tails[a as usize..b as usize]);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    pub(crate) fn len(&self) -> usize {
        self.many.as_ref().map_or(self.count, |many| many.len())
    }

    /// The error a strict parser stops with on a duplicate.
    pub(crate) fn duplicate<E: de::Error>() -> E {
        E::custom("duplicate object key (compared case-insensitively)")
    }
}

/// The request's media type (`Content-Type` without parameters, lower case;
/// `""` when absent or unreadable).
pub(crate) fn media_type(req: &http::request::Parts) -> String {
    media_of(&req.headers)
}

/// The media type in `headers` (request or response), as [`media_type`].
pub(crate) fn media_of(headers: &http::HeaderMap) -> String {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

pub(crate) use warden_openapi::is_json;

/// A key as case-insensitive parsers see it.
pub(crate) fn fold(key: &str) -> String {
    if key.is_ascii() {
        return key.to_ascii_lowercase();
    }
    key.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            '\u{17f}' => 's',
            '\u{212a}' => 'k',
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_word_is_lower_cased_as_its_bytes_are() {
        for b in 0..=255u8 {
            for at in 0..8 {
                let mut bytes = *b"QuIet_Z@";
                bytes[at] = b;
                let want = u64::from_le_bytes(bytes.map(|c| c.to_ascii_lowercase()));
                assert_eq!(lower_word(u64::from_le_bytes(bytes)), want, "{b:#x} at {at}");
            }
        }
    }

    #[test]
    fn the_key_set_compares_whole_folded_keys_in_both_forms() {
        // Small objects keep their keys end to end: `a` then `b` is not `ab`.
        let mut few = KeySet::default();
        for k in ["a", "b", "ab", "ba", "aB2", "mask"] {
            assert!(few.insert(k), "{k}");
        }
        for dup in ["AB", "ab2", "ma\u{17f}k", "B"] {
            assert!(!few.insert(dup), "{dup}");
        }
        // Keys that share their first eight bytes are told apart by the
        // rest (the word compare only narrows the full one).
        let mut long = KeySet::default();
        for k in ["password", "password_hash", "password_hasx", "password_h", "passwore"] {
            assert!(long.insert(k), "{k}");
        }
        for dup in ["PASSWORD", "Password_Hash", "password_hasX", "pa\u{17f}sword_h"] {
            assert!(!long.insert(dup), "{dup}");
        }
        // Past sixteen keys the set hashes them; duplicates from before and
        // after the switch are still caught, folded the same way.
        let mut many = KeySet::default();
        for i in 0..40 {
            assert!(many.insert(&format!("key{i}")));
        }
        assert_eq!(many.len(), 40);
        for dup in ["KEY3", "Key39", "\u{212a}ey15"] {
            assert!(!many.insert(dup), "{dup}");
        }
        assert!(many.insert("key40"));
    }

    #[test]
    fn duplicates_deep_nesting_and_bad_utf8_are_refused() {
        assert!(parse_strict(br#"{"owner":"me","owner":"victim"}"#).is_err());
        assert!(parse_strict(br#"{"a":{"b":1,"b":2}}"#).is_err());
        assert!(parse_strict(br#"{"owner_id":"me","Owner_Id":"victim"}"#).is_err());
        assert!(parse_strict("{\"mask\":1,\"ma\u{17f}k\":2}".as_bytes()).is_err());
        assert!(parse_strict("{\"kind\":1,\"\u{212a}ind\":2}".as_bytes()).is_err());
        assert!(parse_strict(&[b'"', 0xff, b'"']).is_err());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(parse_strict(deep.as_bytes()).is_err());
        assert!(parse_strict(b"{} trailing").is_err());
        // Past the linear-scan size, before and after the switch to a set.
        let keys = |n: usize| (0..n).map(|i| format!("\"k{i}\":1")).collect::<Vec<_>>().join(",");
        assert!(parse_strict(format!("{{{},\"k3\":2}}", keys(16)).as_bytes()).is_err());
        assert!(parse_strict(format!("{{{},\"K20\":2}}", keys(40)).as_bytes()).is_err());
        assert!(parse_strict(format!("{{{}}}", keys(40)).as_bytes()).is_ok());
        // Look-alikes that are fine: the same key in sibling objects, escapes.
        let v = parse_strict(br#"{"a":{"id":1},"b":{"id":2},"s":"\u00e9"}"#).unwrap();
        assert_eq!(v["b"]["id"], 2);
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse_strict(ok.as_bytes()).is_ok());
    }
}
