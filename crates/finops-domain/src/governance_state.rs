//! The governance state attribution reads (DOMAIN.md §6 "Point in time"): the organisation,
//! every Business Request (approvals fix a workload's scope and dedicated role), every
//! claimable resource's claim history, workload plans and CUR periods — folded from the
//! log up to an instant. Folding is the caller's loop; this type only knows how each
//! aggregate grows, so the same state comes out of the same events, always.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

use chrono::NaiveDate;
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::cur_batches::{CurPeriod, CurPeriodEvent};
use crate::gateway_rules::{GatewayRule, GatewayRuleEvent, GatewayRuleSpec};
use crate::invocation_logs::{LogDay, LogDayEvent};
use crate::org::{OrgEvent, Organisation};
use crate::request::{BusinessRequest, RequestEvent, RequestStatus};
use crate::role_patterns::{RolePatternEvent, RolePatternPolicy};
use crate::spaces::{ClaimEvent, ClaimableResource, ClaimedResource};
use crate::vocabulary::{AccountId, ApprovalScope};
use crate::workload::{WorkloadEvent, WorkloadPlan};

mod history_set;
mod lookup;
mod view_changes;
pub use history_set::HistorySet;
pub use lookup::Lookup;
pub use view_changes::{Run, Splice, ViewChanges, runs};

/// Aggregates by key in a persistent map: cloning the map is O(1) and two clones share
/// every entry neither changed since, so keeping the state as the log stood every thousand
/// events (`finops_governance::timeline`) costs the entries that changed, not the state.
/// Each aggregate sits behind an `Arc`, so an entry shared with a kept state is copied on
/// its first change only, and a shared node of the tree copies pointers, not aggregates.
pub type SharedMap<K, V> = imbl::OrdMap<K, Arc<V>>;

/// The most changed Business Requests [`GovernanceState::attributes_alike`] walks before
/// answering "not alike": at a few hundred nanoseconds each, a few milliseconds at most.
pub const VIEW_DIFF_LIMIT: usize = 10_000;

/// The governance state at one instant. Cloning it is cheap (see [`SharedMap`]).
#[derive(Debug, Clone, Default)]
pub struct GovernanceState {
    /// The organisation.
    pub organisation: Organisation,
    /// Business Requests by request id.
    pub requests: SharedMap<Uuid, BusinessRequest>,
    /// Claim histories by resource key.
    pub claims: SharedMap<String, ClaimableResource>,
    /// Workload plans by workload id.
    pub plans: SharedMap<Uuid, WorkloadPlan>,
    /// CUR periods by `YYYY-MM`.
    pub cur_periods: SharedMap<String, CurPeriod>,
    /// The role patterns the FinOps Lead recorded.
    pub role_patterns: RolePatternPolicy,
    /// Gateway mapping rules by id, in the order they were recorded.
    pub gateway_rules: Vec<(Uuid, GatewayRule)>,
    /// Invocation-log files by the day of their first hour.
    pub invocation_logs: SharedMap<NaiveDate, LogDay>,
    /// What attribution looks up by name or workload, kept by the `apply_*` methods.
    lookup: Lookup,
}

/// The state as it is written to a snapshot: each map as its entries in key order.
#[derive(Serialize)]
struct Written<'a> {
    organisation: &'a Organisation,
    requests: Vec<(&'a Uuid, &'a BusinessRequest)>,
    claims: Vec<(&'a String, &'a ClaimableResource)>,
    plans: Vec<(&'a Uuid, &'a WorkloadPlan)>,
    cur_periods: Vec<(&'a String, &'a CurPeriod)>,
    role_patterns: &'a RolePatternPolicy,
    gateway_rules: &'a [(Uuid, GatewayRule)],
    invocation_logs: Vec<(&'a NaiveDate, &'a LogDay)>,
}

