//! The hand-written mapping between finops.v1 wire types and domain types. Parsing
//! collects every field violation before answering, so a client fixes its request in one
//! round trip.

use chrono::NaiveDate;
use finops_domain::FieldViolation;
use finops_domain::request::{
    Availability, BusinessCase, BusinessRequest, RequestDetails, RequestStatus, UseCase, WorkloadType,
};
use finops_domain::vocabulary::{
    AccountId, ApprovalScope, Cents, InvokeAction, ModelId, MonthlyAmount, Platform, Region, TokenBreakdown,
};
use finops_proto::v1 as pb;
use uuid::Uuid;

/// Violations gathered while parsing one request.
#[derive(Debug, Default)]
pub struct Fields(Vec<FieldViolation>);

impl Fields {
    /// Records a violation.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    /// `Some(value)` if `result` is valid, else records its error under `field`.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        result.map_err(|e| self.add(field, e)).ok()
    }

    /// Adds the domain's violations, their paths under `prefix` (`details` turns
    /// `workload_name` into `details.workload_name`), except for fields already named: the
    /// stateless rules are checked beside the parse, so one answer names every fault.
    pub fn domain(&mut self, prefix: &str, violations: Vec<FieldViolation>) {
        for v in violations {
            let field = if prefix.is_empty() { v.field } else { format!("{prefix}.{}", v.field) };
            if !self.0.iter().any(|known| known.field == field) {
                self.0.push(FieldViolation::new(field, v.description));
            }
        }
    }

    /// [`Fields::domain`] for a validation result.
    pub fn domain_result(&mut self, prefix: &str, result: Result<(), finops_domain::DomainError>) {
        match result {
            Ok(()) => {}
            Err(finops_domain::DomainError::Invalid(violations)) => self.domain(prefix, violations),
            // Validation only ever reports fields; anything else is decided later.
            Err(_) => {}
        }
    }

    /// `INVALID_ARGUMENT` if anything was recorded.
    pub fn finish(self) -> Result<(), tonic::Status> {
        if self.0.is_empty() { Ok(()) } else { Err(crate::status::invalid_argument(self.0)) }
    }
}

/// A UUID field.
pub fn uuid(fields: &mut Fields, field: &str, text: &str) -> Option<Uuid> {
    fields.check(field, Uuid::parse_str(text.trim()).map_err(|_| format!("`{text}` is not a UUID")))
}

/// An optional idempotency key: a UUID, or a fresh one when empty.
pub fn request_id(fields: &mut Fields, text: &str) -> Uuid {
    if text.trim().is_empty() { Uuid::now_v7() } else { uuid(fields, "request_id", text).unwrap_or_else(Uuid::nil) }
}

/// `businessRequests/{uuid}`
pub fn business_request_name(fields: &mut Fields, name: &str) -> Option<Uuid> {
    match name.strip_prefix("businessRequests/") {
        Some(id) => uuid(fields, "name", id),
        None => {
            fields.add("name", format!("`{name}` is not a business request name (businessRequests/{{uuid}})"));
            None
        }
    }
}

/// An optional RFC 3339 instant (`as_of`; empty: now).
pub fn as_of(fields: &mut Fields, text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    fields.check(
        "as_of",
        chrono::DateTime::parse_from_rfc3339(t)
            .map(|d| d.with_timezone(&chrono::Utc))
            .map_err(|e| format!("`{t}` is not an RFC 3339 instant ({e})")),
    )
}

/// An optional date field (empty: none).
pub fn date(fields: &mut Fields, field: &str, text: &str) -> Option<NaiveDate> {
    if text.trim().is_empty() {
        return None;
    }
    fields.check(
        field,
        NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| format!("`{text}` is not a date (YYYY-MM-DD)")),
    )
}

