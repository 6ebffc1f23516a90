//! What the tests and benchmarks of every crate share, without a server: isolated
//! PostgreSQL schemas, fresh SQLite stores, a governance log at scale, a store that counts
//! its reads, and the contexts and events they write with. (The server harness is
//! `finops-e2e`, which re-exports all of this; a crate that needs no server depends on
//! this one and builds without the query engine.)
//!
//! PostgreSQL comes from `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`).
//! When it cannot be reached, PostgreSQL tests are skipped with a message, unless
//! `CI=true` or `FINOPS_REQUIRE_POSTGRES=1`, where they fail.

pub mod governance_log;

use std::str::FromStr;
use std::sync::Arc;

use finops_eventlog::EventStore;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The server the tests use when `DATABASE_URL` is unset.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn postgres_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || std::env::var("FINOPS_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// A store URL for a fresh, empty schema, or `None` (skip) when PostgreSQL is unreachable
/// and not required.
pub async fn fresh_postgres_url() -> Option<String> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
    let options = PgConnectOptions::from_str(&url).expect("DATABASE_URL parses");
    let admin = match PgPoolOptions::new().max_connections(1).connect_with(options).await {
        Ok(pool) => pool,
        Err(e) if !postgres_required() => {
            eprintln!("SKIPPED: PostgreSQL at {url} is not reachable ({e}); set CI=true to make this a failure");
            return None;
        }
        Err(e) => panic!("PostgreSQL at {url} is required (CI=true or FINOPS_REQUIRE_POSTGRES=1) but unreachable: {e}"),
    };
    let schema = format!("e2e_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&admin).await.expect("create schema");
    let separator = if url.contains('?') { '&' } else { '?' };
    Some(format!("{url}{separator}options[search_path]={schema}"))
}

/// Peak resident memory of this process so far (`VmHWM`), MiB; NaN where `/proc` has no
/// such line (benchmarks print it beside their figures).
pub fn peak_rss_mib() -> f64 {
    status_mib("VmHWM:")
}

/// Resident memory of this process now (`VmRSS`), MiB; NaN where `/proc` has no such line.
pub fn rss_mib() -> f64 {
    status_mib("VmRSS:")
}

fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// An operator's command context (ingest, rebuilds) with a fresh request id.
pub fn operator_context(actor_id: &str) -> finops_governance::CommandContext {
    finops_governance::CommandContext::operator(actor_id, uuid::Uuid::now_v7())
}

/// A domain event to append as `actor` in `role`, named by its payload's `type` tag (how
/// the domain's events are written): for tests and benchmarks that write a log directly.
pub fn recorded_by<E: serde::Serialize>(event: &E, actor: &str, role: &str) -> finops_eventlog::NewEvent {
    let payload = serde_json::to_value(event).expect("a domain event serialises");
    let kind = payload["type"].as_str().expect("a domain event is tagged with its type").to_owned();
    // Written at its type's current schema version, as the command handler writes it:
    // stored as version 1, a current-shape payload would be lifted by the upcasters on
    // every read (harmless for today's steps, but not the log a server writes).
    let version = finops_domain::schema::version_of(&kind);
    finops_eventlog::NewEvent::new(kind, payload).with_schema_version(version).with_metadata(
        finops_eventlog::EventMetadata { actor_id: actor.into(), actor_role: role.into(), ..Default::default() },
    )
}

/// A fresh SQLite store path under the system temp directory.
pub fn fresh_sqlite_url() -> String {
    let dir = std::env::temp_dir().join("finops-e2e");
    std::fs::create_dir_all(&dir).expect("temp dir");
    format!("sqlite://{}", dir.join(format!("{}.db", uuid::Uuid::now_v7())).display())
}

/// A real store that counts the events its reads return (how much a fold or a process
/// read, for tests that it reads only what it must), and fails a read when told to.
pub struct CountedStore {
    store: Arc<dyn EventStore>,
    stream_events: std::sync::atomic::AtomicUsize,
    all_events: std::sync::atomic::AtomicUsize,
    /// Reads of the global order left before one fails (0: none fails).
    failing_read: std::sync::atomic::AtomicUsize,
}

impl CountedStore {
    /// Counts the reads of `store`.
    pub fn new(store: Arc<dyn EventStore>) -> Arc<Self> {
        Arc::new(Self {
            store,
            stream_events: Default::default(),
            all_events: Default::default(),
            failing_read: Default::default(),
        })
    }

    /// Makes the `n`th read of the global order from now (1: the next) fail, once, as a
    /// dropped database connection would.
    pub fn fail_read_all(&self, n: usize) {
        self.failing_read.store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// Events returned by stream reads since the last call.
    pub fn take_stream_reads(&self) -> usize {
        self.stream_events.swap(0, std::sync::atomic::Ordering::SeqCst)
    }

    /// Events returned by reads of the global order since the last call.
    pub fn take_all_reads(&self) -> usize {
        self.all_events.swap(0, std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl EventStore for CountedStore {
    async fn append(
        &self,
        stream: &finops_eventlog::StreamId,
        expected: finops_eventlog::ExpectedVersion,
        events: Vec<finops_eventlog::NewEvent>,
    ) -> finops_eventlog::Result<finops_eventlog::AppendOutcome> {
        self.store.append(stream, expected, events).await
    }
    async fn read_stream(
        &self,
        stream: &finops_eventlog::StreamId,
        read: finops_eventlog::StreamRead,
    ) -> finops_eventlog::Result<Vec<finops_eventlog::RecordedEvent>> {
        let events = self.store.read_stream(stream, read).await?;
        self.stream_events.fetch_add(events.len(), std::sync::atomic::Ordering::SeqCst);
        Ok(events)
    }
    async fn read_all(
        &self,
        read: finops_eventlog::AllRead,
    ) -> finops_eventlog::Result<Vec<finops_eventlog::RecordedEvent>> {
        let left = self.failing_read.fetch_update(
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
            |n| n.checked_sub(1),
        );
        if left == Ok(1) {
            return Err(finops_eventlog::EventLogError::Corrupt {
                row: -1,
                reason: "injected: the read failed".into(),
            });
        }
        let events = self.store.read_all(read).await?;
        self.all_events.fetch_add(events.len(), std::sync::atomic::Ordering::SeqCst);
        Ok(events)
    }
    async fn read_at(
        &self,
        positions: &[finops_eventlog::Position],
    ) -> finops_eventlog::Result<Vec<finops_eventlog::RecordedEvent>> {
        self.store.read_at(positions).await
    }
    async fn head(&self) -> finops_eventlog::Result<finops_eventlog::LogHead> {
        self.store.head().await
    }
    async fn chain_links(
        &self,
        after: finops_eventlog::Position,
        limit: usize,
    ) -> finops_eventlog::Result<Vec<finops_eventlog::ChainLink>> {
        self.store.chain_links(after, limit).await
    }
    async fn stats(&self) -> finops_eventlog::Result<finops_eventlog::LogStats> {
        self.store.stats().await
    }
    async fn seal_committed(&self) -> finops_eventlog::Result<finops_eventlog::LogHead> {
        self.store.seal_committed().await
    }
    fn head_signal(&self) -> tokio::sync::watch::Receiver<u64> {
        self.store.head_signal()
    }
    fn backend(&self) -> finops_eventlog::Backend {
        self.store.backend()
    }
}
