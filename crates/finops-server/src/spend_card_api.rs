//! `finops.v1.SpendCardService`: Weekly Spend Cards and their two-tier sign-off (DOMAIN.md
//! §8, issue 12). Cards are issued by the card issuer process; people accept, dispute,
//! resolve and approve here. Reads answer from the card read models (folded as of an
//! instant when asked); decisions go through the card and roll-up aggregates.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use finops_domain::org::Organisation;
use finops_domain::spend_cards::{
    CardCommand, DisputeOutcome, PortfolioRollup, RollupCard, RollupCommand, SpendCard, iso_week_start, rollup_id,
};
use finops_eventlog::EventStore;
use finops_governance::{CommandHandler, streams};
use finops_projections::{ReadModelView, ReadModels, SpendCardsView, SpendRollupsView};
use finops_proto::v1 as pb;
use finops_proto::v1::spend_card_service_server::SpendCardService;
use serde_json::Value;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::auth::{Authenticator, Principal, Role};
use crate::status::{from_governance, not_found};
use crate::wire::{self, Fields};

/// Who may read roll-ups (a Portfolio Owner only their portfolios').
const ROLLUP_READERS: [Role; 4] = [Role::PortfolioOwner, Role::FinopsLead, Role::Finance, Role::Auditor];

/// Who may read cards at all (each sees only theirs, see [`Sight`]).
const READERS: [Role; 5] = [Role::ProductOwner, Role::PortfolioOwner, Role::FinopsLead, Role::Finance, Role::Auditor];

/// Serves spend cards and roll-ups.
#[derive(Clone)]
pub struct SpendCardApi {
    store: Arc<dyn EventStore>,
    read_models: ReadModels,
    cards: CommandHandler<SpendCard>,
    rollups: CommandHandler<PortfolioRollup>,
    org: CommandHandler<Organisation>,
    auth: Arc<Authenticator>,
}

/// Which cards a caller sees.
enum Sight {
    Everything,
    Workloads(BTreeSet<String>),
    Portfolios(BTreeSet<String>),
}

impl Sight {
    fn sees(&self, doc: &Value) -> bool {
        match self {
            Self::Everything => true,
            Self::Workloads(mine) => mine.contains(&wire::text(doc, "workload_id")),
            Self::Portfolios(mine) => mine.contains(&wire::text(doc, "portfolio_id")),
        }
    }
}

/// `spendCards/{uuid}`
fn card_name(fields: &mut Fields, name: &str) -> Option<Uuid> {
    match name.trim().strip_prefix("spendCards/") {
        Some(id) => wire::uuid(fields, "name", id),
        None => {
            fields.add("name", format!("`{name}` is not a spend card name (spendCards/{{uuid}})"));
            None
        }
    }
}

/// A week: its Monday, YYYY-MM-DD.
fn week(fields: &mut Fields, text: &str) -> Option<NaiveDate> {
    if text.trim().is_empty() {
        fields.add("week", "is required: the Monday the ISO week starts on (YYYY-MM-DD)");
        return None;
    }
    let day = wire::date(fields, "week", text)?;
    fields.check("week", iso_week_start(day))
}