/// A required monthly amount.
pub fn monthly(fields: &mut Fields, field: &str, amount: Option<&pb::MonthlyAmount>) -> Option<MonthlyAmount> {
    match amount.and_then(|a| a.amount.as_ref()) {
        Some(pb::monthly_amount::Amount::Cents(c)) => Some(MonthlyAmount::Dollars(Cents(*c))),
        Some(pb::monthly_amount::Amount::Tokens(t)) => Some(MonthlyAmount::Tokens(TokenBreakdown {
            input: t.input,
            output: t.output,
            cache_read: t.cache_read,
            cache_write: t.cache_write,
        })),
        None => {
            fields.add(field, "is required: give cents or tokens");
            None
        }
    }
}

fn workload_type(fields: &mut Fields, value: i32) -> Option<WorkloadType> {
    match pb::WorkloadType::try_from(value) {
        Ok(pb::WorkloadType::CustomerSupport) => Some(WorkloadType::CustomerSupport),
        Ok(pb::WorkloadType::DocumentProcessing) => Some(WorkloadType::DocumentProcessing),
        Ok(pb::WorkloadType::Automation) => Some(WorkloadType::Automation),
        Ok(pb::WorkloadType::InternalTool) => Some(WorkloadType::InternalTool),
        Ok(pb::WorkloadType::Other) => Some(WorkloadType::Other),
        _ => {
            fields.add("details.operations.workload_type", "is required");
            None
        }
    }
}

fn availability(fields: &mut Fields, value: i32) -> Option<Availability> {
    match pb::Availability::try_from(value) {
        Ok(pb::Availability::Standard) => Some(Availability::Standard),
        Ok(pb::Availability::HighAvailability) => Some(Availability::HighAvailability),
        _ => {
            fields.add("details.operations.availability", "is required: STANDARD or HIGH_AVAILABILITY");
            None
        }
    }
}

/// A platform enum value.
pub fn platform(fields: &mut Fields, field: &str, value: i32) -> Option<Platform> {
    match pb::Platform::try_from(value) {
        Ok(pb::Platform::AmazonBedrock) => Some(Platform::AmazonBedrock),
        Ok(pb::Platform::AwsMarketplace) => Some(Platform::AwsMarketplace),
        Ok(pb::Platform::ClaudePlatform) => Some(Platform::ClaudePlatform),
        _ => {
            fields.add(field, "is required: AMAZON_BEDROCK, AWS_MARKETPLACE or CLAUDE_PLATFORM");
            None
        }
    }
}

/// The wire value of a platform.
pub fn platform_to_wire(p: Platform) -> pb::Platform {
    match p {
        Platform::AmazonBedrock => pb::Platform::AmazonBedrock,
        Platform::AwsMarketplace => pb::Platform::AwsMarketplace,
        Platform::ClaudePlatform => pb::Platform::ClaudePlatform,
    }
}

fn action(value: i32) -> Option<InvokeAction> {
    match pb::InvokeAction::try_from(value).ok()? {
        pb::InvokeAction::InvokeModel => Some(InvokeAction::InvokeModel),
        pb::InvokeAction::InvokeModelWithResponseStream => Some(InvokeAction::InvokeModelWithResponseStream),
        pb::InvokeAction::Converse => Some(InvokeAction::Converse),
        pb::InvokeAction::ConverseStream => Some(InvokeAction::ConverseStream),
        pb::InvokeAction::CreateModelInvocationJob => Some(InvokeAction::CreateModelInvocationJob),
        pb::InvokeAction::ApplyGuardrail => Some(InvokeAction::ApplyGuardrail),
        pb::InvokeAction::Unspecified => None,
    }
}

fn action_to_wire(a: InvokeAction) -> i32 {
    (match a {
        InvokeAction::InvokeModel => pb::InvokeAction::InvokeModel,
        InvokeAction::InvokeModelWithResponseStream => pb::InvokeAction::InvokeModelWithResponseStream,
        InvokeAction::Converse => pb::InvokeAction::Converse,
        InvokeAction::ConverseStream => pb::InvokeAction::ConverseStream,
        InvokeAction::CreateModelInvocationJob => pb::InvokeAction::CreateModelInvocationJob,
        InvokeAction::ApplyGuardrail => pb::InvokeAction::ApplyGuardrail,
    }) as i32
}

