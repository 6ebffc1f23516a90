//! The governance fold reads only what it folds: the Cloud Engineer tasks' plans
//! (kilobytes of generated commands each, most of a governance log's bytes) are never
//! parsed by it, and what it does fold is decoded straight from the stored text — no JSON
//! tree per event (issue 14.4: the fold's cost per event is what every point-in-time
//! question past a mark pays).

use std::sync::Arc;

use finops_domain::governance_state::GovernanceState;
use finops_eventlog::{AllRead, EventStore, Position};
use finops_governance::state::{apply, state_as_of};
use finops_governance::upcasters;

async fn stores() -> Vec<Arc<dyn EventStore>> {
    let mut stores = vec![finops_eventlog::open(&finops_testkit::fresh_sqlite_url(), upcasters()).await.unwrap()];
    if let Some(url) = finops_testkit::fresh_postgres_url().await {
        stores.push(finops_eventlog::open(&url, upcasters()).await.unwrap());
    }
    stores
}

#[tokio::test]
async fn folding_the_governance_state_parses_no_payload_into_a_tree() {
    for store in stores().await {
        let written = finops_testkit::governance_log::generate(&store, 300).await;
        let log = store.read_all(AllRead::forwards_after(Position::START, 10_000)).await.unwrap();
        assert_eq!(log.len(), written);
        let tasks = log.iter().filter(|e| e.stream_id.as_str().starts_with("task-")).count();
        let requests = log.iter().filter(|e| e.stream_id.as_str().starts_with("business-request-")).count();
        assert!(tasks > 0 && requests > 0, "the log holds tasks ({tasks}) and requests ({requests})");

        let mut state = GovernanceState::default();
        for event in &log {
            apply(&mut state, event).unwrap();
        }
        let parsed: Vec<_> = log.iter().filter(|e| e.payload.is_parsed()).map(|e| e.event_type.as_str()).collect();
        assert!(parsed.is_empty(), "payloads parsed into a tree by the fold: {parsed:?}");

        // The same state the log's own fold gives (which reads it afresh).
        let folded = state_as_of(store.as_ref(), None).await.unwrap();
        assert_eq!(format!("{state:?}"), format!("{folded:?}"));
        assert!(!state.workloads().is_empty(), "approvals were folded");
    }
}
