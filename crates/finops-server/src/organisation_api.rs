//! `finops.v1.OrganisationService`: portfolios, products, accounts and budgets.

use std::sync::Arc;

use chrono::Utc;
use finops_domain::org::{Budget, OrgCommand, Organisation, Portfolio, Product};
use finops_domain::role_patterns::{RolePatternCommand, RolePatternEvent, RolePatternPolicy, RolePatterns};
use finops_domain::vocabulary::AccountId;
use finops_eventlog::{EventStore, StreamRead};
use finops_governance::{CommandHandler, Loaded, streams};
use finops_proto::v1 as pb;
use finops_proto::v1::organisation_service_server::OrganisationService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::auth::{Authenticator, Principal, Role};
use crate::status::from_governance;
use crate::wire::{self, Fields};

/// Serves the organisation.
#[derive(Clone)]
pub struct OrganisationApi {
    org: CommandHandler<Organisation>,
    patterns: CommandHandler<RolePatternPolicy>,
    store: Arc<dyn EventStore>,
    /// The configuration's patterns, in force until the FinOps Lead records some.
    default_patterns: RolePatterns,
    auth: Arc<Authenticator>,
}

/// The organisation as the wire shows it.
pub fn to_wire(loaded: &Loaded<Organisation>) -> pb::Organisation {
    let o = &loaded.state;
    pb::Organisation {
        portfolios: o
            .portfolios
            .iter()
            .map(|(id, p)| pb::PortfolioEntry {
                portfolio_id: id.to_string(),
                name: p.name.clone(),
                owner: p.owner.clone(),
            })
            .collect(),
        products: o
            .products
            .iter()
            .map(|(id, p)| pb::ProductEntry {
                product_id: id.to_string(),
                portfolio_id: p.portfolio_id.to_string(),
                name: p.name.clone(),
                owner: p.owner.clone(),
            })
            .collect(),
        accounts: o
            .accounts
            .iter()
            .map(|(a, n)| pb::AccountEntry { account_id: a.to_string(), name: n.clone() })
            .collect(),
        budgets: o
            .budgets
            .iter()
            .map(|(id, b)| pb::BudgetEntry {
                budget_id: id.to_string(),
                account_id: b.account.to_string(),
                name: b.name.clone(),
                cost_centre: b.cost_centre.clone(),
            })
            .collect(),
        version: loaded.version,
    }
}

impl OrganisationApi {
    /// Serves `store` and the organisation through `org`; `default_patterns` apply until a
    /// decision is recorded.
    pub fn new(
        store: Arc<dyn EventStore>,
        org: CommandHandler<Organisation>,
        default_patterns: RolePatterns,
        auth: Arc<Authenticator>,
    ) -> Self {
        Self { org, patterns: CommandHandler::new(store.clone()), store, default_patterns, auth }
    }

    /// The patterns in force after `events` (the configuration's when none), as the wire
    /// shows them.
    fn patterns_to_wire(&self, events: &[finops_eventlog::RecordedEvent]) -> Result<pb::RolePatterns, Status> {
        let last = events.last();
        let Some(last) = last else {
            return Ok(pb::RolePatterns {
                broad: self.default_patterns.broad.clone(),
                dedicated: self.default_patterns.dedicated.clone(),
                source: "configuration".into(),
                ..Default::default()
            });
        };
        let RolePatternEvent::RolePatternsSet { patterns, by, rationale, at } =
            finops_governance::decode(last).map_err(from_governance)?;
        Ok(pb::RolePatterns {
            broad: patterns.broad,
            dedicated: patterns.dedicated,
            source: "log".into(),
            set_by: by,
            set_at: at.to_rfc3339(),
            rationale,
            version: last.stream_version,
        })
    }

    async fn run(
        &self,
        principal: &Principal,
        fingerprint: &str,
        request_id: Uuid,
        command: OrgCommand,
    ) -> Result<Response<pb::Organisation>, Status> {
        let context = principal.context(fingerprint, request_id, None);
        let loaded = self.org.execute(&streams::organisation(), &command, &context).await.map_err(from_governance)?;
        Ok(Response::new(to_wire(&loaded)))
    }

    fn writer<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        let principal = self.auth.principal(request)?;
        principal.require(&[Role::FinopsLead], "change the organisation")?;
        Ok(principal)
    }
}

/// Patterns as typed, without surrounding white space; empty entries dropped.
fn trimmed(patterns: Vec<String>) -> Vec<String> {
    patterns.into_iter().map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()).collect()
}

/// An id field that may be left empty: then it is derived from the request id.
fn id_or_derived(fields: &mut Fields, field: &str, text: &str, request_id: Uuid) -> Uuid {
    if text.trim().is_empty() {
        Uuid::new_v5(&request_id, field.as_bytes())
    } else {
        wire::uuid(fields, field, text).unwrap_or_default()
    }
}

