//! The Business Request: how a Product Owner asks for AI, and how a FinOps Lead approves,
//! rejects, or sends it back. DOMAIN.md §2.
//!
//! Lifecycle: `Submitted → Approved | Rejected`; a rejected request may be revised and
//! resubmitted; an unapproved request may be withdrawn. Approval fixes the platform,
//! model, account, region, the generated role name and the FA Confirmed Estimate, and
//! creates the workload's approval scope.

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::error::{DomainError, FieldViolation, Violations};
use crate::role::{RoleName, RoleSuffix};
use crate::vocabulary::{AccountId, ApprovalScope, Cents, InvokeAction, ModelId, MonthlyAmount, Platform, Region};

/// Longest free-text description of an Operations request.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// Longest workload name.
pub const MAX_WORKLOAD_NAME_CHARS: usize = 120;

/// What kind of operational workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadType {
    /// Customer-facing support.
    CustomerSupport,
    /// Document processing.
    DocumentProcessing,
    /// Automation.
    Automation,
    /// An internal tool.
    InternalTool,
    /// Anything else.
    Other,
}

/// How available the workload must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// Single region, standard price.
    Standard,
    /// Cross-region inference profile, about 10 % price premium.
    HighAvailability,
}

/// The two ways a Product Owner describes the need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UseCase {
    /// AI for developers: how many, and how much of their day.
    Coding {
        /// 1–100 000 developers.
        developers: u32,
        /// 1–100 % of the workday in active use.
        active_percent: u8,
    },
    /// An operational workload.
    Operations {
        /// What kind.
        workload_type: WorkloadType,
        /// At most 500 characters.
        description: String,
        /// Standard or High Availability.
        availability: Availability,
        /// The PO's monthly figure, in dollars or tokens.
        monthly_budget: MonthlyAmount,
    },
}

/// A declared business case: annual figures the workload is expected to bring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BusinessCase {
    /// Annual cost saving (stored as `annual_cost_saving_cents`).
    #[serde(rename = "annual_cost_saving_cents")]
    pub annual_cost_saving: Option<Cents>,
    /// Annual revenue driven (stored as `annual_revenue_driving_cents`).
    #[serde(rename = "annual_revenue_driving_cents")]
    pub annual_revenue_driving: Option<Cents>,
}

/// What the Product Owner submits (and revises).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestDetails {
    /// The workload's name (for Coding: the team or tool using it). Becomes the role slug.
    pub workload_name: String,
    /// Coding or Operations.
    pub use_case: UseCase,
    /// Flagged as priority.
    #[serde(default)]
    pub priority: bool,
    /// First day of use.
    #[serde(default)]
    pub start: Option<NaiveDate>,
    /// Last day of use.
    #[serde(default)]
    pub end: Option<NaiveDate>,
    /// Expected monthly growth, percent (0–1000).
    #[serde(default)]
    pub monthly_growth_percent: Option<f64>,
    /// Declared business case.
    #[serde(default)]
    pub business_case: Option<BusinessCase>,
}

impl RequestDetails {
    /// Every rule of DOMAIN.md §2, all violations at once.
    pub fn validate(&self) -> Result<(), DomainError> {
        let mut v = Violations::default();
        let name = self.workload_name.trim();
        if name.is_empty() {
            v.add("workload_name", "is required");
        } else if name.chars().count() > MAX_WORKLOAD_NAME_CHARS {
            v.add("workload_name", format!("is longer than {MAX_WORKLOAD_NAME_CHARS} characters"));
        }
        match &self.use_case {
            UseCase::Coding { developers, active_percent } => {
                if !(1..=100_000).contains(developers) {
                    v.add("coding.developers", format!("must be 1–100000, got {developers}"));
                }
                if !(1..=100).contains(active_percent) {
                    v.add("coding.active_percent", format!("must be 1–100, got {active_percent}"));
                }
            }
            UseCase::Operations { description, monthly_budget, .. } => {
                let chars = description.chars().count();
                if description.trim().is_empty() {
                    v.add("operations.description", "is required");
                } else if chars > MAX_DESCRIPTION_CHARS {
                    v.add("operations.description", format!("is {chars} characters; at most {MAX_DESCRIPTION_CHARS}"));
                }
                v.check("operations.monthly_budget", monthly_budget.validate());
            }
        }
        if let (Some(start), Some(end)) = (self.start, self.end)
            && end < start
        {
            v.add("end", format!("{end} is before start {start}"));
        }
        if let Some(g) = self.monthly_growth_percent
            && (!g.is_finite() || !(0.0..=1000.0).contains(&g))
        {
            v.add("monthly_growth_percent", format!("must be 0–1000, got {g}"));
        }
        if let Some(case) = &self.business_case
            && case.annual_cost_saving.is_none()
            && case.annual_revenue_driving.is_none()
        {
            v.add("business_case", "names neither a cost saving nor revenue driving");
        }
        v.into_result()
    }
}

