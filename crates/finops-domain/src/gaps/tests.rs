//! Given/when/then for the gap aggregate, and its fold against a reference state machine.

use super::*;
use crate::aggregate::spec::given;

fn at(h: u32) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("2026-11-10T{h:02}:00:00Z")).unwrap().with_timezone(&Utc)
}

fn identity(kind: GapKind) -> GapIdentity {
    GapIdentity {
        kind,
        anchor: "role/111122223333/AWSReservedSSO_AdministratorAccess_0a1b".into(),
        account: "111122223333".into(),
        workload_id: None,
        principal: "AWSReservedSSO_AdministratorAccess_0a1b".into(),
        concerns: vec![],
    }
}

fn spend(cents: i64) -> GapSpend {
    GapSpend {
        batch: "b1".into(),
        cents,
        tokens: 1_000,
        lines: 3,
        first_day: NaiveDate::from_ymd_opt(2026, 11, 1),
        last_day: NaiveDate::from_ymd_opt(2026, 11, 9),
        principals: vec!["AWSReservedSSO_AdministratorAccess_0a1b".into()],
        models: vec!["anthropic.claude-3-haiku-20240307-v1:0".into()],
    }
}

fn cause(n: u128) -> EvaluationCause {
    EvaluationCause {
        event_id: Uuid::from_u128(n),
        event_type: "CurBatchIngested".into(),
        stream: "cur-period-2026-11".into(),
    }
}

fn observe(period: &str, s: Option<GapSpend>, newest: bool, through: u64) -> GapCommand {
    GapCommand::Observe {
        identity: identity(GapKind::UnattributedSpend),
        period: period.into(),
        spend: s,
        newest,
        through,
        cause: cause(u128::from(through)),
        at: at(1),
    }
}

fn fl(rationale: &str) -> Decider {
    Decider { by: "fl-ana".into(), role: "finops_lead".into(), rationale: rationale.into(), at: at(2) }
}

fn history(commands: &[GapCommand]) -> Vec<GapEvent> {
    let mut state = AllocationGap::default();
    let mut out = Vec::new();
    for c in commands {
        for e in state.decide(c).unwrap() {
            state = state.evolve(&e);
            out.push(e);
        }
    }
    out
}

fn act() -> GapCommand {
    GapCommand::Act {
        action: GapActionKind::RecommendDedicatedRole,
        outcome: ActionOutcome::default(),
        decider: fl("route to a dedicated role"),
    }
}

#[test]
fn a_finding_detects_the_gap_once_with_its_spend() {
    let events = given::<AllocationGap>(&[]).when(observe("2026-11", Some(spend(1234)), true, 10)).unwrap();
    assert!(
        matches!(&events[0], GapEvent::GapDetected { gap_id, .. } if *gap_id == identity(GapKind::UnattributedSpend).gap_id())
    );
    assert!(matches!(&events[1], GapEvent::GapSpendObserved { spend: Some(s), .. } if s.cents == 1234));
    // Absent and never seen: nothing to record.
    assert_eq!(given::<AllocationGap>(&[]).when(observe("2026-11", None, true, 10)).unwrap(), vec![]);
}

#[test]
fn a_restatement_updates_spend_and_an_older_evaluation_changes_nothing() {
    let h = history(&[observe("2026-11", Some(spend(1234)), true, 10)]);
    let events = given::<AllocationGap>(&h).when(observe("2026-11", Some(spend(2000)), true, 20)).unwrap();
    assert_eq!(events.len(), 1);
    assert!(matches!(&events[0], GapEvent::GapSpendObserved { spend: Some(s), .. } if s.cents == 2000));
    let h =
        history(&[observe("2026-11", Some(spend(1234)), true, 10), observe("2026-11", Some(spend(2000)), true, 20)]);
    // A re-run of an earlier evaluation (a detector restarted from an old checkpoint).
    assert_eq!(given::<AllocationGap>(&h).when(observe("2026-11", None, true, 10)).unwrap(), vec![]);
}

