//! `finops.v1.AgentBillService` (DOMAIN.md §11, issue 16): a question in plain English
//! answered with real figures. `finops_domain::agent_bill::understand` maps the question
//! to a tool; each tool is a call of another finops.v1 service made in-process with the
//! asker's own metadata, so it is authorised exactly as that call (a refusal is that
//! call's status, and writes nothing) and the figures it quotes are that call's.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Utc};
use finops_domain::agent_bill::{Intent, Tool, understand};
use finops_domain::vocabulary::dollars;
use finops_eventlog::{EventStore, StreamRead};
use finops_governance::streams;
use finops_proto::v1 as pb;
use finops_proto::v1::agent_bill_service_server::AgentBillService;
use finops_proto::v1::attribution_service_server::AttributionService;
use finops_proto::v1::gap_service_server::GapService;
use finops_proto::v1::investigation_service_server::InvestigationService;
use finops_proto::v1::maturity_service_server::MaturityService;
use finops_proto::v1::spaces_service_server::SpacesService;
use finops_proto::v1::spend_card_service_server::SpendCardService;
use finops_proto::v1::workload_control_service_server::WorkloadControlService;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::attribution_api::AttributionApi;
use crate::auth::Authenticator;
use crate::gap_api::GapApi;
use crate::investigation_api::InvestigationApi;
use crate::maturity_api::MaturityApi;
use crate::spaces_api::SpacesApi;
use crate::spend_card_api::SpendCardApi;
use crate::wire::{self, Fields};
use crate::workload_control_api::WorkloadControlApi;

/// The one Attribute question the spend tool asks: its breakdowns are sums of these rows.
const SPEND_BREAKDOWN: [&str; 7] = ["workload", "gap", "model", "token_type", "region", "principal", "day"];

/// How far back "the latest period with CUR" is looked for.
const PERIODS_BACK: u32 = 24;

/// The services Agent Bill's tools call, in-process.
#[derive(Clone)]
pub struct AgentBillTools {
    /// Workloads and their forecasts.
    pub spaces: SpacesApi,
    /// Attribution.
    pub attribution: AttributionApi,
    /// Allocation Gaps.
    pub gaps: GapApi,
    /// Spend Cards.
    pub cards: SpendCardApi,
    /// The maturity score.
    pub maturity: MaturityApi,
    /// The kill switch.
    pub controls: WorkloadControlApi,
    /// Investigations.
    pub investigations: InvestigationApi,
}

/// Answers questions with the services Agent Bill's tools call.
#[derive(Clone)]
pub struct AgentBillApi {
    store: Arc<dyn EventStore>,
    auth: Arc<Authenticator>,
    spaces: SpacesApi,
    attribution: AttributionApi,
    gaps: GapApi,
    cards: SpendCardApi,
    maturity: MaturityApi,
    controls: WorkloadControlApi,
    investigations: InvestigationApi,
}

/// An action on a Spend Card, as asked.
struct CardAction {
    card: String,
    version: u32,
    rationale: String,
    confirmed: bool,
    request_id: String,
    lines: Vec<String>,
}

/// An action on a gap, as asked.
struct GapAction {
    gap: String,
    action: Option<String>,
    rationale: String,
    confirmed: bool,
    request_id: String,
    business_request: String,
    product_owner: String,
}

/// A suspend or resume, as asked.
struct ControlRequest {
    suspend: bool,
    workload: Option<String>,
    rationale: String,
    confirmed: bool,
    request_id: String,
}

/// `n` things, in words: "1 line", "2 lines".
fn plural(n: usize, thing: &str) -> String {
    if n == 1 { format!("1 {thing}") } else { format!("{n} {thing}s") }
}

/// A model's spend within a workload (cents, model).
type ModelCost = (i64, String);

/// An answer being put together.
struct Draft {
    text: Vec<String>,
    calls: Vec<&'static str>,
    figures: Vec<pb::Figure>,
    period: String,
}

impl Draft {
    fn new(period: &str) -> Self {
        Self { text: Vec::new(), calls: Vec::new(), figures: Vec::new(), period: period.to_owned() }
    }

    fn money(&mut self, name: String, cents: i64) {
        self.figures.push(pb::Figure { name, unit: "cents".into(), amount: cents, ..Default::default() });
    }

    fn count(&mut self, name: String, n: u64) {
        self.figures.push(pb::Figure { name, unit: "count".into(), amount: n as i64, ..Default::default() });
    }

    fn called(&mut self, call: &'static str) {
        if !self.calls.contains(&call) {
            self.calls.push(call);
        }
    }
}

impl AgentBillApi {
    /// Answers with the services the server runs.
    pub fn new(store: Arc<dyn EventStore>, auth: Arc<Authenticator>, tools: AgentBillTools) -> Self {
        let AgentBillTools { spaces, attribution, gaps, cards, maturity, controls, investigations } = tools;
        Self { store, auth, spaces, attribution, gaps, cards, maturity, controls, investigations }
    }

