//! The embedded SQLite backend: one file, no server. SQLite serialises writers, so each
//! append seals its own events (next dense positions, chained hashes) in the same
//! transaction, and the global order is the commit order.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::chain::{self, ChainLink};
use crate::error::{EventLogError, Result};
use crate::model::{
    AllRead, AppendOutcome, Backend, ExpectedVersion, LogHead, LogStats, NewEvent, Position, RecordedEvent, StreamId,
    StreamRead,
};
use crate::postgres::already_appended;
use crate::store::{self, ChainRow, EventRow, EventStore, sql};
use crate::upcast::Upcasters;

/// How often to look for appends made by another process on the same file.
const HEAD_POLL: Duration = Duration::from_millis(200);

const INSERT_EVENT: &str = "INSERT INTO events \
    (event_id, stream_id, stream_version, event_type, schema_version, payload, metadata) \
    VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";
const INSERT_LEDGER: &str = "INSERT INTO ledger (position, event_row, hash) VALUES ($1, $2, $3)";
const FIND_ID: &str = "SELECT event_id, stream_id, stream_version FROM events WHERE event_id = $1";

/// The append-only log in one SQLite file.
pub struct SqliteEventStore {
    /// One connection: appends are serialised here rather than by SQLITE_BUSY retries.
    writer: SqlitePool,
    /// Opened by an auditor's tool: no migration, no appends.
    read_only: bool,
    readers: SqlitePool,
    upcasters: Upcasters,
    head: watch::Sender<u64>,
    poll_task: JoinHandle<()>,
}

impl std::fmt::Debug for SqliteEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteEventStore").finish_non_exhaustive()
    }
}

impl Drop for SqliteEventStore {
    fn drop(&mut self) {
        self.poll_task.abort();
    }
}

impl SqliteEventStore {
    /// Opens (creating if needed) the log in the file at `path` and migrates it.
    pub async fn open(path: &str, upcasters: Upcasters) -> Result<Self> {
        if path.is_empty() || path.contains(":memory:") || path.starts_with("memory") {
            return Err(EventLogError::InvalidInput {
                field: "store",
                value: path.to_owned(),
                reason: "the embedded store needs a file path; an in-memory database would lose every event".into(),
            });
        }
        if let Some(dir) = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| EventLogError::InvalidInput {
                field: "store",
                value: path.to_owned(),
                reason: format!("cannot create directory {}: {e}", dir.display()),
            })?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an acknowledged append survives power loss, as on PostgreSQL.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let readers = SqlitePoolOptions::new().max_connections(4).connect_with(options.read_only(true)).await?;

        let start: Option<(i64, Vec<u8>)> = sqlx::query_as(sql::HEAD).fetch_optional(&readers).await?;
        let (head, _) = watch::channel(store::head_from(start).position.0);
        let poll_task = tokio::spawn(watch_file_head(readers.clone(), head.clone()));
        Ok(Self { writer, read_only: false, readers, upcasters, head, poll_task })
    }

    /// Opens an existing log file for reading only: a missing file, or one without the
    /// log's tables, is [`EventLogError::NoLog`] and nothing is created or migrated.
    pub async fn open_read_only(path: &str, upcasters: Upcasters) -> Result<Self> {
        if !std::path::Path::new(path).is_file() {
            return Err(EventLogError::NoLog {
                location: format!("`{path}`"),
                reason: "no such file (nothing was created)".into(),
            });
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .create_if_missing(false)
            .read_only(true)
            .busy_timeout(Duration::from_secs(10));
        let readers = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        let tables: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('events', 'ledger')",
        )
        .fetch_one(&readers)
        .await?;
        if tables != 2 {
            return Err(EventLogError::NoLog {
                location: format!("`{path}`"),
                reason: "the file has no `events` and `ledger` tables".into(),
            });
        }
        let start: Option<(i64, Vec<u8>)> = sqlx::query_as(sql::HEAD).fetch_optional(&readers).await?;
        let (head, _) = watch::channel(store::head_from(start).position.0);
        let poll_task = tokio::spawn(watch_file_head(readers.clone(), head.clone()));
        Ok(Self { writer: readers.clone(), read_only: true, readers, upcasters, head, poll_task })
    }
}

/// Another process may append to the same file; polling the head keeps subscribers live.
async fn watch_file_head(readers: SqlitePool, head: watch::Sender<u64>) {
    loop {
        tokio::time::sleep(HEAD_POLL).await;
        if let Ok(Some((p, _))) = sqlx::query_as::<_, (i64, Vec<u8>)>(sql::HEAD).fetch_optional(&readers).await {
            head.send_if_modified(|h| {
                let moved = *h < p as u64;
                *h = (*h).max(p as u64);
                moved
            });
        }
    }
}

