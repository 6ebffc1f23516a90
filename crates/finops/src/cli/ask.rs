//! `finops ask "…"`: a question for Agent Bill in plain English; prints the answer (the
//! figures it quotes, the calls it made and the instant it reflects) or `--json`.

use clap::Args;
use finops_proto::v1 as pb;
use finops_proto::v1::agent_bill_service_client::AgentBillServiceClient;
use serde_json::{Value, json};

use super::{Connection, explain, text};

/// The question, as of when.
#[derive(Debug, Args)]
pub struct AskArgs {
    /// The question: "Am I on track against my estimate?"
    #[arg(required = true)]
    pub question: Vec<String>,
    /// As of this instant (RFC 3339).
    #[arg(long)]
    pub as_of: Option<String>,
}

fn answer_json(a: &pb::Answer) -> Value {
    json!({
        "text": a.text, "tool": a.tool, "calls": a.calls, "period": a.period, "as_of": a.as_of,
        "figures": a.figures.iter().map(|f| json!({
            "name": f.name, "unit": f.unit, "amount": f.amount, "score": f.score, "text": f.text,
        })).collect::<Vec<_>>(),
    })
}

/// `finops ask QUESTION [--as-of T]`
pub async fn ask(conn: &Connection, args: AskArgs) -> anyhow::Result<()> {
    let mut client = AgentBillServiceClient::new(conn.channel().await?);
    let message = pb::AskRequest {
        question: args.question.join(" "),
        as_of: args.as_of.unwrap_or_default(),
        ..Default::default()
    };
    let answer = client.ask(conn.request(message)?).await.map_err(explain)?.into_inner();
    conn.print(answer_json(&answer), |v| {
        println!("{}", text(&v["text"]));
        println!();
        let period = text(&v["period"]);
        let period = if period.is_empty() { String::new() } else { format!("period {period}, ") };
        let calls: Vec<String> = v["calls"].as_array().into_iter().flatten().map(text).collect();
        let via = if calls.is_empty() { String::new() } else { format!(" via {}", calls.join(", ")) };
        println!("({period}as of {}; {}{via})", text(&v["as_of"]), text(&v["tool"]));
    });
    Ok(())
}
