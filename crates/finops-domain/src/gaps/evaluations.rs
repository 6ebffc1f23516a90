//! The gap detector's record of what it evaluated (see `GapsEvaluated`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::EvaluationCause;
use crate::aggregate::Aggregate;
use crate::error::DomainError;

/// The detector's own record: how far the log has been evaluated. An evaluation at or
/// before it is stale — a newer one has already judged every gap — so the detector run
/// again from an earlier checkpoint (after a crash, or by an operator) writes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GapEvaluations {
    /// The newest position evaluated.
    pub through: u64,
}

/// What may be asked of the detector's record.
#[derive(Debug, Clone, PartialEq)]
pub enum GapEvaluationCommand {
    /// An evaluation finished.
    Record {
        /// The position it read through.
        through: u64,
        /// What caused it.
        cause: EvaluationCause,
        /// Gaps found.
        found: u64,
        /// Gaps whose stream it wrote to.
        touched: u64,
        /// When.
        at: DateTime<Utc>,
    },
}

/// What the detector's record holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum GapEvaluationEvent {
    /// Every gap was evaluated as the log stood at `through`.
    GapsEvaluated {
        /// The position.
        through: u64,
        /// What caused it.
        cause: EvaluationCause,
        /// Gaps found.
        found: u64,
        /// Gaps changed.
        touched: u64,
        /// When.
        at: DateTime<Utc>,
    },
}

impl Aggregate for GapEvaluations {
    type Command = GapEvaluationCommand;
    type Event = GapEvaluationEvent;
    type Error = DomainError;

    fn decide(&self, command: &GapEvaluationCommand) -> Result<Vec<GapEvaluationEvent>, DomainError> {
        let GapEvaluationCommand::Record { through, cause, found, touched, at } = command;
        if *through <= self.through {
            return Ok(vec![]);
        }
        Ok(vec![GapEvaluationEvent::GapsEvaluated {
            through: *through,
            cause: cause.clone(),
            found: *found,
            touched: *touched,
            at: *at,
        }])
    }

    fn evolve(mut self, event: &GapEvaluationEvent) -> Self {
        let GapEvaluationEvent::GapsEvaluated { through, .. } = event;
        self.through = self.through.max(*through);
        self
    }
}