/// A set of actions; `default` when none is given.
pub fn actions(
    fields: &mut Fields,
    field: &str,
    values: &[i32],
    default: &[InvokeAction],
) -> std::collections::BTreeSet<InvokeAction> {
    if values.is_empty() {
        return default.iter().copied().collect();
    }
    let mut out = std::collections::BTreeSet::new();
    for (i, v) in values.iter().enumerate() {
        match action(*v) {
            Some(a) => {
                out.insert(a);
            }
            None => fields.add(format!("{field}[{i}]"), format!("{v} is not an InvokeAction")),
        }
    }
    out
}

/// A scope message.
pub fn scope(fields: &mut Fields, field: &str, scope: Option<&pb::Scope>) -> ApprovalScope {
    let Some(scope) = scope else {
        fields.add(field, "is required");
        return ApprovalScope::default();
    };
    let accounts = scope
        .account_ids
        .iter()
        .enumerate()
        .filter_map(|(i, a)| fields.check(&format!("{field}.account_ids[{i}]"), AccountId::parse(a)))
        .collect();
    let regions = scope
        .regions
        .iter()
        .enumerate()
        .filter_map(|(i, r)| fields.check(&format!("{field}.regions[{i}]"), Region::parse(r)))
        .collect();
    let actions = actions(fields, &format!("{field}.actions"), &scope.actions, &[]);
    ApprovalScope { accounts, regions, actions }
}

/// The wire form of a scope.
pub fn scope_to_wire(scope: &ApprovalScope) -> pb::Scope {
    pb::Scope {
        account_ids: scope.accounts.iter().map(|a| a.to_string()).collect(),
        regions: scope.regions.iter().map(|r| r.to_string()).collect(),
        actions: scope.actions.iter().map(|a| action_to_wire(*a)).collect(),
    }
}

/// Request details from the wire; `None` only when the message is absent. A part that
/// cannot be read is reported in `fields` and stands in as a valid placeholder, so the
/// domain's rules can still be checked on the rest ([`Fields::domain`]); since `fields` then
/// holds a violation, such details never reach a decision.
pub fn details(fields: &mut Fields, details: Option<&pb::RequestDetails>) -> Option<RequestDetails> {
    let Some(d) = details else {
        fields.add("details", "is required");
        return None;
    };
    let use_case = match &d.use_case {
        Some(pb::request_details::UseCase::Coding(c)) => UseCase::Coding {
            developers: c.developers,
            active_percent: u8::try_from(c.active_percent).unwrap_or(u8::MAX),
        },
        Some(pb::request_details::UseCase::Operations(o)) => UseCase::Operations {
            workload_type: workload_type(fields, o.workload_type).unwrap_or(WorkloadType::Other),
            description: o.description.clone(),
            availability: availability(fields, o.availability).unwrap_or(Availability::Standard),
            monthly_budget: monthly(fields, "details.operations.monthly_budget", o.monthly_budget.as_ref())
                .unwrap_or(MonthlyAmount::Dollars(Cents(1))),
        },
        None => {
            fields.add("details.use_case", "is required: coding or operations");
            UseCase::Coding { developers: 1, active_percent: 1 }
        }
    };
    let start = date(fields, "details.start_date", &d.start_date);
    let end = date(fields, "details.end_date", &d.end_date);
    let business_case = d.business_case.as_ref().map(business_case);
    let details = RequestDetails {
        workload_name: d.workload_name.clone(),
        use_case,
        priority: d.priority,
        start,
        end,
        monthly_growth_percent: d.monthly_growth_percent,
        business_case,
    };
    fields.domain_result("details", details.validate());
    Some(details)
}

/// The wire form of a monthly amount.
pub fn monthly_to_wire(m: &MonthlyAmount) -> pb::MonthlyAmount {
    pb::MonthlyAmount {
        amount: Some(match m {
            MonthlyAmount::Dollars(c) => pb::monthly_amount::Amount::Cents(c.0),
            MonthlyAmount::Tokens(t) => pb::monthly_amount::Amount::Tokens(pb::TokenBreakdown {
                input: t.input,
                output: t.output,
                cache_read: t.cache_read,
                cache_write: t.cache_write,
            }),
        }),
    }
}

