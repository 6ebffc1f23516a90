//! Allocation Gaps end to end (issue 11): a generated CUR month through the real ingest
//! path, the gap detector following the real log, the gaps view and its actions over real
//! gRPC — detection of every kind with the spend attribution reports, one action of each
//! kind with its side effect, automatic resolution after a claim and after a business
//! case, resolution and recall by decision, `as_of`, retries, visibility, a restatement,
//! and a rebuild of the read model with an identical digest.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use finops_e2e::{RunningServer, authed, fresh_postgres_url, fresh_sqlite_url};
use finops_governance::CommandContext;
use finops_ingest::{Format, Ingestor};
use finops_proto::v1 as pb;
use finops_proto::v1::attribution_service_client::AttributionServiceClient;
use finops_proto::v1::business_request_service_client::BusinessRequestServiceClient;
use finops_proto::v1::gap_service_client::GapServiceClient;
use finops_proto::v1::spaces_service_client::SpacesServiceClient;
use finops_server::auth::Role;
use tonic::Code;
use tonic::transport::Channel;
use uuid::Uuid;

const PERIOD: &str = "2026-11";
/// The role the generator's lines use that the test hands to Claims Triage (approved for
/// Claude 3 Haiku in us-west-2 only): its other regions and models are out of scope.
const HANDED_ROLE: &str = "finops-contract-drafts-ev2e";
const CX_ACCOUNT: &str = "111122223333";

fn operator(key: &str) -> CommandContext {
    CommandContext::operator("ops-kim", Uuid::new_v5(&Uuid::NAMESPACE_OID, key.as_bytes()))
}

fn demo_id(name: &str) -> Uuid {
    finops_server::demo::id(name)
}

struct Clients {
    gaps: GapServiceClient<Channel>,
    attribution: AttributionServiceClient<Channel>,
    spaces: SpacesServiceClient<Channel>,
    requests: BusinessRequestServiceClient<Channel>,
}

async fn list(gaps: &mut GapServiceClient<Channel>, token: &str, request: pb::ListGapsRequest) -> pb::ListGapsResponse {
    gaps.list_gaps(authed(request, token)).await.unwrap().into_inner()
}

fn all(kind: &str, state: &str) -> pb::ListGapsRequest {
    pb::ListGapsRequest { kind: kind.into(), state: state.into(), page_size: 1000, ..Default::default() }
}

