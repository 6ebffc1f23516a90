//! What each gap action does (issue 11 item 4): the real commands behind it — a claim on
//! the Product Owner's behalf, a prefilled Business Request, an approval's scope and its
//! catalog entry, a Cloud Engineer task — or the artefacts it hands a person (a deny
//! policy, the CUR export command, a notification). Every command carries a request id
//! derived from the action's and the action's correlation id, so a retried action issues
//! nothing twice. The API checks the action is legal before calling here.

use std::sync::Arc;

use chrono::{Datelike, NaiveDate, Utc};
use finops_domain::gaps::{self, ActionOutcome, AllocationGap, GapActionKind, GapIdentity};
use finops_domain::gateway_rules::{GatewayRule, GatewayRuleSpec, SessionMatcher};
use finops_domain::request::{
    Availability, BusinessRequest, MAX_DESCRIPTION_CHARS, MAX_WORKLOAD_NAME_CHARS, RequestCommand, RequestDetails,
    UseCase, WorkloadType,
};
use finops_domain::spaces::{ClaimCommand, ClaimableResource, ClaimedResource};
use finops_domain::vocabulary::AccountId;
use finops_domain::vocabulary::{Cents, MonthlyAmount};
use finops_eventlog::EventStore;
use finops_governance::{CommandContext, CommandHandler, streams};
use finops_projections::ReadModels;
use tonic::Status;
use uuid::Uuid;

use crate::gateway_rule_api::{self, approved_workload};
use crate::status::{from_governance, invalid_argument, not_found};
use crate::wire::{self, Fields};

/// How long a Product Owner is given for a business case, unless the action names a date.
const BUSINESS_CASE_DAYS: u64 = 14;

/// What an action may need besides the gap (each action reads what it needs).
pub(crate) struct ActionArgs {
    /// claim_in_spaces, approve: the approved request whose workload takes the resource.
    pub business_request: Option<Uuid>,
    /// request_business_case: the due date.
    pub due: Option<NaiveDate>,
    /// guided_cur_setup: the export's bucket (empty: a default name).
    pub bucket: String,
    /// The Product Owner, when the gap names none.
    pub product_owner: String,
    /// recommend_dedicated_role, approve: the product of the new request.
    pub product_id: Option<Uuid>,
    /// map_gateway_sessions: which of the role's calls.
    pub matcher: Option<SessionMatcher>,
    /// map_gateway_sessions: the first usage day charged.
    pub effective_from: Option<NaiveDate>,
    /// The action's rationale.
    pub rationale: String,
}

/// Carries out gap actions against the log.
#[derive(Clone)]
pub(crate) struct GapActions {
    store: Arc<dyn EventStore>,
    claims: CommandHandler<ClaimableResource>,
    requests: CommandHandler<BusinessRequest>,
    org: CommandHandler<finops_domain::org::Organisation>,
    rules: CommandHandler<GatewayRule>,
    read_models: ReadModels,
}

impl GapActions {
    pub(crate) fn new(
        store: Arc<dyn EventStore>,
        read_models: ReadModels,
        org: CommandHandler<finops_domain::org::Organisation>,
    ) -> Self {
        Self {
            claims: CommandHandler::new(store.clone()),
            requests: CommandHandler::new(store.clone()),
            org,
            rules: CommandHandler::new(store.clone()),
            store,
            read_models,
        }
    }