fn details_to_wire(d: &RequestDetails) -> pb::RequestDetails {
    pb::RequestDetails {
        workload_name: d.workload_name.clone(),
        use_case: Some(match &d.use_case {
            UseCase::Coding { developers, active_percent } => pb::request_details::UseCase::Coding(pb::CodingUseCase {
                developers: *developers,
                active_percent: u32::from(*active_percent),
            }),
            UseCase::Operations { workload_type, description, availability, monthly_budget } => {
                pb::request_details::UseCase::Operations(pb::OperationsUseCase {
                    workload_type: (match workload_type {
                        WorkloadType::CustomerSupport => pb::WorkloadType::CustomerSupport,
                        WorkloadType::DocumentProcessing => pb::WorkloadType::DocumentProcessing,
                        WorkloadType::Automation => pb::WorkloadType::Automation,
                        WorkloadType::InternalTool => pb::WorkloadType::InternalTool,
                        WorkloadType::Other => pb::WorkloadType::Other,
                    }) as i32,
                    description: description.clone(),
                    availability: (match availability {
                        Availability::Standard => pb::Availability::Standard,
                        Availability::HighAvailability => pb::Availability::HighAvailability,
                    }) as i32,
                    monthly_budget: Some(monthly_to_wire(monthly_budget)),
                })
            }
        }),
        priority: d.priority,
        start_date: d.start.map(|s| s.to_string()).unwrap_or_default(),
        end_date: d.end.map(|s| s.to_string()).unwrap_or_default(),
        monthly_growth_percent: d.monthly_growth_percent,
        business_case: d.business_case.as_ref().map(business_case_to_wire),
    }
}

/// A business case from the wire.
pub fn business_case(b: &pb::BusinessCase) -> BusinessCase {
    BusinessCase {
        annual_cost_saving: b.annual_cost_saving_cents.map(Cents),
        annual_revenue_driving: b.annual_revenue_driving_cents.map(Cents),
    }
}

/// The wire form of a business case.
pub fn business_case_to_wire(b: &BusinessCase) -> pb::BusinessCase {
    pb::BusinessCase {
        annual_cost_saving_cents: b.annual_cost_saving.map(|c| c.0),
        annual_revenue_driving_cents: b.annual_revenue_driving.map(|c| c.0),
    }
}

/// The parts of a review the FinOps Lead supplies (the role suffix is drawn by the server).
pub struct ReviewInput {
    /// Platform.
    pub platform: Platform,
    /// Model.
    pub model_id: ModelId,
    /// Account.
    pub account: AccountId,
    /// Region.
    pub region: Region,
    /// Actions.
    pub actions: std::collections::BTreeSet<InvokeAction>,
    /// Workspace (Claude Platform).
    pub workspace: Option<String>,
    /// MAP MPE id.
    pub map_mpe_id: Option<String>,
    /// FA Confirmed Estimate.
    pub confirmed_estimate: MonthlyAmount,
    /// The budget the workload charges, when named.
    pub budget_id: Option<Uuid>,
}

/// The default actions of an approval: invoke and converse, streaming or not.
pub const DEFAULT_ACTIONS: [InvokeAction; 4] = [
    InvokeAction::InvokeModel,
    InvokeAction::InvokeModelWithResponseStream,
    InvokeAction::Converse,
    InvokeAction::ConverseStream,
];

