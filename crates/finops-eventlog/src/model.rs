//! The event envelope and the vocabulary of appends and reads.
//!
//! These types are shared by every backend; nothing here performs I/O.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::chain::ChainHash;
use crate::error::EventLogError;

/// Longest stream id accepted. Stream ids are names like `business-request-{uuid}`;
/// anything longer is almost certainly a bug in the caller.
pub const MAX_STREAM_ID_LEN: usize = 200;

/// The name of one stream (one aggregate's history), validated on construction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StreamId(String);

impl StreamId {
    /// Accepts a non-empty name of at most [`MAX_STREAM_ID_LEN`] bytes without control
    /// characters or surrounding white space.
    pub fn new(name: impl Into<String>) -> Result<Self, EventLogError> {
        let name = name.into();
        let problem = if name.is_empty() {
            Some("must not be empty")
        } else if name.len() > MAX_STREAM_ID_LEN {
            Some("is longer than 200 bytes")
        } else if name.chars().any(char::is_control) {
            Some("contains a control character")
        } else if name.trim() != name {
            Some("has leading or trailing white space")
        } else {
            None
        };
        match problem {
            Some(reason) => Err(EventLogError::InvalidInput { field: "stream_id", value: name, reason: reason.into() }),
            None => Ok(Self(name)),
        }
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for StreamId {
    type Error = EventLogError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<StreamId> for String {
    fn from(value: StreamId) -> Self {
        value.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the writer believes the stream's version is. A stream's version is the number of
/// events in it: an empty (absent) stream is at version 0, its first event has version 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// Append whatever the stream holds (no concurrency check).
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event must have exactly this version.
    Exact(u64),
}

impl ExpectedVersion {
    /// The version the stream must be at, or `None` for [`ExpectedVersion::Any`].
    pub fn required(self) -> Option<u64> {
        match self {
            Self::Any => None,
            Self::NoStream => Some(0),
            Self::Exact(v) => Some(v),
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::NoStream => f.write_str("no stream"),
            Self::Exact(v) => write!(f, "{v}"),
        }
    }
}

/// Who did it, in which role, why, and in answer to what. Every decision in FinOps Center
/// carries this; the log stores it beside the payload and covers it with the hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct EventMetadata {
    /// The identity that caused the event (a user subject or a system component).
    pub actor_id: String,
    /// The role the actor acted in (for example `finops_lead`).
    pub actor_role: String,
    /// The written reason, required by the domain for approvals, rejections and recalls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rationale: Option<String>,
    /// Ties together every event caused by one user request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    /// The event or command that directly caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// The client's `request_id`, so a retried command can be recognised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// A digest of the request that carried the `request_id`, so that a request id reused
    /// for a different request is refused rather than answered with the first result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_fingerprint: Option<String>,
    /// When the store accepted the append. Set by the store; a value given by the caller
    /// is replaced.
    #[serde(default = "epoch")]
    pub recorded_at: DateTime<Utc>,
}

fn epoch() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

/// An event to append. Its id is the idempotency key of the append: appending the same ids
/// to the same stream again writes nothing and returns the original versions.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// UUID v7 by default (time-ordered); a retry must reuse the same id.
    pub event_id: Uuid,
    /// The event's type name, for example `BusinessRequestSubmitted`.
    pub event_type: String,
    /// The version of the payload's shape; upcasters lift older versions on read.
    pub schema_version: u32,
    /// The event's data.
    pub payload: serde_json::Value,
    /// Who, why, and in answer to what.
    pub metadata: EventMetadata,
}

impl NewEvent {
    /// A new event with a fresh UUID v7, schema version 1 and empty metadata.
    pub fn new(event_type: impl Into<String>, payload: serde_json::Value) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version: 1,
            payload,
            metadata: EventMetadata::default(),
        }
    }

    /// Sets the payload's schema version.
    pub fn with_schema_version(mut self, version: u32) -> Self {
        self.schema_version = version;
        self
    }

    /// Sets the metadata.
    pub fn with_metadata(mut self, metadata: EventMetadata) -> Self {
        self.metadata = metadata;
        self
    }

    /// Sets the event id (a retry reuses the id of its first attempt).
    pub fn with_id(mut self, event_id: Uuid) -> Self {
        self.event_id = event_id;
        self
    }
}

/// A position in the global order of the log: 1 for the first sealed event, dense (no
/// holes), and never reused. `Position::START` (0) stands before the first event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub struct Position(pub u64);

