//! Allocation Gaps (DOMAIN.md §6–7): spend that cannot be charged to a workload, each with
//! one cause, one anchor, a named action and an audit trail.
//!
//! A gap is an aggregate, one per cause and anchor; its id derives from both, so detecting
//! the same cause again is the same gap. Two kinds of input move it:
//!
//! - **observations** by the gap detector (a process following the log): the spend the
//!   classification found for the gap in a billing period, or that it found none. Each
//!   carries the log position it was evaluated through; an observation older than one
//!   already recorded changes nothing, so a re-run of the detector (after a crash, or
//!   from an earlier checkpoint) never walks a gap backwards. An observation of the
//!   newest ingested period decides whether the cause is still there: absent, an open gap
//!   resolves automatically (`GapCauseCleared`, naming the event that cleared it); present
//!   again, a resolved gap reopens (`GapReopened`) with its history.
//! - **decisions** by people: act (Active → Actioned), resolve (Active or Actioned →
//!   Resolved), recall (the latest standing decision is revisited: the gap returns to the
//!   state before it; the recalled decision stays in the history). Each carries who, role,
//!   when and a required rationale; an illegal one names the current state.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::artefacts::CliCommand;
use crate::error::{DomainError, Violations};

mod artefacts;
mod evaluations;

pub use artefacts::{block_principal, business_case_notification, claim_notification, guided_cur_setup};
pub use evaluations::{GapEvaluationCommand, GapEvaluationEvent, GapEvaluations};

/// The namespace of gap ids (UUID v5 of `kind/anchor`).
const GAP_NAMESPACE: Uuid = Uuid::from_u128(0x6a1f_55d2_93c4_4f0e_9d7e_2c4b_a1f0_ca9e);

/// The seven causes (DOMAIN.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapKind {
    /// AI lines with no caller: the account's export lacks caller identity.
    AttributionNotEnabled,
    /// A guardrail ARN nobody claimed ("Resource Allocation").
    UnallocatedGuardrail,
    /// A broad shared role ("Role Recommendation").
    UnattributedSpend,
    /// A workload's spend outside its approval (account, region or model).
    OutOfApprovedScope,
    /// A dedicated role or Claude Platform workspace nobody claimed.
    UnclaimedAiAllocation,
    /// A principal with no Business Request ("No Budget Allocation").
    NotBusinessApproved,
    /// A claimed workload with spend or an estimate and no business case.
    UnbackedAiWorkload,
}

impl GapKind {
    /// Every kind, in the order the gaps view shows them.
    pub const ALL: [GapKind; 7] = [
        Self::UnattributedSpend,
        Self::NotBusinessApproved,
        Self::OutOfApprovedScope,
        Self::UnclaimedAiAllocation,
        Self::UnallocatedGuardrail,
        Self::AttributionNotEnabled,
        Self::UnbackedAiWorkload,
    ];

    /// The name attribution uses (`gap` dimension).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AttributionNotEnabled => "attribution_not_enabled",
            Self::UnallocatedGuardrail => "unallocated_guardrail",
            Self::UnattributedSpend => "unattributed_spend",
            Self::OutOfApprovedScope => "out_of_approved_scope",
            Self::UnclaimedAiAllocation => "unclaimed_ai_allocation",
            Self::NotBusinessApproved => "not_business_approved",
            Self::UnbackedAiWorkload => "unbacked_ai_workload",
        }
    }

    /// The scenario's name in the gaps view (the seed's words).
    pub fn scenario(self) -> &'static str {
        match self {
            Self::AttributionNotEnabled => "Attribution Not Enabled",
            Self::UnallocatedGuardrail => "Resource Allocation",
            Self::UnattributedSpend => "Role Recommendation",
            Self::OutOfApprovedScope => "Out of Approved Scope",
            Self::UnclaimedAiAllocation => "Unclaimed AI Allocation",
            Self::NotBusinessApproved => "Not Business Approved",
            Self::UnbackedAiWorkload => "Unbacked AI Workload",
        }
    }

    /// The actions that answer this kind (DOMAIN.md §6: one named action; some offer a
    /// choice of two).
    pub fn actions(self) -> &'static [GapActionKind] {
        use GapActionKind as A;
        match self {
            Self::AttributionNotEnabled => &[A::GuidedCurSetup],
            Self::UnallocatedGuardrail => &[A::ClaimInSpaces],
            Self::UnattributedSpend => &[A::RecommendDedicatedRole, A::MapGatewaySessions],
            Self::OutOfApprovedScope => &[A::AddScope, A::FlagForCloudEngineer],
            Self::UnclaimedAiAllocation => &[A::NotifyProductOwner],
            Self::NotBusinessApproved => &[A::Approve, A::Block, A::MapGatewaySessions],
            Self::UnbackedAiWorkload => &[A::RequestBusinessCase],
        }
    }
}