/// [`Written`], read back.
#[derive(Deserialize)]
struct Read {
    organisation: Organisation,
    requests: Vec<(Uuid, BusinessRequest)>,
    claims: Vec<(String, ClaimableResource)>,
    plans: Vec<(Uuid, WorkloadPlan)>,
    cur_periods: Vec<(String, CurPeriod)>,
    role_patterns: RolePatternPolicy,
    gateway_rules: Vec<(Uuid, GatewayRule)>,
    invocation_logs: Vec<(NaiveDate, LogDay)>,
}

fn entries<K: Ord + Clone, V>(map: &SharedMap<K, V>) -> Vec<(&K, &V)> {
    map.iter().map(|(k, v)| (k, v.as_ref())).collect()
}

fn shared<K: Ord + Clone, V>(entries: Vec<(K, V)>) -> SharedMap<K, V> {
    entries.into_iter().map(|(k, v)| (k, Arc::new(v))).collect()
}

/// Snapshots of the state (`finops_governance::timeline`) are its serde form.
impl Serialize for GovernanceState {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Written {
            organisation: &self.organisation,
            requests: entries(&self.requests),
            claims: entries(&self.claims),
            plans: entries(&self.plans),
            cur_periods: entries(&self.cur_periods),
            role_patterns: &self.role_patterns,
            gateway_rules: &self.gateway_rules,
            invocation_logs: entries(&self.invocation_logs),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for GovernanceState {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let read = Read::deserialize(deserializer)?;
        let mut state = Self {
            organisation: read.organisation,
            requests: shared(read.requests),
            claims: shared(read.claims),
            plans: shared(read.plans),
            cur_periods: shared(read.cur_periods),
            role_patterns: read.role_patterns,
            gateway_rules: read.gateway_rules,
            invocation_logs: shared(read.invocation_logs),
            lookup: Lookup::default(),
        };
        state.lookup = Lookup::of(&state);
        Ok(state)
    }
}

/// Applies `event` to the aggregate at `key`, a default one if there is none yet; the
/// aggregate is copied first only while a kept state still shares it.
fn evolve_at<K, V>(map: &mut SharedMap<K, V>, key: K, event: &V::Event)
where
    K: Ord + Clone,
    V: Aggregate + Clone + Default,
{
    let aggregate = Arc::make_mut(map.entry(key).or_default());
    *aggregate = std::mem::take(aggregate).evolve(event);
}

/// A gateway mapping rule as attribution applies it.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayRuleSpan {
    /// Its id.
    pub rule_id: Uuid,
    /// What it says.
    pub spec: GatewayRuleSpec,
    /// The last day it charges, once retired.
    pub until: Option<NaiveDate>,
}

/// An approved workload, as attribution sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovedWorkload {
    /// Its id.
    pub workload_id: Uuid,
    /// Its name.
    pub name: String,
    /// The Product Owner.
    pub owner: String,
    /// Its product.
    pub product_id: Uuid,
    /// The product's portfolio (nil when the product is unknown).
    pub portfolio_id: Uuid,
    /// The budgets it charges over time: the one its approval named (for approvals
    /// recorded before budgets were named, the account's only budget, if it has exactly
    /// one), then each change the FinOps Lead recorded, from its first day. Empty: it
    /// charges no budget (chargeback shows its spend as such).
    pub budgets: Vec<BudgetSpan>,
    /// The approved model.
    pub model_id: String,
    /// The approval scope.
    pub scope: ApprovalScope,
    /// The generated dedicated role.
    pub role_name: String,
    /// A business case was declared (on the request or later in Spaces).
    pub business_case: bool,
    /// An estimate exists (the FA Confirmed Estimate always does once approved).
    pub estimate: bool,
}

/// A budget a workload charges, and on which days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetSpan {
    /// The budget.
    pub budget_id: Uuid,
    /// First day (inclusive); `None`: from the start.
    pub from: Option<NaiveDate>,
    /// Last day (inclusive); `None`: open.
    pub until: Option<NaiveDate>,
}

