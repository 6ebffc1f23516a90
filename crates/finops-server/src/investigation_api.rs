//! `finops.v1.InvestigationService` (DOMAIN.md §9, issue 13.3): investigations opened by
//! the detector, read from their read model (or folded as of an instant), and the people's
//! steps — assign, note, link to a gap, close — decided by the [`Investigation`] aggregate.

use std::collections::BTreeSet;
use std::sync::Arc;

use finops_domain::investigations::{Investigation, InvestigationCommand};
use finops_eventlog::EventStore;
use finops_governance::{CommandHandler, streams};
use finops_projections::{InvestigationsView, ReadModelView, ReadModels};
use finops_proto::v1 as pb;
use finops_proto::v1::investigation_service_server::InvestigationService;
use serde_json::Value;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::auth::{Authenticator, Principal, Role};
use crate::status::{from_governance, not_found};
use crate::wire::{self, Fields};

/// Who may read investigations (a Product Owner only theirs, see [`Sight`]).
const READERS: [Role; 5] = [Role::ProductOwner, Role::FinopsLead, Role::Finance, Role::Auditor, Role::Operator];

/// Serves investigations.
#[derive(Clone)]
pub struct InvestigationApi {
    store: Arc<dyn EventStore>,
    read_models: ReadModels,
    investigations: CommandHandler<Investigation>,
    auth: Arc<Authenticator>,
}

/// Which investigations a caller sees: everything, or a Product Owner's — on their
/// workloads, or assigned to them.
enum Sight {
    Everything,
    Own { subject: String, workloads: BTreeSet<String> },
}

impl Sight {
    fn sees(&self, doc: &Value) -> bool {
        match self {
            Self::Everything => true,
            Self::Own { subject, workloads } => {
                workloads.contains(&wire::text(doc, "workload_id")) || wire::text(doc, "owner") == *subject
            }
        }
    }
}

fn name(fields: &mut Fields, text: &str) -> Option<Uuid> {
    match text.trim().strip_prefix("investigations/") {
        Some(id) => wire::uuid(fields, "name", id),
        None => {
            fields.add("name", format!("`{text}` is not an investigation name (investigations/{{uuid}})"));
            None
        }
    }
}

fn texts(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

fn to_wire(doc: &Value, with_history: bool) -> pb::Investigation {
    let e = &doc["evidence"];
    pb::Investigation {
        name: wire::text(doc, "name"),
        signal: wire::text(doc, "signal"),
        subject: wire::text(doc, "subject"),
        account: wire::text(doc, "account"),
        workload_id: wire::text(doc, "workload_id"),
        summary: wire::text(doc, "summary"),
        status: wire::text(doc, "status"),
        owner: wire::text(doc, "owner"),
        opened_at: wire::text(doc, "opened_at"),
        evidence: Some(pb::InvestigationEvidence {
            day: wire::text(e, "day"),
            days: texts(&e["days"]),
            observed_cents: e["observed_cents"].as_i64().unwrap_or(0),
            baseline_cents: e["baseline_cents"].as_i64().unwrap_or(0),
            principals: texts(&e["principals"]),
            models: texts(&e["models"]),
            hours: texts(&e["hours"]),
        }),
        notes: doc["notes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|n| pb::InvestigationNote {
                note: wire::text(n, "note"),
                by: wire::text(n, "by"),
                at: wire::text(n, "at"),
            })
            .collect(),
        gaps: texts(&doc["gaps"]),
        history: if with_history { wire::history_from_doc(doc) } else { vec![] },
    }
}

impl InvestigationApi {
    /// Investigations of `store`, listed from `read_models`.
    pub fn new(store: Arc<dyn EventStore>, read_models: ReadModels, auth: Arc<Authenticator>) -> Self {
        Self { investigations: CommandHandler::new(store.clone()), store, read_models, auth }
    }

    async fn sight(&self, principal: &Principal) -> Result<Sight, Status> {
        principal.require(&READERS, "read investigations")?;
        if principal.role != Role::ProductOwner {
            return Ok(Sight::Everything);
        }
        let workloads = wire::owned_workloads(&self.read_models, &principal.subject).await?;
        Ok(Sight::Own { subject: principal.subject.clone(), workloads })
    }

