use super::*;
use crate::aggregate::spec::given;
use chrono::{DateTime, Utc};
use proptest::prelude::*;

const W: Uuid = Uuid::from_u128(42);

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
}

fn row(d: u32, principal: &str, model: &str, workload: Option<Uuid>, cents: i64) -> DailySpend {
    DailySpend {
        day: day(d),
        account: "111122223333".into(),
        principal: principal.into(),
        model: model.into(),
        workload_id: workload,
        cents,
    }
}

fn accounts() -> BTreeSet<String> {
    ["111122223333".to_owned()].into()
}

#[test]
fn a_day_far_above_the_trailing_baseline_opens_one_spike_with_its_evidence() {
    // $100 a day for a week, then $450 (fires: 4×, $350 above) and $400 (under 3× a baseline
    // that now holds $450).
    let mut rows: Vec<DailySpend> = (1..=7).map(|d| row(d, "bot-role", "claude", Some(W), 10_000)).collect();
    rows.push(row(8, "bot-role", "claude", Some(W), 45_000));
    rows.push(row(9, "bot-role", "claude", Some(W), 40_000));
    let firings = detect(&rows, &accounts(), &DetectorSettings::default());
    let spikes: Vec<&Firing> = firings.iter().filter(|f| f.signal == Signal::SpendSpike).collect();
    assert_eq!(spikes.len(), 1, "{firings:#?}");
    let spike = spikes[0];
    assert_eq!(spike.subject, format!("workload/{W}"));
    assert_eq!(spike.workload_id, Some(W));
    assert_eq!(
        (spike.evidence.day, spike.evidence.observed_cents, spike.evidence.baseline_cents),
        (day(8), 45_000, 10_000)
    );
    assert_eq!(spike.evidence.days, [day(8)], "day 9 is below 3× the baseline that now includes day 8");
    assert_eq!(spike.evidence.principals, ["bot-role"]);
    assert!(
        spike.summary.contains("$450.00 on 2026-11-08, 4× its trailing daily baseline of $100.00"),
        "{}",
        spike.summary
    );
    // Nothing for an account with requests and a steady model.
    assert!(firings.iter().all(|f| f.signal != Signal::NewPrincipal));
}

#[test]
fn under_the_floor_or_the_factor_nothing_fires() {
    // 3× but only $20 above: under the $250 floor.
    let mut rows: Vec<DailySpend> = (1..=7).map(|d| row(d, "r", "m", Some(W), 1_000)).collect();
    rows.push(row(8, "r", "m", Some(W), 3_000));
    assert!(detect(&rows, &accounts(), &DetectorSettings::default()).is_empty());
    // $250 above but only 2.5×.
    let mut rows: Vec<DailySpend> = (1..=7).map(|d| row(d, "r", "m", Some(W), 20_000)).collect();
    rows.push(row(8, "r", "m", Some(W), 45_000));
    let firings = detect(&rows, &accounts(), &DetectorSettings::default());
    assert!(firings.iter().all(|f| f.signal != Signal::SpendSpike), "{firings:#?}");
    // A first day has no baseline.
    assert!(detect(&[row(1, "r", "m", Some(W), 1_000_000)], &accounts(), &DetectorSettings::default()).is_empty());
}

#[test]
fn a_model_at_ten_times_its_baseline_surges_and_a_caller_without_a_request_is_new() {
    let mut rows: Vec<DailySpend> = (1..=7).map(|d| row(d, "r", "nova", Some(W), 1_000)).collect();
    rows.push(row(8, "r", "nova", Some(W), 12_000));
    let settings = DetectorSettings::default();
    let firings = detect(&rows, &accounts(), &settings);
    let surge = firings.iter().find(|f| f.signal == Signal::ModelSurge).expect("surge");
    assert_eq!(surge.subject, "model/111122223333/nova");
    assert_eq!(surge.workload_id, None);
    let stranger = DailySpend { account: "999988887777".into(), ..row(5, "intern-laptop", "claude", None, 700) };
    let other = DailySpend { account: "999988887777".into(), ..row(6, "ci-runner", "claude", None, 900) };
    let firings = detect(&[stranger, other], &accounts(), &settings);
    let new: Vec<&Firing> = firings.iter().filter(|f| f.signal == Signal::NewPrincipal).collect();
    assert_eq!(new.len(), 1, "one investigation per account: {firings:#?}");
    let new = new[0];
    assert_eq!(new.subject, "account/999988887777");
    assert_eq!((new.evidence.day, new.account.as_str()), (day(5), "999988887777"));
    assert_eq!(new.evidence.principals, ["ci-runner", "intern-laptop"]);
    assert!(
        new.summary.starts_with("2 caller(s) spent $16.00 in account 999988887777 from 2026-11-05"),
        "{}",
        new.summary
    );
    assert_eq!(new.investigation_id(), investigation_id(Signal::NewPrincipal, &new.subject, day(5)));
}

