//! Investigations (DOMAIN.md §9, issue 13.2–13.3): signals between weekly cards open an
//! investigation with its evidence; the FinOps Lead assigns it to an owner, people note
//! what they find, link it to the Allocation Gap it explains, and close it with a
//! rationale. Every step records who, role, when and why.
//!
//! The signals ([`detect`], pure over a period's daily spend):
//! - **spend spike** — a workload's (or, unattributed, a principal's) day far above its
//!   trailing baseline: at least `spike_factor` × the mean of the previous
//!   `baseline_days`, and at least `spike_floor_cents` above it. CUR is daily here; the
//!   same rule runs on the invocation logs' hours ([`detect_hourly`]).
//! - **model surge** — a model in an account consuming at least `surge_factor` × its
//!   trailing baseline (and `surge_floor_cents` above it).
//! - **new principal** — callers with AI spend in an account that has no approved
//!   Business Request: one investigation per account, its callers in the evidence.
//!
//! One open investigation per signal and subject: [`investigation_id`] derives the id from
//! the signal, the subject and the first day it fired, so a re-run opens nothing twice.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::error::{DomainError, Violations};
use crate::gaps::Decider;

/// The namespace of investigation ids.
const NAMESPACE: Uuid = Uuid::from_u128(0x1a7e_5e1c_0b5e_4c7a_9d2f_3e4a_5b6c_7d8e);

/// What fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// A day far above the subject's trailing baseline.
    SpendSpike,
    /// A model far above its trailing baseline in an account.
    ModelSurge,
    /// A caller with AI spend in an account with no Business Request.
    NewPrincipal,
}

impl Signal {
    /// Every signal.
    pub const ALL: [Signal; 3] = [Signal::SpendSpike, Signal::ModelSurge, Signal::NewPrincipal];

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SpendSpike => "spend_spike",
            Self::ModelSurge => "model_surge",
            Self::NewPrincipal => "new_principal",
        }
    }
}

/// The detectors' thresholds (configurable; these are the defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetectorSettings {
    /// A spike is at least this many times the baseline…
    pub spike_factor: u32,
    /// …and at least this many cents above it.
    pub spike_floor_cents: i64,
    /// A surge is at least this many times the model's baseline…
    pub surge_factor: u32,
    /// …and at least this many cents above it.
    pub surge_floor_cents: i64,
    /// The trailing window, in days (at least one earlier day with spend is needed).
    pub baseline_days: u32,
    /// On hours (invocation logs): a spike is at least this many cents above the trailing
    /// hourly baseline (the factor is `spike_factor`).
    pub hourly_spike_floor_cents: i64,
    /// On hours: a surge is at least this many cents above the model's hourly baseline.
    pub hourly_surge_floor_cents: i64,
}

impl Default for DetectorSettings {
    fn default() -> Self {
        // Floors well above the day-to-day noise of a few lumpy calls.
        Self {
            spike_factor: 3,
            spike_floor_cents: 25_000,
            surge_factor: 10,
            surge_floor_cents: 10_000,
            baseline_days: 7,
            // An hour's floors are a day's spike floor: a single busy hour of a lumpy
            // workload (tens of dollars, or a hundred) is not news; a storm burning
            // hundreds an hour is.
            hourly_spike_floor_cents: 25_000,
            hourly_surge_floor_cents: 25_000,
        }
    }
}

/// One day's AI spend of one caller on one model, as attribution answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailySpend {
    /// The usage day.
    pub day: NaiveDate,
    /// The usage account.
    pub account: String,
    /// The caller (role or user name; empty when CUR names none).
    pub principal: String,
    /// The model.
    pub model: String,
    /// The workload charged (`None`: unattributed).
    pub workload_id: Option<Uuid>,
    /// Cents.
    pub cents: i64,
}

/// One hour's AI spend of one caller on one model, as the invocation logs price it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourlySpend {
    /// The hour's start.
    pub hour: DateTime<Utc>,
    /// The usage account.
    pub account: String,
    /// The caller (role or user name).
    pub principal: String,
    /// The model.
    pub model: String,
    /// The workload its role's claim charges (`None`: unattributed).
    pub workload_id: Option<Uuid>,
    /// Cents.
    pub cents: i64,
}

