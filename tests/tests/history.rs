//! Decision trails over gRPC (issue 14 item 2): `HistoryService.GetHistory` on the demo
//! organisation's resources, on PostgreSQL and SQLite — every event of the resource's
//! stream in order with who, role, what and why; as of an instant; each resource visible
//! exactly as its own API allows; bad names refused with the field named.

use chrono::{DateTime, Utc};
mod common;

use common::read_models_caught_up;
use finops_e2e::{RunningServer, authed, fresh_postgres_url, fresh_sqlite_url};
use finops_eventlog::StreamRead;
use finops_proto::v1 as pb;
use finops_proto::v1::business_request_service_client::BusinessRequestServiceClient;
use finops_proto::v1::history_service_client::HistoryServiceClient;
use finops_proto::v1::spaces_service_client::SpacesServiceClient;
use finops_proto::v1::task_service_client::TaskServiceClient;
use finops_server::auth::Role;
use tonic::Code;
use tonic::transport::Channel;
use uuid::Uuid;

async fn trail(
    history: &mut HistoryServiceClient<Channel>,
    token: &str,
    name: &str,
    as_of: &str,
) -> Result<pb::History, tonic::Status> {
    history
        .get_history(authed(pb::GetHistoryRequest { name: name.into(), as_of: as_of.into() }, token))
        .await
        .map(tonic::Response::into_inner)
}

fn instant(at: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(at).unwrap().with_timezone(&Utc)
}

