//! The one `EventStore` abstraction, the behaviour every backend shares (subscriptions,
//! chain verification) and opening a store from a URL.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use crate::chain::{BreakKind, ChainBreak, ChainHash, ChainLink, ChainReport, ChainVerifier, StoredEvent};
use crate::error::{EventLogError, Result};
use crate::model::{
    AllRead, AppendOutcome, Backend, EventMetadata, ExpectedVersion, LogHead, LogStats, NewEvent, Position,
    RecordedEvent, StreamId, StreamRead,
};
use crate::upcast::Upcasters;
use crate::{postgres::PgEventStore, sqlite::SqliteEventStore};

/// How many ledger entries one verification or subscription round reads at a time.
const PAGE: usize = 1_000;

/// An append-only, hash-chained event log. Both backends pass the same conformance suite.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends `events` to `stream` if it is at `expected`. Re-appending the same event ids
    /// to the same stream writes nothing and returns the original versions.
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome>;

    /// Reads part of one stream.
    async fn read_stream(&self, stream: &StreamId, read: StreamRead) -> Result<Vec<RecordedEvent>>;

    /// Reads part of the global order (sealed events only).
    async fn read_all(&self, read: AllRead) -> Result<Vec<RecordedEvent>>;

    /// The events at these positions of the global order, in position order, in one read
    /// (a position the log does not hold is left out): how a read model's document fetches
    /// the event bodies it points at rather than copies (a task's plan).
    async fn read_at(&self, positions: &[Position]) -> Result<Vec<RecordedEvent>>;

    /// The sealed head of the log.
    async fn head(&self) -> Result<LogHead>;

    /// Ledger entries after `after`, raw as stored, for verification.
    async fn chain_links(&self, after: Position, limit: usize) -> Result<Vec<ChainLink>>;

    /// Counts for operators.
    async fn stats(&self) -> Result<LogStats>;

    /// Seals every event committed so far into the global order and returns the new head.
    /// On SQLite appends are sealed as they commit, so this only reads the head.
    async fn seal_committed(&self) -> Result<LogHead>;

    /// Changes whenever the sealed head moves (in this process or, through the backend's
    /// notification channel, in another one). Subscribers also poll, so a lost
    /// notification delays delivery but never loses an event.
    fn head_signal(&self) -> watch::Receiver<u64>;

    /// Which database this is.
    fn backend(&self) -> Backend;
}

/// Opens the store a URL names, creating its schema if needed:
/// `sqlite://PATH` (or a bare path ending in `.db`) or `postgres://…`.
pub async fn open(url: &str, upcasters: Upcasters) -> Result<Arc<dyn EventStore>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgEventStore::connect(url, upcasters).await?))
    } else if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        Ok(Arc::new(SqliteEventStore::open(path, upcasters).await?))
    } else if url.ends_with(".db") || url.ends_with(".sqlite") {
        Ok(Arc::new(SqliteEventStore::open(url, upcasters).await?))
    } else {
        Err(EventLogError::UnsupportedStore(url.to_owned()))
    }
}

/// Opens an existing log for reading only — the auditor's and operator's tools. Nothing is
/// created, migrated, sealed or written: a path that holds no file, or a database without
/// the log's tables, is [`EventLogError::NoLog`]; on PostgreSQL every transaction is read
/// only and no sealer runs (unsealed events stay outside the verified order, as `stats`
/// shows).
pub async fn open_read_only(url: &str, upcasters: Upcasters) -> Result<Arc<dyn EventStore>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgEventStore::connect_read_only(url, upcasters).await?))
    } else if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        Ok(Arc::new(SqliteEventStore::open_read_only(path, upcasters).await?))
    } else if url.ends_with(".db") || url.ends_with(".sqlite") {
        Ok(Arc::new(SqliteEventStore::open_read_only(url, upcasters).await?))
    } else {
        Err(EventLogError::UnsupportedStore(url.to_owned()))
    }
}

