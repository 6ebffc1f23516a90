//! `finops.v1.SpacesService`: Product Owners claim resources for their approved workloads.

use std::sync::Arc;

use chrono::{Datelike, NaiveDate, Utc};
use finops_domain::request::{BusinessRequest, RequestStatus};
use finops_domain::spaces::{ClaimCommand, ClaimableResource, ClaimedResource};
use finops_domain::tasks::Task;
use finops_domain::workload::{WorkloadCommand, WorkloadEstimate, WorkloadPlan};
use finops_eventlog::EventStore;
use finops_governance::timeline::GovernanceTimeline;
use finops_governance::{CommandHandler, Loaded, streams};
use finops_projections::{ClaimsView, ReadModels, RequestQueue, WorkloadsView};
use finops_proto::v1 as pb;
use finops_proto::v1::spaces_service_server::SpacesService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::auth::{Authenticator, Principal, Role};
use crate::kept_tables::KeptTables;
use crate::status::{from_governance, not_found};
use crate::wire::{self, Fields};

/// Every workload's forecast for the latest month with CUR.
pub(crate) struct MonthForecasts {
    /// The period.
    pub period: String,
    /// The batch read.
    pub batch: String,
    /// The last day CUR covers.
    pub through: chrono::NaiveDate,
    /// By workload.
    pub workloads: std::collections::BTreeMap<Uuid, finops_domain::spend_cards::forecast::Forecast>,
}

/// Serves Spaces.
#[derive(Clone)]
pub struct SpacesApi {
    claims: CommandHandler<ClaimableResource>,
    plans: CommandHandler<WorkloadPlan>,
    requests: CommandHandler<BusinessRequest>,
    org: CommandHandler<finops_domain::org::Organisation>,
    tasks: CommandHandler<Task>,
    store: Arc<dyn EventStore>,
    timeline: Arc<GovernanceTimeline>,
    tables: Arc<KeptTables>,
    auth: Arc<Authenticator>,
    read_models: ReadModels,
    engine: finops_attribution::AttributionEngine,
}

/// Who may read claims and workloads (a Product Owner only their own workloads').
const CLAIM_READERS: [Role; 4] = [Role::ProductOwner, Role::FinopsLead, Role::Finance, Role::Auditor];

/// Does the claim `doc` concern one of `mine` (`None`: the caller sees every claim)?
fn claim_concerns(doc: &serde_json::Value, mine: Option<&[String]>) -> bool {
    match mine {
        None => true,
        Some(mine) => doc["periods"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| mine.iter().any(|w| p["workload_id"] == w.as_str()))),
    }
}

impl SpacesApi {
    /// Serves `store`.
    pub fn new(
        store: Arc<dyn EventStore>,
        timeline: Arc<GovernanceTimeline>,
        tables: Arc<KeptTables>,
        read_models: ReadModels,
        org: CommandHandler<finops_domain::org::Organisation>,
        auth: Arc<Authenticator>,
        engine: finops_attribution::AttributionEngine,
    ) -> Self {
        Self {
            claims: CommandHandler::new(store.clone()),
            plans: CommandHandler::new(store.clone()),
            requests: CommandHandler::new(store.clone()),
            org,
            tasks: CommandHandler::new(store.clone()),
            store,
            timeline,
            tables,
            auth,
            read_models,
            engine,
        }
    }

    /// Every workload's latest month with CUR as of `instant` (`None`: no CUR then): the
    /// period, its batch and each workload's forecast, from one reading of the state and
    /// one attribution question.
    pub(crate) async fn month_forecasts(
        &self,
        instant: Option<chrono::DateTime<Utc>>,
    ) -> Result<Option<MonthForecasts>, Status> {
        use finops_attribution::{AttributionEngine, Visibility};
        let (state, key) = self.timeline.keyed_state_as_of(instant).await.map_err(from_governance)?;
        let at = instant.unwrap_or_else(Utc::now);
        let Some(period) = state.periods_with_cur(at).last().map(|p| (*p).to_owned()) else { return Ok(None) };
        let attribution = crate::status::from_attribution;
        let batch = AttributionEngine::batch_at(&state, &period, instant).map_err(attribution)?;
        let question = self
            .engine
            .question(self.tables.of(&state, key).await, batch, Visibility::Everything)
            .await
            .map_err(attribution)?;
        let found = finops_attribution::cards::month_forecasts(&question, &state).await.map_err(attribution)?;
        Ok(found.map(|(through, workloads)| MonthForecasts { period, batch: batch.hash.clone(), through, workloads }))
    }