    /// The investigation as the caller may see it (NOT_FOUND otherwise), as of an instant.
    async fn visible(
        &self,
        principal: &Principal,
        id: Uuid,
        as_of: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Value, Status> {
        let sight = self.sight(principal).await?;
        let view: ReadModelView =
            wire::read_model_view(&self.read_models, &self.store, Arc::new(InvestigationsView), as_of).await?;
        let doc = view.get(InvestigationsView::NAME, &id.to_string()).await.map_err(wire::read_model_status)?;
        doc.filter(|d| sight.sees(d)).ok_or_else(|| not_found(format!("investigations/{id}")))
    }

    /// A person's step on investigation `id`: `who` may take it (the FinOps Lead, and for
    /// notes and closing the owner too); answered from its stream, so it never lags.
    async fn decide(
        &self,
        principal: &Principal,
        fingerprint: &str,
        (id, request_id): (Uuid, Uuid),
        owner_may: bool,
        rationale: &str,
        command: InvestigationCommand,
    ) -> Result<Response<pb::Investigation>, Status> {
        let stream = streams::investigation(id);
        // From the stream, not the read model: a step right after another sees it.
        let sight = self.sight(principal).await?;
        let doc = wire::fold_stream(&self.store, &stream, &InvestigationsView)
            .await
            .ok()
            .filter(|d| sight.sees(d))
            .ok_or_else(|| not_found(format!("investigations/{id}")))?;
        let owner = wire::text(&doc, "owner");
        let allowed =
            principal.role == Role::FinopsLead || (owner_may && !owner.is_empty() && owner == principal.subject);
        if !allowed {
            let who = if owner_may { "the FinOps Lead or the investigation's owner" } else { "the FinOps Lead" };
            return Err(Status::permission_denied(format!(
                "{} ({}) may not take this step on investigations/{id}: only {who} may",
                principal.subject,
                principal.role.as_str()
            )));
        }
        let context = principal.context(fingerprint, request_id, Some(rationale.to_owned()));
        self.investigations.execute(&stream, &command, &context).await.map_err(from_governance)?;
        Ok(Response::new(to_wire(&wire::fold_stream(&self.store, &stream, &InvestigationsView).await?, true)))
    }
}

#[tonic::async_trait]
impl InvestigationService for InvestigationApi {
    #[tracing::instrument(skip_all)]
    async fn list_investigations(
        &self,
        request: Request<pb::ListInvestigationsRequest>,
    ) -> Result<Response<pb::ListInvestigationsResponse>, Status> {
        let principal = self.auth.principal(&request)?;
        let sight = self.sight(&principal).await?;
        let body = request.into_inner();
        let mut fields = Fields::default();
        let page_size = wire::page_size(&mut fields, body.page_size);
        let as_of = wire::as_of(&mut fields, &body.as_of);
        let status = body.status.trim().to_owned();
        if !["", "open", "investigating", "closed"].contains(&status.as_str()) {
            fields.add("status", format!("`{status}` is not open, investigating or closed"));
        }
        let signal = body.signal.trim().to_owned();
        let signals = finops_domain::investigations::Signal::ALL.map(|s| s.as_str());
        if !signal.is_empty() && !signals.contains(&signal.as_str()) {
            fields.add("signal", format!("`{signal}` is not one of {}", signals.join(", ")));
        }
        let workload = body.workload_id.trim().to_owned();
        if !workload.is_empty() {
            wire::uuid(&mut fields, "workload_id", &workload);
        }
        fields.finish()?;
        let keep = move |d: &Value| {
            sight.sees(d)
                && (status.is_empty() || wire::text(d, "status") == status)
                && (signal.is_empty() || wire::text(d, "signal") == signal)
                && (workload.is_empty() || wire::text(d, "workload_id") == workload)
        };
        let view: ReadModelView =
            wire::read_model_view(&self.read_models, &self.store, Arc::new(InvestigationsView), as_of).await?;
        let page = wire::page_result(view.list(InvestigationsView::NAME, page_size, &body.page_token, keep).await)?;
        Ok(Response::new(pb::ListInvestigationsResponse {
            investigations: page.documents.iter().map(|d| to_wire(d, false)).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_investigation(
        &self,
        request: Request<pb::GetInvestigationRequest>,
    ) -> Result<Response<pb::Investigation>, Status> {
        let principal = self.auth.principal(&request)?;
        let body = request.into_inner();
        let mut fields = Fields::default();
        let id = name(&mut fields, &body.name);
        let as_of = wire::as_of(&mut fields, &body.as_of);
        fields.finish()?;
        Ok(Response::new(to_wire(&self.visible(&principal, id.expect("checked"), as_of).await?, true)))
    }

    #[tracing::instrument(skip_all)]
    async fn assign_investigation(
        &self,
        request: Request<pb::AssignInvestigationRequest>,
    ) -> Result<Response<pb::Investigation>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&[Role::FinopsLead], "assign investigations")?;
        let body = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&body);
        let mut fields = Fields::default();
        let id = name(&mut fields, &body.name);
        if body.owner.trim().is_empty() {
            fields.add("owner", "is required: whom the investigation is assigned to");
        }
        fields.domain("", finops_domain::rationale_violations(&body.rationale));
        let request_id = wire::request_id(&mut fields, &body.request_id);
        fields.finish()?;
        let command =
            InvestigationCommand::Assign { owner: body.owner.clone(), decider: principal.decider(&body.rationale) };
        self.decide(&principal, &fingerprint, (id.expect("checked"), request_id), false, &body.rationale, command).await
    }

    #[tracing::instrument(skip_all)]
    async fn note_investigation(
        &self,
        request: Request<pb::NoteInvestigationRequest>,
    ) -> Result<Response<pb::Investigation>, Status> {
        let principal = self.auth.principal(&request)?;
        let body = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&body);
        let mut fields = Fields::default();
        let id = name(&mut fields, &body.name);
        if body.note.trim().is_empty() {
            fields.add("note", "is required: what was found");
        }
        let request_id = wire::request_id(&mut fields, &body.request_id);
        fields.finish()?;
        // The note is the step's why.
        let command = InvestigationCommand::Note { note: body.note.clone(), decider: principal.decider(&body.note) };
        self.decide(&principal, &fingerprint, (id.expect("checked"), request_id), true, &body.note, command).await
    }

