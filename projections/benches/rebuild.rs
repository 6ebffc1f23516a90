//! Projection rebuild benchmark, next to a raw scan of the same events in the same run on
//! the same database (issue 10.17).
//!
//! A governance log is generated through the domain's own decisions (Business Requests
//! submitted, approved or rejected, Cloud Engineer tasks created with their commands and
//! worked through, roles claimed, estimates stated), then:
//!
//! - *raw SELECT*: every stored event (ledger ⋈ events, all columns as text) in keyset
//!   pages of 5 000 — the floor any rebuild pays to read the log;
//! - *read_all*: the log's own read (JSON decoded, upcast), for reference;
//! - *rebuild*: `finops-replay rebuild` — every read model folded into a new generation
//!   and swapped in.
//!
//! Run: `cargo bench -p finops-projections --bench rebuild` (PostgreSQL from
//! `DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`, in a schema of
//! its own, dropped after unless `FINOPS_BENCH_KEEP=1`; `FINOPS_BENCH_EVENTS` sets the log's
//! size, default 200 000; `FINOPS_BENCH_STORE=sqlite` runs on the embedded store instead).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use finops_domain::Aggregate;
use finops_domain::request::{
    Availability, BusinessRequest, CatalogStanding, RequestCommand, RequestDetails, Review, UseCase, WorkloadType,
};
use finops_domain::role::RoleSuffix;
use finops_domain::tasks::{self, Task, TaskCommand, TaskContext};
use finops_domain::vocabulary::{
    AccountId, ApprovalScope, Cents, InvokeAction, ModelId, MonthlyAmount, Platform, Region,
};
use finops_eventlog::{AllRead, EventMetadata, EventStore, ExpectedVersion, NewEvent, Position, StreamId, Upcasters};
use uuid::Uuid;

fn at(n: u64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(n as i64)
}

fn to_new<E: serde::Serialize>(event: &E, actor: &str, role: &str) -> NewEvent {
    let payload = serde_json::to_value(event).unwrap();
    let kind = payload["type"].as_str().unwrap().to_owned();
    NewEvent::new(kind, payload).with_metadata(EventMetadata {
        actor_id: actor.into(),
        actor_role: role.into(),
        rationale: Some("generated for the rebuild benchmark".into()),
        ..Default::default()
    })
}

/// The streams and events of one Business Request's life.
fn request_life(i: u64) -> Vec<(StreamId, Vec<NewEvent>)> {
    let id = Uuid::from_u128(0x0192_f0c4_0000_7000_8000_0000_0000_0000 | u128::from(i));
    let details = RequestDetails {
        workload_name: format!("Support assistant {i}"),
        use_case: UseCase::Operations {
            workload_type: WorkloadType::CustomerSupport,
            description: "Answers tier-1 tickets from the help centre and drafts replies for agents.".into(),
            availability: if i.is_multiple_of(3) { Availability::HighAvailability } else { Availability::Standard },
            monthly_budget: MonthlyAmount::Dollars(Cents(150_000 + i % 1_000 * 100)),
        },
        priority: i.is_multiple_of(7),
        start: None,
        end: None,
        monthly_growth_percent: Some(3.0),
        business_case: None,
    };
    let mut state = BusinessRequest::default();
    let mut request_events = Vec::new();
    let mut decide = |state: &mut BusinessRequest, command: RequestCommand, actor: &str, role: &str| {
        let events = state.decide(&command).unwrap();
        for e in &events {
            *state = std::mem::take(state).evolve(e);
            request_events.push(to_new(e, actor, role));
        }
    };
    decide(
        &mut state,
        RequestCommand::Submit {
            request_id: id,
            product_id: Uuid::from_u128(7),
            requested_by: format!("po-{}", i % 50),
            details,
            at: at(i * 10),
        },
        "po",
        "product_owner",
    );
    let mut streams = Vec::new();
    if i % 5 == 4 {
        decide(
            &mut state,
            RequestCommand::Reject { by: "fl-ana".into(), rationale: "Budget too vague".into(), at: at(i * 10 + 1) },
            "fl-ana",
            "finops_lead",
        );
    } else {
        let account = AccountId::parse("123456789012").unwrap();
        let region = Region::parse("us-east-1").unwrap();
        let actions = [InvokeAction::InvokeModel, InvokeAction::Converse].into();
        let scope = ApprovalScope { accounts: [account.clone()].into(), regions: [region.clone()].into(), actions };
        decide(
            &mut state,
            RequestCommand::Approve {
                review: Review {
                    platform: Platform::AmazonBedrock,
                    model_id: ModelId::parse("anthropic.claude-3-haiku-20240307-v1:0").unwrap(),
                    account,
                    region,
                    actions: scope.actions.clone(),
                    role_suffix: RoleSuffix::from_entropy(i as u32),
                    workspace: None,
                    map_mpe_id: None,
                    confirmed_estimate: MonthlyAmount::Dollars(Cents(140_000)),
                    budget_id: None,
                },
                workload_id: Uuid::new_v5(&id, b"workload"),
                catalog: CatalogStanding::Approved(scope),
                account_budgets: vec![],
                by: "fl-ana".into(),
                rationale: "Fits the support pilot".into(),
                at: at(i * 10 + 1),
            },
            "fl-ana",
            "finops_lead",
        );
        let context = TaskContext {
            identity_center_instance_arn: "arn:aws:sso:::instance/ssoins-0000".into(),
            portfolio: String::new(),
            product: String::new(),
        };
        for plan in tasks::plan_tasks(&state, "Fits the support pilot", &context) {
            let stream = StreamId::new(format!("task-{}", plan.task_id)).unwrap();
            let steps = plan.steps.len();
            let mut task = Task::default();
            let mut events = Vec::new();
            let mut commands = vec![TaskCommand::Create { plan, at: at(i * 10 + 2) }];
            if i.is_multiple_of(2) {
                for step in 1..steps {
                    commands.push(TaskCommand::CompleteStep {
                        step,
                        by: "ce-li".into(),
                        note: None,
                        dependency_implemented: true,
                        at: at(i * 10 + 3),
                    });
                }
                commands.push(TaskCommand::MarkImplemented { by: "ce-li".into(), note: None, at: at(i * 10 + 4) });
            }
            for command in commands {
                for e in task.decide(&command).unwrap() {
                    task = task.evolve(&e);
                    events.push(to_new(&e, "ce-li", "cloud_engineer"));
                }
            }
            streams.push((stream, events));
        }
    }
    streams.insert(0, (StreamId::new(format!("business-request-{id}")).unwrap(), request_events));
    streams
}