    /// Where `workload`'s latest month with CUR stands as of `instant` (`None`: no CUR then).
    pub(crate) async fn forecast(
        &self,
        workload: Uuid,
        instant: Option<chrono::DateTime<Utc>>,
    ) -> Result<Option<pb::WorkloadForecast>, Status> {
        let Some(month) = self.month_forecasts(instant).await? else { return Ok(None) };
        let f = month
            .workloads
            .get(&workload)
            .cloned()
            .unwrap_or_else(|| finops_domain::spend_cards::forecast::forecast(&[], 0, month.through));
        Ok(Some(pb::WorkloadForecast {
            period: month.period,
            through: f.through.to_string(),
            month_to_date_cents: f.month_to_date_cents,
            month_estimate_cents: f.estimate_cents,
            burn_per_day_cents: f.burn_per_day_cents,
            projected_month_cents: f.projected_month_cents,
            crossing_date: f.crossing.map(|d| d.to_string()).unwrap_or_default(),
            crossed: f.crossed,
            batch: month.batch,
        }))
    }

    /// The workloads a Product Owner owns (`None`: the caller's role sees every claim).
    async fn own_workloads(&self, principal: &Principal) -> Result<Option<Vec<String>>, Status> {
        if principal.role != Role::ProductOwner {
            return Ok(None);
        }
        let mut workloads = Vec::new();
        let mut token = String::new();
        loop {
            let page = wire::page_result(
                self.read_models
                    .list(RequestQueue::NAME, 1000, &token, |d| d["requested_by"] == principal.subject.as_str())
                    .await,
            )?;
            workloads.extend(page.documents.iter().map(|d| wire::text(d, "workload_id")).filter(|w| !w.is_empty()));
            if page.next_page_token.is_empty() {
                return Ok(Some(workloads));
            }
            token = page.next_page_token;
        }
    }

    /// May `principal` read the claim of `key` (as ListClaims would show it)? NOT_FOUND
    /// when it does not exist or is not theirs to see.
    pub(crate) async fn claim_visible(&self, principal: &Principal, key: &str) -> Result<(), Status> {
        principal.require(&CLAIM_READERS, "read claims")?;
        // From the claim's own stream: a claim just made is visible at once (the read
        // model may not have folded it yet).
        let claim = self.claims.load(&streams::claim(key)).await.map_err(from_governance)?.state;
        let mine = self.own_workloads(principal).await?;
        let concerns =
            mine.as_ref().is_none_or(|mine| claim.periods.iter().any(|p| mine.contains(&p.workload_id.to_string())));
        if claim.resource.is_some() && concerns { Ok(()) } else { Err(not_found(format!("claims/{key}"))) }
    }

    /// May `principal` read the workload `id` (as ListWorkloads would show it)?
    pub(crate) async fn workload_visible(&self, principal: &Principal, id: Uuid) -> Result<(), Status> {
        principal.require(&CLAIM_READERS, "read workloads")?;
        let doc = self
            .read_models
            .get(WorkloadsView::NAME, &id.to_string())
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        match doc {
            Some(doc) if principal.role != Role::ProductOwner || doc["owner"] == principal.subject.as_str() => Ok(()),
            _ => Err(not_found(format!("workloads/{id}"))),
        }
    }

    /// Decides a command on the plan of the caller's approved workload.
    async fn plan_workload(
        &self,
        principal: &Principal,
        fingerprint: &str,
        id: Uuid,
        request_id: Uuid,
        command: WorkloadCommand,
    ) -> Result<Response<pb::Workload>, Status> {
        let request = self.owned_approved(principal, id).await?;
        let workload = request.approval.as_ref().expect("approved").workload_id;
        let plan = self
            .plans
            .execute(&streams::workload(workload), &command, &principal.context(fingerprint, request_id, None))
            .await
            .map_err(from_governance)?;
        Ok(Response::new(workload_to_wire(id, &request, &plan)))
    }

