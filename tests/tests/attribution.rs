//! Attribution end to end: CUR ingested through the real ingest path, governance in the
//! real log, questions over real gRPC — and the same question as of an earlier instant
//! gives the earlier answer, through a claim made mid-month and a restated period.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use finops_domain::spaces::{ClaimCommand, ClaimableResource, ClaimedResource};
use finops_domain::vocabulary::AccountId;
use finops_e2e::{RunningServer, authed, fresh_postgres_url, fresh_sqlite_url};
use finops_governance::{CommandContext, CommandHandler, streams};
use finops_ingest::{Format, Ingestor};
use finops_proto::v1 as pb;
use finops_proto::v1::attribution_service_client::AttributionServiceClient;
use finops_proto::v1::organisation_service_client::OrganisationServiceClient;
use finops_proto::v1::spaces_service_client::SpacesServiceClient;
use finops_server::auth::Role;
use tonic::Code;
use tonic_types::StatusExt;

const ACCOUNT: &str = "111122223333";
const HEADER: &str = "bill_billing_entity,line_item_usage_account_id,line_item_line_item_type,line_item_usage_start_date,line_item_product_code,line_item_usage_type,line_item_operation,line_item_resource_id,line_item_usage_amount,line_item_unblended_cost,product_product_name,line_item_iam_principal";

/// October: the Claims Triage role spends on the 3rd and the 20th; an admin on the 5th.
fn october(role: &str, first_cost: &str) -> String {
    let haiku = "arn:aws:bedrock:us-west-2::foundation-model/anthropic.claude-3-haiku-20240307-v1:0";
    let line = |day: &str, cost: &str, principal: &str| {
        format!(
            "AWS,{ACCOUNT},Usage,2026-10-{day}T10:00:00Z,AmazonBedrock,USW2-Claude3Haiku-input-tokens,InvokeModelInference,{haiku},1000,{cost},Amazon Bedrock,arn:aws:sts::{ACCOUNT}:assumed-role/{principal}\n"
        )
    };
    format!(
        "{HEADER}\n{}{}{}AWS,{ACCOUNT},Usage,2026-10-07T00:00:00Z,AmazonEC2,USW2-BoxUsage:m5.large,RunInstances,,24,2.30,Amazon EC2,\n",
        line("03", first_cost, &format!("{role}/ecs-1")),
        line("20", "2.00", &format!("{role}/ecs-2")),
        line("05", "0.25", "AWSReservedSSO_AdministratorAccess_5f1e2d3c4b5a6978/admin@acme.example"),
    )
}

fn operator(key: &str) -> CommandContext {
    CommandContext::operator("ops-kim", uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, key.as_bytes()))
}

/// (workload, gap, dollars) rows of an answer.
fn rows(a: &pb::AttributeResponse) -> Vec<(String, String, i64)> {
    a.rows.iter().map(|r| (r.keys[0].clone(), r.keys[1].clone(), r.cost_cents)).collect()
}

fn owned(rows: &[(&str, &str, i64)]) -> Vec<(String, String, i64)> {
    rows.iter().map(|(w, g, c)| ((*w).to_owned(), (*g).to_owned(), *c)).collect()
}

