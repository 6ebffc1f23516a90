//! `finops attribution`, `finops chargeback`, `finops export`: who spent a period's AI
//! dollars, now or as of an instant.

use anyhow::Context;
use finops_proto::v1 as pb;
use finops_proto::v1::attribution_service_client::AttributionServiceClient;
use serde_json::json;

use super::{Connection, explain, print_rows};

/// Attribution of a billing period.
#[derive(Debug, clap::Args)]
pub struct AttributionArgs {
    /// Billing period, YYYY-MM.
    #[arg(long)]
    period: String,
    /// Dimensions, comma-separated: workload, product, portfolio, budget, account, model,
    /// token_type, region, day, gap, platform, principal.
    #[arg(long, value_delimiter = ',', default_value = "workload,gap")]
    group_by: Vec<String>,
    /// Answer as of this instant (RFC 3339), as the log and the CUR batches stood then.
    #[arg(long)]
    as_of: Option<String>,
}

/// The chargeback statement of a billing period.
#[derive(Debug, clap::Args)]
pub struct ChargebackArgs {
    /// Billing period, YYYY-MM.
    #[arg(long)]
    period: String,
    /// As of this instant (RFC 3339).
    #[arg(long)]
    as_of: Option<String>,
}

/// The logs' estimate of each workload's day next to what CUR billed.
#[derive(Debug, clap::Args)]
pub struct ReconcileArgs {
    /// Billing period, YYYY-MM.
    #[arg(long)]
    period: String,
    /// As of this instant (RFC 3339).
    #[arg(long)]
    as_of: Option<String>,
    /// Flag a day apart by more than this percent of its billed cost [default: 5] …
    #[arg(long)]
    tolerance_percent: Option<u32>,
    /// … and by more than this many dollars [default: 5].
    #[arg(long)]
    tolerance_dollars: Option<u32>,
    /// Only the flagged days.
    #[arg(long)]
    flagged: bool,
}

/// An export of a billing period's classified spend.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Billing period, YYYY-MM.
    #[arg(long)]
    period: String,
    /// csv, parquet or focus.
    #[arg(long, default_value = "csv")]
    format: String,
    /// As of this instant (RFC 3339).
    #[arg(long)]
    as_of: Option<String>,
    /// Output file (default: the name the server suggests, in the current folder).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

pub(crate) use finops_domain::vocabulary::dollars;

/// `finops attribution`.
pub async fn attribution(conn: &Connection, args: AttributionArgs) -> anyhow::Result<()> {
    let mut client = AttributionServiceClient::new(conn.channel().await?);
    let request = pb::AttributeRequest {
        period: args.period,
        group_by: args.group_by.iter().map(|g| g.trim().to_owned()).filter(|g| !g.is_empty()).collect(),
        as_of: args.as_of.unwrap_or_default(),
    };
    let a = client.attribute(conn.request(request)?).await.map_err(explain)?.into_inner();
    let value = json!({
        "period": a.period, "as_of": a.as_of, "batch_hash": a.batch_hash, "group_by": a.group_by,
        "total_cents": a.total_cents,
        "rows": a.rows.iter().map(|r| json!({"keys": r.keys, "cost_cents": r.cost_cents, "tokens": r.tokens, "lines": r.lines})).collect::<Vec<_>>(),
        "unbacked_workloads": a.unbacked_workloads.iter().map(|u| json!({
            "workload_id": u.workload_id, "workload": u.workload, "owner": u.owner,
            "spend_cents": u.spend_cents, "estimate": u.estimate,
        })).collect::<Vec<_>>(),
    });
    conn.print(value, |_| {
        println!("{} as of {} (CUR batch {})", a.period, a.as_of, &a.batch_hash[..12.min(a.batch_hash.len())]);
        let mut headers: Vec<String> = a.group_by.iter().map(|g| g.to_uppercase()).collect();
        headers.extend(["COST".into(), "TOKENS".into(), "LINES".into()]);
        let rows = a
            .rows
            .iter()
            .map(|r| {
                let mut row: Vec<String> =
                    r.keys.iter().map(|k| if k.is_empty() { "—".to_owned() } else { k.clone() }).collect();
                row.extend([dollars(r.cost_cents), format!("{:.0}", r.tokens), r.lines.to_string()]);
                row
            })
            .collect();
        print_rows(&headers.iter().map(String::as_str).collect::<Vec<_>>(), rows);
        println!("TOTAL {}", dollars(a.total_cents));
        for u in &a.unbacked_workloads {
            println!(
                "Unbacked AI Workload: {} (owner {}, {} this period{}) has no business case",
                u.workload,
                u.owner,
                dollars(u.spend_cents),
                if u.estimate { ", estimated" } else { "" }
            );
        }
    });
    Ok(())
}

