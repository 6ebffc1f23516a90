//! The demo organisation: seeded through the command path, visible over gRPC, and
//! seeding twice changes nothing.

use finops_e2e::{RunningServer, authed, fresh_postgres_url};
use finops_proto::v1 as pb;
use finops_proto::v1::business_request_service_client::BusinessRequestServiceClient;
use finops_proto::v1::task_service_client::TaskServiceClient;
use finops_server::auth::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_has_requests_in_every_state_and_reseeding_is_a_no_op() {
    let Some(url) = fresh_postgres_url().await else { return };
    let server = RunningServer::start(&url).await;
    let arn = "arn:aws:sso:::instance/ssoins-demo";
    let summary = finops_server::demo::seed(server.store.clone(), arn).await.unwrap();
    let head = server.store.seal_committed().await.unwrap();
    let again = finops_server::demo::seed(server.store.clone(), arn).await.unwrap();
    assert_eq!(summary, again);
    assert_eq!(server.store.seal_committed().await.unwrap(), head, "seeding twice writes nothing");
    assert!(finops_eventlog::verify_chain(server.store.as_ref(), None).await.unwrap().first_break.is_none());

    let channel = tonic::transport::Endpoint::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
    let mut requests = BusinessRequestServiceClient::new(channel.clone());
    let fl = server.token("fl-ana", Role::FinopsLead);
    let mut statuses = Vec::new();
    for _ in 0..600 {
        let page = requests
            .list_business_requests(authed(
                pb::ListBusinessRequestsRequest {
                    as_of: String::new(),
                    page_size: 100,
                    page_token: String::new(),
                    status: 0,
                },
                &fl,
            ))
            .await
            .unwrap()
            .into_inner();
        statuses = page.business_requests.iter().map(|r| r.status).collect::<Vec<_>>();
        if statuses.len() == summary.requests {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    statuses.sort();
    statuses.dedup();
    assert_eq!(statuses, vec![1, 2, 3, 4], "submitted, approved, rejected and withdrawn all appear");

    let mut tasks = TaskServiceClient::new(channel);
    let ce = server.token("ce-li", Role::CloudEngineer);
    let mut all = Vec::new();
    for _ in 0..600 {
        all = tasks
            .list_tasks(authed(
                pb::ListTasksRequest {
                    as_of: String::new(),
                    page_size: 100,
                    page_token: String::new(),
                    status: String::new(),
                },
                &ce,
            ))
            .await
            .unwrap()
            .into_inner()
            .tasks;
        if all.len() == summary.tasks {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let with = |s: &str| all.iter().filter(|t| t.status == s).count();
    assert!(with("implemented") >= 1 && with("in_progress") >= 1 && with("open") >= 1, "{all:?}");
    assert!(all.iter().any(|t| t.overdue), "the demo has overdue work");
    server.shutdown().await.unwrap();
}
