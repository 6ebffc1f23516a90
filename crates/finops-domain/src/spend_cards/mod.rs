//! Weekly Spend Cards (DOMAIN.md §8): one card per claimed workload and ISO week, issued by
//! a process once CUR covers the week, re-issued as a new version when a restatement
//! changes its figures; signed off in two tiers — the Product Owner accepts it or disputes
//! flagged lines, the FinOps Lead resolves a dispute (upheld, or adjusted with an amount),
//! and the Portfolio Owner approves the portfolio's roll-up of the week once every card in
//! it is accepted or resolved. The approved roll-up is the chargeback-ready record.
//!
//! Two aggregates: [`SpendCard`] (one per workload and week: its versions and the sign-off
//! of the current one) and [`PortfolioRollup`] (one per portfolio and week). Every decision
//! carries who, role, when and why; an illegal one names the state it met.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::error::{DomainError, Violations};
use crate::gaps::Decider;

pub mod forecast;
pub mod proration;

/// The namespace of card and roll-up ids.
const CARD_NAMESPACE: Uuid = Uuid::from_u128(0x5c1d_0a7e_41b2_4c3d_8e9f_70a1_b2c3_d4e5);

/// Variance over this share of the estimate is flagged unless configured otherwise.
pub const DEFAULT_VARIANCE_THRESHOLD_PERCENT: u32 = 20;

/// The Monday an ISO week starts on, or why `day` is not one.
pub fn iso_week_start(day: NaiveDate) -> Result<NaiveDate, String> {
    if day.weekday() == chrono::Weekday::Mon {
        Ok(day)
    } else {
        Err(format!("{day} is a {}, not the Monday an ISO week starts on", day.weekday()))
    }
}

/// The card of `workload_id` for the week starting `monday`.
pub fn card_id(workload_id: Uuid, monday: NaiveDate) -> Uuid {
    Uuid::new_v5(&CARD_NAMESPACE, format!("card/{workload_id}/{monday}").as_bytes())
}

/// The roll-up of `portfolio_id` for the week starting `monday`.
pub fn rollup_id(portfolio_id: Uuid, monday: NaiveDate) -> Uuid {
    Uuid::new_v5(&CARD_NAMESPACE, format!("rollup/{portfolio_id}/{monday}").as_bytes())
}

/// Which tokens a line counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenType {
    /// Input tokens.
    Input,
    /// Output tokens.
    Output,
    /// Cache-read input tokens.
    CacheRead,
    /// Cache-write input tokens.
    CacheWrite,
    /// Anything else the model bills (images, guardrail units…).
    Other,
}

impl TokenType {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Input => "input",
            Self::Output => "output",
            Self::CacheRead => "cache_read",
            Self::CacheWrite => "cache_write",
            Self::Other => "other",
        }
    }
}

/// One line of a card: a model's tokens of one type in one region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardLine {
    /// The model.
    pub model: String,
    /// Which tokens.
    pub token_type: TokenType,
    /// Where.
    pub region: String,
    /// How many (rounded).
    pub tokens: u64,
    /// What they cost, in cents.
    pub cents: i64,
    /// Spent outside the workload's approval (account, region or model).
    pub out_of_scope: bool,
}

impl CardLine {
    /// The line's name in a dispute: `model/token_type/region`.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.model, self.token_type.as_str(), self.region)
    }
}

/// What a card says: the week's actual spend by line, the estimate, the variance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardFigures {
    /// The workload.
    pub workload_id: Uuid,
    /// Its portfolio (whose roll-up the card joins).
    pub portfolio_id: Uuid,
    /// The Monday of the week.
    pub week: NaiveDate,
    /// The lines, sorted by key.
    pub lines: Vec<CardLine>,
    /// The week's estimate, pro-rated from the monthly estimate (cents).
    pub estimate_cents: i64,
    /// Variance over this percentage of the estimate is flagged.
    pub threshold_percent: u32,
    /// The month to date at the week's last day, and when the workload crosses its monthly
    /// estimate at that rate.
    #[serde(default)]
    pub forecast: Option<forecast::Forecast>,
}

