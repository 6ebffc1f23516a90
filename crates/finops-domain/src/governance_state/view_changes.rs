//! What attribution reads that changed between two states of one timeline: the workloads
//! and claim histories to build again, so that what was derived from the earlier state
//! (attribution's governance tables, 80 000 workloads at a million events) is amended
//! rather than built from nothing after an approval or a claim (issue 14.4).

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::{ApprovedWorkload, ClaimSpan, GovernanceState, VIEW_DIFF_LIMIT, claim_spans_of};
use crate::request::RequestStatus;

/// The changes to [`GovernanceState::workloads`] and [`GovernanceState::claim_spans`] from
/// one state to a later one: every workload and claim history not named here is the same
/// in both. Organisation, role patterns and gateway rules are not part of it (they are
/// small; read them from the later state).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ViewChanges {
    /// Workloads by id whose approved form may differ: `Some` the later state's, `None` not
    /// approved there (an id the earlier state did not approve either is harmless).
    pub workloads: BTreeMap<Uuid, Option<ApprovedWorkload>>,
    /// Claim histories by resource key whose periods may differ: the later state's periods
    /// of that resource (empty: none).
    pub claims: BTreeMap<String, Vec<ClaimSpan>>,
    /// How many changed requests, plans and claims were walked to find these: how far
    /// apart the two states are.
    pub compared: usize,
}

impl GovernanceState {
    /// What changed in the workloads and claim spans attribution reads from `earlier` to
    /// `self`, found by diffing the persistent maps (shared subtrees skipped). `None` when
    /// the states are too far apart to compare cheaply (more than [`VIEW_DIFF_LIMIT`]
    /// changed requests, plans and claims in all) or the organisation changed in a way that can
    /// move every workload: a budget added, changed or removed (a workload whose approval
    /// named none charges its account's only budget), or a product or portfolio changed or
    /// removed (their names are on every workload's row). Products and portfolios added
    /// are fine: the workloads of requests naming an added product are among the changes.
    pub fn view_changes_since(&self, earlier: &Self) -> Option<ViewChanges> {
        self.view_changes_within(earlier, VIEW_DIFF_LIMIT)
    }

    /// [`view_changes_since`](Self::view_changes_since), walking at most `limit` changed
    /// requests, plans and claims in all (`None` past it): a caller that already holds a
    /// close enough earlier state compares the others only as far as that one
    /// ([`ViewChanges::compared`]).
    pub fn view_changes_within(&self, earlier: &Self, limit: usize) -> Option<ViewChanges> {
        let (now, then) = (&self.organisation, &earlier.organisation);
        if now.budgets != then.budgets
            || !only_added(&now.portfolios, &then.portfolios)
            || !only_added(&now.products, &then.products)
        {
            return None;
        }
        let mut changes = ViewChanges::default();
        let workload_of = |r: &crate::request::BusinessRequest| {
            (r.status == RequestStatus::Approved).then(|| r.approval.as_ref().map(|a| a.workload_id)).flatten()
        };
        let mut seen = 0;
        let mut walked = || {
            seen += 1;
            seen <= limit
        };
        for item in earlier.requests.diff(&self.requests) {
            if !walked() {
                return None;
            }
            let (old, new) = match item {
                imbl::ordmap::DiffItem::Add(_, new) => (None, Some(new)),
                imbl::ordmap::DiffItem::Remove(_, old) => (Some(old), None),
                imbl::ordmap::DiffItem::Update { old: (_, old), new: (_, new) } => (Some(old), Some(new)),
            };
            if let Some(w) = old.and_then(|r| workload_of(r)) {
                changes.workloads.entry(w).or_insert(None);
            }
            if let Some(w) = new.and_then(|r| self.approved_workload(r)) {
                changes.workloads.insert(w.workload_id, Some(w));
            }
        }
        // A plan changes its workload's budgets and business case; an added product the
        // portfolio of the workloads naming it. A plan made by an approval belongs to a
        // request changed above (its workload already read with the new plan); the rest
        // are rare: one walk of the requests finds their workloads.
        let mut plans = BTreeSet::new();
        for item in earlier.plans.diff(&self.plans) {
            if !walked() {
                return None;
            }
            let workload = *diff_key(&item);
            if !changes.workloads.contains_key(&workload) {
                plans.insert(workload);
            }
        }
        let added: BTreeSet<Uuid> = now.products.keys().filter(|id| !then.products.contains_key(id)).copied().collect();
        if !plans.is_empty() || !added.is_empty() {
            for r in self.requests.values() {
                let Some(w) = workload_of(r) else { continue };
                if plans.contains(&w) || added.contains(&r.product_id) {
                    changes.workloads.insert(w, self.approved_workload(r));
                }
            }
        }
        for item in earlier.claims.diff(&self.claims) {
            if !walked() {
                return None;
            }
            let key = diff_key(&item);
            let spans = self.claims.get(key).map(|c| claim_spans_of(c)).unwrap_or_default();
            changes.claims.insert(key.clone(), spans);
        }
        changes.compared = seen;
        Some(changes)
    }
}

