//! The PostgreSQL backend.
//!
//! # Gap-free global order
//!
//! Writers insert into `events` concurrently and never wait for one another (unless they
//! write the same stream). A sequence cannot be the global order: a transaction that took
//! id 10 may commit after one that took id 11, and a reader polling `id > last` would
//! skip 10 forever. Instead each row is stamped with its transaction id
//! (`pg_current_xact_id()`), and one **sealer** at a time (an advisory lock elects it)
//! moves committed events into `ledger`, the global order:
//!
//! - it only takes events whose transaction is below `pg_snapshot_xmin(pg_current_snapshot())`,
//!   the oldest transaction still in flight, so every transaction it sees is final;
//! - it takes them in `(tx_id, id)` order after the last sealed event, gives them the next
//!   dense positions and chains their hashes, all in one transaction.
//!
//! Ledger positions therefore commit in order, and a reader's plain `position > last`
//! poll over the ledger is gap-free. Rolled-back events never become visible and never
//! get a position. The hash chain costs writers nothing: it is computed by the sealer,
//! which follows the committed order instead of serialising the writers.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Row};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::chain::{self, ChainHash, ChainLink};
use crate::error::{EventLogError, Result};
use crate::model::{
    AllRead, AppendOutcome, Backend, ExpectedVersion, LogHead, LogStats, NewEvent, Position, RecordedEvent, StreamId,
    StreamRead,
};
use crate::store::{self, ChainRow, EventRow, EventStore, sql};
use crate::upcast::Upcasters;

/// Events sealed per sealer transaction.
const SEAL_BATCH: i64 = 2_000;
/// How often the sealer looks for appends made by other processes.
const SEAL_POLL: Duration = Duration::from_millis(50);
/// How long a woken sealer waits to gather more appends into its round.
const SEAL_GATHER: Duration = Duration::from_millis(5);
/// How many times an `Any` append retries a lost race for the next stream version.
const MAX_ANY_RETRIES: usize = 100;

const APPEND: &str = "WITH head AS ( \
        SELECT COALESCE(MAX(stream_version), 0) AS v FROM events WHERE stream_id = $1 \
    ) \
    INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version, payload, metadata) \
    SELECT n.event_id, $1, head.v + n.ord, n.event_type, n.schema_version, n.payload, n.metadata \
    FROM head, UNNEST($2::uuid[], $3::text[], $4::int[], $5::text[], $6::text[]) \
        WITH ORDINALITY AS n(event_id, event_type, schema_version, payload, metadata, ord) \
    WHERE $7::bigint IS NULL OR head.v = $7 \
    ORDER BY n.ord \
    RETURNING stream_version";

/// The same statement for the common one-event append, without array parameters: cheaper
/// to plan and execute.
const APPEND_ONE: &str = "WITH head AS ( \
        SELECT COALESCE(MAX(stream_version), 0) AS v FROM events WHERE stream_id = $1 \
    ) \
    INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version, payload, metadata) \
    SELECT $2, $1, head.v + 1, $3, $4, $5, $6 \
    FROM head \
    WHERE $7::bigint IS NULL OR head.v = $7 \
    RETURNING stream_version";

const FIND_IDS: &str = "SELECT event_id, stream_id, stream_version FROM events WHERE event_id = ANY($1::uuid[])";

/// Only one sealer per schema at a time; the key is derived from the schema name so that
/// isolated test schemas do not wait for one another.
const TRY_SEALER_LOCK: &str = "SELECT pg_try_advisory_xact_lock(1179602767, hashtext(current_schema()))";
const SEALER_LOCK: &str = "SELECT true FROM pg_advisory_xact_lock(1179602767, hashtext(current_schema()))";

const LAST_SEALED: &str = "SELECT l.position, l.hash, e.tx_id::text AS tx, e.id \
    FROM ledger l JOIN events e ON e.id = l.event_row ORDER BY l.position DESC LIMIT 1";