/// A live feed of the global order from a checkpoint: first everything already sealed
/// after it, then each new event as it is sealed. Every event arrives exactly once, in
/// position order. Dropping the stream stops the feed.
pub type Subscription = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<RecordedEvent>> + Send>>;

/// What a filtered subscription delivers.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// An event the filter kept (boxed: a checkpoint need not carry an event's size).
    Event(Box<RecordedEvent>),
    /// Caught up: every event through this position was considered, and those after the
    /// last delivered one were filtered out — a subscriber resumes after it.
    CaughtUp(Position),
}

/// Subscribes to every event after `checkpoint` (use `Position::START` for all).
pub fn subscribe(store: Arc<dyn EventStore>, checkpoint: Position, poll: Duration) -> Subscription {
    use tokio_stream::StreamExt;
    Box::pin(subscribe_where(store, checkpoint, poll, |_| true).filter_map(|d| match d {
        Ok(Delivery::Event(e)) => Some(Ok(*e)),
        Ok(Delivery::CaughtUp(_)) => None,
        Err(e) => Some(Err(e)),
    }))
}

/// Subscribes to the events after `checkpoint` that `keep` accepts, each exactly once in
/// position order, with a [`Delivery::CaughtUp`] whenever the feed has caught up past
/// events the filter dropped. The log is read a page at a time into a bounded channel, so
/// a slow subscriber holds back the reading, never grows memory.
pub fn subscribe_where(
    store: Arc<dyn EventStore>,
    checkpoint: Position,
    poll: Duration,
    keep: impl Fn(&RecordedEvent) -> bool + Send + 'static,
) -> ReceiverStream<Result<Delivery>> {
    let (tx, rx) = mpsc::channel(PAGE);
    tokio::spawn(async move {
        let mut signal = store.head_signal();
        let (mut after, mut delivered) = (checkpoint, checkpoint);
        loop {
            let page = match store.read_all(AllRead::forwards_after(after, PAGE)).await {
                Ok(page) => page,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let full = page.len() == PAGE;
            for event in page {
                after = event.position.unwrap_or(after);
                if !keep(&event) {
                    continue;
                }
                delivered = after;
                if tx.send(Ok(Delivery::Event(Box::new(event)))).await.is_err() {
                    return; // the subscriber went away
                }
            }
            if full {
                continue;
            }
            if after > delivered {
                delivered = after;
                if tx.send(Ok(Delivery::CaughtUp(after))).await.is_err() {
                    return;
                }
            }
            // Caught up: wait for the head to move, or poll as a safety net.
            tokio::select! {
                changed = signal.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(poll) => {},
                _ = tx.closed() => return,
            }
        }
    });
    ReceiverStream::new(rx)
}

/// Walks the whole chain from the first position and reports the first broken link. With
/// `recorded_head` (a position and the hash an auditor wrote down earlier), a chain that
/// verifies but no longer holds that hash there is reported as a `HeadMismatch`: that is
/// how a rewrite of every later hash is caught.
pub async fn verify_chain(store: &dyn EventStore, recorded_head: Option<(Position, ChainHash)>) -> Result<ChainReport> {
    let mut verifier = ChainVerifier::default();
    let mut after = Position::START;
    let mut found_at_recorded = None;
    loop {
        let links = store.chain_links(after, PAGE).await?;
        let Some(last) = links.last() else { break };
        after = last.position;
        for entry in &links {
            if let Err(first_break) = verifier.check(entry) {
                let (verified_through, head_hash) = verifier.head();
                return Ok(ChainReport { verified_through, head_hash, first_break: Some(first_break) });
            }
            if recorded_head.is_some_and(|(p, _)| p == entry.position) {
                found_at_recorded = entry.stored_hash;
            }
        }
    }
    let (verified_through, head_hash) = verifier.head();
    let first_break = recorded_head.filter(|(_, h)| found_at_recorded != Some(*h)).map(|(position, recorded)| {
        ChainBreak { position, kind: BreakKind::HeadMismatch { recorded, found: found_at_recorded } }
    });
    Ok(ChainReport { verified_through, head_hash, first_break })
}

/// The stored text of a new event: what the chain hash will cover.
pub(crate) fn encode(event: &NewEvent, recorded_at: chrono::DateTime<chrono::Utc>) -> Result<(String, String)> {
    if event.event_type.trim().is_empty() {
        return Err(EventLogError::InvalidInput {
            field: "event_type",
            value: event.event_type.clone(),
            reason: "must not be empty".into(),
        });
    }
    let metadata = EventMetadata { recorded_at, ..event.metadata.clone() };
    // Serialising a `serde_json::Value` or a derived struct cannot fail.
    let payload = serde_json::to_string(&event.payload).expect("JSON value serialises");
    let metadata = serde_json::to_string(&metadata).expect("metadata serialises");
    Ok((payload, metadata))
}

/// Rejects an append that has nothing in it or repeats an event id.
pub(crate) fn check_batch(stream: &StreamId, events: &[NewEvent]) -> Result<()> {
    if events.is_empty() {
        return Err(EventLogError::InvalidInput {
            field: "events",
            value: stream.to_string(),
            reason: "an append needs at least one event".into(),
        });
    }
    let mut ids: Vec<_> = events.iter().map(|e| e.event_id).collect();
    ids.sort_unstable();
    if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(EventLogError::InvalidInput {
            field: "event_id",
            value: w[0].to_string(),
            reason: "appears twice in one append".into(),
        });
    }
    Ok(())
}

