//! A governance log at scale, written through the domain's own decisions — Business
//! Requests submitted, approved or rejected, Cloud Engineer tasks created with their
//! commands and worked through, roles claimed, estimates stated — for the benchmarks that
//! read the log (projection rebuild, point-in-time state).

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use finops_domain::Aggregate;
use finops_domain::request::{
    Availability, BusinessRequest, CatalogStanding, RequestCommand, RequestDetails, Review, UseCase, WorkloadType,
};
use finops_domain::role::RoleSuffix;
use finops_domain::spaces::{ClaimCommand, ClaimableResource, ClaimedResource};
use finops_domain::tasks::{self, Task, TaskCommand, TaskContext};
use finops_domain::vocabulary::{
    AccountId, ApprovalScope, Cents, InvokeAction, ModelId, MonthlyAmount, Platform, Region,
};
use finops_eventlog::{EventStore, ExpectedVersion, NewEvent, StreamId};
use uuid::Uuid;

fn at(n: u64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(n as i64)
}

fn to_new<E: serde::Serialize>(event: &E, actor: &str, role: &str) -> NewEvent {
    let mut new = crate::recorded_by(event, actor, role);
    new.metadata.rationale = Some("generated for the rebuild benchmark".into());
    new
}

/// The streams and events of one Business Request's life.
fn request_life(i: u64) -> Vec<(StreamId, Vec<NewEvent>)> {
    request_life_and_request(i).0
}

/// [`request_life`], and the request as it stands at its end.
fn request_life_and_request(i: u64) -> (Vec<(StreamId, Vec<NewEvent>)>, BusinessRequest) {
    let id = Uuid::from_u128(0x0192_f0c4_0000_7000_8000_0000_0000_0000 | u128::from(i));
    let details = RequestDetails {
        workload_name: format!("Support assistant {i}"),
        use_case: UseCase::Operations {
            workload_type: WorkloadType::CustomerSupport,
            description: "Answers tier-1 tickets from the help centre and drafts replies for agents.".into(),
            availability: if i.is_multiple_of(3) { Availability::HighAvailability } else { Availability::Standard },
            monthly_budget: MonthlyAmount::Dollars(Cents(150_000 + i % 1_000 * 100)),
        },
        priority: i.is_multiple_of(7),
        start: None,
        end: None,
        monthly_growth_percent: Some(3.0),
        business_case: None,
    };
    let mut state = BusinessRequest::default();
    let mut request_events = Vec::new();
    let mut decide = |state: &mut BusinessRequest, command: RequestCommand, actor: &str, role: &str| {
        let events = state.decide(&command).unwrap();
        for e in &events {
            *state = std::mem::take(state).evolve(e);
            request_events.push(to_new(e, actor, role));
        }
    };
    decide(
        &mut state,
        RequestCommand::Submit {
            request_id: id,
            product_id: Uuid::from_u128(7),
            requested_by: format!("po-{}", i % 50),
            details,
            at: at(i * 10),
        },
        "po",
        "product_owner",
    );
    let mut streams = Vec::new();
    if i % 5 == 4 {
        decide(
            &mut state,
            RequestCommand::Reject { by: "fl-ana".into(), rationale: "Budget too vague".into(), at: at(i * 10 + 1) },
            "fl-ana",
            "finops_lead",
        );
    } else {
        let account = AccountId::parse("123456789012").unwrap();
        let region = Region::parse("us-east-1").unwrap();
        let actions = [InvokeAction::InvokeModel, InvokeAction::Converse].into();
        let scope = ApprovalScope { accounts: [account.clone()].into(), regions: [region.clone()].into(), actions };
        decide(
            &mut state,
            RequestCommand::Approve {
                review: Review {
                    platform: Platform::AmazonBedrock,
                    model_id: ModelId::parse("anthropic.claude-3-haiku-20240307-v1:0").unwrap(),
                    account,
                    region,
                    actions: scope.actions.clone(),
                    role_suffix: RoleSuffix::from_entropy(i as u32),
                    workspace: None,
                    map_mpe_id: None,
                    confirmed_estimate: MonthlyAmount::Dollars(Cents(140_000)),
                    budget_id: None,
                },
                workload_id: Uuid::new_v5(&id, b"workload"),
                catalog: CatalogStanding::Approved(scope),
                account_budgets: vec![],
                by: "fl-ana".into(),
                rationale: "Fits the support pilot".into(),
                at: at(i * 10 + 1),
            },
            "fl-ana",
            "finops_lead",
        );
        let context = TaskContext {
            identity_center_instance_arn: "arn:aws:sso:::instance/ssoins-0000".into(),
            portfolio: String::new(),
            product: String::new(),
        };
        for plan in tasks::plan_tasks(&state, "Fits the support pilot", &context) {
            let stream = StreamId::new(format!("task-{}", plan.task_id)).unwrap();
            let steps = plan.steps.len();
            let mut task = Task::default();
            let mut events = Vec::new();
            let mut commands = vec![TaskCommand::Create { plan, at: at(i * 10 + 2) }];
            if i.is_multiple_of(2) {
                for step in 1..steps {
                    commands.push(TaskCommand::CompleteStep {
                        step,
                        by: "ce-li".into(),
                        note: None,
                        dependency_implemented: true,
                        at: at(i * 10 + 3),
                    });
                }
                commands.push(TaskCommand::MarkImplemented { by: "ce-li".into(), note: None, at: at(i * 10 + 4) });
            }
            for command in commands {
                for e in task.decide(&command).unwrap() {
                    task = task.evolve(&e);
                    events.push(to_new(&e, "ce-li", "cloud_engineer"));
                }
            }
            streams.push((stream, events));
        }
    }
    streams.insert(0, (StreamId::new(format!("business-request-{id}")).unwrap(), request_events));
    (streams, state)
}

