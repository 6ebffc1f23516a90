//! The governance state as of any instant without folding the whole log for each question
//! (issue 14.4). [`state_as_of`](crate::state::state_as_of) folds every event recorded up
//! to the instant — 7–11 µs per event (BENCHMARKS.md), so seconds once the log is large. A
//! [`GovernanceTimeline`] folds the log once, follows it as it grows, and keeps the state
//! as it stood every [`SPACING`] events (a [`Mark`]); the state is made of persistent maps
//! (`finops_domain::governance_state::SharedMap`), so a mark costs what changed since the
//! one before, not a copy of the state.
//!
//! Asked about an instant `t`, it answers from the mark nearest before `t` and folds only
//! the events after it that were recorded at or before `t`. Positions order the log;
//! `recorded_at` is taken when an event is appended and positions when it is sealed, so
//! the two orders can disagree slightly. The marks therefore keep the latest `recorded_at`
//! up to them (a mark whose latest is at or before `t` holds exactly the events the
//! instant counts) and the earliest after them up to the next mark (so the fold knows
//! where no later event can count any more). The answer is the full fold's, event for
//! event; tests compare the two by digest at every instant of a log.
//!
//! The marks live in memory, built by the first question (or [`GovernanceTimeline::follow`]
//! at start-up) with one pass over the log. At most [`MAX_MARKS`] are kept: past that,
//! every other mark is dropped and the spacing doubles, so a log of any length costs a
//! bounded number of marks. With a [`SnapshotStore`] the head's state is also written down
//! every [`SAVE_EVERY`] events (`snapshots`), so a restarted server answers "now" from it
//! at once while the marks before it are folded again in the background — and checked
//! against it: a snapshot is never trusted over the log.

mod snapshots;

pub use snapshots::{BoxError, SAVE_EVERY, SNAPSHOT_VERSION, Snapshot, SnapshotStore};

use std::sync::Arc;

use chrono::{DateTime, Utc};
use finops_domain::governance_state::GovernanceState;
use finops_eventlog::{AllRead, ChainHash, EventStore, Position, RecordedEvent};
use tokio::sync::Mutex;

use crate::GovernanceError;
use crate::state::apply;

/// Events between two marks, at first.
pub const SPACING: u64 = 1_000;

/// The most marks kept; past it the spacing doubles.
pub const MAX_MARKS: usize = 1_024;

const PAGE: usize = 2_000;

/// The governance state at every instant of one log (see the module's documentation).
pub struct GovernanceTimeline {
    store: Arc<dyn EventStore>,
    kept: Mutex<Kept>,
    snapshots: Option<Arc<dyn SnapshotStore>>,
    /// The version snapshots are written and read under ([`SNAPSHOT_VERSION`]).
    version: u32,
    /// Events folded between two snapshots written.
    save_every: u64,
}

/// The state as the log stood at one position.
#[derive(Clone)]
struct Mark {
    /// Every event up to and including this position is folded into `state`.
    position: Position,
    /// How many events that is.
    events: u64,
    /// The latest `recorded_at` among them (`None`: no event).
    latest: Option<DateTime<Utc>>,
    /// The earliest `recorded_at` among the events after this mark up to the next one (or
    /// the head, for the last mark); `None` while there are none.
    earliest_after: Option<DateTime<Utc>>,
    state: GovernanceState,
}

/// Which state an answer is, so that what is derived from a state (attribution's
/// governance tables) can be kept and reused: two answers of one timeline with equal keys
/// are the same state. An answer is a kept state (a mark or the head: its position) or a
/// kept state with some of the events after it folded in (the last one folded, and those
/// before it that were not, because they were recorded after the instant asked about).
/// Positions name the same events for as long as the log exists; `epoch` changes when the
/// kept states themselves are replaced (a restored snapshot that the log's fold
/// contradicted).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StateKey {
    epoch: u64,
    kept: Position,
    last_folded: Option<Position>,
    skipped: Vec<Position>,
}

/// The events after a kept state that one answer folded in.
#[derive(Default)]
struct Tail {
    last_folded: Option<Position>,
    skipped: Vec<Position>,
}

impl Tail {
    /// Folds `event` into `state` if it was recorded at or before `instant`, and notes it.
    fn fold(
        &mut self,
        state: &mut GovernanceState,
        event: &RecordedEvent,
        instant: DateTime<Utc>,
    ) -> Result<(), GovernanceError> {
        let Some(position) = event.position else { return Ok(()) };
        if event.metadata.recorded_at <= instant {
            apply(state, event)?;
            self.last_folded = Some(position);
        } else {
            self.skipped.push(position);
        }
        Ok(())
    }

