//! The timeline's answer is the full fold's: for logs whose `recorded_at` runs out of
//! position order, marks kept every few events and thinned, at every instant that matters.

use chrono::{Duration, NaiveDate, TimeZone};
use finops_domain::spaces::{ClaimEvent, ClaimedResource};
use finops_domain::vocabulary::AccountId;
use finops_eventlog::{EventMetadata, StreamId};
use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::streams::CLAIM;

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap()
}

/// The `i`-th event of a log: a claim of resource `key`, recorded `jitter` seconds off its
/// turn (two seconds apart), so neighbours can be recorded in the other order.
fn claim(i: usize, key: u8, jitter: i64) -> RecordedEvent {
    let at = base() + Duration::seconds(2 * i as i64 + jitter);
    let event = ClaimEvent::ResourceClaimed {
        resource: ClaimedResource::IamRole {
            account: AccountId::parse("111122223333").unwrap(),
            role_name: format!("role-{key}"),
        },
        workload_id: Uuid::from_u128(i as u128),
        effective_from: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap() + Duration::days(i as i64 % 20),
        by: "po-maria".into(),
        at,
    };
    RecordedEvent {
        event_id: Uuid::from_u128(0xe000 + i as u128),
        stream_id: StreamId::new(format!("{CLAIM}k{key}")).unwrap(),
        stream_version: 0,
        position: Some(Position(i as u64 + 1)),
        event_type: "ResourceClaimed".into(),
        schema_version: 1,
        stored_schema_version: 1,
        payload: serde_json::to_value(&event).unwrap().into(),
        metadata: EventMetadata { actor_id: "po-maria".into(), recorded_at: at, ..Default::default() },
        hash: None,
    }
}

/// The definition: every event recorded at or before `instant`, in log order.
fn full_fold(log: &[RecordedEvent], instant: Option<DateTime<Utc>>) -> String {
    let mut state = GovernanceState::default();
    for event in log.iter().filter(|e| instant.is_none_or(|t| e.metadata.recorded_at <= t)) {
        apply(&mut state, event).unwrap();
    }
    format!("{state:?}")
}

/// The timeline's answer over the same in-memory log (the store's pages are the log's
/// events after the mark).
fn answer(kept: &Kept, log: &[RecordedEvent], instant: Option<DateTime<Utc>>) -> String {
    keyed_answer(kept, log, instant).0
}

/// [`answer`] with its [`StateKey`].
fn keyed_answer(kept: &Kept, log: &[RecordedEvent], instant: Option<DateTime<Utc>>) -> (String, StateKey) {
    let (mark, through) = kept.plan(instant);
    let mut state = mark.state.clone();
    let mut tail = Tail::default();
    if let (Some(through), Some(instant)) = (through, instant) {
        for event in &log[mark.position.0 as usize..through.0 as usize] {
            tail.fold(&mut state, event, instant).unwrap();
        }
    }
    (format!("{state:?}"), tail.key(kept.epoch, mark.position))
}

/// Every instant at which the answer can change, and one either side of it.
fn instants(log: &[RecordedEvent]) -> Vec<Option<DateTime<Utc>>> {
    let mut out = vec![None, Some(base() - Duration::hours(1))];
    for e in log {
        let t = e.metadata.recorded_at;
        out.extend([Some(t - Duration::milliseconds(1)), Some(t), Some(t + Duration::milliseconds(1))]);
    }
    out
}