/// The FinOps Lead's configuration of an approved request (review steps 2 and 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// Where it runs.
    pub platform: Platform,
    /// Which model.
    pub model_id: ModelId,
    /// Which account.
    pub account: AccountId,
    /// Which region.
    pub region: Region,
    /// Actions the workload may call (default: invoke and converse, streaming or not).
    pub actions: BTreeSet<InvokeAction>,
    /// Random part of the role name, drawn by the handler.
    pub role_suffix: RoleSuffix,
    /// Claude Platform only: the workspace to create.
    pub workspace: Option<String>,
    /// MAP eligibility: the MPE id, which tags the inference profile `map-migrated=mig{id}`.
    pub map_mpe_id: Option<String>,
    /// The official monthly estimate, priced from the price table.
    pub confirmed_estimate: MonthlyAmount,
    /// The budget the workload charges: one mapped to the approved account. Left empty by
    /// the FinOps Lead, it is the account's only budget (several: the approval must name
    /// one). Approvals recorded before budgets were named carry none.
    #[serde(default)]
    pub budget_id: Option<Uuid>,
}

/// What the catalog says about the model under review, as the handler read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogStanding {
    /// Approved with this scope.
    Approved(ApprovalScope),
    /// Listed but not approved (pending review or revoked), or not listed at all.
    NotApproved(&'static str),
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Nothing submitted yet.
    #[default]
    New,
    /// Waiting for the FinOps Lead.
    Submitted,
    /// Approved: a workload exists.
    Approved,
    /// Sent back with a rationale; may be revised.
    Rejected,
    /// Withdrawn by the Product Owner.
    Withdrawn,
}

impl RequestStatus {
    fn name(self) -> &'static str {
        match self {
            Self::New => "not submitted",
            Self::Submitted => "submitted",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Withdrawn => "withdrawn",
        }
    }
}

