//! The investigation detector (issue 13.2): when a CUR batch lands, the period's daily
//! spend per account, caller, model and workload is read as the log stood at the batch
//! (`Question::attribute`) and [`finops_domain::investigations::detect`] says what fires;
//! each firing opens an Investigation, at most one open per signal and subject (an open
//! one on the same subject stands; a closed one lets a new firing open another).
//!
//! Idempotent: an investigation's id derives from its signal, subject and first day, and
//! each Open command's id from the batch event and that id, so a re-run opens nothing
//! twice. Invocation-log files bring hours (`detect_logs`), with the same investigation
//! ids, so the later CUR batch finds the logs' investigation open; an hourly CUR export's
//! hours are judged too, on the accounts and days no log file covers (`cur_hour_firings`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use chrono::NaiveDate;
use finops_attribution::hours::{ChargedHour, charged};
use finops_attribution::invocation_usage::{micro_usd_cents, usage_locations};
use finops_attribution::{AttributionEngine, Dimension, GovernanceView, Visibility};
use finops_domain::Aggregate;
use finops_domain::governance_state::GovernanceState;
use finops_domain::investigations::{
    DailySpend, DetectorSettings, Firing, HourlySpend, Investigation, InvestigationCommand, InvestigationEvent,
    InvestigationStatus, Signal, detect, detect_hourly, detect_hourly_where,
};
use finops_domain::invocation_logs::LogDayEvent;
use finops_eventlog::{EventStore, Position, RecordedEvent};
use finops_governance::state::{StateFold, each_event_between};
use finops_governance::{CommandContext, CommandHandler, GovernanceError, decode, streams};
use finops_projections::ReadModels;
use uuid::Uuid;

use crate::ProcessError;

/// Who the detector records as.
pub const DETECTOR_ACTOR: &str = "investigation-detector";

/// Opens investigations from each new CUR batch.
#[derive(Clone)]
pub struct InvestigationDetector {
    store: Arc<dyn EventStore>,
    checkpoints: ReadModels,
    engine: AttributionEngine,
    settings: DetectorSettings,
    failures: Arc<AtomicU64>,
    /// What its reactions have folded so far, shared by its clones.
    fold: Arc<tokio::sync::Mutex<DetectorFold>>,
}

impl InvestigationDetector {
    /// The checkpoint's key.
    pub const NAME: &'static str = "investigation_detector";

    /// A detector over `store` with `settings`.
    pub fn new(
        store: Arc<dyn EventStore>,
        checkpoints: ReadModels,
        engine: AttributionEngine,
        settings: DetectorSettings,
    ) -> Self {
        Self { store, checkpoints, engine, settings, failures: Arc::new(AtomicU64::new(0)), fold: Default::default() }
    }

    /// Handles every sealed event after the checkpoint — each CUR batch, and the
    /// invocation-log files of a page at its last one (a follower records many files at a
    /// time; the hours they hold are read together) —; returns how many investigations
    /// it opened.
    pub async fn run_once(&self) -> Result<u64, ProcessError> {
        crate::each_landing(
            &self.store,
            &self.checkpoints,
            Self::NAME,
            |batch| {
                let this = self.clone();
                async move {
                    let mut fold = this.fold.lock().await;
                    detect_batch(&this.store, &this.engine, &this.settings, &mut fold, &batch).await
                }
            },
            |logs| {
                let this = self.clone();
                async move {
                    let mut fold = this.fold.lock().await;
                    detect_logs(&this.store, &this.engine, &this.settings, &mut fold, &logs).await
                }
            },
        )
        .await
    }

    /// Follows the head until the handle is aborted.
    pub fn spawn(self, poll: Duration) -> tokio::task::JoinHandle<()> {
        let (store, failures) = (self.store.clone(), self.failures.clone());
        crate::follow(store, Self::NAME, poll, failures, move || {
            let this = self.clone();
            async move { this.run_once().await }
        })
    }
}