    /// The newest billing period with CUR recorded at or before `instant`.
    async fn latest_period(&self, instant: DateTime<Utc>) -> Result<Option<String>, Status> {
        let mut month = instant.date_naive().with_day(1).expect("a first day");
        for _ in 0..PERIODS_BACK {
            let period = format!("{:04}-{:02}", month.year(), month.month());
            let events = self
                .store
                .read_stream(&streams::cur_period(&period), StreamRead::all())
                .await
                .map_err(|e| Status::unavailable(e.to_string()))?;
            if events.iter().any(|e| e.metadata.recorded_at <= instant) {
                return Ok(Some(period));
            }
            month = month.pred_opt().and_then(|d| d.with_day(1)).expect("an earlier month");
        }
        Ok(None)
    }

    /// The period asked about, or the latest with CUR; a precondition failure without one.
    async fn period(&self, intent: &Intent, instant: DateTime<Utc>) -> Result<String, Status> {
        match &intent.period {
            Some(period) => Ok(period.clone()),
            None => self.latest_period(instant).await?.ok_or_else(|| {
                Status::failed_precondition(format!(
                    "no CUR has been ingested as of {}: there are no figures to answer with yet",
                    instant.to_rfc3339()
                ))
            }),
        }
    }

    async fn on_track(&self, meta: &MetadataMap, intent: &Intent, as_of: &str) -> Result<Draft, Status> {
        let mut d = Draft::new("");
        d.called("finops.v1.SpacesService/ListWorkloads");
        let list = pb::ListWorkloadsRequest { page_size: 1000, page_token: String::new(), as_of: as_of.to_owned() };
        let mut workloads = self.spaces.list_workloads(forward(meta, list)).await?.into_inner().workloads;
        if let Some(name) = &intent.workload {
            workloads.retain(|w| w.name.eq_ignore_ascii_case(name));
            if workloads.is_empty() {
                return Err(Status::not_found(format!("no workload named \"{name}\" that you can see")));
            }
        }
        if workloads.is_empty() {
            d.text.push("You have no approved workloads yet, so there is nothing to be on track against.".into());
            return Ok(d);
        }
        d.called("finops.v1.SpacesService/GetWorkload");
        for w in workloads {
            let get = pb::GetWorkloadRequest { name: format!("workloads/{}", w.workload_id), as_of: as_of.to_owned() };
            let shown = self.spaces.get_workload(forward(meta, get)).await?.into_inner();
            let Some(f) = shown.forecast else {
                d.text.push(format!("{}: no CUR yet, so no spend to compare.", shown.name));
                continue;
            };
            d.period = f.period.clone();
            d.money(format!("{} month to date", shown.name), f.month_to_date_cents);
            d.money(format!("{} monthly estimate", shown.name), f.month_estimate_cents);
            d.money(format!("{} projected month", shown.name), f.projected_month_cents);
            let spent = format!(
                "{}: {} spent in {} through {}, {} a day",
                shown.name,
                dollars(f.month_to_date_cents),
                f.period,
                f.through,
                dollars(f.burn_per_day_cents)
            );
            let verdict = if f.month_estimate_cents == 0 {
                "no estimate is stated, so nothing to be on track against — state one (finops workloads estimate)"
                    .to_owned()
            } else if f.crossed {
                format!(
                    "over its estimate of {} since {}; at this rate the month ends at {}",
                    dollars(f.month_estimate_cents),
                    f.crossing_date,
                    dollars(f.projected_month_cents)
                )
            } else if !f.crossing_date.is_empty() {
                format!(
                    "off track: at this rate it crosses its estimate of {} on {} and ends the month at {}",
                    dollars(f.month_estimate_cents),
                    f.crossing_date,
                    dollars(f.projected_month_cents)
                )
            } else {
                format!(
                    "on track: the month ends at {} against an estimate of {}",
                    dollars(f.projected_month_cents),
                    dollars(f.month_estimate_cents)
                )
            };
            if !f.crossing_date.is_empty() {
                d.figures.push(pb::Figure {
                    name: format!("{} crossing", shown.name),
                    unit: "date".into(),
                    text: f.crossing_date.clone(),
                    ..Default::default()
                });
            }
            d.text.push(format!("{spent} — {verdict}."));
        }
        Ok(d)
    }

    async fn attribute(
        &self,
        meta: &MetadataMap,
        d: &mut Draft,
        group_by: &[&str],
        as_of: &str,
    ) -> Result<pb::AttributeResponse, Status> {
        d.called("finops.v1.AttributionService/Attribute");
        let request = pb::AttributeRequest {
            period: d.period.clone(),
            group_by: group_by.iter().map(|g| (*g).to_owned()).collect(),
            as_of: as_of.to_owned(),
        };
        Ok(self.attribution.attribute(forward(meta, request)).await?.into_inner())
    }

