//! The governance read models.

use finops_domain::catalog::CatalogEvent;
use finops_domain::spaces::ClaimEvent;
use finops_eventlog::RecordedEvent;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::{Document, Projector};

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

/// A member of an event's stored payload, kept as its JSON text: copied into a document
/// without a tree being made of it (see [`Document`]).
type Raw = Box<RawValue>;

/// Business Requests by id: status, owner, details summary, approval.
#[derive(Debug, Default, Clone, Copy)]
pub struct RequestQueue;

impl RequestQueue {
    /// The projection's name.
    pub const NAME: &'static str = "request_queue";
    const PREFIX: &'static str = "business-request-";
}

/// The members of a request's events its documents keep, by event type, as their text:
/// the same members the typed events hold, read without the internally tagged enum's
/// buffering or a tree of the details.
enum RequestChange {
    Submitted { product_id: Raw, requested_by: Raw, details: Details, at: Raw },
    Resubmitted { details: Details, revision: Raw },
    Approved(Box<Approval>),
    Rejected { rationale: Raw },
    Withdrawn,
    ScopeExtended { accounts: Value, regions: Value, by: Value, at: Value },
}

/// A `BusinessRequestApproved` payload's members that the request queue and the
/// workloads keep.
#[derive(serde::Deserialize)]
struct Approval {
    review: ApprovedReview,
    workload_id: Raw,
    workload_name: Raw,
    owner: Raw,
    product_id: Raw,
    role_name: Raw,
    by: Raw,
    at: Raw,
}

#[derive(serde::Deserialize)]
struct ApprovedReview {
    platform: Raw,
    model_id: Raw,
    account: Raw,
    region: Raw,
    confirmed_estimate: Raw,
    /// Absent from approvals recorded before budgets were named (the typed event reads
    /// `None`, which the documents show as `null`).
    #[serde(default)]
    budget_id: Option<Raw>,
}

impl ApprovedReview {
    /// Sets where the approved workload runs and its confirmed estimate; returns the
    /// budget it charges (which only the workloads keep).
    fn set_on(self, doc: &mut Document) -> Option<Raw> {
        doc.set_raw("platform", self.platform);
        doc.set_raw("model_id", self.model_id);
        doc.set_raw("account", self.account);
        doc.set_raw("region", self.region);
        doc.set_raw("confirmed_estimate", self.confirmed_estimate);
        self.budget_id
    }
}

impl RequestChange {
    fn decode(event: &RecordedEvent) -> Option<Self> {
        #[derive(serde::Deserialize)]
        struct Submitted {
            product_id: Raw,
            requested_by: Raw,
            details: Details,
            at: Raw,
        }
        #[derive(serde::Deserialize)]
        struct Resubmitted {
            details: Details,
            revision: Raw,
        }
        #[derive(serde::Deserialize)]
        struct Rejected {
            rationale: Raw,
        }
        #[derive(serde::Deserialize)]
        struct ScopeExtended {
            accounts: Value,
            regions: Value,
            by: Value,
            at: Value,
        }
        let prefix = RequestQueue::PREFIX;
        Some(match event.event_type.as_str() {
            "BusinessRequestSubmitted" => {
                let Submitted { product_id, requested_by, details, at } = decode(event, prefix)?;
                Self::Submitted { product_id, requested_by, details, at }
            }
            "BusinessRequestResubmitted" => {
                let Resubmitted { details, revision } = decode(event, prefix)?;
                Self::Resubmitted { details, revision }
            }
            "BusinessRequestApproved" => Self::Approved(Box::new(decode(event, prefix)?)),
            "BusinessRequestRejected" => {
                let Rejected { rationale } = decode(event, prefix)?;
                Self::Rejected { rationale }
            }
            "BusinessRequestWithdrawn" => {
                decode::<serde::de::IgnoredAny>(event, prefix)?;
                Self::Withdrawn
            }
            "ApprovalScopeExtended" => {
                let ScopeExtended { accounts, regions, by, at } = decode(event, prefix)?;
                Self::ScopeExtended { accounts, regions, by, at }
            }
            other => {
                if event.stream_id.as_str().starts_with(prefix) {
                    tracing::warn!(event = %event.event_id, kind = other, "request queue skipped an event of a type it does not know");
                }
                return None;
            }
        })
    }
}

