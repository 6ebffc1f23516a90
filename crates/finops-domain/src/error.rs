//! Why the domain refuses a command. Each variant maps to one gRPC status family:
//! invalid input (with every field at fault), an illegal transition, or a missing
//! precondition elsewhere (for example a model not approved in the catalog).

use serde::{Deserialize, Serialize};

/// One field at fault, named by its path in the request (`operations.description`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldViolation {
    /// The field's path.
    pub field: String,
    /// What is wrong, in words a person can act on.
    pub description: String,
}

impl FieldViolation {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self { field: field.into(), description: description.into() }
    }
}

/// A refused command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The input breaks validation rules; every violation is listed.
    #[error("invalid request: {}", .0.iter().map(|v| format!("{}: {}", v.field, v.description)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldViolation>),
    /// The command is not allowed in the aggregate's current state.
    #[error("cannot {action} a {aggregate} that is {state}")]
    IllegalTransition {
        /// What kind of thing.
        aggregate: &'static str,
        /// Its current state.
        state: &'static str,
        /// What was asked.
        action: &'static str,
    },
    /// Something the command relies on does not hold (and is not the caller's input).
    #[error("{0}")]
    Precondition(String),
}

/// Longest rationale a decision may carry.
pub const MAX_RATIONALE_CHARS: usize = 2_000;

/// The rationale every decision carries (DOMAIN.md §1: who, when and *why*), as a list of
/// violations (empty when it is fine), so an API can report it beside its parse errors.
pub fn rationale_violations(rationale: &str) -> Vec<FieldViolation> {
    let mut v = Violations::default();
    v.require_rationale(rationale);
    v.into_vec()
}

/// Collects violations so a command reports all of them at once, not the first only.
#[derive(Debug, Default)]
pub(crate) struct Violations(Vec<FieldViolation>);

impl Violations {
    pub(crate) fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    /// Records `result`'s error under `field`, returning the value if it was valid.
    pub(crate) fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.add(field, e);
                None
            }
        }
    }

    /// The rationale rule: required, and not a novel.
    pub(crate) fn require_rationale(&mut self, rationale: &str) {
        if rationale.trim().is_empty() {
            self.add("rationale", "is required: every decision says why");
        } else if rationale.chars().count() > MAX_RATIONALE_CHARS {
            self.add("rationale", format!("is longer than {MAX_RATIONALE_CHARS} characters"));
        }
    }

    pub(crate) fn into_vec(self) -> Vec<FieldViolation> {
        self.0
    }

    pub(crate) fn into_result(self) -> Result<(), DomainError> {
        if self.0.is_empty() { Ok(()) } else { Err(DomainError::Invalid(self.0)) }
    }
}
