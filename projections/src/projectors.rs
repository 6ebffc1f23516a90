//! The governance read models.

use finops_domain::catalog::CatalogEvent;
use finops_domain::request::{RequestEvent, UseCase};
use finops_domain::spaces::ClaimEvent;
use finops_domain::tasks::TaskEvent;
use finops_domain::workload::WorkloadEvent;
use finops_eventlog::RecordedEvent;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::Projector;

/// Every governance projector, in the order they are run.
pub const ALL: [&str; 13] = [
    RequestQueue::NAME,
    CatalogView::NAME,
    TaskQueue::NAME,
    ClaimsView::NAME,
    WorkloadsView::NAME,
    crate::gaps::GapLifecycle::NAME,
    crate::gaps::NotificationOutbox::NAME,
    crate::cards::SpendCardsView::NAME,
    crate::cards::SpendRollupsView::NAME,
    crate::investigations::InvestigationsView::NAME,
    crate::operations::WorkloadControlsView::NAME,
    crate::operations::CurBatchesView::NAME,
    crate::operations::LogFilesView::NAME,
];

pub(crate) fn decode<E: DeserializeOwned>(event: &RecordedEvent, prefix: &str) -> Option<E> {
    if !event.stream_id.as_str().starts_with(prefix) {
        return None;
    }
    // Straight from the stored text (no `Value` tree), or from the value if one was made.
    match event.payload.decode::<E>() {
        Ok(e) => Some(e),
        Err(e) => {
            // A type this build does not know: skip it rather than stop every read model.
            tracing::warn!(event = %event.event_id, kind = %event.event_type, error = %e, "projector skipped an undecodable event");
            None
        }
    }
}

fn key_of(event: &RecordedEvent, prefix: &str) -> Vec<String> {
    event.stream_id.as_str().strip_prefix(prefix).map(|k| vec![k.to_owned()]).unwrap_or_default()
}

fn position(event: &RecordedEvent) -> u64 {
    event.position.map_or(0, |p| p.0)
}

/// Business Requests by id: status, owner, details summary, approval.
#[derive(Debug, Default, Clone, Copy)]
pub struct RequestQueue;

impl RequestQueue {
    /// The projection's name.
    pub const NAME: &'static str = "request_queue";
    const PREFIX: &'static str = "business-request-";
}

impl Projector for RequestQueue {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    // 2: money under honest names (`cents`, `annual_cost_saving_cents`; issue 10.11).
    fn version(&self) -> u32 {
        2
    }

    fn keys(&self, event: &RecordedEvent) -> Vec<String> {
        key_of(event, Self::PREFIX)
    }

    fn apply(&self, event: &RecordedEvent, key: &str, current: Option<Value>) -> Option<Value> {
        let Some(e) = decode::<RequestEvent>(event, Self::PREFIX) else { return current };
        let mut doc = current.unwrap_or_else(|| json!({ "id": key, "name": format!("businessRequests/{key}") }));
        doc["version"] = json!(event.stream_version);
        doc["updated_at"] = json!(event.metadata.recorded_at);
        doc["position"] = json!(position(event));
        match e {
            RequestEvent::BusinessRequestSubmitted { product_id, requested_by, details, at, .. } => {
                doc["status"] = json!("submitted");
                doc["product_id"] = json!(product_id);
                doc["requested_by"] = json!(requested_by);
                doc["submitted_at"] = json!(at);
                doc["revision"] = json!(1);
                set_details(&mut doc, &details);
            }
            RequestEvent::BusinessRequestResubmitted { details, revision, .. } => {
                doc["status"] = json!("submitted");
                doc["revision"] = json!(revision);
                set_details(&mut doc, &details);
            }
            RequestEvent::BusinessRequestApproved { review, workload_id, role_name, by, at, .. } => {
                doc["status"] = json!("approved");
                doc["approved_by"] = json!(by);
                doc["approved_at"] = json!(at);
                doc["workload_id"] = json!(workload_id);
                doc["role_name"] = json!(role_name);
                doc["platform"] = json!(review.platform);
                doc["model_id"] = json!(review.model_id);
                doc["account"] = json!(review.account);
                doc["region"] = json!(review.region);
                doc["confirmed_estimate"] = json!(review.confirmed_estimate);
            }
            RequestEvent::BusinessRequestRejected { rationale, .. } => {
                doc["status"] = json!("rejected");
                doc["last_rejection"] = json!(rationale);
            }
            RequestEvent::BusinessRequestWithdrawn { .. } => doc["status"] = json!("withdrawn"),
            RequestEvent::ApprovalScopeExtended { accounts, regions, by, at, .. } => {
                doc["scope_extended"] = json!({ "accounts": accounts, "regions": regions, "by": by, "at": at });
            }
        }
        Some(doc)
    }
}

