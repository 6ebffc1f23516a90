//! `finops serve --demo`: a realistic organisation seeded through the same command path
//! the gRPC services use — portfolios, products, accounts and budgets; approved, pending
//! and revoked models; requests in every state; tasks in progress, implemented and
//! overdue; a claimed role. Ids derive from names, so seeding twice changes nothing.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use finops_domain::catalog::{CatalogCommand, CatalogEntry};
use finops_domain::org::{Budget, OrgCommand, Organisation, Portfolio, Product};
use finops_domain::request::{
    Availability, BusinessCase, BusinessRequest, RequestCommand, RequestDetails, Review, UseCase, WorkloadType,
};
use finops_domain::role::RoleSuffix;
use finops_domain::spaces::{ClaimCommand, ClaimableResource, ClaimedResource};
use finops_domain::tasks::{self, Task, TaskCommand, TaskContext};
use finops_domain::vocabulary::{
    AccountId, ApprovalScope, Cents, InvokeAction, ModelId, MonthlyAmount, Platform, Region,
};
use finops_eventlog::EventStore;
use finops_governance::{CommandContext, CommandHandler, GovernanceError, streams};
use uuid::Uuid;

/// The namespace demo ids are derived in.
const DEMO: Uuid = Uuid::from_u128(0x0f1e_d3c0_0000_7000_8000_0000_0000_d3a0);

/// The demo's id for a named thing (a request's key, a product's or a budget's name).
pub fn id(name: &str) -> Uuid {
    Uuid::new_v5(&DEMO, name.as_bytes())
}

fn ctx(actor: &str, role: &str, key: &str, rationale: Option<&str>) -> CommandContext {
    CommandContext {
        actor_id: actor.into(),
        actor_role: role.into(),
        request_id: id(key),
        rationale: rationale.map(str::to_owned),
        correlation_id: Some(id(key)),
        causation_id: None,
        fingerprint: None,
    }
}

fn account(a: &str) -> AccountId {
    AccountId::parse(a).expect("demo account")
}

fn region(r: &str) -> Region {
    Region::parse(r).expect("demo region")
}

fn model(m: &str) -> ModelId {
    ModelId::parse(m).expect("demo model")
}

/// What the demo seeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoSummary {
    /// Business Requests in the demo.
    pub requests: usize,
    /// Tasks generated.
    pub tasks: usize,
}