impl Position {
    /// Before the first event: reading or subscribing from here starts at the beginning.
    pub const START: Position = Position(0);
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An event as stored and read back.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// The id given at append.
    pub event_id: Uuid,
    /// The stream it belongs to.
    pub stream_id: StreamId,
    /// Its version within the stream, from 1.
    pub stream_version: u64,
    /// Its place in the global order. `None` only on PostgreSQL, for an event whose
    /// transaction has committed but which the sealer has not yet placed in the order.
    pub position: Option<Position>,
    /// The event's type name.
    pub event_type: String,
    /// The schema version after upcasting (the current shape).
    pub schema_version: u32,
    /// The schema version the event was stored at.
    pub stored_schema_version: u32,
    /// The payload, upcast to `schema_version` (kept as its stored text until looked at).
    pub payload: crate::Payload,
    /// Who, why, when.
    pub metadata: EventMetadata,
    /// The chain hash over this event and its predecessor (`None` until sealed).
    pub hash: Option<ChainHash>,
}

/// The result of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendOutcome {
    /// The stream's version after the append (the version of the last event appended).
    pub next_expected_version: u64,
    /// The stream version given to each event, in the order given.
    pub stream_versions: Vec<u64>,
    /// True when every event id was already in the stream: nothing was written and the
    /// original versions are returned.
    pub already_appended: bool,
}

/// Which way to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Oldest first.
    #[default]
    Forwards,
    /// Newest first.
    Backwards,
}

/// A bounded read of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamRead {
    /// Which way to read.
    pub direction: Direction,
    /// The first version to return (inclusive). `None`: from the start when reading
    /// forwards, from the end when reading backwards.
    pub from_version: Option<u64>,
    /// At most this many events.
    pub max_count: usize,
}

impl StreamRead {
    /// The whole stream, oldest first.
    pub fn all() -> Self {
        Self { direction: Direction::Forwards, from_version: None, max_count: usize::MAX }
    }
}

/// A bounded read of the global order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllRead {
    /// Which way to read.
    pub direction: Direction,
    /// Forwards: return positions strictly after this one. Backwards: strictly before
    /// it, with `None` meaning from the head.
    pub after: Option<Position>,
    /// At most this many events.
    pub max_count: usize,
}

impl AllRead {
    /// Up to `max_count` events after `position`, oldest first.
    pub fn forwards_after(position: Position, max_count: usize) -> Self {
        Self { direction: Direction::Forwards, after: Some(position), max_count }
    }

    /// Up to `max_count` events before `position` (or from the head), newest first.
    pub fn backwards_from(position: Option<Position>, max_count: usize) -> Self {
        Self { direction: Direction::Backwards, after: position, max_count }
    }
}

/// The sealed end of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogHead {
    /// The last sealed position (`Position::START` for an empty log).
    pub position: Position,
    /// The chain hash at that position (the genesis hash for an empty log).
    pub hash: ChainHash,
}

/// What `finops-replay stats` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogStats {
    /// Distinct streams.
    pub streams: u64,
    /// Events stored, sealed or not.
    pub events: u64,
    /// Events committed but not yet sealed into the global order.
    pub unsealed: u64,
    /// Events per type, sorted by type name.
    pub events_by_type: Vec<(String, u64)>,
    /// The sealed head.
    pub head: LogHead,
}

/// Which database holds the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL (production).
    Postgres,
    /// SQLite, one file (the embedded default).
    Sqlite,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Postgres => "postgres",
            Self::Sqlite => "sqlite",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Printable names without surrounding blanks are accepted and kept verbatim;
        /// a control character anywhere is refused.
        #[test]
        fn stream_ids_accept_printable_names(name in "[a-zA-Z0-9][a-zA-Z0-9 ._:/-]{0,150}[a-zA-Z0-9]") {
            let id = StreamId::new(name.clone()).unwrap();
            prop_assert_eq!(id.as_str(), name.as_str());
        }

        #[test]
        fn stream_ids_refuse_control_characters(prefix in "[a-z]{0,10}", c in proptest::char::range('\u{0}', '\u{1f}'), suffix in "[a-z]{1,10}") {
            let err = StreamId::new(format!("{prefix}{c}{suffix}")).unwrap_err();
            let is_invalid_stream_id = matches!(err, EventLogError::InvalidInput { field: "stream_id", .. });
            prop_assert!(is_invalid_stream_id);
        }
    }

    #[test]
    fn expected_versions_read_as_people_say_them() {
        assert_eq!(ExpectedVersion::NoStream.required(), Some(0));
        assert_eq!(ExpectedVersion::Any.required(), None);
        assert_eq!(ExpectedVersion::Exact(3).to_string(), "3");
        assert_eq!(ExpectedVersion::NoStream.to_string(), "no stream");
    }
}
