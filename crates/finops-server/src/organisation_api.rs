//! `finops.v1.OrganisationService`: portfolios, products, accounts and budgets.

use std::sync::Arc;

use chrono::Utc;
use finops_domain::org::{Budget, OrgCommand, Organisation, Portfolio, Product};
use finops_domain::vocabulary::AccountId;
use finops_eventlog::EventStore;
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
    /// Serves `store`.
    pub fn new(store: Arc<dyn EventStore>, auth: Arc<Authenticator>) -> Self {
        Self { org: CommandHandler::new(store), auth }
    }

    async fn run(
        &self,
        principal: &Principal,
        request_id: Uuid,
        command: OrgCommand,
    ) -> Result<Response<pb::Organisation>, Status> {
        let context = principal.context(request_id, None);
        let loaded = self.org.execute(&streams::organisation(), &command, &context).await.map_err(from_governance)?;
        Ok(Response::new(to_wire(&loaded)))
    }

    fn writer<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        let principal = self.auth.principal(request)?;
        principal.require(&[Role::FinopsLead], "change the organisation")?;
        Ok(principal)
    }
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
        let mut fields = Fields::default();
        let request_id = wire::request_id(&mut fields, &b.request_id);
        let portfolio_id = id_or_derived(&mut fields, "portfolio_id", &b.portfolio_id, request_id);
        let portfolio = Portfolio { name: b.name, owner: b.owner };
        fields.domain("", finops_domain::org::named_and_owned_violations(&portfolio.name, &portfolio.owner));
        fields.finish()?;
        let command = OrgCommand::AddPortfolio { portfolio_id, portfolio, at: Utc::now() };
        self.run(&principal, request_id, command).await
    }

    async fn add_product(&self, request: Request<pb::AddProductRequest>) -> Result<Response<pb::Organisation>, Status> {
        let principal = self.writer(&request)?;
        let b = request.into_inner();
        let mut fields = Fields::default();
        let request_id = wire::request_id(&mut fields, &b.request_id);
        let product_id = id_or_derived(&mut fields, "product_id", &b.product_id, request_id);
        let portfolio_id = wire::uuid(&mut fields, "portfolio_id", &b.portfolio_id);
        let product = Product { portfolio_id: portfolio_id.unwrap_or_default(), name: b.name, owner: b.owner };
        fields.domain("", finops_domain::org::named_and_owned_violations(&product.name, &product.owner));
        fields.finish()?;
        self.run(&principal, request_id, OrgCommand::AddProduct { product_id, product, at: Utc::now() }).await
    }

    async fn register_account(
        &self,
        request: Request<pb::RegisterAccountRequest>,
    ) -> Result<Response<pb::Organisation>, Status> {
        let principal = self.writer(&request)?;
        let b = request.into_inner();
        let mut fields = Fields::default();
        let request_id = wire::request_id(&mut fields, &b.request_id);
        let account = fields.check("account_id", AccountId::parse(&b.account_id));
        fields.domain("", finops_domain::org::name_violations(&b.name));
        fields.finish()?;
        let command = OrgCommand::RegisterAccount { account: account.expect("checked"), name: b.name, at: Utc::now() };
        self.run(&principal, request_id, command).await
    }

    async fn map_budget(&self, request: Request<pb::MapBudgetRequest>) -> Result<Response<pb::Organisation>, Status> {
        let principal = self.writer(&request)?;
        let b = request.into_inner();
        let mut fields = Fields::default();
        let request_id = wire::request_id(&mut fields, &b.request_id);
        let budget_id = id_or_derived(&mut fields, "budget_id", &b.budget_id, request_id);
        let account = fields.check("account_id", AccountId::parse(&b.account_id));
        fields.domain("", finops_domain::org::name_violations(&b.name));
        fields.finish()?;
        let budget = Budget { account: account.expect("checked"), name: b.name, cost_centre: b.cost_centre };
        self.run(&principal, request_id, OrgCommand::MapBudget { budget_id, budget, at: Utc::now() }).await
    }

    async fn get_organisation(
        &self,
        request: Request<pb::GetOrganisationRequest>,
    ) -> Result<Response<pb::Organisation>, Status> {
        self.auth.principal(&request)?;
        let loaded = self.org.load(&streams::organisation()).await.map_err(from_governance)?;
        Ok(Response::new(to_wire(&loaded)))
    }
}