/// The spans of a workload's budgets: `initial` from the start, then each change (in the
/// order decided) from its first day on — a later decision overrides from its date.
pub fn budget_spans(initial: Option<Uuid>, changes: &[(NaiveDate, Uuid)]) -> Vec<BudgetSpan> {
    let mut spans: Vec<BudgetSpan> =
        initial.map(|budget_id| BudgetSpan { budget_id, from: None, until: None }).into_iter().collect();
    for (from, budget_id) in changes {
        spans.retain(|s| s.from.is_none_or(|f| f < *from));
        for s in spans.iter_mut() {
            let last = from.pred_opt();
            s.until = match (s.until, last) {
                (Some(u), Some(l)) => Some(u.min(l)),
                (None, l) => l,
                (u, None) => u,
            };
        }
        spans.push(BudgetSpan { budget_id: *budget_id, from: Some(*from), until: None });
    }
    spans
}

/// One claim period of a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimSpan {
    /// What was claimed.
    pub resource: ClaimedResource,
    /// By which workload.
    pub workload_id: Uuid,
    /// From (inclusive).
    pub from: NaiveDate,
    /// Until (inclusive), open while claimed.
    pub until: Option<NaiveDate>,
}

/// The claim periods of one claimable resource (none while it names no resource).
fn claim_spans_of(claimable: &ClaimableResource) -> Vec<ClaimSpan> {
    let Some(resource) = &claimable.resource else { return Vec::new() };
    claimable
        .periods
        .iter()
        .map(|p| ClaimSpan { resource: resource.clone(), workload_id: p.workload_id, from: p.from, until: p.until })
        .collect()
}

impl GovernanceState {
    /// Applies an organisation event.
    pub fn apply_org(&mut self, event: &OrgEvent) {
        self.organisation = std::mem::take(&mut self.organisation).evolve(event);
    }

    /// Applies a Business Request event.
    pub fn apply_request(&mut self, request_id: Uuid, event: &RequestEvent) {
        let before = lookup::approved(self.requests.get(&request_id).map(|r| &**r));
        evolve_at(&mut self.requests, request_id, event);
        let after = lookup::approved(self.requests.get(&request_id).map(|r| &**r));
        self.lookup.request_changed(request_id, before, after);
    }

    /// Applies a claim event of the resource keyed `key`.
    pub fn apply_claim(&mut self, key: &str, event: &ClaimEvent) {
        let before = lookup::claimed(self.claims.get(key).map(|c| &**c));
        evolve_at(&mut self.claims, key.to_owned(), event);
        let after = lookup::claimed(self.claims.get(key).map(|c| &**c));
        self.lookup.claim_changed(key, before, after);
    }

    /// What attribution looks up by name or workload, as the `apply_*` methods kept it
    /// (a state whose maps were written to directly, as some tests do, has none).
    pub fn lookup(&self) -> &Lookup {
        &self.lookup
    }

    /// Applies a workload-plan event.
    pub fn apply_plan(&mut self, workload_id: Uuid, event: &WorkloadEvent) {
        evolve_at(&mut self.plans, workload_id, event);
    }

    /// Applies a role-pattern decision.
    pub fn apply_role_patterns(&mut self, event: &RolePatternEvent) {
        self.role_patterns = std::mem::take(&mut self.role_patterns).evolve(event);
    }

    /// Applies an event of the gateway rule `rule_id`.
    pub fn apply_gateway_rule(&mut self, rule_id: Uuid, event: &GatewayRuleEvent) {
        match self.gateway_rules.iter_mut().find(|(id, _)| *id == rule_id) {
            Some((_, rule)) => *rule = std::mem::take(rule).evolve(event),
            None => self.gateway_rules.push((rule_id, GatewayRule::default().evolve(event))),
        }
    }

