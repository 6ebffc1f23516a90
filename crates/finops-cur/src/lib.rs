//! # CUR 2.0 vocabulary
//!
//! Parsers for the fields that decide who an AI dollar belongs to, as they appear in AWS's
//! Cost and Usage Report 2.0 (formats and sources: ../shared/CUR-REFERENCE.md):
//!
//! - [`principal`]: `line_item_iam_principal` — IAM users, Bedrock API-key users, STS
//!   assumed-role sessions (applications, federated users, gateways) and IAM Identity
//!   Center sessions (`AWSReservedSSO_{set}_{hex}`).
//! - [`usage_type`]: `line_item_usage_type` — region, model, token direction, tier and
//!   routing suffixes, Marketplace `MP:` forms, guardrails; and the unit each is billed in
//!   (first-party in thousands of tokens, Marketplace in millions).
//! - [`resource`]: `line_item_resource_id` — foundation models, system and application
//!   inference profiles, guardrails.
//!
//! - [`ai_facts`]: what a line says about AI spend (platform, region, model, token type,
//!   tokens, guardrail or workspace anchor, caller), read once at ingest.
//!
//! - [`csv_lines`]: CUR CSV (plain or gzip, CUR 2.0 or legacy headers) read line by line
//!   with the schema checked and every bad value named by file, row, column and value.
//!
//! - [`focus_lines`]: FOCUS 1.x CSV mapped onto the same lines (no caller identity; other
//!   providers' rows skipped and counted).
//!
//! Every parser is total: any input yields a value or a precise error, never a panic
//! (property-tested). This crate does no I/O and knows nothing of DataFusion; the query
//! layer calls it.

pub mod ai_facts;
pub mod csv_lines;
pub mod focus_lines;
pub mod invocation_log;
pub mod principal;
pub mod resource;
pub mod synthetic;
pub mod usage_type;
