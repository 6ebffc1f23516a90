//! Test harness: a fresh, isolated store per test on each backend.
//!
//! PostgreSQL comes from `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`);
//! each test gets its own schema. When the server cannot be reached the PostgreSQL tests
//! are skipped with a message — unless `CI=true` or `FINOPS_REQUIRE_POSTGRES=1`, where they
//! fail.
#![allow(dead_code)]

use std::str::FromStr;
use std::sync::Arc;

use finops_eventlog::{EventStore, PgEventStore, SqliteEventStore, Upcasters};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{PgPool, SqlitePool};

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Raw access to the database behind a store, to tamper with it as an attacker would.
pub enum RawDb {
    Pg(PgPool),
    Sqlite(SqlitePool),
}

pub struct Harness {
    pub store: Arc<dyn EventStore>,
    pub raw: RawDb,
    pub pg: Option<Arc<PgEventStore>>,
}

fn postgres_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || std::env::var("FINOPS_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned())
}

/// A new schema on the test server, or `None` (skip) when no server is reachable.
pub async fn pg_schema() -> Option<(PgConnectOptions, PgPool)> {
    let url = database_url();
    let base = PgConnectOptions::from_str(&url).expect("DATABASE_URL parses");
    let admin = match PgPoolOptions::new().max_connections(1).connect_with(base.clone()).await {
        Ok(pool) => pool,
        Err(e) if !postgres_required() => {
            eprintln!("SKIPPED: PostgreSQL at {url} is not reachable ({e}); set CI=true to make this a failure");
            return None;
        }
        Err(e) => panic!("PostgreSQL at {url} is required (CI=true or FINOPS_REQUIRE_POSTGRES=1) but unreachable: {e}"),
    };
    let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&admin).await.expect("create schema");
    admin.close().await;
    let options = base.options([("search_path", schema.as_str())]);
    let raw = PgPoolOptions::new().max_connections(4).connect_with(options.clone()).await.expect("connect to schema");
    Some((options, raw))
}

pub async fn postgres(upcasters: Upcasters) -> Option<Harness> {
    let (options, raw) = pg_schema().await?;
    let store = Arc::new(PgEventStore::connect_with(options, upcasters).await.expect("open postgres store"));
    Some(Harness { store: store.clone(), raw: RawDb::Pg(raw), pg: Some(store) })
}

pub async fn sqlite(upcasters: Upcasters) -> Harness {
    let dir = std::env::temp_dir().join("finops-eventlog-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}.db", uuid::Uuid::now_v7()));
    let path = path.to_str().unwrap().to_owned();
    let store = Arc::new(SqliteEventStore::open(&path, upcasters).await.expect("open sqlite store"));
    let raw =
        SqlitePool::connect_with(SqliteConnectOptions::from_str(&format!("sqlite://{path}")).unwrap()).await.unwrap();
    Harness { store, raw: RawDb::Sqlite(raw), pg: None }
}

impl RawDb {
    /// Runs statements with the append-only triggers out of the way, as an attacker with
    /// database access would.
    pub async fn tamper(&self, statements: &[&str]) {
        match self {
            RawDb::Pg(pool) => {
                let mut tx = pool.begin().await.unwrap();
                for s in ["ALTER TABLE events DISABLE TRIGGER USER", "ALTER TABLE ledger DISABLE TRIGGER USER"]
                    .iter()
                    .chain(statements)
                {
                    sqlx::query(sqlx::AssertSqlSafe(s.to_string())).execute(&mut *tx).await.unwrap();
                }
                for s in ["ALTER TABLE events ENABLE TRIGGER USER", "ALTER TABLE ledger ENABLE TRIGGER USER"] {
                    sqlx::query(s).execute(&mut *tx).await.unwrap();
                }
                tx.commit().await.unwrap();
            }
            RawDb::Sqlite(pool) => {
                let mut tx = pool.begin().await.unwrap();
                for t in ["events_no_update", "events_no_delete", "ledger_no_update", "ledger_no_delete"] {
                    sqlx::query(sqlx::AssertSqlSafe(format!("DROP TRIGGER {t}"))).execute(&mut *tx).await.unwrap();
                }
                for s in statements {
                    sqlx::query(sqlx::AssertSqlSafe(s.to_string())).execute(&mut *tx).await.unwrap();
                }
                tx.commit().await.unwrap();
            }
        }
    }

    /// Runs one statement as an ordinary client; returns the database's error text.
    pub async fn try_execute(&self, statement: &'static str) -> Result<(), String> {
        let r = match self {
            RawDb::Pg(pool) => sqlx::query(statement).execute(pool).await.map(|_| ()),
            RawDb::Sqlite(pool) => sqlx::query(statement).execute(pool).await.map(|_| ()),
        };
        r.map_err(|e| e.to_string())
    }

    /// The payload text exactly as stored for the event at `position`.
    pub async fn stored_payload(&self, position: i64) -> String {
        const Q: &str = "SELECT e.payload FROM events e JOIN ledger l ON l.event_row = e.id WHERE l.position = $1";
        match self {
            RawDb::Pg(pool) => sqlx::query_scalar(Q).bind(position).fetch_one(pool).await.unwrap(),
            RawDb::Sqlite(pool) => sqlx::query_scalar(Q).bind(position).fetch_one(pool).await.unwrap(),
        }
    }
}
