//! The one error type of the event log.

use uuid::Uuid;

use crate::model::{ExpectedVersion, StreamId};

/// Everything an event-log operation can fail with, each variant something a caller can
/// act on.
#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    /// Optimistic concurrency: the stream moved on since the caller read it.
    #[error("stream `{stream}` is at version {actual}, but the append expected {expected}")]
    WrongExpectedVersion {
        /// The stream appended to.
        stream: StreamId,
        /// What the caller expected.
        expected: ExpectedVersion,
        /// What the stream is at.
        actual: u64,
    },
    /// An event id that already belongs to another stream or to another batch.
    #[error(
        "event id {event_id} is already stored in stream `{stored_in}` and cannot be reused for a different append to `{stream}`"
    )]
    EventIdReused {
        /// The id that clashed.
        event_id: Uuid,
        /// The stream the append was for.
        stream: StreamId,
        /// Where the id is already stored.
        stored_in: StreamId,
    },
    /// Bad input, named precisely.
    #[error("invalid {field} `{value}`: {reason}")]
    InvalidInput {
        /// Which field.
        field: &'static str,
        /// The offending value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The store URL is not one the log understands.
    #[error("unsupported store URL `{0}`: use `sqlite://PATH` or `postgres://…`")]
    UnsupportedStore(String),
    /// A stored row could not be decoded (corruption, or a schema this build does not
    /// know).
    #[error("stored event at row {row} is unreadable: {reason}")]
    Corrupt {
        /// The storage row id.
        row: i64,
        /// What could not be decoded.
        reason: String,
    },
    /// An upcaster failed on a stored event.
    #[error("cannot upcast `{event_type}` from schema version {from}: {reason}")]
    Upcast {
        /// The event type.
        event_type: String,
        /// The version it was stored at.
        from: u32,
        /// Why the upcaster refused.
        reason: String,
    },
    /// No event log where one was expected: an auditor's read-only open found no store
    /// (a mistyped path, an empty database) and created nothing.
    #[error("no event log in {location}: {reason}")]
    NoLog {
        /// The store, as named (passwords redacted by the caller).
        location: String,
        /// What was missing.
        reason: String,
    },
    /// A write was attempted on a store opened read-only.
    #[error("this event store was opened read-only; nothing can be {0}")]
    ReadOnly(&'static str),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A schema migration failed.
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

/// Shorthand for results of this crate.
pub type Result<T, E = EventLogError> = std::result::Result<T, E>;
