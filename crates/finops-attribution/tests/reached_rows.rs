//! A question judged from the state itself (`Governance::State`: the rows its month can
//! meet looked up by name) registers what a question given the state's whole tables
//! registers, row for row — over a real log (approvals, tasks, claims, a release, a business
//! case declared later) at nine instants, for each kind of asker — and the fold keeps the state's lookups as a fresh
//! derivation (and a snapshot read back) has them.

use std::sync::Arc;

use chrono::{Datelike, NaiveDate, Utc};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::SessionContext;
use finops_attribution::governance::{REACHED, reached};
use finops_attribution::{GovernanceTables, GovernanceView, Visibility};
use finops_domain::governance_state::{GovernanceState, Lookup};
use finops_domain::role::permission_set_for;
use finops_eventlog::{AllRead, EventStore};
use finops_governance::timeline::GovernanceTimeline;

/// A table's rows as text, sorted (the comparison is of rows, not of scan order).
async fn rows(ctx: &SessionContext, table: &str) -> Vec<String> {
    let batches = ctx.sql(&format!("SELECT * FROM {table}")).await.unwrap().collect().await.unwrap();
    let text = pretty_format_batches(&batches).unwrap().to_string();
    let mut lines: Vec<String> = text.lines().filter(|l| l.starts_with('|')).skip(1).map(str::to_owned).collect();
    lines.sort();
    lines
}