impl CardFigures {
    /// Actual spend (cents).
    pub fn actual_cents(&self) -> i64 {
        self.lines.iter().map(|l| l.cents).sum()
    }

    /// Actual minus estimate (cents).
    pub fn variance_cents(&self) -> i64 {
        self.actual_cents() - self.estimate_cents
    }

    /// The variance as a percentage of the estimate, in basis points truncated toward zero
    /// (`None` without an estimate); for display — [`CardFigures::variance_flagged`]
    /// compares exactly.
    pub fn variance_basis_points(&self) -> Option<i64> {
        (self.estimate_cents != 0).then(|| self.variance_cents() * 10_000 / self.estimate_cents)
    }

    /// Is the variance over the threshold (either way)? A card with spend and no estimate is.
    pub fn variance_flagged(&self) -> bool {
        if self.estimate_cents == 0 {
            return self.actual_cents() != 0;
        }
        // Exactly, in whole cents: a cent over the threshold is over it.
        i128::from(self.variance_cents()).abs() * 100
            > i128::from(self.threshold_percent) * i128::from(self.estimate_cents).abs()
    }

    /// The lines a Product Owner may dispute: every line when the variance is flagged,
    /// else those outside the approval.
    pub fn flagged_lines(&self) -> BTreeSet<String> {
        let all = self.variance_flagged();
        self.lines.iter().filter(|l| all || l.out_of_scope).map(CardLine::key).collect()
    }
}

/// Where a card's current version stands in sign-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CardStatus {
    /// Not issued yet.
    #[default]
    NotIssued,
    /// Issued, waiting for its Product Owner.
    Issued,
    /// Accepted by its Product Owner.
    Accepted,
    /// Lines disputed; waiting for the FinOps Lead.
    Disputed,
    /// The dispute resolved by the FinOps Lead.
    Resolved,
}

impl CardStatus {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotIssued => "not issued",
            Self::Issued => "issued",
            Self::Accepted => "accepted",
            Self::Disputed => "disputed",
            Self::Resolved => "resolved",
        }
    }

    /// Signed off at the first tier: the roll-up may include it.
    pub fn signed_off(self) -> bool {
        matches!(self, Self::Accepted | Self::Resolved)
    }
}

/// How the FinOps Lead settles a dispute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeOutcome {
    /// The figures stand.
    Upheld,
    /// The workload is charged this amount for the week instead (cents).
    Adjusted {
        /// The amount charged.
        cents: i64,
    },
}

/// What may be asked of a card.
#[derive(Debug, Clone, PartialEq)]
pub enum CardCommand {
    /// The card issuer's figures for the week from `batches` (the CUR batches current for
    /// its days); a new version when they differ from the current one's.
    Issue {
        /// The figures.
        figures: CardFigures,
        /// The batches they come from.
        batches: Vec<String>,
        /// Why a new version (the restatement), for versions after the first.
        reason: String,
        /// The log position the figures were evaluated through: an evaluation older than
        /// the current version's changes nothing (a re-run never walks a card backwards).
        through: u64,
        /// When.
        at: DateTime<Utc>,
    },
    /// The Product Owner accepts `version`.
    Accept {
        /// The version seen.
        version: u32,
        /// Who, role, why, when.
        decider: Decider,
    },
    /// The Product Owner disputes flagged `lines` of `version`.
    Dispute {
        /// The version seen.
        version: u32,
        /// Line keys (`model/token_type/region`).
        lines: Vec<String>,
        /// Who, role, why, when.
        decider: Decider,
    },
    /// The FinOps Lead settles the dispute of `version`.
    Resolve {
        /// The version seen.
        version: u32,
        /// Upheld or adjusted.
        outcome: DisputeOutcome,
        /// Who, role, why, when.
        decider: Decider,
    },
}

