//! The gap detector (issue 11): follows the log and, whenever something that decides
//! where AI money goes is recorded — a CUR batch ingested or restated, a claim, an
//! approval, a workload's estimate, business case or budget, the role patterns, the
//! organisation — evaluates every ingested period again from the existing classification
//! and records what changed on each Allocation Gap (`finops_domain::gaps`): detected,
//! spend updated, cause cleared, reopened.
//!
//! A gateway mapping rule recorded or retired is also noted in the trail of each detected
//! gap on its role (`GapGatewayRuleChanged`), whichever path changed it, so the gap's
//! history says why its spend moved.
//!
//! Deterministic: an evaluation reads the governance state *through the position of the
//! event that triggered it* and the batches current then, so running it again (after a
//! crash, from the demo seed and then the process, on another instance) finds the same
//! thing; its commands carry request ids derived from that event and the gap, and each
//! gap refuses an evaluation older than one it recorded. Only gaps whose state changes are
//! written: re-detection after one claim touches the gaps that claim affects.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use finops_attribution::{AttributionEngine, GovernanceView, Visibility};
use finops_domain::Aggregate;
use finops_domain::gaps::{
    AllocationGap, Decider, EvaluationCause, GapCommand, GapEvaluationCommand, GapEvaluationEvent, GapEvaluations,
    GapEvent, GatewayRuleChange, gaps_on_role,
};
use finops_domain::gateway_rules::{GatewayRule, GatewayRuleEvent};
use finops_eventlog::{AllRead, EventStore, Position, RecordedEvent};
use finops_governance::state::{StateFold, each_event_between};
use finops_governance::{CommandContext, CommandHandler, GovernanceError, decode, streams};
use finops_projections::ReadModels;
use uuid::Uuid;

use crate::ProcessError;

/// Events read per round.
const PAGE: usize = 500;

/// The actor the detector's observations are recorded as.
pub const DETECTOR_ACTOR: &str = "gap-detector";

/// Detects Allocation Gaps as the log moves.
#[derive(Clone)]
pub struct GapDetector {
    store: Arc<dyn EventStore>,
    checkpoints: ReadModels,
    engine: AttributionEngine,
    failures: Arc<AtomicU64>,
    /// What its evaluations have folded so far, shared by the clones that run its rounds.
    fold: Arc<tokio::sync::Mutex<EvaluationFold>>,
}

/// What one evaluation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// Periods evaluated.
    pub periods: usize,
    /// Gaps found across them.
    pub found: usize,
    /// Gaps whose stream received events.
    pub touched: usize,
}

/// Does this event change where AI money goes (and so call for a new evaluation)?
pub fn triggers_evaluation(event: &RecordedEvent) -> bool {
    let stream = event.stream_id.as_str();
    [streams::CUR_PERIOD, streams::CLAIM, streams::BUSINESS_REQUEST, streams::WORKLOAD, streams::GATEWAY_RULE]
        .iter()
        .any(|p| stream.starts_with(p))
        || stream == streams::ROLE_PATTERNS
        || stream == streams::ORGANISATION
}

impl GapDetector {
    /// The checkpoint's key.
    pub const NAME: &'static str = "gap_detector";

    /// A detector over `store`, answering with `engine`, keeping its checkpoint in
    /// `checkpoints`.
    pub fn new(store: Arc<dyn EventStore>, checkpoints: ReadModels, engine: AttributionEngine) -> Self {
        Self { store, checkpoints, engine, failures: Arc::new(AtomicU64::new(0)), fold: Arc::default() }
    }