/// Waits until the detector (and the read model) show what `ready` wants.
async fn until(
    gaps: &mut GapServiceClient<Channel>,
    token: &str,
    request: pb::ListGapsRequest,
    ready: impl Fn(&pb::ListGapsResponse) -> bool,
) -> pb::ListGapsResponse {
    let mut last = None;
    for _ in 0..1200 {
        let answer = list(gaps, token, request.clone()).await;
        if ready(&answer) {
            return answer;
        }
        last = Some(answer);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the gaps never reached the expected state; last: {:#?}", last.map(|l| l.totals));
}

async fn gap_until(
    gaps: &mut GapServiceClient<Channel>,
    token: &str,
    name: &str,
    ready: impl Fn(&pb::Gap) -> bool,
) -> pb::Gap {
    let mut last = None;
    for _ in 0..1200 {
        let gap = gaps
            .get_gap(authed(pb::GetGapRequest { name: name.into(), as_of: String::new() }, token))
            .await
            .unwrap()
            .into_inner();
        if ready(&gap) {
            return gap;
        }
        last = Some(gap);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} never reached the expected state; last: {last:#?}");
}

/// Waits until the detector and the gap read model have caught up with the head.
async fn settle(store: &Arc<dyn finops_eventlog::EventStore>, url: &str) {
    let models = finops_projections::ReadModels::open(url).await.unwrap();
    for _ in 0..1200 {
        store.seal_committed().await.unwrap();
        let head = store.stats().await.unwrap().head.position.0;
        let detector = models.process_checkpoint(finops_processes::GapDetector::NAME).await.unwrap();
        let lifecycle = models.checkpoint(finops_projections::GapLifecycle::NAME).await.unwrap();
        if detector >= head && lifecycle >= head && store.stats().await.unwrap().head.position.0 == head {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the detector and the read model never caught up");
}

/// Once the detector and the read model have caught up, a rebuild of the gap read model
/// from the log gives the digest it had.
async fn rebuild_gives_the_same_digest(store: &Arc<dyn finops_eventlog::EventStore>, url: &str) {
    settle(store, url).await;
    let models = finops_projections::ReadModels::open(url).await.unwrap();
    let runner =
        finops_projections::ProjectionRunner::new(store.clone(), models, finops_projections::governance_projectors());
    let report = runner.rebuild(finops_projections::GapLifecycle::NAME).await.unwrap();
    assert_eq!(report.digest_before, report.digest_after);
}

fn act(name: &str, action: &str, rationale: &str) -> pb::ActOnGapRequest {
    pb::ActOnGapRequest { name: name.into(), action: action.into(), rationale: rationale.into(), ..Default::default() }
}

/// A server with the demo organisation, an ingestor into it and a scratch folder.
async fn demo_server(url: &str) -> (RunningServer, Ingestor, std::path::PathBuf) {
    let server = RunningServer::start(url).await;
    finops_server::demo::seed(server.store.clone(), "arn:aws:sso:::instance/ssoins-demo").await.unwrap();
    let objects: Arc<dyn object_store::ObjectStore> =
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&server.objects).unwrap());
    let ingestor = Ingestor::new(server.store.clone(), objects);
    let dir = std::env::temp_dir().join(format!("finops-gaps-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    (server, ingestor, dir)
}

/// The generated month of the tests (a restatement of it when `restatement` > 0), in `dir`.
fn month(dir: &std::path::Path, restatement: u32) -> std::path::PathBuf {
    let path = dir.join(format!("month-{restatement}.csv"));
    let spec = finops_cur::synthetic::MonthSpec { period: PERIOD.into(), rows: 3_000, seed: 7, restatement };
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    finops_cur::synthetic::write_month(&spec, &mut file).unwrap();
    drop(file);
    path
}

async fn every_gap_loop(url: &str) {
    let (server, ingestor, dir) = demo_server(url).await;
    let store = server.store.clone();
    let month = |restatement: u32| month(&dir, restatement);
    let channel = tonic::transport::Endpoint::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
    let mut c = Clients {
        gaps: GapServiceClient::new(channel.clone()),
        attribution: AttributionServiceClient::new(channel.clone()),
        spaces: SpacesServiceClient::new(channel.clone()),
        requests: BusinessRequestServiceClient::new(channel),
    };
    let fl = server.token("fl-ana", Role::FinopsLead);
    let finance = server.token("fin-eva", Role::Finance);
    let juan = server.token("po-juan", Role::ProductOwner);

    ingestor.ingest_file(&month(0), Format::Cur, &operator("month-0")).await.unwrap();
    // The FinOps Lead hands a role the generator uses to Claims Triage: spend outside its
    // approval appears, and Claims Triage (no business case) becomes unbacked.
    let triage_request = format!("businessRequests/{}", demo_id("claims-triage"));
    let support_request = format!("businessRequests/{}", demo_id("support-bot"));
    c.spaces
        .reassign_resource(authed(
            pb::ReassignResourceRequest {
                business_request: triage_request.clone(),
                resource: Some(pb::reassign_resource_request::Resource::Role(pb::IamRoleRef {
                    account_id: CX_ACCOUNT.into(),
                    role_name_or_arn: HANDED_ROLE.into(),
                })),
                effective_from: "2026-11-01".into(),
                rationale: "The contract drafts job now runs for Claims Triage".into(),
                request_id: String::new(),
            },
            &fl,
        ))
        .await
        .unwrap();

    // 1. Every kind is detected, with the spend attribution reports for it (the detector
    // follows the log, so the test waits until it has caught up with the reassignment).
    let attribution = c
        .attribution
        .attribute(authed(
            pb::AttributeRequest { period: PERIOD.into(), group_by: vec!["gap".into()], as_of: String::new() },
            &finance,
        ))
        .await
        .unwrap()
        .into_inner();
    let by_kind: BTreeMap<String, i64> = attribution.rows.iter().map(|r| (r.keys[0].clone(), r.cost_cents)).collect();
    // Each gap's cents are rounded once, so a kind's sum may differ from the kind's total by
    // half a cent per gap at most.
    let agrees = |t: &pb::GapKindTotal| {
        t.kind == "unbacked_ai_workload"
            || by_kind.get(&t.kind).is_some_and(|expected| (t.cents - expected).abs() <= i64::from(t.gaps) / 2 + 1)
    };
    let listed =
        until(&mut c.gaps, &finance, all("", "active"), |l| l.totals.len() == 7 && l.totals.iter().all(agrees)).await;
    let triage_spend = c
        .attribution
        .attribute(authed(
            pb::AttributeRequest { period: PERIOD.into(), group_by: vec!["workload".into()], as_of: String::new() },
            &finance,
        ))
        .await
        .unwrap()
        .into_inner()
        .rows
        .into_iter()
        .find(|r| r.keys[0] == "Claims Triage")
        .expect("Claims Triage is charged for the handed role")
        .cost_cents;
    let unbacked = list(&mut c.gaps, &finance, all("unbacked_ai_workload", "")).await;
    assert_eq!(unbacked.gaps.len(), 1);
    assert_eq!(unbacked.gaps[0].total_cents, triage_spend);
    assert_eq!(unbacked.gaps[0].concerns, vec!["po-juan"]);
    let scenarios: Vec<&str> = listed.totals.iter().map(|t| t.scenario.as_str()).collect();
    assert_eq!(
        scenarios,
        vec![
            "Role Recommendation",
            "Not Business Approved",
            "Out of Approved Scope",
            "Unclaimed AI Allocation",
            "Resource Allocation",
            "Attribution Not Enabled",
            "Unbacked AI Workload"
        ]
    );
    assert!(listed.gaps.iter().all(|g| g.history.is_empty()), "the trail is GetGap's");
    // Detecting again is the same gap: the ids derive from cause and anchor.
    let first_names: Vec<String> = listed.gaps.iter().map(|g| g.name.clone()).collect();
    let gap_of = |kind: &str| listed.gaps.iter().find(|g| g.kind == kind).unwrap().clone();
    let t_detected = Utc::now();

    // 2. One action of each kind, each with its side effect, each moving the gap to actioned.
    let admin = gap_of("unattributed_spend");
    let recommend = pb::ActOnGapRequest {
        product_id: demo_id("Engineering Productivity").to_string(),
        request_id: Uuid::now_v7().to_string(),
        ..act(&admin.name, "recommend_dedicated_role", "Admins run the nightly batch: give it its own role")
    };
    let recommended = c.gaps.act_on_gap(authed(recommend.clone(), &fl)).await.unwrap().into_inner();
    // A retry of the action (same request id) answers the same and creates nothing more.
    // (Counted by type: the detector, following the log, writes its own events meanwhile.)
    let decisions = |stats: finops_eventlog::LogStats| -> Vec<(String, u64)> {
        stats
            .events_by_type
            .into_iter()
            .filter(|(t, _)| t == "BusinessRequestSubmitted" || t == "GapActioned")
            .collect()
    };
    let before = decisions(server.store.stats().await.unwrap());
    let retried = c.gaps.act_on_gap(authed(recommend, &fl)).await.unwrap().into_inner();
    assert_eq!(retried.last_action, recommended.last_action);
    assert_eq!(retried.version, recommended.version);
    assert_eq!(decisions(server.store.stats().await.unwrap()), before, "the retry wrote nothing");
    assert_eq!(recommended.status, "actioned");
    let created = &recommended.last_action.as_ref().unwrap().resources[0];
    let request = c
        .requests
        .get_business_request(authed(
            pb::GetBusinessRequestRequest { as_of: String::new(), name: created.clone() },
            &fl,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(request.requested_by, "po-juan", "the product's owner");
    let correlation = recommended.history.last().unwrap().correlation_id.clone();
    assert!(!correlation.is_empty());

    let unapproved =
        listed.gaps.iter().find(|g| g.kind == "not_business_approved" && g.principal == "llm-gateway").unwrap();
    let blocked = c
        .gaps
        .act_on_gap(authed(act(&unapproved.name, "block", "Not approved for Bedrock"), &fl))
        .await
        .unwrap()
        .into_inner();
    let command = &blocked.last_action.as_ref().unwrap().commands[0];
    assert!(command.starts_with("aws iam put-role-policy --role-name llm-gateway "), "{command}");

    // Approve by linking: the shared data-science role is claimed for Claims Triage on its
    // owner's behalf; its spend is then charged, so the gap resolves by itself.
    let shared = listed
        .gaps
        .iter()
        .find(|g| g.kind == "not_business_approved" && g.principal == "data-science-shared" && g.account == CX_ACCOUNT)
        .expect("the shared notebook role is not approved")
        .clone();
    let approved = c
        .gaps
        .act_on_gap(authed(
            pb::ActOnGapRequest {
                business_request: triage_request.clone(),
                ..act(&shared.name, "approve", "The notebooks are Claims Triage's experiments")
            },
            &fl,
        ))
        .await
        .unwrap()
        .into_inner();
    let claim = &approved.last_action.as_ref().unwrap().resources[0];
    assert_eq!(claim, &format!("claims/role:{CX_ACCOUNT}:data-science-shared"));
    gap_until(&mut c.gaps, &fl, &shared.name, |g| g.status == "resolved").await;

    let unclaimed = gap_of("unclaimed_ai_allocation");
    let notify = pb::ActOnGapRequest {
        product_owner: "po-maria".into(),
        ..act(&unclaimed.name, "notify_product_owner", "Whose role is this?")
    };
    let notified = c.gaps.act_on_gap(authed(notify, &fl)).await.unwrap().into_inner();
    let to = notified.last_action.as_ref().unwrap().notification.as_ref().unwrap().to.clone();
    assert!(to == "po-maria" || unclaimed.concerns.contains(&to), "{to}");

    let no_identity = gap_of("attribution_not_enabled");
    let guided = c
        .gaps
        .act_on_gap(authed(act(&no_identity.name, "guided_cur_setup", "Turn caller identity on"), &fl))
        .await
        .unwrap()
        .into_inner();
    assert!(guided.last_action.as_ref().unwrap().commands[0].contains("INCLUDE_IAM_PRINCIPAL_DATA"));

    // An illegal transition names the current state; a wrong action names the right one.
    let again =
        c.gaps.act_on_gap(authed(act(&no_identity.name, "guided_cur_setup", "Once more"), &fl)).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert!(again.message().contains("actioned"), "{}", again.message());
    let wrong = c.gaps.act_on_gap(authed(act(&admin.name, "block", "x"), &fl)).await.unwrap_err();
    assert_eq!(wrong.code(), Code::InvalidArgument);
    // Only the FinOps Lead acts; nobody else writes anything.
    let denied = c.gaps.act_on_gap(authed(act(&admin.name, "block", "x"), &finance)).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);

    // A retry with the same request id answers from the log and writes nothing.
    let scope = gap_of("out_of_approved_scope");
    let resolve = pb::ResolveGapRequest {
        name: scope.name.clone(),
        rationale: "Accepted: the drafts job may use Sonnet this month".into(),
        request_id: Uuid::now_v7().to_string(),
    };
    let resolved = c.gaps.resolve_gap(authed(resolve.clone(), &fl)).await.unwrap().into_inner();
    assert_eq!(resolved.status, "resolved");
    let retried = c.gaps.resolve_gap(authed(resolve, &fl)).await.unwrap().into_inner();
    assert_eq!(retried.version, resolved.version, "the retry wrote nothing");
    // Recall: back to the state before, the original decision kept in the trail.
    let recalled = c
        .gaps
        .recall_gap_decision(authed(
            pb::RecallGapDecisionRequest {
                name: scope.name.clone(),
                rationale: "Sonnet was not agreed after all".into(),
                request_id: String::new(),
            },
            &fl,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((recalled.status.as_str(), recalled.recalled), ("active", true));
    let events: Vec<&str> = recalled.history.iter().map(|h| h.event.as_str()).collect();
    assert!(events.ends_with(&["GapResolved", "GapRecalled"]), "{events:?}");
    let decision = recalled.history.iter().find(|h| h.event == "GapResolved").unwrap();
    assert_eq!((decision.who.as_str(), decision.role.as_str()), ("fl-ana", "finops_lead"));
    assert!(decision.why.starts_with("Accepted"));

    // Add Scope: the approval (and the catalog entry) extended to a region Claims Triage's
    // Haiku spend ran in; the detector then finds that spend in scope and resolves the gap.
    let haiku = "anthropic.claude-3-haiku-20240307-v1:0";
    let elsewhere = listed
        .gaps
        .iter()
        .find(|g| {
            g.kind == "out_of_approved_scope"
                && g.anchor.ends_with(haiku)
                && g.anchor.contains(&format!("/{CX_ACCOUNT}/"))
                && g.name != scope.name
        })
        .expect("Haiku spend outside us-west-2")
        .clone();
    let extended = c
        .gaps
        .act_on_gap(authed(act(&elsewhere.name, "add_scope", "Claims Triage also serves this region"), &fl))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(extended.last_action.as_ref().unwrap().resources[0], triage_request);
    gap_until(&mut c.gaps, &fl, &elsewhere.name, |g| g.status == "resolved").await;
    // Another model is another request: Add Scope refuses it; the Cloud Engineer is flagged.
    let other_model = listed
        .gaps
        .iter()
        .find(|g| g.kind == "out_of_approved_scope" && !g.anchor.ends_with(haiku) && g.name != scope.name)
        .expect("spend on another model")
        .clone();
    let refused = c.gaps.act_on_gap(authed(act(&other_model.name, "add_scope", "x"), &fl)).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{}", refused.message());
    let flagged = c
        .gaps
        .act_on_gap(authed(act(&other_model.name, "flag_for_cloud_engineer", "Move it back to Haiku"), &fl))
        .await
        .unwrap()
        .into_inner();
    let task = flagged.last_action.as_ref().unwrap().resources[0].clone();
    assert!(task.starts_with("tasks/"), "{task}");
    let mut tasks = finops_proto::v1::task_service_client::TaskServiceClient::new(
        tonic::transport::Endpoint::from_shared(server.endpoint()).unwrap().connect().await.unwrap(),
    );
    let ce = server.token("ce-li", Role::CloudEngineer);
    let created = tasks
        .get_task(authed(pb::GetTaskRequest { as_of: String::new(), name: task.clone() }, &ce))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.kind, "move_out_of_scope_usage");

    // 3. Claim in Spaces: the guardrail goes to Support Bot; the detector sees the claim and
    // resolves the gap by itself, naming the event that cleared it.
    let guardrail = gap_of("unallocated_guardrail");
    let claim = pb::ActOnGapRequest {
        business_request: support_request.clone(),
        ..act(&guardrail.name, "claim_in_spaces", "Support Bot's guardrail")
    };
    let claimed = c.gaps.act_on_gap(authed(claim, &fl)).await.unwrap().into_inner();
    assert_eq!(claimed.status, "actioned");
    assert!(claimed.last_action.as_ref().unwrap().resources[0].starts_with("claims/guardrail:"));
    let cleared = gap_until(&mut c.gaps, &fl, &guardrail.name, |g| g.status == "resolved").await;
    let last = cleared.history.last().unwrap();
    assert_eq!((last.event.as_str(), last.who.as_str()), ("GapCauseCleared", "gap-detector"));
    assert!(last.why.contains("ResourceReassigned"), "{}", last.why);

    // Request Business Case: a notification to the owner; declaring the case clears it.
    let unbacked = &unbacked.gaps[0];
    let asked = c
        .gaps
        .act_on_gap(authed(
            pb::ActOnGapRequest {
                due_date: "2026-12-15".into(),
                ..act(&unbacked.name, "request_business_case", "Finance needs the intended value")
            },
            &fl,
        ))
        .await
        .unwrap()
        .into_inner();
    let note = asked.last_action.as_ref().unwrap().notification.clone().unwrap();
    assert_eq!((note.to.as_str(), note.due.as_str()), ("po-juan", "2026-12-15"));
    let mut inbox = Vec::new();
    for _ in 0..400 {
        inbox = c
            .gaps
            .list_notifications(authed(
                pb::ListNotificationsRequest { page_size: 50, page_token: String::new(), as_of: String::new() },
                &juan,
            ))
            .await
            .unwrap()
            .into_inner()
            .notifications;
        if inbox.iter().any(|n| n.gap == unbacked.name) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(inbox.iter().any(|n| n.gap == unbacked.name && n.due == "2026-12-15"), "{inbox:?}");
    assert!(inbox.iter().all(|n| n.to == "po-juan"), "a Product Owner sees only their own");
    // As of before the request, it had not been sent; as of now, from the log, it has.
    let inbox_at = |as_of: String| {
        let mut gaps = c.gaps.clone();
        let juan = juan.clone();
        async move {
            gaps.list_notifications(authed(
                pb::ListNotificationsRequest { page_size: 50, page_token: String::new(), as_of },
                &juan,
            ))
            .await
            .unwrap()
            .into_inner()
            .notifications
        }
    };
    assert!(!inbox_at(t_detected.to_rfc3339()).await.iter().any(|n| n.gap == unbacked.name));
    assert_eq!(inbox_at(Utc::now().to_rfc3339()).await, inbox);
    c.spaces
        .declare_business_case(authed(
            pb::DeclareBusinessCaseRequest {
                business_request: triage_request.clone(),
                business_case: Some(pb::BusinessCase {
                    annual_cost_saving_cents: Some(9_000_000),
                    annual_revenue_driving_cents: None,
                }),
                request_id: String::new(),
            },
            &juan,
        ))
        .await
        .unwrap();
    gap_until(&mut c.gaps, &fl, &unbacked.name, |g| g.status == "resolved").await;

    // 4. as_of: before the actions, the admin's gap was active; asked again, the same.
    for _ in 0..2 {
        let then = c
            .gaps
            .get_gap(authed(pb::GetGapRequest { name: admin.name.clone(), as_of: t_detected.to_rfc3339() }, &finance))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(then.status, "active");
    }

    // 5. Visibility: a Product Owner sees the gaps that concern them; a Cloud Engineer none.
    let mine = list(&mut c.gaps, &juan, all("", "")).await;
    assert!(!mine.gaps.is_empty());
    assert!(
        mine.gaps.iter().all(|g| g.concerns == vec!["po-juan"]),
        "{:?}",
        mine.gaps.iter().map(|g| &g.concerns).collect::<Vec<_>>()
    );
    settle(&store, url).await;
    let everything = list(&mut c.gaps, &fl, all("", "")).await.gaps.len();
    let auditor = list(&mut c.gaps, &server.token("aud-kim", Role::Auditor), all("", "")).await;
    assert_eq!(auditor.gaps.len(), everything, "an auditor reads every gap");
    for (who, role) in [("ce-li", Role::CloudEngineer), ("pf-omar", Role::PortfolioOwner), ("ops-kim", Role::Operator)]
    {
        let denied = c.gaps.list_gaps(authed(all("", ""), &server.token(who, role))).await.unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied, "{who}");
    }
    let hidden = c
        .gaps
        .get_gap(authed(pb::GetGapRequest { name: admin.name.clone(), as_of: String::new() }, &juan))
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
    let bad = c
        .gaps
        .list_gaps(authed(
            pb::ListGapsRequest {
                kind: "colour".into(),
                state: "open".into(),
                period: "2026-13".into(),
                ..Default::default()
            },
            &fl,
        ))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(["kind", "state", "period"].iter().all(|f| bad.message().contains(f)), "{}", bad.message());

    // The Declared AI Value Opportunity, beside the open gaps.
    let value = c
        .gaps
        .get_value_opportunity(authed(pb::GetValueOpportunityRequest { as_of: String::new() }, &finance))
        .await
        .unwrap()
        .into_inner();
    assert!(value.annual_cost_saving_cents >= 9_000_000);
    assert!(value.open_gaps > 0 && value.open_gap_cents > 0);

    // 6. A restatement updates spend without duplicating gaps.
    let before = list(&mut c.gaps, &fl, all("", "")).await;
    let first_batch = before.gaps.iter().find(|g| g.name == admin.name).unwrap().spend[0].batch.clone();
    ingestor.ingest_file(&month(1), Format::Cur, &operator("month-1")).await.unwrap();
    let after = until(&mut c.gaps, &fl, all("", ""), |l| {
        l.gaps.iter().find(|g| g.name == admin.name).is_some_and(|g| g.spend[0].batch != first_batch)
    })
    .await;
    for name in &first_names {
        assert_eq!(after.gaps.iter().filter(|g| &g.name == name).count(), 1, "{name} once");
    }
    let restated = after.gaps.iter().find(|g| g.name == admin.name).unwrap();
    assert_eq!(restated.status, "actioned", "a restatement does not undo a decision");
    assert_ne!(restated.total_cents, 0);

    // 7. A detector killed mid-run and started again — or run from an earlier checkpoint —
    // evaluates triggers it already handled: nothing is written twice.
    let gap_events = |stats: finops_eventlog::LogStats| -> u64 {
        stats.events_by_type.iter().filter(|(t, _)| t.starts_with("Gap")).map(|(_, n)| n).sum()
    };
    settle(&store, url).await;
    let before = gap_events(store.stats().await.unwrap());
    let engine = finops_attribution::AttributionEngine::new(
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&server.objects).unwrap()),
        Default::default(),
    );
    let mut after = finops_eventlog::Position::START;
    let mut triggers = 0;
    loop {
        let page = store.read_all(finops_eventlog::AllRead::forwards_after(after, 1_000)).await.unwrap();
        let Some(last) = page.last().and_then(|e| e.position) else { break };
        for event in page.iter().filter(|e| {
            [finops_governance::streams::CUR_PERIOD, finops_governance::streams::CLAIM]
                .iter()
                .any(|p| e.stream_id.as_str().starts_with(p))
        }) {
            finops_processes::gaps::evaluate(&store, &engine, event).await.unwrap();
            triggers += 1;
        }
        after = last;
    }
    assert!(triggers >= 3, "ingests and claims re-evaluated: {triggers}");
    assert_eq!(gap_events(store.stats().await.unwrap()), before, "nothing written twice");
    // The detector itself from checkpoint 0 (its checkpoint lost with a read-model database):
    let fresh = finops_projections::ReadModels::open(&format!("{}?mode=rwc", fresh_sqlite_url())).await.unwrap();
    let rerun = finops_processes::GapDetector::new(store.clone(), fresh, engine.clone()).run_once().await.unwrap();
    assert!(rerun.iter().all(|e| e.touched == 0), "{rerun:?}");
    assert_eq!(gap_events(store.stats().await.unwrap()), before, "nothing written twice");

    // 8. The read model rebuilt from the log is the same, to the byte (once the detector
    // and the read model have caught up with the head: nothing is in flight).
    rebuild_gives_the_same_digest(&store, url).await;

    std::fs::remove_dir_all(dir).unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_gap_is_detected_acted_on_and_resolved_on_postgres() {
    let Some(url) = fresh_postgres_url().await else { return };
    every_gap_loop(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_gap_is_detected_acted_on_and_resolved_on_sqlite() {
    every_gap_loop(&fresh_sqlite_url()).await;
}

/// The LLM gateway role's AI spend in the CX account, as the raw file says, split the way
/// the rules should split it: (Support Bot's, Claims Triage's, nobody's), in units of
/// 10^-10 dollars. The session rule takes `gw-user-1*` sessions from the 1st through
/// `session_until` (no rule: `None`);
/// `tenant_rule` takes tenant-2's calls (a principal tag) from the 15th, ahead of it.
fn gateway_split(file: &std::path::Path, session_until: Option<u32>, tenant_rule: bool) -> (i128, i128, i128) {
    use chrono::Datelike;
    let mut csv = finops_cur::csv_lines::CurCsv::open(
        &file.display().to_string(),
        std::io::BufReader::new(std::fs::File::open(file).unwrap()),
    )
    .unwrap();
    let (mut support, mut triage, mut nobody) = (0, 0, 0);
    for line in &mut csv {
        let line = line.unwrap();
        let facts = finops_cur::ai_facts::AiFacts::of(&line);
        if facts.platform.is_none() || facts.principal_name != "llm-gateway" || facts.principal_account != CX_ACCOUNT {
            continue;
        }
        let cost = finops_attribution::lines::money(line.unblended_cost);
        let day = line.usage_start.day();
        if tenant_rule && day >= 15 && facts.principal_tags.contains("\u{1f}tenant\u{1e}tenant-2\u{1f}") {
            triage += cost;
        } else if session_until.is_some_and(|last| day <= last) && facts.session.starts_with("gw-user-1") {
            support += cost;
        } else {
            nobody += cost;
        }
    }
    (support, triage, nobody)
}

/// The gateway role's spend in the CX account per workload name ("" for nobody), in cents.
async fn gateway_attribution(
    attribution: &mut AttributionServiceClient<Channel>,
    token: &str,
    as_of: &str,
) -> BTreeMap<String, i64> {
    let rows = attribution
        .attribute(authed(
            pb::AttributeRequest {
                period: PERIOD.into(),
                group_by: vec!["workload".into(), "account".into(), "principal".into()],
                as_of: as_of.into(),
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner()
        .rows;
    let mut out = BTreeMap::new();
    for r in rows.into_iter().filter(|r| r.keys[1] == CX_ACCOUNT && r.keys[2] == "llm-gateway") {
        *out.entry(r.keys[0].clone()).or_default() += r.cost_cents;
    }
    out
}

fn near(actual: Option<&i64>, raw: i128) -> bool {
    let expected = finops_attribution::cents(raw, finops_attribution::lines::MONEY_SCALE);
    actual.copied().unwrap_or(0).abs_diff(expected) <= 1
}

/// Gateway mapping rules (issue 11 item 5): the LLM gateway fronts many workloads through
/// one role; a rule from the gap moves the matching sessions' spend to a workload, a tag
/// rule recorded later takes its tenant ahead of it from its day, retiring a rule hands
/// its days back, `as_of` before a rule answers as before, and every rule is in the
/// history with who, role and why.
async fn gateway_rules_loop(url: &str) {
    use finops_proto::v1::gateway_rule_service_client::GatewayRuleServiceClient;
    let (server, ingestor, dir) = demo_server(url).await;
    let store = server.store.clone();
    let path = month(&dir, 0);
    ingestor.ingest_file(&path, Format::Cur, &operator("month")).await.unwrap();
    let channel = tonic::transport::Endpoint::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
    let mut gaps = GapServiceClient::new(channel.clone());
    let mut attribution = AttributionServiceClient::new(channel.clone());
    let mut rules = GatewayRuleServiceClient::new(channel);
    let fl = server.token("fl-ana", Role::FinopsLead);
    let finance = server.token("fin-eva", Role::Finance);
    let support_request = format!("businessRequests/{}", demo_id("support-bot"));
    let triage_request = format!("businessRequests/{}", demo_id("claims-triage"));

    let listed = until(&mut gaps, &finance, all("not_business_approved", ""), |l| {
        l.gaps.iter().any(|g| g.principal == "llm-gateway" && g.account == CX_ACCOUNT)
    })
    .await;
    let gateway = listed.gaps.iter().find(|g| g.principal == "llm-gateway" && g.account == CX_ACCOUNT).unwrap().clone();
    let (none, _, all_of_it) = gateway_split(&path, None, false);
    assert_eq!(none, 0);
    let before = gateway_attribution(&mut attribution, &finance, "").await;
    assert!(near(before.get(""), all_of_it), "nobody is charged for the gateway yet: {before:?}");
    assert!(near(Some(&gateway.total_cents), all_of_it));
    settle(&store, url).await;
    let t_before = Utc::now();

    // 1. From the gap: the gateway's `gw-user-1*` sessions are Support Bot's.
    let mapped = gaps
        .act_on_gap(authed(
            pb::ActOnGapRequest {
                business_request: support_request.clone(),
                session_pattern: "gw-user-1*".into(),
                ..act(&gateway.name, "map_gateway_sessions", "Users 1x are the support agents behind the gateway")
            },
            &fl,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mapped.status, "actioned");
    let rule_name = mapped.last_action.as_ref().unwrap().resources[0].clone();
    assert!(rule_name.starts_with("gatewayRules/"), "{rule_name}");
    // The detector may have noted the rule in the trail around the action: find the action.
    let entry = mapped.history.iter().rev().find(|e| e.event == "GapActioned").unwrap();
    assert_eq!((entry.who.as_str(), entry.role.as_str()), ("fl-ana", "finops_lead"));
    assert!(entry.what.contains("map_gateway_sessions"), "{entry:?}");
    let (support, _, rest) = gateway_split(&path, Some(31), false);
    assert!(support > 0 && rest > 0, "the sample has both kinds of session");
    let after = gateway_attribution(&mut attribution, &finance, "").await;
    assert!(near(after.get("Support Bot"), support), "{after:?}");
    assert!(near(after.get(""), rest), "{after:?}");
    // The detector moves the gap's spend too: what is left is nobody's.
    let moved = gap_until(&mut gaps, &finance, &gateway.name, |g| {
        g.spend.first().is_some_and(|s| s.cents != gateway.total_cents)
    })
    .await;
    assert!(near(Some(&moved.total_cents), rest), "{} vs {rest}", moved.total_cents);
    // As of before the rule, the answer is the one given then.
    assert_eq!(gateway_attribution(&mut attribution, &finance, &t_before.to_rfc3339()).await, before);
    // The FOCUS export says how the mapped rows were charged.
    let focus = attribution
        .export(authed(
            pb::ExportRequest { period: PERIOD.into(), as_of: String::new(), format: pb::ExportFormat::Focus as i32 },
            &finance,
        ))
        .await
        .unwrap()
        .into_inner();
    let text = String::from_utf8(focus.content).unwrap();
    let mapped_rows: Vec<&str> = text.lines().filter(|l| l.contains(",gateway_rule,")).collect();
    assert!(
        !mapped_rows.is_empty() && mapped_rows.iter().all(|l| l.contains("Support Bot") && l.contains("llm-gateway"))
    );

    // 2. A tag rule, newer, takes tenant-2 from the 15th — ahead of the session rule.
    let tag_rule = pb::RecordGatewayRuleRequest {
        account: CX_ACCOUNT.into(),
        role_name: "llm-gateway".into(),
        principal_tag: "tenant=tenant-2".into(),
        business_request: triage_request.clone(),
        effective_from: "2026-11-15".into(),
        rationale: "Tenant 2 is the claims desk".into(),
        request_id: Uuid::now_v7().to_string(),
        ..Default::default()
    };
    let recorded = rules.record_gateway_rule(authed(tag_rule.clone(), &fl)).await.unwrap().into_inner();
    assert_eq!((recorded.state.as_str(), recorded.principal_tag.as_str()), ("in_force", "tenant=tenant-2"));
    let events = server.store.stats().await.unwrap().events_by_type;
    let retried = rules.record_gateway_rule(authed(tag_rule, &fl)).await.unwrap().into_inner();
    assert_eq!(retried, recorded, "a retry answers the same rule");
    let recorded_count = |e: &[(String, u64)]| e.iter().find(|(t, _)| t == "GatewayRuleRecorded").map(|x| x.1);
    assert_eq!(recorded_count(&server.store.stats().await.unwrap().events_by_type), recorded_count(&events));
    let (support, triage, rest) = gateway_split(&path, Some(31), true);
    assert!(triage > 0);
    let after = gateway_attribution(&mut attribution, &finance, "").await;
    assert!(near(after.get("Support Bot"), support), "{after:?}");
    assert!(near(after.get("Claims Triage"), triage), "{after:?}");
    assert!(near(after.get(""), rest), "{after:?}");

    // 3. Retiring the session rule after the 9th hands its later days back to nobody.
    let retired = rules
        .retire_gateway_rule(authed(
            pb::RetireGatewayRuleRequest {
                name: rule_name.clone(),
                effective_until: "2026-11-09".into(),
                rationale: "The support agents moved to their own role on the 10th".into(),
                request_id: String::new(),
            },
            &fl,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((retired.state.as_str(), retired.effective_until.as_str()), ("retired", "2026-11-09"));
    assert_eq!(retired.history.len(), 2);
    assert_eq!(retired.history[1].why, "The support agents moved to their own role on the 10th");
    let (support, triage, rest) = gateway_split(&path, Some(9), true);
    let after = gateway_attribution(&mut attribution, &finance, "").await;
    assert!(near(after.get("Support Bot"), support), "{after:?}");
    assert!(near(after.get("Claims Triage"), triage), "{after:?}");
    assert!(near(after.get(""), rest), "{after:?}");

    // 3b. Every change of a rule on the gateway's role is in the gap's trail — recorded
    // from the gap or through the rule API, recorded or retired — with who, role, why and
    // the rule's correlation id; as of an instant before a note, the note is not there.
    let noted = |g: &pb::Gap, rule: &str, change: &str| {
        g.history
            .iter()
            .find(|h| {
                h.event == "GapGatewayRuleChanged" && h.what.starts_with(&format!("gateway rule {rule} {change}"))
            })
            .cloned()
    };
    let trail = gap_until(&mut gaps, &finance, &gateway.name, |g| {
        noted(g, &rule_name, "retired").is_some() && noted(g, &recorded.name, "recorded").is_some()
    })
    .await;
    assert!(noted(&trail, &rule_name, "recorded").is_some(), "the rule from the gap is noted too");
    let tag_note = noted(&trail, &recorded.name, "recorded").unwrap();
    assert_eq!(
        (tag_note.who.as_str(), tag_note.role.as_str(), tag_note.why.as_str()),
        ("fl-ana", "finops_lead", "Tenant 2 is the claims desk")
    );
    assert!(tag_note.what.contains("principal tag iamPrincipal/tenant=tenant-2"), "{}", tag_note.what);
    assert_eq!(tag_note.correlation_id, recorded.history[0].correlation_id);
    let retired_note = noted(&trail, &rule_name, "retired").unwrap();
    assert_eq!(retired_note.why, "The support agents moved to their own role on the 10th");
    assert!(retired_note.what.contains("after 2026-11-09"), "{}", retired_note.what);
    assert_eq!(retired_note.correlation_id, retired.history[1].correlation_id);
    let instant = |at: &str| DateTime::parse_from_rfc3339(at).unwrap().with_timezone(&Utc);
    let as_of = |t: DateTime<Utc>| pb::GetGapRequest { name: gateway.name.clone(), as_of: t.to_rfc3339() };
    let at_tag_note = gaps.get_gap(authed(as_of(instant(&tag_note.at)), &finance)).await.unwrap().into_inner();
    assert!(noted(&at_tag_note, &recorded.name, "recorded").is_some());
    let before_retired_note = instant(&retired_note.at) - chrono::Duration::nanoseconds(1);
    let then = gaps.get_gap(authed(as_of(before_retired_note), &finance)).await.unwrap().into_inner();
    assert!(noted(&then, &rule_name, "retired").is_none(), "as of before the note, no retirement: {then:#?}");

    // 4. The rules, now and as of before them; who may list; bad input changes nothing.
    let now = rules.list_gateway_rules(authed(pb::ListGatewayRulesRequest::default(), &finance)).await.unwrap();
    let now = now.into_inner().rules;
    assert_eq!(now.iter().map(|r| r.state.as_str()).collect::<Vec<_>>(), vec!["retired", "in_force"]);
    assert_eq!(now[0].session_pattern, "gw-user-1*");
    let then = rules
        .list_gateway_rules(authed(pb::ListGatewayRulesRequest { as_of: t_before.to_rfc3339() }, &finance))
        .await
        .unwrap();
    assert!(then.into_inner().rules.is_empty());
    let juan = server.token("po-juan", Role::ProductOwner);
    let denied = rules.list_gateway_rules(authed(pb::ListGatewayRulesRequest::default(), &juan)).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let head = server.store.stats().await.unwrap().events_by_type;
    let bad = rules
        .record_gateway_rule(authed(
            pb::RecordGatewayRuleRequest {
                account: "1234".into(),
                role_name: "llm gateway".into(),
                session_pattern: "*".into(),
                principal_tag: "team=ds".into(),
                business_request: support_request.clone(),
                effective_from: "2026-13-01".into(),
                rationale: String::new(),
                request_id: String::new(),
            },
            &fl,
        ))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    for field in ["account", "principal_tag", "effective_from", "rationale"] {
        assert!(bad.message().contains(field), "{field} named in: {}", bad.message());
    }
    let unknown = rules
        .retire_gateway_rule(authed(
            pb::RetireGatewayRuleRequest {
                name: format!("gatewayRules/{}", Uuid::now_v7()),
                effective_until: "2026-11-30".into(),
                rationale: "x".into(),
                request_id: String::new(),
            },
            &fl,
        ))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let not_lead = rules
        .retire_gateway_rule(authed(
            pb::RetireGatewayRuleRequest {
                name: recorded.name.clone(),
                effective_until: "2026-11-30".into(),
                rationale: "x".into(),
                request_id: String::new(),
            },
            &finance,
        ))
        .await
        .unwrap_err();
    assert_eq!(not_lead.code(), Code::PermissionDenied);
    let again = rules
        .retire_gateway_rule(authed(
            pb::RetireGatewayRuleRequest {
                name: rule_name.clone(),
                effective_until: "2026-11-20".into(),
                rationale: "once more".into(),
                request_id: String::new(),
            },
            &fl,
        ))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition);
    assert!(again.message().contains("retired"), "{}", again.message());
    let mut after_bad = server.store.stats().await.unwrap().events_by_type;
    let mut head = head;
    // The detector and the projections write their own events; the decisions are counted.
    let decisions = |e: &mut Vec<(String, u64)>| e.retain(|(t, _)| t.starts_with("GatewayRule"));
    decisions(&mut head);
    decisions(&mut after_bad);
    assert_eq!(after_bad, head, "refused requests wrote nothing");

    // 5. A rebuild of the gap read model gives the same digest.
    rebuild_gives_the_same_digest(&store, url).await;
    std::fs::remove_dir_all(dir).unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_rules_move_spend_to_workloads_on_postgres() {
    let Some(url) = fresh_postgres_url().await else { return };
    gateway_rules_loop(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_rules_move_spend_to_workloads_on_sqlite() {
    gateway_rules_loop(&fresh_sqlite_url()).await;
}

/// Regression: a detector catching up over a long log read the whole log again for each
/// evaluation (one per 500-event page holding a trigger) — quadratic: a fresh server's
/// detector followed a 200 k-event log at about 80 events a second. It now keeps what its
/// evaluations folded and reads each event a bounded number of times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detector_catching_up_reads_each_event_a_bounded_number_of_times() {
    let url = fresh_sqlite_url();
    let real = finops_eventlog::open(&url, finops_governance::upcasters()).await.unwrap();
    let events = finops_e2e::governance_log::generate(&real, 10_000).await;
    let counted = finops_e2e::CountedStore::new(real);
    let store: Arc<dyn finops_eventlog::EventStore> = counted.clone();
    let objects = std::env::temp_dir().join("finops-e2e").join(format!("objects-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&objects).unwrap();
    let engine = finops_attribution::AttributionEngine::new(
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&objects).unwrap()),
        Default::default(),
    );
    let models = finops_projections::ReadModels::open(&url).await.unwrap();
    let evaluations = finops_processes::GapDetector::new(store, models, engine).run_once().await.unwrap();
    assert!(evaluations.len() >= 20, "one evaluation per page holding a trigger: {}", evaluations.len());
    let read = counted.take_all_reads();
    assert!(read <= 4 * events, "read {read} events to follow a log of {events}");
    std::fs::remove_dir_all(objects).unwrap();
}

/// Regression: the threshold watcher, the card issuer and the investigation detector folded
/// the governance state from the whole log for every event they reacted to (a detector
/// reacting to each page of invocation logs read a 1 M-event log again each time). They
/// now keep a `StateFold`: reacting to many events reads each event of the log once, and
/// the state it keeps is the state a fresh fold gives, a re-run from an earlier position
/// included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_state_fold_reads_each_event_once_and_folds_what_a_fresh_fold_does() {
    use finops_eventlog::{EventStore, Position};
    use finops_governance::state::{StateFold, state_as_of};
    let real = finops_eventlog::open(&fresh_sqlite_url(), finops_governance::upcasters()).await.unwrap();
    let events = finops_e2e::governance_log::generate(&real, 5_000).await;
    let counted = finops_e2e::CountedStore::new(real);
    let store: Arc<dyn EventStore> = counted.clone();
    let head = store.seal_committed().await.unwrap().position;
    counted.take_all_reads();
    let json = |state: &finops_domain::governance_state::GovernanceState| serde_json::to_string(state).unwrap();

    let mut kept = StateFold::default();
    let steps = 40;
    for step in 1..=steps {
        kept.through(store.as_ref(), Position(head.0 * step / steps)).await.unwrap();
    }
    let read = counted.take_all_reads();
    assert_eq!(read as u64, head.0, "forty reactions read the log of {events} events once");
    assert_eq!(json(kept.state()), json(&state_as_of(store.as_ref(), None).await.unwrap()));

    // A re-run from an earlier position folds again from the start, and agrees with a fresh fold.
    let midway = Position(head.0 / 2);
    let again = json(kept.through(store.as_ref(), midway).await.unwrap());
    assert_eq!(kept.position(), midway);
    assert_eq!(again, json(StateFold::default().through(store.as_ref(), midway).await.unwrap()));
}
