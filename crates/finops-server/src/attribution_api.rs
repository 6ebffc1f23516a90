//! `finops.v1.AttributionService`: attribution, chargeback and exports of a billing period,
//! now or as of a past instant (DOMAIN.md §6).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Months, NaiveDate, NaiveTime, Utc};
use finops_attribution::export::ExportFormat;
use finops_attribution::hours::charged;
use finops_attribution::invocation_usage::{micro_usd_cents, usage_locations};
use finops_attribution::{AttributionEngine, Dimension, Question, RolePatterns, Visibility};
use finops_domain::cur_batches::billing_period_start;
use finops_domain::reconciliation::{Tolerance, reconcile};
use finops_governance::timeline::GovernanceTimeline;
use finops_proto::v1 as pb;
use finops_proto::v1::attribution_service_server::AttributionService;
use object_store::ObjectStore;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::auth::{Authenticator, Principal, Role};
use crate::kept_tables::KeptTables;
use crate::status::{from_attribution, from_governance};
use crate::wire::{self, Fields};

/// Serves attribution.
#[derive(Clone)]
pub struct AttributionApi {
    timeline: Arc<GovernanceTimeline>,
    tables: Arc<KeptTables>,
    engine: AttributionEngine,
    auth: Arc<Authenticator>,
}

/// A `YYYY-MM` billing period.
fn period(fields: &mut Fields, text: &str) -> String {
    let t = text.trim();
    if !finops_domain::cur_batches::is_billing_period(t) {
        fields.add("period", format!("`{t}` is not a billing period YYYY-MM"));
    }
    t.to_owned()
}

fn visibility(principal: &Principal) -> Result<Visibility, Status> {
    if principal.role.sees_everything() {
        return Ok(Visibility::Everything);
    }
    principal.require(
        &[Role::ProductOwner, Role::PortfolioOwner, Role::FinopsLead, Role::Finance, Role::Auditor],
        "read attribution",
    )?;
    Ok(match principal.role {
        Role::PortfolioOwner => Visibility::OwnPortfolios(principal.subject.clone()),
        _ => Visibility::OwnWorkloads(principal.subject.clone()),
    })
}

impl AttributionApi {
    /// Serves `store`'s governance state over the batches in `objects`.
    pub fn new(
        timeline: Arc<GovernanceTimeline>,
        tables: Arc<KeptTables>,
        objects: Arc<dyn ObjectStore>,
        patterns: RolePatterns,
        auth: Arc<Authenticator>,
    ) -> Self {
        Self { timeline, tables, engine: AttributionEngine::new(objects, patterns), auth }
    }

    /// Authenticates and authorises, checks period and as_of (with whatever `extra` checks
    /// the RPC's own fields, so that every bad field is named at once), and prepares the
    /// question.
    async fn question<T>(
        &self,
        request: &Request<T>,
        period_text: &str,
        as_of_text: &str,
        reads: Reads,
        extra: impl FnOnce(&mut Fields),
    ) -> Result<(Question, DateTime<Utc>), Status> {
        self.prepared(request, period_text, as_of_text, reads, extra).await.map(|p| (p.question, p.instant))
    }

    /// [`Self::question`], with the governance state it was judged by and the caller's
    /// visibility.
    async fn prepared<T>(
        &self,
        request: &Request<T>,
        period_text: &str,
        as_of_text: &str,
        reads: Reads,
        extra: impl FnOnce(&mut Fields),
    ) -> Result<Prepared, Status> {
        let principal = self.auth.principal(request)?;
        let visibility = visibility(&principal)?;
        let mut fields = Fields::default();
        let period = period(&mut fields, period_text);
        let as_of = wire::as_of(&mut fields, as_of_text);
        extra(&mut fields);
        fields.finish()?;
        // "Now" is pinned to one instant so the state and the batch agree.
        let instant = as_of.unwrap_or_else(Utc::now);
        let (state, key) = self.timeline.keyed_state_as_of(Some(instant)).await.map_err(from_governance)?;
        let batch = AttributionEngine::batch_at(&state, &period, Some(instant)).map_err(from_attribution)?;
        let governance = match reads {
            Reads::WhatTheMonthMeets => self.tables.kept_or_state(&state, &key),
            Reads::EveryWorkload => self.tables.of(&state, key).await.into(),
        };
        let question = self.engine.question(governance, batch, visibility.clone()).await.map_err(from_attribution)?;
        Ok(Prepared { question, instant, state, visibility })
    }
}