fn firing() -> Firing {
    let mut rows: Vec<DailySpend> = (1..=7).map(|d| row(d, "r", "m", Some(W), 10_000)).collect();
    rows.push(row(8, "r", "m", Some(W), 90_000));
    detect(&rows, &accounts(), &DetectorSettings::default()).remove(0)
}

fn at(h: u32) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("2026-11-09T{h:02}:00:00Z")).unwrap().with_timezone(&Utc)
}

fn who(by: &str, role: &str, why: &str, h: u32) -> Decider {
    Decider { by: by.into(), role: role.into(), rationale: why.into(), at: at(h) }
}

#[test]
fn opened_assigned_noted_linked_and_closed_each_step_with_its_who_and_why() {
    let open = InvestigationCommand::Open { firing: firing(), through: 10, at: at(1) };
    let opened = given::<Investigation>(&[]).when(open.clone()).unwrap();
    // Opening again (a detector re-run) records nothing.
    assert!(given::<Investigation>(&opened).when(open).unwrap().is_empty());
    let mut history = opened;
    let mut step = |command: InvestigationCommand| {
        let events = given::<Investigation>(&history).when(command).unwrap();
        history.extend(events);
        Investigation::fold(&history)
    };
    let state = step(InvestigationCommand::Assign {
        owner: "po-maria".into(),
        decider: who("fl-ana", "finops_lead", "Her workload", 2),
    });
    assert_eq!((state.status, state.owner.as_deref()), (InvestigationStatus::Investigating, Some("po-maria")));
    let state = step(InvestigationCommand::Note {
        note: "A retry loop after the 4.1 release".into(),
        decider: who("po-maria", "product_owner", "A retry loop after the 4.1 release", 3),
    });
    assert_eq!(state.notes.len(), 1);
    let gap = format!("gaps/{}", Uuid::from_u128(9));
    let state = step(InvestigationCommand::LinkGap {
        gap: gap.clone(),
        decider: who("fl-ana", "finops_lead", "Same spend", 4),
    });
    assert_eq!(state.gaps, std::slice::from_ref(&gap));
    let state = step(InvestigationCommand::Close { decider: who("fl-ana", "finops_lead", "Fixed in 4.2", 5) });
    assert_eq!(state.status, InvestigationStatus::Closed);
    let late = given::<Investigation>(&history)
        .when(InvestigationCommand::Note { note: "more".into(), decider: who("po-maria", "product_owner", "more", 6) })
        .unwrap_err();
    assert_eq!(late.to_string(), "cannot note a investigation that is closed");
}

#[test]
fn bad_steps_are_refused_with_every_fault_named() {
    let never = given::<Investigation>(&[])
        .when(InvestigationCommand::Close { decider: who("fl-ana", "finops_lead", "x", 1) })
        .unwrap_err();
    assert_eq!(never.to_string(), "cannot close a investigation that is not opened");
    let opened = given::<Investigation>(&[])
        .when(InvestigationCommand::Open { firing: firing(), through: 1, at: at(1) })
        .unwrap();
    let bad = given::<Investigation>(&opened)
        .when(InvestigationCommand::Assign { owner: " ".into(), decider: who("fl-ana", "finops_lead", "", 2) })
        .unwrap_err();
    let text = bad.to_string();
    assert!(text.contains("owner") && text.contains("rationale"), "{text}");
    let bad = given::<Investigation>(&opened)
        .when(InvestigationCommand::LinkGap { gap: "gap-7".into(), decider: who("fl-ana", "finops_lead", "why", 2) })
        .unwrap_err();
    assert!(bad.to_string().contains("is not a gap name"), "{bad}");
}

proptest! {
    // Whatever the spend, detection is deterministic, opens at most one investigation per
    // signal and subject, and every firing's evidence holds its own first day.
    #[test]
    fn detection_is_a_function_with_one_firing_per_signal_and_subject(
        cents in proptest::collection::vec((1u32..=30, 0usize..3, 0usize..2, 0i64..200_000), 0..80)
    ) {
        let rows: Vec<DailySpend> = cents
            .iter()
            .map(|(d, p, w, c)| row(*d, ["a", "b", "c"][*p], ["m1", "m2", "m3"][*p], (*w == 1).then_some(W), *c))
            .collect();
        let settings = DetectorSettings::default();
        let once = detect(&rows, &accounts(), &settings);
        prop_assert_eq!(&once, &detect(&rows, &accounts(), &settings));
        let keys: BTreeSet<(Signal, String)> = once.iter().map(|f| (f.signal, f.subject.clone())).collect();
        prop_assert_eq!(keys.len(), once.len());
        for f in &once {
            prop_assert_eq!(f.evidence.days.first(), Some(&f.evidence.day));
            prop_assert!(f.evidence.observed_cents > 0);
        }
    }
}

