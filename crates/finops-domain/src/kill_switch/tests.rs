use chrono::NaiveDate;

use super::*;
use crate::aggregate::spec::given;
use crate::request::{Approval, BusinessRequest, RequestDetails, RequestStatus, Review, UseCase};
use crate::role::{RoleName, RoleSuffix};
use crate::spaces::{ClaimEvent, ClaimableResource};
use crate::vocabulary::{ApprovalScope, Cents, InvokeAction, ModelId, MonthlyAmount, Platform, Region};

const WORKLOAD: Uuid = Uuid::from_u128(7);

fn at(h: u32) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("2026-11-20T{h:02}:00:00Z")).unwrap().with_timezone(&Utc)
}

fn who(by: &str, role: &str, rationale: &str, h: u32) -> Decider {
    Decider { by: by.into(), role: role.into(), rationale: rationale.into(), at: at(h) }
}

fn account() -> AccountId {
    AccountId::parse("123456789012").unwrap()
}

fn state(use_case: UseCase, workspace: Option<&str>) -> GovernanceState {
    let name = "Support Bot";
    let review = Review {
        platform: Platform::AmazonBedrock,
        model_id: ModelId::parse("anthropic.claude-sonnet-4-20250514-v1:0").unwrap(),
        account: account(),
        region: Region::parse("us-east-1").unwrap(),
        actions: [InvokeAction::InvokeModel].into(),
        role_suffix: RoleSuffix::parse("x7k2").unwrap(),
        workspace: workspace.map(str::to_owned),
        map_mpe_id: None,
        confirmed_estimate: MonthlyAmount::Dollars(Cents(100_000)),
        budget_id: None,
    };
    let request = BusinessRequest {
        status: RequestStatus::Approved,
        requested_by: "po-maria".into(),
        details: Some(RequestDetails {
            workload_name: name.into(),
            use_case,
            priority: false,
            start: None,
            end: None,
            monthly_growth_percent: None,
            business_case: None,
        }),
        approval: Some(Approval {
            role_name: RoleName::generate(name, &review.role_suffix),
            review,
            workload_id: WORKLOAD,
            scope: ApprovalScope::default(),
        }),
        ..BusinessRequest::default()
    };
    let mut state = GovernanceState::default();
    state.requests.insert(Uuid::from_u128(1), request.into());
    state
}

fn claim(state: &mut GovernanceState, resource: ClaimedResource, workload_id: Uuid) {
    let event = ClaimEvent::ResourceClaimed {
        resource: resource.clone(),
        workload_id,
        effective_from: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        by: "po-maria".into(),
        at: at(1),
    };
    let folded = ClaimableResource::default().evolve(&event);
    state.claims.insert(resource.key(), folded.into());
}

fn operations() -> UseCase {
    UseCase::Operations {
        workload_type: crate::request::WorkloadType::CustomerSupport,
        description: "Answers tickets".into(),
        availability: crate::request::Availability::Standard,
        monthly_budget: MonthlyAmount::Dollars(Cents(100_000)),
    }
}

#[test]
fn a_suspension_tags_and_denies_the_dedicated_role_and_every_role_the_workload_holds() {
    let mut state = state(operations(), Some("support-ws"));
    claim(&mut state, ClaimedResource::IamRole { account: account(), role_name: "legacy-bot".into() }, WORKLOAD);
    claim(&mut state, ClaimedResource::IamRole { account: account(), role_name: "someone-else".into() }, Uuid::nil());
    claim(&mut state, ClaimedResource::Workspace { name: "support-ws".into() }, WORKLOAD);
    let plan = suspension_plan(&state, WORKLOAD).unwrap();
    let rendered: Vec<String> = plan.calls.iter().map(|c| c.cli().render()).collect();
    assert_eq!(rendered.len(), 4, "{rendered:#?}");
    assert_eq!(
        rendered[0],
        "aws iam tag-role --role-name finops-support-bot-x7k2 --tags Key=finops-suspended,Value=true"
    );
    assert!(rendered[1].starts_with(
        "aws iam put-role-policy --role-name finops-support-bot-x7k2 --policy-name FinOpsKillSwitch --policy-document '{"
    ));
    assert!(rendered[2].contains("--role-name legacy-bot"), "a claimed role is suspended too");
    assert!(!rendered.iter().any(|r| r.contains("someone-else")), "another workload's role is left alone");
    assert_eq!(plan.not_covered.len(), 1);
    assert!(plan.not_covered[0].contains("support-ws"), "{:?}", plan.not_covered);
    let deny: serde_json::Value = serde_json::from_str(&deny_policy_document()).unwrap();
    assert_eq!(deny["Statement"][0]["Effect"], "Deny");
    assert_eq!(deny["Statement"][0]["Action"][0], "bedrock:InvokeModel");
}

#[test]
fn a_coding_workload_names_its_permission_set_as_not_reachable_by_iam() {
    let state = state(UseCase::Coding { developers: 10, active_percent: 50 }, None);
    let plan = suspension_plan(&state, WORKLOAD).unwrap();
    assert!(plan.calls.is_empty(), "AWSReservedSSO_ roles cannot be edited: {:?}", plan.calls);
    assert!(plan.not_covered[0].contains("finops-support-bot-x7k2"), "{:?}", plan.not_covered);
    let unknown = suspension_plan(&state, Uuid::from_u128(99)).unwrap_err();
    assert!(unknown.to_string().contains("not an approved workload"), "{unknown}");
}

fn plan() -> SuspensionPlan {
    suspension_plan(&state(operations(), None), WORKLOAD).unwrap()
}

