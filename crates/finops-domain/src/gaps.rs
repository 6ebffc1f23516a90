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
use crate::artefacts::{CliCommand, shell_quote};
use crate::error::{DomainError, Violations};

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
            Self::UnattributedSpend => &[A::RecommendDedicatedRole],
            Self::OutOfApprovedScope => &[A::AddScope, A::FlagForCloudEngineer],
            Self::UnclaimedAiAllocation => &[A::NotifyProductOwner],
            Self::NotBusinessApproved => &[A::Approve, A::Block],
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
}

impl GapActionKind {
    /// Every action.
    pub const ALL: [GapActionKind; 9] = [
        Self::RecommendDedicatedRole,
        Self::Approve,
        Self::Block,
        Self::AddScope,
        Self::FlagForCloudEngineer,
        Self::NotifyProductOwner,
        Self::ClaimInSpaces,
        Self::GuidedCurSetup,
        Self::RequestBusinessCase,
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
        }
        self
    }
}

/// The detector's own record: how far the log has been evaluated. An evaluation at or
/// before it is stale — a newer one has already judged every gap — so the detector run
/// again from an earlier checkpoint (after a crash, or by an operator) writes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GapEvaluations {
    /// The newest position evaluated.
    pub through: u64,
}

/// What may be asked of the detector's record.
#[derive(Debug, Clone, PartialEq)]
pub enum GapEvaluationCommand {
    /// An evaluation finished.
    Record {
        /// The position it read through.
        through: u64,
        /// What caused it.
        cause: EvaluationCause,
        /// Gaps found.
        found: u64,
        /// Gaps whose stream it wrote to.
        touched: u64,
        /// When.
        at: DateTime<Utc>,
    },
}

/// What the detector's record holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum GapEvaluationEvent {
    /// Every gap was evaluated as the log stood at `through`.
    GapsEvaluated {
        /// The position.
        through: u64,
        /// What caused it.
        cause: EvaluationCause,
        /// Gaps found.
        found: u64,
        /// Gaps changed.
        touched: u64,
        /// When.
        at: DateTime<Utc>,
    },
}

impl Aggregate for GapEvaluations {
    type Command = GapEvaluationCommand;
    type Event = GapEvaluationEvent;
    type Error = DomainError;

    fn decide(&self, command: &GapEvaluationCommand) -> Result<Vec<GapEvaluationEvent>, DomainError> {
        let GapEvaluationCommand::Record { through, cause, found, touched, at } = command;
        if *through <= self.through {
            return Ok(vec![]);
        }
        Ok(vec![GapEvaluationEvent::GapsEvaluated {
            through: *through,
            cause: cause.clone(),
            found: *found,
            touched: *touched,
            at: *at,
        }])
    }

    fn evolve(mut self, event: &GapEvaluationEvent) -> Self {
        let GapEvaluationEvent::GapsEvaluated { through, .. } = event;
        self.through = self.through.max(*through);
        self
    }
}

/// The notification that asks a Product Owner to claim what they own (Notify PO).
pub fn claim_notification(identity: &GapIdentity, owner: &str, spend_cents: i64) -> Notification {
    Notification {
        to: owner.to_owned(),
        subject: format!("Claim {} in Spaces", identity.principal_or_anchor()),
        body: format!(
            "{} in account {} has ${}.{:02} of AI spend that no workload has claimed. Claim it in Spaces \
             for the workload it serves, so the spend is charged to that workload's budget.",
            identity.principal_or_anchor(),
            identity.account,
            spend_cents / 100,
            (spend_cents % 100).abs()
        ),
        due: None,
    }
}