    #[tracing::instrument(skip_all)]
    async fn link_investigation_to_gap(
        &self,
        request: Request<pb::LinkInvestigationToGapRequest>,
    ) -> Result<Response<pb::Investigation>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&[Role::FinopsLead], "link investigations to gaps")?;
        let body = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&body);
        let mut fields = Fields::default();
        let id = name(&mut fields, &body.name);
        fields.domain("", finops_domain::rationale_violations(&body.rationale));
        let request_id = wire::request_id(&mut fields, &body.request_id);
        fields.finish()?;
        let gap = body.gap.trim().to_owned();
        let command = InvestigationCommand::LinkGap { gap, decider: principal.decider(&body.rationale) };
        self.decide(&principal, &fingerprint, (id.expect("checked"), request_id), false, &body.rationale, command).await
    }

    #[tracing::instrument(skip_all)]
    async fn close_investigation(
        &self,
        request: Request<pb::CloseInvestigationRequest>,
    ) -> Result<Response<pb::Investigation>, Status> {
        let principal = self.auth.principal(&request)?;
        let body = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&body);
        let mut fields = Fields::default();
        let id = name(&mut fields, &body.name);
        fields.domain("", finops_domain::rationale_violations(&body.rationale));
        let request_id = wire::request_id(&mut fields, &body.request_id);
        fields.finish()?;
        let command = InvestigationCommand::Close { decider: principal.decider(&body.rationale) };
        self.decide(&principal, &fingerprint, (id.expect("checked"), request_id), true, &body.rationale, command).await
    }
}