impl fmt::Display for GapKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for GapKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase().replace('-', "_");
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not a gap kind; one of: {}", Self::ALL.map(GapKind::as_str).join(", ")))
    }
}

/// The action a gap kind calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapActionKind {
    /// Role Recommendation: a Business Request for a dedicated role.
    RecommendDedicatedRole,
    /// Not Business Approved: approve the principal's use.
    Approve,
    /// Not Business Approved: deny the principal Bedrock access.
    Block,
    /// Out of Approved Scope: extend the approval's scope.
    AddScope,
    /// Out of Approved Scope: ask the Cloud Engineer to move the resource.
    FlagForCloudEngineer,
    /// Unclaimed AI Allocation: tell the Product Owner to claim.
    NotifyProductOwner,
    /// Resource Allocation: claim the guardrail for a workload.
    ClaimInSpaces,
    /// Attribution Not Enabled: the steps that turn caller identity on.
    GuidedCurSetup,
    /// Unbacked AI Workload: ask the Product Owner for a business case by a date.
    RequestBusinessCase,
    /// Role Recommendation or Not Business Approved, for a shared role fronting many
    /// workloads (an LLM gateway): a gateway mapping rule charging the role's sessions
    /// that match a pattern, or carry a principal tag, to a workload.
    MapGatewaySessions,
}

impl GapActionKind {
    /// Every action.
    pub const ALL: [GapActionKind; 10] = [
        Self::RecommendDedicatedRole,
        Self::Approve,
        Self::Block,
        Self::AddScope,
        Self::FlagForCloudEngineer,
        Self::NotifyProductOwner,
        Self::ClaimInSpaces,
        Self::GuidedCurSetup,
        Self::RequestBusinessCase,
        Self::MapGatewaySessions,
    ];

    /// Its name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RecommendDedicatedRole => "recommend_dedicated_role",
            Self::Approve => "approve",
            Self::Block => "block",
            Self::AddScope => "add_scope",
            Self::FlagForCloudEngineer => "flag_for_cloud_engineer",
            Self::NotifyProductOwner => "notify_product_owner",
            Self::ClaimInSpaces => "claim_in_spaces",
            Self::GuidedCurSetup => "guided_cur_setup",
            Self::RequestBusinessCase => "request_business_case",
            Self::MapGatewaySessions => "map_gateway_sessions",
        }
    }
}

impl FromStr for GapActionKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase().replace('-', "_");
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            format!("`{s}` is not a gap action; one of: {}", Self::ALL.map(GapActionKind::as_str).join(", "))
        })
    }
}

/// What a gap is about: its cause and anchor, and who it concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GapIdentity {
    /// The cause.
    pub kind: GapKind,
    /// The anchor, as a path: `account/{account}`, `guardrail/{arn}`,
    /// `role/{account}/{role}`, `workspace/{id}`, `principal/{account}/{name}`,
    /// `scope/{workload}/{account}/{region}/{model}`, `workload/{workload}`.
    pub anchor: String,
    /// The usage account (empty when the gap is not about one account).
    pub account: String,
    /// The workload it is about, when it is about one.
    pub workload_id: Option<Uuid>,
    /// The principal behind it, when one (`role/…` or the user's name).
    pub principal: String,
    /// The people it concerns (Product Owners of the workload or of the request that
    /// generated the role), where known.
    pub concerns: Vec<String>,
}

impl GapIdentity {
    /// The gap's id: the same cause and anchor is the same gap, whenever detected.
    pub fn gap_id(&self) -> Uuid {
        gap_id(self.kind, &self.anchor)
    }
}

