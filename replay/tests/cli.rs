//! `finops-replay` as an operator runs it: the real binary against real stores.

use std::process::Command;

use finops_eventlog::{ExpectedVersion, NewEvent, StreamId, Upcasters};
use serde_json::json;

fn replay(store: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_finops-replay"))
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("FINOPS_STORE")
        .output()
        .expect("finops-replay runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// Appends `n` events over two streams and seals them; returns the head hash.
async fn seed(url: &str, n: u64) -> String {
    let store = finops_eventlog::open(url, Upcasters::new()).await.unwrap();
    for i in 1..=n {
        let stream = StreamId::new(if i % 2 == 0 { "even" } else { "odd" }).unwrap();
        let kind = if i % 3 == 0 { "Approved" } else { "Submitted" };
        store.append(&stream, ExpectedVersion::Any, vec![NewEvent::new(kind, json!({ "i": i }))]).await.unwrap();
    }
    store.seal_committed().await.unwrap().hash.to_hex()
}

/// Appends a Product Owner's submission of Business Request `id`; returns its stream.
async fn submit(store: &dyn finops_eventlog::EventStore, id: &str) -> StreamId {
    let stream = StreamId::new(format!("business-request-{id}")).unwrap();
    let submitted = json!({
        "type": "BusinessRequestSubmitted",
        "request_id": id,
        "product_id": "0192f0c4-1111-7000-8000-000000000001",
        "requested_by": "po-maria",
        "details": { "workload_name": "Team", "use_case": { "coding": { "developers": 3, "active_percent": 10 } }, "priority": false },
        "at": "2026-11-20T10:00:00Z"
    });
    store
        .append(&stream, ExpectedVersion::NoStream, vec![NewEvent::new("BusinessRequestSubmitted", submitted)])
        .await
        .unwrap();
    stream
}

async fn check_both_commands(url: &str, tamper: impl AsyncFnOnce()) {
    let head = seed(url, 9).await;

    let (code, out) = replay(url, &["stats"]);
    assert_eq!(code, 0, "{out}");
    for line in
        ["streams        2", "events         9", "unsealed       0", "head position  9", "Approved", "Submitted"]
    {
        assert!(out.contains(line), "stats lacks `{line}`:\n{out}");
    }
    let (code, out) = replay(url, &["--json", "stats"]);
    assert_eq!(code, 0);
    let stats: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(stats["events_by_type"], json!({ "Approved": 3, "Submitted": 6 }));
    assert_eq!(stats["head_hash"], json!(head));

    let (code, out) = replay(url, &["verify", "--expect-head", &format!("9:{head}")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("chain intact: 9 events verified"), "{out}");
    let (code, out) = replay(url, &["verify", "--expect-head", &format!("9:{}", "a".repeat(64))]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("first broken link: head mismatch at position 9"), "{out}");

    tamper().await;
    let (code, out) = replay(url, &["verify"]);
    assert_eq!(code, 1, "a broken chain exits non-zero:\n{out}");
    assert!(out.contains("first broken link: position 5: hash mismatch"), "{out}");

    let (code, out) = replay(url, &["verify", "--expect-head", "nine:abc"]);
    assert_eq!(code, 2);
    assert!(out.contains("--expect-head position `nine` is not a number"), "{out}");
}

const TAMPER: &str =
    r#"UPDATE events SET payload = '{"i":500}' WHERE id = (SELECT event_row FROM ledger WHERE position = 5)"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_stats_on_sqlite() {
    let url = finops_e2e::fresh_sqlite_url();
    let path = url.trim_start_matches("sqlite://").to_owned();
    check_both_commands(&url, async || {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{path}")).await.unwrap();
        sqlx::query("DROP TRIGGER events_no_update").execute(&pool).await.unwrap();
        sqlx::query(TAMPER).execute(&pool).await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_stats_on_postgres() {
    let Some(url) = finops_e2e::fresh_postgres_url().await else { return };
    let raw = url.clone();
    check_both_commands(&url, async || {
        let pool = sqlx::PgPool::connect(&raw).await.unwrap();
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("ALTER TABLE events DISABLE TRIGGER USER").execute(&mut *tx).await.unwrap();
        sqlx::query(TAMPER).execute(&mut *tx).await.unwrap();
        sqlx::query("ALTER TABLE events ENABLE TRIGGER USER").execute(&mut *tx).await.unwrap();
        tx.commit().await.unwrap();
    })
    .await;
}

#[test]
fn an_unknown_store_url_is_refused_with_the_accepted_forms() {
    let (code, out) = replay("mysql://db/x", &["stats"]);
    assert_eq!(code, 2);
    assert!(out.contains("use `sqlite://PATH` or `postgres://…`"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_builds_fresh_read_models_that_match_the_live_ones() {
    let url = finops_e2e::fresh_sqlite_url();
    let store = finops_eventlog::open(&url, Upcasters::new()).await.unwrap();
    submit(store.as_ref(), "0192f0c4-0000-7000-8000-000000000001").await;
    drop(store);

    // First run builds from nothing ("changed"); the second must reproduce it exactly.
    let (code, out) = replay(&url, &["rebuild"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("request_queue") && out.contains("claims"), "{out}");
    // Where the time went, phase by phase, so that an operator can compare runs.
    assert!(out.contains("read and fold") && out.contains("write") && out.contains("swap and catch up"), "{out}");
    let (code, out) = replay(&url, &["--json", "rebuild", "--projection", "request_queue"]);
    assert_eq!(code, 0, "{out}");
    let reports: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(reports[0]["events"], 1);
    assert_eq!(reports[0]["identical"], true, "{out}");
    for phase in ["read_and_fold", "write", "swap_and_catch_up"] {
        assert!(reports[0]["seconds"][phase].as_f64().is_some_and(|s| s >= 0.0), "{phase}: {out}");
    }
    let (code, out) = replay(&url, &["rebuild", "--projection", "nope"]);
    assert_eq!(code, 2);
    assert!(out.contains("unknown read model `nope`"), "{out}");
    // The lag of every read model, after the rebuild: none behind the head.
    let (code, out) = replay(&url, &["--json", "stats"]);
    assert_eq!(code, 0, "{out}");
    let stats: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let queue = stats["read_models"].as_array().unwrap().iter().find(|r| r["name"] == "request_queue").unwrap();
    assert_eq!((queue["checkpoint"].as_u64(), queue["behind"].as_u64()), (Some(1), Some(0)), "{stats}");
    let (code, out) = replay(&url, &["stats"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("READ MODEL") && out.contains("request_queue"), "{out}");
}

/// Regression (issue 10.14): `verify` on a mistyped path created a store and reported
/// "chain intact: 0 events", exit 0.
#[test]
fn a_path_without_a_log_is_refused_and_nothing_is_created() {
    let dir = std::env::temp_dir().join(format!("finops-replay-{}", uuid_like()));
    let missing = dir.join("typo.db");
    for command in ["verify", "stats", "rebuild"] {
        let (code, out) = replay(&format!("sqlite://{}", missing.display()), &[command]);
        assert_eq!(code, 2, "{command}: {out}");
        assert!(out.contains("no event log in"), "{command}: {out}");
        assert!(!missing.exists(), "{command} created {}", missing.display());
        assert!(!dir.exists(), "{command} created the folder");
    }
    // A SQLite file that is not a log (an empty database) is refused too, and left as it was.
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let (code, out) = replay(&format!("sqlite://{}", empty.display()), &["verify"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no `events` and `ledger` tables"), "{out}");
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0, "the file was not migrated");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    )
}

/// Regression (issue 10.14): on PostgreSQL the auditor's tool migrated an empty schema and
/// ran a sealer. Read-only now: an empty schema is refused and left empty; a store opened
/// read-only refuses appends, never seals, and its connections cannot write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_the_auditor_s_tool_writes_nothing() {
    let Some(url) = finops_e2e::fresh_postgres_url().await else { return };
    let (code, out) = replay(&url, &["verify"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no event log in PostgreSQL schema"), "{out}");
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let tables: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(tables, 0, "nothing was created in the empty schema");

    seed(&url, 3).await;
    let reader = finops_eventlog::PgEventStore::connect_read_only(&url, Upcasters::new()).await.unwrap();
    let stream = StreamId::new("odd").unwrap();
    let refused = finops_eventlog::EventStore::append(
        &reader,
        &stream,
        ExpectedVersion::Any,
        vec![NewEvent::new("Submitted", json!({}))],
    )
    .await
    .unwrap_err();
    assert!(matches!(refused, finops_eventlog::EventLogError::ReadOnly(_)), "{refused}");
    assert_eq!(reader.seal_available().await.unwrap(), 0, "a read-only store never seals");
    let write = sqlx::query("CREATE TABLE sneaky (x int)").execute(reader.pool()).await.unwrap_err();
    assert!(write.to_string().contains("read-only"), "{write}");
    let (code, out) = replay(&url, &["verify"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("chain intact: 3 events verified"), "{out}");
}

/// The offline audit bundle (issue 14.7): the demo log with a CUR month exported as of an
/// instant, verified with no database; the events after the instant are not in it; a
/// changed event, a removed line, a cut-short file and a forged head are each named.
async fn audit_bundle(url: &str) {
    let store = finops_eventlog::open(url, finops_governance::upcasters()).await.unwrap();
    finops_server::demo::seed(store.clone(), "arn:aws:sso:::instance/ssoins-demo").await.unwrap();
    let dir = std::env::temp_dir().join(format!("finops-bundle-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("month.csv");
    let spec = finops_cur::synthetic::MonthSpec { period: "2026-11".into(), rows: 500, seed: 7, restatement: 0 };
    finops_cur::synthetic::write_month(&spec, &mut std::fs::File::create(&csv).unwrap()).unwrap();
    let objects: std::sync::Arc<dyn object_store::ObjectStore> =
        std::sync::Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&dir).unwrap());
    let ingestor = finops_ingest::Ingestor::new(store.clone(), objects);
    let report =
        ingestor.ingest_file(&csv, finops_ingest::Format::Cur, &finops_e2e::operator_context("op-kai")).await.unwrap();
    let head = store.seal_committed().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let until = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    // Recorded after the instant: not in the bundle.
    store
        .append(&StreamId::new("later").unwrap(), ExpectedVersion::Any, vec![NewEvent::new("Later", json!({}))])
        .await
        .unwrap();
    store.seal_committed().await.unwrap();

    let file = dir.join("bundle.jsonl");
    let file_arg = file.display().to_string();
    let (code, out) = replay(url, &["--json", "export", "--until", &until.to_rfc3339(), "--out", &file_arg]);
    assert_eq!(code, 0, "{out}");
    let exported: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(exported["head_position"], json!(head.position.0));
    assert_eq!(exported["head_hash"], json!(head.hash.to_hex()));
    assert_eq!(exported["cur_batches"], json!([{ "period": "2026-11", "hash": report.batch.hash }]));

    // Verified with no database at all (the store argument points nowhere).
    let nowhere = "sqlite:///nonexistent/finops.db";
    let (code, out) = replay(nowhere, &["verify", "--bundle", &file_arg]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("bundle intact: {} events verified", head.position.0)), "{out}");
    let recorded = format!("{}:{}", head.position.0, head.hash.to_hex());
    assert_eq!(replay(nowhere, &["verify", "--bundle", &file_arg, "--expect-head", &recorded]).0, 0);

    let lines: Vec<String> = std::fs::read_to_string(&file).unwrap().lines().map(str::to_owned).collect();
    assert_eq!(lines.len() as u64, head.position.0 + 2, "header, every event, closing line");
    let broken = |name: &str, lines: &[String]| {
        let path = dir.join(name);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        replay(nowhere, &["verify", "--bundle", &path.display().to_string()])
    };
    // An event's payload changed: named at its line and position.
    let mut changed = lines.clone();
    changed[5] = changed[5].replacen("\"payload\":\"{", "\"payload\":\"{\\\"x\\\":1,", 1);
    let (code, out) = broken("changed.jsonl", &changed);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("line 6: position 5: hash mismatch"), "{out}");
    // A line removed: the position after it is where the chain breaks.
    let mut removed = lines.clone();
    removed.remove(3);
    let (code, out) = broken("removed.jsonl", &removed);
    assert_eq!(code, 1);
    assert!(out.contains("position 3 is missing"), "{out}");
    // Cut short: no closing line.
    let (code, out) = broken("short.jsonl", &lines[..lines.len() - 1]);
    assert_eq!(code, 1);
    assert!(out.contains("cut short"), "{out}");
    // A forged head on the closing line.
    let mut forged = lines.clone();
    let last = forged.len() - 1;
    forged[last] = json!({ "head_position": head.position.0, "head_hash": "b".repeat(64) }).to_string();
    let (code, out) = broken("forged.jsonl", &forged);
    assert_eq!(code, 1);
    assert!(out.contains("closing line claims a head"), "{out}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_bundle_on_sqlite() {
    audit_bundle(&finops_e2e::fresh_sqlite_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_bundle_on_postgres() {
    let Some(url) = finops_e2e::fresh_postgres_url().await else { return };
    audit_bundle(&url).await;
}

/// `finops-replay at` (issue 14.3): the read models as of an instant, rebuilt into a
/// scratch database — the same digests every time; as of now, the digests a rebuild of
/// the live read models gives; before a decision, other digests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_rebuilds_every_read_model_as_of_an_instant_into_a_scratch_database() {
    let url = finops_e2e::fresh_sqlite_url();
    let store = finops_eventlog::open(&url, Upcasters::new()).await.unwrap();
    let stream = submit(store.as_ref(), "0192f0c4-0000-7000-8000-000000000002").await;
    store.seal_committed().await.unwrap();
    let between = chrono::Utc::now();
    let rejected = json!({
        "type": "BusinessRequestRejected", "by": "fl-ana", "rationale": "No budget", "at": "2026-11-21T10:00:00Z"
    });
    store
        .append(&stream, ExpectedVersion::Exact(1), vec![NewEvent::new("BusinessRequestRejected", rejected)])
        .await
        .unwrap();
    store.seal_committed().await.unwrap();
    drop(store);

    let at = |instant: &str| {
        let (code, out) = replay(&url, &["--json", "at", instant]);
        assert_eq!(code, 0, "{out}");
        let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        let queue = report["read_models"].as_array().unwrap().iter().find(|r| r["projection"] == "request_queue");
        (report.clone(), queue.unwrap()["digest"].as_str().unwrap().to_owned())
    };
    let (then, digest_then) = at(&between.to_rfc3339());
    assert_eq!(then["through_position"], 1, "{then}");
    assert_eq!(at(&between.to_rfc3339()).1, digest_then, "the same instant, the same digests");
    let (now, digest_now) = at(&chrono::Utc::now().to_rfc3339());
    assert_eq!(now["through_position"], 2);
    assert_ne!(digest_now, digest_then, "the rejection changed the queue");
    let (code, out) = replay(&url, &["--json", "rebuild", "--projection", "request_queue"]);
    assert_eq!(code, 0, "{out}");
    let rebuilt: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(rebuilt[0]["digest_after"].as_str(), Some(digest_now.as_str()), "as of now is the live read model");
    // The scratch database holds what was printed.
    let scratch = now["scratch"].as_str().unwrap();
    let models = finops_projections::ReadModels::open(scratch).await.unwrap();
    assert_eq!(models.digest("request_queue").await.unwrap(), digest_now);

    let (code, out) = replay(&url, &["at", "last tuesday"]);
    assert_eq!(code, 2);
    assert!(out.contains("`last tuesday` is not an RFC 3339 instant"), "{out}");
    let (code, out) = replay(&url, &["at", &between.to_rfc3339(), "--into", &url]);
    assert_eq!(code, 2);
    assert!(out.contains("--into names the store itself"), "{out}");
}

/// An operator sees what went wrong during a rebuild: a read model skipping an event of a
/// type it does not know (written by a newer version, say) is warned about on standard
/// error, while standard output still holds the report alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_warns_on_standard_error_and_reports_on_standard_output() {
    let url = finops_e2e::fresh_sqlite_url();
    let store = finops_eventlog::open(&url, Upcasters::new()).await.unwrap();
    let stream = StreamId::new("workload-0192f0c4-0000-7000-8000-0000000000aa").unwrap();
    let future = NewEvent::new("WorkloadRenamed", json!({ "type": "WorkloadRenamed", "name": "Support Bot 2" }));
    store.append(&stream, ExpectedVersion::Any, vec![future]).await.unwrap();
    store.seal_committed().await.unwrap();
    drop(store);

    let out = Command::new(env!("CARGO_BIN_EXE_finops-replay"))
        .args(["--store", &url, "--json", "rebuild", "--projection", "workloads"])
        .env_remove("FINOPS_STORE")
        .env_remove("FINOPS_LOG")
        .env_remove("RUST_LOG")
        .output()
        .expect("finops-replay runs");
    assert!(out.status.success());
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report[0]["projection"], "workloads", "{report}");
    assert!(stderr.contains("WARN") && stderr.contains("WorkloadRenamed"), "{stderr}");
    assert!(stderr.contains("skipped an event of a type it does not know"), "{stderr}");
}
