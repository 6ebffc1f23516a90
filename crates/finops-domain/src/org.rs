//! The organisation (DOMAIN.md §1): portfolios hold products, products hold workloads;
//! AWS accounts each have one or more budgets (cost centres) mapped to them, and a
//! workload charges one budget. One aggregate for the whole organisation: it is small,
//! changes rarely, and its invariants (unique names, parents exist) span all of it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::error::{DomainError, Violations};
use crate::vocabulary::AccountId;

/// A portfolio.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Portfolio {
    /// Its name (unique).
    pub name: String,
    /// The Portfolio Owner.
    pub owner: String,
}

/// A product in a portfolio.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// The portfolio.
    pub portfolio_id: Uuid,
    /// Its name (unique within the portfolio).
    pub name: String,
    /// The Product Owner.
    pub owner: String,
}

/// A budget (cost centre) mapped to an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// The account it is mapped to.
    pub account: AccountId,
    /// Its name.
    pub name: String,
    /// Whether it pays for AI (claimed workloads) or absorbs shared spend only.
    pub cost_centre: String,
}

/// What may be asked of the organisation.
#[derive(Debug, Clone, PartialEq)]
pub enum OrgCommand {
    /// Add a portfolio.
    AddPortfolio {
        /// Its id.
        portfolio_id: Uuid,
        /// What it is.
        portfolio: Portfolio,
        /// When.
        at: DateTime<Utc>,
    },
    /// Add a product to a portfolio.
    AddProduct {
        /// Its id.
        product_id: Uuid,
        /// What it is.
        product: Product,
        /// When.
        at: DateTime<Utc>,
    },
    /// Register an AWS account.
    RegisterAccount {
        /// The account.
        account: AccountId,
        /// A readable name.
        name: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Map a budget to a registered account.
    MapBudget {
        /// Its id.
        budget_id: Uuid,
        /// What it is.
        budget: Budget,
        /// When.
        at: DateTime<Utc>,
    },
}

/// What the organisation records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum OrgEvent {
    /// A portfolio was added.
    PortfolioAdded {
        /// Its id.
        portfolio_id: Uuid,
        /// What it is.
        portfolio: Portfolio,
        /// When.
        at: DateTime<Utc>,
    },
    /// A product was added.
    ProductAdded {
        /// Its id.
        product_id: Uuid,
        /// What it is.
        product: Product,
        /// When.
        at: DateTime<Utc>,
    },
    /// An account was registered.
    AccountRegistered {
        /// The account.
        account: AccountId,
        /// Its name.
        name: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// A budget was mapped to an account.
    BudgetMapped {
        /// Its id.
        budget_id: Uuid,
        /// What it is.
        budget: Budget,
        /// When.
        at: DateTime<Utc>,
    },
}

/// The organisation folded from its events.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Organisation {
    /// Portfolios by id.
    pub portfolios: BTreeMap<Uuid, Portfolio>,
    /// Products by id.
    pub products: BTreeMap<Uuid, Product>,
    /// Accounts and their names.
    pub accounts: BTreeMap<AccountId, String>,
    /// Budgets by id.
    pub budgets: BTreeMap<Uuid, Budget>,
}

impl Organisation {
    /// The budgets mapped to `account`, in name order (then id): the order chargeback
    /// splits in and the first of which a workload in the account charges.
    pub fn budgets_of(&self, account: &AccountId) -> Vec<(Uuid, &Budget)> {
        let mut budgets: Vec<_> =
            self.budgets.iter().filter(|(_, b)| &b.account == account).map(|(id, b)| (*id, b)).collect();
        budgets.sort_by(|a, b| a.1.name.cmp(&b.1.name).then(a.0.cmp(&b.0)));
        budgets
    }

    /// The products a Product Owner owns.
    pub fn products_owned_by<'a>(&'a self, owner: &'a str) -> impl Iterator<Item = (&'a Uuid, &'a Product)> {
        self.products.iter().filter(move |(_, p)| p.owner == owner)
    }
}

