//! A workload's own plan in Spaces (DOMAIN.md §5): its estimate (monthly dollars or
//! tokens, period, growth) and its declared business case. The workload itself comes into
//! being with its Business Request's approval; this aggregate records what its Product
//! Owner states about it afterwards. One aggregate per workload.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::error::{DomainError, Violations};
use crate::request::BusinessCase;
use crate::vocabulary::MonthlyAmount;

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
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WorkloadPlan {
    /// The current estimate.
    pub estimate: Option<WorkloadEstimate>,
    /// The current business case.
    pub business_case: Option<BusinessCase>,
}

impl Aggregate for WorkloadPlan {
    type Command = WorkloadCommand;
    type Event = WorkloadEvent;
    type Error = DomainError;

    fn decide(&self, command: &WorkloadCommand) -> Result<Vec<WorkloadEvent>, DomainError> {
        match command {
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
