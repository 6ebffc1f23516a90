//! `finops.v1.WorkloadControlService`: the kill switch (DOMAIN.md §9, issue 13.4). Thin:
//! authorise, parse, read the governance state for the workload and its suspension plan,
//! decide through the [`WorkloadControl`] aggregate. The AWS calls are run by the enforcer
//! process (automatic enforcement) or handed to a person (manual), never here.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use finops_domain::governance_state::{ApprovedWorkload, GovernanceState};
use finops_domain::kill_switch::{
    ControlAction, ControlCommand, ControlDecision, ControlStatus, Enforcement, WorkloadControl, suspension_plan,
};
use finops_eventlog::EventStore;
use finops_governance::timeline::GovernanceTimeline;
use finops_governance::{CommandHandler, streams};
use finops_projections::{InvestigationsView, ReadModels};
use finops_proto::v1 as pb;
use finops_proto::v1::workload_control_service_server::WorkloadControlService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::auth::{Authenticator, Principal, Role};
use crate::status::{from_governance, not_found};
use crate::wire::{self, Fields};

/// Who may suspend (a Product Owner only their own workloads).
const SUSPENDERS: [Role; 2] = [Role::ProductOwner, Role::FinopsLead];

/// Who may read a workload's control status (a Product Owner only their own).
const READERS: [Role; 5] = [Role::ProductOwner, Role::FinopsLead, Role::Finance, Role::Auditor, Role::Operator];

/// Serves the kill switch.
#[derive(Clone)]
pub struct WorkloadControlApi {
    store: Arc<dyn EventStore>,
    timeline: Arc<GovernanceTimeline>,
    read_models: ReadModels,
    controls: CommandHandler<WorkloadControl>,
    auth: Arc<Authenticator>,
    enforcement: Enforcement,
}

impl WorkloadControlApi {
    /// The kill switch over `store`; decisions are enforced as `enforcement` says (automatic
    /// when the server has an enforcer with AWS credentials).
    pub fn new(
        store: Arc<dyn EventStore>,
        timeline: Arc<GovernanceTimeline>,
        read_models: ReadModels,
        auth: Arc<Authenticator>,
        enforcement: Enforcement,
    ) -> Self {
        Self { controls: CommandHandler::new(store.clone()), store, timeline, read_models, auth, enforcement }
    }

