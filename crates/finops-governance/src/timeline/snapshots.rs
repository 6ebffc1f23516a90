//! Snapshots of the governance state, so a restarted server does not fold the whole log
//! before its first answer (issue 14.4).
//!
//! A snapshot is the head's state written down with the position it folded through, the
//! chain hash there and the first and latest `recorded_at` before it. It is never trusted
//! over the log:
//! - it is read only under the version this build writes ([`SNAPSHOT_VERSION`]); writing
//!   one deletes those of other versions, so a changed fold starts again from the log;
//! - it is used only if the log holds, at its position, the event with its chain hash (a
//!   database restored to an earlier or another log ignores it);
//! - once restored, the log is folded again from the start in the background up to the
//!   snapshot's position (that fold also rebuilds the marks before it) and the two states
//!   are compared; if they differ, the log's fold replaces the snapshot's everywhere and a
//!   warning names the position.

use chrono::{DateTime, Utc};
use finops_domain::governance_state::GovernanceState;
use finops_eventlog::{AllRead, ChainHash, Position};

use super::{GovernanceTimeline, Kept, Mark};
use crate::GovernanceError;

/// The version of the governance state's fold that snapshots are written under. Bump it
/// whenever `GovernanceState`'s shape or any aggregate's `evolve` changes what a log folds
/// into: snapshots of other versions are then ignored and replaced.
pub const SNAPSHOT_VERSION: u32 = 1;

/// Events folded between two snapshots a server writes.
pub const SAVE_EVERY: u64 = 50_000;

/// The governance state as the log stood at one position, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// [`SNAPSHOT_VERSION`] of the build that wrote it.
    pub version: u32,
    /// Every event up to and including this position is folded in.
    pub position: Position,
    /// How many events that is.
    pub events: u64,
    /// The chain hash at `position`, hex.
    pub chain_hash: String,
    /// The earliest `recorded_at` among those events.
    pub earliest: DateTime<Utc>,
    /// The latest `recorded_at` among those events.
    pub latest: DateTime<Utc>,
    /// The state, as JSON.
    pub state: String,
}

/// Where snapshots are kept (beside the read models: `finops_projections::ReadModels`).
#[async_trait::async_trait]
pub trait SnapshotStore: Send + Sync {
    /// The newest snapshot written under `version`, if any.
    async fn load_snapshot(&self, version: u32) -> Result<Option<Snapshot>, BoxError>;
    /// Keeps `snapshot` as the newest of its version and deletes every snapshot of another
    /// version and every older one of its own.
    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<(), BoxError>;
}

/// A snapshot store's failure: reported and otherwise ignored (the log is the truth; a
/// snapshot only saves time).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Kept {
    /// A timeline starting from a snapshot: the empty state, whose segment runs to the
    /// snapshot, and the snapshot's state as the head.
    fn restored(spacing: u64, max_marks: usize, snapshot: &Snapshot, state: GovernanceState) -> Self {
        let mut kept = Kept::new(spacing, max_marks);
        kept.marks[0].earliest_after = Some(snapshot.earliest);
        let mark = Mark {
            position: snapshot.position,
            events: snapshot.events,
            latest: Some(snapshot.latest),
            earliest_after: None,
            state,
        };
        kept.marks.push(mark.clone());
        kept.unverified = Some(mark.clone());
        // The state read back, not a copy: the head writes the lookups' history.
        kept.head = mark;
        kept.earliest = Some(snapshot.earliest);
        kept.head_hash = ChainHash::from_hex(&snapshot.chain_hash);
        kept.saved_events = snapshot.events;
        kept.started = true;
        kept.restored = Some(snapshot.position);
        kept
    }

    /// Puts the marks `before` folded from the log up to the restored snapshot in place of
    /// the snapshot's first segment.
    fn splice(&mut self, before: Kept) {
        let mut marks = before.marks;
        for mark in self.marks.drain(1..) {
            match marks.last_mut() {
                // The same position: the same state; the later segment is this one's.
                Some(last) if last.position == mark.position => last.earliest_after = mark.earliest_after,
                _ => marks.push(mark),
            }
        }
        self.marks = marks;
        self.spacing = self.spacing.max(before.spacing);
        while self.marks.len() > self.max_marks {
            self.thin();
        }
    }
}

