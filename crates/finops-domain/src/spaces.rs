//! Spaces (DOMAIN.md §5): a Product Owner claims a resource for a workload — an IAM role,
//! a Bedrock guardrail or a Claude Platform workspace — effective from a date, and may
//! release it. One aggregate per resource, so "one workload at a time per resource" is
//! enforced by the log's optimistic concurrency on the resource's stream. The claim
//! history keeps every period, which is what point-in-time attribution reads.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::error::{DomainError, FieldViolation};
use crate::vocabulary::AccountId;

/// What can be claimed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimedResource {
    /// An IAM role in an account.
    IamRole {
        /// The account.
        account: AccountId,
        /// The role name (without path).
        role_name: String,
    },
    /// A Bedrock guardrail.
    Guardrail {
        /// `arn:aws:bedrock:{region}:{account}:guardrail/{id}`
        arn: String,
    },
    /// A Claude Platform workspace.
    Workspace {
        /// The workspace name.
        name: String,
    },
}

impl ClaimedResource {
    /// A role given as a name (with the account) or as an ARN
    /// `arn:aws:iam::{account}:role/{path/}{name}` (the account may then be left empty; if
    /// given, it must match the ARN's).
    pub fn role(account: &str, name_or_arn: &str) -> Result<Self, String> {
        let Some(rest) = name_or_arn.strip_prefix("arn:aws:iam::") else {
            return Self::role_name(AccountId::parse(account)?, name_or_arn);
        };
        let not_arn = || format!("`{name_or_arn}` is not an IAM role ARN");
        let (arn_account, resource) = rest.split_once(':').ok_or_else(not_arn)?;
        let path = resource.strip_prefix("role/").ok_or_else(not_arn)?;
        let name = path.rsplit('/').next().unwrap_or_default();
        if !account.is_empty() && account != arn_account {
            return Err(format!("the ARN is in account {arn_account}, not {account}"));
        }
        Self::role_name(AccountId::parse(arn_account)?, name)
    }

    fn role_name(account: AccountId, name: &str) -> Result<Self, String> {
        if crate::role::is_valid_iam_role_name(name) {
            Ok(Self::IamRole { account, role_name: name.to_owned() })
        } else {
            Err(format!("`{name}` is not a valid IAM role name"))
        }
    }

    /// A guardrail ARN.
    pub fn guardrail(arn: &str) -> Result<Self, String> {
        let ok = arn.starts_with("arn:aws:bedrock:") && arn.contains(":guardrail/") && !arn.ends_with('/');
        if ok {
            Ok(Self::Guardrail { arn: arn.to_owned() })
        } else {
            Err(format!("`{arn}` is not a Bedrock guardrail ARN"))
        }
    }

    /// The stable key of the resource's stream.
    pub fn key(&self) -> String {
        match self {
            Self::IamRole { account, role_name } => format!("role:{account}:{role_name}"),
            Self::Guardrail { arn } => format!("guardrail:{arn}"),
            Self::Workspace { name } => format!("workspace:{name}"),
        }
    }
}

/// What an approval generated for its workload, and so reserves for it: the dedicated
/// role in the approved account, the Coding permission set when its name differs from the
/// role's (Identity Center's 32-character limit), the Claude Platform workspace.
pub fn generated_for(request: &crate::request::BusinessRequest) -> Vec<ClaimedResource> {
    let Some(approval) = &request.approval else { return vec![] };
    let account = approval.review.account.clone();
    let role = approval.role_name.as_str();
    let mut out = vec![ClaimedResource::IamRole { account: account.clone(), role_name: role.to_owned() }];
    let coding = request.details.as_ref().is_some_and(|d| matches!(d.use_case, crate::request::UseCase::Coding { .. }));
    let set = crate::role::permission_set_for(role);
    if coding && set != role {
        out.push(ClaimedResource::IamRole { account, role_name: set });
    }
    if let Some(workspace) = &approval.review.workspace {
        out.push(ClaimedResource::Workspace { name: workspace.clone() });
    }
    out
}

/// One period during which a workload held the resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimPeriod {
    /// Who held it.
    pub workload_id: Uuid,
    /// First day (inclusive).
    pub from: NaiveDate,
    /// Last day (inclusive); open while the claim stands.
    pub until: Option<NaiveDate>,
}