/// What may be asked of a Business Request.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestCommand {
    /// A Product Owner submits.
    Submit {
        /// The request's id (the stream is `business-request-{id}`).
        request_id: Uuid,
        /// The product it belongs to.
        product_id: Uuid,
        /// The Product Owner.
        requested_by: String,
        /// What is asked.
        details: RequestDetails,
        /// When.
        at: DateTime<Utc>,
    },
    /// The FinOps Lead approves with a configuration and a rationale.
    Approve {
        /// The configuration.
        review: Review,
        /// The workload the approval creates.
        workload_id: Uuid,
        /// What the catalog says about the model.
        catalog: CatalogStanding,
        /// The budgets mapped to the approved account (the organisation, as the handler
        /// read it).
        account_budgets: Vec<Uuid>,
        /// Who.
        by: String,
        /// Why (required).
        rationale: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The FinOps Lead rejects with a rationale.
    Reject {
        /// Who.
        by: String,
        /// Why (required).
        rationale: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The Product Owner revises a rejected request and submits it again.
    Resubmit {
        /// The revised details.
        details: RequestDetails,
        /// Who.
        by: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The Product Owner withdraws an unapproved request.
    Withdraw {
        /// Who.
        by: String,
        /// Why (optional).
        reason: Option<String>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The FinOps Lead extends an approval to more accounts or regions (Add Scope, the
    /// answer to an Out of Approved Scope gap). The model stays the approved one: another
    /// model is another Business Request.
    ExtendScope {
        /// Accounts to add.
        accounts: BTreeSet<AccountId>,
        /// Regions to add.
        regions: BTreeSet<Region>,
        /// Who.
        by: String,
        /// Why (required).
        rationale: String,
        /// When.
        at: DateTime<Utc>,
    },
}

/// What a Business Request records.
// Events are built, serialised and folded one at a time; boxing the large variant would
// buy nothing and cost every match a dereference.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum RequestEvent {
    /// Submitted by a Product Owner.
    BusinessRequestSubmitted {
        /// The request.
        request_id: Uuid,
        /// Its product.
        product_id: Uuid,
        /// The Product Owner.
        requested_by: String,
        /// What was asked.
        details: RequestDetails,
        /// When.
        at: DateTime<Utc>,
    },
    /// Approved by the FinOps Lead: a workload, a role name and an approval scope exist.
    BusinessRequestApproved {
        /// The configuration.
        review: Review,
        /// The workload created.
        workload_id: Uuid,
        /// The workload's name (the request's latest revision).
        workload_name: String,
        /// The Product Owner who owns the workload.
        owner: String,
        /// The product it belongs to.
        product_id: Uuid,
        /// The generated dedicated role.
        role_name: RoleName,
        /// The workload's approval scope.
        scope: ApprovalScope,
        /// Who.
        by: String,
        /// Why.
        rationale: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Rejected and returned to the Product Owner.
    BusinessRequestRejected {
        /// Who.
        by: String,
        /// Why.
        rationale: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Revised after a rejection and submitted again.
    BusinessRequestResubmitted {
        /// The revised details.
        details: RequestDetails,
        /// Revision number (the first submission is 1).
        revision: u32,
        /// Who.
        by: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Withdrawn by the Product Owner.
    BusinessRequestWithdrawn {
        /// Who.
        by: String,
        /// Why, if given.
        reason: Option<String>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The approval's scope was extended (only what is new is listed).
    ApprovalScopeExtended {
        /// Accounts added.
        accounts: BTreeSet<AccountId>,
        /// Regions added.
        regions: BTreeSet<Region>,
        /// Who.
        by: String,
        /// Why.
        rationale: String,
        /// When.
        at: DateTime<Utc>,
    },
}

/// A Business Request folded from its events.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BusinessRequest {
    /// Where it stands.
    pub status: RequestStatus,
    /// Its id (nil before submission).
    pub request_id: Uuid,
    /// Its product.
    pub product_id: Uuid,
    /// The Product Owner who owns it.
    pub requested_by: String,
    /// The current details (latest revision).
    pub details: Option<RequestDetails>,
    /// 1 for the first submission, +1 per resubmission.
    pub revision: u32,
    /// Set on approval.
    pub approval: Option<Approval>,
    /// The latest rejection's rationale.
    pub last_rejection: Option<String>,
}

/// What approval fixed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The configuration.
    pub review: Review,
    /// The workload.
    pub workload_id: Uuid,
    /// The dedicated role.
    pub role_name: RoleName,
    /// The approval scope.
    pub scope: ApprovalScope,
}

/// What of a review could be read: each part `None` when the caller's value was unusable
/// (the API has already said why). The review's own rules are checked on what is there,
/// so one answer names every fault.
#[derive(Debug, Clone, Default)]
pub struct ReviewParts<'a> {
    /// The platform.
    pub platform: Option<Platform>,
    /// The workspace, when one was given.
    pub workspace: Option<&'a str>,
    /// The MAP MPE id, when one was given.
    pub map_mpe_id: Option<&'a str>,
    /// The actions.
    pub actions: Option<&'a BTreeSet<InvokeAction>>,
    /// The FA Confirmed Estimate.
    pub confirmed_estimate: Option<&'a MonthlyAmount>,
}

impl ReviewParts<'_> {
    /// Every rule of a review that needs no state, checked on the parts present.
    pub fn violations(&self) -> Vec<FieldViolation> {
        let mut v = Violations::default();
        self.check(&mut v);
        v.into_vec()
    }

    fn check(&self, v: &mut Violations) {
        match (self.platform, self.workspace) {
            (Some(Platform::ClaudePlatform), None) => v.add("review.workspace", "is required for Claude Platform"),
            (Some(Platform::ClaudePlatform), Some(w)) if !valid_workspace(w) => {
                v.add("review.workspace", format!("`{w}` must be 1–64 characters of letters, digits, spaces, - and _"))
            }
            (Some(Platform::AmazonBedrock | Platform::AwsMarketplace), Some(_)) => {
                v.add("review.workspace", "only Claude Platform has workspaces")
            }
            _ => {}
        }
        if let Some(id) = self.map_mpe_id
            && (id.is_empty() || id.len() > 32 || !id.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            v.add("review.map_mpe_id", format!("`{id}` must be 1–32 letters and digits"));
        }
        if self.actions.is_some_and(BTreeSet::is_empty) {
            v.add("review.actions", "at least one action must be allowed");
        }
        if let Some(estimate) = self.confirmed_estimate {
            v.check("review.confirmed_estimate", estimate.validate());
        }
    }
}

impl Review {
    /// The review's parts, for [`ReviewParts::violations`].
    pub fn parts(&self) -> ReviewParts<'_> {
        ReviewParts {
            platform: Some(self.platform),
            workspace: self.workspace.as_deref(),
            map_mpe_id: self.map_mpe_id.as_deref(),
            actions: Some(&self.actions),
            confirmed_estimate: Some(&self.confirmed_estimate),
        }
    }

    /// The review's own rules, independent of the request's state.
    fn validate(&self, v: &mut Violations) {
        self.parts().check(v);
    }
}

fn uuids(ids: &[Uuid]) -> String {
    ids.iter().map(Uuid::to_string).collect::<Vec<_>>().join(", ")
}

fn valid_workspace(name: &str) -> bool {
    let n = name.chars().count();
    (1..=64).contains(&n) && name.chars().all(|c| c.is_ascii_alphanumeric() || " -_".contains(c))
}

impl Aggregate for BusinessRequest {
    type Command = RequestCommand;
    type Event = RequestEvent;
    type Error = DomainError;

    fn decide(&self, command: &RequestCommand) -> Result<Vec<RequestEvent>, DomainError> {
        let illegal = |action| DomainError::IllegalTransition {
            aggregate: "business request",
            state: self.status.name(),
            action,
        };
        match command {
            RequestCommand::Submit { request_id, product_id, requested_by, details, at } => match self.status {
                RequestStatus::New => {
                    details.validate()?;
                    Ok(vec![RequestEvent::BusinessRequestSubmitted {
                        request_id: *request_id,
                        product_id: *product_id,
                        requested_by: requested_by.clone(),
                        details: details.clone(),
                        at: *at,
                    }])
                }
                // The same submission again (a retry) changes nothing.
                _ if self.request_id == *request_id && self.details.as_ref() == Some(details) && self.revision == 1 => {
                    Ok(vec![])
                }
                _ => Err(illegal("submit")),
            },
            RequestCommand::Approve { review, workload_id, catalog, account_budgets, by, rationale, at } => {
                // The budget the workload will charge, resolved against the account's.
                let budget = match (review.budget_id, account_budgets.as_slice()) {
                    (Some(b), budgets) if budgets.contains(&b) => Ok(Some(b)),
                    (Some(b), budgets) => Err(format!(
                        "budget {b} is not mapped to account {}; mapped: {}",
                        review.account,
                        if budgets.is_empty() { "none".to_owned() } else { uuids(budgets) }
                    )),
                    (None, []) => Ok(None),
                    (None, [only]) => Ok(Some(*only)),
                    (None, many) => Err(format!(
                        "account {} has {} budgets ({}); name the one this workload charges",
                        review.account,
                        many.len(),
                        uuids(many)
                    )),
                };
                let resolved = Review { budget_id: budget.clone().ok().flatten(), ..review.clone() };
                match self.status {
                    RequestStatus::Submitted => {
                        let mut v = Violations::default();
                        v.require_rationale(rationale);
                        review.validate(&mut v);
                        v.check("review.budget_id", budget);
                        v.into_result()?;
                        let review = &resolved;
                        let scope = ApprovalScope {
                            accounts: [review.account.clone()].into(),
                            regions: [review.region.clone()].into(),
                            actions: review.actions.clone(),
                        };
                        match catalog {
                            CatalogStanding::NotApproved(why) => {
                                return Err(DomainError::Precondition(format!(
                                    "model {} on {} is not approved in the catalog ({why}); approve it there first",
                                    review.model_id,
                                    review.platform.as_str()
                                )));
                            }
                            CatalogStanding::Approved(allowed) if !allowed.contains_scope(&scope) => {
                                return Err(DomainError::Precondition(format!(
                                    "model {} is not approved for account {} in {} with these actions; add scope in the catalog first",
                                    review.model_id, review.account, review.region
                                )));
                            }
                            CatalogStanding::Approved(_) => {}
                        }
                        let name = &self.details.as_ref().expect("submitted requests have details").workload_name;
                        Ok(vec![RequestEvent::BusinessRequestApproved {
                            role_name: RoleName::generate(name, &review.role_suffix),
                            review: review.clone(),
                            workload_id: *workload_id,
                            workload_name: name.clone(),
                            owner: self.requested_by.clone(),
                            product_id: self.product_id,
                            scope,
                            by: by.clone(),
                            rationale: rationale.clone(),
                            at: *at,
                        }])
                    }
                    RequestStatus::Approved
                        if self
                            .approval
                            .as_ref()
                            .is_some_and(|a| a.review == resolved && a.workload_id == *workload_id) =>
                    {
                        Ok(vec![])
                    }
                    _ => Err(illegal("approve")),
                }
            }
            RequestCommand::Reject { by, rationale, at } => match self.status {
                RequestStatus::Submitted => {
                    let mut v = Violations::default();
                    v.require_rationale(rationale);
                    v.into_result()?;
                    Ok(vec![RequestEvent::BusinessRequestRejected {
                        by: by.clone(),
                        rationale: rationale.clone(),
                        at: *at,
                    }])
                }
                RequestStatus::Rejected if self.last_rejection.as_deref() == Some(rationale) => Ok(vec![]),
                _ => Err(illegal("reject")),
            },
            RequestCommand::Resubmit { details, by, at } => match self.status {
                RequestStatus::Rejected => {
                    details.validate()?;
                    Ok(vec![RequestEvent::BusinessRequestResubmitted {
                        details: details.clone(),
                        revision: self.revision + 1,
                        by: by.clone(),
                        at: *at,
                    }])
                }
                RequestStatus::Submitted if self.revision > 1 && self.details.as_ref() == Some(details) => Ok(vec![]),
                _ => Err(illegal("resubmit")),
            },
            RequestCommand::Withdraw { by, reason, at } => match self.status {
                RequestStatus::Submitted | RequestStatus::Rejected => {
                    Ok(vec![RequestEvent::BusinessRequestWithdrawn { by: by.clone(), reason: reason.clone(), at: *at }])
                }
                RequestStatus::Withdrawn => Ok(vec![]),
                _ => Err(illegal("withdraw")),
            },
            RequestCommand::ExtendScope { accounts, regions, by, rationale, at } => {
                let Some(approval) = self.approval.as_ref().filter(|_| self.status == RequestStatus::Approved) else {
                    return Err(illegal("extend the scope of"));
                };
                let mut v = Violations::default();
                v.require_rationale(rationale);
                if accounts.is_empty() && regions.is_empty() {
                    v.add("scope", "name an account or a region to add");
                }
                v.into_result()?;
                let accounts: BTreeSet<AccountId> = accounts.difference(&approval.scope.accounts).cloned().collect();
                let regions: BTreeSet<Region> = regions.difference(&approval.scope.regions).cloned().collect();
                // Already inside the scope (a retry, or nothing new): nothing to record.
                if accounts.is_empty() && regions.is_empty() {
                    return Ok(vec![]);
                }
                Ok(vec![RequestEvent::ApprovalScopeExtended {
                    accounts,
                    regions,
                    by: by.clone(),
                    rationale: rationale.clone(),
                    at: *at,
                }])
            }
        }
    }

    fn evolve(mut self, event: &RequestEvent) -> Self {
        match event {
            RequestEvent::BusinessRequestSubmitted { request_id, product_id, requested_by, details, .. } => {
                self.status = RequestStatus::Submitted;
                self.request_id = *request_id;
                self.product_id = *product_id;
                self.requested_by = requested_by.clone();
                self.details = Some(details.clone());
                self.revision = 1;
            }
            RequestEvent::BusinessRequestApproved { review, workload_id, role_name, scope, .. } => {
                self.status = RequestStatus::Approved;
                self.approval = Some(Approval {
                    review: review.clone(),
                    workload_id: *workload_id,
                    role_name: role_name.clone(),
                    scope: scope.clone(),
                });
            }
            RequestEvent::BusinessRequestRejected { rationale, .. } => {
                self.status = RequestStatus::Rejected;
                self.last_rejection = Some(rationale.clone());
            }
            RequestEvent::BusinessRequestResubmitted { details, revision, .. } => {
                self.status = RequestStatus::Submitted;
                self.details = Some(details.clone());
                self.revision = *revision;
            }
            RequestEvent::BusinessRequestWithdrawn { .. } => self.status = RequestStatus::Withdrawn,
            RequestEvent::ApprovalScopeExtended { accounts, regions, .. } => {
                if let Some(approval) = self.approval.as_mut() {
                    approval.scope.accounts.extend(accounts.iter().cloned());
                    approval.scope.regions.extend(regions.iter().cloned());
                }
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::spec::given;
    use proptest::prelude::*;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-02T09:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn operations() -> RequestDetails {
        RequestDetails {
            workload_name: "Customer Support Bot".into(),
            use_case: UseCase::Operations {
                workload_type: WorkloadType::CustomerSupport,
                description: "Answers tier-1 tickets from the help centre.".into(),
                availability: Availability::HighAvailability,
                monthly_budget: MonthlyAmount::Dollars(Cents(250_000)),
            },
            priority: true,
            start: NaiveDate::from_ymd_opt(2026, 12, 1),
            end: None,
            monthly_growth_percent: Some(5.0),
            business_case: Some(BusinessCase {
                annual_cost_saving: Some(Cents(12_000_000)),
                annual_revenue_driving: None,
            }),
        }
    }

    fn coding() -> RequestDetails {
        RequestDetails {
            workload_name: "Payments team coding".into(),
            use_case: UseCase::Coding { developers: 40, active_percent: 25 },
            priority: false,
            start: None,
            end: None,
            monthly_growth_percent: None,
            business_case: None,
        }
    }

    const REQUEST: Uuid = Uuid::from_u128(1);
    const PRODUCT: Uuid = Uuid::from_u128(2);
    const WORKLOAD: Uuid = Uuid::from_u128(3);

    fn submit(details: RequestDetails) -> RequestCommand {
        RequestCommand::Submit {
            request_id: REQUEST,
            product_id: PRODUCT,
            requested_by: "po-maria".into(),
            details,
            at: at(),
        }
    }

    fn submitted(details: RequestDetails) -> RequestEvent {
        RequestEvent::BusinessRequestSubmitted {
            request_id: REQUEST,
            product_id: PRODUCT,
            requested_by: "po-maria".into(),
            details,
            at: at(),
        }
    }

    fn review() -> Review {
        Review {
            platform: Platform::AmazonBedrock,
            model_id: ModelId::parse("anthropic.claude-sonnet-4-20250514-v1:0").unwrap(),
            account: AccountId::parse("123456789012").unwrap(),
            region: Region::parse("us-east-1").unwrap(),
            actions: [InvokeAction::InvokeModel, InvokeAction::Converse].into(),
            role_suffix: RoleSuffix::parse("x7k2").unwrap(),
            workspace: None,
            map_mpe_id: Some("MPE12345".into()),
            confirmed_estimate: MonthlyAmount::Dollars(Cents(310_000)),
            budget_id: None,
        }
    }

    fn catalog_scope() -> ApprovalScope {
        ApprovalScope {
            accounts: [AccountId::parse("123456789012").unwrap()].into(),
            regions: [Region::parse("us-east-1").unwrap(), Region::parse("us-west-2").unwrap()].into(),
            actions: InvokeAction::ALL.into(),
        }
    }

    fn approve(review: Review, catalog: CatalogStanding) -> RequestCommand {
        RequestCommand::Approve {
            review,
            workload_id: WORKLOAD,
            catalog,
            account_budgets: vec![],
            by: "fl-ana".into(),
            rationale: "Pilot approved for Q1".into(),
            at: at(),
        }
    }

    fn history_approved() -> Vec<RequestEvent> {
        let mut history = vec![submitted(operations())];
        let approval = BusinessRequest::fold(&history)
            .decide(&approve(review(), CatalogStanding::Approved(catalog_scope())))
            .unwrap();
        history.extend(approval);
        history
    }

    fn violations(err: DomainError) -> Vec<String> {
        match err {
            DomainError::Invalid(v) => v.into_iter().map(|v| v.field).collect(),
            other => panic!("expected field violations, got {other}"),
        }
    }

    #[test]
    fn the_finops_lead_extends_an_approvals_scope_once_with_a_reason() {
        let events = given::<BusinessRequest>(&history_approved())
            .when(RequestCommand::ExtendScope {
                accounts: BTreeSet::new(),
                regions: [Region::parse("eu-west-1").unwrap()].into(),
                by: "fl-ana".into(),
                rationale: "Served from Ireland too".into(),
                at: at(),
            })
            .unwrap();
        assert_eq!(events.len(), 1);
        let mut all = history_approved();
        all.extend(events);
        let extended = BusinessRequest::fold(&all);
        assert!(extended.approval.unwrap().scope.regions.contains(&Region::parse("eu-west-1").unwrap()));
        let refused = given::<BusinessRequest>(&[submitted(coding())])
            .when(RequestCommand::ExtendScope {
                accounts: BTreeSet::new(),
                regions: [Region::parse("eu-west-1").unwrap()].into(),
                by: "fl-ana".into(),
                rationale: "x".into(),
                at: at(),
            })
            .unwrap_err();
        assert_eq!(refused.to_string(), "cannot extend the scope of a business request that is submitted");
        let DomainError::Invalid(v) = given::<BusinessRequest>(&history_approved())
            .when(RequestCommand::ExtendScope {
                accounts: BTreeSet::new(),
                regions: BTreeSet::new(),
                by: "fl-ana".into(),
                rationale: " ".into(),
                at: at(),
            })
            .unwrap_err()
        else {
            panic!()
        };
        assert_eq!(v.iter().map(|v| v.field.as_str()).collect::<Vec<_>>(), vec!["rationale", "scope"]);
    }

    #[test]
    fn a_product_owner_submits_either_use_case() {
        for details in [operations(), coding()] {
            let events = given::<BusinessRequest>(&[]).when(submit(details.clone())).unwrap();
            assert_eq!(events, vec![submitted(details)]);
        }
    }

    #[test]
    fn every_submission_rule_is_reported_at_once() {
        let mut bad = operations();
        bad.workload_name = "  ".into();
        bad.use_case = UseCase::Operations {
            workload_type: WorkloadType::Other,
            description: "x".repeat(501),
            availability: Availability::Standard,
            monthly_budget: MonthlyAmount::Dollars(Cents(0)),
        };
        bad.start = NaiveDate::from_ymd_opt(2026, 12, 1);
        bad.end = NaiveDate::from_ymd_opt(2026, 11, 1);
        bad.monthly_growth_percent = Some(f64::NAN);
        bad.business_case = Some(BusinessCase::default());
        let err = given::<BusinessRequest>(&[]).when(submit(bad)).unwrap_err();
        assert_eq!(
            violations(err),
            vec![
                "workload_name",
                "operations.description",
                "operations.monthly_budget",
                "end",
                "monthly_growth_percent",
                "business_case"
            ]
        );

        let mut coding_bad = coding();
        coding_bad.use_case = UseCase::Coding { developers: 0, active_percent: 101 };
        let err = given::<BusinessRequest>(&[]).when(submit(coding_bad)).unwrap_err();
        assert_eq!(violations(err), vec!["coding.developers", "coding.active_percent"]);

        let mut edge = coding();
        edge.use_case = UseCase::Coding { developers: 100_000, active_percent: 100 };
        assert!(given::<BusinessRequest>(&[]).when(submit(edge)).is_ok(), "the bounds are inclusive");
        let mut exactly = operations();
        if let UseCase::Operations { description, .. } = &mut exactly.use_case {
            *description = "é".repeat(500);
        }
        assert!(given::<BusinessRequest>(&[]).when(submit(exactly)).is_ok(), "500 characters, not bytes");
    }

    #[test]
    fn approval_generates_the_role_and_the_scope() {
        let events = given::<BusinessRequest>(&[submitted(operations())])
            .when(approve(review(), CatalogStanding::Approved(catalog_scope())))
            .unwrap();
        let [RequestEvent::BusinessRequestApproved { role_name, scope, workload_id, .. }] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(role_name.as_str(), "finops-customer-support-bot-x7k2");
        assert_eq!(*workload_id, WORKLOAD);
        assert!(scope.covers(&review().account, &review().region, &review().actions));
        assert_eq!(scope.regions.len(), 1, "the workload's scope is what was approved, not the catalog's");
    }

    #[test]
    fn approval_needs_a_rationale_a_valid_review_and_the_catalog() {
        let history = [submitted(operations())];
        let mut no_why = approve(review(), CatalogStanding::Approved(catalog_scope()));
        if let RequestCommand::Approve { rationale, .. } = &mut no_why {
            *rationale = " ".into();
        }
        assert_eq!(violations(given::<BusinessRequest>(&history).when(no_why).unwrap_err()), vec!["rationale"]);

        let mut claude = review();
        claude.platform = Platform::ClaudePlatform;
        claude.map_mpe_id = Some("MPE-1".into());
        claude.actions.clear();
        let err = given::<BusinessRequest>(&history)
            .when(approve(claude, CatalogStanding::Approved(catalog_scope())))
            .unwrap_err();
        assert_eq!(violations(err), vec!["review.workspace", "review.map_mpe_id", "review.actions"]);

        let err = given::<BusinessRequest>(&history)
            .when(approve(review(), CatalogStanding::NotApproved("pending review")))
            .unwrap_err();
        assert!(matches!(err, DomainError::Precondition(ref m) if m.contains("pending review")), "{err}");

        let mut elsewhere = review();
        elsewhere.region = Region::parse("eu-west-1").unwrap();
        let err = given::<BusinessRequest>(&history)
            .when(approve(elsewhere, CatalogStanding::Approved(catalog_scope())))
            .unwrap_err();
        assert!(err.to_string().contains("add scope in the catalog first"), "{err}");
    }

    /// Regression (issue 10.3): the approval names the budget the workload charges.
    #[test]
    fn the_approval_names_a_budget_of_the_approved_account() {
        let (a, b, other) = (Uuid::from_u128(11), Uuid::from_u128(12), Uuid::from_u128(13));
        let with = |named: Option<Uuid>, budgets: Vec<Uuid>| {
            let mut review = review();
            review.budget_id = named;
            let mut command = approve(review, CatalogStanding::Approved(catalog_scope()));
            if let RequestCommand::Approve { account_budgets, .. } = &mut command {
                *account_budgets = budgets;
            }
            given::<BusinessRequest>(&[submitted(operations())]).when(command)
        };
        let budget_of = |events: Vec<RequestEvent>| match &events[..] {
            [RequestEvent::BusinessRequestApproved { review, .. }] => review.budget_id,
            other => panic!("{other:?}"),
        };
        assert_eq!(budget_of(with(Some(b), vec![a, b]).unwrap()), Some(b));
        assert_eq!(budget_of(with(None, vec![a]).unwrap()), Some(a), "the account's only budget");
        assert_eq!(budget_of(with(None, vec![]).unwrap()), None, "an account without budgets");
        for (named, budgets) in [(None, vec![a, b]), (Some(other), vec![a, b])] {
            let err = with(named, budgets).unwrap_err();
            assert_eq!(violations(err), vec!["review.budget_id"]);
        }
    }

    #[test]
    fn reject_revise_resubmit_then_approve() {
        let rejected = RequestEvent::BusinessRequestRejected {
            by: "fl-ana".into(),
            rationale: "Budget too vague".into(),
            at: at(),
        };
        let events = given::<BusinessRequest>(&[submitted(operations())])
            .when(RequestCommand::Reject { by: "fl-ana".into(), rationale: "Budget too vague".into(), at: at() })
            .unwrap();
        assert_eq!(events, vec![rejected.clone()]);

        let mut revised = operations();
        revised.workload_name = "Support Bot v2".into();
        let events = given::<BusinessRequest>(&[submitted(operations()), rejected.clone()])
            .when(RequestCommand::Resubmit { details: revised.clone(), by: "po-maria".into(), at: at() })
            .unwrap();
        let resubmitted =
            RequestEvent::BusinessRequestResubmitted { details: revised, revision: 2, by: "po-maria".into(), at: at() };
        assert_eq!(events, vec![resubmitted.clone()]);

        let events = given::<BusinessRequest>(&[submitted(operations()), rejected, resubmitted])
            .when(approve(review(), CatalogStanding::Approved(catalog_scope())))
            .unwrap();
        let [RequestEvent::BusinessRequestApproved { role_name, .. }] = events.as_slice() else { panic!() };
        assert_eq!(role_name.as_str(), "finops-support-bot-v2-x7k2", "the role follows the latest revision");
    }

    #[test]
    fn illegal_transitions_name_the_state() {
        let approved = RequestEvent::BusinessRequestApproved {
            review: review(),
            workload_id: WORKLOAD,
            workload_name: "x".into(),
            owner: "po-maria".into(),
            product_id: PRODUCT,
            role_name: RoleName::generate("x", &review().role_suffix),
            scope: catalog_scope(),
            by: "fl-ana".into(),
            rationale: "ok".into(),
            at: at(),
        };
        let err = given::<BusinessRequest>(&[submitted(coding()), approved.clone()])
            .when(RequestCommand::Withdraw { by: "po-maria".into(), reason: None, at: at() })
            .unwrap_err();
        assert_eq!(err.to_string(), "cannot withdraw a business request that is approved");
        let err = given::<BusinessRequest>(&[submitted(coding())])
            .when(RequestCommand::Resubmit { details: coding(), by: "po-maria".into(), at: at() })
            .unwrap_err();
        assert_eq!(err.to_string(), "cannot resubmit a business request that is submitted");
        let err = given::<BusinessRequest>(&[])
            .when(RequestCommand::Reject { by: "fl".into(), rationale: "no".into(), at: at() })
            .unwrap_err();
        assert_eq!(err.to_string(), "cannot reject a business request that is not submitted");
        let mut other = review();
        other.role_suffix = RoleSuffix::parse("zzzz").unwrap();
        let err = given::<BusinessRequest>(&[submitted(coding()), approved])
            .when(approve(other, CatalogStanding::Approved(catalog_scope())))
            .unwrap_err();
        assert!(matches!(err, DomainError::IllegalTransition { action: "approve", .. }));
    }

    #[test]
    fn events_round_trip_through_json_with_their_type_names() {
        let event = submitted(operations());
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "BusinessRequestSubmitted");
        assert_eq!(json["details"]["use_case"]["operations"]["availability"], "high_availability");
        let back: RequestEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }

    fn any_command() -> impl Strategy<Value = RequestCommand> {
        prop_oneof![
            Just(submit(operations())),
            Just(submit(coding())),
            Just(approve(review(), CatalogStanding::Approved(catalog_scope()))),
            Just(RequestCommand::Reject { by: "fl-ana".into(), rationale: "too vague".into(), at: at() }),
            Just(RequestCommand::Resubmit { details: coding(), by: "po-maria".into(), at: at() }),
            Just(RequestCommand::Withdraw { by: "po-maria".into(), reason: None, at: at() }),
        ]
    }

    proptest! {
        /// The Equinox property: after any history, deciding a command and then deciding it
        /// again on the folded state yields no new events.
        #[test]
        fn deciding_again_on_the_folded_state_yields_no_new_events(commands in proptest::collection::vec(any_command(), 1..12)) {
            let mut state = BusinessRequest::default();
            for command in &commands {
                if let Ok(events) = state.decide(command) {
                    state = events.iter().fold(state, BusinessRequest::evolve);
                    let again = state.decide(command);
                    prop_assert!(matches!(&again, Ok(e) if e.is_empty()), "{command:?} decided again gave {again:?}");
                }
            }
        }
    }
}