proptest! {
    #[test]
    fn the_timeline_answers_every_instant_as_the_full_fold_does(
        events in prop::collection::vec((0u8..5, -3i64..=3), 0..60),
        spacing in 1u64..6,
        max_marks in 2usize..6,
        asked_every in 1usize..20,
    ) {
        let log: Vec<RecordedEvent> = events.iter().enumerate().map(|(i, (k, j))| claim(i, *k, *j)).collect();
        let mut kept = Kept::new(spacing, max_marks);
        for (n, event) in log.iter().enumerate() {
            kept.absorb(event).unwrap();
            prop_assert!(kept.marks.len() <= max_marks, "marks stay bounded");
            // Asked while the log grows, it answers for the log so far.
            if n % asked_every == 0 {
                let so_far = &log[..=n];
                for instant in instants(so_far) {
                    prop_assert_eq!(answer(&kept, so_far, instant), full_fold(so_far, instant), "after {} events, at {:?}", n + 1, instant);
                }
            }
        }
        for instant in instants(&log) {
            prop_assert_eq!(answer(&kept, &log, instant), full_fold(&log, instant), "at {:?}", instant);
        }
    }

    /// What is kept per key (attribution's tables) is only sound if two answers with one
    /// key are one state; and "now" and every instant after the last event share the
    /// head's key, so a repeated question finds what the first one built.
    #[test]
    fn answers_with_the_same_key_are_the_same_state(
        events in prop::collection::vec((0u8..5, -3i64..=3), 1..60),
        spacing in 1u64..6,
        max_marks in 2usize..6,
    ) {
        let log: Vec<RecordedEvent> = events.iter().enumerate().map(|(i, (k, j))| claim(i, *k, *j)).collect();
        let mut kept = Kept::new(spacing, max_marks);
        for event in &log {
            kept.absorb(event).unwrap();
        }
        let mut seen: std::collections::HashMap<StateKey, (String, Option<DateTime<Utc>>)> = Default::default();
        for instant in instants(&log) {
            let (state, key) = keyed_answer(&kept, &log, instant);
            if let Some((earlier, at)) = seen.get(&key) {
                prop_assert_eq!(earlier, &state, "{:?} and {:?} share {:?}", at, instant, key);
            }
            seen.insert(key, (state, instant));
        }
        let (_, now) = keyed_answer(&kept, &log, None);
        let after = log.iter().map(|e| e.metadata.recorded_at).max().unwrap() + Duration::seconds(1);
        prop_assert_eq!(keyed_answer(&kept, &log, Some(after)).1, now);
    }
}

#[test]
fn marks_are_thinned_and_the_spacing_doubles_past_the_limit() {
    let mut kept = Kept::new(2, 4);
    for i in 0..40 {
        kept.absorb(&claim(i, (i % 3) as u8, 0)).unwrap();
    }
    assert!(kept.marks.len() <= 4, "{} marks", kept.marks.len());
    assert!(kept.spacing >= 16, "spacing {}", kept.spacing);
    assert_eq!(kept.marks[0].position, Position::START, "the empty state is always a mark");
    // Marks stay in log order, each holding the events before it.
    assert!(kept.marks.windows(2).all(|w| w[0].position < w[1].position && w[0].events < w[1].events));
}

#[test]
fn an_instant_before_the_log_answers_the_empty_state_and_after_it_the_head() {
    let log: Vec<RecordedEvent> = (0..10).map(|i| claim(i, 1, 0)).collect();
    let mut kept = Kept::new(3, 8);
    for e in &log {
        kept.absorb(e).unwrap();
    }
    let (mark, through) = kept.plan(Some(base() - Duration::seconds(1)));
    assert_eq!((mark.position, through), (Position::START, None), "nothing to fold before the first event");
    let (mark, through) = kept.plan(Some(base() + Duration::days(1)));
    assert_eq!((mark.position, through), (Position(10), None), "the head, folded already");
    assert!(kept.head.state.claims.contains_key("k1"));
}

/// The lookups' history is written by the head alone (the marks read it as of their place),
/// so the marks cost no copy of them: a mark or the head that kept changes of its own
/// would hold a copy of every node they touched, as a thousand marks did before.
#[test]
fn the_head_writes_the_lookups_history_and_the_marks_only_read_it() {
    let mut kept = Kept::new(3, 8);
    for i in 0..30 {
        kept.absorb(&claim(i, (i % 7) as u8, 0)).unwrap();
    }
    assert_eq!(kept.head.state.lookup().writes_history(), (true, 0), "the head is the fold's own state");
    for mark in &kept.marks {
        assert_eq!(mark.state.lookup().writes_history(), (false, 0), "a mark at {:?} is a copy", mark.position);
    }
    // A question about an instant between marks folds a few events into a copy: its own.
    let log: Vec<RecordedEvent> = (0..30).map(|i| claim(i, (i % 7) as u8, 0)).collect();
    let (mark, _) = kept.plan(Some(base() + Duration::seconds(2 * 25)));
    let mut state = mark.state.clone();
    for event in &log[mark.position.0 as usize..26] {
        apply(&mut state, event).unwrap();
    }
    let (writes, own) = state.lookup().writes_history();
    assert!(!writes && own > 0, "a copy folding on keeps {own} changes of its own");
    assert_eq!(*state.lookup(), finops_domain::governance_state::Lookup::of(&state));
}