/// Decodes a stored row into the current shape of the event.
pub(crate) fn decode(
    row: i64,
    stored: StoredEvent,
    position: Option<i64>,
    hash: Option<Vec<u8>>,
    upcasters: &Upcasters,
) -> Result<RecordedEvent> {
    let corrupt = |reason: String| EventLogError::Corrupt { row, reason };
    let metadata: EventMetadata =
        serde_json::from_str(&stored.metadata).map_err(|e| corrupt(format!("metadata: {e}")))?;
    let stream_id = StreamId::new(stored.stream_id).map_err(|e| corrupt(e.to_string()))?;
    // Parsed here only when an upcaster lifts it; otherwise when a reader looks at it.
    let (schema_version, payload) = if upcasters.lifts(&stored.event_type, stored.schema_version) {
        let payload: serde_json::Value =
            serde_json::from_str(&stored.payload).map_err(|e| corrupt(format!("payload: {e}")))?;
        let (version, payload) = upcasters.upcast(&stored.event_type, stored.schema_version, payload)?;
        (version, crate::Payload::from(payload))
    } else {
        (stored.schema_version, crate::Payload::stored(stored.payload))
    };
    Ok(RecordedEvent {
        event_id: stored.event_id,
        stream_id,
        stream_version: stored.stream_version,
        position: position.map(|p| Position(p as u64)),
        event_type: stored.event_type,
        schema_version,
        stored_schema_version: stored.schema_version,
        payload,
        metadata,
        hash: hash.as_deref().and_then(crate::chain::ChainHash::from_slice),
    })
}

/// A page of the log (of the global order or of one stream) decoded as its rows arrive,
/// into one vector sized for the page: not a vector of rows grown by doubling, then a
/// second one of events (a rebuild reads a million events in pages of thousands, and the
/// regrowth was an eighth of its reading).
pub(crate) async fn decode_rows(
    rows: impl futures_util::Stream<Item = std::result::Result<EventRow, sqlx::Error>>,
    limit: i64,
    upcasters: &Upcasters,
) -> Result<Vec<RecordedEvent>> {
    use futures_util::TryStreamExt;
    /// Room made up front at most: a caller's limit may be far more than the log holds.
    const MOST_RESERVED: i64 = 10_000;
    let mut rows = std::pin::pin!(rows);
    let mut events = Vec::with_capacity(limit.clamp(0, MOST_RESERVED) as usize);
    while let Some(row) = rows.try_next().await? {
        events.push(row.into_recorded(upcasters)?);
    }
    Ok(events)
}

