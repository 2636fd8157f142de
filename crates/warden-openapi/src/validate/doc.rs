//! A request body as the body validators read it: a tree whose strings and
//! keys are borrowed from the body (copied only when they held an escape),
//! objects kept as member lists. Built by the caller's strict parser and
//! handed to jsonschema as a custom instance representation ([`DocJson`]),
//! it costs no per-key hashing and no per-string copy, where a
//! `serde_json::Value` costs both (its maps are SipHash index maps here,
//! since a dependency turns on serde_json's `preserve_order`).

use std::borrow::Cow;

use jsonschema::JsonType;
use jsonschema::json::{Array, Json, Node, NodeIdentity, Object, cmp};
use serde_json::{Number, Value};

/// One JSON value.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Doc<'a> {
    #[default]
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Doc<'a>>),
    Object(Members<'a>),
}

/// An object's members in document order (keys are unique: the parser
/// refuses duplicates). Objects of more than [`INDEXED`] members also keep
/// their members' positions sorted by key, so a lookup is a binary search
/// rather than a scan.
#[derive(Debug, Clone, PartialEq)]
pub struct Members<'a> {
    list: Vec<(Cow<'a, str>, Doc<'a>)>,
    sorted: Vec<u32>,
}

/// Members up to which a lookup scans the list.
const INDEXED: usize = 16;

impl<'a> Members<'a> {
    /// An object of `list`'s members, whose keys must be distinct.
    pub fn new(list: Vec<(Cow<'a, str>, Doc<'a>)>) -> Self {
        let mut sorted = Vec::new();
        if list.len() > INDEXED {
            // (Bodies are far below u32::MAX members.)
            sorted = (0..list.len()).filter_map(|i| u32::try_from(i).ok()).collect();
            sorted.sort_unstable_by(|&a, &b| list[a as usize].0.cmp(&list[b as usize].0));
        }
        Self { list, sorted }
    }

    /// The members in document order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Doc<'a>)> {
        self.list.iter().map(|(k, v)| (&**k, v))
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&Doc<'a>> {
        if self.sorted.is_empty() {
            return self.list.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        }
        let at = self
            .sorted
            .binary_search_by(|&i| (*self.list[i as usize].0).cmp(key))
            .ok()?;
        Some(&self.list[self.sorted[at] as usize].1)
    }
}

impl Doc<'_> {
    /// The same document as a `serde_json::Value` (error paths, tests).
    pub fn to_value(&self) -> Value {
        match self {
            Doc::Null => Value::Null,
            Doc::Bool(b) => Value::Bool(*b),
            Doc::Number(n) => Value::Number(n.clone()),
            Doc::String(s) => Value::String(s.clone().into_owned()),
            Doc::Array(items) => Value::Array(items.iter().map(Doc::to_value).collect()),
            Doc::Object(members) => Value::Object(members.iter().map(|(k, v)| (k.to_owned(), v.to_value())).collect()),
        }
    }

    /// `value` as a document that owns its strings.
    pub fn from_value(value: &Value) -> Doc<'static> {
        match value {
            Value::Null => Doc::Null,
            Value::Bool(b) => Doc::Bool(*b),
            Value::Number(n) => Doc::Number(n.clone()),
            Value::String(s) => Doc::String(Cow::Owned(s.clone())),
            Value::Array(items) => Doc::Array(items.iter().map(Doc::from_value).collect()),
            Value::Object(map) => Doc::Object(Members::new(
                map.iter()
                    .map(|(k, v)| (Cow::Owned(k.clone()), Doc::from_value(v)))
                    .collect(),
            )),
        }
    }
}

/// The jsonschema representation of [`Doc`] (body validators are built for
/// it).
pub struct DocJson;

impl Json for DocJson {
    type Node<'a> = &'a Doc<'a>;
    type PreparedKey = String;
    type StringBuffer = Doc<'static>;

    // A lookup scans (small objects) or bisects: a pass over the members
    // is as cheap as a few lookups.
    const KEYS_PER_LOOKUP: usize = 2;
    const ACYCLIC: bool = true;

    fn prepare_key(key: &str) -> String {
        key.to_owned()
    }

    fn with_string_node<T>(buffer: &mut Doc<'static>, string: &str, f: impl FnOnce(Self::Node<'_>) -> T) -> T {
        *buffer = Doc::String(Cow::Owned(string.to_owned()));
        f(buffer)
    }
}