/// The id of the gap with `kind` and `anchor`.
pub fn gap_id(kind: GapKind, anchor: &str) -> Uuid {
    Uuid::new_v5(&GAP_NAMESPACE, format!("{}/{anchor}", kind.as_str()).as_bytes())
}

/// The anchor of a gap about a role: `role/{account}/{role}`.
pub fn role_anchor(account: &str, role: &str) -> String {
    format!("role/{account}/{role}")
}

/// The anchor of a gap about a principal with no Business Request:
/// `principal/{account}/{kind}/{name}` (`kind` as the classification names it).
pub fn principal_anchor(account: &str, kind: &str, name: &str) -> String {
    format!("principal/{account}/{kind}/{name}")
}

/// The gaps a gateway mapping rule on `role` in `account` moves spend of: the role's
/// broad-role, unclaimed-role and no-request gaps (ids; not all of them need exist).
pub fn gaps_on_role(account: &str, role: &str) -> [Uuid; 3] {
    [
        gap_id(GapKind::UnattributedSpend, &role_anchor(account, role)),
        gap_id(GapKind::UnclaimedAiAllocation, &role_anchor(account, role)),
        gap_id(GapKind::NotBusinessApproved, &principal_anchor(account, "assumed_role", role)),
    ]
}

/// How a gateway mapping rule changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GatewayRuleChange {
    /// Recorded: it charges its sessions from its first day.
    Recorded,
    /// Retired: it charges nothing after its last day.
    Retired,
}

impl GatewayRuleChange {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recorded => "recorded",
            Self::Retired => "retired",
        }
    }
}

/// A gap's spend in one billing period, as the classification found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GapSpend {
    /// The CUR batch the figures come from.
    pub batch: String,
    /// Dollars, in cents.
    pub cents: i64,
    /// Tokens (rounded).
    pub tokens: u64,
    /// CUR lines.
    pub lines: u64,
    /// First usage day seen.
    pub first_day: Option<NaiveDate>,
    /// Last usage day seen.
    pub last_day: Option<NaiveDate>,
    /// The principals behind it (sorted, at most [`MAX_LISTED`]).
    pub principals: Vec<String>,
    /// The models behind it (sorted, at most [`MAX_LISTED`]).
    pub models: Vec<String>,
}

/// Most principals or models a spend observation lists.
pub const MAX_LISTED: usize = 20;

/// Where a gap stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum GapStatus {
    /// Detected; nobody has acted.
    #[default]
    Active,
    /// Someone acted; the cause is still in the data.
    Actioned,
    /// The cause cleared, or the FinOps Lead decided it needs nothing more.
    Resolved,
}

impl GapStatus {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Actioned => "actioned",
            Self::Resolved => "resolved",
        }
    }
}

/// A person's decision, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decider {
    /// Who.
    pub by: String,
    /// In which role.
    pub role: String,
    /// Why.
    pub rationale: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// What an action produced, kept with the decision so the trail shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ActionOutcome {
    /// Resources the action created or changed (`claims/…`, `businessRequests/…`).
    pub resources: Vec<String>,
    /// A notification, when the action sends one.
    pub notification: Option<Notification>,
    /// Steps for a person to follow, in order.
    pub steps: Vec<String>,
    /// Exact AWS CLI commands, in order.
    pub commands: Vec<CliCommand>,
}

/// A message to a person, kept in the outbox read model and shown in their views.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// To whom (a Product Owner's subject).
    pub to: String,
    /// One line.
    pub subject: String,
    /// What to do.
    pub body: String,
    /// By when, if there is a due date.
    pub due: Option<NaiveDate>,
}