/// Clamps a caller's count to what SQL's `LIMIT` takes.
pub(crate) fn limit(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// One event row joined with its ledger entry, as both backends return it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct EventRow {
    pub id: i64,
    pub event_id: uuid::Uuid,
    pub stream_id: String,
    pub stream_version: i64,
    pub event_type: String,
    pub schema_version: i32,
    pub payload: String,
    pub metadata: String,
    pub position: Option<i64>,
    pub hash: Option<Vec<u8>>,
}

impl EventRow {
    pub(crate) fn stored(&self) -> StoredEvent {
        self.clone().into_stored()
    }

    /// The stored event, moved out of the row: a task's payload is kilobytes, and a
    /// rebuild decodes them all.
    fn into_stored(self) -> StoredEvent {
        StoredEvent {
            event_id: self.event_id,
            stream_id: self.stream_id,
            stream_version: self.stream_version as u64,
            event_type: self.event_type,
            schema_version: self.schema_version as u32,
            payload: self.payload,
            metadata: self.metadata,
        }
    }

    pub(crate) fn into_recorded(mut self, upcasters: &Upcasters) -> Result<RecordedEvent> {
        let (id, position, hash) = (self.id, self.position, self.hash.take());
        decode(id, self.into_stored(), position, hash, upcasters)
    }
}

/// The read queries, written once: both PostgreSQL and SQLite take `$N` parameters.
pub(crate) mod sql {
    pub const STREAM_FORWARDS: &str = "SELECT e.id, e.event_id, e.stream_id, e.stream_version, e.event_type, \
        e.schema_version, e.payload, e.metadata, l.position, l.hash \
        FROM events e LEFT JOIN ledger l ON l.event_row = e.id \
        WHERE e.stream_id = $1 AND e.stream_version >= $2 ORDER BY e.stream_version LIMIT $3";
    pub const STREAM_BACKWARDS: &str = "SELECT e.id, e.event_id, e.stream_id, e.stream_version, e.event_type, \
        e.schema_version, e.payload, e.metadata, l.position, l.hash \
        FROM events e LEFT JOIN ledger l ON l.event_row = e.id \
        WHERE e.stream_id = $1 AND e.stream_version <= $2 ORDER BY e.stream_version DESC LIMIT $3";
    pub const ALL_FORWARDS: &str = "SELECT e.id, e.event_id, e.stream_id, e.stream_version, e.event_type, \
        e.schema_version, e.payload, e.metadata, l.position, l.hash \
        FROM ledger l JOIN events e ON e.id = l.event_row \
        WHERE l.position > $1 ORDER BY l.position LIMIT $2";
    pub const ALL_BACKWARDS: &str = "SELECT e.id, e.event_id, e.stream_id, e.stream_version, e.event_type, \
        e.schema_version, e.payload, e.metadata, l.position, l.hash \
        FROM ledger l JOIN events e ON e.id = l.event_row \
        WHERE l.position < $1 ORDER BY l.position DESC LIMIT $2";
    /// The events at a set of positions. PostgreSQL takes them as an array, SQLite as the
    /// JSON text of one (`json_each`).
    pub const AT_POSITIONS_POSTGRES: &str = "SELECT e.id, e.event_id, e.stream_id, e.stream_version, e.event_type, \
        e.schema_version, e.payload, e.metadata, l.position, l.hash \
        FROM ledger l JOIN events e ON e.id = l.event_row \
        WHERE l.position = ANY($1) ORDER BY l.position";
    pub const AT_POSITIONS_SQLITE: &str = "SELECT e.id, e.event_id, e.stream_id, e.stream_version, e.event_type, \
        e.schema_version, e.payload, e.metadata, l.position, l.hash \
        FROM ledger l JOIN events e ON e.id = l.event_row \
        WHERE l.position IN (SELECT value FROM json_each($1)) ORDER BY l.position";
    /// Ledger entries with whatever event row they point at (or none).
    pub const CHAIN: &str = "SELECT e.id, e.event_id, e.stream_id, e.stream_version, e.event_type, \
        e.schema_version, e.payload, e.metadata, l.position, l.hash \
        FROM ledger l LEFT JOIN events e ON e.id = l.event_row \
        WHERE l.position > $1 ORDER BY l.position LIMIT $2";
    pub const HEAD: &str = "SELECT position, hash FROM ledger ORDER BY position DESC LIMIT 1";
    pub const STREAM_VERSION: &str = "SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE stream_id = $1";
    pub const COUNT_BY_TYPE: &str = "SELECT event_type, COUNT(*) FROM events GROUP BY event_type ORDER BY event_type";
    pub const COUNT_STREAMS: &str = "SELECT COUNT(DISTINCT stream_id) FROM events";
    pub const COUNT_UNSEALED: &str =
        "SELECT COUNT(*) FROM events e WHERE NOT EXISTS (SELECT 1 FROM ledger l WHERE l.event_row = e.id)";
}