/// What may be asked of a claimable resource.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimCommand {
    /// Claim for a workload from a date.
    Claim {
        /// The resource.
        resource: ClaimedResource,
        /// The workload.
        workload_id: Uuid,
        /// Effective from (the handler defaults it to the billing period's first day).
        effective_from: NaiveDate,
        /// Who.
        by: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Record that the resource was generated for a workload (its dedicated role or
    /// permission set, its Claude Platform workspace): only that workload may claim it,
    /// unless the FinOps Lead reassigns it. Issued by the approval's fan-out.
    Reserve {
        /// The resource.
        resource: ClaimedResource,
        /// The workload it was generated for.
        workload_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// The FinOps Lead hands the resource to another workload from a date: the standing
    /// claim (if any) ends the day before, the new one begins, the reservation moves.
    Reassign {
        /// The resource.
        resource: ClaimedResource,
        /// The workload that takes it.
        workload_id: Uuid,
        /// From (inclusive).
        effective_from: NaiveDate,
        /// Who.
        by: String,
        /// Why (required).
        rationale: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Release the standing claim after a date.
    Release {
        /// The last day the claim covers.
        effective_until: NaiveDate,
        /// Who.
        by: String,
        /// Why.
        rationale: String,
        /// When.
        at: DateTime<Utc>,
    },
}

/// What a claimable resource records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum ClaimEvent {
    /// Claimed.
    ResourceClaimed {
        /// The resource.
        resource: ClaimedResource,
        /// The workload.
        workload_id: Uuid,
        /// From.
        effective_from: NaiveDate,
        /// Who.
        by: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Generated for a workload: reserved for it.
    ResourceReserved {
        /// The resource.
        resource: ClaimedResource,
        /// The workload.
        workload_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// Handed to another workload by the FinOps Lead.
    ResourceReassigned {
        /// The resource.
        resource: ClaimedResource,
        /// The workload that held it (its claim ends the day before), if any.
        from_workload: Option<Uuid>,
        /// The workload that holds it now.
        to_workload: Uuid,
        /// From.
        effective_from: NaiveDate,
        /// Who.
        by: String,
        /// Why.
        rationale: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Released.
    ResourceReleased {
        /// The workload that held it.
        workload_id: Uuid,
        /// Until.
        effective_until: NaiveDate,
        /// Who.
        by: String,
        /// Why.
        rationale: String,
        /// When.
        at: DateTime<Utc>,
    },
}

/// A resource's claim history.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ClaimableResource {
    /// The resource (set on first claim).
    pub resource: Option<ClaimedResource>,
    /// Every period, oldest first; the last is open while claimed.
    pub periods: Vec<ClaimPeriod>,
    /// The workload the resource was generated for, who alone may claim it.
    pub reserved_for: Option<Uuid>,
}

impl ClaimableResource {
    /// The standing claim, if any.
    pub fn current(&self) -> Option<&ClaimPeriod> {
        self.periods.last().filter(|p| p.until.is_none())
    }

    /// Who held the resource on `day`.
    pub fn holder_on(&self, day: NaiveDate) -> Option<Uuid> {
        self.periods.iter().find(|p| p.from <= day && p.until.is_none_or(|u| day <= u)).map(|p| p.workload_id)
    }
}

impl Aggregate for ClaimableResource {
    type Command = ClaimCommand;
    type Event = ClaimEvent;
    type Error = DomainError;

    fn decide(&self, command: &ClaimCommand) -> Result<Vec<ClaimEvent>, DomainError> {
        match command {
            ClaimCommand::Claim { resource, workload_id, effective_from, by, at } => {
                if let Some(owner) = self.reserved_for.filter(|owner| owner != workload_id) {
                    return Err(DomainError::Precondition(format!(
                        "{} was generated for workload {owner}; another workload cannot claim it (the FinOps Lead can reassign it, with a rationale)",
                        resource.key()
                    )));
                }
                if let Some(current) = self.current() {
                    if current.workload_id == *workload_id && current.from == *effective_from {
                        return Ok(vec![]);
                    }
                    return Err(DomainError::Precondition(format!(
                        "{} is claimed by workload {} since {}; it must be released first",
                        resource.key(),
                        current.workload_id,
                        current.from
                    )));
                }
                if let Some(last) = self.periods.last().and_then(|p| p.until)
                    && *effective_from <= last
                {
                    return Err(DomainError::Invalid(vec![FieldViolation::new(
                        "effective_from",
                        format!("{effective_from} overlaps the previous claim, which ran until {last}"),
                    )]));
                }
                Ok(vec![ClaimEvent::ResourceClaimed {
                    resource: resource.clone(),
                    workload_id: *workload_id,
                    effective_from: *effective_from,
                    by: by.clone(),
                    at: *at,
                }])
            }
            ClaimCommand::Reserve { resource, workload_id, at } => match self.reserved_for {
                Some(owner) if owner == *workload_id => Ok(vec![]),
                Some(owner) => Err(DomainError::Precondition(format!(
                    "{} is already reserved for workload {owner}",
                    resource.key()
                ))),
                None => Ok(vec![ClaimEvent::ResourceReserved {
                    resource: resource.clone(),
                    workload_id: *workload_id,
                    at: *at,
                }]),
            },
            ClaimCommand::Reassign { resource, workload_id, effective_from, by, rationale, at } => {
                let current = self.current();
                if current.is_some_and(|c| c.workload_id == *workload_id && c.from == *effective_from) {
                    return Ok(vec![]);
                }
                let mut violations = crate::error::rationale_violations(rationale);
                if let Some(c) = current.filter(|c| *effective_from <= c.from) {
                    violations.push(FieldViolation::new(
                        "effective_from",
                        format!("{effective_from} must be after the standing claim began ({})", c.from),
                    ));
                }
                if current.is_none()
                    && let Some(last) = self.periods.last().and_then(|p| p.until)
                    && *effective_from <= last
                {
                    violations.push(FieldViolation::new(
                        "effective_from",
                        format!("{effective_from} overlaps the previous claim, which ran until {last}"),
                    ));
                }
                if !violations.is_empty() {
                    return Err(DomainError::Invalid(violations));
                }
                Ok(vec![ClaimEvent::ResourceReassigned {
                    resource: resource.clone(),
                    from_workload: current.map(|c| c.workload_id),
                    to_workload: *workload_id,
                    effective_from: *effective_from,
                    by: by.clone(),
                    rationale: rationale.clone(),
                    at: *at,
                }])
            }
            ClaimCommand::Release { effective_until, by, rationale, at } => {
                let Some(current) = self.current() else {
                    let released_same = self.periods.last().is_some_and(|p| p.until == Some(*effective_until));
                    return if released_same {
                        Ok(vec![])
                    } else {
                        Err(DomainError::IllegalTransition {
                            aggregate: "resource",
                            state: "unclaimed",
                            action: "release",
                        })
                    };
                };
                let mut violations = crate::error::rationale_violations(rationale);
                if *effective_until < current.from {
                    violations.push(FieldViolation::new(
                        "effective_until",
                        format!("{effective_until} is before the claim began ({})", current.from),
                    ));
                }
                if !violations.is_empty() {
                    return Err(DomainError::Invalid(violations));
                }
                Ok(vec![ClaimEvent::ResourceReleased {
                    workload_id: current.workload_id,
                    effective_until: *effective_until,
                    by: by.clone(),
                    rationale: rationale.clone(),
                    at: *at,
                }])
            }
        }
    }

    fn evolve(mut self, event: &ClaimEvent) -> Self {
        match event {
            ClaimEvent::ResourceClaimed { resource, workload_id, effective_from, .. } => {
                self.resource = Some(resource.clone());
                self.periods.push(ClaimPeriod { workload_id: *workload_id, from: *effective_from, until: None });
            }
            ClaimEvent::ResourceReleased { effective_until, .. } => {
                if let Some(p) = self.periods.last_mut() {
                    p.until = Some(*effective_until);
                }
            }
            ClaimEvent::ResourceReserved { resource, workload_id, .. } => {
                self.resource.get_or_insert_with(|| resource.clone());
                self.reserved_for = Some(*workload_id);
            }
            ClaimEvent::ResourceReassigned { resource, to_workload, effective_from, .. } => {
                self.resource.get_or_insert_with(|| resource.clone());
                if let Some(p) = self.periods.last_mut().filter(|p| p.until.is_none()) {
                    p.until = effective_from.pred_opt();
                }
                self.periods.push(ClaimPeriod { workload_id: *to_workload, from: *effective_from, until: None });
                if self.reserved_for.is_some() {
                    self.reserved_for = Some(*to_workload);
                }
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::spec::given;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }
    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-10T09:00:00Z").unwrap().with_timezone(&Utc)
    }
    const A: Uuid = Uuid::from_u128(1);
    const B: Uuid = Uuid::from_u128(2);

    fn role() -> ClaimedResource {
        ClaimedResource::role("123456789012", "finops-claims-triage-q9z1").unwrap()
    }
    fn claim(workload_id: Uuid, from: &str) -> ClaimCommand {
        ClaimCommand::Claim { resource: role(), workload_id, effective_from: day(from), by: "po".into(), at: now() }
    }
    fn claimed(workload_id: Uuid, from: &str) -> ClaimEvent {
        ClaimEvent::ResourceClaimed {
            resource: role(),
            workload_id,
            effective_from: day(from),
            by: "po".into(),
            at: now(),
        }
    }

    #[test]
    fn roles_are_named_or_given_as_arns() {
        let by_arn =
            ClaimedResource::role("", "arn:aws:iam::123456789012:role/team/finops-claims-triage-q9z1").unwrap();
        assert_eq!(by_arn, role());
        assert_eq!(role().key(), "role:123456789012:finops-claims-triage-q9z1");
        assert!(ClaimedResource::role("12345", "x").is_err());
        assert!(ClaimedResource::role("123456789012", "bad name!").is_err());
        assert!(ClaimedResource::guardrail("arn:aws:bedrock:us-east-1:123456789012:guardrail/abc123").is_ok());
        assert!(ClaimedResource::guardrail("arn:aws:s3:::bucket").is_err());
    }

    #[test]
    fn one_workload_holds_a_resource_at_a_time() {
        assert_eq!(
            given::<ClaimableResource>(&[]).when(claim(A, "2026-11-01")).unwrap(),
            vec![claimed(A, "2026-11-01")]
        );
        let err = given::<ClaimableResource>(&[claimed(A, "2026-11-01")]).when(claim(B, "2026-11-15")).unwrap_err();
        assert!(err.to_string().contains("must be released first"), "{err}");
    }

    #[test]
    fn released_then_reclaimed_keeps_both_periods_for_point_in_time_reads() {
        let released = ClaimEvent::ResourceReleased {
            workload_id: A,
            effective_until: day("2026-11-14"),
            by: "po".into(),
            rationale: "moved to the new bot".into(),
            at: now(),
        };
        let history = [claimed(A, "2026-11-01"), released.clone()];
        let err = given::<ClaimableResource>(&history).when(claim(B, "2026-11-14")).unwrap_err();
        assert!(matches!(err, DomainError::Invalid(_)), "{err}");
        let events = given::<ClaimableResource>(&history).when(claim(B, "2026-11-15")).unwrap();
        let state = ClaimableResource::fold(history.iter().chain(&events));
        assert_eq!(state.holder_on(day("2026-11-14")), Some(A));
        assert_eq!(state.holder_on(day("2026-11-15")), Some(B));
        assert_eq!(state.holder_on(day("2026-10-31")), None);
    }

    fn reserved(workload_id: Uuid) -> ClaimEvent {
        ClaimEvent::ResourceReserved { resource: role(), workload_id, at: now() }
    }

    /// Regression (issue 10.6): a Product Owner could claim the role generated for another
    /// Product Owner's workload and move its spend to theirs.
    #[test]
    fn a_generated_resource_is_claimed_only_by_its_workload() {
        let err = given::<ClaimableResource>(&[reserved(A)]).when(claim(B, "2026-11-01")).unwrap_err();
        assert!(
            matches!(&err, DomainError::Precondition(m) if m.contains(&A.to_string()) && m.contains("FinOps Lead can reassign")),
            "{err}"
        );
        assert_eq!(
            given::<ClaimableResource>(&[reserved(A)]).when(claim(A, "2026-11-01")).unwrap(),
            vec![claimed(A, "2026-11-01")]
        );
    }

    #[test]
    fn the_finops_lead_reassigns_with_a_reason_and_both_periods_stay() {
        let reassign = |rationale: &str, from: &str| ClaimCommand::Reassign {
            resource: role(),
            workload_id: B,
            effective_from: day(from),
            by: "fl-ana".into(),
            rationale: rationale.into(),
            at: now(),
        };
        let history = [reserved(A), claimed(A, "2026-11-01")];
        let err = given::<ClaimableResource>(&history).when(reassign(" ", "2026-11-01")).unwrap_err();
        let DomainError::Invalid(v) = err else { panic!() };
        assert_eq!(v.iter().map(|v| v.field.as_str()).collect::<Vec<_>>(), vec!["rationale", "effective_from"]);
        let events = given::<ClaimableResource>(&history).when(reassign("team moved", "2026-11-16")).unwrap();
        let state = ClaimableResource::fold(history.iter().chain(&events));
        assert_eq!(state.holder_on(day("2026-11-15")), Some(A));
        assert_eq!(state.holder_on(day("2026-11-16")), Some(B));
        assert_eq!(state.reserved_for, Some(B), "the reservation moves with it");
        let err = given::<ClaimableResource>(&history.iter().cloned().chain(events).collect::<Vec<_>>())
            .when(claim(A, "2026-12-01"))
            .unwrap_err();
        assert!(matches!(err, DomainError::Precondition(_)), "{err}");
    }

    #[test]
    fn a_release_needs_a_standing_claim_a_reason_and_a_sane_date() {
        let err = given::<ClaimableResource>(&[])
            .when(ClaimCommand::Release {
                effective_until: day("2026-11-30"),
                by: "po".into(),
                rationale: "x".into(),
                at: now(),
            })
            .unwrap_err();
        assert_eq!(err.to_string(), "cannot release a resource that is unclaimed");
        let err = given::<ClaimableResource>(&[claimed(A, "2026-11-01")])
            .when(ClaimCommand::Release {
                effective_until: day("2026-10-30"),
                by: "po".into(),
                rationale: "".into(),
                at: now(),
            })
            .unwrap_err();
        let DomainError::Invalid(v) = err else { panic!() };
        assert_eq!(v.iter().map(|v| v.field.as_str()).collect::<Vec<_>>(), vec!["rationale", "effective_until"]);
    }
}