fn set_details(doc: &mut Value, details: &finops_domain::request::RequestDetails) {
    doc["workload_name"] = json!(details.workload_name);
    doc["priority"] = json!(details.priority);
    doc["use_case"] = json!(match details.use_case {
        UseCase::Coding { .. } => "coding",
        UseCase::Operations { .. } => "operations",
    });
    doc["details"] = json!(details);
}

/// The model catalog by model.
#[derive(Debug, Default, Clone, Copy)]
pub struct CatalogView;

impl CatalogView {
    /// The projection's name.
    pub const NAME: &'static str = "catalog";
    const PREFIX: &'static str = "catalog-";
}

impl Projector for CatalogView {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn keys(&self, event: &RecordedEvent) -> Vec<String> {
        key_of(event, Self::PREFIX)
    }

    fn apply(&self, event: &RecordedEvent, _key: &str, current: Option<Value>) -> Option<Value> {
        let Some(e) = decode::<CatalogEvent>(event, Self::PREFIX) else { return current };
        let mut doc = current.unwrap_or_else(|| json!({ "scope": { "accounts": [], "regions": [], "actions": [] } }));
        doc["version"] = json!(event.stream_version);
        match e {
            CatalogEvent::ModelListedForReview { platform, model_id, .. } => {
                doc["platform"] = json!(platform);
                doc["model_id"] = json!(model_id);
                doc["status"] = json!("pending_review");
            }
            CatalogEvent::ModelApproved { scope, rationale, .. } => {
                doc["status"] = json!("approved");
                doc["scope"] = json!(scope);
                doc["rationale"] = json!(rationale);
            }
            CatalogEvent::ModelScopeAdded { added, .. } => {
                let mut scope: finops_domain::vocabulary::ApprovalScope =
                    serde_json::from_value(doc["scope"].clone()).unwrap_or_default();
                scope = scope.extended_by(&added);
                doc["scope"] = json!(scope);
            }
            CatalogEvent::ModelRevoked { rationale, .. } => {
                doc["status"] = json!("revoked");
                doc["scope"] = json!({ "accounts": [], "regions": [], "actions": [] });
                doc["rationale"] = json!(rationale);
            }
        }
        Some(doc)
    }
}

/// Cloud Engineer tasks by id, with their steps and progress.
#[derive(Debug, Default, Clone, Copy)]
pub struct TaskQueue;

impl TaskQueue {
    /// The projection's name.
    pub const NAME: &'static str = "task_queue";
    const PREFIX: &'static str = "task-";
}

impl Projector for TaskQueue {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn keys(&self, event: &RecordedEvent) -> Vec<String> {
        key_of(event, Self::PREFIX)
    }