    /// The caller's approved request, read from the log.
    async fn owned_approved(&self, principal: &Principal, id: Uuid) -> Result<BusinessRequest, Status> {
        let loaded = self.requests.load(&streams::business_request(id)).await.map_err(from_governance)?;
        let state = loaded.state;
        if state.status == RequestStatus::New {
            return Err(not_found(format!("businessRequests/{id}")));
        }
        if state.requested_by != principal.subject {
            return Err(Status::permission_denied(format!(
                "businessRequests/{id} belongs to another Product Owner; claim for your own workloads"
            )));
        }
        if state.status != RequestStatus::Approved {
            return Err(Status::failed_precondition(format!(
                "businessRequests/{id} is not approved: only an approved workload can claim"
            )));
        }
        Ok(state)
    }
}

fn workload_to_wire(request_id: Uuid, request: &BusinessRequest, plan: &Loaded<WorkloadPlan>) -> pb::Workload {
    let approval = request.approval.as_ref().expect("approved");
    pb::Workload {
        workload_id: approval.workload_id.to_string(),
        business_request: format!("businessRequests/{request_id}"),
        name: request.details.as_ref().map(|d| d.workload_name.clone()).unwrap_or_default(),
        owner: request.requested_by.clone(),
        role_name: approval.role_name.to_string(),
        estimate: plan.state.estimate.as_ref().map(estimate_to_wire),
        business_case: plan.state.business_case.as_ref().map(wire::business_case_to_wire),
        version: plan.version,
        budget_id: plan
            .state
            .budget_changes
            .last()
            .map(|(_, b)| *b)
            .or(approval.review.budget_id)
            .map(|b| b.to_string())
            .unwrap_or_default(),
        forecast: None,
    }
}

/// A workloads read-model document on the wire (no forecast: GetWorkload adds it).
fn workload_doc_to_wire(d: &serde_json::Value) -> pb::Workload {
    pb::Workload {
        workload_id: wire::text(d, "workload_id"),
        business_request: wire::text(d, "business_request"),
        name: wire::text(d, "name"),
        owner: wire::text(d, "owner"),
        role_name: wire::text(d, "role_name"),
        estimate: serde_json::from_value::<WorkloadEstimate>(d["estimate"].clone()).ok().as_ref().map(estimate_to_wire),
        business_case: serde_json::from_value::<finops_domain::request::BusinessCase>(d["business_case"].clone())
            .ok()
            .as_ref()
            .map(wire::business_case_to_wire),
        version: 0,
        budget_id: wire::text(d, "budget_id"),
        forecast: None,
    }
}

fn estimate_to_wire(e: &WorkloadEstimate) -> pb::WorkloadEstimate {
    pb::WorkloadEstimate {
        monthly: Some(wire::monthly_to_wire(&e.monthly)),
        start_date: e.start.map(|d| d.to_string()).unwrap_or_default(),
        end_date: e.end.map(|d| d.to_string()).unwrap_or_default(),
        monthly_growth_percent: e.monthly_growth_percent,
    }
}

fn to_wire(key: &str, loaded: &Loaded<ClaimableResource>) -> pb::Claim {
    let current = loaded.state.current();
    pb::Claim {
        name: format!("claims/{key}"),
        status: match (current, loaded.state.periods.is_empty()) {
            (Some(_), _) => "claimed",
            (None, true) => "reserved",
            (None, false) => "released",
        }
        .to_owned(),
        reserved_for: loaded.state.reserved_for.map(|w| w.to_string()).unwrap_or_default(),
        workload_id: current.map(|p| p.workload_id.to_string()).unwrap_or_default(),
        periods: loaded
            .state
            .periods
            .iter()
            .map(|p| pb::ClaimPeriod {
                workload_id: p.workload_id.to_string(),
                from: p.from.to_string(),
                until: p.until.map(|u| u.to_string()).unwrap_or_default(),
            })
            .collect(),
        version: loaded.version,
    }
}

