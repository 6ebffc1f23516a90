//! What attribution looks up in a state by name or by workload, kept beside the maps by
//! the fold (issue 14.4): a question about a state nobody asked about before reads only the
//! governance rows its month's callers can meet — a few thousand names at most — instead of
//! deriving every workload ever approved (80 000 at a million events, a quarter of a second).
//!
//! Every entry is derived from one aggregate (a Business Request or a claim history), so
//! each `apply_*` replaces what the aggregate it changed contributed and nothing else.
//! Persistent sets, like the maps: a kept state shares all of it but the changed paths —
//! and since a changed path's nodes are copied key by key, names are shared text
//! (`Arc<str>`), whose copy is a count, not an allocation (as `String`s, the timeline's
//! thousand kept states held 0.5 GiB more at a million events). Never written to a
//! snapshot; a snapshot read back is looked up afresh ([`Lookup::of`]).

use std::sync::Arc;

use imbl::OrdSet;
use uuid::Uuid;

use super::GovernanceState;
use crate::request::{BusinessRequest, RequestStatus};
use crate::role::{permission_set_for, permission_set_of_reserved_role};
use crate::spaces::{ClaimableResource, ClaimedResource};

/// The lookups of one state. Compare with [`Lookup::of`] to check that a fold kept them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lookup {
    /// Approved workloads: (workload, the request that approved it).
    pub approved: OrdSet<(Uuid, Uuid)>,
    /// Generated dedicated roles: (role name, workload).
    pub roles: OrdSet<(Arc<str>, Uuid)>,
    /// Their Coding permission sets: (permission set, workload).
    pub sets: OrdSet<(Arc<str>, Uuid)>,
    /// Approved workloads without a business case on their request (the plan may still
    /// declare one): (workload).
    pub without_case_on_request: OrdSet<Uuid>,
    /// Every name a claimed resource can be met by — a role's name, the permission sets its
    /// Identity Center sessions may carry (its generated set and its reserved-role set, or
    /// the name itself), a guardrail's ARN, a workspace's name: (name, resource key).
    pub claim_names: OrdSet<(Arc<str>, Arc<str>)>,
    /// The workloads a resource was ever claimed by: (workload, resource key).
    pub claims_of: OrdSet<(Uuid, Arc<str>)>,
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

    /// The approved workloads whose generated role is `name`.
    pub fn workloads_with_role<'a>(&'a self, name: &str) -> impl Iterator<Item = Uuid> + 'a {
        second_of(&self.roles, name)
    }

    /// Whether `name` is a generated role's Coding permission set.
    pub fn is_generated_set(&self, name: &str) -> bool {
        second_of(&self.sets, name).next().is_some()
    }

    /// The keys of the resources `name` may meet.
    pub fn claims_named<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let name: Arc<str> = name.into();
        self.claim_names
            .range((name.clone(), Arc::from(""))..)
            .take_while(move |(n, _)| *n == name)
            .map(|(_, key)| &**key)
    }

    /// The requests that approved workload `id` (one, unless a log says otherwise).
    pub fn requests_of(&self, id: Uuid) -> impl Iterator<Item = Uuid> + '_ {
        self.approved.range((id, Uuid::nil())..=(id, Uuid::max())).map(|(_, r)| *r)
    }

    /// The keys of the resources workload `id` ever claimed.
    pub fn claims_by(&self, id: Uuid) -> impl Iterator<Item = &str> + '_ {
        self.claims_of.range((id, Arc::from(""))..).take_while(move |(w, _)| *w == id).map(|(_, key)| &**key)
    }
}

/// The second members of the pairs in `set` whose first is `name`.
fn second_of<'a>(set: &'a OrdSet<(Arc<str>, Uuid)>, name: &str) -> impl Iterator<Item = Uuid> + 'a {
    let name: Arc<str> = name.into();
    set.range((name.clone(), Uuid::nil())..=(name, Uuid::max())).map(|(_, w)| *w)
}