/// What an RPC's answer reads of the governance state, and so what its question is judged
/// by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reads {
    /// Only the rows the month's callers meet and the workloads they charge (attribution,
    /// unbacked workloads, exports): the state itself when no tables are kept for it.
    WhatTheMonthMeets,
    /// Every workload (the chargeback's budgets, the gaps' owners): the state's tables,
    /// kept, amended or built.
    EveryWorkload,
}

/// A question ready to answer, and what it was prepared from.
struct Prepared {
    question: Question,
    instant: DateTime<Utc>,
    state: finops_domain::governance_state::GovernanceState,
    visibility: Visibility,
}

#[tonic::async_trait]
impl AttributionService for AttributionApi {
    async fn attribute(
        &self,
        request: Request<pb::AttributeRequest>,
    ) -> Result<Response<pb::AttributeResponse>, Status> {
        let b = request.get_ref();
        let mut group_by: Vec<Dimension> = vec![];
        let (question, instant) = self
            .question(&request, &b.period, &b.as_of, Reads::WhatTheMonthMeets, |fields| {
                group_by = b
                    .group_by
                    .iter()
                    .filter_map(|d| fields.check("group_by", d.parse::<Dimension>().map_err(|e| e.to_string())))
                    .collect();
            })
            .await?;
        let answer = question.attribute(&group_by).await.map_err(from_attribution)?;
        let unbacked = question.unbacked().await.map_err(from_attribution)?;
        Ok(Response::new(pb::AttributeResponse {
            total_cents: answer.total_cents,
            period: answer.period,
            batch_hash: answer.batch_hash,
            group_by: group_by.iter().map(|d| d.as_str().to_owned()).collect(),
            rows: answer
                .rows
                .into_iter()
                .map(|r| pb::AttributionRow {
                    keys: r.keys,
                    cost_cents: r.cost_cents,
                    tokens: r.tokens,
                    lines: r.lines,
                })
                .collect(),
            as_of: instant.to_rfc3339(),
            unbacked_workloads: unbacked
                .into_iter()
                .map(|u| pb::UnbackedWorkload {
                    workload_id: u.workload_id,
                    workload: u.workload,
                    owner: u.owner,
                    spend_cents: u.spend_cents,
                    estimate: u.estimate,
                })
                .collect(),
        }))
    }

    async fn chargeback(
        &self,
        request: Request<pb::ChargebackRequest>,
    ) -> Result<Response<pb::ChargebackResponse>, Status> {
        let b = request.get_ref();
        let (question, instant) = self.question(&request, &b.period, &b.as_of, Reads::EveryWorkload, |_| {}).await?;
        let s = question.chargeback().await.map_err(from_attribution)?;
        Ok(Response::new(pb::ChargebackResponse {
            period: s.period,
            batch_hash: s.batch_hash,
            charges: s
                .charges
                .iter()
                .map(|c| pb::BudgetCharge {
                    budget_id: if c.budget_id.is_nil() { String::new() } else { c.budget_id.to_string() },
                    budget: c.budget.clone(),
                    cost_centre: c.cost_centre.clone(),
                    account_id: c.account.clone(),
                    ai_budget: c.ai_budget,
                    claimed_cents: c.claimed_cents,
                    shared_cents: c.shared_cents,
                    total_cents: c.total_cents(),
                })
                .collect(),
            total_cents: s.total_cents,
            absorbed_by_non_ai_cents: s.absorbed_by_non_ai_cents,
            as_of: instant.to_rfc3339(),
        }))
    }