/// What a card records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum CardEvent {
    /// A version of the card (1, 2, …); sign-off starts again for it.
    SpendCardIssued {
        /// The card's id.
        card_id: Uuid,
        /// Its version.
        version: u32,
        /// What it says.
        figures: CardFigures,
        /// The CUR batches it comes from.
        batches: Vec<String>,
        /// Why this version (empty for the first).
        reason: String,
        /// The log position its figures were evaluated through.
        through: u64,
        /// When.
        at: DateTime<Utc>,
    },
    /// Accepted by the Product Owner.
    SpendCardAccepted {
        /// The version accepted.
        version: u32,
        /// Who, role, why, when.
        decider: Decider,
    },
    /// Lines disputed by the Product Owner.
    SpendCardDisputed {
        /// The version disputed.
        version: u32,
        /// The lines.
        lines: Vec<String>,
        /// Who, role, why, when.
        decider: Decider,
    },
    /// The dispute settled by the FinOps Lead.
    SpendCardDisputeResolved {
        /// The version.
        version: u32,
        /// Upheld or adjusted.
        outcome: DisputeOutcome,
        /// Who, role, why, when.
        decider: Decider,
    },
}

/// One issued version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardVersion {
    /// Its number.
    pub version: u32,
    /// What it says.
    pub figures: CardFigures,
    /// Where it comes from.
    pub batches: Vec<String>,
    /// Why it was issued (empty for the first).
    pub reason: String,
    /// The log position its figures were evaluated through.
    pub through: u64,
    /// When.
    pub at: DateTime<Utc>,
}

/// A card's state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpendCard {
    /// Every version, oldest first (earlier versions stay readable).
    pub versions: Vec<CardVersion>,
    /// Sign-off of the current version.
    pub status: CardStatus,
    /// The disputed lines, while disputed or once resolved.
    pub disputed: Vec<String>,
    /// The settlement of the current version's dispute.
    pub outcome: Option<DisputeOutcome>,
    /// The latest decision (a retry of it records nothing).
    pub last_decision: Option<Decider>,
}

impl SpendCard {
    /// The current version's number (0 before issue).
    pub fn version(&self) -> u32 {
        self.versions.last().map_or(0, |v| v.version)
    }

    /// What the workload is charged for the week as signed off: the adjusted amount of a
    /// resolved dispute, else the actual spend.
    pub fn charged_cents(&self) -> Option<i64> {
        let current = self.versions.last()?;
        Some(match &self.outcome {
            Some(DisputeOutcome::Adjusted { cents }) => *cents,
            _ => current.figures.actual_cents(),
        })
    }

    fn illegal(&self, action: &'static str) -> DomainError {
        DomainError::IllegalTransition { aggregate: "spend card", state: self.status.as_str(), action }
    }

    /// Checks a person's decision on `version` in `expected` status, with the command's own
    /// faults in `v` reported beside the common ones; `Ok(false)`: a retry of the latest.
    fn person_decides(
        &self,
        version: u32,
        decider: &Decider,
        expected: CardStatus,
        action: &'static str,
        mut v: Violations,
    ) -> Result<bool, DomainError> {
        if self.last_decision.as_ref() == Some(decider) {
            return Ok(false);
        }
        if self.status == CardStatus::NotIssued {
            return Err(self.illegal(action));
        }
        // The state first: a step the card is past is refused as such, whatever its input.
        if self.status != expected {
            return Err(self.illegal(action));
        }
        v.require_rationale(&decider.rationale);
        if version != self.version() {
            v.add("version", format!("version {version} is not the card's current version {}", self.version()));
        }
        v.into_result()?;
        Ok(true)
    }
}

impl Aggregate for SpendCard {
    type Command = CardCommand;
    type Event = CardEvent;
    type Error = DomainError;