    /// Every recorded gateway rule, in the order recorded (a later rule takes a call
    /// an earlier one also matches).
    pub fn gateway_rule_spans(&self) -> Vec<GatewayRuleSpan> {
        self.gateway_rules
            .iter()
            .filter_map(|(id, r)| {
                r.spec.as_ref().map(|spec| GatewayRuleSpan {
                    rule_id: *id,
                    spec: spec.clone(),
                    until: r.effective_until,
                })
            })
            .collect()
    }

    /// Applies a CUR period event.
    pub fn apply_cur_period(&mut self, period: &str, event: &CurPeriodEvent) {
        evolve_at(&mut self.cur_periods, period.to_owned(), event);
    }

    /// Applies a day's invocation-log event.
    pub fn apply_invocation_logs(&mut self, day: NaiveDate, event: &LogDayEvent) {
        evolve_at(&mut self.invocation_logs, day, event);
    }

    /// The workload a caller's invocation on `day` is charged to on the fast path (logs):
    /// the claim in force that day of its role in its account — by the role's name, or,
    /// for an Identity Center session (`AWSReservedSSO_{set}_{hex}`), by its permission set
    /// as the classification reads a role claim (the generated role's set, the set of a
    /// claimed reserved role, or the claimed name itself). Users, broad roles and gateway
    /// sessions are CUR's to classify: `None`.
    pub fn workload_of_caller(&self, account: &str, principal_name: &str, day: NaiveDate) -> Option<Uuid> {
        let session_set = crate::role::permission_set_of_reserved_role(principal_name);
        let generated: std::collections::BTreeSet<String> = self.workloads().into_iter().map(|w| w.role_name).collect();
        self.claim_spans()
            .into_iter()
            .filter(|s| s.from <= day && s.until.is_none_or(|u| day <= u))
            .filter(|s| match &s.resource {
                ClaimedResource::IamRole { account: a, role_name } if a.as_str() == account => {
                    role_name == principal_name
                        || session_set.is_some_and(|set| {
                            let claimed = if generated.contains(role_name) {
                                crate::role::permission_set_for(role_name)
                            } else {
                                crate::role::permission_set_of_reserved_role(role_name).unwrap_or(role_name).to_owned()
                            };
                            claimed == set
                        })
                }
                _ => false,
            })
            .max_by_key(|s| s.from)
            .map(|s| s.workload_id)
    }

    /// The budget an approval that named none charges: the account's only budget, if it
    /// has exactly one (approvals recorded before budgets were named).
    fn only_budget_of(&self, account: &AccountId) -> Option<Uuid> {
        match self.organisation.budgets_of(account).as_slice() {
            [(id, _)] => Some(*id),
            _ => None,
        }
    }

    /// Whether attribution sees `self` as it sees `other`: the same [`workloads`](Self::workloads),
    /// [`claim_spans`](Self::claim_spans), role patterns and
    /// [`gateway_rule_spans`](Self::gateway_rule_spans) — so that what was derived from one
    /// (attribution's governance tables) serves the other. Cheap for states that share most
    /// of their maps, as a state and the same log a few events later do: the maps' shared
    /// subtrees are skipped, and Business Requests submitted, rejected or withdrawn in
    /// between (most of a governance log's events; tasks are not in the state at all) do
    /// not count. Conservative: `false` on any change to a claim, the organisation, a
    /// request approved on either side or an approved workload's plan, and past
    /// [`VIEW_DIFF_LIMIT`] changes (states that far apart are told apart by building, not
    /// comparing).
    pub fn attributes_alike(&self, other: &Self) -> bool {
        self.view_changes_since(other).is_some_and(|changes| self.alike_given(other, &changes))
    }

    /// [`attributes_alike`](Self::attributes_alike), given `self.view_changes_since(other)`
    /// (for a caller that amends what it cannot share: one diff serves both).
    pub fn alike_given(&self, other: &Self, changes: &ViewChanges) -> bool {
        changes.is_empty()
            && self.organisation == other.organisation
            && self.role_patterns.patterns == other.role_patterns.patterns
            && self.gateway_rules == other.gateway_rules
    }