async fn generate(store: &Arc<dyn EventStore>, target: usize) -> usize {
    let mut written = 0;
    let mut i = 0u64;
    while written < target {
        let mut batch = Vec::new();
        while batch.iter().map(|(_, e): &(StreamId, Vec<NewEvent>)| e.len()).sum::<usize>() < 2_000 {
            batch.extend(request_life(i));
            i += 1;
        }
        written += batch.iter().map(|(_, e)| e.len()).sum::<usize>();
        let tasks: Vec<_> = batch
            .into_iter()
            .map(|(stream, events)| {
                let store = store.clone();
                tokio::spawn(async move { store.append(&stream, ExpectedVersion::NoStream, events).await.unwrap() })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    }
    store.seal_committed().await.unwrap();
    written
}

/// A stored event as text: position, id, stream, version, type, schema version, payload,
/// metadata.
type RawRow = (i64, String, String, i64, String, i32, String, String);

fn best(runs: &[Duration]) -> Duration {
    *runs.iter().min().unwrap()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let target: usize = std::env::var("FINOPS_BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let sqlite = std::env::var("FINOPS_BENCH_STORE").is_ok_and(|v| v == "sqlite");
    let (url, schema) = if sqlite {
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
    let started = Instant::now();
    let events = generate(&store, target).await;
    eprintln!("generated {events} events in {:.1} s", started.elapsed().as_secs_f64());

    // Raw scan: the stored text of every event in the global order, nothing decoded.
    let raw_pool = sqlx::AnyPool::connect(&{
        sqlx::any::install_default_drivers();
        url.clone()
    })
    .await
    .unwrap();
    let mut raw = Vec::new();
    let mut read_all = Vec::new();
    let mut rebuild = Vec::new();
    let models = finops_projections::ReadModels::open(&url).await.unwrap();
    let runner = finops_projections::ProjectionRunner::new(
        store.clone(),
        models.clone(),
        finops_projections::governance_projectors(),
    );
    for _ in 0..3 {
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

        let t = Instant::now();
        let reports = runner.rebuild_all(&finops_projections::ALL).await.unwrap();
        rebuild.push(t.elapsed());
        assert!(reports.iter().all(|r| r.events as usize == events));
    }
    let rate = |d: Duration| events as f64 / d.as_secs_f64();
    let (raw, read_all, rebuild) = (best(&raw), best(&read_all), best(&rebuild));
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
        "rebuild (all five)  {:>8.3} s  {:>10.0} events/s  ratio {:.2}",
        rebuild.as_secs_f64(),
        rate(rebuild),
        rate(rebuild) / rate(raw)
    );
    drop(runner);
    drop(models);
    drop(store);
    if std::env::var("FINOPS_BENCH_KEEP").is_ok_and(|v| v == "1") {
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