impl Projector for RequestQueue {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    // 2: money under honest names (`cents`, `annual_cost_saving_cents`; issue 10.11).
    // 3: the details as submitted are no longer copied in (the summary is; see `Details`).
    fn version(&self) -> u32 {
        3
    }

    fn keys(&self, event: &RecordedEvent) -> Vec<String> {
        key_of(event, Self::PREFIX)
    }

    fn apply(&self, event: &RecordedEvent, key: &str, current: Option<Document>) -> Option<Document> {
        let Some(change) = RequestChange::decode(event) else { return current };
        let mut doc = current.unwrap_or_else(|| {
            let mut doc = Document::new();
            doc.set("id", key);
            doc.set("name", format!("businessRequests/{key}"));
            doc
        });
        doc.set("version", event.stream_version);
        doc.set("updated_at", event.metadata.recorded_at);
        doc.set("position", position(event));
        match change {
            RequestChange::Submitted { product_id, requested_by, details, at } => {
                doc.set("status", "submitted");
                doc.set_raw("product_id", product_id);
                doc.set_raw("requested_by", requested_by);
                doc.set_raw("submitted_at", at);
                doc.set("revision", 1);
                details.set_on(&mut doc);
            }
            RequestChange::Resubmitted { details, revision } => {
                doc.set("status", "submitted");
                doc.set_raw("revision", revision);
                details.set_on(&mut doc);
            }
            RequestChange::Approved(approval) => {
                let Approval { review, workload_id, role_name, by, at, .. } = *approval;
                doc.set("status", "approved");
                doc.set_raw("approved_by", by);
                doc.set_raw("approved_at", at);
                doc.set_raw("workload_id", workload_id);
                doc.set_raw("role_name", role_name);
                review.set_on(&mut doc);
            }
            RequestChange::Rejected { rationale } => {
                doc.set("status", "rejected");
                doc.set_raw("last_rejection", rationale);
            }
            RequestChange::Withdrawn => doc.set("status", "withdrawn"),
            RequestChange::ScopeExtended { accounts, regions, by, at } => {
                doc.set("scope_extended", json!({ "accounts": accounts, "regions": regions, "by": by, "at": at }));
            }
        }
        Some(doc)
    }
}

/// The parts of a request's details a queue shows, read from the event's stored text with
/// the rest skipped. The details themselves are not copied into the document: no reader of
/// the queue shows them (a request's Get folds its own stream), and they were a third of
/// what a rebuild wrote.
#[derive(serde::Deserialize)]
struct Details {
    workload_name: Raw,
    #[serde(default)]
    priority: bool,
    use_case: UseCaseKind,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum UseCaseKind {
    Coding(serde::de::IgnoredAny),
    Operations(serde::de::IgnoredAny),
}

impl Details {
    fn set_on(self, doc: &mut Document) {
        doc.set_raw("workload_name", self.workload_name);
        doc.set("priority", self.priority);
        doc.set(
            "use_case",
            match self.use_case {
                UseCaseKind::Coding(_) => "coding",
                UseCaseKind::Operations(_) => "operations",
            },
        );
    }
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

