//! The kill switch (DOMAIN.md §9, issue 13.4): a Product Owner (their own workload) or the
//! FinOps Lead suspends a workload at once; the FinOps Lead resumes it. One decision fans
//! out to the exact AWS calls that stop Bedrock invocation by the workload's IAM roles —
//! tag the role `finops-suspended=true` and put an inline deny on it (NEAR-REAL-TIME.md
//! §2.3: needs only IAM in the workload's account, reaches live sessions) — and resuming
//! undoes exactly those calls, read from the suspension, not recomputed.
//!
//! The calls are part of the decision, so the trail shows what was asked of AWS. Who runs
//! them is the decision's [`Enforcement`]: FinOps Center's enforcer process (when AWS
//! credentials are configured), recording every attempt and its per-call result; or a
//! person, who is shown the commands. Until an attempt succeeds for every call the
//! workload is visibly *suspension pending* with the error, never silently half-done.
//!
//! One aggregate per workload: [`WorkloadControl`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::artefacts::CliCommand;
use crate::error::{DomainError, Violations};
use crate::gaps::Decider;
use crate::governance_state::GovernanceState;
use crate::spaces::ClaimedResource;
use crate::vocabulary::AccountId;

/// The tag a suspension puts on a role (and an SCP keyed on it would match).
pub const SUSPENDED_TAG: &str = "finops-suspended";

/// The inline policy a suspension puts on a role.
pub const DENY_POLICY_NAME: &str = "FinOpsKillSwitch";

/// The deny: every Bedrock inference action, Converse included (NEAR-REAL-TIME.md §2.1:
/// denying `InvokeModel*` denies Converse; `bedrock-mantle` escapes both and the logs).
pub fn deny_policy_document() -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "FinOpsKillSwitch",
            "Effect": "Deny",
            "Action": [
                "bedrock:InvokeModel",
                "bedrock:InvokeModelWithResponseStream",
                "bedrock-mantle:CreateInference"
            ],
            "Resource": "*"
        }]
    })
    .to_string()
}

/// One IAM call, exactly as it is sent (Query API) or run (`aws iam …`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "PascalCase")]
pub enum AwsCall {
    /// `iam:TagRole`
    TagRole {
        /// The role's account (the credentials that run it must be that account's).
        account: AccountId,
        /// The role.
        role_name: String,
        /// Tag key.
        key: String,
        /// Tag value.
        value: String,
    },
    /// `iam:UntagRole`
    UntagRole {
        /// The role's account.
        account: AccountId,
        /// The role.
        role_name: String,
        /// Tag key.
        key: String,
    },
    /// `iam:PutRolePolicy`
    PutRolePolicy {
        /// The role's account.
        account: AccountId,
        /// The role.
        role_name: String,
        /// The inline policy's name.
        policy_name: String,
        /// The policy document (JSON).
        document: String,
    },
    /// `iam:DeleteRolePolicy`
    DeleteRolePolicy {
        /// The role's account.
        account: AccountId,
        /// The role.
        role_name: String,
        /// The inline policy's name.
        policy_name: String,
    },
}

