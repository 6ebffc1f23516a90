//! A workload's own plan in Spaces (DOMAIN.md §5): its estimate (monthly dollars or
//! tokens, period, growth) and its declared business case. The workload itself comes into
//! being with its Business Request's approval; this aggregate records what its Product
//! Owner states about it afterwards. One aggregate per workload.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::error::{DomainError, Violations};
use crate::request::BusinessCase;
use crate::vocabulary::{AccountId, MonthlyAmount};
use uuid::Uuid;

/// A workload's estimate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadEstimate {
    /// Monthly dollars or tokens.
    pub monthly: MonthlyAmount,
    /// From.
    pub start: Option<NaiveDate>,
    /// Until.
    pub end: Option<NaiveDate>,
    /// Expected monthly growth, percent.
    pub monthly_growth_percent: Option<f64>,
}

impl WorkloadEstimate {
    /// Every rule of an estimate, all violations at once.
    pub fn validate(&self) -> Result<(), DomainError> {
        let mut v = Violations::default();
        v.check("estimate.monthly", self.monthly.validate());
        if let (Some(s), Some(e)) = (self.start, self.end)
            && e < s
        {
            v.add("estimate.end_date", format!("{e} is before start {s}"));
        }
        if let Some(g) = self.monthly_growth_percent
            && (!g.is_finite() || !(0.0..=1000.0).contains(&g))
        {
            v.add("estimate.monthly_growth_percent", format!("must be 0–1000, got {g}"));
        }
        v.into_result()
    }
}