    /// The key of the kept state at `kept` with this tail folded in.
    fn key(mut self, epoch: u64, kept: Position) -> StateKey {
        // Events skipped after the last one folded do not change the state.
        self.skipped.retain(|p| self.last_folded.is_some_and(|last| *p < last));
        StateKey { epoch, kept, last_folded: self.last_folded, skipped: self.skipped }
    }
}

/// What the timeline holds: the state at the head and the marks behind it.
struct Kept {
    /// Changes whenever kept states are replaced rather than extended ([`StateKey`]).
    epoch: u64,
    head: Mark,
    marks: Vec<Mark>,
    spacing: u64,
    max_marks: usize,
    /// The earliest `recorded_at` of every event folded (a snapshot's first segment).
    earliest: Option<DateTime<Utc>>,
    /// The chain hash at the head (what a snapshot is checked against).
    head_hash: Option<ChainHash>,
    /// Whether a snapshot was looked for (once, before the first fold).
    started: bool,
    /// A snapshot restored but not yet checked against the log's own fold.
    unverified: Option<Mark>,
    /// The head's event count when a snapshot was last written (or restored).
    saved_events: u64,
    /// The position of the snapshot this started from, if it did.
    restored: Option<Position>,
}

impl Kept {
    fn new(spacing: u64, max_marks: usize) -> Self {
        // The head holds the fold's own state (the one that writes the lookups' history,
        // see `HistorySet`); marks are copies.
        let head = Mark {
            position: Position::START,
            events: 0,
            latest: None,
            earliest_after: None,
            state: GovernanceState::default(),
        };
        Self {
            epoch: 0,
            marks: vec![head.clone()],
            head,
            spacing: spacing.max(1),
            max_marks: max_marks.max(2),
            earliest: None,
            head_hash: None,
            started: false,
            unverified: None,
            saved_events: 0,
            restored: None,
        }
    }

    /// Folds every sealed event after the head.
    async fn catch_up(&mut self, store: &dyn EventStore) -> Result<(), GovernanceError> {
        store.seal_committed().await?;
        loop {
            let page = store.read_all(AllRead::forwards_after(self.head.position, PAGE)).await?;
            for event in &page {
                self.absorb(event)?;
            }
            if page.len() < PAGE {
                return Ok(());
            }
        }
    }

    /// Folds the next event of the log into the head, keeping a mark every `spacing` events.
    fn absorb(&mut self, event: &RecordedEvent) -> Result<(), GovernanceError> {
        let Some(position) = event.position else { return Ok(()) };
        apply(&mut self.head.state, event)?;
        let at = event.metadata.recorded_at;
        self.head.position = position;
        self.head.events += 1;
        self.head.latest = self.head.latest.max(Some(at));
        self.earliest = Some(self.earliest.map_or(at, |e| e.min(at)));
        self.head_hash = event.hash;
        let last = self.marks.last_mut().expect("the empty mark is never dropped");
        last.earliest_after = Some(last.earliest_after.map_or(at, |e| e.min(at)));
        if self.head.events - last.events >= self.spacing {
            self.marks.push(self.head.clone());
            if self.marks.len() > self.max_marks {
                self.thin();
            }
        }
        Ok(())
    }

    /// Drops every other mark (never the first, the empty state) and doubles the spacing;
    /// a dropped mark's events join the segment of the mark kept before it.
    fn thin(&mut self) {
        let mut kept: Vec<Mark> = Vec::with_capacity(self.marks.len() / 2 + 1);
        for (i, mark) in std::mem::take(&mut self.marks).into_iter().enumerate() {
            match kept.last_mut() {
                Some(previous) if i % 2 == 1 => {
                    previous.earliest_after = match (previous.earliest_after, mark.earliest_after) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                _ => kept.push(mark),
            }
        }
        self.marks = kept;
        self.spacing *= 2;
    }

    /// How to answer for `instant`: the head's state when every event counts; else the
    /// last mark holding only events recorded at or before `instant` and the end of the last
    /// segment after it with an event that counts (`None`: none does, the mark is the answer).
    fn plan(&self, instant: Option<DateTime<Utc>>) -> (&Mark, Option<Position>) {
        let Some(instant) = instant.filter(|t| self.head.latest.is_some_and(|l| l > *t)) else {
            return (&self.head, None);
        };
        // `latest` never decreases along the marks, so they split in two.
        let from = self.marks.partition_point(|m| m.latest.is_none_or(|l| l <= instant)) - 1;
        let last_counting =
            (from..self.marks.len()).rev().find(|&i| self.marks[i].earliest_after.is_some_and(|e| e <= instant));
        let through = last_counting.map(|i| self.marks.get(i + 1).map_or(self.head.position, |m| m.position));
        (&self.marks[from], through)
    }
}

/// Shows `visit` every event after `after` up to and including `through`, a page at a time,
/// reading no further (positions are dense, so a page is cut exactly at `through`).
async fn each_between(
    store: &dyn EventStore,
    after: Position,
    through: Position,
    mut visit: impl FnMut(&RecordedEvent) -> Result<(), GovernanceError>,
) -> Result<(), GovernanceError> {
    let mut after = after;
    while after < through {
        let wanted = usize::try_from(through.0 - after.0).unwrap_or(PAGE).min(PAGE);
        let page = store.read_all(AllRead::forwards_after(after, wanted)).await?;
        let Some(last) = page.last().and_then(|e| e.position) else { break };
        for event in &page {
            visit(event)?;
        }
        after = last;
    }
    Ok(())
}

impl GovernanceTimeline {
    /// A timeline of `store`'s log; nothing is read until it is asked (or followed).
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self::with_spacing(store, SPACING, MAX_MARKS)
    }

