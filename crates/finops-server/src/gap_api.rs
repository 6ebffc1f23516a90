//! `finops.v1.GapService`: the Allocation Gaps view (DOMAIN.md §7, issue 11) — list,
//! trail, inline actions, resolution, recall, the Declared AI Value Opportunity and the
//! notifications gap actions send. Reads answer from the gap lifecycle read model, or —
//! asked `as_of` an instant, or for one gap — from the log itself, folded by the same
//! function the read model uses.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use finops_domain::Aggregate;
use finops_domain::gaps::{
    ActionOutcome, AllocationGap, Decider, GapActionKind, GapCommand, GapEvent, GapIdentity, GapKind,
};
use finops_domain::request::RequestStatus;
use finops_eventlog::{EventStore, RecordedEvent, StreamRead};
use finops_governance::timeline::GovernanceTimeline;
use finops_governance::{CommandContext, CommandHandler, decode, streams};
use finops_projections::{GapLifecycle, NotificationOutbox, Projector, ReadModels, gap_document};
use finops_proto::v1 as pb;
use finops_proto::v1::gap_service_server::GapService;
use serde_json::Value;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::auth::{Authenticator, Principal, Role};
use crate::gap_actions::{ActionArgs, GapActions};
use crate::status::{from_governance, not_found};
use crate::wire::{self, Fields};

/// Serves the gaps view.
#[derive(Clone)]
pub struct GapApi {
    store: Arc<dyn EventStore>,
    timeline: Arc<GovernanceTimeline>,
    actions: GapActions,
    gaps: CommandHandler<AllocationGap>,
    read_models: ReadModels,
    auth: Arc<Authenticator>,
}

/// Who may read which gaps.
enum Sight {
    Everything,
    Concerning(String),
}

impl Sight {
    fn of(principal: &Principal) -> Result<Self, Status> {
        if principal.role.sees_everything() {
            return Ok(Self::Everything);
        }
        principal.require(&[Role::ProductOwner, Role::FinopsLead, Role::Finance, Role::Auditor], "read gaps")?;
        Ok(Self::Concerning(principal.subject.clone()))
    }

    fn sees(&self, doc: &Value) -> bool {
        match self {
            Self::Everything => true,
            Self::Concerning(subject) => {
                doc["concerns"].as_array().is_some_and(|c| c.iter().any(|p| p.as_str() == Some(subject)))
            }
        }
    }
}

/// `gaps/{uuid}`
fn gap_name(fields: &mut Fields, name: &str) -> Option<Uuid> {
    match name.strip_prefix("gaps/") {
        Some(id) => wire::uuid(fields, "name", id),
        None => {
            fields.add("name", format!("`{name}` is not a gap name (gaps/{{uuid}})"));
            None
        }
    }
}

fn is_gap_event(event: &RecordedEvent) -> bool {
    event.stream_id.as_str().starts_with(streams::GAP)
}

/// Folds one gap event into the documents, as the read model does.
fn fold_into(docs: &mut BTreeMap<String, Value>, event: &RecordedEvent) -> Result<(), Status> {
    let key = event.stream_id.as_str().strip_prefix(streams::GAP).unwrap_or_default().to_owned();
    let e = decode::<GapEvent>(event).map_err(from_governance)?;
    let current = docs.remove(&key);
    docs.insert(key.clone(), gap_document(&e, event, &key, current));
    Ok(())
}

impl GapApi {
    /// Serves `store`'s gaps.
    pub fn new(
        store: Arc<dyn EventStore>,
        timeline: Arc<GovernanceTimeline>,
        read_models: ReadModels,
        org: CommandHandler<finops_domain::org::Organisation>,
        auth: Arc<Authenticator>,
    ) -> Self {
        Self {
            timeline,
            actions: GapActions::new(store.clone(), read_models.clone(), org),
            gaps: CommandHandler::new(store.clone()),
            store,
            read_models,
            auth,
        }
    }