/// What a firing rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// The first day it fired.
    pub day: NaiveDate,
    /// Every day it fired, in order.
    pub days: Vec<NaiveDate>,
    /// Every hour it fired, in order, when it fired on hours (invocation logs); empty for
    /// a firing on CUR's days (absent in events recorded before logs were read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hours: Vec<DateTime<Utc>>,
    /// The subject's spend on `day` — on the first hour, for a firing on hours (cents).
    pub observed_cents: i64,
    /// Its trailing baseline before `day` (cents per day; 0 for a new principal).
    pub baseline_cents: i64,
    /// The callers behind the spend on `day`, largest first.
    pub principals: Vec<String>,
    /// The models behind it, largest first.
    pub models: Vec<String>,
}

/// A signal that fired, before it is an investigation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Firing {
    /// Which signal.
    pub signal: Signal,
    /// What it fired on: `workload/{id}`, `principal/{account}/{name}`, `model/{account}/{model}`,
    /// `account/{account}` (new principals).
    pub subject: String,
    /// The account.
    pub account: String,
    /// The workload, when the subject is one.
    pub workload_id: Option<Uuid>,
    /// The evidence.
    pub evidence: Evidence,
    /// One sentence for people.
    pub summary: String,
}

impl Firing {
    /// The investigation it opens.
    pub fn investigation_id(&self) -> Uuid {
        investigation_id(self.signal, &self.subject, self.evidence.day)
    }
}

/// The investigation of `signal` on `subject` first firing on `day`.
pub fn investigation_id(signal: Signal, subject: &str, day: NaiveDate) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("{}/{subject}/{day}", signal.as_str()).as_bytes())
}

fn dollars(cents: i64) -> String {
    crate::vocabulary::dollars(cents)
}

/// A unit of time spend is summed over: CUR's days, or the logs' hours.
trait Bucket: Copy + Ord + std::fmt::Display {
    /// Buckets in a day.
    const PER_DAY: u32;
    /// `n` buckets earlier.
    fn back(self, n: u32) -> Self;
    /// Buckets from `from` to `to`.
    fn span(from: Self, to: Self) -> i64;
    /// The day it is in.
    fn day(self) -> NaiveDate;
    /// The hour, for hours.
    fn hour(self) -> Option<DateTime<Utc>>;
}

impl Bucket for NaiveDate {
    const PER_DAY: u32 = 1;
    fn back(self, n: u32) -> Self {
        self - Duration::days(i64::from(n))
    }
    fn span(from: Self, to: Self) -> i64 {
        (to - from).num_days()
    }
    fn day(self) -> NaiveDate {
        self
    }
    fn hour(self) -> Option<DateTime<Utc>> {
        None
    }
}

impl Bucket for DateTime<Utc> {
    const PER_DAY: u32 = 24;
    fn back(self, n: u32) -> Self {
        self - Duration::hours(i64::from(n))
    }
    fn span(from: Self, to: Self) -> i64 {
        (to - from).num_hours()
    }
    fn day(self) -> NaiveDate {
        self.date_naive()
    }
    fn hour(self) -> Option<DateTime<Utc>> {
        Some(self)
    }
}

/// One bucket of one caller's spend on one model: a day from CUR or an hour from the logs.
struct Spend<'a, K> {
    at: K,
    account: &'a str,
    principal: &'a str,
    model: &'a str,
    workload_id: Option<Uuid>,
    cents: i64,
}

/// The subjects' totals per bucket and who and what is behind each.
struct Series<K> {
    account: String,
    workload_id: Option<Uuid>,
    buckets: BTreeMap<K, i64>,
    principals: BTreeMap<K, BTreeMap<String, i64>>,
    models: BTreeMap<K, BTreeMap<String, i64>>,
}

impl<K> Default for Series<K> {
    fn default() -> Self {
        Self {
            account: String::new(),
            workload_id: None,
            buckets: BTreeMap::new(),
            principals: BTreeMap::new(),
            models: BTreeMap::new(),
        }
    }
}

