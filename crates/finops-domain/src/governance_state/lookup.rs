//! What attribution looks up in a state by name or by workload, kept beside the maps by
//! the fold (issue 14.4): a question about a state nobody asked about before reads only the
//! governance rows its month's callers can meet — a few thousand names at most — instead of
//! deriving every workload ever approved (80 000 at a million events, a quarter of a second).
//!
//! Every entry is derived from one aggregate (a Business Request or a claim history), so
//! each `apply_*` replaces what the aggregate it changed contributed and nothing else.
//! Each set is a [`HistorySet`]: the fold's own state writes it, and a kept state (a copy)
//! sees it as of the change it was copied at, so the timeline's thousand kept states share
//! one history instead of each copying the tree nodes changed since the last (as persistent
//! sets they held 0.5–0.7 GiB more at a million events). Names are shared text
//! (`Arc<str>`): a name is stored once per set whatever a copy's overlay repeats. Never
//! written to a snapshot; a snapshot read back is looked up afresh ([`Lookup::of`]).

use std::sync::Arc;

use uuid::Uuid;

use super::GovernanceState;
use super::history_set::HistorySet;
use crate::request::{BusinessRequest, RequestStatus};
use crate::role::{permission_set_for, permission_set_of_reserved_role};
use crate::spaces::{ClaimableResource, ClaimedResource};

/// The lookups of one state. Compare with [`Lookup::of`] to check that a fold kept them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lookup {
    /// Approved workloads: (workload, the request that approved it).
    pub approved: HistorySet<(Uuid, Uuid)>,
    /// Generated dedicated roles: (role name, workload).
    pub roles: HistorySet<(Arc<str>, Uuid)>,
    /// Their Coding permission sets: (permission set, workload).
    pub sets: HistorySet<(Arc<str>, Uuid)>,
    /// Approved workloads without a business case on their request (the plan may still
    /// declare one): (workload).
    pub without_case_on_request: HistorySet<Uuid>,
    /// Every name a claimed resource can be met by — a role's name, the permission sets its
    /// Identity Center sessions may carry (its generated set and its reserved-role set, or
    /// the name itself), a guardrail's ARN, a workspace's name: (name, resource key).
    pub claim_names: HistorySet<(Arc<str>, Arc<str>)>,
    /// The workloads a resource was ever claimed by: (workload, resource key).
    pub claims_of: HistorySet<(Uuid, Arc<str>)>,
}

/// What one Business Request contributes: its approved workload, role and whether its
/// details declared a business case (`None`: not approved).
pub(super) type Approved = Option<(Uuid, Arc<str>, bool)>;

/// [`Approved`] of `request`. Taken before a change and compared after it (rather than the
/// request itself kept: a second reference would make the fold copy every request it
/// changes).
pub(super) fn approved(request: Option<&BusinessRequest>) -> Approved {
    let request = request.filter(|r| r.status == RequestStatus::Approved)?;
    let approval = request.approval.as_ref()?;
    let case = request.details.as_ref().is_some_and(|d| d.business_case.is_some());
    Some((approval.workload_id, Arc::from(approval.role_name.as_str()), case))
}

/// What one claim history contributes: the names its resource is met by and the workloads
/// that ever claimed it.
pub(super) type Claimed = (Vec<Arc<str>>, Vec<Uuid>);

/// [`Claimed`] of `claim`.
pub(super) fn claimed(claim: Option<&ClaimableResource>) -> Claimed {
    let Some(claim) = claim else { return (Vec::new(), Vec::new()) };
    let names = claim.resource.as_ref().map(names_of).unwrap_or_default();
    let mut workloads: Vec<Uuid> = claim.periods.iter().map(|p| p.workload_id).collect();
    workloads.sort_unstable();
    workloads.dedup();
    (names, workloads)
}

/// The names a claimed resource can be met by (see [`Lookup::claim_names`]).
fn names_of(resource: &ClaimedResource) -> Vec<Arc<str>> {
    match resource {
        ClaimedResource::IamRole { role_name, .. } => {
            let mut names: Vec<Arc<str>> = vec![
                role_name.as_str().into(),
                permission_set_for(role_name).into(),
                permission_set_of_reserved_role(role_name).unwrap_or(role_name).into(),
            ];
            names.sort_unstable();
            names.dedup();
            names
        }
        ClaimedResource::Guardrail { arn } => vec![arn.as_str().into()],
        ClaimedResource::Workspace { name } => vec![name.as_str().into()],
    }
}