    async fn top_costs(&self, meta: &MetadataMap, period: String, as_of: &str) -> Result<Draft, Status> {
        let mut d = Draft::new(&period);
        let answer = self.attribute(meta, &mut d, &["workload", "model"], as_of).await?;
        // Per workload: its total and its models, largest first.
        let mut by: BTreeMap<String, (i64, Vec<ModelCost>)> = BTreeMap::new();
        for row in &answer.rows {
            let entry = by.entry(row.keys[0].clone()).or_default();
            entry.0 += row.cost_cents;
            entry.1.push((row.cost_cents, row.keys[1].clone()));
        }
        let mut ranked: Vec<(String, (i64, Vec<ModelCost>))> = by.into_iter().collect();
        ranked.sort_by(|a, b| b.1.0.cmp(&a.1.0).then_with(|| a.0.cmp(&b.0)));
        if ranked.is_empty() {
            d.text.push(format!("No AI spend you can see in {period}."));
        } else {
            d.text.push(format!("AI spend in {period}, largest first ({} in all):", dollars(answer.total_cents)));
        }
        for (workload, (cents, mut models)) in ranked.into_iter().take(5) {
            models.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
            let name = if workload.is_empty() { "(no workload: Allocation Gaps)".to_owned() } else { workload };
            let why = models
                .iter()
                .take(2)
                .map(|(c, m)| format!("{} on {}", dollars(*c), if m.is_empty() { "other usage" } else { m }))
                .collect::<Vec<_>>()
                .join(", ");
            d.text.push(format!("- {name}: {} — mostly {why}", dollars(cents)));
            d.money(name, cents);
        }
        d.money("total".into(), answer.total_cents);
        Ok(d)
    }

    /// The period's AI spend for the asker's scope (a workload, when named), with the
    /// breakdown that explains it — by model, token type, region and caller, and day by
    /// day — all from one Attribute call, so every figure is a sum of its rows.
    async fn spend(
        &self,
        meta: &MetadataMap,
        period: String,
        workload: Option<&str>,
        as_of: &str,
    ) -> Result<Draft, Status> {
        let mut d = Draft::new(&period);
        let answer = self.attribute(meta, &mut d, &SPEND_BREAKDOWN, as_of).await?;
        let rows: Vec<&pb::AttributionRow> =
            answer.rows.iter().filter(|r| workload.is_none_or(|w| r.keys[0].eq_ignore_ascii_case(w))).collect();
        let total: i64 = rows.iter().map(|r| r.cost_cents).sum();
        let attributed: i64 = rows.iter().filter(|r| r.keys[1].is_empty()).map(|r| r.cost_cents).sum();
        let scope = workload.map_or_else(|| "AI spend".to_owned(), |w| format!("{w}'s AI spend"));
        if rows.is_empty() {
            d.text.push(format!("No {scope} you can see in {period}."));
        } else {
            d.text.push(format!(
                "{scope} in {period}: {} — {} charged to a workload, {} in Allocation Gaps.",
                dollars(total),
                dollars(attributed),
                dollars(total - attributed)
            ));
        }
        d.money("total".into(), total);
        d.money("attributed".into(), attributed);
        d.money("in gaps".into(), total - attributed);
        for (column, label, words) in [
            (2, "model", "By model"),
            (3, "token type", "By token type"),
            (4, "region", "By region"),
            (5, "caller", "By caller"),
        ] {
            let mut by: BTreeMap<&str, i64> = BTreeMap::new();
            for r in &rows {
                *by.entry(r.keys[column].as_str()).or_default() += r.cost_cents;
            }
            let mut by: Vec<(&str, i64)> = by.into_iter().collect();
            by.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
            let shown: Vec<String> = by
                .iter()
                .take(5)
                .map(|(k, c)| format!("{} {}", if k.is_empty() { "(none)" } else { k }, dollars(*c)))
                .collect();
            if !shown.is_empty() {
                let more = if by.len() > 5 { format!(" and {} more", by.len() - 5) } else { String::new() };
                d.text.push(format!("{words}: {}{more}.", shown.join(", ")));
            }
            for (k, c) in by.iter().take(5) {
                d.money(format!("{label} {k}"), *c);
            }
        }
        let mut days: BTreeMap<&str, i64> = BTreeMap::new();
        for r in &rows {
            *days.entry(r.keys[6].as_str()).or_default() += r.cost_cents;
        }
        if !days.is_empty() {
            let line: Vec<String> = days
                .iter()
                .map(|(day, c)| format!("{} {}", &day[day.len().saturating_sub(5)..], dollars(*c)))
                .collect();
            d.text.push(format!("Day by day: {}.", line.join(", ")));
        }
        for (day, c) in days {
            d.money(format!("day {day}"), c);
        }
        Ok(d)
    }

    async fn gap_totals(
        &self,
        meta: &MetadataMap,
        d: &mut Draft,
        kind: &str,
        as_of: &str,
    ) -> Result<pb::ListGapsResponse, Status> {
        d.called("finops.v1.GapService/ListGaps");
        let request = pb::ListGapsRequest {
            kind: kind.to_owned(),
            state: "active".into(),
            period: d.period.clone(),
            page_size: 1000,
            as_of: as_of.to_owned(),
            ..Default::default()
        };
        Ok(self.gaps.list_gaps(forward(meta, request)).await?.into_inner())
    }