    async fn reconcile(
        &self,
        request: Request<pb::ReconcileRequest>,
    ) -> Result<Response<pb::ReconcileResponse>, Status> {
        let b = request.get_ref();
        let defaults = Tolerance::default();
        let tolerance = Tolerance {
            percent: if b.tolerance_percent == 0 { defaults.percent } else { b.tolerance_percent },
            floor_cents: if b.tolerance_floor_cents == 0 { defaults.floor_cents } else { b.tolerance_floor_cents },
        };
        let p = self
            .prepared(&request, &b.period, &b.as_of, Reads::EveryWorkload, |fields| {
                if b.tolerance_floor_cents < 0 {
                    fields.add("tolerance_floor_cents", "is negative");
                }
            })
            .await?;
        // What CUR billed each workload and day (only what the caller may see).
        let billed_rows =
            p.question.attribute(&[Dimension::Workload, Dimension::Day]).await.map_err(from_attribution)?;
        let workloads: Vec<_> =
            p.state.workloads().into_iter().filter(|w| p.visibility.shows(&p.state.organisation, w)).collect();
        let by_name: BTreeMap<&str, Uuid> = workloads.iter().map(|w| (w.name.as_str(), w.workload_id)).collect();
        let mut billed: BTreeMap<(String, NaiveDate), i64> = BTreeMap::new();
        for row in &billed_rows.rows {
            let [workload, day] = row.keys.as_slice() else { continue };
            let (Some(id), Ok(day)) = (by_name.get(workload.as_str()), NaiveDate::parse_from_str(day, "%Y-%m-%d"))
            else {
                continue;
            };
            *billed.entry((id.to_string(), day)).or_default() += row.cost_cents;
        }
        // The logs' estimate of the same, over the files recorded by then.
        let start = billing_period_start(b.period.trim()).unwrap_or_default();
        let (since, until) = (start.and_time(NaiveTime::MIN).and_utc(), start + Months::new(1));
        let until = until.and_time(NaiveTime::MIN).and_utc();
        let locations = usage_locations(&p.state, Some(p.instant), since, Some(until));
        let usage = self.engine.log_hours(&locations, since, Some(until)).await.map_err(from_attribution)?;
        let covered: BTreeSet<NaiveDate> = usage.iter().map(|u| u.hour.date_naive()).collect();
        let mut micro: BTreeMap<(String, NaiveDate), u64> = BTreeMap::new();
        for hour in charged(&p.state, &usage) {
            if let Some(id) = hour.workload_id.filter(|id| workloads.iter().any(|w| w.workload_id == *id)) {
                *micro.entry((id.to_string(), hour.hour.date_naive())).or_default() += hour.micro_usd;
            }
        }
        let estimated = micro.into_iter().map(|(k, m)| (k, micro_usd_cents(m))).collect();
        // Only the days the logs cover: a day without logs is not a difference.
        billed.retain(|(_, day), _| covered.contains(day));
        let days = reconcile(&estimated, &billed, tolerance);
        let names: BTreeMap<String, &str> =
            workloads.iter().map(|w| (w.workload_id.to_string(), w.name.as_str())).collect();
        Ok(Response::new(pb::ReconcileResponse {
            period: p.question.period().to_owned(),
            batch_hash: p.question.batch().hash.clone(),
            as_of: p.instant.to_rfc3339(),
            flagged: days.iter().filter(|d| d.flagged).count() as i64,
            days: days
                .iter()
                .map(|d| pb::ReconciledDay {
                    workload: names.get(&d.subject).copied().unwrap_or_default().to_owned(),
                    workload_id: d.subject.clone(),
                    day: d.day.to_string(),
                    estimated_cents: d.estimated_cents,
                    billed_cents: d.billed_cents,
                    difference_cents: d.difference_cents,
                    flagged: d.flagged,
                })
                .collect(),
            tolerance_percent: tolerance.percent,
            tolerance_floor_cents: tolerance.floor_cents,
            log_files: locations.len() as i64,
        }))
    }

    async fn export(&self, request: Request<pb::ExportRequest>) -> Result<Response<pb::ExportResponse>, Status> {
        let b = request.get_ref();
        let format = match pb::ExportFormat::try_from(b.format) {
            Ok(pb::ExportFormat::Csv) => Some(ExportFormat::Csv),
            Ok(pb::ExportFormat::Parquet) => Some(ExportFormat::Parquet),
            Ok(pb::ExportFormat::Focus) => Some(ExportFormat::Focus),
            _ => None,
        };
        let (question, _) = self
            .question(&request, &b.period, &b.as_of, Reads::WhatTheMonthMeets, |fields| {
                if format.is_none() {
                    fields
                        .add("format", "is required: EXPORT_FORMAT_CSV, EXPORT_FORMAT_PARQUET or EXPORT_FORMAT_FOCUS");
                }
            })
            .await?;
        let format = format.expect("checked with the other fields");
        let (content, rows) = question.export(format).await.map_err(from_attribution)?;
        Ok(Response::new(pb::ExportResponse {
            file_name: format!("attribution-{}.{}", question.period(), format.extension()),
            content,
            rows,
        }))
    }
}
