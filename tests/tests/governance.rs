//! The governed path over real gRPC, on PostgreSQL and on the embedded store: catalog,
//! submission, review, rejection and resubmission, withdrawal; every validation answer;
//! every role the table denies; idempotent retries; two concurrent approvals.

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
use tonic_types::StatusExt;
use uuid::Uuid;

const ACCOUNT: &str = "123456789012";
const MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";
const PRODUCT: &str = "0192f0c4-1111-7000-8000-000000000001";
const JUANS_PRODUCT: &str = "0192f0c4-1111-7000-8000-000000000002";

struct Actors {
    po: String,
    other_po: String,
    fl: String,
    ce: String,
    finance: String,
}

struct Harness {
    server: RunningServer,
    requests: BusinessRequestServiceClient<Channel>,
    catalog: CatalogServiceClient<Channel>,
    tasks: TaskServiceClient<Channel>,
    spaces: SpacesServiceClient<Channel>,
    who: Actors,
}

async fn harness(url: &str) -> Harness {
    let server = RunningServer::start(url).await;
    let channel = tonic::transport::Endpoint::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
    let who = Actors {
        po: server.token("po-maria", Role::ProductOwner),
        other_po: server.token("po-juan", Role::ProductOwner),
        fl: server.token("fl-ana", Role::FinopsLead),
        ce: server.token("ce-li", Role::CloudEngineer),
        finance: server.token("fin-sam", Role::Finance),
    };
    // The organisation: Maria owns the product every request is for; Juan owns another.
    let mut org = OrganisationServiceClient::new(channel.clone());
    let portfolio = "0192f0c4-2222-7000-8000-000000000001";
    org.add_portfolio(authed(
        pb::AddPortfolioRequest {
            portfolio_id: portfolio.into(),
            name: "Customer Experience".into(),
            owner: "pf-omar".into(),
            request_id: String::new(),
        },
        &who.fl,
    ))
    .await
    .unwrap();
    for (product, name, owner) in
        [(PRODUCT, "Support Assistant", "po-maria"), (JUANS_PRODUCT, "Claims Triage", "po-juan")]
    {
        org.add_product(authed(
            pb::AddProductRequest {
                product_id: product.into(),
                portfolio_id: portfolio.into(),
                name: name.into(),
                owner: owner.into(),
                request_id: String::new(),
            },
            &who.fl,
        ))
        .await
        .unwrap();
    }
    Harness {
        requests: BusinessRequestServiceClient::new(channel.clone()),
        catalog: CatalogServiceClient::new(channel.clone()),
        tasks: TaskServiceClient::new(channel.clone()),
        spaces: SpacesServiceClient::new(channel),
        server,
        who,
    }
}

fn operations(description: &str) -> pb::RequestDetails {
    pb::RequestDetails {
        workload_name: "Customer Support Bot".into(),
        use_case: Some(pb::request_details::UseCase::Operations(pb::OperationsUseCase {
            workload_type: pb::WorkloadType::CustomerSupport as i32,
            description: description.into(),
            availability: pb::Availability::HighAvailability as i32,
            monthly_budget: Some(pb::MonthlyAmount { amount: Some(pb::monthly_amount::Amount::Cents(250_000)) }),
        })),
        priority: true,
        start_date: "2026-12-01".into(),
        end_date: String::new(),
        monthly_growth_percent: Some(5.0),
        business_case: Some(pb::BusinessCase {
            annual_cost_saving_cents: Some(12_000_000),
            annual_revenue_driving_cents: None,
        }),
    }
}

fn coding() -> pb::RequestDetails {
    pb::RequestDetails {
        workload_name: "Payments team coding".into(),
        use_case: Some(pb::request_details::UseCase::Coding(pb::CodingUseCase { developers: 40, active_percent: 25 })),
        ..Default::default()
    }
}

fn submit(details: pb::RequestDetails) -> pb::SubmitBusinessRequestRequest {
    pb::SubmitBusinessRequestRequest {
        product_id: PRODUCT.into(),
        details: Some(details),
        request_id: Uuid::now_v7().to_string(),
    }
}

fn review(mpe: &str) -> pb::Review {
    pb::Review {
        platform: pb::Platform::AmazonBedrock as i32,
        model_id: MODEL.into(),
        account_id: ACCOUNT.into(),
        region: "us-east-1".into(),
        actions: vec![],
        workspace: String::new(),
        map_mpe_id: mpe.into(),
        confirmed_estimate: Some(pb::MonthlyAmount { amount: Some(pb::monthly_amount::Amount::Cents(310_000)) }),
        budget_id: String::new(),
    }
}

fn approve(name: &str, request_id: Uuid) -> pb::ApproveBusinessRequestRequest {
    pb::ApproveBusinessRequestRequest {
        name: name.into(),
        review: Some(review("MPE12345")),
        rationale: "Fits the support pilot".into(),
        request_id: request_id.to_string(),
    }
}