#[test]
fn the_cause_clearing_resolves_and_its_return_reopens_with_history() {
    let h = history(&[observe("2026-11", Some(spend(1234)), true, 10), act()]);
    let events = given::<AllocationGap>(&h).when(observe("2026-11", None, true, 20)).unwrap();
    assert!(
        matches!(events.last(), Some(GapEvent::GapCauseCleared { cleared_by, .. }) if cleared_by.event_id == Uuid::from_u128(20))
    );
    let mut all = h.clone();
    all.extend(events);
    assert_eq!(AllocationGap::fold(&all).status, GapStatus::Resolved);
    let reopened = given::<AllocationGap>(&all).when(observe("2026-12", Some(spend(5)), true, 30)).unwrap();
    assert!(matches!(reopened.last(), Some(GapEvent::GapReopened { .. })));
    all.extend(reopened);
    let gap = AllocationGap::fold(&all);
    assert_eq!(gap.status, GapStatus::Active);
    assert_eq!(gap.spend.len(), 1, "November's spend cleared, December's seen");
    // An older period's observation never moves the lifecycle.
    assert_eq!(given::<AllocationGap>(&all).when(observe("2026-10", None, false, 40)).unwrap(), vec![]);
}

#[test]
fn a_resolution_by_decision_stands_while_its_cause_does() {
    let h = history(&[
        observe("2026-11", Some(spend(1)), true, 10),
        GapCommand::Resolve { decider: fl("accepted as shared platform cost") },
    ]);
    // Evaluated again (a restatement, another claim): the cause is still there.
    assert_eq!(given::<AllocationGap>(&h).when(observe("2026-11", Some(spend(1)), true, 20)).unwrap(), vec![]);
    // Gone, then back: that reopens it.
    let mut all = h.clone();
    all.extend(given::<AllocationGap>(&h).when(observe("2026-11", None, true, 30)).unwrap());
    let back = given::<AllocationGap>(&all).when(observe("2026-12", Some(spend(2)), true, 40)).unwrap();
    assert!(matches!(back.last(), Some(GapEvent::GapReopened { .. })));
}

#[test]
fn acting_needs_the_kinds_action_a_rationale_and_an_active_gap() {
    let h = history(&[observe("2026-11", Some(spend(1)), true, 10)]);
    let events = given::<AllocationGap>(&h).when(act()).unwrap();
    assert!(matches!(&events[0], GapEvent::GapActioned { decider, .. } if decider.role == "finops_lead"));
    let wrong = GapCommand::Act { action: GapActionKind::Block, outcome: ActionOutcome::default(), decider: fl("") };
    let DomainError::Invalid(v) = given::<AllocationGap>(&h).when(wrong).unwrap_err() else { panic!() };
    assert_eq!(v.iter().map(|v| v.field.as_str()).collect::<Vec<_>>(), vec!["rationale", "action"]);
    assert!(v[1].description.contains("recommend_dedicated_role"));
    let mut actioned = h.clone();
    actioned.extend(given::<AllocationGap>(&h).when(act()).unwrap());
    // The same decision again is a retry; another one is refused, naming the state.
    assert_eq!(given::<AllocationGap>(&actioned).when(act()).unwrap(), vec![]);
    let another = GapCommand::Act {
        action: GapActionKind::RecommendDedicatedRole,
        outcome: ActionOutcome::default(),
        decider: fl("a second time"),
    };
    assert_eq!(
        given::<AllocationGap>(&actioned).when(another).unwrap_err(),
        DomainError::IllegalTransition { aggregate: "gap", state: "actioned", action: "act on" }
    );
    assert!(matches!(
        given::<AllocationGap>(&[]).when(act()).unwrap_err(),
        DomainError::IllegalTransition { state: "not detected", .. }
    ));
}

