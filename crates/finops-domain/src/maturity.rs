//! AI Governance Maturity (DOMAIN.md §10): four dimensions, each 0–100 with its tier, its
//! figures in words, the next move that advances it and what that move is worth; the
//! overall score is their weighted blend. Pure arithmetic over figures the caller reads
//! from the log and CUR as of an instant — so the same instant always scores the same.

use serde::{Deserialize, Serialize};

/// How far along a score is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Below 40.
    NotStarted,
    /// 40 to below 60.
    Crawl,
    /// 60 to below 90.
    Walk,
    /// 90 and above.
    Run,
}

impl Tier {
    /// The tier of a 0–100 score.
    pub fn of(score: f64) -> Self {
        match score {
            s if s >= 90.0 => Self::Run,
            s if s >= 60.0 => Self::Walk,
            s if s >= 40.0 => Self::Crawl,
            _ => Self::NotStarted,
        }
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotStarted => "Not Started",
            Self::Crawl => "Crawl",
            Self::Walk => "Walk",
            Self::Run => "Run",
        }
    }
}

/// The four dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// Attributed AI dollars ÷ all AI dollars.
    WorkloadAttribution,
    /// Governed models ÷ active models.
    ModelGovernance,
    /// Claimed workloads with an estimate ÷ claimed workloads.
    EstimateCoverage,
    /// Half speed of the governed path, half tasks on time.
    ProcessEfficiency,
}

impl Dimension {
    /// Every dimension, in the order shown.
    pub const ALL: [Dimension; 4] =
        [Self::WorkloadAttribution, Self::ModelGovernance, Self::EstimateCoverage, Self::ProcessEfficiency];

    /// Its weight in the overall score, percent.
    pub fn weight_percent(self) -> u32 {
        match self {
            Self::WorkloadAttribution => 40,
            Self::ModelGovernance => 25,
            Self::EstimateCoverage => 20,
            Self::ProcessEfficiency => 15,
        }
    }

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WorkloadAttribution => "Workload Attribution",
            Self::ModelGovernance => "Model Governance",
            Self::EstimateCoverage => "Estimate Coverage",
            Self::ProcessEfficiency => "Process Efficiency",
        }
    }
}

/// What the score is computed from, for one period as of one instant.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MaturityFigures {
    /// AI spend charged to a workload (cents).
    pub attributed_cents: i64,
    /// AI spend in gaps (cents).
    pub unattributed_cents: i64,
    /// Open gaps.
    pub open_gaps: u32,
    /// The open gap whose closing attributes most: its name and spend (cents).
    pub largest_gap: Option<(String, i64)>,
    /// Models with spend in the period.
    pub models_active: u32,
    /// Of those, approved, in scope where they run and free of gaps.
    pub models_governed: u32,
    /// The ungoverned model with the most spend: its id and spend (cents).
    pub top_ungoverned_model: Option<(String, i64)>,
    /// Workloads claimed (with a claimed resource in the period).
    pub claimed_workloads: u32,
    /// Of those, with an estimate.
    pub with_estimate: u32,
    /// A claimed workload without an estimate, to name in the next move.
    pub workload_without_estimate: Option<String>,
    /// Mean days from Business Request submitted to workload claimed (`None`: none yet).
    pub avg_end_to_end_days: Option<f64>,
    /// Cloud Engineer tasks not implemented.
    pub tasks_in_flight: u32,
    /// Of those, past their SLA.
    pub tasks_overdue: u32,
}

/// One dimension's score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DimensionScore {
    /// Which.
    pub dimension: Dimension,
    /// 0–100.
    pub score: f64,
    /// Its tier.
    pub tier: Tier,
    /// Its figures in words.
    pub figures: String,
    /// The next move that advances it (empty at 100).
    pub next_move: String,
    /// Attributed dollars the move gains (cents; 0 when it moves no dollars).
    pub worth_cents: i64,
    /// Overall points the move gains.
    pub worth_points: f64,
}

/// The whole score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaturityScore {
    /// Each dimension, in [`Dimension::ALL`]'s order.
    pub dimensions: Vec<DimensionScore>,
    /// The weighted blend, 0–100.
    pub overall: f64,
    /// Its tier.
    pub tier: Tier,
}

/// Dollars in a person's words: `$620K`, `$1.2M`, `$85`.
pub fn short_dollars(cents: i64) -> String {
    let dollars = cents as f64 / 100.0;
    let (sign, d) = if dollars < 0.0 { ("-", -dollars) } else { ("", dollars) };
    if d >= 1_000_000.0 {
        format!("{sign}${:.1}M", d / 1_000_000.0)
    } else if d >= 1_000.0 {
        format!("{sign}${:.0}K", d / 1_000.0)
    } else {
        format!("{sign}${d:.0}")
    }
}

