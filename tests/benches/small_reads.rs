//! Small reads under concurrency, from a light client (issue 10.18).
//!
//! `scripts/bench_small_reads.py` measures what a Python grpcio client sees (the kind of
//! client that showed the Nagle stall), but its eight client processes take most of this
//! 2-core machine from the server and PostgreSQL they measure. This bench asks the same
//! questions from one Rust process: `CLIENTS` concurrent callers, each with its own
//! connection, each calling in turn the standard health check, `ListModels` and
//! `ListBusinessRequests` (one page of 50), `CALLS` times; p50 / p99 / max per method,
//! and each read's p99 as a ratio of the health check's in the same run.
//!
//! The server runs in this process on its own runtime (two worker threads, as the release
//! binary on this machine); the callers share one thread, so the load generator can never
//! take more than one core.
//!
//! Run: `cargo bench --workspace --bench small_reads` (PostgreSQL from `DATABASE_URL`,
//! default `postgres://postgres@127.0.0.1:5432/postgres`, in a schema of its own, dropped
//! after; `FINOPS_BENCH_EVENTS` sets the log's size, default 200 000;
//! `FINOPS_BENCH_CLIENTS` the concurrency levels, default `1,4,8`; `FINOPS_BENCH_CALLS` the
//! calls of each method per client, default 1 000; `FINOPS_BENCH_SETTLE_SECONDS` the wait
//! after the server has caught up, default 30, while it checks its snapshots;
//! `FINOPS_BENCH_CATCH_UP=1` starts the server's processes from the start of the log, as a
//! fresh server's, and reports how long they take to catch up).

/// The allocator the `finops` binary runs with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

use finops_e2e::{RunningServer, authed};
use finops_proto::v1::business_request_service_client::BusinessRequestServiceClient;
use finops_proto::v1::catalog_service_client::CatalogServiceClient;
use finops_proto::v1::event_log_service_client::EventLogServiceClient;
use finops_proto::v1::{GetProjectionsRequest, ListBusinessRequestsRequest, ListModelsRequest};
use finops_server::auth::Role;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use uuid::Uuid;

/// The Identity Center instance `RunningServer` is configured with.
const IDENTITY_CENTER: &str = "arn:aws:sso:::instance/ssoins-7223e2e0test";

/// The processes `finops serve` runs, by checkpoint name.
const PROCESSES: [&str; 7] = [
    "approval_fan_out",
    "gap_detector",
    "card_issuer",
    "threshold_watcher",
    "investigation_detector",
    "webhook_outbox",
    "kill_switch_enforcer",
];

const METHODS: [&str; 3] = ["health Check", "ListModels", "ListBusinessRequests"];

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One caller: its own connection, `calls` rounds of the three methods; latencies per method.
async fn caller(endpoint: String, token: String, calls: usize) -> [Vec<Duration>; 3] {
    let channel = Channel::from_shared(endpoint).unwrap().connect().await.expect("server reachable");
    let mut health = HealthClient::new(channel.clone());
    let mut catalog = CatalogServiceClient::new(channel.clone());
    let mut requests = BusinessRequestServiceClient::new(channel);
    let mut out: [Vec<Duration>; 3] = Default::default();
    for _ in 0..calls {
        let t = Instant::now();
        health.check(HealthCheckRequest { service: String::new() }).await.expect("health");
        out[0].push(t.elapsed());
        let t = Instant::now();
        let models = catalog.list_models(authed(ListModelsRequest::default(), &token)).await.expect("ListModels");
        out[1].push(t.elapsed());
        assert!(models.get_ref().models.len() >= 4, "the demo catalog's models");
        let t = Instant::now();
        let page = requests
            .list_business_requests(authed(ListBusinessRequestsRequest { page_size: 50, ..Default::default() }, &token))
            .await
            .expect("ListBusinessRequests");
        out[2].push(t.elapsed());
        assert_eq!(page.get_ref().business_requests.len(), 50, "a full page");
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)].as_secs_f64() * 1e3
}