const PENDING_THROUGH: &str = "SELECT EXISTS (SELECT 1 FROM events \
    WHERE id <= $1 AND (tx_id, id) > ($2::text::xid8, $3))";

const SEALABLE: &str = "SELECT id, event_id, stream_id, stream_version, event_type, schema_version, \
        payload, metadata, NULL::bigint AS position, NULL::bytea AS hash \
    FROM events \
    WHERE (tx_id, id) > ($1::text::xid8, $2) \
      AND tx_id < pg_snapshot_xmin(pg_current_snapshot()) \
    ORDER BY tx_id, id LIMIT $3";

const INSERT_LEDGER: &str = "INSERT INTO ledger (position, event_row, hash) \
    SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bytea[])";

/// The append-only log on PostgreSQL.
pub struct PgEventStore {
    pool: PgPool,
    /// Opened by an auditor's tool: no sealer, no appends, read-only transactions.
    read_only: bool,
    upcasters: Upcasters,
    head: watch::Sender<u64>,
    wake_sealer: Arc<Notify>,
    channel: Arc<str>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for PgEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgEventStore").field("pool", &self.pool).finish_non_exhaustive()
    }
}

impl Drop for PgEventStore {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl PgEventStore {
    /// Connects to `url`, migrates the schema and starts the sealer.
    pub async fn connect(url: &str, upcasters: Upcasters) -> Result<Self> {
        let options: PgConnectOptions = url.parse()?;
        Self::connect_with(options, upcasters).await
    }

    /// Connects with explicit options (for example a `search_path` for an isolated
    /// schema), migrates and starts the sealer.
    pub async fn connect_with(options: PgConnectOptions, upcasters: Upcasters) -> Result<Self> {
        let pool =
            PgPoolOptions::new().max_connections(24).min_connections(1).connect_with(paged_reads(options)).await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        let schema: String = sqlx::query_scalar("SELECT current_schema()").fetch_one(&pool).await?;
        let channel: Arc<str> = channel_name(&schema).into();

        let head_now = sealed_head(&pool).await?.position.0;
        let (head, _) = watch::channel(head_now);
        let wake_sealer = Arc::new(Notify::new());

        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(&channel).await?;
        let listen_task = tokio::spawn(forward_notifications(listener, head.clone()));
        let seal_task = tokio::spawn(run_sealer(pool.clone(), channel.clone(), head.clone(), wake_sealer.clone()));

        Ok(Self { pool, read_only: false, upcasters, head, wake_sealer, channel, tasks: vec![listen_task, seal_task] })
    }

    /// Connects to an existing log for reading only: no migration, no sealer, every
    /// transaction `READ ONLY` (the server refuses any write), and [`EventLogError::NoLog`]
    /// when the schema holds no log.
    pub async fn connect_read_only(url: &str, upcasters: Upcasters) -> Result<Self> {
        let options: PgConnectOptions = url.parse()?;
        let options = options.options([("default_transaction_read_only", "on")]);
        let pool = PgPoolOptions::new().max_connections(4).connect_with(paged_reads(options)).await?;
        let has_log: bool =
            sqlx::query_scalar("SELECT to_regclass('events') IS NOT NULL AND to_regclass('ledger') IS NOT NULL")
                .fetch_one(&pool)
                .await?;
        if !has_log {
            let schema: String = sqlx::query_scalar("SELECT current_schema()").fetch_one(&pool).await?;
            return Err(EventLogError::NoLog {
                location: format!("PostgreSQL schema `{schema}`"),
                reason: "it has no `events` and `ledger` tables".into(),
            });
        }
        let schema: String = sqlx::query_scalar("SELECT current_schema()").fetch_one(&pool).await?;
        let (head, _) = watch::channel(sealed_head(&pool).await?.position.0);
        Ok(Self {
            pool,
            read_only: true,
            upcasters,
            head,
            wake_sealer: Arc::new(Notify::new()),
            channel: channel_name(&schema).into(),
            tasks: vec![],
        })
    }

