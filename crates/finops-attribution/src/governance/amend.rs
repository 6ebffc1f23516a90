//! A state's governance tables amended from an earlier state's (issue 14.4): after an
//! approval or a claim, the rows of every workload and claim that did not change are
//! copied from the earlier tables (in runs: a copy of the bytes, or the batch itself when
//! nothing in it changed) and only the changed ones are built — 12–25 ms at a million
//! events (BENCHMARKS.md) where building 80 000 workloads' tables from nothing takes 0.4 s. The result is the tables [`GovernanceTables::new`]
//! builds for the later state, row for row (tests/tests/point_in_time.rs checks it on a
//! real log).

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::array::{Array, RecordBatch, StringArray};
use datafusion::arrow::compute::concat_batches;
use finops_domain::governance_state::{Amended, ApprovedWorkload, ClaimSpan, GovernanceState, ViewChanges};
use finops_domain::role::permission_set_for;

use super::{
    GovernanceTables, GovernanceView, NAMED, Reach, WorkloadRows, claims_batch, column, names_batch, rows_named,
    rows_of, rules_batch,
};

/// Rows of several batches, as (batch, row) pairs: what `interleave` copies.
type Picks = Vec<(usize, usize)>;

/// `batches`' rows as `picks` names them, in that order (the batches share a schema: they
/// were built by one function). Kept rows come in long runs — an approval inserts one
/// workload among 80 000 — so the runs are copied whole (slices concatenated: a copy of
/// each run's bytes, not of each value), and a batch kept entire is shared, not copied.
fn picked(batches: &[&RecordBatch], picks: &[(usize, usize)]) -> RecordBatch {
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    for &(source, row) in picks {
        match runs.last_mut() {
            Some((s, start, len)) if *s == source && *start + *len == row => *len += 1,
            _ => runs.push((source, row, 1)),
        }
    }
    if let [(source, 0, len)] = runs[..]
        && len == batches[source].num_rows()
    {
        return batches[source].clone();
    }
    let slices: Vec<RecordBatch> =
        runs.iter().map(|(source, start, len)| batches[*source].slice(*start, *len)).collect();
    concat_batches(&batches[0].schema(), &slices).expect("batches built by one function share their schema")
}

/// The rows of a column in the order of their text, for a column built in that order: the
/// generated names (sets, or merged in order), and the workloads' ids (workloads are in id
/// order, and a UUID's hyphenated lower-case text sorts as its bytes do). What
/// `sorted_rows` gives such a column, without comparing its text (checked in debug builds).
pub(super) fn in_order(column: &StringArray) -> Vec<u32> {
    debug_assert!((1..column.len()).all(|r| column.value(r - 1) <= column.value(r)), "a column built in order");
    (0..column.len() as u32).collect()
}