#[async_trait]
impl EventStore for SqliteEventStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome> {
        if self.read_only {
            return Err(EventLogError::ReadOnly("appended"));
        }
        store::check_batch(stream, &events)?;
        let now = Utc::now();
        let encoded = events.iter().map(|e| store::encode(e, now)).collect::<Result<Vec<_>>>()?;
        let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();

        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let mut found = Vec::new();
        for id in &ids {
            if let Some(row) =
                sqlx::query_as::<_, (Uuid, String, i64)>(FIND_ID).bind(id).fetch_optional(&mut *tx).await?
            {
                found.push(row);
            }
        }
        if let Some(outcome) = already_appended(stream, &ids, &found)? {
            return Ok(outcome);
        }
        let actual: i64 = sqlx::query_scalar(sql::STREAM_VERSION).bind(stream.as_str()).fetch_one(&mut *tx).await?;
        if let Some(required) = expected.required().filter(|r| *r != actual as u64) {
            let _ = required;
            return Err(EventLogError::WrongExpectedVersion {
                stream: stream.clone(),
                expected,
                actual: actual as u64,
            });
        }
        let last: Option<(i64, Vec<u8>)> = sqlx::query_as(sql::HEAD).fetch_optional(&mut *tx).await?;
        let LogHead { position, hash } = store::head_from(last);
        let (mut position, mut previous) = (position.0, hash);

        let mut stream_versions = Vec::with_capacity(events.len());
        for (i, (event, (payload, metadata))) in events.iter().zip(encoded).enumerate() {
            let version = actual as u64 + 1 + i as u64;
            let row: i64 = sqlx::query_scalar(INSERT_EVENT)
                .bind(event.event_id)
                .bind(stream.as_str())
                .bind(version as i64)
                .bind(&event.event_type)
                .bind(event.schema_version as i64)
                .bind(&payload)
                .bind(&metadata)
                .fetch_one(&mut *tx)
                .await?;
            position += 1;
            previous = chain::link(
                &previous,
                Position(position),
                &chain::StoredEvent {
                    event_id: event.event_id,
                    stream_id: stream.as_str().to_owned(),
                    stream_version: version,
                    event_type: event.event_type.clone(),
                    schema_version: event.schema_version,
                    payload,
                    metadata,
                },
            );
            sqlx::query(INSERT_LEDGER)
                .bind(position as i64)
                .bind(row)
                .bind(previous.0.as_slice())
                .execute(&mut *tx)
                .await?;
            stream_versions.push(version);
        }
        tx.commit().await?;
        self.head.send_if_modified(|h| {
            let moved = *h < position;
            *h = (*h).max(position);
            moved
        });
        Ok(AppendOutcome {
            next_expected_version: *stream_versions.last().expect("checked non-empty"),
            stream_versions,
            already_appended: false,
        })
    }

    async fn read_stream(&self, stream: &StreamId, read: StreamRead) -> Result<Vec<RecordedEvent>> {
        let (query, from, limit) = store::stream_query(read);
        let rows =
            sqlx::query_as::<_, EventRow>(query).bind(stream.as_str()).bind(from).bind(limit).fetch(&self.readers);
        store::decode_rows(rows, limit, &self.upcasters).await
    }

    async fn read_all(&self, read: AllRead) -> Result<Vec<RecordedEvent>> {
        let (query, bound, limit) = store::all_query(read);
        let rows = sqlx::query_as::<_, EventRow>(query).bind(bound).bind(limit).fetch(&self.readers);
        store::decode_rows(rows, limit, &self.upcasters).await
    }

    async fn read_at(&self, positions: &[Position]) -> Result<Vec<RecordedEvent>> {
        let positions: Vec<i64> = positions.iter().filter_map(|p| i64::try_from(p.0).ok()).collect();
        let limit = store::limit(positions.len());
        let json = serde_json::to_string(&positions).expect("numbers serialise");
        let rows = sqlx::query_as::<_, EventRow>(sql::AT_POSITIONS_SQLITE).bind(json).fetch(&self.readers);
        store::decode_rows(rows, limit, &self.upcasters).await
    }

    async fn head(&self) -> Result<LogHead> {
        let row: Option<(i64, Vec<u8>)> = sqlx::query_as(sql::HEAD).fetch_optional(&self.readers).await?;
        Ok(store::head_from(row))
    }

    async fn chain_links(&self, after: Position, limit: usize) -> Result<Vec<ChainLink>> {
        let rows: Vec<ChainRow> =
            sqlx::query_as(sql::CHAIN).bind(after.0 as i64).bind(store::limit(limit)).fetch_all(&self.readers).await?;
        Ok(rows.into_iter().map(store::chain_link).collect())
    }

    async fn stats(&self) -> Result<LogStats> {
        let by_type: Vec<(String, i64)> = sqlx::query_as(sql::COUNT_BY_TYPE).fetch_all(&self.readers).await?;
        let streams: i64 = sqlx::query_scalar(sql::COUNT_STREAMS).fetch_one(&self.readers).await?;
        let unsealed: i64 = sqlx::query_scalar(sql::COUNT_UNSEALED).fetch_one(&self.readers).await?;
        let events_by_type: Vec<(String, u64)> = by_type.into_iter().map(|(t, n)| (t, n as u64)).collect();
        Ok(LogStats {
            streams: streams as u64,
            events: events_by_type.iter().map(|(_, n)| n).sum(),
            unsealed: unsealed as u64,
            events_by_type,
            head: self.head().await?,
        })
    }

    async fn seal_committed(&self) -> Result<LogHead> {
        self.head().await
    }

    fn head_signal(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    fn backend(&self) -> Backend {
        Backend::Sqlite
    }
}