    /// Does what `action` does for the gap; returns what it produced.
    pub(crate) async fn carry_out(
        &self,
        context: &CommandContext,
        gap: &AllocationGap,
        identity: &GapIdentity,
        action: GapActionKind,
        args: &ActionArgs,
    ) -> Result<ActionOutcome, Status> {
        let required =
            |field: &'static str, why: &str| invalid_argument(vec![finops_domain::FieldViolation::new(field, why)]);
        let owner = || {
            let named = args.product_owner.trim();
            if named.is_empty() { identity.concerns.first().cloned() } else { Some(named.to_owned()) }
        };
        let newest_cents = gap.spend.values().next_back().map_or(0, |s| s.cents);
        let outcome = match action {
            GapActionKind::GuidedCurSetup => {
                let bucket = match args.bucket.trim() {
                    "" => format!("finops-center-cur-{}", identity.account),
                    b => b.to_owned(),
                };
                gaps::guided_cur_setup(&identity.account, &bucket)
            }
            GapActionKind::Block => gaps::block_principal(&identity.principal, identity.principal_is_user()),
            GapActionKind::NotifyProductOwner => {
                let to = owner().ok_or_else(|| {
                    required("product_owner", "is required: the gap names no Product Owner for this resource")
                })?;
                ActionOutcome {
                    notification: Some(gaps::claim_notification(identity, &to, newest_cents)),
                    ..Default::default()
                }
            }
            GapActionKind::RequestBusinessCase => {
                let to = owner().ok_or_else(|| {
                    required("product_owner", "is required: the workload's Product Owner is not known")
                })?;
                let due = args.due.unwrap_or_else(|| Utc::now().date_naive() + chrono::Days::new(BUSINESS_CASE_DAYS));
                let workload = identity.workload_id.map(|w| w.to_string()).unwrap_or_default();
                ActionOutcome {
                    notification: Some(gaps::business_case_notification(&to, &format!("workload {workload}"), due)),
                    ..Default::default()
                }
            }
            GapActionKind::ClaimInSpaces => {
                let business_request = args.business_request.ok_or_else(|| {
                    required("business_request", "is required: the approved request whose workload takes the guardrail")
                })?;
                let arn = identity.anchor.strip_prefix("guardrail/").unwrap_or_default();
                let resource = ClaimedResource::guardrail(arn).map_err(Status::failed_precondition)?;
                let claim = self.assign(context, gap, resource, business_request, &args.rationale).await?;
                ActionOutcome { resources: vec![claim], ..Default::default() }
            }
            GapActionKind::Approve => match args.business_request {
                Some(business_request) => {
                    let resource = ClaimedResource::role(&identity.account, &identity.principal).map_err(|_| {
                        Status::failed_precondition(format!(
                            "{} is not a role: link it by approving a Business Request for it (give product_id)",
                            identity.principal
                        ))
                    })?;
                    let claim = self.assign(context, gap, resource, business_request, &args.rationale).await?;
                    ActionOutcome { resources: vec![claim], ..Default::default() }
                }
                None => {
                    let created =
                        self.prefilled_request(context, identity, gap, args.product_id, &args.product_owner).await?;
                    ActionOutcome { resources: vec![created], ..Default::default() }
                }
            },
            GapActionKind::RecommendDedicatedRole => {
                let created =
                    self.prefilled_request(context, identity, gap, args.product_id, &args.product_owner).await?;
                ActionOutcome { resources: vec![created], ..Default::default() }
            }
            GapActionKind::AddScope => self.add_scope(context, identity, &args.rationale).await?,
            GapActionKind::FlagForCloudEngineer => {
                self.flag_for_cloud_engineer(context, identity, &args.rationale).await?
            }
            GapActionKind::MapGatewaySessions => ActionOutcome {
                resources: vec![self.map_sessions(context, gap, identity, args).await?],
                ..Default::default()
            },
        };
        Ok(outcome)
    }

