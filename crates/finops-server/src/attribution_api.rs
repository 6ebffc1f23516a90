//! `finops.v1.AttributionService`: attribution, chargeback and exports of a billing period,
//! now or as of a past instant (DOMAIN.md §6).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use finops_attribution::export::ExportFormat;
use finops_attribution::{AttributionEngine, Dimension, GovernanceView, Question, RolePatterns, Visibility};
use finops_eventlog::EventStore;
use finops_governance::state::state_as_of;
use finops_proto::v1 as pb;
use finops_proto::v1::attribution_service_server::AttributionService;
use object_store::ObjectStore;
use tonic::{Request, Response, Status};

use crate::auth::{Authenticator, Principal, Role};
use crate::status::{from_attribution, from_governance};
use crate::wire::{self, Fields};

/// Serves attribution.
#[derive(Clone)]
pub struct AttributionApi {
    store: Arc<dyn EventStore>,
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
        store: Arc<dyn EventStore>,
        objects: Arc<dyn ObjectStore>,
        patterns: RolePatterns,
        auth: Arc<Authenticator>,
    ) -> Self {
        Self { store, engine: AttributionEngine::new(objects, patterns), auth }
    }

    /// Authenticates and authorises, checks period and as_of (with whatever `extra` checks
    /// the RPC's own fields, so that every bad field is named at once), and prepares the
    /// question.
    async fn question<T>(
        &self,
        request: &Request<T>,
        period_text: &str,
        as_of_text: &str,
        extra: impl FnOnce(&mut Fields),
    ) -> Result<(Question, DateTime<Utc>), Status> {
        let principal = self.auth.principal(request)?;
        let visibility = visibility(&principal)?;
        let mut fields = Fields::default();
        let period = period(&mut fields, period_text);
        let as_of = wire::as_of(&mut fields, as_of_text);
        extra(&mut fields);
        fields.finish()?;
        // "Now" is pinned to one instant so the state and the batch agree.
        let instant = as_of.unwrap_or_else(Utc::now);
        let state = state_as_of(self.store.as_ref(), Some(instant)).await.map_err(from_governance)?;
        let batch = AttributionEngine::batch_at(&state, &period, Some(instant)).map_err(from_attribution)?;
        let question =
            self.engine.question(GovernanceView::from(&state), batch, visibility).await.map_err(from_attribution)?;
        Ok((question, instant))
    }
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
            .question(&request, &b.period, &b.as_of, |fields| {
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
        let (question, instant) = self.question(&request, &b.period, &b.as_of, |_| {}).await?;
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

    async fn export(&self, request: Request<pb::ExportRequest>) -> Result<Response<pb::ExportResponse>, Status> {
        let b = request.get_ref();
        let format = match pb::ExportFormat::try_from(b.format) {
            Ok(pb::ExportFormat::Csv) => Some(ExportFormat::Csv),
            Ok(pb::ExportFormat::Parquet) => Some(ExportFormat::Parquet),
            Ok(pb::ExportFormat::Focus) => Some(ExportFormat::Focus),
            _ => None,
        };
        let (question, _) = self
            .question(&request, &b.period, &b.as_of, |fields| {
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
