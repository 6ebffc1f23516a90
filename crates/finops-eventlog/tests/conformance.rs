//! The conformance suite: every test runs against PostgreSQL and SQLite, and both must
//! behave identically.

mod common;

use std::time::Duration;

use finops_eventlog::{
    AllRead, BreakKind, Direction, EventLogError, EventMetadata, ExpectedVersion, NewEvent, Position, StreamId,
    StreamRead, Upcasters, subscribe, verify_chain,
};
use serde_json::json;
use tokio_stream::StreamExt;

use common::{Harness, RawDb};

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    if let Some(h) = super::common::postgres(super::upcasters()).await {
                        super::$test(h).await;
                    }
                }
            )*
        }
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::common::sqlite(super::upcasters()).await).await;
                }
            )*
        }
    };
}

conformance!(
    appended_events_read_back_with_their_full_envelope,
    a_stale_expected_version_is_a_conflict_naming_both_versions,
    retrying_the_same_event_ids_writes_nothing_and_returns_the_original_versions,
    reused_event_ids_in_another_append_are_refused,
    streams_read_forwards_and_backwards_within_bounds,
    the_global_order_reads_forwards_and_backwards_within_bounds,
    events_at_chosen_positions_read_in_one_go_in_order,
    a_subscription_catches_up_goes_live_and_resumes_from_a_checkpoint,
    old_schema_versions_are_upcast_on_read_and_never_rewritten,
    an_untouched_chain_verifies_to_the_head,
    a_modified_row_breaks_the_chain_at_its_position,
    a_deleted_row_breaks_the_chain_where_it_was,
    an_inserted_row_breaks_the_chain_where_it_was_put,
    the_log_refuses_updates_and_deletes,
    bad_appends_are_refused_with_the_field_named,
    stats_count_streams_types_and_the_head,
);

/// One upcaster for every store in the suite: `CapApproved` v1 had no `currency`.
fn upcasters() -> Upcasters {
    Upcasters::new().register("CapApproved", 1, |mut payload| {
        payload["currency"] = json!("USD");
        Ok(payload)
    })
}

fn stream(name: &str) -> StreamId {
    StreamId::new(name).unwrap()
}

fn event(n: u64) -> NewEvent {
    NewEvent::new("Noted", json!({ "n": n })).with_metadata(EventMetadata {
        actor_id: "alice".into(),
        actor_role: "finops_lead".into(),
        rationale: Some(format!("note {n}")),
        correlation_id: Some(uuid::Uuid::now_v7()),
        ..EventMetadata::default()
    })
}

fn events(range: std::ops::RangeInclusive<u64>) -> Vec<NewEvent> {
    range.map(event).collect()
}

/// Appends `count` events to `streams` in turn, one per append, and seals them.
async fn fill(h: &Harness, streams: &[&str], count: u64) {
    for n in 1..=count {
        let s = stream(streams[(n as usize - 1) % streams.len()]);
        h.store.append(&s, ExpectedVersion::Any, vec![event(n)]).await.unwrap();
    }
    h.store.seal_committed().await.unwrap();
}

fn payload_ns(events: &[finops_eventlog::RecordedEvent]) -> Vec<u64> {
    events.iter().map(|e| e.payload["n"].as_u64().unwrap()).collect()
}

async fn appended_events_read_back_with_their_full_envelope(h: Harness) {
    let s = stream("business-request-1");
    let batch = events(1..=3);
    let before = chrono::Utc::now();
    let out = h.store.append(&s, ExpectedVersion::NoStream, batch.clone()).await.unwrap();
    assert_eq!(out.stream_versions, vec![1, 2, 3]);
    assert_eq!(out.next_expected_version, 3);
    assert!(!out.already_appended);
    h.store.seal_committed().await.unwrap();

    let read = h.store.read_stream(&s, StreamRead::all()).await.unwrap();
    assert_eq!(read.len(), 3);
    for (i, (got, sent)) in read.iter().zip(&batch).enumerate() {
        assert_eq!(got.event_id, sent.event_id);
        assert_eq!(got.event_id.get_version_num(), 7, "ids are UUID v7");
        assert_eq!(got.stream_id, s);
        assert_eq!(got.stream_version, i as u64 + 1);
        assert_eq!(got.position, Some(Position(i as u64 + 1)));
        assert_eq!(got.event_type, "Noted");
        assert_eq!((got.schema_version, got.stored_schema_version), (1, 1));
        assert_eq!(got.payload, sent.payload);
        assert_eq!(got.metadata.actor_id, "alice");
        assert_eq!(got.metadata.actor_role, "finops_lead");
        assert_eq!(got.metadata.rationale, sent.metadata.rationale);
        assert_eq!(got.metadata.correlation_id, sent.metadata.correlation_id);
        assert!(got.metadata.recorded_at >= before - chrono::Duration::seconds(1), "the store stamps recorded_at");
        assert!(got.hash.is_some(), "a sealed event carries its chain hash");
    }
}