/// The notification that asks a Product Owner for a business case by `due`.
pub fn business_case_notification(owner: &str, workload: &str, due: NaiveDate) -> Notification {
    Notification {
        to: owner.to_owned(),
        subject: format!("Declare the business case of {workload} by {due}"),
        body: format!(
            "{workload} has AI spend or an estimate but no declared business case, so Finance cannot tie \
             its spend to an intended value. Declare its annual cost saving or revenue driving in Spaces by {due}."
        ),
        due: Some(due),
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

/// Guided CUR setup for an account whose export lacks caller identity: the steps and the
/// AWS CLI command that create a CUR 2.0 export with `INCLUDE_IAM_PRINCIPAL_DATA`
/// (CUR-REFERENCE.md §1.1), to be run in the account's payer (management) account.
pub fn guided_cur_setup(account: &str, bucket: &str) -> ActionOutcome {
    let query = "SELECT bill_billing_period_start_date, bill_payer_account_id, line_item_usage_account_id, \
                 line_item_line_item_type, line_item_usage_start_date, line_item_usage_end_date, \
                 line_item_product_code, line_item_usage_type, line_item_operation, line_item_resource_id, \
                 line_item_usage_amount, line_item_unblended_cost, line_item_net_unblended_cost, \
                 bill_billing_entity, product, tags, line_item_iam_principal FROM COST_AND_USAGE_REPORT";
    let export = serde_json::json!({
        "Name": "finops-center-cur2",
        "DataQuery": {
            "QueryStatement": query,
            "TableConfigurations": { "COST_AND_USAGE_REPORT": {
                "INCLUDE_IAM_PRINCIPAL_DATA": "TRUE",
                "INCLUDE_RESOURCES": "TRUE",
                "TIME_GRANULARITY": "DAILY"
            } }
        },
        "DestinationConfigurations": { "S3Destination": {
            "S3Bucket": bucket,
            "S3Prefix": "cur2",
            "S3Region": "us-east-1",
            "S3OutputConfigurations": {
                "OutputType": "CUSTOM", "Format": "PARQUET", "Compression": "PARQUET", "Overwrite": "OVERWRITE_REPORT"
            }
        } },
        "RefreshCadence": { "Frequency": "SYNCHRONOUS" }
    });
    ActionOutcome {
        resources: vec![],
        notification: None,
        steps: vec![
            format!("Account {account} bills AI spend with no caller identity, so none of it can be charged to a workload."),
            "In the payer (management) account, create a CUR 2.0 export with caller identity (IAM principal) \
             allocation data — the command below; in the console: Billing and Cost Management → Data Exports → \
             Create → Standard data export (CUR 2.0) → Additional export content → \"Include caller identity \
             (IAM principal) allocation data\"."
                .to_owned(),
            format!("Let the bucket {} accept deliveries from bcm-data-exports.amazonaws.com (Data Exports does this when created in the console).", shell_quote(bucket)),
            "Point FinOps Center at the export prefix: `finops cur ingest s3://BUCKET/cur2/` once the first delivery lands (up to 24 hours)."
                .to_owned(),
        ],
        commands: vec![CliCommand {
            argv: vec![
                "aws".into(),
                "bcm-data-exports".into(),
                "create-export".into(),
                "--region".into(),
                "us-east-1".into(),
                "--export".into(),
                export.to_string(),
            ],
        }],
    }
}

/// Block: the commands that deny `principal` (a role or IAM user name) every Bedrock
/// invocation, as an inline deny policy (an explicit deny wins over any allow).
pub fn block_principal(principal: &str, is_user: bool) -> ActionOutcome {
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "FinOpsCenterBlockedNotBusinessApproved",
            "Effect": "Deny",
            "Action": ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream", "bedrock:Converse", "bedrock:ConverseStream"],
            "Resource": "*"
        }]
    });
    let (op, flag) = if is_user { ("put-user-policy", "--user-name") } else { ("put-role-policy", "--role-name") };
    let argv = ["aws", "iam", op, flag, principal, "--policy-name", "finops-center-deny-bedrock", "--policy-document"]
        .map(String::from)
        .into_iter()
        .chain([policy.to_string()])
        .collect();
    ActionOutcome {
        resources: vec![],
        notification: None,
        steps: vec![format!(
            "Run in the principal's account: an explicit deny of Bedrock invocation for {principal}; remove the \
             policy (`aws iam delete-{}-policy`) when a Business Request is approved.",
            if is_user { "user" } else { "role" }
        )],
        commands: vec![CliCommand { argv }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::spec::given;

    fn at(h: u32) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-11-10T{h:02}:00:00Z")).unwrap().with_timezone(&Utc)
    }

    fn identity(kind: GapKind) -> GapIdentity {
        GapIdentity {
            kind,
            anchor: "role/111122223333/AWSReservedSSO_AdministratorAccess_0a1b".into(),
            account: "111122223333".into(),
            workload_id: None,
            principal: "AWSReservedSSO_AdministratorAccess_0a1b".into(),
            concerns: vec![],
        }
    }

    fn spend(cents: i64) -> GapSpend {
        GapSpend {
            batch: "b1".into(),
            cents,
            tokens: 1_000,
            lines: 3,
            first_day: NaiveDate::from_ymd_opt(2026, 11, 1),
            last_day: NaiveDate::from_ymd_opt(2026, 11, 9),
            principals: vec!["AWSReservedSSO_AdministratorAccess_0a1b".into()],
            models: vec!["anthropic.claude-3-haiku-20240307-v1:0".into()],
        }
    }

    fn cause(n: u128) -> EvaluationCause {
        EvaluationCause {
            event_id: Uuid::from_u128(n),
            event_type: "CurBatchIngested".into(),
            stream: "cur-period-2026-11".into(),
        }
    }

    fn observe(period: &str, s: Option<GapSpend>, newest: bool, through: u64) -> GapCommand {
        GapCommand::Observe {
            identity: identity(GapKind::UnattributedSpend),
            period: period.into(),
            spend: s,
            newest,
            through,
            cause: cause(u128::from(through)),
            at: at(1),
        }
    }

    fn fl(rationale: &str) -> Decider {
        Decider { by: "fl-ana".into(), role: "finops_lead".into(), rationale: rationale.into(), at: at(2) }
    }

    fn history(commands: &[GapCommand]) -> Vec<GapEvent> {
        let mut state = AllocationGap::default();
        let mut out = Vec::new();
        for c in commands {
            for e in state.decide(c).unwrap() {
                state = state.evolve(&e);
                out.push(e);
            }
        }
        out
    }

    fn act() -> GapCommand {
        GapCommand::Act {
            action: GapActionKind::RecommendDedicatedRole,
            outcome: ActionOutcome::default(),
            decider: fl("route to a dedicated role"),
        }
    }

    #[test]
    fn a_finding_detects_the_gap_once_with_its_spend() {
        let events = given::<AllocationGap>(&[]).when(observe("2026-11", Some(spend(1234)), true, 10)).unwrap();
        assert!(
            matches!(&events[0], GapEvent::GapDetected { gap_id, .. } if *gap_id == identity(GapKind::UnattributedSpend).gap_id())
        );
        assert!(matches!(&events[1], GapEvent::GapSpendObserved { spend: Some(s), .. } if s.cents == 1234));
        // Absent and never seen: nothing to record.
        assert_eq!(given::<AllocationGap>(&[]).when(observe("2026-11", None, true, 10)).unwrap(), vec![]);
    }

    #[test]
    fn a_restatement_updates_spend_and_an_older_evaluation_changes_nothing() {
        let h = history(&[observe("2026-11", Some(spend(1234)), true, 10)]);
        let events = given::<AllocationGap>(&h).when(observe("2026-11", Some(spend(2000)), true, 20)).unwrap();
        assert_eq!(events.len(), 1);
        assert!(matches!(&events[0], GapEvent::GapSpendObserved { spend: Some(s), .. } if s.cents == 2000));
        let h = history(&[
            observe("2026-11", Some(spend(1234)), true, 10),
            observe("2026-11", Some(spend(2000)), true, 20),
        ]);
        // A re-run of an earlier evaluation (a detector restarted from an old checkpoint).
        assert_eq!(given::<AllocationGap>(&h).when(observe("2026-11", None, true, 10)).unwrap(), vec![]);
    }

    #[test]
    fn the_cause_clearing_resolves_and_its_return_reopens_with_history() {
        let h = history(&[observe("2026-11", Some(spend(1234)), true, 10), act()]);
        let events = given::<AllocationGap>(&h).when(observe("2026-11", None, true, 20)).unwrap();
        assert!(
            matches!(events.last(), Some(GapEvent::GapCauseCleared { cleared_by, .. }) if cleared_by.event_id == Uuid::from_u128(20))
        );
        let mut all = h.clone();
        all.extend(events);
        assert_eq!(AllocationGap::fold(&all).status, GapStatus::Resolved);
        let reopened = given::<AllocationGap>(&all).when(observe("2026-12", Some(spend(5)), true, 30)).unwrap();
        assert!(matches!(reopened.last(), Some(GapEvent::GapReopened { .. })));
        all.extend(reopened);
        let gap = AllocationGap::fold(&all);
        assert_eq!(gap.status, GapStatus::Active);
        assert_eq!(gap.spend.len(), 1, "November's spend cleared, December's seen");
        // An older period's observation never moves the lifecycle.
        assert_eq!(given::<AllocationGap>(&all).when(observe("2026-10", None, false, 40)).unwrap(), vec![]);
    }

    #[test]
    fn a_resolution_by_decision_stands_while_its_cause_does() {
        let h = history(&[
            observe("2026-11", Some(spend(1)), true, 10),
            GapCommand::Resolve { decider: fl("accepted as shared platform cost") },
        ]);
        // Evaluated again (a restatement, another claim): the cause is still there.
        assert_eq!(given::<AllocationGap>(&h).when(observe("2026-11", Some(spend(1)), true, 20)).unwrap(), vec![]);
        // Gone, then back: that reopens it.
        let mut all = h.clone();
        all.extend(given::<AllocationGap>(&h).when(observe("2026-11", None, true, 30)).unwrap());
        let back = given::<AllocationGap>(&all).when(observe("2026-12", Some(spend(2)), true, 40)).unwrap();
        assert!(matches!(back.last(), Some(GapEvent::GapReopened { .. })));
    }

    #[test]
    fn acting_needs_the_kinds_action_a_rationale_and_an_active_gap() {
        let h = history(&[observe("2026-11", Some(spend(1)), true, 10)]);
        let events = given::<AllocationGap>(&h).when(act()).unwrap();
        assert!(matches!(&events[0], GapEvent::GapActioned { decider, .. } if decider.role == "finops_lead"));
        let wrong =
            GapCommand::Act { action: GapActionKind::Block, outcome: ActionOutcome::default(), decider: fl("") };
        let DomainError::Invalid(v) = given::<AllocationGap>(&h).when(wrong).unwrap_err() else { panic!() };
        assert_eq!(v.iter().map(|v| v.field.as_str()).collect::<Vec<_>>(), vec!["rationale", "action"]);
        assert!(v[1].description.contains("recommend_dedicated_role"));
        let mut actioned = h.clone();
        actioned.extend(given::<AllocationGap>(&h).when(act()).unwrap());
        // The same decision again is a retry; another one is refused, naming the state.
        assert_eq!(given::<AllocationGap>(&actioned).when(act()).unwrap(), vec![]);
        let another = GapCommand::Act {
            action: GapActionKind::RecommendDedicatedRole,
            outcome: ActionOutcome::default(),
            decider: fl("a second time"),
        };
        assert_eq!(
            given::<AllocationGap>(&actioned).when(another).unwrap_err(),
            DomainError::IllegalTransition { aggregate: "gap", state: "actioned", action: "act on" }
        );
        assert!(matches!(
            given::<AllocationGap>(&[]).when(act()).unwrap_err(),
            DomainError::IllegalTransition { state: "not detected", .. }
        ));
    }

    #[test]
    fn a_recall_restores_the_state_before_the_decision_and_keeps_it() {
        let h = history(&[
            observe("2026-11", Some(spend(1)), true, 10),
            act(),
            GapCommand::Resolve { decider: fl("shared platform cost") },
        ]);
        assert_eq!(AllocationGap::fold(&h).status, GapStatus::Resolved);
        let recall = GapCommand::Recall { decider: fl("not shared after all") };
        let events = given::<AllocationGap>(&h).when(recall.clone()).unwrap();
        assert!(
            matches!(&events[0], GapEvent::GapRecalled { recalled, restored: GapStatus::Actioned, .. } if recalled == "resolved")
        );
        let mut all = h.clone();
        all.extend(events);
        assert_eq!(given::<AllocationGap>(&all).when(recall.clone()).unwrap(), vec![], "a retry recalls nothing more");
        let recall = GapCommand::Recall { decider: fl("and the action too") };
        let again = given::<AllocationGap>(&all).when(recall.clone()).unwrap();
        assert!(matches!(&again[0], GapEvent::GapRecalled { restored: GapStatus::Active, .. }));
        all.extend(again);
        assert_eq!(AllocationGap::fold(&all).status, GapStatus::Active);
        let recall = GapCommand::Recall { decider: fl("once more") };
        assert!(matches!(
            given::<AllocationGap>(&all).when(recall).unwrap_err(),
            DomainError::IllegalTransition { state: "active with no decision to recall", .. }
        ));
    }

    #[test]
    fn generated_commands_are_exact() {
        let block = block_principal("ml-sandbox", false);
        let line = block.commands[0].render();
        assert!(line.starts_with("aws iam put-role-policy --role-name ml-sandbox --policy-name finops-center-deny-bedrock --policy-document '{"));
        assert!(line.contains(r#""Effect":"Deny""#));
        let setup = guided_cur_setup("111122223333", "my-cur-bucket");
        let export: serde_json::Value = serde_json::from_str(setup.commands[0].argv.last().unwrap()).unwrap();
        assert_eq!(
            export["DataQuery"]["TableConfigurations"]["COST_AND_USAGE_REPORT"]["INCLUDE_IAM_PRINCIPAL_DATA"],
            "TRUE"
        );
        assert!(
            export["DataQuery"]["QueryStatement"]
                .as_str()
                .unwrap()
                .ends_with("line_item_iam_principal FROM COST_AND_USAGE_REPORT")
        );
    }

    mod lifecycle {
        use proptest::prelude::*;

        use super::*;

        /// The lifecycle as a plain state machine, written apart from the aggregate.
        #[derive(Debug, Clone, Copy, PartialEq)]
        enum Reference {
            Unseen,
            Seen(GapStatus),
        }

        #[derive(Debug, Clone)]
        enum Step {
            Present,
            Absent,
            Act,
            Resolve,
            Recall,
        }

        fn step() -> impl Strategy<Value = Step> {
            prop_oneof![
                Just(Step::Present),
                Just(Step::Absent),
                Just(Step::Act),
                Just(Step::Resolve),
                Just(Step::Recall)
            ]
        }

        proptest! {
            #[test]
            fn the_fold_matches_the_reference_machine(steps in proptest::collection::vec(step(), 0..40)) {
                let mut gap = AllocationGap::default();
                let mut reference = Reference::Unseen;
                // The reference's stack of (state before) for decisions still standing.
                let mut standing: Vec<GapStatus> = Vec::new();
                let mut present = false;
                for (i, s) in steps.iter().enumerate() {
                    let through = i as u64 + 1;
                    let command = match s {
                        Step::Present => observe("2026-11", Some(spend(100)), true, through),
                        Step::Absent => observe("2026-11", None, true, through),
                        // Each a distinct decision (a repeat of the same one is a retry).
                        Step::Act => GapCommand::Act {
                            action: GapActionKind::RecommendDedicatedRole,
                            outcome: ActionOutcome::default(),
                            decider: fl(&format!("acted at step {i}")),
                        },
                        Step::Resolve => GapCommand::Resolve { decider: fl(&format!("decided at step {i}")) },
                        Step::Recall => GapCommand::Recall { decider: fl(&format!("revisited at step {i}")) },
                    };
                    let decided = gap.decide(&command);
                    let expected = match (reference, s) {
                        (Reference::Unseen, Step::Present) => { present = true; Some(Reference::Seen(GapStatus::Active)) }
                        (Reference::Unseen, Step::Absent) => Some(Reference::Unseen),
                        (Reference::Unseen, _) => None,
                        // A cause that left and came back reopens; a decision taken while it
                        // stood is not undone by its still standing.
                        (Reference::Seen(st), Step::Present) => {
                            let reopened = st == GapStatus::Resolved && !present;
                            present = true;
                            if reopened { standing.clear(); Some(Reference::Seen(GapStatus::Active)) } else { Some(reference) }
                        }
                        (Reference::Seen(_), Step::Absent) => {
                            let cleared = present;
                            present = false;
                            if cleared { standing.clear(); Some(Reference::Seen(GapStatus::Resolved)) } else { Some(reference) }
                        }
                        (Reference::Seen(GapStatus::Active), Step::Act) => { standing.push(GapStatus::Active); Some(Reference::Seen(GapStatus::Actioned)) }
                        (Reference::Seen(_), Step::Act) => None,
                        (Reference::Seen(GapStatus::Resolved), Step::Resolve) => None,
                        (Reference::Seen(st), Step::Resolve) => { standing.push(st); Some(Reference::Seen(GapStatus::Resolved)) }
                        (Reference::Seen(_), Step::Recall) => standing.pop().map(Reference::Seen),
                    };
                    match (expected, decided) {
                        (Some(next), Ok(events)) => {
                            for e in &events { gap = gap.clone().evolve(e); }
                            reference = next;
                        }
                        (None, Err(DomainError::IllegalTransition { .. })) => {}
                        (e, d) => prop_assert!(false, "step {i} {s:?}: expected {e:?}, decided {d:?}"),
                    }
                    let now = match reference { Reference::Unseen => None, Reference::Seen(st) => Some(st) };
                    prop_assert_eq!(gap.identity.as_ref().map(|_| gap.status), now);
                }
            }
        }
    }
}