/// Opens what `batch` (a `CurBatchIngested`) fires, as the log stood at it; returns how
/// many investigations it opened.
pub async fn detect_batch(
    store: &Arc<dyn EventStore>,
    engine: &AttributionEngine,
    settings: &DetectorSettings,
    fold: &mut DetectorFold,
    batch: &RecordedEvent,
) -> Result<u64, ProcessError> {
    let attribution = |e: finops_attribution::AttributionError| ProcessError::Attribution(e.to_string());
    let Some(through) = batch.position else { return Ok(0) };
    let Some(period) = batch.stream_id.as_str().strip_prefix(streams::CUR_PERIOD) else { return Ok(0) };
    let (state, investigations) = fold.advance(store, through).await?;
    let Some((cur, _)) = state.cur_periods.get(period).and_then(|p| p.batches.last()) else { return Ok(0) };
    let question = match engine.question(GovernanceView::from(state), cur, Visibility::Everything).await {
        Ok(question) => question,
        Err(e @ finops_attribution::AttributionError::Outdated { .. }) => {
            tracing::warn!(%period, error = %e, "period skipped by the investigation detector");
            return Ok(0);
        }
        Err(e) => return Err(attribution(e)),
    };
    let answer = question
        .attribute(&[Dimension::Day, Dimension::Account, Dimension::Principal, Dimension::Model, Dimension::Workload])
        .await
        .map_err(attribution)?;
    // Attribution names workloads; the detector keys them by id.
    let workloads: BTreeMap<String, Uuid> =
        state.workloads().into_iter().rev().map(|w| (w.name.clone(), w.workload_id)).collect();
    let rows: Vec<DailySpend> = answer
        .rows
        .iter()
        .filter_map(|r| {
            let [day, account, principal, model, workload] = r.keys.as_slice() else { return None };
            Some(DailySpend {
                day: NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?,
                account: account.clone(),
                principal: principal.clone(),
                model: model.clone(),
                workload_id: workloads.get(workload).copied(),
                cents: r.cost_cents,
            })
        })
        .collect();
    let accounts = accounts_with_requests(state);
    // Hours first: where they fire, their evidence is the more precise.
    let mut firings = cur_hour_firings(engine, settings, state, &question, &accounts).await?;
    firings.extend(detect(&rows, &accounts, settings));
    let opened = open(store, batch, through, firings, investigations).await?;
    if opened > 0 {
        tracing::info!(%period, opened, "investigations opened");
    }
    Ok(opened)
}

/// What an hourly CUR export's hours fire where the invocation logs do not speak (issue
/// 13.2): the batch's AI usage per hour, charged the way the logs' is, judged on the
/// accounts and days no log file covers (the logs judged those as they landed). A daily
/// export has no hours to judge: its lines all start at midnight.
async fn cur_hour_firings(
    engine: &AttributionEngine,
    settings: &DetectorSettings,
    state: &GovernanceState,
    question: &finops_attribution::Question,
    accounts: &BTreeSet<String>,
) -> Result<Vec<Firing>, ProcessError> {
    let attribution = |e: finops_attribution::AttributionError| ProcessError::Attribution(e.to_string());
    let hours = question.cur_hours().await.map_err(attribution)?;
    let (Some(first), Some(last)) = (hours.rows.first(), hours.rows.last()) else { return Ok(vec![]) };
    if !hours.hourly {
        return Ok(vec![]);
    }
    let until = last.hour + chrono::Duration::hours(1);
    let locations = usage_locations(state, None, first.hour, Some(until));
    let logs = engine.log_hours(&locations, first.hour, Some(until)).await.map_err(attribution)?;
    let covered: BTreeSet<(String, NaiveDate)> = logs.into_iter().map(|h| (h.account, h.hour.date_naive())).collect();
    let rows = hourly_spend(charged(state, &hours.rows));
    let judged = |account: &str, day: NaiveDate| !covered.contains(&(account.to_owned(), day));
    Ok(detect_hourly_where(&rows, accounts, settings, &judged))
}