    /// Every gap document: now from the read model, `as_of` an instant from the log.
    async fn documents(&self, as_of: Option<DateTime<Utc>>) -> Result<Vec<Value>, Status> {
        let unavailable = |e: finops_projections::ReadModelError| Status::unavailable(e.to_string());
        let Some(t) = as_of else {
            let mut out = Vec::new();
            let mut token = String::new();
            loop {
                let page =
                    self.read_models.list(GapLifecycle::NAME, 1_000, &token, |_| true).await.map_err(unavailable)?;
                out.extend(page.documents);
                if page.next_page_token.is_empty() {
                    return Ok(out);
                }
                token = page.next_page_token;
            }
        };
        let mut docs = BTreeMap::new();
        self.gap_events_until(t, |event| fold_into(&mut docs, event)).await?;
        Ok(docs.into_values().collect())
    }

    /// Shows `visit` every gap event recorded at or before `t`, in log order.
    async fn gap_events_until(
        &self,
        t: DateTime<Utc>,
        mut visit: impl FnMut(&RecordedEvent) -> Result<(), Status>,
    ) -> Result<(), Status> {
        self.store.seal_committed().await.map_err(crate::status::from_log)?;
        // A visitor's failure is carried out past the scan, which only knows log errors.
        let mut failed = None;
        finops_governance::state::each_event(self.store.as_ref(), |event| {
            if failed.is_none() && is_gap_event(event) && event.metadata.recorded_at <= t {
                failed = visit(event).err();
            }
            Ok(())
        })
        .await
        .map_err(from_governance)?;
        failed.map_or(Ok(()), Err)
    }

    /// One gap's document from its stream, as of an instant (now when `None`).
    async fn document(&self, id: Uuid, as_of: Option<DateTime<Utc>>) -> Result<Value, Status> {
        let recorded =
            self.store.read_stream(&streams::gap(id), StreamRead::all()).await.map_err(crate::status::from_log)?;
        let mut docs = BTreeMap::new();
        for event in recorded.iter().filter(|e| as_of.is_none_or(|t| e.metadata.recorded_at <= t)) {
            fold_into(&mut docs, event)?;
        }
        docs.into_values().next().ok_or_else(|| not_found(format!("gaps/{id}")))
    }

    /// May `principal` read the gap `id` (as GetGap would show it)? NOT_FOUND when it does
    /// not exist or is not theirs to see.
    pub(crate) async fn visible(&self, principal: &Principal, id: Uuid) -> Result<(), Status> {
        let sight = Sight::of(principal)?;
        if sight.sees(&self.document(id, None).await?) { Ok(()) } else { Err(not_found(format!("gaps/{id}"))) }
    }

    /// The gap, or NOT_FOUND.
    async fn detected(&self, id: Uuid) -> Result<(AllocationGap, GapIdentity), Status> {
        let gap = self.gaps.load(&streams::gap(id)).await.map_err(from_governance)?.state;
        let identity = gap.identity.clone().ok_or_else(|| not_found(format!("gaps/{id}")))?;
        Ok((gap, identity))
    }

    /// Resolve or recall: a gap name, a rationale and a request id, parsed alike, then the
    /// person's decision.
    async fn person_decides(
        &self,
        principal: &Principal,
        fingerprint: &str,
        name: &str,
        rationale: String,
        request_id: &str,
        command: impl FnOnce(Decider) -> GapCommand,
    ) -> Result<Response<pb::Gap>, Status> {
        let mut fields = Fields::default();
        let id = gap_name(&mut fields, name);
        fields.domain("", finops_domain::rationale_violations(&rationale));
        let request_id = wire::request_id(&mut fields, request_id);
        fields.finish()?;
        let id = id.expect("checked");
        self.detected(id).await?;
        let decider = principal.decider(&rationale);
        let context = principal.context(fingerprint, request_id, Some(rationale));
        self.decide(principal, &context, id, command(decider)).await
    }

    /// Were the events of `stream` after its first `read` all recorded by processes?
    async fn only_processes_since(&self, stream: &finops_eventlog::StreamId, read: u64) -> Result<bool, Status> {
        let events = self
            .store
            .read_stream(stream, finops_eventlog::StreamRead::all())
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(events.iter().skip(read as usize).all(|e| e.metadata.actor_role == "process"))
    }

