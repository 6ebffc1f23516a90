//! The event log for other platforms (issue 14.1), through real gRPC on PostgreSQL and
//! SQLite: one entity's stream with who, role, when and why; the global order page by page
//! and filtered; a live subscription that catches up, follows a burst, survives a
//! disconnect in the middle of it with every position delivered exactly once, and filters
//! by type with checkpoints; and who may read, and what bad input is told.

use std::collections::BTreeSet;

use finops_e2e::{RunningServer, authed, fresh_postgres_url, fresh_sqlite_url};
use finops_proto::v1 as pb;
use finops_proto::v1::event_log_service_client::EventLogServiceClient;
use finops_proto::v1::organisation_service_client::OrganisationServiceClient;
use finops_server::auth::Role;
use tonic::Code;
use tonic::transport::Channel;

/// Every event after `after`, read page by page.
async fn read_everything(log: &mut EventLogServiceClient<Channel>, token: &str, page: u32) -> Vec<pb::LogEvent> {
    let (mut after, mut out) = (0, Vec::new());
    loop {
        let request = pb::ReadAllRequest { after_position: after, page_size: page, ..Default::default() };
        let answer = log.read_all(authed(request, token)).await.unwrap().into_inner();
        assert!(answer.events.len() <= page as usize);
        out.extend(answer.events);
        if answer.next_after == answer.head_position {
            return out;
        }
        assert!(answer.next_after > after, "a page moves forward");
        after = answer.next_after;
    }
}

/// A burst of decisions: `n` portfolios added by the FinOps Lead.
async fn burst(mut org: OrganisationServiceClient<Channel>, token: String, tag: &'static str, n: usize) {
    for i in 0..n {
        let request = pb::AddPortfolioRequest {
            name: format!("{tag} portfolio {i}"),
            owner: "pf-omar".into(),
            ..Default::default()
        };
        org.add_portfolio(authed(request, &token)).await.unwrap();
    }
}

