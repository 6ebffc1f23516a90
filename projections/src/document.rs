//! A read model's document as it is folded: a JSON object held as the JSON text of each of
//! its members, in key order.
//!
//! A document is text at both ends — read from the database, written back with `COPY` or
//! an upsert, hashed for the digest — and the large members of the busiest read models
//! (a request's details, a task's generated commands) are copied from an event's stored
//! payload unchanged. Held as text, such a member is never parsed into a tree, rebuilt or
//! escaped again: a rebuild's fold and write cost what the members the events change cost,
//! not what the whole document holds. Members are compared, hashed and written as their
//! text, so the text of a member must be the canonical JSON a [`Value`] prints (compact,
//! object keys in order): that is what an event's stored payload is (the log stores a
//! `Value`'s text), what [`Document::set`] makes of a scalar, a sequence or a [`Value`],
//! and what a document read back from the database holds.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// A JSON object, member by member as JSON text, in key order.
#[derive(Clone, Default)]
pub struct Document {
    members: BTreeMap<Cow<'static, str>, Box<RawValue>>,
}

impl Document {
    /// An empty document (`{}`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads a stored document: its members' text is kept as it is, not parsed.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Sets `key` to `value`'s JSON. `value` must print as a [`Value`] would — a scalar, a
    /// sequence or map of those, or a `Value` — never a struct, whose fields print in
    /// declaration order rather than in key order (convert it with `json!` first, or copy
    /// the canonical text with [`Document::set_raw`]).
    pub fn set(&mut self, key: &'static str, value: impl Serialize) {
        let raw = serde_json::value::to_raw_value(&value).expect("a document member serialises");
        self.members.insert(Cow::Borrowed(key), raw);
    }

    /// Sets `key` to JSON text that is already canonical: a member of an event's stored
    /// payload (decoded as a [`RawValue`]), or of another document.
    pub fn set_raw(&mut self, key: &'static str, value: Box<RawValue>) {
        self.members.insert(Cow::Borrowed(key), value);
    }

    /// The JSON text of member `key`.
    pub fn raw(&self, key: &str) -> Option<&RawValue> {
        self.members.get(key).map(|v| &**v)
    }

    /// Member `key` decoded (`None` when absent or of another shape).
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        serde_json::from_str(self.raw(key)?.get()).ok()
    }

    /// Whether member `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.members.contains_key(key)
    }

    /// Appends the document's text — compact JSON, keys in order, exactly as its
    /// [`Value`] prints — to `out`.
    pub fn write_text(&self, out: &mut String) {
        out.push('{');
        for (i, (key, value)) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_key(out, key);
            out.push(':');
            out.push_str(value.get());
        }
        out.push('}');
    }

    /// The document's text (see [`Document::write_text`]).
    pub fn text(&self) -> String {
        let mut out = String::with_capacity(self.text_len());
        self.write_text(&mut out);
        out
    }

    /// About how long the text is (the members' text and the keys; escapes not counted).
    fn text_len(&self) -> usize {
        2 + self.members.iter().map(|(k, v)| k.len() + v.get().len() + 4).sum::<usize>()
    }

    /// The document as a tree, for readers that look inside it.
    pub fn to_value(&self) -> Value {
        // Member by member: the whole text is never printed only to be parsed again.
        let members = self
            .members
            .iter()
            .map(|(key, raw)| (key.to_string(), serde_json::from_str(raw.get()).expect("a member's text is JSON")));
        Value::Object(members.collect())
    }
}

/// `key` as a JSON string: quoted, escaped as `serde_json` escapes a map key.
fn push_key(out: &mut String, key: &str) {
    if key.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(key);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(key).expect("a string serialises"));
    }
}

impl From<Value> for Document {
    /// A tree made into a document.
    ///
    /// # Panics
    /// When `value` is not an object: a read model's documents are objects (a projector
    /// making anything else is a bug, caught by its first test).
    fn from(value: Value) -> Self {
        let Value::Object(members) = value else { panic!("a read-model document is a JSON object, not {value}") };
        Self {
            members: members
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k), serde_json::value::to_raw_value(&v).expect("a JSON value serialises")))
                .collect(),
        }
    }
}

impl From<Document> for Value {
    fn from(doc: Document) -> Self {
        doc.to_value()
    }
}

impl<'de> Deserialize<'de> for Document {
    /// A JSON object, each member kept as its text.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let members = BTreeMap::<String, Box<RawValue>>::deserialize(deserializer)?;
        Ok(Self { members: members.into_iter().map(|(k, v)| (Cow::Owned(k), v)).collect() })
    }
}

impl PartialEq for Document {
    /// Equal when their text is: the members' text is canonical.
    fn eq(&self, other: &Self) -> bool {
        self.members.len() == other.members.len()
            && self.members.iter().zip(&other.members).all(|((ka, va), (kb, vb))| ka == kb && va.get() == vb.get())
    }
}

impl Eq for Document {}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn prints_as_its_value_prints() {
        let mut doc = Document::new();
        doc.set("b", 2);
        doc.set("a", "x\"y");
        doc.set_raw("c", RawValue::from_string(r#"{"k":[1,2]}"#.into()).unwrap());
        doc.set("d", json!({"z": 1, "y": null}));
        assert_eq!(doc.text(), serde_json::to_string(&doc.to_value()).unwrap());
        assert_eq!(doc.text(), r#"{"a":"x\"y","b":2,"c":{"k":[1,2]},"d":{"y":null,"z":1}}"#);
        assert_eq!(doc.get::<String>("a").as_deref(), Some("x\"y"));
        assert_eq!(doc.get::<u64>("a"), None, "another shape reads as absent");
    }

    #[test]
    fn a_stored_document_reads_back_member_for_member() {
        let stored = r#"{"a":{"b":[1,"two",null]},"k\"ey":true,"n":-1.5}"#;
        let doc = Document::parse(stored).unwrap();
        assert_eq!(doc.text(), stored);
        assert_eq!(doc.raw("a").unwrap().get(), r#"{"b":[1,"two",null]}"#);
        assert!(Document::parse("[1]").is_err(), "a document is an object");
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            // Quarters: serde_json reads back exactly what it prints of these (not of every
            // float without its `float_roundtrip` feature, documents or not).
            (-4_000_000i64..4_000_000).prop_map(|q| Value::from(q as f64 / 4.0)),
            ".{0,8}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(".{0,6}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever the tree, the document made from it prints the tree's own text, reads
        /// back from that text unchanged, and turns back into the same tree.
        #[test]
        fn text_round_trips_as_the_tree(members in prop::collection::btree_map(".{0,6}", json_value(), 0..6)) {
            let tree = Value::Object(members.into_iter().collect());
            let doc = Document::from(tree.clone());
            let text = doc.text();
            prop_assert_eq!(&text, &serde_json::to_string(&tree).unwrap());
            prop_assert_eq!(Document::parse(&text).unwrap(), doc.clone());
            prop_assert_eq!(doc.to_value(), tree);
        }
    }
}