    /// Decides a person's decision on a gap and answers with the gap after it.
    async fn decide(
        &self,
        principal: &Principal,
        context: &CommandContext,
        id: Uuid,
        command: GapCommand,
    ) -> Result<Response<pb::Gap>, Status> {
        let stream = streams::gap(id);
        // A gap's trail is also written by the detector, which may note a person's action's
        // own side effect (a gateway rule it recorded) while the action is being decided.
        // Overtaken only by processes, the decision is taken again on the newer trail — no
        // other person's decision was missed; overtaken by a person, the caller is told.
        let mut attempts = 0;
        loop {
            match self.gaps.execute(&stream, &command, context).await {
                Err(finops_governance::GovernanceError::Conflict { read, .. })
                    if attempts < 3 && self.only_processes_since(&stream, read).await? =>
                {
                    attempts += 1;
                }
                outcome => {
                    outcome.map_err(from_governance)?;
                    break;
                }
            }
        }
        let doc = self.document(id, None).await?;
        Ok(Response::new(gap_to_wire(&doc, principal)))
    }
}

/// The gap's document on the wire; a Product Owner does not see who else it concerns.
fn gap_to_wire(doc: &Value, principal: &Principal) -> pb::Gap {
    let texts = |v: &Value| -> Vec<String> {
        v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()).unwrap_or_default()
    };
    let spend = doc["spend"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(period, s)| pb::GapSpend {
                    period: period.clone(),
                    batch: wire::text(s, "batch"),
                    cents: s["cents"].as_i64().unwrap_or(0),
                    tokens: s["tokens"].as_u64().unwrap_or(0),
                    lines: s["lines"].as_u64().unwrap_or(0),
                    first_day: wire::text(s, "first_day"),
                    last_day: wire::text(s, "last_day"),
                    principals: texts(&s["principals"]),
                    models: texts(&s["models"]),
                })
                .collect()
        })
        .unwrap_or_default();
    let last = &doc["last_action"];
    let concerns = texts(&doc["concerns"]);
    pb::Gap {
        name: wire::text(doc, "name"),
        kind: wire::text(doc, "kind"),
        scenario: wire::text(doc, "scenario"),
        anchor: wire::text(doc, "anchor"),
        account: wire::text(doc, "account"),
        workload_id: wire::text(doc, "workload_id"),
        principal: wire::text(doc, "principal"),
        concerns: if principal.role.sees_everything() {
            concerns
        } else {
            concerns.into_iter().filter(|c| *c == principal.subject).collect()
        },
        status: wire::text(doc, "status"),
        recalled: doc["recalled"].as_bool().unwrap_or(false),
        actions: texts(&doc["actions"]),
        spend,
        total_cents: doc["total_cents"].as_i64().unwrap_or(0),
        detected_at: wire::text(doc, "detected_at"),
        updated_at: wire::text(doc, "updated_at"),
        last_action: last.is_object().then(|| outcome_to_wire(last)),
        history: wire::history_from_doc(doc),
        version: doc["version"].as_u64().unwrap_or(0),
    }
}

fn outcome_to_wire(last: &Value) -> pb::GapActionOutcome {
    let outcome: ActionOutcome = serde_json::from_value(last["outcome"].clone()).unwrap_or_default();
    pb::GapActionOutcome {
        action: wire::text(last, "action"),
        resources: outcome.resources,
        notification: outcome.notification.map(|n| pb::Notification {
            to: n.to,
            subject: n.subject,
            body: n.body,
            due: n.due.map(|d| d.to_string()).unwrap_or_default(),
            ..Default::default()
        }),
        steps: outcome.steps,
        commands: outcome.commands.iter().map(|c| c.render()).collect(),
        by: wire::text(last, "by"),
        at: wire::text(last, "at"),
    }
}

fn notification_to_wire(doc: &Value) -> pb::Notification {
    pb::Notification {
        notification_id: wire::text(doc, "notification_id"),
        to: wire::text(doc, "to"),
        subject: wire::text(doc, "subject"),
        body: wire::text(doc, "body"),
        due: wire::text(doc, "due"),
        gap: wire::text(doc, "gap"),
        action: wire::text(doc, "action"),
        sent_by: wire::text(doc, "sent_by"),
        sent_at: wire::text(doc, "sent_at"),
    }
}

