//! Snapshots of one aggregate's stream, for the aggregates whose stream grows without end
//! (issue 14.4: the organisation, one stream for every portfolio, product, account and
//! budget change; the gap detector's evaluations, one event per evaluation).
//!
//! A [`CommandHandler`](crate::CommandHandler) folds an aggregate from its whole stream
//! before every command. With snapshots it starts from the aggregate as it stood at a
//! stream version written down beside the read models, and folds only the events after
//! it. A snapshot is never trusted over the log:
//! - it is read only under the aggregate's [`Aggregate::FOLD_VERSION`](finops_domain::Aggregate::FOLD_VERSION)
//!   (a changed fold ignores and in time replaces it);
//! - it is used only if the stream holds, at the snapshot's version, the event the snapshot
//!   names (a database restored to another log, or a stream that is not the one written
//!   down, folds from the start);
//! - a state that does not decode folds from the start;
//! - the first time a handler meets a snapshot it did not write, it folds the whole stream
//!   instead and compares its state at the snapshot's version with the snapshot's (both
//!   as this build serialises them); one that differs is replaced and never used;
//!
//! and tests compare the snapshot's answer with the full fold's by digest.
//!
//! Idempotency is kept whole: a retry is recognised in the events after the snapshot; a
//! retry of a command older than the snapshot is decided again, and if that is refused or
//! the log reports its events already stored, the whole stream is read to answer it as
//! the first attempt did (or name the reused request id).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

pub use crate::timeline::BoxError;

/// Events appended to a stream between two snapshots of it.
pub const SNAPSHOT_EVERY: u64 = 200;

/// An aggregate as its stream stood at one version, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSnapshot {
    /// The stream.
    pub stream: String,
    /// The aggregate's fold version it was written under.
    pub fold_version: u32,
    /// Every event of the stream up to and including this version is folded in.
    pub version: u64,
    /// The id of the event at `version` (what the stream must hold there).
    pub event_id: Uuid,
    /// The aggregate, as JSON.
    pub state: String,
}

/// Where stream snapshots are kept (beside the read models: `finops_projections::ReadModels`).
#[async_trait::async_trait]
pub trait StreamSnapshotStore: Send + Sync {
    /// The snapshot of `stream` written under `fold_version`, if any.
    async fn load_stream_snapshot(&self, stream: &str, fold_version: u32) -> Result<Option<StreamSnapshot>, BoxError>;
    /// Keeps `snapshot` as the one of its stream (replacing any other, of any version).
    async fn save_stream_snapshot(&self, snapshot: &StreamSnapshot) -> Result<(), BoxError>;
}

/// A handler's snapshot settings for its aggregate `A`.
pub(crate) struct StreamSnapshots<A> {
    pub(crate) store: Arc<dyn StreamSnapshotStore>,
    pub(crate) every: u64,
    pub(crate) encode: fn(&A) -> serde_json::Result<String>,
    pub(crate) decode: fn(&str) -> serde_json::Result<A>,
    /// The snapshots (stream, version, event) this handler has checked against the
    /// stream's full fold, or written itself from checked ones: trusted from then on.
    checked: Arc<Mutex<BTreeSet<(String, u64, Uuid)>>>,
}

impl<A> Clone for StreamSnapshots<A> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            every: self.every,
            encode: self.encode,
            decode: self.decode,
            checked: self.checked.clone(),
        }
    }
}

impl<A: Serialize + DeserializeOwned> StreamSnapshots<A> {
    pub(crate) fn new(store: Arc<dyn StreamSnapshotStore>, every: u64) -> Self {
        Self {
            store,
            every: every.max(1),
            encode: |a| serde_json::to_string(a),
            decode: |s| serde_json::from_str(s),
            checked: Arc::default(),
        }
    }
}

impl<A> StreamSnapshots<A> {
    /// Whether `snapshot` was checked (or written) by this handler.
    pub(crate) fn is_checked(&self, snapshot: &StreamSnapshot) -> bool {
        self.checked.lock().expect("never poisoned").contains(&key(snapshot))
    }

    /// Notes `snapshot` as checked.
    pub(crate) fn note_checked(&self, snapshot: &StreamSnapshot) {
        self.checked.lock().expect("never poisoned").insert(key(snapshot));
    }
}

fn key(snapshot: &StreamSnapshot) -> (String, u64, Uuid) {
    (snapshot.stream.clone(), snapshot.version, snapshot.event_id)
}