/// `finops chargeback`.
pub async fn chargeback(conn: &Connection, args: ChargebackArgs) -> anyhow::Result<()> {
    let mut client = AttributionServiceClient::new(conn.channel().await?);
    let request = pb::ChargebackRequest { period: args.period, as_of: args.as_of.unwrap_or_default() };
    let s = client.chargeback(conn.request(request)?).await.map_err(explain)?.into_inner();
    let value = json!({
        "period": s.period, "as_of": s.as_of, "batch_hash": s.batch_hash, "total_cents": s.total_cents,
        "absorbed_by_non_ai_cents": s.absorbed_by_non_ai_cents,
        "charges": s.charges.iter().map(|c| json!({
            "budget_id": c.budget_id, "budget": c.budget, "cost_centre": c.cost_centre, "account_id": c.account_id,
            "ai_budget": c.ai_budget, "claimed_cents": c.claimed_cents, "shared_cents": c.shared_cents, "total_cents": c.total_cents,
        })).collect::<Vec<_>>(),
    });
    conn.print(value, |_| {
        println!(
            "Chargeback {} as of {} (CUR batch {})",
            s.period,
            s.as_of,
            &s.batch_hash[..12.min(s.batch_hash.len())]
        );
        let rows = s
            .charges
            .iter()
            .map(|c| {
                vec![
                    c.account_id.clone(),
                    c.budget.clone(),
                    c.cost_centre.clone(),
                    if c.ai_budget { "AI" } else { "non-AI" }.to_owned(),
                    dollars(c.claimed_cents),
                    dollars(c.shared_cents),
                    dollars(c.total_cents),
                ]
            })
            .collect();
        print_rows(&["ACCOUNT", "BUDGET", "COST CENTRE", "KIND", "CLAIMED", "SHARED", "TOTAL"], rows);
        println!(
            "TOTAL {}   absorbed by non-AI budgets {}",
            dollars(s.total_cents),
            dollars(s.absorbed_by_non_ai_cents)
        );
    });
    Ok(())
}

/// `finops export`.
pub async fn export(conn: &Connection, args: ExportArgs) -> anyhow::Result<()> {
    let format = match args.format.as_str() {
        "csv" => pb::ExportFormat::Csv,
        "parquet" => pb::ExportFormat::Parquet,
        "focus" => pb::ExportFormat::Focus,
        other => anyhow::bail!("--format `{other}`: use csv, parquet or focus"),
    };
    let mut client = AttributionServiceClient::new(conn.channel().await?);
    let request =
        pb::ExportRequest { period: args.period, as_of: args.as_of.unwrap_or_default(), format: format as i32 };
    let e = client.export(conn.request(request)?).await.map_err(explain)?.into_inner();
    let out = args.out.unwrap_or_else(|| e.file_name.clone().into());
    std::fs::write(&out, &e.content).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("wrote {} rows ({} bytes) to {}", e.rows, e.content.len(), out.display());
    Ok(())
}

/// `finops reconcile`
pub async fn reconcile(conn: &Connection, args: ReconcileArgs) -> anyhow::Result<()> {
    let mut client = AttributionServiceClient::new(conn.channel().await?);
    let request = pb::ReconcileRequest {
        period: args.period,
        as_of: args.as_of.unwrap_or_default(),
        tolerance_percent: args.tolerance_percent.unwrap_or(0),
        tolerance_floor_cents: args.tolerance_dollars.map_or(0, |d| i64::from(d) * 100),
    };
    let r = client.reconcile(conn.request(request)?).await.map_err(explain)?.into_inner();
    let days: Vec<&pb::ReconciledDay> = r.days.iter().filter(|d| d.flagged || !args.flagged).collect();
    let value = json!({
        "period": r.period, "as_of": r.as_of, "batch_hash": r.batch_hash, "log_files": r.log_files,
        "tolerance_percent": r.tolerance_percent, "tolerance_floor_cents": r.tolerance_floor_cents,
        "flagged": r.flagged,
        "days": days.iter().map(|d| json!({
            "workload_id": d.workload_id, "workload": d.workload, "day": d.day,
            "estimated_cents": d.estimated_cents, "billed_cents": d.billed_cents,
            "difference_cents": d.difference_cents, "flagged": d.flagged,
        })).collect::<Vec<_>>(),
    });
    conn.print(value, |_| {
        println!(
            "Reconciliation {} as of {}: CUR batch {} against {} log file(s); {} day(s) flagged (beyond {} % and {})",
            r.period,
            r.as_of,
            &r.batch_hash[..12.min(r.batch_hash.len())],
            r.log_files,
            r.flagged,
            r.tolerance_percent,
            dollars(r.tolerance_floor_cents)
        );
        let rows = days
            .iter()
            .map(|d| {
                vec![
                    d.workload.clone(),
                    d.day.clone(),
                    dollars(d.estimated_cents),
                    dollars(d.billed_cents),
                    dollars(d.difference_cents),
                    if d.flagged { "FLAGGED" } else { "" }.to_owned(),
                ]
            })
            .collect();
        print_rows(&["WORKLOAD", "DAY", "LOGS ESTIMATE", "CUR BILLED", "DIFFERENCE", ""], rows);
    });
    Ok(())
}
