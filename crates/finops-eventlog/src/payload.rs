//! An event's payload as read from the log: its stored JSON text, parsed only when asked.
//!
//! Most readers of the log look at a few event types and skip the rest: the governance
//! fold ignores every Cloud Engineer task (whose plan, kilobytes of generated commands, is
//! most of a governance log's bytes), and each projector reads only its own streams.
//! Parsing every payload into a `serde_json::Value` tree when it is read cost more than
//! reading it from the database (issue 14.4, 10.17). So a payload keeps the text it was
//! stored with and is parsed the first time it is looked at — as a `Value` once
//! ([`Payload::value`], or through `Deref`), or straight into a typed event
//! ([`Payload::decode`]) without any `Value` in between.
//!
//! A payload an upcaster lifted has no stored text any more (what was stored is an older
//! shape): it holds the lifted `Value`, and [`Payload::decode`] reads from that.

use std::ops::Deref;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde_json::Value;

/// An event's payload (see the module's documentation).
pub struct Payload {
    /// The text as stored, when it is the event's current shape.
    text: Option<Box<str>>,
    /// The parsed value: set at first use (or at once, when there is no text).
    value: OnceLock<Value>,
}

impl Payload {
    /// A payload kept as its stored text, parsed when first asked.
    pub(crate) fn stored(text: String) -> Self {
        Self { text: Some(text.into_boxed_str()), value: OnceLock::new() }
    }

    /// The payload as a JSON value, parsed from the stored text the first time. Text that
    /// is not JSON (only possible if the stored row was altered, which the hash chain
    /// reports) reads as `null` and is logged; [`Payload::decode`] says why instead.
    pub fn value(&self) -> &Value {
        self.value.get_or_init(|| match self.text.as_deref().map(serde_json::from_str) {
            Some(Ok(value)) => value,
            Some(Err(error)) => {
                tracing::error!(%error, "a stored payload is not JSON; read as null");
                Value::Null
            }
            None => Value::Null,
        })
    }

    /// The payload decoded into `T`: from the stored text directly when it has not been
    /// parsed yet (no `Value` tree built), else from the value.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        match (self.value.get(), self.text.as_deref()) {
            (None, Some(text)) => serde_json::from_str(text),
            _ => T::deserialize(self.value()),
        }
    }

    /// Whether the payload has been parsed into a value yet: a reader that decodes only
    /// typed events, or skips the event, leaves it unparsed (tests and diagnostics).
    pub fn is_parsed(&self) -> bool {
        self.value.get().is_some()
    }
}

impl From<Value> for Payload {
    fn from(value: Value) -> Self {
        Self { text: None, value: OnceLock::from(value) }
    }
}

impl Deref for Payload {
    type Target = Value;

    fn deref(&self) -> &Value {
        self.value()
    }
}

impl Clone for Payload {
    fn clone(&self) -> Self {
        Self { text: self.text.clone(), value: self.value.clone() }
    }
}

/// Payloads are equal when their JSON values are.
impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        match (self.text.as_deref(), other.text.as_deref()) {
            // Stored texts are canonical (a value's keys in order, compact), so equal text
            // is an equal value; unequal text still compares by value.
            (Some(a), Some(b)) if a == b => true,
            _ => self.value() == other.value(),
        }
    }
}

impl PartialEq<Value> for Payload {
    fn eq(&self, other: &Value) -> bool {
        self.value() == other
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.value(), f)
    }
}

/// Compact JSON: the stored text itself when there is one (no parse, no print), else the
/// value's.
impl std::fmt::Display for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.text.as_deref() {
            Some(text) => f.write_str(text),
            None => std::fmt::Display::fmt(self.value(), f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    #[serde(tag = "type")]
    enum Event {
        Approved { by: String, cents: i64 },
    }

    #[test]
    fn a_stored_payload_is_parsed_only_when_looked_at() {
        let payload = Payload::stored(r#"{"by":"ana","cents":250000,"type":"Approved"}"#.to_owned());
        assert!(!payload.is_parsed(), "nothing parsed on read");
        // Typed decoding reads the text and builds no value.
        assert_eq!(payload.decode::<Event>().unwrap(), Event::Approved { by: "ana".into(), cents: 250_000 });
        assert!(!payload.is_parsed());
        assert_eq!(payload["cents"], json!(250_000));
        assert!(payload.is_parsed(), "parsed once, kept");
        assert_eq!(payload.decode::<Event>().unwrap(), Event::Approved { by: "ana".into(), cents: 250_000 });
    }

    #[test]
    fn a_payload_made_from_a_value_decodes_and_compares_like_its_stored_text() {
        let value = json!({"by": "ana", "cents": 1, "type": "Approved"});
        let stored = Payload::stored(serde_json::to_string(&value).unwrap());
        let lifted = Payload::from(value.clone());
        assert_eq!(stored, lifted);
        assert!(lifted.text.is_none());
        assert_eq!(lifted.decode::<Event>().unwrap(), stored.decode::<Event>().unwrap());
        assert_eq!(*stored.clone(), value);
        assert_eq!(stored.to_string(), lifted.to_string(), "printed alike, the stored one without a parse");
        assert_ne!(stored, Payload::from(json!({"by": "bo"})));
    }

    #[test]
    fn text_that_is_not_json_says_why_and_reads_as_null() {
        let payload = Payload::stored("{\"by\": ".to_owned());
        let error = payload.decode::<Event>().unwrap_err();
        assert!(error.is_eof(), "{error}");
        assert_eq!(*payload.value(), Value::Null);
    }
}