fn hour(d: u32, h: u32) -> DateTime<Utc> {
    day(d).and_hms_opt(h, 0, 0).unwrap().and_utc()
}

fn hourly(d: u32, h: u32, principal: &str, workload: Option<Uuid>, cents: i64) -> HourlySpend {
    HourlySpend {
        hour: hour(d, h),
        account: "111122223333".into(),
        principal: principal.into(),
        model: "anthropic.claude-3-haiku-20240307-v1:0".into(),
        workload_id: workload,
        cents,
    }
}

#[test]
fn an_hour_far_above_the_trailing_hourly_baseline_opens_the_spike_cur_would_open_that_day() {
    // $5 an hour from the 10th, then three hours at $400 from 09:00 on the 12th.
    let mut rows: Vec<HourlySpend> =
        (0..57).map(|h| hourly(10 + h / 24, h % 24, "triage-role", Some(W), 500)).collect();
    rows.extend((9..12).map(|h| hourly(12, h, "triage-role", Some(W), 40_000)));
    let firings = detect_hourly(&rows, &accounts(), &DetectorSettings::default());
    let spike = firings.iter().find(|f| f.signal == Signal::SpendSpike).expect("a spike");
    assert_eq!(spike.evidence.hours, [hour(12, 9), hour(12, 10), hour(12, 11)]);
    assert_eq!((spike.evidence.day, spike.evidence.days.as_slice()), (day(12), [day(12)].as_slice()));
    assert_eq!((spike.evidence.observed_cents, spike.evidence.baseline_cents), (40_000, 500));
    assert!(
        spike.summary.contains("$400.00 in the hour from 2026-11-12 09:00 UTC, 80× its trailing hourly"),
        "{}",
        spike.summary
    );
    // CUR's daily firing on the same subject and day is the same investigation.
    assert_eq!(spike.investigation_id(), investigation_id(Signal::SpendSpike, &format!("workload/{W}"), day(12)));
    // The model surged too (80× its hourly baseline, $395 above the $250 floor).
    assert!(firings.iter().any(|f| f.signal == Signal::ModelSurge));
}

#[test]
fn on_hours_nothing_fires_under_the_floor_or_without_a_day_of_history() {
    // 23× the hourly baseline ($4.21: the quiet hours count) but $95.79 above it: under the
    // $250 hourly floors.
    let mut rows: Vec<HourlySpend> = (0..48).map(|h| hourly(10 + h / 24, h % 24, "r", Some(W), 500)).collect();
    rows.push(hourly(12, 9, "r", Some(W), 10_000));
    assert!(detect_hourly(&rows, &accounts(), &DetectorSettings::default()).is_empty());
    // Ten hours of history: no baseline yet, whatever the hour after.
    let mut rows: Vec<HourlySpend> = (0..10).map(|h| hourly(12, h, "r", Some(W), 500)).collect();
    rows.push(hourly(12, 10, "r", Some(W), 100_000));
    assert!(detect_hourly(&rows, &accounts(), &DetectorSettings::default()).is_empty());
}

#[test]
fn hours_of_covered_days_count_for_the_baseline_but_only_uncovered_days_are_judged() {
    // $5 an hour from the 10th; a storm at 09:00 on the 12th and another at 09:00 on the 13th.
    let mut rows: Vec<HourlySpend> = (0..81).map(|h| hourly(10 + h / 24, h % 24, "r", Some(W), 500)).collect();
    rows.push(hourly(12, 9, "r", Some(W), 40_000));
    rows.push(hourly(13, 9, "r", Some(W), 80_000));
    // The 12th is the logs' (they judged it): CUR's firing starts on the 13th, measured
    // against a baseline that holds the 12th's storm.
    let judged = |_: &str, d: NaiveDate| d != day(12);
    let firings = detect_hourly_where(&rows, &accounts(), &DetectorSettings::default(), &judged);
    let spike = firings.iter().find(|f| f.signal == Signal::SpendSpike).expect("a spike on the 13th");
    assert_eq!(spike.evidence.hours, [hour(13, 9)]);
    assert_eq!(spike.evidence.day, day(13));
    assert!(spike.evidence.baseline_cents > 500, "the 12th's storm is in the baseline: {:?}", spike.evidence);
    // Nothing is judged: nothing fires.
    assert!(detect_hourly_where(&rows, &accounts(), &DetectorSettings::default(), &|_, _| false).is_empty());
}
