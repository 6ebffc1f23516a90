//! Snapshots of a long aggregate stream beside the read models, on both stores: a handler
//! with snapshots answers, decides and recognises retries exactly as one folding the whole
//! stream, reads only the events after a snapshot it trusts, and never trusts one the
//! stream contradicts.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use finops_domain::Aggregate;
use finops_domain::org::{OrgCommand, Organisation, Portfolio};
use finops_eventlog::{EventStore, StreamRead};
use finops_governance::stream_snapshots::{StreamSnapshot, StreamSnapshotStore};
use finops_governance::{CommandContext, CommandHandler, GovernanceError, streams, upcasters};
use finops_projections::ReadModels;
use uuid::Uuid;

/// Each store, counted, as the log handlers read and the snapshot store beside it.
async fn stores() -> Vec<(Arc<finops_testkit::CountedStore>, Arc<dyn EventStore>, Arc<dyn StreamSnapshotStore>)> {
    let mut urls = vec![finops_testkit::fresh_sqlite_url()];
    urls.extend(finops_testkit::fresh_postgres_url().await);
    let mut out = Vec::new();
    for url in urls {
        let store = finops_eventlog::open(&url, upcasters()).await.unwrap();
        let counted = finops_testkit::CountedStore::new(store);
        let snapshots: Arc<dyn StreamSnapshotStore> = Arc::new(ReadModels::open(&url).await.unwrap());
        out.push((counted.clone(), counted as Arc<dyn EventStore>, snapshots));
    }
    out
}

/// A handler of the organisation writing a snapshot every [`EVERY`] events.
fn snapshotting(log: &Arc<dyn EventStore>, snapshots: &Arc<dyn StreamSnapshotStore>) -> CommandHandler<Organisation> {
    CommandHandler::new(log.clone()).with_snapshots_every(snapshots.clone(), EVERY)
}

fn add_portfolio(n: u32) -> OrgCommand {
    OrgCommand::AddPortfolio {
        portfolio_id: Uuid::from_u128(0x9000 + u128::from(n)),
        portfolio: Portfolio { name: format!("Portfolio {n}"), owner: format!("pf-{}", n % 3) },
        at: Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap() + chrono::Duration::minutes(i64::from(n)),
    }
}

fn context(n: u32) -> CommandContext {
    CommandContext {
        actor_id: "fl-ana".into(),
        actor_role: "finops_lead".into(),
        request_id: Uuid::from_u128(0x7000 + u128::from(n)),
        rationale: Some("the organisation grows".into()),
        correlation_id: None,
        causation_id: None,
        fingerprint: Some(format!("add portfolio {n}")),
    }
}

fn json(org: &Organisation) -> serde_json::Value {
    serde_json::to_value(org).unwrap()
}

const EVERY: u64 = 4;

#[tokio::test]
async fn an_aggregate_from_its_snapshot_answers_as_its_whole_stream() {
    for (store, log, snapshots) in stores().await {
        let org = streams::organisation();
        let with = snapshotting(&log, &snapshots);
        let whole = CommandHandler::<Organisation>::new(log.clone());
        for n in 0..23 {
            let after = with.execute(&org, &add_portfolio(n), &context(n)).await.unwrap();
            let full = whole.load(&org).await.unwrap();
            assert_eq!((json(&after.state), after.version), (json(&full.state), full.version), "after command {n}");
            let loaded = with.load(&org).await.unwrap();
            assert_eq!((json(&loaded.state), loaded.version), (json(&full.state), full.version), "loaded after {n}");
        }
        let written = snapshots
            .load_stream_snapshot(org.as_str(), Organisation::FOLD_VERSION)
            .await
            .unwrap()
            .expect("a snapshot");
        assert_eq!(written.version, 20, "written every {EVERY} events past the last");

        // A snapshot this handler wrote is trusted: a load reads the events from it on.
        store.take_stream_reads();
        with.load(&org).await.unwrap();
        assert_eq!(store.take_stream_reads(), 4, "the snapshot's event and the three after it");
        whole.load(&org).await.unwrap();
        assert_eq!(store.take_stream_reads(), 23);

        // A retry older than the snapshot is answered as the first attempt was: the state
        // now, nothing written; with another request under its id, the id is named.
        let before = whole.load(&org).await.unwrap();
        let retried = with.execute(&org, &add_portfolio(1), &context(1)).await.unwrap();
        assert_eq!((json(&retried.state), retried.version), (json(&before.state), before.version));
        let mut reused = context(2);
        reused.fingerprint = Some("something else".into());
        let refused = with.execute(&org, &add_portfolio(2), &reused).await.unwrap_err();
        assert!(matches!(refused, GovernanceError::RequestIdReused { .. }), "{refused:?}");
        assert_eq!(whole.load(&org).await.unwrap().version, 23, "nothing appended by retries");
        // And a fresh refusal stays a refusal (the portfolio's name is taken).
        let mut clash = add_portfolio(30);
        if let OrgCommand::AddPortfolio { portfolio, .. } = &mut clash {
            portfolio.name = "Portfolio 3".into();
        }
        let refused = with.execute(&org, &clash, &context(30)).await.unwrap_err();
        assert!(matches!(refused, GovernanceError::Refused(_)), "{refused:?}");
    }
}

#[tokio::test]
async fn a_snapshot_the_stream_contradicts_is_never_used() {
    for (store, log, snapshots) in stores().await {
        let org = streams::organisation();
        let whole = CommandHandler::<Organisation>::new(log.clone());
        for n in 0..10 {
            whole.execute(&org, &add_portfolio(n), &context(n)).await.unwrap();
        }
        let truth = whole.load(&org).await.unwrap();
        let at_8 = log.read_stream(&org, StreamRead { from_version: Some(8), max_count: 1, ..StreamRead::all() }).await;
        let at_8 = at_8.unwrap().remove(0);
        let mut wrong = whole.load(&org).await.unwrap().state;
        wrong.portfolios.clear();

        // Written by someone else with a state the stream does not fold into: a handler
        // meeting it checks it, answers from the stream, and writes the right one.
        let forged = StreamSnapshot {
            stream: org.as_str().to_owned(),
            fold_version: Organisation::FOLD_VERSION,
            version: 8,
            event_id: at_8.event_id,
            state: serde_json::to_string(&wrong).unwrap(),
        };
        snapshots.save_stream_snapshot(&forged).await.unwrap();
        let with = snapshotting(&log, &snapshots);
        store.take_stream_reads();
        let loaded = with.load(&org).await.unwrap();
        assert_eq!(json(&loaded.state), json(&truth.state), "the stream's fold, not the forged snapshot");
        assert_eq!(store.take_stream_reads(), 10, "checked and folded in one read of the stream");
        let corrected =
            snapshots.load_stream_snapshot(org.as_str(), Organisation::FOLD_VERSION).await.unwrap().unwrap();
        assert_ne!(corrected.state, forged.state, "the forged state is replaced");
        assert_eq!(with.load(&org).await.unwrap().state, truth.state, "and the corrected one answers as the stream");

        // One naming an event the stream does not hold at its version (another log), or
        // written under another fold version, is not used either.
        for stale in [
            StreamSnapshot { event_id: Uuid::from_u128(1), ..forged.clone() },
            StreamSnapshot { fold_version: Organisation::FOLD_VERSION + 1, ..forged.clone() },
        ] {
            snapshots.save_stream_snapshot(&stale).await.unwrap();
            let fresh = snapshotting(&log, &snapshots);
            assert_eq!(json(&fresh.load(&org).await.unwrap().state), json(&truth.state));
        }
    }
}
