//! Hours of AI usage for the near-real-time processes (issue 13): what a caller spent on a
//! model in an account, hour by hour, from either fast source —
//!
//! - the invocation logs' stored hourly usage ([`AttributionEngine::log_hours`]): one
//!   DataFusion aggregate over the files' Parquet with the window pushed into the scan, so
//!   only the summed rows are materialised (a week of a busy organisation's logs is tens of
//!   millions of usage rows and a few thousand sums);
//! - an hourly CUR export's lines ([`Question::cur_hours`]), where an account delivers no
//!   logs. Only `Usage` lines count: credits, refunds and discounts land at the start of a
//!   day or month and are not what a workload burned in that hour.
//!
//! [`charged`] then names each hour's workload the same way for both.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampSecondType, UInt64Type};
use datafusion::common::ScalarValue;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::functions_aggregate::expr_fn::sum;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext, col, lit};
use finops_domain::governance_state::GovernanceState;

use crate::{AttributionEngine, AttributionError, OBJECTS_URL, Question, lines, text_column};

/// One hour of one caller's use of one model in one account, priced.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct UsageHour {
    /// The hour's start.
    pub hour: DateTime<Utc>,
    /// The account.
    pub account: String,
    /// The caller as attribution names it (empty when none is named).
    pub principal: String,
    /// The model.
    pub model: String,
    /// Millionths of a dollar: the logs' priced estimate (unpriced tokens count 0), or
    /// CUR's billed cost (its exact decimals, truncated).
    pub micro_usd: u64,
}

/// The period's AI usage by hour from CUR, and whether the export is hourly at all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CurHours {
    /// In key order.
    pub rows: Vec<UsageHour>,
    /// Some usage starts after midnight: the export's granularity is hourly. A daily
    /// export starts every line at midnight, and its "hours" are days.
    pub hourly: bool,
}

impl Question {
    /// The batch's AI `Usage` lines summed per hour, account, caller and model: one
    /// aggregate over the lines, independent of governance (who is charged is
    /// [`charged`]'s question).
    pub async fn cur_hours(&self) -> Result<CurHours, AttributionError> {
        let sql = format!(
            "SELECT date_trunc('hour', usage_start) AS hour, usage_account_id, principal_name, model, \
                    SUM(cost_dollars) AS dollars, SUM(cost_fraction) AS fraction \
             FROM lines WHERE facet_day >= {} AND line_item_type = 'Usage' \
             GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
            lines::FACET_DAYS
        );
        let unit = 10i128.pow(u32::try_from(lines::MONEY_SCALE - 6).expect("scale ≥ 6"));
        let whole = 10i128.pow(u32::try_from(lines::MONEY_SCALE).expect("scale ≥ 0"));
        let mut out = CurHours::default();
        for batch in self.run(&sql).await? {
            let (dollars, fraction) =
                (batch.column(4).as_primitive::<Int64Type>(), batch.column(5).as_primitive::<Int64Type>());
            each_hour(
                &batch,
                |row, hour| {
                    let raw = i128::from(dollars.value(row)) * whole + i128::from(fraction.value(row));
                    out.hourly |= hour.timestamp() % 86_400 != 0;
                    u64::try_from(raw / unit).unwrap_or(0)
                },
                &mut out.rows,
            )?;
        }
        Ok(out)
    }
}

impl AttributionEngine {
    /// The invocation logs' usage stored at `locations` (the Parquet beside each file),
    /// from `since` (inclusive) to `until` (exclusive; open when `None`), summed per hour,
    /// account, caller and model, in key order.
    pub async fn log_hours(
        &self,
        locations: &[String],
        since: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<UsageHour>, AttributionError> {
        if locations.is_empty() {
            return Ok(vec![]);
        }
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_information_schema(false));
        ctx.register_object_store(ObjectStoreUrl::parse(OBJECTS_URL)?.as_ref(), self.objects.clone());
        let urls: Vec<String> = locations.iter().map(|l| format!("{OBJECTS_URL}{l}")).collect();
        let at = |t: DateTime<Utc>| lit(ScalarValue::TimestampSecond(Some(t.timestamp()), Some("UTC".into())));
        let mut usage =
            ctx.read_parquet(urls, ParquetReadOptions::default()).await?.filter(col("hour").gt_eq(at(since)))?;
        if let Some(until) = until {
            usage = usage.filter(col("hour").lt(at(until)))?;
        }
        let keys = ["hour", "account", "principal", "model"];
        let batches = usage
            .aggregate(keys.map(col).to_vec(), vec![sum(col("micro_usd")).alias("micro_usd")])?
            .sort(keys.map(|k| col(k).sort(true, false)).to_vec())?
            .collect()
            .await?;
        let mut out = Vec::new();
        for batch in &batches {
            let micro = batch.column(4).as_primitive::<UInt64Type>();
            // A group of unpriced tokens only sums to NULL: it costs nothing known.
            each_hour(batch, |row, _| if micro.is_null(row) { 0 } else { micro.value(row) }, &mut out)?;
        }
        Ok(out)
    }
}