/// A review from the wire, with the review's own rules (DOMAIN.md §2 step 3) checked on
/// every part that could be read: `None` when anything is wrong, every fault in `fields`.
pub fn review(fields: &mut Fields, review: Option<&pb::Review>) -> Option<ReviewInput> {
    let Some(r) = review else {
        fields.add("review", "is required");
        return None;
    };
    let platform = platform(fields, "review.platform", r.platform);
    let model_id = fields.check("review.model_id", ModelId::parse(&r.model_id));
    let account = fields.check("review.account_id", AccountId::parse(&r.account_id));
    let region = fields.check("review.region", Region::parse(&r.region));
    let actions = actions(fields, "review.actions", &r.actions, &DEFAULT_ACTIONS);
    let confirmed_estimate = monthly(fields, "review.confirmed_estimate", r.confirmed_estimate.as_ref());
    let non_empty = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
    let (workspace, map_mpe_id) = (non_empty(&r.workspace), non_empty(&r.map_mpe_id));
    let budget_id = if r.budget_id.trim().is_empty() { None } else { uuid(fields, "review.budget_id", &r.budget_id) };
    let parts = finops_domain::request::ReviewParts {
        platform,
        workspace: workspace.as_deref(),
        map_mpe_id: map_mpe_id.as_deref(),
        actions: Some(&actions),
        confirmed_estimate: confirmed_estimate.as_ref(),
    };
    fields.domain("", parts.violations());
    Some(ReviewInput {
        platform: platform?,
        model_id: model_id?,
        account: account?,
        region: region?,
        actions,
        workspace,
        map_mpe_id,
        confirmed_estimate: confirmed_estimate?,
        budget_id,
    })
}

/// The wire form of a Business Request.
pub fn business_request_to_wire(id: Uuid, state: &BusinessRequest, version: u64) -> pb::BusinessRequest {
    pb::BusinessRequest {
        name: format!("businessRequests/{id}"),
        product_id: state.product_id.to_string(),
        requested_by: state.requested_by.clone(),
        status: (match state.status {
            RequestStatus::New => pb::RequestStatus::Unspecified,
            RequestStatus::Submitted => pb::RequestStatus::Submitted,
            RequestStatus::Approved => pb::RequestStatus::Approved,
            RequestStatus::Rejected => pb::RequestStatus::Rejected,
            RequestStatus::Withdrawn => pb::RequestStatus::Withdrawn,
        }) as i32,
        revision: state.revision,
        details: state.details.as_ref().map(details_to_wire),
        approval: state.approval.as_ref().map(|a| pb::Approval {
            review: Some(pb::Review {
                platform: platform_to_wire(a.review.platform) as i32,
                model_id: a.review.model_id.to_string(),
                account_id: a.review.account.to_string(),
                region: a.review.region.to_string(),
                actions: a.review.actions.iter().map(|x| action_to_wire(*x)).collect(),
                workspace: a.review.workspace.clone().unwrap_or_default(),
                map_mpe_id: a.review.map_mpe_id.clone().unwrap_or_default(),
                confirmed_estimate: Some(monthly_to_wire(&a.review.confirmed_estimate)),
                budget_id: a.review.budget_id.map(|b| b.to_string()).unwrap_or_default(),
            }),
            workload_id: a.workload_id.to_string(),
            role_name: a.role_name.to_string(),
        }),
        last_rejection: state.last_rejection.clone().unwrap_or_default(),
        version,
    }
}

/// A List call's page size: 1–1000, default 50.
pub fn page_size(fields: &mut Fields, value: i32) -> usize {
    match value {
        0 => 50,
        1..=1000 => value as usize,
        _ => {
            fields.add("page_size", format!("{value} is outside 1–1000"));
            50
        }
    }
}

/// A page from a read model, mapping a bad token to `INVALID_ARGUMENT`.
pub fn page_result(
    result: Result<finops_projections::Page, finops_projections::ReadModelError>,
) -> Result<finops_projections::Page, tonic::Status> {
    result.map_err(read_model_status)
}

/// A read model's failure as a status: a page token this server did not issue is the
/// caller's fault, anything else the database's.
pub fn read_model_status(e: finops_projections::ReadModelError) -> tonic::Status {
    match e {
        finops_projections::ReadModelError::BadPageToken(token) => {
            crate::status::invalid_argument(vec![FieldViolation::new(
                "page_token",
                format!("`{token}` is not a token this server issued"),
            )])
        }
        other => tonic::Status::unavailable(other.to_string()),
    }
}