    fn decide(&self, command: &CardCommand) -> Result<Vec<CardEvent>, DomainError> {
        match command {
            CardCommand::Issue { figures, batches, reason, through, at } => {
                if self.versions.last().is_some_and(|v| v.figures == *figures || *through < v.through) {
                    return Ok(vec![]);
                }
                let version = self.version() + 1;
                if version > 1 && reason.trim().is_empty() {
                    return Err(DomainError::Invalid(vec![crate::FieldViolation::new(
                        "reason",
                        "is required for a new version: which batch changed what",
                    )]));
                }
                Ok(vec![CardEvent::SpendCardIssued {
                    card_id: card_id(figures.workload_id, figures.week),
                    version,
                    figures: figures.clone(),
                    batches: batches.clone(),
                    reason: reason.clone(),
                    through: *through,
                    at: *at,
                }])
            }
            CardCommand::Accept { version, decider } => {
                if !self.person_decides(*version, decider, CardStatus::Issued, "accept", Violations::default())? {
                    return Ok(vec![]);
                }
                Ok(vec![CardEvent::SpendCardAccepted { version: *version, decider: decider.clone() }])
            }
            CardCommand::Dispute { version, lines, decider } => {
                let flagged = self.versions.last().map(|v| v.figures.flagged_lines()).unwrap_or_default();
                let mut v = Violations::default();
                if lines.is_empty() {
                    v.add("lines", "name at least one flagged line to dispute");
                }
                for (i, line) in lines.iter().enumerate().filter(|(_, l)| !flagged.contains(*l)) {
                    // A few names to go on; the card lists them all.
                    let known = match flagged.len() {
                        0 => "none".to_owned(),
                        n if n <= 3 => flagged.iter().cloned().collect::<Vec<_>>().join(", "),
                        n => format!(
                            "{} and {} more",
                            flagged.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
                            n - 3
                        ),
                    };
                    v.add(
                        format!("lines[{i}]"),
                        format!("`{line}` is not a flagged line of this card; flagged: {known}"),
                    );
                }
                if !self.person_decides(*version, decider, CardStatus::Issued, "dispute", v)? {
                    return Ok(vec![]);
                }
                Ok(vec![CardEvent::SpendCardDisputed {
                    version: *version,
                    lines: lines.clone(),
                    decider: decider.clone(),
                }])
            }
            CardCommand::Resolve { version, outcome, decider } => {
                let mut v = Violations::default();
                if let DisputeOutcome::Adjusted { cents } = outcome
                    && *cents < 0
                {
                    v.add("adjusted_cents", format!("must not be negative, got {cents}"));
                }
                if !self.person_decides(*version, decider, CardStatus::Disputed, "resolve the dispute of", v)? {
                    return Ok(vec![]);
                }
                Ok(vec![CardEvent::SpendCardDisputeResolved {
                    version: *version,
                    outcome: outcome.clone(),
                    decider: decider.clone(),
                }])
            }
        }
    }

    fn evolve(mut self, event: &CardEvent) -> Self {
        match event {
            CardEvent::SpendCardIssued { version, figures, batches, reason, through, at, .. } => {
                self.versions.push(CardVersion {
                    version: *version,
                    figures: figures.clone(),
                    batches: batches.clone(),
                    reason: reason.clone(),
                    through: *through,
                    at: *at,
                });
                // A new version reopens sign-off.
                self.status = CardStatus::Issued;
                self.disputed.clear();
                self.outcome = None;
            }
            CardEvent::SpendCardAccepted { decider, .. } => {
                self.status = CardStatus::Accepted;
                self.last_decision = Some(decider.clone());
            }
            CardEvent::SpendCardDisputed { lines, decider, .. } => {
                self.status = CardStatus::Disputed;
                self.disputed.clone_from(lines);
                self.last_decision = Some(decider.clone());
            }
            CardEvent::SpendCardDisputeResolved { outcome, decider, .. } => {
                self.status = CardStatus::Resolved;
                self.outcome = Some(outcome.clone());
                self.last_decision = Some(decider.clone());
            }
        }
        self
    }
}

/// A card as the roll-up takes it: which version, signed off how, charged what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollupCard {
    /// The workload.
    pub workload_id: Uuid,
    /// The version signed off.
    pub version: u32,
    /// Its sign-off.
    pub status: CardStatus,
    /// What the workload is charged for the week (cents).
    pub charged_cents: i64,
}