impl<K: Bucket> Series<K> {
    fn add(&mut self, row: &Spend<'_, K>) {
        row.account.clone_into(&mut self.account);
        self.workload_id = row.workload_id;
        *self.buckets.entry(row.at).or_default() += row.cents;
        *self.principals.entry(row.at).or_default().entry(row.principal.to_owned()).or_default() += row.cents;
        *self.models.entry(row.at).or_default().entry(row.model.to_owned()).or_default() += row.cents;
    }

    fn largest(map: Option<&BTreeMap<String, i64>>) -> Vec<String> {
        let mut all: Vec<(&String, &i64)> = map.into_iter().flatten().filter(|(k, _)| !k.is_empty()).collect();
        all.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        all.into_iter().take(5).map(|(k, _)| k.clone()).collect()
    }

    /// The buckets far above their trailing baseline: `(bucket, observed, baseline)`.
    /// Buckets with no spend since the first with spend count as zero.
    fn above(&self, factor: u32, floor: i64, window: u32) -> Vec<(K, i64, i64)> {
        let Some(first) = self.buckets.keys().next().copied() else { return vec![] };
        // Three days of history at least on days (a second day is no baseline), a day on hours.
        let least = i64::from(window.min(K::PER_DAY.max(3)));
        let mut out = Vec::new();
        for (&at, &observed) in &self.buckets {
            let start = at.back(window).max(first);
            let span = K::span(start, at);
            if span < least {
                continue;
            }
            let before: i64 = self.buckets.range(start..at).map(|(_, c)| c).sum();
            if before <= 0 {
                continue;
            }
            // Exactly, in whole cents: observed ≥ factor × (before / span).
            let baseline = before / span;
            if i128::from(observed) * i128::from(span) >= i128::from(factor) * i128::from(before)
                && observed - baseline >= floor
            {
                out.push((at, observed, baseline));
            }
        }
        out
    }
}

/// What the period's daily spend fires: at most one firing per signal and subject, on the
/// first day it fires (every day it fires is in the evidence). `accounts_with_requests`:
/// the accounts with an approved Business Request.
pub fn detect(
    rows: &[DailySpend],
    accounts_with_requests: &BTreeSet<String>,
    settings: &DetectorSettings,
) -> Vec<Firing> {
    let spends = rows.iter().map(|r| Spend {
        at: r.day,
        account: &r.account,
        principal: &r.principal,
        model: &r.model,
        workload_id: r.workload_id,
        cents: r.cents,
    });
    let floors = (settings.spike_floor_cents, settings.surge_floor_cents);
    detect_in(spends, accounts_with_requests, settings, floors, &|_, _| true)
}

/// What the invocation logs' hourly spend fires (issue 13.2): the same signals on hours —
/// an hour at least `spike_factor` × its trailing hourly baseline (over `baseline_days`
/// days, a day of history at least) and `hourly_spike_floor_cents` above it; a model's
/// hour at least `surge_factor` × its baseline and `hourly_surge_floor_cents` above it; a
/// caller in an account with no Business Request. The investigation's id is the same one
/// CUR's daily firing on that subject and day would open, so the late signal finds the
/// fast one open and opens nothing twice.
pub fn detect_hourly(
    rows: &[HourlySpend],
    accounts_with_requests: &BTreeSet<String>,
    settings: &DetectorSettings,
) -> Vec<Firing> {
    detect_hourly_where(rows, accounts_with_requests, settings, &|_, _| true)
}

/// [`detect_hourly`] judging only the hours of the accounts and days `judged` admits,
/// every hour still counting towards the baselines: CUR's hours of an account and day the
/// invocation logs cover were judged when the logs landed, yet they are the history the
/// uncovered hours after them are measured against.
pub fn detect_hourly_where(
    rows: &[HourlySpend],
    accounts_with_requests: &BTreeSet<String>,
    settings: &DetectorSettings,
    judged: &dyn Fn(&str, NaiveDate) -> bool,
) -> Vec<Firing> {
    let spends = rows.iter().map(|r| Spend {
        at: r.hour,
        account: &r.account,
        principal: &r.principal,
        model: &r.model,
        workload_id: r.workload_id,
        cents: r.cents,
    });
    let floors = (settings.hourly_spike_floor_cents, settings.hourly_surge_floor_cents);
    detect_in(spends, accounts_with_requests, settings, floors, judged)
}