    async fn unapproved_models(&self, meta: &MetadataMap, period: String, as_of: &str) -> Result<Draft, Status> {
        let mut d = Draft::new(&period);
        let mut any = false;
        for kind in ["out_of_approved_scope", "not_business_approved"] {
            let listed = self.gap_totals(meta, &mut d, kind, as_of).await?;
            let (gaps, cents) =
                listed.totals.iter().map(|t| (u64::from(t.gaps), t.cents)).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
            let scenario = listed.totals.first().map_or(kind.replace('_', " "), |t| t.scenario.clone());
            d.money(format!("{kind} spend"), cents);
            d.count(format!("{kind} gaps"), gaps);
            if gaps == 0 {
                continue;
            }
            any = true;
            let mut models: BTreeMap<String, i64> = BTreeMap::new();
            for gap in &listed.gaps {
                for spend in gap.spend.iter().filter(|s| s.period == period) {
                    for model in &spend.models {
                        *models.entry(model.clone()).or_default() += spend.cents;
                    }
                }
            }
            let mut models: Vec<(String, i64)> = models.into_iter().collect();
            models.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            let named = models.iter().take(3).map(|(m, _)| m.as_str()).collect::<Vec<_>>().join(", ");
            d.text.push(format!("{scenario}: {} in {gaps} open gaps (models: {named}).", dollars(cents)));
        }
        if !any {
            d.text.insert(0, format!("No: in {period} every model you can see ran where and as it was approved."));
        } else {
            d.text.insert(0, format!("Yes — in {period}:"));
        }
        Ok(d)
    }

    async fn gaps(&self, meta: &MetadataMap, period: String, as_of: &str) -> Result<Draft, Status> {
        let mut d = Draft::new(&period);
        let listed = self.gap_totals(meta, &mut d, "", as_of).await?;
        let (gaps, cents) = listed.totals.iter().fold((0u64, 0i64), |a, t| (a.0 + u64::from(t.gaps), a.1 + t.cents));
        d.text.push(format!("{gaps} open Allocation Gaps hold {} of {period}'s AI spend:", dollars(cents)));
        let mut totals = listed.totals.clone();
        totals.sort_by(|a, b| b.cents.cmp(&a.cents).then_with(|| a.kind.cmp(&b.kind)));
        for t in &totals {
            d.text.push(format!("- {}: {} gaps, {}", t.scenario, t.gaps, dollars(t.cents)));
            d.money(format!("{} spend", t.kind), t.cents);
        }
        d.money("open gaps spend".into(), cents);
        d.count("open gaps".into(), gaps);
        Ok(d)
    }

    /// One gap in words: what it is, what it holds, who it concerns, what can be done and
    /// what was — GetGap's figures.
    async fn explain_gap(&self, meta: &MetadataMap, gap: &str, as_of: &str) -> Result<Draft, Status> {
        let mut d = Draft::new("");
        d.called("finops.v1.GapService/GetGap");
        let request = pb::GetGapRequest { name: gap.to_owned(), as_of: as_of.to_owned() };
        let g = self.gaps.get_gap(forward(meta, request)).await?.into_inner();
        d.period = g.spend.last().map(|s| s.period.clone()).unwrap_or_default();
        d.text.push(format!(
            "{} is {} ({}), anchored on {}{}: {} in all, {}.",
            g.name,
            g.scenario,
            g.kind,
            g.anchor,
            if g.account.is_empty() { String::new() } else { format!(" in account {}", g.account) },
            dollars(g.total_cents),
            g.status
        ));
        d.money("gap spend".into(), g.total_cents);
        for s in &g.spend {
            d.text.push(format!("- {}: {}", s.period, dollars(s.cents)));
            d.money(format!("{} spend", s.period), s.cents);
        }
        if !g.principal.is_empty() {
            d.text.push(format!("Caller: {}.", g.principal));
        }
        if !g.concerns.is_empty() {
            d.text.push(format!("It concerns {}.", g.concerns.join(", ")));
        }
        if let Some(last) = &g.last_action {
            d.text.push(format!("Last action: {} by {}.", last.action, last.by));
        }
        if !g.actions.is_empty() {
            d.text.push(format!("What can be done: {} (act on it with one, and confirm).", g.actions.join(", ")));
        }
        Ok(d)
    }