#[test]
fn a_recall_restores_the_state_before_the_decision_and_keeps_it() {
    let h = history(&[
        observe("2026-11", Some(spend(1)), true, 10),
        act(),
        GapCommand::Resolve { decider: fl("shared platform cost") },
    ]);
    assert_eq!(AllocationGap::fold(&h).status, GapStatus::Resolved);
    let recall = GapCommand::Recall { decider: fl("not shared after all") };
    let events = given::<AllocationGap>(&h).when(recall.clone()).unwrap();
    assert!(
        matches!(&events[0], GapEvent::GapRecalled { recalled, restored: GapStatus::Actioned, .. } if recalled == "resolved")
    );
    let mut all = h.clone();
    all.extend(events);
    assert_eq!(given::<AllocationGap>(&all).when(recall.clone()).unwrap(), vec![], "a retry recalls nothing more");
    let recall = GapCommand::Recall { decider: fl("and the action too") };
    let again = given::<AllocationGap>(&all).when(recall.clone()).unwrap();
    assert!(matches!(&again[0], GapEvent::GapRecalled { restored: GapStatus::Active, .. }));
    all.extend(again);
    assert_eq!(AllocationGap::fold(&all).status, GapStatus::Active);
    let recall = GapCommand::Recall { decider: fl("once more") };
    assert!(matches!(
        given::<AllocationGap>(&all).when(recall).unwrap_err(),
        DomainError::IllegalTransition { state: "active with no decision to recall", .. }
    ));
}

fn note(change: GatewayRuleChange, rationale: &str) -> GapCommand {
    GapCommand::NoteGatewayRule {
        rule: "gatewayRules/00000000-0000-0000-0000-000000000007".into(),
        change,
        summary: "sessions `gw-user-1*` of llm-gateway charged to Support Bot".into(),
        decider: fl(rationale),
    }
}

#[test]
fn a_gateway_rule_change_enters_the_trail_once_and_leaves_the_state_alone() {
    let h = history(&[observe("2026-11", Some(spend(1)), true, 10), act()]);
    let events = given::<AllocationGap>(&h).when(note(GatewayRuleChange::Recorded, "users 1x are support")).unwrap();
    assert!(matches!(
        &events[..],
        [GapEvent::GapGatewayRuleChanged { change: GatewayRuleChange::Recorded, decider, .. }] if decider.by == "fl-ana"
    ));
    let mut all = h.clone();
    all.extend(events);
    let gap = AllocationGap::fold(&all);
    assert_eq!(gap.status, GapStatus::Actioned, "a rule is not a decision on the gap");
    assert_eq!(gap.standing.len(), 1, "the action can still be recalled");
    // Noted again (the detector re-run): nothing; the retirement is a new entry.
    assert_eq!(given::<AllocationGap>(&all).when(note(GatewayRuleChange::Recorded, "again")).unwrap(), vec![]);
    assert_eq!(given::<AllocationGap>(&all).when(note(GatewayRuleChange::Retired, "moved")).unwrap().len(), 1);
    assert!(matches!(
        given::<AllocationGap>(&[]).when(note(GatewayRuleChange::Recorded, "x")).unwrap_err(),
        DomainError::IllegalTransition { state: "not detected", .. }
    ));
}

#[test]
fn the_gaps_on_a_role_are_the_ones_attribution_anchors_there() {
    let ids = gaps_on_role("111122223333", "llm-gateway");
    assert!(ids.contains(&gap_id(GapKind::UnattributedSpend, "role/111122223333/llm-gateway")));
    assert!(ids.contains(&gap_id(GapKind::NotBusinessApproved, "principal/111122223333/assumed_role/llm-gateway")));
}

