//! What attribution reads of two states of one log. [`GovernanceState::attributes_alike`]:
//! "alike" must mean attribution reads the same view, whatever happened in between; "not
//! alike" is allowed to be conservative. [`GovernanceState::view_changes_since`]: the
//! earlier state's workloads and claim spans amended by the changes must be the later
//! state's, item for item and in order.

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
        product_id: Uuid::from_u128(5_000 + n % 4),
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
    claimed.claims.insert(claim_key(3), claim_of(3));
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
                    after.claims.insert(claim_key(u128::from(*n)), claim_of(u128::from(*n)));
                }
                Change::Unclaim(n) => {
                    after.claims.remove(&claim_key(u128::from(*n)));
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

/// `changes` applied to `earlier`'s workloads and claim spans, as attribution applies them.
fn amended(earlier: &GovernanceState, changes: &ViewChanges) -> (Vec<ApprovedWorkload>, Vec<ClaimSpan>) {
    let (workloads, spans) = (earlier.workloads(), earlier.claim_spans());
    fn spliced<T: Clone>(list: &[T], splices: &[Splice<'_, T>]) -> Vec<T> {
        runs(list.len(), splices)
            .into_iter()
            .flat_map(|run| match run {
                Run::Kept(range) => list[range].to_vec(),
                Run::Inserted(items) => items.iter().map(|x| (*x).clone()).collect(),
            })
            .collect()
    }
    let claims = changes.claim_splices(earlier, spans.len(), |i| spans[i].resource.key()).expect("the earlier spans");
    (
        spliced(&workloads, &changes.workload_splices(workloads.len(), |i| workloads[i].workload_id)),
        spliced(&spans, &claims),
    )
}

/// The key a claim history is kept under: its resource's.
fn claim_key(workload: u128) -> String {
    claim_of(workload).resource.as_ref().unwrap().key()
}

fn product(portfolio: u128, name: &str) -> crate::org::Product {
    crate::org::Product { portfolio_id: Uuid::from_u128(portfolio), name: name.into(), owner: "po-maria".into() }
}

#[test]
fn an_approval_changes_one_workload_and_the_rest_is_kept() {
    // Given a log's state with 100 workloads,
    let before = organisation_with(300);
    // when request 1 is approved and a workspace claimed for it,
    let mut after = before.clone();
    after.requests.insert(Uuid::from_u128(1), request(1, RequestStatus::Approved));
    after.claims.insert(claim_key(1), claim_of(1));
    // then the changes name that workload and that claim, and the rest is kept.
    let changes = after.view_changes_since(&before).expect("close states compare");
    assert_eq!(changes.workloads.keys().copied().collect::<Vec<_>>(), [Uuid::from_u128(1_001)]);
    assert_eq!(changes.claims.keys().cloned().collect::<Vec<_>>(), [claim_key(1)]);
    let workloads = before.workloads();
    let splices = changes.workload_splices(workloads.len(), |i| workloads[i].workload_id);
    let kept: usize =
        runs(workloads.len(), &splices).iter().map(|r| if let Run::Kept(k) = r { k.len() } else { 0 }).sum();
    assert_eq!(kept, 100);
    assert_eq!(amended(&before, &changes), (after.workloads(), after.claim_spans()));
    // Nothing changed: nothing named.
    assert_eq!(after.view_changes_since(&after), Some(ViewChanges::default()));
}

#[test]
fn an_added_product_changes_the_workloads_naming_it_and_a_budget_or_a_renamed_product_changes_everything() {
    let before = organisation_with(30);
    let mut added = before.clone();
    added.organisation.products.insert(Uuid::from_u128(5_001), product(7, "Search"));
    let changes = added.view_changes_since(&before).expect("a product added");
    // Approved requests are 0, 3, 6, …; those with n % 4 == 1 name product 5 001.
    let named: Vec<Uuid> =
        (0..30u128).filter(|n| n % 3 == 0 && n % 4 == 1).map(|n| Uuid::from_u128(1_000 + n)).collect();
    assert_eq!(changes.workloads.keys().copied().collect::<Vec<_>>(), named);
    assert_eq!(amended(&before, &changes).0, added.workloads());
    assert!(added.workloads().iter().any(|w| w.portfolio_id == Uuid::from_u128(7)));

    let mut renamed = added.clone();
    renamed.organisation.products.insert(Uuid::from_u128(5_001), product(7, "Search and rescue"));
    assert_eq!(renamed.view_changes_since(&added), None, "a product's name is on its workloads' rows");
    let mut budgeted = before.clone();
    let budget = crate::org::Budget {
        account: AccountId::parse("123456789012").unwrap(),
        name: "AI".into(),
        cost_centre: "CC-1".into(),
    };
    budgeted.organisation.budgets.insert(Uuid::from_u128(9), budget);
    assert_eq!(budgeted.view_changes_since(&before), None, "the account's only budget: every workload's");
    assert!(budgeted.workloads().iter().all(|w| w.budgets.len() == 1), "…as it is");
}

#[test]
fn more_changes_than_the_limit_are_not_walked() {
    let before = organisation_with(3);
    let mut after = before.clone();
    for i in 0..=VIEW_DIFF_LIMIT as u128 {
        after.requests.insert(Uuid::from_u128(10_000 + i), request(10_000 + i, RequestStatus::Approved));
    }
    assert_eq!(after.view_changes_since(&before), None);
}

/// One change of a log, as far as the amended lists go.
#[derive(Debug, Clone)]
enum Amendment {
    Request(u8, RequestStatus),
    Claim(u8),
    Unclaim(u8),
    Reclaim(u8, u8),
    BudgetChange(u8),
    Product(u8),
}

fn amendment() -> impl Strategy<Value = Amendment> {
    prop_oneof![
        4 => change().prop_map(|c| match c {
            Change::Request(n, s) => Amendment::Request(n, s),
            Change::Claim(n) => Amendment::Claim(n),
            Change::Unclaim(n) => Amendment::Unclaim(n),
        }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(n, w)| Amendment::Reclaim(n, w)),
        1 => any::<u8>().prop_map(Amendment::BudgetChange),
        1 => any::<u8>().prop_map(Amendment::Product),
    ]
}

fn apply(state: &mut GovernanceState, a: &Amendment) {
    let day = |d: u32| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
    match a {
        Amendment::Request(n, status) => {
            state.requests.insert(Uuid::from_u128(u128::from(*n)), request(u128::from(*n), *status));
        }
        Amendment::Claim(n) => {
            state.claims.insert(claim_key(u128::from(*n)), claim_of(u128::from(*n)));
        }
        Amendment::Unclaim(n) => {
            state.claims.remove(&claim_key(u128::from(*n)));
        }
        Amendment::Reclaim(n, w) => {
            let mut claim = (*claim_of(u128::from(*n))).clone();
            claim.periods[0].until = Some(day(9));
            claim.periods.push(crate::spaces::ClaimPeriod {
                workload_id: Uuid::from_u128(1_000 + u128::from(*w)),
                from: day(10),
                until: None,
            });
            state.claims.insert(claim_key(u128::from(*n)), Arc::new(claim));
        }
        Amendment::BudgetChange(n) => {
            let plan = WorkloadPlan { budget_changes: vec![(day(15), Uuid::from_u128(9))], ..WorkloadPlan::default() };
            state.plans.insert(Uuid::from_u128(1_000 + u128::from(*n)), Arc::new(plan));
        }
        Amendment::Product(n) => {
            state.organisation.products.insert(Uuid::from_u128(5_000 + u128::from(*n % 8)), product(7, "Search"));
        }
    }
}

proptest! {
    /// Whatever happened between two states of a log, the earlier state's workloads and
    /// claim spans amended by the changes are the later state's; the changes are found
    /// whenever the organisation only grew.
    #[test]
    fn amended_lists_are_the_later_states(
        first in proptest::collection::vec(amendment(), 0..30),
        then in proptest::collection::vec(amendment(), 0..30),
    ) {
        let mut before = organisation_with(200);
        for a in &first {
            apply(&mut before, a);
        }
        let mut after = before.clone();
        for a in &then {
            apply(&mut after, a);
        }
        // A product added again under its id keeps its entry: the organisation only grew
        // unless a product already there was replaced (same value here, so it only grew).
        let changes = after.view_changes_since(&before);
        prop_assert!(changes.is_some());
        let changes = changes.unwrap();
        prop_assert_eq!(amended(&before, &changes), (after.workloads(), after.claim_spans()));
        // And the other way round: a later state back to an earlier one.
        if let Some(back) = before.view_changes_since(&after) {
            prop_assert_eq!(amended(&after, &back), (before.workloads(), before.claim_spans()));
        }
    }
}

#[test]
fn a_comparison_within_a_limit_walks_no_further_than_it() {
    // Given an approval (its request, plan and claim changed) since a kept state,
    let before = organisation_with(30);
    let mut after = before.clone();
    after.requests.insert(Uuid::from_u128(1), request(1, RequestStatus::Approved));
    after.claims.insert(claim_key(1), claim_of(1));
    // when it is compared as far as the changes it has, it is found; one less, it is not.
    let changes = after.view_changes_since(&before).expect("close states compare");
    assert_eq!(changes.compared, 2, "a request and a claim walked");
    assert_eq!(after.view_changes_within(&before, changes.compared), Some(changes.clone()));
    assert_eq!(after.view_changes_within(&before, changes.compared - 1), None);
}

#[test]
fn claim_spans_kept_under_another_key_than_their_resources_are_not_spliced() {
    // Given a claim history kept under a key that is not its resource's (no writer keys one
    // so: a list ordered by resource keys would not have its spans where the key says),
    let mut before = organisation_with(30);
    before.claims.insert(claim_key(3), claim_of(3));
    before.claims.insert("a-key-of-its-own".into(), claim_of(2));
    // when that history changes,
    let mut after = before.clone();
    after.claims.remove("a-key-of-its-own");
    let changes = after.view_changes_since(&before).expect("close states compare");
    // then its place in the earlier spans is not guessed: no splices (the caller builds).
    let spans = before.claim_spans();
    assert_eq!(changes.claim_splices(&before, spans.len(), |i| spans[i].resource.key()), None);
    // Kept under its resource's key, the same change is spliced.
    let mut before = organisation_with(30);
    before.claims.insert(claim_key(3), claim_of(3));
    before.claims.insert(claim_key(2), claim_of(2));
    let mut after = before.clone();
    after.claims.remove(&claim_key(2));
    let changes = after.view_changes_since(&before).expect("close states compare");
    let spans = before.claim_spans();
    let splices = changes.claim_splices(&before, spans.len(), |i| spans[i].resource.key()).expect("found");
    assert_eq!(splices, vec![Splice { at: 0, removed: 1, inserted: vec![] }]);
}
