//! # The FinOps Center event log
//!
//! Every approval, claim, gap action and recall in FinOps Center is an immutable event.
//! This crate is the one place they are written: an append-only log behind one
//! [`EventStore`] trait with two backends that pass the same conformance suite —
//! PostgreSQL for production and an embedded SQLite file so the service runs with no
//! server.
//!
//! What the log guarantees, on both backends:
//!
//! - **Optimistic concurrency per stream.** An append names the version it expects
//!   ([`ExpectedVersion`]); a conflict is [`EventLogError::WrongExpectedVersion`] with the
//!   expected and actual versions.
//! - **Idempotent retries.** Event ids are the idempotency key: appending the same ids to
//!   the same stream again writes nothing and returns the original versions.
//! - **A gap-free global order.** [`Position`]s are dense and only ever grow; a reader that
//!   has seen position *n* has seen every committed event before it, even when
//!   transactions commit out of order (see the `postgres` module for how).
//! - **Tamper evidence.** Each position carries a SHA-256 hash chained to the one before;
//!   [`verify_chain`] names the first broken link.
//! - **Schema evolution on read.** [`Upcasters`] lift old payload versions; stored rows
//!   are never rewritten (triggers refuse `UPDATE`, `DELETE` and `TRUNCATE`).
//!
//! What it must never do: know about the domain (event payloads are opaque JSON), or
//! rewrite a stored event.

mod chain;
mod error;
mod model;
mod payload;
mod postgres;
mod sqlite;
mod store;
mod upcast;

pub use chain::{BreakKind, ChainBreak, ChainHash, ChainLink, ChainReport, ChainVerifier, StoredEvent, link};
pub use error::{EventLogError, Result};
pub use model::{
    AllRead, AppendOutcome, Backend, Direction, EventMetadata, ExpectedVersion, LogHead, LogStats, MAX_STREAM_ID_LEN,
    NewEvent, Position, RecordedEvent, StreamId, StreamRead,
};
pub use payload::Payload;
pub use postgres::PgEventStore;
pub use sqlite::SqliteEventStore;
pub use store::{Delivery, EventStore, Subscription, open, open_read_only, subscribe, subscribe_where, verify_chain};
pub use upcast::{UpcastStep, Upcasters};