fn detect_in<'a, K: Bucket>(
    rows: impl Iterator<Item = Spend<'a, K>>,
    accounts_with_requests: &BTreeSet<String>,
    settings: &DetectorSettings,
    (spike_floor, surge_floor): (i64, i64),
    judged: &dyn Fn(&str, NaiveDate) -> bool,
) -> Vec<Firing> {
    let mut spend: BTreeMap<String, Series<K>> = BTreeMap::new();
    let mut models: BTreeMap<String, Series<K>> = BTreeMap::new();
    let mut newcomers: BTreeMap<String, Series<K>> = BTreeMap::new();
    for row in rows.filter(|r| r.cents > 0) {
        let subject = match row.workload_id {
            Some(id) => format!("workload/{id}"),
            None => format!("principal/{}/{}", row.account, row.principal),
        };
        spend.entry(subject).or_default().add(&row);
        if !row.model.is_empty() {
            models.entry(format!("model/{}/{}", row.account, row.model)).or_default().add(&row);
        }
        if !accounts_with_requests.contains(row.account) && !row.principal.is_empty() {
            newcomers.entry(format!("account/{}", row.account)).or_default().add(&row);
        }
    }
    let unit = if K::PER_DAY == 1 { "daily" } else { "hourly" };
    let mut out = Vec::new();
    let mut fire = |signal: Signal, subject: &str, series: &Series<K>, hits: Vec<(K, i64, i64)>| {
        let hits: Vec<(K, i64, i64)> = hits.into_iter().filter(|h| judged(&series.account, h.0.day())).collect();
        let Some(&(at, observed, baseline)) = hits.first() else { return };
        let when = match at.hour() {
            Some(hour) => format!("in the hour from {}", hour.format("%Y-%m-%d %H:%M UTC")),
            None => format!("on {at}"),
        };
        let summary = match signal {
            Signal::SpendSpike => format!(
                "{subject} spent {} {when}, {}× its trailing {unit} baseline of {}",
                dollars(observed),
                if baseline > 0 { observed / baseline } else { 0 },
                dollars(baseline)
            ),
            Signal::ModelSurge => format!(
                "{subject} consumed {} {when} against a trailing {unit} baseline of {}",
                dollars(observed),
                dollars(baseline)
            ),
            Signal::NewPrincipal => {
                let callers: BTreeSet<&String> = series.principals.values().flat_map(|p| p.keys()).collect();
                format!(
                    "{} caller(s) spent {} in account {} from {}, and the account has no approved Business Request",
                    callers.len(),
                    dollars(series.buckets.values().sum()),
                    series.account,
                    at.day()
                )
            }
        };
        let mut days: Vec<NaiveDate> = hits.iter().map(|h| h.0.day()).collect();
        days.dedup();
        out.push(Firing {
            signal,
            subject: subject.to_owned(),
            account: series.account.clone(),
            workload_id: if signal == Signal::SpendSpike { series.workload_id } else { None },
            evidence: Evidence {
                day: at.day(),
                days,
                hours: hits.iter().filter_map(|h| h.0.hour()).collect(),
                observed_cents: observed,
                baseline_cents: baseline,
                principals: if signal == Signal::NewPrincipal {
                    // Every caller of the period, largest first.
                    let mut all: BTreeMap<String, i64> = BTreeMap::new();
                    for (p, c) in series.principals.values().flatten() {
                        *all.entry(p.clone()).or_default() += c;
                    }
                    let mut all: Vec<(String, i64)> = all.into_iter().collect();
                    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                    all.into_iter().take(20).map(|(p, _)| p).collect()
                } else {
                    Series::<K>::largest(series.principals.get(&at))
                },
                models: Series::<K>::largest(series.models.get(&at)),
            },
            summary,
        });
    };
    let window = settings.baseline_days.max(1) * K::PER_DAY;
    for (subject, series) in &spend {
        fire(Signal::SpendSpike, subject, series, series.above(settings.spike_factor, spike_floor, window));
    }
    for (subject, series) in &models {
        fire(Signal::ModelSurge, subject, series, series.above(settings.surge_factor, surge_floor, window));
    }
    for (subject, series) in &newcomers {
        let hits: Vec<(K, i64, i64)> = series.buckets.iter().map(|(d, c)| (*d, *c, 0)).collect();
        fire(Signal::NewPrincipal, subject, series, hits);
    }
    out
}

