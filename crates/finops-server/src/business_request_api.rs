//! `finops.v1.BusinessRequestService`: submission, review and the request lifecycle over
//! gRPC. Authorisation is checked before any command is decided. What an approval calls
//! for (the Cloud Engineer tasks, the reservation of its generated role) is done by the
//! approval's fan-out, a process that follows the log (finops-processes), not here.

use std::sync::Arc;

use chrono::Utc;
use finops_domain::catalog::CatalogEntry;
use finops_domain::pricing::{self, PriceTable, UsageProfile};
use finops_domain::request::UseCase;
use finops_domain::request::{BusinessRequest, RequestCommand, RequestStatus, Review};
use finops_domain::role::RoleSuffix;
use finops_domain::vocabulary::{ModelId, Region};
use finops_eventlog::EventStore;
use finops_governance::{CommandHandler, Loaded, streams};
use finops_projections::{ReadModels, RequestQueue};
use finops_proto::v1 as pb;
use finops_proto::v1::business_request_service_server::BusinessRequestService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::auth::{Authenticator, Principal, Role};
use crate::status::{from_governance, not_found};
use crate::wire::{self, Fields};

/// Serves Business Requests from the event log.
#[derive(Clone)]
pub struct BusinessRequestApi {
    requests: CommandHandler<BusinessRequest>,
    store: Arc<dyn EventStore>,
    org: CommandHandler<finops_domain::org::Organisation>,
    catalog: CommandHandler<CatalogEntry>,
    auth: Arc<Authenticator>,
    read_models: ReadModels,
    prices: Arc<PriceTable>,
    ha_premium_percent: u64,
    coding_profile: UsageProfile,
}

impl BusinessRequestApi {
    /// Serves `store`, authenticating with `auth`.
    pub fn new(
        store: Arc<dyn EventStore>,
        read_models: ReadModels,
        org: CommandHandler<finops_domain::org::Organisation>,
        auth: Arc<Authenticator>,
        prices: Arc<PriceTable>,
        ha_premium_percent: u64,
        coding_profile: UsageProfile,
    ) -> Self {
        Self {
            requests: CommandHandler::new(store.clone()),
            org,
            catalog: CommandHandler::new(store.clone()),
            store,
            auth,
            read_models,
            prices,
            ha_premium_percent,
            coding_profile,
        }
    }