    /// Acts on a gap as the asker, once confirmed — the ActOnGap command itself; unconfirmed
    /// (or without an action named), says what can be done.
    async fn act_on_gap(&self, meta: &MetadataMap, a: GapAction) -> Result<Draft, Status> {
        let mut d = Draft::new("");
        let what =
            |g: &pb::Gap| format!("{} ({}, {} in all, {})", g.name, g.scenario, dollars(g.total_cents), g.status);
        let action = match a.action {
            // Confirmed: the ActOnGap call alone, so it is refused exactly as ActOnGap is.
            Some(action) if a.confirmed => action,
            action => {
                d.called("finops.v1.GapService/GetGap");
                let get = pb::GetGapRequest { name: a.gap.clone(), as_of: String::new() };
                let g = self.gaps.get_gap(forward(meta, get)).await?.into_inner();
                match action.filter(|action| g.actions.contains(action)) {
                    None => d.text.push(format!("Which action on {}? One of: {}.", what(&g), g.actions.join(", "))),
                    Some(action) => d.text.push(format!(
                        "This would {action} on {}. Nothing is done until you confirm (say \"confirm\").",
                        what(&g)
                    )),
                }
                return Ok(d);
            }
        };
        d.called("finops.v1.GapService/ActOnGap");
        let request = pb::ActOnGapRequest {
            name: a.gap,
            action: action.clone(),
            rationale: a.rationale.clone(),
            request_id: a.request_id,
            business_request: a.business_request,
            product_owner: a.product_owner,
            ..Default::default()
        };
        let after = self.gaps.act_on_gap(forward(meta, request)).await?.into_inner();
        d.money("gap spend".into(), after.total_cents);
        d.text.push(format!(
            "Did {action} on {}. Recorded as yours, with the reason \"{}\".",
            what(&after),
            a.rationale
        ));
        if let Some(outcome) = &after.last_action {
            d.text.extend(outcome.steps.iter().map(|step| format!("- {step}")));
            d.text.extend(outcome.commands.iter().map(|c| format!("- {c}")));
        }
        Ok(d)
    }

    /// The investigations not yet closed, as ListInvestigations shows them to the asker.
    async fn investigations(&self, meta: &MetadataMap, as_of: &str) -> Result<Draft, Status> {
        let mut d = Draft::new("");
        d.called("finops.v1.InvestigationService/ListInvestigations");
        let mut open = Vec::new();
        for status in ["open", "investigating"] {
            let request = pb::ListInvestigationsRequest {
                status: status.into(),
                page_size: 1000,
                as_of: as_of.to_owned(),
                ..Default::default()
            };
            open.extend(
                self.investigations.list_investigations(forward(meta, request)).await?.into_inner().investigations,
            );
        }
        let unassigned = open.iter().filter(|i| i.status == "open").count();
        d.count("open investigations".into(), unassigned as u64);
        d.count("investigating".into(), (open.len() - unassigned) as u64);
        if open.is_empty() {
            d.text.push("No open investigations you can see: no signal has fired, or all are closed.".into());
            return Ok(d);
        }
        d.text.push(format!(
            "{} investigation(s) not closed — {unassigned} waiting for an owner, {} being investigated:",
            open.len(),
            open.len() - unassigned
        ));
        for i in &open {
            let observed = i.evidence.as_ref().map_or(0, |e| e.observed_cents);
            d.money(format!("{} observed", i.name), observed);
            let owner = if i.owner.is_empty() { "no owner yet".to_owned() } else { format!("owner {}", i.owner) };
            d.text.push(format!("- {} ({}, {owner}): {}", i.name, i.signal, i.summary));
        }
        Ok(d)
    }

    async fn spend_cards(&self, meta: &MetadataMap, as_of: &str) -> Result<Draft, Status> {
        let mut d = Draft::new("");
        d.called("finops.v1.SpendCardService/ListSpendCards");
        let request = pb::ListSpendCardsRequest { as_of: as_of.to_owned(), page_size: 1000, ..Default::default() };
        let cards = self.cards.list_spend_cards(forward(meta, request)).await?.into_inner().cards;
        let mut by_status: BTreeMap<&str, u64> = BTreeMap::new();
        for card in &cards {
            *by_status.entry(card.status.as_str()).or_default() += 1;
        }
        let summary = by_status.iter().map(|(s, n)| format!("{n} {s}")).collect::<Vec<_>>().join(", ");
        d.text.push(if cards.is_empty() {
            "No spend cards you can see yet.".to_owned()
        } else {
            format!("{} spend cards: {summary}.", cards.len())
        });
        for (status, n) in &by_status {
            d.count(format!("{status} cards"), *n);
        }
        let waiting: Vec<&pb::SpendCard> =
            cards.iter().filter(|c| c.status == "issued" || c.status == "disputed").collect();
        if !waiting.is_empty() {
            d.text.push("Waiting for sign-off:".into());
        }
        for c in waiting.iter().take(10) {
            let flag = if c.variance_flagged { ", variance flagged" } else { "" };
            d.text.push(format!(
                "- {} week of {}: {} ({}) against {}{flag}",
                c.name,
                c.week,
                dollars(c.actual_cents),
                c.status,
                dollars(c.estimate_cents)
            ));
        }
        Ok(d)
    }

