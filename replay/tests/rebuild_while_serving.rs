//! Rebuild while serving (issue 14.5), with the real `finops-replay` binary beside a real
//! server on PostgreSQL and SQLite: while a rebuild folds a new generation, every read the
//! server answers is whole; a rebuild killed midway leaves the serving generation as it
//! was, shows as left behind in the projections' status, and the next rebuild clears it
//! and reproduces the same read models. Projection lag is visible over gRPC.

use std::process::{Child, Command};

use finops_e2e::{RunningServer, authed, fresh_postgres_url, fresh_sqlite_url};
use finops_eventlog::{ExpectedVersion, NewEvent, StreamId};
use finops_proto::v1 as pb;
use finops_proto::v1::business_request_service_client::BusinessRequestServiceClient;
use finops_proto::v1::event_log_service_client::EventLogServiceClient;
use finops_server::auth::Role;
use serde_json::json;
use tonic::transport::Channel;

const REQUESTS: usize = 300;
const REVISIONS: usize = 100;

/// `REQUESTS` Business Requests, each submitted and then resubmitted `REVISIONS - 1` times.
async fn seed(server: &RunningServer) {
    let details = |revision: usize| {
        json!({ "workload_name": format!("Team r{revision}"),
                "use_case": { "coding": { "developers": 3, "active_percent": 10 } }, "priority": false })
    };
    for r in 0..REQUESTS {
        let id = uuid::Uuid::from_u128(0x0192_f0c4_0000_7000_8000_0000_0000_0000 + r as u128);
        let stream = StreamId::new(format!("business-request-{id}")).unwrap();
        let mut events = vec![NewEvent::new(
            "BusinessRequestSubmitted",
            json!({ "type": "BusinessRequestSubmitted", "request_id": id,
                    "product_id": "0192f0c4-1111-7000-8000-000000000001", "requested_by": "po-maria",
                    "details": details(1), "at": "2026-11-20T10:00:00Z" }),
        )];
        for revision in 2..=REVISIONS {
            events.push(NewEvent::new(
                "BusinessRequestResubmitted",
                json!({ "type": "BusinessRequestResubmitted", "details": details(revision), "revision": revision,
                        "by": "po-maria", "at": "2026-11-21T10:00:00Z" }),
            ));
        }
        server.store.append(&stream, ExpectedVersion::NoStream, events).await.unwrap();
    }
}

/// Every request the queue shows, page by page (1 000 at a time).
async fn queue(client: &mut BusinessRequestServiceClient<Channel>, token: &str) -> Vec<pb::BusinessRequestSummary> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_business_requests(authed(
                pb::ListBusinessRequestsRequest { page_size: 1000, page_token, ..Default::default() },
                token,
            ))
            .await
            .unwrap()
            .into_inner();
        all.extend(page.business_requests);
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}

async fn projections(client: &mut EventLogServiceClient<Channel>, token: &str) -> pb::GetProjectionsResponse {
    client.get_projections(authed(pb::GetProjectionsRequest {}, token)).await.unwrap().into_inner()
}

fn rebuild(url: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_finops-replay"))
        .args(["--store", url, "rebuild", "--projection", "request_queue"])
        .env_remove("FINOPS_STORE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("finops-replay runs")
}

async fn rebuild_while_serving(url: &str) {
    let server = RunningServer::start(url).await;
    seed(&server).await;
    let channel = tonic::transport::Endpoint::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
    let mut requests = BusinessRequestServiceClient::new(channel.clone());
    let mut log = EventLogServiceClient::new(channel);
    let fl = server.token("fl-ana", Role::FinopsLead);
    let operator = server.token("ops-kim", Role::Operator);
    let head = server.store.seal_committed().await.unwrap().position.0;
    assert_eq!(head, (REQUESTS * REVISIONS) as u64);

    // The live read models catch up; the lag says so.
    for _ in 0..2400 {
        let status = projections(&mut log, &operator).await;
        if status.projections.iter().any(|p| p.name == "request_queue" && p.behind == 0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let status = projections(&mut log, &operator).await;
    let queue_status =
        |s: &pb::GetProjectionsResponse| s.projections.iter().find(|p| p.name == "request_queue").cloned();
    let before = queue_status(&status).unwrap();
    assert_eq!((status.head_position, before.checkpoint, before.behind), (head, head, 0));
    assert_eq!(before.building_generation, 0);
    let denied = log.get_projections(authed(pb::GetProjectionsRequest {}, &fl)).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    let expected = queue(&mut requests, &fl).await;
    assert_eq!(expected.len(), REQUESTS);
    assert!(expected.iter().all(|r| r.revision == REVISIONS as u32));

    // 1. While a rebuild runs, every answer is the whole queue; then the new generation
    // serves the same.
    let mut child = rebuild(url);
    let mut reads = 0;
    loop {
        assert_eq!(queue(&mut requests, &fl).await, expected, "read {reads} during the rebuild");
        reads += 1;
        if child.try_wait().unwrap().is_some() {
            break;
        }
    }
    assert!(child.wait().unwrap().success());
    let after = queue_status(&projections(&mut log, &operator).await).unwrap();
    assert_eq!((after.active_generation, after.building_generation), (before.active_generation + 1, 0));
    assert_eq!(queue(&mut requests, &fl).await, expected);

    // 2. A rebuild killed while it builds: the serving generation is untouched and answers
    // as before; the status shows the generation it left; the next rebuild clears it.
    let mut child = rebuild(url);
    let left = loop {
        let status = queue_status(&projections(&mut log, &operator).await).unwrap();
        if status.building_generation != 0 {
            break status;
        }
        assert!(child.try_wait().unwrap().is_none(), "the rebuild finished before it could be interrupted");
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(left.active_generation, after.active_generation, "the serving generation was never replaced");
    assert_eq!(queue(&mut requests, &fl).await, expected);
    let killed = queue_status(&projections(&mut log, &operator).await).unwrap();
    assert_eq!((killed.active_generation, killed.checkpoint), (after.active_generation, head));
    assert_ne!(killed.building_generation, 0, "the killed rebuild's generation is shown, not served");
    assert!(rebuild(url).wait().unwrap().success(), "a killed rebuild can be run again");
    let restarted = queue_status(&projections(&mut log, &operator).await).unwrap();
    assert_eq!(restarted.building_generation, 0);
    assert_eq!(queue(&mut requests, &fl).await, expected);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_stay_whole_while_a_rebuild_runs_or_dies_on_postgres() {
    let Some(url) = fresh_postgres_url().await else { return };
    rebuild_while_serving(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_stay_whole_while_a_rebuild_runs_or_dies_on_sqlite() {
    rebuild_while_serving(&fresh_sqlite_url()).await;
}