/// What may be asked of a workload's plan.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkloadCommand {
    /// The FinOps Lead moves the workload to another budget from a date (DOMAIN.md §1: a
    /// workload charges one budget; which one is a decision with a reason).
    ChangeBudget {
        /// The budget it charges from `effective_from` on.
        budget_id: Uuid,
        /// First day charged to it.
        effective_from: NaiveDate,
        /// The budgets mapped to the workload's approved account (as the handler read the
        /// organisation), and that account, for the refusal's words.
        account_budgets: Vec<Uuid>,
        /// The workload's approved account.
        account: AccountId,
        /// Who.
        by: String,
        /// Why (required).
        rationale: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// State (or restate) the estimate.
    SetEstimate {
        /// The estimate.
        estimate: WorkloadEstimate,
        /// Who.
        by: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Declare (or restate) the business case.
    DeclareBusinessCase {
        /// The case.
        case: BusinessCase,
        /// Who.
        by: String,
        /// When.
        at: DateTime<Utc>,
    },
}

/// What a workload's plan records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum WorkloadEvent {
    /// The workload charges another budget from a date on.
    WorkloadBudgetChanged {
        /// The budget.
        budget_id: Uuid,
        /// From (inclusive).
        effective_from: NaiveDate,
        /// Who.
        by: String,
        /// Why.
        rationale: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// An estimate was stated; it replaces the previous one from now on.
    WorkloadEstimateSet {
        /// The estimate.
        estimate: WorkloadEstimate,
        /// Who.
        by: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// A business case was declared.
    BusinessCaseDeclared {
        /// The case.
        case: BusinessCase,
        /// Who.
        by: String,
        /// When.
        at: DateTime<Utc>,
    },
}

/// A workload's plan folded from its events.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WorkloadPlan {
    /// The current estimate.
    pub estimate: Option<WorkloadEstimate>,
    /// The current business case.
    pub business_case: Option<BusinessCase>,
    /// Budget changes since approval, in the order decided: (first day, budget).
    pub budget_changes: Vec<(NaiveDate, Uuid)>,
}

impl Aggregate for WorkloadPlan {
    type Command = WorkloadCommand;
    type Event = WorkloadEvent;
    type Error = DomainError;

    fn decide(&self, command: &WorkloadCommand) -> Result<Vec<WorkloadEvent>, DomainError> {
        match command {
            WorkloadCommand::ChangeBudget {
                budget_id,
                effective_from,
                account_budgets,
                account,
                by,
                rationale,
                at,
            } => {
                if self.budget_changes.last() == Some(&(*effective_from, *budget_id)) {
                    return Ok(vec![]);
                }
                let mut v = Violations::default();
                v.require_rationale(rationale);
                if !account_budgets.contains(budget_id) {
                    v.add("budget_id", format!("budget {budget_id} is not mapped to the workload's account {account}"));
                }
                v.into_result()?;
                Ok(vec![WorkloadEvent::WorkloadBudgetChanged {
                    budget_id: *budget_id,
                    effective_from: *effective_from,
                    by: by.clone(),
                    rationale: rationale.clone(),
                    at: *at,
                }])
            }
            WorkloadCommand::SetEstimate { estimate, by, at } => {
                if self.estimate.as_ref() == Some(estimate) {
                    return Ok(vec![]);
                }
                estimate.validate()?;
                Ok(vec![WorkloadEvent::WorkloadEstimateSet { estimate: estimate.clone(), by: by.clone(), at: *at }])
            }
            WorkloadCommand::DeclareBusinessCase { case, by, at } => {
                if self.business_case.as_ref() == Some(case) {
                    return Ok(vec![]);
                }
                let mut v = Violations::default();
                if case.annual_cost_saving.is_none() && case.annual_revenue_driving.is_none() {
                    v.add("business_case", "names neither a cost saving nor revenue driving");
                }
                v.into_result()?;
                Ok(vec![WorkloadEvent::BusinessCaseDeclared { case: *case, by: by.clone(), at: *at }])
            }
        }
    }

    fn evolve(mut self, event: &WorkloadEvent) -> Self {
        match event {
            WorkloadEvent::WorkloadEstimateSet { estimate, .. } => self.estimate = Some(estimate.clone()),
            WorkloadEvent::BusinessCaseDeclared { case, .. } => self.business_case = Some(*case),
            WorkloadEvent::WorkloadBudgetChanged { budget_id, effective_from, .. } => {
                self.budget_changes.push((*effective_from, *budget_id));
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::spec::given;
    use crate::vocabulary::Cents;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-10T09:00:00Z").unwrap().with_timezone(&Utc)
    }

    #[test]
    fn an_estimate_is_stated_validated_and_restated() {
        let estimate = WorkloadEstimate {
            monthly: MonthlyAmount::Dollars(Cents(120_000)),
            start: NaiveDate::from_ymd_opt(2026, 12, 1),
            end: None,
            monthly_growth_percent: Some(3.0),
        };
        let events = given::<WorkloadPlan>(&[])
            .when(WorkloadCommand::SetEstimate { estimate: estimate.clone(), by: "po".into(), at: now() })
            .unwrap();
        assert_eq!(WorkloadPlan::fold(&events).estimate, Some(estimate.clone()));
        let mut bad = estimate;
        bad.monthly = MonthlyAmount::Dollars(Cents(0));
        bad.end = NaiveDate::from_ymd_opt(2026, 1, 1);
        let err = given::<WorkloadPlan>(&[])
            .when(WorkloadCommand::SetEstimate { estimate: bad, by: "po".into(), at: now() })
            .unwrap_err();
        let DomainError::Invalid(v) = err else { panic!() };
        assert_eq!(
            v.iter().map(|v| v.field.as_str()).collect::<Vec<_>>(),
            vec!["estimate.monthly", "estimate.end_date"]
        );
    }

    /// Regression (issue 10.3): a workload charged the first budget by name of its account.
    #[test]
    fn the_finops_lead_moves_a_workload_to_a_budget_of_its_account_with_a_reason() {
        let (a, b, elsewhere) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let change = |budget_id, rationale: &str| WorkloadCommand::ChangeBudget {
            budget_id,
            effective_from: NaiveDate::from_ymd_opt(2026, 11, 15).unwrap(),
            account_budgets: vec![a, b],
            account: AccountId::parse("111122223333").unwrap(),
            by: "fl-ana".into(),
            rationale: rationale.into(),
            at: now(),
        };
        let err = given::<WorkloadPlan>(&[]).when(change(elsewhere, "")).unwrap_err();
        let DomainError::Invalid(v) = err else { panic!() };
        assert_eq!(v.iter().map(|v| v.field.as_str()).collect::<Vec<_>>(), vec!["rationale", "budget_id"]);
        let events = given::<WorkloadPlan>(&[]).when(change(b, "moved to the platform budget")).unwrap();
        assert_eq!(
            WorkloadPlan::fold(&events).budget_changes,
            vec![(NaiveDate::from_ymd_opt(2026, 11, 15).unwrap(), b)]
        );
    }

    #[test]
    fn a_business_case_names_a_value() {
        let err = given::<WorkloadPlan>(&[])
            .when(WorkloadCommand::DeclareBusinessCase { case: BusinessCase::default(), by: "po".into(), at: now() })
            .unwrap_err();
        assert!(err.to_string().contains("business_case"), "{err}");
        let case = BusinessCase { annual_cost_saving: None, annual_revenue_driving: Some(Cents(90_000_000)) };
        let events = given::<WorkloadPlan>(&[])
            .when(WorkloadCommand::DeclareBusinessCase { case, by: "po".into(), at: now() })
            .unwrap();
        assert_eq!(WorkloadPlan::fold(&events).business_case, Some(case));
    }
}
