//! Given/when/then for spend cards and roll-ups.

use super::*;
use crate::aggregate::spec::given;

fn at(h: u32) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("2026-11-10T{h:02}:00:00Z")).unwrap().with_timezone(&Utc)
}

fn monday() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 2).unwrap()
}

const WORKLOAD: Uuid = Uuid::from_u128(7);
const PORTFOLIO: Uuid = Uuid::from_u128(70);

fn line(token_type: TokenType, cents: i64, out_of_scope: bool) -> CardLine {
    CardLine {
        model: "anthropic.claude-3-haiku-20240307-v1:0".into(),
        token_type,
        region: if out_of_scope { "eu-west-1" } else { "us-east-1" }.into(),
        tokens: 1_000,
        cents,
        out_of_scope,
    }
}

/// $600 actual against a $500 estimate: 20 % over — at the default threshold, not flagged;
/// one line outside the approval.
fn figures(output_cents: i64) -> CardFigures {
    CardFigures {
        workload_id: WORKLOAD,
        portfolio_id: PORTFOLIO,
        week: monday(),
        lines: vec![
            line(TokenType::Input, 20_000, false),
            line(TokenType::Output, output_cents, false),
            line(TokenType::Input, 10_000, true),
        ],
        estimate_cents: 50_000,
        threshold_percent: DEFAULT_VARIANCE_THRESHOLD_PERCENT,
        forecast: None,
    }
}

fn issue(output_cents: i64, reason: &str) -> CardCommand {
    issue_through(output_cents, reason, 10)
}

fn issue_through(output_cents: i64, reason: &str, through: u64) -> CardCommand {
    CardCommand::Issue {
        figures: figures(output_cents),
        batches: vec!["b1".into()],
        reason: reason.into(),
        through,
        at: at(1),
    }
}

fn who(by: &str, role: &str, rationale: &str) -> Decider {
    Decider { by: by.into(), role: role.into(), rationale: rationale.into(), at: at(2) }
}

fn history<A: Aggregate>(commands: &[A::Command]) -> Vec<A::Event>
where
    A::Error: std::fmt::Debug,
{
    let mut state = A::default();
    let mut out = Vec::new();
    for c in commands {
        for e in state.decide(c).unwrap() {
            state = state.clone().evolve(&e);
            out.push(e);
        }
    }
    out
}

#[test]
fn figures_state_the_variance_and_flag_what_may_be_disputed() {
    let f = figures(30_000);
    assert_eq!((f.actual_cents(), f.variance_cents(), f.variance_basis_points()), (60_000, 10_000, Some(2_000)));
    assert!(!f.variance_flagged(), "exactly at the threshold is not over it");
    assert_eq!(
        f.flagged_lines(),
        BTreeSet::from(["anthropic.claude-3-haiku-20240307-v1:0/input/eu-west-1".to_owned()])
    );
    let over = figures(30_001);
    assert!(over.variance_flagged());
    assert_eq!(over.flagged_lines().len(), 3, "a flagged variance opens every line to dispute");
    let none = CardFigures { estimate_cents: 0, ..figures(1) };
    assert!(none.variance_flagged() && none.variance_basis_points().is_none(), "spend with no estimate is flagged");
    assert_eq!(iso_week_start(monday()), Ok(monday()));
    assert!(iso_week_start(monday().succ_opt().unwrap()).unwrap_err().contains("not the Monday"));
}

#[test]
fn a_card_is_issued_once_per_figures_and_a_restatement_is_a_new_version_with_its_reason() {
    let events = given::<SpendCard>(&[]).when(issue(30_000, "")).unwrap();
    assert!(
        matches!(&events[..], [CardEvent::SpendCardIssued { version: 1, card_id, .. }] if *card_id == card_id_of())
    );
    let h = history::<SpendCard>(&[issue(30_000, "")]);
    assert_eq!(given::<SpendCard>(&h).when(issue(30_000, "")).unwrap(), vec![], "the same figures: nothing");
    let DomainError::Invalid(v) = given::<SpendCard>(&h).when(issue(31_000, " ")).unwrap_err() else { panic!() };
    assert_eq!(v[0].field, "reason");
    let v2 = given::<SpendCard>(&h).when(issue(31_000, "batch b2 restated output tokens: +$10.00")).unwrap();
    assert!(
        matches!(&v2[..], [CardEvent::SpendCardIssued { version: 2, reason, .. }] if reason.starts_with("batch b2"))
    );
    // An evaluation through an older position (a re-run, a process catching up) changes nothing.
    assert_eq!(given::<SpendCard>(&h).when(issue_through(31_000, "older", 9)).unwrap(), vec![]);
}

fn card_id_of() -> Uuid {
    card_id(WORKLOAD, monday())
}

