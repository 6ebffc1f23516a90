//! `finops.v1.MaturityService`: the AI Governance Maturity score (DOMAIN.md §10, issue 12
//! item 4). The figures are read as the log and CUR stood at an instant — spend from the
//! period's classification, claims and estimates from the governance state, the governed
//! path's speed from the request queue, tasks from the task queue — and scored by
//! `finops_domain::maturity`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use finops_attribution::{AttributionEngine, GovernanceTables, Visibility};
use finops_domain::governance_state::GovernanceState;
use finops_domain::maturity::{MaturityFigures, MaturityScore, score};
use finops_eventlog::EventStore;
use finops_governance::timeline::GovernanceTimeline;
use finops_projections::{ReadModelsAsOf, RequestQueue, TaskQueue};
use finops_proto::v1 as pb;
use finops_proto::v1::maturity_service_server::MaturityService;
use tonic::{Request, Response, Status};

use crate::auth::{Authenticator, Role};
use crate::kept_tables::KeptTables;
use crate::status::from_governance;
use crate::wire::{self, Fields};

/// The periods a trend shows, at most.
const TREND: usize = 6;

/// Serves the maturity score.
#[derive(Clone)]
pub struct MaturityApi {
    store: Arc<dyn EventStore>,
    timeline: Arc<GovernanceTimeline>,
    tables: Arc<KeptTables>,
    engine: AttributionEngine,
    auth: Arc<Authenticator>,
    sla_business_days: u32,
}

impl MaturityApi {
    /// Scores `store`'s organisation, reading CUR through `engine`.
    pub fn new(
        store: Arc<dyn EventStore>,
        timeline: Arc<GovernanceTimeline>,
        tables: Arc<KeptTables>,
        engine: AttributionEngine,
        auth: Arc<Authenticator>,
        sla_business_days: u32,
    ) -> Self {
        Self { store, timeline, tables, engine, auth, sla_business_days }
    }

    /// Every figure of `period` as of `instant`.
    async fn figures(
        &self,
        state: &GovernanceState,
        tables: &Arc<GovernanceTables>,
        queues: &ReadModelsAsOf,
        period: &str,
        instant: DateTime<Utc>,
    ) -> Result<MaturityFigures, Status> {
        let attribution = |e: finops_attribution::AttributionError| crate::status::from_attribution(e);
        let batch = AttributionEngine::batch_at(state, period, Some(instant)).map_err(attribution)?;
        let question =
            self.engine.question(tables.clone(), batch, Visibility::Everything).await.map_err(attribution)?;
        let mut f = question.maturity_spend().await.map_err(attribution)?;
        let start = finops_domain::cur_batches::billing_period_start(period).expect("an ingested period");
        let end = start.checked_add_months(chrono::Months::new(1)).and_then(|d| d.pred_opt()).unwrap_or(start);
        // Workloads claimed during the period, each with its first claim day.
        let mut first_claim: BTreeMap<uuid::Uuid, NaiveDate> = BTreeMap::new();
        for span in state.claim_spans() {
            if span.from <= end && span.until.is_none_or(|u| u >= start) {
                let day = first_claim.entry(span.workload_id).or_insert(span.from);
                *day = (*day).min(span.from);
            }
        }
        let workloads = state.workloads();
        let claimed: Vec<_> = workloads.iter().filter(|w| first_claim.contains_key(&w.workload_id)).collect();
        f.claimed_workloads = claimed.len() as u32;
        // An estimate the Product Owner stated, or the FA Confirmed Estimate of the approval:
        // whichever the workload's cards and forecast are measured against.
        let has_estimate =
            |w: &uuid::Uuid| state.plans.get(w).is_some_and(|p| p.estimate.is_some()) || state.card_plan(*w).is_some();
        f.with_estimate = claimed.iter().filter(|w| has_estimate(&w.workload_id)).count() as u32;
        f.workload_without_estimate = claimed.iter().find(|w| !has_estimate(&w.workload_id)).map(|w| w.name.clone());
        // Submitted → claimed, in days, for the workloads claimed in the period.
        let submitted: BTreeMap<String, NaiveDate> = queues
            .all(RequestQueue::NAME)
            .map_err(wire::read_model_status)?
            .values()
            .filter_map(|d| {
                let at = DateTime::parse_from_rfc3339(&d.get::<String>("submitted_at")?).ok()?;
                Some((d.get::<String>("workload_id").unwrap_or_default(), at.date_naive()))
            })
            .collect();
        let days: Vec<f64> = claimed
            .iter()
            .filter_map(|w| {
                let from = submitted.get(&w.workload_id.to_string())?;
                Some((first_claim[&w.workload_id] - *from).num_days().max(0) as f64)
            })
            .collect();
        f.avg_end_to_end_days = (!days.is_empty()).then(|| days.iter().sum::<f64>() / days.len() as f64);
        // Tasks in flight at the instant, and those past their SLA then.
        for doc in queues.all(TaskQueue::NAME).map_err(wire::read_model_status)?.values() {
            if doc.get::<String>("implemented_at").is_some_and(|at| !at.is_empty()) {
                continue;
            }
            f.tasks_in_flight += 1;
            let created = doc.get::<String>("created_at").unwrap_or_default();
            let overdue = DateTime::parse_from_rfc3339(&created).is_ok_and(|c| {
                instant > finops_domain::tasks::add_business_days(c.with_timezone(&Utc), self.sla_business_days)
            });
            f.tasks_overdue += u32::from(overdue);
        }
        Ok(f)
    }
}