/// Seeds the demo organisation into `store` (idempotent).
pub async fn seed(
    store: Arc<dyn EventStore>,
    identity_center_instance_arn: &str,
) -> Result<DemoSummary, GovernanceError> {
    let org = CommandHandler::<Organisation>::new(store.clone());
    let catalog = CommandHandler::<CatalogEntry>::new(store.clone());
    let requests = CommandHandler::<BusinessRequest>::new(store.clone());
    let task_handler = CommandHandler::<Task>::new(store.clone());
    let claims = CommandHandler::<ClaimableResource>::new(store.clone());
    // A fixed clock two weeks back keeps the story (and the overdue task) reproducible.
    let t0: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-02T09:00:00Z").expect("fixed").with_timezone(&Utc);
    let fl = |key: &str, why: &str| ctx("fl-ana", "finops_lead", key, Some(why));

    // Organisation.
    let o = streams::organisation();
    for (p, owner) in [("Customer Experience", "pf-omar"), ("Finance Operations", "pf-lena")] {
        let c = OrgCommand::AddPortfolio {
            portfolio_id: id(p),
            portfolio: Portfolio { name: p.into(), owner: owner.into() },
            at: t0,
        };
        org.execute(&o, &c, &fl(&format!("org-{p}"), "demo organisation")).await?;
    }
    let products = [
        ("Customer Experience", "Support Assistant", "po-maria"),
        ("Customer Experience", "Claims Triage", "po-juan"),
        ("Finance Operations", "Invoice Reader", "po-maria"),
        ("Finance Operations", "Engineering Productivity", "po-juan"),
    ];
    for (portfolio, name, owner) in products {
        let c = OrgCommand::AddProduct {
            product_id: id(name),
            product: Product { portfolio_id: id(portfolio), name: name.into(), owner: owner.into() },
            at: t0,
        };
        org.execute(&o, &c, &fl(&format!("org-{name}"), "demo organisation")).await?;
    }
    for (acct, name, budgets) in [
        ("111122223333", "cx-prod", vec![("CX AI", "CC-410"), ("CX Platform", "CC-411")]),
        ("444455556666", "finops-prod", vec![("Finance AI", "CC-520")]),
        ("777788889999", "shared-sandbox", vec![("Sandbox", "CC-900"), ("Engineering", "CC-901"), ("Data", "CC-902")]),
    ] {
        let c = OrgCommand::RegisterAccount { account: account(acct), name: name.into(), at: t0 };
        org.execute(&o, &c, &fl(&format!("acct-{acct}"), "demo organisation")).await?;
        for (budget, cc) in budgets {
            let c = OrgCommand::MapBudget {
                budget_id: id(budget),
                budget: Budget { account: account(acct), name: budget.into(), cost_centre: cc.into() },
                at: t0,
            };
            org.execute(&o, &c, &fl(&format!("budget-{budget}"), "demo organisation")).await?;
        }
    }

    // Catalog: approved, pending and revoked models.
    let all_accounts = ["111122223333", "444455556666", "777788889999"];
    let approved_models = [
        (Platform::AmazonBedrock, "anthropic.claude-3-haiku-20240307-v1:0", vec!["us-east-1", "us-west-2"]),
        (
            Platform::AmazonBedrock,
            "anthropic.claude-sonnet-4-20250514-v1:0",
            vec!["us-east-1", "us-west-2", "eu-west-1"],
        ),
        (Platform::AmazonBedrock, "amazon.nova-pro-v1:0", vec!["us-east-1"]),
        (Platform::AwsMarketplace, "meta.llama3-1-70b-instruct-v1:0", vec!["us-west-2"]),
        (Platform::ClaudePlatform, "claude-sonnet-4-5", vec!["us-east-1"]),
    ];
    for (platform, m, regions) in &approved_models {
        let s = streams::catalog_model(*platform, m);
        let list =
            CatalogCommand::ListForReview { platform: *platform, model_id: model(m), by: "fl-ana".into(), at: t0 };
        catalog.execute(&s, &list, &fl(&format!("list-{m}"), "demo catalog")).await?;
        let scope = ApprovalScope {
            accounts: all_accounts.iter().map(|a| account(a)).collect(),
            regions: regions.iter().map(|r| region(r)).collect(),
            actions: InvokeAction::ALL.into(),
        };
        let approve = CatalogCommand::Approve {
            scope,
            by: "fl-ana".into(),
            rationale: "Vetted by security and legal".into(),
            at: t0,
        };
        catalog.execute(&s, &approve, &fl(&format!("approve-{m}"), "Vetted by security and legal")).await?;
    }
    for (m, revoke) in
        [("anthropic.claude-opus-4-20250514-v1:0", false), ("anthropic.claude-3-5-sonnet-20240620-v1:0", true)]
    {
        let s = streams::catalog_model(Platform::AmazonBedrock, m);
        let list = CatalogCommand::ListForReview {
            platform: Platform::AmazonBedrock,
            model_id: model(m),
            by: "fl-ana".into(),
            at: t0,
        };
        catalog.execute(&s, &list, &fl(&format!("list-{m}"), "demo catalog")).await?;
        if revoke {
            let scope = ApprovalScope {
                accounts: [account("777788889999")].into(),
                regions: [region("us-east-1")].into(),
                actions: [InvokeAction::InvokeModel].into(),
            };
            let approve = CatalogCommand::Approve { scope, by: "fl-ana".into(), rationale: "Pilot".into(), at: t0 };
            catalog.execute(&s, &approve, &fl(&format!("approve-{m}"), "Pilot")).await?;
            let c = CatalogCommand::Revoke {
                by: "fl-ana".into(),
                rationale: "Superseded by Claude Sonnet 4".into(),
                at: t0 + Duration::days(1),
            };
            catalog.execute(&s, &c, &fl(&format!("revoke-{m}"), "Superseded by Claude Sonnet 4")).await?;
        }
    }

    // Requests in every state.
    let ops = |name: &str, desc: &str, kind: WorkloadType, availability: Availability, dollars: u64| RequestDetails {
        workload_name: name.into(),
        use_case: UseCase::Operations {
            workload_type: kind,
            description: desc.into(),
            availability,
            monthly_budget: MonthlyAmount::Dollars(Cents(dollars * 100)),
        },
        priority: false,
        start: None,
        end: None,
        monthly_growth_percent: Some(5.0),
        business_case: Some(BusinessCase {
            annual_cost_saving: Some(Cents(dollars * 100 * 30)),
            annual_revenue_driving: None,
        }),
    };
    struct Story {
        key: &'static str,
        product: &'static str,
        owner: &'static str,
        details: RequestDetails,
        outcome: Outcome,
    }
    enum Outcome {
        Submitted,
        Approved(Platform, &'static str, &'static str, &'static str, Option<&'static str>, Option<&'static str>),
        Rejected,
        Withdrawn,
        Resubmitted,
    }
    let stories = [
        Story {
            key: "support-bot",
            product: "Support Assistant",
            owner: "po-maria",
            details: ops(
                "Support Bot",
                "Answers tier-1 support tickets from the help centre.",
                WorkloadType::CustomerSupport,
                Availability::HighAvailability,
                4_200,
            ),
            outcome: Outcome::Approved(
                Platform::AmazonBedrock,
                "anthropic.claude-sonnet-4-20250514-v1:0",
                "111122223333",
                "us-east-1",
                None,
                Some("MPE41230"),
            ),
        },
        Story {
            key: "claims-triage",
            product: "Claims Triage",
            owner: "po-juan",
            // No business case declared yet: once it spends, an Unbacked AI Workload.
            details: RequestDetails {
                business_case: None,
                ..ops(
                    "Claims Triage",
                    "Sorts incoming claims by urgency and line of business.",
                    WorkloadType::DocumentProcessing,
                    Availability::Standard,
                    1_800,
                )
            },
            outcome: Outcome::Approved(
                Platform::AmazonBedrock,
                "anthropic.claude-3-haiku-20240307-v1:0",
                "111122223333",
                "us-west-2",
                None,
                None,
            ),
        },
        Story {
            key: "contract-drafts",
            product: "Invoice Reader",
            owner: "po-maria",
            details: ops(
                "Contract Drafts",
                "Drafts supplier contract summaries.",
                WorkloadType::InternalTool,
                Availability::Standard,
                900,
            ),
            outcome: Outcome::Approved(
                Platform::ClaudePlatform,
                "claude-sonnet-4-5",
                "444455556666",
                "us-east-1",
                Some("finance-contracts"),
                None,
            ),
        },
        Story {
            key: "eng-coding",
            product: "Engineering Productivity",
            owner: "po-juan",
            details: RequestDetails {
                workload_name: "Platform Engineering coding".into(),
                use_case: UseCase::Coding { developers: 60, active_percent: 30 },
                priority: true,
                start: None,
                end: None,
                monthly_growth_percent: None,
                business_case: Some(BusinessCase {
                    annual_cost_saving: Some(Cents(48_000_000)),
                    annual_revenue_driving: None,
                }),
            },
            outcome: Outcome::Approved(
                Platform::AmazonBedrock,
                "anthropic.claude-sonnet-4-20250514-v1:0",
                "777788889999",
                "us-east-1",
                None,
                None,
            ),
        },
        Story {
            key: "invoice-reader",
            product: "Invoice Reader",
            owner: "po-maria",
            details: ops(
                "Invoice Reader",
                "Extracts line items from supplier invoices.",
                WorkloadType::DocumentProcessing,
                Availability::Standard,
                1_200,
            ),
            outcome: Outcome::Submitted,
        },
        Story {
            key: "ticket-summaries",
            product: "Support Assistant",
            owner: "po-maria",
            details: ops(
                "Ticket Summaries",
                "Summarises long ticket threads for agents.",
                WorkloadType::CustomerSupport,
                Availability::Standard,
                600,
            ),
            outcome: Outcome::Rejected,
        },
        Story {
            key: "fraud-notes",
            product: "Claims Triage",
            owner: "po-juan",
            details: ops(
                "Fraud Notes",
                "Writes first-pass fraud review notes.",
                WorkloadType::Automation,
                Availability::Standard,
                700,
            ),
            outcome: Outcome::Withdrawn,
        },
        Story {
            key: "faq-generator",
            product: "Support Assistant",
            owner: "po-maria",
            details: ops(
                "FAQ Generator",
                "Proposes FAQ entries from resolved tickets.",
                WorkloadType::Other,
                Availability::Standard,
                300,
            ),
            outcome: Outcome::Resubmitted,
        },
    ];
    let mut task_count = 0;
    for (day, story) in stories.iter().enumerate() {
        let at = t0 + Duration::days(1 + day as i64 / 2);
        let rid = id(story.key);
        let stream = streams::business_request(rid);
        let po = ctx(story.owner, "product_owner", &format!("submit-{}", story.key), None);
        let submit = RequestCommand::Submit {
            request_id: rid,
            product_id: id(story.product),
            requested_by: story.owner.into(),
            details: story.details.clone(),
            at,
        };
        requests.execute(&stream, &submit, &po).await?;
        match &story.outcome {
            Outcome::Submitted => {}
            Outcome::Approved(platform, m, acct, r, workspace, mpe) => {
                let standing = catalog.load(&streams::catalog_model(*platform, m)).await?.state.standing();
                let review = Review {
                    platform: *platform,
                    model_id: model(m),
                    account: account(acct),
                    region: region(r),
                    actions: [InvokeAction::InvokeModel, InvokeAction::Converse, InvokeAction::ConverseStream].into(),
                    role_suffix: RoleSuffix::from_entropy(u32::from_be_bytes(
                        rid.as_bytes()[..4].try_into().expect("4 bytes"),
                    )),
                    workspace: workspace.map(str::to_owned),
                    map_mpe_id: mpe.map(str::to_owned),
                    confirmed_estimate: MonthlyAmount::Dollars(Cents(310_000)),
                    // The budget each demo workload charges, named as a FinOps Lead names it.
                    budget_id: match *acct {
                        "111122223333" => Some(id("CX AI")),
                        "444455556666" => Some(id("Finance AI")),
                        "777788889999" => Some(id("Data")),
                        _ => None,
                    },
                };
                let rationale = "Business case accepted; estimate confirmed from the price table";
                let approve = RequestCommand::Approve {
                    review,
                    workload_id: id(&format!("workload-{}", story.key)),
                    catalog: standing,
                    account_budgets: org
                        .load(&o)
                        .await?
                        .state
                        .budgets_of(&account(acct))
                        .into_iter()
                        .map(|(id, _)| id)
                        .collect(),
                    by: "fl-ana".into(),
                    rationale: rationale.into(),
                    at: at + Duration::hours(3),
                };
                let c = fl(&format!("approve-{}", story.key), rationale);
                let approved = requests.execute(&stream, &approve, &c).await?.state;
                // The approval's reactions, exactly as the fan-out process makes them (it
                // finds them done when it reaches this approval).
                let recorded = store.read_stream(&stream, finops_eventlog::StreamRead::all()).await?;
                let approval = recorded
                    .iter()
                    .rev()
                    .find(|e| e.event_type == "BusinessRequestApproved")
                    .expect("the approval was just recorded");
                finops_processes::fan_out(&store, approval, identity_center_instance_arn).await?;
                let context = TaskContext {
                    identity_center_instance_arn: identity_center_instance_arn.to_owned(),
                    portfolio: String::new(),
                    product: String::new(),
                };
                for plan in tasks::plan_tasks(&approved, rationale, &context) {
                    task_count += 1;
                    let ts = streams::task(plan.task_id);
                    let steps = plan.steps.len();
                    let kind = plan.kind;
                    let ce =
                        |n: usize| ctx("ce-li", "cloud_engineer", &format!("step-{}-{kind:?}-{n}", story.key), None);
                    // Support Bot's role is implemented and claimed; Claims Triage is half
                    // done; the rest wait (and, created two weeks ago, are overdue).
                    let done = match story.key {
                        "support-bot" if kind == tasks::TaskKind::BedrockEnableAccess => steps,
                        "claims-triage" => 2,
                        _ => 0,
                    };
                    for n in 1..=done.min(steps - 1) {
                        let c = TaskCommand::CompleteStep {
                            step: n,
                            by: "ce-li".into(),
                            note: None,
                            dependency_implemented: true,
                            at: at + Duration::days(1),
                        };
                        task_handler.execute(&ts, &c, &ce(n)).await?;
                    }
                    if done == steps {
                        let c =
                            TaskCommand::MarkImplemented { by: "ce-li".into(), note: None, at: at + Duration::days(1) };
                        task_handler.execute(&ts, &c, &ce(steps)).await?;
                    }
                }
                // Support Bot's role is claimed once implemented; Contract Drafts' Claude
                // Platform workspace from the 9th (its first week's spend stays an Unclaimed
                // AI Allocation, its later weeks get Spend Cards beside Support Bot's).
                let claimed = match story.key {
                    "support-bot" => {
                        let role = approved.approval.as_ref().expect("approved").role_name.to_string();
                        Some((ClaimedResource::IamRole { account: account(acct), role_name: role }, at.date_naive()))
                    }
                    "contract-drafts" => Some((
                        ClaimedResource::Workspace { name: "finance-contracts".into() },
                        chrono::NaiveDate::from_ymd_opt(2026, 11, 9).expect("date"),
                    )),
                    _ => None,
                };
                if let Some((resource, effective_from)) = claimed {
                    let claim = ClaimCommand::Claim {
                        resource: resource.clone(),
                        workload_id: id(&format!("workload-{}", story.key)),
                        effective_from,
                        by: story.owner.into(),
                        at: at + Duration::days(2),
                    };
                    let key = format!("claim-{}", story.key);
                    claims
                        .execute(
                            &streams::claim(&resource.key()),
                            &claim,
                            &ctx(story.owner, "product_owner", &key, None),
                        )
                        .await?;
                }
            }
            Outcome::Rejected | Outcome::Resubmitted | Outcome::Withdrawn => {
                let reason = "Please state expected ticket volume and a token estimate";
                if !matches!(story.outcome, Outcome::Withdrawn) {
                    let reject = RequestCommand::Reject {
                        by: "fl-ana".into(),
                        rationale: reason.into(),
                        at: at + Duration::hours(5),
                    };
                    requests.execute(&stream, &reject, &fl(&format!("reject-{}", story.key), reason)).await?;
                }
                if matches!(story.outcome, Outcome::Resubmitted) {
                    let mut revised = story.details.clone();
                    revised.monthly_growth_percent = Some(2.0);
                    let c = RequestCommand::Resubmit {
                        details: revised,
                        by: story.owner.into(),
                        at: at + Duration::days(1),
                    };
                    requests
                        .execute(
                            &stream,
                            &c,
                            &ctx(story.owner, "product_owner", &format!("resubmit-{}", story.key), None),
                        )
                        .await?;
                }
                if matches!(story.outcome, Outcome::Withdrawn) {
                    let c = RequestCommand::Withdraw {
                        by: story.owner.into(),
                        reason: Some("Merged into Claims Triage".into()),
                        at: at + Duration::days(1),
                    };
                    requests
                        .execute(
                            &stream,
                            &c,
                            &ctx(story.owner, "product_owner", &format!("withdraw-{}", story.key), None),
                        )
                        .await?;
                }
            }
        }
    }
    seed_kill_switch(&store, t0).await?;
    Ok(DemoSummary { requests: stories.len(), tasks: task_count })
}

/// Claims Triage was suspended by its Product Owner during a retry storm and resumed by
/// the FinOps Lead the next day — with manual enforcement, as a demo has no AWS
/// credentials: the calls are in the trail as commands (`finops control "Claims Triage"`).
async fn seed_kill_switch(store: &Arc<dyn EventStore>, t0: DateTime<Utc>) -> Result<(), GovernanceError> {
    use finops_domain::gaps::Decider;
    use finops_domain::kill_switch::{ControlCommand, Enforcement, WorkloadControl, suspension_plan};
    let workload_id = id("workload-claims-triage");
    let state = finops_governance::state::state_as_of(store.as_ref(), None).await?;
    let plan = suspension_plan(&state, workload_id)?;
    let controls = CommandHandler::<WorkloadControl>::new(store.clone());
    let stream = streams::kill_switch(workload_id);
    let why = "Token spike from a retry storm in the nightly triage batch";
    let decider =
        |by: &str, role: &str, why: &str, at| Decider { by: by.into(), role: role.into(), rationale: why.into(), at };
    let suspend = ControlCommand::Suspend {
        workload_id,
        plan,
        enforcement: Enforcement::Manual,
        decider: decider("po-juan", "product_owner", why, t0 + Duration::days(10) + Duration::hours(5)),
    };
    controls.execute(&stream, &suspend, &ctx("po-juan", "product_owner", "suspend-claims-triage", Some(why))).await?;
    let why = "Batch job fixed (retries capped at 3); hourly spend back to its baseline";
    let resume = ControlCommand::Resume {
        enforcement: Enforcement::Manual,
        decider: decider("fl-ana", "finops_lead", why, t0 + Duration::days(11) + Duration::hours(1)),
    };
    controls.execute(&stream, &resume, &ctx("fl-ana", "finops_lead", "resume-claims-triage", Some(why))).await?;
    Ok(())
}

/// What the demo's gaps show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoGaps {
    /// Gaps detected in the demo month.
    pub detected: usize,
    /// Gaps the demo decided on (actioned, resolved, recalled, claimed).
    pub decided: usize,
}