    /// Every approved workload, in workload-id order.
    pub fn workloads(&self) -> Vec<ApprovedWorkload> {
        self.workloads_in_order().collect()
    }

    /// [`workloads`](Self::workloads) one at a time. The approved requests are put in
    /// order first, by reference: sorting the workloads themselves moved 80 000 structures
    /// of a few hundred bytes some seventeen times each at a million events.
    pub fn workloads_in_order(&self) -> impl Iterator<Item = ApprovedWorkload> + '_ {
        let mut approved: Vec<(Uuid, &BusinessRequest)> = self
            .requests
            .values()
            .filter(|r| r.status == RequestStatus::Approved)
            .filter_map(|r| Some((r.approval.as_ref()?.workload_id, &**r)))
            .collect();
        approved.sort_unstable_by_key(|(id, _)| *id);
        approved.into_iter().filter_map(|(_, r)| self.approved_workload(r))
    }

    /// The workload `request` approved, as attribution reads it (`None`: not approved).
    fn approved_workload(&self, r: &BusinessRequest) -> Option<ApprovedWorkload> {
        if r.status != RequestStatus::Approved {
            return None;
        }
        let approval = r.approval.as_ref()?;
        let plan = self.plans.get(&approval.workload_id);
        let declared_on_request = r.details.as_ref().and_then(|d| d.business_case.as_ref()).is_some();
        Some(ApprovedWorkload {
            workload_id: approval.workload_id,
            name: r.details.as_ref().map(|d| d.workload_name.clone()).unwrap_or_default(),
            owner: r.requested_by.clone(),
            product_id: r.product_id,
            portfolio_id: self.organisation.products.get(&r.product_id).map_or(Uuid::nil(), |p| p.portfolio_id),
            budgets: budget_spans(
                approval.review.budget_id.or_else(|| self.only_budget_of(&approval.review.account)),
                plan.map(|p| p.budget_changes.as_slice()).unwrap_or_default(),
            ),
            model_id: approval.review.model_id.as_str().to_owned(),
            scope: approval.scope.clone(),
            role_name: approval.role_name.as_str().to_owned(),
            business_case: declared_on_request || plan.is_some_and(|p| p.business_case.is_some()),
            estimate: true,
        })
    }

    /// The workloads approved under id `id` (one; none when it is not approved), found by
    /// the lookups rather than a walk of every request.
    pub fn approved_workloads_of(&self, id: Uuid) -> impl Iterator<Item = ApprovedWorkload> + '_ {
        self.lookup.requests_of(id).into_iter().filter_map(|r| self.approved_workload(self.requests.get(&r)?))
    }

    /// The claim periods of the resource keyed `key`.
    pub fn claim_spans_at(&self, key: &str) -> Vec<ClaimSpan> {
        self.claims.get(key).map(|c| claim_spans_of(c)).unwrap_or_default()
    }

    /// Every claim period of every resource, in resource-key order.
    pub fn claim_spans(&self) -> Vec<ClaimSpan> {
        self.claims.values().flat_map(|c| claim_spans_of(c)).collect()
    }

    /// The billing periods with a CUR batch current at `instant`, oldest first: what a
    /// trend runs over, and whose last is "the latest month with CUR" a question defaults to.
    pub fn periods_with_cur(&self, instant: chrono::DateTime<chrono::Utc>) -> Vec<&str> {
        self.cur_periods.iter().filter(|(_, p)| p.current_at(instant).is_some()).map(|(k, _)| k.as_str()).collect()
    }

    /// The monthly plan a workload's weekly cards prorate (DOMAIN.md §8): the FA Confirmed
    /// Estimate in dollars, from the request's start date (else the workload's first claim
    /// day), growing at the rate its Product Owner stated (the plan's estimate, else the
    /// request's). `None` for an unknown workload or an estimate stated in tokens.
    pub fn card_plan(&self, workload_id: Uuid) -> Option<crate::spend_cards::proration::MonthlyPlan> {
        let request =
            self.requests.values().find(|r| r.approval.as_ref().is_some_and(|a| a.workload_id == workload_id))?;
        let approval = request.approval.as_ref()?;
        let crate::vocabulary::MonthlyAmount::Dollars(cents) = approval.review.confirmed_estimate else { return None };
        let details = request.details.as_ref();
        let plan = self.plans.get(&workload_id).and_then(|p| p.estimate.as_ref());
        let first_claim = self.claim_spans().into_iter().filter(|c| c.workload_id == workload_id).map(|c| c.from).min();
        let start = details.and_then(|d| d.start).or(first_claim)?;
        let growth = plan.and_then(|e| e.monthly_growth_percent).or(details.and_then(|d| d.monthly_growth_percent));
        Some(crate::spend_cards::proration::MonthlyPlan {
            cents: cents.0,
            start,
            end: details.and_then(|d| d.end),
            growth_percent: growth.unwrap_or(0.0),
        })
    }
}

