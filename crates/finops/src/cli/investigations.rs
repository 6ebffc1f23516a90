//! `finops investigations`: what the detectors opened — list, show (evidence, notes and
//! the trail), assign, note, link to a gap, close — as a table or `--json`.

use clap::Subcommand;
use finops_proto::v1 as pb;
use finops_proto::v1::investigation_service_client::InvestigationServiceClient;
use serde_json::{Value, json};

use super::{Connection, explain, print_rows, text};

/// What to do with investigations.
#[derive(Debug, Subcommand)]
pub enum InvestigationsCommand {
    /// Investigations (a Product Owner sees those on their workloads or assigned to them).
    List {
        /// open, investigating or closed.
        #[arg(long)]
        status: Option<String>,
        /// spend_spike, model_surge or new_principal.
        #[arg(long)]
        signal: Option<String>,
        /// As of this instant (RFC 3339).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// One investigation: its evidence, notes and trail.
    Show {
        /// investigations/{uuid}
        name: String,
        /// As of this instant (RFC 3339).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Assign it to an owner (FinOps Lead).
    Assign {
        /// investigations/{uuid}
        name: String,
        /// The owner's subject.
        #[arg(long)]
        owner: String,
        /// Why.
        #[arg(long)]
        rationale: String,
    },
    /// Note what was found (the owner or the FinOps Lead).
    Note {
        /// investigations/{uuid}
        name: String,
        /// The note.
        note: String,
    },
    /// Link it to the Allocation Gap it explains (FinOps Lead).
    Link {
        /// investigations/{uuid}
        name: String,
        /// gaps/{uuid}
        #[arg(long)]
        gap: String,
        /// Why.
        #[arg(long)]
        rationale: String,
    },
    /// Close it (the owner or the FinOps Lead).
    Close {
        /// investigations/{uuid}
        name: String,
        /// Why.
        #[arg(long)]
        rationale: String,
    },
}

fn investigation_json(i: &pb::Investigation) -> Value {
    let e = i.evidence.clone().unwrap_or_default();
    json!({
        "name": i.name, "signal": i.signal, "subject": i.subject, "account": i.account,
        "workload_id": i.workload_id, "summary": i.summary, "status": i.status, "owner": i.owner,
        "opened_at": i.opened_at,
        "evidence": {
            "day": e.day, "days": e.days, "observed_cents": e.observed_cents,
            "baseline_cents": e.baseline_cents, "principals": e.principals, "models": e.models,
            "hours": e.hours,
        },
        "notes": i.notes.iter().map(|n| json!({"note": n.note, "by": n.by, "at": n.at})).collect::<Vec<_>>(),
        "gaps": i.gaps,
        "history": i.history.iter().map(|h| json!({
            "at": h.at, "event": h.event, "who": h.who, "role": h.role, "what": h.what, "why": h.why,
        })).collect::<Vec<_>>(),
    })
}

fn show(conn: &Connection, i: &pb::Investigation) {
    conn.print(investigation_json(i), |v| {
        println!("{} ({}): {}", text(&v["name"]), text(&v["signal"]), text(&v["status"]));
        println!("{}", text(&v["summary"]));
        let e = &v["evidence"];
        // A firing on the logs' hours names its first hour and an hourly baseline.
        let hours = e["hours"].as_array().map(Vec::len).unwrap_or(0);
        let (when, per) = match e["hours"].get(0) {
            Some(first) => (format!("in the hour from {}", text(first)), "an hour"),
            None => (format!("on {}", text(&e["day"])), "a day"),
        };
        println!(
            "evidence: {} observed {when} against a baseline of {} {per}; principals {}; models {}",
            finops_domain::vocabulary::dollars(e["observed_cents"].as_i64().unwrap_or(0)),
            finops_domain::vocabulary::dollars(e["baseline_cents"].as_i64().unwrap_or(0)),
            list(&e["principals"]),
            list(&e["models"]),
        );
        if hours > 1 {
            println!("fired in {hours} hours: {}", list(&e["hours"]));
        }
        if !text(&v["owner"]).is_empty() {
            println!("owner: {}", text(&v["owner"]));
        }
        for gap in v["gaps"].as_array().into_iter().flatten() {
            println!("linked to {}", text(gap));
        }
        println!();
        let rows = v["history"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| vec![text(&h["at"]), text(&h["who"]), text(&h["role"]), text(&h["what"]), text(&h["why"])]);
        print_rows(&["WHEN", "WHO", "ROLE", "WHAT", "WHY"], rows.collect());
    });
}

fn list(v: &Value) -> String {
    let items: Vec<String> = v.as_array().into_iter().flatten().map(text).collect();
    if items.is_empty() { "—".to_owned() } else { items.join(", ") }
}

/// `finops investigations …`
pub async fn investigations(conn: &Connection, command: Option<InvestigationsCommand>) -> anyhow::Result<()> {
    let mut client = InvestigationServiceClient::new(conn.channel().await?);
    let command = command.unwrap_or(InvestigationsCommand::List { status: None, signal: None, as_of: None });
    let one = match command {
        InvestigationsCommand::List { status, signal, as_of } => {
            let mut all = Vec::new();
            let mut token = String::new();
            loop {
                let message = pb::ListInvestigationsRequest {
                    status: status.clone().unwrap_or_default(),
                    signal: signal.clone().unwrap_or_default(),
                    page_size: 500,
                    page_token: token,
                    as_of: as_of.clone().unwrap_or_default(),
                    ..Default::default()
                };
                let page = client.list_investigations(conn.request(message)?).await.map_err(explain)?.into_inner();
                all.extend(page.investigations);
                if page.next_page_token.is_empty() {
                    break;
                }
                token = page.next_page_token;
            }
            conn.print(Value::Array(all.iter().map(investigation_json).collect()), |v| {
                let rows = v.as_array().into_iter().flatten().map(|i| {
                    vec![
                        text(&i["name"]),
                        text(&i["signal"]),
                        text(&i["status"]),
                        text(&i["owner"]),
                        text(&i["summary"]),
                    ]
                });
                print_rows(&["NAME", "SIGNAL", "STATUS", "OWNER", "SUMMARY"], rows.collect());
            });
            return Ok(());
        }
        InvestigationsCommand::Show { name, as_of } => {
            let message = pb::GetInvestigationRequest { name, as_of: as_of.unwrap_or_default() };
            client.get_investigation(conn.request(message)?).await
        }
        InvestigationsCommand::Assign { name, owner, rationale } => {
            let message = pb::AssignInvestigationRequest { name, owner, rationale, request_id: conn.request_id() };
            client.assign_investigation(conn.request(message)?).await
        }
        InvestigationsCommand::Note { name, note } => {
            let message = pb::NoteInvestigationRequest { name, note, request_id: conn.request_id() };
            client.note_investigation(conn.request(message)?).await
        }
        InvestigationsCommand::Link { name, gap, rationale } => {
            let message = pb::LinkInvestigationToGapRequest { name, gap, rationale, request_id: conn.request_id() };
            client.link_investigation_to_gap(conn.request(message)?).await
        }
        InvestigationsCommand::Close { name, rationale } => {
            let message = pb::CloseInvestigationRequest { name, rationale, request_id: conn.request_id() };
            client.close_investigation(conn.request(message)?).await
        }
    };
    show(conn, &one.map_err(explain)?.into_inner());
    Ok(())
}
