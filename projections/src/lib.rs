//! # Read models
//!
//! Projectors fold the event log into read models that List and query RPCs answer from:
//! the request queue, the catalog, the task queue, the claims, the workloads, the
//! Allocation Gaps' lifecycle and the notification outbox. Each read model is a set
//! of JSON documents keyed by an id ([`Document`]: an object held as its members' text); a
//! projector says which documents an event touches and how each changes. The runner applies a batch of events and moves the projection's
//! checkpoint **in the same transaction**, so a crash can neither lose nor repeat an
//! event's effect.
//!
//! A projector never appends to the event log. Documents live in the same database as the
//! log (PostgreSQL or the SQLite file), in two tables every backend shares.
//!
//! Rebuild (`finops-replay rebuild`) folds the whole log into a new *generation* of a
//! projection while the current one keeps answering, then switches generations in one
//! transaction. The same log always folds into the same documents; [`ReadModels::digest`]
//! hashes a generation so a rebuild can be checked against the live one.

mod allocator;
mod as_of;
mod cards;
mod document;
mod gaps;
mod generation;
pub mod history;
mod investigations;
mod operations;
mod projectors;
mod runner;
mod snapshots;
mod store;

pub use allocator::keep_freed_memory;
pub use as_of::{ReadModelView, ReadModelsAsOf};
pub use cards::{SpendCardsView, SpendRollupsView};
pub use document::Document;
pub use gaps::{GapLifecycle, NotificationOutbox, gap_document};
pub use investigations::InvestigationsView;
pub use operations::{CurBatchesView, LogFilesView, WorkloadControlsView};
pub use projectors::{ALL, CatalogView, ClaimsView, RequestQueue, TaskQueue, WorkloadsView};
pub use runner::{ProjectionRunner, RebuildPhases, RebuildReport, Rebuilt};
pub use store::{Page, ProjectionStatus, ReadModelError, ReadModels};

use std::sync::Arc;

use finops_eventlog::RecordedEvent;

/// Every governance projector, in [`ALL`]'s order.
pub fn governance_projectors() -> Vec<Arc<dyn Projector>> {
    vec![
        Arc::new(RequestQueue),
        Arc::new(CatalogView),
        Arc::new(TaskQueue),
        Arc::new(ClaimsView),
        Arc::new(WorkloadsView),
        Arc::new(GapLifecycle),
        Arc::new(NotificationOutbox),
        Arc::new(SpendCardsView),
        Arc::new(SpendRollupsView),
        Arc::new(InvestigationsView),
        Arc::new(WorkloadControlsView),
        Arc::new(CurBatchesView),
        Arc::new(LogFilesView),
    ]
}

/// A read model's fold over the log. Must be deterministic: the document after an event
/// depends only on the document before it and the event.
pub trait Projector: Send + Sync + 'static {
    /// The read model's stable name (also its checkpoint's key).
    fn name(&self) -> &'static str;

    /// The version of this fold. Raise it whenever the documents it writes change shape
    /// or meaning: a read model built by another version is rebuilt on start.
    fn version(&self) -> u32 {
        1
    }

    /// The documents `event` changes (empty for events this read model ignores).
    fn keys(&self, event: &RecordedEvent) -> Vec<String>;

    /// The document `key` after `event`, from the document before it (`None`: absent).
    /// Returning `None` removes the document.
    fn apply(&self, event: &RecordedEvent, key: &str, current: Option<Document>) -> Option<Document>;
}

/// Applies `event` to the documents `projector` says it touches, in memory: the one fold
/// of an event the live runner's batches, the folds as of an instant and the server's
/// answers that must not lag (one stream folded on the spot) all use.
pub fn fold(projector: &dyn Projector, event: &RecordedEvent, docs: &mut std::collections::BTreeMap<String, Document>) {
    for key in projector.keys(event) {
        let current = docs.remove(&key);
        if let Some(doc) = projector.apply(event, &key, current) {
            docs.insert(key, doc);
        }
    }
}
