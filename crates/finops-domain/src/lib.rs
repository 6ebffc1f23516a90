//! # The FinOps Center domain
//!
//! The pure core of the governance workflow: commands are decided against state folded
//! from events; events are folded into state. DOMAIN.md is the specification.
//!
//! This crate must never do I/O: no sqlx, tonic, DataFusion or tokio, no clock and no
//! randomness. Time and random parts (such as a role name's 4-character id) arrive inside
//! commands, so every decision is a pure function of state and command, replayable by an
//! auditor.

pub mod agent_bill;
pub mod aggregate;
pub mod alerts;
pub mod artefacts;
pub mod catalog;
pub mod cur_batches;
pub mod error;
pub mod gaps;
pub mod gateway_rules;
pub mod governance_state;
pub mod investigations;
pub mod invocation_logs;
pub mod kill_switch;
pub mod maturity;
pub mod org;
pub mod pricing;
pub mod reconciliation;
pub mod request;
pub mod role;
pub mod role_patterns;
pub mod schema;
pub mod spaces;
pub mod spend_cards;
pub mod tasks;
pub mod vocabulary;
pub mod workload;

pub use aggregate::Aggregate;
pub use error::{DomainError, FieldViolation, MAX_RATIONALE_CHARS, rationale_violations};