    /// Map gateway sessions: a gateway mapping rule charging the gap's role's calls that
    /// match `matcher` to the workload of `business_request`, from `effective_from` (else the
    /// first day of the gap's first period, so its spend moves to the workload).
    async fn map_sessions(
        &self,
        context: &CommandContext,
        gap: &AllocationGap,
        identity: &GapIdentity,
        args: &ActionArgs,
    ) -> Result<String, Status> {
        let required =
            |field: &'static str, why: &str| invalid_argument(vec![finops_domain::FieldViolation::new(field, why)]);
        if identity.principal.is_empty() || identity.principal_is_user() {
            return Err(Status::failed_precondition(format!(
                "{} is not a role: only a role's sessions can be mapped",
                identity.principal_or_anchor()
            )));
        }
        let matcher = args.matcher.clone().ok_or_else(|| {
            required("session_pattern", "is required (or principal_tag): which of the role's calls the workload makes")
        })?;
        let business_request = args.business_request.ok_or_else(|| {
            required("business_request", "is required: the approved request whose workload the sessions are charged to")
        })?;
        let (_, workload_id) = approved_workload(&self.requests, business_request).await?;
        let account = AccountId::parse(&identity.account).map_err(Status::failed_precondition)?;
        let spec = GatewayRuleSpec {
            account,
            role_name: identity.principal.clone(),
            matcher,
            workload_id,
            effective_from: args.effective_from.unwrap_or_else(|| gap_start(gap)),
        };
        let id =
            gateway_rule_api::record(&self.rules, &side_effect(context, "gateway rule"), spec, &args.rationale).await?;
        Ok(format!("gatewayRules/{id}"))
    }

    /// Claim in Spaces / Approve by linking: the FinOps Lead assigns `resource` to the
    /// workload on the Product Owner's behalf, from the first day of the gap's first period.
    async fn assign(
        &self,
        context: &CommandContext,
        gap: &AllocationGap,
        resource: ClaimedResource,
        business_request: Uuid,
        rationale: &str,
    ) -> Result<String, Status> {
        let (request, workload_id) = approved_workload(&self.requests, business_request).await?;
        let effective_from = gap_start(gap);
        let key = resource.key();
        let command = ClaimCommand::Reassign {
            resource,
            workload_id,
            effective_from,
            by: context.actor_id.clone(),
            rationale: format!("{rationale} (on behalf of {}, the workload's Product Owner)", request.requested_by),
            at: Utc::now(),
        };
        self.claims
            .execute(&streams::claim(&key), &command, &side_effect(context, "claim"))
            .await
            .map_err(from_governance)?;
        Ok(format!("claims/{key}"))
    }

    /// Recommend Dedicated Role / Approve by request: a Business Request submitted for the
    /// Product Owner, prefilled from the gap's spend, for the FinOps Lead to review.
    async fn prefilled_request(
        &self,
        context: &CommandContext,
        identity: &GapIdentity,
        gap: &AllocationGap,
        product_id: Option<Uuid>,
        product_owner: &str,
    ) -> Result<String, Status> {
        let Some(product_id) = product_id else {
            return Err(invalid_argument(vec![finops_domain::FieldViolation::new(
                "product_id",
                "is required: the product the new Business Request is for",
            )]));
        };
        let org = self.org.load(&streams::organisation()).await.map_err(from_governance)?.state;
        let Some(product) = org.products.get(&product_id) else {
            return Err(invalid_argument(vec![finops_domain::FieldViolation::new(
                "product_id",
                format!("no product {product_id} in the organisation"),
            )]));
        };
        let owner =
            if product_owner.trim().is_empty() { product.owner.clone() } else { product_owner.trim().to_owned() };
        let (period, spend) = gap.spend.iter().next_back().map(|(p, s)| (p.clone(), s.clone())).unzip();
        let run_rate = spend.as_ref().map_or(0, |s| s.cents).max(100);
        let models = spend.as_ref().map(|s| s.models.join(", ")).unwrap_or_default();
        let who = identity.principal_or_anchor();
        let description: String = format!(
            "Prefilled from Allocation Gap {} ({}): {who} in account {} spent ${}.{:02} in {} on {}. \
             Replace with what the workload does.",
            identity.gap_id(),
            identity.kind.scenario(),
            identity.account,
            run_rate / 100,
            run_rate % 100,
            period.unwrap_or_default(),
            if models.is_empty() { "Bedrock" } else { &models },
        )
        .chars()
        .take(MAX_DESCRIPTION_CHARS)
        .collect();
        let details = RequestDetails {
            workload_name: format!("Dedicated role for {who}").chars().take(MAX_WORKLOAD_NAME_CHARS).collect(),
            use_case: UseCase::Operations {
                workload_type: WorkloadType::Other,
                description,
                availability: Availability::Standard,
                monthly_budget: MonthlyAmount::Dollars(Cents(run_rate as u64)),
            },
            priority: false,
            start: None,
            end: None,
            monthly_growth_percent: None,
            business_case: None,
        };
        let side = side_effect(context, "business request");
        let request_id = side.request_id;
        let command = RequestCommand::Submit { request_id, product_id, requested_by: owner, details, at: Utc::now() };
        self.requests
            .execute(&streams::business_request(request_id), &command, &side)
            .await
            .map_err(from_governance)?;
        Ok(format!("businessRequests/{request_id}"))
    }
}

