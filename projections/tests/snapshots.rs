//! Governance snapshots beside the read models, on both stores: a restarted timeline
//! starts from the newest one and answers every instant as the full fold of the log does;
//! a snapshot of another version or another log is not used; one that differs from the
//! log's own fold is replaced by it.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use finops_domain::governance_state::GovernanceState;
use finops_domain::spaces::{ClaimEvent, ClaimedResource};
use finops_domain::vocabulary::AccountId;
use finops_eventlog::{AllRead, EventMetadata, EventStore, ExpectedVersion, NewEvent, Position, StreamId};
use finops_governance::state::state_as_of;
use finops_governance::timeline::{GovernanceTimeline, Snapshot, SnapshotStore};
use finops_governance::{streams, upcasters};
use finops_projections::ReadModels;
use uuid::Uuid;

async fn stores() -> Vec<(Arc<dyn EventStore>, ReadModels)> {
    let mut urls = vec![finops_testkit::fresh_sqlite_url()];
    urls.extend(finops_testkit::fresh_postgres_url().await);
    let mut out = Vec::new();
    for url in urls {
        let store = finops_eventlog::open(&url, upcasters()).await.unwrap();
        out.push((store, ReadModels::open(&url).await.unwrap()));
    }
    out
}

/// Appends `count` claims, numbered from `first`, over seven resources.
async fn claims(store: &dyn EventStore, first: u32, count: u32) {
    for n in first..first + count {
        let event = ClaimEvent::ResourceClaimed {
            resource: ClaimedResource::IamRole {
                account: AccountId::parse("111122223333").unwrap(),
                role_name: format!("role-{}", n % 7),
            },
            workload_id: Uuid::from_u128(u128::from(n)),
            effective_from: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap() + Duration::days(i64::from(n % 28)),
            by: "po-maria".into(),
            at: Utc::now(),
        };
        let new =
            NewEvent::new("ResourceClaimed", serde_json::to_value(&event).unwrap()).with_metadata(EventMetadata {
                actor_id: "po-maria".into(),
                actor_role: "product_owner".into(),
                ..Default::default()
            });
        let stream = StreamId::new(format!("{}r{}", streams::CLAIM, n % 7)).unwrap();
        store.append(&stream, ExpectedVersion::Any, vec![new]).await.unwrap();
    }
    store.seal_committed().await.unwrap();
}

/// Every instant at which the answer can change (each event's `recorded_at`, and just
/// before it), "now", and before the log.
async fn instants(store: &dyn EventStore) -> Vec<Option<DateTime<Utc>>> {
    let events = store.read_all(AllRead::forwards_after(Position::START, 10_000)).await.unwrap();
    let mut out = vec![None, Some(events[0].metadata.recorded_at - Duration::seconds(1))];
    for e in &events {
        out.extend([Some(e.metadata.recorded_at - Duration::microseconds(1)), Some(e.metadata.recorded_at)]);
    }
    out
}