#[tonic::async_trait]
impl OrganisationService for OrganisationApi {
    async fn add_portfolio(
        &self,
        request: Request<pb::AddPortfolioRequest>,
    ) -> Result<Response<pb::Organisation>, Status> {
        let principal = self.writer(&request)?;
        let b = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&b);
        let mut fields = Fields::default();
        let request_id = wire::request_id(&mut fields, &b.request_id);
        let portfolio_id = id_or_derived(&mut fields, "portfolio_id", &b.portfolio_id, request_id);
        let portfolio = Portfolio { name: b.name, owner: b.owner };
        fields.domain("", finops_domain::org::named_and_owned_violations(&portfolio.name, &portfolio.owner));
        fields.finish()?;
        let command = OrgCommand::AddPortfolio { portfolio_id, portfolio, at: Utc::now() };
        self.run(&principal, &fingerprint, request_id, command).await
    }

    async fn add_product(&self, request: Request<pb::AddProductRequest>) -> Result<Response<pb::Organisation>, Status> {
        let principal = self.writer(&request)?;
        let b = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&b);
        let mut fields = Fields::default();
        let request_id = wire::request_id(&mut fields, &b.request_id);
        let product_id = id_or_derived(&mut fields, "product_id", &b.product_id, request_id);
        let portfolio_id = wire::uuid(&mut fields, "portfolio_id", &b.portfolio_id);
        let product = Product { portfolio_id: portfolio_id.unwrap_or_default(), name: b.name, owner: b.owner };
        fields.domain("", finops_domain::org::named_and_owned_violations(&product.name, &product.owner));
        fields.finish()?;
        self.run(&principal, &fingerprint, request_id, OrgCommand::AddProduct { product_id, product, at: Utc::now() })
            .await
    }

    async fn register_account(
        &self,
        request: Request<pb::RegisterAccountRequest>,
    ) -> Result<Response<pb::Organisation>, Status> {
        let principal = self.writer(&request)?;
        let b = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&b);
        let mut fields = Fields::default();
        let request_id = wire::request_id(&mut fields, &b.request_id);
        let account = fields.check("account_id", AccountId::parse(&b.account_id));
        fields.domain("", finops_domain::org::name_violations(&b.name));
        fields.finish()?;
        let command = OrgCommand::RegisterAccount { account: account.expect("checked"), name: b.name, at: Utc::now() };
        self.run(&principal, &fingerprint, request_id, command).await
    }

    async fn map_budget(&self, request: Request<pb::MapBudgetRequest>) -> Result<Response<pb::Organisation>, Status> {
        let principal = self.writer(&request)?;
        let b = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&b);
        let mut fields = Fields::default();
        let request_id = wire::request_id(&mut fields, &b.request_id);
        let budget_id = id_or_derived(&mut fields, "budget_id", &b.budget_id, request_id);
        let account = fields.check("account_id", AccountId::parse(&b.account_id));
        fields.domain("", finops_domain::org::name_violations(&b.name));
        fields.finish()?;
        let budget = Budget { account: account.expect("checked"), name: b.name, cost_centre: b.cost_centre };
        self.run(&principal, &fingerprint, request_id, OrgCommand::MapBudget { budget_id, budget, at: Utc::now() })
            .await
    }

    async fn set_role_patterns(
        &self,
        request: Request<pb::SetRolePatternsRequest>,
    ) -> Result<Response<pb::RolePatterns>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&[Role::FinopsLead], "set role patterns")?;
        let b = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&b);
        let mut fields = Fields::default();
        let patterns = RolePatterns { broad: trimmed(b.broad), dedicated: trimmed(b.dedicated) };
        fields.domain("", patterns.violations());
        fields.domain("", finops_domain::rationale_violations(&b.rationale));
        let request_id = wire::request_id(&mut fields, &b.request_id);
        fields.finish()?;
        let command = RolePatternCommand::Set {
            patterns,
            by: principal.subject.clone(),
            rationale: b.rationale.clone(),
            at: Utc::now(),
        };
        let stream = streams::role_patterns();
        self.patterns
            .execute(&stream, &command, &principal.context(&fingerprint, request_id, Some(b.rationale)))
            .await
            .map_err(from_governance)?;
        let events = self.store.read_stream(&stream, StreamRead::all()).await.map_err(crate::status::from_log)?;
        Ok(Response::new(self.patterns_to_wire(&events)?))
    }

    async fn get_role_patterns(
        &self,
        request: Request<pb::GetRolePatternsRequest>,
    ) -> Result<Response<pb::RolePatterns>, Status> {
        self.auth.principal(&request)?;
        let mut fields = Fields::default();
        let as_of = wire::as_of(&mut fields, &request.get_ref().as_of);
        fields.finish()?;
        let mut events = self
            .store
            .read_stream(&streams::role_patterns(), StreamRead::all())
            .await
            .map_err(crate::status::from_log)?;
        events.retain(|e| as_of.is_none_or(|t| e.metadata.recorded_at <= t));
        Ok(Response::new(self.patterns_to_wire(&events)?))
    }

    async fn get_organisation(
        &self,
        request: Request<pb::GetOrganisationRequest>,
    ) -> Result<Response<pb::Organisation>, Status> {
        self.auth.principal(&request)?;
        let mut fields = Fields::default();
        let as_of = wire::as_of(&mut fields, &request.get_ref().as_of);
        fields.finish()?;
        let loaded = self.org.load_as_of(&streams::organisation(), as_of).await.map_err(from_governance)?;
        Ok(Response::new(to_wire(&loaded)))
    }
}
