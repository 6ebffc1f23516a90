//! Event-log benchmark on PostgreSQL, each figure next to a raw baseline measured in the
//! same run on the same server:
//!
//! - single-event appends with 1 and 8 writers vs raw single-row `INSERT` transactions of
//!   the same payload (throughput, p50/p99 latency, ratio);
//! - 10-event appends with 8 writers (events/s);
//! - how long the sealer needs after the last append to have everything in the global
//!   order (it runs concurrently with the writers throughout);
//! - read-all throughput vs a raw keyset `SELECT` of a table of the same rows.
//!
//! Run: `cargo bench -p finops-eventlog --bench eventlog` (uses `DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; creates and drops its own schema).
//! `BENCH_SCALE=2` doubles every count.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use finops_eventlog::{AllRead, EventStore, ExpectedVersion, NewEvent, PgEventStore, Position, StreamId, Upcasters};
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

const RAW_TABLE: &str = "CREATE TABLE raw_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id uuid NOT NULL, stream_id text NOT NULL, stream_version bigint NOT NULL,
    event_type text NOT NULL, schema_version integer NOT NULL, payload text NOT NULL, metadata text NOT NULL)";
const RAW_INSERT: &str = "INSERT INTO raw_events (event_id, stream_id, stream_version, event_type, schema_version, payload, metadata) \
    VALUES ($1, $2, $3, $4, $5, $6, $7)";
const RAW_READ: &str = "SELECT id, event_id, stream_id, stream_version, event_type, schema_version, payload, metadata \
    FROM raw_events WHERE id > $1 ORDER BY id LIMIT $2";

type RawRow = (i64, uuid::Uuid, String, i64, String, i32, String, String);

/// A realistic decision event: an approval with its scope and rationale.
fn payload(n: usize) -> serde_json::Value {
    json!({
        "business_request_id": format!("br-{n:08}"),
        "platform": "amazon_bedrock",
        "model_id": "anthropic.claude-sonnet-4-20250514-v1:0",
        "account_id": "123456789012",
        "region": "us-east-1",
        "role_name": format!("finops-support-bot-{:04x}", n % 65536),
        "confirmed_estimate_usd": 1250.75,
    })
}

fn metadata_text() -> String {
    json!({"actor_id": "fl-ana", "actor_role": "finops_lead", "rationale": "approved for the Q3 pilot", "recorded_at": "2026-11-22T10:00:00Z"})
        .to_string()
}

struct Run {
    ops: usize,
    events: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }
    fn percentile(&mut self, p: f64) -> Duration {
        self.latencies.sort_unstable();
        let i = ((self.latencies.len() as f64 * p).ceil() as usize).saturating_sub(1);
        self.latencies[i.min(self.latencies.len() - 1)]
    }
}

