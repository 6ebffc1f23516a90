//! The card issuer (issue 12, DOMAIN.md §8): follows the log and, whenever something that
//! decides a card's figures is recorded — a CUR batch ingested or restated, a claim, an
//! approval or scope, a workload's estimate, a gateway rule — issues the Weekly Spend
//! Card of every workload and ISO week whose every day CUR covers, from the batches
//! current for those days, as the log stood at the triggering event. A card whose figures
//! changed gets a new version naming what changed (which batches, the amounts); one whose
//! figures are the same is left alone. A new version of a card in an approved roll-up
//! reopens the roll-up.
//!
//! Deterministic and idempotent like the gap detector: an evaluation reads the governance
//! state through the trigger's position; each version's command id derives from the card
//! and the figures and batches it states, so a crash and a re-run write nothing twice.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use chrono::{Datelike, NaiveDate};
use finops_attribution::{AttributionEngine, GovernanceView, Visibility, allocate_cents};
use finops_domain::cur_batches::CurBatch;
use finops_domain::spend_cards::proration::MonthlyPlan;
use finops_domain::spend_cards::{
    CardCommand, CardFigures, CardLine, PortfolioRollup, RollupCommand, SpendCard, TokenType, card_id, rollup_id,
};
use finops_eventlog::{AllRead, EventStore, Position, RecordedEvent};
use finops_governance::state::StateFold;
use finops_governance::{CommandContext, CommandHandler, GovernanceError, streams};
use finops_projections::ReadModels;
use uuid::Uuid;

use crate::ProcessError;

/// Events read per round.
const PAGE: usize = 500;

/// The actor cards are issued as.
pub const CARD_ISSUER_ACTOR: &str = "card-issuer";

/// Issues Weekly Spend Cards as the log moves.
#[derive(Clone)]
pub struct CardIssuer {
    store: Arc<dyn EventStore>,
    checkpoints: ReadModels,
    engine: AttributionEngine,
    threshold_percent: u32,
    failures: Arc<AtomicU64>,
    /// The governance state its rounds have folded so far, shared by its clones.
    fold: Arc<tokio::sync::Mutex<StateFold>>,
}

impl CardIssuer {
    /// The checkpoint's key.
    pub const NAME: &'static str = "card_issuer";

    /// An issuer over `store`, flagging variance over `threshold_percent` of the estimate.
    pub fn new(
        store: Arc<dyn EventStore>,
        checkpoints: ReadModels,
        engine: AttributionEngine,
        threshold_percent: u32,
    ) -> Self {
        let (failures, fold) = (Arc::new(AtomicU64::new(0)), Default::default());
        Self { store, checkpoints, engine, threshold_percent, failures, fold }
    }

