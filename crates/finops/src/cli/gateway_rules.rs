//! Gateway mapping rules from the command line: list (now or as of an instant), record and
//! retire (FinOps Lead).

use clap::Subcommand;
use finops_proto::v1 as pb;
use finops_proto::v1::gateway_rule_service_client::GatewayRuleServiceClient;
use serde_json::{Value, json};

use super::{Connection, explain, print_rows, print_trail, text};

/// Gateway mapping rules.
#[derive(Debug, Subcommand)]
pub enum GatewayRulesCommand {
    /// Every rule, in the order recorded (the default).
    List {
        /// As of this instant (RFC 3339).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Charge a shared role's matching calls to a workload (FinOps Lead).
    Record {
        /// The role's account.
        #[arg(long)]
        account: String,
        /// The shared role's name (as in `assumed-role/{role}/…`).
        #[arg(long)]
        role: String,
        /// Sessions whose name matches this glob, e.g. `gw-user-1*`.
        #[arg(long, conflicts_with = "principal_tag", required_unless_present = "principal_tag")]
        session_pattern: Option<String>,
        /// Calls carrying this principal tag, `key=value` (the `iamPrincipal/` prefix left out).
        #[arg(long)]
        principal_tag: Option<String>,
        /// The approved request whose workload is charged (businessRequests/{uuid}).
        #[arg(long)]
        business_request: String,
        /// The first usage day charged, YYYY-MM-DD.
        #[arg(long)]
        effective_from: String,
        /// Why.
        #[arg(long)]
        rationale: String,
    },
    /// Stop a rule charging after a day (FinOps Lead).
    Retire {
        /// gatewayRules/{uuid}
        name: String,
        /// The last usage day it still charges, YYYY-MM-DD.
        #[arg(long)]
        effective_until: String,
        /// Why.
        #[arg(long)]
        rationale: String,
    },
}

fn rule_json(r: &pb::GatewayRule) -> Value {
    json!({
        "name": r.name, "account": r.account, "role_name": r.role_name, "session_pattern": r.session_pattern,
        "principal_tag": r.principal_tag, "workload_id": r.workload_id, "effective_from": r.effective_from,
        "effective_until": r.effective_until, "state": r.state,
        "history": r.history.iter().map(|h| json!({
            "at": h.at, "event": h.event, "who": h.who, "role": h.role, "what": h.what, "why": h.why,
            "event_id": h.event_id, "correlation_id": h.correlation_id,
        })).collect::<Vec<_>>(),
    })
}

fn matcher(v: &Value) -> String {
    match text(&v["session_pattern"]) {
        p if !p.is_empty() => format!("session {p}"),
        _ => format!("tag {}", text(&v["principal_tag"])),
    }
}

fn print_rule(v: &Value) {
    for key in ["name", "state", "account", "role_name", "workload_id", "effective_from", "effective_until"] {
        println!("{key:<16} {}", text(&v[key]));
    }
    println!("{:<16} {}", "matches", matcher(v));
    println!();
    print_trail(&v["history"]);
}

/// `finops gateway-rules …` (`finops gateway-rules` alone lists them).
pub async fn gateway_rules(conn: &Connection, command: Option<GatewayRulesCommand>) -> anyhow::Result<()> {
    let mut client = GatewayRuleServiceClient::new(conn.channel().await?);
    match command.unwrap_or(GatewayRulesCommand::List { as_of: None }) {
        GatewayRulesCommand::List { as_of } => {
            let message = pb::ListGatewayRulesRequest { as_of: as_of.unwrap_or_default() };
            let rules = client.list_gateway_rules(conn.request(message)?).await.map_err(explain)?.into_inner().rules;
            conn.print(Value::Array(rules.iter().map(rule_json).collect()), |v| {
                let rows = v.as_array().into_iter().flatten().map(|r| {
                    vec![
                        text(&r["name"]),
                        text(&r["state"]),
                        text(&r["account"]),
                        text(&r["role_name"]),
                        matcher(r),
                        text(&r["workload_id"]),
                        format!("{} – {}", text(&r["effective_from"]), text(&r["effective_until"])),
                    ]
                });
                print_rows(&["RULE", "STATE", "ACCOUNT", "ROLE", "MATCHES", "WORKLOAD", "DAYS"], rows.collect());
            });
        }
        GatewayRulesCommand::Record {
            account,
            role,
            session_pattern,
            principal_tag,
            business_request,
            effective_from,
            rationale,
        } => {
            let message = pb::RecordGatewayRuleRequest {
                account,
                role_name: role,
                session_pattern: session_pattern.unwrap_or_default(),
                principal_tag: principal_tag.unwrap_or_default(),
                business_request,
                effective_from,
                rationale,
                request_id: conn.request_id(),
            };
            let rule = client.record_gateway_rule(conn.request(message)?).await.map_err(explain)?.into_inner();
            conn.print(rule_json(&rule), print_rule);
        }
        GatewayRulesCommand::Retire { name, effective_until, rationale } => {
            let message =
                pb::RetireGatewayRuleRequest { name, effective_until, rationale, request_id: conn.request_id() };
            let rule = client.retire_gateway_rule(conn.request(message)?).await.map_err(explain)?.into_inner();
            conn.print(rule_json(&rule), print_rule);
        }
    }
    Ok(())
}