    /// Loads an existing request and checks the caller may see it.
    pub(crate) async fn load_visible(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<Loaded<BusinessRequest>, Status> {
        self.load_visible_as_of(principal, id, None).await
    }

    /// The request as of `as_of` (now when `None`), if the caller may see it. Who may see a
    /// request never changes after its submission, so the check is the same at any instant.
    async fn load_visible_as_of(
        &self,
        principal: &Principal,
        id: Uuid,
        as_of: Option<chrono::DateTime<Utc>>,
    ) -> Result<Loaded<BusinessRequest>, Status> {
        let loaded = self.requests.load_as_of(&streams::business_request(id), as_of).await.map_err(from_governance)?;
        if loaded.state.status == RequestStatus::New {
            return Err(not_found(format!("businessRequests/{id}")));
        }
        match principal.role {
            role if role.sees_everything() => Ok(loaded),
            Role::ProductOwner if loaded.state.requested_by == principal.subject => Ok(loaded),
            Role::PortfolioOwner if self.portfolio_products(principal).await?.contains(&loaded.state.product_id) => {
                Ok(loaded)
            }
            Role::ProductOwner => Err(Status::permission_denied(format!(
                "businessRequests/{id} belongs to another Product Owner; {} sees only their own",
                principal.subject
            ))),
            other => Err(Status::permission_denied(format!(
                "{} ({}) may not read business requests",
                principal.subject,
                other.as_str()
            ))),
        }
    }

    /// The products in the portfolios `principal` owns.
    async fn portfolio_products(&self, principal: &Principal) -> Result<std::collections::BTreeSet<Uuid>, Status> {
        let org = self.org.load(&streams::organisation()).await.map_err(from_governance)?.state;
        Ok(org
            .products
            .iter()
            .filter(|(_, p)| org.portfolios.get(&p.portfolio_id).is_some_and(|pf| pf.owner == principal.subject))
            .map(|(id, _)| *id)
            .collect())
    }

    /// Loads a request its owner is about to act on.
    async fn load_owned(&self, principal: &Principal, id: Uuid) -> Result<Loaded<BusinessRequest>, Status> {
        principal.require(&[Role::ProductOwner], "revise or withdraw business requests")?;
        self.load_visible(principal, id).await
    }

    fn reply(id: Uuid, loaded: &Loaded<BusinessRequest>) -> Response<pb::BusinessRequest> {
        Response::new(wire::business_request_to_wire(id, &loaded.state, loaded.version))
    }
}

/// The role-name suffix for an approval: drawn from the request id, so a retried approval
/// proposes the same name.
fn role_suffix(request_id: Uuid) -> RoleSuffix {
    let bytes = Uuid::new_v5(&request_id, b"role-suffix").into_bytes();
    RoleSuffix::from_entropy(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

#[tonic::async_trait]
impl BusinessRequestService for BusinessRequestApi {
    #[tracing::instrument(skip_all)]
    async fn submit_business_request(
        &self,
        request: Request<pb::SubmitBusinessRequestRequest>,
    ) -> Result<Response<pb::BusinessRequest>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&[Role::ProductOwner], "submit business requests")?;
        let body = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&body);
        let mut fields = Fields::default();
        let product_id = wire::uuid(&mut fields, "product_id", &body.product_id);
        let details = wire::details(&mut fields, body.details.as_ref());
        let request_id = wire::request_id(&mut fields, &body.request_id);
        fields.finish()?;
        let (Some(product_id), Some(details)) = (product_id, details) else { unreachable!("fields checked") };
        // A Product Owner asks for AI for a product they own.
        let org = self.org.load(&streams::organisation()).await.map_err(from_governance)?.state;
        match org.products.get(&product_id) {
            None => {
                return Err(crate::status::invalid_argument(vec![finops_domain::FieldViolation::new(
                    "product_id",
                    format!("no product {product_id} in the organisation; the FinOps Lead adds products"),
                )]));
            }
            Some(product) if product.owner != principal.subject => {
                return Err(Status::permission_denied(format!(
                    "product {product_id} ({}) is owned by another Product Owner",
                    product.name
                )));
            }
            Some(_) => {}
        }
        let command = RequestCommand::Submit {
            request_id,
            product_id,
            requested_by: principal.subject.clone(),
            details,
            at: Utc::now(),
        };
        let context = principal.context(&fingerprint, request_id, None);
        let loaded = self
            .requests
            .execute(&streams::business_request(request_id), &command, &context)
            .await
            .map_err(from_governance)?;
        if loaded.state.requested_by != principal.subject {
            // The request id names someone else's request: do not reveal it.
            return Err(Status::already_exists(format!("request_id {request_id} is already used")));
        }
        Ok(Self::reply(request_id, &loaded))
    }

    #[tracing::instrument(skip_all)]
    async fn get_business_request(
        &self,
        request: Request<pb::GetBusinessRequestRequest>,
    ) -> Result<Response<pb::BusinessRequest>, Status> {
        let principal = self.auth.principal(&request)?;
        let mut fields = Fields::default();
        let id = wire::business_request_name(&mut fields, &request.get_ref().name);
        let as_of = wire::as_of(&mut fields, &request.get_ref().as_of);
        fields.finish()?;
        let id = id.expect("checked");
        let loaded = self.load_visible_as_of(&principal, id, as_of).await?;
        Ok(Self::reply(id, &loaded))
    }