/// What may be asked of a portfolio's roll-up.
#[derive(Debug, Clone, PartialEq)]
pub enum RollupCommand {
    /// The Portfolio Owner approves the week's cards (as the handler read them).
    Approve {
        /// The portfolio.
        portfolio_id: Uuid,
        /// The Monday of the week.
        week: NaiveDate,
        /// Every card of the portfolio's week.
        cards: Vec<RollupCard>,
        /// Who, role, why, when.
        decider: Decider,
    },
    /// A card of an approved roll-up has a new version: the approval no longer holds (the
    /// card issuer asks this).
    Reopen {
        /// The workload whose card changed.
        workload_id: Uuid,
        /// Its new version.
        version: u32,
        /// When.
        at: DateTime<Utc>,
    },
}

/// What a roll-up records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum RollupEvent {
    /// Approved: the chargeback-ready record of the portfolio's week.
    SpendRollupApproved {
        /// The roll-up's id.
        rollup_id: Uuid,
        /// The portfolio.
        portfolio_id: Uuid,
        /// The Monday of the week.
        week: NaiveDate,
        /// The cards, as approved.
        cards: Vec<RollupCard>,
        /// Their total (cents).
        total_cents: i64,
        /// Who, role, why, when.
        decider: Decider,
    },
    /// A card changed after approval; the roll-up waits for approval again.
    SpendRollupReopened {
        /// The workload whose card changed.
        workload_id: Uuid,
        /// Its new version.
        version: u32,
        /// When.
        at: DateTime<Utc>,
    },
}

/// A roll-up's state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortfolioRollup {
    /// The cards of the standing approval (empty when none stands).
    pub approved: Vec<RollupCard>,
    /// The last approval (a retry of it records nothing).
    pub last_decision: Option<Decider>,
}

impl PortfolioRollup {
    /// Is an approval standing?
    pub fn is_approved(&self) -> bool {
        !self.approved.is_empty()
    }
}

impl Aggregate for PortfolioRollup {
    type Command = RollupCommand;
    type Event = RollupEvent;
    type Error = DomainError;

    fn decide(&self, command: &RollupCommand) -> Result<Vec<RollupEvent>, DomainError> {
        match command {
            RollupCommand::Approve { portfolio_id, week, cards, decider } => {
                if self.last_decision.as_ref() == Some(decider) {
                    return Ok(vec![]);
                }
                let mut v = Violations::default();
                v.require_rationale(&decider.rationale);
                v.into_result()?;
                if self.is_approved() {
                    return Err(DomainError::IllegalTransition {
                        aggregate: "roll-up",
                        state: "approved",
                        action: "approve",
                    });
                }
                if cards.is_empty() {
                    return Err(DomainError::Precondition(format!(
                        "the portfolio has no spend card for the week of {week}"
                    )));
                }
                let waiting: Vec<String> = cards
                    .iter()
                    .filter(|c| !c.status.signed_off())
                    .map(|c| format!("workload {} (version {}, {})", c.workload_id, c.version, c.status.as_str()))
                    .collect();
                if !waiting.is_empty() {
                    return Err(DomainError::Precondition(format!(
                        "every card must be accepted or resolved first; waiting: {}",
                        waiting.join(", ")
                    )));
                }
                Ok(vec![RollupEvent::SpendRollupApproved {
                    rollup_id: rollup_id(*portfolio_id, *week),
                    portfolio_id: *portfolio_id,
                    week: *week,
                    cards: cards.clone(),
                    total_cents: cards.iter().map(|c| c.charged_cents).sum(),
                    decider: decider.clone(),
                }])
            }
            RollupCommand::Reopen { workload_id, version, at } => {
                let stale = self.approved.iter().any(|c| c.workload_id == *workload_id && c.version < *version);
                if !stale {
                    return Ok(vec![]);
                }
                Ok(vec![RollupEvent::SpendRollupReopened { workload_id: *workload_id, version: *version, at: *at }])
            }
        }
    }

    fn evolve(mut self, event: &RollupEvent) -> Self {
        match event {
            RollupEvent::SpendRollupApproved { cards, decider, .. } => {
                self.approved.clone_from(cards);
                self.last_decision = Some(decider.clone());
            }
            RollupEvent::SpendRollupReopened { .. } => self.approved.clear(),
        }
        self
    }
}

#[cfg(test)]
mod tests;