/// `part ÷ whole` as 0–100 (0 when there is nothing to measure).
fn percent(part: f64, whole: f64) -> f64 {
    if whole <= 0.0 { 0.0 } else { (part / whole * 100.0).clamp(0.0, 100.0) }
}

/// Overall points a dimension's gain of `points` is worth.
fn weighted(dimension: Dimension, points: f64) -> f64 {
    points * f64::from(dimension.weight_percent()) / 100.0
}

fn dimension(
    dimension: Dimension,
    score: f64,
    figures: String,
    next_move: String,
    worth_cents: i64,
    gain: f64,
) -> DimensionScore {
    DimensionScore {
        dimension,
        score,
        tier: Tier::of(score),
        figures,
        next_move,
        worth_cents,
        worth_points: weighted(dimension, gain),
    }
}

/// Scores `f`.
pub fn score(f: &MaturityFigures) -> MaturityScore {
    let total = (f.attributed_cents + f.unattributed_cents) as f64;
    let attribution = {
        let score = percent(f.attributed_cents as f64, total);
        let figures = if total <= 0.0 {
            "no AI spend in the period".to_owned()
        } else {
            format!(
                "{} attributed · {} unattributed · {} gap{}",
                short_dollars(f.attributed_cents),
                short_dollars(f.unattributed_cents),
                f.open_gaps,
                if f.open_gaps == 1 { "" } else { "s" }
            )
        };
        let (next, cents, gain) = match &f.largest_gap {
            Some((gap, cents)) if total > 0.0 => {
                (format!("close {gap} ({})", short_dollars(*cents)), *cents, percent(*cents as f64, total))
            }
            _ if total <= 0.0 => ("ingest a CUR 2.0 export with caller identity".to_owned(), 0, 0.0),
            _ => (String::new(), 0, 0.0),
        };
        dimension(Dimension::WorkloadAttribution, score, figures, next, cents, gain)
    };
    let models = {
        let (active, governed) = (f64::from(f.models_active), f64::from(f.models_governed));
        let score = percent(governed, active);
        let figures = if f.models_active == 0 {
            "no models active in the period".to_owned()
        } else {
            format!("{} of {} active models governed", f.models_governed, f.models_active)
        };
        let (next, cents, gain) = match &f.top_ungoverned_model {
            Some((model, cents)) if f.models_active > f.models_governed => (
                format!(
                    "approve {model} in the catalog for where it runs, or move its use ({})",
                    short_dollars(*cents)
                ),
                *cents,
                percent(1.0, active),
            ),
            _ => (String::new(), 0, 0.0),
        };
        dimension(Dimension::ModelGovernance, score, figures, next, cents, gain)
    };
    let estimates = {
        let (claimed, with) = (f64::from(f.claimed_workloads), f64::from(f.with_estimate));
        let score = percent(with, claimed);
        let figures = if f.claimed_workloads == 0 {
            "no claimed workloads".to_owned()
        } else {
            format!("{} of {} claimed workloads have an estimate", f.with_estimate, f.claimed_workloads)
        };
        let (next, gain) = match &f.workload_without_estimate {
            Some(w) if f.claimed_workloads > f.with_estimate => {
                (format!("state the monthly estimate of {w}"), percent(1.0, claimed))
            }
            _ => (String::new(), 0.0),
        };
        dimension(Dimension::EstimateCoverage, score, figures, next, 0, gain)
    };
    let process = {
        let speed = f.avg_end_to_end_days.map_or(0.0, |days| ((30.0 - days) / 28.0).clamp(0.0, 1.0));
        let on_time = if f.tasks_in_flight == 0 {
            1.0
        } else {
            1.0 - f64::from(f.tasks_overdue.min(f.tasks_in_flight)) / f64::from(f.tasks_in_flight)
        };
        let score = (0.5 * speed + 0.5 * on_time) * 100.0;
        let figures = format!(
            "{} submission to claim · {} of {} tasks in flight overdue",
            f.avg_end_to_end_days.map_or_else(|| "no workload claimed yet:".to_owned(), |d| format!("{d:.1} days")),
            f.tasks_overdue,
            f.tasks_in_flight
        );
        let (next, gain) = if f.tasks_overdue > 0 {
            (
                format!("finish the {} overdue task{}", f.tasks_overdue, if f.tasks_overdue == 1 { "" } else { "s" }),
                (1.0 - on_time) * 50.0,
            )
        } else if speed < 1.0 {
            ("bring submission-to-claim down to 2 days".to_owned(), (1.0 - speed) * 50.0)
        } else {
            (String::new(), 0.0)
        };
        dimension(Dimension::ProcessEfficiency, score, figures, next, 0, gain)
    };
    let dimensions = vec![attribution, models, estimates, process];
    let overall = dimensions.iter().map(|d| weighted(d.dimension, d.score)).sum::<f64>();
    MaturityScore { dimensions, overall, tier: Tier::of(overall) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_change_exactly_at_40_60_and_90() {
        for (score, tier) in [
            (0.0, Tier::NotStarted),
            (39.99, Tier::NotStarted),
            (40.0, Tier::Crawl),
            (59.99, Tier::Crawl),
            (60.0, Tier::Walk),
            (89.99, Tier::Walk),
            (90.0, Tier::Run),
            (100.0, Tier::Run),
        ] {
            assert_eq!(Tier::of(score), tier, "{score}");
        }
    }

    /// The seed's own example: $480K attributed, $620K not, 14 gaps — computed by hand.
    #[test]
    fn a_hand_computed_organisation_scores_as_the_formulas_say() {
        let f = MaturityFigures {
            attributed_cents: 48_000_000,
            unattributed_cents: 62_000_000,
            open_gaps: 14,
            largest_gap: Some(("Role Recommendation: AdministratorAccess in 111122223333".into(), 22_000_000)),
            models_active: 5,
            models_governed: 3,
            top_ungoverned_model: Some(("anthropic.claude-3-5-sonnet-20240620-v1:0".into(), 9_000_000)),
            claimed_workloads: 8,
            with_estimate: 6,
            workload_without_estimate: Some("Claims Triage".into()),
            avg_end_to_end_days: Some(9.0),
            tasks_in_flight: 4,
            tasks_overdue: 1,
        };
        let s = score(&f);
        let by = |d: Dimension| s.dimensions.iter().find(|x| x.dimension == d).unwrap().clone();
        let a = by(Dimension::WorkloadAttribution);
        assert!((a.score - 480.0 / 1100.0 * 100.0).abs() < 1e-9); // 43.64: Crawl
        assert_eq!((a.tier, a.figures.as_str()), (Tier::Crawl, "$480K attributed · $620K unattributed · 14 gaps"));
        assert_eq!(a.worth_cents, 22_000_000);
        assert!((a.worth_points - 220.0 / 1100.0 * 100.0 * 0.40).abs() < 1e-9); // 8 points
        let m = by(Dimension::ModelGovernance);
        assert_eq!((m.score, m.tier), (60.0, Tier::Walk));
        assert!((m.worth_points - 5.0).abs() < 1e-9, "one of five models: 20 points × 25 %");
        let e = by(Dimension::EstimateCoverage);
        assert_eq!(
            (e.score, e.tier, e.next_move.as_str()),
            (75.0, Tier::Walk, "state the monthly estimate of Claims Triage")
        );
        let p = by(Dimension::ProcessEfficiency);
        // speed (30 − 9) ÷ 28 = 0.75, on time 1 − ¼ = 0.75: 75.
        assert!((p.score - 75.0).abs() < 1e-9);
        let overall = 0.40 * (480.0 / 1100.0 * 100.0) + 0.25 * 60.0 + 0.20 * 75.0 + 0.15 * 75.0;
        assert!((s.overall - overall).abs() < 1e-9);
        assert_eq!(s.tier, Tier::Crawl, "{}", s.overall);
    }

    #[test]
    fn nothing_to_measure_is_not_started_and_says_so() {
        let s = score(&MaturityFigures::default());
        let a = &s.dimensions[0];
        assert_eq!((a.score, a.figures.as_str()), (0.0, "no AI spend in the period"));
        assert_eq!(a.next_move, "ingest a CUR 2.0 export with caller identity");
        // No task in flight is on time; no claim yet is no speed.
        assert!((s.dimensions[3].score - 50.0).abs() < 1e-9);
        assert_eq!(s.tier, Tier::NotStarted);
        assert_eq!(
            (short_dollars(8_500), short_dollars(120_000_000), short_dollars(-48_000_000)),
            ("$85".into(), "$1.2M".into(), "-$480K".into())
        );
    }

    #[test]
    fn a_fully_governed_organisation_runs_and_has_no_move_left() {
        let f = MaturityFigures {
            attributed_cents: 100,
            models_active: 2,
            models_governed: 2,
            claimed_workloads: 1,
            with_estimate: 1,
            avg_end_to_end_days: Some(2.0),
            ..Default::default()
        };
        let s = score(&f);
        assert_eq!((s.overall, s.tier), (100.0, Tier::Run));
        assert!(s.dimensions.iter().all(|d| d.next_move.is_empty() && d.worth_points == 0.0), "{s:?}");
    }
}