/// The resource a claim names: a role (name with account, or ARN), a guardrail ARN or a
/// workspace; exactly one.
fn claimed(
    fields: &mut Fields,
    role: Option<&pb::IamRoleRef>,
    guardrail_arn: Option<&str>,
    workspace: Option<&str>,
) -> Option<ClaimedResource> {
    match (role, guardrail_arn, workspace) {
        (Some(r), _, _) => fields.check("role", ClaimedResource::role(&r.account_id, &r.role_name_or_arn)),
        (_, Some(arn), _) => fields.check("guardrail_arn", ClaimedResource::guardrail(arn)),
        (_, _, Some(name)) if !name.trim().is_empty() => {
            Some(ClaimedResource::Workspace { name: name.trim().to_owned() })
        }
        _ => {
            fields.add("resource", "is required: a role, a guardrail ARN or a workspace");
            None
        }
    }
}

/// A claim's first day: as given, or the first day of the current billing period (UTC).
fn effective_from(fields: &mut Fields, text: &str) -> Option<NaiveDate> {
    if text.trim().is_empty() {
        let today = Utc::now().date_naive();
        NaiveDate::from_ymd_opt(today.year(), today.month(), 1)
    } else {
        parse_date(fields, "effective_from", text)
    }
}

fn parse_date(fields: &mut Fields, field: &str, text: &str) -> Option<NaiveDate> {
    fields.check(
        field,
        NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| format!("`{text}` is not a date (YYYY-MM-DD)")),
    )
}