/// Seeds the Allocation Gaps of the demo month in every state: detected (active), one
/// actioned (Guided CUR setup), one resolved by decision, one actioned then recalled, and
/// one resolved automatically after its guardrail is assigned to Support Bot — through
/// the same commands and the same detector the server runs. Idempotent.
pub async fn seed_gaps(
    store: Arc<dyn EventStore>,
    objects: Arc<dyn object_store::ObjectStore>,
    patterns: finops_attribution::RolePatterns,
) -> Result<DemoGaps, finops_processes::ProcessError> {
    let engine = finops_attribution::AttributionEngine::new(objects, patterns);
    use finops_domain::gaps::{self, ActionOutcome, AllocationGap, Decider, GapActionKind, GapCommand, GapKind};

    let ingested = store.read_stream(&streams::cur_period("2026-11"), finops_eventlog::StreamRead::all()).await?;
    let Some(batch) = ingested.last() else { return Ok(DemoGaps { detected: 0, decided: 0 }) };
    store.seal_committed().await?;
    let batch =
        store.read_stream(&batch.stream_id, finops_eventlog::StreamRead::all()).await?.pop().expect("read back");
    // Stale (writes nothing) when the demo was seeded before.
    finops_processes::gaps::evaluate(&store, &engine, &batch).await?;
    // The gaps as detected, by kind (in anchor order: the same choice every time).
    let handler = CommandHandler::<AllocationGap>::new(store.clone());
    let mut by_kind: std::collections::BTreeMap<GapKind, Vec<(Uuid, AllocationGap)>> = Default::default();
    for (gap_id, gap) in finops_processes::gaps::current_gaps(store.as_ref()).await? {
        if let Some(identity) = &gap.identity {
            by_kind.entry(identity.kind).or_default().push((gap_id, gap.clone()));
        }
    }
    for gaps in by_kind.values_mut() {
        gaps.sort_by(|a, b| a.1.identity.as_ref().map(|i| &i.anchor).cmp(&b.1.identity.as_ref().map(|i| &i.anchor)));
    }
    let at: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z").expect("fixed").with_timezone(&Utc);
    let decider = |why: &str, minutes: i64| Decider {
        by: "fl-ana".into(),
        role: "finops_lead".into(),
        rationale: why.into(),
        at: at + Duration::minutes(minutes),
    };
    let first = |kind: GapKind| by_kind.get(&kind).and_then(|g| g.first()).map(|(id, g)| (*id, g.clone()));
    let mut decided = 0;
    let run = |gap_id: Uuid, command: GapCommand, key: &str, why: &str| {
        let handler = handler.clone();
        let context = ctx("fl-ana", "finops_lead", &format!("gap-{key}"), Some(why));
        async move { handler.execute(&streams::gap(gap_id), &command, &context).await }
    };
    if let Some((gap_id, gap)) = first(GapKind::AttributionNotEnabled) {
        let why = "Finance cannot charge this account's AI spend: turn caller identity on";
        let account = gap.identity.as_ref().map(|i| i.account.clone()).unwrap_or_default();
        let outcome = gaps::guided_cur_setup(&account, &format!("finops-center-cur-{account}"));
        let command = GapCommand::Act { action: GapActionKind::GuidedCurSetup, outcome, decider: decider(why, 0) };
        run(gap_id, command, "guided-cur", why).await?;
        decided += 1;
    }
    if let Some((gap_id, _)) = first(GapKind::UnattributedSpend) {
        let why = "Accepted as shared platform cost: the admins run the monthly evaluation suite";
        run(gap_id, GapCommand::Resolve { decider: decider(why, 5) }, "resolve-admin", why).await?;
        decided += 1;
    }
    if let Some((gap_id, gap)) = first(GapKind::NotBusinessApproved) {
        let why = "Not approved for Bedrock";
        let principal = gap.identity.as_ref().map(|i| i.principal.clone()).unwrap_or_default();
        let is_user = gap.identity.as_ref().is_some_and(|i| i.principal_is_user());
        let command = GapCommand::Act {
            action: GapActionKind::Block,
            outcome: gaps::block_principal(&principal, is_user),
            decider: decider(why, 10),
        };
        run(gap_id, command, "block", why).await?;
        let why = "Blocked the wrong principal: it is the data science team's approved sandbox";
        run(gap_id, GapCommand::Recall { decider: decider(why, 15) }, "recall-block", why).await?;
        decided += 1;
    }
    if let Some((gap_id, gap)) = first(GapKind::UnallocatedGuardrail) {
        let why = "Support Bot's content filter";
        let arn = gap.identity.as_ref().and_then(|i| i.anchor.strip_prefix("guardrail/")).unwrap_or_default();
        if let Ok(resource) = ClaimedResource::guardrail(arn) {
            let claims = CommandHandler::<ClaimableResource>::new(store.clone());
            let assign = ClaimCommand::Reassign {
                resource: resource.clone(),
                workload_id: id("workload-support-bot"),
                effective_from: chrono::NaiveDate::from_ymd_opt(2026, 11, 1).expect("date"),
                by: "fl-ana".into(),
                rationale: format!("{why} (on behalf of po-maria, the workload's Product Owner)"),
                at: at + Duration::minutes(20),
            };
            claims
                .execute(
                    &streams::claim(&resource.key()),
                    &assign,
                    &ctx("fl-ana", "finops_lead", "gap-claim", Some(why)),
                )
                .await?;
            let outcome = ActionOutcome { resources: vec![format!("claims/{}", resource.key())], ..Default::default() };
            let command = GapCommand::Act { action: GapActionKind::ClaimInSpaces, outcome, decider: decider(why, 20) };
            run(gap_id, command, "claim-guardrail", why).await?;
            // The detector sees the claim and resolves the gap, as the server's would.
            store.seal_committed().await?;
            let recorded =
                store.read_stream(&streams::claim(&resource.key()), finops_eventlog::StreamRead::all()).await?;
            if let Some(claim) = recorded.last() {
                finops_processes::gaps::evaluate(&store, &engine, claim).await?;
            }
            decided += 1;
        }
    }
    // The LLM gateway fronts Support Bot's agents (its `gw-user-1*` sessions): a gateway
    // mapping rule moves their spend to the workload; the rest stays not business approved.
    let gateway = by_kind.get(&GapKind::NotBusinessApproved).and_then(|gaps| {
        gaps.iter().find(|(_, g)| {
            g.identity.as_ref().is_some_and(|i| i.principal == "llm-gateway" && i.account == "111122223333")
        })
    });
    if let Some((gap_id, _)) = gateway {
        use finops_domain::gateway_rules::{GatewayRule, GatewayRuleCommand, GatewayRuleSpec, SessionMatcher};
        let why = "Gateway users 1x are Support Bot's agents";
        let spec = GatewayRuleSpec {
            account: AccountId::parse("111122223333").expect("account"),
            role_name: "llm-gateway".into(),
            matcher: SessionMatcher::SessionName { pattern: "gw-user-1*".into() },
            workload_id: id("workload-support-bot"),
            effective_from: chrono::NaiveDate::from_ymd_opt(2026, 11, 1).expect("date"),
        };
        let rule = spec.rule_id();
        let record = GatewayRuleCommand::Record {
            spec,
            by: "fl-ana".into(),
            rationale: why.into(),
            at: at + Duration::minutes(25),
        };
        CommandHandler::<GatewayRule>::new(store.clone())
            .execute(
                &streams::gateway_rule(rule),
                &record,
                &ctx("fl-ana", "finops_lead", "gap-gateway-rule", Some(why)),
            )
            .await?;
        let outcome = ActionOutcome { resources: vec![format!("gatewayRules/{rule}")], ..Default::default() };
        let command = GapCommand::Act { action: GapActionKind::MapGatewaySessions, outcome, decider: decider(why, 25) };
        run(*gap_id, command, "map-gateway", why).await?;
        store.seal_committed().await?;
        let recorded = store.read_stream(&streams::gateway_rule(rule), finops_eventlog::StreamRead::all()).await?;
        if let Some(event) = recorded.last() {
            finops_processes::gaps::evaluate(&store, &engine, event).await?;
        }
        decided += 1;
    }
    Ok(DemoGaps { detected: by_kind.values().map(Vec::len).sum(), decided })
}

