//! `finops history NAME`: a resource's decision trail — when, who, role, what, why — as a
//! table, or JSON (`--json`) for scripts.

use clap::Args;
use finops_proto::v1 as pb;
use finops_proto::v1::history_service_client::HistoryServiceClient;
use serde_json::{Value, json};

use super::{Connection, explain, print_trail};

/// Which trail.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// businessRequests/{uuid}, tasks/{uuid}, catalogModels/{platform}/{model},
    /// claims/{key}, workloads/{uuid}, gaps/{uuid}, gatewayRules/{uuid}, spendCards/{uuid},
    /// spendRollups/{uuid}, organisation,
    /// rolePatterns.
    pub name: String,
    /// As the log stood at this instant (RFC 3339).
    #[arg(long)]
    pub as_of: Option<String>,
}

fn entry_json(e: &pb::HistoryEntry) -> Value {
    json!({
        "at": e.at, "event": e.event, "who": e.who, "role": e.role, "what": e.what, "why": e.why,
        "event_id": e.event_id, "correlation_id": e.correlation_id, "causation_id": e.causation_id,
        "position": e.position, "stream_version": e.stream_version,
    })
}

/// `finops history NAME [--as-of T]`
pub async fn history(conn: &Connection, args: HistoryArgs) -> anyhow::Result<()> {
    let mut client = HistoryServiceClient::new(conn.channel().await?);
    let message = pb::GetHistoryRequest { name: args.name, as_of: args.as_of.unwrap_or_default() };
    let trail = client.get_history(conn.request(message)?).await.map_err(explain)?.into_inner();
    let value = json!({
        "name": trail.name,
        "as_of": trail.as_of,
        "entries": trail.entries.iter().map(entry_json).collect::<Vec<_>>(),
    });
    conn.print(value, |v| {
        println!("{} as of {}", super::text(&v["name"]), super::text(&v["as_of"]));
        println!();
        print_trail(&v["entries"]);
    });
    Ok(())
}