fn to_wire(period: &str, instant: DateTime<Utc>, s: &MaturityScore, trend: Vec<pb::MaturityPoint>) -> pb::Maturity {
    pb::Maturity {
        period: period.to_owned(),
        as_of: instant.to_rfc3339(),
        overall: s.overall,
        tier: s.tier.as_str().to_owned(),
        dimensions: s
            .dimensions
            .iter()
            .map(|d| pb::MaturityDimension {
                name: d.dimension.as_str().to_owned(),
                weight_percent: d.dimension.weight_percent(),
                score: d.score,
                tier: d.tier.as_str().to_owned(),
                figures: d.figures.clone(),
                next_move: d.next_move.clone(),
                worth_cents: d.worth_cents,
                worth_points: d.worth_points,
            })
            .collect(),
        trend,
    }
}

#[tonic::async_trait]
impl MaturityService for MaturityApi {
    #[tracing::instrument(skip_all)]
    async fn get_maturity(&self, request: Request<pb::GetMaturityRequest>) -> Result<Response<pb::Maturity>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(
            &[Role::FinopsLead, Role::Finance, Role::Auditor, Role::PortfolioOwner],
            "read the governance maturity score",
        )?;
        let body = request.into_inner();
        let mut fields = Fields::default();
        let as_of = wire::as_of(&mut fields, &body.as_of);
        let period = body.period.trim().to_owned();
        if !period.is_empty() && !finops_domain::cur_batches::is_billing_period(&period) {
            fields.add("period", format!("`{period}` is not a billing period (YYYY-MM)"));
        }
        fields.finish()?;
        let instant = as_of.unwrap_or_else(Utc::now);
        let (state, key) = self.timeline.keyed_state_as_of(Some(instant)).await.map_err(from_governance)?;
        let ingested: BTreeSet<String> = state.periods_with_cur(instant).into_iter().map(str::to_owned).collect();
        let period = if period.is_empty() {
            ingested.last().cloned().ok_or_else(|| {
                Status::failed_precondition(format!("no CUR ingested as of {}: nothing to score", instant.to_rfc3339()))
            })?
        } else {
            period
        };
        let queues = ReadModelsAsOf::fold(self.store.as_ref(), &[Arc::new(RequestQueue), Arc::new(TaskQueue)], instant)
            .await
            .map_err(wire::read_model_status)?;
        let tables = self.tables.of(&state, key).await;
        let current = score(&self.figures(&state, &tables, &queues, &period, instant).await?);
        let mut trend = Vec::new();
        let earlier: Vec<&String> = ingested.iter().filter(|p| **p < period).collect();
        for p in earlier.iter().rev().take(TREND - 1).rev() {
            let s = score(&self.figures(&state, &tables, &queues, p, instant).await?);
            trend.push(pb::MaturityPoint {
                period: (*p).clone(),
                overall: s.overall,
                tier: s.tier.as_str().to_owned(),
            });
        }
        trend.push(pb::MaturityPoint {
            period: period.clone(),
            overall: current.overall,
            tier: current.tier.as_str().to_owned(),
        });
        Ok(Response::new(to_wire(&period, instant, &current, trend)))
    }
}