async fn a_past_instant_gives_the_past_answer(url: &str) {
    let server = RunningServer::start(url).await;
    let store = server.store.clone();
    finops_server::demo::seed(store.clone(), "arn:aws:sso:::instance/ssoins-demo").await.unwrap();
    let state = finops_governance::state::state_as_of(store.as_ref(), None).await.unwrap();
    let triage = state.workloads().into_iter().find(|w| w.name == "Claims Triage").expect("demo workload");

    let objects: Arc<dyn object_store::ObjectStore> =
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&server.objects).unwrap());
    let ingestor = Ingestor::new(store.clone(), objects);
    let dir = std::env::temp_dir().join(format!("finops-attr-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let ingest = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let (ingestor, key) = (&ingestor, name.to_owned());
        async move { ingestor.ingest_file(&path, Format::Cur, &operator(&key)).await.unwrap() }
    };

    let channel = tonic::transport::Endpoint::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
    let mut client = AttributionServiceClient::new(channel);
    let finance = server.token("fin-eva", Role::Finance);
    let ask = |as_of: Option<DateTime<Utc>>, token: &str| {
        authed(
            pb::AttributeRequest {
                period: "2026-10".into(),
                group_by: vec!["workload".into(), "gap".into()],
                as_of: as_of.map(|t| t.to_rfc3339()).unwrap_or_default(),
            },
            token,
        )
    };

    // Before any CUR: a precise refusal.
    let none = client.attribute(ask(None, &finance)).await.unwrap_err();
    assert_eq!(none.code(), Code::FailedPrecondition, "{}", none.message());
    assert!(none.message().contains("no CUR batch for 2026-10"), "{}", none.message());

    // 1. The first delivery: the role is not claimed yet.
    let first = ingest("2026-10-a.csv", october(&triage.role_name, "1.00")).await;
    assert!(first.superseded.is_none());
    let t1 = Utc::now();
    let before_claim = client.attribute(ask(None, &finance)).await.unwrap().into_inner();
    assert_eq!(rows(&before_claim), owned(&[("", "unattributed_spend", 25), ("", "unclaimed_ai_allocation", 300)]));
    assert_eq!(before_claim.total_cents, 325, "the EC2 line is not AI spend");

    // 2. Mid-month, the Product Owner claims the role, effective from the 1st.
    let claims = CommandHandler::<ClaimableResource>::new(store.clone());
    let resource =
        ClaimedResource::IamRole { account: AccountId::parse(ACCOUNT).unwrap(), role_name: triage.role_name.clone() };
    let claim = ClaimCommand::Claim {
        resource: resource.clone(),
        workload_id: triage.workload_id,
        effective_from: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
        by: "po-juan".into(),
        at: Utc::now(),
    };
    claims.execute(&streams::claim(&resource.key()), &claim, &operator("claim")).await.unwrap();
    let t2 = Utc::now();
    let claimed = client.attribute(ask(None, &finance)).await.unwrap().into_inner();
    assert_eq!(rows(&claimed), owned(&[("", "unattributed_spend", 25), ("Claims Triage", "", 300)]));

    // 3. AWS restates October: the 3rd now costs 1.40.
    let restated = ingest("2026-10-b.csv", october(&triage.role_name, "1.40")).await;
    assert_eq!(restated.superseded.as_deref(), Some(first.batch.hash.as_str()));
    let now = client.attribute(ask(None, &finance)).await.unwrap().into_inner();
    assert_eq!(rows(&now), owned(&[("", "unattributed_spend", 25), ("Claims Triage", "", 340)]));
    assert_eq!(now.batch_hash, restated.batch.hash);

    // The past, asked again, answers as it did then — to the cent, every time.
    for _ in 0..2 {
        let at_t1 = client.attribute(ask(Some(t1), &finance)).await.unwrap().into_inner();
        assert_eq!(rows(&at_t1), rows(&before_claim));
        assert_eq!(at_t1.batch_hash, first.batch.hash);
        let at_t2 = client.attribute(ask(Some(t2), &finance)).await.unwrap().into_inner();
        assert_eq!(rows(&at_t2), rows(&claimed));
        assert_eq!(at_t2.as_of, t2.to_rfc3339());
    }

    // The chargeback statement: claimed 100 % to CX AI; the admin's 0.25 split over the
    // account's two budgets; CX Platform (no AI workload) absorbs its half.
    let statement = |as_of: Option<DateTime<Utc>>| {
        authed(
            pb::ChargebackRequest {
                period: "2026-10".into(),
                as_of: as_of.map(|t| t.to_rfc3339()).unwrap_or_default(),
            },
            &finance,
        )
    };
    let s = client.chargeback(statement(None)).await.unwrap().into_inner();
    let lines: Vec<_> =
        s.charges.iter().map(|c| (c.budget.as_str(), c.ai_budget, c.claimed_cents, c.shared_cents)).collect();
    assert_eq!(lines, vec![("CX AI", true, 340, 13), ("CX Platform", false, 0, 12)]);
    assert_eq!((s.total_cents, s.absorbed_by_non_ai_cents), (365, 12));
    let s1 = client.chargeback(statement(Some(t1))).await.unwrap().into_inner();
    assert_eq!(s1.charges.iter().map(|c| c.claimed_cents).sum::<i64>(), 0, "nothing was claimed at t1");
    assert_eq!(s1.total_cents, 325);

    // Regression (issue 10.3): the budget is the FinOps Lead's decision, not "the first by
    // name". Claims Triage moves to CX Platform from the 15th: the 20th's 2.00 charges it.
    let org = OrganisationServiceClient::new(
        tonic::transport::Endpoint::from_shared(server.endpoint()).unwrap().connect().await.unwrap(),
    )
    .get_organisation(authed(pb::GetOrganisationRequest { as_of: String::new() }, &finance))
    .await
    .unwrap()
    .into_inner();
    let platform_budget = org.budgets.iter().find(|b| b.name == "CX Platform").unwrap().budget_id.clone();
    let mut spaces = SpacesServiceClient::new(
        tonic::transport::Endpoint::from_shared(server.endpoint()).unwrap().connect().await.unwrap(),
    );
    let change = |budget_id: &str, token: &str| {
        authed(
            pb::ChangeWorkloadBudgetRequest {
                business_request: format!(
                    "businessRequests/{}",
                    state
                        .requests
                        .iter()
                        .find(|(_, r)| r.approval.as_ref().is_some_and(|a| a.workload_id == triage.workload_id))
                        .unwrap()
                        .0
                ),
                budget_id: budget_id.into(),
                effective_from: "2026-10-15".into(),
                rationale: "The platform team took the triage bot over".into(),
                request_id: String::new(),
            },
            token,
        )
    };
    let juan_token = server.token("po-juan", Role::ProductOwner);
    assert_eq!(
        spaces.change_workload_budget(change(&platform_budget, &juan_token)).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let finance_ai = org.budgets.iter().find(|b| b.name == "Finance AI").unwrap().budget_id.clone();
    let elsewhere = spaces
        .change_workload_budget(change(&finance_ai, &server.token("fl-ana", Role::FinopsLead)))
        .await
        .unwrap_err();
    assert_eq!(
        elsewhere.get_details_bad_request().unwrap().field_violations[0].field,
        "budget_id",
        "not the account's budget"
    );
    let t3 = Utc::now();
    let moved = spaces
        .change_workload_budget(change(&platform_budget, &server.token("fl-ana", Role::FinopsLead)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.budget_id, platform_budget);
    let s = client.chargeback(statement(None)).await.unwrap().into_inner();
    let lines: Vec<_> =
        s.charges.iter().map(|c| (c.budget.as_str(), c.ai_budget, c.claimed_cents, c.shared_cents)).collect();
    assert_eq!(lines, vec![("CX AI", true, 140, 13), ("CX Platform", true, 200, 12)]);
    assert_eq!((s.total_cents, s.absorbed_by_non_ai_cents), (365, 0));
    let before_move = client.chargeback(statement(Some(t3))).await.unwrap().into_inner();
    let lines: Vec<_> = before_move.charges.iter().map(|c| (c.budget.as_str(), c.claimed_cents)).collect();
    assert_eq!(lines, vec![("CX AI", 340), ("CX Platform", 0)], "as of before the decision, the earlier budget");

    // Regression (issue 10.4): role patterns decide where money goes, so they are the
    // FinOps Lead's decision, over gRPC, honoured as of their time.
    let mut org_client = OrganisationServiceClient::new(
        tonic::transport::Endpoint::from_shared(server.endpoint()).unwrap().connect().await.unwrap(),
    );
    let patterns = |token: &str, rationale: &str| {
        authed(
            pb::SetRolePatternsRequest {
                broad: vec!["*PowerUserAccess*".into()],
                dedicated: vec!["finops-ai-*".into()],
                rationale: rationale.into(),
                request_id: String::new(),
            },
            token,
        )
    };
    let fl = server.token("fl-ana", Role::FinopsLead);
    assert_eq!(org_client.set_role_patterns(patterns(&finance, "x")).await.unwrap_err().code(), Code::PermissionDenied);
    let no_reason = org_client.set_role_patterns(patterns(&fl, "")).await.unwrap_err();
    assert_eq!(no_reason.get_details_bad_request().unwrap().field_violations[0].field, "rationale");
    let t4 = Utc::now();
    let set = org_client
        .set_role_patterns(patterns(&fl, "Admins are named people, not a shared role"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((set.source.as_str(), set.set_by.as_str()), ("log", "fl-ana"));
    let after = client.attribute(ask(None, &finance)).await.unwrap().into_inner();
    assert_eq!(rows(&after), owned(&[("", "not_business_approved", 25), ("Claims Triage", "", 340)]));
    let before = client.attribute(ask(Some(t4), &finance)).await.unwrap().into_inner();
    assert_eq!(rows(&before), owned(&[("", "unattributed_spend", 25), ("Claims Triage", "", 340)]));
    let then = org_client
        .get_role_patterns(authed(pb::GetRolePatternsRequest { as_of: t4.to_rfc3339() }, &finance))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(then.source, "configuration", "before the decision, the configuration's defaults");

    // Who sees what: a Product Owner only their own workloads; a Cloud Engineer no spend.
    let juan = client.attribute(ask(None, &server.token("po-juan", Role::ProductOwner))).await.unwrap().into_inner();
    assert_eq!(rows(&juan), owned(&[("Claims Triage", "", 340)]));
    let maria = client.attribute(ask(None, &server.token("po-maria", Role::ProductOwner))).await.unwrap().into_inner();
    assert!(maria.rows.is_empty(), "{:?}", maria.rows);
    // A Portfolio Owner sees the workloads of their portfolio (Claims Triage is Customer
    // Experience's, pf-omar's), and nothing of another's.
    let omar = client.attribute(ask(None, &server.token("pf-omar", Role::PortfolioOwner))).await.unwrap().into_inner();
    assert_eq!(rows(&omar), owned(&[("Claims Triage", "", 340)]));
    let lena = client.attribute(ask(None, &server.token("pf-lena", Role::PortfolioOwner))).await.unwrap().into_inner();
    assert!(lena.rows.is_empty(), "{:?}", lena.rows);
    let ce = client.attribute(ask(None, &server.token("ce-li", Role::CloudEngineer))).await.unwrap_err();
    assert_eq!(ce.code(), Code::PermissionDenied);

    // Bad questions: every bad field named at once; a caller without a token learns nothing.
    let bad_question =
        pb::AttributeRequest { period: "2026-13".into(), group_by: vec!["colour".into()], as_of: "yesterday".into() };
    let bad = client.attribute(authed(bad_question.clone(), &finance)).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let fields: Vec<String> = bad
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default();
    assert_eq!(fields, vec!["period", "as_of", "group_by"], "{}", bad.message());
    let anonymous = client.attribute(tonic::Request::new(bad_question)).await.unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);

    // Exports: FOCUS with allocation columns, and Parquet that reads back.
    let export = |format: pb::ExportFormat| {
        authed(pb::ExportRequest { period: "2026-10".into(), as_of: String::new(), format: format as i32 }, &finance)
    };
    let focus = client.export(export(pb::ExportFormat::Focus)).await.unwrap().into_inner();
    let text = String::from_utf8(focus.content).unwrap();
    let header = text.lines().next().unwrap();
    for column in [
        "BilledCost",
        "ChargePeriodStart",
        "SubAccountId",
        "AllocatedMethodId",
        "x_Workload",
        "x_Principal",
        "x_GapKind",
    ] {
        assert!(header.split(',').any(|c| c == column), "{column} missing from {header}");
    }
    assert_eq!(focus.rows, 3);
    assert!(text.contains("Claims Triage") && text.contains("not_business_approved"));
    let parquet = client.export(export(pb::ExportFormat::Parquet)).await.unwrap().into_inner();
    assert_eq!(&parquet.content[..4], b"PAR1");
    assert_eq!(parquet.file_name, "attribution-2026-10.parquet");
    let unspecified = client.export(export(pb::ExportFormat::Unspecified)).await.unwrap_err();
    assert_eq!(unspecified.code(), Code::InvalidArgument);

    std::fs::remove_dir_all(dir).unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_past_instant_gives_the_past_answer_on_postgres() {
    let Some(url) = fresh_postgres_url().await else { return };
    a_past_instant_gives_the_past_answer(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_past_instant_gives_the_past_answer_on_sqlite() {
    a_past_instant_gives_the_past_answer(&fresh_sqlite_url()).await;
}
