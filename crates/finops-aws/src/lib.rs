//! # The AWS calls FinOps Center makes itself
//!
//! Only the kill switch acts on AWS (issue 13.4): it tags a workload's IAM role and puts
//! an inline deny on it, and removes both on resume. [`IamClient`] sends those calls —
//! [`finops_domain::kill_switch::AwsCall`], decided and recorded before they are sent —
//! through the IAM Query API, signed with SigV4 ([`sigv4`]). Every call it makes is
//! idempotent on AWS's side (tagging twice, putting the same policy twice, deleting what is
//! already gone), which is what lets the enforcer retry after a crash or a failure.

pub mod iam;
pub mod sigv4;

pub use iam::{IamClient, IamError};
pub use sigv4::Credentials;