    /// Accepts or disputes a card as the asker, once confirmed — the AcceptSpendCard or
    /// DisputeSpendCard command itself; unconfirmed, says what it would do.
    async fn card_action(&self, meta: &MetadataMap, accept: bool, a: CardAction) -> Result<Draft, Status> {
        let mut d = Draft::new("");
        d.called("finops.v1.SpendCardService/GetSpendCard");
        let get = pb::GetSpendCardRequest { name: a.card.clone(), as_of: String::new() };
        let current = self.cards.get_spend_card(forward(meta, get)).await?.into_inner();
        let version = if a.version == 0 { current.version } else { a.version };
        let lines: Vec<String> = if a.lines.is_empty() {
            current.lines.iter().filter(|l| l.flagged).map(|l| l.key.clone()).collect()
        } else {
            a.lines.clone()
        };
        let what = format!(
            "{} (week of {}, version {version}): {} against an estimate of {}",
            current.name,
            current.week,
            dollars(current.actual_cents),
            dollars(current.estimate_cents)
        );
        let named = format!("{} ({})", plural(lines.len(), "line"), lines.join(", "));
        let (would, did) = if accept {
            ("accept".to_owned(), "Accepted".to_owned())
        } else {
            (format!("dispute {named} of"), format!("Disputed {named} of"))
        };
        d.money("actual".into(), current.actual_cents);
        if !a.confirmed {
            d.text.push(format!("This would {would} {what}. Nothing is done until you confirm (say \"confirm\")."));
            return Ok(d);
        }
        let after = if accept {
            d.called("finops.v1.SpendCardService/AcceptSpendCard");
            let request = pb::AcceptSpendCardRequest {
                name: a.card,
                version,
                rationale: a.rationale.clone(),
                request_id: a.request_id,
            };
            self.cards.accept_spend_card(forward(meta, request)).await?.into_inner()
        } else {
            d.called("finops.v1.SpendCardService/DisputeSpendCard");
            let request = pb::DisputeSpendCardRequest {
                name: a.card,
                version,
                lines,
                rationale: a.rationale.clone(),
                request_id: a.request_id,
            };
            self.cards.dispute_spend_card(forward(meta, request)).await?.into_inner()
        };
        d.text.push(format!(
            "{did} {what}. Recorded as yours, with the reason \"{}\"; the card is now {}.",
            a.rationale, after.status
        ));
        Ok(d)
    }

    /// The kill switch through Agent Bill: the status and what would be done, and — only
    /// when confirmed — the SuspendWorkload or ResumeWorkload call itself.
    async fn control(&self, meta: &MetadataMap, c: ControlRequest) -> Result<Draft, Status> {
        let mut d = Draft::new("");
        let verb = if c.suspend { "suspend" } else { "resume" };
        let workload = match c.workload {
            Some(name) => name,
            None => {
                // "Suspend my workload": the asker's only one, else ask which.
                d.called("finops.v1.SpacesService/ListWorkloads");
                let list = pb::ListWorkloadsRequest { page_size: 1000, ..Default::default() };
                let mut visible = self.spaces.list_workloads(forward(meta, list)).await?.into_inner().workloads;
                if visible.len() != 1 {
                    let names: Vec<String> = visible.iter().map(|w| format!("\"{}\"", w.name)).collect();
                    d.text.push(format!(
                        "Which workload should I {verb}? Name it in quotes{}.",
                        if names.is_empty() { String::new() } else { format!(": {}", names.join(", ")) }
                    ));
                    return Ok(d);
                }
                visible.remove(0).name
            }
        };
        d.called("finops.v1.WorkloadControlService/GetWorkloadControl");
        let get = pb::GetWorkloadControlRequest { workload: workload.clone(), as_of: String::new() };
        let before = self.controls.get_workload_control(forward(meta, get)).await?.into_inner();
        if !c.confirmed {
            let what = if c.suspend {
                "tag its IAM roles finops-suspended=true and deny them Bedrock invocation (the FinOps Lead resumes it)"
            } else {
                "remove exactly what its suspension added to its IAM roles"
            };
            d.text.push(format!(
                "{} is {}. This would {verb} it: {what}. Nothing is done until you confirm (say \"confirm\").",
                before.workload_name, before.status
            ));
            return Ok(d);
        }
        let after = if c.suspend {
            d.called("finops.v1.WorkloadControlService/SuspendWorkload");
            let request =
                pb::SuspendWorkloadRequest { workload, rationale: c.rationale.clone(), request_id: c.request_id };
            self.controls.suspend_workload(forward(meta, request)).await?.into_inner()
        } else {
            d.called("finops.v1.WorkloadControlService/ResumeWorkload");
            let request =
                pb::ResumeWorkloadRequest { workload, rationale: c.rationale.clone(), request_id: c.request_id };
            self.controls.resume_workload(forward(meta, request)).await?.into_inner()
        };
        let decision = after.decisions.last().cloned().unwrap_or_default();
        d.count("IAM calls".into(), decision.calls.len() as u64);
        let how = if decision.enforcement == "manual" {
            "run these with the account's credentials"
        } else {
            "FinOps Center runs them and retries until they succeed"
        };
        d.text.push(format!(
            "{} {}: it is now {}. Recorded as yours, with the reason \"{}\". {} IAM call(s) — {how}:",
            if c.suspend { "Suspended" } else { "Resumed" },
            after.workload_name,
            after.status,
            c.rationale,
            decision.calls.len()
        ));
        d.text.extend(decision.calls.iter().map(|call| format!("- {}", call.command)));
        d.text.extend(decision.not_covered.iter().map(|step| format!("- not reachable by IAM: {step}")));
        Ok(d)
    }

