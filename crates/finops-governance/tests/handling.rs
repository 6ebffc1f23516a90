//! Command handling against real stores: decisions land in the log, retries write
//! nothing, and of two concurrent approvals exactly one wins.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use finops_domain::request::{
    Availability, BusinessRequest, CatalogStanding, RequestCommand, RequestDetails, RequestStatus, Review, UseCase,
    WorkloadType,
};
use finops_domain::role::RoleSuffix;
use finops_domain::vocabulary::{
    AccountId, ApprovalScope, Cents, InvokeAction, ModelId, MonthlyAmount, Platform, Region,
};
use finops_eventlog::{EventStore, StreamRead, Upcasters};
use finops_governance::{CommandContext, CommandHandler, GovernanceError, streams};
use uuid::Uuid;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-20T10:00:00Z").unwrap().with_timezone(&Utc)
}

fn context(actor: &str, role: &str, request_id: Uuid) -> CommandContext {
    CommandContext {
        actor_id: actor.into(),
        actor_role: role.into(),
        request_id,
        rationale: None,
        correlation_id: None,
        causation_id: None,
        fingerprint: None,
    }
}

fn submit(request_id: Uuid) -> RequestCommand {
    RequestCommand::Submit {
        request_id,
        product_id: Uuid::from_u128(5),
        requested_by: "po-maria".into(),
        details: RequestDetails {
            workload_name: "Support Bot".into(),
            use_case: UseCase::Operations {
                workload_type: WorkloadType::CustomerSupport,
                description: "Answers tickets".into(),
                availability: Availability::Standard,
                monthly_budget: MonthlyAmount::Dollars(Cents(100_000)),
            },
            priority: false,
            start: None,
            end: None,
            monthly_growth_percent: None,
            business_case: None,
        },
        at: now(),
    }
}

fn approve(suffix: &str) -> RequestCommand {
    let account = AccountId::parse("123456789012").unwrap();
    let region = Region::parse("us-east-1").unwrap();
    RequestCommand::Approve {
        review: Review {
            platform: Platform::AmazonBedrock,
            model_id: ModelId::parse("anthropic.claude-3-haiku-20240307-v1:0").unwrap(),
            account: account.clone(),
            region: region.clone(),
            actions: [InvokeAction::InvokeModel].into(),
            role_suffix: RoleSuffix::parse(suffix).unwrap(),
            workspace: None,
            map_mpe_id: None,
            confirmed_estimate: MonthlyAmount::Dollars(Cents(90_000)),
            budget_id: None,
        },
        workload_id: Uuid::now_v7(),
        catalog: CatalogStanding::Approved(ApprovalScope {
            accounts: [account].into(),
            regions: [region].into(),
            actions: InvokeAction::ALL.into(),
        }),
        account_budgets: vec![],
        by: "fl-ana".into(),
        rationale: "fits the pilot".into(),
        at: now(),
    }
}