async fn event_streams(url: &str) {
    let server = RunningServer::start(url).await;
    finops_server::demo::seed(server.store.clone(), "arn:aws:sso:::instance/ssoins-demo").await.unwrap();
    let channel = tonic::transport::Endpoint::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
    let mut log = EventLogServiceClient::new(channel.clone());
    let org = OrganisationServiceClient::new(channel);
    let auditor = server.token("au-ines", Role::Auditor);
    let operator = server.token("ops-kim", Role::Operator);
    let fl = server.token("fl-ana", Role::FinopsLead);

    // 1. The global order, page by page: every position once, dense, each event with who,
    // when, its payload and its chain hash.
    let all = read_everything(&mut log, &auditor, 37).await;
    let head = server.store.seal_committed().await.unwrap().position.0;
    assert_eq!(all.iter().map(|e| e.position).collect::<Vec<_>>(), (1..=head).collect::<Vec<_>>());
    for e in &all {
        assert_eq!(e.hash.len(), 64, "{e:?}");
        assert!(!e.actor_id.is_empty() && !e.recorded_at.is_empty(), "{e:?}");
        serde_json::from_str::<serde_json::Value>(&e.payload_json).unwrap();
    }
    assert_eq!(read_everything(&mut log, &operator, 1000).await, all, "the operator reads the same");

    // 2. One entity's stream, in order, with the decision trail: a demo request approved.
    let approved = all.iter().find(|e| e.event_type == "BusinessRequestApproved").unwrap();
    let request = pb::ReadStreamRequest { stream: approved.stream.clone(), ..Default::default() };
    let stream = log.read_stream(authed(request, &auditor)).await.unwrap().into_inner();
    assert_eq!(stream.next_version, 0, "the whole stream in one answer");
    let versions: Vec<u64> = stream.events.iter().map(|e| e.stream_version).collect();
    assert_eq!(versions, (1..=versions.len() as u64).collect::<Vec<_>>());
    assert_eq!(stream.events[0].event_type, "BusinessRequestSubmitted");
    let approval = stream.events.iter().find(|e| e.event_type == "BusinessRequestApproved").unwrap();
    assert_eq!(approval, approved, "the stream and the global order carry the same event");
    assert_eq!(approval.actor_role, "finops_lead");
    assert!(!approval.rationale.is_empty());
    // …and a page of it at a time.
    let request = pb::ReadStreamRequest { stream: approved.stream.clone(), from_version: 2, max_count: 1 };
    let page = log.read_stream(authed(request, &auditor)).await.unwrap().into_inner();
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0], stream.events[1]);
    assert_eq!(page.next_version, if stream.events.len() > 2 { 3 } else { 0 });

    // 3. Filtered: only requests' streams; only one event type.
    let request =
        pb::ReadAllRequest { stream_prefixes: vec!["business-request-".into()], page_size: 1000, ..Default::default() };
    let requests = log.read_all(authed(request, &auditor)).await.unwrap().into_inner();
    let expected: Vec<&pb::LogEvent> = all.iter().filter(|e| e.stream.starts_with("business-request-")).collect();
    assert_eq!(requests.events.iter().collect::<Vec<_>>(), expected);
    let request = pb::ReadAllRequest { event_types: vec!["PortfolioAdded".into()], page_size: 1, ..Default::default() };
    let first = log.read_all(authed(request, &auditor)).await.unwrap().into_inner();
    assert_eq!(first.events.len(), 1);
    assert_eq!(first.next_after, first.events[0].position, "a full page ends at its last event");

    // 4. Who may read, and bad input.
    for role in [Role::ProductOwner, Role::FinopsLead, Role::Finance, Role::CloudEngineer] {
        let token = server.token("someone", role);
        let denied = log.read_all(authed(pb::ReadAllRequest::default(), &token)).await.unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied, "{role:?}");
        let denied = log.subscribe(authed(pb::SubscribeRequest::default(), &token)).await.unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied, "{role:?}");
    }
    let bad = log.read_stream(authed(pb::ReadStreamRequest::default(), &auditor)).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("stream"), "{}", bad.message());
    let request = pb::SubscribeRequest { stream_prefixes: vec![" ".into()], ..Default::default() };
    let bad = log.subscribe(authed(request, &auditor)).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("stream_prefixes[0]"), "{}", bad.message());

    // 5. A subscription from the head follows a burst; the client disconnects in the middle
    // of it and resumes from the last position it received: every position exactly once.
    let writer = tokio::spawn(burst(org.clone(), fl.clone(), "live", 150));
    let mut received: Vec<u64> = Vec::new();
    let mut feed = log
        .subscribe(authed(pb::SubscribeRequest { after_position: head, ..Default::default() }, &auditor))
        .await
        .unwrap()
        .into_inner();
    while received.len() < 40 {
        match feed.message().await.unwrap().unwrap().item.unwrap() {
            pb::subscribe_response::Item::Event(e) => received.push(e.position),
            pb::subscribe_response::Item::Checkpoint(_) => panic!("an unfiltered feed has nothing to skip"),
        }
    }
    drop(feed); // the client goes away mid-burst
    let resume = *received.last().unwrap();
    let mut feed = log
        .subscribe(authed(pb::SubscribeRequest { after_position: resume, ..Default::default() }, &auditor))
        .await
        .unwrap()
        .into_inner();
    writer.await.unwrap();
    let end = server.store.seal_committed().await.unwrap().position.0;
    assert!(end >= head + 150);
    while received.last() != Some(&end) {
        if let pb::subscribe_response::Item::Event(e) = feed.message().await.unwrap().unwrap().item.unwrap() {
            received.push(e.position);
        }
    }
    assert_eq!(received, (head + 1..=end).collect::<Vec<_>>(), "each position once, in order");
    drop(feed);

    // 6. Filtered by type from the start: only the portfolios. Then, after one more
    // decision of another type, a checkpoint at the head: what the filter skipped need not
    // be read again.
    let request = pb::SubscribeRequest { event_types: vec!["PortfolioAdded".into()], ..Default::default() };
    let mut feed = log.subscribe(authed(request, &operator)).await.unwrap().into_inner();
    let mut names = BTreeSet::new();
    while names.len() < 150 {
        let pb::subscribe_response::Item::Event(e) = feed.message().await.unwrap().unwrap().item.unwrap() else {
            continue;
        };
        assert_eq!(e.event_type, "PortfolioAdded");
        let payload: serde_json::Value = serde_json::from_str(&e.payload_json).unwrap();
        if let Some(name) = payload["portfolio"]["name"].as_str().and_then(|n| n.strip_prefix("live portfolio ")) {
            names.insert(name.to_owned());
        }
    }
    let patterns = pb::SetRolePatternsRequest {
        broad: vec!["*AdministratorAccess*".into(), "llm-gateway".into()],
        dedicated: vec!["finops-ai-*".into()],
        rationale: "The gateway is shared".into(),
        request_id: String::new(),
    };
    org.clone().set_role_patterns(authed(patterns, &fl)).await.unwrap();
    let last = server.store.seal_committed().await.unwrap().position.0;
    loop {
        match feed.message().await.unwrap().unwrap().item.unwrap() {
            pb::subscribe_response::Item::Event(e) => assert_eq!(e.event_type, "PortfolioAdded"),
            pb::subscribe_response::Item::Checkpoint(p) if p == last => break,
            pb::subscribe_response::Item::Checkpoint(p) => assert!(p < last),
        }
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_platforms_read_and_follow_the_log_on_postgres() {
    let Some(url) = fresh_postgres_url().await else { return };
    event_streams(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_platforms_read_and_follow_the_log_on_sqlite() {
    event_streams(&fresh_sqlite_url()).await;
}
