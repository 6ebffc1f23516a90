//! Weekly Spend Cards from the command line: list and show (now or as of an instant),
//! accept and dispute (Product Owner), resolve (FinOps Lead), approve the roll-up
//! (Portfolio Owner), and the roll-ups Finance reads.

use clap::Subcommand;
use finops_domain::vocabulary::dollars;
use finops_proto::v1 as pb;
use finops_proto::v1::spaces_service_client::SpacesServiceClient;
use finops_proto::v1::spend_card_service_client::SpendCardServiceClient;
use serde_json::{Value, json};

use super::{Connection, all_pages, explain, print_rows, print_trail, text};

/// Spend cards and roll-ups.
#[derive(Debug, Subcommand)]
pub enum CardsCommand {
    /// The cards you may see (the default), filtered.
    List {
        /// The week's Monday, YYYY-MM-DD.
        #[arg(long)]
        week: Option<String>,
        /// issued, accepted, disputed or resolved.
        #[arg(long)]
        status: Option<String>,
        /// As of this instant (RFC 3339).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// One card: its lines, sign-off, versions and trail.
    Show {
        /// spendCards/{uuid}
        name: String,
        /// As of this instant (RFC 3339).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Accept the current version (the workload's Product Owner).
    Accept {
        /// spendCards/{uuid}
        name: String,
        /// The version accepted.
        #[arg(long)]
        version: u32,
        /// Why.
        #[arg(long)]
        rationale: String,
    },
    /// Dispute flagged lines (the workload's Product Owner).
    Dispute {
        /// spendCards/{uuid}
        name: String,
        /// The version disputed.
        #[arg(long)]
        version: u32,
        /// A flagged line's key (model/token_type/region); repeat for several.
        #[arg(long = "line", required = true)]
        lines: Vec<String>,
        /// Why.
        #[arg(long)]
        rationale: String,
    },
    /// Settle a dispute (FinOps Lead): uphold it, or adjust the week's charge.
    Resolve {
        /// spendCards/{uuid}
        name: String,
        /// The version disputed.
        #[arg(long)]
        version: u32,
        /// Charge this many dollars for the week instead (else the figures are upheld).
        #[arg(long)]
        adjust_dollars: Option<f64>,
        /// Why.
        #[arg(long)]
        rationale: String,
    },
    /// Approve the portfolio's roll-up of a week (Portfolio Owner).
    Approve {
        /// The portfolio.
        #[arg(long)]
        portfolio: String,
        /// The week's Monday, YYYY-MM-DD.
        #[arg(long)]
        week: String,
        /// Why.
        #[arg(long)]
        rationale: String,
    },
    /// Roll-ups (approved ones are the chargeback-ready record).
    Rollups {
        /// approved or reopened.
        #[arg(long)]
        status: Option<String>,
        /// As of this instant (RFC 3339).
        #[arg(long)]
        as_of: Option<String>,
    },
}

fn card_json(c: &pb::SpendCard) -> Value {
    json!({
        "name": c.name, "workload_id": c.workload_id, "portfolio_id": c.portfolio_id, "week": c.week,
        "version": c.version, "status": c.status, "actual_cents": c.actual_cents,
        "estimate_cents": c.estimate_cents, "variance_cents": c.variance_cents,
        "variance_basis_points": c.variance_basis_points, "variance_flagged": c.variance_flagged,
        "disputed_lines": c.disputed_lines, "outcome": c.outcome, "charged_cents": c.charged_cents,
        "forecast": {
            "month_to_date_cents": c.month_to_date_cents, "month_estimate_cents": c.month_estimate_cents,
            "burn_per_day_cents": c.burn_per_day_cents, "projected_month_cents": c.projected_month_cents,
            "crossing_date": c.crossing_date, "crossed": c.crossed,
        },
        "lines": c.lines.iter().map(|l| json!({
            "key": l.key, "model": l.model, "token_type": l.token_type, "region": l.region, "tokens": l.tokens,
            "cents": l.cents, "out_of_scope": l.out_of_scope, "flagged": l.flagged,
        })).collect::<Vec<_>>(),
        "versions": c.versions.iter().map(|v| json!({
            "version": v.version, "issued_at": v.issued_at, "reason": v.reason, "batches": v.batches,
            "actual_cents": v.actual_cents, "estimate_cents": v.estimate_cents,
        })).collect::<Vec<_>>(),
        "history": c.history.iter().map(|h| json!({
            "at": h.at, "event": h.event, "who": h.who, "role": h.role, "what": h.what, "why": h.why,
        })).collect::<Vec<_>>(),
    })
}

fn rollup_json(r: &pb::SpendRollup) -> Value {
    json!({
        "name": r.name, "portfolio_id": r.portfolio_id, "week": r.week, "status": r.status,
        "total_cents": r.total_cents, "approved_by": r.approved_by, "approved_at": r.approved_at,
        "cards": r.cards.iter().map(|c| json!({
            "workload_id": c.workload_id, "version": c.version, "status": c.status, "charged_cents": c.charged_cents,
        })).collect::<Vec<_>>(),
    })
}

fn cents_of(v: &Value, key: &str) -> String {
    dollars(v[key].as_i64().unwrap_or(0))
}

/// A forecast (the `forecast` object of a card's or a workload's JSON) in one line: the
/// month to date, its burn per day, the month at that rate against its estimate, and the
/// day it crosses.
pub(crate) fn forecast_words(f: &Value) -> String {
    let crossing = match (text(&f["crossing_date"]), f["crossed"] == true) {
        (d, _) if d.is_empty() => "not this month".to_owned(),
        (d, true) => format!("crossed on {d}"),
        (d, false) => format!("crosses on {d}"),
    };
    format!(
        "{} month to date, {}/day, {} projected of {}: {crossing}",
        cents_of(f, "month_to_date_cents"),
        cents_of(f, "burn_per_day_cents"),
        cents_of(f, "projected_month_cents"),
        cents_of(f, "month_estimate_cents"),
    )
}

fn print_card(v: &Value) {
    for key in ["name", "week", "workload_id", "portfolio_id", "status", "version"] {
        println!("{key:<16} {}", text(&v[key]));
    }
    println!("{:<16} {}", "actual", cents_of(v, "actual_cents"));
    println!("{:<16} {}", "estimate", cents_of(v, "estimate_cents"));
    let flag = if v["variance_flagged"] == true { "  (flagged)" } else { "" };
    println!("{:<16} {}{flag}", "variance", cents_of(v, "variance_cents"));
    println!("{:<16} {}", "charged", cents_of(v, "charged_cents"));
    println!("{:<16} {}", "forecast", forecast_words(&v["forecast"]));
    println!();
    let rows = v["lines"].as_array().into_iter().flatten().map(|l| {
        vec![
            text(&l["key"]),
            text(&l["tokens"]),
            cents_of(l, "cents"),
            if l["out_of_scope"] == true { "out of scope".into() } else { String::new() },
            if l["flagged"] == true { "yes".into() } else { String::new() },
        ]
    });
    print_rows(&["LINE", "TOKENS", "COST", "SCOPE", "FLAGGED"], rows.collect());
    println!();
    print_trail(&v["history"]);
}

fn print_rollup(v: &Value) {
    for key in ["name", "portfolio_id", "week", "status", "approved_by", "approved_at"] {
        println!("{key:<16} {}", text(&v[key]));
    }
    println!("{:<16} {}", "total", cents_of(v, "total_cents"));
}

/// `finops cards …` (`finops cards` alone lists them).
pub async fn cards(conn: &Connection, command: Option<CardsCommand>) -> anyhow::Result<()> {
    let client = SpendCardServiceClient::new(conn.channel().await?);
    match command.unwrap_or(CardsCommand::List { week: None, status: None, as_of: None }) {
        CardsCommand::List { week, status, as_of } => {
            let all = all_pages(|page_token| {
                let mut client = client.clone();
                let request = conn.request(pb::ListSpendCardsRequest {
                    week: week.clone().unwrap_or_default(),
                    status: status.clone().unwrap_or_default(),
                    as_of: as_of.clone().unwrap_or_default(),
                    page_size: 1000,
                    page_token,
                    ..Default::default()
                });
                async move {
                    let page = client.list_spend_cards(request?).await.map_err(explain)?.into_inner();
                    Ok((page.cards, page.next_page_token))
                }
            })
            .await?;
            // The table names workloads where the caller may read them (a Portfolio Owner
            // may not: ids then).
            let list = pb::ListWorkloadsRequest {
                page_size: 1000,
                as_of: as_of.clone().unwrap_or_default(),
                ..Default::default()
            };
            let names: std::collections::BTreeMap<String, String> =
                match SpacesServiceClient::new(conn.channel().await?).list_workloads(conn.request(list)?).await {
                    Ok(page) => page.into_inner().workloads.into_iter().map(|w| (w.workload_id, w.name)).collect(),
                    Err(_) => Default::default(),
                };
            conn.print(Value::Array(all.iter().map(card_json).collect()), |v| {
                let rows = v.as_array().into_iter().flatten().map(|c| {
                    let id = text(&c["workload_id"]);
                    vec![
                        text(&c["name"]),
                        text(&c["week"]),
                        names.get(&id).cloned().unwrap_or(id),
                        format!("{} v{}", text(&c["status"]), text(&c["version"])),
                        cents_of(c, "actual_cents"),
                        cents_of(c, "estimate_cents"),
                        if c["variance_flagged"] == true { "yes".into() } else { String::new() },
                    ]
                });
                print_rows(&["CARD", "WEEK", "WORKLOAD", "STATUS", "ACTUAL", "ESTIMATE", "FLAGGED"], rows.collect());
            });
        }
        CardsCommand::Show { name, as_of } => {
            let message = pb::GetSpendCardRequest { name, as_of: as_of.unwrap_or_default() };
            let card = client.clone().get_spend_card(conn.request(message)?).await.map_err(explain)?.into_inner();
            conn.print(card_json(&card), print_card);
        }
        CardsCommand::Accept { name, version, rationale } => {
            let message = pb::AcceptSpendCardRequest { name, version, rationale, request_id: conn.request_id() };
            let card = client.clone().accept_spend_card(conn.request(message)?).await.map_err(explain)?.into_inner();
            conn.print(card_json(&card), print_card);
        }
        CardsCommand::Dispute { name, version, lines, rationale } => {
            let message =
                pb::DisputeSpendCardRequest { name, version, lines, rationale, request_id: conn.request_id() };
            let card = client.clone().dispute_spend_card(conn.request(message)?).await.map_err(explain)?.into_inner();
            conn.print(card_json(&card), print_card);
        }
        CardsCommand::Resolve { name, version, adjust_dollars, rationale } => {
            let (outcome, adjusted_cents) = match adjust_dollars {
                Some(d) => ("adjusted", (d * 100.0).round() as i64),
                None => ("upheld", 0),
            };
            let message = pb::ResolveSpendCardDisputeRequest {
                name,
                version,
                outcome: outcome.into(),
                adjusted_cents,
                rationale,
                request_id: conn.request_id(),
            };
            let card =
                client.clone().resolve_spend_card_dispute(conn.request(message)?).await.map_err(explain)?.into_inner();
            conn.print(card_json(&card), print_card);
        }
        CardsCommand::Approve { portfolio, week, rationale } => {
            let message =
                pb::ApproveRollupRequest { portfolio_id: portfolio, week, rationale, request_id: conn.request_id() };
            let rollup = client.clone().approve_rollup(conn.request(message)?).await.map_err(explain)?.into_inner();
            conn.print(rollup_json(&rollup), print_rollup);
        }
        CardsCommand::Rollups { status, as_of } => {
            let all = all_pages(|page_token| {
                let mut client = client.clone();
                let request = conn.request(pb::ListRollupsRequest {
                    status: status.clone().unwrap_or_default(),
                    as_of: as_of.clone().unwrap_or_default(),
                    page_size: 1000,
                    page_token,
                    ..Default::default()
                });
                async move {
                    let page = client.list_rollups(request?).await.map_err(explain)?.into_inner();
                    Ok((page.rollups, page.next_page_token))
                }
            })
            .await?;
            conn.print(Value::Array(all.iter().map(rollup_json).collect()), |v| {
                let rows = v.as_array().into_iter().flatten().map(|r| {
                    vec![
                        text(&r["name"]),
                        text(&r["week"]),
                        text(&r["portfolio_id"]),
                        text(&r["status"]),
                        cents_of(r, "total_cents"),
                        text(&r["approved_by"]),
                    ]
                });
                print_rows(&["ROLL-UP", "WEEK", "PORTFOLIO", "STATUS", "TOTAL", "APPROVED BY"], rows.collect());
            });
        }
    }
    Ok(())
}
