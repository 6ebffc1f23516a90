//! Schema evolution, shown for real (issue 14.6): `TaskImplemented` gained a closing note in
//! schema version 2, with an upcaster; a log written by the build before (checked in as an
//! SQLite dump, `tests/fixtures/log-v1.sql.gz`) is read by this one — its stored bytes
//! untouched (the chain verifies to the head that build recorded), its version-1 events
//! read in the current shape, and every read model folded from it identical to what that
//! build folded (`tests/fixtures/log-v1.digests.json`), live or rebuilt.

use std::io::Read;

use finops_domain::tasks::TaskEvent;
use finops_eventlog::{AllRead, EventStore, Position};
use serde_json::Value;

const DUMP: &[u8] = include_bytes!("../fixtures/log-v1.sql.gz");
const EXPECTED: &str = include_str!("../fixtures/log-v1.digests.json");

/// The checked-in log restored into a fresh SQLite file; returns its store URL.
async fn restored_log() -> String {
    let mut sql = String::new();
    flate2::read::GzDecoder::new(DUMP).read_to_string(&mut sql).unwrap();
    let dir = std::env::temp_dir().join("finops-e2e");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("log-v1-{}.db", uuid::Uuid::now_v7()));
    std::fs::File::create(&path).unwrap();
    let url = format!("sqlite://{}", path.display());
    let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect(&url).await.unwrap();
    // The dump is the checked-in fixture, not input from anyone.
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await.unwrap();
    pool.close().await;
    url
}

async fn every_event(store: &dyn EventStore) -> Vec<finops_eventlog::RecordedEvent> {
    let mut all = Vec::new();
    let mut after = Position::START;
    loop {
        let page = store.read_all(AllRead::forwards_after(after, 1000)).await.unwrap();
        let Some(last) = page.last().and_then(|e| e.position) else { return all };
        after = last;
        all.extend(page);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_written_by_the_previous_version_reads_into_the_same_read_models() {
    let expected: Value = serde_json::from_str(EXPECTED).unwrap();
    let url = restored_log().await;
    let store = finops_eventlog::open(&url, finops_governance::upcasters()).await.unwrap();

    // 1. Nothing was rewritten: the chain holds the head the old build recorded.
    let report = finops_eventlog::verify_chain(store.as_ref(), None).await.unwrap();
    assert!(report.first_break.is_none(), "{:?}", report.first_break);
    assert_eq!(report.verified_through.0, expected["head_position"].as_u64().unwrap());
    assert_eq!(report.head_hash.to_hex(), expected["head_hash"].as_str().unwrap());

    // 2. The version-1 events read in the current shape; the stored version is kept.
    let events = every_event(store.as_ref()).await;
    let implemented: Vec<_> = events.iter().filter(|e| e.event_type == "TaskImplemented").collect();
    assert!(!implemented.is_empty(), "the fixture holds an implemented task");
    for event in &implemented {
        assert_eq!((event.stored_schema_version, event.schema_version), (1, 2));
        assert_eq!(event.payload["note"], Value::Null, "{}", event.payload);
        let decoded: TaskEvent = event.payload.decode().unwrap();
        assert!(matches!(decoded, TaskEvent::TaskImplemented { note: None, .. }));
    }

    // 3. The read models this build folds from the old log are the old build's, document for
    // document: as of now, and rebuilt into the store.
    let projectors = finops_projections::governance_projectors();
    let folded =
        finops_projections::ReadModelsAsOf::fold(store.as_ref(), &projectors, chrono::Utc::now()).await.unwrap();
    let models = finops_projections::ReadModels::open(&url).await.unwrap();
    let runner = finops_projections::ProjectionRunner::new(store.clone(), models, projectors.clone());
    let rebuilt = runner.rebuild_all(&finops_projections::ALL).await.unwrap().reports;
    for projector in &projectors {
        let name = projector.name();
        let want = &expected["read_models"][name];
        let report = rebuilt.iter().find(|r| r.projection == name).unwrap();
        if want.is_null() {
            // A read model added since (the old build had no documents to compare): the old
            // log folds and rebuilds into the same documents.
            assert_eq!(folded.digest(name).unwrap(), report.digest_after, "{name}: folded and rebuilt differ");
            continue;
        }
        assert_eq!(folded.all(name).unwrap().len() as u64, want["documents"].as_u64().unwrap(), "{name}");
        assert_eq!(folded.digest(name).unwrap(), want["digest"].as_str().unwrap(), "{name} folded");
        assert_eq!(report.digest_after, want["digest"].as_str().unwrap(), "{name} rebuilt");
    }
}
