//! Allocation Gaps from the command line: the gaps view with its totals, one gap's trail,
//! the inline actions, resolution and recall, the Declared AI Value Opportunity and the
//! notifications gap actions send.

use clap::{Args, Subcommand};
use finops_proto::v1 as pb;
use finops_proto::v1::gap_service_client::GapServiceClient;
use serde_json::{Value, json};

use super::{Connection, all_pages, explain, print_rows, print_trail, text};

/// Allocation Gaps.
#[derive(Debug, Subcommand)]
pub enum GapsCommand {
    /// The gaps view: totals per kind, then the gaps (the default).
    List(ListArgs),
    /// One gap with its whole trail (who, role, when, what, why).
    Show {
        /// gaps/{uuid}
        name: String,
        /// As of this instant (RFC 3339).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Carry out the gap's action (FinOps Lead).
    Act(ActArgs),
    /// Resolve by decision, e.g. "accepted as shared platform cost" (FinOps Lead).
    Resolve {
        /// gaps/{uuid}
        name: String,
        /// Why.
        #[arg(long)]
        rationale: String,
    },
    /// Recall the latest standing decision on the gap (FinOps Lead).
    Recall {
        /// gaps/{uuid}
        name: String,
        /// Why.
        #[arg(long)]
        rationale: String,
    },
    /// The Declared AI Value Opportunity beside the open gaps.
    Value {
        /// As of this instant (RFC 3339).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Notifications sent by gap actions (yours, as a Product Owner).
    Notifications {
        /// As of this instant (RFC 3339).
        #[arg(long)]
        as_of: Option<String>,
    },
}

/// Filters of the gaps view.
#[derive(Debug, Args, Default)]
pub struct ListArgs {
    /// A kind, e.g. unattributed_spend.
    #[arg(long)]
    kind: Option<String>,
    /// active, actioned, resolved or recalled.
    #[arg(long)]
    state: Option<String>,
    /// A usage account.
    #[arg(long)]
    account: Option<String>,
    /// A workload id.
    #[arg(long)]
    workload: Option<String>,
    /// A billing period YYYY-MM (spend and totals for it).
    #[arg(long)]
    period: Option<String>,
    /// As of this instant (RFC 3339).
    #[arg(long)]
    as_of: Option<String>,
}

/// An action and what it needs.
#[derive(Debug, Args)]
pub struct ActArgs {
    /// gaps/{uuid}
    name: String,
    /// The action (see the gap's `actions`): guided_cur_setup, claim_in_spaces,
    /// recommend_dedicated_role, approve, block, notify_product_owner,
    /// request_business_case, map_gateway_sessions.
    #[arg(long)]
    action: String,
    /// Why.
    #[arg(long)]
    rationale: String,
    /// claim_in_spaces, approve, map_gateway_sessions: the approved request whose
    /// workload takes the resource.
    #[arg(long)]
    business_request: Option<String>,
    /// request_business_case: YYYY-MM-DD (default: in 14 days).
    #[arg(long)]
    due: Option<String>,
    /// guided_cur_setup: the S3 bucket the export delivers to.
    #[arg(long)]
    bucket: Option<String>,
    /// The Product Owner, when the gap names none.
    #[arg(long)]
    product_owner: Option<String>,
    /// recommend_dedicated_role, approve: the product the new request is for.
    #[arg(long)]
    product: Option<String>,
    /// map_gateway_sessions: the role's sessions whose name matches this glob
    /// (`gw-user-1*`) are the workload's.
    #[arg(long, conflicts_with = "principal_tag")]
    session_pattern: Option<String>,
    /// map_gateway_sessions: the role's calls carrying this principal tag (`team=ds`, the
    /// `iamPrincipal/` prefix left out) are the workload's.
    #[arg(long)]
    principal_tag: Option<String>,
    /// map_gateway_sessions: the first usage day charged, YYYY-MM-DD (default: the first
    /// day of the gap's first period).
    #[arg(long)]
    effective_from: Option<String>,
}

fn dollars(cents: i64) -> String {
    format!("{}{}.{:02}", if cents < 0 { "-" } else { "" }, cents.abs() / 100, cents.abs() % 100)
}

fn gap_json(g: &pb::Gap) -> Value {
    json!({
        "name": g.name, "kind": g.kind, "scenario": g.scenario, "anchor": g.anchor, "account": g.account,
        "workload_id": g.workload_id, "principal": g.principal, "concerns": g.concerns, "status": g.status,
        "recalled": g.recalled, "actions": g.actions, "total_cents": g.total_cents,
        "detected_at": g.detected_at, "updated_at": g.updated_at, "version": g.version,
        "spend": g.spend.iter().map(|s| json!({
            "period": s.period, "batch": s.batch, "cents": s.cents, "tokens": s.tokens, "lines": s.lines,
            "first_day": s.first_day, "last_day": s.last_day, "principals": s.principals, "models": s.models,
        })).collect::<Vec<_>>(),
        "last_action": g.last_action.as_ref().map(|a| json!({
            "action": a.action, "resources": a.resources, "steps": a.steps, "commands": a.commands,
            "by": a.by, "at": a.at,
            "notification": a.notification.as_ref().map(|n| json!({"to": n.to, "subject": n.subject, "body": n.body, "due": n.due})),
        })),
        "history": g.history.iter().map(|h| json!({
            "at": h.at, "event": h.event, "who": h.who, "role": h.role, "what": h.what, "why": h.why,
            "event_id": h.event_id, "correlation_id": h.correlation_id,
        })).collect::<Vec<_>>(),
    })
}

fn print_gap(v: &Value) {
    for key in ["name", "scenario", "kind", "status", "anchor", "account", "principal", "workload_id"] {
        println!("{key:<12} {}", text(&v[key]));
    }
    println!(
        "{:<12} {}",
        "concerns",
        v["concerns"].as_array().map(|c| c.iter().map(text).collect::<Vec<_>>().join(", ")).unwrap_or_default()
    );
    println!(
        "{:<12} {}",
        "actions",
        v["actions"].as_array().map(|c| c.iter().map(text).collect::<Vec<_>>().join(", ")).unwrap_or_default()
    );
    println!("{:<12} ${}", "spend", dollars(v["total_cents"].as_i64().unwrap_or(0)));
    println!();
    let spend = v["spend"].as_array().into_iter().flatten().map(|s| {
        vec![
            text(&s["period"]),
            dollars(s["cents"].as_i64().unwrap_or(0)),
            text(&s["lines"]),
            format!("{} – {}", text(&s["first_day"]), text(&s["last_day"])),
            s["models"].as_array().map(|m| m.iter().map(text).collect::<Vec<_>>().join(", ")).unwrap_or_default(),
        ]
    });
    print_rows(&["PERIOD", "DOLLARS", "LINES", "DAYS", "MODELS"], spend.collect());
    if let Some(action) = v["last_action"].as_object() {
        println!();
        println!("last action  {} by {} at {}", text(&action["action"]), text(&action["by"]), text(&action["at"]));
        for r in action["resources"].as_array().into_iter().flatten() {
            println!("  created    {}", text(r));
        }
        if let Some(n) = action["notification"].as_object() {
            println!("  notified   {} — {} (due {})", text(&n["to"]), text(&n["subject"]), text(&n["due"]));
        }
        for (i, s) in action["steps"].as_array().into_iter().flatten().enumerate() {
            println!("  {}. {}", i + 1, text(s));
        }
        for c in action["commands"].as_array().into_iter().flatten() {
            println!("  $ {}", text(c));
        }
    }
    println!();
    print_trail(&v["history"]);
}

/// `finops gaps …` (`finops gaps` alone lists them).
pub async fn gaps(conn: &Connection, command: Option<GapsCommand>) -> anyhow::Result<()> {
    let mut client = GapServiceClient::new(conn.channel().await?);
    match command.unwrap_or(GapsCommand::List(ListArgs::default())) {
        GapsCommand::List(args) => {
            let message = |page_token: String| pb::ListGapsRequest {
                kind: args.kind.clone().unwrap_or_default(),
                state: args.state.clone().unwrap_or_default(),
                account: args.account.clone().unwrap_or_default(),
                workload_id: args.workload.clone().unwrap_or_default(),
                period: args.period.clone().unwrap_or_default(),
                page_size: 1000,
                page_token,
                as_of: args.as_of.clone().unwrap_or_default(),
            };
            let mut page = client.list_gaps(conn.request(message(String::new()))?).await.map_err(explain)?.into_inner();
            let (totals, as_of) = (page.totals.clone(), page.as_of.clone());
            let mut listed = std::mem::take(&mut page.gaps);
            while !page.next_page_token.is_empty() {
                let token = std::mem::take(&mut page.next_page_token);
                page = client.list_gaps(conn.request(message(token))?).await.map_err(explain)?.into_inner();
                listed.append(&mut page.gaps);
            }
            let value = json!({
                "as_of": as_of,
                "totals": totals.iter().map(|t| json!({"kind": t.kind, "scenario": t.scenario, "gaps": t.gaps, "cents": t.cents})).collect::<Vec<_>>(),
                "gaps": listed.iter().map(gap_json).collect::<Vec<_>>(),
            });
            conn.print(value, |v| {
                let rows = v["totals"].as_array().into_iter().flatten().map(|t| {
                    vec![
                        text(&t["scenario"]),
                        text(&t["kind"]),
                        text(&t["gaps"]),
                        dollars(t["cents"].as_i64().unwrap_or(0)),
                    ]
                });
                print_rows(&["SCENARIO", "KIND", "GAPS", "DOLLARS"], rows.collect());
                println!();
                let rows = v["gaps"].as_array().into_iter().flatten().map(|g| {
                    vec![
                        text(&g["name"]),
                        text(&g["kind"]),
                        text(&g["status"]),
                        text(&g["anchor"]),
                        dollars(g["total_cents"].as_i64().unwrap_or(0)),
                    ]
                });
                print_rows(&["GAP", "KIND", "STATUS", "ANCHOR", "DOLLARS"], rows.collect());
            });
        }
        GapsCommand::Show { name, as_of } => {
            let message = pb::GetGapRequest { name, as_of: as_of.unwrap_or_default() };
            let gap = client.get_gap(conn.request(message)?).await.map_err(explain)?.into_inner();
            conn.print(gap_json(&gap), print_gap);
        }
        GapsCommand::Act(a) => {
            let message = pb::ActOnGapRequest {
                name: a.name,
                action: a.action,
                rationale: a.rationale,
                request_id: conn.request_id(),
                business_request: a.business_request.unwrap_or_default(),
                due_date: a.due.unwrap_or_default(),
                bucket: a.bucket.unwrap_or_default(),
                product_owner: a.product_owner.unwrap_or_default(),
                product_id: a.product.unwrap_or_default(),
                session_pattern: a.session_pattern.unwrap_or_default(),
                principal_tag: a.principal_tag.unwrap_or_default(),
                effective_from: a.effective_from.unwrap_or_default(),
            };
            let gap = client.act_on_gap(conn.request(message)?).await.map_err(explain)?.into_inner();
            conn.print(gap_json(&gap), print_gap);
        }
        GapsCommand::Resolve { name, rationale } => {
            let message = pb::ResolveGapRequest { name, rationale, request_id: conn.request_id() };
            let gap = client.resolve_gap(conn.request(message)?).await.map_err(explain)?.into_inner();
            conn.print(gap_json(&gap), print_gap);
        }
        GapsCommand::Recall { name, rationale } => {
            let message = pb::RecallGapDecisionRequest { name, rationale, request_id: conn.request_id() };
            let gap = client.recall_gap_decision(conn.request(message)?).await.map_err(explain)?.into_inner();
            conn.print(gap_json(&gap), print_gap);
        }
        GapsCommand::Value { as_of } => {
            let message = pb::GetValueOpportunityRequest { as_of: as_of.unwrap_or_default() };
            let v = client.get_value_opportunity(conn.request(message)?).await.map_err(explain)?.into_inner();
            let value = json!({
                "annual_cost_saving_cents": v.annual_cost_saving_cents,
                "annual_revenue_driving_cents": v.annual_revenue_driving_cents,
                "business_cases": v.business_cases, "open_gaps": v.open_gaps, "open_gap_cents": v.open_gap_cents,
                "open_by_kind": v.open_by_kind.iter().map(|t| json!({"kind": t.kind, "scenario": t.scenario, "gaps": t.gaps, "cents": t.cents})).collect::<Vec<_>>(),
                "as_of": v.as_of,
            });
            conn.print(value, |v| {
                println!("Declared AI Value Opportunity (as of {})", text(&v["as_of"]));
                println!("  annual cost saving      ${}", dollars(v["annual_cost_saving_cents"].as_i64().unwrap_or(0)));
                println!(
                    "  annual revenue driving  ${}",
                    dollars(v["annual_revenue_driving_cents"].as_i64().unwrap_or(0))
                );
                println!("  business cases          {}", text(&v["business_cases"]));
                println!(
                    "Open gaps: {} holding ${}",
                    text(&v["open_gaps"]),
                    dollars(v["open_gap_cents"].as_i64().unwrap_or(0))
                );
                let rows =
                    v["open_by_kind"].as_array().into_iter().flatten().map(|t| {
                        vec![text(&t["scenario"]), text(&t["gaps"]), dollars(t["cents"].as_i64().unwrap_or(0))]
                    });
                print_rows(&["SCENARIO", "GAPS", "DOLLARS"], rows.collect());
            });
        }
        GapsCommand::Notifications { as_of } => {
            let listed = all_pages(|page_token| {
                let mut client = client.clone();
                let request = conn.request(pb::ListNotificationsRequest {
                    page_size: 1000,
                    page_token,
                    as_of: as_of.clone().unwrap_or_default(),
                });
                async move {
                    let page = client.list_notifications(request?).await.map_err(explain)?.into_inner();
                    Ok((page.notifications, page.next_page_token))
                }
            })
            .await?;
            let value = Value::Array(
                listed
                    .iter()
                    .map(|n| json!({"notification_id": n.notification_id, "to": n.to, "subject": n.subject, "body": n.body, "due": n.due, "gap": n.gap, "action": n.action, "sent_by": n.sent_by, "sent_at": n.sent_at}))
                    .collect(),
            );
            conn.print(value, |v| {
                let rows = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|n| ["sent_at", "to", "subject", "due", "gap"].iter().map(|k| text(&n[*k])).collect());
                print_rows(&["SENT", "TO", "SUBJECT", "DUE", "GAP"], rows.collect());
            });
        }
    }
    Ok(())
}