fn required(v: &mut Violations, field: &str, value: &str) {
    if value.trim().is_empty() {
        v.add(field, "is required");
    }
}

/// What a portfolio and a product share: a name and an owner (no state needed), for an
/// API to report beside its parse errors.
pub fn named_and_owned_violations(name: &str, owner: &str) -> Vec<crate::FieldViolation> {
    let mut v = Violations::default();
    required(&mut v, "name", name);
    required(&mut v, "owner", owner);
    v.into_vec()
}

/// The rule every named thing of the organisation shares: a name (no state needed).
pub fn name_violations(name: &str) -> Vec<crate::FieldViolation> {
    let mut v = Violations::default();
    required(&mut v, "name", name);
    v.into_vec()
}

impl Aggregate for Organisation {
    type Command = OrgCommand;
    type Event = OrgEvent;
    type Error = DomainError;

    fn decide(&self, command: &OrgCommand) -> Result<Vec<OrgEvent>, DomainError> {
        // Every rule is checked and every violation reported at once.
        let mut v = Violations::default();
        match command {
            OrgCommand::AddPortfolio { portfolio_id, portfolio, at } => {
                if self.portfolios.get(portfolio_id) == Some(portfolio) {
                    return Ok(vec![]);
                }
                required(&mut v, "name", &portfolio.name);
                required(&mut v, "owner", &portfolio.owner);
                if self.portfolios.contains_key(portfolio_id) {
                    v.add("portfolio_id", format!("portfolio {portfolio_id} already exists"));
                }
                if self.portfolios.values().any(|p| p.name == portfolio.name) {
                    v.add("name", format!("a portfolio named `{}` already exists", portfolio.name));
                }
                v.into_result()?;
                Ok(vec![OrgEvent::PortfolioAdded {
                    portfolio_id: *portfolio_id,
                    portfolio: portfolio.clone(),
                    at: *at,
                }])
            }
            OrgCommand::AddProduct { product_id, product, at } => {
                if self.products.get(product_id) == Some(product) {
                    return Ok(vec![]);
                }
                required(&mut v, "name", &product.name);
                required(&mut v, "owner", &product.owner);
                if !self.portfolios.contains_key(&product.portfolio_id) {
                    v.add("portfolio_id", format!("no portfolio {}", product.portfolio_id));
                }
                if self.products.contains_key(product_id) {
                    v.add("product_id", format!("product {product_id} already exists"));
                }
                if self.products.values().any(|p| p.portfolio_id == product.portfolio_id && p.name == product.name) {
                    v.add("name", format!("the portfolio already has a product named `{}`", product.name));
                }
                v.into_result()?;
                Ok(vec![OrgEvent::ProductAdded { product_id: *product_id, product: product.clone(), at: *at }])
            }
            OrgCommand::RegisterAccount { account, name, at } => {
                if self.accounts.get(account) == Some(name) {
                    return Ok(vec![]);
                }
                required(&mut v, "name", name);
                if self.accounts.contains_key(account) {
                    v.add("account_id", format!("account {account} is already registered"));
                }
                v.into_result()?;
                Ok(vec![OrgEvent::AccountRegistered { account: account.clone(), name: name.clone(), at: *at }])
            }
            OrgCommand::MapBudget { budget_id, budget, at } => {
                if self.budgets.get(budget_id) == Some(budget) {
                    return Ok(vec![]);
                }
                required(&mut v, "name", &budget.name);
                if !self.accounts.contains_key(&budget.account) {
                    v.add("account_id", format!("account {} is not registered", budget.account));
                }
                if self.budgets.contains_key(budget_id) {
                    v.add("budget_id", format!("budget {budget_id} already exists"));
                }
                v.into_result()?;
                Ok(vec![OrgEvent::BudgetMapped { budget_id: *budget_id, budget: budget.clone(), at: *at }])
            }
        }
    }