/// The amended list's items, those kept shared with `old` (an `Arc` each, not a copy).
fn shared<T: Clone>(amended: &[Amended<'_, T>], old: &[Arc<T>]) -> Vec<Arc<T>> {
    amended
        .iter()
        .map(|a| match a {
            Amended::Kept(i) => old[*i].clone(),
            Amended::Changed(item) => Arc::new((*item).clone()),
        })
        .collect()
}

/// Whether every item `amended` keeps is one of the `len` it was amended from.
fn kept_in_range<T>(amended: &[Amended<'_, T>], len: usize) -> bool {
    amended.iter().all(|a| !matches!(a, Amended::Kept(i) if *i >= len))
}

/// Whether the sorted text column `names` holds `name`.
fn holds(names: &StringArray, name: &str) -> bool {
    let (mut low, mut high) = (0, names.len());
    while low < high {
        let middle = low + (high - low) / 2;
        if names.value(middle) < name {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    low < names.len() && names.value(low) == name
}

/// Row `i` of a claims table built from `spans` starts at `starts[i]`; `starts` ends with
/// the table's length (a role claim has two rows: its role and its permission set).
fn span_starts<S: std::ops::Deref<Target = ClaimSpan>>(spans: &[S]) -> Vec<usize> {
    let mut starts = Vec::with_capacity(spans.len() + 1);
    let mut next = 0;
    starts.push(0);
    for s in spans {
        next += match s.resource {
            finops_domain::spaces::ClaimedResource::IamRole { .. } => 2,
            _ => 1,
        };
        starts.push(next);
    }
    starts
}

/// A sorted one-column names table with `added` (sorted, none already there) merged in.
fn merged_names(old: &RecordBatch, added: &[&str]) -> RecordBatch {
    let names = column(old, "name");
    let delta = names_batch(added.iter().copied());
    let mut picks: Picks = Vec::with_capacity(names.len() + added.len());
    let mut next = added.iter().enumerate().peekable();
    for row in 0..names.len() {
        while let Some((j, _)) = next.next_if(|(_, a)| **a < names.value(row)) {
            picks.push((1, j));
        }
        picks.push((0, row));
    }
    picks.extend(next.map(|(j, _)| (1, j)));
    picked(&[old, &delta], &picks)
}

impl GovernanceTables {
    /// The tables of `later`, amended from these, which are `earlier`'s (or those of a state
    /// attribution reads alike); `changes` is `later.view_changes_since(earlier)`. `None`
    /// when a change reaches rows that are not its own: a workload no longer approved, or a
    /// claim of a role that has just become a generated one (its permission-set row
    /// changes) — build those tables instead.
    pub fn amended(&self, earlier: &GovernanceState, later: &GovernanceState, changes: &ViewChanges) -> Option<Self> {
        let old = &self.view;
        let workloads = changes.workloads_from(&old.workloads);
        let claims = changes.claim_spans_from(earlier);
        if !kept_in_range(&workloads, old.workloads.len()) || !kept_in_range(&claims, old.claims.len()) {
            return None; // not these tables' state
        }

        // Generated names only grow: a replaced workload's role must still be generated.
        let changed: Vec<&ApprovedWorkload> =
            workloads.iter().filter_map(|a| if let Amended::Changed(w) = a { Some(*w) } else { None }).collect();
        let changed_roles: BTreeSet<&str> = changed.iter().map(|w| w.role_name.as_str()).collect();
        // Each earlier workload's row now (kept, or replaced by its changed form).
        let mut new_row_of_old: Vec<Option<u32>> = vec![None; old.workloads.len()];
        let mut kept = vec![false; old.workloads.len()];
        for (k, a) in workloads.iter().enumerate() {
            let i = match a {
                Amended::Kept(i) => {
                    kept[*i] = true;
                    *i
                }
                Amended::Changed(w) => match old.workloads.binary_search_by_key(&w.workload_id, |o| o.workload_id) {
                    Ok(i) => i,
                    Err(_) => continue,
                },
            };
            new_row_of_old[i] = Some(k as u32);
        }
        if old.workloads.iter().zip(&kept).any(|(w, kept)| !kept && !changed_roles.contains(w.role_name.as_str())) {
            return None;
        }
        let (old_roles, old_sets) = (self.table("generated_roles"), self.table("generated_sets"));
        let added_roles: Vec<&str> =
            changed_roles.iter().copied().filter(|r| !holds(column(old_roles, "name"), r)).collect();
        let old_claims = self.table("claims");
        let (claim_names, claim_kinds) = (column(old_claims, "name"), column(old_claims, "kind"));
        if added_roles.iter().any(|r| {
            rows_named(&self.reach.by_name[2], claim_names, r)
                .iter()
                .any(|row| claim_kinds.value(*row as usize) == "role")
        }) {
            return None;
        }
        let added_sets: BTreeSet<String> =
            added_roles.iter().map(|r| permission_set_for(r)).filter(|s| !holds(column(old_sets, "name"), s)).collect();
        let roles = merged_names(old_roles, &added_roles);
        let sets = merged_names(old_sets, &added_sets.iter().map(String::as_str).collect::<Vec<_>>());

        // The rows of each workload, kept or built.
        let delta = WorkloadRows::new(&later.organisation, &changed);
        let delta_rows = rows_of(&changed);
        let mut picks: [Picks; 4] = Default::default();
        let mut budget_rows = Vec::new();
        let mut next = 0;
        for (k, a) in workloads.iter().enumerate() {
            let (source, row, ranges) = match a {
                Amended::Kept(i) => (0, *i, &self.reach.rows_of[*i]),
                Amended::Changed(_) => {
                    next += 1;
                    (1, next - 1, &delta_rows[next - 1])
                }
            };
            picks[0].push((source, row));
            for (t, range) in ranges.iter().enumerate() {
                picks[t + 1].extend(range.clone().map(|r| (source, r as usize)));
            }
            budget_rows.extend(ranges[2].clone().map(|_| k));
        }
        let new_workloads = picked(&[&self.workloads, &delta.workloads], &picks[0]);
        let accounts = picked(&[self.table("scope_accounts"), &delta.accounts], &picks[1]);
        let regions = picked(&[self.table("scope_regions"), &delta.regions], &picks[2]);
        let budgets = picked(&[&self.budgets.0, &delta.budgets], &picks[3]);

        // The claims' rows, kept or built (with the generated roles as they are now).
        let changed_spans: Vec<&ClaimSpan> =
            claims.iter().filter_map(|a| if let Amended::Changed(s) = a { Some(*s) } else { None }).collect();
        let role_names = column(&roles, "name");
        let delta_claims = claims_batch(&changed_spans, &|name| holds(role_names, name));
        let (old_starts, delta_starts) = (span_starts(&old.claims), span_starts(&changed_spans));
        let mut claim_picks: Picks = Vec::with_capacity(old_claims.num_rows() + delta_claims.num_rows());
        let mut next = 0;
        for a in &claims {
            let (source, starts, i) = match a {
                Amended::Kept(i) => (0, &old_starts, *i),
                Amended::Changed(_) => {
                    next += 1;
                    (1, &delta_starts, next - 1)
                }
            };
            claim_picks.extend((starts[i]..starts[i + 1]).map(|r| (source, r)));
        }
        let new_claims = picked(&[old_claims, &delta_claims], &claim_picks);

        let view = GovernanceView {
            organisation: later.organisation.clone(),
            workloads: shared(&workloads, &old.workloads),
            claims: shared(&claims, &old.claims),
            patterns: later.role_patterns.patterns.clone(),
            gateway_rules: later.gateway_rule_spans(),
        };
        let shared = vec![
            ("generated_roles", roles),
            ("generated_sets", sets),
            ("scope_accounts", accounts),
            ("scope_regions", regions),
            ("claims", new_claims),
            ("gateway_rules", rules_batch(&view.gateway_rules)),
        ];
        let reach = self.reach.amended(&shared, &new_workloads, &view, &claim_picks, &new_row_of_old);
        Some(Self { view, shared, workloads: new_workloads, budgets: (budgets, budget_rows), reach })
    }
}

impl Reach {
    /// The reach of amended tables, from the earlier tables' (`self`): the claims' order by
    /// name and each claim's workload carried over for the kept rows (`claim_picks`: where
    /// each new claims row came from; `new_row_of_old`: each earlier workload's row now),
    /// looked up for the built ones; the rest is cheap to find again.
    fn amended(
        &self,
        shared: &[(&'static str, RecordBatch)],
        workloads: &RecordBatch,
        view: &GovernanceView,
        claim_picks: &[(usize, usize)],
        new_row_of_old: &[Option<u32>],
    ) -> Self {
        let table = |name: &str| &shared.iter().find(|(n, _)| *n == name).expect("every shared table is built").1;
        let ids = column(workloads, "workload_id");
        let workloads_by_id = in_order(ids);
        let claims = table("claims");
        let mut new_row_of_old_claim = vec![u32::MAX; self.claim_workloads.len()];
        let mut built = Vec::new();
        let mut claim_workloads = Vec::with_capacity(claim_picks.len());
        for (row, (source, from)) in claim_picks.iter().enumerate() {
            if *source == 0 {
                new_row_of_old_claim[*from] = row as u32;
                claim_workloads.push(self.claim_workloads[*from].and_then(|w| new_row_of_old[w as usize]));
            } else {
                built.push(row as u32);
                let of = column(claims, "workload_id").value(row);
                claim_workloads.push(rows_named(&workloads_by_id, ids, of).first().copied());
            }
        }
        // The kept claims in their order by name (their relative order is kept), merged with
        // the built ones sorted.
        let names = column(claims, "name");
        built.sort_by(|a, b| names.value(*a as usize).cmp(names.value(*b as usize)));
        let kept = self.by_name[2].iter().map(|r| new_row_of_old_claim[*r as usize]).filter(|r| *r != u32::MAX);
        let mut claims_by_name = Vec::with_capacity(claim_picks.len());
        let mut built = built.into_iter().peekable();
        // Ties in row order, as a stable sort of the whole column orders them.
        let key = |r: u32| (names.value(r as usize), r);
        for row in kept {
            while let Some(b) = built.next_if(|b| key(*b) < key(row)) {
                claims_by_name.push(b);
            }
            claims_by_name.push(row);
        }
        claims_by_name.extend(built);
        let rules = column(table("gateway_rules"), "workload_id");
        let rule_workloads =
            (0..rules.len()).map(|r| rows_named(&workloads_by_id, ids, rules.value(r)).first().copied()).collect();
        let all: Vec<&ApprovedWorkload> = view.workloads.iter().map(|w| &**w).collect();
        let by_name =
            [in_order(column(table(NAMED[0]), "name")), in_order(column(table(NAMED[1]), "name")), claims_by_name];
        Self { by_name, workloads_by_id, claim_workloads, rule_workloads, rows_of: rows_of(&all) }
    }
}