/// The bounds of a stream read as SQL parameters: (query, from_version, limit).
pub(crate) fn stream_query(read: StreamRead) -> (&'static str, i64, i64) {
    match read.direction {
        crate::model::Direction::Forwards => {
            (sql::STREAM_FORWARDS, read.from_version.map_or(1, |v| v as i64), limit(read.max_count))
        }
        crate::model::Direction::Backwards => (
            sql::STREAM_BACKWARDS,
            read.from_version.map_or(i64::MAX, |v| v.min(i64::MAX as u64) as i64),
            limit(read.max_count),
        ),
    }
}

/// The bounds of a global read as SQL parameters: (query, position bound, limit).
pub(crate) fn all_query(read: AllRead) -> (&'static str, i64, i64) {
    match read.direction {
        crate::model::Direction::Forwards => {
            (sql::ALL_FORWARDS, read.after.map_or(0, |p| p.0 as i64), limit(read.max_count))
        }
        crate::model::Direction::Backwards => (
            sql::ALL_BACKWARDS,
            read.after.map_or(i64::MAX, |p| p.0.min(i64::MAX as u64) as i64),
            limit(read.max_count),
        ),
    }
}

/// Turns chain rows into links (a row without an event id lost its event).
pub(crate) fn chain_link(row: ChainRow) -> ChainLink {
    ChainLink {
        position: Position(row.position as u64),
        stored_hash: crate::chain::ChainHash::from_slice(&row.hash),
        event: row.event_id.map(|event_id| StoredEvent {
            event_id,
            stream_id: row.stream_id.unwrap_or_default(),
            stream_version: row.stream_version.unwrap_or_default() as u64,
            event_type: row.event_type.unwrap_or_default(),
            schema_version: row.schema_version.unwrap_or_default() as u32,
            payload: row.payload.unwrap_or_default(),
            metadata: row.metadata.unwrap_or_default(),
        }),
    }
}

/// A ledger entry left-joined with its event row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ChainRow {
    pub event_id: Option<uuid::Uuid>,
    pub stream_id: Option<String>,
    pub stream_version: Option<i64>,
    pub event_type: Option<String>,
    pub schema_version: Option<i32>,
    pub payload: Option<String>,
    pub metadata: Option<String>,
    pub position: i64,
    pub hash: Vec<u8>,
}

/// Assembles head from the `HEAD` query's optional row.
pub(crate) fn head_from(row: Option<(i64, Vec<u8>)>) -> LogHead {
    match row {
        None => LogHead { position: Position::START, hash: crate::chain::ChainHash::GENESIS },
        Some((p, h)) => LogHead {
            position: Position(p as u64),
            hash: crate::chain::ChainHash::from_slice(&h).unwrap_or(crate::chain::ChainHash::GENESIS),
        },
    }
}
