//! Projectors fold the event log into read models (catalog, task queue, spend cards, gap
//! lifecycle, maturity scores, chargeback). A projector never appends to the log: it reads
//! the global order from a checkpoint and writes its read model and its checkpoint in one
//! transaction, so a crash can neither lose nor repeat an event's effect.
//!
//! This crate holds the checkpoint contract the first projectors (arriving with the
//! governance workflow) build on.

use finops_eventlog::{Position, RecordedEvent};

/// A read model's fold over the log. `apply` must be deterministic: a rebuild from
/// `Position::START` yields the same read model as the live projector did.
pub trait Projector {
    /// The read model's stable name, also the key of its checkpoint.
    const NAME: &'static str;

    /// Folds one event. Events arrive exactly once each, in global order.
    fn apply(&mut self, event: &RecordedEvent);

    /// The last position folded (`Position::START` before the first).
    fn checkpoint(&self) -> Position;
}
