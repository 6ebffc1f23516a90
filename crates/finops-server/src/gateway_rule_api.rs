//! `finops.v1.GatewayRuleService`: gateway mapping rules (DOMAIN.md §13, issue 11 item 5) —
//! record, retire, list. A rule recorded from a gap (`map_gateway_sessions`) goes through
//! [`record`] too, so both paths write the same event.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use finops_domain::gateway_rules::{
    GatewayRule, GatewayRuleCommand, GatewayRuleEvent, GatewayRuleSpec, SessionMatcher,
};
use finops_domain::request::{BusinessRequest, RequestStatus};
use finops_domain::vocabulary::AccountId;
use finops_eventlog::{EventStore, RecordedEvent, StreamRead};
use finops_governance::{CommandContext, CommandHandler, decode, state, streams};
use finops_proto::v1 as pb;
use finops_proto::v1::gateway_rule_service_server::GatewayRuleService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::auth::{Authenticator, Role};
use crate::status::{from_governance, not_found};
use crate::wire::{self, Fields};

/// Who may read gateway mapping rules.
pub(crate) const RULE_READERS: [Role; 3] = [Role::FinopsLead, Role::Finance, Role::Auditor];

/// Serves gateway mapping rules.
#[derive(Clone)]
pub struct GatewayRuleApi {
    store: Arc<dyn EventStore>,
    rules: CommandHandler<GatewayRule>,
    requests: CommandHandler<BusinessRequest>,
    auth: Arc<Authenticator>,
}

/// Which of a role's calls: exactly one of a session glob and a `key=value` principal tag.
pub(crate) fn session_matcher(
    fields: &mut Fields,
    session_pattern: &str,
    principal_tag: &str,
) -> Option<SessionMatcher> {
    match (session_pattern.trim(), principal_tag.trim()) {
        ("", "") => {
            fields
                .add("session_pattern", "is required (or principal_tag): which of the role's calls the workload makes");
            None
        }
        (pattern, "") => Some(SessionMatcher::SessionName { pattern: pattern.to_owned() }),
        ("", tag) => match tag.split_once('=') {
            Some((key, value)) => {
                Some(SessionMatcher::PrincipalTag { key: key.trim().to_owned(), value: value.to_owned() })
            }
            None => {
                fields.add("principal_tag", format!("`{tag}` is not key=value"));
                None
            }
        },
        _ => {
            fields.add("principal_tag", "give session_pattern or principal_tag, not both");
            None
        }
    }
}

/// The workload of an approved request, or why not.
pub(crate) async fn approved_workload(
    requests: &CommandHandler<BusinessRequest>,
    id: Uuid,
) -> Result<(BusinessRequest, Uuid), Status> {
    let request = requests.load(&streams::business_request(id)).await.map_err(from_governance)?.state;
    if request.status == RequestStatus::New {
        return Err(not_found(format!("businessRequests/{id}")));
    }
    let workload = request.approval.as_ref().map(|a| a.workload_id).ok_or_else(|| {
        Status::failed_precondition(format!(
            "businessRequests/{id} is not approved: only an approved workload can take a resource"
        ))
    })?;
    Ok((request, workload))
}

/// Records the rule `spec` says (the same rule again writes nothing); returns its id.
pub(crate) async fn record(
    rules: &CommandHandler<GatewayRule>,
    context: &CommandContext,
    spec: GatewayRuleSpec,
    rationale: &str,
) -> Result<Uuid, Status> {
    let id = spec.rule_id();
    let command = GatewayRuleCommand::Record {
        spec,
        by: context.actor_id.clone(),
        rationale: rationale.to_owned(),
        at: Utc::now(),
    };
    rules.execute(&streams::gateway_rule(id), &command, context).await.map_err(from_governance)?;
    Ok(id)
}

/// `gatewayRules/{uuid}`
fn rule_name(fields: &mut Fields, name: &str) -> Option<Uuid> {
    match name.strip_prefix("gatewayRules/") {
        Some(id) => wire::uuid(fields, "name", id),
        None => {
            fields.add("name", format!("`{name}` is not a gateway rule name (gatewayRules/{{uuid}})"));
            None
        }
    }
}

/// A rule on the wire, from its events (the history: who, role, when, why of each).
fn rule_to_wire(id: Uuid, events: &[RecordedEvent]) -> Result<pb::GatewayRule, Status> {
    let mut out = pb::GatewayRule { name: format!("gatewayRules/{id}"), ..Default::default() };
    for event in events {
        match decode::<GatewayRuleEvent>(event).map_err(from_governance)? {
            GatewayRuleEvent::GatewayRuleRecorded { spec, .. } => {
                out.account = spec.account.as_str().to_owned();
                out.role_name.clone_from(&spec.role_name);
                match &spec.matcher {
                    SessionMatcher::SessionName { pattern } => out.session_pattern.clone_from(pattern),
                    SessionMatcher::PrincipalTag { key, value } => out.principal_tag = format!("{key}={value}"),
                }
                out.workload_id = spec.workload_id.to_string();
                out.effective_from = spec.effective_from.to_string();
                out.state = "in_force".to_owned();
            }
            GatewayRuleEvent::GatewayRuleRetired { effective_until, .. } => {
                out.effective_until = effective_until.to_string();
                out.state = "retired".to_owned();
            }
        }
        out.history.push(wire::history_entry(&finops_projections::history::entry(event)));
    }
    Ok(out)
}