impl<'a> Node<'a, DocJson> for &'a Doc<'a> {
    type Object = &'a Members<'a>;
    type Array = &'a [Doc<'a>];
    type Number = &'a Number;

    fn as_object(&self) -> Option<&'a Members<'a>> {
        match self {
            Doc::Object(members) => Some(members),
            _ => None,
        }
    }

    fn as_array(&self) -> Option<&'a [Doc<'a>]> {
        match self {
            Doc::Array(items) => Some(items),
            _ => None,
        }
    }

    fn as_string(&self) -> Option<Cow<'a, str>> {
        match self {
            Doc::String(s) => Some(Cow::Borrowed(&**s)),
            _ => None,
        }
    }

    fn as_number(&self) -> Option<&'a Number> {
        match self {
            Doc::Number(n) => Some(n),
            _ => None,
        }
    }

    fn as_boolean(&self) -> Option<bool> {
        match self {
            Doc::Bool(b) => Some(*b),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, Doc::Null)
    }

    fn json_type(&self) -> JsonType {
        match self {
            Doc::Null => JsonType::Null,
            Doc::Bool(_) => JsonType::Boolean,
            Doc::Number(_) => JsonType::Number,
            Doc::String(_) => JsonType::String,
            Doc::Array(_) => JsonType::Array,
            Doc::Object(_) => JsonType::Object,
        }
    }

    fn string_length_within(&self, min: u64, max: u64) -> Option<bool> {
        let Doc::String(s) = self else {
            return None;
        };
        // A code point takes one to four bytes: the count lies in
        // `ceil(bytes / 4)..=bytes`, which often decides without counting.
        let bytes = s.len() as u64;
        let fewest = bytes.div_ceil(4);
        if bytes < min || fewest > max {
            return Some(false);
        }
        if min <= fewest && bytes <= max {
            return Some(true);
        }
        Some((min..=max).contains(&(s.chars().count() as u64)))
    }

    /// `enum` and `const`: strings, booleans and null compared in place
    /// (no copy of the string), the rest as values.
    fn equals_value(&self, expected: &Value) -> bool {
        match (self, expected) {
            (Doc::String(s), Value::String(e)) => **s == **e,
            (Doc::String(_), _) => false,
            (Doc::Bool(b), _) => expected.as_bool() == Some(*b),
            (Doc::Null, _) => expected.is_null(),
            _ => cmp::equal(&Doc::to_value(self), expected),
        }
    }

    fn to_value(&self) -> Cow<'a, Value> {
        Cow::Owned(Doc::to_value(self))
    }

    fn identity(&self) -> Option<NodeIdentity> {
        Some(NodeIdentity::new(std::ptr::from_ref::<Doc<'a>>(*self) as usize))
    }
}

impl<'a> Object<'a, DocJson> for &'a Members<'a> {
    type Node = &'a Doc<'a>;
    type MemberName = &'a str;
    type MembersIter = MembersIter<'a>;

    fn len(&self) -> usize {
        self.list.len()
    }

    fn get(&self, key: &String) -> Option<&'a Doc<'a>> {
        Members::get(self, key)
    }

    fn members(&self) -> MembersIter<'a> {
        MembersIter(self.list.iter())
    }
}

/// An object's members for jsonschema.
pub struct MembersIter<'a>(std::slice::Iter<'a, (Cow<'a, str>, Doc<'a>)>);

impl<'a> Iterator for MembersIter<'a> {
    type Item = (&'a str, &'a Doc<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (&**k, v))
    }
}

impl<'a> Array<'a, DocJson> for &'a [Doc<'a>] {
    type Node = &'a Doc<'a>;
    type ElementsIter = std::slice::Iter<'a, Doc<'a>>;

    fn len(&self) -> usize {
        <[Doc<'a>]>::len(self)
    }

    fn elements(&self) -> std::slice::Iter<'a, Doc<'a>> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn a_document_round_trips_through_values_in_order() {
        let value = json!({"b": [1, -2, 1.5, "x", null, true], "a": {"c": {}}, "d": []});
        let doc = Doc::from_value(&value);
        assert_eq!(
            serde_json::to_string(&doc.to_value()).unwrap(),
            serde_json::to_string(&value).unwrap()
        );
    }

    #[test]
    fn lookups_find_every_member_of_small_and_large_objects() {
        for n in [0, 1, 5, INDEXED, INDEXED + 1, 100] {
            // Keys in an order that is not sorted.
            let list = (0..n)
                .rev()
                .map(|i| (Cow::Owned(format!("k{i}")), Doc::Bool(i % 2 == 0)))
                .collect();
            let members = Members::new(list);
            for i in 0..n {
                assert_eq!(
                    members.get(&format!("k{i}")),
                    Some(&Doc::Bool(i % 2 == 0)),
                    "{n} members, k{i}"
                );
            }
            assert_eq!(members.get("k"), None);
            assert_eq!(members.get(&format!("k{n}")), None);
        }
    }

    #[test]
    fn enum_comparison_matches_json_equality() {
        let cases = [
            (json!("a"), json!("a"), true),
            (json!("a"), json!("b"), false),
            (json!("1"), json!(1), false),
            (json!(true), json!(true), true),
            (json!(false), json!(0), false),
            (json!(null), json!(null), true),
            (json!(null), json!(false), false),
            (json!(1), json!(1.0), true),
            (json!(2), json!(1), false),
            (json!([1, "a"]), json!([1, "a"]), true),
            (json!({"a": 1}), json!({"a": 2}), false),
        ];
        for (doc, expected, equal) in cases {
            let doc = Doc::from_value(&doc);
            assert_eq!((&doc).equals_value(&expected), equal, "{doc:?} vs {expected}");
        }
    }
}