    /// Handles every sealed event after the checkpoint: one issue, at the last trigger up
    /// to the head — a card states the newest figures, so catching up does not issue a
    /// version for every intermediate state of the log. Returns how many card versions
    /// were issued.
    pub async fn run_once(&self) -> Result<u64, ProcessError> {
        let from = self.checkpoints.process_checkpoint(Self::NAME).await?;
        let (mut after, mut trigger) = (Position(from), None);
        loop {
            let page = self.store.read_all(AllRead::forwards_after(after, PAGE)).await?;
            let Some(last) = page.last().and_then(|e| e.position) else { break };
            after = last;
            // What moves a card's figures is what moves a gap's: the same triggers.
            if let Some(t) = page.iter().rev().find(|e| crate::gaps::triggers_evaluation(e)) {
                trigger = Some(t.clone());
            }
        }
        let issued = match &trigger {
            Some(t) => {
                let mut fold = self.fold.lock().await;
                issue_cards(&self.store, &self.engine, &mut fold, t, self.threshold_percent).await?
            }
            None => 0,
        };
        if after.0 > from {
            self.checkpoints.advance_process(Self::NAME, from, after.0).await?;
        }
        Ok(issued)
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

/// A card line's identity within its week.
type LineKey = (String, String, String, bool);

/// The Monday of `day`'s ISO week.
fn monday_of(day: NaiveDate) -> NaiveDate {
    day - chrono::Duration::days(i64::from(day.weekday().num_days_from_monday()))
}

fn token_type(text: &str) -> TokenType {
    match text {
        "input" => TokenType::Input,
        "output" => TokenType::Output,
        "cache_read" => TokenType::CacheRead,
        "cache_write" => TokenType::CacheWrite,
        _ => TokenType::Other,
    }
}

/// One card to issue: its figures and the CUR batches they were read from.
#[derive(Debug, Clone, PartialEq)]
pub struct CardToIssue {
    /// The week's figures for the workload.
    pub figures: CardFigures,
    /// The content hashes of the batches current for the week's days.
    pub batches: Vec<String>,
}

/// The figures of every card due: for each ISO week every day of which the current batch of
/// its period covers, each workload with spend that week or claimed during it — read from
/// `batches` (the current batch of each period) as judged by `view`, each week's estimate
/// from `plan` (the workload's monthly plan), variance flagged over `threshold_percent`.
/// Pure over its inputs: the same log and CUR give the same cards.
pub async fn card_figures(
    engine: &AttributionEngine,
    view: &GovernanceView,
    batches: &[&CurBatch],
    plan: impl Fn(Uuid) -> Option<MonthlyPlan>,
    threshold_percent: u32,
) -> Result<Vec<CardToIssue>, ProcessError> {
    // Per period: the batch current then and the last day it covers; per workload and
    // week: the spend by line, exact.
    let mut covered: BTreeMap<NaiveDate, (NaiveDate, String)> = BTreeMap::new();
    let mut weeks: BTreeMap<(Uuid, NaiveDate), BTreeMap<LineKey, (i128, f64)>> = BTreeMap::new();
    // Per workload and day, in cents: the month to date a card's forecast reads.
    let mut daily: BTreeMap<Uuid, Vec<(NaiveDate, i64)>> = BTreeMap::new();
    for batch in batches {
        let Some(start) = finops_domain::cur_batches::billing_period_start(&batch.period) else { continue };
        let question = match engine.question(view.clone(), batch, Visibility::Everything).await {
            Ok(question) => question,
            // A batch in an earlier columnar layout waits for its re-ingest (as the gaps do).
            Err(e @ finops_attribution::AttributionError::Outdated { .. }) => {
                tracing::warn!(period = %batch.period, error = %e, "period skipped by the card issuer");
                continue;
            }
            Err(e) => return Err(ProcessError::Attribution(e.to_string())),
        };
        let attribution = |e: finops_attribution::AttributionError| ProcessError::Attribution(e.to_string());
        let Some(last) = question.covered_through().await.map_err(attribution)? else { continue };
        covered.insert(start, (last, batch.hash.clone()));
        let lines = question.workload_day_lines().await.map_err(attribution)?;
        for (workload, days) in finops_attribution::cards::daily_cents(&lines) {
            if let Ok(workload) = Uuid::parse_str(workload) {
                daily.entry(workload).or_default().extend(days);
            }
        }
        for line in lines {
            let Ok(workload) = Uuid::parse_str(&line.workload_id) else { continue };
            let key = (line.model, line.token_type, line.region, line.out_of_scope);
            let sums = weeks.entry((workload, monday_of(line.day))).or_default().entry(key).or_default();
            sums.0 += line.raw_cost;
            sums.1 += line.tokens;
        }
    }
    // A week is complete when the batch of each of its days' periods covers that day.
    let covering = |day: NaiveDate| {
        let first = day.with_day(1).expect("a first day");
        covered.get(&first).filter(|(last, _)| *last >= day).map(|(_, hash)| hash.clone())
    };
    let mut complete: BTreeMap<NaiveDate, Vec<String>> = BTreeMap::new();
    for (start, (last, _)) in &covered {
        let mut monday = monday_of(*start);
        while monday <= *last {
            let batches: Option<BTreeSet<String>> =
                (0..7).map(|d| covering(monday + chrono::Duration::days(d))).collect();
            if let Some(batches) = batches {
                complete.insert(monday, batches.into_iter().collect());
            }
            monday += chrono::Duration::days(7);
        }
    }
    let mut due = Vec::new();
    for (monday, batches) in complete {
        let sunday = monday + chrono::Duration::days(6);
        for workload in &view.workloads {
            let spend = weeks.remove(&(workload.workload_id, monday)).unwrap_or_default();
            let claimed = view.claims.iter().any(|c| {
                c.workload_id == workload.workload_id && c.from <= sunday && c.until.is_none_or(|u| u >= monday)
            });
            if spend.is_empty() && !claimed {
                continue;
            }
            let (keys, sums): (Vec<LineKey>, Vec<(i128, f64)>) = spend.into_iter().unzip();
            let (cents, _) = allocate_cents(&sums.iter().map(|s| s.0).collect::<Vec<_>>());
            let mut lines: Vec<CardLine> = keys
                .into_iter()
                .zip(sums.iter().zip(cents))
                .map(|((model, token, region, out_of_scope), ((_, tokens), cents))| CardLine {
                    model,
                    token_type: token_type(&token),
                    region,
                    tokens: tokens.max(0.0).round() as u64,
                    cents,
                    out_of_scope,
                })
                .collect();
            lines.sort_by_key(CardLine::key);
            let monthly = plan(workload.workload_id);
            let estimate = monthly.map_or(0, |plan| plan.week_cents(monday));
            let days = daily.get(&workload.workload_id).map(Vec::as_slice).unwrap_or_default();
            let month_estimate = monthly.map_or(0, |plan| plan.month_cents(sunday)) as i64;
            let forecast = finops_domain::spend_cards::forecast::forecast(days, month_estimate, sunday);
            let figures = CardFigures {
                workload_id: workload.workload_id,
                portfolio_id: workload.portfolio_id,
                week: monday,
                lines,
                estimate_cents: estimate as i64,
                threshold_percent,
                forecast: Some(forecast),
            };
            due.push(CardToIssue { figures, batches: batches.clone() });
        }
    }
    Ok(due)
}

/// Issues every complete week's cards as the log stood at `trigger`; returns how many
/// versions it recorded.
pub async fn issue_cards(
    store: &Arc<dyn EventStore>,
    engine: &AttributionEngine,
    fold: &mut StateFold,
    trigger: &RecordedEvent,
    threshold_percent: u32,
) -> Result<u64, ProcessError> {
    let through = trigger.position.ok_or_else(|| {
        ProcessError::Command(GovernanceError::Undecodable {
            stream: trigger.stream_id.to_string(),
            event_id: trigger.event_id,
            event_type: trigger.event_type.clone(),
            reason: "issuing cards needs a sealed event (one with a position)".into(),
        })
    })?;
    let state = fold.through(store.as_ref(), through).await?;
    let view = GovernanceView::from(state);
    let current: Vec<&CurBatch> = state.cur_periods.values().filter_map(|p| p.batches.last().map(|(b, _)| b)).collect();
    let due = card_figures(engine, &view, &current, |w| state.card_plan(w), threshold_percent).await?;
    let cards = CommandHandler::<SpendCard>::new(store.clone());
    let rollups = CommandHandler::<PortfolioRollup>::new(store.clone());
    let mut issued = 0;
    for CardToIssue { figures, batches } in due {
        let (workload, portfolio, monday) = (figures.workload_id, figures.portfolio_id, figures.week);
        let id = card_id(workload, monday);
        let stream = streams::spend_card(id);
        let current = cards.load(&stream).await?.state;
        let Some(reason) = reason_for(&current, &figures, &batches) else { continue };
        let fingerprint = serde_json::to_string(&figures).unwrap_or_default();
        let context = |purpose: String| CommandContext {
            actor_id: CARD_ISSUER_ACTOR.to_owned(),
            actor_role: "process".to_owned(),
            request_id: Uuid::new_v5(&id, purpose.as_bytes()),
            rationale: None,
            correlation_id: trigger.metadata.correlation_id,
            causation_id: Some(trigger.event_id),
            fingerprint: None,
        };
        let command = CardCommand::Issue {
            figures: figures.clone(),
            batches: batches.clone(),
            reason,
            through: through.0,
            at: trigger.metadata.recorded_at,
        };
        let after = cards.execute(&stream, &command, &context(format!("{}|{fingerprint}", batches.join(",")))).await?;
        issued += 1;
        let version = after.state.version();
        if version > 1 {
            let reopen = RollupCommand::Reopen { workload_id: workload, version, at: trigger.metadata.recorded_at };
            let rollup = streams::spend_rollup(rollup_id(portfolio, monday));
            rollups.execute(&rollup, &reopen, &context(format!("reopen v{version}"))).await?;
        }
    }
    if issued > 0 {
        tracing::info!(trigger = %trigger.event_type, position = through.0, issued, "spend cards issued");
    }
    Ok(issued)
}

/// Why a new version (`Some("")` for a first one), or `None` when the figures stand.
fn reason_for(current: &SpendCard, figures: &CardFigures, batches: &[String]) -> Option<String> {
    let Some(last) = current.versions.last() else { return Some(String::new()) };
    if last.figures == *figures {
        return None;
    }
    let money = finops_domain::vocabulary::dollars;
    let mut parts = Vec::new();
    if last.batches != batches {
        parts.push(format!("CUR batches {} → {}", short(&last.batches), short(batches)));
    }
    if last.figures.actual_cents() != figures.actual_cents() {
        parts.push(format!("actual {} → {}", money(last.figures.actual_cents()), money(figures.actual_cents())));
    }
    if last.figures.estimate_cents != figures.estimate_cents {
        parts.push(format!("estimate {} → {}", money(last.figures.estimate_cents), money(figures.estimate_cents)));
    }
    if parts.len() == usize::from(last.batches != batches) {
        parts.push("lines reclassified (a claim, scope or rule changed)".to_owned());
    }
    Some(parts.join("; "))
}

/// Batch hashes, shortened for a person.
fn short(batches: &[String]) -> String {
    batches.iter().map(|b| b.chars().take(12).collect::<String>()).collect::<Vec<_>>().join("+")
}
