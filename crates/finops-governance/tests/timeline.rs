//! The governance timeline on real stores: written by several concurrent writers (so
//! `recorded_at` and positions can disagree), asked while the log grows, it answers every
//! instant exactly as the full fold of the log does.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use finops_domain::spaces::{ClaimEvent, ClaimedResource};
use finops_domain::vocabulary::AccountId;
use finops_eventlog::{AllRead, EventMetadata, EventStore, ExpectedVersion, NewEvent, Position, StreamId};
use finops_governance::state::state_as_of;
use finops_governance::timeline::GovernanceTimeline;
use finops_governance::{streams, upcasters};
use uuid::Uuid;

async fn stores() -> Vec<Arc<dyn EventStore>> {
    let mut stores = vec![finops_eventlog::open(&finops_testkit::fresh_sqlite_url(), upcasters()).await.unwrap()];
    if let Some(url) = finops_testkit::fresh_postgres_url().await {
        stores.push(finops_eventlog::open(&url, upcasters()).await.unwrap());
    }
    stores
}

fn claimed(writer: u32, n: u32) -> NewEvent {
    let event = ClaimEvent::ResourceClaimed {
        resource: ClaimedResource::IamRole {
            account: AccountId::parse("111122223333").unwrap(),
            role_name: format!("role-{writer}-{}", n % 3),
        },
        workload_id: Uuid::from_u128(u128::from(writer) << 32 | u128::from(n)),
        effective_from: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap() + Duration::days(i64::from(n % 28)),
        by: format!("po-{writer}"),
        at: Utc::now(),
    };
    NewEvent::new("ResourceClaimed", serde_json::to_value(&event).unwrap()).with_metadata(EventMetadata {
        actor_id: format!("po-{writer}"),
        actor_role: "product_owner".into(),
        ..Default::default()
    })
}

/// Four writers, each appending `count` claims to streams of its own, one event at a time.
async fn write_concurrently(store: &Arc<dyn EventStore>, round: u32, count: u32) {
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for n in 0..count {
                    let stream = StreamId::new(format!("{}w{w}-{}", streams::CLAIM, n % 3)).unwrap();
                    store.append(&stream, ExpectedVersion::Any, vec![claimed(w, round * 1_000 + n)]).await.unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
}

/// Every sealed event's `recorded_at`, in log order.
async fn recorded(store: &dyn EventStore) -> Vec<DateTime<Utc>> {
    store.seal_committed().await.unwrap();
    let events = store.read_all(AllRead::forwards_after(Position::START, 100_000)).await.unwrap();
    events.iter().map(|e| e.metadata.recorded_at).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_timeline_answers_every_instant_as_the_full_fold_does_while_the_log_grows() {
    for store in stores().await {
        let backend = store.backend();
        // Small marks and a low limit, so a small log is marked, thinned and marked again.
        let timeline = GovernanceTimeline::with_spacing(store.clone(), 5, 6);
        for round in 0..3 {
            write_concurrently(&store, round, 25).await;
            let times = recorded(store.as_ref()).await;
            let out_of_order = times.windows(2).filter(|w| w[1] < w[0]).count();
            let mut asked = vec![None, Some(times[0] - Duration::seconds(1))];
            for t in times.iter().step_by(3) {
                asked.extend([Some(*t - Duration::microseconds(1)), Some(*t), Some(*t + Duration::microseconds(1))]);
            }
            for instant in asked {
                let expected = format!("{:?}", state_as_of(store.as_ref(), instant).await.unwrap());
                let answered = format!("{:?}", timeline.state_as_of(instant).await.unwrap());
                assert!(
                    answered == expected,
                    "{backend:?}, round {round} ({} events, {out_of_order} recorded out of order): at {instant:?} \
                     the timeline differs from the full fold",
                    times.len()
                );
            }
            let (marks, spacing) = timeline.marks().await;
            assert!(marks <= 6, "{backend:?}: {marks} marks kept");
            assert!(spacing > 5, "{backend:?}: past the limit the spacing grows ({spacing})");
        }
        let now = timeline.state_as_of(None).await.unwrap();
        assert_eq!(now.claims.len(), 12, "{backend:?}: four writers, three streams each");
    }
}