    #[tracing::instrument(skip_all)]
    async fn approve_business_request(
        &self,
        request: Request<pb::ApproveBusinessRequestRequest>,
    ) -> Result<Response<pb::BusinessRequest>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&[Role::FinopsLead], "approve business requests")?;
        let body = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&body);
        let mut fields = Fields::default();
        let id = wire::business_request_name(&mut fields, &body.name);
        let input = wire::review(&mut fields, body.review.as_ref());
        fields.domain("", finops_domain::rationale_violations(&body.rationale));
        let request_id = wire::request_id(&mut fields, &body.request_id);
        fields.finish()?;
        let (Some(id), Some(input)) = (id, input) else { unreachable!("fields checked") };

        let catalog = self
            .catalog
            .load(&streams::catalog_model(input.platform, input.model_id.as_str()))
            .await
            .map_err(from_governance)?;
        let review = Review {
            platform: input.platform,
            model_id: input.model_id,
            account: input.account,
            region: input.region,
            actions: input.actions,
            role_suffix: role_suffix(request_id),
            workspace: input.workspace,
            map_mpe_id: input.map_mpe_id,
            confirmed_estimate: input.confirmed_estimate,
            budget_id: input.budget_id,
        };
        let org = self.org.load(&streams::organisation()).await.map_err(from_governance)?.state;
        let account_budgets = org.budgets_of(&review.account).into_iter().map(|(id, _)| id).collect();
        let stream = streams::business_request(id);
        let existing = self.requests.load(&stream).await.map_err(from_governance)?;
        if existing.state.status == RequestStatus::New {
            return Err(not_found(format!("businessRequests/{id}")));
        }
        let command = RequestCommand::Approve {
            review,
            workload_id: Uuid::new_v5(&request_id, b"workload"),
            catalog: catalog.state.standing(),
            account_budgets,
            by: principal.subject.clone(),
            rationale: body.rationale.clone(),
            at: Utc::now(),
        };
        let context = principal.context(&fingerprint, request_id, Some(body.rationale.clone()));
        let loaded = self.requests.execute(&stream, &command, &context).await.map_err(from_governance)?;
        Ok(Self::reply(id, &loaded))
    }

    #[tracing::instrument(skip_all)]
    async fn reject_business_request(
        &self,
        request: Request<pb::RejectBusinessRequestRequest>,
    ) -> Result<Response<pb::BusinessRequest>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&[Role::FinopsLead], "reject business requests")?;
        let body = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&body);
        let mut fields = Fields::default();
        let id = wire::business_request_name(&mut fields, &body.name);
        fields.domain("", finops_domain::rationale_violations(&body.rationale));
        let request_id = wire::request_id(&mut fields, &body.request_id);
        fields.finish()?;
        let id = id.expect("checked");
        self.load_visible(&principal, id).await?;
        let command =
            RequestCommand::Reject { by: principal.subject.clone(), rationale: body.rationale.clone(), at: Utc::now() };
        let context = principal.context(&fingerprint, request_id, Some(body.rationale));
        let loaded =
            self.requests.execute(&streams::business_request(id), &command, &context).await.map_err(from_governance)?;
        Ok(Self::reply(id, &loaded))
    }

    #[tracing::instrument(skip_all)]
    async fn resubmit_business_request(
        &self,
        request: Request<pb::ResubmitBusinessRequestRequest>,
    ) -> Result<Response<pb::BusinessRequest>, Status> {
        let principal = self.auth.principal(&request)?;
        let body = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&body);
        let mut fields = Fields::default();
        let id = wire::business_request_name(&mut fields, &body.name);
        let details = wire::details(&mut fields, body.details.as_ref());
        let request_id = wire::request_id(&mut fields, &body.request_id);
        principal.require(&[Role::ProductOwner], "revise or withdraw business requests")?;
        fields.finish()?;
        let (Some(id), Some(details)) = (id, details) else { unreachable!("fields checked") };
        self.load_owned(&principal, id).await?;
        let command = RequestCommand::Resubmit { details, by: principal.subject.clone(), at: Utc::now() };
        let context = principal.context(&fingerprint, request_id, None);
        let loaded =
            self.requests.execute(&streams::business_request(id), &command, &context).await.map_err(from_governance)?;
        Ok(Self::reply(id, &loaded))
    }

    #[tracing::instrument(skip_all)]
    async fn withdraw_business_request(
        &self,
        request: Request<pb::WithdrawBusinessRequestRequest>,
    ) -> Result<Response<pb::BusinessRequest>, Status> {
        let principal = self.auth.principal(&request)?;
        let body = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&body);
        let mut fields = Fields::default();
        let id = wire::business_request_name(&mut fields, &body.name);
        let request_id = wire::request_id(&mut fields, &body.request_id);
        principal.require(&[Role::ProductOwner], "revise or withdraw business requests")?;
        fields.finish()?;
        let id = id.expect("checked");
        self.load_owned(&principal, id).await?;
        let reason = (!body.reason.trim().is_empty()).then(|| body.reason.clone());
        let command =
            RequestCommand::Withdraw { by: principal.subject.clone(), reason: reason.clone(), at: Utc::now() };
        let context = principal.context(&fingerprint, request_id, reason);
        let loaded =
            self.requests.execute(&streams::business_request(id), &command, &context).await.map_err(from_governance)?;
        Ok(Self::reply(id, &loaded))
    }

    #[tracing::instrument(skip_all)]
    async fn list_business_requests(
        &self,
        request: Request<pb::ListBusinessRequestsRequest>,
    ) -> Result<Response<pb::ListBusinessRequestsResponse>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(
            &[Role::ProductOwner, Role::PortfolioOwner, Role::FinopsLead, Role::Finance, Role::Auditor],
            "list business requests",
        )?;
        // A Portfolio Owner sees the requests of their portfolio's products.
        let portfolio: Option<Vec<String>> = match principal.role {
            Role::PortfolioOwner => {
                Some(self.portfolio_products(&principal).await?.iter().map(Uuid::to_string).collect())
            }
            _ => None,
        };
        let body = request.into_inner();
        let mut fields = Fields::default();
        let page_size = wire::page_size(&mut fields, body.page_size);
        let status = pb::RequestStatus::try_from(body.status).unwrap_or(pb::RequestStatus::Unspecified);
        let as_of = wire::as_of(&mut fields, &body.as_of);
        fields.finish()?;
        let own_only = principal.role == Role::ProductOwner;
        let subject = principal.subject.clone();
        let keep = move |doc: &serde_json::Value| {
            (!own_only || doc["requested_by"] == subject.as_str())
                && portfolio.as_ref().is_none_or(|products| products.iter().any(|p| doc["product_id"] == p.as_str()))
                && (status == pb::RequestStatus::Unspecified
                    || wire::request_status(&wire::text(doc, "status")) == status as i32)
        };
        let view = wire::read_model_view(&self.read_models, &self.store, Arc::new(RequestQueue), as_of).await?;
        let page = wire::page_result(view.list(RequestQueue::NAME, page_size, &body.page_token, keep).await)?;
        let business_requests = page
            .documents
            .iter()
            .map(|d| pb::BusinessRequestSummary {
                name: wire::text(d, "name"),
                status: wire::request_status(&wire::text(d, "status")),
                requested_by: wire::text(d, "requested_by"),
                product_id: wire::text(d, "product_id"),
                workload_name: wire::text(d, "workload_name"),
                use_case: wire::text(d, "use_case"),
                priority: d["priority"].as_bool().unwrap_or(false),
                revision: d["revision"].as_u64().unwrap_or(0) as u32,
                workload_id: wire::text(d, "workload_id"),
                role_name: wire::text(d, "role_name"),
                submitted_at: wire::text(d, "submitted_at"),
                version: d["version"].as_u64().unwrap_or(0),
            })
            .collect();
        Ok(Response::new(pb::ListBusinessRequestsResponse { business_requests, next_page_token: page.next_page_token }))
    }

    #[tracing::instrument(skip_all)]
    async fn estimate_business_request(
        &self,
        request: Request<pb::EstimateBusinessRequestRequest>,
    ) -> Result<Response<pb::CostEstimate>, Status> {
        let principal = self.auth.principal(&request)?;
        let body = request.into_inner();
        let mut fields = Fields::default();
        let id = wire::business_request_name(&mut fields, &body.name);
        let model = (!body.model_id.trim().is_empty())
            .then(|| fields.check("model_id", ModelId::parse(body.model_id.trim())))
            .flatten();
        let region = (!body.region.trim().is_empty())
            .then(|| fields.check("region", Region::parse(body.region.trim())))
            .flatten();
        fields.finish()?;
        let loaded = self.load_visible(&principal, id.expect("checked")).await?;
        let details = loaded.state.details.as_ref().expect("submitted requests have details");
        let priced = match &details.use_case {
            UseCase::Coding { developers, active_percent } => {
                let mut profile = self.coding_profile.clone();
                if let Some(m) = model {
                    profile.reference_model = m;
                }
                if let Some(r) = region {
                    profile.reference_region = r;
                }
                pricing::estimate_coding(*developers, *active_percent, &profile, &self.prices)
            }
            UseCase::Operations { monthly_budget, availability, .. } => {
                let priced_on = model.as_ref().zip(region.as_ref());
                pricing::estimate_operations(
                    monthly_budget,
                    priced_on,
                    *availability,
                    self.ha_premium_percent,
                    &self.prices,
                )
            }
        };
        let estimate = priced.map_err(|e| match e {
            pricing::PricingError::NeedsModel => {
                crate::status::invalid_argument(vec![finops_domain::FieldViolation::new(
                    "model_id",
                    "a token budget is priced on a model and region: give model_id and region",
                )])
            }
            other => Status::failed_precondition(other.to_string()),
        })?;
        Ok(Response::new(pb::CostEstimate {
            monthly_cents: estimate.monthly.0,
            tokens: estimate.tokens.map(|t| pb::TokenBreakdown {
                input: t.input,
                output: t.output,
                cache_read: t.cache_read,
                cache_write: t.cache_write,
            }),
            assumptions: estimate.assumptions,
            price_snapshot: self.prices.snapshot_date.clone(),
            monthly_ccu: pricing::ccu_for(estimate.monthly, &self.prices),
        }))
    }
}
