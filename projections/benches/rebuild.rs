//! Projection rebuild benchmark, next to a raw scan of the same events in the same run on
//! the same database (issue 10.17).
//!
//! A governance log is generated through the domain's own decisions
//! (`finops_testkit::governance_log`: Business Requests submitted, approved or rejected, Cloud
//! Engineer tasks created with their commands and worked through), then:
//!
//! - *raw SELECT*: every stored event (ledger ⋈ events, all columns as text) in keyset
//!   pages of 5 000 — the floor any rebuild pays to read the log;
//! - *read_all*: the log's own read (JSON decoded, upcast), for reference;
//! - *governance fold*: the governance state folded from the whole log
//!   (`finops_governance::state::state_as_of`, what every point-in-time question would
//!   cost without the timeline's marks; issue 14.4), for its cost per event;
//! - *rebuild*: `finops-replay rebuild` — every read model folded into a new generation
//!   and swapped in, against live read models that already hold the log (as on a store a
//!   server serves: a rebuild reads them for its before-digests), so a generated log is
//!   rebuilt once, untimed, before the rounds; after each round the replaced generations
//!   are dropped and the documents table vacuumed, untimed, as autovacuum would.
//!
//! Run: `cargo bench -p finops-projections --bench rebuild` (PostgreSQL from
//! `DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`, in a schema of
//! its own, dropped after unless `FINOPS_BENCH_KEEP=1`; `FINOPS_BENCH_EVENTS` sets the log's
//! size, default 200 000; `FINOPS_BENCH_STORE=sqlite` runs on the embedded store instead).
//! `FINOPS_BENCH_URL` measures a log kept by an earlier run (its `kept:` line) instead of
//! generating one, and keeps it; `FINOPS_BENCH_ROUNDS` sets the rounds (default 3). Each
//! phase announces itself on standard error as it starts, so that a profiler can be
//! attached to one (`perf record -a` while "rebuild" runs).

/// The allocator `finops-replay` runs with (glibc's malloc took a third of a rebuild).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

use finops_eventlog::{AllRead, Position, Upcasters};
use uuid::Uuid;

/// A stored event as text: position, id, stream, version, type, schema version, payload,
/// metadata.
type RawRow = (i64, String, String, i64, String, i32, String, String);