/// Where a List or Get reads: `projector`'s live read model, or — `as_of` an instant — the
/// same projector folded over the log as it stood then.
pub async fn read_model_view(
    live: &finops_projections::ReadModels,
    store: &std::sync::Arc<dyn finops_eventlog::EventStore>,
    projector: std::sync::Arc<dyn finops_projections::Projector>,
    as_of: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<finops_projections::ReadModelView, tonic::Status> {
    finops_projections::ReadModelView::of(live, store.as_ref(), projector, as_of).await.map_err(read_model_status)
}

/// A string field of a read-model document.
pub fn text(doc: &serde_json::Value, field: &str) -> String {
    match &doc[field] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A status enum from its snake_case name.
pub fn request_status(name: &str) -> i32 {
    (match name {
        "submitted" => pb::RequestStatus::Submitted,
        "approved" => pb::RequestStatus::Approved,
        "rejected" => pb::RequestStatus::Rejected,
        "withdrawn" => pb::RequestStatus::Withdrawn,
        _ => pb::RequestStatus::Unspecified,
    }) as i32
}

/// A trail entry on the wire.
pub fn history_entry(e: &finops_projections::history::HistoryEntry) -> pb::HistoryEntry {
    let id = |u: Option<Uuid>| u.map(|u| u.to_string()).unwrap_or_default();
    pb::HistoryEntry {
        at: e.at.to_rfc3339(),
        event: e.event.clone(),
        who: e.who.clone(),
        role: e.role.clone(),
        what: e.what.clone(),
        why: e.why.clone(),
        event_id: e.event_id.to_string(),
        correlation_id: id(e.correlation_id),
        causation_id: id(e.causation_id),
        position: e.position,
        stream_version: e.stream_version,
    }
}

/// The trail a read model keeps in a document's `history` (gaps, cards, roll-ups) on the wire.
pub fn history_from_doc(doc: &serde_json::Value) -> Vec<pb::HistoryEntry> {
    doc["history"]
        .as_array()
        .map(|h| {
            h.iter()
                .map(|e| pb::HistoryEntry {
                    at: text(e, "at"),
                    event: text(e, "event"),
                    who: text(e, "who"),
                    role: text(e, "role"),
                    what: text(e, "what"),
                    why: text(e, "why"),
                    event_id: text(e, "event_id"),
                    correlation_id: text(e, "correlation_id"),
                    ..Default::default()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The document a projector folds from one stream (for answers that must not lag).
pub async fn fold_stream(
    store: &std::sync::Arc<dyn finops_eventlog::EventStore>,
    stream: &finops_eventlog::StreamId,
    projector: &dyn finops_projections::Projector,
) -> Result<serde_json::Value, tonic::Status> {
    let events =
        store.read_stream(stream, finops_eventlog::StreamRead::all()).await.map_err(crate::status::from_log)?;
    let mut docs = std::collections::BTreeMap::new();
    for event in &events {
        finops_projections::fold(projector, event, &mut docs);
    }
    // A stream's events all touch its one document.
    docs.into_values().next().map(serde_json::Value::from).ok_or_else(|| crate::status::not_found(stream.to_string()))
}

/// The ids of the workloads `owner` owns, from the workloads read model: what a Product
/// Owner's view of cards and investigations is scoped to.
pub async fn owned_workloads(
    read_models: &finops_projections::ReadModels,
    owner: &str,
) -> Result<std::collections::BTreeSet<String>, tonic::Status> {
    let mut mine = std::collections::BTreeSet::new();
    let mut token = String::new();
    loop {
        let subject = owner.to_owned();
        let page = page_result(
            read_models
                .list(finops_projections::WorkloadsView::NAME, 1000, &token, move |d| d["owner"] == subject.as_str())
                .await,
        )?;
        mine.extend(page.documents.iter().map(|d| text(d, "workload_id")));
        if page.next_page_token.is_empty() {
            return Ok(mine);
        }
        token = page.next_page_token;
    }
}
