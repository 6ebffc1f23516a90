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
}

impl GovernanceState {
    /// What changed in the workloads and claim spans attribution reads from `earlier` to
    /// `self`, found by diffing the persistent maps (shared subtrees skipped). `None` when
    /// the states are too far apart to compare cheaply (more than [`VIEW_DIFF_LIMIT`]
    /// changed requests, plans or claims) or the organisation changed in a way that can
    /// move every workload: a budget added, changed or removed (a workload whose approval
    /// named none charges its account's only budget), or a product or portfolio changed or
    /// removed (their names are on every workload's row). Products and portfolios added
    /// are fine: the workloads of requests naming an added product are among the changes.
    pub fn view_changes_since(&self, earlier: &Self) -> Option<ViewChanges> {
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
        for item in earlier.requests.diff(&self.requests) {
            seen += 1;
            if seen > VIEW_DIFF_LIMIT {
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
        // portfolio of the workloads naming it. Both are rare: one walk of the requests.
        let mut plans = BTreeSet::new();
        for item in earlier.plans.diff(&self.plans) {
            plans.insert(*diff_key(&item));
            if plans.len() > VIEW_DIFF_LIMIT {
                return None;
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
            let key = diff_key(&item);
            let spans = self.claims.get(key).map(|c| claim_spans_of(c)).unwrap_or_default();
            changes.claims.insert(key.clone(), spans);
            if changes.claims.len() > VIEW_DIFF_LIMIT {
                return None;
            }
        }
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

/// One item of a list amended by [`ViewChanges`]: kept from the earlier list (its index
/// there) or as the changes give it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amended<'a, T> {
    /// The earlier list's item at this index, unchanged.
    Kept(usize),
    /// A changed or added item.
    Changed(&'a T),
}

impl ViewChanges {
    /// Whether nothing attribution's lists hold changed.
    pub fn is_empty(&self) -> bool {
        self.workloads.is_empty() && self.claims.is_empty()
    }

    /// The later state's [`GovernanceState::workloads`] from the earlier state's (`earlier`,
    /// in workload-id order, as that method returns them): the same list, in the same order,
    /// each item kept or changed.
    pub fn workloads_from<W: std::borrow::Borrow<ApprovedWorkload>>(
        &self,
        earlier: &[W],
    ) -> Vec<Amended<'_, ApprovedWorkload>> {
        let mut out = Vec::with_capacity(earlier.len() + self.workloads.len());
        let mut changed = self.workloads.iter().peekable();
        for (i, w) in earlier.iter().enumerate() {
            let id = w.borrow().workload_id;
            while let Some((_, new)) = changed.next_if(|(c, _)| **c < id) {
                out.extend(new.as_ref().map(Amended::Changed));
            }
            match changed.next_if(|(c, _)| **c == id) {
                Some((_, new)) => out.extend(new.as_ref().map(Amended::Changed)),
                None => out.push(Amended::Kept(i)),
            }
        }
        out.extend(changed.filter_map(|(_, new)| new.as_ref().map(Amended::Changed)));
        out
    }

    /// The later state's [`GovernanceState::claim_spans`] from the earlier state's
    /// (`earlier` is that state: its claim histories say which spans belong to which key).
    pub fn claim_spans_from<'a>(&'a self, earlier: &GovernanceState) -> Vec<Amended<'a, ClaimSpan>> {
        let mut out = Vec::new();
        let mut changed = self.claims.iter().peekable();
        let mut index = 0;
        for (key, claimable) in &earlier.claims {
            let count = if claimable.resource.is_some() { claimable.periods.len() } else { 0 };
            while let Some((_, spans)) = changed.next_if(|(c, _)| c.as_str() < key.as_str()) {
                out.extend(spans.iter().map(Amended::Changed));
            }
            match changed.next_if(|(c, _)| *c == key) {
                Some((_, spans)) => out.extend(spans.iter().map(Amended::Changed)),
                None => out.extend((index..index + count).map(Amended::Kept)),
            }
            index += count;
        }
        out.extend(changed.flat_map(|(_, spans)| spans.iter().map(Amended::Changed)));
        out
    }
}