impl AwsCall {
    /// The IAM Query API action.
    pub fn action(&self) -> &'static str {
        match self {
            Self::TagRole { .. } => "TagRole",
            Self::UntagRole { .. } => "UntagRole",
            Self::PutRolePolicy { .. } => "PutRolePolicy",
            Self::DeleteRolePolicy { .. } => "DeleteRolePolicy",
        }
    }

    /// The account whose credentials run it.
    pub fn account(&self) -> &AccountId {
        match self {
            Self::TagRole { account, .. }
            | Self::UntagRole { account, .. }
            | Self::PutRolePolicy { account, .. }
            | Self::DeleteRolePolicy { account, .. } => account,
        }
    }

    /// The role it changes.
    pub fn role_name(&self) -> &str {
        match self {
            Self::TagRole { role_name, .. }
            | Self::UntagRole { role_name, .. }
            | Self::PutRolePolicy { role_name, .. }
            | Self::DeleteRolePolicy { role_name, .. } => role_name,
        }
    }

    /// The Query API parameters after `Action` and `Version`.
    pub fn parameters(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::TagRole { role_name, key, value, .. } => vec![
                ("RoleName", role_name.clone()),
                ("Tags.member.1.Key", key.clone()),
                ("Tags.member.1.Value", value.clone()),
            ],
            Self::UntagRole { role_name, key, .. } => {
                vec![("RoleName", role_name.clone()), ("TagKeys.member.1", key.clone())]
            }
            Self::PutRolePolicy { role_name, policy_name, document, .. } => vec![
                ("RoleName", role_name.clone()),
                ("PolicyName", policy_name.clone()),
                ("PolicyDocument", document.clone()),
            ],
            Self::DeleteRolePolicy { role_name, policy_name, .. } => {
                vec![("RoleName", role_name.clone()), ("PolicyName", policy_name.clone())]
            }
        }
    }

    /// The same call for a person to run with the account's credentials.
    pub fn cli(&self) -> CliCommand {
        let words: Vec<String> = match self {
            Self::TagRole { role_name, key, value, .. } => {
                vec![
                    "tag-role".into(),
                    "--role-name".into(),
                    role_name.clone(),
                    "--tags".into(),
                    format!("Key={key},Value={value}"),
                ]
            }
            Self::UntagRole { role_name, key, .. } => {
                vec!["untag-role".into(), "--role-name".into(), role_name.clone(), "--tag-keys".into(), key.clone()]
            }
            Self::PutRolePolicy { role_name, policy_name, document, .. } => vec![
                "put-role-policy".into(),
                "--role-name".into(),
                role_name.clone(),
                "--policy-name".into(),
                policy_name.clone(),
                "--policy-document".into(),
                document.clone(),
            ],
            Self::DeleteRolePolicy { role_name, policy_name, .. } => vec![
                "delete-role-policy".into(),
                "--role-name".into(),
                role_name.clone(),
                "--policy-name".into(),
                policy_name.clone(),
            ],
        };
        CliCommand { argv: ["aws".to_owned(), "iam".to_owned()].into_iter().chain(words).collect() }
    }

    /// The call that removes exactly what this one added (`None`: it adds nothing).
    pub fn undo(&self) -> Option<AwsCall> {
        match self {
            Self::TagRole { account, role_name, key, .. } => {
                Some(Self::UntagRole { account: account.clone(), role_name: role_name.clone(), key: key.clone() })
            }
            Self::PutRolePolicy { account, role_name, policy_name, .. } => Some(Self::DeleteRolePolicy {
                account: account.clone(),
                role_name: role_name.clone(),
                policy_name: policy_name.clone(),
            }),
            Self::UntagRole { .. } | Self::DeleteRolePolicy { .. } => None,
        }
    }
}

/// What a suspension asks of AWS, and what it cannot reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SuspensionPlan {
    /// The calls, in order: for each role, the tag, then the deny.
    pub calls: Vec<AwsCall>,
    /// What no IAM call stops, each with what a person must do instead.
    pub not_covered: Vec<String>,
}