async fn approve_model(h: &mut Harness) {
    let model = h
        .catalog
        .approve_model(authed(
            pb::ApproveModelRequest {
                platform: pb::Platform::AmazonBedrock as i32,
                model_id: MODEL.into(),
                scope: Some(pb::Scope {
                    account_ids: vec![ACCOUNT.into()],
                    regions: vec!["us-east-1".into(), "us-west-2".into()],
                    actions: vec![],
                }),
                rationale: "Vetted for customer data".into(),
                request_id: String::new(),
            },
            &h.who.fl,
        ))
        .await
        .unwrap_err();
    // No actions named: refused with the field, then approved properly.
    assert_eq!(model.code(), Code::InvalidArgument);
    assert_eq!(model.get_details_bad_request().unwrap().field_violations[0].field, "scope.actions");
    let model = h
        .catalog
        .approve_model(authed(
            pb::ApproveModelRequest {
                platform: pb::Platform::AmazonBedrock as i32,
                model_id: MODEL.into(),
                scope: Some(pb::Scope {
                    account_ids: vec![ACCOUNT.into()],
                    regions: vec!["us-east-1".into()],
                    actions: (1..=6).collect(),
                }),
                rationale: "Vetted for customer data".into(),
                request_id: String::new(),
            },
            &h.who.fl,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(model.status, pb::ModelStatus::Approved as i32);
}

async fn head(h: &Harness) -> u64 {
    h.server.store.seal_committed().await.unwrap().position.0
}

async fn whole_path(url: String) {
    let mut h = harness(&url).await;

    // Before the model is in the catalog, approval is refused with a reason.
    let submitted = h
        .requests
        .submit_business_request(authed(submit(operations("Answers tier-1 tickets")), &h.who.po))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(submitted.status, pb::RequestStatus::Submitted as i32);
    assert_eq!(submitted.requested_by, "po-maria");
    let refused = h
        .requests
        .approve_business_request(authed(approve(&submitted.name, Uuid::now_v7()), &h.who.fl))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains("not approved in the catalog"), "{}", refused.message());

    approve_model(&mut h).await;

    // The FinOps Lead approves; the role name is generated and the tasks are created.
    let key = Uuid::now_v7();
    let approved = h
        .requests
        .approve_business_request(authed(approve(&submitted.name, key), &h.who.fl))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(approved.status, pb::RequestStatus::Approved as i32);
    let approval = approved.approval.clone().unwrap();
    assert!(approval.role_name.starts_with("finops-customer-support-bot-"), "{}", approval.role_name);
    assert_eq!(approval.role_name.len(), "finops-customer-support-bot-".len() + 4);
    assert_eq!(approval.review.unwrap().actions.len(), 4, "default actions: invoke and converse, streaming or not");
    // The approval's fan-out (a process following the log) creates the tasks and
    // reserves the generated role for the workload.
    let mut stats = h.server.store.stats().await.unwrap();
    for _ in 0..400 {
        let reserved = stats.events_by_type.iter().any(|(n, _)| n == "ResourceReserved");
        if reserved {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        stats = h.server.store.stats().await.unwrap();
    }
    let count = |t: &str| stats.events_by_type.iter().find(|(n, _)| n == t).map_or(0, |(_, c)| *c);
    assert_eq!(count("TaskCreated"), 2, "Bedrock Enable Access and the MAP task");
    assert_eq!(count("ResourceReserved"), 1, "the generated role, reserved for the workload");

    // A retry with the same request_id returns the first result and writes nothing.
    let before = head(&h).await;
    let retried = h
        .requests
        .approve_business_request(authed(approve(&submitted.name, key), &h.who.fl))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried, approved);
    assert_eq!(head(&h).await, before, "the retry wrote nothing");
    // Regression (issue 10.16): the same request id with a different body was answered
    // with the first result, silently. It is refused, naming the id.
    let mut different = approve(&submitted.name, key);
    different.rationale = "A different reason".into();
    let reused = h.requests.approve_business_request(authed(different, &h.who.fl)).await.unwrap_err();
    assert_eq!(reused.code(), Code::AlreadyExists, "{}", reused.message());
    assert!(reused.message().contains(&key.to_string()), "{}", reused.message());
    assert_eq!(head(&h).await, before, "the refusal wrote nothing");

    // Reading: the owner and Finance may; another PO and a Cloud Engineer may not.
    let get = |name: &str| pb::GetBusinessRequestRequest { as_of: String::new(), name: name.into() };
    assert_eq!(
        h.requests.get_business_request(authed(get(&submitted.name), &h.who.po)).await.unwrap().into_inner(),
        approved
    );
    assert!(h.requests.get_business_request(authed(get(&submitted.name), &h.who.finance)).await.is_ok());
    for (token, who) in [(&h.who.other_po, "another PO"), (&h.who.ce, "a Cloud Engineer")] {
        let err = h.requests.get_business_request(authed(get(&submitted.name), token)).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{who}");
    }
    let missing = h
        .requests
        .get_business_request(authed(get(&format!("businessRequests/{}", Uuid::now_v7())), &h.who.fl))
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    // Reject → revise → resubmit → approve, on a Coding request.
    let coding = h.requests.submit_business_request(authed(submit(coding()), &h.who.po)).await.unwrap().into_inner();
    let rejected = h
        .requests
        .reject_business_request(authed(
            pb::RejectBusinessRequestRequest {
                name: coding.name.clone(),
                rationale: "Name the team".into(),
                request_id: String::new(),
            },
            &h.who.fl,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (rejected.status, rejected.last_rejection.as_str()),
        (pb::RequestStatus::Rejected as i32, "Name the team")
    );
    let mut revised = self::coding();
    revised.workload_name = "Payments Platform Team".into();
    let resubmitted = h
        .requests
        .resubmit_business_request(authed(
            pb::ResubmitBusinessRequestRequest {
                name: coding.name.clone(),
                details: Some(revised),
                request_id: String::new(),
            },
            &h.who.po,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((resubmitted.status, resubmitted.revision), (pb::RequestStatus::Submitted as i32, 2));
    let mut coding_review = approve(&coding.name, Uuid::now_v7());
    coding_review.review.as_mut().unwrap().map_mpe_id.clear();
    let approved_coding =
        h.requests.approve_business_request(authed(coding_review, &h.who.fl)).await.unwrap().into_inner();
    assert!(approved_coding.approval.unwrap().role_name.starts_with("finops-payments-platform-team-"));

    // Withdrawal by the owner; not by anyone else; not once approved.
    let third = h
        .requests
        .submit_business_request(authed(submit(operations("Drafts replies")), &h.who.po))
        .await
        .unwrap()
        .into_inner();
    let withdraw = |name: &str| pb::WithdrawBusinessRequestRequest {
        name: name.into(),
        reason: "Not needed".into(),
        request_id: String::new(),
    };
    assert_eq!(
        h.requests.withdraw_business_request(authed(withdraw(&third.name), &h.who.other_po)).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let withdrawn =
        h.requests.withdraw_business_request(authed(withdraw(&third.name), &h.who.po)).await.unwrap().into_inner();
    assert_eq!(withdrawn.status, pb::RequestStatus::Withdrawn as i32);
    let late = h.requests.withdraw_business_request(authed(withdraw(&submitted.name), &h.who.po)).await.unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition);
    assert_eq!(late.message(), "cannot withdraw a business request that is approved");

    h.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_path_on_postgres() {
    let Some(url) = fresh_postgres_url().await else { return };
    whole_path(url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_path_on_the_embedded_store() {
    whole_path(fresh_sqlite_url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_validation_rule_answers_invalid_argument_with_the_fields() {
    let Some(url) = fresh_postgres_url().await else { return };
    let mut h = harness(&url).await;
    let organisation_head = head(&h).await;
    let mut bad = operations(&"x".repeat(501));
    bad.workload_name = String::new();
    bad.start_date = "2026-13-01".into();
    bad.monthly_growth_percent = Some(-1.0);
    if let Some(pb::request_details::UseCase::Operations(o)) = bad.use_case.as_mut() {
        o.monthly_budget = Some(pb::MonthlyAmount { amount: Some(pb::monthly_amount::Amount::Cents(0)) });
    }
    // Regression (issue 10.10): wire-level problems used to be reported first and the
    // domain's rules only on the next attempt. Every fault is named in one answer.
    let err = h.requests.submit_business_request(authed(submit(bad.clone()), &h.who.po)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let fields: Vec<_> = err.get_details_bad_request().unwrap().field_violations.into_iter().map(|v| v.field).collect();
    assert_eq!(
        fields,
        vec![
            "details.start_date",
            "details.workload_name",
            "details.operations.description",
            "details.operations.monthly_budget",
            "details.monthly_growth_percent"
        ]
    );
    let mut coding = coding();
    coding.use_case =
        Some(pb::request_details::UseCase::Coding(pb::CodingUseCase { developers: 100_001, active_percent: 0 }));
    let err = h.requests.submit_business_request(authed(submit(coding), &h.who.po)).await.unwrap_err();
    let fields: Vec<_> = err.get_details_bad_request().unwrap().field_violations.into_iter().map(|v| v.field).collect();
    assert_eq!(fields, vec!["details.coding.developers", "details.coding.active_percent"]);
    let err = h
        .requests
        .submit_business_request(authed(
            pb::SubmitBusinessRequestRequest { product_id: "nope".into(), details: None, request_id: "x".into() },
            &h.who.po,
        ))
        .await
        .unwrap_err();
    let fields: Vec<_> = err.get_details_bad_request().unwrap().field_violations.into_iter().map(|v| v.field).collect();
    assert_eq!(fields, vec!["product_id", "details", "request_id"]);
    // A product that does not exist, or that someone else owns.
    let mut unknown = submit(self::coding());
    unknown.product_id = Uuid::now_v7().to_string();
    let err = h.requests.submit_business_request(authed(unknown, &h.who.po)).await.unwrap_err();
    assert_eq!(err.get_details_bad_request().unwrap().field_violations[0].field, "product_id");
    let mut juans = submit(self::coding());
    juans.product_id = JUANS_PRODUCT.into();
    assert_eq!(
        h.requests.submit_business_request(authed(juans, &h.who.po)).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    // An approval with six faults names all six (it named three).
    let mut review = review("MPE-12");
    review.model_id = "model with spaces".into();
    review.account_id = "1234".into();
    review.workspace = "ws".into();
    review.confirmed_estimate = Some(pb::MonthlyAmount { amount: Some(pb::monthly_amount::Amount::Cents(0)) });
    let err = h
        .requests
        .approve_business_request(authed(
            pb::ApproveBusinessRequestRequest {
                name: format!("businessRequests/{}", Uuid::now_v7()),
                review: Some(review),
                rationale: " ".into(),
                request_id: String::new(),
            },
            &h.who.fl,
        ))
        .await
        .unwrap_err();
    let fields: Vec<_> = err.get_details_bad_request().unwrap().field_violations.into_iter().map(|v| v.field).collect();
    assert_eq!(
        fields,
        vec![
            "review.model_id",
            "review.account_id",
            "review.workspace",
            "review.map_mpe_id",
            "review.confirmed_estimate",
            "rationale"
        ]
    );
    // The organisation names every fault too.
    let err = OrganisationServiceClient::new(
        tonic::transport::Endpoint::from_shared(h.server.endpoint()).unwrap().connect().await.unwrap(),
    )
    .add_product(authed(
        pb::AddProductRequest {
            product_id: String::new(),
            portfolio_id: "not-a-uuid".into(),
            name: String::new(),
            owner: " ".into(),
            request_id: String::new(),
        },
        &h.who.fl,
    ))
    .await
    .unwrap_err();
    let fields: Vec<_> = err.get_details_bad_request().unwrap().field_violations.into_iter().map(|v| v.field).collect();
    assert_eq!(fields, vec!["portfolio_id", "name", "owner"]);
    assert_eq!(head(&h).await, organisation_head, "bad input stores nothing");
    h.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_the_table_denies_is_denied_and_leaves_no_event() {
    let Some(url) = fresh_postgres_url().await else { return };
    let mut h = harness(&url).await;
    let submitted = h.requests.submit_business_request(authed(submit(coding()), &h.who.po)).await.unwrap().into_inner();
    let before = head(&h).await;
    let roles =
        [Role::FinopsLead, Role::CloudEngineer, Role::PortfolioOwner, Role::Finance, Role::Auditor, Role::Operator];
    for role in roles {
        let token = h.server.token("someone", role);
        let err = h.requests.submit_business_request(authed(submit(coding()), &token)).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{role:?} may not submit");
    }
    for role in
        [Role::ProductOwner, Role::CloudEngineer, Role::PortfolioOwner, Role::Finance, Role::Auditor, Role::Operator]
    {
        let token = h.server.token("someone", role);
        let err = h
            .requests
            .approve_business_request(authed(approve(&submitted.name, Uuid::now_v7()), &token))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{role:?} may not approve");
        let err = h
            .catalog
            .revoke_model(authed(
                pb::RevokeModelRequest {
                    platform: 1,
                    model_id: MODEL.into(),
                    rationale: "x".into(),
                    request_id: String::new(),
                },
                &token,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{role:?} may not run the catalog");
    }
    // The Portfolio Owner sees the portfolio's requests; another Portfolio Owner does not.
    let get = || pb::GetBusinessRequestRequest { as_of: String::new(), name: submitted.name.clone() };
    assert!(
        h.requests.get_business_request(authed(get(), &h.server.token("pf-omar", Role::PortfolioOwner))).await.is_ok()
    );
    let stranger = h
        .requests
        .get_business_request(authed(get(), &h.server.token("pf-lena", Role::PortfolioOwner)))
        .await
        .unwrap_err();
    assert_eq!(stranger.code(), Code::PermissionDenied);
    let anonymous = h
        .requests
        .get_business_request(tonic::Request::new(pb::GetBusinessRequestRequest {
            as_of: String::new(),
            name: submitted.name.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    assert_eq!(head(&h).await, before, "denied calls leave no event");
    h.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_two_concurrent_approvals_exactly_one_wins() {
    let Some(url) = fresh_postgres_url().await else { return };
    let mut h = harness(&url).await;
    approve_model(&mut h).await;
    let submitted = h
        .requests
        .submit_business_request(authed(submit(operations("Answers tickets")), &h.who.po))
        .await
        .unwrap()
        .into_inner();
    let race = |token: String| {
        let mut client = h.requests.clone();
        let name = submitted.name.clone();
        tokio::spawn(
            async move { client.approve_business_request(authed(approve(&name, Uuid::now_v7()), &token)).await },
        )
    };
    let (a, b) = (race(h.who.fl.clone()), race(h.server.token("fl-bo", Role::FinopsLead)));
    let outcomes = [a.await.unwrap(), b.await.unwrap()];
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1, "{outcomes:?}");
    let loser = outcomes.iter().find_map(|o| o.as_ref().err()).unwrap();
    assert!(matches!(loser.code(), Code::Aborted | Code::FailedPrecondition), "{loser:?}");
    let stats = h.server.store.stats().await.unwrap();
    let approvals = stats.events_by_type.iter().find(|(t, _)| t == "BusinessRequestApproved").map_or(0, |(_, n)| *n);
    assert_eq!(approvals, 1);
    h.server.shutdown().await.unwrap();
}

/// Lists tasks until `ready` holds: the queue is a read model that follows the log.
async fn tasks_when(h: &mut Harness, token: &str, ready: impl Fn(&[pb::Task]) -> bool) -> Vec<pb::Task> {
    for _ in 0..600 {
        let page = h
            .tasks
            .list_tasks(authed(
                pb::ListTasksRequest {
                    as_of: String::new(),
                    page_size: 100,
                    page_token: String::new(),
                    status: String::new(),
                },
                token,
            ))
            .await
            .unwrap()
            .into_inner();
        if ready(&page.tasks) {
            return page.tasks;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the task queue never showed the expected tasks");
}

async fn from_submission_to_claimed_role(url: String) {
    let mut h = harness(&url).await;
    approve_model(&mut h).await;
    let submitted = h
        .requests
        .submit_business_request(authed(submit(operations("Answers tier-1 tickets")), &h.who.po))
        .await
        .unwrap()
        .into_inner();
    let approved = h
        .requests
        .approve_business_request(authed(approve(&submitted.name, Uuid::now_v7()), &h.who.fl))
        .await
        .unwrap()
        .into_inner();
    let approval = approved.approval.unwrap();

    // The Cloud Engineer finds the two tasks in the queue: Enable Access and MAP.
    let ce = h.who.ce.clone();
    let tasks = tasks_when(&mut h, &ce, |t| t.len() == 2).await;
    let enable = tasks.iter().find(|t| t.kind == "bedrock_enable_access").unwrap().clone();
    let map = tasks.iter().find(|t| t.kind == "map_tag").unwrap();
    assert_eq!(enable.business_request, submitted.name);
    assert_eq!(enable.steps.len(), 4);
    assert!(
        enable.steps[1].commands[0].contains(&format!("--role-name {}", approval.role_name)),
        "{:?}",
        enable.steps[1]
    );
    assert!(enable.steps[2].commands[0].starts_with("aws iam put-role-policy"));
    assert!(map.steps[0].commands[0].contains("value=migMPE12345"));
    assert!(!enable.overdue);

    // The role cannot be claimed before it exists.
    let claim = pb::ClaimResourceRequest {
        business_request: submitted.name.clone(),
        resource: Some(pb::claim_resource_request::Resource::Role(pb::IamRoleRef {
            account_id: ACCOUNT.into(),
            role_name_or_arn: approval.role_name.clone(),
        })),
        effective_from: "2026-11-01".into(),
        request_id: String::new(),
    };
    let early = h.spaces.claim_resource(authed(claim.clone(), &h.who.po)).await.unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition);
    assert!(early.message().contains("must be marked implemented first"), "{}", early.message());

    // Steps in order; the PO may not work the queue.
    let step = |n: u32| pb::CompleteTaskStepRequest {
        name: enable.name.clone(),
        step: n,
        note: format!("done {n}"),
        request_id: String::new(),
    };
    assert_eq!(
        h.tasks.complete_task_step(authed(step(1), &h.who.po)).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let skipped = h.tasks.complete_task_step(authed(step(2), &h.who.ce)).await.unwrap_err();
    assert_eq!(
        (skipped.code(), skipped.message()),
        (Code::FailedPrecondition, "step 2 cannot be completed before step 1")
    );
    for n in 1..=3 {
        let task = h.tasks.complete_task_step(authed(step(n), &h.who.ce)).await.unwrap().into_inner();
        assert_eq!(task.steps_done, n);
    }
    let done = h
        .tasks
        .mark_task_implemented(authed(
            pb::MarkTaskImplementedRequest {
                name: enable.name.clone(),
                request_id: String::new(),
                note: "INC-4711: invoked from the workload role".into(),
            },
            &h.who.ce,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((done.status.as_str(), done.steps_done), ("implemented", 4));
    assert_eq!(done.implemented_note, "INC-4711: invoked from the workload role");

    // Now the owner claims the role; nobody else can.
    assert_eq!(
        h.spaces.claim_resource(authed(claim.clone(), &h.who.other_po)).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let claimed = h.spaces.claim_resource(authed(claim, &h.who.po)).await.unwrap().into_inner();
    assert_eq!(claimed.name, format!("claims/role:{ACCOUNT}:{}", approval.role_name));
    assert_eq!((claimed.status.as_str(), claimed.workload_id.as_str()), ("claimed", approval.workload_id.as_str()));
    assert_eq!(claimed.periods[0].from, "2026-11-01");

    // A guardrail and a workspace are claimed at once; a release needs a reason and frees
    // the resource while keeping the period.
    let claim_other = |resource: pb::claim_resource_request::Resource| pb::ClaimResourceRequest {
        business_request: submitted.name.clone(),
        resource: Some(resource),
        effective_from: "2026-11-01".into(),
        request_id: String::new(),
    };
    let guardrail = h
        .spaces
        .claim_resource(authed(
            claim_other(pb::claim_resource_request::Resource::GuardrailArn(format!(
                "arn:aws:bedrock:us-east-1:{ACCOUNT}:guardrail/gr0support01"
            ))),
            &h.who.po,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(guardrail.status, "claimed");
    let workspace = h
        .spaces
        .claim_resource(authed(
            claim_other(pb::claim_resource_request::Resource::Workspace("support-pilot".into())),
            &h.who.po,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(workspace.name, "claims/workspace:support-pilot");
    let release = |rationale: &str| pb::ReleaseResourceRequest {
        name: guardrail.name.clone(),
        effective_until: "2026-11-20".into(),
        rationale: rationale.into(),
        request_id: String::new(),
    };
    let no_reason = h.spaces.release_resource(authed(release(""), &h.who.po)).await.unwrap_err();
    assert_eq!(no_reason.get_details_bad_request().unwrap().field_violations[0].field, "rationale");
    assert_eq!(
        h.spaces.release_resource(authed(release("moved"), &h.who.ce)).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let released =
        h.spaces.release_resource(authed(release("Guardrail replaced"), &h.who.po)).await.unwrap().into_inner();
    assert_eq!((released.status.as_str(), released.periods[0].until.as_str()), ("released", "2026-11-20"));
    let twice = h.spaces.release_resource(authed(release("again"), &h.who.po)).await.unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition);

    // The owner states the workload's estimate and business case in Spaces.
    let estimate = |cents: u64| pb::SetWorkloadEstimateRequest {
        business_request: submitted.name.clone(),
        estimate: Some(pb::WorkloadEstimate {
            monthly: Some(pb::MonthlyAmount { amount: Some(pb::monthly_amount::Amount::Cents(cents)) }),
            start_date: "2026-12-01".into(),
            end_date: String::new(),
            monthly_growth_percent: Some(4.0),
        }),
        request_id: String::new(),
    };
    assert_eq!(
        h.spaces.set_workload_estimate(authed(estimate(300_000), &h.who.other_po)).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let zero = h.spaces.set_workload_estimate(authed(estimate(0), &h.who.po)).await.unwrap_err();
    assert_eq!(zero.get_details_bad_request().unwrap().field_violations[0].field, "estimate.monthly");
    let workload = h.spaces.set_workload_estimate(authed(estimate(300_000), &h.who.po)).await.unwrap().into_inner();
    assert_eq!(workload.workload_id, approval.workload_id);
    let workload = h
        .spaces
        .declare_business_case(authed(
            pb::DeclareBusinessCaseRequest {
                business_request: submitted.name.clone(),
                business_case: Some(pb::BusinessCase {
                    annual_cost_saving_cents: Some(15_000_000),
                    annual_revenue_driving_cents: None,
                }),
                request_id: String::new(),
            },
            &h.who.po,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(workload.business_case.unwrap().annual_cost_saving_cents, Some(15_000_000));
    assert_eq!(workload.estimate.unwrap().start_date, "2026-12-01");
    let mut listed_workloads = Vec::new();
    for _ in 0..600 {
        listed_workloads = h
            .spaces
            .list_workloads(authed(
                pb::ListWorkloadsRequest { as_of: String::new(), page_size: 10, page_token: String::new() },
                &h.who.po,
            ))
            .await
            .unwrap()
            .into_inner()
            .workloads;
        if listed_workloads.first().is_some_and(|w| w.business_case.is_some()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(listed_workloads.len(), 1);
    assert_eq!(
        (listed_workloads[0].name.as_str(), listed_workloads[0].role_name.as_str()),
        ("Customer Support Bot", approval.role_name.as_str())
    );
    assert!(listed_workloads[0].estimate.is_some());
    let none = h
        .spaces
        .list_workloads(authed(
            pb::ListWorkloadsRequest { as_of: String::new(), page_size: 10, page_token: String::new() },
            &h.who.other_po,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(none.workloads.is_empty());

    // The queue and the claims read models catch up; a PO sees only their own.
    let mut listed = Vec::new();
    for _ in 0..600 {
        listed = h
            .spaces
            .list_claims(authed(
                pb::ListClaimsRequest { as_of: String::new(), page_size: 10, page_token: String::new() },
                &h.who.po,
            ))
            .await
            .unwrap()
            .into_inner()
            .claims;
        if listed.len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(listed.len(), 3, "the role, the guardrail and the workspace");
    let others = h
        .spaces
        .list_claims(authed(
            pb::ListClaimsRequest { as_of: String::new(), page_size: 10, page_token: String::new() },
            &h.who.other_po,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(others.claims.is_empty());
    let queue = h
        .requests
        .list_business_requests(authed(
            pb::ListBusinessRequestsRequest {
                as_of: String::new(),
                page_size: 10,
                page_token: String::new(),
                status: 0,
            },
            &h.who.other_po,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(queue.business_requests.is_empty(), "another PO sees none of Maria's requests");
    let bad_token = h
        .requests
        .list_business_requests(authed(
            pb::ListBusinessRequestsRequest { as_of: String::new(), page_size: 10, page_token: "%%".into(), status: 0 },
            &h.who.fl,
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_token.code(), Code::InvalidArgument);
    h.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_submission_to_a_claimed_role_on_postgres() {
    let Some(url) = fresh_postgres_url().await else { return };
    from_submission_to_claimed_role(url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_platform_gets_a_chain_that_runs_in_order() {
    let Some(url) = fresh_postgres_url().await else { return };
    let mut h = harness(&url).await;
    h.catalog
        .approve_model(authed(
            pb::ApproveModelRequest {
                platform: pb::Platform::ClaudePlatform as i32,
                model_id: "claude-sonnet-4-5".into(),
                scope: Some(pb::Scope {
                    account_ids: vec![ACCOUNT.into()],
                    regions: vec!["us-east-1".into()],
                    actions: vec![1, 3],
                }),
                rationale: "Claude Platform pilot".into(),
                request_id: String::new(),
            },
            &h.who.fl,
        ))
        .await
        .unwrap();
    let submitted = h
        .requests
        .submit_business_request(authed(submit(operations("Drafts contracts")), &h.who.po))
        .await
        .unwrap()
        .into_inner();
    let mut review = review("");
    review.platform = pb::Platform::ClaudePlatform as i32;
    review.model_id = "claude-sonnet-4-5".into();
    review.actions = vec![1, 3];
    let no_workspace = h
        .requests
        .approve_business_request(authed(
            pb::ApproveBusinessRequestRequest {
                name: submitted.name.clone(),
                review: Some(review.clone()),
                rationale: "ok".into(),
                request_id: String::new(),
            },
            &h.who.fl,
        ))
        .await
        .unwrap_err();
    assert_eq!(no_workspace.get_details_bad_request().unwrap().field_violations[0].field, "review.workspace");
    review.workspace = "contracts-team".into();
    h.requests
        .approve_business_request(authed(
            pb::ApproveBusinessRequestRequest {
                name: submitted.name.clone(),
                review: Some(review),
                rationale: "ok".into(),
                request_id: String::new(),
            },
            &h.who.fl,
        ))
        .await
        .unwrap();
    let ce = h.who.ce.clone();
    let tasks = tasks_when(&mut h, &ce, |t| t.len() == 3).await;
    let first = tasks.iter().find(|t| t.kind == "claude_workspace").unwrap();
    let second = tasks.iter().find(|t| t.kind == "claude_allocation_tags").unwrap();
    assert_eq!(second.depends_on, first.name);
    let blocked = h
        .tasks
        .complete_task_step(authed(
            pb::CompleteTaskStepRequest {
                name: second.name.clone(),
                step: 1,
                note: String::new(),
                request_id: String::new(),
            },
            &h.who.ce,
        ))
        .await
        .unwrap_err();
    assert!(blocked.message().contains("depends on is not implemented"), "{}", blocked.message());
    h.tasks
        .complete_task_step(authed(
            pb::CompleteTaskStepRequest {
                name: first.name.clone(),
                step: 1,
                note: String::new(),
                request_id: String::new(),
            },
            &h.who.ce,
        ))
        .await
        .unwrap();
    h.tasks
        .mark_task_implemented(authed(
            pb::MarkTaskImplementedRequest { name: first.name.clone(), ..Default::default() },
            &h.who.ce,
        ))
        .await
        .unwrap();
    let unblocked = h
        .tasks
        .complete_task_step(authed(
            pb::CompleteTaskStepRequest {
                name: second.name.clone(),
                step: 1,
                note: String::new(),
                request_id: String::new(),
            },
            &h.who.ce,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unblocked.steps_done, 1);
    h.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn estimates_state_their_figures_and_assumptions() {
    let mut h = harness(&fresh_sqlite_url()).await;
    let estimate = |name: &str, model: &str, region: &str| pb::EstimateBusinessRequestRequest {
        name: name.into(),
        model_id: model.into(),
        region: region.into(),
    };
    let coding = h.requests.submit_business_request(authed(submit(coding()), &h.who.po)).await.unwrap().into_inner();
    let e = h
        .requests
        .estimate_business_request(authed(estimate(&coding.name, "", ""), &h.who.fl))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(e.monthly_cents, 87_696, "40 developers × 25 % on the default profile");
    assert_eq!(e.monthly_ccu, 87_696);
    assert_eq!(e.price_snapshot, "2026-12-02");
    assert!(e.assumptions.iter().any(|a| a.contains("1680.00 active hours")), "{:?}", e.assumptions);

    let mut tokens = operations("Classifies documents");
    if let Some(pb::request_details::UseCase::Operations(o)) = tokens.use_case.as_mut() {
        o.monthly_budget = Some(pb::MonthlyAmount {
            amount: Some(pb::monthly_amount::Amount::Tokens(pb::TokenBreakdown {
                input: 10_000_000,
                output: 2_000_000,
                cache_read: 0,
                cache_write: 0,
            })),
        });
    }
    let ops = h.requests.submit_business_request(authed(submit(tokens), &h.who.po)).await.unwrap().into_inner();
    let missing =
        h.requests.estimate_business_request(authed(estimate(&ops.name, "", ""), &h.who.fl)).await.unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);
    let e = h
        .requests
        .estimate_business_request(authed(estimate(&ops.name, MODEL, "us-east-1"), &h.who.po))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(e.monthly_cents, 550, "$5.00 of Haiku tokens plus the 10 % High Availability premium");
    // Regression (issue 10.5): Claude 3.5 Sonnet in us-west-2 answered FAILED_PRECONDITION.
    let west = h
        .requests
        .estimate_business_request(authed(
            estimate(&ops.name, "anthropic.claude-3-5-sonnet-20240620-v1:0", "us-west-2"),
            &h.who.fl,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(west.monthly_cents, 6_600, "10 M input at $3 + 2 M output at $15, plus 10 %");
    let unknown = h
        .requests
        .estimate_business_request(authed(estimate(&ops.name, MODEL, "eu-west-3"), &h.who.fl))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::FailedPrecondition);
    assert!(unknown.message().contains("load a Price List offer file"), "{}", unknown.message());
    let denied = h
        .requests
        .estimate_business_request(authed(estimate(&ops.name, MODEL, "us-east-1"), &h.who.other_po))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    h.server.shutdown().await.unwrap();
}

/// Waits until the log holds `n` events of `event_type` (a process writes them).
async fn events_of(server: &RunningServer, event_type: &str, n: u64) -> u64 {
    let mut found = 0;
    for _ in 0..400 {
        let stats = server.store.stats().await.unwrap();
        found = stats.events_by_type.iter().find(|(t, _)| t == event_type).map_or(0, |(_, c)| *c);
        if found >= n {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    found
}

/// Regression (issue 10.6): a Product Owner claimed the role generated for another
/// Product Owner's workload, which moved that workload's spend to theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_generated_for_another_workload_is_refused_and_only_the_finops_lead_reassigns_it() {
    let Some(url) = fresh_postgres_url().await else { return };
    let mut h = harness(&url).await;
    approve_model(&mut h).await;
    let mut approved = Vec::new();
    for (token, product) in [(h.who.po.clone(), PRODUCT), (h.who.other_po.clone(), JUANS_PRODUCT)] {
        let mut request = submit(operations("Answers tickets"));
        request.product_id = product.into();
        let submitted = h.requests.submit_business_request(authed(request, &token)).await.unwrap().into_inner();
        let done = h
            .requests
            .approve_business_request(authed(approve(&submitted.name, Uuid::now_v7()), &h.who.fl))
            .await
            .unwrap()
            .into_inner();
        approved.push(done);
    }
    assert_eq!(events_of(&h.server, "ResourceReserved", 2).await, 2, "each generated role is reserved");
    let (marias, juans) = (&approved[0], &approved[1]);
    let marias_role = marias.approval.as_ref().unwrap().role_name.clone();
    let marias_workload = marias.approval.as_ref().unwrap().workload_id.clone();
    let juans_workload = juans.approval.as_ref().unwrap().workload_id.clone();
    let role = || Some(pb::IamRoleRef { account_id: ACCOUNT.into(), role_name_or_arn: marias_role.clone() });
    let before = head(&h).await;
    let stolen = h
        .spaces
        .claim_resource(authed(
            pb::ClaimResourceRequest {
                business_request: juans.name.clone(),
                resource: role().map(pb::claim_resource_request::Resource::Role),
                effective_from: "2026-11-01".into(),
                request_id: String::new(),
            },
            &h.who.other_po,
        ))
        .await
        .unwrap_err();
    assert_eq!(stolen.code(), Code::FailedPrecondition);
    assert!(stolen.message().contains(&marias_workload), "the holder is named: {}", stolen.message());
    assert_eq!(head(&h).await, before, "the refused claim left no event");

    // Only the FinOps Lead reassigns, and only with a reason.
    let reassign = |rationale: &str| pb::ReassignResourceRequest {
        business_request: juans.name.clone(),
        resource: role().map(pb::reassign_resource_request::Resource::Role),
        effective_from: "2026-11-10".into(),
        rationale: rationale.into(),
        request_id: String::new(),
    };
    assert_eq!(
        h.spaces.reassign_resource(authed(reassign("team moved"), &h.who.po)).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let no_reason = h.spaces.reassign_resource(authed(reassign(" "), &h.who.fl)).await.unwrap_err();
    assert_eq!(no_reason.get_details_bad_request().unwrap().field_violations[0].field, "rationale");
    let moved =
        h.spaces.reassign_resource(authed(reassign("Team moved to claims"), &h.who.fl)).await.unwrap().into_inner();
    assert_eq!((moved.status.as_str(), moved.workload_id.as_str()), ("claimed", juans_workload.as_str()));
    assert_eq!(moved.reserved_for, juans_workload);
    assert_eq!(moved.periods[0].from, "2026-11-10");
    h.server.shutdown().await.unwrap();
}

/// Regression (issue 10.7): an approval whose task fan-out was lost in a crash stayed
/// approved with no tasks forever. The approval is recorded as the API records it and the
/// service dies before anything else; the next service finds it and creates the tasks and
/// the reservation, once, each caused by the approval.
async fn a_lost_fan_out_completes_when_the_service_starts(url: String) {
    let mut h = harness(&url).await;
    approve_model(&mut h).await;
    let submitted = h
        .requests
        .submit_business_request(authed(submit(operations("Answers tickets")), &h.who.po))
        .await
        .unwrap()
        .into_inner();
    h.server.shutdown().await.unwrap();

    // The approval, stored exactly as the API stores it — and then nothing: the crash.
    let store = finops_eventlog::open(&url, finops_governance::upcasters()).await.unwrap();
    let id = Uuid::parse_str(submitted.name.trim_start_matches("businessRequests/")).unwrap();
    let catalog = finops_governance::CommandHandler::<finops_domain::catalog::CatalogEntry>::new(store.clone())
        .load(&finops_governance::streams::catalog_model(finops_domain::vocabulary::Platform::AmazonBedrock, MODEL))
        .await
        .unwrap();
    let request_id = Uuid::now_v7();
    let approve = finops_domain::request::RequestCommand::Approve {
        review: finops_domain::request::Review {
            platform: finops_domain::vocabulary::Platform::AmazonBedrock,
            model_id: finops_domain::vocabulary::ModelId::parse(MODEL).unwrap(),
            account: finops_domain::vocabulary::AccountId::parse(ACCOUNT).unwrap(),
            region: finops_domain::vocabulary::Region::parse("us-east-1").unwrap(),
            actions: [finops_domain::vocabulary::InvokeAction::InvokeModel].into(),
            role_suffix: finops_domain::role::RoleSuffix::parse("k1l1").unwrap(),
            workspace: None,
            map_mpe_id: None,
            confirmed_estimate: finops_domain::vocabulary::MonthlyAmount::Dollars(finops_domain::vocabulary::Cents(
                9_000,
            )),
            budget_id: None,
        },
        workload_id: Uuid::new_v5(&request_id, b"workload"),
        catalog: catalog.state.standing(),
        account_budgets: vec![],
        by: "fl-ana".into(),
        rationale: "Fits the pilot".into(),
        at: chrono::Utc::now(),
    };
    let context = finops_governance::CommandContext {
        actor_id: "fl-ana".into(),
        actor_role: "finops_lead".into(),
        request_id,
        rationale: Some("Fits the pilot".into()),
        correlation_id: Some(request_id),
        causation_id: None,
        fingerprint: None,
    };
    let stream = finops_governance::streams::business_request(id);
    let approved = finops_governance::CommandHandler::<finops_domain::request::BusinessRequest>::new(store.clone())
        .execute(&stream, &approve, &context)
        .await
        .unwrap();
    assert_eq!(approved.state.status, finops_domain::request::RequestStatus::Approved);
    let stats = store.stats().await.unwrap();
    assert!(stats.events_by_type.iter().all(|(t, _)| t != "TaskCreated"), "no task yet: the crash");
    drop(store);

    // The next service reacts to the approval it never saw.
    let server = RunningServer::start(&url).await;
    assert_eq!(events_of(&server, "ResourceReserved", 1).await, 1);
    let stats = server.store.stats().await.unwrap();
    let count = |t: &str| stats.events_by_type.iter().find(|(n, _)| n == t).map_or(0, |(_, c)| *c);
    assert_eq!(count("TaskCreated"), 1, "Bedrock Enable Access, once");
    let approval_event = server
        .store
        .read_stream(&stream, finops_eventlog::StreamRead::all())
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.event_type == "BusinessRequestApproved")
        .unwrap();
    let task_id = Uuid::new_v5(&Uuid::new_v5(&request_id, b"workload"), b"bedrock_enable_access");
    let task_events = server
        .store
        .read_stream(&finops_governance::streams::task(task_id), finops_eventlog::StreamRead::all())
        .await
        .unwrap();
    assert_eq!(task_events.len(), 1);
    assert_eq!(task_events[0].metadata.causation_id, Some(approval_event.event_id), "caused by the approval");
    assert_eq!(task_events[0].metadata.actor_id, "fl-ana", "on behalf of the approver");

    // Regression: a process catching up over approvals already fanned out re-read the
    // organisation and every task and claim stream of each (~27 ms an approval on a 200 k
    // log). A fan-out already done is now known by its last reservation: it reads the
    // request and that claim's stream, and writes nothing.
    let request_events = server.store.read_stream(&stream, finops_eventlog::StreamRead::all()).await.unwrap().len();
    let claim_events: usize = {
        let stats = server.store.stats().await.unwrap();
        stats.events_by_type.iter().filter(|(t, _)| t == "ResourceReserved").map(|(_, c)| *c as usize).sum()
    };
    let fanned_out = async || {
        let stats = server.store.stats().await.unwrap();
        let count = |t: &str| stats.events_by_type.iter().find(|(n, _)| n == t).map_or(0, |(_, c)| *c);
        (count("TaskCreated"), count("ResourceReserved"))
    };
    let before = fanned_out().await;
    let counted = finops_e2e::CountedStore::new(server.store.clone());
    let store: std::sync::Arc<dyn finops_eventlog::EventStore> = counted.clone();
    finops_processes::fan_out(&store, &approval_event, "").await.unwrap();
    assert_eq!(counted.take_stream_reads(), request_events + claim_events, "the request and the last reservation");
    assert_eq!(fanned_out().await, before, "nothing written again");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_fan_out_completes_when_the_service_starts_on_postgres() {
    let Some(url) = fresh_postgres_url().await else { return };
    a_lost_fan_out_completes_when_the_service_starts(url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_fan_out_completes_when_the_service_starts_on_the_embedded_store() {
    a_lost_fan_out_completes_when_the_service_starts(fresh_sqlite_url()).await;
}

/// Regression (issue 10.8): a refused `ApproveModel` still recorded its listing. Every
/// command's refusal paths — bad input, a denied role, an illegal transition, a failed
/// precondition — are driven here, and the log must not move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refused_command_leaves_no_event() {
    let Some(url) = fresh_postgres_url().await else { return };
    let mut h = harness(&url).await;
    approve_model(&mut h).await;
    let submitted = h
        .requests
        .submit_business_request(authed(submit(operations("Answers tickets")), &h.who.po))
        .await
        .unwrap()
        .into_inner();
    let approved = h
        .requests
        .approve_business_request(authed(approve(&submitted.name, Uuid::now_v7()), &h.who.fl))
        .await
        .unwrap()
        .into_inner();
    let pending = h.requests.submit_business_request(authed(submit(coding()), &h.who.po)).await.unwrap().into_inner();
    // Let the approval's fan-out finish before measuring.
    assert_eq!(events_of(&h.server, "ResourceReserved", 1).await, 1);
    let before = head(&h).await;
    let channel = tonic::transport::Endpoint::from_shared(h.server.endpoint()).unwrap().connect().await.unwrap();
    let mut org = OrganisationServiceClient::new(channel);
    let mut refused: Vec<(&str, tonic::Status)> = Vec::new();
    macro_rules! refuse {
        ($what:expr, $call:expr) => {
            refused.push(($what, $call.await.unwrap_err()))
        };
    }

    // The catalog: a model not yet listed, approved without actions or rationale (the bug).
    let unlisted = |rationale: &str, actions: Vec<i32>| pb::ApproveModelRequest {
        platform: pb::Platform::AmazonBedrock as i32,
        model_id: "amazon.nova-micro-v1:0".into(),
        scope: Some(pb::Scope { account_ids: vec![ACCOUNT.into()], regions: vec!["us-east-1".into()], actions }),
        rationale: rationale.into(),
        request_id: String::new(),
    };
    refuse!("approve model: no actions", h.catalog.approve_model(authed(unlisted("ok", vec![]), &h.who.fl)));
    refuse!("approve model: no rationale", h.catalog.approve_model(authed(unlisted(" ", vec![1]), &h.who.fl)));
    refuse!("approve model: a PO", h.catalog.approve_model(authed(unlisted("ok", vec![1]), &h.who.po)));
    refuse!(
        "add scope to an unlisted model",
        h.catalog.add_model_scope(authed(
            pb::AddModelScopeRequest {
                platform: 1,
                model_id: "amazon.nova-micro-v1:0".into(),
                scope: Some(pb::Scope::default()),
                rationale: "more".into(),
                request_id: String::new()
            },
            &h.who.fl
        ))
    );
    refuse!(
        "revoke without rationale",
        h.catalog.revoke_model(authed(
            pb::RevokeModelRequest {
                platform: 1,
                model_id: MODEL.into(),
                rationale: String::new(),
                request_id: String::new()
            },
            &h.who.fl
        ))
    );
    // Requests.
    let mut bad = operations("");
    bad.workload_name = String::new();
    refuse!("submit: invalid", h.requests.submit_business_request(authed(submit(bad), &h.who.po)));
    refuse!(
        "approve: already approved",
        h.requests.approve_business_request(authed(approve(&submitted.name, Uuid::now_v7()), &h.who.fl))
    );
    let mut elsewhere = approve(&pending.name, Uuid::now_v7());
    elsewhere.review.as_mut().unwrap().region = "eu-west-1".into();
    refuse!("approve: outside the catalog's scope", h.requests.approve_business_request(authed(elsewhere, &h.who.fl)));
    refuse!(
        "reject: no rationale",
        h.requests.reject_business_request(authed(
            pb::RejectBusinessRequestRequest {
                name: pending.name.clone(),
                rationale: String::new(),
                request_id: String::new()
            },
            &h.who.fl
        ))
    );
    refuse!(
        "resubmit a submitted request",
        h.requests.resubmit_business_request(authed(
            pb::ResubmitBusinessRequestRequest {
                name: pending.name.clone(),
                details: Some(coding()),
                request_id: String::new()
            },
            &h.who.po
        ))
    );
    refuse!(
        "withdraw an approved request",
        h.requests.withdraw_business_request(authed(
            pb::WithdrawBusinessRequestRequest {
                name: submitted.name.clone(),
                reason: String::new(),
                request_id: String::new()
            },
            &h.who.po
        ))
    );
    // Tasks.
    let ce = h.who.ce.clone();
    let tasks = tasks_when(&mut h, &ce, |t| t.len() == 2).await;
    let enable = tasks.iter().find(|t| t.kind == "bedrock_enable_access").unwrap().name.clone();
    refuse!(
        "complete step 3 first",
        h.tasks.complete_task_step(authed(
            pb::CompleteTaskStepRequest {
                name: enable.clone(),
                step: 3,
                note: String::new(),
                request_id: String::new()
            },
            &h.who.ce
        ))
    );
    refuse!(
        "implemented by a PO",
        h.tasks.mark_task_implemented(authed(
            pb::MarkTaskImplementedRequest { name: enable.clone(), ..Default::default() },
            &h.who.po
        ))
    );
    // Spaces.
    let role = approved.approval.as_ref().unwrap().role_name.clone();
    let claim = |request: &str| pb::ClaimResourceRequest {
        business_request: request.into(),
        resource: Some(pb::claim_resource_request::Resource::Role(pb::IamRoleRef {
            account_id: ACCOUNT.into(),
            role_name_or_arn: role.clone(),
        })),
        effective_from: String::new(),
        request_id: String::new(),
    };
    refuse!("claim for an unapproved request", h.spaces.claim_resource(authed(claim(&pending.name), &h.who.po)));
    refuse!("claim before the role exists", h.spaces.claim_resource(authed(claim(&submitted.name), &h.who.po)));
    refuse!(
        "release what is not claimed",
        h.spaces.release_resource(authed(
            pb::ReleaseResourceRequest {
                name: format!("claims/role:{ACCOUNT}:{role}"),
                effective_until: "2026-12-31".into(),
                rationale: "done".into(),
                request_id: String::new()
            },
            &h.who.po
        ))
    );
    refuse!(
        "reassign without rationale",
        h.spaces.reassign_resource(authed(
            pb::ReassignResourceRequest {
                business_request: submitted.name.clone(),
                resource: Some(pb::reassign_resource_request::Resource::Workspace("ws".into())),
                effective_from: String::new(),
                rationale: String::new(),
                request_id: String::new()
            },
            &h.who.fl
        ))
    );
    refuse!(
        "an estimate of nothing",
        h.spaces.set_workload_estimate(authed(
            pb::SetWorkloadEstimateRequest {
                business_request: submitted.name.clone(),
                estimate: Some(pb::WorkloadEstimate {
                    monthly: Some(pb::MonthlyAmount { amount: Some(pb::monthly_amount::Amount::Cents(0)) }),
                    ..Default::default()
                }),
                request_id: String::new()
            },
            &h.who.po
        ))
    );
    refuse!(
        "a business case of nothing",
        h.spaces.declare_business_case(authed(
            pb::DeclareBusinessCaseRequest {
                business_request: submitted.name.clone(),
                business_case: Some(pb::BusinessCase::default()),
                request_id: String::new()
            },
            &h.who.po
        ))
    );
    refuse!(
        "a budget the account does not have",
        h.spaces.change_workload_budget(authed(
            pb::ChangeWorkloadBudgetRequest {
                business_request: submitted.name.clone(),
                budget_id: Uuid::now_v7().to_string(),
                effective_from: "2026-12-01".into(),
                rationale: "move".into(),
                request_id: String::new()
            },
            &h.who.fl
        ))
    );
    // The organisation.
    refuse!(
        "a portfolio without a name",
        org.add_portfolio(authed(
            pb::AddPortfolioRequest {
                portfolio_id: String::new(),
                name: String::new(),
                owner: "x".into(),
                request_id: String::new()
            },
            &h.who.fl
        ))
    );
    refuse!(
        "a budget on an unregistered account",
        org.map_budget(authed(
            pb::MapBudgetRequest {
                budget_id: String::new(),
                account_id: "999999999999".into(),
                name: "AI".into(),
                cost_centre: "CC".into(),
                request_id: String::new()
            },
            &h.who.fl
        ))
    );
    refuse!(
        "a pattern matching every role",
        org.set_role_patterns(authed(
            pb::SetRolePatternsRequest {
                broad: vec!["*".into()],
                dedicated: vec![],
                rationale: "all".into(),
                request_id: String::new()
            },
            &h.who.fl
        ))
    );

    assert_eq!(refused.len(), 23);
    for (what, status) in &refused {
        assert!(
            matches!(
                status.code(),
                Code::InvalidArgument | Code::FailedPrecondition | Code::PermissionDenied | Code::NotFound
            ),
            "{what}: {status:?}"
        );
    }
    assert_eq!(head(&h).await, before, "no refused command left an event");
    let stats = h.server.store.stats().await.unwrap();
    let listed = stats.events_by_type.iter().find(|(t, _)| t == "ModelListedForReview").map_or(0, |(_, n)| *n);
    assert_eq!(listed, 1, "only the model approved in the set-up was listed");
    h.server.shutdown().await.unwrap();
}