impl GatewayRuleApi {
    /// Serves `store`'s rules.
    pub fn new(store: Arc<dyn EventStore>, auth: Arc<Authenticator>) -> Self {
        Self { rules: CommandHandler::new(store.clone()), requests: CommandHandler::new(store.clone()), store, auth }
    }

    async fn rule(&self, id: Uuid) -> Result<pb::GatewayRule, Status> {
        // Sealed first: the history names each event's position, the same on every read.
        self.store.seal_committed().await.map_err(crate::status::from_log)?;
        let events = self
            .store
            .read_stream(&streams::gateway_rule(id), StreamRead::all())
            .await
            .map_err(crate::status::from_log)?;
        if events.is_empty() {
            return Err(not_found(format!("gatewayRules/{id}")));
        }
        rule_to_wire(id, &events)
    }
}

#[tonic::async_trait]
impl GatewayRuleService for GatewayRuleApi {
    #[tracing::instrument(skip_all)]
    async fn record_gateway_rule(
        &self,
        request: Request<pb::RecordGatewayRuleRequest>,
    ) -> Result<Response<pb::GatewayRule>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&[Role::FinopsLead], "record gateway rules")?;
        let body = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&body);
        let mut fields = Fields::default();
        let account = fields.check("account", AccountId::parse(body.account.trim()));
        let matcher = session_matcher(&mut fields, &body.session_pattern, &body.principal_tag);
        let business_request = if body.business_request.trim().is_empty() {
            fields.add("business_request", "is required: the approved request whose workload is charged");
            None
        } else {
            wire::business_request_name(&mut fields, &body.business_request)
        };
        let effective_from = wire::date(&mut fields, "effective_from", &body.effective_from);
        if body.effective_from.trim().is_empty() {
            fields.add("effective_from", "is required: the first usage day the rule charges (YYYY-MM-DD)");
        }
        fields.domain("", finops_domain::rationale_violations(&body.rationale));
        let request_id = wire::request_id(&mut fields, &body.request_id);
        fields.finish()?;
        let (Some(account), Some(matcher), Some(business_request), Some(effective_from)) =
            (account, matcher, business_request, effective_from)
        else {
            unreachable!("fields checked")
        };
        let (_, workload_id) = approved_workload(&self.requests, business_request).await?;
        let spec = GatewayRuleSpec {
            account,
            role_name: body.role_name.trim().to_owned(),
            matcher,
            workload_id,
            effective_from,
        };
        let context = principal.context(&fingerprint, request_id, Some(body.rationale.clone()));
        let id = record(&self.rules, &context, spec, &body.rationale).await?;
        Ok(Response::new(self.rule(id).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn retire_gateway_rule(
        &self,
        request: Request<pb::RetireGatewayRuleRequest>,
    ) -> Result<Response<pb::GatewayRule>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&[Role::FinopsLead], "retire gateway rules")?;
        let body = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&body);
        let mut fields = Fields::default();
        let id = rule_name(&mut fields, &body.name);
        let until: Option<NaiveDate> = wire::date(&mut fields, "effective_until", &body.effective_until);
        if body.effective_until.trim().is_empty() {
            fields.add("effective_until", "is required: the last usage day the rule still charges (YYYY-MM-DD)");
        }
        fields.domain("", finops_domain::rationale_violations(&body.rationale));
        let request_id = wire::request_id(&mut fields, &body.request_id);
        fields.finish()?;
        let (Some(id), Some(effective_until)) = (id, until) else { unreachable!("fields checked") };
        let stream = streams::gateway_rule(id);
        if self.rules.load(&stream).await.map_err(from_governance)?.state.spec.is_none() {
            return Err(not_found(format!("gatewayRules/{id}")));
        }
        let context = principal.context(&fingerprint, request_id, Some(body.rationale.clone()));
        let command = GatewayRuleCommand::Retire {
            effective_until,
            by: principal.subject.clone(),
            rationale: body.rationale.clone(),
            at: Utc::now(),
        };
        self.rules.execute(&stream, &command, &context).await.map_err(from_governance)?;
        Ok(Response::new(self.rule(id).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn list_gateway_rules(
        &self,
        request: Request<pb::ListGatewayRulesRequest>,
    ) -> Result<Response<pb::ListGatewayRulesResponse>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&RULE_READERS, "list gateway rules")?;
        let body = request.into_inner();
        let mut fields = Fields::default();
        let as_of: Option<DateTime<Utc>> = wire::as_of(&mut fields, &body.as_of);
        fields.finish()?;
        self.store.seal_committed().await.map_err(crate::status::from_log)?;
        // Each rule's events as the log stood at the instant, rules in the order recorded.
        let mut order: Vec<Uuid> = Vec::new();
        let mut events: BTreeMap<Uuid, Vec<RecordedEvent>> = BTreeMap::new();
        state::each_event(self.store.as_ref(), |event| {
            let Some(rest) = event.stream_id.as_str().strip_prefix(streams::GATEWAY_RULE) else { return Ok(()) };
            if as_of.is_some_and(|t| event.metadata.recorded_at > t) {
                return Ok(());
            }
            let Ok(id) = Uuid::parse_str(rest) else { return Ok(()) };
            let list = events.entry(id).or_default();
            if list.is_empty() {
                order.push(id);
            }
            list.push(event.clone());
            Ok(())
        })
        .await
        .map_err(from_governance)?;
        let rules = order.iter().map(|id| rule_to_wire(*id, &events[id])).collect::<Result<Vec<_>, _>>()?;
        Ok(Response::new(pb::ListGatewayRulesResponse { rules }))
    }
}