/// Per-kind totals of `docs` (spend in `period` when given, else every period), in the
/// gaps view's order.
fn totals<'a>(docs: impl Iterator<Item = &'a Value>, period: Option<&str>) -> Vec<pb::GapKindTotal> {
    let mut by_kind: BTreeMap<GapKind, (u32, i64)> = BTreeMap::new();
    for doc in docs {
        let Ok(kind) = wire::text(doc, "kind").parse::<GapKind>() else { continue };
        let cents = match period {
            Some(p) => doc["spend"][p]["cents"].as_i64().unwrap_or(0),
            None => doc["total_cents"].as_i64().unwrap_or(0),
        };
        let entry = by_kind.entry(kind).or_default();
        entry.0 += 1;
        entry.1 += cents;
    }
    GapKind::ALL
        .iter()
        .filter_map(|k| {
            by_kind.get(k).map(|(gaps, cents)| pb::GapKindTotal {
                kind: k.as_str().to_owned(),
                scenario: k.scenario().to_owned(),
                gaps: *gaps,
                cents: *cents,
            })
        })
        .collect()
}

fn is_open(doc: &Value) -> bool {
    matches!(doc["status"].as_str(), Some("active" | "actioned"))
}

#[tonic::async_trait]
impl GapService for GapApi {
    #[tracing::instrument(skip_all)]
    async fn list_gaps(&self, request: Request<pb::ListGapsRequest>) -> Result<Response<pb::ListGapsResponse>, Status> {
        let principal = self.auth.principal(&request)?;
        let sight = Sight::of(&principal)?;
        let body = request.into_inner();
        let mut fields = Fields::default();
        let kind = (!body.kind.trim().is_empty()).then(|| fields.check("kind", body.kind.parse::<GapKind>())).flatten();
        let state = body.state.trim().to_ascii_lowercase();
        if !["", "active", "actioned", "resolved", "recalled"].contains(&state.as_str()) {
            fields.add("state", format!("`{state}` is not a state; one of: active, actioned, resolved, recalled"));
        }
        let period = body.period.trim();
        if !period.is_empty() && !finops_domain::cur_batches::is_billing_period(period) {
            fields.add("period", format!("`{period}` is not a billing period YYYY-MM"));
        }
        let workload =
            (!body.workload_id.trim().is_empty()).then(|| wire::uuid(&mut fields, "workload_id", &body.workload_id));
        let page_size = wire::page_size(&mut fields, body.page_size);
        let after = if body.page_token.is_empty() {
            None
        } else {
            fields.check(
                "page_token",
                hex::decode(&body.page_token)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| format!("`{}` is not a token this server issued", body.page_token)),
            )
        };
        let as_of = wire::as_of(&mut fields, &body.as_of);
        fields.finish()?;
        let instant = as_of.unwrap_or_else(Utc::now);
        let docs = self.documents(as_of).await?;
        let matching: Vec<&Value> = docs
            .iter()
            .filter(|d| sight.sees(d))
            .filter(|d| kind.is_none_or(|k| d["kind"].as_str() == Some(k.as_str())))
            .filter(|d| match state.as_str() {
                "" => true,
                "recalled" => d["recalled"].as_bool() == Some(true),
                s => d["status"].as_str() == Some(s),
            })
            .filter(|d| body.account.trim().is_empty() || d["account"].as_str() == Some(body.account.trim()))
            .filter(|d| match &workload {
                Some(Some(w)) => d["workload_id"].as_str() == Some(w.to_string().as_str()),
                _ => true,
            })
            .filter(|d| period.is_empty() || d["spend"][period].is_object())
            .collect();
        let totals = totals(matching.iter().copied(), (!period.is_empty()).then_some(period));
        let mut page: Vec<&Value> = matching
            .into_iter()
            .filter(|d| after.as_deref().is_none_or(|a| d["gap_id"].as_str().unwrap_or_default() > a))
            .collect();
        page.sort_by(|a, b| a["gap_id"].as_str().cmp(&b["gap_id"].as_str()));
        let more = page.len() > page_size;
        page.truncate(page_size);
        let next_page_token = if more {
            hex::encode(page.last().and_then(|d| d["gap_id"].as_str()).unwrap_or_default())
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListGapsResponse {
            // The trail is Get's: a list of hundreds of gaps carries their state, not every event.
            gaps: page.into_iter().map(|d| pb::Gap { history: vec![], ..gap_to_wire(d, &principal) }).collect(),
            next_page_token,
            totals,
            as_of: instant.to_rfc3339(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_gap(&self, request: Request<pb::GetGapRequest>) -> Result<Response<pb::Gap>, Status> {
        let principal = self.auth.principal(&request)?;
        let sight = Sight::of(&principal)?;
        let body = request.into_inner();
        let mut fields = Fields::default();
        let id = gap_name(&mut fields, &body.name);
        let as_of = wire::as_of(&mut fields, &body.as_of);
        fields.finish()?;
        let id = id.expect("checked");
        let doc = self.document(id, as_of).await?;
        if !sight.sees(&doc) {
            // Not revealed: a gap the caller may not see does not exist for them.
            return Err(not_found(format!("gaps/{id}")));
        }
        Ok(Response::new(gap_to_wire(&doc, &principal)))
    }

    #[tracing::instrument(skip_all)]
    async fn act_on_gap(&self, request: Request<pb::ActOnGapRequest>) -> Result<Response<pb::Gap>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&[Role::FinopsLead], "act on gaps")?;
        let body = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&body);
        let mut fields = Fields::default();
        let id = gap_name(&mut fields, &body.name);
        let action = fields.check("action", body.action.parse::<GapActionKind>());
        fields.domain("", finops_domain::rationale_violations(&body.rationale));
        let business_request = (!body.business_request.trim().is_empty())
            .then(|| wire::business_request_name(&mut fields, &body.business_request))
            .flatten();
        let due = wire::date(&mut fields, "due_date", &body.due_date);
        let product_id = (!body.product_id.trim().is_empty())
            .then(|| wire::uuid(&mut fields, "product_id", &body.product_id))
            .flatten();
        let mapping = action == Some(GapActionKind::MapGatewaySessions);
        let matcher = mapping
            .then(|| crate::gateway_rule_api::session_matcher(&mut fields, &body.session_pattern, &body.principal_tag))
            .flatten();
        let effective_from = wire::date(&mut fields, "effective_from", &body.effective_from);
        let request_id = wire::request_id(&mut fields, &body.request_id);
        fields.finish()?;
        let (Some(id), Some(action)) = (id, action) else { unreachable!("fields checked") };
        let context = principal.context(&fingerprint, request_id, Some(body.rationale.clone()));
        let stream = streams::gap(id);
        let (gap, identity) = self.detected(id).await?;
        let decider = principal.decider(&body.rationale);
        // A retry is answered from the log; anything else is checked before any side
        // effect, so a refused action changes nothing anywhere.
        if !self.gaps.is_recorded(&stream, &context).await.map_err(from_governance)? {
            let dry_run = GapCommand::Act { action, outcome: ActionOutcome::default(), decider: decider.clone() };
            gap.decide(&dry_run).map_err(|e| from_governance(e.into()))?;
        }
        let args = ActionArgs {
            business_request,
            due,
            bucket: body.bucket.clone(),
            product_owner: body.product_owner.clone(),
            product_id,
            matcher,
            effective_from,
            rationale: body.rationale.clone(),
        };
        let outcome = self.actions.carry_out(&context, &gap, &identity, action, &args).await?;
        self.decide(&principal, &context, id, GapCommand::Act { action, outcome, decider }).await
    }

