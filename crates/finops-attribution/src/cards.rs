//! What a Weekly Spend Card reads from a period (DOMAIN.md §8): the days the batch covers,
//! and each workload's spend per day by model × token type × region, with whether it was
//! spent outside the workload's approval — read from `classified`, the one pass over the
//! lines a question already made.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{Date32Type, Float64Type};
use datafusion::arrow::util::display::array_value_to_string;
use finops_domain::gaps::GapKind;
use finops_domain::spend_cards::forecast::Forecast;

use crate::{AttributionError, Question, raw_at};

/// One workload's spend on one day for one model, token type and region.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadDayLine {
    /// The workload charged.
    pub workload_id: String,
    /// The usage day.
    pub day: NaiveDate,
    /// The model.
    pub model: String,
    /// input, output, cache_read, cache_write (empty for other units).
    pub token_type: String,
    /// The region.
    pub region: String,
    /// Spent outside the workload's approval (an Out of Approved Scope line).
    pub out_of_scope: bool,
    /// Tokens.
    pub tokens: f64,
    /// Dollars, exact, in units of [`crate::lines::MONEY_SCALE`].
    pub raw_cost: i128,
}

impl Question {
    /// The last usage day the batch holds a line of (`None`: no lines). A card is issued
    /// once every day of its week is covered.
    pub async fn covered_through(&self) -> Result<Option<NaiveDate>, AttributionError> {
        for batch in self.run("SELECT MAX(usage_date) AS day FROM lines").await? {
            let column = batch.column(0);
            if batch.num_rows() > 0 && !column.is_null(0) {
                return Ok(column.as_primitive::<Date32Type>().value_as_date(0));
            }
        }
        Ok(None)
    }

    /// Every workload's spend, per day, model, token type, region and scope, in that order.
    pub async fn workload_day_lines(&self) -> Result<Vec<WorkloadDayLine>, AttributionError> {
        let out_of_scope = GapKind::OutOfApprovedScope.as_str();
        let sql = format!(
            "SELECT workload_id, day, model, token_type, region, COALESCE(gap = '{out_of_scope}', false) AS outside, \
             SUM(cost) AS cost, SUM(tokens) AS tokens FROM classified WHERE workload_id IS NOT NULL \
             GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6"
        );
        let mut out = Vec::new();
        for batch in self.run(&sql).await? {
            let text = |i: usize, row: usize| {
                let column = batch.column(i);
                if column.is_null(row) { String::new() } else { array_value_to_string(column, row).unwrap_or_default() }
            };
            for row in 0..batch.num_rows() {
                let Some(day) = batch.column(1).as_primitive::<Date32Type>().value_as_date(row) else { continue };
                out.push(WorkloadDayLine {
                    workload_id: text(0, row),
                    day,
                    model: text(2, row),
                    token_type: text(3, row),
                    region: text(4, row),
                    out_of_scope: batch.column(5).as_boolean().value(row),
                    raw_cost: raw_at(batch.column(6).as_ref(), row),
                    tokens: batch.column(7).as_primitive::<Float64Type>().value(row),
                });
            }
        }
        Ok(out)
    }
}

/// Each workload's spend per day in cents, the days adding up to the workload's exact total
/// rounded once ([`crate::allocate_cents`]), so a month to date matches what attribution
/// says of the workload rather than drifting by a cent a day: what a forecast reads
/// (DOMAIN.md §13), on a card and in the workload view alike.
pub fn daily_cents(lines: &[WorkloadDayLine]) -> BTreeMap<&str, Vec<(NaiveDate, i64)>> {
    let mut exact: BTreeMap<&str, BTreeMap<NaiveDate, i128>> = BTreeMap::new();
    for line in lines {
        *exact.entry(line.workload_id.as_str()).or_default().entry(line.day).or_default() += line.raw_cost;
    }
    exact
        .into_iter()
        .map(|(workload, days)| {
            let (days, raws): (Vec<NaiveDate>, Vec<i128>) = days.into_iter().unzip();
            let (cents, _) = crate::allocate_cents(&raws);
            (workload, days.into_iter().zip(cents).collect())
        })
        .collect()
}

/// Every approved workload's month in `question`'s period, through the last day CUR
/// covers: month to date ([`daily_cents`]), burn, projection and crossing against its
/// monthly estimate. The one reading `GetWorkload`'s forecast, the threshold alerts and the
/// metrics share; `None` while CUR covers no day of the period.
pub async fn month_forecasts(
    question: &Question,
    state: &finops_domain::governance_state::GovernanceState,
) -> Result<Option<(NaiveDate, BTreeMap<uuid::Uuid, Forecast>)>, AttributionError> {
    let Some(through) = question.covered_through().await? else { return Ok(None) };
    let lines = question.workload_day_lines().await?;
    let daily = daily_cents(&lines);
    let forecasts = state
        .workloads()
        .iter()
        .map(|w| {
            let id = w.workload_id.to_string();
            let days = daily.get(id.as_str()).map(Vec::as_slice).unwrap_or_default();
            let estimate = state.card_plan(w.workload_id).map_or(0, |plan| plan.month_cents(through)) as i64;
            (w.workload_id, finops_domain::spend_cards::forecast::forecast(days, estimate, through))
        })
        .collect();
    Ok(Some((through, forecasts)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(workload: &str, day: u32, raw_cost: i128) -> WorkloadDayLine {
        WorkloadDayLine {
            workload_id: workload.into(),
            day: NaiveDate::from_ymd_opt(2026, 11, day).unwrap(),
            model: "m".into(),
            token_type: "input".into(),
            region: "us-east-1".into(),
            out_of_scope: false,
            tokens: 1.0,
            raw_cost,
        }
    }

    #[test]
    fn a_workloads_days_add_up_to_its_total_rounded_once() {
        // 0.4 cents a day for 30 days: rounded per day that is $0.00, in all it is 12 cents.
        let unit = 10i128.pow(u32::try_from(crate::lines::MONEY_SCALE - 2).unwrap());
        let lines: Vec<WorkloadDayLine> =
            (1..=30).map(|d| line("w", d, unit * 4 / 10)).chain([line("v", 1, unit * 250)]).collect();
        let daily = daily_cents(&lines);
        assert_eq!(daily["w"].iter().map(|(_, c)| c).sum::<i64>(), 12);
        assert_eq!(daily["w"].len(), 30);
        assert_eq!(daily["v"], vec![(NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(), 250)]);
    }
}