/// The suspension of `workload_id` as the governance state stands: its dedicated role
/// (Bedrock and Marketplace workloads) and every other IAM role it holds a claim on now;
/// what IAM cannot reach (an Identity Center permission set, a Claude Platform workspace)
/// is named in `not_covered` with the step a person takes.
pub fn suspension_plan(state: &GovernanceState, workload_id: Uuid) -> Result<SuspensionPlan, DomainError> {
    let request =
        state
            .requests
            .values()
            .find(|r| r.approval.as_ref().is_some_and(|a| a.workload_id == workload_id))
            .ok_or_else(|| DomainError::Precondition(format!("workload {workload_id} is not an approved workload")))?;
    let approval = request.approval.as_ref().expect("found by its approval");
    let coding = request.details.as_ref().is_some_and(|d| matches!(d.use_case, crate::request::UseCase::Coding { .. }));
    let permission_set = crate::role::permission_set_for(approval.role_name.as_str());
    let mut plan = SuspensionPlan::default();
    let mut roles: Vec<(AccountId, String)> = Vec::new();
    if coding {
        plan.not_covered.push(format!(
            "Identity Center permission set `{permission_set}`: IAM cannot edit its AWSReservedSSO_ roles; in IAM Identity Center, remove the permission set's account assignments (or its invoke policy) and re-provision"
        ));
    } else {
        roles.push((approval.review.account.clone(), approval.role_name.as_str().to_owned()));
    }
    for claim in state.claims.values() {
        let (Some(resource), Some(current)) = (&claim.resource, claim.current()) else { continue };
        if current.workload_id != workload_id {
            continue;
        }
        match resource {
            ClaimedResource::IamRole { account, role_name } => {
                let generated_set = coding && *role_name == permission_set;
                if !generated_set && !roles.iter().any(|(a, r)| a == account && r == role_name) {
                    roles.push((account.clone(), role_name.clone()));
                }
            }
            ClaimedResource::Workspace { name } => plan.not_covered.push(format!(
                "Claude Platform workspace `{name}`: no AWS call stops it; archive the workspace or revoke its API keys in the Claude Console"
            )),
            // A guardrail spends only when a role invokes through it: the roles' deny stops it.
            ClaimedResource::Guardrail { .. } => {}
        }
    }
    for (account, role_name) in roles {
        plan.calls.push(AwsCall::TagRole {
            account: account.clone(),
            role_name: role_name.clone(),
            key: SUSPENDED_TAG.to_owned(),
            value: "true".to_owned(),
        });
        plan.calls.push(AwsCall::PutRolePolicy {
            account,
            role_name,
            policy_name: DENY_POLICY_NAME.to_owned(),
            document: deny_policy_document(),
        });
    }
    Ok(plan)
}

/// Who carries out a decision's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Enforcement {
    /// FinOps Center's enforcer, through the AWS API (credentials are configured).
    Automatic,
    /// A person runs the commands shown (no AWS credentials are configured).
    Manual,
}

/// What one call did in one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallOutcome {
    /// Which call of the decision (0-based).
    pub call: usize,
    /// Whether AWS accepted it (or it had already taken effect).
    pub ok: bool,
    /// AWS's request id, or its error code and message.
    pub detail: String,
}

/// The workload's control status (DOMAIN.md §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ControlStatus {
    /// Never suspended.
    #[default]
    Active,
    /// Suspended; the calls are not all applied yet (or the last attempt failed).
    SuspensionPending,
    /// Suspended, every call applied (or handed to a person, for manual enforcement).
    Suspended,
    /// Resumed; the undoing calls are not all applied yet.
    ResumePending,
    /// Resumed, every undoing call applied.
    Resumed,
}

impl ControlStatus {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::SuspensionPending => "suspension pending",
            Self::Suspended => "suspended",
            Self::ResumePending => "resume pending",
            Self::Resumed => "resumed",
        }
    }

    /// Spend is (being) stopped.
    pub fn suspended(self) -> bool {
        matches!(self, Self::SuspensionPending | Self::Suspended)
    }
}

/// Suspend or resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlAction {
    /// Stop the workload's Bedrock calls.
    Suspend,
    /// Undo a suspension.
    Resume,
}

/// What may be asked of a workload's control.
#[derive(Debug, Clone, PartialEq)]
pub enum ControlCommand {
    /// Suspend with `plan` (from [`suspension_plan`]).
    Suspend {
        /// The workload.
        workload_id: Uuid,
        /// The calls.
        plan: SuspensionPlan,
        /// Who runs them.
        enforcement: Enforcement,
        /// Who, role, why, when.
        decider: Decider,
    },
    /// Resume: undo the standing suspension's calls.
    Resume {
        /// Who runs the undoing calls.
        enforcement: Enforcement,
        /// Who, role, why, when.
        decider: Decider,
    },
    /// The enforcer's attempt at decision `decision`'s calls.
    RecordAttempt {
        /// Which decision (1-based, in the stream's order).
        decision: u32,
        /// Which attempt (1-based): the enforcer's count, so a retried record is recognised.
        attempt: u32,
        /// One outcome per call.
        outcomes: Vec<CallOutcome>,
        /// When.
        at: DateTime<Utc>,
    },
}