async fn a_stale_expected_version_is_a_conflict_naming_both_versions(h: Harness) {
    let s = stream("workload-7");
    h.store.append(&s, ExpectedVersion::NoStream, events(1..=2)).await.unwrap();

    let err = h.store.append(&s, ExpectedVersion::NoStream, vec![event(3)]).await.unwrap_err();
    match err {
        EventLogError::WrongExpectedVersion { expected, actual, ref stream } => {
            assert_eq!((expected, actual), (ExpectedVersion::NoStream, 2));
            assert_eq!(stream.as_str(), "workload-7");
        }
        other => panic!("expected a conflict, got {other}"),
    }
    let err = h.store.append(&s, ExpectedVersion::Exact(1), vec![event(3)]).await.unwrap_err();
    assert_eq!(err.to_string(), "stream `workload-7` is at version 2, but the append expected 1");
    let err = h.store.append(&stream("absent"), ExpectedVersion::Exact(4), vec![event(3)]).await.unwrap_err();
    assert!(matches!(err, EventLogError::WrongExpectedVersion { actual: 0, .. }), "{err}");

    let ok = h.store.append(&s, ExpectedVersion::Exact(2), vec![event(3)]).await.unwrap();
    assert_eq!(ok.stream_versions, vec![3]);
    let any = h.store.append(&s, ExpectedVersion::Any, vec![event(4)]).await.unwrap();
    assert_eq!(any.stream_versions, vec![4]);
    let read = h.store.read_stream(&s, StreamRead::all()).await.unwrap();
    assert_eq!(payload_ns(&read), vec![1, 2, 3, 4], "refused appends left nothing behind");
}

async fn retrying_the_same_event_ids_writes_nothing_and_returns_the_original_versions(h: Harness) {
    let s = stream("claim-1");
    h.store.append(&s, ExpectedVersion::NoStream, vec![event(0)]).await.unwrap();
    let batch = events(1..=2);
    let first = h.store.append(&s, ExpectedVersion::Exact(1), batch.clone()).await.unwrap();
    assert_eq!(first.stream_versions, vec![2, 3]);

    // The client never saw the answer and retries with the same ids and expectation.
    let retry = h.store.append(&s, ExpectedVersion::Exact(1), batch.clone()).await.unwrap();
    assert!(retry.already_appended);
    assert_eq!(retry.stream_versions, vec![2, 3]);
    assert_eq!(retry.next_expected_version, 3);
    let retry_any = h.store.append(&s, ExpectedVersion::Any, batch).await.unwrap();
    assert_eq!(retry_any.stream_versions, vec![2, 3]);

    h.store.seal_committed().await.unwrap();
    let read = h.store.read_stream(&s, StreamRead::all()).await.unwrap();
    assert_eq!(read.len(), 3, "a retry writes nothing");
    assert_eq!(h.store.head().await.unwrap().position, Position(3));
}

async fn reused_event_ids_in_another_append_are_refused(h: Harness) {
    let a = stream("a");
    let batch = events(1..=2);
    h.store.append(&a, ExpectedVersion::Any, batch.clone()).await.unwrap();

    let err = h.store.append(&stream("b"), ExpectedVersion::Any, batch.clone()).await.unwrap_err();
    match err {
        EventLogError::EventIdReused { event_id, stored_in, .. } => {
            assert!(batch.iter().any(|e| e.event_id == event_id));
            assert_eq!(stored_in.as_str(), "a");
        }
        other => panic!("expected EventIdReused, got {other}"),
    }
    // Half old, half new: not a retry of one append.
    let mixed = vec![batch[0].clone(), event(3)];
    let err = h.store.append(&a, ExpectedVersion::Any, mixed).await.unwrap_err();
    assert!(matches!(err, EventLogError::EventIdReused { .. }), "{err}");
    assert_eq!(h.store.read_stream(&a, StreamRead::all()).await.unwrap().len(), 2);
    assert!(h.store.read_stream(&stream("b"), StreamRead::all()).await.unwrap().is_empty());
}

