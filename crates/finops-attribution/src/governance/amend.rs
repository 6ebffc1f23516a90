//! A state's governance tables amended from an earlier state's (issue 14.4): after an
//! approval or a claim, only the changed workloads' and claims' rows are built; every
//! other row is kept in runs — a copy of each run's bytes, or the batch itself when nothing
//! in it changed — and what the question's lookups use (each workload's rows, each claim's
//! workload, the orders by name) is carried over by arithmetic on those runs. A kept
//! workload or claim costs its rows' copy, its view entry's shared `Arc` and a few integers
//! written in contiguous arrays (none of its fields read, no text compared), so the cost is
//! mostly the copies (about 7 ms after an approval at a million events, BENCHMARKS.md) where
//! building 80 000 workloads' tables from nothing takes 0.25 s. The result is the tables [`GovernanceTables::new`] builds for
//! the later state, row for row (tests/tests/point_in_time.rs checks it on a real log).

use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{Array, RecordBatch, StringArray};
use datafusion::arrow::compute::concat_batches;
use finops_domain::governance_state::{ApprovedWorkload, ClaimSpan, GovernanceState, Run, ViewChanges, runs};
use finops_domain::role::permission_set_for;

use super::{
    GovernanceTables, GovernanceView, NAMED, Reach, WorkloadRows, claims_batch, column, names_batch, rows_named,
    rows_of, rules_batch, span_rows,
};

/// A run of rows of one of several batches: (batch, first row, rows).
type Copied = (usize, usize, usize);

