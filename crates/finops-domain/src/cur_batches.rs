//! CUR deliveries per billing period (DOMAIN.md §6 "Point in time"). AWS restates CUR:
//! each ingest of a period is an immutable, content-addressed batch, and a new batch
//! supersedes the period's current one without deleting it, so any past instant can still
//! be asked what the data said then. One aggregate per billing period.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::error::{DomainError, FieldViolation};

/// A stored, validated batch of CUR lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurBatch {
    /// `YYYY-MM`.
    pub period: String,
    /// Where it came from (file name or URL).
    pub source: String,
    /// SHA-256 of the bytes, hex: the batch's identity and object name.
    pub hash: String,
    /// Object-store location of the bytes.
    pub location: String,
    /// `cur` or `focus`.
    pub format: String,
    /// Data rows.
    pub rows: u64,
    /// Bytes as delivered.
    pub bytes: u64,
    /// Whether the export carried `line_item_iam_principal`.
    pub caller_identity: bool,
}

/// True for a billing period written `YYYY-MM` (month 01–12).
pub fn is_billing_period(text: &str) -> bool {
    billing_period_start(text).is_some()
}

/// The first day of a billing period written `YYYY-MM` (month 01–12); `None` otherwise.
pub fn billing_period_start(text: &str) -> Option<chrono::NaiveDate> {
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    // Digits only: `parse` would also take a sign ("2026-+1").
    let well_formed = text.len() == 7 && text.as_bytes()[4] == b'-' && digits(&text[..4]) && digits(&text[5..]);
    if !well_formed {
        return None;
    }
    chrono::NaiveDate::from_ymd_opt(text[..4].parse().ok()?, text[5..].parse().ok()?, 1)
}

/// What may be asked of a period.
#[derive(Debug, Clone, PartialEq)]
pub enum CurPeriodCommand {
    /// Record a validated, stored batch as the period's current data.
    RecordBatch {
        /// The batch.
        batch: CurBatch,
        /// When.
        at: DateTime<Utc>,
    },
}

/// What a period records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum CurPeriodEvent {
    /// A batch became the period's current data.
    CurBatchIngested {
        /// The batch.
        batch: CurBatch,
        /// The batch it replaces, if the period had one (a restatement).
        supersedes: Option<String>,
        /// When.
        at: DateTime<Utc>,
    },
}

/// A period's batches, oldest first; the last is current.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CurPeriod {
    /// Every batch ever ingested, with when.
    pub batches: Vec<(CurBatch, DateTime<Utc>)>,
}

impl CurPeriod {
    /// The batch that was current at `instant` (`None` before the first ingest).
    pub fn current_at(&self, instant: DateTime<Utc>) -> Option<&CurBatch> {
        self.batches.iter().rev().find(|(_, at)| *at <= instant).map(|(b, _)| b)
    }
}

impl Aggregate for CurPeriod {
    type Command = CurPeriodCommand;
    type Event = CurPeriodEvent;
    type Error = DomainError;

    fn decide(&self, command: &CurPeriodCommand) -> Result<Vec<CurPeriodEvent>, DomainError> {
        let CurPeriodCommand::RecordBatch { batch, at } = command;
        if !is_billing_period(&batch.period) {
            return Err(DomainError::Invalid(vec![FieldViolation::new(
                "period",
                format!("`{}` is not YYYY-MM", batch.period),
            )]));
        }
        let current = self.batches.last().map(|(b, _)| b);
        if current.is_some_and(|c| c.hash == batch.hash) {
            return Ok(vec![]); // the same bytes again: nothing changes
        }
        Ok(vec![CurPeriodEvent::CurBatchIngested {
            batch: batch.clone(),
            supersedes: current.map(|c| c.hash.clone()),
            at: *at,
        }])
    }

    fn evolve(mut self, event: &CurPeriodEvent) -> Self {
        let CurPeriodEvent::CurBatchIngested { batch, at, .. } = event;
        self.batches.push((batch.clone(), *at));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::spec::given;

    #[test]
    fn a_billing_period_is_a_month_and_starts_on_its_first_day() {
        assert_eq!(billing_period_start("2026-11"), chrono::NaiveDate::from_ymd_opt(2026, 11, 1));
        for bad in
            ["2026-13", "2026-00", "2026-1", "26-11", "2026/11", "2026-11-01", "abcd-11", "2026-+1", "+026-11", ""]
        {
            assert_eq!(billing_period_start(bad), None, "{bad}");
            assert!(!is_billing_period(bad), "{bad}");
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn batch(hash: &str) -> CurBatch {
        CurBatch {
            period: "2026-11".into(),
            source: "month.csv.gz".into(),
            hash: hash.into(),
            location: format!("cur/2026-11/{hash}.csv.gz"),
            format: "cur".into(),
            rows: 10,
            bytes: 100,
            caller_identity: true,
        }
    }

    #[test]
    fn a_restatement_supersedes_and_the_past_stays_answerable() {
        let first =
            CurPeriodEvent::CurBatchIngested { batch: batch("aa"), supersedes: None, at: at("2026-12-02T00:00:00Z") };
        let events = given::<CurPeriod>(std::slice::from_ref(&first))
            .when(CurPeriodCommand::RecordBatch { batch: batch("bb"), at: at("2026-12-05T00:00:00Z") })
            .unwrap();
        let [CurPeriodEvent::CurBatchIngested { supersedes, .. }] = events.as_slice() else { panic!() };
        assert_eq!(supersedes.as_deref(), Some("aa"));
        let period = CurPeriod::fold([first].iter().chain(&events));
        assert_eq!(period.current_at(at("2026-12-03T00:00:00Z")).unwrap().hash, "aa");
        assert_eq!(period.current_at(at("2026-12-06T00:00:00Z")).unwrap().hash, "bb");
        assert!(period.current_at(at("2026-12-01T00:00:00Z")).is_none());
        let mut bad = batch("cc");
        bad.period = "2026-13".into();
        assert!(
            given::<CurPeriod>(&[])
                .when(CurPeriodCommand::RecordBatch { batch: bad, at: at("2026-12-01T00:00:00Z") })
                .is_err()
        );
    }
}
