//! # Invocation-log ingestion (issue 13.1)
//!
//! A Bedrock model-invocation log file — JSON lines, gzip or not, from a local file or
//! folder, or under an `s3://` prefix where Bedrock delivers them
//! (`AWSLogs/{account}/BedrockModelInvocationLogs/{region}/YYYY/MM/DD/HH/*.json.gz`) —
//! becomes usage in three steps, atomic per file:
//!
//! 1. **Read** it whole into priced hourly usage (`finops_attribution::invocation_usage`,
//!    columnar); one malformed record refuses the file with file, line and field, and
//!    nothing is stored.
//! 2. **Store** its bytes at `logs/{day}/{sha256}.json[.gz]` and its hourly usage beside
//!    them (`{sha256}.usage-1.parquet`), named by content.
//! 3. **Record** `InvocationLogIngested` in `invocation-logs-{day}` (the day of its first
//!    hour); the same bytes again record nothing, so following a folder twice, or a re-run
//!    after a crash between 2 and 3, writes nothing twice.
//!
//! [`LogFollower`] picks up files as they land: each round lists the sources and ingests
//! what it has not seen (a file that changes size or time is read again; a refused one is
//! retried only once it changes).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use finops_attribution::invocation_usage::{LogUsage, log_location, read_log, usage_location, usage_parquet};
use finops_cur::invocation_log::LogError;
use finops_domain::invocation_logs::{LogDay, LogDayCommand, LogFile};
use finops_domain::pricing::PriceTable;
use finops_eventlog::EventStore;
use finops_governance::{CommandContext, CommandHandler, GovernanceError, streams};
use futures_util::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::IngestError;

/// The namespace of log ingests' request ids (one per file hash).
const NAMESPACE: Uuid = Uuid::from_u128(0x6c0f_11e5_7a3b_4d2e_8f1a_b2c3_d4e5_f607);

/// Is `name` a log file Bedrock delivers (not its permission-check marker or a folder)?
pub fn is_log_file(name: &str) -> bool {
    [".json", ".json.gz", ".jsonl", ".jsonl.gz"].iter().any(|ext| name.ends_with(ext))
}

/// One log file found under a source.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FoundLog {
    /// Path or URL, for people and errors.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modified, as the file system or the object store says (seconds).
    pub modified: i64,
    place: Where,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Where {
    Local(PathBuf),
    Object { prefix: String, location: String },
}

/// Every log file under `source` (a file, a folder — recursively — or `s3://bucket/prefix`),
/// in name order.
pub async fn find_logs(source: &str) -> Result<Vec<FoundLog>, IngestError> {
    let bad = |reason: String| IngestError::Delivery { path: source.to_owned(), reason };
    let mut out = Vec::new();
    if source.starts_with("s3://") {
        let store = crate::objects::open(source).map_err(|e| bad(e.reason))?;
        let objects: Vec<_> = store.list(None).try_collect().await?;
        for meta in objects {
            let location = meta.location.to_string();
            if is_log_file(&location) {
                out.push(FoundLog {
                    name: format!("{}/{location}", source.trim_end_matches('/')),
                    size: meta.size,
                    modified: meta.last_modified.timestamp(),
                    place: Where::Object { prefix: source.to_owned(), location },
                });
            }
        }
    } else {
        let root = Path::new(source);
        if !root.exists() {
            return Err(bad("no such file or folder".into()));
        }
        let mut pending = vec![root.to_path_buf()];
        while let Some(path) = pending.pop() {
            if path.is_dir() {
                let entries = std::fs::read_dir(&path).map_err(|e| bad(e.to_string()))?;
                for entry in entries {
                    pending.push(entry.map_err(|e| bad(e.to_string()))?.path());
                }
                continue;
            }
            let name = path.display().to_string();
            if path != root && !is_log_file(&name) {
                continue;
            }
            let meta = std::fs::metadata(&path).map_err(|e| bad(e.to_string()))?;
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs() as i64);
            out.push(FoundLog { name, size: meta.len(), modified, place: Where::Local(path) });
        }
    }
    out.sort();
    Ok(out)
}

impl FoundLog {
    async fn bytes(&self) -> Result<Vec<u8>, IngestError> {
        match &self.place {
            Where::Local(path) => std::fs::read(path)
                .map_err(|e| IngestError::Io { file: path.display().to_string(), reason: e.to_string() }),
            Where::Object { prefix, location } => {
                let store = crate::objects::open(prefix)
                    .map_err(|e| IngestError::Delivery { path: prefix.clone(), reason: e.reason })?;
                Ok(store.get(&ObjectPath::from(location.as_str())).await?.bytes().await?.to_vec())
            }
        }
    }
}

/// What ingesting one file did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogReport {
    /// The file as recorded.
    pub file: LogFile,
    /// False when the same bytes were already recorded (nothing was written).
    pub recorded: bool,
    /// Whether the columnar path read it.
    pub columnar: bool,
}