    /// The connection pool (for benchmarks and operator tooling).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Seals, in one pass, every committed event that can be placed in the global order
    /// now (those older than every transaction still in flight); returns how many.
    pub async fn seal_available(&self) -> Result<usize> {
        if self.read_only {
            return Ok(0);
        }
        let mut total = 0;
        loop {
            let n = seal_batch(&self.pool, SEALER_LOCK, &self.channel, &self.head).await?;
            total += n;
            if n < SEAL_BATCH as usize {
                return Ok(total);
            }
        }
    }

    /// Appends inside a transaction the caller owns: nothing is visible, and nothing is
    /// sealed, until the caller commits; a rollback leaves no trace in the log. A failed
    /// append rolls back only its own savepoint.
    pub async fn append_within(
        conn: &mut PgConnection,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome> {
        store::check_batch(stream, &events)?;
        let batch = EncodedBatch::new(&events)?;
        let mut savepoint = conn.begin().await?;
        let attempt = insert(&mut savepoint, stream, expected, &batch).await;
        match attempt {
            Ok(Some(outcome)) => {
                savepoint.commit().await?;
                Ok(outcome)
            }
            Ok(None) | Err(Attempt::Raced) => {
                savepoint.rollback().await?;
                match resolve(conn, stream, expected, &batch.ids).await? {
                    Resolution::Done(outcome) => Ok(outcome),
                    Resolution::Conflict(actual) | Resolution::Retry(actual) => {
                        Err(EventLogError::WrongExpectedVersion { stream: stream.clone(), expected, actual })
                    }
                }
            }
            Err(Attempt::Failed(e)) => Err(e),
        }
    }
}

/// A batch as the column arrays of the `UNNEST` insert.
struct EncodedBatch {
    ids: Vec<Uuid>,
    types: Vec<String>,
    versions: Vec<i32>,
    payloads: Vec<String>,
    metadata: Vec<String>,
}

impl EncodedBatch {
    fn new(events: &[NewEvent]) -> Result<Self> {
        let now = Utc::now();
        let mut batch = Self {
            ids: Vec::with_capacity(events.len()),
            types: Vec::with_capacity(events.len()),
            versions: Vec::with_capacity(events.len()),
            payloads: Vec::with_capacity(events.len()),
            metadata: Vec::with_capacity(events.len()),
        };
        for event in events {
            let (payload, metadata) = store::encode(event, now)?;
            batch.ids.push(event.event_id);
            batch.types.push(event.event_type.clone());
            batch.versions.push(i32::try_from(event.schema_version).unwrap_or(i32::MAX));
            batch.payloads.push(payload);
            batch.metadata.push(metadata);
        }
        Ok(batch)
    }
}

enum Attempt {
    /// A unique constraint fired: another writer got there first, or these ids exist.
    Raced,
    Failed(EventLogError),
}

enum Resolution {
    Done(AppendOutcome),
    /// The stream is at this version and the expectation does not hold.
    Conflict(u64),
    /// Lost a race that a retry may win (`Any`, or the stream is at the expected version).
    Retry(u64),
}

/// One `INSERT … SELECT` statement: computes the next versions, checks the expectation and
/// inserts. `Ok(None)` means the expectation did not hold (no row inserted).
async fn insert(
    conn: &mut PgConnection,
    stream: &StreamId,
    expected: ExpectedVersion,
    batch: &EncodedBatch,
) -> std::result::Result<Option<AppendOutcome>, Attempt> {
    let required = expected.required().map(|v| v as i64);
    let query = if batch.ids.len() == 1 {
        sqlx::query_scalar::<_, i64>(APPEND_ONE)
            .bind(stream.as_str())
            .bind(batch.ids[0])
            .bind(&batch.types[0])
            .bind(batch.versions[0])
            .bind(&batch.payloads[0])
            .bind(&batch.metadata[0])
    } else {
        sqlx::query_scalar::<_, i64>(APPEND)
            .bind(stream.as_str())
            .bind(&batch.ids)
            .bind(&batch.types)
            .bind(&batch.versions)
            .bind(&batch.payloads)
            .bind(&batch.metadata)
    };
    let rows = query.bind(required).fetch_all(&mut *conn).await;
    match rows {
        Ok(versions) if versions.is_empty() => Ok(None),
        Ok(versions) => {
            let stream_versions: Vec<u64> = versions.into_iter().map(|v| v as u64).collect();
            Ok(Some(AppendOutcome {
                next_expected_version: *stream_versions.last().expect("non-empty"),
                stream_versions,
                already_appended: false,
            }))
        }
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Err(Attempt::Raced),
        Err(e) => Err(Attempt::Failed(e.into())),
    }
}

/// After an insert that wrote nothing: is this a retry of an append that already
/// happened, a reused id, or a version conflict?
async fn resolve(
    conn: &mut PgConnection,
    stream: &StreamId,
    expected: ExpectedVersion,
    ids: &[Uuid],
) -> Result<Resolution> {
    let found: Vec<(Uuid, String, i64)> = sqlx::query_as(FIND_IDS).bind(ids).fetch_all(&mut *conn).await?;
    if let Some(outcome) = already_appended(stream, ids, &found)? {
        return Ok(Resolution::Done(outcome));
    }
    let actual: i64 = sqlx::query_scalar(sql::STREAM_VERSION).bind(stream.as_str()).fetch_one(&mut *conn).await?;
    let actual = actual as u64;
    match expected.required() {
        Some(required) if required != actual => Ok(Resolution::Conflict(actual)),
        _ => Ok(Resolution::Retry(actual)),
    }
}

/// Decides whether `found` (the stored rows with any of `ids`) shows the whole batch
/// already in `stream`; a partial or foreign match is a reused id.
pub(crate) fn already_appended(
    stream: &StreamId,
    ids: &[Uuid],
    found: &[(Uuid, String, i64)],
) -> Result<Option<AppendOutcome>> {
    if found.is_empty() {
        return Ok(None);
    }
    if let Some((id, other, _)) = found.iter().find(|(_, s, _)| s != stream.as_str()) {
        return Err(EventLogError::EventIdReused {
            event_id: *id,
            stream: stream.clone(),
            stored_in: StreamId::new(other.clone())?,
        });
    }
    let mut stream_versions = Vec::with_capacity(ids.len());
    for id in ids {
        match found.iter().find(|(f, _, _)| f == id) {
            Some((_, _, v)) => stream_versions.push(*v as u64),
            None => {
                // Some of the batch is stored and some is not: not a retry of one append.
                let (stored, _, _) = &found[0];
                return Err(EventLogError::EventIdReused {
                    event_id: *stored,
                    stream: stream.clone(),
                    stored_in: stream.clone(),
                });
            }
        }
    }
    Ok(Some(AppendOutcome {
        next_expected_version: stream_versions.iter().copied().max().unwrap_or(0),
        stream_versions,
        already_appended: true,
    }))
}

#[async_trait]
impl EventStore for PgEventStore {
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
        let batch = EncodedBatch::new(&events)?;
        let mut conn = self.pool.acquire().await?;
        for _ in 0..MAX_ANY_RETRIES {
            // Autocommit: the insert is its own transaction, one round trip.
            let resolution = match insert(&mut conn, stream, expected, &batch).await {
                Ok(Some(outcome)) => {
                    self.wake_sealer.notify_one();
                    return Ok(outcome);
                }
                Ok(None) | Err(Attempt::Raced) => resolve(&mut conn, stream, expected, &batch.ids).await?,
                Err(Attempt::Failed(e)) => return Err(e),
            };
            match resolution {
                Resolution::Done(outcome) => return Ok(outcome),
                Resolution::Conflict(actual) => {
                    return Err(EventLogError::WrongExpectedVersion { stream: stream.clone(), expected, actual });
                }
                Resolution::Retry(_) => continue,
            }
        }
        let actual: i64 = sqlx::query_scalar(sql::STREAM_VERSION).bind(stream.as_str()).fetch_one(&mut *conn).await?;
        Err(EventLogError::WrongExpectedVersion { stream: stream.clone(), expected, actual: actual as u64 })
    }