/// What a workload's control records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum ControlEvent {
    /// Suspended, with the calls that stop it.
    WorkloadSuspended {
        /// The workload.
        workload_id: Uuid,
        /// The decision's number (1-based).
        decision: u32,
        /// The calls.
        calls: Vec<AwsCall>,
        /// What the calls do not reach.
        not_covered: Vec<String>,
        /// Who runs the calls.
        enforcement: Enforcement,
        /// Who, role, why, when.
        decider: Decider,
    },
    /// Resumed, with the calls that undo the suspension.
    WorkloadResumed {
        /// The workload.
        workload_id: Uuid,
        /// The decision's number.
        decision: u32,
        /// The undoing calls.
        calls: Vec<AwsCall>,
        /// Who runs them.
        enforcement: Enforcement,
        /// Who, role, why, when.
        decider: Decider,
    },
    /// The enforcer ran a decision's calls once.
    EnforcementAttempted {
        /// The decision.
        decision: u32,
        /// Its attempt number (1-based).
        attempt: u32,
        /// One outcome per call.
        outcomes: Vec<CallOutcome>,
        /// When.
        at: DateTime<Utc>,
    },
}

/// One suspend or resume decision and what came of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlDecision {
    /// Its number (1-based).
    pub decision: u32,
    /// Suspend or resume.
    pub action: ControlAction,
    /// The calls.
    pub calls: Vec<AwsCall>,
    /// What the calls do not reach.
    pub not_covered: Vec<String>,
    /// Who runs them.
    pub enforcement: Enforcement,
    /// Who, role, why, when.
    pub decider: Decider,
    /// The enforcer's attempts, oldest first.
    pub attempts: Vec<(u32, Vec<CallOutcome>, DateTime<Utc>)>,
}

impl ControlDecision {
    /// Every call applied in the latest attempt (or there is nothing to apply).
    pub fn applied(&self) -> bool {
        self.calls.is_empty()
            || self
                .attempts
                .last()
                .is_some_and(|(_, outcomes, _)| outcomes.len() == self.calls.len() && outcomes.iter().all(|o| o.ok))
    }

    /// What the enforcer still owes: automatic, and not applied.
    pub fn pending(&self) -> bool {
        self.enforcement == Enforcement::Automatic && !self.applied()
    }

    /// The latest attempt's failures, `call: detail`, for people.
    pub fn last_error(&self) -> Option<String> {
        let (_, outcomes, _) = self.attempts.last()?;
        let failed: Vec<String> = outcomes
            .iter()
            .filter(|o| !o.ok)
            .map(|o| match self.calls.get(o.call) {
                Some(call) => format!("{} {}: {}", call.action(), call.role_name(), o.detail),
                None => o.detail.clone(),
            })
            .collect();
        (!failed.is_empty()).then(|| failed.join("; "))
    }
}

/// A workload's suspensions and resumptions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WorkloadControl {
    /// The workload (set by its first decision).
    pub workload_id: Option<Uuid>,
    /// Every decision, oldest first.
    pub decisions: Vec<ControlDecision>,
}

impl WorkloadControl {
    /// Where the workload stands.
    pub fn status(&self) -> ControlStatus {
        match self.decisions.last() {
            None => ControlStatus::Active,
            Some(d) => match (d.action, d.pending()) {
                (ControlAction::Suspend, true) => ControlStatus::SuspensionPending,
                (ControlAction::Suspend, false) => ControlStatus::Suspended,
                (ControlAction::Resume, true) => ControlStatus::ResumePending,
                (ControlAction::Resume, false) => ControlStatus::Resumed,
            },
        }
    }

    /// The decision the enforcer works on: the latest, while it is pending.
    pub fn pending(&self) -> Option<&ControlDecision> {
        self.decisions.last().filter(|d| d.pending())
    }

    fn illegal(&self, action: &'static str) -> DomainError {
        DomainError::IllegalTransition { aggregate: "workload", state: self.status().as_str(), action }
    }

    fn retry_of_latest(&self, decider: &Decider) -> bool {
        self.decisions.last().is_some_and(|d| d.decider == *decider)
    }
}

