//! [`GovernanceState::attributes_alike`]: "alike" must mean attribution reads the same
//! view, whatever happened in between; "not alike" is allowed to be conservative.

use proptest::prelude::*;

use super::*;
use crate::request::{Approval, RequestDetails, Review, UseCase};
use crate::role::{RoleName, RoleSuffix};
use crate::vocabulary::{Cents, InvokeAction, ModelId, MonthlyAmount, Platform, Region};

fn request(n: u128, status: RequestStatus) -> Arc<BusinessRequest> {
    let name = format!("Workload {n}");
    let review = Review {
        platform: Platform::AmazonBedrock,
        model_id: ModelId::parse("anthropic.claude-sonnet-4-20250514-v1:0").unwrap(),
        account: AccountId::parse("123456789012").unwrap(),
        region: Region::parse("us-east-1").unwrap(),
        actions: [InvokeAction::InvokeModel].into(),
        role_suffix: RoleSuffix::parse("x7k2").unwrap(),
        workspace: None,
        map_mpe_id: None,
        confirmed_estimate: MonthlyAmount::Dollars(Cents(100_000)),
        budget_id: None,
    };
    Arc::new(BusinessRequest {
        status,
        request_id: Uuid::from_u128(n),
        requested_by: "po-maria".into(),
        details: Some(RequestDetails {
            workload_name: name.clone(),
            use_case: UseCase::Coding { developers: 10, active_percent: 50 },
            priority: false,
            start: None,
            end: None,
            monthly_growth_percent: None,
            business_case: None,
        }),
        approval: (status == RequestStatus::Approved).then(|| Approval {
            role_name: RoleName::generate(&name, &review.role_suffix),
            review,
            workload_id: Uuid::from_u128(1_000 + n),
            scope: ApprovalScope::default(),
        }),
        ..BusinessRequest::default()
    })
}

/// A log's state with `n` requests, every third approved.
fn organisation_with(n: u128) -> GovernanceState {
    let mut state = GovernanceState::default();
    for i in 0..n {
        let status = if i % 3 == 0 { RequestStatus::Approved } else { RequestStatus::Submitted };
        state.requests.insert(Uuid::from_u128(i), request(i, status));
    }
    state
}

fn claim_of(workload: u128) -> Arc<ClaimableResource> {
    Arc::new(ClaimableResource {
        resource: Some(ClaimedResource::Workspace { name: format!("space-{workload}") }),
        periods: vec![crate::spaces::ClaimPeriod {
            workload_id: Uuid::from_u128(1_000 + workload),
            from: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            until: None,
        }],
        reserved_for: None,
    })
}

/// What attribution reads of a state.
fn view(state: &GovernanceState) -> impl PartialEq + std::fmt::Debug {
    (
        state.organisation.clone(),
        state.workloads(),
        state.claim_spans(),
        state.role_patterns.patterns.clone(),
        state.gateway_rule_spans(),
    )
}

#[test]
fn requests_submitted_rejected_or_withdrawn_leave_the_view_alike() {
    let before = organisation_with(300);
    let mut after = before.clone();
    after.requests.insert(Uuid::from_u128(900), request(900, RequestStatus::Submitted));
    after.requests.insert(Uuid::from_u128(1), request(1, RequestStatus::Rejected));
    after.requests.insert(Uuid::from_u128(2), request(2, RequestStatus::Withdrawn));
    assert!(after.attributes_alike(&before) && before.attributes_alike(&after));
    assert_eq!(view(&after), view(&before));
}

#[test]
fn an_approval_a_recall_or_a_claim_makes_the_view_differ() {
    let before = organisation_with(300);
    let mut approved = before.clone();
    approved.requests.insert(Uuid::from_u128(1), request(1, RequestStatus::Approved));
    assert!(!approved.attributes_alike(&before), "request 1 approved");
    let mut withdrawn = before.clone();
    withdrawn.requests.insert(Uuid::from_u128(3), request(3, RequestStatus::Withdrawn));
    assert!(!withdrawn.attributes_alike(&before), "approved request 3 no longer approved");
    let mut claimed = before.clone();
    claimed.claims.insert("space".into(), claim_of(3));
    assert!(!claimed.attributes_alike(&before), "a claim");
    let mut organised = before.clone();
    organised.organisation.accounts.insert(AccountId::parse("210987654321").unwrap(), "Data".into());
    assert!(!organised.attributes_alike(&before), "an account named");
}

#[test]
fn states_that_share_nothing_are_compared_by_value() {
    // A state restored from a snapshot shares no node with the one kept before it.
    let before = organisation_with(300);
    let restored: GovernanceState = serde_json::from_str(&serde_json::to_string(&before).unwrap()).unwrap();
    assert!(!restored.requests.ptr_eq(&before.requests));
    assert!(restored.attributes_alike(&before));
}

#[test]
fn more_changed_requests_than_the_limit_are_not_walked_and_answer_not_alike() {
    let before = organisation_with(3);
    let mut after = before.clone();
    for i in 0..VIEW_DIFF_LIMIT as u128 {
        after.requests.insert(Uuid::from_u128(10_000 + i), request(10_000 + i, RequestStatus::Submitted));
    }
    assert!(after.attributes_alike(&before), "exactly the limit: walked");
    after.requests.insert(Uuid::from_u128(1), request(1, RequestStatus::Rejected));
    assert!(!after.attributes_alike(&before), "one more: not walked, so not alike");
}

/// One change between two states of a log.
#[derive(Debug, Clone)]
enum Change {
    Request(u8, RequestStatus),
    Claim(u8),
    Unclaim(u8),
}

fn change() -> impl Strategy<Value = Change> {
    let status = prop_oneof![
        Just(RequestStatus::Submitted),
        Just(RequestStatus::Approved),
        Just(RequestStatus::Rejected),
        Just(RequestStatus::Withdrawn),
    ];
    prop_oneof![
        6 => (any::<u8>(), status).prop_map(|(n, s)| Change::Request(n, s)),
        1 => any::<u8>().prop_map(Change::Claim),
        1 => any::<u8>().prop_map(Change::Unclaim),
    ]
}

proptest! {
    /// Alike always means the same view; and changes that touch only requests never
    /// approved on either side are always found alike.
    #[test]
    fn alike_states_have_the_same_view(changes in proptest::collection::vec(change(), 0..40)) {
        let before = organisation_with(200);
        let mut after = before.clone();
        for c in &changes {
            match c {
                Change::Request(n, status) => {
                    after.requests.insert(Uuid::from_u128(u128::from(*n)), request(u128::from(*n), *status));
                }
                Change::Claim(n) => {
                    after.claims.insert(format!("space-{n}"), claim_of(u128::from(*n)));
                }
                Change::Unclaim(n) => {
                    after.claims.remove(&format!("space-{n}"));
                }
            }
        }
        if after.attributes_alike(&before) {
            prop_assert_eq!(view(&after), view(&before));
        }
        let quiet = changes.iter().all(|c| match c {
            Change::Request(n, status) => {
                *status != RequestStatus::Approved && before.requests.get(&Uuid::from_u128(u128::from(*n))).is_none_or(|r| r.status != RequestStatus::Approved)
            }
            _ => false,
        });
        if quiet {
            prop_assert!(after.attributes_alike(&before));
        }
    }
}