    async fn read_stream(&self, stream: &StreamId, read: StreamRead) -> Result<Vec<RecordedEvent>> {
        let (query, from, limit) = store::stream_query(read);
        let rows = sqlx::query_as::<_, EventRow>(query).bind(stream.as_str()).bind(from).bind(limit).fetch(&self.pool);
        store::decode_rows(rows, limit, &self.upcasters).await
    }

    async fn read_all(&self, read: AllRead) -> Result<Vec<RecordedEvent>> {
        let (query, bound, limit) = store::all_query(read);
        let rows = sqlx::query_as::<_, EventRow>(query).bind(bound).bind(limit).fetch(&self.pool);
        store::decode_rows(rows, limit, &self.upcasters).await
    }

    async fn read_at(&self, positions: &[Position]) -> Result<Vec<RecordedEvent>> {
        let positions: Vec<i64> = positions.iter().filter_map(|p| i64::try_from(p.0).ok()).collect();
        let limit = store::limit(positions.len());
        let rows = sqlx::query_as::<_, EventRow>(sql::AT_POSITIONS_POSTGRES).bind(positions).fetch(&self.pool);
        store::decode_rows(rows, limit, &self.upcasters).await
    }

    async fn head(&self) -> Result<LogHead> {
        sealed_head(&self.pool).await
    }