async fn streams_read_forwards_and_backwards_within_bounds(h: Harness) {
    let s = stream("s");
    h.store.append(&s, ExpectedVersion::NoStream, events(1..=10)).await.unwrap();
    h.store.append(&stream("other"), ExpectedVersion::NoStream, events(11..=12)).await.unwrap();

    let fwd = |from, max| StreamRead { direction: Direction::Forwards, from_version: from, max_count: max };
    let back = |from, max| StreamRead { direction: Direction::Backwards, from_version: from, max_count: max };
    let versions = |v: Vec<finops_eventlog::RecordedEvent>| v.iter().map(|e| e.stream_version).collect::<Vec<_>>();

    assert_eq!(versions(h.store.read_stream(&s, fwd(None, 3)).await.unwrap()), vec![1, 2, 3]);
    assert_eq!(versions(h.store.read_stream(&s, fwd(Some(9), 5)).await.unwrap()), vec![9, 10]);
    assert_eq!(versions(h.store.read_stream(&s, back(None, 3)).await.unwrap()), vec![10, 9, 8]);
    assert_eq!(versions(h.store.read_stream(&s, back(Some(2), 5)).await.unwrap()), vec![2, 1]);
    assert!(h.store.read_stream(&s, fwd(Some(11), 5)).await.unwrap().is_empty());
    assert!(h.store.read_stream(&s, fwd(None, 0)).await.unwrap().is_empty());
    assert!(h.store.read_stream(&stream("never"), StreamRead::all()).await.unwrap().is_empty());
}

async fn the_global_order_reads_forwards_and_backwards_within_bounds(h: Harness) {
    fill(&h, &["x", "y", "z"], 9).await;
    let positions =
        |v: Vec<finops_eventlog::RecordedEvent>| v.iter().map(|e| e.position.unwrap().0).collect::<Vec<_>>();

    let all = h.store.read_all(AllRead::forwards_after(Position::START, 100)).await.unwrap();
    assert_eq!(positions(all.clone()), (1..=9).collect::<Vec<_>>(), "dense positions from 1");
    assert_eq!(payload_ns(&all), (1..=9).collect::<Vec<_>>(), "global order is append order here");
    assert_eq!(positions(h.store.read_all(AllRead::forwards_after(Position(7), 100)).await.unwrap()), vec![8, 9]);
    assert_eq!(positions(h.store.read_all(AllRead::forwards_after(Position(2), 2)).await.unwrap()), vec![3, 4]);
    assert_eq!(positions(h.store.read_all(AllRead::backwards_from(None, 3)).await.unwrap()), vec![9, 8, 7]);
    assert_eq!(positions(h.store.read_all(AllRead::backwards_from(Some(Position(3)), 5)).await.unwrap()), vec![2, 1]);
    assert!(h.store.read_all(AllRead::forwards_after(Position(9), 10)).await.unwrap().is_empty());
    // "Everything": a count far beyond the log reads what there is (no room reserved for it).
    assert_eq!(positions(h.store.read_all(AllRead::forwards_after(Position(6), usize::MAX)).await.unwrap()), [7, 8, 9]);
    let head = h.store.head().await.unwrap();
    assert_eq!(head.position, Position(9));
    assert_eq!(Some(head.hash), all.last().unwrap().hash);
}

async fn events_at_chosen_positions_read_in_one_go_in_order(h: Harness) {
    fill(&h, &["x", "y", "z"], 9).await;
    let at = |p: &[u64]| p.iter().map(|&p| Position(p)).collect::<Vec<_>>();
    // Asked out of order, with a repeat and positions the log does not hold (0, 10, and one
    // beyond what SQL's integers take): the events there, once each, in position order.
    let read = h.store.read_at(&at(&[8, 2, 0, 10, 2, u64::MAX, 5])).await.unwrap();
    assert_eq!(read.iter().map(|e| e.position.unwrap().0).collect::<Vec<_>>(), [2, 5, 8]);
    assert_eq!(payload_ns(&read), [2, 5, 8]);
    // The whole envelope, as the global order reads it.
    let all = h.store.read_all(AllRead::forwards_after(Position::START, 100)).await.unwrap();
    for event in &read {
        let same = &all[event.position.unwrap().0 as usize - 1];
        assert_eq!((&event.event_id, &event.stream_id, event.hash), (&same.event_id, &same.stream_id, same.hash));
        assert_eq!(event.metadata, same.metadata);
    }
    assert!(h.store.read_at(&[]).await.unwrap().is_empty());
}