/// Whether `now` holds every entry of `then`, unchanged.
fn only_added<K: Ord, V: PartialEq>(now: &BTreeMap<K, V>, then: &BTreeMap<K, V>) -> bool {
    then.iter().all(|(k, old)| now.get(k) == Some(old))
}

fn diff_key<'a, K, V>(item: &imbl::ordmap::DiffItem<'a, 'a, K, V>) -> &'a K {
    match item {
        imbl::ordmap::DiffItem::Add(k, _) | imbl::ordmap::DiffItem::Remove(k, _) => k,
        imbl::ordmap::DiffItem::Update { new: (k, _), .. } => k,
    }
}

/// A run of a list replaced: the earlier list's items `at..at + removed` give way to
/// `inserted`, in order. A list's splices come in order and do not overlap, so that the
/// rest of the list — nearly all of it, after an approval — is kept in runs, never walked.
#[derive(Debug, Clone, PartialEq)]
pub struct Splice<'a, T> {
    /// Where, in the earlier list.
    pub at: usize,
    /// How many of the earlier list's items are replaced.
    pub removed: usize,
    /// What takes their place.
    pub inserted: Vec<&'a T>,
}

/// A list amended by splices, run by run: a run of the earlier list kept, or items inserted.
#[derive(Debug, Clone, PartialEq)]
pub enum Run<'s, 'a, T> {
    /// The earlier list's items in this range, unchanged.
    Kept(std::ops::Range<usize>),
    /// Items a splice inserted.
    Inserted(&'s [&'a T]),
}

/// The runs of the later list made from an earlier list of `len` items by `splices`.
pub fn runs<'s, 'a, T>(len: usize, splices: &'s [Splice<'a, T>]) -> Vec<Run<'s, 'a, T>> {
    let mut runs = Vec::with_capacity(2 * splices.len() + 1);
    let mut next = 0;
    for splice in splices {
        if splice.at > next {
            runs.push(Run::Kept(next..splice.at));
        }
        if !splice.inserted.is_empty() {
            runs.push(Run::Inserted(&splice.inserted));
        }
        next = splice.at + splice.removed;
    }
    if len > next {
        runs.push(Run::Kept(next..len));
    }
    runs
}

/// The first of `len` sorted items for which `before(i)` is false.
fn partition_point(len: usize, before: impl Fn(usize) -> bool) -> usize {
    let (mut low, mut high) = (0, len);
    while low < high {
        let middle = low + (high - low) / 2;
        if before(middle) {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    low
}

impl ViewChanges {
    /// Whether nothing attribution's lists hold changed.
    pub fn is_empty(&self) -> bool {
        self.workloads.is_empty() && self.claims.is_empty()
    }

    /// The splices that make the later state's [`GovernanceState::workloads`] of the
    /// earlier state's: `len` workloads in id order, `id(i)` the id of the `i`th (found by
    /// binary search: a change costs its own place, not a walk of the list).
    pub fn workload_splices(&self, len: usize, id: impl Fn(usize) -> Uuid) -> Vec<Splice<'_, ApprovedWorkload>> {
        self.workloads
            .iter()
            .map(|(workload, new)| {
                let at = partition_point(len, |i| id(i) < *workload);
                let removed = usize::from(at < len && id(at) == *workload);
                Splice { at, removed, inserted: new.iter().collect() }
            })
            .collect()
    }

    /// The splices that make the later state's [`GovernanceState::claim_spans`] of the
    /// earlier state's (`earlier`): `len` spans in the order of their claim histories'
    /// keys, `key(i)` the key of the `i`th span's resource — a claim's stream is keyed by
    /// its resource's key ([`ClaimedResource::key`](crate::spaces::ClaimedResource::key)),
    /// by every writer. `None` when the list is not `earlier`'s: a changed history's spans
    /// are not where, or not as many as, `earlier` says.
    pub fn claim_splices(
        &self,
        earlier: &GovernanceState,
        len: usize,
        key: impl Fn(usize) -> String,
    ) -> Option<Vec<Splice<'_, ClaimSpan>>> {
        let mut splices = Vec::with_capacity(self.claims.len());
        for (resource, spans) in &self.claims {
            let at = partition_point(len, |i| key(i) < *resource);
            // As many as `claim_spans_of` gives the history.
            let removed =
                earlier.claims.get(resource).map_or(0, |c| c.resource.as_ref().map_or(0, |_| c.periods.len()));
            let lands = at + removed <= len
                && (at..at + removed).all(|i| key(i) == *resource)
                && (at + removed == len || key(at + removed) != *resource);
            if !lands {
                return None;
            }
            splices.push(Splice { at, removed, inserted: spans.iter().collect() });
        }
        Some(splices)
    }
}