/// Why a log file was not ingested.
#[derive(Debug, thiserror::Error)]
pub enum LogIngestError {
    /// A malformed record: the file is refused whole.
    #[error(transparent)]
    Invalid(#[from] LogError),
    /// The file holds no invocation.
    #[error("{0} holds no invocation records")]
    Empty(String),
    /// Reading, storing or recording failed.
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

/// Validates, stores and records invocation-log files.
pub struct LogIngestor {
    days: CommandHandler<LogDay>,
    objects: Arc<dyn ObjectStore>,
    prices: PriceTable,
}

impl LogIngestor {
    /// An ingestor writing to `store` and `objects`, pricing with the shipped snapshot.
    pub fn new(store: Arc<dyn EventStore>, objects: Arc<dyn ObjectStore>) -> Self {
        Self { days: CommandHandler::new(store), objects, prices: PriceTable::shipped() }
    }

    /// Ingests one found file as `actor`.
    pub async fn ingest(&self, found: &FoundLog, actor: &str) -> Result<LogReport, LogIngestError> {
        let bytes = found.bytes().await?;
        self.ingest_bytes(&found.name, &bytes, actor).await
    }

    /// Ingests one file's bytes (`source` names it) as `actor`.
    pub async fn ingest_bytes(&self, source: &str, bytes: &[u8], actor: &str) -> Result<LogReport, LogIngestError> {
        // 1. Read it whole (nothing is stored for a refused file).
        let usage: LogUsage = read_log(source, bytes, &self.prices).await?;
        let Some((first_hour, last_hour)) = usage.hours() else { return Err(LogIngestError::Empty(source.into())) };
        let hash = hex::encode(Sha256::digest(bytes));
        let day = first_hour.date_naive();
        // 2. Store the bytes and the usage, named by content (a repeat writes nothing new).
        let ext = if bytes.starts_with(&[0x1f, 0x8b]) { ".json.gz" } else { ".json" };
        let location = log_location(day, &hash, ext);
        let usage_at = usage_location(day, &hash);
        if self.objects.head(&location).await.is_err() {
            self.objects.put(&location, PutPayload::from(bytes.to_vec())).await.map_err(IngestError::from)?;
        }
        if self.objects.head(&usage_at).await.is_err() {
            let parquet = usage_parquet(&usage.rows)
                .map_err(|e| IngestError::Delivery { path: source.into(), reason: e.to_string() })?;
            self.objects.put(&usage_at, PutPayload::from(parquet)).await.map_err(IngestError::from)?;
        }
        // 3. Record.
        let file = LogFile {
            source: source.to_owned(),
            hash: hash.clone(),
            location: location.to_string(),
            usage_location: usage_at.to_string(),
            bytes: bytes.len() as u64,
            records: usage.records,
            first_hour,
            last_hour,
            estimated_micro_usd: usage.estimated_micro_usd(),
            unpriced_tokens: usage.unpriced_tokens(),
        };
        let context = CommandContext::operator(actor, Uuid::new_v5(&NAMESPACE, hash.as_bytes()));
        let stream = streams::invocation_logs(day);
        let at = Utc::now();
        let command = LogDayCommand::Record { file: file.clone(), at };
        // Files of the same day ingested side by side append to one stream: recording a
        // file is idempotent, so a write overtaken by another file's is decided again.
        let mut overtaken = 0;
        let recorded = loop {
            match self.days.execute(&stream, &command, &context).await {
                // This command recorded it when the day holds it at this command's instant
                // (an earlier ingest of the same bytes holds it at its own).
                Ok(after) => break after.state.files.iter().any(|(f, t)| f.hash == hash && *t == at),
                Err(GovernanceError::Conflict { .. }) if overtaken < 10 => overtaken += 1,
                Err(e) => return Err(IngestError::from(e).into()),
            }
        };
        tracing::info!(%source, %hash, records = usage.records, recorded, "invocation log ingested");
        Ok(LogReport { file, recorded, columnar: usage.columnar })
    }
}

impl LogIngestor {
    /// Ingests `files` as `actor`, up to `parallel` at a time, each on its own task (reading
    /// a file is CPU work: decompressing, decoding, summing); results in the order of
    /// `files`.
    pub async fn ingest_all(
        self: &Arc<Self>,
        files: &[FoundLog],
        actor: &str,
        parallel: usize,
    ) -> Vec<Result<LogReport, LogIngestError>> {
        use futures_util::StreamExt;
        let tasks = files.iter().cloned().map(|file| {
            let (this, actor) = (self.clone(), actor.to_owned());
            tokio::spawn(async move { this.ingest(&file, &actor).await })
        });
        futures_util::stream::iter(tasks)
            .buffered(parallel.max(1))
            .map(|joined| {
                joined.unwrap_or_else(|e| {
                    Err(LogIngestError::Ingest(IngestError::Io { file: "(ingest task)".into(), reason: e.to_string() }))
                })
            })
            .collect()
            .await
    }
}

/// Follows sources, ingesting each log file once as it lands.
pub struct LogFollower {
    sources: Vec<String>,
    /// Name → (size, modified) of every file already handled (ingested or refused).
    seen: BTreeMap<String, (u64, i64)>,
}

impl LogFollower {
    /// A follower of `sources` that has seen nothing yet.
    pub fn new(sources: Vec<String>) -> Self {
        Self { sources, seen: BTreeMap::new() }
    }

    /// One round: every file not seen in this form yet is ingested; each result is shown to
    /// `report`. A source that cannot be listed fails the round (the next may succeed).
    pub async fn round(
        &mut self,
        ingestor: &LogIngestor,
        actor: &str,
        report: &mut (dyn FnMut(&str, &Result<LogReport, LogIngestError>) + Send),
    ) -> Result<usize, IngestError> {
        let mut handled = 0;
        for source in &self.sources {
            for found in find_logs(source).await? {
                let stamp = (found.size, found.modified);
                if self.seen.get(&found.name) == Some(&stamp) {
                    continue;
                }
                let result = ingestor.ingest(&found, actor).await;
                report(&found.name, &result);
                // A store or log failure is retried next round; a file that is refused
                // (or done) is not read again until it changes.
                if !matches!(result, Err(LogIngestError::Ingest(_))) {
                    self.seen.insert(found.name.clone(), stamp);
                }
                handled += 1;
            }
        }
        Ok(handled)
    }
}
