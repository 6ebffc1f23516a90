//! `IngestCur` through real gRPC (issue 15.4): an Operator ingests a CUR delivery from
//! under the server's `cur_ingest_root` and reads the progress and the batch's report from
//! the stream; a bad row ends the stream with INVALID_ARGUMENT naming file, row and column
//! and stores nothing; other roles, paths outside the root and bad formats are refused.

use finops_e2e::{RunningServer, authed, fresh_sqlite_url};
use finops_proto::v1 as pb;
use finops_proto::v1::cur_ingest_service_client::CurIngestServiceClient;
use finops_server::auth::Role;

async fn ingest(
    client: &mut CurIngestServiceClient<tonic::transport::Channel>,
    token: &str,
    source: &str,
    format: &str,
) -> Result<Vec<pb::ingest_cur_response::Item>, tonic::Status> {
    let request = pb::IngestCurRequest { source: source.into(), format: format.into() };
    let mut stream = client.ingest_cur(authed(request, token)).await?.into_inner();
    let mut items = vec![];
    while let Some(message) = stream.message().await? {
        items.push(message.item.expect("every message carries an item"));
    }
    Ok(items)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_ingests_a_delivery_through_the_server_and_watches_its_progress() {
    let root = std::env::temp_dir().join(format!("finops-ingest-root-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(root.join("november")).unwrap();
    let mut csv = Vec::new();
    let spec = finops_cur::synthetic::MonthSpec { period: "2026-11".into(), rows: 3_000, seed: 4, restatement: 0 };
    finops_cur::synthetic::write_month(&spec, &mut csv).unwrap();
    std::fs::write(root.join("november/month.csv"), &csv).unwrap();
    // A month whose 7th row has a usage amount that is not a number.
    let text = String::from_utf8(csv).unwrap();
    let amount = finops_cur::synthetic::HEADER.split(',').position(|c| c == "line_item_usage_amount").unwrap();
    let mut bad_lines: Vec<String> = text.lines().map(str::to_owned).collect();
    // Row 7 has no quoted commas before the amount (the quoted maps come after it).
    let mut fields: Vec<String> = bad_lines[7].split(',').map(str::to_owned).collect();
    fields[amount] = "lots".into();
    bad_lines[7] = fields.join(",");
    std::fs::create_dir_all(root.join("restated")).unwrap();
    std::fs::write(root.join("restated/bad.csv"), bad_lines.join("\n") + "\n").unwrap();

    let server = RunningServer::start_with(&fresh_sqlite_url(), |config| finops_server::ServerConfig {
        cur_ingest_root: Some(root.clone()),
        ..config
    })
    .await;
    let mut client = CurIngestServiceClient::connect(server.endpoint()).await.unwrap();
    let operator = server.token("op-kai", Role::Operator);

    let items = ingest(&mut client, &operator, "november", "").await.unwrap();
    let progress: Vec<&pb::IngestProgress> = items
        .iter()
        .filter_map(|i| match i {
            pb::ingest_cur_response::Item::Progress(p) => Some(p),
            _ => None,
        })
        .collect();
    assert!(!progress.is_empty(), "progress is streamed: {items:?}");
    assert!(progress.iter().all(|p| p.total_bytes == text.len() as u64 && p.bytes <= p.total_bytes));
    let Some(pb::ingest_cur_response::Item::Batch(batch)) = items.last() else {
        panic!("ends with the report: {items:?}")
    };
    assert_eq!((batch.period.as_str(), batch.rows, batch.bytes), ("2026-11", 3_000, text.len() as u64));
    assert!(batch.caller_identity && !batch.already_current && batch.superseded.is_empty());
    assert_eq!(batch.hash.len(), 64);
    let sources: Vec<&str> = batch.sources.iter().map(|s| s.source.as_str()).collect();
    assert_eq!(sources, ["bedrock", "marketplace", "claude_platform", "guardrails"]);
    assert!(batch.sources.iter().all(|s| s.lines > 0 && s.cents > 0), "{:?}", batch.sources);
    // Recorded in the period's stream, by the Operator.
    let stream = finops_ingest::period_stream("2026-11");
    let recorded = server.store.read_stream(&stream, finops_eventlog::StreamRead::all()).await.unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(
        (recorded[0].metadata.actor_id.as_str(), recorded[0].metadata.actor_role.as_str()),
        ("op-kai", "operator")
    );
    // The same bytes again: nothing new.
    let again = ingest(&mut client, &operator, "november/month.csv", "cur").await.unwrap();
    assert!(matches!(again.last(), Some(pb::ingest_cur_response::Item::Batch(b)) if b.already_current));

    // A bad row: INVALID_ARGUMENT naming file, row, column and value; nothing recorded.
    let err = ingest(&mut client, &operator, "restated", "").await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(
        err.message().contains("bad.csv: row 7, column `line_item_usage_amount`: `lots` is not a number"),
        "{}",
        err.message()
    );
    let after = server.store.read_stream(&stream, finops_eventlog::StreamRead::all()).await.unwrap();
    assert_eq!(after.len(), 1, "the refused delivery recorded nothing");

    // Only an Operator; only under the root; only known formats — each named.
    let owner = server.token("po-maria", Role::ProductOwner);
    let err = ingest(&mut client, &owner, "november", "").await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    let err = ingest(&mut client, &operator, "../etc", "").await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("source"), "{}", err.message());
    let err = ingest(&mut client, &operator, "", "parquet").await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("source") && err.message().contains("format"), "both named: {}", err.message());
    let err = ingest(&mut client, &operator, "december", "").await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    server.shutdown().await.unwrap();
    std::fs::remove_dir_all(root).unwrap();
}
