//! Prometheus metrics (issue 13.7), on PostgreSQL: `GET /metrics` on its own port shows
//! what the service shows — gaps and their spend by kind as ListGaps has them, open
//! investigations by signal, suspended workloads, the estimate remaining per workload as
//! GetWorkload's forecast, CUR ingested, each read model's lag and gRPC latency
//! histograms — in the text format, with no principal or ARN as a label.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{ingest_month, read_models_caught_up};
use finops_e2e::{RunningServer, authed, fresh_postgres_url};
use finops_proto::v1 as pb;
use finops_proto::v1::gap_service_client::GapServiceClient;
use finops_proto::v1::investigation_service_client::InvestigationServiceClient;
use finops_proto::v1::spaces_service_client::SpacesServiceClient;
use finops_proto::v1::workload_control_service_client::WorkloadControlServiceClient;
use finops_server::auth::Role;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// (content type, samples by `name{labels}`) of one scrape.
async fn scrape(address: std::net::SocketAddr) -> (String, BTreeMap<String, f64>, String) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let content_type = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type: ").map(str::to_owned))
        .unwrap_or_default();
    let samples = body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (key, value) = l.rsplit_once(' ').unwrap();
            (key.to_owned(), value.parse::<f64>().unwrap_or_else(|e| panic!("{l}: {e}")))
        })
        .collect();
    (content_type, samples, body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_endpoint_shows_what_the_service_shows() {
    let Some(url) = fresh_postgres_url().await else { return };
    let server = RunningServer::start_with(&url, |config| finops_server::ServerConfig {
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..config
    })
    .await;
    let address = server.metrics.expect("metrics are on");
    finops_server::demo::seed(server.store.clone(), "arn:aws:sso:::instance/ssoins-demo").await.unwrap();
    let storm = finops_cur::synthetic::Incident {
        period: "2026-11".into(),
        account: "111122223333".into(),
        role: "finops-claims-triage-u88g".into(),
        day: 12,
        hours: 2..14,
        thousands_per_hour: 200_000.0,
    };
    ingest_month(&server, "2026-11", 3_000, 0, &[storm]).await;
    // A day of invocation logs too (two records; the same bytes again count once).
    let record = |n: u32| {
        format!(
            "{{\"schemaType\":\"ModelInvocationLog\",\"timestamp\":\"2026-11-29T01:0{n}:00Z\",\"accountId\":\"111122223333\",\"identity\":{{\"arn\":\"arn:aws:sts::111122223333:assumed-role/finops-support-bot-88aa/w\"}},\"region\":\"us-east-1\",\"requestId\":\"r{n}\",\"operation\":\"Converse\",\"modelId\":\"anthropic.claude-3-haiku-20240307-v1:0\",\"input\":{{\"inputTokenCount\":10}},\"output\":{{\"outputTokenCount\":5}}}}\n"
        )
    };
    let logs = format!("{}{}", record(1), record(2));
    let objects: std::sync::Arc<dyn object_store::ObjectStore> =
        std::sync::Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&server.objects).unwrap());
    let ingestor = finops_ingest::logs::LogIngestor::new(server.store.clone(), objects);
    for _ in 0..2 {
        ingestor.ingest_bytes("day.json", logs.as_bytes(), "ops-kim").await.unwrap();
    }
    let models = finops_projections::ReadModels::open(&url).await.unwrap();
    for _ in 0..2400 {
        let head = server.store.seal_committed().await.unwrap().position.0;
        let mut behind = false;
        for process in [finops_processes::GapDetector::NAME, finops_processes::InvestigationDetector::NAME] {
            behind |= models.process_checkpoint(process).await.unwrap() < head;
        }
        if !behind {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    read_models_caught_up(&server, &url).await;

    let channel = tonic::transport::Endpoint::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
    let fl = server.token("fl-ana", Role::FinopsLead);
    let maria = server.token("po-maria", Role::ProductOwner);
    let mut gaps = GapServiceClient::new(channel.clone());
    let listed = gaps
        .list_gaps(authed(pb::ListGapsRequest { page_size: 1000, ..Default::default() }, &fl))
        .await
        .unwrap()
        .into_inner()
        .gaps;
    let (content_type, samples, body) = scrape(address).await;
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");

    // Gaps by kind, as ListGaps has them (not resolved).
    let mut open: BTreeMap<String, (f64, i64)> = BTreeMap::new();
    for g in listed.iter().filter(|g| g.status != "resolved") {
        let e = open.entry(g.kind.clone()).or_default();
        e.0 += 1.0;
        e.1 += g.total_cents;
    }
    assert!(!open.is_empty());
    for (kind, (n, cents)) in &open {
        assert_eq!(samples[&format!("finops_gaps_open{{kind=\"{kind}\"}}")], *n, "{kind}");
        assert_eq!(samples[&format!("finops_gap_spend_dollars{{kind=\"{kind}\"}}")], *cents as f64 / 100.0, "{kind}");
    }

    // Investigations by signal, as ListInvestigations has them.
    let mut investigations = InvestigationServiceClient::new(channel.clone());
    let all = investigations
        .list_investigations(authed(pb::ListInvestigationsRequest { page_size: 100, ..Default::default() }, &fl))
        .await
        .unwrap()
        .into_inner()
        .investigations;
    let spikes = all.iter().filter(|i| i.signal == "spend_spike" && i.status != "closed").count();
    assert!(spikes >= 1);
    assert_eq!(samples["finops_investigations_open{signal=\"spend_spike\"}"], spikes as f64);

    // The estimate remaining per workload, as GetWorkload's forecast.
    let mut spaces = SpacesServiceClient::new(channel.clone());
    let listed = spaces
        .list_workloads(authed(pb::ListWorkloadsRequest { page_size: 100, ..Default::default() }, &maria))
        .await
        .unwrap()
        .into_inner()
        .workloads;
    let bot = listed.iter().find(|w| w.name == "Support Bot").unwrap();
    let get = pb::GetWorkloadRequest { name: format!("workloads/{}", bot.workload_id), as_of: String::new() };
    let f = spaces.get_workload(authed(get, &maria)).await.unwrap().into_inner().forecast.unwrap();
    assert_eq!(
        samples["finops_workload_estimate_remaining_dollars{workload=\"Support Bot\"}"],
        (f.month_estimate_cents - f.month_to_date_cents) as f64 / 100.0
    );

    // Ingest, lag per read model, latency per method.
    assert!(samples["finops_cur_ingested_rows_total"] >= 3_000.0);
    assert!(samples["finops_cur_ingested_bytes_total"] > 0.0);
    assert_eq!(samples["finops_invocation_log_records_total"], 2.0);
    assert_eq!(samples["finops_invocation_log_bytes_total"], logs.len() as f64);
    for projection in finops_projections::ALL {
        assert!(
            samples.contains_key(&format!("finops_projection_lag_events{{projection=\"{projection}\"}}")),
            "{projection}"
        );
    }
    let calls = samples["finops_grpc_server_handling_seconds_count{method=\"finops.v1.GapService/ListGaps\"}"];
    assert!(calls >= 1.0);
    assert_eq!(
        samples["finops_grpc_server_handling_seconds_bucket{method=\"finops.v1.GapService/ListGaps\",le=\"+Inf\"}"],
        calls
    );
    assert!(!body.contains("arn:"), "no ARN in a label");
    assert_eq!(samples["finops_workloads_suspended"], 0.0);

    // A suspension shows once the read model has it.
    let mut control = WorkloadControlServiceClient::new(channel);
    let suspend = pb::SuspendWorkloadRequest {
        workload: "Support Bot".into(),
        rationale: "Runaway loop".into(),
        request_id: String::new(),
    };
    control.suspend_workload(authed(suspend, &maria)).await.unwrap();
    read_models_caught_up(&server, &url).await;
    let (_, samples, _) = scrape(address).await;
    assert_eq!(samples["finops_workloads_suspended"], 1.0);
    assert_eq!(samples["finops_kill_switch_pending"], 0.0, "manual enforcement has nothing pending");
    server.shutdown().await.unwrap();
}