/// Appends whole request lives (about a dozen events each, 2 000 events at a time, the
/// streams of a page concurrently) until at least `target` events are written; how many were.
pub async fn generate(store: &Arc<dyn EventStore>, target: usize) -> usize {
    let mut written = 0;
    let mut i = 0u64;
    while written < target {
        let mut batch = Vec::new();
        while batch.iter().map(|(_, e): &(StreamId, Vec<NewEvent>)| e.len()).sum::<usize>() < 2_000 {
            batch.extend(request_life(i));
            i += 1;
        }
        written += batch.iter().map(|(_, e)| e.len()).sum::<usize>();
        let tasks: Vec<_> = batch
            .into_iter()
            .map(|(stream, events)| {
                let store = store.clone();
                tokio::spawn(async move { store.append(&stream, ExpectedVersion::NoStream, events).await.unwrap() })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    }
    store.seal_committed().await.unwrap();
    written
}

/// A Business Request submitted for `workload_name` (a coding assistant): one event more on
/// a log, one that changes nothing attribution reads until it is approved.
pub fn submission(request_id: Uuid, workload_name: &str) -> RequestCommand {
    RequestCommand::Submit {
        request_id,
        product_id: Uuid::from_u128(7),
        requested_by: "po-maria".into(),
        details: RequestDetails {
            workload_name: workload_name.into(),
            use_case: UseCase::Coding { developers: 12, active_percent: 40 },
            priority: false,
            start: None,
            end: None,
            monthly_growth_percent: None,
            business_case: None,
        },
        at: Utc::now(),
    }
}

/// One more Business Request's life whose request is approved (with its Cloud Engineer
/// tasks), and its generated role reserved for the workload and claimed by it from
/// 1 November 2026: appended to a log, it changes what attribution reads by one workload
/// and one claim. `n` numbers it apart from the generated ones and from other such lives.
pub fn approval(n: u64) -> Vec<(StreamId, Vec<NewEvent>)> {
    // Lives numbered 4 mod 5 are rejected.
    let (mut lives, request) = request_life_and_request(100_000_000 + n * 5);
    let approval = request.approval.expect("lives not numbered 4 mod 5 are approved");
    let resource = ClaimedResource::role("123456789012", approval.role_name.as_str()).unwrap();
    let workload_id = approval.workload_id;
    let mut claim = ClaimableResource::default();
    let mut events = Vec::new();
    let commands = [
        ClaimCommand::Reserve { resource: resource.clone(), workload_id, at: at(0) },
        ClaimCommand::Claim {
            resource: resource.clone(),
            workload_id,
            effective_from: chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            by: request.requested_by.clone(),
            at: at(0),
        },
    ];
    for command in commands {
        for e in claim.decide(&command).unwrap() {
            claim = claim.evolve(&e);
            events.push(to_new(&e, &request.requested_by, "product_owner"));
        }
    }
    lives.push((StreamId::new(format!("claim-{}", resource.key())).unwrap(), events));
    lives
}

/// Appends `lives` (from [`approval`]), each stream new.
pub async fn append_lives(store: &Arc<dyn EventStore>, lives: Vec<(StreamId, Vec<NewEvent>)>) {
    for (stream, events) in lives {
        store.append(&stream, ExpectedVersion::NoStream, events).await.unwrap();
    }
}

/// A log of `events` generated events, then three approvals (each with its tasks and its
/// role's claim) and the first claim released; returns the instants after which attribution
/// reads something new: five spread inside the generated log, one after each approval and
/// one after the release — what the point-in-time tests compare states at.
pub async fn with_changes(store: &Arc<dyn EventStore>, events: usize) -> Vec<DateTime<Utc>> {
    use finops_eventlog::{AllRead, Position};
    let written = generate(store, events).await;
    let all = store.read_all(AllRead::forwards_after(Position::START, written)).await.expect("the log reads");
    let mut instants: Vec<_> = (1..=5).map(|k| all[k * written / 5 - 1].metadata.recorded_at).collect();
    let head =
        async || store.read_all(AllRead::backwards_from(None, 1)).await.expect("the log reads")[0].metadata.recorded_at;
    for n in 0..3 {
        append_lives(store, approval(n)).await;
        instants.push(head().await);
    }
    let now = finops_governance::timeline::GovernanceTimeline::new(store.clone())
        .state_as_of(None)
        .await
        .expect("the log folds");
    let first = now.claims.keys().next().expect("each approval's role is claimed").clone();
    let release = ClaimCommand::Release {
        effective_until: chrono::NaiveDate::from_ymd_opt(2026, 11, 30).expect("a date"),
        by: "po-0".into(),
        rationale: "moved to the shared gateway".into(),
        at: Utc::now(),
    };
    finops_governance::CommandHandler::<ClaimableResource>::new(store.clone())
        .execute(&finops_governance::streams::claim(&first), &release, &crate::operator_context("po-0"))
        .await
        .expect("the release is decided");
    instants.push(head().await);
    instants
}