    #[tracing::instrument(skip_all)]
    async fn resolve_gap(&self, request: Request<pb::ResolveGapRequest>) -> Result<Response<pb::Gap>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&[Role::FinopsLead], "resolve gaps")?;
        let body = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&body);
        let (name, rationale, request_id) = (body.name, body.rationale, body.request_id);
        self.person_decides(&principal, &fingerprint, &name, rationale, &request_id, |decider| GapCommand::Resolve {
            decider,
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn recall_gap_decision(
        &self,
        request: Request<pb::RecallGapDecisionRequest>,
    ) -> Result<Response<pb::Gap>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&[Role::FinopsLead], "recall gap decisions")?;
        let body = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&body);
        let (name, rationale, request_id) = (body.name, body.rationale, body.request_id);
        self.person_decides(&principal, &fingerprint, &name, rationale, &request_id, |decider| GapCommand::Recall {
            decider,
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn get_value_opportunity(
        &self,
        request: Request<pb::GetValueOpportunityRequest>,
    ) -> Result<Response<pb::ValueOpportunity>, Status> {
        let principal = self.auth.principal(&request)?;
        let sight = Sight::of(&principal)?;
        let body = request.into_inner();
        let mut fields = Fields::default();
        let as_of = wire::as_of(&mut fields, &body.as_of);
        fields.finish()?;
        let instant = as_of.unwrap_or_else(Utc::now);
        let state = self.timeline.state_as_of(Some(instant)).await.map_err(from_governance)?;
        let (mut saving, mut revenue, mut cases) = (0i64, 0i64, 0u32);
        for request in state.requests.values().filter(|r| r.status == RequestStatus::Approved) {
            if let Sight::Concerning(subject) = &sight
                && &request.requested_by != subject
            {
                continue;
            }
            let Some(approval) = &request.approval else { continue };
            // The case in force: as restated in Spaces, else as declared on the request.
            let case = state
                .plans
                .get(&approval.workload_id)
                .and_then(|p| p.business_case)
                .or_else(|| request.details.as_ref().and_then(|d| d.business_case));
            if let Some(case) = case {
                cases += 1;
                saving += case.annual_cost_saving.map_or(0, |c| c.0 as i64);
                revenue += case.annual_revenue_driving.map_or(0, |c| c.0 as i64);
            }
        }
        let docs = self.documents(as_of).await?;
        let open: Vec<&Value> = docs.iter().filter(|d| sight.sees(d) && is_open(d)).collect();
        Ok(Response::new(pb::ValueOpportunity {
            annual_cost_saving_cents: saving,
            annual_revenue_driving_cents: revenue,
            business_cases: cases,
            open_gaps: open.len() as u32,
            open_gap_cents: open.iter().map(|d| d["total_cents"].as_i64().unwrap_or(0)).sum(),
            open_by_kind: totals(open.iter().copied(), None),
            as_of: instant.to_rfc3339(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_notifications(
        &self,
        request: Request<pb::ListNotificationsRequest>,
    ) -> Result<Response<pb::ListNotificationsResponse>, Status> {
        let principal = self.auth.principal(&request)?;
        let sight = Sight::of(&principal)?;
        let body = request.into_inner();
        let mut fields = Fields::default();
        let page_size = wire::page_size(&mut fields, body.page_size);
        let as_of = wire::as_of(&mut fields, &body.as_of);
        fields.finish()?;
        let keep = |doc: &Value| match &sight {
            Sight::Everything => true,
            Sight::Concerning(subject) => doc["to"].as_str() == Some(subject),
        };
        let page = match as_of {
            None => wire::page_result(
                self.read_models.list(NotificationOutbox::NAME, page_size, &body.page_token, keep).await,
            )?,
            // As the log stood then: the outbox's own fold over the gap events up to the
            // instant, paged like the read model (the token is the last key, in hex).
            Some(t) => {
                let after = hex::decode(&body.page_token)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .filter(|_| !body.page_token.is_empty());
                if after.is_none() && !body.page_token.is_empty() {
                    return Err(crate::status::invalid_argument(vec![finops_domain::FieldViolation::new(
                        "page_token",
                        format!("`{}` is not a token this server issued", body.page_token),
                    )]));
                }
                let outbox = NotificationOutbox;
                let mut docs = BTreeMap::new();
                self.gap_events_until(t, |event| {
                    for key in outbox.keys(event) {
                        if let Some(doc) = outbox.apply(event, &key, None) {
                            docs.insert(key, Value::from(doc));
                        }
                    }
                    Ok(())
                })
                .await?;
                let mut documents: Vec<Value> = docs
                    .into_iter()
                    .filter(|(k, d)| after.as_deref().is_none_or(|a| k.as_str() > a) && keep(d))
                    .map(|(_, d)| d)
                    .collect();
                let more = documents.len() > page_size;
                documents.truncate(page_size);
                let next_page_token = if more {
                    hex::encode(documents.last().map(|d| wire::text(d, "notification_id")).unwrap_or_default())
                } else {
                    String::new()
                };
                finops_projections::Page { documents, next_page_token }
            }
        };
        Ok(Response::new(pb::ListNotificationsResponse {
            notifications: page.documents.iter().map(notification_to_wire).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}