/// What an Out of Approved Scope gap's anchor names:
/// `scope/{workload}/{account}/{region}/{model}`.
struct OutOfScope {
    workload_id: Uuid,
    account: String,
    region: String,
    model: String,
}

impl OutOfScope {
    fn of(identity: &GapIdentity) -> Result<Self, Status> {
        let parts: Vec<&str> = identity.anchor.splitn(5, '/').collect();
        match parts.as_slice() {
            ["scope", workload, account, region, model] => Ok(Self {
                workload_id: Uuid::parse_str(workload)
                    .map_err(|_| Status::internal(format!("gap anchor `{}` names no workload", identity.anchor)))?,
                account: (*account).to_owned(),
                region: (*region).to_owned(),
                model: (*model).to_owned(),
            }),
            _ => Err(Status::internal(format!("gap anchor `{}` is not an approval scope", identity.anchor))),
        }
    }
}

impl GapActions {
    /// What an out-of-scope gap names, and the approved request of its workload with its id.
    async fn scope_request(&self, identity: &GapIdentity) -> Result<(OutOfScope, Uuid, BusinessRequest), Status> {
        let usage = OutOfScope::of(identity)?;
        let workload = self
            .read_models
            .get(finops_projections::WorkloadsView::NAME, &usage.workload_id.to_string())
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?
            .ok_or_else(|| not_found(format!("workload {}", usage.workload_id)))?;
        let mut fields = Fields::default();
        let id = wire::business_request_name(&mut fields, &wire::text(&workload, "business_request"))
            .ok_or_else(|| Status::internal(format!("workload {} names no Business Request", usage.workload_id)))?;
        let (request, _) = approved_workload(&self.requests, id).await?;
        Ok((usage, id, request))
    }