fn best(runs: &[Duration]) -> Duration {
    *runs.iter().min().unwrap()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // As `finops-replay` runs.
    finops_projections::keep_freed_memory();
    let target: usize = std::env::var("FINOPS_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let rounds: usize = std::env::var("FINOPS_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let kept = std::env::var("FINOPS_BENCH_URL").ok().filter(|u| !u.is_empty());
    let sqlite = kept
        .as_deref()
        .map_or_else(|| std::env::var("FINOPS_BENCH_STORE").is_ok_and(|v| v == "sqlite"), |u| u.starts_with("sqlite:"));
    let (url, schema) = if let Some(url) = &kept {
        (url.clone(), None)
    } else if sqlite {
        let path = std::env::temp_dir().join(format!("finops-rebuild-bench-{}.db", Uuid::now_v7()));
        (format!("sqlite://{}", path.display()), None)
    } else {
        let base =
            std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let schema = format!("bench_rebuild_{}", Uuid::now_v7().simple());
        let admin = sqlx::PgPool::connect(&base).await.expect("PostgreSQL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&admin).await.unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        (format!("{base}{sep}options[search_path]={schema}"), Some((admin, schema)))
    };
    let store = finops_eventlog::open(&url, Upcasters::new()).await.unwrap();
    let events = if kept.is_some() {
        store.seal_committed().await.unwrap().position.0 as usize
    } else {
        let started = Instant::now();
        let events = finops_testkit::governance_log::generate(&store, target).await;
        eprintln!("generated {events} events in {:.1} s", started.elapsed().as_secs_f64());
        events
    };

    // Raw scan: the stored text of every event in the global order, nothing decoded; on
    // PostgreSQL without parallel workers, as the log reads its pages (they only slow a
    // page down).
    let raw_pool = sqlx::AnyPool::connect(&{
        sqlx::any::install_default_drivers();
        if sqlite {
            url.clone()
        } else {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}options[max_parallel_workers_per_gather]=0")
        }
    })
    .await
    .unwrap();
    let mut raw = Vec::new();
    let mut read_all = Vec::new();
    let mut rebuild = Vec::new();
    let mut retired = Vec::new();
    let mut governance = Vec::new();
    let mut phases = Vec::new();
    let models = finops_projections::ReadModels::open(&url).await.unwrap();
    let runner = finops_projections::ProjectionRunner::new(
        store.clone(),
        models.clone(),
        finops_projections::governance_projectors(),
    );
    if kept.is_none() {
        eprintln!("warm-up: the live read models built");
        runner.rebuild_all(&finops_projections::ALL).await.unwrap();
        models.retired().await;
    }
    for round in 1..=rounds {
        eprintln!("round {round}: raw SELECT");
        let t = Instant::now();
        let mut after = 0i64;
        let mut rows = 0usize;
        loop {
            let page: Vec<RawRow> = sqlx::query_as(
                "SELECT l.position, CAST(e.event_id AS TEXT), e.stream_id, e.stream_version, e.event_type, \
                 e.schema_version, e.payload, e.metadata FROM ledger l JOIN events e ON e.id = l.event_row \
                 WHERE l.position > $1 ORDER BY l.position LIMIT 5000",
            )
            .bind(after)
            .fetch_all(&raw_pool)
            .await
            .unwrap();
            let Some(last) = page.last() else { break };
            after = last.0;
            rows += page.len();
        }
        assert_eq!(rows, events);
        raw.push(t.elapsed());

        eprintln!("round {round}: read_all");
        let t = Instant::now();
        let mut after = Position::START;
        let mut n = 0;
        loop {
            let page = store.read_all(AllRead::forwards_after(after, 5_000)).await.unwrap();
            let Some(last) = page.last().and_then(|e| e.position) else { break };
            after = last;
            n += page.len();
        }
        assert_eq!(n, events);
        read_all.push(t.elapsed());

        eprintln!("round {round}: governance fold");
        let t = Instant::now();
        let state = finops_governance::state::state_as_of(store.as_ref(), None).await.unwrap();
        governance.push(t.elapsed());
        drop(state);

        eprintln!("round {round}: rebuild");
        let t = Instant::now();
        let rebuilt = runner.rebuild_all(&finops_projections::ALL).await.unwrap();
        rebuild.push(t.elapsed());
        assert!(rebuilt.reports.iter().all(|r| r.events as usize == events));
        phases.push(rebuilt.phases);
        // The replaced generations are dropped behind the swap; timed apart, and before
        // the next round's scans so that they do not slow those.
        eprintln!("round {round}: retire");
        let t = Instant::now();
        models.retired().await;
        retired.push(t.elapsed());
        if !sqlite {
            // What a round left dead must not slow the next.
            sqlx::query("VACUUM read_model_documents").execute(&raw_pool).await.unwrap();
        }
    }
    let rate = |d: Duration| events as f64 / d.as_secs_f64();
    let rebuild_runs = rebuild.clone();
    let (raw, read_all, rebuild, governance) = (best(&raw), best(&read_all), best(&rebuild), best(&governance));
    println!("store: {}", if sqlite { "SQLite (embedded)" } else { "PostgreSQL" });
    println!("events: {events}");
    println!("raw SELECT          {:>8.3} s  {:>10.0} events/s", raw.as_secs_f64(), rate(raw));
    println!(
        "read_all            {:>8.3} s  {:>10.0} events/s  ratio {:.2}",
        read_all.as_secs_f64(),
        rate(read_all),
        rate(read_all) / rate(raw)
    );
    println!(
        "governance fold     {:>8.3} s  {:>10.0} events/s  ratio {:.2}  ({:.1} µs an event)",
        governance.as_secs_f64(),
        rate(governance),
        rate(governance) / rate(raw),
        governance.as_secs_f64() * 1e6 / events as f64
    );
    println!(
        "rebuild (all)       {:>8.3} s  {:>10.0} events/s  ratio {:.2}",
        rebuild.as_secs_f64(),
        rate(rebuild),
        rate(rebuild) / rate(raw)
    );
    // The phases of the fastest rebuild: where its time went.
    let fastest = (0..phases.len()).min_by_key(|&i| rebuild_runs[i]).expect("at least one round");
    let p = phases[fastest];
    let each: Vec<String> = rebuild_runs.iter().map(|d| format!("{:.3} s", d.as_secs_f64())).collect();
    println!("  rounds: {}", each.join(", "));
    println!(
        "  of which: read and fold {:.3} s, write {:.3} s, swap and catch up {:.3} s",
        p.read_and_fold.as_secs_f64(),
        p.write.as_secs_f64(),
        p.swap_and_catch_up.as_secs_f64()
    );
    let retired = best(&retired);
    println!(
        "and dropping the replaced generations after it: {:.3} s (rebuild and drop {:.2} of the raw scan's rate)",
        retired.as_secs_f64(),
        rate(rebuild + retired) / rate(raw)
    );
    drop(runner);
    drop(models);
    drop(store);
    if kept.is_some() || std::env::var("FINOPS_BENCH_KEEP").is_ok_and(|v| v == "1") {
        // Kept for the small-reads benchmark (scripts/bench_small_reads.py): serve it.
        println!("kept: {url}");
        return;
    }
    if let Some((admin, schema)) = schema {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&admin).await.unwrap();
    } else if let Some(path) = url.strip_prefix("sqlite://") {
        let _ = std::fs::remove_file(path);
    }
}