#[tonic::async_trait]
impl SpacesService for SpacesApi {
    #[tracing::instrument(skip_all)]
    async fn claim_resource(&self, request: Request<pb::ClaimResourceRequest>) -> Result<Response<pb::Claim>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&[Role::ProductOwner], "claim resources")?;
        let body = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&body);
        let mut fields = Fields::default();
        let id = wire::business_request_name(&mut fields, &body.business_request);
        let resource = match &body.resource {
            Some(pb::claim_resource_request::Resource::Role(r)) => claimed(&mut fields, Some(r), None, None),
            Some(pb::claim_resource_request::Resource::GuardrailArn(arn)) => {
                claimed(&mut fields, None, Some(arn), None)
            }
            Some(pb::claim_resource_request::Resource::Workspace(name)) => claimed(&mut fields, None, None, Some(name)),
            None => claimed(&mut fields, None, None, None),
        };
        let effective_from = effective_from(&mut fields, &body.effective_from);
        let request_id = wire::request_id(&mut fields, &body.request_id);
        fields.finish()?;
        let (Some(id), Some(resource), Some(effective_from)) = (id, resource, effective_from) else {
            unreachable!("fields checked")
        };
        let request = self.owned_approved(&principal, id).await?;
        let approval = request.approval.as_ref().expect("approved requests carry their approval");
        // The generated role (or Coding permission set) exists only once the Cloud Engineer
        // has implemented its access task; until the task exists, it certainly does not.
        let generated = finops_domain::spaces::generated_for(&request);
        if matches!(resource, ClaimedResource::IamRole { .. })
            && generated.contains(&resource)
            && let Some((task_id, _)) = finops_domain::tasks::access_task(&request)
        {
            let task = self.tasks.load(&streams::task(task_id)).await.map_err(from_governance)?;
            let ClaimedResource::IamRole { role_name, .. } = &resource else { unreachable!("matched above") };
            if task.state.plan.is_none() {
                return Err(Status::failed_precondition(format!(
                    "role {role_name} cannot exist yet: tasks/{task_id} has not been created (the approval's tasks are being generated)"
                )));
            }
            if task.state.implemented_at.is_none() {
                return Err(Status::failed_precondition(format!(
                    "role {role_name} is not implemented yet: tasks/{task_id} must be marked implemented first"
                )));
            }
        }
        let key = resource.key();
        let command = ClaimCommand::Claim {
            resource,
            workload_id: approval.workload_id,
            effective_from,
            by: principal.subject.clone(),
            at: Utc::now(),
        };
        let loaded = self
            .claims
            .execute(&streams::claim(&key), &command, &principal.context(&fingerprint, request_id, None))
            .await
            .map_err(from_governance)?;
        Ok(Response::new(to_wire(&key, &loaded)))
    }

    #[tracing::instrument(skip_all)]
    async fn reassign_resource(
        &self,
        request: Request<pb::ReassignResourceRequest>,
    ) -> Result<Response<pb::Claim>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&[Role::FinopsLead], "reassign resources")?;
        let body = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&body);
        let mut fields = Fields::default();
        let id = wire::business_request_name(&mut fields, &body.business_request);
        let resource = match &body.resource {
            Some(pb::reassign_resource_request::Resource::Role(r)) => claimed(&mut fields, Some(r), None, None),
            Some(pb::reassign_resource_request::Resource::GuardrailArn(arn)) => {
                claimed(&mut fields, None, Some(arn), None)
            }
            Some(pb::reassign_resource_request::Resource::Workspace(name)) => {
                claimed(&mut fields, None, None, Some(name))
            }
            None => claimed(&mut fields, None, None, None),
        };
        let effective_from = effective_from(&mut fields, &body.effective_from);
        fields.domain("", finops_domain::rationale_violations(&body.rationale));
        let request_id = wire::request_id(&mut fields, &body.request_id);
        fields.finish()?;
        let (Some(id), Some(resource), Some(effective_from)) = (id, resource, effective_from) else {
            unreachable!("fields checked")
        };
        let target = self.requests.load(&streams::business_request(id)).await.map_err(from_governance)?.state;
        let Some(approval) = target.approval.as_ref() else {
            return Err(Status::failed_precondition(format!(
                "businessRequests/{id} is not approved: only an approved workload can take a resource"
            )));
        };
        let key = resource.key();
        let command = ClaimCommand::Reassign {
            resource,
            workload_id: approval.workload_id,
            effective_from,
            by: principal.subject.clone(),
            rationale: body.rationale.clone(),
            at: Utc::now(),
        };
        let loaded = self
            .claims
            .execute(
                &streams::claim(&key),
                &command,
                &principal.context(&fingerprint, request_id, Some(body.rationale)),
            )
            .await
            .map_err(from_governance)?;
        Ok(Response::new(to_wire(&key, &loaded)))
    }

    #[tracing::instrument(skip_all)]
    async fn release_resource(
        &self,
        request: Request<pb::ReleaseResourceRequest>,
    ) -> Result<Response<pb::Claim>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&[Role::ProductOwner, Role::FinopsLead], "release claims")?;
        let body = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&body);
        let mut fields = Fields::default();
        let key = match body.name.strip_prefix("claims/") {
            Some(k) if !k.is_empty() => Some(k.to_owned()),
            _ => {
                fields.add("name", format!("`{}` is not a claim name (claims/{{resource key}})", body.name));
                None
            }
        };
        let until = parse_date(&mut fields, "effective_until", &body.effective_until);
        fields.domain("", finops_domain::rationale_violations(&body.rationale));
        let request_id = wire::request_id(&mut fields, &body.request_id);
        fields.finish()?;
        let (Some(key), Some(until)) = (key, until) else { unreachable!("fields checked") };
        let stream = streams::claim(&key);
        let current = self.claims.load(&stream).await.map_err(from_governance)?;
        let Some(holder) = current.state.current().map(|p| p.workload_id) else {
            return Err(match current.state.resource {
                None => not_found(format!("claims/{key}")),
                Some(_) => Status::failed_precondition(format!("claims/{key} is not claimed")),
            });
        };
        if principal.role == Role::ProductOwner {
            let owns = self.read_models.list(RequestQueue::NAME, 1, "", |d| {
                d["workload_id"] == holder.to_string().as_str() && d["requested_by"] == principal.subject.as_str()
            });
            if wire::page_result(owns.await)?.documents.is_empty() {
                return Err(Status::permission_denied(format!("claims/{key} is held by a workload that is not yours")));
            }
        }
        let command = ClaimCommand::Release {
            effective_until: until,
            by: principal.subject.clone(),
            rationale: body.rationale.clone(),
            at: Utc::now(),
        };
        let loaded = self
            .claims
            .execute(&stream, &command, &principal.context(&fingerprint, request_id, Some(body.rationale)))
            .await
            .map_err(from_governance)?;
        Ok(Response::new(to_wire(&key, &loaded)))
    }

    #[tracing::instrument(skip_all)]
    async fn list_claims(
        &self,
        request: Request<pb::ListClaimsRequest>,
    ) -> Result<Response<pb::ListClaimsResponse>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&CLAIM_READERS, "list claims")?;
        let body = request.into_inner();
        let mut fields = Fields::default();
        let page_size = wire::page_size(&mut fields, body.page_size);
        let as_of = wire::as_of(&mut fields, &body.as_of);
        fields.finish()?;
        // A Product Owner sees the claims of their own workloads (whose owner never changes).
        let own_workloads = self.own_workloads(&principal).await?;
        let keep = move |doc: &serde_json::Value| claim_concerns(doc, own_workloads.as_deref());
        let view = wire::read_model_view(&self.read_models, &self.store, Arc::new(ClaimsView), as_of).await?;
        let page = wire::page_result(view.list(ClaimsView::NAME, page_size, &body.page_token, keep).await)?;
        let claims = page
            .documents
            .iter()
            .map(|d| pb::Claim {
                name: format!("claims/{}", wire::text(d, "key")),
                status: wire::text(d, "status"),
                workload_id: wire::text(d, "workload_id"),
                periods: d["periods"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .map(|p| pb::ClaimPeriod {
                                workload_id: wire::text(p, "workload_id"),
                                from: wire::text(p, "from"),
                                until: wire::text(p, "until"),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                version: d["version"].as_u64().unwrap_or(0),
                reserved_for: wire::text(d, "reserved_for"),
            })
            .collect();
        Ok(Response::new(pb::ListClaimsResponse { claims, next_page_token: page.next_page_token }))
    }

    #[tracing::instrument(skip_all)]
    async fn set_workload_estimate(
        &self,
        request: Request<pb::SetWorkloadEstimateRequest>,
    ) -> Result<Response<pb::Workload>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&[Role::ProductOwner], "state workload estimates")?;
        let body = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&body);
        let mut fields = Fields::default();
        let id = wire::business_request_name(&mut fields, &body.business_request);
        let estimate = match &body.estimate {
            None => {
                fields.add("estimate", "is required");
                None
            }
            Some(e) => {
                let monthly = wire::monthly(&mut fields, "estimate.monthly", e.monthly.as_ref());
                let start = wire::date(&mut fields, "estimate.start_date", &e.start_date);
                let end = wire::date(&mut fields, "estimate.end_date", &e.end_date);
                // A placeholder for an unreadable amount lets the other rules be checked;
                // `fields` already refuses the request then.
                let estimate = WorkloadEstimate {
                    monthly: monthly.unwrap_or(finops_domain::vocabulary::MonthlyAmount::Dollars(
                        finops_domain::vocabulary::Cents(1),
                    )),
                    start,
                    end,
                    monthly_growth_percent: e.monthly_growth_percent,
                };
                fields.domain_result("", estimate.validate());
                Some(estimate)
            }
        };
        let request_id = wire::request_id(&mut fields, &body.request_id);
        fields.finish()?;
        let (Some(id), Some(estimate)) = (id, estimate) else { unreachable!("fields checked") };
        let command = WorkloadCommand::SetEstimate { estimate, by: principal.subject.clone(), at: Utc::now() };
        self.plan_workload(&principal, &fingerprint, id, request_id, command).await
    }

    #[tracing::instrument(skip_all)]
    async fn change_workload_budget(
        &self,
        request: Request<pb::ChangeWorkloadBudgetRequest>,
    ) -> Result<Response<pb::Workload>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&[Role::FinopsLead], "change the budget a workload charges")?;
        let body = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&body);
        let mut fields = Fields::default();
        let id = wire::business_request_name(&mut fields, &body.business_request);
        let budget_id = wire::uuid(&mut fields, "budget_id", &body.budget_id);
        let effective_from = parse_date(&mut fields, "effective_from", &body.effective_from);
        fields.domain("", finops_domain::rationale_violations(&body.rationale));
        let request_id = wire::request_id(&mut fields, &body.request_id);
        fields.finish()?;
        let (Some(id), Some(budget_id), Some(effective_from)) = (id, budget_id, effective_from) else {
            unreachable!("fields checked")
        };
        let request = self.requests.load(&streams::business_request(id)).await.map_err(from_governance)?.state;
        let Some(approval) = request.approval.as_ref() else {
            return Err(Status::failed_precondition(format!(
                "businessRequests/{id} is not approved: only an approved workload charges a budget"
            )));
        };
        let org = self.org.load(&streams::organisation()).await.map_err(from_governance)?.state;
        let command = WorkloadCommand::ChangeBudget {
            budget_id,
            effective_from,
            account_budgets: org.budgets_of(&approval.review.account).into_iter().map(|(b, _)| b).collect(),
            account: approval.review.account.clone(),
            by: principal.subject.clone(),
            rationale: body.rationale.clone(),
            at: Utc::now(),
        };
        let plan = self
            .plans
            .execute(
                &streams::workload(approval.workload_id),
                &command,
                &principal.context(&fingerprint, request_id, Some(body.rationale)),
            )
            .await
            .map_err(from_governance)?;
        Ok(Response::new(workload_to_wire(id, &request, &plan)))
    }

    #[tracing::instrument(skip_all)]
    async fn declare_business_case(
        &self,
        request: Request<pb::DeclareBusinessCaseRequest>,
    ) -> Result<Response<pb::Workload>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&[Role::ProductOwner], "declare business cases")?;
        let body = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&body);
        let mut fields = Fields::default();
        let id = wire::business_request_name(&mut fields, &body.business_request);
        let request_id = wire::request_id(&mut fields, &body.request_id);
        if body.business_case.is_none() {
            fields.add("business_case", "is required");
        }
        fields.finish()?;
        let id = id.expect("checked");
        let case = wire::business_case(body.business_case.as_ref().expect("checked"));
        let command = WorkloadCommand::DeclareBusinessCase { case, by: principal.subject.clone(), at: Utc::now() };
        self.plan_workload(&principal, &fingerprint, id, request_id, command).await
    }

    #[tracing::instrument(skip_all)]
    async fn list_workloads(
        &self,
        request: Request<pb::ListWorkloadsRequest>,
    ) -> Result<Response<pb::ListWorkloadsResponse>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&CLAIM_READERS, "list workloads")?;
        let body = request.into_inner();
        let mut fields = Fields::default();
        let page_size = wire::page_size(&mut fields, body.page_size);
        let as_of = wire::as_of(&mut fields, &body.as_of);
        fields.finish()?;
        let view = wire::read_model_view(&self.read_models, &self.store, Arc::new(WorkloadsView), as_of).await?;
        let own_only = principal.role == Role::ProductOwner;
        let subject = principal.subject.clone();
        let keep = move |d: &serde_json::Value| !own_only || d["owner"] == subject.as_str();
        let page = wire::page_result(view.list(WorkloadsView::NAME, page_size, &body.page_token, keep).await)?;
        let workloads = page.documents.iter().map(workload_doc_to_wire).collect();
        Ok(Response::new(pb::ListWorkloadsResponse { workloads, next_page_token: page.next_page_token }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_workload(&self, request: Request<pb::GetWorkloadRequest>) -> Result<Response<pb::Workload>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&CLAIM_READERS, "read workloads")?;
        let body = request.into_inner();
        let mut fields = Fields::default();
        let name = body.name.trim();
        let id = wire::uuid(&mut fields, "name", name.strip_prefix("workloads/").unwrap_or(name));
        let as_of = wire::as_of(&mut fields, &body.as_of);
        fields.finish()?;
        let id = id.expect("checked");
        let view = wire::read_model_view(&self.read_models, &self.store, Arc::new(WorkloadsView), as_of).await?;
        let doc = view.get(WorkloadsView::NAME, &id.to_string()).await.map_err(wire::read_model_status)?;
        // Another Product Owner's workload is not there for them, as in ListWorkloads.
        let doc = doc
            .filter(|d| principal.role != Role::ProductOwner || d["owner"] == principal.subject.as_str())
            .ok_or_else(|| not_found(format!("workloads/{id}")))?;
        let mut workload = workload_doc_to_wire(&doc);
        workload.forecast = self.forecast(id, as_of).await?;
        Ok(Response::new(workload))
    }
}
