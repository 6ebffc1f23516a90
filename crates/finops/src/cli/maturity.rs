//! `finops maturity`: the AI Governance Maturity score of a period — each dimension with
//! its tier, figures, next move and what it is worth; the trend — as a table or `--json`.

use clap::Args;
use finops_proto::v1 as pb;
use finops_proto::v1::maturity_service_client::MaturityServiceClient;
use serde_json::{Value, json};

use super::{Connection, explain, print_rows, text};

/// Which period, as of when.
#[derive(Debug, Args)]
pub struct MaturityArgs {
    /// YYYY-MM (default: the newest ingested).
    #[arg(long)]
    pub period: Option<String>,
    /// As of this instant (RFC 3339).
    #[arg(long)]
    pub as_of: Option<String>,
}

fn maturity_json(m: &pb::Maturity) -> Value {
    json!({
        "period": m.period, "as_of": m.as_of, "overall": m.overall, "tier": m.tier,
        "dimensions": m.dimensions.iter().map(|d| json!({
            "name": d.name, "weight_percent": d.weight_percent, "score": d.score, "tier": d.tier,
            "figures": d.figures, "next_move": d.next_move, "worth_cents": d.worth_cents, "worth_points": d.worth_points,
        })).collect::<Vec<_>>(),
        "trend": m.trend.iter().map(|p| json!({"period": p.period, "overall": p.overall, "tier": p.tier})).collect::<Vec<_>>(),
    })
}

/// `finops maturity [--period P] [--as-of T]`
pub async fn maturity(conn: &Connection, args: MaturityArgs) -> anyhow::Result<()> {
    let mut client = MaturityServiceClient::new(conn.channel().await?);
    let message =
        pb::GetMaturityRequest { period: args.period.unwrap_or_default(), as_of: args.as_of.unwrap_or_default() };
    let m = client.get_maturity(conn.request(message)?).await.map_err(explain)?.into_inner();
    conn.print(maturity_json(&m), |v| {
        println!(
            "AI Governance Maturity {}: {:.1} ({}) as of {}",
            text(&v["period"]),
            v["overall"].as_f64().unwrap_or(0.0),
            text(&v["tier"]),
            text(&v["as_of"])
        );
        println!();
        let rows = v["dimensions"].as_array().into_iter().flatten().map(|d| {
            vec![
                format!("{} ({}%)", text(&d["name"]), text(&d["weight_percent"])),
                format!("{:.1}", d["score"].as_f64().unwrap_or(0.0)),
                text(&d["tier"]),
                text(&d["figures"]),
                text(&d["next_move"]),
                format!("+{:.1} pts", d["worth_points"].as_f64().unwrap_or(0.0)),
            ]
        });
        print_rows(&["DIMENSION", "SCORE", "TIER", "FIGURES", "NEXT MOVE", "WORTH"], rows.collect());
        let trend: Vec<String> = v["trend"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| format!("{} {:.1}", text(&p["period"]), p["overall"].as_f64().unwrap_or(0.0)))
            .collect();
        println!();
        println!("trend: {}", trend.join(" → "));
    });
    Ok(())
}