/// What the demo's cards show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoCards {
    /// Cards issued for the demo month.
    pub issued: usize,
    /// Sign-off decisions the demo made.
    pub decided: usize,
}

/// Seeds the Weekly Spend Cards of the demo month through the same card issuer and
/// commands the server runs: the first week's cards signed off (the first disputed and
/// resolved with an adjusted charge, the rest accepted) and its roll-ups approved by their
/// Portfolio Owners; in the second week one card disputed, the rest accepted; later weeks
/// waiting. (Support Bot has a card every week, Contract Drafts from the 9th.)
/// Idempotent: the card issuer and every decision recognise what they already recorded.
pub async fn seed_cards(
    store: Arc<dyn EventStore>,
    objects: Arc<dyn object_store::ObjectStore>,
    patterns: finops_attribution::RolePatterns,
    threshold_percent: u32,
) -> Result<DemoCards, finops_processes::ProcessError> {
    use finops_domain::gaps::Decider;
    use finops_domain::spend_cards::{
        CardCommand, CardStatus, DisputeOutcome, PortfolioRollup, RollupCard, RollupCommand, SpendCard, rollup_id,
    };
    let engine = finops_attribution::AttributionEngine::new(objects, patterns);
    store.seal_committed().await?;
    let ingested = store.read_stream(&streams::cur_period("2026-11"), finops_eventlog::StreamRead::all()).await?;
    let Some(batch) = ingested.last() else { return Ok(DemoCards { issued: 0, decided: 0 }) };
    // As of the log's last event, as the server's card issuer evaluates when it catches up.
    let head = store.seal_committed().await?.position;
    let last = store
        .read_all(finops_eventlog::AllRead::forwards_after(finops_eventlog::Position(head.0.saturating_sub(1)), 1))
        .await?;
    let trigger = last.first().unwrap_or(batch);
    let mut fold = finops_governance::state::StateFold::default();
    finops_processes::cards::issue_cards(&store, &engine, &mut fold, trigger, threshold_percent).await?;
    // The cards, in a fixed order: by week, then workload.
    let handler = CommandHandler::<SpendCard>::new(store.clone());
    let mut cards: Vec<(Uuid, SpendCard)> = Vec::new();
    finops_governance::state::each_event(store.as_ref(), |event| {
        if let Some(id) =
            event.stream_id.as_str().strip_prefix(streams::SPEND_CARD).and_then(|i| Uuid::parse_str(i).ok())
            && !cards.iter().any(|(c, _)| *c == id)
        {
            cards.push((id, SpendCard::default()));
        }
        Ok(())
    })
    .await?;
    for (id, card) in cards.iter_mut() {
        *card = handler.load(&streams::spend_card(*id)).await?.state;
    }
    cards.retain(|(_, c)| !c.versions.is_empty());
    cards.sort_by_key(|(_, c)| c.versions.last().map(|v| (v.figures.week, v.figures.workload_id)));
    let owners: std::collections::BTreeMap<Uuid, String> = finops_governance::state::state_as_of(store.as_ref(), None)
        .await?
        .workloads()
        .into_iter()
        .map(|w| (w.workload_id, w.owner))
        .collect();
    let owner = |workload: Uuid| owners.get(&workload).cloned().unwrap_or_default();
    let at: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z").expect("fixed").with_timezone(&Utc);
    let decider = |by: &str, role: &str, why: &str, minutes: i64| Decider {
        by: by.to_owned(),
        role: role.to_owned(),
        rationale: why.to_owned(),
        at: at + Duration::minutes(minutes),
    };
    let run = |id: Uuid, command: CardCommand, key: String, by: String, role: &'static str, why: String| {
        let handler = handler.clone();
        async move {
            let context = ctx(&by, role, &key, Some(&why));
            match handler.execute(&streams::spend_card(id), &command, &context).await {
                // Seeded before: the card moved on (a later demo decision); nothing to do.
                Ok(_) | Err(finops_governance::GovernanceError::Refused(_)) => Ok(()),
                Err(e) => Err(finops_processes::ProcessError::Command(e)),
            }
        }
    };
    let mut decided = 0;
    // The first week's cards are all signed off (one resolved after a dispute) and its
    // Customer Experience roll-up approved; the second week has one accepted and one
    // disputed card; the rest wait.
    let first_week = cards.first().and_then(|(_, c)| c.versions.last()).map(|v| v.figures.week);
    let mut disputed_one = false;
    for (i, (id, card)) in cards.iter().enumerate() {
        let Some(current) = card.versions.last() else { continue };
        let (workload, version) = (current.figures.workload_id, current.version);
        let po = owner(workload);
        let flagged: Vec<String> = current.figures.flagged_lines().into_iter().take(1).collect();
        if Some(current.figures.week) == first_week {
            if i == 0 && !flagged.is_empty() {
                let why = "That line is the data team's experiment, not ours".to_owned();
                let dispute =
                    CardCommand::Dispute { version, lines: flagged, decider: decider(&po, "product_owner", &why, 1) };
                run(*id, dispute, format!("card-dispute-{id}"), po.clone(), "product_owner", why).await?;
                let why = "Moved to the data team's card; the rest stands".to_owned();
                let charged = current.figures.actual_cents() * 9 / 10;
                let resolve = CardCommand::Resolve {
                    version,
                    outcome: DisputeOutcome::Adjusted { cents: charged },
                    decider: decider("fl-ana", "finops_lead", &why, 2),
                };
                run(*id, resolve, format!("card-resolve-{id}"), "fl-ana".into(), "finops_lead", why).await?;
            } else {
                let why = "Matches our load test".to_owned();
                let accept = CardCommand::Accept { version, decider: decider(&po, "product_owner", &why, 3) };
                run(*id, accept, format!("card-accept-{id}"), po.clone(), "product_owner", why).await?;
            }
            decided += 1;
        } else if current.figures.week == first_week.unwrap_or_default() + Duration::days(7) {
            if !disputed_one && !flagged.is_empty() {
                let why = "We did not run that model this week".to_owned();
                let dispute =
                    CardCommand::Dispute { version, lines: flagged, decider: decider(&po, "product_owner", &why, 4) };
                run(*id, dispute, format!("card-dispute-{id}"), po.clone(), "product_owner", why).await?;
                disputed_one = true;
            } else {
                let why = "As planned".to_owned();
                let accept = CardCommand::Accept { version, decider: decider(&po, "product_owner", &why, 5) };
                run(*id, accept, format!("card-accept-{id}"), po.clone(), "product_owner", why).await?;
            }
            decided += 1;
        }
    }
    // The first week's roll-ups, approved by their Portfolio Owners.
    if let Some(week) = first_week {
        let rollups = CommandHandler::<PortfolioRollup>::new(store.clone());
        let mut by_portfolio: std::collections::BTreeMap<Uuid, Vec<RollupCard>> = Default::default();
        for (id, _) in &cards {
            let card = handler.load(&streams::spend_card(*id)).await?.state;
            let Some(current) = card.versions.last() else { continue };
            if current.figures.week == week {
                by_portfolio.entry(current.figures.portfolio_id).or_default().push(RollupCard {
                    workload_id: current.figures.workload_id,
                    version: current.version,
                    status: card.status,
                    charged_cents: card.charged_cents().unwrap_or(0),
                });
            }
        }
        let org = CommandHandler::<finops_domain::org::Organisation>::new(store.clone())
            .load(&streams::organisation())
            .await?
            .state;
        for (portfolio, mut week_cards) in by_portfolio {
            if !week_cards.iter().all(|c| c.status.signed_off())
                || week_cards.iter().any(|c| c.status == CardStatus::Issued)
            {
                continue;
            }
            let Some(owner) = org.portfolios.get(&portfolio).map(|p| p.owner.clone()) else { continue };
            week_cards.sort_by_key(|c| c.workload_id);
            let why = "Every card signed off; chargeback-ready".to_owned();
            let approve = RollupCommand::Approve {
                portfolio_id: portfolio,
                week,
                cards: week_cards,
                decider: decider(&owner, "portfolio_owner", &why, 10),
            };
            let context = ctx(&owner, "portfolio_owner", &format!("rollup-{portfolio}-{week}"), Some(&why));
            match rollups.execute(&streams::spend_rollup(rollup_id(portfolio, week)), &approve, &context).await {
                Ok(_) | Err(finops_governance::GovernanceError::Refused(_)) => decided += 1,
                Err(e) => return Err(finops_processes::ProcessError::Command(e)),
            }
        }
    }
    Ok(DemoCards { issued: cards.len(), decided })
}