/// Charged hours in the detector's terms, in whole cents.
fn hourly_spend(charged: Vec<ChargedHour>) -> Vec<HourlySpend> {
    charged
        .into_iter()
        .map(|h| HourlySpend {
            hour: h.hour,
            account: h.account,
            principal: h.principal,
            model: h.model,
            workload_id: h.workload_id,
            cents: micro_usd_cents(h.micro_usd),
        })
        .collect()
}

/// What the detector reads from the log: the governance state through the event it reacts
/// to, and the investigations as they stand now. Kept between its reactions, so each reads
/// only the events it has not seen (folded afresh, a detector reacting to every page of
/// invocation logs read the whole log again each time).
#[derive(Debug, Clone, Default)]
pub struct DetectorFold {
    state: StateFold,
    investigations: BTreeMap<Uuid, Investigation>,
    seen: Position,
}

impl DetectorFold {
    /// Folds the state through `through`, and the investigations to the head.
    async fn advance(
        &mut self,
        store: &Arc<dyn EventStore>,
        through: Position,
    ) -> Result<(&GovernanceState, &BTreeMap<Uuid, Investigation>), ProcessError> {
        if through < self.state.position() {
            // A re-run from an earlier checkpoint: everything is folded again from the start.
            *self = Self::default();
        }
        self.state.through(store.as_ref(), through).await?;
        let investigations = &mut self.investigations;
        let seen = each_event_between(store.as_ref(), self.seen, None, |event| {
            let Some(id) = event.stream_id.as_str().strip_prefix(streams::INVESTIGATION) else { return Ok(()) };
            let id = Uuid::parse_str(id).map_err(|e| GovernanceError::Undecodable {
                stream: event.stream_id.to_string(),
                event_id: event.event_id,
                event_type: event.event_type.clone(),
                reason: e.to_string(),
            })?;
            let current = investigations.remove(&id).unwrap_or_default();
            investigations.insert(id, current.evolve(&decode::<InvestigationEvent>(event)?));
            Ok(())
        })
        .await;
        match seen {
            Ok(seen) => self.seen = seen,
            // Partly folded past `seen`: folded again, events would count twice.
            Err(e) => {
                *self = Self::default();
                return Err(e.into());
            }
        }
        Ok((self.state.state(), &self.investigations))
    }
}

/// The accounts with an approved Business Request.
fn accounts_with_requests(state: &GovernanceState) -> BTreeSet<String> {
    state.requests.values().filter_map(|r| r.approval.as_ref().map(|a| a.review.account.to_string())).collect()
}

/// Opens each firing whose signal and subject has no open investigation (nor one opened by
/// an earlier firing of the same call), on behalf of the detector, with ids derived from
/// `cause` (the event reacted to) and the investigation.
async fn open(
    store: &Arc<dyn EventStore>,
    cause: &RecordedEvent,
    through: Position,
    firings: Vec<Firing>,
    investigations: &BTreeMap<Uuid, Investigation>,
) -> Result<u64, ProcessError> {
    let mut open: BTreeSet<(Signal, String)> = investigations
        .values()
        .filter(|i| matches!(i.status, InvestigationStatus::Open | InvestigationStatus::Investigating))
        .filter_map(|i| i.firing.as_ref().map(|f| (f.signal, f.subject.clone())))
        .collect();
    let handler = CommandHandler::<Investigation>::new(store.clone());
    let mut opened = 0;
    for firing in firings {
        let id = firing.investigation_id();
        if !open.insert((firing.signal, firing.subject.clone())) || investigations.contains_key(&id) {
            continue;
        }
        let context = CommandContext {
            actor_id: DETECTOR_ACTOR.to_owned(),
            actor_role: "process".to_owned(),
            request_id: Uuid::new_v5(&cause.event_id, format!("investigation {id}").as_bytes()),
            rationale: Some(firing.summary.clone()),
            correlation_id: cause.metadata.correlation_id,
            causation_id: Some(cause.event_id),
            fingerprint: None,
        };
        let command = InvestigationCommand::Open { firing, through: through.0, at: cause.metadata.recorded_at };
        handler.execute(&streams::investigation(id), &command, &context).await?;
        opened += 1;
    }
    Ok(opened)
}