    fn apply(&self, event: &RecordedEvent, _key: &str, current: Option<Document>) -> Option<Document> {
        let Some(e) = decode::<CatalogEvent>(event, Self::PREFIX) else { return current };
        // A handful of models: edited as a tree.
        let mut doc = current
            .map(Value::from)
            .unwrap_or_else(|| json!({ "scope": { "accounts": [], "regions": [], "actions": [] } }));
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
        Some(doc.into())
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

/// The members of a task's events its documents keep, by event type, as their text. A
/// task's plan carries every generated command (kilobytes a task, most of a governance
/// log's bytes): its steps stay in the log, counted but never parsed, and the document
/// points at them (`plan_position`, see [`TaskQueue::with_steps`]).
enum TaskChange {
    Created { plan: CreatedPlan, at: Raw },
    StepCompleted { step: Raw, by: Raw, at: Raw },
    Implemented { by: Raw, note: Option<Raw>, at: Raw },
}

#[derive(serde::Deserialize)]
struct CreatedPlan {
    task_id: Raw,
    kind: Raw,
    request_id: Raw,
    workload_id: Raw,
    depends_on: Raw,
    approval_rationale: Raw,
    steps: StepCount,
}

/// How many steps a plan has, counted in the one pass that reads the event (each step
/// skipped over, none kept).
struct StepCount(usize);

impl<'de> serde::Deserialize<'de> for StepCount {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Counter;
        impl<'de> serde::de::Visitor<'de> for Counter {
            type Value = StepCount;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of steps")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut steps: A) -> Result<StepCount, A::Error> {
                let mut n = 0;
                while steps.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(StepCount(n))
            }
        }
        deserializer.deserialize_seq(Counter)
    }
}

impl TaskChange {
    fn decode(event: &RecordedEvent) -> Option<Self> {
        #[derive(serde::Deserialize)]
        struct Created {
            plan: CreatedPlan,
            at: Raw,
        }
        #[derive(serde::Deserialize)]
        struct StepCompleted {
            step: Raw,
            by: Raw,
            at: Raw,
        }
        #[derive(serde::Deserialize)]
        struct Implemented {
            by: Raw,
            // Schema version 1 had no note; a `null` note reads as none too.
            #[serde(default)]
            note: Option<Raw>,
            at: Raw,
        }
        let prefix = TaskQueue::PREFIX;
        Some(match event.event_type.as_str() {
            "TaskCreated" => {
                // A plan whose steps are not a list is skipped, as an undecodable event is.
                let Created { plan, at } = decode(event, prefix)?;
                Self::Created { plan, at }
            }
            "TaskStepCompleted" => {
                let StepCompleted { step, by, at } = decode(event, prefix)?;
                Self::StepCompleted { step, by, at }
            }
            "TaskImplemented" => {
                let Implemented { by, note, at } = decode(event, prefix)?;
                Self::Implemented { by, note, at }
            }
            other => {
                if event.stream_id.as_str().starts_with(prefix) {
                    tracing::warn!(event = %event.event_id, kind = other, "task queue skipped an event of a type it does not know");
                }
                return None;
            }
        })
    }
}

impl Projector for TaskQueue {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    // 2: the plan's steps are read from the log, where `plan_position` points.
    fn version(&self) -> u32 {
        2
    }

    fn keys(&self, event: &RecordedEvent) -> Vec<String> {
        key_of(event, Self::PREFIX)
    }