    /// The workload's investigations not closed at `as_of`: (name, assigned).
    async fn investigations(
        &self,
        workload_id: Uuid,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<Vec<(String, bool)>, Status> {
        let view = wire::read_model_view(&self.read_models, &self.store, Arc::new(InvestigationsView), as_of).await?;
        let id = workload_id.to_string();
        let keep =
            move |d: &serde_json::Value| wire::text(d, "workload_id") == id && wire::text(d, "status") != "closed";
        let page = wire::page_result(view.list(InvestigationsView::NAME, 1000, "", keep).await)?;
        Ok(page.documents.iter().map(|d| (wire::text(d, "name"), wire::text(d, "status") == "investigating")).collect())
    }

    /// The workload `text` names (`workloads/{uuid}`, a bare uuid, or its name), as
    /// `principal` may see it at `as_of`: a Product Owner sees only theirs.
    async fn workload(
        &self,
        principal: &Principal,
        text: &str,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<(GovernanceState, ApprovedWorkload), Status> {
        let state = self.timeline.state_as_of(as_of).await.map_err(from_governance)?;
        let text = text.trim();
        let id = Uuid::parse_str(text.strip_prefix("workloads/").unwrap_or(text)).ok();
        let found = state
            .workloads()
            .into_iter()
            .filter(|w| principal.role != Role::ProductOwner || w.owner == principal.subject)
            .find(|w| Some(w.workload_id) == id || w.name.eq_ignore_ascii_case(text));
        match found {
            Some(w) => Ok((state, w)),
            None if principal.role == Role::ProductOwner => {
                Err(not_found(format!("workload `{text}` among {}'s workloads", principal.subject)))
            }
            None => Err(not_found(format!("workload `{text}`"))),
        }
    }

    /// The status as it stands (or stood at `as_of`).
    async fn status(
        &self,
        workload: &ApprovedWorkload,
        as_of: Option<DateTime<Utc>>,
    ) -> Result<pb::WorkloadControlStatus, Status> {
        let stream = streams::kill_switch(workload.workload_id);
        let control = self.controls.load_as_of(&stream, as_of).await.map_err(from_governance)?.state;
        let investigations = self.investigations(workload.workload_id, as_of).await?;
        Ok(status_to_wire(workload, &control, &investigations))
    }

    /// Suspend or resume, as `principal`.
    async fn decide(
        &self,
        principal: &Principal,
        fingerprint: &str,
        workload: &str,
        rationale: &str,
        request_id: &str,
        action: ControlAction,
    ) -> Result<Response<pb::WorkloadControlStatus>, Status> {
        let mut fields = Fields::default();
        if workload.trim().is_empty() {
            fields.add("workload", "is required: workloads/{uuid} or the workload's name");
        }
        fields.domain("", finops_domain::rationale_violations(rationale));
        let request_id = wire::request_id(&mut fields, request_id);
        fields.finish()?;
        let (state, workload) = self.workload(principal, workload, None).await?;
        let decider = principal.decider(rationale);
        let command = match action {
            ControlAction::Suspend => {
                let plan = suspension_plan(&state, workload.workload_id)
                    .map_err(|e| from_governance(finops_governance::GovernanceError::Refused(e)))?;
                ControlCommand::Suspend {
                    workload_id: workload.workload_id,
                    plan,
                    enforcement: self.enforcement,
                    decider,
                }
            }
            ControlAction::Resume => ControlCommand::Resume { enforcement: self.enforcement, decider },
        };
        let context = principal.context(fingerprint, request_id, Some(rationale.to_owned()));
        let stream = streams::kill_switch(workload.workload_id);
        let control = self.controls.execute(&stream, &command, &context).await.map_err(from_governance)?.state;
        let investigations = self.investigations(workload.workload_id, None).await?;
        Ok(Response::new(status_to_wire(&workload, &control, &investigations)))
    }
}

fn decision_to_wire(d: &ControlDecision) -> pb::ControlDecision {
    let latest = d.attempts.last().map(|(_, outcomes, _)| outcomes);
    let calls = d
        .calls
        .iter()
        .enumerate()
        .map(|(i, call)| {
            let outcome = latest.and_then(|o| o.iter().find(|o| o.call == i));
            let (result, detail) = match (d.enforcement, outcome) {
                (Enforcement::Manual, _) => ("manual", String::new()),
                (Enforcement::Automatic, None) => ("pending", String::new()),
                (Enforcement::Automatic, Some(o)) if o.ok => ("done", o.detail.clone()),
                (Enforcement::Automatic, Some(o)) => ("failed", o.detail.clone()),
            };
            pb::AwsCallStatus {
                action: call.action().to_owned(),
                account: call.account().to_string(),
                role_name: call.role_name().to_owned(),
                command: call.cli().render(),
                result: result.to_owned(),
                detail,
            }
        })
        .collect();
    pb::ControlDecision {
        decision: d.decision,
        action: match d.action {
            ControlAction::Suspend => "suspend",
            ControlAction::Resume => "resume",
        }
        .to_owned(),
        enforcement: match d.enforcement {
            Enforcement::Automatic => "automatic",
            Enforcement::Manual => "manual",
        }
        .to_owned(),
        decided_by: d.decider.by.clone(),
        role: d.decider.role.clone(),
        rationale: d.decider.rationale.clone(),
        decided_at: d.decider.at.to_rfc3339(),
        calls,
        not_covered: d.not_covered.clone(),
        attempts: d.attempts.len() as u32,
        last_error: d.last_error().unwrap_or_default(),
        applied: !d.pending(),
    }
}

/// The status: the kill switch's, unless the workload runs (active or resumed) with an
/// investigation not closed — then alerting, or investigating once one is assigned.
fn status_to_wire(
    workload: &ApprovedWorkload,
    control: &WorkloadControl,
    investigations: &[(String, bool)],
) -> pb::WorkloadControlStatus {
    let status = match control.status() {
        ControlStatus::Active | ControlStatus::Resumed if investigations.iter().any(|(_, assigned)| *assigned) => {
            "investigating"
        }
        ControlStatus::Active | ControlStatus::Resumed if !investigations.is_empty() => "alerting",
        other => other.as_str(),
    };
    pb::WorkloadControlStatus {
        workload: format!("workloads/{}", workload.workload_id),
        workload_name: workload.name.clone(),
        status: status.to_owned(),
        decisions: control.decisions.iter().map(decision_to_wire).collect(),
        investigations: investigations.iter().map(|(name, _)| name.clone()).collect(),
    }
}

#[tonic::async_trait]
impl WorkloadControlService for WorkloadControlApi {
    #[tracing::instrument(skip_all)]
    async fn suspend_workload(
        &self,
        request: Request<pb::SuspendWorkloadRequest>,
    ) -> Result<Response<pb::WorkloadControlStatus>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&SUSPENDERS, "suspend workloads")?;
        let body = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&body);
        self.decide(&principal, &fingerprint, &body.workload, &body.rationale, &body.request_id, ControlAction::Suspend)
            .await
    }

    #[tracing::instrument(skip_all)]
    async fn resume_workload(
        &self,
        request: Request<pb::ResumeWorkloadRequest>,
    ) -> Result<Response<pb::WorkloadControlStatus>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&[Role::FinopsLead], "resume workloads")?;
        let body = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&body);
        self.decide(&principal, &fingerprint, &body.workload, &body.rationale, &body.request_id, ControlAction::Resume)
            .await
    }

    #[tracing::instrument(skip_all)]
    async fn get_workload_control(
        &self,
        request: Request<pb::GetWorkloadControlRequest>,
    ) -> Result<Response<pb::WorkloadControlStatus>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&READERS, "read workload control status")?;
        let body = request.into_inner();
        let mut fields = Fields::default();
        if body.workload.trim().is_empty() {
            fields.add("workload", "is required: workloads/{uuid} or the workload's name");
        }
        let as_of = wire::as_of(&mut fields, &body.as_of);
        fields.finish()?;
        let (_, workload) = self.workload(&principal, &body.workload, as_of).await?;
        Ok(Response::new(self.status(&workload, as_of).await?))
    }
}