fn main() {
    let target: usize = env_or("FINOPS_BENCH_EVENTS", 200_000);
    let calls: usize = env_or("FINOPS_BENCH_CALLS", 1_000);
    let settle: u64 = env_or("FINOPS_BENCH_SETTLE_SECONDS", 30);
    let levels: Vec<usize> = std::env::var("FINOPS_BENCH_CLIENTS")
        .unwrap_or_else(|_| "1,4,8".into())
        .split(',')
        .map(|n| n.trim().parse().expect("FINOPS_BENCH_CLIENTS: numbers separated by commas"))
        .collect();
    let base = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let schema = format!("bench_small_reads_{}", Uuid::now_v7().simple());
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options[search_path]={schema}");

    // The server's own runtime: two workers, as the release binary gets on this machine.
    let server_runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // The callers' runtime: one thread.
    let clients = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();

    let admin = clients.block_on(async {
        let admin = sqlx::PgPool::connect(&base).await.expect("PostgreSQL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&admin).await.unwrap();
        admin
    });
    let events = server_runtime.block_on(async {
        let store = finops_eventlog::open(&url, finops_eventlog::Upcasters::new()).await.unwrap();
        let started = Instant::now();
        let generated = finops_e2e::governance_log::generate(&store, target).await;
        // The demo organisation's catalog: ListModels answers four models, as in the issue.
        finops_server::demo::seed(store.clone(), IDENTITY_CENTER).await.expect("demo seeded");
        let head = store.seal_committed().await.unwrap().position.0;
        eprintln!("generated {generated} events (head {head}) in {:.1} s", started.elapsed().as_secs_f64());
        // The read models built before the server starts, as `finops-replay rebuild` would.
        let models = finops_projections::ReadModels::open(&url).await.unwrap();
        let runner = finops_projections::ProjectionRunner::new(
            store.clone(),
            models,
            finops_projections::governance_projectors(),
        );
        runner.rebuild_all(&finops_projections::ALL).await.unwrap();
        head
    });
    // The processes that follow the log (approval fan-out, gap detector, card issuer, …)
    // start from the beginning on a new server; over this log the gap detector alone takes
    // most of an hour to catch up, and measuring while they work would measure them. The
    // generated log needs none of their output (its tasks are written with it), so their
    // checkpoints are placed at the head before the server starts: the steady state of a
    // server that has followed this log all along.
    // FINOPS_BENCH_CATCH_UP=1: leave them at the start and report how long a fresh server
    // takes to catch up with the log.
    let catch_up = std::env::var("FINOPS_BENCH_CATCH_UP").is_ok_and(|v| v == "1");
    clients.block_on(async {
        for process in PROCESSES.iter().filter(|_| !catch_up) {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO {schema}.process_checkpoints (name, checkpoint) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET checkpoint = excluded.checkpoint"
            )))
            .bind(process)
            .bind(events as i64)
            .execute(&admin)
            .await
            .unwrap();
        }
    });
    let server = server_runtime.block_on(RunningServer::start(&url));
    let token = server.token("finops-lead-bench", Role::FinopsLead);
    let operator = server.token("operator-bench", Role::Operator);

    clients.block_on(async {
        // Wait until every read model and every process has caught up with the head.
        let channel = Channel::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
        let mut log = EventLogServiceClient::new(channel);
        let started = Instant::now();
        loop {
            let status =
                log.get_projections(authed(GetProjectionsRequest::default(), &operator)).await.unwrap().into_inner();
            let processes: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT MIN(checkpoint) FROM {schema}.process_checkpoints"
            )))
            .fetch_one(&admin)
            .await
            .unwrap();
            if status.projections.iter().all(|p| p.behind == 0) && processes.unwrap_or(0) >= status.head_position as i64
            {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        eprintln!("read models and processes caught up in {:.1} s", started.elapsed().as_secs_f64());
        // A starting server checks its governance snapshots against the log in the
        // background (a whole fold: seconds at this size); let that finish first.
        tokio::time::sleep(Duration::from_secs(settle)).await;
        // Warm-up: connections, caches.
        caller(server.endpoint(), token.clone(), 20).await;

        println!("store: PostgreSQL, {events} events; {calls} calls of each method per client");
        println!(
            "{:>7}  {:<22} {:>8} {:>8} {:>8} {:>14}",
            "clients", "method", "p50 ms", "p99 ms", "max ms", "p99 / health"
        );
        for &n in &levels {
            let callers = (0..n).map(|_| caller(server.endpoint(), token.clone(), calls));
            let results = futures_util::future::join_all(callers).await;
            let mut health_p99 = 0.0;
            for (m, method) in METHODS.iter().enumerate() {
                let mut samples: Vec<Duration> = results.iter().flat_map(|r| r[m].iter().copied()).collect();
                samples.sort_unstable();
                let p99 = percentile(&samples, 0.99);
                if m == 0 {
                    health_p99 = p99;
                }
                println!(
                    "{n:>7}  {method:<22} {:>8.2} {p99:>8.2} {:>8.2} {:>14.2}",
                    percentile(&samples, 0.5),
                    samples.last().unwrap().as_secs_f64() * 1e3,
                    p99 / health_p99
                );
            }
        }
    });
    drop(server);
    server_runtime.shutdown_timeout(Duration::from_secs(5));
    clients.block_on(async {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&admin).await.unwrap();
    });
}