async fn raw_inserts(pool: &PgPool, writers: usize, per_writer: usize) -> Run {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let metadata = metadata_text();
            let mut latencies = Vec::with_capacity(per_writer);
            for i in 0..per_writer {
                let body = payload(i).to_string();
                let t = Instant::now();
                sqlx::query(RAW_INSERT)
                    .bind(uuid::Uuid::now_v7())
                    .bind(format!("raw-{w}-{}", i % 100))
                    .bind(i as i64)
                    .bind("BusinessRequestApproved")
                    .bind(1i32)
                    .bind(&body)
                    .bind(&metadata)
                    .execute(&pool)
                    .await
                    .unwrap();
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    collect(tasks, start, writers * per_writer, 1).await
}

async fn appends(store: &Arc<PgEventStore>, writers: usize, per_writer: usize, batch: usize, tag: &str) -> Run {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        let tag = tag.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_writer);
            for i in 0..per_writer {
                let stream = StreamId::new(format!("{tag}-{w}-{}", i % 100)).unwrap();
                let events =
                    (0..batch).map(|k| NewEvent::new("BusinessRequestApproved", payload(i * batch + k))).collect();
                let t = Instant::now();
                store.append(&stream, ExpectedVersion::Any, events).await.unwrap();
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    collect(tasks, start, writers * per_writer, batch).await
}

async fn collect(tasks: Vec<tokio::task::JoinHandle<Vec<Duration>>>, start: Instant, ops: usize, batch: usize) -> Run {
    let mut latencies = Vec::with_capacity(ops);
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    Run { ops, events: ops * batch, elapsed: start.elapsed(), latencies }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn report(label: &str, raw: &mut Run, log: &mut Run) {
    println!(
        "| {label} | {:.0}/s | {} / {} | {:.0}/s | {} / {} | {:.2} |",
        raw.per_second(),
        ms(raw.percentile(0.50)),
        ms(raw.percentile(0.99)),
        log.per_second(),
        ms(log.percentile(0.50)),
        ms(log.percentile(0.99)),
        log.per_second() / raw.per_second()
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // `cargo bench` passes `--bench`; a filter from `cargo test --benches` is ignored too.
    let scale: usize = std::env::var("BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let base = PgConnectOptions::from_str(&url).expect("DATABASE_URL parses");
    let admin = PgPoolOptions::new().max_connections(1).connect_with(base.clone()).await.expect("PostgreSQL reachable");
    let schema = format!("bench_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&admin).await.unwrap();
    let options = base.options([("search_path", schema.as_str())]);
    let store = Arc::new(PgEventStore::connect_with(options.clone(), Upcasters::new()).await.unwrap());
    let raw = PgPoolOptions::new().max_connections(24).connect_with(options).await.unwrap();
    sqlx::query(RAW_TABLE).execute(&raw).await.unwrap();
    let version: String = sqlx::query_scalar("SELECT version()").fetch_one(&raw).await.unwrap();
    println!("server: {version}");
    println!("scale: {scale}\n");

    println!("| case | raw INSERT tx | raw p50 / p99 | append | append p50 / p99 | append / raw |");
    println!("|---|---|---|---|---|---|");
    // Warm both paths so neither pays for connection set-up or plan caching.
    raw_inserts(&raw, 8, 100).await;
    appends(&store, 8, 100, 1, "warm").await;
    for (writers, per_writer) in [(1, 3_000 * scale), (8, 1_000 * scale)] {
        // Alternate raw and log twice so drift in the server (checkpoints, table growth)
        // hits both sides alike; report the better of each.
        let mut best: Option<(Run, Run)> = None;
        for round in 0..2 {
            let r = raw_inserts(&raw, writers, per_writer).await;
            let a = appends(&store, writers, per_writer, 1, &format!("w{writers}r{round}")).await;
            best = Some(match best {
                None => (r, a),
                Some((br, ba)) => (
                    if r.per_second() > br.per_second() { r } else { br },
                    if a.per_second() > ba.per_second() { a } else { ba },
                ),
            });
        }
        let (mut r, mut a) = best.unwrap();
        report(&format!("single-event, {writers} writer(s), {} ops", r.ops), &mut r, &mut a);
    }

    let mut multi = appends(&store, 8, 300 * scale, 10, "multi").await;
    let sealed_at = Instant::now();
    let head = store.seal_committed().await.unwrap();
    let seal_tail = sealed_at.elapsed();
    println!(
        "\n10-event appends, 8 writers: {:.0} events/s ({:.0} appends/s), p50 {} p99 {}",
        multi.per_second(),
        multi.ops as f64 / multi.elapsed.as_secs_f64(),
        ms(multi.percentile(0.50)),
        ms(multi.percentile(0.99))
    );
    println!(
        "sealer: {} events in the global order; {} after the last append to seal the rest",
        head.position,
        ms(seal_tail)
    );

    // Read-all vs a raw keyset scan of a table holding the same number of rows.
    let total = head.position.0 as usize;
    let raw_rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM raw_events").fetch_one(&raw).await.unwrap();
    let page = 1_000;
    let mut best_log = f64::MAX;
    let mut best_raw = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let mut after = Position::START;
        let mut read = 0;
        loop {
            let events = store.read_all(AllRead::forwards_after(after, page)).await.unwrap();
            let Some(last) = events.last() else { break };
            after = last.position.unwrap();
            read += events.len();
        }
        assert_eq!(read, total);
        best_log = best_log.min(t.elapsed().as_secs_f64());

        let t = Instant::now();
        let mut after = 0i64;
        let mut read = 0;
        loop {
            let rows: Vec<RawRow> =
                sqlx::query_as(RAW_READ).bind(after).bind(page as i64).fetch_all(&raw).await.unwrap();
            let Some(last) = rows.last() else { break };
            after = last.0;
            read += rows.len();
        }
        assert_eq!(read as i64, raw_rows);
        best_raw = best_raw.min(t.elapsed().as_secs_f64());
    }
    let log_rate = total as f64 / best_log;
    let raw_rate = raw_rows as f64 / best_raw;
    println!(
        "\nread-all: {log_rate:.0} events/s over {total} events (decoded, upcast-ready); raw SELECT: {raw_rate:.0} rows/s over {raw_rows} rows; ratio {:.2}",
        log_rate / raw_rate
    );

    drop(store);
    raw.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&admin).await.unwrap();
}