    /// A timeline keeping a mark every `spacing` events, at most `max_marks` of them (tests
    /// use small figures to exercise the marks on a small log).
    pub fn with_spacing(store: Arc<dyn EventStore>, spacing: u64, max_marks: usize) -> Self {
        Self {
            store,
            kept: Mutex::new(Kept::new(spacing, max_marks)),
            snapshots: None,
            version: SNAPSHOT_VERSION,
            save_every: SAVE_EVERY,
        }
    }

    /// Starts from the newest snapshot in `snapshots` (if the log holds it) and writes one
    /// there every `save_every` events folded.
    pub fn with_snapshots(mut self, snapshots: Arc<dyn SnapshotStore>, save_every: u64) -> Self {
        self.snapshots = Some(snapshots);
        self.save_every = save_every.max(1);
        self
    }

    /// Reads and writes snapshots under `version` rather than [`SNAPSHOT_VERSION`] (tests
    /// of a version change).
    pub fn with_snapshot_version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// Folds the log up to its head now, so the first question does not pay for it; checks
    /// a restored snapshot against the log's own fold (in the background of questions,
    /// which go on being answered), and writes a snapshot when one is due. A server calls
    /// it at start-up and then every few seconds.
    pub async fn follow(&self) -> Result<(), GovernanceError> {
        let (due, unverified) = {
            let mut kept = self.kept.lock().await;
            self.ready(&mut kept).await?;
            let due = (self.snapshots.is_some() && kept.head.events >= kept.saved_events + self.save_every)
                .then(|| (kept.head.clone(), kept.earliest, kept.head_hash));
            if due.is_some() {
                kept.saved_events = kept.head.events;
            }
            (due, kept.unverified.take())
        };
        if let Some(restored) = unverified {
            self.verify(restored).await?;
        }
        if let Some((mark, earliest, hash)) = due {
            self.save(&mark, earliest, hash).await;
        }
        Ok(())
    }

    /// Restores a snapshot the first time, then folds every sealed event after the head.
    async fn ready(&self, kept: &mut Kept) -> Result<(), GovernanceError> {
        if !kept.started {
            kept.started = true;
            self.restore(kept).await?;
        }
        kept.catch_up(self.store.as_ref()).await
    }

    /// The governance state from every event recorded at or before `as_of` (every event
    /// when `None`), in log order: what [`crate::state::state_as_of`] answers, without
    /// folding the whole log. Events committed but not yet in the global order are sealed
    /// first, so "now" includes every command that has returned.
    pub async fn state_as_of(&self, as_of: Option<DateTime<Utc>>) -> Result<GovernanceState, GovernanceError> {
        Ok(self.keyed_state_as_of(as_of).await?.0)
    }

    /// [`Self::state_as_of`], with the key that names the state among this timeline's
    /// answers ([`StateKey`]).
    pub async fn keyed_state_as_of(
        &self,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<(GovernanceState, StateKey), GovernanceError> {
        let (mut state, from, through, instant, epoch) = {
            let mut kept = self.kept.lock().await;
            self.ready(&mut kept).await?;
            let epoch = kept.epoch;
            let (mark, through) = kept.plan(as_of);
            match (through, as_of) {
                (Some(through), Some(instant)) => (mark.state.clone(), mark.position, through, instant, epoch),
                _ => return Ok((mark.state.clone(), Tail::default().key(epoch, mark.position))),
            }
        };
        // The marks' states are shared, not copied: folding changes this clone only.
        let mut tail = Tail::default();
        each_between(self.store.as_ref(), from, through, |event| tail.fold(&mut state, event, instant)).await?;
        Ok((state, tail.key(epoch, from)))
    }

    /// How many marks are kept and how many events lie between two of them: for the
    /// benchmark and the operator's figures.
    pub async fn marks(&self) -> (usize, u64) {
        let kept = self.kept.lock().await;
        (kept.marks.len(), kept.spacing)
    }
}

#[cfg(test)]
mod tests;