async fn a_subscription_catches_up_goes_live_and_resumes_from_a_checkpoint(h: Harness) {
    fill(&h, &["a", "b"], 5).await;
    let poll = Duration::from_millis(100);
    let mut sub = subscribe(h.store.clone(), Position::START, poll);
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(next(&mut sub).await);
    }
    assert_eq!(seen, vec![1, 2, 3, 4, 5], "catch-up delivers the history in order");

    // Live: appended after the subscriber caught up (no explicit seal: the store's own
    // sealer and head signal must deliver it).
    for n in 6..=8 {
        h.store.append(&stream("c"), ExpectedVersion::Any, vec![event(n)]).await.unwrap();
    }
    for expected in 6..=8 {
        assert_eq!(next(&mut sub).await, expected);
    }
    drop(sub);

    // Resume from a checkpoint: only what came after it, then live again.
    let mut resumed = subscribe(h.store.clone(), Position(6), poll);
    assert_eq!(next(&mut resumed).await, 7);
    assert_eq!(next(&mut resumed).await, 8);
    h.store.append(&stream("c"), ExpectedVersion::Any, vec![event(9)]).await.unwrap();
    assert_eq!(next(&mut resumed).await, 9);
}

/// The next event's position; a generous bound turns a hang into a failure.
async fn next(sub: &mut finops_eventlog::Subscription) -> u64 {
    let event = tokio::time::timeout(Duration::from_secs(60), sub.next())
        .await
        .expect("subscription delivered within 60 s")
        .expect("subscription still open")
        .expect("subscription error");
    event.position.unwrap().0
}