#[test]
fn the_product_owner_accepts_or_disputes_flagged_lines_and_the_finops_lead_resolves() {
    let h = history::<SpendCard>(&[issue(30_000, "")]);
    let po = |why: &str| who("po-maria", "product_owner", why);
    let accepted =
        given::<SpendCard>(&h).when(CardCommand::Accept { version: 1, decider: po("Matches our load test") });
    assert!(matches!(&accepted.unwrap()[..], [CardEvent::SpendCardAccepted { version: 1, .. }]));

    // A line that is not flagged cannot be disputed; every fault is named at once.
    let dispute = |lines: &[&str], why: &str| CardCommand::Dispute {
        version: 1,
        lines: lines.iter().map(|l| (*l).to_owned()).collect(),
        decider: po(why),
    };
    let DomainError::Invalid(v) = given::<SpendCard>(&h)
        .when(dispute(&["anthropic.claude-3-haiku-20240307-v1:0/output/us-east-1"], ""))
        .unwrap_err()
    else {
        panic!()
    };
    assert_eq!(v.iter().map(|v| v.field.as_str()).collect::<Vec<_>>(), vec!["lines[0]", "rationale"]);
    assert!(v[0].description.contains("flagged: anthropic.claude-3-haiku-20240307-v1:0/input/eu-west-1"));
    let flagged = "anthropic.claude-3-haiku-20240307-v1:0/input/eu-west-1";
    let disputed = given::<SpendCard>(&h).when(dispute(&[flagged], "Not ours: eu-west-1 is the data team")).unwrap();
    let mut all = h.clone();
    all.extend(disputed);
    assert_eq!(SpendCard::fold(&all).status, CardStatus::Disputed);
    // Accepting a disputed card is refused, naming the state.
    assert_eq!(
        given::<SpendCard>(&all).when(CardCommand::Accept { version: 1, decider: po("ok after all") }).unwrap_err(),
        DomainError::IllegalTransition { aggregate: "spend card", state: "disputed", action: "accept" }
    );
    // The FinOps Lead adjusts the charge; negative amounts are refused.
    let fl = |why: &str| who("fl-ana", "finops_lead", why);
    let negative =
        CardCommand::Resolve { version: 1, outcome: DisputeOutcome::Adjusted { cents: -1 }, decider: fl("credit") };
    let DomainError::Invalid(v) = given::<SpendCard>(&all).when(negative).unwrap_err() else { panic!() };
    assert_eq!(v[0].field, "adjusted_cents");
    let resolve = CardCommand::Resolve {
        version: 1,
        outcome: DisputeOutcome::Adjusted { cents: 50_000 },
        decider: fl("eu-west-1 moves to the data team's card"),
    };
    all.extend(given::<SpendCard>(&all).when(resolve).unwrap());
    let card = SpendCard::fold(&all);
    assert_eq!((card.status, card.charged_cents()), (CardStatus::Resolved, Some(50_000)));
}

#[test]
fn a_new_version_reopens_sign_off_and_a_stale_version_is_refused() {
    let h = history::<SpendCard>(&[
        issue(30_000, ""),
        CardCommand::Accept { version: 1, decider: who("po-maria", "product_owner", "fine") },
        issue(35_000, "batch b2 restated the 5th"),
    ]);
    let card = SpendCard::fold(&h);
    assert_eq!((card.version(), card.status, card.versions.len()), (2, CardStatus::Issued, 2));
    assert_eq!(card.versions[0].figures, figures(30_000), "the earlier version stays readable");
    let stale = CardCommand::Accept { version: 1, decider: who("po-maria", "product_owner", "fine again") };
    let DomainError::Invalid(v) = given::<SpendCard>(&h).when(stale).unwrap_err() else { panic!() };
    assert!(v[0].description.contains("current version 2"), "{v:?}");
    assert!(matches!(
        given::<SpendCard>(&[])
            .when(CardCommand::Accept { version: 1, decider: who("po-maria", "product_owner", "x") }),
        Err(DomainError::IllegalTransition { state: "not issued", .. })
    ));
}

fn rollup_card(status: CardStatus, version: u32) -> RollupCard {
    RollupCard { workload_id: WORKLOAD, version, status, charged_cents: 60_000 }
}

fn approve(cards: Vec<RollupCard>, why: &str) -> RollupCommand {
    RollupCommand::Approve {
        portfolio_id: PORTFOLIO,
        week: monday(),
        cards,
        decider: who("pf-omar", "portfolio_owner", why),
    }
}

#[test]
fn the_portfolio_owner_approves_once_every_card_is_signed_off_and_a_new_version_reopens_it() {
    let waiting =
        given::<PortfolioRollup>(&[]).when(approve(vec![rollup_card(CardStatus::Disputed, 1)], "ok")).unwrap_err();
    let DomainError::Precondition(text) = waiting else { panic!() };
    assert!(text.contains("disputed"), "{text}");
    assert!(matches!(given::<PortfolioRollup>(&[]).when(approve(vec![], "ok")), Err(DomainError::Precondition(_))));
    let cards = vec![
        rollup_card(CardStatus::Accepted, 1),
        RollupCard { workload_id: Uuid::from_u128(8), ..rollup_card(CardStatus::Resolved, 2) },
    ];
    let approved = given::<PortfolioRollup>(&[]).when(approve(cards.clone(), "Chargeback-ready")).unwrap();
    assert!(matches!(&approved[..], [RollupEvent::SpendRollupApproved { total_cents: 120_000, .. }]));
    let h = history::<PortfolioRollup>(&[approve(cards.clone(), "Chargeback-ready")]);
    assert_eq!(
        given::<PortfolioRollup>(&h).when(approve(cards.clone(), "again")).unwrap_err(),
        DomainError::IllegalTransition { aggregate: "roll-up", state: "approved", action: "approve" }
    );
    // The card issuer's new version of a card in it reopens the roll-up; an old one does not.
    let reopen = |version| RollupCommand::Reopen { workload_id: WORKLOAD, version, at: at(3) };
    assert_eq!(given::<PortfolioRollup>(&h).when(reopen(1)).unwrap(), vec![]);
    let reopened = given::<PortfolioRollup>(&h).when(reopen(2)).unwrap();
    let mut all = h.clone();
    all.extend(reopened);
    assert!(!PortfolioRollup::fold(&all).is_approved());
    assert_eq!(given::<PortfolioRollup>(&all).when(approve(cards, "Approved again")).unwrap().len(), 1);
}
