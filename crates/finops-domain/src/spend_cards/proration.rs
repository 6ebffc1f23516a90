//! A workload's estimate for a week (DOMAIN.md §8): the monthly FA Confirmed Estimate, grown
//! month by month at the workload's growth rate, spread over the month's days to the cent,
//! and summed over the week's seven days — so a week across two months takes each part
//! from its own month, and the days of a month always add up to that month's estimate.

use chrono::{Datelike, Duration, NaiveDate};

/// A monthly estimate in cents, from a first month on, growing by a percentage a month.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MonthlyPlan {
    /// Cents a month in the first month.
    pub cents: u64,
    /// The first day the estimate covers (its month is the plan's first).
    pub start: NaiveDate,
    /// The last day it covers, if it ends.
    pub end: Option<NaiveDate>,
    /// Growth a month, percent (compounded).
    pub growth_percent: f64,
}

/// The first day of `day`'s month.
fn month_start(day: NaiveDate) -> NaiveDate {
    day.with_day(1).expect("every month has a first day")
}

/// How many days `day`'s month has.
pub fn days_in_month(day: NaiveDate) -> u32 {
    let first = month_start(day);
    let next = first.checked_add_months(chrono::Months::new(1)).expect("a next month");
    (next - first).num_days() as u32
}

impl MonthlyPlan {
    /// The estimate for the whole month of `day` (cents), grown from the first month; 0
    /// before the plan starts or after it ends. A month the plan covers only in part is
    /// pro-rated by its covered days.
    pub fn month_cents(&self, day: NaiveDate) -> u64 {
        let first = month_start(day);
        let months = (first.year() - self.start.year()) * 12 + first.month() as i32 - self.start.month() as i32;
        if months < 0 {
            return 0;
        }
        let grown = self.cents as f64 * (1.0 + self.growth_percent / 100.0).powi(months);
        let full = grown.round().max(0.0) as u64;
        let (covered, days) = (self.covered_days(first).len() as u64, u64::from(days_in_month(first)));
        // Whole cents, rounded half up once here; the days then share the result exactly.
        ((u128::from(full) * u128::from(covered) * 2 + u128::from(days)) / (2 * u128::from(days))) as u64
    }

    /// The days of the month starting `first` the plan covers.
    fn covered_days(&self, first: NaiveDate) -> Vec<NaiveDate> {
        (0..days_in_month(first))
            .map(|d| first + Duration::days(i64::from(d)))
            .filter(|d| *d >= self.start && self.end.is_none_or(|e| *d <= e))
            .collect()
    }

    /// The estimate for one day: its month's estimate spread over the covered days to the
    /// cent (the first days take the remainder), so the days add up to the month exactly.
    pub fn day_cents(&self, day: NaiveDate) -> u64 {
        let covered = self.covered_days(month_start(day));
        let Some(index) = covered.iter().position(|d| *d == day) else { return 0 };
        let month = self.month_cents(day);
        let n = covered.len() as u64;
        month / n + u64::from((index as u64) < month % n)
    }

    /// The estimate for the ISO week starting `monday` (cents): its seven days.
    pub fn week_cents(&self, monday: NaiveDate) -> u64 {
        (0..7).map(|d| self.day_cents(monday + Duration::days(d))).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn a_week_across_two_months_takes_each_part_from_its_month() {
        // $3,100 in October (31 days: $100 a day), 10 % more in November ($3,410 over 30
        // days: $113.67 for the first 20 days, $113.66 after).
        let plan = MonthlyPlan { cents: 310_000, start: day(2026, 10, 1), end: None, growth_percent: 10.0 };
        assert_eq!(plan.month_cents(day(2026, 11, 15)), 341_000);
        // Monday 26 October – Sunday 1 November: six October days and one November day.
        assert_eq!(plan.week_cents(day(2026, 10, 26)), 6 * 10_000 + 11_367);
        assert_eq!(plan.day_cents(day(2026, 11, 30)), 11_366);
        assert_eq!(plan.week_cents(day(2026, 9, 21)), 0, "before the plan");
    }

    #[test]
    fn a_plan_starting_mid_month_covers_its_days_only() {
        let plan = MonthlyPlan { cents: 300_000, start: day(2026, 11, 16), end: None, growth_percent: 0.0 };
        assert_eq!(plan.month_cents(day(2026, 11, 1)), 150_000, "15 of 30 days");
        assert_eq!(plan.day_cents(day(2026, 11, 15)), 0);
        assert_eq!(plan.day_cents(day(2026, 11, 16)), 10_000);
    }

    proptest! {
        /// The weekly estimates of a month (each week's days in that month) add up to the
        /// month's estimate to the cent, with growth, for any month the plan covers.
        #[test]
        fn the_weeks_of_a_month_add_up_to_its_estimate(
            cents in 1u64..100_000_000,
            growth in 0.0f64..50.0,
            start_offset in 0i64..400,
            months_on in 0u32..24,
            end_offset in proptest::option::of(0i64..900),
        ) {
            let start = day(2025, 1, 1) + Duration::days(start_offset);
            let end = end_offset.map(|e| start + Duration::days(e));
            let plan = MonthlyPlan { cents, start, end, growth_percent: growth };
            let first = month_start(start).checked_add_months(chrono::Months::new(months_on)).unwrap();
            let days = i64::from(days_in_month(first));
            // Every Monday whose week touches the month.
            let mut monday = first - Duration::days(i64::from(first.weekday().num_days_from_monday()));
            let mut in_month = 0u64;
            while monday < first + Duration::days(days) {
                in_month += (0..7)
                    .map(|d| monday + Duration::days(d))
                    .filter(|d| month_start(*d) == first)
                    .map(|d| plan.day_cents(d))
                    .sum::<u64>();
                monday += Duration::days(7);
            }
            prop_assert_eq!(in_month, plan.month_cents(first));
        }
    }
}