async fn old_schema_versions_are_upcast_on_read_and_never_rewritten(h: Harness) {
    let s = stream("cap");
    let old = NewEvent::new("CapApproved", json!({ "amount": 100 })).with_schema_version(1);
    let current = NewEvent::new("CapApproved", json!({ "amount": 5, "currency": "EUR" })).with_schema_version(2);
    h.store.append(&s, ExpectedVersion::NoStream, vec![old, current]).await.unwrap();
    h.store.seal_committed().await.unwrap();

    let read = h.store.read_stream(&s, StreamRead::all()).await.unwrap();
    assert_eq!((read[0].schema_version, read[0].stored_schema_version), (2, 1));
    assert_eq!(read[0].payload, json!({ "amount": 100, "currency": "USD" }));
    assert_eq!((read[1].schema_version, read[1].stored_schema_version), (2, 2));
    assert_eq!(read[1].payload, json!({ "amount": 5, "currency": "EUR" }), "current versions are untouched");
    let via_all = h.store.read_all(AllRead::forwards_after(Position::START, 10)).await.unwrap();
    assert_eq!(via_all[0].payload, read[0].payload, "every read path upcasts");

    assert_eq!(h.raw.stored_payload(1).await, r#"{"amount":100}"#, "the stored row keeps its old shape");
    assert!(verify_chain(h.store.as_ref(), None).await.unwrap().first_break.is_none());
}

async fn an_untouched_chain_verifies_to_the_head(h: Harness) {
    fill(&h, &["p", "q"], 25).await;
    let report = verify_chain(h.store.as_ref(), None).await.unwrap();
    assert_eq!(report.first_break, None);
    assert_eq!(report.verified_through, Position(25));
    assert_eq!(report.head_hash, h.store.head().await.unwrap().hash);
}

async fn a_modified_row_breaks_the_chain_at_its_position(h: Harness) {
    fill(&h, &["p"], 6).await;
    h.raw
        .tamper(&[
            r#"UPDATE events SET payload = '{"n":999}' WHERE id = (SELECT event_row FROM ledger WHERE position = 4)"#,
        ])
        .await;
    let report = verify_chain(h.store.as_ref(), None).await.unwrap();
    let broken = report.first_break.expect("tampering is detected");
    assert_eq!(broken.position, Position(4));
    assert!(matches!(broken.kind, BreakKind::HashMismatch { .. }), "{broken}");
    assert_eq!(report.verified_through, Position(3));
}

async fn a_deleted_row_breaks_the_chain_where_it_was(h: Harness) {
    fill(&h, &["p"], 6).await;
    h.raw.tamper(&["DELETE FROM ledger WHERE position = 3"]).await;
    let broken = verify_chain(h.store.as_ref(), None).await.unwrap().first_break.unwrap();
    assert_eq!(broken.kind, BreakKind::MissingPosition { expected: Position(3) });
    assert_eq!(broken.to_string(), "position 3 is missing: the ledger continues at 4 (an event was deleted)");

    // Deleting the event row but leaving its ledger entry is named too.
    let h2 = match &h.raw {
        RawDb::Pg(_) => common::postgres(upcasters()).await.unwrap(),
        RawDb::Sqlite(_) => common::sqlite(upcasters()).await,
    };
    fill(&h2, &["p"], 4).await;
    h2.raw.tamper(&["DELETE FROM events WHERE id = (SELECT event_row FROM ledger WHERE position = 2)"]).await;
    let broken = verify_chain(h2.store.as_ref(), None).await.unwrap().first_break.unwrap();
    assert_eq!((broken.position, broken.kind), (Position(2), BreakKind::MissingEvent));
}

async fn an_inserted_row_breaks_the_chain_where_it_was_put(h: Harness) {
    fill(&h, &["p"], 6).await;
    let new_id = match h.raw {
        RawDb::Pg(_) => "gen_random_uuid()",
        RawDb::Sqlite(_) => "randomblob(16)",
    };
    let insert_event = format!(
        "INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version, payload, metadata) \
         VALUES ({new_id}, 'p', 100, 'Noted', 1, '{{\"n\":42}}', '{{\"actor_id\":\"mallory\",\"actor_role\":\"x\"}}')"
    );
    h.raw
        .tamper(&[
            // Make room after position 3, then slip a forged entry in.
            "UPDATE ledger SET position = -position WHERE position > 3",
            "UPDATE ledger SET position = 1 - position WHERE position < 0",
            &insert_event,
            "INSERT INTO ledger (position, event_row, hash) SELECT 4, MAX(id), (SELECT hash FROM ledger WHERE position = 3) FROM events",
        ])
        .await;
    let broken = verify_chain(h.store.as_ref(), None).await.unwrap().first_break.unwrap();
    assert_eq!(broken.position, Position(4));
    assert!(matches!(broken.kind, BreakKind::HashMismatch { .. }), "{broken}");
}

async fn the_log_refuses_updates_and_deletes(h: Harness) {
    fill(&h, &["p"], 2).await;
    for statement in [
        "UPDATE events SET payload = '{}'",
        "DELETE FROM events",
        "UPDATE ledger SET hash = hash",
        "DELETE FROM ledger",
    ] {
        let err = h.raw.try_execute(statement).await.expect_err(statement);
        assert!(err.contains("append-only"), "{statement}: {err}");
    }
    assert!(verify_chain(h.store.as_ref(), None).await.unwrap().first_break.is_none());
}

async fn bad_appends_are_refused_with_the_field_named(h: Harness) {
    let s = stream("s");
    let err = h.store.append(&s, ExpectedVersion::Any, vec![]).await.unwrap_err();
    assert!(matches!(err, EventLogError::InvalidInput { field: "events", .. }), "{err}");
    let err = h.store.append(&s, ExpectedVersion::Any, vec![NewEvent::new(" ", json!({}))]).await.unwrap_err();
    assert!(matches!(err, EventLogError::InvalidInput { field: "event_type", .. }), "{err}");
    let e = event(1);
    let err = h.store.append(&s, ExpectedVersion::Any, vec![e.clone(), e]).await.unwrap_err();
    assert!(matches!(err, EventLogError::InvalidInput { field: "event_id", .. }), "{err}");
    for bad in ["", " padded", "tab\there", &"x".repeat(201)] {
        assert!(StreamId::new(bad).is_err(), "{bad:?} must be refused");
    }
    assert!(h.store.read_stream(&s, StreamRead::all()).await.unwrap().is_empty(), "nothing was stored");
}

async fn stats_count_streams_types_and_the_head(h: Harness) {
    fill(&h, &["a", "b", "c"], 6).await;
    h.store.append(&stream("a"), ExpectedVersion::Any, vec![NewEvent::new("Claimed", json!({}))]).await.unwrap();
    let head = h.store.seal_committed().await.unwrap();
    let stats = h.store.stats().await.unwrap();
    assert_eq!(stats.streams, 3);
    assert_eq!(stats.events, 7);
    assert_eq!(stats.unsealed, 0);
    assert_eq!(stats.events_by_type, vec![("Claimed".to_owned(), 1), ("Noted".to_owned(), 6)]);
    assert_eq!(stats.head, head);
    assert_eq!(head.position, Position(7));
}
