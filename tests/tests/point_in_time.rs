//! Point in time everywhere (issue 14 item 3): every Get and List of the governance read
//! models answers `as_of` an instant exactly as it answered at that instant — after the
//! queue, the catalog, the tasks, the claims and the organisation have all moved on — on
//! PostgreSQL and SQLite; the same question always gets the same answer; pages of an
//! answer as of an instant join into the whole answer.

use chrono::Utc;
mod common;

use common::read_models_caught_up;
use finops_e2e::{RunningServer, authed, fresh_postgres_url, fresh_sqlite_url};
use finops_proto::v1 as pb;
use finops_proto::v1::business_request_service_client::BusinessRequestServiceClient;
use finops_proto::v1::catalog_service_client::CatalogServiceClient;
use finops_proto::v1::organisation_service_client::OrganisationServiceClient;
use finops_proto::v1::spaces_service_client::SpacesServiceClient;
use finops_proto::v1::task_service_client::TaskServiceClient;
use finops_server::auth::Role;
use tonic::Code;
use tonic::transport::Channel;

struct Clients {
    requests: BusinessRequestServiceClient<Channel>,
    catalog: CatalogServiceClient<Channel>,
    tasks: TaskServiceClient<Channel>,
    spaces: SpacesServiceClient<Channel>,
    org: OrganisationServiceClient<Channel>,
}

/// Everything the read side answers, as one value to compare.
#[derive(Debug, PartialEq)]
struct Screens {
    requests: pb::ListBusinessRequestsResponse,
    request: pb::BusinessRequest,
    models: pb::ListModelsResponse,
    model: pb::CatalogModel,
    tasks: pb::ListTasksResponse,
    task: pb::Task,
    claims: pb::ListClaimsResponse,
    workloads: pb::ListWorkloadsResponse,
    organisation: pb::Organisation,
}

/// What a FinOps Lead's screens show as of `as_of` (empty: now); `request`, `model` and
/// `task` are the resources the single Gets read.
async fn screens(
    c: &mut Clients,
    fl: &str,
    as_of: &str,
    request: &str,
    model: &pb::CatalogModel,
    task: &str,
) -> Screens {
    let as_of = as_of.to_owned();
    Screens {
        requests: c
            .requests
            .list_business_requests(authed(
                pb::ListBusinessRequestsRequest { page_size: 1000, as_of: as_of.clone(), ..Default::default() },
                fl,
            ))
            .await
            .unwrap()
            .into_inner(),
        request: c
            .requests
            .get_business_request(authed(
                pb::GetBusinessRequestRequest { name: request.into(), as_of: as_of.clone() },
                fl,
            ))
            .await
            .unwrap()
            .into_inner(),
        models: c
            .catalog
            .list_models(authed(
                pb::ListModelsRequest { page_size: 1000, as_of: as_of.clone(), ..Default::default() },
                fl,
            ))
            .await
            .unwrap()
            .into_inner(),
        model: c
            .catalog
            .get_model(authed(
                pb::GetModelRequest {
                    platform: model.platform,
                    model_id: model.model_id.clone(),
                    as_of: as_of.clone(),
                },
                fl,
            ))
            .await
            .unwrap()
            .into_inner(),
        tasks: c
            .tasks
            .list_tasks(authed(
                pb::ListTasksRequest { page_size: 1000, as_of: as_of.clone(), ..Default::default() },
                fl,
            ))
            .await
            .unwrap()
            .into_inner(),
        task: c
            .tasks
            .get_task(authed(pb::GetTaskRequest { name: task.into(), as_of: as_of.clone() }, fl))
            .await
            .unwrap()
            .into_inner(),
        claims: c
            .spaces
            .list_claims(authed(
                pb::ListClaimsRequest { page_size: 1000, as_of: as_of.clone(), ..Default::default() },
                fl,
            ))
            .await
            .unwrap()
            .into_inner(),
        workloads: c
            .spaces
            .list_workloads(authed(
                pb::ListWorkloadsRequest { page_size: 1000, as_of: as_of.clone(), ..Default::default() },
                fl,
            ))
            .await
            .unwrap()
            .into_inner(),
        organisation: c
            .org
            .get_organisation(authed(pb::GetOrganisationRequest { as_of }, fl))
            .await
            .unwrap()
            .into_inner(),
    }
}