/// What may be asked of a gap.
#[derive(Debug, Clone, PartialEq)]
pub enum GapCommand {
    /// The detector's finding for one period (see the module's notes).
    Observe {
        /// What the gap is.
        identity: GapIdentity,
        /// `YYYY-MM`.
        period: String,
        /// The spend found; `None`: the cause is absent from the period.
        spend: Option<GapSpend>,
        /// The period is the newest ingested: presence or absence decides the lifecycle.
        newest: bool,
        /// The log position the evaluation read through.
        through: u64,
        /// The event that caused this evaluation (a batch, a claim, an approval…).
        cause: EvaluationCause,
        /// When.
        at: DateTime<Utc>,
    },
    /// A person acts on the gap.
    Act {
        /// Which action.
        action: GapActionKind,
        /// What it produced.
        outcome: ActionOutcome,
        /// Who, role, why, when.
        decider: Decider,
    },
    /// The FinOps Lead resolves the gap by decision ("accepted as shared platform cost").
    Resolve {
        /// Who, role, why, when.
        decider: Decider,
    },
    /// The latest standing decision is revisited.
    Recall {
        /// Who, role, why, when.
        decider: Decider,
    },
    /// A gateway mapping rule on the gap's role was recorded or retired (by any path):
    /// the trail shows it because it moves the gap's spend. Noting the same change again
    /// records nothing.
    NoteGatewayRule {
        /// `gatewayRules/{id}`.
        rule: String,
        /// Recorded or retired.
        change: GatewayRuleChange,
        /// What the rule says, or from when it is retired, in words.
        summary: String,
        /// Who changed the rule, in which role, why and when.
        decider: Decider,
    },
}

/// The event that made the detector look again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvaluationCause {
    /// Its id.
    pub event_id: Uuid,
    /// Its type (`CurBatchIngested`, `ResourceClaimed`, …).
    pub event_type: String,
    /// Its stream.
    pub stream: String,
}

/// What a gap records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum GapEvent {
    /// First found.
    GapDetected {
        /// Its id.
        gap_id: Uuid,
        /// What it is.
        identity: GapIdentity,
        /// The period it was found in.
        period: String,
        /// Evaluated through this log position.
        through: u64,
        /// Why the detector looked.
        cause: EvaluationCause,
        /// When.
        at: DateTime<Utc>,
    },
    /// Its spend in a period changed (`None`: no longer any in that period).
    GapSpendObserved {
        /// `YYYY-MM`.
        period: String,
        /// The spend.
        spend: Option<GapSpend>,
        /// Evaluated through this log position.
        through: u64,
        /// When.
        at: DateTime<Utc>,
    },
    /// The cause is gone from the newest period: resolved automatically.
    GapCauseCleared {
        /// The newest period, where it is absent.
        period: String,
        /// Evaluated through this log position.
        through: u64,
        /// The event after which it was gone.
        cleared_by: EvaluationCause,
        /// When.
        at: DateTime<Utc>,
    },
    /// The cause is back after resolution: active again, with its history.
    GapReopened {
        /// The newest period, where it is present.
        period: String,
        /// Evaluated through this log position.
        through: u64,
        /// Why the detector looked.
        cause: EvaluationCause,
        /// When.
        at: DateTime<Utc>,
    },
    /// A person acted.
    GapActioned {
        /// Which action.
        action: GapActionKind,
        /// What it produced.
        outcome: ActionOutcome,
        /// Who, role, why, when.
        decider: Decider,
    },
    /// Resolved by decision.
    GapResolved {
        /// Who, role, why, when.
        decider: Decider,
    },
    /// The latest standing decision was revisited; the gap is back where it was before it.
    GapRecalled {
        /// What was recalled: `actioned` or `resolved`.
        recalled: String,
        /// When the recalled decision was made.
        recalled_at: DateTime<Utc>,
        /// The state the gap returns to.
        restored: GapStatus,
        /// Who, role, why, when.
        decider: Decider,
    },
    /// A gateway mapping rule on the gap's role changed; the gap's state does not (the
    /// detector's next observation moves its spend).
    GapGatewayRuleChanged {
        /// `gatewayRules/{id}`.
        rule: String,
        /// Recorded or retired.
        change: GatewayRuleChange,
        /// What the rule says, or from when it is retired, in words.
        summary: String,
        /// Who changed the rule, in which role, why and when.
        decider: Decider,
    },
}

/// A decision that still stands, and the state before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandingDecision {
    /// `actioned` or `resolved`.
    pub what: &'static str,
    /// The state before it.
    pub before: GapStatus,
    /// When it was made.
    pub at: DateTime<Utc>,
}