#[cfg(test)]
mod alike_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spaces::ClaimPeriod;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    #[test]
    fn budget_changes_split_the_days_and_a_later_decision_overrides_from_its_date() {
        let (a, b, c) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        assert_eq!(budget_spans(None, &[]), vec![]);
        let spans = budget_spans(Some(a), &[(day(15), b), (day(10), c)]);
        assert_eq!(
            spans,
            vec![
                BudgetSpan { budget_id: a, from: None, until: Some(day(9)) },
                BudgetSpan { budget_id: c, from: Some(day(10)), until: None },
            ]
        );
        let spans = budget_spans(Some(a), &[(day(10), b), (day(20), c)]);
        assert_eq!(spans[1], BudgetSpan { budget_id: b, from: Some(day(10)), until: Some(day(19)) });
    }

    #[test]
    fn a_callers_invocation_is_charged_to_the_claim_of_its_role_that_day() {
        let (bot, triage) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let account = "111122223333";
        let role = |name: &str| ClaimedResource::IamRole {
            account: AccountId::parse(account).unwrap(),
            role_name: name.to_owned(),
        };
        let mut state = GovernanceState::default();
        state.claims.insert(
            "bot".into(),
            Arc::new(ClaimableResource {
                resource: Some(role("finops-support-bot-88aa")),
                periods: vec![
                    ClaimPeriod { workload_id: bot, from: day(1), until: Some(day(14)) },
                    ClaimPeriod { workload_id: triage, from: day(15), until: None },
                ],
                reserved_for: None,
            }),
        );
        state.claims.insert(
            "coding".into(),
            Arc::new(ClaimableResource {
                resource: Some(role("AWSReservedSSO_DataScience_0a1b2c3d")),
                periods: vec![ClaimPeriod { workload_id: bot, from: day(1), until: None }],
                reserved_for: None,
            }),
        );
        assert_eq!(state.workload_of_caller(account, "finops-support-bot-88aa", day(3)), Some(bot));
        assert_eq!(state.workload_of_caller(account, "finops-support-bot-88aa", day(20)), Some(triage));
        assert_eq!(state.workload_of_caller("999988887777", "finops-support-bot-88aa", day(3)), None, "account");
        assert_eq!(state.workload_of_caller(account, "SharedAppRole", day(3)), None, "unclaimed");
        // Identity Center: any session of the claimed permission set, whatever its suffix.
        assert_eq!(state.workload_of_caller(account, "AWSReservedSSO_DataScience_ffee0011", day(3)), Some(bot));
        assert_eq!(state.workload_of_caller(account, "AWSReservedSSO_Admin_ffee0011", day(3)), None);
        let before = NaiveDate::from_ymd_opt(2026, 10, 31).unwrap();
        assert_eq!(state.workload_of_caller(account, "finops-support-bot-88aa", before), None, "before the claim");
    }
}
