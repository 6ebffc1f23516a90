//! Reconciliation (issue 13.5): when CUR for a day arrives, the invocation logs' priced
//! estimate of each workload's day is compared with what CUR billed, and days apart by more
//! than a tolerance are flagged — a logging gap, a price the snapshot misses, or spend the
//! logs cannot see (`bedrock-mantle`, NEAR-REAL-TIME.md §1.1).
//!
//! Pure: the estimate (from [`estimate_micro_usd`] over hourly log usage) and the billed
//! cost (from attribution) arrive as maps of (workload, day) to cents.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::pricing::{PriceTable, PricingError, TokenKind};
use crate::vocabulary::{ModelId, Region};

/// The cost of `tokens` of `kind` on `model` in `region` at the table's price, in
/// millionths of a dollar (exact: the price is per million tokens).
pub fn estimate_micro_usd(
    table: &PriceTable,
    model: &ModelId,
    region: &Region,
    kind: TokenKind,
    tokens: u64,
) -> Result<u128, PricingError> {
    let (price, _) = table.price(model, region, kind)?;
    Ok(u128::from(price.0) * u128::from(tokens) / 1_000_000)
}

/// How far apart the two figures may be before a day is flagged: more than `percent` of
/// the billed cost **and** more than `floor_cents`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tolerance {
    /// Percent of the billed cost.
    pub percent: u32,
    /// Cents below which no difference is flagged.
    pub floor_cents: i64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Self { percent: 5, floor_cents: 500 }
    }
}

/// One workload's day, reconciled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconciledDay {
    /// The workload (or any subject the maps are keyed by).
    pub subject: String,
    /// The usage day.
    pub day: NaiveDate,
    /// The logs' priced estimate (cents; 0 when the logs show nothing).
    pub estimated_cents: i64,
    /// What CUR billed (cents).
    pub billed_cents: i64,
    /// Billed minus estimated.
    pub difference_cents: i64,
    /// Beyond the tolerance.
    pub flagged: bool,
}

/// Every (subject, day) CUR billed, compared with the logs' estimate. Days only the logs
/// show are not reconciled yet (their CUR has not arrived).
pub fn reconcile(
    estimated: &BTreeMap<(String, NaiveDate), i64>,
    billed: &BTreeMap<(String, NaiveDate), i64>,
    tolerance: Tolerance,
) -> Vec<ReconciledDay> {
    let keys: BTreeSet<&(String, NaiveDate)> = billed.keys().collect();
    keys.into_iter()
        .map(|key| {
            let billed_cents = billed[key];
            let estimated_cents = estimated.get(key).copied().unwrap_or(0);
            let difference_cents = billed_cents - estimated_cents;
            // Exactly, in whole cents: |difference| × 100 > percent × |billed|.
            let beyond_share = i128::from(difference_cents).abs() * 100
                > i128::from(tolerance.percent) * i128::from(billed_cents).abs();
            ReconciledDay {
                subject: key.0.clone(),
                day: key.1,
                estimated_cents,
                billed_cents,
                difference_cents,
                flagged: beyond_share && difference_cents.abs() > tolerance.floor_cents,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    fn map(entries: &[(&str, u32, i64)]) -> BTreeMap<(String, NaiveDate), i64> {
        entries.iter().map(|(s, d, c)| (((*s).to_owned(), day(*d)), *c)).collect()
    }

    #[test]
    fn days_apart_beyond_the_share_and_the_floor_are_flagged() {
        let estimated = map(&[("bot", 1, 10_000), ("bot", 2, 10_000), ("bot", 3, 100), ("bot", 9, 5_000)]);
        let billed = map(&[("bot", 1, 10_400), ("bot", 2, 12_000), ("bot", 3, 400), ("triage", 2, 2_000)]);
        let days = reconcile(&estimated, &billed, Tolerance::default());
        let flagged: Vec<(&str, NaiveDate)> =
            days.iter().filter(|d| d.flagged).map(|d| (d.subject.as_str(), d.day)).collect();
        // Day 1: 4 % apart (within 5 %). Day 2: $20 apart, 17 %. Day 3: 75 % but $3 (under
        // the $5 floor). Triage: billed, no logs at all. Day 9: logs only — CUR not in yet.
        assert_eq!(flagged, [("bot", day(2)), ("triage", day(2))]);
        assert_eq!(days.len(), 4, "days only the logs show are not reconciled");
        let triage = days.iter().find(|d| d.subject == "triage").unwrap();
        assert_eq!((triage.estimated_cents, triage.difference_cents), (0, 2_000));
    }

    #[test]
    fn the_estimate_is_the_snapshot_price_times_the_tokens() {
        let table = PriceTable::shipped();
        let model = ModelId::parse("anthropic.claude-3-haiku-20240307-v1:0").unwrap();
        let region = Region::parse("us-east-1").unwrap();
        let (price, _) = table.price(&model, &region, TokenKind::Input).unwrap();
        assert_eq!(
            estimate_micro_usd(&table, &model, &region, TokenKind::Input, 2_000_000).unwrap(),
            u128::from(price.0) * 2
        );
        let unknown = ModelId::parse("acme.unknown-model-v1:0").unwrap();
        assert!(estimate_micro_usd(&table, &unknown, &region, TokenKind::Input, 1).is_err());
    }

    proptest! {
        // Reconciliation covers exactly the billed days, and a day whose figures agree is
        // never flagged, whatever the tolerance.
        #[test]
        fn billed_days_are_covered_and_agreement_is_never_flagged(
            billed in proptest::collection::btree_map((0u32..3, 1u32..=28), 0i64..1_000_000, 0..40),
            percent in 0u32..50,
            floor in 0i64..10_000,
        ) {
            let billed: BTreeMap<(String, NaiveDate), i64> =
                billed.into_iter().map(|((s, d), c)| ((format!("w{s}"), day(d)), c)).collect();
            let days = reconcile(&billed, &billed, Tolerance { percent, floor_cents: floor });
            prop_assert_eq!(days.len(), billed.len());
            prop_assert!(days.iter().all(|d| !d.flagged && d.difference_cents == 0));
        }
    }
}
