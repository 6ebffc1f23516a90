//! `finops suspend`, `finops resume`, `finops control`: the kill switch — suspend a
//! workload at once, resume it, and see where it stands: every decision, each IAM call
//! with its `aws iam …` command and its result.

use clap::Args;
use finops_proto::v1 as pb;
use finops_proto::v1::workload_control_service_client::WorkloadControlServiceClient;
use serde_json::{Value, json};

use super::{Connection, explain, print_rows, text};

/// A decision on a workload.
#[derive(Debug, Args)]
pub struct ControlArgs {
    /// The workload: its name or workloads/{uuid}.
    pub workload: String,
    /// Why (required).
    #[arg(long)]
    pub rationale: String,
}

/// A workload's kill-switch status.
#[derive(Debug, Args)]
pub struct ControlStatusArgs {
    /// The workload: its name or workloads/{uuid}.
    pub workload: String,
    /// As of this instant (RFC 3339).
    #[arg(long)]
    pub as_of: Option<String>,
}

fn status_json(s: &pb::WorkloadControlStatus) -> Value {
    json!({
        "workload": s.workload, "workload_name": s.workload_name, "status": s.status,
        "decisions": s.decisions.iter().map(|d| json!({
            "decision": d.decision, "action": d.action, "enforcement": d.enforcement,
            "decided_by": d.decided_by, "role": d.role, "rationale": d.rationale, "decided_at": d.decided_at,
            "attempts": d.attempts, "last_error": d.last_error, "applied": d.applied, "not_covered": d.not_covered,
            "calls": d.calls.iter().map(|c| json!({
                "action": c.action, "account": c.account, "role_name": c.role_name,
                "command": c.command, "result": c.result, "detail": c.detail,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

fn show(conn: &Connection, status: &pb::WorkloadControlStatus) {
    conn.print(status_json(status), |v| {
        println!("{} ({}): {}", text(&v["workload_name"]), text(&v["workload"]), text(&v["status"]));
        for d in v["decisions"].as_array().into_iter().flatten() {
            println!();
            println!(
                "#{} {} by {} ({}) at {}: {}",
                text(&d["decision"]),
                text(&d["action"]),
                text(&d["decided_by"]),
                text(&d["role"]),
                text(&d["decided_at"]),
                text(&d["rationale"])
            );
            let enforcement = match d["enforcement"].as_str() {
                Some("manual") => "manual: run these commands with the account's credentials".to_owned(),
                _ => format!("automatic: {} attempt(s)", text(&d["attempts"])),
            };
            println!("  enforcement: {enforcement}");
            let rows = d["calls"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| vec![text(&c["result"]), text(&c["account"]), text(&c["command"]), text(&c["detail"])]);
            print_rows(&["RESULT", "ACCOUNT", "COMMAND", "DETAIL"], rows.collect());
            if let Some(error) = d["last_error"].as_str().filter(|e| !e.is_empty()) {
                println!("  last error (retried with backoff): {error}");
            }
            for step in d["not_covered"].as_array().into_iter().flatten() {
                println!("  not reachable by IAM: {}", text(step));
            }
        }
    });
}

/// `finops suspend WORKLOAD --rationale WHY`
pub async fn suspend(conn: &Connection, args: ControlArgs) -> anyhow::Result<()> {
    let mut client = WorkloadControlServiceClient::new(conn.channel().await?);
    let message = pb::SuspendWorkloadRequest {
        workload: args.workload,
        rationale: args.rationale,
        request_id: conn.request_id(),
    };
    let status = client.suspend_workload(conn.request(message)?).await.map_err(explain)?.into_inner();
    show(conn, &status);
    Ok(())
}

/// `finops resume WORKLOAD --rationale WHY` (FinOps Lead)
pub async fn resume(conn: &Connection, args: ControlArgs) -> anyhow::Result<()> {
    let mut client = WorkloadControlServiceClient::new(conn.channel().await?);
    let message =
        pb::ResumeWorkloadRequest { workload: args.workload, rationale: args.rationale, request_id: conn.request_id() };
    let status = client.resume_workload(conn.request(message)?).await.map_err(explain)?.into_inner();
    show(conn, &status);
    Ok(())
}

/// `finops control WORKLOAD [--as-of T]`
pub async fn control(conn: &Connection, args: ControlStatusArgs) -> anyhow::Result<()> {
    let mut client = WorkloadControlServiceClient::new(conn.channel().await?);
    let message = pb::GetWorkloadControlRequest { workload: args.workload, as_of: args.as_of.unwrap_or_default() };
    let status = client.get_workload_control(conn.request(message)?).await.map_err(explain)?.into_inner();
    show(conn, &status);
    Ok(())
}