/// A gap's state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AllocationGap {
    /// What it is (`None` until detected).
    pub identity: Option<GapIdentity>,
    /// Where it stands.
    pub status: GapStatus,
    /// Spend per period.
    pub spend: BTreeMap<String, GapSpend>,
    /// The latest log position an observation was evaluated through.
    pub through: u64,
    /// Decisions that still stand, latest last; an automatic transition (cause cleared,
    /// reopened) ends them: there is nothing left to revisit.
    pub standing: Vec<StandingDecision>,
    /// The latest decision recorded (who, role, why, when): the same decision asked again
    /// is a retry and records nothing.
    pub last_decision: Option<Decider>,
    /// The cause is in the newest period (as last observed).
    pub cause_present: bool,
    /// The gateway rule changes in the trail (`gatewayRules/{id}`, change).
    pub noted_rules: std::collections::BTreeSet<(String, GatewayRuleChange)>,
}

impl AllocationGap {
    fn require_detected(&self, action: &'static str) -> Result<&GapIdentity, DomainError> {
        self.identity.as_ref().ok_or(DomainError::IllegalTransition { aggregate: "gap", state: "not detected", action })
    }

    /// A retry of the latest decision (the same person, role, reason and instant).
    fn is_retry(&self, decider: &Decider) -> bool {
        self.last_decision.as_ref() == Some(decider)
    }

    fn illegal(&self, action: &'static str) -> DomainError {
        DomainError::IllegalTransition { aggregate: "gap", state: self.status.as_str(), action }
    }
}

fn decider_violations(decider: &Decider) -> Violations {
    let mut v = Violations::default();
    v.require_rationale(&decider.rationale);
    v
}

impl Aggregate for AllocationGap {
    type Command = GapCommand;
    type Event = GapEvent;
    type Error = DomainError;

