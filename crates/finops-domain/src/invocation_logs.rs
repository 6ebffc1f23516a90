//! Bedrock model-invocation log files (issue 13.1; DOMAIN.md §9): the fast signal beside
//! CUR's late one. Each delivered file is validated whole, its bytes and its hourly usage
//! are stored content-addressed, and the file is recorded once in the stream of the day of
//! its first hour (`invocation-logs-YYYY-MM-DD`). A file is its hash: the same bytes again
//! record nothing, so a follower that sees a file twice, or a re-run after a crash, writes
//! nothing twice. Nothing supersedes anything here — unlike CUR, logs are not restated.
//!
//! Attribution of the fast path ([`GovernanceState::workload_of_caller`]) charges a caller to
//! the workload whose claim holds its role that day; CUR's classification stays the
//! authority for money (gateway rules, broad roles and scopes are its business).
//!
//! [`GovernanceState::workload_of_caller`]: crate::governance_state::GovernanceState::workload_of_caller

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::error::{DomainError, FieldViolation};

/// The layout of the stored hourly usage (`{hash}.usage-{LAYOUT}.parquet`); a new layout is
/// a new object name, so an old file's usage is written again rather than misread.
pub const USAGE_LAYOUT: u32 = 1;

/// A validated, stored log file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFile {
    /// Where it came from (path or URL).
    pub source: String,
    /// SHA-256 of the bytes as delivered, hex: the file's identity.
    pub hash: String,
    /// Object-store location of the bytes.
    pub location: String,
    /// Object-store location of its hourly usage (Parquet).
    pub usage_location: String,
    /// Bytes as delivered.
    pub bytes: u64,
    /// Invocations (a request id repeated in the file counts once).
    pub records: u64,
    /// The first hour with an invocation.
    pub first_hour: DateTime<Utc>,
    /// The last hour with an invocation.
    pub last_hour: DateTime<Utc>,
    /// The priced estimate of its tokens at the shipped price snapshot, in millionths of a
    /// dollar (exact: prices are per million tokens).
    pub estimated_micro_usd: u64,
    /// Tokens the snapshot has no price for (an application inference profile, a model
    /// or Region it lacks): counted, not priced.
    pub unpriced_tokens: u64,
}

impl LogFile {
    /// The day whose stream records it.
    pub fn day(&self) -> NaiveDate {
        self.first_hour.date_naive()
    }
}

/// What may be asked of a day of logs.
#[derive(Debug, Clone, PartialEq)]
pub enum LogDayCommand {
    /// Record a validated, stored file.
    Record {
        /// The file.
        file: LogFile,
        /// When.
        at: DateTime<Utc>,
    },
}

/// What a day of logs records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum LogDayEvent {
    /// A file's invocations became usage.
    InvocationLogIngested {
        /// The file.
        file: LogFile,
        /// When.
        at: DateTime<Utc>,
    },
}

/// The files recorded for one day, in the order recorded, with when.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LogDay {
    /// Every file.
    pub files: Vec<(LogFile, DateTime<Utc>)>,
}

impl LogDay {
    /// The files recorded at or before `instant`.
    pub fn recorded_at(&self, instant: DateTime<Utc>) -> impl Iterator<Item = &LogFile> {
        self.files.iter().filter(move |(_, at)| *at <= instant).map(|(f, _)| f)
    }
}