    /// Add Scope: the approval — and the model's catalog entry — extended to the account and
    /// region the gap's spend ran in. Another model is another Business Request.
    async fn add_scope(
        &self,
        context: &CommandContext,
        identity: &GapIdentity,
        rationale: &str,
    ) -> Result<ActionOutcome, Status> {
        let (usage, id, request) = self.scope_request(identity).await?;
        let approval = request.approval.as_ref().expect("approved");
        let approved_model = approval.review.model_id.as_str();
        if usage.model.contains('.') && usage.model != approved_model {
            return Err(Status::failed_precondition(format!(
                "the spend used {}, not the approved {approved_model}: another model is another Business Request \
                 (flag_for_cloud_engineer, or recommend one)",
                usage.model
            )));
        }
        let mut accounts = std::collections::BTreeSet::new();
        if let Ok(account) = finops_domain::vocabulary::AccountId::parse(&usage.account) {
            accounts.insert(account);
        }
        let mut regions = std::collections::BTreeSet::new();
        if let Ok(region) = finops_domain::vocabulary::Region::parse(&usage.region) {
            regions.insert(region);
        }
        // The catalog first: a model the catalog no longer approves refuses here, before
        // anything is written.
        let catalog_stream = streams::catalog_model(approval.review.platform, approved_model);
        let scope = finops_domain::vocabulary::ApprovalScope {
            accounts: accounts.clone(),
            regions: regions.clone(),
            actions: approval.scope.actions.clone(),
        };
        let catalog = CommandHandler::<finops_domain::catalog::CatalogEntry>::new(self.store.clone());
        let add = finops_domain::catalog::CatalogCommand::AddScope {
            scope,
            by: context.actor_id.clone(),
            rationale: rationale.to_owned(),
            at: Utc::now(),
        };
        catalog
            .execute(&catalog_stream, &add, &side_effect(context, "catalog scope"))
            .await
            .map_err(from_governance)?;
        let extend = RequestCommand::ExtendScope {
            accounts,
            regions,
            by: context.actor_id.clone(),
            rationale: rationale.to_owned(),
            at: Utc::now(),
        };
        self.requests
            .execute(&streams::business_request(id), &extend, &side_effect(context, "approval scope"))
            .await
            .map_err(from_governance)?;
        Ok(ActionOutcome {
            resources: vec![
                format!("businessRequests/{id}"),
                format!("catalogModels/{}/{approved_model}", approval.review.platform.as_str()),
            ],
            steps: vec![format!(
                "The role {}'s IAM policy names the approved regions' model ARNs; if calls in {} are refused, \
                 add that region's ARN to its policy.",
                approval.role_name, usage.region
            )],
            ..Default::default()
        })
    }

    /// Flag for the Cloud Engineer: a task to move the usage back inside the approval.
    async fn flag_for_cloud_engineer(
        &self,
        context: &CommandContext,
        identity: &GapIdentity,
        rationale: &str,
    ) -> Result<ActionOutcome, Status> {
        let (usage, request_id, request) = self.scope_request(identity).await?;
        let approval = request.approval.as_ref().expect("approved");
        let plan = finops_domain::tasks::move_out_of_scope_task(
            &finops_domain::tasks::OutOfScopeUsage {
                gap_id: identity.gap_id(),
                request_id,
                workload_id: usage.workload_id,
                role: identity.principal.clone(),
                account: usage.account.clone(),
                region: usage.region.clone(),
                model: usage.model.clone(),
                approved_model: approval.review.model_id.as_str().to_owned(),
                approved_regions: approval.scope.regions.iter().map(|r| r.as_str().to_owned()).collect(),
            },
            rationale,
        );
        let task_id = plan.task_id;
        let tasks = CommandHandler::<finops_domain::tasks::Task>::new(self.store.clone());
        let create = finops_domain::tasks::TaskCommand::Create { plan, at: Utc::now() };
        tasks
            .execute(&streams::task(task_id), &create, &side_effect(context, "task"))
            .await
            .map_err(from_governance)?;
        Ok(ActionOutcome { resources: vec![format!("tasks/{task_id}")], ..Default::default() })
    }
}

/// The context of a command an action issues: the same person and correlation as the
/// action, its own request id derived from the action's (a retry issues nothing twice).
fn side_effect(context: &CommandContext, purpose: &str) -> CommandContext {
    CommandContext {
        request_id: Uuid::new_v5(&context.request_id, purpose.as_bytes()),
        fingerprint: None,
        causation_id: None,
        ..context.clone()
    }
}

/// The first day of the gap's first period with spend (this month's first day if none):
/// from when an action that takes the gap's resource charges it.
fn gap_start(gap: &AllocationGap) -> NaiveDate {
    gap.spend
        .keys()
        .next()
        .and_then(|p| finops_domain::cur_batches::billing_period_start(p))
        .unwrap_or_else(|| first_of_month(Utc::now().date_naive()))
}

fn first_of_month(day: NaiveDate) -> NaiveDate {
    NaiveDate::from_ymd_opt(day.year(), day.month(), 1).unwrap_or(day)
}
