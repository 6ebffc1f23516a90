//! A workload's month-to-date burn and when it crosses its monthly estimate (DOMAIN.md
//! §13): from its spend per day so far in the month, the crossing day if it has crossed,
//! else the day the month-to-date rate reaches the estimate — if within the month.

use chrono::{Datelike, Duration, NaiveDate};
use serde::{Deserialize, Serialize};

/// Where a workload's month stands against its estimate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forecast {
    /// The first day of the month.
    pub month: NaiveDate,
    /// The last day counted.
    pub through: NaiveDate,
    /// Spend from the first of the month through `through` (cents).
    pub month_to_date_cents: i64,
    /// The month's estimate (cents).
    pub estimate_cents: i64,
    /// Month-to-date spend per day elapsed (cents).
    pub burn_per_day_cents: i64,
    /// The month at that rate (cents).
    pub projected_month_cents: i64,
    /// The day spend reached the estimate, or will at the current rate (`None`: not this
    /// month, or no estimate).
    pub crossing: Option<NaiveDate>,
    /// `crossing` has happened (it is at or before `through`).
    pub crossed: bool,
}

/// The forecast of a month from `daily` spend (cents per day, any order; days outside the
/// month or after `through` are ignored) against `estimate_cents` for the month.
pub fn forecast(daily: &[(NaiveDate, i64)], estimate_cents: i64, through: NaiveDate) -> Forecast {
    let month = through.with_day(1).expect("a first day");
    let days_in_month = i64::from(super::proration::days_in_month(month));
    let mut days: Vec<(NaiveDate, i64)> = daily.iter().copied().filter(|(d, _)| *d >= month && *d <= through).collect();
    days.sort_by_key(|(d, _)| *d);
    let month_to_date: i64 = days.iter().map(|(_, c)| c).sum();
    let elapsed = (through - month).num_days() + 1;
    let burn = month_to_date / elapsed;
    let projected = month_to_date * days_in_month / elapsed;
    let mut crossing = None;
    let mut crossed = false;
    if estimate_cents > 0 {
        let mut running = 0;
        for (day, cents) in &days {
            running += cents;
            if running >= estimate_cents {
                crossing = Some(*day);
                crossed = true;
                break;
            }
        }
        if !crossed && burn > 0 {
            // The remaining estimate at the month-to-date rate, rounded up to whole days.
            let more = (estimate_cents - month_to_date + burn - 1) / burn;
            let day = through + Duration::days(more);
            crossing = (day.month() == through.month() && day.year() == through.year()).then_some(day);
        }
    }
    Forecast {
        month,
        through,
        month_to_date_cents: month_to_date,
        estimate_cents,
        burn_per_day_cents: burn,
        projected_month_cents: projected,
        crossing,
        crossed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    #[test]
    fn a_workload_burning_fast_crosses_within_the_month_and_says_when() {
        // $100 a day for ten days against $3,000: $1,000 so far, $3,000 reached on the 30th.
        let daily: Vec<_> = (1..=10).map(|d| (day(d), 10_000)).collect();
        let f = forecast(&daily, 300_000, day(10));
        assert_eq!((f.month_to_date_cents, f.burn_per_day_cents, f.projected_month_cents), (100_000, 10_000, 300_000));
        assert_eq!((f.crossing, f.crossed), (Some(day(30)), false));
        // Slower than that: not this month.
        let slow = forecast(&daily, 400_000, day(10));
        assert_eq!(slow.crossing, None);
    }

    #[test]
    fn a_workload_past_its_estimate_names_the_day_it_crossed() {
        let daily = [(day(3), 50_000), (day(1), 20_000), (day(2), 40_000), (day(4), 1)];
        let f = forecast(&daily, 100_000, day(4));
        assert_eq!((f.crossing, f.crossed), (Some(day(3)), true));
        // Days after `through`, or before the month, do not count.
        let g = forecast(&[(day(5), 1_000_000), (NaiveDate::from_ymd_opt(2026, 10, 31).unwrap(), 5)], 10, day(4));
        assert_eq!((g.month_to_date_cents, g.crossing), (0, None));
        assert_eq!(forecast(&daily, 0, day(4)).crossing, None, "no estimate, no crossing");
    }
}