/// The states of a log at nine instants: five inside a generated log, after each of three
/// approvals with their claims, after one claim is released, and after a business case is
/// declared for another.
async fn states() -> Vec<GovernanceState> {
    let store: Arc<dyn EventStore> =
        finops_eventlog::open(&finops_testkit::fresh_sqlite_url(), finops_governance::upcasters()).await.unwrap();
    let mut instants = finops_testkit::governance_log::with_changes(&store, 2_000).await;
    let head = async || store.read_all(AllRead::backwards_from(None, 1)).await.unwrap()[0].metadata.recorded_at;
    let timeline = GovernanceTimeline::new(store.clone());
    let now = timeline.state_as_of(None).await.unwrap();
    // A business case declared later, in Spaces, for the second approval's workload: backed.
    let declared = now.claim_spans()[1].workload_id;
    let declare = finops_domain::workload::WorkloadCommand::DeclareBusinessCase {
        case: finops_domain::request::BusinessCase {
            annual_cost_saving: Some(finops_domain::vocabulary::Cents(1_000_000)),
            annual_revenue_driving: None,
        },
        by: "po-1".into(),
        at: Utc::now(),
    };
    finops_governance::CommandHandler::<finops_domain::workload::WorkloadPlan>::new(store.clone())
        .execute(&finops_governance::streams::workload(declared), &declare, &finops_testkit::operator_context("po-1"))
        .await
        .unwrap();
    instants.push(head().await);
    let mut states = Vec::new();
    for instant in instants {
        states.push(timeline.state_as_of(Some(instant)).await.unwrap());
    }
    states
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_looked_up_in_the_state_are_the_rows_the_whole_tables_give() {
    let states = states().await;
    assert!(states.last().unwrap().claim_spans().len() >= 3, "the approvals' roles are claimed");
    for (i, state) in states.iter().enumerate() {
        assert_eq!(*state.lookup(), Lookup::of(state), "state {i}: the fold keeps the lookups");
        let read: GovernanceState = serde_json::from_str(&serde_json::to_string(state).unwrap()).unwrap();
        assert_eq!(*read.lookup(), Lookup::of(state), "state {i}: a snapshot read back is looked up afresh");

        let view = GovernanceView::from(state);
        let tables = GovernanceTables::new(view.clone());
        // What a month's facets may name: the generated roles, their permission sets, an
        // Identity Center session of each, claimed names, and names that meet nothing.
        let mut names: Vec<String> = vec!["nobody".into(), "AWSReservedSSO_Nobody_00ff".into()];
        for w in view.workloads.iter().step_by(3) {
            let set = permission_set_for(&w.role_name);
            names.extend([w.role_name.clone(), format!("AWSReservedSSO_{set}_0a1b2c3d"), set]);
        }
        // Every other claim by its role's name alone: its Identity Center row is not met.
        for span in view.claims.iter().step_by(2) {
            if let finops_domain::spaces::ClaimedResource::IamRole { role_name, .. } = &span.resource {
                names.push(role_name.clone());
            }
        }
        let ids: Vec<String> = view
            .workloads
            .iter()
            .step_by(2)
            .map(|w| w.workload_id.to_string())
            .chain(["not-a-workload".into(), uuid::Uuid::nil().to_string()])
            .collect();
        let owner = view.workloads.first().map(|w| w.owner.clone()).unwrap_or_default();
        let portfolio_owner =
            state.organisation.portfolios.values().next().map(|p| p.owner.clone()).unwrap_or_default();
        // The month of the first claim: the unbacked workloads' period.
        let first_claim = view.claims.iter().map(|c| c.from).min().unwrap_or(NaiveDate::MIN);
        let month = NaiveDate::from_ymd_opt(first_claim.year(), first_claim.month(), 1).unwrap_or(first_claim);
        let period = (month, month.checked_add_months(chrono::Months::new(1)).unwrap().pred_opt().unwrap());
        for visibility in
            [Visibility::Everything, Visibility::OwnWorkloads(owner), Visibility::OwnPortfolios(portfolio_owner)]
        {
            let (whole, looked_up) = (SessionContext::new(), SessionContext::new());
            tables.register_reached(&whole, &visibility, names.iter().map(String::as_str)).unwrap();
            reached::register_reached(&looked_up, state, &visibility, names.iter().map(String::as_str)).unwrap();
            tables.register_charged(&whole, &visibility, ids.iter().map(String::as_str)).unwrap();
            reached::register_charged(&looked_up, state, &visibility, ids.iter().map(String::as_str)).unwrap();
            for table in REACHED.into_iter().chain(["charged_workloads", "charged_budgets"]) {
                assert_eq!(
                    rows(&looked_up, table).await,
                    rows(&whole, table).await,
                    "state {i}, {visibility:?}: `{table}`"
                );
            }
            // The unbacked workloads: the whole tables filtered as the question filters them.
            tables.register(&whole, &visibility).unwrap();
            reached::register_unbacked(&looked_up, state, &visibility, period).unwrap();
            let unbacked = |workloads: &str, claims: &str| {
                format!(
                    "SELECT w.workload_id, w.workload, w.owner FROM {workloads} w WHERE NOT w.business_case \
                     AND w.workload_id IN (SELECT workload_id FROM {claims} WHERE from_day <= DATE '{}' \
                     AND (until_day IS NULL OR until_day >= DATE '{}'))",
                    period.1, period.0
                )
            };
            let answer = |ctx: &SessionContext, sql: String| {
                let ctx = ctx.clone();
                async move {
                    let batches = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
                    let mut lines: Vec<String> =
                        pretty_format_batches(&batches).unwrap().to_string().lines().map(str::to_owned).collect();
                    lines.sort();
                    lines
                }
            };
            let expected = answer(&whole, unbacked("workloads", "claims")).await;
            assert_eq!(
                answer(&looked_up, unbacked("unbacked_workloads", "unbacked_claims")).await,
                expected,
                "state {i}, {visibility:?}: unbacked workloads"
            );
            if i == states.len() - 1 && visibility == Visibility::Everything {
                assert!(expected.len() > 4, "the last state has unbacked workloads to compare: {expected:?}");
                let backed = state.claim_spans()[1].workload_id.to_string();
                assert!(!expected.iter().any(|l| l.contains(&backed)), "the workload with a business case is backed");
                let claims = rows(&looked_up, "claims").await;
                assert!(claims.iter().any(|r| r.contains("| role ")), "role rows met: {claims:?}");
                assert!(
                    claims.len() < 2 * state.claim_spans().len(),
                    "some Identity Center rows are not met: {claims:?}"
                );
            }
        }
    }
}