    fn evolve(mut self, event: &OrgEvent) -> Self {
        match event {
            OrgEvent::PortfolioAdded { portfolio_id, portfolio, .. } => {
                self.portfolios.insert(*portfolio_id, portfolio.clone());
            }
            OrgEvent::ProductAdded { product_id, product, .. } => {
                self.products.insert(*product_id, product.clone());
            }
            OrgEvent::AccountRegistered { account, name, .. } => {
                self.accounts.insert(account.clone(), name.clone());
            }
            OrgEvent::BudgetMapped { budget_id, budget, .. } => {
                self.budgets.insert(*budget_id, budget.clone());
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::spec::given;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-01T08:00:00Z").unwrap().with_timezone(&Utc)
    }
    const P: Uuid = Uuid::from_u128(10);

    fn portfolio_added() -> OrgEvent {
        OrgEvent::PortfolioAdded {
            portfolio_id: P,
            portfolio: Portfolio { name: "Claims".into(), owner: "pf-omar".into() },
            at: now(),
        }
    }

    #[test]
    fn the_hierarchy_is_built_parents_first() {
        let product = Product { portfolio_id: P, name: "Triage".into(), owner: "po-maria".into() };
        let err = given::<Organisation>(&[])
            .when(OrgCommand::AddProduct { product_id: Uuid::from_u128(11), product: product.clone(), at: now() })
            .unwrap_err();
        assert!(err.to_string().contains("portfolio_id: no portfolio"), "{err}");
        let events = given::<Organisation>(&[portfolio_added()])
            .when(OrgCommand::AddProduct { product_id: Uuid::from_u128(11), product, at: now() })
            .unwrap();
        let org = Organisation::fold([portfolio_added()].iter().chain(&events));
        assert_eq!(org.products_owned_by("po-maria").count(), 1);
    }

    #[test]
    fn budgets_map_to_registered_accounts() {
        let account = AccountId::parse("123456789012").unwrap();
        let budget = Budget { account: account.clone(), name: "Claims AI".into(), cost_centre: "CC-100".into() };
        let err = given::<Organisation>(&[])
            .when(OrgCommand::MapBudget { budget_id: Uuid::from_u128(1), budget: budget.clone(), at: now() })
            .unwrap_err();
        assert!(err.to_string().contains("is not registered"), "{err}");
        let registered =
            OrgEvent::AccountRegistered { account: account.clone(), name: "claims-prod".into(), at: now() };
        let events = given::<Organisation>(std::slice::from_ref(&registered))
            .when(OrgCommand::MapBudget { budget_id: Uuid::from_u128(1), budget, at: now() })
            .unwrap();
        let org = Organisation::fold([registered].iter().chain(&events));
        assert_eq!(org.budgets_of(&account).len(), 1);
    }

    /// Regression (issue 10.10): the first fault only was named.
    #[test]
    fn every_fault_is_named_at_once() {
        let err = given::<Organisation>(&[])
            .when(OrgCommand::AddProduct {
                product_id: Uuid::from_u128(11),
                product: Product { portfolio_id: P, name: " ".into(), owner: "".into() },
                at: now(),
            })
            .unwrap_err();
        let DomainError::Invalid(v) = err else { panic!("{err}") };
        assert_eq!(v.iter().map(|v| v.field.as_str()).collect::<Vec<_>>(), vec!["name", "owner", "portfolio_id"]);
    }

    #[test]
    fn names_are_unique() {
        let err = given::<Organisation>(&[portfolio_added()])
            .when(OrgCommand::AddPortfolio {
                portfolio_id: Uuid::from_u128(99),
                portfolio: Portfolio { name: "Claims".into(), owner: "x".into() },
                at: now(),
            })
            .unwrap_err();
        assert_eq!(err.to_string(), "invalid request: name: a portfolio named `Claims` already exists");
    }
}