impl GovernanceTimeline {
    /// Starts `kept` from the newest snapshot of this version, if the log holds it.
    pub(super) async fn restore(&self, kept: &mut Kept) -> Result<(), GovernanceError> {
        let Some(snapshots) = &self.snapshots else { return Ok(()) };
        let snapshot = match snapshots.load_snapshot(self.version).await {
            Ok(Some(snapshot)) => snapshot,
            Ok(None) => return Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "governance snapshot unreadable; folding the log from the start");
                return Ok(());
            }
        };
        self.store.seal_committed().await?;
        let at = Position(snapshot.position.0.saturating_sub(1));
        let there = self.store.read_all(AllRead::forwards_after(at, 1)).await?;
        let held = there.first().is_some_and(|e| {
            e.position == Some(snapshot.position) && e.hash.is_some_and(|h| h.to_hex() == snapshot.chain_hash)
        });
        if !held {
            tracing::warn!(
                position = snapshot.position.0,
                "the log does not hold the governance snapshot's event; folding the log from the start"
            );
            return Ok(());
        }
        match serde_json::from_str::<GovernanceState>(&snapshot.state) {
            Ok(state) => *kept = Kept::restored(kept.spacing, kept.max_marks, &snapshot, state),
            Err(e) => tracing::warn!(error = %e, "governance snapshot does not decode; folding the log from the start"),
        }
        Ok(())
    }

    /// Folds the log from the start up to the restored snapshot, then either splices the
    /// marks in (same state) or replaces the snapshot's fold with the log's.
    pub(super) async fn verify(&self, restored: Mark) -> Result<(), GovernanceError> {
        let (spacing, max_marks) = {
            let kept = self.kept.lock().await;
            (super::SPACING.min(kept.spacing), kept.max_marks)
        };
        let mut before = Kept::new(spacing, max_marks);
        before.started = true;
        super::each_between(self.store.as_ref(), Position::START, restored.position, |event| before.absorb(event))
            .await?;
        let same = before.head.position == restored.position
            && serde_json::to_string(&before.head.state).ok() == serde_json::to_string(&restored.state).ok();
        let mut kept = self.kept.lock().await;
        if same {
            kept.splice(before);
        } else {
            tracing::warn!(
                position = restored.position.0,
                "the governance snapshot differs from the log's own fold; the log's replaces it"
            );
            before.catch_up(self.store.as_ref()).await?;
            // Written again at the next follow; states derived from the replaced ones are
            // no longer this timeline's.
            before.saved_events = 0;
            before.epoch = kept.epoch + 1;
            *kept = before;
        }
        Ok(())
    }

    /// Writes the head down; a failure is reported, the log stays the truth.
    pub(super) async fn save(&self, mark: &Mark, earliest: Option<DateTime<Utc>>, hash: Option<ChainHash>) {
        let (Some(snapshots), Some(earliest), Some(latest), Some(hash)) =
            (&self.snapshots, earliest, mark.latest, hash)
        else {
            return;
        };
        let state = match serde_json::to_string(&mark.state) {
            Ok(state) => state,
            Err(e) => return tracing::warn!(error = %e, "governance state does not serialise; no snapshot written"),
        };
        let snapshot = Snapshot {
            version: self.version,
            position: mark.position,
            events: mark.events,
            chain_hash: hash.to_hex(),
            earliest,
            latest,
            state,
        };
        if let Err(e) = snapshots.save_snapshot(&snapshot).await {
            tracing::warn!(error = %e, position = mark.position.0, "governance snapshot not written");
        }
    }

    /// The position of the snapshot the timeline started from (`None`: it folded the log
    /// from the start, or the log's own fold replaced a snapshot that differed from it).
    pub async fn restored_from(&self) -> Option<Position> {
        self.kept.lock().await.restored
    }
}
