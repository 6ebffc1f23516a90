//! Point-in-time answers on a growing log (issue 14.4): the governance state as of an
//! instant, and an attribution question, folded from the whole log each time (the full
//! fold, `state::state_as_of`) next to the server's `GovernanceTimeline` (the state kept
//! every thousand events, only the events after the nearest mark folded), in the same run
//! on the same log.
//!
//! `cargo bench --workspace --bench as_of`. For each log size (`FINOPS_BENCH_SIZES`, default
//! `0,10000,100000,1000000`; 0 is the empty log) a fresh SQLite store gets one ingested CUR
//! month (`FINOPS_BENCH_ROWS` rows, default 100 000) and then that many governance events
//! (`finops_e2e::governance_log`: request lives, mostly Business Requests). Then:
//!
//! - *full fold*: the state as of three instants (a quarter, half and nine tenths into the
//!   log's recording), mean per question;
//! - *timeline*: its first fold (what a server does once at start-up), then the state as of
//!   twelve instants spread over the log and "now" — median and worst; the three instants the
//!   full fold was asked are checked to give the same state (a digest of every field);
//! - *held*: the resident memory the timeline added when it folded the log (the head and
//!   its marks; `VmRSS` before and after, built before anything else reads the log);
//! - *attribution*: the question a server answers for `Attribute` — the state now (and as
//!   of the log's midpoint), the batch current then, the question by workload and gap —
//!   best of three, through the timeline and `KeptTables::kept_or_state` as the server
//!   does, and its ratio to the same question on the empty log. *first*: no tables kept for
//!   the state (the first question after the log changed, or about a new instant), so the
//!   question is judged by the state (its rows looked up by name); *again*: the state's
//!   tables kept (made by an earlier RPC, or by the server's preparation of "now").
//!
//!   The phases of "now" are printed too: state, kept tables found (or not), question (rows
//!   registered, lines classified), grouping — their sum is the time compared — then the
//!   unbacked workloads the same RPC lists (a list as long as the log's workloads without
//!   a business case: every workload, in this log) and, for reference, the state's tables
//!   built from nothing (what the RPCs that read every workload wait for when nothing is
//!   kept);
//! - *after one more event*: the question "now" right after a submission, a portfolio
//!   added, or an approval with its role claimed (judged by the state), then the tables the
//!   server prepares for the new "now" from those kept before it — how long, and how they
//!   were come by (lent, amended);
//! - *restart*: the head written down as a snapshot, then a new timeline's first answer
//!   from it, and its check of the snapshot against the log (the fold before it).
//!
//! - *organisation commands*: a command on the organisation's one stream once it holds
//!   1 000 and 10 000 events, decided on the whole stream's fold and from the stream's
//!   snapshot (`stream_snapshots`).
//!
//! `FINOPS_BENCH_STORE=postgres` runs on PostgreSQL (`DATABASE_URL`) instead.

/// The allocator the server runs with (`finops serve`): the questions are timed as the
/// server answers them, allocator included.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hash::{DefaultHasher, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use finops_attribution::{AttributionEngine, Dimension, Governance, RolePatterns, Visibility};
use finops_domain::governance_state::GovernanceState;
use finops_domain::org::{OrgCommand, Organisation, Portfolio};
use finops_domain::request::{BusinessRequest, RequestCommand};
use finops_eventlog::{AllRead, EventStore, Position};
use finops_governance::state::state_as_of;
use finops_governance::timeline::GovernanceTimeline;
use finops_governance::{CommandHandler, streams};
use finops_ingest::{Format, Ingestor};
use finops_server::kept_tables::{Found, KeptTables};
use uuid::Uuid;

const PERIOD: &str = "2026-11";

/// A digest of every field of the state (its `Debug` form, hashed as it is written).
fn digest(state: &GovernanceState) -> u64 {
    struct Digest(DefaultHasher);
    impl std::fmt::Write for Digest {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.write(s.as_bytes());
            Ok(())
        }
    }
    let mut d = Digest(DefaultHasher::new());
    std::fmt::write(&mut d, format_args!("{state:?}")).unwrap();
    d.0.finish()
}

