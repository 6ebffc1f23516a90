//! A question's governance rows looked up in the state itself (issue 14.4): for a state no
//! question has kept tables for — the first question after an approval, an instant nobody
//! asked about — only the rows the month's callers can meet are made, from the state's
//! [`Lookup`](finops_domain::governance_state::Lookup), so the question costs what its
//! month names (a few thousand principals at most), not what the log holds (building every
//! workload's tables takes a quarter of a second at a million events).
//!
//! Registers what [`GovernanceTables::register_reached`], `register_charged` and the
//! unbacked workloads' tables register from whole tables, row for row and in the same
//! order (`tests/reached_rows.rs` compares them on a real log).

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::error::Result;
use datafusion::prelude::SessionContext;
use finops_domain::governance_state::{ApprovedWorkload, ClaimSpan, GovernanceState};
use uuid::Uuid;

use super::{ClaimRow, Visibility, WorkloadRows, claim_rows, claims_rows_batch, names_batch, register, rules_batch};

/// Whether `name` is a generated role in `state`.
fn generated(state: &GovernanceState, name: &str) -> bool {
    !state.lookup().workloads_with_role(name).is_empty()
}

/// The approved workloads `ids` name, in id order, each once, as `visibility` may see them.
fn approved(state: &GovernanceState, ids: BTreeSet<Uuid>, visibility: Option<&Visibility>) -> Vec<ApprovedWorkload> {
    ids.into_iter()
        .filter_map(|id| state.approved_workloads_of(id).next())
        .filter(|w| visibility.is_none_or(|v| v.shows(&state.organisation, w)))
        .collect()
}

/// Registers the rows a batch whose facets name `names` can meet, as
/// [`GovernanceTables::register_reached`](super::GovernanceTables::register_reached) does
/// from whole tables: the generated names and claim rows named so, the gateway rules, and
/// the workloads those claims and rules charge with their scopes (`workloads` as
/// `visibility` may see them).
pub fn register_reached<'a>(
    ctx: &SessionContext,
    state: &GovernanceState,
    visibility: &Visibility,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<()> {
    let lookup = state.lookup();
    let names: BTreeSet<&str> = names.into_iter().collect();
    let roles = names.iter().copied().filter(|n| generated(state, n));
    register(ctx, "generated_roles", names_batch(roles))?;
    register(ctx, "generated_sets", names_batch(names.iter().copied().filter(|n| lookup.is_generated_set(n))))?;
    // Claim rows in the whole table's order: by resource key, period, then role before set.
    let keys: BTreeSet<Arc<str>> = names.iter().flat_map(|n| lookup.claims_named(n)).collect();
    let spans: Vec<ClaimSpan> = keys.iter().flat_map(|k| state.claim_spans_at(k)).collect();
    let is_generated = |name: &str| generated(state, name);
    let rows: Vec<ClaimRow<'_>> =
        spans.iter().flat_map(|s| claim_rows(s, &is_generated)).filter(|r| names.contains(&*r.name)).collect();
    register(ctx, "claims", claims_rows_batch(&rows))?;
    let rules = state.gateway_rule_spans();
    register(ctx, "gateway_rules", rules_batch(&rules))?;
    let charged: BTreeSet<Uuid> =
        rows.iter().map(|r| r.span.workload_id).chain(rules.iter().map(|r| r.spec.workload_id)).collect();
    let charged = approved(state, charged, None);
    let all: Vec<&ApprovedWorkload> = charged.iter().collect();
    let scopes = WorkloadRows::new(&state.organisation, &all);
    register(ctx, "scope_accounts", scopes.accounts)?;
    register(ctx, "scope_regions", scopes.regions)?;
    let shown: Vec<&ApprovedWorkload> = charged.iter().filter(|w| visibility.shows(&state.organisation, w)).collect();
    register(ctx, "workloads", WorkloadRows::new(&state.organisation, &shown).workloads)
}

/// Registers `charged_workloads` and `charged_budgets` as
/// [`GovernanceTables::register_charged`](super::GovernanceTables::register_charged) does:
/// the workloads `workload_ids` names that `visibility` may see, and their budgets.
pub fn register_charged<'a>(
    ctx: &SessionContext,
    state: &GovernanceState,
    visibility: &Visibility,
    workload_ids: impl IntoIterator<Item = &'a str>,
) -> Result<()> {
    let ids = workload_ids.into_iter().filter_map(|id| Uuid::parse_str(id).ok()).collect();
    let charged = approved(state, ids, Some(visibility));
    let rows = WorkloadRows::new(&state.organisation, &charged.iter().collect::<Vec<_>>());
    register(ctx, "charged_budgets", rows.budgets)?;
    register(ctx, "charged_workloads", rows.workloads)
}

/// Registers `unbacked_workloads` and `unbacked_claims`: the approved workloads without a
/// business case that `visibility` may see and that held a claim on some day from `first`
/// to `last`, with those claims — what the Unbacked AI Workloads question reads of the
/// whole `workloads` and `claims` tables (the rows it would pass over left out).
pub fn register_unbacked(
    ctx: &SessionContext,
    state: &GovernanceState,
    visibility: &Visibility,
    (first, last): (NaiveDate, NaiveDate),
) -> Result<()> {
    let lookup = state.lookup();
    let in_period = |s: &ClaimSpan| s.from <= last && s.until.is_none_or(|u| u >= first);
    let mut spans: Vec<ClaimSpan> = Vec::new();
    let mut ids = BTreeSet::new();
    for id in lookup.without_case_on_request.keys() {
        // Declared later in Spaces: backed.
        if state.plans.get(&id).is_some_and(|p| p.business_case.is_some()) {
            continue;
        }
        let held: Vec<ClaimSpan> = lookup
            .claims_by(id)
            .into_iter()
            .flat_map(|key| state.claim_spans_at(&key))
            .filter(|s| s.workload_id == id && in_period(s))
            .collect();
        if !held.is_empty() {
            ids.insert(id);
            spans.extend(held);
        }
    }
    let unbacked = approved(state, ids, Some(visibility));
    let rows = WorkloadRows::new(&state.organisation, &unbacked.iter().collect::<Vec<_>>());
    register(ctx, "unbacked_workloads", rows.workloads)?;
    let rows: Vec<ClaimRow<'_>> = spans.iter().flat_map(|s| claim_rows(s, &|name| generated(state, name))).collect();
    register(ctx, "unbacked_claims", claims_rows_batch(&rows))
}