impl Lookup {
    /// The lookups of `state`, derived from its maps (a snapshot read back; a test's check).
    pub fn of(state: &GovernanceState) -> Self {
        let mut lookup = Self::default();
        for (id, request) in &state.requests {
            lookup.request_changed(*id, None, approved(Some(request)));
        }
        for (key, claim) in &state.claims {
            lookup.claim_changed(key, claimed(None), claimed(Some(claim)));
        }
        lookup
    }

    /// Replaces what request `id` contributed (`before`) with what it contributes now.
    pub(super) fn request_changed(&mut self, id: Uuid, before: Approved, after: Approved) {
        if before == after {
            return;
        }
        if let Some((workload, role, _)) = before {
            self.approved.remove(&(workload, id));
            self.sets.remove(&(permission_set_for(&role).into(), workload));
            self.roles.remove(&(role, workload));
            self.without_case_on_request.remove(&workload);
        }
        if let Some((workload, role, case)) = after {
            self.approved.insert((workload, id));
            self.sets.insert((permission_set_for(&role).into(), workload));
            self.roles.insert((role, workload));
            if !case {
                self.without_case_on_request.insert(workload);
            }
        }
    }

    /// Replaces what the claim history at `key` contributed with what it contributes now.
    pub(super) fn claim_changed(&mut self, key: &str, before: Claimed, after: Claimed) {
        if before == after {
            return;
        }
        let key: Arc<str> = key.into();
        for name in before.0 {
            self.claim_names.remove(&(name, key.clone()));
        }
        for workload in before.1 {
            self.claims_of.remove(&(workload, key.clone()));
        }
        for name in after.0 {
            self.claim_names.insert((name, key.clone()));
        }
        for workload in after.1 {
            self.claims_of.insert((workload, key.clone()));
        }
    }

    /// Whether this state writes the lookups' history — the fold's own state — and how many
    /// entries it changed itself (a copy folding on keeps its changes apart, correct but
    /// each change copied; the timeline keeps its head the fold's own, see its tests).
    pub fn writes_history(&self) -> (bool, usize) {
        let sets = [self.approved.own_changes(), self.roles.own_changes(), self.sets.own_changes()];
        let more = [self.without_case_on_request.own_changes(), self.claim_names.own_changes()];
        let own = sets.iter().chain(&more).sum::<usize>() + self.claims_of.own_changes();
        (self.approved.writes_history(), own)
    }

    /// The approved workloads whose generated role is `name`.
    pub fn workloads_with_role(&self, name: &str) -> Vec<Uuid> {
        second_of(&self.roles, name)
    }

    /// Whether `name` is a generated role's Coding permission set.
    pub fn is_generated_set(&self, name: &str) -> bool {
        !second_of(&self.sets, name).is_empty()
    }

    /// The keys of the resources `name` may meet.
    pub fn claims_named(&self, name: &str) -> Vec<Arc<str>> {
        // Every key sorts after the empty one.
        let name: Arc<str> = name.into();
        let entries = self.claim_names.range_while((name.clone(), Arc::from("")).., |(n, _)| *n == name);
        entries.into_iter().map(|(_, key)| key).collect()
    }

    /// The requests that approved workload `id` (one, unless a log says otherwise).
    pub fn requests_of(&self, id: Uuid) -> Vec<Uuid> {
        self.approved.range((id, Uuid::nil())..=(id, Uuid::max())).into_iter().map(|(_, r)| r).collect()
    }

    /// The keys of the resources workload `id` ever claimed.
    pub fn claims_by(&self, id: Uuid) -> Vec<Arc<str>> {
        let entries = self.claims_of.range_while((id, Arc::from("")).., |(w, _)| *w == id);
        entries.into_iter().map(|(_, key)| key).collect()
    }
}

/// The second members of the pairs in `set` whose first is `name`.
fn second_of(set: &HistorySet<(Arc<str>, Uuid)>, name: &str) -> Vec<Uuid> {
    let name: Arc<str> = name.into();
    set.range((name.clone(), Uuid::nil())..=(name, Uuid::max())).into_iter().map(|(_, w)| w).collect()
}