async fn point_in_time_loop(url: &str) {
    let server = RunningServer::start(url).await;
    finops_server::demo::seed(server.store.clone(), "arn:aws:sso:::instance/ssoins-demo").await.unwrap();
    let channel = tonic::transport::Endpoint::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
    let mut c = Clients {
        requests: BusinessRequestServiceClient::new(channel.clone()),
        catalog: CatalogServiceClient::new(channel.clone()),
        tasks: TaskServiceClient::new(channel.clone()),
        spaces: SpacesServiceClient::new(channel.clone()),
        org: OrganisationServiceClient::new(channel),
    };
    let fl = server.token("fl-ana", Role::FinopsLead);
    let ce = server.token("ce-li", Role::CloudEngineer);
    read_models_caught_up(&server, url).await;

    // The resources the later changes touch, found in the demo.
    let submitted = c
        .requests
        .list_business_requests(authed(
            pb::ListBusinessRequestsRequest {
                page_size: 1000,
                status: pb::RequestStatus::Submitted as i32,
                ..Default::default()
            },
            &fl,
        ))
        .await
        .unwrap()
        .into_inner()
        .business_requests[0]
        .name
        .clone();
    let all_models = c
        .catalog
        .list_models(authed(pb::ListModelsRequest { page_size: 1000, ..Default::default() }, &fl))
        .await
        .unwrap()
        .into_inner()
        .models;
    let model = all_models.iter().find(|m| m.status == pb::ModelStatus::Approved as i32).unwrap().clone();
    let open = c
        .tasks
        .list_tasks(authed(pb::ListTasksRequest { page_size: 1000, status: "open".into(), ..Default::default() }, &ce))
        .await
        .unwrap()
        .into_inner()
        .tasks
        .into_iter()
        .find(|t| t.depends_on.is_empty())
        .expect("an open task waiting on nothing")
        .name;
    let claims = c
        .spaces
        .list_claims(authed(pb::ListClaimsRequest { page_size: 1000, ..Default::default() }, &fl))
        .await
        .unwrap()
        .into_inner()
        .claims;
    let claim = claims.iter().find(|c| c.status == "claimed").expect("the demo has claims").name.clone();

    // What the screens show now; then the log moves on.
    let before = screens(&mut c, &fl, "", &submitted, &model, &open).await;
    let t0 = Utc::now();
    c.requests
        .reject_business_request(authed(
            pb::RejectBusinessRequestRequest {
                name: submitted.clone(),
                rationale: "No budget this quarter".into(),
                request_id: String::new(),
            },
            &fl,
        ))
        .await
        .unwrap();
    c.catalog
        .revoke_model(authed(
            pb::RevokeModelRequest {
                platform: model.platform,
                model_id: model.model_id.clone(),
                rationale: "Superseded".into(),
                request_id: String::new(),
            },
            &fl,
        ))
        .await
        .unwrap();
    c.tasks
        .complete_task_step(authed(
            pb::CompleteTaskStepRequest { name: open.clone(), step: 1, note: "done".into(), request_id: String::new() },
            &ce,
        ))
        .await
        .unwrap();
    c.spaces
        .release_resource(authed(
            pb::ReleaseResourceRequest {
                name: claim.clone(),
                effective_until: "2026-11-30".into(),
                rationale: "Moved to its own account".into(),
                request_id: String::new(),
            },
            &fl,
        ))
        .await
        .unwrap();
    c.org
        .add_portfolio(authed(
            pb::AddPortfolioRequest {
                portfolio_id: String::new(),
                name: "Research".into(),
                owner: "pf-noor".into(),
                request_id: String::new(),
            },
            &fl,
        ))
        .await
        .unwrap();
    read_models_caught_up(&server, url).await;

    // Now the screens differ…
    let now = screens(&mut c, &fl, "", &submitted, &model, &open).await;
    assert_ne!(now.requests, before.requests);
    assert_ne!(now.request, before.request);
    assert_ne!(now.models, before.models);
    assert_ne!(now.model, before.model);
    assert_ne!(now.tasks, before.tasks);
    assert_ne!(now.task, before.task);
    assert_ne!(now.claims, before.claims);
    assert_ne!(now.organisation, before.organisation);
    // …and as of the instant before the changes every one answers as it did then, the
    // same every time it is asked.
    let then = screens(&mut c, &fl, &t0.to_rfc3339(), &submitted, &model, &open).await;
    assert_eq!(then, before);
    assert_eq!(screens(&mut c, &fl, &t0.to_rfc3339(), &submitted, &model, &open).await, then);

    // Pages of an answer as of the instant join into the whole answer.
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .requests
            .list_business_requests(authed(
                pb::ListBusinessRequestsRequest {
                    page_size: 2,
                    page_token: token,
                    as_of: t0.to_rfc3339(),
                    ..Default::default()
                },
                &fl,
            ))
            .await
            .unwrap()
            .into_inner();
        paged.extend(page.business_requests);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(paged, before.requests.business_requests);

    // A Product Owner's list as of an instant keeps to their own requests.
    let maria = server.token("po-maria", Role::ProductOwner);
    let hers = c
        .requests
        .list_business_requests(authed(
            pb::ListBusinessRequestsRequest { page_size: 1000, as_of: t0.to_rfc3339(), ..Default::default() },
            &maria,
        ))
        .await
        .unwrap()
        .into_inner()
        .business_requests;
    assert!(!hers.is_empty() && hers.iter().all(|r| r.requested_by == "po-maria"));

    // An instant that is not one is refused, naming the field.
    let bad = c
        .tasks
        .list_tasks(authed(pb::ListTasksRequest { as_of: "yesterday".into(), ..Default::default() }, &fl))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("as_of"), "{}", bad.message());
    let bad = c
        .org
        .get_organisation(authed(pb::GetOrganisationRequest { as_of: "2026-13-01".into() }, &fl))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_answers_as_of_an_instant_on_postgres() {
    let Some(url) = fresh_postgres_url().await else { return };
    point_in_time_loop(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_answers_as_of_an_instant_on_sqlite() {
    point_in_time_loop(&fresh_sqlite_url()).await;
}

/// A kept fold (a process's governance state between its runs) that fails midway — some
/// pages folded, the next read lost — and is asked again gives the state a fresh fold
/// gives: nothing skipped. (The governance state's events are idempotent to fold, so a
/// page folded twice would not show here; the fold starts over after a failure anyway,
/// for the folds kept beside it whose events are not: investigations, gap evaluations.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_fold_that_failed_midway_folds_the_same_state_when_asked_again() {
    use finops_governance::state::StateFold;
    let store = finops_eventlog::open(&fresh_sqlite_url(), finops_governance::upcasters()).await.unwrap();
    // Several pages of the fold's reads (2 000 events a page): requests, approvals, tasks.
    finops_e2e::governance_log::generate(&store, 7_000).await;
    let head = store.seal_committed().await.unwrap().position;
    // Every field, as its `Debug` form (maps in key order).
    let fresh = format!("{:?}", StateFold::default().through(store.as_ref(), head).await.unwrap());

    let counted = finops_e2e::CountedStore::new(store.clone());
    let mut kept = StateFold::default();
    let halfway = finops_eventlog::Position(head.0 / 2);
    kept.through(counted.as_ref(), halfway).await.unwrap();
    // From halfway to the head takes two pages; the second read fails.
    counted.fail_read_all(2);
    assert!(kept.through(counted.as_ref(), head).await.is_err(), "the injected failure surfaces");
    let again = format!("{:?}", kept.through(counted.as_ref(), head).await.unwrap());
    assert!(again == fresh, "the state asked again after a failed read is the fresh fold's");
    assert_eq!(kept.position(), head);
}

/// A question about a state whose tables were never built — "now" after an append — is
/// answered with tables kept for an earlier state when the events in between leave what
/// attribution reads alone (a Business Request submitted), and those are exactly the
/// tables a fresh build gives; when the view changes (the organisation), they are built
/// again (issue 14.4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_kept_for_one_state_serve_a_later_state_that_attribution_reads_alike() {
    use finops_attribution::GovernanceView;
    use finops_domain::org::{OrgCommand, Organisation, Portfolio};
    use finops_domain::request::BusinessRequest;
    use finops_governance::{CommandHandler, streams, timeline::GovernanceTimeline};
    use finops_server::kept_tables::{Found, KeptTables};

    let store = finops_eventlog::open(&fresh_sqlite_url(), finops_governance::upcasters()).await.unwrap();
    finops_e2e::governance_log::generate(&store, 3_000).await;
    let timeline = GovernanceTimeline::new(store.clone());
    let kept = KeptTables::default();
    let fresh_view =
        |state: &finops_domain::governance_state::GovernanceState| format!("{:?}", GovernanceView::from(state));

    let (before, key) = timeline.keyed_state_as_of(None).await.unwrap();
    assert!(!before.workloads().is_empty(), "the log has approved workloads");
    assert_eq!(kept.found(&before, key.clone()).await.1, Found::Built);
    assert_eq!(kept.found(&before, key.clone()).await.1, Found::Kept);

    let context = finops_e2e::operator_context("po-maria");
    let request_id = uuid::Uuid::now_v7();
    let submit = finops_e2e::governance_log::submission(request_id, "Invoice triage");
    CommandHandler::<BusinessRequest>::new(store.clone())
        .execute(&streams::business_request(request_id), &submit, &context)
        .await
        .unwrap();
    let (submitted, submitted_key) = timeline.keyed_state_as_of(None).await.unwrap();
    assert_ne!(submitted_key, key, "a new state");
    assert!(submitted.requests.contains_key(&request_id));
    let (tables, found) = kept.found(&submitted, submitted_key.clone()).await;
    assert_eq!(found, Found::Alike, "a submission leaves attribution's view alone");
    assert!(format!("{:?}", tables.view()) == fresh_view(&submitted), "the lent tables are the state's own");
    assert_eq!(kept.found(&submitted, submitted_key).await.1, Found::Kept);

    let add = OrgCommand::AddPortfolio {
        portfolio_id: uuid::Uuid::now_v7(),
        portfolio: Portfolio { name: "Claims".into(), owner: "pf-lee".into() },
        at: Utc::now(),
    };
    CommandHandler::<Organisation>::new(store.clone())
        .execute(&streams::organisation(), &add, &finops_e2e::operator_context("pf-lee"))
        .await
        .unwrap();
    let (organised, organised_key) = timeline.keyed_state_as_of(None).await.unwrap();
    let (tables, found) = kept.found(&organised, organised_key).await;
    assert_eq!(found, Found::Amended, "a new portfolio changes the view; the organisation only grew");
    assert!(format!("{:?}", tables.view()) == fresh_view(&organised));

    // An approval: one workload more, its rows built, every other row copied.
    finops_e2e::governance_log::append_lives(&store, finops_e2e::governance_log::approval(1)).await;
    let (approved, approved_key) = timeline.keyed_state_as_of(None).await.unwrap();
    assert_eq!(approved.workloads().len(), organised.workloads().len() + 1);
    let (tables, found) = kept.found(&approved, approved_key).await;
    assert_eq!(found, Found::Amended, "an approval amends the kept tables");
    assert!(*tables == finops_attribution::GovernanceTables::new(GovernanceView::from(&approved)));

    // A budget mapped to the account every workload charges moves every workload that
    // named none: built from nothing.
    let account = finops_domain::vocabulary::AccountId::parse("123456789012").unwrap();
    let register = OrgCommand::RegisterAccount { account: account.clone(), name: "Support".into(), at: Utc::now() };
    let budget = OrgCommand::MapBudget {
        budget_id: uuid::Uuid::now_v7(),
        budget: finops_domain::org::Budget { account, name: "Support AI".into(), cost_centre: "CC-7".into() },
        at: Utc::now(),
    };
    for command in [register, budget] {
        CommandHandler::<Organisation>::new(store.clone())
            .execute(&streams::organisation(), &command, &finops_e2e::operator_context("fl-ana"))
            .await
            .unwrap();
    }
    let (budgeted, budgeted_key) = timeline.keyed_state_as_of(None).await.unwrap();
    assert!(budgeted.workloads().iter().all(|w| w.budgets.len() == 1), "the account's only budget, charged");
    assert_eq!(kept.found(&budgeted, budgeted_key).await.1, Found::Built);
}