fn is_hash(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Aggregate for LogDay {
    type Command = LogDayCommand;
    type Event = LogDayEvent;
    type Error = DomainError;

    fn decide(&self, command: &LogDayCommand) -> Result<Vec<LogDayEvent>, DomainError> {
        let LogDayCommand::Record { file, at } = command;
        let mut faults = Vec::new();
        if !is_hash(&file.hash) {
            faults.push(FieldViolation::new("hash", format!("`{}` is not a lower-case SHA-256 in hex", file.hash)));
        }
        if file.records == 0 {
            faults.push(FieldViolation::new("records", "a file with no invocations is not recorded"));
        }
        if file.last_hour < file.first_hour {
            faults.push(FieldViolation::new(
                "last_hour",
                format!("{} is before the first hour {}", file.last_hour, file.first_hour),
            ));
        }
        if self.files.first().is_some_and(|(f, _)| f.day() != file.day()) {
            faults.push(FieldViolation::new("first_hour", format!("{} is not on this stream's day", file.first_hour)));
        }
        if !faults.is_empty() {
            return Err(DomainError::Invalid(faults));
        }
        if self.files.iter().any(|(f, _)| f.hash == file.hash) {
            return Ok(vec![]); // the same bytes again: already usage
        }
        Ok(vec![LogDayEvent::InvocationLogIngested { file: file.clone(), at: *at }])
    }

    fn evolve(mut self, event: &LogDayEvent) -> Self {
        let LogDayEvent::InvocationLogIngested { file, at } = event;
        self.files.push((file.clone(), *at));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::spec::given;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn file(hash_digit: char, first: &str) -> LogFile {
        let hash: String = std::iter::repeat_n(hash_digit, 64).collect();
        LogFile {
            source: "logs/a.json.gz".into(),
            location: format!("logs/2026-11-03/{hash}.json.gz"),
            usage_location: format!("logs/2026-11-03/{hash}.usage-1.parquet"),
            hash,
            bytes: 1_000,
            records: 12,
            first_hour: at(first),
            last_hour: at(first),
            estimated_micro_usd: 1_250_000,
            unpriced_tokens: 0,
        }
    }

    #[test]
    fn a_file_is_recorded_once_by_its_hash() {
        let a = file('a', "2026-11-03T10:00:00Z");
        let now = at("2026-11-03T10:07:00Z");
        let first = given::<LogDay>(&[]).when(LogDayCommand::Record { file: a.clone(), at: now }).unwrap();
        assert_eq!(first, [LogDayEvent::InvocationLogIngested { file: a.clone(), at: now }]);
        // The follower sees the same bytes again (another name, a re-run): nothing.
        let again = LogFile { source: "elsewhere/a.json.gz".into(), ..a.clone() };
        assert_eq!(given::<LogDay>(&first).when(LogDayCommand::Record { file: again, at: now }).unwrap(), []);
        let b = file('b', "2026-11-03T11:00:00Z");
        let later = at("2026-11-03T11:07:00Z");
        let second = given::<LogDay>(&first).when(LogDayCommand::Record { file: b.clone(), at: later }).unwrap();
        assert_eq!(second, [LogDayEvent::InvocationLogIngested { file: b, at: later }]);
        let day = LogDay::fold(first.iter().chain(&second));
        assert_eq!(day.recorded_at(now).count(), 1, "as of the first file's time, one file");
        assert_eq!(day.recorded_at(at("2026-11-04T00:00:00Z")).count(), 2);
    }

    #[test]
    fn a_file_that_does_not_add_up_is_refused_naming_every_field() {
        let mut bad = file('a', "2026-11-03T10:00:00Z");
        bad.hash = "ABC".into();
        bad.records = 0;
        bad.last_hour = at("2026-11-03T09:00:00Z");
        let err = given::<LogDay>(&[]).when(LogDayCommand::Record { file: bad, at: at("2026-11-03T10:07:00Z") });
        let Err(DomainError::Invalid(faults)) = err else { panic!("{err:?}") };
        let fields: Vec<&str> = faults.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["hash", "records", "last_hour"]);
        // Another day's file does not belong in this day's stream.
        let a = file('a', "2026-11-03T10:00:00Z");
        let err = given::<LogDay>(&[LogDayEvent::InvocationLogIngested { file: a, at: at("2026-11-03T10:07:00Z") }])
            .when(LogDayCommand::Record { file: file('c', "2026-11-04T00:00:00Z"), at: at("2026-11-04T00:07:00Z") });
        assert!(matches!(err, Err(DomainError::Invalid(f)) if f[0].field == "first_hour"));
    }
}
