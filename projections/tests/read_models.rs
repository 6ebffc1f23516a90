//! Read models on both backends: they follow the log, are idempotent, and a rebuild yields
//! the same documents.

use std::sync::Arc;

use finops_eventlog::{EventMetadata, EventStore, ExpectedVersion, NewEvent, StreamId, Upcasters};
use finops_projections::{ProjectionRunner, ReadModels, RequestQueue};
use serde_json::json;

fn submitted(id: &str, owner: &str, name: &str) -> NewEvent {
    NewEvent::new(
        "BusinessRequestSubmitted",
        json!({
            "type": "BusinessRequestSubmitted",
            "request_id": id,
            "product_id": "0192f0c4-1111-7000-8000-000000000001",
            "requested_by": owner,
            "details": {
                "workload_name": name,
                "use_case": { "coding": { "developers": 10, "active_percent": 20 } },
                "priority": false
            },
            "at": "2026-11-20T10:00:00Z"
        }),
    )
    .with_metadata(EventMetadata {
        actor_id: owner.into(),
        actor_role: "product_owner".into(),
        ..Default::default()
    })
}

fn rejected() -> NewEvent {
    NewEvent::new(
        "BusinessRequestRejected",
        json!({ "type": "BusinessRequestRejected", "by": "fl-ana", "rationale": "vague", "at": "2026-11-20T11:00:00Z" }),
    )
}