    fn apply(&self, event: &RecordedEvent, _key: &str, current: Option<Document>) -> Option<Document> {
        let Some(change) = TaskChange::decode(event) else { return current };
        let mut doc = current.unwrap_or_default();
        doc.set("version", event.stream_version);
        match change {
            TaskChange::Created { plan, at } => {
                doc.set_raw("task_id", plan.task_id);
                doc.set_raw("kind", plan.kind);
                doc.set_raw("request_id", plan.request_id);
                doc.set_raw("workload_id", plan.workload_id);
                doc.set_raw("depends_on", plan.depends_on);
                doc.set_raw("approval_rationale", plan.approval_rationale);
                doc.set("total_steps", plan.steps.0);
                doc.set("plan_position", position(event));
                doc.set("steps_done", 0);
                doc.set_raw("created_at", at);
                doc.set("status", "open");
            }
            TaskChange::StepCompleted { step, by, at } => {
                doc.set_raw("steps_done", step);
                doc.set("status", "in_progress");
                doc.set_raw("last_step_by", by);
                doc.set_raw("last_step_at", at);
            }
            TaskChange::Implemented { by, note, at } => {
                let total = doc.raw("total_steps").map_or_else(null, ToOwned::to_owned);
                doc.set_raw("steps_done", total);
                doc.set("status", "implemented");
                doc.set_raw("implemented_by", by);
                doc.set_raw("implemented_at", at);
                // Only when there is one: a log from before notes folds to the same documents.
                if let Some(note) = note {
                    doc.set_raw("implemented_note", note);
                }
            }
        }
        Some(doc)
    }
}

impl TaskQueue {
    /// Task documents with their plans' steps (`steps`, as the `TaskCreated` event holds
    /// them), read from the log in one read for all of them. A document keeps where its
    /// plan is (`plan_position`) rather than a copy: the plans' generated commands were more
    /// than half of the bytes a rebuild wrote, and the log keeps them unchanged for ever.
    pub async fn with_steps(
        log: &dyn finops_eventlog::EventStore,
        mut documents: Vec<Value>,
    ) -> Result<Vec<Value>, crate::ReadModelError> {
        /// The one member of a plan wanted here.
        #[derive(serde::Deserialize)]
        struct Created {
            plan: Plan,
        }
        #[derive(serde::Deserialize)]
        struct Plan {
            steps: Value,
        }
        let mut positions: Vec<finops_eventlog::Position> =
            documents.iter().filter_map(|d| d["plan_position"].as_u64()).map(finops_eventlog::Position).collect();
        if positions.is_empty() {
            return Ok(documents);
        }
        positions.sort_unstable();
        positions.dedup();
        let mut steps = std::collections::HashMap::new();
        for event in log.read_at(&positions).await? {
            let created = event.payload.decode::<Created>().map_err(|e| crate::ReadModelError::Corrupt {
                projection: Self::NAME.to_owned(),
                key: event.stream_id.to_string(),
                reason: format!("the plan at position {} has no steps: {e}", position(&event)),
            })?;
            steps.insert(position(&event), created.plan.steps);
        }
        for doc in &mut documents {
            let Some(at) = doc["plan_position"].as_u64() else { continue };
            let Some(plan) = steps.get(&at) else {
                return Err(crate::ReadModelError::Corrupt {
                    projection: Self::NAME.to_owned(),
                    key: doc["task_id"].as_str().unwrap_or_default().to_owned(),
                    reason: format!("its plan's position {at} is not in the log"),
                });
            };
            doc["steps"] = plan.clone();
        }
        Ok(documents)
    }
}

/// JSON `null`, as a member's text.
fn null() -> Raw {
    RawValue::from_string("null".to_owned()).expect("null is JSON")
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

    fn apply(&self, event: &RecordedEvent, key: &str, current: Option<Document>) -> Option<Document> {
        let Some(e) = decode::<ClaimEvent>(event, Self::PREFIX) else { return current };
        // A claim's periods are edited in place: as a tree.
        let mut doc = current.map(Value::from).unwrap_or_else(|| json!({ "key": key, "periods": [] }));
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
        Some(doc.into())
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

    fn apply(&self, event: &RecordedEvent, key: &str, current: Option<Document>) -> Option<Document> {
        let mut doc = current.unwrap_or_else(|| {
            let mut doc = Document::new();
            doc.set("workload_id", key);
            doc
        });
        if event.event_type == "BusinessRequestApproved"
            && let Some(approval) = decode::<Approval>(event, RequestQueue::PREFIX)
        {
            let Approval { review, workload_name, owner, product_id, role_name, at, .. } = approval;
            let request = event.stream_id.as_str().strip_prefix(RequestQueue::PREFIX).unwrap_or_default();
            doc.set("business_request", format!("businessRequests/{request}"));
            doc.set_raw("name", workload_name);
            doc.set_raw("owner", owner);
            doc.set_raw("product_id", product_id);
            doc.set_raw("role_name", role_name);
            let budget_id = review.set_on(&mut doc);
            doc.set_raw("budget_id", budget_id.unwrap_or_else(null));
            doc.set_raw("approved_at", at);
            return Some(doc);
        }
        #[derive(serde::Deserialize)]
        struct EstimateSet {
            estimate: Raw,
        }
        #[derive(serde::Deserialize)]
        struct CaseDeclared {
            case: Raw,
        }
        #[derive(serde::Deserialize)]
        struct BudgetChanged {
            budget_id: Raw,
            effective_from: Raw,
        }
        match event.event_type.as_str() {
            "WorkloadEstimateSet" => {
                if let Some(EstimateSet { estimate }) = decode(event, Self::PREFIX) {
                    doc.set_raw("estimate", estimate);
                }
            }
            "BusinessCaseDeclared" => {
                if let Some(CaseDeclared { case }) = decode(event, Self::PREFIX) {
                    doc.set_raw("business_case", case);
                }
            }
            "WorkloadBudgetChanged" => {
                if let Some(BudgetChanged { budget_id, effective_from }) = decode(event, Self::PREFIX) {
                    doc.set_raw("budget_id", budget_id);
                    doc.set_raw("budget_from", effective_from);
                }
            }
            other => {
                if event.stream_id.as_str().starts_with(Self::PREFIX) {
                    tracing::warn!(event = %event.event_id, kind = other, "workloads skipped an event of a type it does not know");
                }
            }
        }
        Some(doc)
    }
}