async fn assert_answers_as_the_log(timeline: &GovernanceTimeline, store: &dyn EventStore, what: &str) {
    for instant in instants(store).await {
        let expected = format!("{:?}", state_as_of(store, instant).await.unwrap());
        let answered = format!("{:?}", timeline.state_as_of(instant).await.unwrap());
        assert!(answered == expected, "{:?} {what}: at {instant:?} the timeline differs from the log", store.backend());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_timeline_starts_from_its_snapshot_and_answers_as_the_log() {
    for (store, models) in stores().await {
        claims(store.as_ref(), 0, 40).await;
        let first = GovernanceTimeline::with_spacing(store.clone(), 5, 64).with_snapshots(Arc::new(models.clone()), 25);
        first.follow().await.unwrap();
        let saved = models.load_snapshot(finops_governance::timeline::SNAPSHOT_VERSION).await.unwrap().unwrap();
        assert_eq!((saved.position, saved.events), (Position(40), 40), "{:?}: written at the head", store.backend());
        let state: GovernanceState = serde_json::from_str(&saved.state).unwrap();
        assert_eq!(
            format!("{state:?}"),
            format!("{:?}", state_as_of(store.as_ref(), None).await.unwrap()),
            "{:?}: the snapshot holds the log's state",
            store.backend()
        );

        // The server restarts after more decisions.
        claims(store.as_ref(), 40, 12).await;
        let restarted =
            GovernanceTimeline::with_spacing(store.clone(), 5, 64).with_snapshots(Arc::new(models.clone()), 25);
        assert_answers_as_the_log(&restarted, store.as_ref(), "from the snapshot, before the log confirmed it").await;
        assert_eq!(restarted.restored_from().await, Some(Position(40)), "{:?}", store.backend());
        restarted.follow().await.unwrap();
        let (marks, _) = restarted.marks().await;
        assert!(marks >= 10, "{:?}: the marks before the snapshot were folded again ({marks})", store.backend());
        assert_answers_as_the_log(&restarted, store.as_ref(), "after the log confirmed it").await;
        assert_eq!(restarted.restored_from().await, Some(Position(40)), "{:?}: confirmed, kept", store.backend());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_of_another_version_or_another_log_is_not_used() {
    for (store, models) in stores().await {
        claims(store.as_ref(), 0, 30).await;
        let old = GovernanceTimeline::new(store.clone())
            .with_snapshots(Arc::new(models.clone()), 10)
            .with_snapshot_version(0);
        old.follow().await.unwrap();
        assert!(models.load_snapshot(0).await.unwrap().is_some());
        let current = GovernanceTimeline::new(store.clone()).with_snapshots(Arc::new(models.clone()), 10);
        current.follow().await.unwrap();
        assert_eq!(current.restored_from().await, None, "{:?}: another version's snapshot is ignored", store.backend());
        assert!(
            models.load_snapshot(0).await.unwrap().is_none(),
            "{:?}: and deleted once a new one is written",
            store.backend()
        );
        assert_answers_as_the_log(&current, store.as_ref(), "without a usable snapshot").await;

        // A snapshot whose chain hash is not the log's at its position (another log, or
        // this one restored from a backup) is not used either.
        let mut foreign = models.load_snapshot(finops_governance::timeline::SNAPSHOT_VERSION).await.unwrap().unwrap();
        foreign.chain_hash = "00".repeat(32);
        foreign.position = Position(foreign.position.0 + 1);
        claims(store.as_ref(), 30, 1).await;
        models.save_snapshot(&foreign).await.unwrap();
        let restarted = GovernanceTimeline::new(store.clone()).with_snapshots(Arc::new(models.clone()), 10);
        assert_answers_as_the_log(&restarted, store.as_ref(), "with a foreign snapshot").await;
        assert_eq!(restarted.restored_from().await, None, "{:?}", store.backend());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_that_differs_from_the_log_is_replaced_by_the_logs_fold() {
    for (store, models) in stores().await {
        claims(store.as_ref(), 0, 20).await;
        let there = store.read_all(AllRead::forwards_after(Position(19), 1)).await.unwrap();
        // The right position and chain hash, the wrong state (a fold changed without a
        // version bump, or a corrupted row).
        let wrong = Snapshot {
            version: finops_governance::timeline::SNAPSHOT_VERSION,
            position: Position(20),
            events: 20,
            chain_hash: there[0].hash.unwrap().to_hex(),
            earliest: there[0].metadata.recorded_at - Duration::minutes(1),
            latest: there[0].metadata.recorded_at,
            state: serde_json::to_string(&GovernanceState::default()).unwrap(),
        };
        models.save_snapshot(&wrong).await.unwrap();
        let timeline =
            GovernanceTimeline::with_spacing(store.clone(), 4, 64).with_snapshots(Arc::new(models.clone()), 10);
        timeline.follow().await.unwrap();
        assert_eq!(timeline.restored_from().await, None, "{:?}: the log's fold replaced it", store.backend());
        assert_answers_as_the_log(&timeline, store.as_ref(), "after the check").await;
        timeline.follow().await.unwrap();
        let rewritten = models.load_snapshot(finops_governance::timeline::SNAPSHOT_VERSION).await.unwrap().unwrap();
        let state: GovernanceState = serde_json::from_str(&rewritten.state).unwrap();
        assert_eq!(state.claims.len(), 7, "{:?}: a right snapshot is written in its place", store.backend());
    }
}