/// Where an investigation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum InvestigationStatus {
    /// Not opened.
    #[default]
    None,
    /// Opened, nobody assigned: the workload is alerting.
    Open,
    /// Assigned to an owner: the workload is being investigated.
    Investigating,
    /// Closed with a rationale.
    Closed,
}

impl InvestigationStatus {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "not opened",
            Self::Open => "open",
            Self::Investigating => "investigating",
            Self::Closed => "closed",
        }
    }
}

/// What may be asked of an investigation.
#[derive(Debug, Clone, PartialEq)]
pub enum InvestigationCommand {
    /// The detector opens it for `firing` (idempotent: an opened one records nothing).
    Open {
        /// What fired.
        firing: Firing,
        /// The log position the detector evaluated through.
        through: u64,
        /// When.
        at: DateTime<Utc>,
    },
    /// The FinOps Lead assigns it.
    Assign {
        /// The owner (a subject).
        owner: String,
        /// Who, role, why, when.
        decider: Decider,
    },
    /// Someone notes what they found.
    Note {
        /// The note.
        note: String,
        /// Who, role, when (the note is the why).
        decider: Decider,
    },
    /// Links it to the Allocation Gap it explains.
    LinkGap {
        /// `gaps/{uuid}`.
        gap: String,
        /// Who, role, why, when.
        decider: Decider,
    },
    /// Closes it.
    Close {
        /// Who, role, why, when.
        decider: Decider,
    },
}

/// What an investigation records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum InvestigationEvent {
    /// Opened by a signal.
    InvestigationOpened {
        /// Its id.
        investigation_id: Uuid,
        /// What fired.
        firing: Firing,
        /// The log position evaluated through.
        through: u64,
        /// When.
        at: DateTime<Utc>,
    },
    /// Assigned.
    InvestigationAssigned {
        /// The owner.
        owner: String,
        /// Who, role, why, when.
        decider: Decider,
    },
    /// A note.
    InvestigationNoted {
        /// The note.
        note: String,
        /// Who, role, when.
        decider: Decider,
    },
    /// Linked to a gap.
    InvestigationLinkedToGap {
        /// `gaps/{uuid}`.
        gap: String,
        /// Who, role, why, when.
        decider: Decider,
    },
    /// Closed.
    InvestigationClosed {
        /// Who, role, why, when.
        decider: Decider,
    },
}

/// An investigation's state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Investigation {
    /// Its id (set when opened).
    pub id: Option<Uuid>,
    /// What fired.
    pub firing: Option<Firing>,
    /// Where it stands.
    pub status: InvestigationStatus,
    /// Its owner.
    pub owner: Option<String>,
    /// Notes, oldest first.
    pub notes: Vec<(String, Decider)>,
    /// Linked gaps.
    pub gaps: Vec<String>,
    /// The latest decision (a retry of it records nothing).
    pub last_decision: Option<Decider>,
}

impl Investigation {
    fn illegal(&self, action: &'static str) -> DomainError {
        DomainError::IllegalTransition { aggregate: "investigation", state: self.status.as_str(), action }
    }