impl Aggregate for WorkloadControl {
    type Command = ControlCommand;
    type Event = ControlEvent;
    type Error = DomainError;

    fn decide(&self, command: &ControlCommand) -> Result<Vec<ControlEvent>, DomainError> {
        let decision = self.decisions.len() as u32 + 1;
        match command {
            ControlCommand::Suspend { workload_id, plan, enforcement, decider } => {
                if self.retry_of_latest(decider) {
                    return Ok(vec![]);
                }
                if self.status().suspended() {
                    return Err(self.illegal("suspend"));
                }
                let mut v = Violations::default();
                v.require_rationale(&decider.rationale);
                if plan.calls.is_empty() && plan.not_covered.is_empty() {
                    v.add("workload", "nothing to suspend: the workload has no IAM role, claim or workspace");
                }
                v.into_result()?;
                Ok(vec![ControlEvent::WorkloadSuspended {
                    workload_id: *workload_id,
                    decision,
                    calls: plan.calls.clone(),
                    not_covered: plan.not_covered.clone(),
                    enforcement: *enforcement,
                    decider: decider.clone(),
                }])
            }
            ControlCommand::Resume { enforcement, decider } => {
                if self.retry_of_latest(decider) {
                    return Ok(vec![]);
                }
                let suspension = match self.decisions.last() {
                    Some(d) if d.action == ControlAction::Suspend => d,
                    _ => return Err(self.illegal("resume")),
                };
                let mut v = Violations::default();
                v.require_rationale(&decider.rationale);
                v.into_result()?;
                // Undo in reverse order: the deny goes before the tag that names it.
                let calls = suspension.calls.iter().rev().filter_map(AwsCall::undo).collect();
                Ok(vec![ControlEvent::WorkloadResumed {
                    workload_id: self.workload_id.unwrap_or_default(),
                    decision,
                    calls,
                    enforcement: *enforcement,
                    decider: decider.clone(),
                }])
            }
            ControlCommand::RecordAttempt { decision, attempt, outcomes, at } => {
                // Only the pending decision takes attempts, each number once; a late
                // attempt at a decision since overtaken (suspend, then resume) records nothing.
                let Some(pending) = self.pending().filter(|d| d.decision == *decision) else { return Ok(vec![]) };
                if *attempt != pending.attempts.len() as u32 + 1 {
                    return Ok(vec![]);
                }
                if outcomes.len() != pending.calls.len() {
                    return Err(DomainError::Precondition(format!(
                        "an attempt at decision {decision} must report {} calls, got {}",
                        pending.calls.len(),
                        outcomes.len()
                    )));
                }
                Ok(vec![ControlEvent::EnforcementAttempted {
                    decision: *decision,
                    attempt: *attempt,
                    outcomes: outcomes.clone(),
                    at: *at,
                }])
            }
        }
    }

    fn evolve(mut self, event: &ControlEvent) -> Self {
        match event {
            ControlEvent::WorkloadSuspended { workload_id, decision, calls, not_covered, enforcement, decider } => {
                self.workload_id = Some(*workload_id);
                self.decisions.push(ControlDecision {
                    decision: *decision,
                    action: ControlAction::Suspend,
                    calls: calls.clone(),
                    not_covered: not_covered.clone(),
                    enforcement: *enforcement,
                    decider: decider.clone(),
                    attempts: vec![],
                });
            }
            ControlEvent::WorkloadResumed { workload_id, decision, calls, enforcement, decider } => {
                self.workload_id = Some(*workload_id);
                self.decisions.push(ControlDecision {
                    decision: *decision,
                    action: ControlAction::Resume,
                    calls: calls.clone(),
                    not_covered: vec![],
                    enforcement: *enforcement,
                    decider: decider.clone(),
                    attempts: vec![],
                });
            }
            ControlEvent::EnforcementAttempted { decision, attempt, outcomes, at } => {
                if let Some(d) = self.decisions.iter_mut().find(|d| d.decision == *decision) {
                    d.attempts.push((*attempt, outcomes.clone(), *at));
                }
            }
        }
        self
    }
}

#[cfg(test)]
mod tests;