/// Tables amended from any state of a log to any later (or earlier) one are the tables
/// built for that state from nothing, row for row and with the same lookups (and a later
/// state's always amend from an earlier's): over a real
/// log of approvals, tasks, claims and a release, every pair of nine instants.
#[tokio::test]
async fn tables_amended_from_one_state_are_the_tables_built_for_the_other() {
    use finops_attribution::{GovernanceTables, GovernanceView};
    use finops_governance::timeline::GovernanceTimeline;

    let store = finops_eventlog::open(&fresh_sqlite_url(), finops_governance::upcasters()).await.unwrap();
    // Five instants inside the generated log, after each of three approvals, and after the
    // first approval's claim is released (a claim changed, the others kept).
    let instants = finops_e2e::governance_log::with_changes(&store, 3_000).await;
    let timeline = GovernanceTimeline::new(store.clone());
    assert_eq!(timeline.state_as_of(None).await.unwrap().claim_spans().len(), 3, "each approval's role claimed");
    let mut states = Vec::new();
    for instant in &instants {
        let state = timeline.state_as_of(Some(*instant)).await.unwrap();
        let tables = GovernanceTables::new(GovernanceView::from(&state));
        states.push((state, tables));
    }
    for (i, (earlier, earlier_tables)) in states.iter().enumerate() {
        for (j, (later, later_tables)) in states.iter().enumerate() {
            match later.view_changes_since(earlier).and_then(|c| earlier_tables.amended(earlier, later, &c)) {
                Some(tables) => assert!(tables == *later_tables, "state {j} amended from state {i}"),
                // Back across an approval a workload goes: built, not amended.
                None => assert!(j < i, "state {j} from the earlier state {i} amends (the log only grew)"),
            }
        }
    }
}