    /// How many rounds failed (and were retried) since this process was made.
    pub fn failed_rounds(&self) -> u64 {
        self.failures.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Handles every sealed event after the checkpoint: one evaluation per page that
    /// holds a trigger, at the page's last trigger. Returns the evaluations made.
    pub async fn run_once(&self) -> Result<Vec<Evaluation>, ProcessError> {
        let mut done = Vec::new();
        loop {
            let from = self.checkpoints.process_checkpoint(Self::NAME).await?;
            let page = self.store.read_all(AllRead::forwards_after(Position(from), PAGE)).await?;
            let Some(to) = page.last().and_then(|e| e.position) else { return Ok(done) };
            // Every rule change enters its gaps' trails before the evaluation it triggers
            // moves their spend: the trail then reads cause before effect.
            for event in page.iter().filter(|e| e.stream_id.as_str().starts_with(streams::GATEWAY_RULE)) {
                note_rule_change(&self.store, event).await?;
            }
            if let Some(trigger) = page.iter().rev().find(|e| triggers_evaluation(e)) {
                let mut fold = self.fold.lock().await;
                done.push(evaluate_with(&self.store, &self.engine, trigger, &mut fold).await?);
            }
            self.checkpoints.advance_process(Self::NAME, from, to.0).await?;
        }
    }

    /// Follows the head until the handle is aborted.
    pub fn spawn(self, poll: Duration) -> tokio::task::JoinHandle<()> {
        let (store, failures) = (self.store.clone(), self.failures.clone());
        crate::follow(store, Self::NAME, poll, failures, move || {
            let this = self.clone();
            async move { this.run_once().await.map(|e| e.len() as u64) }
        })
    }
}

/// What an evaluation reads from the log: the governance state through the trigger, and
/// the gaps and the evaluations recorded as they stand now. A detector keeps it between
/// evaluations, so each reads only the events it has not seen: folded afresh for every
/// evaluation (once per page of the log holding a trigger), a detector catching up over a
/// 200 k-event log read the whole log 400 times, about 80 events a second.
///
/// It holds only what was folded from the log: an evaluation works on a copy of the gaps,
/// and what it records is read back like any other event.
#[derive(Debug, Clone, Default)]
pub struct EvaluationFold {
    state: StateFold,
    gaps: BTreeMap<Uuid, AllocationGap>,
    evaluated: GapEvaluations,
    seen: Position,
}

impl EvaluationFold {
    /// Folds the state through `through`, and the gaps and evaluations to the head.
    async fn advance(&mut self, store: &dyn EventStore, through: Position) -> Result<(), GovernanceError> {
        if through < self.state.position() {
            // A re-run from an earlier checkpoint: everything is folded again from the start.
            *self = Self::default();
        }
        self.state.through(store, through).await?;
        let (gaps, evaluated) = (&mut self.gaps, &mut self.evaluated);
        let seen = each_event_between(store, self.seen, None, |event| {
            if !fold_gap(gaps, event)? && event.stream_id.as_str() == streams::GAP_EVALUATIONS {
                *evaluated = std::mem::take(evaluated).evolve(&decode::<GapEvaluationEvent>(event)?);
            }
            Ok(())
        })
        .await;
        match seen {
            Ok(seen) => self.seen = seen,
            // Partly folded past `seen`: folded again, events would count twice.
            Err(e) => {
                *self = Self::default();
                return Err(e);
            }
        }
        Ok(())
    }
}

/// Evaluates every ingested period as the log stood at `trigger` and records what changed
/// on each gap. Idempotent (see the module's notes).
pub async fn evaluate(
    store: &Arc<dyn EventStore>,
    engine: &AttributionEngine,
    trigger: &RecordedEvent,
) -> Result<Evaluation, ProcessError> {
    evaluate_with(store, engine, trigger, &mut EvaluationFold::default()).await
}

/// [`evaluate`], reading only what `fold` has not folded yet.
pub async fn evaluate_with(
    store: &Arc<dyn EventStore>,
    engine: &AttributionEngine,
    trigger: &RecordedEvent,
    fold: &mut EvaluationFold,
) -> Result<Evaluation, ProcessError> {
    let through = trigger.position.ok_or_else(|| {
        ProcessError::Command(GovernanceError::Undecodable {
            stream: trigger.stream_id.to_string(),
            event_id: trigger.event_id,
            event_type: trigger.event_type.clone(),
            reason: "an evaluation needs a sealed event (one with a position)".into(),
        })
    })?;
    // The gaps as they stand now (an earlier evaluation's findings may have been written
    // after the trigger), folded with the governance state then. Each gap refuses an
    // observation older than its own, so knowing more is always safe.
    fold.advance(store.as_ref(), through).await?;
    let (state, evaluated, mut gaps) = (fold.state.state(), &fold.evaluated, fold.gaps.clone());
    // A newer evaluation has judged every gap already (this is a re-run from an earlier
    // checkpoint): it stands.
    if through.0 <= evaluated.through {
        return Ok(Evaluation::default());
    }
    let newest = state.cur_periods.keys().next_back().cloned();
    let view = GovernanceView::from(state);
    let cause = EvaluationCause {
        event_id: trigger.event_id,
        event_type: trigger.event_type.clone(),
        stream: trigger.stream_id.to_string(),
    };
    let at = trigger.metadata.recorded_at;
    let handler = CommandHandler::<AllocationGap>::new(store.clone());
    let mut outcome = Evaluation::default();
    let mut touched = std::collections::BTreeSet::new();
    for (period, cur) in &state.cur_periods {
        let Some((batch, _)) = cur.batches.last() else { continue };
        let question = match engine.question(view.clone(), batch, Visibility::Everything).await {
            Ok(question) => question,
            // A batch stored in an earlier columnar layout is read again once its delivery
            // is ingested again (which triggers an evaluation); until then it has no gaps
            // to tell, and the other periods must not wait for it.
            Err(e @ finops_attribution::AttributionError::Outdated { .. }) => {
                tracing::warn!(%period, error = %e, "period skipped by the gap detector");
                continue;
            }
            Err(e) => return Err(attribution(e)),
        };
        let found = question.gaps().await.map_err(attribution)?;
        outcome.periods += 1;
        outcome.found += found.len();
        let newest = newest.as_deref() == Some(period.as_str());
        let mut commands: BTreeMap<Uuid, GapCommand> = BTreeMap::new();
        for f in found {
            commands.insert(
                f.identity.gap_id(),
                GapCommand::Observe {
                    identity: f.identity,
                    period: period.clone(),
                    spend: Some(f.spend),
                    newest,
                    through: through.0,
                    cause: cause.clone(),
                    at,
                },
            );
        }
        // Known gaps the period no longer holds.
        for (id, gap) in &gaps {
            let Some(identity) = &gap.identity else { continue };
            commands.entry(*id).or_insert_with(|| GapCommand::Observe {
                identity: identity.clone(),
                period: period.clone(),
                spend: None,
                newest,
                through: through.0,
                cause: cause.clone(),
                at,
            });
        }
        for (id, command) in commands {
            let gap = gaps.remove(&id).unwrap_or_default();
            // Decided here first, so only gaps that change cost a round trip.
            let events = gap.decide(&command).map_err(|e| ProcessError::Command(GovernanceError::Refused(e)))?;
            let gap = events.iter().fold(gap, AllocationGap::evolve);
            gaps.insert(id, gap);
            if events.is_empty() {
                continue;
            }
            let context = CommandContext {
                actor_id: DETECTOR_ACTOR.to_owned(),
                actor_role: "process".to_owned(),
                request_id: Uuid::new_v5(&trigger.event_id, format!("gap {id} {period}").as_bytes()),
                rationale: None,
                correlation_id: trigger.metadata.correlation_id,
                causation_id: Some(trigger.event_id),
                fingerprint: None,
            };
            handler.execute(&streams::gap(id), &command, &context).await?;
            touched.insert(id);
        }
    }
    outcome.touched = touched.len();
    if outcome.periods == 0 {
        // No CUR yet: nothing was judged, so there is nothing to record.
        return Ok(outcome);
    }
    // Recorded last: a crash before this leaves the evaluation to be made again (each gap
    // recognises what it already recorded).
    let record = GapEvaluationCommand::Record {
        through: through.0,
        cause: cause.clone(),
        found: outcome.found as u64,
        touched: outcome.touched as u64,
        at,
    };
    let context = CommandContext {
        actor_id: DETECTOR_ACTOR.to_owned(),
        actor_role: "process".to_owned(),
        request_id: Uuid::new_v5(&trigger.event_id, b"gaps evaluated"),
        rationale: None,
        correlation_id: trigger.metadata.correlation_id,
        causation_id: Some(trigger.event_id),
        fingerprint: None,
    };
    match CommandHandler::<GapEvaluations>::new(store.clone())
        .execute(&streams::gap_evaluations(), &record, &context)
        .await
    {
        // Another instance recorded a newer evaluation meanwhile: both stand.
        Ok(_) | Err(GovernanceError::Conflict { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    tracing::info!(trigger = %trigger.event_type, position = through.0, ?outcome, "gaps evaluated");
    Ok(outcome)
}

/// Notes a gateway rule's change (`event`, on a rule's stream) in the trail of every
/// detected gap on the rule's role, on behalf of whoever changed the rule — whichever path
/// recorded it (the gap action, the rule API, a script). Returns how many gaps it noted.
/// Idempotent: ids derive from the event, and a gap notes a change once.
pub async fn note_rule_change(store: &Arc<dyn EventStore>, event: &RecordedEvent) -> Result<usize, ProcessError> {
    let rule_stream = event.stream_id.to_string();
    let Some(rule_id) = rule_stream.strip_prefix(streams::GATEWAY_RULE).and_then(|id| Uuid::parse_str(id).ok()) else {
        return Ok(0);
    };
    let (change, rationale, summary, spec) = match decode::<GatewayRuleEvent>(event)? {
        GatewayRuleEvent::GatewayRuleRecorded { spec, rationale, .. } => {
            let summary = format!(
                "{} of {} charged to workload {} from {}",
                spec.matcher, spec.role_name, spec.workload_id, spec.effective_from
            );
            (GatewayRuleChange::Recorded, rationale, summary, spec)
        }
        GatewayRuleEvent::GatewayRuleRetired { effective_until, rationale, .. } => {
            // The rule as it was recorded: a rule is never edited, so its spec now is its
            // spec then.
            let Some(spec) = CommandHandler::<GatewayRule>::new(store.clone())
                .load(&streams::gateway_rule(rule_id))
                .await?
                .state
                .spec
            else {
                return Ok(0);
            };
            let summary = format!(
                "{} of {} no longer charged to workload {} after {effective_until}",
                spec.matcher, spec.role_name, spec.workload_id
            );
            (GatewayRuleChange::Retired, rationale, summary, spec)
        }
    };
    let decider = Decider {
        by: event.metadata.actor_id.clone(),
        role: event.metadata.actor_role.clone(),
        rationale: rationale.clone(),
        at: event.metadata.recorded_at,
    };
    let handler = CommandHandler::<AllocationGap>::new(store.clone());
    let mut noted = 0;
    for id in gaps_on_role(spec.account.as_str(), &spec.role_name) {
        let stream = streams::gap(id);
        let before = handler.load(&stream).await?;
        if before.state.identity.is_none() {
            continue;
        }
        let command = GapCommand::NoteGatewayRule {
            rule: format!("gatewayRules/{rule_id}"),
            change,
            summary: summary.clone(),
            decider: decider.clone(),
        };
        let context = CommandContext {
            actor_id: event.metadata.actor_id.clone(),
            actor_role: event.metadata.actor_role.clone(),
            request_id: Uuid::new_v5(&event.event_id, format!("gap {id} rule note").as_bytes()),
            rationale: Some(rationale.clone()),
            correlation_id: event.metadata.correlation_id,
            causation_id: Some(event.event_id),
            fingerprint: None,
        };
        if handler.execute(&stream, &command, &context).await?.version != before.version {
            noted += 1;
        }
    }
    Ok(noted)
}

/// Folds `event` into `gaps` if it is a gap's; says whether it was.
fn fold_gap(gaps: &mut BTreeMap<Uuid, AllocationGap>, event: &RecordedEvent) -> Result<bool, GovernanceError> {
    let Some(id) = event.stream_id.as_str().strip_prefix(streams::GAP).and_then(|id| Uuid::parse_str(id).ok()) else {
        return Ok(false);
    };
    let gap = gaps.remove(&id).unwrap_or_default();
    gaps.insert(id, gap.evolve(&decode::<GapEvent>(event)?));
    Ok(true)
}

/// Every gap as it stands now, by id.
pub async fn current_gaps(store: &dyn EventStore) -> Result<BTreeMap<Uuid, AllocationGap>, GovernanceError> {
    let mut gaps = BTreeMap::new();
    finops_governance::state::each_event(store, |event| fold_gap(&mut gaps, event).map(|_| ())).await?;
    Ok(gaps)
}

fn attribution(e: finops_attribution::AttributionError) -> ProcessError {
    ProcessError::Attribution(e.to_string())
}

#[cfg(test)]
mod tests {
    use finops_domain::gaps::{ActionOutcome, GapActionKind, GapIdentity, GapKind};
    use finops_eventlog::ExpectedVersion;

    use super::*;

    /// A gap detected, then actioned `actions` times (raw events, as the fold reads them:
    /// each action stacks a standing decision, so a page folded twice would stack twice).
    async fn actioned_gap(store: &Arc<dyn EventStore>, actions: usize) -> (Uuid, Position) {
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-20T10:00:00Z").unwrap().to_utc();
        let identity = GapIdentity {
            kind: GapKind::UnattributedSpend,
            anchor: "role/123456789012/ShareAll".into(),
            account: "123456789012".into(),
            workload_id: None,
            principal: "role/ShareAll".into(),
            concerns: vec![],
        };
        let id = identity.gap_id();
        let cause =
            EvaluationCause { event_id: Uuid::nil(), event_type: "CurBatchIngested".into(), stream: "cur".into() };
        let detected = GapEvent::GapDetected { gap_id: id, identity, period: "2026-11".into(), through: 1, cause, at };
        let decider = Decider { by: "fl-ana".into(), role: "finops_lead".into(), rationale: "on it".into(), at };
        let actioned = GapEvent::GapActioned {
            action: GapActionKind::RecommendDedicatedRole,
            outcome: ActionOutcome::default(),
            decider,
        };
        let events = std::iter::once(&detected)
            .chain(std::iter::repeat_n(&actioned, actions))
            .map(|e| finops_testkit::recorded_by(e, "fl-ana", "finops_lead"));
        store.append(&streams::gap(id), ExpectedVersion::NoStream, events.collect()).await.unwrap();
        (id, store.seal_committed().await.unwrap().position)
    }

    /// A kept evaluation fold whose read failed midway folds, when asked again, what a
    /// fresh fold does: every event once, whichever of its reads failed.
    #[tokio::test]
    async fn an_evaluation_fold_that_failed_midway_folds_each_event_once_when_asked_again() {
        let store =
            finops_eventlog::open(&finops_testkit::fresh_sqlite_url(), finops_governance::upcasters()).await.unwrap();
        let (id, head) = actioned_gap(&store, 2_500).await;
        let mut fresh = EvaluationFold::default();
        fresh.advance(store.as_ref(), head).await.unwrap();
        assert_eq!(fresh.gaps[&id].standing.len(), 2_500);
        let counted = finops_testkit::CountedStore::new(store.clone());
        // Each read of the two folds (the state's, then the gaps') fails in turn.
        for failing in 1..=4 {
            let mut kept = EvaluationFold::default();
            counted.fail_read_all(failing);
            let failed = kept.advance(counted.as_ref(), head).await.is_err();
            kept.advance(counted.as_ref(), head).await.unwrap();
            assert_eq!(kept.gaps[&id].standing.len(), 2_500, "read {failing} failed (surfaced: {failed})");
            assert!(kept.gaps == fresh.gaps, "read {failing} failed: the fold asked again is the fresh fold's");
            assert_eq!(kept.seen, fresh.seen);
        }
    }
}
