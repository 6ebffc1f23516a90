//! Read models operators and the metrics endpoint read (issue 13.7): each workload's
//! kill-switch status, every CUR batch ingested with its rows and bytes, and every
//! invocation-log file with its records and bytes.

use finops_domain::cur_batches::CurPeriodEvent;
use finops_domain::invocation_logs::LogDayEvent;
use finops_domain::kill_switch::{ControlEvent, Enforcement};
use finops_eventlog::RecordedEvent;
use serde_json::{Value, json};

use crate::projectors::decode;
use crate::{Document, Projector};

/// Each workload's kill-switch status, by workload id.
#[derive(Debug, Default, Clone, Copy)]
pub struct WorkloadControlsView;

impl WorkloadControlsView {
    /// The projection's name.
    pub const NAME: &'static str = "workload_controls";
    /// The kill-switch streams' prefix.
    pub const PREFIX: &'static str = "kill-switch-";
}

impl Projector for WorkloadControlsView {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn keys(&self, event: &RecordedEvent) -> Vec<String> {
        event.stream_id.as_str().strip_prefix(Self::PREFIX).map(|k| vec![k.to_owned()]).unwrap_or_default()
    }

    fn apply(&self, event: &RecordedEvent, key: &str, current: Option<Document>) -> Option<Document> {
        let Some(e) = decode::<ControlEvent>(event, Self::PREFIX) else { return current };
        let mut doc = current.map(Value::from).unwrap_or_else(|| json!({ "workload_id": key }));
        // The same statuses as `WorkloadControl::status`, kept from the events alone.
        let decided =
            |doc: &mut Value, decision: u32, calls: usize, enforcement: &Enforcement, done: &str, pending: &str| {
                let applied = calls == 0 || *enforcement == Enforcement::Manual;
                doc["decision"] = json!(decision);
                doc["calls"] = json!(calls);
                doc["status"] = json!(if applied { done } else { pending });
                doc["last_error"] = json!("");
            };
        match &e {
            ControlEvent::WorkloadSuspended { decision, calls, enforcement, .. } => {
                decided(&mut doc, *decision, calls.len(), enforcement, "suspended", "suspension pending");
            }
            ControlEvent::WorkloadResumed { decision, calls, enforcement, .. } => {
                decided(&mut doc, *decision, calls.len(), enforcement, "resumed", "resume pending");
            }
            ControlEvent::EnforcementAttempted { decision, outcomes, .. } => {
                if doc["decision"].as_u64() == Some(u64::from(*decision)) {
                    let failed: Vec<&str> = outcomes.iter().filter(|o| !o.ok).map(|o| o.detail.as_str()).collect();
                    let complete = failed.is_empty() && doc["calls"].as_u64() == Some(outcomes.len() as u64);
                    if complete {
                        let done = if doc["status"] == "suspension pending" { "suspended" } else { "resumed" };
                        if doc["status"].as_str().is_some_and(|s| s.ends_with("pending")) {
                            doc["status"] = json!(done);
                        }
                    }
                    doc["last_error"] = json!(failed.join("; "));
                }
            }
        }
        doc["updated_at"] = json!(event.metadata.recorded_at);
        Some(doc.into())
    }
}

/// Every CUR batch ingested, by `{period}/{hash}`: its rows and bytes.
#[derive(Debug, Default, Clone, Copy)]
pub struct CurBatchesView;

impl CurBatchesView {
    /// The projection's name.
    pub const NAME: &'static str = "cur_batches";
    /// The CUR period streams' prefix.
    pub const PREFIX: &'static str = "cur-period-";
}

impl Projector for CurBatchesView {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn keys(&self, event: &RecordedEvent) -> Vec<String> {
        match decode::<CurPeriodEvent>(event, Self::PREFIX) {
            Some(CurPeriodEvent::CurBatchIngested { batch, .. }) => vec![format!("{}/{}", batch.period, batch.hash)],
            None => vec![],
        }
    }

    fn apply(&self, event: &RecordedEvent, _key: &str, current: Option<Document>) -> Option<Document> {
        let Some(CurPeriodEvent::CurBatchIngested { batch, supersedes, at }) =
            decode::<CurPeriodEvent>(event, Self::PREFIX)
        else {
            return current;
        };
        Some(
            json!({
                "period": batch.period, "hash": batch.hash, "format": batch.format, "source": batch.source,
                "rows": batch.rows, "bytes": batch.bytes, "supersedes": supersedes, "at": at,
            })
            .into(),
        )
    }
}

/// Every invocation-log file ingested, by hash: its records, bytes, hours and estimate.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogFilesView;

impl LogFilesView {
    /// The projection's name.
    pub const NAME: &'static str = "log_files";
    /// The log days' streams' prefix.
    pub const PREFIX: &'static str = "invocation-logs-";
}

impl Projector for LogFilesView {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn keys(&self, event: &RecordedEvent) -> Vec<String> {
        match decode::<LogDayEvent>(event, Self::PREFIX) {
            Some(LogDayEvent::InvocationLogIngested { file, .. }) => vec![file.hash],
            None => vec![],
        }
    }

    fn apply(&self, event: &RecordedEvent, _key: &str, current: Option<Document>) -> Option<Document> {
        let Some(LogDayEvent::InvocationLogIngested { file, at }) = decode::<LogDayEvent>(event, Self::PREFIX) else {
            return current;
        };
        Some(
            json!({
                "hash": file.hash, "source": file.source, "records": file.records, "bytes": file.bytes,
                "first_hour": file.first_hour, "last_hour": file.last_hour,
                "estimated_micro_usd": file.estimated_micro_usd, "unpriced_tokens": file.unpriced_tokens, "at": at,
            })
            .into(),
        )
    }
}