#[test]
fn generated_commands_are_exact() {
    let block = block_principal("ml-sandbox", false);
    let line = block.commands[0].render();
    assert!(line.starts_with(
        "aws iam put-role-policy --role-name ml-sandbox --policy-name finops-center-deny-bedrock --policy-document '{"
    ));
    assert!(line.contains(r#""Effect":"Deny""#));
    let setup = guided_cur_setup("111122223333", "my-cur-bucket");
    let export: serde_json::Value = serde_json::from_str(setup.commands[0].argv.last().unwrap()).unwrap();
    assert_eq!(
        export["DataQuery"]["TableConfigurations"]["COST_AND_USAGE_REPORT"]["INCLUDE_IAM_PRINCIPAL_DATA"],
        "TRUE"
    );
    assert!(
        export["DataQuery"]["QueryStatement"]
            .as_str()
            .unwrap()
            .ends_with("line_item_iam_principal FROM COST_AND_USAGE_REPORT")
    );
}

mod lifecycle {
    use proptest::prelude::*;

    use super::*;

    /// The lifecycle as a plain state machine, written apart from the aggregate.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Reference {
        Unseen,
        Seen(GapStatus),
    }

    #[derive(Debug, Clone)]
    enum Step {
        Present,
        Absent,
        Act,
        Resolve,
        Recall,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![Just(Step::Present), Just(Step::Absent), Just(Step::Act), Just(Step::Resolve), Just(Step::Recall)]
    }

    proptest! {
        #[test]
        fn the_fold_matches_the_reference_machine(steps in proptest::collection::vec(step(), 0..40)) {
            let mut gap = AllocationGap::default();
            let mut reference = Reference::Unseen;
            // The reference's stack of (state before) for decisions still standing.
            let mut standing: Vec<GapStatus> = Vec::new();
            let mut present = false;
            for (i, s) in steps.iter().enumerate() {
                let through = i as u64 + 1;
                let command = match s {
                    Step::Present => observe("2026-11", Some(spend(100)), true, through),
                    Step::Absent => observe("2026-11", None, true, through),
                    // Each a distinct decision (a repeat of the same one is a retry).
                    Step::Act => GapCommand::Act {
                        action: GapActionKind::RecommendDedicatedRole,
                        outcome: ActionOutcome::default(),
                        decider: fl(&format!("acted at step {i}")),
                    },
                    Step::Resolve => GapCommand::Resolve { decider: fl(&format!("decided at step {i}")) },
                    Step::Recall => GapCommand::Recall { decider: fl(&format!("revisited at step {i}")) },
                };
                let decided = gap.decide(&command);
                let expected = match (reference, s) {
                    (Reference::Unseen, Step::Present) => { present = true; Some(Reference::Seen(GapStatus::Active)) }
                    (Reference::Unseen, Step::Absent) => Some(Reference::Unseen),
                    (Reference::Unseen, _) => None,
                    // A cause that left and came back reopens; a decision taken while it
                    // stood is not undone by its still standing.
                    (Reference::Seen(st), Step::Present) => {
                        let reopened = st == GapStatus::Resolved && !present;
                        present = true;
                        if reopened { standing.clear(); Some(Reference::Seen(GapStatus::Active)) } else { Some(reference) }
                    }
                    (Reference::Seen(_), Step::Absent) => {
                        let cleared = present;
                        present = false;
                        if cleared { standing.clear(); Some(Reference::Seen(GapStatus::Resolved)) } else { Some(reference) }
                    }
                    (Reference::Seen(GapStatus::Active), Step::Act) => { standing.push(GapStatus::Active); Some(Reference::Seen(GapStatus::Actioned)) }
                    (Reference::Seen(_), Step::Act) => None,
                    (Reference::Seen(GapStatus::Resolved), Step::Resolve) => None,
                    (Reference::Seen(st), Step::Resolve) => { standing.push(st); Some(Reference::Seen(GapStatus::Resolved)) }
                    (Reference::Seen(_), Step::Recall) => standing.pop().map(Reference::Seen),
                };
                match (expected, decided) {
                    (Some(next), Ok(events)) => {
                        for e in &events { gap = gap.clone().evolve(e); }
                        reference = next;
                    }
                    (None, Err(DomainError::IllegalTransition { .. })) => {}
                    (e, d) => prop_assert!(false, "step {i} {s:?}: expected {e:?}, decided {d:?}"),
                }
                let now = match reference { Reference::Unseen => None, Reference::Seen(st) => Some(st) };
                prop_assert_eq!(gap.identity.as_ref().map(|_| gap.status), now);
            }
        }
    }
}