fn texts(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

fn card_to_wire(doc: &Value) -> pb::SpendCard {
    let flagged: BTreeSet<String> = texts(&doc["flagged_lines"]).into_iter().collect();
    let lines = doc["lines"]
        .as_array()
        .map(|ls| {
            ls.iter()
                .map(|l| {
                    let key = format!(
                        "{}/{}/{}",
                        wire::text(l, "model"),
                        wire::text(l, "token_type"),
                        wire::text(l, "region")
                    );
                    pb::SpendCardLine {
                        model: wire::text(l, "model"),
                        token_type: wire::text(l, "token_type"),
                        region: wire::text(l, "region"),
                        tokens: l["tokens"].as_u64().unwrap_or(0),
                        cents: l["cents"].as_i64().unwrap_or(0),
                        out_of_scope: l["out_of_scope"].as_bool().unwrap_or(false),
                        flagged: flagged.contains(&key),
                        key,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let versions = doc["versions"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .map(|v| pb::SpendCardVersion {
                    version: v["version"].as_u64().unwrap_or(0) as u32,
                    issued_at: wire::text(v, "at"),
                    reason: wire::text(v, "reason"),
                    batches: texts(&v["batches"]),
                    actual_cents: v["actual_cents"].as_i64().unwrap_or(0),
                    estimate_cents: v["estimate_cents"].as_i64().unwrap_or(0),
                })
                .collect()
        })
        .unwrap_or_default();
    let outcome = match doc["outcome"].as_str() {
        Some(text) => text.to_owned(),
        None if doc["outcome"].is_object() => "adjusted".to_owned(),
        None => String::new(),
    };
    pb::SpendCard {
        name: wire::text(doc, "name"),
        workload_id: wire::text(doc, "workload_id"),
        portfolio_id: wire::text(doc, "portfolio_id"),
        week: wire::text(doc, "week"),
        version: doc["version"].as_u64().unwrap_or(0) as u32,
        status: wire::text(doc, "status"),
        lines,
        actual_cents: doc["actual_cents"].as_i64().unwrap_or(0),
        estimate_cents: doc["estimate_cents"].as_i64().unwrap_or(0),
        variance_cents: doc["variance_cents"].as_i64().unwrap_or(0),
        variance_basis_points: doc["variance_basis_points"].as_i64().unwrap_or(0),
        variance_flagged: doc["variance_flagged"].as_bool().unwrap_or(false),
        threshold_percent: doc["threshold_percent"].as_u64().unwrap_or(0) as u32,
        disputed_lines: texts(&doc["disputed_lines"]),
        outcome,
        charged_cents: doc["charged_cents"].as_i64().unwrap_or(0),
        versions,
        history: wire::history_from_doc(doc),
        month_to_date_cents: doc["forecast"]["month_to_date_cents"].as_i64().unwrap_or(0),
        month_estimate_cents: doc["forecast"]["estimate_cents"].as_i64().unwrap_or(0),
        burn_per_day_cents: doc["forecast"]["burn_per_day_cents"].as_i64().unwrap_or(0),
        projected_month_cents: doc["forecast"]["projected_month_cents"].as_i64().unwrap_or(0),
        crossing_date: wire::text(&doc["forecast"], "crossing"),
        crossed: doc["forecast"]["crossed"].as_bool().unwrap_or(false),
    }
}

fn rollup_to_wire(doc: &Value) -> pb::SpendRollup {
    pb::SpendRollup {
        name: wire::text(doc, "name"),
        portfolio_id: wire::text(doc, "portfolio_id"),
        week: wire::text(doc, "week"),
        status: wire::text(doc, "status"),
        cards: doc["cards"]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .map(|c| pb::RollupCard {
                        workload_id: wire::text(c, "workload_id"),
                        version: c["version"].as_u64().unwrap_or(0) as u32,
                        status: wire::text(c, "status"),
                        charged_cents: c["charged_cents"].as_i64().unwrap_or(0),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        total_cents: doc["total_cents"].as_i64().unwrap_or(0),
        approved_by: wire::text(doc, "approved_by"),
        approved_at: wire::text(doc, "approved_at"),
        history: wire::history_from_doc(doc),
    }
}

impl SpendCardApi {
    /// Serves `store`'s cards.
    pub fn new(
        store: Arc<dyn EventStore>,
        read_models: ReadModels,
        org: CommandHandler<Organisation>,
        auth: Arc<Authenticator>,
    ) -> Self {
        Self {
            cards: CommandHandler::new(store.clone()),
            rollups: CommandHandler::new(store.clone()),
            org,
            store,
            read_models,
            auth,
        }
    }

    /// What `principal` sees: every card, their workloads', or their portfolios'.
    async fn sight(&self, principal: &Principal) -> Result<Sight, Status> {
        principal.require(&READERS, "read spend cards")?;
        match principal.role {
            Role::ProductOwner => {
                Ok(Sight::Workloads(wire::owned_workloads(&self.read_models, &principal.subject).await?))
            }
            Role::PortfolioOwner => Ok(Sight::Portfolios(self.portfolios_of(principal).await?)),
            _ => Ok(Sight::Everything),
        }
    }

    /// The portfolios `principal` owns.
    async fn portfolios_of(&self, principal: &Principal) -> Result<BTreeSet<String>, Status> {
        let org = self.org.load(&streams::organisation()).await.map_err(from_governance)?.state;
        Ok(org.portfolios.iter().filter(|(_, p)| p.owner == principal.subject).map(|(id, _)| id.to_string()).collect())
    }

    /// The card document `id` as of `as_of` (now when `None`), if `sight` sees it.
    async fn card(&self, sight: &Sight, id: Uuid, as_of: Option<chrono::DateTime<Utc>>) -> Result<Value, Status> {
        let view = wire::read_model_view(&self.read_models, &self.store, Arc::new(SpendCardsView), as_of).await?;
        let doc = view.get(SpendCardsView::NAME, &id.to_string()).await.map_err(wire::read_model_status)?;
        // A card the caller may not see does not exist for them.
        doc.filter(|d| sight.sees(d)).ok_or_else(|| not_found(format!("spendCards/{id}")))
    }

    /// Decides a person's decision on card `id` and answers with the card after it (from
    /// its stream, folded as the read model does, so the answer never lags).
    async fn decide_card(
        &self,
        principal: &Principal,
        fingerprint: &str,
        id: Uuid,
        request_id: Uuid,
        rationale: &str,
        command: CardCommand,
    ) -> Result<Response<pb::SpendCard>, Status> {
        let context = principal.context(fingerprint, request_id, Some(rationale.to_owned()));
        self.cards.execute(&streams::spend_card(id), &command, &context).await.map_err(from_governance)?;
        let doc = wire::fold_stream(&self.store, &streams::spend_card(id), &SpendCardsView).await?;
        Ok(Response::new(card_to_wire(&doc)))
    }

    /// May `principal` read card `id` (as GetSpendCard would show it)? NOT_FOUND otherwise.
    pub(crate) async fn card_visible(&self, principal: &Principal, id: Uuid) -> Result<(), Status> {
        self.card(&self.sight(principal).await?, id, None).await.map(|_| ())
    }

    /// May `principal` read roll-up `id` (as ListRollups would show it)? NOT_FOUND otherwise.
    pub(crate) async fn rollup_visible(&self, principal: &Principal, id: Uuid) -> Result<(), Status> {
        principal.require(&ROLLUP_READERS, "read spend roll-ups")?;
        let doc =
            self.read_models.get(SpendRollupsView::NAME, &id.to_string()).await.map_err(wire::read_model_status)?;
        let mine = match principal.role {
            Role::PortfolioOwner => Some(self.portfolios_of(principal).await?),
            _ => None,
        };
        match doc {
            Some(d) if mine.is_none_or(|m| m.contains(&wire::text(&d, "portfolio_id"))) => Ok(()),
            _ => Err(not_found(format!("spendRollups/{id}"))),
        }
    }

    /// A card the Product Owner decides on: it exists and is theirs.
    async fn owned_card(&self, principal: &Principal, id: Uuid) -> Result<(), Status> {
        principal.require(&[Role::ProductOwner], "accept or dispute spend cards")?;
        self.card(&self.sight(principal).await?, id, None).await.map(|_| ())
    }
}

#[tonic::async_trait]
impl SpendCardService for SpendCardApi {
    #[tracing::instrument(skip_all)]
    async fn list_spend_cards(
        &self,
        request: Request<pb::ListSpendCardsRequest>,
    ) -> Result<Response<pb::ListSpendCardsResponse>, Status> {
        let principal = self.auth.principal(&request)?;
        let sight = self.sight(&principal).await?;
        let body = request.into_inner();
        let mut fields = Fields::default();
        let page_size = wire::page_size(&mut fields, body.page_size);
        let as_of = wire::as_of(&mut fields, &body.as_of);
        let week = (!body.week.trim().is_empty()).then(|| week(&mut fields, &body.week)).flatten();
        let status = body.status.trim().to_owned();
        if !["", "issued", "accepted", "disputed", "resolved"].contains(&status.as_str()) {
            fields.add("status", format!("`{status}` is not issued, accepted, disputed or resolved"));
        }
        for (field, value) in [("workload_id", &body.workload_id), ("portfolio_id", &body.portfolio_id)] {
            if !value.trim().is_empty() {
                wire::uuid(&mut fields, field, value.trim());
            }
        }
        fields.finish()?;
        let (workload, portfolio) = (body.workload_id.trim().to_owned(), body.portfolio_id.trim().to_owned());
        let keep = move |d: &Value| {
            sight.sees(d)
                && week.is_none_or(|w| wire::text(d, "week") == w.to_string())
                && (workload.is_empty() || wire::text(d, "workload_id") == workload)
                && (portfolio.is_empty() || wire::text(d, "portfolio_id") == portfolio)
                && (status.is_empty() || wire::text(d, "status") == status)
        };
        let view: ReadModelView =
            wire::read_model_view(&self.read_models, &self.store, Arc::new(SpendCardsView), as_of).await?;
        let page = wire::page_result(view.list(SpendCardsView::NAME, page_size, &body.page_token, keep).await)?;
        Ok(Response::new(pb::ListSpendCardsResponse {
            cards: page.documents.iter().map(card_to_wire).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_spend_card(
        &self,
        request: Request<pb::GetSpendCardRequest>,
    ) -> Result<Response<pb::SpendCard>, Status> {
        let principal = self.auth.principal(&request)?;
        let sight = self.sight(&principal).await?;
        let body = request.into_inner();
        let mut fields = Fields::default();
        let id = card_name(&mut fields, &body.name);
        let as_of = wire::as_of(&mut fields, &body.as_of);
        fields.finish()?;
        Ok(Response::new(card_to_wire(&self.card(&sight, id.expect("checked"), as_of).await?)))
    }

    #[tracing::instrument(skip_all)]
    async fn accept_spend_card(
        &self,
        request: Request<pb::AcceptSpendCardRequest>,
    ) -> Result<Response<pb::SpendCard>, Status> {
        let principal = self.auth.principal(&request)?;
        let body = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&body);
        let mut fields = Fields::default();
        let id = card_name(&mut fields, &body.name);
        fields.domain("", finops_domain::rationale_violations(&body.rationale));
        let request_id = wire::request_id(&mut fields, &body.request_id);
        fields.finish()?;
        let id = id.expect("checked");
        self.owned_card(&principal, id).await?;
        let command = CardCommand::Accept { version: body.version, decider: principal.decider(&body.rationale) };
        self.decide_card(&principal, &fingerprint, id, request_id, &body.rationale, command).await
    }

    #[tracing::instrument(skip_all)]
    async fn dispute_spend_card(
        &self,
        request: Request<pb::DisputeSpendCardRequest>,
    ) -> Result<Response<pb::SpendCard>, Status> {
        let principal = self.auth.principal(&request)?;
        let body = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&body);
        let mut fields = Fields::default();
        let id = card_name(&mut fields, &body.name);
        let request_id = wire::request_id(&mut fields, &body.request_id);
        fields.finish()?;
        let id = id.expect("checked");
        self.owned_card(&principal, id).await?;
        let command = CardCommand::Dispute {
            version: body.version,
            lines: body.lines.iter().map(|l| l.trim().to_owned()).collect(),
            decider: principal.decider(&body.rationale),
        };
        self.decide_card(&principal, &fingerprint, id, request_id, &body.rationale, command).await
    }

    #[tracing::instrument(skip_all)]
    async fn resolve_spend_card_dispute(
        &self,
        request: Request<pb::ResolveSpendCardDisputeRequest>,
    ) -> Result<Response<pb::SpendCard>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&[Role::FinopsLead], "resolve spend card disputes")?;
        let body = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&body);
        let mut fields = Fields::default();
        let id = card_name(&mut fields, &body.name);
        let outcome = match body.outcome.trim() {
            "upheld" => Some(DisputeOutcome::Upheld),
            "adjusted" => Some(DisputeOutcome::Adjusted { cents: body.adjusted_cents }),
            other => {
                fields.add("outcome", format!("`{other}` is not upheld or adjusted"));
                None
            }
        };
        let request_id = wire::request_id(&mut fields, &body.request_id);
        fields.finish()?;
        let id = id.expect("checked");
        self.card(&Sight::Everything, id, None).await?;
        let command = CardCommand::Resolve {
            version: body.version,
            outcome: outcome.expect("checked"),
            decider: principal.decider(&body.rationale),
        };
        self.decide_card(&principal, &fingerprint, id, request_id, &body.rationale, command).await
    }

    #[tracing::instrument(skip_all)]
    async fn approve_rollup(
        &self,
        request: Request<pb::ApproveRollupRequest>,
    ) -> Result<Response<pb::SpendRollup>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&[Role::PortfolioOwner], "approve spend roll-ups")?;
        let body = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&body);
        let mut fields = Fields::default();
        let portfolio = wire::uuid(&mut fields, "portfolio_id", body.portfolio_id.trim());
        let monday = week(&mut fields, &body.week);
        fields.domain("", finops_domain::rationale_violations(&body.rationale));
        let request_id = wire::request_id(&mut fields, &body.request_id);
        fields.finish()?;
        let (Some(portfolio), Some(monday)) = (portfolio, monday) else { unreachable!("fields checked") };
        if !self.portfolios_of(&principal).await?.contains(&portfolio.to_string()) {
            return Err(Status::permission_denied(format!(
                "{} does not own portfolio {portfolio}: only its Portfolio Owner approves its roll-up",
                principal.subject
            )));
        }
        // The week's cards as they stand now, from their streams (never a lagging read model).
        let (portfolio_text, week_text) = (portfolio.to_string(), monday.to_string());
        let mut ids = Vec::new();
        let mut token = String::new();
        loop {
            let page = wire::page_result(
                self.read_models
                    .list(SpendCardsView::NAME, 1000, &token, |d| {
                        wire::text(d, "portfolio_id") == portfolio_text && wire::text(d, "week") == week_text
                    })
                    .await,
            )?;
            ids.extend(page.documents.iter().filter_map(|d| Uuid::parse_str(&wire::text(d, "card_id")).ok()));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        let mut cards = Vec::new();
        for id in ids {
            let card = self.cards.load(&streams::spend_card(id)).await.map_err(from_governance)?.state;
            let Some(current) = card.versions.last() else { continue };
            cards.push(RollupCard {
                workload_id: current.figures.workload_id,
                version: current.version,
                status: card.status,
                charged_cents: card.charged_cents().unwrap_or(0),
            });
        }
        cards.sort_by_key(|c| c.workload_id);
        let stream = streams::spend_rollup(rollup_id(portfolio, monday));
        let command = RollupCommand::Approve {
            portfolio_id: portfolio,
            week: monday,
            cards,
            decider: principal.decider(&body.rationale),
        };
        let context = principal.context(&fingerprint, request_id, Some(body.rationale.clone()));
        self.rollups.execute(&stream, &command, &context).await.map_err(from_governance)?;
        Ok(Response::new(rollup_to_wire(&wire::fold_stream(&self.store, &stream, &SpendRollupsView).await?)))
    }

    #[tracing::instrument(skip_all)]
    async fn list_rollups(
        &self,
        request: Request<pb::ListRollupsRequest>,
    ) -> Result<Response<pb::ListRollupsResponse>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&ROLLUP_READERS, "read spend roll-ups")?;
        let mine = match principal.role {
            Role::PortfolioOwner => Some(self.portfolios_of(&principal).await?),
            _ => None,
        };
        let body = request.into_inner();
        let mut fields = Fields::default();
        let page_size = wire::page_size(&mut fields, body.page_size);
        let as_of = wire::as_of(&mut fields, &body.as_of);
        let week = (!body.week.trim().is_empty()).then(|| week(&mut fields, &body.week)).flatten();
        let status = body.status.trim().to_owned();
        if !["", "approved", "reopened"].contains(&status.as_str()) {
            fields.add("status", format!("`{status}` is not approved or reopened"));
        }
        if !body.portfolio_id.trim().is_empty() {
            wire::uuid(&mut fields, "portfolio_id", body.portfolio_id.trim());
        }
        fields.finish()?;
        let portfolio = body.portfolio_id.trim().to_owned();
        let keep = move |d: &Value| {
            mine.as_ref().is_none_or(|m| m.contains(&wire::text(d, "portfolio_id")))
                && week.is_none_or(|w| wire::text(d, "week") == w.to_string())
                && (portfolio.is_empty() || wire::text(d, "portfolio_id") == portfolio)
                && (status.is_empty() || wire::text(d, "status") == status)
        };
        let view = wire::read_model_view(&self.read_models, &self.store, Arc::new(SpendRollupsView), as_of).await?;
        let page = wire::page_result(view.list(SpendRollupsView::NAME, page_size, &body.page_token, keep).await)?;
        Ok(Response::new(pb::ListRollupsResponse {
            rollups: page.documents.iter().map(rollup_to_wire).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_week_is_a_monday_and_a_card_is_named() {
        let mut fields = Fields::default();
        assert_eq!(week(&mut fields, "2026-11-02"), NaiveDate::from_ymd_opt(2026, 11, 2));
        assert!(fields.finish().is_ok());
        let mut fields = Fields::default();
        assert_eq!(week(&mut fields, "2026-11-03"), None);
        let status = fields.finish().unwrap_err();
        assert!(status.message().contains("week") && status.message().contains("Monday"), "{}", status.message());
        let mut fields = Fields::default();
        assert_eq!(card_name(&mut fields, "cards/1"), None);
        assert!(fields.finish().unwrap_err().message().contains("spendCards/{uuid}"));
        let mut fields = Fields::default();
        assert_eq!(week(&mut fields, " "), None);
        assert!(fields.finish().unwrap_err().message().contains("is required"));
    }
}
