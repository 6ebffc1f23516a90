//! The event log from the command line, for auditors and operators: one entity's stream,
//! the global order a page at a time, and a live subscription (JSON lines with `--json`,
//! one event per line, so another program can follow the log through this command).

use std::io::Write as _;

use clap::Subcommand;
use finops_proto::v1 as pb;
use finops_proto::v1::event_log_service_client::EventLogServiceClient;
use serde_json::{Value, json};

use super::{Connection, explain, print_rows, text};

/// The event log's events.
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// One stream's events in order (e.g. business-request-{uuid}).
    Stream {
        /// The stream's name.
        name: String,
        /// The first version to show.
        #[arg(long, default_value_t = 1)]
        from_version: u64,
    },
    /// The global order after a position, one page.
    All(FilterArgs),
    /// Follow the log: every event after `--after`, then each new one as it is sealed,
    /// until interrupted. Resume with the last position printed.
    Subscribe(FilterArgs),
}

/// Where to start and what to keep.
#[derive(Debug, clap::Args)]
pub struct FilterArgs {
    /// Events after this position (0: from the start).
    #[arg(long, default_value_t = 0)]
    after: u64,
    /// Only streams starting with this (repeatable).
    #[arg(long = "stream-prefix")]
    stream_prefixes: Vec<String>,
    /// Only events of this type (repeatable).
    #[arg(long = "event-type")]
    event_types: Vec<String>,
    /// `all`: at most this many events (at most 1000).
    #[arg(long, default_value_t = 100)]
    limit: u32,
}

fn event_json(e: &pb::LogEvent) -> Value {
    let payload: Value = serde_json::from_str(&e.payload_json).unwrap_or(Value::Null);
    json!({
        "position": e.position, "event_id": e.event_id, "stream": e.stream, "stream_version": e.stream_version,
        "event_type": e.event_type, "schema_version": e.schema_version, "payload": payload,
        "actor_id": e.actor_id, "actor_role": e.actor_role, "recorded_at": e.recorded_at, "rationale": e.rationale,
        "correlation_id": e.correlation_id, "causation_id": e.causation_id, "hash": e.hash,
    })
}

fn row(e: &Value) -> Vec<String> {
    ["position", "recorded_at", "stream", "event_type", "actor_id", "actor_role", "rationale"]
        .iter()
        .map(|k| text(&e[*k]))
        .collect()
}

const HEADERS: [&str; 7] = ["POSITION", "WHEN", "STREAM", "EVENT", "WHO", "ROLE", "WHY"];

/// `finops events …`
pub async fn events(conn: &Connection, command: EventsCommand) -> anyhow::Result<()> {
    let mut client = EventLogServiceClient::new(conn.channel().await?);
    match command {
        EventsCommand::Stream { name, from_version } => {
            let mut events = Vec::new();
            let mut from = from_version;
            loop {
                let message = pb::ReadStreamRequest { stream: name.clone(), from_version: from, max_count: 1000 };
                let page = client.read_stream(conn.request(message)?).await.map_err(explain)?.into_inner();
                events.extend(page.events.iter().map(event_json));
                if page.next_version == 0 {
                    break;
                }
                from = page.next_version;
            }
            conn.print(Value::Array(events), |v| {
                print_rows(&HEADERS, v.as_array().into_iter().flatten().map(row).collect());
            });
        }
        EventsCommand::All(f) => {
            let message = pb::ReadAllRequest {
                after_position: f.after,
                page_size: f.limit,
                stream_prefixes: f.stream_prefixes,
                event_types: f.event_types,
            };
            let page = client.read_all(conn.request(message)?).await.map_err(explain)?.into_inner();
            let value = json!({
                "events": page.events.iter().map(event_json).collect::<Vec<_>>(),
                "next_after": page.next_after,
                "head_position": page.head_position,
            });
            conn.print(value, |v| {
                print_rows(&HEADERS, v["events"].as_array().into_iter().flatten().map(row).collect());
                println!("\nread through {} of {}", text(&v["next_after"]), text(&v["head_position"]));
            });
        }
        EventsCommand::Subscribe(f) => {
            let message = pb::SubscribeRequest {
                after_position: f.after,
                stream_prefixes: f.stream_prefixes,
                event_types: f.event_types,
            };
            let mut feed = client.subscribe(conn.request(message)?).await.map_err(explain)?.into_inner();
            let mut out = std::io::stdout().lock();
            while let Some(item) = feed.message().await.map_err(explain)? {
                // One line per event (or checkpoint), flushed at once: a reader sees each
                // as it is sealed.
                let line = match item.item {
                    Some(pb::subscribe_response::Item::Event(e)) if conn.json => event_json(&e).to_string(),
                    Some(pb::subscribe_response::Item::Event(e)) => row(&event_json(&e)).join("  "),
                    Some(pb::subscribe_response::Item::Checkpoint(p)) if conn.json => {
                        json!({ "checkpoint": p }).to_string()
                    }
                    Some(pb::subscribe_response::Item::Checkpoint(p)) => format!("(caught up through {p})"),
                    None => continue,
                };
                if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                    return Ok(()); // the reader went away
                }
            }
        }
    }
    Ok(())
}