    async fn chain_links(&self, after: Position, limit: usize) -> Result<Vec<ChainLink>> {
        let rows: Vec<ChainRow> =
            sqlx::query_as(sql::CHAIN).bind(after.0 as i64).bind(store::limit(limit)).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(store::chain_link).collect())
    }

    async fn stats(&self) -> Result<LogStats> {
        let by_type: Vec<(String, i64)> = sqlx::query_as(sql::COUNT_BY_TYPE).fetch_all(&self.pool).await?;
        let streams: i64 = sqlx::query_scalar(sql::COUNT_STREAMS).fetch_one(&self.pool).await?;
        let unsealed: i64 = sqlx::query_scalar(sql::COUNT_UNSEALED).fetch_one(&self.pool).await?;
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
        if self.read_only {
            // An auditor reads the order as it stands; sealing is a writer's job.
            return self.head().await;
        }
        // Everything visible now must be sealed before returning. Any transaction still in
        // flight anywhere in the cluster holds the horizon back, so wait for it to end.
        let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM events").fetch_one(&self.pool).await?;
        let Some(newest) = newest else { return self.head().await };
        loop {
            let sealed = self.seal_available().await?;
            let (last_tx, last_id) = last_sealed_key(&self.pool).await?;
            let pending: bool = sqlx::query_scalar(PENDING_THROUGH)
                .bind(newest)
                .bind(&last_tx)
                .bind(last_id)
                .fetch_one(&self.pool)
                .await?;
            if !pending {
                return self.head().await;
            }
            if sealed == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }

    fn head_signal(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }

    fn backend(&self) -> Backend {
        Backend::Postgres
    }
}

/// No parallel workers for the log's queries. Each is a page bounded by an index (a
/// stream's versions, the global order after a position) or a point lookup, and for such
/// a page the planner still chose a `Gather Merge` of two workers (it divides the join's
/// cost among them): every page then forked two processes, and a page of 5 000 events took
/// 50–60 ms instead of 26 ms on a 2-core machine, where the workers also took the CPU the
/// reader needed (a rebuild of 1 M events started about 400 of them).
fn paged_reads(options: PgConnectOptions) -> PgConnectOptions {
    options.options([("max_parallel_workers_per_gather", "0")])
}

async fn sealed_head(pool: &PgPool) -> Result<LogHead> {
    let row: Option<(i64, Vec<u8>)> = sqlx::query_as(sql::HEAD).fetch_optional(pool).await?;
    Ok(store::head_from(row))
}

/// The `(tx_id, id)` of the last sealed event: everything at or below it is sealed.
async fn last_sealed_key(pool: &PgPool) -> Result<(String, i64)> {
    sealed_key(sqlx::query(LAST_SEALED).fetch_optional(pool).await?)
}

fn sealed_key(row: Option<sqlx::postgres::PgRow>) -> Result<(String, i64)> {
    Ok(match row {
        None => ("0".to_owned(), 0),
        Some(row) => (row.try_get("tx")?, row.try_get("id")?),
    })
}

/// One channel per schema, so isolated schemas do not wake each other's subscribers.
fn channel_name(schema: &str) -> String {
    let safe: String = schema.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!("finops_sealed_{safe}").chars().take(63).collect()
}

/// Seals up to one batch; returns how many events it sealed. `lock` either waits for the
/// sealer lock or gives up when another sealer holds it.
async fn seal_batch(pool: &PgPool, lock: &'static str, channel: &str, head: &watch::Sender<u64>) -> Result<usize> {
    let mut tx = pool.begin().await?;
    let locked: bool = sqlx::query_scalar(lock).fetch_one(&mut *tx).await?;
    if !locked {
        return Ok(0);
    }
    let last = sqlx::query(LAST_SEALED).fetch_optional(&mut *tx).await?;
    let (mut position, mut previous) = match &last {
        None => (0i64, ChainHash::GENESIS),
        Some(row) => {
            let hash: Vec<u8> = row.try_get("hash")?;
            (row.try_get::<i64, _>("position")?, ChainHash::from_slice(&hash).unwrap_or(ChainHash::GENESIS))
        }
    };
    let (last_tx, last_id) = sealed_key(last)?;
    let rows: Vec<EventRow> =
        sqlx::query_as(SEALABLE).bind(&last_tx).bind(last_id).bind(SEAL_BATCH).fetch_all(&mut *tx).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut positions = Vec::with_capacity(rows.len());
    let mut event_rows = Vec::with_capacity(rows.len());
    let mut hashes = Vec::with_capacity(rows.len());
    for row in &rows {
        position += 1;
        previous = chain::link(&previous, Position(position as u64), &row.stored());
        positions.push(position);
        event_rows.push(row.id);
        hashes.push(previous.0.to_vec());
    }
    sqlx::query(INSERT_LEDGER).bind(&positions).bind(&event_rows).bind(&hashes).execute(&mut *tx).await?;
    sqlx::query("SELECT pg_notify($1, $2)").bind(channel).bind(position.to_string()).execute(&mut *tx).await?;
    tx.commit().await?;
    head.send_if_modified(|h| {
        let moved = *h < position as u64;
        *h = (*h).max(position as u64);
        moved
    });
    tracing::debug!(sealed = rows.len(), head = position, "sealed events into the ledger");
    Ok(rows.len())
}

/// Seals whenever this process appended, and polls for other processes' appends.
async fn run_sealer(pool: PgPool, channel: Arc<str>, head: watch::Sender<u64>, wake: Arc<Notify>) {
    loop {
        match seal_batch(&pool, TRY_SEALER_LOCK, &channel, &head).await {
            Ok(n) if n == SEAL_BATCH as usize => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "sealer round failed; retrying"),
        }
        tokio::select! {
            _ = wake.notified() => {
                // Let a few more appends land so one round seals them together: a round
                // per append would double the database's work under steady load.
                tokio::time::sleep(SEAL_GATHER).await;
            },
            _ = tokio::time::sleep(SEAL_POLL) => {},
        }
    }
}

/// Moves the head signal when another process's sealer announces a new head.
async fn forward_notifications(mut listener: PgListener, head: watch::Sender<u64>) {
    loop {
        match listener.recv().await {
            Ok(n) => {
                if let Ok(position) = n.payload().parse::<u64>() {
                    head.send_if_modified(|h| {
                        let moved = *h < position;
                        *h = (*h).max(position);
                        moved
                    });
                }
            }
            Err(e) => {
                // PgListener reconnects on the next recv; subscribers poll meanwhile.
                tracing::warn!(error = %e, "lost the sealer notification channel");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