/// What the demo's investigations show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoInvestigations {
    /// Investigations the detector opened over the demo months.
    pub opened: u64,
}

/// Runs the investigation detector over every demo batch (as the server's detector does
/// when it catches up) — November's retry storm of Claims Triage's role on the 12th opens
/// a spend spike — then the FinOps Lead assigns that investigation to Juan, who notes what
/// he found; it stays open (investigating). Idempotent.
pub async fn seed_investigations(
    store: Arc<dyn EventStore>,
    objects: Arc<dyn object_store::ObjectStore>,
    patterns: finops_attribution::RolePatterns,
    settings: finops_domain::investigations::DetectorSettings,
) -> Result<DemoInvestigations, finops_processes::ProcessError> {
    use finops_domain::gaps::Decider;
    use finops_domain::investigations::{Investigation, InvestigationCommand, Signal, investigation_id};
    let engine = finops_attribution::AttributionEngine::new(objects, patterns);
    store.seal_committed().await?;
    let (mut opened, mut fold) = (0, finops_processes::investigations::DetectorFold::default());
    for period in ["2026-09", "2026-10", "2026-11"] {
        for batch in store.read_stream(&streams::cur_period(period), finops_eventlog::StreamRead::all()).await? {
            opened +=
                finops_processes::investigations::detect_batch(&store, &engine, &settings, &mut fold, &batch).await?;
        }
    }
    let subject = "principal/111122223333/finops-claims-triage-u88g";
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 12).expect("date");
    let id = investigation_id(Signal::SpendSpike, subject, day);
    let handler = CommandHandler::<Investigation>::new(store.clone());
    let stream = streams::investigation(id);
    if handler.load(&stream).await?.version == 0 {
        tracing::warn!(%subject, "the demo's retry storm opened no investigation");
        return Ok(DemoInvestigations { opened });
    }
    let t: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-13T09:00:00Z").expect("fixed").with_timezone(&Utc);
    let why = "Claims Triage's role: its Product Owner knows the batch";
    let decider = Decider { by: "fl-ana".into(), role: "finops_lead".into(), rationale: why.into(), at: t };
    let assign = InvestigationCommand::Assign { owner: "po-juan".into(), decider };
    handler.execute(&stream, &assign, &ctx("fl-ana", "finops_lead", "assign-claims-triage-spike", Some(why))).await?;
    let note = "Nightly triage batch retried every failed call without a cap; retries now capped at 3";
    let decider = Decider {
        by: "po-juan".into(),
        role: "product_owner".into(),
        rationale: note.into(),
        at: t + Duration::hours(2),
    };
    let command = InvestigationCommand::Note { note: note.into(), decider };
    handler
        .execute(&stream, &command, &ctx("po-juan", "product_owner", "note-claims-triage-spike", Some(note)))
        .await?;
    Ok(DemoInvestigations { opened })
}