fn suspend(enforcement: Enforcement, decider: Decider) -> ControlCommand {
    ControlCommand::Suspend { workload_id: WORKLOAD, plan: plan(), enforcement, decider }
}

fn outcomes(ok: &[bool]) -> Vec<CallOutcome> {
    ok.iter()
        .enumerate()
        .map(|(call, ok)| CallOutcome {
            call,
            ok: *ok,
            detail: if *ok { "ok".into() } else { "AccessDenied: not authorised".into() },
        })
        .collect()
}

fn fold(events: &[ControlEvent]) -> WorkloadControl {
    WorkloadControl::fold(events)
}

#[test]
fn suspend_is_pending_until_every_call_applied_and_a_failure_shows_its_error() {
    let suspended = given::<WorkloadControl>(&[])
        .when(suspend(Enforcement::Automatic, who("po-maria", "product_owner", "runaway loop", 1)))
        .unwrap();
    assert_eq!(fold(&suspended).status(), ControlStatus::SuspensionPending);

    let failed = given::<WorkloadControl>(&suspended)
        .when(ControlCommand::RecordAttempt { decision: 1, attempt: 1, outcomes: outcomes(&[true, false]), at: at(2) })
        .unwrap();
    let history: Vec<ControlEvent> = suspended.iter().chain(&failed).cloned().collect();
    let state = fold(&history);
    assert_eq!(state.status(), ControlStatus::SuspensionPending, "half-applied is still pending");
    let error = state.pending().unwrap().last_error().unwrap();
    assert!(error.contains("PutRolePolicy finops-support-bot-x7k2: AccessDenied"), "{error}");

    // A retried record of attempt 1 records nothing; attempt 2 succeeding completes it.
    assert!(
        state
            .decide(&ControlCommand::RecordAttempt {
                decision: 1,
                attempt: 1,
                outcomes: outcomes(&[true, true]),
                at: at(3)
            })
            .unwrap()
            .is_empty()
    );
    let applied = given::<WorkloadControl>(&history)
        .when(ControlCommand::RecordAttempt { decision: 1, attempt: 2, outcomes: outcomes(&[true, true]), at: at(3) })
        .unwrap();
    let history: Vec<ControlEvent> = history.into_iter().chain(applied).collect();
    assert_eq!(fold(&history).status(), ControlStatus::Suspended);
    assert!(fold(&history).pending().is_none());
}

#[test]
fn resume_undoes_exactly_the_suspensions_calls_in_reverse_order() {
    let suspended = given::<WorkloadControl>(&[])
        .when(suspend(Enforcement::Manual, who("fl-ana", "finops_lead", "budget blown", 1)))
        .unwrap();
    assert_eq!(fold(&suspended).status(), ControlStatus::Suspended, "manual enforcement: the commands are handed over");
    let resumed = given::<WorkloadControl>(&suspended)
        .when(ControlCommand::Resume {
            enforcement: Enforcement::Automatic,
            decider: who("fl-ana", "finops_lead", "fixed the loop", 2),
        })
        .unwrap();
    let ControlEvent::WorkloadResumed { calls, decision, .. } = &resumed[0] else { panic!("{resumed:?}") };
    assert_eq!(*decision, 2);
    let actions: Vec<&str> = calls.iter().map(AwsCall::action).collect();
    assert_eq!(actions, ["DeleteRolePolicy", "UntagRole"]);
    let history: Vec<ControlEvent> = suspended.into_iter().chain(resumed).collect();
    assert_eq!(fold(&history).status(), ControlStatus::ResumePending);
}

#[test]
fn illegal_steps_name_the_state_and_a_decision_needs_a_rationale() {
    let suspended = given::<WorkloadControl>(&[])
        .when(suspend(Enforcement::Manual, who("po-maria", "product_owner", "stop it", 1)))
        .unwrap();
    let again = given::<WorkloadControl>(&suspended)
        .when(suspend(Enforcement::Manual, who("fl-ana", "finops_lead", "stop it too", 2)))
        .unwrap_err();
    assert_eq!(again.to_string(), "cannot suspend a workload that is suspended");
    let never = given::<WorkloadControl>(&[])
        .when(ControlCommand::Resume {
            enforcement: Enforcement::Manual,
            decider: who("fl-ana", "finops_lead", "ok", 2),
        })
        .unwrap_err();
    assert_eq!(never.to_string(), "cannot resume a workload that is active");
    let silent = given::<WorkloadControl>(&[])
        .when(suspend(Enforcement::Manual, who("po-maria", "product_owner", "  ", 1)))
        .unwrap_err();
    assert!(silent.to_string().contains("rationale"), "{silent}");
    // An attempt at a decision since overtaken records nothing.
    let resumed = given::<WorkloadControl>(&suspended)
        .when(ControlCommand::Resume {
            enforcement: Enforcement::Manual,
            decider: who("fl-ana", "finops_lead", "ok", 2),
        })
        .unwrap();
    let history: Vec<ControlEvent> = suspended.into_iter().chain(resumed).collect();
    let late = given::<WorkloadControl>(&history)
        .when(ControlCommand::RecordAttempt { decision: 1, attempt: 1, outcomes: outcomes(&[true, true]), at: at(3) })
        .unwrap();
    assert!(late.is_empty());
    // Suspended again after a resume: decision 3.
    let third = given::<WorkloadControl>(&history)
        .when(suspend(Enforcement::Manual, who("po-maria", "product_owner", "again", 4)))
        .unwrap();
    assert!(matches!(third[0], ControlEvent::WorkloadSuspended { decision: 3, .. }));
}