    fn apply(&self, event: &RecordedEvent, _key: &str, current: Option<Value>) -> Option<Value> {
        if let Some(doc) = task_created_document(event, &current) {
            return Some(doc);
        }
        let Some(e) = decode::<TaskEvent>(event, Self::PREFIX) else { return current };
        let mut doc = current.unwrap_or_else(|| json!({}));
        doc["version"] = json!(event.stream_version);
        match e {
            TaskEvent::TaskCreated { plan, at } => {
                doc["task_id"] = json!(plan.task_id);
                doc["kind"] = json!(plan.kind);
                doc["request_id"] = json!(plan.request_id);
                doc["workload_id"] = json!(plan.workload_id);
                doc["depends_on"] = json!(plan.depends_on);
                doc["approval_rationale"] = json!(plan.approval_rationale);
                doc["total_steps"] = json!(plan.steps.len());
                doc["steps"] = json!(plan.steps);
                doc["steps_done"] = json!(0);
                doc["created_at"] = json!(at);
                doc["status"] = json!("open");
            }
            TaskEvent::TaskStepCompleted { step, by, at, .. } => {
                doc["steps_done"] = json!(step);
                doc["status"] = json!("in_progress");
                doc["last_step_by"] = json!(by);
                doc["last_step_at"] = json!(at);
            }
            TaskEvent::TaskImplemented { by, note, at } => {
                doc["steps_done"] = doc["total_steps"].clone();
                doc["status"] = json!("implemented");
                doc["implemented_by"] = json!(by);
                doc["implemented_at"] = json!(at);
                // Only when there is one: a log from before notes folds to the same documents.
                if let Some(note) = note {
                    doc["implemented_note"] = json!(note);
                }
            }
        }
        Some(doc)
    }
}

/// A task's first document, taken from its `TaskCreated` payload as stored: the plan
/// carries every generated command (kilobytes a task, most of a governance log's bytes),
/// and its stored JSON is what the typed plan serialises to, so decoding it into the
/// domain type and encoding it again (what the other events get) would only cost. The
/// fields the document keeps are read from the stored text straight into the values the
/// document holds (no tree of the whole payload, no copy of it). `None` for any other
/// event, or a payload without the plan's shape (the typed path then reports it).
fn task_created_document(event: &RecordedEvent, current: &Option<Value>) -> Option<Value> {
    /// The parts of a `TaskCreated` payload a task's document keeps (a field missing is
    /// an error, so the typed path reports the payload).
    #[derive(serde::Deserialize)]
    struct Created {
        plan: Plan,
        at: Value,
    }
    #[derive(serde::Deserialize)]
    struct Plan {
        task_id: Value,
        kind: Value,
        request_id: Value,
        workload_id: Value,
        depends_on: Value,
        approval_rationale: Value,
        steps: Vec<Value>,
    }
    if current.is_some()
        || event.event_type != "TaskCreated"
        || !event.stream_id.as_str().starts_with(TaskQueue::PREFIX)
    {
        return None;
    }
    let Created { plan, at } = event.payload.decode().ok()?;
    let mut doc = serde_json::Map::new();
    doc.insert("task_id".into(), plan.task_id);
    doc.insert("kind".into(), plan.kind);
    doc.insert("request_id".into(), plan.request_id);
    doc.insert("workload_id".into(), plan.workload_id);
    doc.insert("depends_on".into(), plan.depends_on);
    doc.insert("approval_rationale".into(), plan.approval_rationale);
    doc.insert("version".into(), event.stream_version.into());
    doc.insert("total_steps".into(), plan.steps.len().into());
    doc.insert("steps".into(), Value::Array(plan.steps));
    doc.insert("steps_done".into(), 0.into());
    doc.insert("created_at".into(), at);
    doc.insert("status".into(), "open".into());
    Some(Value::Object(doc))
}

/// Claims by resource, with every claim period.
#[derive(Debug, Default, Clone, Copy)]
pub struct ClaimsView;

impl ClaimsView {
    /// The projection's name.
    pub const NAME: &'static str = "claims";
    const PREFIX: &'static str = "claim-";
}

impl Projector for ClaimsView {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn keys(&self, event: &RecordedEvent) -> Vec<String> {
        key_of(event, Self::PREFIX)
    }

