//! The gap-free global order on PostgreSQL, proven against the failure a naive
//! `id > last` poll has: transactions that commit out of id order.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use finops_eventlog::{
    AllRead, EventLogError, EventStore, ExpectedVersion, NewEvent, PgEventStore, Position, StreamId, StreamRead,
    Upcasters, subscribe,
};
use serde_json::json;
use tokio_stream::StreamExt;
use uuid::Uuid;

fn stream(name: &str) -> StreamId {
    StreamId::new(name).unwrap()
}

/// What a naive poller sees: rows by insertion id after its checkpoint.
async fn naive_poll(pool: &sqlx::PgPool, after: i64) -> Vec<(i64, Uuid)> {
    sqlx::query_as("SELECT id, event_id FROM events WHERE id > $1 ORDER BY id")
        .bind(after)
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_transaction_gap_is_not_skipped() {
    let Some(h) = common::postgres(Upcasters::new()).await else { return };
    let pg: Arc<PgEventStore> = h.pg.clone().unwrap();
    let common::RawDb::Pg(raw) = &h.raw else { unreachable!() };
    let mut sub = subscribe(h.store.clone(), Position::START, Duration::from_millis(50));

    // Transaction A takes the lower insertion id and stays open.
    let first = NewEvent::new("Approved", json!({ "who": "A" }));
    let mut tx_a = raw.begin().await.unwrap();
    PgEventStore::append_within(&mut tx_a, &stream("a"), ExpectedVersion::NoStream, vec![first.clone()]).await.unwrap();

    // Transaction B takes a higher id and commits first.
    let second = NewEvent::new("Approved", json!({ "who": "B" }));
    h.store.append(&stream("b"), ExpectedVersion::NoStream, vec![second.clone()]).await.unwrap();

    // The hazard is real: a naive poller sees B alone and moves its checkpoint past A.
    let naive = naive_poll(raw, 0).await;
    assert_eq!(naive.iter().map(|(_, id)| *id).collect::<Vec<_>>(), vec![second.event_id]);
    let naive_checkpoint = naive[0].0;

    // The log delivers nothing while A is in flight: B cannot be placed before A is final.
    assert_eq!(pg.seal_available().await.unwrap(), 0, "nothing is sealable while A is open");
    assert!(h.store.read_all(AllRead::forwards_after(Position::START, 10)).await.unwrap().is_empty());
    assert_eq!(h.store.head().await.unwrap().position, Position::START);

    tx_a.commit().await.unwrap();
    h.store.seal_committed().await.unwrap();

    // A is delivered once it commits, and before B (its transaction began first).
    let all = h.store.read_all(AllRead::forwards_after(Position::START, 10)).await.unwrap();
    assert_eq!(all.iter().map(|e| e.event_id).collect::<Vec<_>>(), vec![first.event_id, second.event_id]);
    assert_eq!(all.iter().map(|e| e.position.unwrap()).collect::<Vec<_>>(), vec![Position(1), Position(2)]);
    for expected in [first.event_id, second.event_id] {
        let got = tokio::time::timeout(Duration::from_secs(60), sub.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(got.event_id, expected);
    }
    // …whereas the naive poller, resuming after B, never sees A.
    assert!(naive_poll(raw, naive_checkpoint).await.is_empty(), "a naive poll skips A for good");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_append_leaves_no_trace_and_no_hole() {
    let Some(h) = common::postgres(Upcasters::new()).await else { return };
    let common::RawDb::Pg(raw) = &h.raw else { unreachable!() };
    h.store.append(&stream("s"), ExpectedVersion::NoStream, vec![NewEvent::new("A", json!({}))]).await.unwrap();
    let mut tx = raw.begin().await.unwrap();
    PgEventStore::append_within(&mut tx, &stream("s"), ExpectedVersion::Exact(1), vec![NewEvent::new("B", json!({}))])
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    h.store.append(&stream("s"), ExpectedVersion::Exact(1), vec![NewEvent::new("C", json!({}))]).await.unwrap();
    h.store.seal_committed().await.unwrap();
    let all = h.store.read_all(AllRead::forwards_after(Position::START, 10)).await.unwrap();
    let seen: Vec<_> = all.iter().map(|e| (e.position.unwrap().0, e.event_type.as_str(), e.stream_version)).collect();
    assert_eq!(seen, vec![(1, "A", 1), (2, "C", 2)], "positions stay dense across a rollback");
}

/// Per-writer record of what was acknowledged and what was rolled back.
#[derive(Default)]
struct Ledgerbook {
    committed: Vec<Uuid>,
    rolled_back: Vec<Uuid>,
}

const WRITERS: usize = 8;
const EVENTS_PER_WRITER: usize = 2_600;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_writers_and_a_live_subscriber_see_every_committed_event_exactly_once_in_order() {
    let Some(h) = common::postgres(Upcasters::new()).await else { return };
    let common::RawDb::Pg(raw) = h.raw else { unreachable!() };
    let store = h.store.clone();

    // The subscriber starts before any write and stays live throughout.
    let mut sub = subscribe(store.clone(), Position::START, Duration::from_millis(100));

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        let raw = raw.clone();
        writers.push(tokio::spawn(async move { write(w, store, raw).await }));
    }
    let mut committed = HashSet::new();
    let mut rolled_back = HashSet::new();
    for writer in writers {
        let book = writer.await.unwrap();
        for id in book.committed {
            assert!(committed.insert(id), "a writer recorded an event twice");
        }
        rolled_back.extend(book.rolled_back);
    }
    assert!(committed.len() >= 20_000, "stress needs at least 20 000 events, wrote {}", committed.len());

    let mut delivered = Vec::with_capacity(committed.len());
    while delivered.len() < committed.len() {
        let event = tokio::time::timeout(Duration::from_secs(120), sub.next())
            .await
            .expect("the subscriber keeps receiving")
            .expect("open")
            .expect("no error");
        delivered.push(event);
    }

    let mut seen = HashSet::new();
    let mut stream_versions: HashMap<StreamId, u64> = HashMap::new();
    for (i, event) in delivered.iter().enumerate() {
        assert_eq!(event.position, Some(Position(i as u64 + 1)), "global order is dense and ascending");
        assert!(seen.insert(event.event_id), "event {} delivered twice", event.event_id);
        assert!(!rolled_back.contains(&event.event_id), "a rolled-back event was delivered");
        let last = stream_versions.entry(event.stream_id.clone()).or_default();
        assert_eq!(event.stream_version, *last + 1, "stream versions arrive in order within a stream");
        *last = event.stream_version;
    }
    assert_eq!(seen, committed, "every committed event was delivered");

    // Nothing more is pending: the head is exactly what was delivered.
    let head = store.seal_committed().await.unwrap();
    assert_eq!(head.position, Position(committed.len() as u64));
    assert!(finops_eventlog::verify_chain(store.as_ref(), None).await.unwrap().first_break.is_none());
}

/// Writers 0–3 fight over four hot streams with exact expected versions; 4–5 retry every
/// append with the same ids, sometimes concurrently; 6–7 write batches and roll back
/// every seventh one.
async fn write(w: usize, store: Arc<dyn EventStore>, raw: sqlx::PgPool) -> Ledgerbook {
    let mut book = Ledgerbook::default();
    let mut n = 0usize;
    while book.committed.len() < EVENTS_PER_WRITER {
        n += 1;
        let event = |k: usize| NewEvent::new("Stressed", json!({ "writer": w, "n": n, "k": k }));
        match w {
            0..=3 => {
                let s = stream(&format!("hot-{}", n % 4));
                let e = event(0);
                let mut expected = current_version(&store, &s).await;
                loop {
                    match store.append(&s, expected, vec![e.clone()]).await {
                        Ok(_) => break,
                        Err(EventLogError::WrongExpectedVersion { actual, .. }) => {
                            expected = ExpectedVersion::Exact(actual);
                        }
                        Err(other) => panic!("writer {w}: {other}"),
                    }
                }
                book.committed.push(e.event_id);
            }
            4 | 5 => {
                let s = stream(&format!("own-{w}-{}", n % 16));
                let batch = vec![event(0), event(1)];
                let (first, second) = if n.is_multiple_of(5) {
                    // Two identical retries racing each other.
                    tokio::join!(
                        store.append(&s, ExpectedVersion::Any, batch.clone()),
                        store.append(&s, ExpectedVersion::Any, batch.clone())
                    )
                } else {
                    let first = store.append(&s, ExpectedVersion::Any, batch.clone()).await;
                    (first, store.append(&s, ExpectedVersion::Any, batch.clone()).await)
                };
                let (first, second) = (first.unwrap(), second.unwrap());
                assert_eq!(first.stream_versions, second.stream_versions, "a retry returns the original versions");
                assert!(first.already_appended ^ second.already_appended, "exactly one attempt wrote");
                book.committed.extend(batch.iter().map(|e| e.event_id));
            }
            _ => {
                let s = stream(&format!("batch-{w}-{}", n % 8));
                let batch: Vec<_> = (0..1 + n % 5).map(event).collect();
                let mut tx = raw.begin().await.unwrap();
                PgEventStore::append_within(&mut tx, &s, ExpectedVersion::Any, batch.clone()).await.unwrap();
                if n.is_multiple_of(7) {
                    tx.rollback().await.unwrap();
                    book.rolled_back.extend(batch.iter().map(|e| e.event_id));
                } else {
                    tx.commit().await.unwrap();
                    book.committed.extend(batch.iter().map(|e| e.event_id));
                }
            }
        }
    }
    book
}

async fn current_version(store: &Arc<dyn EventStore>, s: &StreamId) -> ExpectedVersion {
    let last = store
        .read_stream(
            s,
            StreamRead { direction: finops_eventlog::Direction::Backwards, from_version: None, max_count: 1 },
        )
        .await
        .unwrap();
    match last.first() {
        Some(e) => ExpectedVersion::Exact(e.stream_version),
        None => ExpectedVersion::NoStream,
    }
}

/// A page of the global order forked two parallel workers on PostgreSQL (the planner
/// divides the join's cost among them): a page took twice as long and the workers took the
/// CPU its reader needed. The log's connections plan no parallel workers, even where the
/// planner is told they cost nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_the_log_plan_no_parallel_workers() {
    let Some(h) = common::postgres(Upcasters::new()).await else { return };
    let pg: Arc<PgEventStore> = h.pg.clone().unwrap();
    let events: Vec<NewEvent> = (0..200).map(|i| NewEvent::new("Noted", json!({ "i": i }))).collect();
    h.store.append(&stream("notes"), ExpectedVersion::NoStream, events).await.unwrap();
    h.store.seal_committed().await.unwrap();
    // A connection of the store's own, kept out of the pool after the costs are changed.
    let mut conn = pg.pool().acquire().await.unwrap().detach();
    for free in [
        "SET parallel_setup_cost = 0",
        "SET parallel_tuple_cost = 0",
        "SET min_parallel_table_scan_size = 0",
        "SET min_parallel_index_scan_size = 0",
    ] {
        sqlx::query(free).execute(&mut conn).await.unwrap();
    }
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN SELECT e.id, e.event_id, e.stream_id, e.stream_version, e.event_type, e.schema_version, \
         e.payload, e.metadata, l.position, l.hash FROM ledger l JOIN events e ON e.id = l.event_row \
         WHERE l.position > 10 ORDER BY l.position LIMIT 100",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(!plan.iter().any(|line| line.contains("Gather")), "a page plans parallel workers:\n{}", plan.join("\n"));
    assert_eq!(h.store.read_all(AllRead::forwards_after(Position(10), 100)).await.unwrap().len(), 100);
}