/// Opens what the invocation logs' hours fire, as the log stood at the last of `logs`
/// (`InvocationLogIngested` events, in order): the hourly usage of every file recorded
/// through it with hours from the baseline's days before the earliest new hour on, priced,
/// each caller charged to the workload its role's claim holds that day; returns how many
/// investigations it opened.
pub async fn detect_logs(
    store: &Arc<dyn EventStore>,
    engine: &AttributionEngine,
    settings: &DetectorSettings,
    fold: &mut DetectorFold,
    logs: &[RecordedEvent],
) -> Result<u64, ProcessError> {
    let Some(last) = logs.last() else { return Ok(0) };
    let Some(through) = last.position else { return Ok(0) };
    let mut earliest = None;
    for event in logs {
        let LogDayEvent::InvocationLogIngested { file, .. } = decode::<LogDayEvent>(event)?;
        earliest = earliest.min(Some(file.first_hour)).or(Some(file.first_hour));
    }
    let Some(earliest) = earliest else { return Ok(0) };
    let (state, investigations) = fold.advance(store, through).await?;
    // The new hours and the baseline's days before them.
    let since = earliest - chrono::Duration::days(i64::from(settings.baseline_days.max(1)) + 1);
    let usage = engine
        .log_hours(&usage_locations(state, None, since, None), since, None)
        .await
        .map_err(|e| ProcessError::Attribution(e.to_string()))?;
    let rows = hourly_spend(charged(state, &usage));
    let firings = detect_hourly(&rows, &accounts_with_requests(state), settings);
    let opened = open(store, last, through, firings, investigations).await?;
    if opened > 0 {
        tracing::info!(files = logs.len(), opened, "investigations opened from invocation logs");
    }
    Ok(opened)
}

#[cfg(test)]
mod tests {
    use finops_domain::gaps::Decider;
    use finops_eventlog::ExpectedVersion;

    use super::*;

    /// An investigation noted more times than a page of the log holds, so that a read can
    /// fail after the fold has taken some of its notes.
    async fn noted_investigation(store: &Arc<dyn EventStore>, notes: usize) -> (Uuid, Position) {
        let id = Uuid::from_u128(0x1a7e_57ed);
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-20T10:00:00Z").unwrap().to_utc();
        let events = (0..notes).map(|n| {
            let decider = Decider { by: "fl-ana".into(), role: "finops_lead".into(), rationale: String::new(), at };
            let noted = InvestigationEvent::InvestigationNoted { note: format!("note {n}"), decider };
            finops_testkit::recorded_by(&noted, "fl-ana", "finops_lead")
        });
        store.append(&streams::investigation(id), ExpectedVersion::NoStream, events.collect()).await.unwrap();
        (id, store.seal_committed().await.unwrap().position)
    }

    /// A kept fold whose read failed midway folds, when asked again, what a fresh fold
    /// does: the investigations are not a set, so a page folded twice would note twice.
    #[tokio::test]
    async fn a_detector_fold_that_failed_midway_folds_each_event_once_when_asked_again() {
        let store =
            finops_eventlog::open(&finops_testkit::fresh_sqlite_url(), finops_governance::upcasters()).await.unwrap();
        let (id, head) = noted_investigation(&store, 2_500).await;
        let counted = finops_testkit::CountedStore::new(store.clone());
        let failing_store: Arc<dyn EventStore> = counted.clone();
        let mut fresh = DetectorFold::default();
        let (_, want) = fresh.advance(&store, head).await.unwrap();
        assert_eq!(want[&id].notes.len(), 2_500);
        let want = want.clone();
        // Each read of the two folds (the state's, then the investigations') fails in turn.
        for failing in 1..=4 {
            let mut kept = DetectorFold::default();
            counted.fail_read_all(failing);
            let failed = kept.advance(&failing_store, head).await.is_err();
            let (_, got) = kept.advance(&failing_store, head).await.unwrap();
            assert_eq!(got[&id].notes.len(), 2_500, "read {failing} failed (surfaced: {failed})");
            assert!(*got == want, "read {failing} failed: the fold asked again is the fresh fold's");
        }
    }
}