    fn apply(&self, event: &RecordedEvent, key: &str, current: Option<Value>) -> Option<Value> {
        let Some(e) = decode::<ClaimEvent>(event, Self::PREFIX) else { return current };
        let mut doc = current.unwrap_or_else(|| json!({ "key": key, "periods": [] }));
        doc["version"] = json!(event.stream_version);
        match e {
            ClaimEvent::ResourceClaimed { resource, workload_id, effective_from, by, .. } => {
                doc["resource"] = json!(resource);
                doc["workload_id"] = json!(workload_id);
                doc["claimed_by"] = json!(by);
                doc["status"] = json!("claimed");
                if let Some(periods) = doc["periods"].as_array_mut() {
                    periods.push(json!({ "workload_id": workload_id, "from": effective_from, "until": null }));
                }
            }
            ClaimEvent::ResourceReleased { effective_until, .. } => {
                doc["status"] = json!("released");
                doc["workload_id"] = Value::Null;
                if let Some(last) = doc["periods"].as_array_mut().and_then(|p| p.last_mut()) {
                    last["until"] = json!(effective_until);
                }
            }
            ClaimEvent::ResourceReserved { resource, workload_id, .. } => {
                doc["resource"] = json!(resource);
                doc["reserved_for"] = json!(workload_id);
                if doc.get("status").is_none() {
                    doc["status"] = json!("reserved");
                }
            }
            ClaimEvent::ResourceReassigned { resource, to_workload, effective_from, by, .. } => {
                doc["resource"] = json!(resource);
                if let Some(last) = doc["periods"].as_array_mut().and_then(|p| p.last_mut())
                    && last["until"].is_null()
                {
                    last["until"] = json!(effective_from.pred_opt());
                }
                if let Some(periods) = doc["periods"].as_array_mut() {
                    periods.push(json!({ "workload_id": to_workload, "from": effective_from, "until": null }));
                }
                if !doc["reserved_for"].is_null() {
                    doc["reserved_for"] = json!(to_workload);
                }
                doc["workload_id"] = json!(to_workload);
                doc["claimed_by"] = json!(by);
                doc["status"] = json!("claimed");
            }
        }
        Some(doc)
    }
}

/// Workloads by id: what approval fixed, and the estimate and business case stated since.
#[derive(Debug, Default, Clone, Copy)]
pub struct WorkloadsView;

impl WorkloadsView {
    /// The projection's name.
    pub const NAME: &'static str = "workloads";
    const PREFIX: &'static str = "workload-";
}

impl Projector for WorkloadsView {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    // 2: money under honest names (`cents`, `annual_cost_saving_cents`; issue 10.11).
    fn version(&self) -> u32 {
        2
    }

    fn keys(&self, event: &RecordedEvent) -> Vec<String> {
        if event.event_type == "BusinessRequestApproved" {
            /// The one field the key needs, read from the stored text (the rest skipped).
            #[derive(serde::Deserialize)]
            struct Approved {
                workload_id: Option<String>,
            }
            return event.payload.decode::<Approved>().ok().and_then(|a| a.workload_id).into_iter().collect();
        }
        key_of(event, Self::PREFIX)
    }

    fn apply(&self, event: &RecordedEvent, key: &str, current: Option<Value>) -> Option<Value> {
        let mut doc = current.unwrap_or_else(|| json!({ "workload_id": key }));
        if let Some(RequestEvent::BusinessRequestApproved {
            review,
            role_name,
            workload_name,
            owner,
            product_id,
            at,
            ..
        }) = decode::<RequestEvent>(event, RequestQueue::PREFIX)
        {
            let request = event.stream_id.as_str().strip_prefix(RequestQueue::PREFIX).unwrap_or_default();
            doc["business_request"] = json!(format!("businessRequests/{request}"));
            doc["name"] = json!(workload_name);
            doc["owner"] = json!(owner);
            doc["product_id"] = json!(product_id);
            doc["role_name"] = json!(role_name);
            doc["platform"] = json!(review.platform);
            doc["model_id"] = json!(review.model_id);
            doc["account"] = json!(review.account);
            doc["region"] = json!(review.region);
            doc["confirmed_estimate"] = json!(review.confirmed_estimate);
            doc["budget_id"] = json!(review.budget_id);
            doc["approved_at"] = json!(at);
            return Some(doc);
        }
        match decode::<WorkloadEvent>(event, Self::PREFIX) {
            Some(WorkloadEvent::WorkloadEstimateSet { estimate, .. }) => doc["estimate"] = json!(estimate),
            Some(WorkloadEvent::BusinessCaseDeclared { case, .. }) => doc["business_case"] = json!(case),
            Some(WorkloadEvent::WorkloadBudgetChanged { budget_id, effective_from, .. }) => {
                doc["budget_id"] = json!(budget_id);
                doc["budget_from"] = json!(effective_from);
            }
            None => {}
        }
        Some(doc)
    }
}