async fn history_loop(url: &str) {
    let server = RunningServer::start(url).await;
    finops_server::demo::seed(server.store.clone(), "arn:aws:sso:::instance/ssoins-demo").await.unwrap();
    let channel = tonic::transport::Endpoint::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
    let mut history = HistoryServiceClient::new(channel.clone());
    let fl = server.token("fl-ana", Role::FinopsLead);
    let auditor = server.token("aud-lee", Role::Auditor);
    let maria = server.token("po-maria", Role::ProductOwner);
    let juan = server.token("po-juan", Role::ProductOwner);
    let engineer = server.token("ce-sam", Role::CloudEngineer);
    let support = finops_server::demo::id("support-bot");
    let request_name = format!("businessRequests/{support}");

    // 1. A request's trail is its stream, in order, in words: submitted by its Product
    // Owner, approved by the FinOps Lead with the approval's rationale.
    let request_trail = trail(&mut history, &auditor, &request_name, "").await.unwrap();
    let stream = finops_governance::streams::business_request(support);
    let events = server.store.read_stream(&stream, StreamRead::all()).await.unwrap();
    assert_eq!(
        request_trail.entries.iter().map(|e| e.event_id.clone()).collect::<Vec<_>>(),
        events.iter().map(|e| e.event_id.to_string()).collect::<Vec<_>>(),
        "one entry per event, in stream order"
    );
    let submitted = &request_trail.entries[0];
    assert_eq!(submitted.event, "BusinessRequestSubmitted");
    assert_eq!((submitted.who.as_str(), submitted.role.as_str()), ("po-maria", "product_owner"));
    assert!(submitted.what.starts_with("submitted `"), "{}", submitted.what);
    let approved = request_trail.entries.iter().find(|e| e.event == "BusinessRequestApproved").unwrap();
    assert_eq!((approved.who.as_str(), approved.role.as_str()), ("fl-ana", "finops_lead"));
    assert!(approved.what.contains("approved:") && approved.what.contains("workload"), "{}", approved.what);
    assert!(!approved.why.is_empty(), "the approval's rationale is its why");
    assert!(approved.position > submitted.position && approved.stream_version > submitted.stream_version);

    // 2. As of the submission, the trail is the submission alone; the same question gives
    // the same answer every time.
    let then = trail(&mut history, &auditor, &request_name, &submitted.at).await.unwrap();
    assert_eq!(then.entries, request_trail.entries[..1].to_vec());
    assert_eq!(instant(&then.as_of), instant(&submitted.at));
    assert_eq!(trail(&mut history, &auditor, &request_name, &submitted.at).await.unwrap(), then);
    let before = (instant(&submitted.at) - chrono::Duration::seconds(1)).to_rfc3339();
    assert!(trail(&mut history, &auditor, &request_name, &before).await.unwrap().entries.is_empty());

    // 3. Visibility is the request's own: its Product Owner yes, another one no, a Cloud
    // Engineer no (the request API refuses them too).
    assert_eq!(trail(&mut history, &maria, &request_name, "").await.unwrap().entries, request_trail.entries);
    assert_eq!(trail(&mut history, &juan, &request_name, "").await.unwrap_err().code(), Code::PermissionDenied);
    assert_eq!(trail(&mut history, &engineer, &request_name, "").await.unwrap_err().code(), Code::PermissionDenied);
    let mut requests = BusinessRequestServiceClient::new(channel.clone());
    let direct = requests
        .get_business_request(authed(
            pb::GetBusinessRequestRequest { as_of: String::new(), name: request_name.clone() },
            &juan,
        ))
        .await
        .unwrap_err();
    assert_eq!(direct.code(), Code::PermissionDenied, "the same answer as the request's own Get");

    // 4. A task the approval created: recorded by the fan-out on behalf of the approver,
    // caused by the approval event; the task queue's readers may read it, a PO may not.
    let mut tasks = TaskServiceClient::new(channel.clone());
    read_models_caught_up(&server, url).await;
    let listed = tasks
        .list_tasks(authed(pb::ListTasksRequest { page_size: 1000, ..Default::default() }, &engineer))
        .await
        .unwrap()
        .into_inner()
        .tasks;
    let task = listed.into_iter().find(|t| t.business_request == request_name).expect("support bot has tasks");
    let task_trail = trail(&mut history, &engineer, &task.name, "").await.unwrap();
    let created = &task_trail.entries[0];
    assert_eq!(created.event, "TaskCreated");
    assert_eq!((created.who.as_str(), created.role.as_str()), ("fl-ana", "finops_lead"));
    assert_eq!(created.causation_id, approved.event_id, "caused by the approval");
    assert!(created.what.contains("steps"), "{}", created.what);
    assert_eq!(trail(&mut history, &maria, &task.name, "").await.unwrap_err().code(), Code::PermissionDenied);

    // 5. A claim and a workload: their Product Owner and Finance read them; another PO
    // does not find them (as ListClaims and ListWorkloads would not show them).
    let workload = approved.what.split("workload ").nth(1).unwrap().split(',').next().unwrap().to_owned();
    let workload_trail = trail(&mut history, &maria, &format!("workloads/{workload}"), "").await;
    let mut spaces = SpacesServiceClient::new(channel.clone());
    let claims = spaces
        .list_claims(authed(pb::ListClaimsRequest { page_size: 1000, ..Default::default() }, &maria))
        .await
        .unwrap()
        .into_inner()
        .claims;
    let claim = claims.into_iter().find(|c| c.workload_id == workload).expect("the approval reserved its role");
    let claim_trail = trail(&mut history, &maria, &claim.name, "").await.unwrap();
    assert!(!claim_trail.entries.is_empty());
    assert!(claim_trail.entries.iter().any(|e| e.what.contains(&workload)), "{:#?}", claim_trail.entries);
    assert_eq!(trail(&mut history, &juan, &claim.name, "").await.unwrap_err().code(), Code::NotFound);
    assert_eq!(
        trail(&mut history, &server.token("fin-eva", Role::Finance), &claim.name, "").await.unwrap().entries,
        claim_trail.entries
    );
    // A workload has a stream once its plan changed (an estimate, a business case).
    if let Ok(w) = workload_trail {
        assert!(w.entries.iter().all(|e| !e.what.is_empty()));
        let other = trail(&mut history, &juan, &format!("workloads/{workload}"), "").await.unwrap_err();
        assert_eq!(other.code(), Code::NotFound);
    }

    // 6. Everyone signed in reads the organisation's trail.
    let org = trail(&mut history, &engineer, "organisation", "").await.unwrap();
    assert!(org.entries.iter().any(|e| e.what.starts_with("portfolio `")), "{:#?}", org.entries);

    // 7. Bad names are INVALID_ARGUMENT naming the field; an unknown resource NOT_FOUND;
    // nothing is written.
    let head = server.store.stats().await.unwrap().head.position;
    for bad in ["requests/1", "businessRequests/x", "catalogModels/openai/gpt-4", "gaps/"] {
        let status = trail(&mut history, &fl, bad, "").await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{bad}");
        assert!(status.message().contains("name"), "{bad}: {}", status.message());
    }
    let bad_instant = trail(&mut history, &fl, &request_name, "yesterday").await.unwrap_err();
    assert_eq!(bad_instant.code(), Code::InvalidArgument);
    assert!(bad_instant.message().contains("as_of"), "{}", bad_instant.message());
    let unknown = trail(&mut history, &fl, &format!("businessRequests/{}", Uuid::now_v7()), "").await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let unauthenticated = history
        .get_history(tonic::Request::new(pb::GetHistoryRequest { name: request_name.clone(), as_of: String::new() }))
        .await
        .unwrap_err();
    assert_eq!(unauthenticated.code(), Code::Unauthenticated);
    assert_eq!(server.store.stats().await.unwrap().head.position, head, "reading a trail writes nothing");

    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resources_history_is_its_decisions_in_words_on_postgres() {
    let Some(url) = fresh_postgres_url().await else { return };
    history_loop(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resources_history_is_its_decisions_in_words_on_sqlite() {
    history_loop(&fresh_sqlite_url()).await;
}