    async fn maturity(&self, meta: &MetadataMap, intent: &Intent, as_of: &str) -> Result<Draft, Status> {
        let mut d = Draft::new(intent.period.as_deref().unwrap_or_default());
        d.called("finops.v1.MaturityService/GetMaturity");
        let request = pb::GetMaturityRequest { period: d.period.clone(), as_of: as_of.to_owned() };
        let m = self.maturity.get_maturity(forward(meta, request)).await?.into_inner();
        d.period = m.period.clone();
        d.text.push(format!("AI Governance Maturity for {}: {:.1} ({}).", m.period, m.overall, m.tier));
        d.figures.push(pb::Figure {
            name: "overall".into(),
            unit: "points".into(),
            score: m.overall,
            ..Default::default()
        });
        for dim in &m.dimensions {
            d.figures.push(pb::Figure {
                name: dim.name.clone(),
                unit: "points".into(),
                score: dim.score,
                ..Default::default()
            });
            d.text.push(format!("- {} {:.1} ({}): {}", dim.name, dim.score, dim.tier, dim.figures));
        }
        let best = m
            .dimensions
            .iter()
            .filter(|dim| !dim.next_move.is_empty())
            .max_by(|a, b| a.worth_points.total_cmp(&b.worth_points).then_with(|| b.name.cmp(&a.name)));
        if let Some(next) = best {
            d.text.push(format!("Next move: {} (+{:.1} points).", next.next_move, next.worth_points));
        }
        if m.trend.len() > 1 {
            let trend = m.trend.iter().map(|p| format!("{} {:.1}", p.period, p.overall)).collect::<Vec<_>>();
            d.text.push(format!("Trend: {}.", trend.join(" → ")));
        }
        Ok(d)
    }
}

/// `message` with the asker's metadata (their bearer token), as the wrapped call sees it.
fn forward<T>(meta: &MetadataMap, message: T) -> Request<T> {
    Request::from_parts(meta.clone(), tonic::Extensions::default(), message)
}

/// What can be asked.
fn help() -> Draft {
    let mut d = Draft::new("");
    d.text.push("Ask Agent Bill, for instance:".into());
    for tool in Tool::ALL.iter().filter(|t| **t != Tool::Help) {
        d.text.push(format!("- {}", tool.example()));
    }
    d.text.push("Name a month (\"in October\", \"2026-10\", \"last month\") or a workload in quotes.".into());
    d
}