    fn decide(&self, command: &GapCommand) -> Result<Vec<GapEvent>, DomainError> {
        match command {
            GapCommand::Observe { identity, period, spend, newest, through, cause, at } => {
                // An evaluation older than one recorded has nothing to say.
                if *through < self.through {
                    return Ok(vec![]);
                }
                let mut events = Vec::new();
                if self.identity.is_none() {
                    let Some(spend) = spend else { return Ok(vec![]) };
                    events.push(GapEvent::GapDetected {
                        gap_id: identity.gap_id(),
                        identity: identity.clone(),
                        period: period.clone(),
                        through: *through,
                        cause: cause.clone(),
                        at: *at,
                    });
                    events.push(GapEvent::GapSpendObserved {
                        period: period.clone(),
                        spend: Some(spend.clone()),
                        through: *through,
                        at: *at,
                    });
                    return Ok(events);
                }
                if self.spend.get(period) != spend.as_ref() {
                    events.push(GapEvent::GapSpendObserved {
                        period: period.clone(),
                        spend: spend.clone(),
                        through: *through,
                        at: *at,
                    });
                }
                if *newest {
                    // Only a cause that left and came back reopens a gap: one the FinOps
                    // Lead resolved while its cause stood (accepted as shared cost) stays
                    // resolved until the cause is gone and returns.
                    match (spend.is_some(), self.cause_present) {
                        (true, false) if self.status == GapStatus::Resolved => events.push(GapEvent::GapReopened {
                            period: period.clone(),
                            through: *through,
                            cause: cause.clone(),
                            at: *at,
                        }),
                        (false, true) => events.push(GapEvent::GapCauseCleared {
                            period: period.clone(),
                            through: *through,
                            cleared_by: cause.clone(),
                            at: *at,
                        }),
                        _ => {}
                    }
                }
                Ok(events)
            }
            GapCommand::Act { action, outcome, decider } => {
                let identity = self.require_detected("act on")?;
                if self.is_retry(decider) {
                    return Ok(vec![]);
                }
                let mut v = decider_violations(decider);
                if !identity.kind.actions().contains(action) {
                    v.add(
                        "action",
                        format!(
                            "`{}` does not answer a {} gap; its action{}: {}",
                            action.as_str(),
                            identity.kind.as_str(),
                            if identity.kind.actions().len() > 1 { "s are" } else { " is" },
                            identity.kind.actions().iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    );
                }
                v.into_result()?;
                if self.status != GapStatus::Active {
                    return Err(self.illegal("act on"));
                }
                Ok(vec![GapEvent::GapActioned { action: *action, outcome: outcome.clone(), decider: decider.clone() }])
            }
            GapCommand::Resolve { decider } => {
                self.require_detected("resolve")?;
                if self.is_retry(decider) {
                    return Ok(vec![]);
                }
                decider_violations(decider).into_result()?;
                if self.status == GapStatus::Resolved {
                    return Err(self.illegal("resolve"));
                }
                Ok(vec![GapEvent::GapResolved { decider: decider.clone() }])
            }
            GapCommand::Recall { decider } => {
                self.require_detected("recall")?;
                if self.is_retry(decider) {
                    return Ok(vec![]);
                }
                decider_violations(decider).into_result()?;
                let Some(last) = self.standing.last() else {
                    return Err(DomainError::IllegalTransition {
                        aggregate: "gap",
                        state: match self.status {
                            GapStatus::Active => "active with no decision to recall",
                            GapStatus::Actioned => "actioned with no decision to recall",
                            GapStatus::Resolved => "resolved because its cause cleared (no decision to recall)",
                        },
                        action: "recall",
                    });
                };
                Ok(vec![GapEvent::GapRecalled {
                    recalled: last.what.to_owned(),
                    recalled_at: last.at,
                    restored: last.before,
                    decider: decider.clone(),
                }])
            }
            GapCommand::NoteGatewayRule { rule, change, summary, decider } => {
                self.require_detected("note a gateway rule on")?;
                if self.noted_rules.contains(&(rule.clone(), *change)) {
                    return Ok(vec![]);
                }
                Ok(vec![GapEvent::GapGatewayRuleChanged {
                    rule: rule.clone(),
                    change: *change,
                    summary: summary.clone(),
                    decider: decider.clone(),
                }])
            }
        }
    }

    fn evolve(mut self, event: &GapEvent) -> Self {
        match event {
            GapEvent::GapDetected { identity, through, .. } => {
                self.identity = Some(identity.clone());
                self.status = GapStatus::Active;
                self.cause_present = true;
                self.through = self.through.max(*through);
            }
            GapEvent::GapSpendObserved { period, spend, through, .. } => {
                match spend {
                    Some(s) => self.spend.insert(period.clone(), s.clone()),
                    None => self.spend.remove(period),
                };
                self.through = self.through.max(*through);
            }
            GapEvent::GapCauseCleared { through, .. } => {
                self.status = GapStatus::Resolved;
                self.cause_present = false;
                self.standing.clear();
                self.through = self.through.max(*through);
            }
            GapEvent::GapReopened { through, .. } => {
                self.status = GapStatus::Active;
                self.cause_present = true;
                self.standing.clear();
                self.through = self.through.max(*through);
            }
            GapEvent::GapActioned { decider, .. } => {
                self.standing.push(StandingDecision { what: "actioned", before: self.status, at: decider.at });
                self.status = GapStatus::Actioned;
                self.last_decision = Some(decider.clone());
            }
            GapEvent::GapResolved { decider } => {
                self.standing.push(StandingDecision { what: "resolved", before: self.status, at: decider.at });
                self.status = GapStatus::Resolved;
                self.last_decision = Some(decider.clone());
            }
            GapEvent::GapRecalled { restored, decider, .. } => {
                self.standing.pop();
                self.status = *restored;
                self.last_decision = Some(decider.clone());
            }
            GapEvent::GapGatewayRuleChanged { rule, change, .. } => {
                self.noted_rules.insert((rule.clone(), *change));
            }
        }
        self
    }
}

impl GapIdentity {
    /// The principal is an IAM user (a named user or a Bedrock API key's user), not a role.
    pub fn principal_is_user(&self) -> bool {
        matches!(self.anchor.split('/').nth(2), Some("iam_user" | "api_key"))
    }

    /// The principal's name if the gap has one, else its anchor.
    pub fn principal_or_anchor(&self) -> &str {
        if self.principal.is_empty() { &self.anchor } else { &self.principal }
    }
}

#[cfg(test)]
mod tests;