/// Appends `batch`'s rows — hour, account, caller, model in its first four columns — with
/// the cost `micro_usd` gives each row.
fn each_hour(
    batch: &RecordBatch,
    mut micro_usd: impl FnMut(usize, DateTime<Utc>) -> u64,
    out: &mut Vec<UsageHour>,
) -> Result<(), AttributionError> {
    let hours = datafusion::arrow::compute::cast(batch.column(0), &DataType::Timestamp(TimeUnit::Second, None))
        .map_err(datafusion::error::DataFusionError::from)?;
    let hours = hours.as_primitive::<TimestampSecondType>();
    let text = |i: usize| text_column(batch.column(i));
    let (accounts, principals, models) = (text(1)?, text(2)?, text(3)?);
    let (accounts, principals, models) =
        (accounts.as_string::<i32>(), principals.as_string::<i32>(), models.as_string::<i32>());
    for row in 0..batch.num_rows() {
        let Some(hour) = DateTime::from_timestamp(hours.value(row), 0) else { continue };
        out.push(UsageHour {
            micro_usd: micro_usd(row, hour),
            hour,
            account: accounts.value(row).to_owned(),
            principal: principals.value(row).to_owned(),
            model: models.value(row).to_owned(),
        });
    }
    Ok(())
}

/// One hour of a caller's use of a model, priced, with the workload the fast path charges
/// it to ([`GovernanceState::workload_of_caller`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargedHour {
    /// The hour's start.
    pub hour: DateTime<Utc>,
    /// The account.
    pub account: String,
    /// The caller (role or user name).
    pub principal: String,
    /// The model.
    pub model: String,
    /// Its workload, when its role's claim holds it that day.
    pub workload_id: Option<uuid::Uuid>,
    /// Millionths of a dollar.
    pub micro_usd: u64,
}

/// Each hour charged to its workload as of `state`.
pub fn charged(state: &GovernanceState, hours: &[UsageHour]) -> Vec<ChargedHour> {
    // A caller's workload is asked once per day, not per hour and model: the answer folds
    // every claim (measured: 30 s for a week of 10 M records asked per row).
    let mut workloads: BTreeMap<(&str, &str, NaiveDate), Option<uuid::Uuid>> = BTreeMap::new();
    hours
        .iter()
        .map(|h| ChargedHour {
            workload_id: *workloads
                .entry((&h.account, &h.principal, h.hour.date_naive()))
                .or_insert_with(|| state.workload_of_caller(&h.account, &h.principal, h.hour.date_naive())),
            hour: h.hour,
            account: h.account.clone(),
            principal: h.principal.clone(),
            model: h.model.clone(),
            micro_usd: h.micro_usd,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use finops_cur::synthetic::{MonthSpec, write_invocation_logs, write_month};
    use finops_domain::pricing::PriceTable;
    use object_store::memory::InMemory;
    use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

    use super::*;
    use crate::invocation_usage::{HourlyUsage, read_log, usage_parquet};

    /// Two files of a generated month's logs (a few days each, overlapping on the 10th),
    /// stored as the ingest stores them; their usage rows.
    async fn stored(objects: &Arc<dyn ObjectStore>) -> (Vec<String>, Vec<HourlyUsage>) {
        let mut cur = Vec::new();
        write_month(&MonthSpec { period: "2026-11".into(), rows: 2_000, seed: 3, restatement: 0 }, &mut cur).unwrap();
        let mut logs = Vec::new();
        write_invocation_logs(&cur, &mut logs).unwrap();
        let text = String::from_utf8(logs).unwrap();
        let day = |l: &&str| l[l.find("\"timestamp\":\"").unwrap() + 13..][..10].to_owned();
        let parts = [("a", "2026-11-05", "2026-11-10"), ("b", "2026-11-10", "2026-11-15")];
        let (mut locations, mut all) = (vec![], vec![]);
        for (name, from, to) in parts {
            let part: Vec<&str> =
                text.lines().filter(|l| (from.to_owned()..=to.to_owned()).contains(&day(l))).collect();
            let usage = read_log(name, part.join("\n").as_bytes(), &PriceTable::shipped()).await.unwrap();
            let location = format!("logs/{name}.usage.parquet");
            let bytes = usage_parquet(&usage.rows).unwrap();
            objects.put(&location.as_str().into(), PutPayload::from(bytes)).await.unwrap();
            locations.push(location);
            all.extend(usage.rows);
        }
        (locations, all)
    }

    #[tokio::test]
    async fn the_logs_hours_are_the_stored_usage_summed_over_the_window() {
        let objects: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let (locations, usage) = stored(&objects).await;
        let engine = AttributionEngine::new(objects, Default::default());
        let at = |d: u32, h: u32| NaiveDate::from_ymd_opt(2026, 11, d).unwrap().and_hms_opt(h, 0, 0).unwrap().and_utc();
        let windows = [(at(1, 0), None), (at(7, 13), Some(at(10, 5))), (at(10, 0), Some(at(11, 0))), (at(20, 0), None)];
        for (since, until) in windows {
            let mut expected: BTreeMap<(DateTime<Utc>, String, String, String), u64> = BTreeMap::new();
            for u in usage.iter().filter(|u| u.hour >= since && until.is_none_or(|t| u.hour < t)) {
                let key = (u.hour, u.account.clone(), u.principal.clone(), u.model.clone());
                *expected.entry(key).or_default() += u.micro_usd.unwrap_or(0);
            }
            let got = engine.log_hours(&locations, since, until).await.unwrap();
            let got: Vec<_> =
                got.into_iter().map(|h| ((h.hour, h.account, h.principal, h.model), h.micro_usd)).collect();
            assert_eq!(got.is_empty(), since >= at(16, 0), "only the window past the files is empty");
            assert_eq!(got, expected.into_iter().collect::<Vec<_>>(), "window {since} – {until:?}");
        }
        // No files: nothing, and no query.
        assert!(engine.log_hours(&[], at(1, 0), None).await.unwrap().is_empty());
    }
}