#[tonic::async_trait]
impl AgentBillService for AgentBillApi {
    #[tracing::instrument(skip_all)]
    async fn ask(&self, request: Request<pb::AskRequest>) -> Result<Response<pb::Answer>, Status> {
        // Signed in, as every call; what the asker may see is the wrapped call's to decide.
        self.auth.principal(&request)?;
        let meta = request.metadata().clone();
        let body = request.into_inner();
        let mut fields = Fields::default();
        let as_of = wire::as_of(&mut fields, &body.as_of);
        let named = body.tool.trim();
        let tool = Tool::ALL.iter().copied().find(|t| t.as_str() == named);
        if !named.is_empty() && tool.is_none() {
            let known = Tool::ALL.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ");
            fields.add("tool", format!("`{named}` is not a tool: one of {known}"));
        }
        if named.is_empty() && body.question.trim().is_empty() {
            fields.add("question", "is required: ask in plain English, e.g. \"Am I on track against my estimate?\"");
        }
        if !named.is_empty() && !body.question.trim().is_empty() {
            fields.add("question", "ask a question or name a tool, not both");
        }
        let period = body.period.trim();
        if !period.is_empty() && (named.is_empty() || !finops_domain::cur_batches::is_billing_period(period)) {
            fields.add("period", format!("`{period}` is not a billing period (YYYY-MM) given with a tool"));
        }
        if !body.workload.trim().is_empty() && named.is_empty() {
            fields.add("workload", "is given with a tool; in a question, name the workload in quotes");
        }
        if body.question.len() > 2_000 {
            fields.add("question", format!("is {} bytes; ask in at most 2000", body.question.len()));
        }
        fields.finish()?;
        let instant = as_of.unwrap_or_else(Utc::now);
        // The instant is pinned once, so every call of one answer reads the same log.
        let pinned = instant.to_rfc3339();
        let understood = understand(&body.question, instant.date_naive());
        let intent = match (tool, &understood) {
            (Some(tool), _) => Intent {
                tool,
                period: (!period.is_empty()).then(|| period.to_owned()),
                workload: Some(body.workload.trim().to_owned()).filter(|w| !w.is_empty()),
                confirmed: false,
                card: Some(body.card.trim().to_owned()).filter(|c| !c.is_empty()),
                lines: Vec::new(),
                gap: Some(body.gap.trim().to_owned()).filter(|g| !g.is_empty()),
                gap_action: Some(body.gap_action.trim().to_owned()).filter(|a| !a.is_empty()),
            },
            (None, Ok(intent)) => intent.clone(),
            (None, Err(_)) => Intent {
                tool: Tool::Help,
                period: None,
                workload: None,
                confirmed: false,
                card: None,
                lines: Vec::new(),
                gap: None,
                gap_action: None,
            },
        };
        let draft = match intent.tool {
            Tool::Help => help(),
            Tool::OnTrack => self.on_track(&meta, &intent, &pinned).await?,
            Tool::TopCosts => self.top_costs(&meta, self.period(&intent, instant).await?, &pinned).await?,
            Tool::Spend => {
                let period = self.period(&intent, instant).await?;
                self.spend(&meta, period, intent.workload.as_deref(), &pinned).await?
            }
            Tool::UnapprovedModels => {
                self.unapproved_models(&meta, self.period(&intent, instant).await?, &pinned).await?
            }
            Tool::Gaps => self.gaps(&meta, self.period(&intent, instant).await?, &pinned).await?,
            Tool::ExplainGap | Tool::ActOnGap if intent.gap.is_none() => {
                return Err(Status::invalid_argument(format!(
                    "name the gap: gaps/{{uuid}}, as \"{}\" lists them",
                    Tool::Gaps.example()
                )));
            }
            Tool::ExplainGap => self.explain_gap(&meta, intent.gap.as_deref().unwrap_or_default(), &pinned).await?,
            Tool::ActOnGap => {
                let rationale = match body.rationale.trim() {
                    "" if !body.question.trim().is_empty() => {
                        format!("Actioned through Agent Bill: \"{}\"", body.question.trim())
                    }
                    given => given.to_owned(),
                };
                let action = GapAction {
                    gap: intent.gap.clone().unwrap_or_default(),
                    action: intent.gap_action.clone(),
                    rationale,
                    confirmed: body.confirm || intent.confirmed,
                    request_id: body.request_id.clone(),
                    business_request: body.business_request.trim().to_owned(),
                    product_owner: body.product_owner.trim().to_owned(),
                };
                self.act_on_gap(&meta, action).await?
            }
            Tool::SpendCards => self.spend_cards(&meta, &pinned).await?,
            // Without a card named, the cards that wait are the answer.
            Tool::AcceptCard | Tool::DisputeCard if intent.card.is_none() => self.spend_cards(&meta, &pinned).await?,
            Tool::AcceptCard | Tool::DisputeCard => {
                let verb = if intent.tool == Tool::AcceptCard { "Accepted" } else { "Disputed" };
                let action = CardAction {
                    card: intent.card.clone().unwrap_or_default(),
                    version: body.version,
                    rationale: if body.rationale.trim().is_empty() {
                        format!("{verb} through Agent Bill: \"{}\"", body.question.trim())
                    } else {
                        body.rationale.trim().to_owned()
                    },
                    confirmed: body.confirm || intent.confirmed,
                    request_id: body.request_id.clone(),
                    // Lines only dispute; named in the question, or given.
                    lines: if body.lines.is_empty() { intent.lines.clone() } else { body.lines.clone() },
                };
                self.card_action(&meta, intent.tool == Tool::AcceptCard, action).await?
            }
            Tool::Maturity => self.maturity(&meta, &intent, &pinned).await?,
            Tool::Investigations => self.investigations(&meta, &pinned).await?,
            Tool::Suspend | Tool::Resume => {
                let suspend = intent.tool == Tool::Suspend;
                let rationale = match body.rationale.trim() {
                    "" if !body.question.trim().is_empty() => format!(
                        "{} through Agent Bill: \"{}\"",
                        if suspend { "Suspended" } else { "Resumed" },
                        body.question.trim()
                    ),
                    given => given.to_owned(),
                };
                let request = ControlRequest {
                    suspend,
                    workload: intent.workload.clone(),
                    rationale,
                    confirmed: body.confirm || intent.confirmed,
                    request_id: body.request_id.clone(),
                };
                self.control(&meta, request).await?
            }
        };
        let mut text = draft.text.join("\n");
        if tool.is_none() && understood.is_err() {
            text = format!("I do not understand \"{}\".\n{text}", body.question.trim());
        }
        Ok(Response::new(pb::Answer {
            text,
            tool: intent.tool.as_str().to_owned(),
            calls: draft.calls.iter().map(|c| (*c).to_owned()).collect(),
            figures: draft.figures,
            period: draft.period,
            as_of: pinned,
        }))
    }
}