async fn stores() -> Vec<Arc<dyn EventStore>> {
    let mut stores = vec![finops_eventlog::open(&finops_testkit::fresh_sqlite_url(), Upcasters::new()).await.unwrap()];
    if let Some(url) = finops_testkit::fresh_postgres_url().await {
        stores.push(finops_eventlog::open(&url, Upcasters::new()).await.unwrap());
    }
    stores
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_command_returns_the_first_result_and_writes_nothing() {
    for store in stores().await {
        let handler = CommandHandler::<BusinessRequest>::new(store.clone());
        let id = Uuid::now_v7();
        let stream = streams::business_request(id);
        let key = Uuid::now_v7();
        let first = handler.execute(&stream, &submit(id), &context("po-maria", "product_owner", key)).await.unwrap();
        let again = handler.execute(&stream, &submit(id), &context("po-maria", "product_owner", key)).await.unwrap();
        assert_eq!((first.version, again.version), (1, 1));
        assert_eq!(again.state.status, RequestStatus::Submitted);
        let stored = store.read_stream(&stream, StreamRead::all()).await.unwrap();
        assert_eq!(stored.len(), 1, "{}: the retry wrote nothing", store.backend());
        assert_eq!(stored[0].event_type, "BusinessRequestSubmitted");
        assert_eq!(stored[0].metadata.idempotency_key.as_deref(), Some(key.to_string().as_str()));
        assert_eq!(stored[0].metadata.actor_role, "product_owner");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_two_concurrent_approvals_exactly_one_wins() {
    for store in stores().await {
        let handler = CommandHandler::<BusinessRequest>::new(store.clone());
        let id = Uuid::now_v7();
        let stream = streams::business_request(id);
        handler.execute(&stream, &submit(id), &context("po-maria", "product_owner", Uuid::now_v7())).await.unwrap();

        // Two FinOps Leads approve at once, each on its own task.
        let race = |suffix: &'static str, lead: &'static str| {
            let handler = handler.clone();
            let stream = stream.clone();
            tokio::spawn(async move {
                handler.execute(&stream, &approve(suffix), &context(lead, "finops_lead", Uuid::now_v7())).await
            })
        };
        let (a, b) = (race("aaaa", "fl-ana"), race("bbbb", "fl-bo"));
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        let outcomes = [a, b];
        let wins = outcomes.iter().filter(|o| o.is_ok()).count();
        assert_eq!(wins, 1, "{}: exactly one approval wins: {outcomes:?}", store.backend());
        let loser = outcomes.iter().find_map(|o| o.as_ref().err()).unwrap();
        assert!(
            matches!(
                loser,
                GovernanceError::Conflict { .. }
                    | GovernanceError::Refused(finops_domain::DomainError::IllegalTransition { .. })
            ),
            "the loser is told it lost: {loser}"
        );
        let stored = store.read_stream(&stream, StreamRead::all()).await.unwrap();
        assert_eq!(stored.len(), 2, "one submission, one approval");
        let loaded = handler.load(&stream).await.unwrap();
        assert_eq!(loaded.state.status, RequestStatus::Approved);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_command_leaves_no_event() {
    for store in stores().await {
        let handler = CommandHandler::<BusinessRequest>::new(store.clone());
        let id = Uuid::now_v7();
        let stream = streams::business_request(id);
        let err = handler
            .execute(&stream, &approve("cccc"), &context("fl-ana", "finops_lead", Uuid::now_v7()))
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "cannot approve a business request that is not submitted");
        assert!(store.read_stream(&stream, StreamRead::all()).await.unwrap().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_retry_after_the_request_moved_on_is_still_answered_not_refused() {
    for store in stores().await {
        let handler = CommandHandler::<BusinessRequest>::new(store.clone());
        let id = Uuid::now_v7();
        let stream = streams::business_request(id);
        let key = Uuid::now_v7();
        handler.execute(&stream, &submit(id), &context("po-maria", "product_owner", key)).await.unwrap();
        handler.execute(&stream, &approve("dddd"), &context("fl-ana", "finops_lead", Uuid::now_v7())).await.unwrap();
        // The PO's client retries its submission after the approval happened.
        let late = handler.execute(&stream, &submit(id), &context("po-maria", "product_owner", key)).await.unwrap();
        assert_eq!(late.state.status, RequestStatus::Approved);
        assert_eq!(late.version, 2);
    }
}

/// Regression (issue 10.11): money was stored as `{"dollars": 250000}` for $2,500. A log
/// written by that version is read through the upcasters as the same money under honest
/// names; new decisions are stored at schema version 2; the old events stay as they were
/// written (the chain still verifies).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_written_with_money_named_dollars_reads_as_cents_and_is_never_rewritten() {
    let mut urls = vec![finops_testkit::fresh_sqlite_url()];
    urls.extend(finops_testkit::fresh_postgres_url().await);
    for url in urls {
        let store = finops_eventlog::open(&url, finops_governance::upcasters()).await.unwrap();
        let id = Uuid::now_v7();
        let stream = streams::business_request(id);
        // Exactly what the earlier build wrote (schema version 1).
        let v1 = serde_json::json!({
            "type": "BusinessRequestSubmitted",
            "request_id": id,
            "product_id": Uuid::from_u128(5),
            "requested_by": "po-maria",
            "details": {
                "workload_name": "Support Bot",
                "use_case": {"operations": {"workload_type": "customer_support", "description": "Answers tickets",
                    "availability": "standard", "monthly_budget": {"dollars": 250000}}},
                "priority": false, "start": null, "end": null, "monthly_growth_percent": null,
                "business_case": {"annual_cost_saving": 12000000, "annual_revenue_driving": null}
            },
            "at": "2026-11-20T10:00:00Z"
        });
        store
            .append(
                &stream,
                finops_eventlog::ExpectedVersion::NoStream,
                vec![finops_eventlog::NewEvent::new("BusinessRequestSubmitted", v1)],
            )
            .await
            .unwrap();
        let handler = CommandHandler::<BusinessRequest>::new(store.clone());
        let loaded = handler.load(&stream).await.unwrap();
        let details = loaded.state.details.as_ref().unwrap();
        let UseCase::Operations { monthly_budget, .. } = &details.use_case else { panic!() };
        assert_eq!(*monthly_budget, MonthlyAmount::Dollars(Cents(250_000)), "$2,500.00, not $250,000");
        assert_eq!(details.business_case.unwrap().annual_cost_saving, Some(Cents(12_000_000)));

        handler.execute(&stream, &approve("eeee"), &context("fl-ana", "finops_lead", Uuid::now_v7())).await.unwrap();
        let stored = store.read_stream(&stream, StreamRead::all()).await.unwrap();
        assert_eq!(
            (stored[0].stored_schema_version, stored[0].schema_version),
            (1, 2),
            "{}: the old event is stored at 1 and read at 2",
            store.backend()
        );
        assert_eq!(stored[0].payload["details"]["use_case"]["operations"]["monthly_budget"]["cents"], 250_000);
        assert_eq!(stored[1].stored_schema_version, 2, "new decisions are written at version 2");
        assert_eq!(stored[1].payload["review"]["confirmed_estimate"], serde_json::json!({"cents": 90_000}));
        store.seal_committed().await.unwrap();
        let report = finops_eventlog::verify_chain(store.as_ref(), None).await.unwrap();
        assert!(report.first_break.is_none(), "nothing was rewritten: {:?}", report.first_break);
    }
}