/// `batches`' rows as `copied` names them, in that order (the batches share a schema: they
/// were built by one function). A batch kept entire is shared, not copied.
fn copied(batches: &[&RecordBatch], copied: &[Copied]) -> RecordBatch {
    let copied: Vec<Copied> = copied.iter().copied().filter(|(_, _, len)| *len > 0).collect();
    if let [(source, 0, len)] = copied[..]
        && len == batches[source].num_rows()
    {
        return batches[source].clone();
    }
    let slices: Vec<RecordBatch> =
        copied.iter().map(|(source, start, len)| batches[*source].slice(*start, *len)).collect();
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

/// Where `name` is, or would go, in the sorted text column `names`.
fn place(names: &StringArray, name: &str) -> usize {
    let (mut low, mut high) = (0, names.len());
    while low < high {
        let middle = low + (high - low) / 2;
        if names.value(middle) < name {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    low
}

/// Whether the sorted text column `names` holds `name`.
fn holds(names: &StringArray, name: &str) -> bool {
    let at = place(names, name);
    at < names.len() && names.value(at) == name
}

/// A sorted one-column names table with `added` (sorted, none already there) merged in.
fn merged_names(old: &RecordBatch, added: &[&str]) -> RecordBatch {
    let names = column(old, "name");
    let delta = names_batch(added.iter().copied());
    let mut runs: Vec<Copied> = Vec::with_capacity(2 * added.len() + 1);
    let mut next = 0;
    for (j, name) in added.iter().enumerate() {
        let at = place(names, name);
        runs.extend([(0, next, at - next), (1, j, 1)]);
        next = at;
    }
    runs.push((0, next, names.len() - next));
    copied(&[old, &delta], &runs)
}

/// The later list of a view (its items shared with the earlier list, an `Arc` each).
fn shared<T: Clone>(runs: &[Run<'_, '_, T>], old: &[Arc<T>]) -> Vec<Arc<T>> {
    let mut out = Vec::with_capacity(old.len() + 1);
    for run in runs {
        match run {
            Run::Kept(range) => out.extend_from_slice(&old[range.clone()]),
            Run::Inserted(items) => out.extend(items.iter().map(|item| Arc::new((*item).clone()))),
        }
    }
    out
}

/// How the rows of a table built item by item move when its items are amended by `runs`:
/// `rows[i]` is where the earlier item `i`'s rows start (`rows[len]` the table's length),
/// `delta[j]` the same for the `j`th inserted item in a table built of the inserted items
/// alone. Gives the runs of rows to copy (batch 0 the earlier table, 1 the delta) and the
/// later items' row starts in the same form.
fn moved_rows<T>(runs: &[Run<'_, '_, T>], rows: &[u32], delta: &[u32]) -> (Vec<Copied>, Vec<u32>) {
    let mut copies = Vec::with_capacity(runs.len());
    let mut starts = Vec::with_capacity(rows.len() + 1);
    let (mut next, mut inserted) = (0u32, 0);
    for run in runs {
        let (source, from, to) = match run {
            Run::Kept(range) => (0, &rows[range.start..=range.end], range.len()),
            Run::Inserted(items) => {
                inserted += items.len();
                (1, &delta[inserted - items.len()..=inserted], items.len())
            }
        };
        let shift = next as i64 - from[0] as i64;
        starts.extend(from[..to].iter().map(|r| (*r as i64 + shift) as u32));
        copies.push((source, from[0] as usize, (from[to] - from[0]) as usize));
        next += from[to] - from[0];
    }
    starts.push(next);
    (copies, starts)
}

/// Row starts of a table built item by item, from each item's rows (`rows_of`'s ranges).
fn starts_of(ranges: impl Iterator<Item = Range<u32>>) -> Vec<u32> {
    let mut starts: Vec<u32> = Vec::new();
    let mut end = 0;
    for range in ranges {
        starts.push(range.start);
        end = range.end;
    }
    starts.push(end);
    starts
}

impl GovernanceTables {
    /// The tables of `later`, amended from these, which are `earlier`'s (or those of a state
    /// attribution reads alike); `changes` is `later.view_changes_since(earlier)`. `None`
    /// when a change reaches rows that are not its own: a workload no longer approved (its
    /// generated names may go), or a claim of a role that has just become a generated one
    /// (its permission-set row changes) — build those tables instead — or when these are
    /// not `earlier`'s tables.
    pub fn amended(&self, earlier: &GovernanceState, later: &GovernanceState, changes: &ViewChanges) -> Option<Self> {
        let old = &self.view;
        let workload_splices = changes.workload_splices(old.workloads.len(), |i| old.workloads[i].workload_id);
        let claim_splices = changes.claim_splices(earlier, old.claims.len(), |i| old.claims[i].resource.key())?;
        let (workload_runs, claim_runs) =
            (runs(old.workloads.len(), &workload_splices), runs(old.claims.len(), &claim_splices));

        // Generated names only grow: a replaced workload's role must still be generated.
        let changed: Vec<&ApprovedWorkload> =
            workload_splices.iter().flat_map(|s| s.inserted.iter().copied()).collect();
        let changed_roles: BTreeSet<&str> = changed.iter().map(|w| w.role_name.as_str()).collect();
        if workload_splices
            .iter()
            .any(|s| s.removed == 1 && !changed_roles.contains(old.workloads[s.at].role_name.as_str()))
        {
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

        // The workloads' rows, kept in runs or built, and where each workload's rows are now.
        let delta = WorkloadRows::new(&later.organisation, &changed);
        let delta_rows = rows_of(&changed);
        let reach = &self.reach;
        let mut inserted = 0;
        let workload_copies: Vec<Copied> = workload_runs
            .iter()
            .map(|run| match run {
                Run::Kept(range) => (0, range.start, range.len()),
                Run::Inserted(items) => {
                    inserted += items.len();
                    (1, inserted - items.len(), items.len())
                }
            })
            .collect();
        let mut row_tables: [(Vec<Copied>, Vec<u32>); 3] = Default::default();
        for (t, moved) in row_tables.iter_mut().enumerate() {
            let rows = starts_of(reach.rows_of.iter().map(|r| r[t].clone()));
            *moved = moved_rows(&workload_runs, &rows, &starts_of(delta_rows.iter().map(|r| r[t].clone())));
        }
        let rows_of: Vec<[Range<u32>; 3]> = (0..row_tables[0].1.len() - 1)
            .map(|k| std::array::from_fn(|t| row_tables[t].1[k]..row_tables[t].1[k + 1]))
            .collect();
        let new_workloads = copied(&[&self.workloads, &delta.workloads], &workload_copies);
        let accounts = copied(&[self.table("scope_accounts"), &delta.accounts], &row_tables[0].0);
        let regions = copied(&[self.table("scope_regions"), &delta.regions], &row_tables[1].0);
        let budgets = copied(&[&self.budgets, &delta.budgets], &row_tables[2].0);
        // Each earlier workload's row now (kept, or replaced by its changed form).
        let mut new_row_of_old: Vec<Option<u32>> = vec![None; old.workloads.len()];
        let mut next = 0u32;
        for run in &workload_runs {
            match run {
                Run::Kept(range) => {
                    for (k, i) in range.clone().enumerate() {
                        new_row_of_old[i] = Some(next + k as u32);
                    }
                    next += range.len() as u32;
                }
                Run::Inserted(items) => next += items.len() as u32,
            }
        }
        for splice in workload_splices.iter().filter(|s| s.removed == 1 && !s.inserted.is_empty()) {
            let id = old.workloads[splice.at].workload_id;
            new_row_of_old[splice.at] = ids_row(&new_workloads, id);
        }

        // The claims' rows, kept in runs or built (with the generated roles as they are now).
        let changed_spans: Vec<&ClaimSpan> = claim_splices.iter().flat_map(|s| s.inserted.iter().copied()).collect();
        let role_names = column(&roles, "name");
        let delta_claims = claims_batch(&changed_spans, &|name| holds(role_names, name));
        let (claim_copies, claim_rows) = moved_rows(&claim_runs, &reach.span_rows, &span_rows(&changed_spans));
        let new_claims = copied(&[old_claims, &delta_claims], &claim_copies);

        let view = GovernanceView {
            organisation: later.organisation.clone(),
            workloads: shared(&workload_runs, &old.workloads),
            claims: shared(&claim_runs, &old.claims),
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
        let reach = reach.amended(&shared, &new_workloads, &claim_copies, &new_row_of_old, rows_of, claim_rows);
        Some(Self { view, shared, workloads: new_workloads, budgets, reach })
    }
}

/// The row of the workloads table (in id order) holding workload `id`.
fn ids_row(workloads: &RecordBatch, id: uuid::Uuid) -> Option<u32> {
    let (ids, text) = (column(workloads, "workload_id"), id.to_string());
    let at = place(ids, &text);
    (at < ids.len() && ids.value(at) == text).then_some(at as u32)
}

impl Reach {
    /// The reach of amended tables, from the earlier tables' (`self`): each claim's workload
    /// and the claims' order by name carried over for the kept rows (`claim_copies`: the
    /// runs the new claims table was copied from; `new_row_of_old`: each earlier workload's
    /// row now), looked up for the built ones; each workload's and claim's rows as moved.
    fn amended(
        &self,
        shared: &[(&'static str, RecordBatch)],
        workloads: &RecordBatch,
        claim_copies: &[Copied],
        new_row_of_old: &[Option<u32>],
        rows_of: Vec<[Range<u32>; 3]>,
        span_rows: Vec<u32>,
    ) -> Self {
        let table = |name: &str| &shared.iter().find(|(n, _)| *n == name).expect("every shared table is built").1;
        let ids = column(workloads, "workload_id");
        let workloads_by_id = in_order(ids);
        let claims = table("claims");
        let claim_ids = column(claims, "workload_id");
        let mut new_row_of_old_claim = vec![u32::MAX; self.claim_workloads.len()];
        let mut built = Vec::new();
        let mut claim_workloads = Vec::with_capacity(claims.num_rows());
        for &(source, start, len) in claim_copies {
            let first = claim_workloads.len();
            if source == 0 {
                for (k, from) in (start..start + len).enumerate() {
                    new_row_of_old_claim[from] = (first + k) as u32;
                }
                claim_workloads.extend(
                    self.claim_workloads[start..start + len].iter().map(|w| w.and_then(|w| new_row_of_old[w as usize])),
                );
            } else {
                for row in first..first + len {
                    built.push(row as u32);
                    claim_workloads.push(rows_named(&workloads_by_id, ids, claim_ids.value(row)).first().copied());
                }
            }
        }
        // The kept claims keep their order by name (runs keep their rows' order), the built
        // ones are placed among them; ties in row order, as a stable sort of the column.
        let names = column(claims, "name");
        let key = |r: u32| (names.value(r as usize), r);
        let kept: Vec<u32> =
            self.by_name[2].iter().map(|r| new_row_of_old_claim[*r as usize]).filter(|r| *r != u32::MAX).collect();
        built.sort_by_key(|r| key(*r));
        let mut claims_by_name = Vec::with_capacity(kept.len() + built.len());
        let mut next = 0;
        for b in built {
            let at = next + kept[next..].partition_point(|r| key(*r) < key(b));
            claims_by_name.extend_from_slice(&kept[next..at]);
            claims_by_name.push(b);
            next = at;
        }
        claims_by_name.extend_from_slice(&kept[next..]);
        let rules = column(table("gateway_rules"), "workload_id");
        let rule_workloads =
            (0..rules.len()).map(|r| rows_named(&workloads_by_id, ids, rules.value(r)).first().copied()).collect();
        let by_name =
            [in_order(column(table(NAMED[0]), "name")), in_order(column(table(NAMED[1]), "name")), claims_by_name];
        Self { by_name, workloads_by_id, claim_workloads, rule_workloads, rows_of, span_rows }
    }
}