    /// A person's step: `Ok(false)` for a retry of the latest; refused when not opened or
    /// closed, or without a rationale.
    fn person_decides(&self, decider: &Decider, action: &'static str, mut v: Violations) -> Result<bool, DomainError> {
        if self.last_decision.as_ref() == Some(decider) {
            return Ok(false);
        }
        if matches!(self.status, InvestigationStatus::None | InvestigationStatus::Closed) {
            return Err(self.illegal(action));
        }
        v.require_rationale(&decider.rationale);
        v.into_result()?;
        Ok(true)
    }
}

impl Aggregate for Investigation {
    type Command = InvestigationCommand;
    type Event = InvestigationEvent;
    type Error = DomainError;

    fn decide(&self, command: &InvestigationCommand) -> Result<Vec<InvestigationEvent>, DomainError> {
        match command {
            InvestigationCommand::Open { firing, through, at } => {
                if self.status != InvestigationStatus::None {
                    return Ok(vec![]);
                }
                Ok(vec![InvestigationEvent::InvestigationOpened {
                    investigation_id: firing.investigation_id(),
                    firing: firing.clone(),
                    through: *through,
                    at: *at,
                }])
            }
            InvestigationCommand::Assign { owner, decider } => {
                let mut v = Violations::default();
                if owner.trim().is_empty() {
                    v.add("owner", "is required: whom the investigation is assigned to");
                }
                if self.owner.as_deref() == Some(owner.trim()) {
                    v.add("owner", format!("the investigation is already assigned to {owner}"));
                }
                if !self.person_decides(decider, "assign", v)? {
                    return Ok(vec![]);
                }
                Ok(vec![InvestigationEvent::InvestigationAssigned {
                    owner: owner.trim().to_owned(),
                    decider: decider.clone(),
                }])
            }
            InvestigationCommand::Note { note, decider } => {
                let mut v = Violations::default();
                if note.trim().is_empty() {
                    v.add("note", "is required: what was found");
                }
                if !self.person_decides(decider, "note", v)? {
                    return Ok(vec![]);
                }
                Ok(vec![InvestigationEvent::InvestigationNoted {
                    note: note.trim().to_owned(),
                    decider: decider.clone(),
                }])
            }
            InvestigationCommand::LinkGap { gap, decider } => {
                let mut v = Violations::default();
                let well_formed = gap.strip_prefix("gaps/").is_some_and(|id| Uuid::parse_str(id).is_ok());
                if !well_formed {
                    v.add("gap", format!("`{gap}` is not a gap name (gaps/{{uuid}})"));
                }
                if self.gaps.contains(gap) {
                    v.add("gap", format!("{gap} is already linked"));
                }
                if !self.person_decides(decider, "link", v)? {
                    return Ok(vec![]);
                }
                Ok(vec![InvestigationEvent::InvestigationLinkedToGap { gap: gap.clone(), decider: decider.clone() }])
            }
            InvestigationCommand::Close { decider } => {
                if !self.person_decides(decider, "close", Violations::default())? {
                    return Ok(vec![]);
                }
                Ok(vec![InvestigationEvent::InvestigationClosed { decider: decider.clone() }])
            }
        }
    }

    fn evolve(mut self, event: &InvestigationEvent) -> Self {
        match event {
            InvestigationEvent::InvestigationOpened { investigation_id, firing, .. } => {
                self.id = Some(*investigation_id);
                self.firing = Some(firing.clone());
                self.status = InvestigationStatus::Open;
            }
            InvestigationEvent::InvestigationAssigned { owner, decider } => {
                self.owner = Some(owner.clone());
                self.status = InvestigationStatus::Investigating;
                self.last_decision = Some(decider.clone());
            }
            InvestigationEvent::InvestigationNoted { note, decider } => {
                self.notes.push((note.clone(), decider.clone()));
                self.last_decision = Some(decider.clone());
            }
            InvestigationEvent::InvestigationLinkedToGap { gap, decider } => {
                self.gaps.push(gap.clone());
                self.last_decision = Some(decider.clone());
            }
            InvestigationEvent::InvestigationClosed { decider } => {
                self.status = InvestigationStatus::Closed;
                self.last_decision = Some(decider.clone());
            }
        }
        self
    }
}

#[cfg(test)]
mod tests;