async fn open_store(dir: &std::path::Path, size: usize) -> (Arc<dyn EventStore>, String) {
    let url = if std::env::var("FINOPS_BENCH_STORE").is_ok_and(|v| v == "postgres") {
        let base =
            std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let schema = format!("bench_as_of_{}", Uuid::now_v7().simple());
        let admin = sqlx::PgPool::connect(&base).await.expect("PostgreSQL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&admin).await.unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}options[search_path]={schema}")
    } else {
        format!("sqlite://{}", dir.join(format!("log-{size}.db")).display())
    };
    (finops_eventlog::open(&url, finops_governance::upcasters()).await.unwrap(), url)
}

/// The first and last `recorded_at` of the log.
async fn recording_span(store: &dyn EventStore) -> (DateTime<Utc>, DateTime<Utc>) {
    store.seal_committed().await.unwrap();
    let first = store.read_all(AllRead::forwards_after(Position::START, 1)).await.unwrap();
    let last = store.read_all(AllRead::backwards_from(None, 1)).await.unwrap();
    (first[0].metadata.recorded_at, last[0].metadata.recorded_at)
}

fn at_fraction(span: (DateTime<Utc>, DateTime<Utc>), f: f64) -> DateTime<Utc> {
    let micros = (span.1 - span.0).num_microseconds().unwrap_or(0) as f64;
    span.0 + chrono::Duration::microseconds((micros * f) as i64)
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The question `AttributionService/Attribute` answers, as the server answers it (through
/// the timeline, judged by the state's kept tables, else by the state itself), and the
/// time of its phases: the state, finding the kept tables, the prepared question (rows
/// registered, lines classified), the grouping, and the unbacked workloads.
async fn attribution(
    timeline: &GovernanceTimeline,
    tables: &KeptTables,
    engine: &AttributionEngine,
    as_of: Option<DateTime<Utc>>,
) -> (usize, [Duration; 5]) {
    let instant = as_of.unwrap_or_else(Utc::now);
    let started = Instant::now();
    let (state, key) = timeline.keyed_state_as_of(Some(instant)).await.unwrap();
    let batch = AttributionEngine::batch_at(&state, PERIOD, Some(instant)).unwrap();
    let t_state = started.elapsed();
    let started = Instant::now();
    let governance = tables.kept_or_state(&state, &key);
    let t_tables = started.elapsed();
    let started = Instant::now();
    let question = engine.question(governance, batch, Visibility::Everything).await.unwrap();
    let t_question = started.elapsed();
    let started = Instant::now();
    let groups = question.attribute(&[Dimension::Workload, Dimension::Gap]).await.unwrap().rows.len();
    let t_grouping = started.elapsed();
    let started = Instant::now();
    question.unbacked().await.unwrap();
    (groups, [t_state, t_tables, t_question, t_grouping, started.elapsed()])
}

/// The state's tables made and kept (as the server prepares "now" after following the
/// log, and as the RPCs that read every workload make them).
async fn prepare(timeline: &GovernanceTimeline, tables: &KeptTables, as_of: Option<DateTime<Utc>>) -> Found {
    let (state, key) = timeline.keyed_state_as_of(Some(as_of.unwrap_or_else(Utc::now))).await.unwrap();
    tables.found(&state, key).await.1
}

/// The question "now" right after a change, as [`attribution`] asks it without the
/// unbacked workloads (nothing is kept for the new state yet: judged by the state), its
/// whole time; then the tables the server prepares for the new "now", how long that took
/// and how they were come by.
async fn attribution_found(
    timeline: &GovernanceTimeline,
    tables: &KeptTables,
    engine: &AttributionEngine,
) -> (Duration, Duration, Found) {
    let started = Instant::now();
    let (state, key) = timeline.keyed_state_as_of(Some(Utc::now())).await.unwrap();
    let batch = AttributionEngine::batch_at(&state, PERIOD, None).unwrap();
    let governance = tables.kept_or_state(&state, &key);
    assert!(matches!(governance, Governance::State(_)), "nothing is kept for a state after a change");
    let question = engine.question(governance, batch, Visibility::Everything).await.unwrap();
    let groups = question.attribute(&[Dimension::Workload, Dimension::Gap]).await.unwrap().rows.len();
    assert!(groups > 0, "the question has an answer");
    let took = started.elapsed();
    let started = Instant::now();
    let (_, found) = tables.found(&state, key).await;
    (took, started.elapsed(), found)
}

/// One change appended between two questions.
enum Appended {
    Submission(Uuid, Box<RequestCommand>),
    Portfolio(OrgCommand),
    /// A request's life, approved, with its tasks and its role's claim.
    Approval(Vec<(finops_eventlog::StreamId, Vec<finops_eventlog::NewEvent>)>),
}

/// The `n`th Business Request submitted during the benchmark.
fn submission(n: u32) -> Appended {
    let request_id = Uuid::now_v7();
    let submit = finops_e2e::governance_log::submission(request_id, &format!("Bench workload {n}"));
    Appended::Submission(request_id, Box::new(submit))
}

/// The `n`th portfolio added during the benchmark.
fn portfolio(n: u32) -> Appended {
    Appended::Portfolio(OrgCommand::AddPortfolio {
        portfolio_id: Uuid::now_v7(),
        portfolio: Portfolio { name: format!("Bench portfolio {n}"), owner: "pf-bench".into() },
        at: Utc::now(),
    })
}

/// The `n`th request approved during the benchmark.
fn approval(n: u32) -> Appended {
    Appended::Approval(finops_e2e::governance_log::approval(u64::from(n)))
}

fn main() {
    let sizes: Vec<usize> = std::env::var("FINOPS_BENCH_SIZES")
        .unwrap_or_else(|_| "0,10000,100000,1000000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("FINOPS_BENCH_SIZES: sizes separated by commas"))
        .collect();
    let rows: u64 = std::env::var("FINOPS_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let dir: PathBuf = std::env::temp_dir().join(format!("finops-bench-as-of-{}", Uuid::now_v7()));
    std::fs::create_dir_all(dir.join("objects")).unwrap();
    let csv = dir.join(format!("{PERIOD}.csv"));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
    let spec = finops_cur::synthetic::MonthSpec { period: PERIOD.into(), rows, seed: 7, restatement: 0 };
    finops_cur::synthetic::write_month(&spec, &mut out).unwrap();
    drop(out);

    runtime.block_on(async {
        let objects: Arc<dyn object_store::ObjectStore> =
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.join("objects")).unwrap());
        let engine = AttributionEngine::new(objects.clone(), RolePatterns::default());
        let context = finops_e2e::operator_context("bench");
        println!("CUR month: {rows} rows; store: {}", std::env::var("FINOPS_BENCH_STORE").unwrap_or("sqlite".into()));
        println!(
            "{:>9} | {:>10} | {:>13} | {:>15} | {:>19} | {:>6} | {:>16} | {:>16} | {:>16} | {:>16} | {:>8}",
            "events",
            "full fold",
            "timeline: 1st",
            "as_of median",
            "as_of worst (× full)",
            "marks",
            "now: first",
            "now: again",
            "mid: first",
            "mid: again",
            "held MiB"
        );
        let mut empty_question = None;
        let mut restart_rows = Vec::new();
        let mut phase_rows = Vec::new();
        let mut after_rows = Vec::new();
        for size in sizes {
            let (store, url) = open_store(&dir, size).await;
            Ingestor::new(store.clone(), objects.clone()).ingest_file(&csv, Format::Cur, &context).await.unwrap();
            let written = if size > 0 { finops_e2e::governance_log::generate(&store, size).await } else { 0 };
            let span = recording_span(store.as_ref()).await;
            let checked: Vec<DateTime<Utc>> = [0.25, 0.5, 0.9].iter().map(|f| at_fraction(span, *f)).collect();

            // The timeline first, so what it holds shows in the resident memory.
            let before = finops_e2e::rss_mib();
            let timeline = GovernanceTimeline::new(store.clone());
            let started = Instant::now();
            timeline.follow().await.unwrap();
            let first = started.elapsed();
            let held = finops_e2e::rss_mib() - before;

            let mut full = Vec::new();
            let mut expected = Vec::new();
            for t in &checked {
                let started = Instant::now();
                let state = state_as_of(store.as_ref(), Some(*t)).await.unwrap();
                full.push(started.elapsed());
                expected.push(digest(&state));
            }
            let full_mean = full.iter().sum::<Duration>() / full.len() as u32;

            for (t, want) in checked.iter().zip(&expected) {
                let got = digest(&timeline.state_as_of(Some(*t)).await.unwrap());
                assert_eq!(got, *want, "{written} events: the timeline's state as of {t} is the full fold's");
            }
            let mut asked: Vec<Option<DateTime<Utc>>> = (0..12).map(|i| Some(at_fraction(span, i as f64 / 11.0))).collect();
            asked.push(None);
            let mut times: Vec<Duration> = Vec::new();
            for t in &asked {
                let started = Instant::now();
                timeline.state_as_of(*t).await.unwrap();
                times.push(started.elapsed());
            }
            times.sort();
            let (median, worst) = (times[times.len() / 2], *times.last().unwrap());
            let (marks, _) = timeline.marks().await;

            // Best of three: with `kept` false each run starts with no kept tables (the first
            // question about a state, as after every append for "now": judged by the state);
            // with `kept` true the state's tables were made before (asked again). The time
            // compared is the question and its grouping; the unbacked workloads (a list that
            // grows with the log: every workload without a business case) are timed beside.
            let best_of_3 = |as_of: Option<DateTime<Utc>>, kept: bool| {
                let (timeline, engine) = (&timeline, &engine);
                async move {
                    let warm = KeptTables::default();
                    if kept {
                        prepare(timeline, &warm, as_of).await;
                    }
                    let mut best = (Duration::MAX, [Duration::ZERO; 5]);
                    for _ in 0..3 {
                        let cold = KeptTables::default();
                        let (groups, phases) = attribution(timeline, if kept { &warm } else { &cold }, engine, as_of).await;
                        assert!(groups > 0, "the question has an answer");
                        let took = phases[..4].iter().sum::<Duration>();
                        if took < best.0 {
                            best = (took, phases);
                        }
                    }
                    best
                }
            };
            // What the RPCs that read every workload wait for when nothing is kept: the
            // state's tables built from nothing.
            let built = {
                let (state, _) = timeline.keyed_state_as_of(None).await.unwrap();
                let started = Instant::now();
                drop(finops_attribution::GovernanceTables::new(finops_attribution::GovernanceView::from(&state)));
                started.elapsed()
            };
            // A restart: the head written down (as a server does every 50 000 events), then a
            // new timeline's first answer ("now", from the snapshot) and its check of the
            // snapshot against the log (the fold before it, in the background). Its two
            // timelines are dropped before the questions: a server holds one.
            {
                let models = finops_projections::ReadModels::open(&url).await.unwrap();
                let writer = GovernanceTimeline::new(store.clone()).with_snapshots(Arc::new(models.clone()), 1);
                writer.follow().await.unwrap();
                let snapshot_mb = finops_governance::timeline::SnapshotStore::load_snapshot(
                    &models,
                    finops_governance::timeline::SNAPSHOT_VERSION,
                )
                .await
                .unwrap()
                .map_or(0.0, |s| s.state.len() as f64 / 1e6);
                let restarted = GovernanceTimeline::new(store.clone()).with_snapshots(Arc::new(models), 1);
                let started = Instant::now();
                restarted.state_as_of(None).await.unwrap();
                let restart_answer = started.elapsed();
                let started = Instant::now();
                restarted.follow().await.unwrap();
                let restart_check = started.elapsed();
                restart_rows.push(format!(
                    "{written:>9} | {snapshot_mb:>8.1} MB | {:>10.1} ms | {:>9.3} s",
                    seconds(restart_answer) * 1e3,
                    seconds(restart_check)
                ));
            }

            let mid = Some(at_fraction(span, 0.5));
            let (first_now, first_phases) = best_of_3(None, false).await;
            let (again_now, again_phases) = best_of_3(None, true).await;
            let (first_mid, _) = best_of_3(mid, false).await;
            let (again_mid, _) = best_of_3(mid, true).await;
            let ms = |d: Duration| seconds(d) * 1e3;
            for (asked, p) in [("first", first_phases), ("again", again_phases)] {
                phase_rows.push(format!(
                    "{written:>9} | {asked:>5} | {:>8.1} ms | {:>8.1} ms | {:>10.1} ms | {:>9.1} ms | {:>9.1} ms | {:>9.1} ms",
                    ms(p[0]),
                    ms(p[1]),
                    ms(p[2]),
                    ms(p[3]),
                    ms(p[4]),
                    ms(built),
                ));
            }
            let (empty_first, empty_again) = *empty_question.get_or_insert((first_now, again_now));
            // One more event, then the question "now" again, with the tables the last
            // question kept (as a server asked often does): a submission leaves the view
            // alike (its tables lent); a portfolio added, or a request approved with its role
            // claimed, changes it (the kept tables amended). Last, as it moves the log on.
            let after_one = async |change: &dyn Fn(u32) -> Appended, expected: Found| {
                let kept = KeptTables::default();
                prepare(&timeline, &kept, None).await;
                let mut best = (Duration::MAX, Duration::MAX, Found::Kept);
                for n in 0..3 {
                    // A context of its own: one request id for two commands is one command retried.
                    let context = finops_e2e::operator_context("bench");
                    match change(n) {
                        Appended::Submission(request_id, submit) => CommandHandler::<BusinessRequest>::new(store.clone())
                            .execute(&streams::business_request(request_id), &submit, &context)
                            .await
                            .map(drop),
                        Appended::Portfolio(add) => CommandHandler::<Organisation>::new(store.clone())
                            .execute(&streams::organisation(), &add, &context)
                            .await
                            .map(drop),
                        Appended::Approval(lives) => {
                            finops_e2e::governance_log::append_lives(&store, lives).await;
                            Ok(())
                        }
                    }
                    .unwrap();
                    let (took, prepared, found) = attribution_found(&timeline, &kept, &engine).await;
                    assert_eq!(found, expected, "{written} events: how the tables were come by after change {n}");
                    if took < best.0 {
                        best = (took, best.1, found);
                    }
                    best.1 = best.1.min(prepared);
                }
                best
            };
            let (submitted, submitted_prepared, submitted_found) = after_one(&submission, Found::Alike).await;
            let (organised, organised_prepared, organised_found) = after_one(&portfolio, Found::Amended).await;
            let (approved, approved_prepared, approved_found) = after_one(&approval, Found::Amended).await;
            after_rows.push(format!(
                "{written:>9} | {:>7.1} ms ({:.2}×; {submitted_found:?} {:.1} ms) | {:>7.1} ms ({:.2}×; {organised_found:?} {:.1} ms) | {:>7.1} ms ({:.2}×; {approved_found:?} {:.1} ms)",
                ms(submitted),
                seconds(submitted) / seconds(empty_again),
                ms(submitted_prepared),
                ms(organised),
                seconds(organised) / seconds(empty_again),
                ms(organised_prepared),
                ms(approved),
                seconds(approved) / seconds(empty_again),
                ms(approved_prepared),
            ));
            println!(
                "{written:>9} | {:>8.3} s | {:>11.3} s | {:>12.1} ms | {:>9.1} ms ({:>5.3}) | {marks:>6} | {:>6.1} ms ({:.2}×) | {:>6.1} ms ({:.2}×) | {:>6.1} ms ({:.2}×) | {:>6.1} ms ({:.2}×) | {:>8.0}",
                seconds(full_mean),
                seconds(first),
                seconds(median) * 1e3,
                seconds(worst) * 1e3,
                seconds(worst) / seconds(full_mean),
                ms(first_now),
                seconds(first_now) / seconds(empty_first),
                ms(again_now),
                seconds(again_now) / seconds(empty_again),
                ms(first_mid),
                seconds(first_mid) / seconds(empty_first),
                ms(again_mid),
                seconds(again_mid) / seconds(empty_again),
                held,
            );
        }
        println!("\nthe attribution question now, by phase (best run; first: judged by the state, again: kept tables):");
        println!(
            "{:>9} | {:>5} | {:>11} | {:>11} | {:>13} | {:>12} | {:>12} | {:>12}",
            "events", "asked", "state", "tables", "question", "grouping", "unbacked", "tables built"
        );
        for row in phase_rows {
            println!("{row}");
        }
        println!("\nthe question now right after one more event (judged by the state; then the tables prepared from those kept before it, and how; best of three):");
        println!(
            "{:>9} | {:>34} | {:>34} | {:>34}",
            "events", "after a submission", "after a portfolio added", "after an approval and its claim"
        );
        for row in after_rows {
            println!("{row}");
        }
        println!("\nrestart from a snapshot:");
        println!("{:>9} | {:>11} | {:>13} | {:>11}", "events", "snapshot", "first answer", "log's check");
        for row in restart_rows {
            println!("{row}");
        }
        organisation_commands(&dir).await;
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// A command on the organisation's one stream once it is long (`FINOPS_BENCH_ORG_EVENTS`
/// portfolios added, default 1 000 and 10 000): decided on the whole stream's fold, and
/// from its snapshot (`CommandHandler::with_snapshots`, as the server's handlers are) —
/// median of 20 commands each, after one that checks the snapshot.
async fn organisation_commands(dir: &std::path::Path) {
    let sizes: Vec<u32> = std::env::var("FINOPS_BENCH_ORG_EVENTS")
        .unwrap_or_else(|_| "1000,10000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("FINOPS_BENCH_ORG_EVENTS: sizes separated by commas"))
        .collect();
    let add = |n: u32| OrgCommand::AddPortfolio {
        portfolio_id: Uuid::from_u128(0x9000_0000 + u128::from(n)),
        portfolio: Portfolio { name: format!("Portfolio {n}"), owner: "pf-bench".into() },
        at: Utc::now(),
    };
    println!("\na command on the organisation's stream (median of 20):");
    println!("{:>9} | {:>12} | {:>13} | {:>7}", "events", "whole stream", "from snapshot", "ratio");
    for size in sizes {
        let (store, url) = open_store(dir, 1_000_000_000 + size as usize).await;
        let models = finops_projections::ReadModels::open(&url).await.unwrap();
        let org = finops_governance::streams::organisation();
        let whole = CommandHandler::<Organisation>::new(store.clone());
        let snapshots = CommandHandler::<Organisation>::new(store.clone()).with_snapshots(Arc::new(models));
        for n in 0..size {
            snapshots.execute(&org, &add(n), &finops_e2e::operator_context("bench")).await.unwrap();
        }
        let mut next = size;
        let median = |times: &mut Vec<Duration>| {
            times.sort();
            times[times.len() / 2]
        };
        let timed = async |handler: &CommandHandler<Organisation>, next: &mut u32| {
            let mut times = Vec::new();
            for _ in 0..20 {
                let started = Instant::now();
                handler.execute(&org, &add(*next), &finops_e2e::operator_context("bench")).await.unwrap();
                times.push(started.elapsed());
                *next += 1;
            }
            times
        };
        let full = median(&mut timed(&whole, &mut next).await);
        let fresh = CommandHandler::<Organisation>::new(store.clone())
            .with_snapshots(Arc::new(finops_projections::ReadModels::open(&url).await.unwrap()));
        fresh.load(&org).await.unwrap();
        let from_snapshot = median(&mut timed(&fresh, &mut next).await);
        println!(
            "{size:>9} | {:>9.2} ms | {:>10.2} ms | {:>6.1}×",
            seconds(full) * 1e3,
            seconds(from_snapshot) * 1e3,
            seconds(full) / seconds(from_snapshot)
        );
    }
}