async fn check(url: &str) {
    let store: Arc<dyn EventStore> = finops_eventlog::open(url, Upcasters::new()).await.unwrap();
    let models = ReadModels::open(url).await.unwrap();
    let runner = ProjectionRunner::new(store.clone(), models.clone(), finops_projections::governance_projectors());

    let ids: Vec<String> = (1..=5).map(|i| format!("0192f0c4-0000-7000-8000-00000000000{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let owner = if i % 2 == 0 { "po-maria" } else { "po-juan" };
        let stream = StreamId::new(format!("business-request-{id}")).unwrap();
        store
            .append(&stream, ExpectedVersion::NoStream, vec![submitted(id, owner, &format!("Team {i}"))])
            .await
            .unwrap();
    }
    let first = StreamId::new(format!("business-request-{}", ids[0])).unwrap();
    store.append(&first, ExpectedVersion::Exact(1), vec![rejected()]).await.unwrap();
    let head = store.seal_committed().await.unwrap();

    assert_eq!(runner.catch_up().await.unwrap(), head.position.0);
    let doc = models.get(RequestQueue::NAME, &ids[0]).await.unwrap().unwrap();
    assert_eq!(doc["status"], "rejected");
    assert_eq!(doc["last_rejection"], "vague");
    assert_eq!(doc["workload_name"], "Team 0");
    assert_eq!(doc["version"], 2);

    // Idempotent: running again changes nothing.
    let digest = models.digest(RequestQueue::NAME).await.unwrap();
    runner.catch_up().await.unwrap();
    assert_eq!(models.digest(RequestQueue::NAME).await.unwrap(), digest);

    // Pagination with a filter: Maria's requests, two per page, stable tokens.
    let mine = |d: &serde_json::Value| d["requested_by"] == "po-maria";
    let page1 = models.list(RequestQueue::NAME, 2, "", mine).await.unwrap();
    assert_eq!(page1.documents.len(), 2);
    let page2 = models.list(RequestQueue::NAME, 2, &page1.next_page_token, mine).await.unwrap();
    assert_eq!(page2.documents.len(), 1);
    assert!(page2.next_page_token.is_empty());
    let all: Vec<_> =
        page1.documents.iter().chain(&page2.documents).map(|d| d["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(all, vec![ids[0].clone(), ids[2].clone(), ids[4].clone()]);
    assert!(models.list(RequestQueue::NAME, 2, "zz-not-hex", mine).await.is_err());

    // Rebuild into a new generation: identical documents, and live folding continues.
    let report = runner.rebuild(RequestQueue::NAME).await.unwrap();
    assert_eq!(report.events, head.position.0);
    assert_eq!(report.digest_before, report.digest_after, "a rebuild gives identical read models");
    store.append(&first, ExpectedVersion::Exact(2), vec![submitted(&ids[0], "po-maria", "Team 0 v2")]).await.unwrap();
    store.seal_committed().await.unwrap();
    runner.catch_up().await.unwrap();
    let doc = models.get(RequestQueue::NAME, &ids[0]).await.unwrap().unwrap();
    assert_eq!((doc["status"].as_str(), doc["workload_name"].as_str()), (Some("submitted"), Some("Team 0 v2")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_models_on_postgres() {
    let Some(url) = finops_testkit::fresh_postgres_url().await else { return };
    check(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_models_on_sqlite() {
    check(&finops_testkit::fresh_sqlite_url()).await;
}

/// Regression (issue 10.15): on the embedded store the live runner's rounds failed with
/// "database is locked" under ordinary load (a deferred transaction read, then tried to
/// write after the log's writer had committed) and were retried. Several writers append
/// while the runner follows; no round may fail and nothing may be missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_embedded_store_s_projections_never_fail_a_round_under_load() {
    let url = finops_testkit::fresh_sqlite_url();
    let store: Arc<dyn EventStore> = finops_eventlog::open(&url, Upcasters::new()).await.unwrap();
    let models = ReadModels::open(&url).await.unwrap();
    let runner = ProjectionRunner::new(store.clone(), models.clone(), finops_projections::governance_projectors());
    let following = runner.clone().spawn(std::time::Duration::from_millis(1));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..60 {
                    let id = format!("0192f0c4-0000-7000-8000-{w:04}{i:08}");
                    let stream = StreamId::new(format!("business-request-{id}")).unwrap();
                    store
                        .append(&stream, ExpectedVersion::NoStream, vec![submitted(&id, "po-maria", "Load")])
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let head = store.seal_committed().await.unwrap().position.0;
    loop {
        if models.checkpoint(RequestQueue::NAME).await.unwrap() >= head {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    following.abort();
    assert_eq!(runner.failed_rounds(), 0, "every round succeeded the first time");
    let page = models.list(RequestQueue::NAME, 1000, "", |_| true).await.unwrap();
    assert_eq!(page.documents.len(), 240, "every request is in the read model");
}

/// A rebuild folds every read model in one pass and reproduces the live documents
/// exactly, over many events and pages.
/// A rebuild of every read model at once reproduces what the live runner folded, over a
/// log of several rebuild pages (read ahead in parallel) with the governance log's every
/// shape — requests, approvals, tasks with their commands, workloads — and text that the
/// PostgreSQL path's `COPY` must escape; what the database holds afterwards is exactly the
/// text the rebuild's digest was taken from.
async fn rebuild_reproduces(url: &str) {
    let store: Arc<dyn EventStore> = finops_eventlog::open(url, Upcasters::new()).await.unwrap();
    let models = ReadModels::open(url).await.unwrap();
    let runner = ProjectionRunner::new(store.clone(), models.clone(), finops_projections::governance_projectors());
    let generated = finops_testkit::governance_log::generate(&store, 12_000).await as u64;
    let awkward = "0192f0c4-0000-7000-9000-0000000a0001";
    // Long enough that PostgreSQL compresses its document (the governance log's own are
    // smaller than its threshold, 2 kB).
    let name = format!("Tab\there, a new\nline, a \\ backslash and \"quotes\"\r{}", " and so on".repeat(400));
    let name = name.as_str();
    let stream = StreamId::new(format!("business-request-{awkward}")).unwrap();
    store.append(&stream, ExpectedVersion::NoStream, vec![submitted(awkward, "po-maria", name)]).await.unwrap();
    for i in 0..400u32 {
        let id = format!("0192f0c4-0000-7000-9000-{i:012}");
        let stream = StreamId::new(format!("business-request-{id}")).unwrap();
        store.append(&stream, ExpectedVersion::NoStream, vec![submitted(&id, "po-maria", "Many")]).await.unwrap();
        if i.is_multiple_of(4) {
            store.append(&stream, ExpectedVersion::Exact(1), vec![rejected()]).await.unwrap();
        }
    }
    let head = store.seal_committed().await.unwrap().position.0;
    assert_eq!(head, generated + 501);
    assert_eq!(runner.catch_up().await.unwrap(), head);
    let mut live = Vec::new();
    for name in finops_projections::ALL {
        live.push(models.digest(name).await.unwrap());
    }

    // A generation a process replaced and ended before dropping: the next rebuild drops it.
    let raw = sqlx::AnyPool::connect(url).await.unwrap();
    sqlx::query(
        "INSERT INTO read_model_documents (projection, generation, doc_key, doc) \
         SELECT name, active_generation - 1, 'left-behind', '{}' FROM read_model_projections",
    )
    .execute(&raw)
    .await
    .unwrap();
    assert!(stale_documents(&raw).await > 0);

    let reports = runner.rebuild_all(&finops_projections::ALL).await.unwrap().reports;
    // The new generations serve at once; the replaced ones are dropped behind the swap.
    models.retired().await;
    assert_eq!(stale_documents(&raw).await, 0, "only the active generations are left");
    assert_eq!(reports.len(), finops_projections::ALL.len());
    for (report, live) in reports.iter().zip(&live) {
        assert_eq!(report.events, head);
        assert_eq!(&report.digest_before, live, "{}: the live digest", report.projection);
        assert_eq!(report.digest_before, report.digest_after, "{} changed on rebuild", report.projection);
        // Read back from the database: it holds exactly the text the digest was taken from.
        assert_eq!(models.digest(report.projection).await.unwrap(), report.digest_after, "{}", report.projection);
    }
    let doc = models.get(RequestQueue::NAME, awkward).await.unwrap().unwrap();
    assert_eq!(doc["workload_name"], name);
    let rejected = models.list(RequestQueue::NAME, 1000, "", |d| d["status"] == "rejected").await.unwrap();
    assert!(rejected.documents.len() >= 100, "the 100 rejected here, and the generated log's");
    let tasks = models.list(finops_projections::TaskQueue::NAME, 1, "", |_| true).await.unwrap();
    assert!(tasks.documents[0].get("steps").is_none(), "a task's plan stays in the log");
    let with_steps = finops_projections::TaskQueue::with_steps(store.as_ref(), tasks.documents).await.unwrap();
    assert!(!with_steps[0]["steps"].as_array().unwrap().is_empty(), "its generated steps, read where it points");
    if url.starts_with("postgres") {
        // Stored lz4-compressed (a rebuild's write costs about a third less than with pglz),
        // and opening the read models again leaves the column as it is.
        ReadModels::open(url).await.unwrap();
        let methods: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT CAST(pg_column_compression(doc) AS TEXT) FROM read_model_documents \
             WHERE pg_column_compression(doc) IS NOT NULL",
        )
        .fetch_all(&raw)
        .await
        .unwrap();
        assert_eq!(methods, ["lz4"], "the compressed documents");
    }
}

/// Documents of generations no read model serves.
async fn stale_documents(raw: &sqlx::AnyPool) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM read_model_documents d JOIN read_model_projections p ON p.name = d.projection \
         WHERE d.generation <> p.active_generation",
    )
    .fetch_one(raw)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilding_every_read_model_at_once_reproduces_them_on_postgres() {
    let Some(url) = finops_testkit::fresh_postgres_url().await else { return };
    rebuild_reproduces(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilding_every_read_model_at_once_reproduces_them_on_sqlite() {
    rebuild_reproduces(&finops_testkit::fresh_sqlite_url()).await;
}

/// A List pages in key byte order on PostgreSQL whatever the collation its table was made
/// with — as SQLite, a point-in-time view and a digest order keys — here a linguistic one
/// (ICU's root collation), which orders these keys otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_list_in_key_byte_order_whatever_the_database_collation() {
    let Some(url) = finops_testkit::fresh_postgres_url().await else { return };
    // The table as a database with that default collation would have made it.
    let raw = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query(
        "CREATE TABLE read_model_documents (projection TEXT NOT NULL, generation BIGINT NOT NULL, \
         doc_key TEXT COLLATE \"und-x-icu\" NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (projection, generation, doc_key))",
    )
    .execute(&raw)
    .await
    .unwrap();
    let linguistic: Vec<String> = sqlx::query_scalar(
        "SELECT k FROM unnest(ARRAY['ab', 'B', 'a-c', 'a', 'é']) AS k ORDER BY k COLLATE \"und-x-icu\"",
    )
    .fetch_all(&raw)
    .await
    .unwrap();
    let keys = ["B", "a", "a-c", "ab", "é"];
    assert_ne!(linguistic, keys, "the collation orders these keys otherwise than their bytes");

    let models = ReadModels::open(&url).await.unwrap();
    let docs: std::collections::BTreeMap<String, finops_projections::Document> =
        keys.iter().map(|k| (k.to_string(), json!({ "key": k }).into())).collect();
    models.install("ordered", 1, &docs, 1).await.unwrap();
    let mut listed = Vec::new();
    let mut token = String::new();
    loop {
        let page = models.list("ordered", 2, &token, |_| true).await.unwrap();
        listed.extend(page.documents.iter().map(|d| d["key"].as_str().unwrap().to_owned()));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(listed, keys, "pages in key byte order");
    // Opening again leaves the column as it is.
    ReadModels::open(&url).await.unwrap();
    let collation: String = sqlx::query_scalar(
        "SELECT CAST(c.collname AS TEXT) FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation \
         WHERE a.attrelid = CAST('read_model_documents' AS regclass) AND a.attname = 'doc_key'",
    )
    .fetch_one(&raw)
    .await
    .unwrap();
    assert_eq!(collation, "C");
}

/// A projector whose documents change shape raises its version; a read model built by the
/// earlier version is rebuilt when the runner starts, so no old-shaped document survives
/// an upgrade (issue 10.11 renamed money in the request queue and workloads).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_model_built_by_an_earlier_projector_version_is_rebuilt_on_start() {
    struct Shape(u32);
    impl finops_projections::Projector for Shape {
        fn name(&self) -> &'static str {
            "shape"
        }
        fn version(&self) -> u32 {
            self.0
        }
        fn keys(&self, event: &finops_eventlog::RecordedEvent) -> Vec<String> {
            vec![event.stream_id.to_string()]
        }
        fn apply(
            &self,
            _: &finops_eventlog::RecordedEvent,
            _: &str,
            _: Option<finops_projections::Document>,
        ) -> Option<finops_projections::Document> {
            Some(json!({ "shape": self.0 }).into())
        }
    }
    let url = finops_testkit::fresh_sqlite_url();
    let store: Arc<dyn EventStore> = finops_eventlog::open(&url, Upcasters::new()).await.unwrap();
    let models = ReadModels::open(&url).await.unwrap();
    let id = "0192f0c4-0000-7000-8000-000000000001";
    let stream = StreamId::new(format!("business-request-{id}")).unwrap();
    store.append(&stream, ExpectedVersion::NoStream, vec![submitted(id, "po-maria", "x")]).await.unwrap();
    store.seal_committed().await.unwrap();
    let old = ProjectionRunner::new(store.clone(), models.clone(), vec![Arc::new(Shape(1))]);
    old.catch_up().await.unwrap();
    assert_eq!(models.get("shape", stream.as_str()).await.unwrap().unwrap()["shape"], 1);
    let upgraded = ProjectionRunner::new(store.clone(), models.clone(), vec![Arc::new(Shape(2))]);
    upgraded.catch_up().await.unwrap();
    assert_eq!(models.get("shape", stream.as_str()).await.unwrap().unwrap()["shape"], 2, "rebuilt in the new shape");
    // And it stays that way: a third start rebuilds nothing (same digest, same generation).
    let digest = models.digest("shape").await.unwrap();
    ProjectionRunner::new(store.clone(), models.clone(), vec![Arc::new(Shape(2))]).catch_up().await.unwrap();
    assert_eq!(models.digest("shape").await.unwrap(), digest);
}
