//! Agent Bill over gRPC (issue 16 item 2), on PostgreSQL: questions in plain English
//! answered with the figures of the call each wraps — asked again of that call at the
//! answer's instant, the figures are equal — scoped and refused exactly as that call;
//! a question it does not understand gets what can be asked; bad input is named.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{ingest_generated_month, read_models_caught_up};
use finops_e2e::{RunningServer, authed, fresh_postgres_url};
use finops_proto::v1 as pb;
use finops_proto::v1::agent_bill_service_client::AgentBillServiceClient;
use finops_proto::v1::attribution_service_client::AttributionServiceClient;
use finops_proto::v1::gap_service_client::GapServiceClient;
use finops_proto::v1::maturity_service_client::MaturityServiceClient;
use finops_proto::v1::spaces_service_client::SpacesServiceClient;
use finops_proto::v1::spend_card_service_client::SpendCardServiceClient;
use finops_proto::v1::workload_control_service_client::WorkloadControlServiceClient;
use finops_server::auth::Role;
use tonic::Code;

/// Waits until the gap detector, the card issuer and the read models have caught up.
async fn settle(server: &RunningServer, url: &str) {
    let models = finops_projections::ReadModels::open(url).await.unwrap();
    for _ in 0..2400 {
        let head = server.store.seal_committed().await.unwrap().position.0;
        let mut behind = false;
        for process in [finops_processes::GapDetector::NAME, finops_processes::CardIssuer::NAME] {
            behind |= models.process_checkpoint(process).await.unwrap() < head;
        }
        if !behind {
            read_models_caught_up(server, url).await;
            if server.store.seal_committed().await.unwrap().position.0 == head {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the processes never caught up");
}

fn figures(answer: &pb::Answer) -> BTreeMap<String, pb::Figure> {
    answer.figures.iter().map(|f| (f.name.clone(), f.clone())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_bill_answers_with_the_figures_of_the_calls_it_wraps() {
    let Some(url) = fresh_postgres_url().await else { return };
    let server = RunningServer::start(&url).await;
    finops_server::demo::seed(server.store.clone(), "arn:aws:sso:::instance/ssoins-demo").await.unwrap();
    ingest_generated_month(&server, "2026-11", 3_000).await;
    settle(&server, &url).await;

    let channel = tonic::transport::Endpoint::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
    let mut bill = AgentBillServiceClient::new(channel.clone());
    let mut spaces = SpacesServiceClient::new(channel.clone());
    let mut attribution = AttributionServiceClient::new(channel.clone());
    let mut gaps = GapServiceClient::new(channel.clone());
    let mut maturity = MaturityServiceClient::new(channel);
    let maria = server.token("po-maria", Role::ProductOwner);
    let juan = server.token("po-juan", Role::ProductOwner);
    let fl = server.token("fl-ana", Role::FinopsLead);
    let finance = server.token("fin-eva", Role::Finance);
    let ask = |question: &str| pb::AskRequest { question: question.into(), ..Default::default() };

    // 1. "Am I on track?" as a Product Owner: each of her workloads' forecast, the figures
    // GetWorkload gives at the answer's instant.
    let answer = bill.ask(authed(ask("Am I on track against my estimate?"), &maria)).await.unwrap().into_inner();
    assert_eq!(answer.tool, "on_track");
    assert_eq!(answer.period, "2026-11");
    assert!(answer.calls.contains(&"finops.v1.SpacesService/GetWorkload".to_owned()), "{:?}", answer.calls);
    let quoted = figures(&answer);
    let hers = spaces
        .list_workloads(authed(pb::ListWorkloadsRequest { page_size: 100, ..Default::default() }, &maria))
        .await
        .unwrap()
        .into_inner()
        .workloads;
    assert!(!hers.is_empty());
    for w in &hers {
        let get = pb::GetWorkloadRequest { name: w.workload_id.clone(), as_of: answer.as_of.clone() };
        let f = spaces.get_workload(authed(get, &maria)).await.unwrap().into_inner().forecast.unwrap();
        assert_eq!(quoted[&format!("{} month to date", w.name)].amount, f.month_to_date_cents, "{}", w.name);
        assert_eq!(quoted[&format!("{} monthly estimate", w.name)].amount, f.month_estimate_cents);
        assert_eq!(quoted[&format!("{} projected month", w.name)].amount, f.projected_month_cents);
        assert!(answer.text.contains(&w.name), "{}", answer.text);
    }
    assert!(quoted.keys().all(|k| hers.iter().any(|w| k.starts_with(&w.name))), "only her workloads: {quoted:?}");
    // Another Product Owner's workload, named, is not there for Juan — as in GetWorkload.
    let refused = bill.ask(authed(ask("Am I on track with \"Support Bot\"?"), &juan)).await.unwrap_err();
    assert_eq!(refused.code(), Code::NotFound, "{}", refused.message());

    // 2. "Which workloads cost most, and why?" as the FinOps Lead: Attribute's figures.
    let answer =
        bill.ask(authed(ask("Which workloads cost most this month, and why?"), &fl)).await.unwrap().into_inner();
    assert_eq!((answer.tool.as_str(), answer.period.as_str()), ("top_costs", "2026-11"));
    let request = pb::AttributeRequest {
        period: "2026-11".into(),
        group_by: vec!["workload".into(), "model".into()],
        as_of: answer.as_of.clone(),
    };
    let truth = attribution.attribute(authed(request, &fl)).await.unwrap().into_inner();
    let quoted = figures(&answer);
    assert_eq!(quoted["total"].amount, truth.total_cents);
    let mut by_workload: BTreeMap<String, i64> = BTreeMap::new();
    for row in &truth.rows {
        *by_workload.entry(row.keys[0].clone()).or_default() += row.cost_cents;
    }
    let top = by_workload.iter().max_by_key(|(_, c)| **c).unwrap();
    let named = if top.0.is_empty() { "(no workload: Allocation Gaps)".to_owned() } else { top.0.clone() };
    assert_eq!(quoted[&named].amount, *top.1, "the largest is quoted with its own figure");
    assert!(answer.text.lines().nth(1).unwrap().contains(&named), "largest first: {}", answer.text);

    // 3. "Are any workloads using unapproved models?": the active gaps of both kinds.
    let answer =
        bill.ask(authed(ask("Are any workloads using unapproved models?"), &finance)).await.unwrap().into_inner();
    assert_eq!(answer.tool, "unapproved_models");
    let quoted = figures(&answer);
    for kind in ["out_of_approved_scope", "not_business_approved"] {
        let request = pb::ListGapsRequest {
            kind: kind.into(),
            state: "active".into(),
            period: "2026-11".into(),
            page_size: 1000,
            as_of: answer.as_of.clone(),
            ..Default::default()
        };
        let totals = gaps.list_gaps(authed(request, &finance)).await.unwrap().into_inner().totals;
        assert_eq!(quoted[&format!("{kind} spend")].amount, totals.iter().map(|t| t.cents).sum::<i64>(), "{kind}");
        assert_eq!(quoted[&format!("{kind} gaps")].amount, totals.iter().map(|t| i64::from(t.gaps)).sum::<i64>());
    }

    // 3b. One gap explained with GetGap's figures; acted on only when confirmed — then
    // the ActOnGap decision itself, the FinOps Lead's, with the question as the why;
    // refused to a Product Owner as ActOnGap refuses her.
    let listed = pb::ListGapsRequest {
        kind: "not_business_approved".into(),
        state: "active".into(),
        page_size: 1000,
        ..Default::default()
    };
    let gap = gaps.list_gaps(authed(listed, &fl)).await.unwrap().into_inner().gaps.remove(0);
    let explained = bill.ask(authed(ask(&format!("Explain {}", gap.name)), &fl)).await.unwrap().into_inner();
    assert_eq!(explained.tool, "explain_gap");
    let shown = gaps
        .get_gap(authed(pb::GetGapRequest { name: gap.name.clone(), as_of: explained.as_of.clone() }, &fl))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(figures(&explained)["gap spend"].amount, shown.total_cents);
    assert!(explained.text.contains("block"), "{}", explained.text);
    let question = format!("Act on {}: block — nobody asked for this caller", gap.name);
    let dry = bill.ask(authed(ask(&question), &fl)).await.unwrap().into_inner();
    assert!(dry.text.starts_with("This would block"), "{}", dry.text);
    let unchanged = gaps
        .get_gap(authed(pb::GetGapRequest { name: gap.name.clone(), as_of: String::new() }, &fl))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unchanged.version, shown.version, "unconfirmed: nothing written");
    let refused = bill.ask(authed(ask(&format!("{question}, confirm")), &maria)).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let done = bill.ask(authed(ask(&format!("{question}, confirm")), &fl)).await.unwrap().into_inner();
    assert!(done.calls.contains(&"finops.v1.GapService/ActOnGap".to_owned()), "{done:?}");
    let after = gaps
        .get_gap(authed(pb::GetGapRequest { name: gap.name.clone(), as_of: String::new() }, &fl))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.status, "actioned");
    let last = after.history.last().unwrap();
    assert_eq!((last.who.as_str(), last.role.as_str()), ("fl-ana", "finops_lead"));
    assert_eq!(last.why, format!("Actioned through Agent Bill: \"{question}, confirm\""));

    // 4. The maturity score, as GetMaturity gives it; refused to a Product Owner as
    // GetMaturity refuses her.
    let answer = bill.ask(authed(ask("What is our governance maturity score?"), &finance)).await.unwrap().into_inner();
    let truth = maturity
        .get_maturity(authed(pb::GetMaturityRequest { period: String::new(), as_of: answer.as_of.clone() }, &finance))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.tool, "maturity");
    assert_eq!(figures(&answer)["overall"].score, truth.overall);
    assert!(answer.text.contains("Next move:"), "{}", answer.text);
    let refused = bill.ask(authed(ask("What is our maturity score?"), &maria)).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let ce = server.token("ce-li", Role::CloudEngineer);
    assert_eq!(bill.ask(authed(ask("Am I on track?"), &ce)).await.unwrap_err().code(), Code::PermissionDenied);

    // 5. The same question at the same instant answers the same.
    let at = answer.as_of.clone();
    let again = |q: &str| pb::AskRequest { question: q.into(), as_of: at.clone(), ..Default::default() };
    let first = bill.ask(authed(again("How much did we spend?"), &fl)).await.unwrap().into_inner();
    let second = bill.ask(authed(again("How much did we spend?"), &fl)).await.unwrap().into_inner();
    assert_eq!(first, second);
    assert_eq!(first.tool, "spend");
    // The same tool named (as an MCP client calls it) answers the same as the question.
    let named = pb::AskRequest { tool: "spend".into(), as_of: at.clone(), ..Default::default() };
    assert_eq!(bill.ask(authed(named, &fl)).await.unwrap().into_inner(), first);
    let bad = pb::AskRequest {
        tool: "spend".into(),
        question: "How much?".into(),
        period: "Nov".into(),
        ..Default::default()
    };
    let bad = bill.ask(authed(bad, &fl)).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("question") && bad.message().contains("period"), "{}", bad.message());
    let unknown = pb::AskRequest { tool: "weather".into(), ..Default::default() };
    let unknown = bill.ask(authed(unknown, &fl)).await.unwrap_err();
    assert!(unknown.message().contains("`weather` is not a tool"), "{}", unknown.message());
    let quoted = figures(&first);
    assert_eq!(quoted["attributed"].amount + quoted["in gaps"].amount, quoted["total"].amount);

    // Spend for one workload, with the breakdown that explains it: sums of Attribute's
    // rows for the same question; day by day adds up to the total.
    let asked = pb::AskRequest {
        question: "How much did \"Support Bot\" spend?".into(),
        as_of: at.clone(),
        ..Default::default()
    };
    let answer = bill.ask(authed(asked, &maria)).await.unwrap().into_inner();
    assert_eq!(answer.tool, "spend");
    let request = pb::AttributeRequest {
        period: "2026-11".into(),
        group_by: ["workload", "gap", "model", "token_type", "region", "principal", "day"].map(str::to_owned).to_vec(),
        as_of: at.clone(),
    };
    let truth = attribution.attribute(authed(request, &maria)).await.unwrap().into_inner();
    let rows: Vec<&pb::AttributionRow> = truth.rows.iter().filter(|r| r.keys[0] == "Support Bot").collect();
    let quoted = figures(&answer);
    assert_eq!(quoted["total"].amount, rows.iter().map(|r| r.cost_cents).sum::<i64>());
    // Each breakdown's largest value is quoted, as the sum of its rows.
    for (column, label) in [(2, "model"), (3, "token type"), (4, "region"), (5, "caller")] {
        let mut by: BTreeMap<&str, i64> = BTreeMap::new();
        for r in &rows {
            *by.entry(r.keys[column].as_str()).or_default() += r.cost_cents;
        }
        let (top, cents) = by.iter().max_by_key(|(k, c)| (**c, std::cmp::Reverse(**k))).unwrap();
        assert_eq!(quoted[&format!("{label} {top}")].amount, *cents, "{label}");
    }
    let days: i64 = quoted.iter().filter(|(k, _)| k.starts_with("day ")).map(|(_, f)| f.amount).sum();
    assert_eq!(days, quoted["total"].amount, "day by day adds up");
    for words in ["By model:", "By token type:", "By region:", "By caller:", "Day by day:"] {
        assert!(answer.text.contains(words), "{words} in {}", answer.text);
    }

    // The open gaps, as ListGaps totals them for the period at the answer's instant.
    let answer = bill.ask(authed(ask("Which AI spend has no owner?"), &fl)).await.unwrap().into_inner();
    assert_eq!(answer.tool, "gaps");
    let request = pb::ListGapsRequest {
        state: "active".into(),
        period: answer.period.clone(),
        page_size: 1000,
        as_of: answer.as_of.clone(),
        ..Default::default()
    };
    let totals = gaps.list_gaps(authed(request, &fl)).await.unwrap().into_inner().totals;
    let quoted = figures(&answer);
    assert_eq!(quoted["open gaps spend"].amount, totals.iter().map(|t| t.cents).sum::<i64>());
    assert_eq!(quoted["open gaps"].amount, totals.iter().map(|t| i64::from(t.gaps)).sum::<i64>());
    for t in &totals {
        assert_eq!(quoted[&format!("{} spend", t.kind)].amount, t.cents, "{}", t.kind);
    }

    // 6. The spend cards by status, as ListSpendCards has them for the asker. An action:
    // accepting a card is the AcceptSpendCard command itself, taken only once confirmed,
    // refused as that command is refused.
    let mut cards = SpendCardServiceClient::new(
        tonic::transport::Endpoint::from_shared(server.endpoint()).unwrap().connect().await.unwrap(),
    );
    let answer = bill.ask(authed(ask("Which spend cards are waiting for me?"), &maria)).await.unwrap().into_inner();
    assert_eq!(answer.tool, "spend_cards");
    let list = pb::ListSpendCardsRequest { page_size: 1000, as_of: answer.as_of.clone(), ..Default::default() };
    let hers = cards.list_spend_cards(authed(list, &maria)).await.unwrap().into_inner().cards;
    let mut by_status: BTreeMap<String, i64> = BTreeMap::new();
    for c in &hers {
        *by_status.entry(format!("{} cards", c.status)).or_default() += 1;
    }
    let quoted = figures(&answer);
    assert!(!by_status.is_empty());
    for (name, n) in &by_status {
        assert_eq!(quoted[name].amount, *n, "{name}");
    }
    let list = pb::ListSpendCardsRequest { status: "issued".into(), page_size: 100, ..Default::default() };
    let issued = cards.list_spend_cards(authed(list, &maria)).await.unwrap().into_inner().cards;
    let flagged = issued.iter().find(|c| c.lines.iter().any(|l| l.flagged)).expect("a flagged card").clone();
    let card = issued.iter().find(|c| c.name != flagged.name).expect("a second issued card").clone();
    let accepted_events = |stats: finops_eventlog::LogStats| -> u64 {
        stats.events_by_type.iter().filter(|(t, _)| t.as_str() == "SpendCardAccepted").map(|(_, n)| n).sum()
    };
    let before = accepted_events(server.store.stats().await.unwrap());
    let question = format!("Accept {} please", card.name);
    let unconfirmed = bill.ask(authed(ask(&question), &maria)).await.unwrap().into_inner();
    assert_eq!(unconfirmed.tool, "accept_card");
    assert!(unconfirmed.text.starts_with("This would accept"), "{}", unconfirmed.text);
    assert_eq!(accepted_events(server.store.stats().await.unwrap()), before, "nothing until confirmed");
    let refused = bill.ask(authed(ask(&format!("{question}, confirm")), &juan)).await.unwrap_err();
    assert_eq!(refused.code(), Code::NotFound, "another Product Owner's card");
    let done = bill.ask(authed(ask(&format!("{question}, confirm")), &maria)).await.unwrap().into_inner();
    assert!(done.calls.contains(&"finops.v1.SpendCardService/AcceptSpendCard".to_owned()), "{done:?}");
    assert_eq!(accepted_events(server.store.stats().await.unwrap()), before + 1);
    read_models_caught_up(&server, &url).await;
    let get = pb::GetSpendCardRequest { name: card.name.clone(), as_of: String::new() };
    let after = cards.get_spend_card(authed(get, &maria)).await.unwrap().into_inner();
    assert_eq!(after.status, "accepted");
    let last = after.history.last().unwrap();
    assert_eq!(
        (last.event.as_str(), last.who.as_str(), last.role.as_str()),
        ("SpendCardAccepted", "po-maria", "product_owner")
    );
    assert_eq!(last.why, format!("Accepted through Agent Bill: \"{question}, confirm\""));

    // A dispute names its lines in the question, or takes every flagged line.
    let line = flagged.lines.iter().find(|l| l.flagged).unwrap().key.clone();
    let question = format!("Dispute {line} on {} — not ours, confirm", flagged.name);
    let disputed = bill.ask(authed(ask(&question), &maria)).await.unwrap().into_inner();
    assert_eq!(disputed.tool, "dispute_card");
    assert!(disputed.text.starts_with("Disputed 1 line"), "{}", disputed.text);
    read_models_caught_up(&server, &url).await;
    let get = pb::GetSpendCardRequest { name: flagged.name.clone(), as_of: String::new() };
    let after = cards.get_spend_card(authed(get, &maria)).await.unwrap().into_inner();
    assert_eq!((after.status.as_str(), after.disputed_lines.clone()), ("disputed", vec![line]));
    assert_eq!(after.history.last().unwrap().event, "SpendCardDisputed");

    // 7. The kill switch: which workload, when not named among several; what it would do
    // until confirmed (nothing written); then the SuspendWorkload decision itself, as
    // WorkloadControlService shows it. Resuming is the FinOps Lead's: refused as the call is.
    let which = bill.ask(authed(ask("Suspend my workload"), &maria)).await.unwrap().into_inner();
    assert!(which.text.starts_with("Which workload should I suspend?"), "{}", which.text);
    let dry = bill.ask(authed(ask("Suspend \"Support Bot\""), &maria)).await.unwrap().into_inner();
    assert_eq!(dry.tool, "suspend");
    assert!(dry.text.contains("Support Bot is active. This would suspend it"), "{}", dry.text);
    let mut control = WorkloadControlServiceClient::new(
        tonic::transport::Endpoint::from_shared(server.endpoint()).unwrap().connect().await.unwrap(),
    );
    let get = || pb::GetWorkloadControlRequest { workload: "Support Bot".into(), as_of: String::new() };
    assert_eq!(control.get_workload_control(authed(get(), &maria)).await.unwrap().into_inner().status, "active");
    let question = "Suspend \"Support Bot\", confirm";
    let done = bill.ask(authed(ask(question), &maria)).await.unwrap().into_inner();
    assert!(done.calls.contains(&"finops.v1.WorkloadControlService/SuspendWorkload".to_owned()), "{done:?}");
    assert!(done.text.starts_with("Suspended Support Bot: it is now suspended."), "{}", done.text);
    let status = control.get_workload_control(authed(get(), &fl)).await.unwrap().into_inner();
    assert_eq!(status.status, "suspended");
    let decision = &status.decisions[0];
    assert_eq!((decision.decided_by.as_str(), decision.role.as_str()), ("po-maria", "product_owner"));
    assert_eq!(decision.rationale, format!("Suspended through Agent Bill: \"{question}\""));
    let calls = figures(&done);
    assert_eq!(calls["IAM calls"].amount, decision.calls.len() as i64);
    let resume = bill.ask(authed(ask("Resume \"Support Bot\", confirm"), &maria)).await.unwrap_err();
    assert_eq!(resume.code(), Code::PermissionDenied, "{resume:?}");

    // 8. Not understood: what can be asked. Bad input is named.
    let help = bill.ask(authed(ask("What's the weather in Lisbon?"), &maria)).await.unwrap().into_inner();
    assert_eq!(help.tool, "help");
    assert!(help.text.contains("I do not understand") && help.text.contains("Am I on track"), "{}", help.text);
    let bad = bill
        .ask(authed(pb::AskRequest { question: " ".into(), as_of: "yesterday".into(), ..Default::default() }, &maria))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("question") && bad.message().contains("as_of"), "{}", bad.message());
    assert_eq!(bill.ask(tonic::Request::new(ask("Am I on track?"))).await.unwrap_err().code(), Code::Unauthenticated);

    server.shutdown().await.unwrap();
}
