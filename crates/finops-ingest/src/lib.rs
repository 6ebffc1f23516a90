//! # CUR ingestion
//!
//! A delivery — one billing period of CUR 2.0 or FOCUS, as CSV, gzip CSV or Parquet, in one
//! file or in the parts of an export's `BILLING_PERIOD=YYYY-MM/` partition — becomes a
//! batch in three steps:
//!
//! 1. **Validate** every row, streaming, on a thread of its own, while hashing the bytes
//!    and storing them under a temporary name (`cur/incoming/`, [`staging`]): the first bad
//!    value stops the ingest with its file, row, column and value, and nothing is kept. All
//!    rows must belong to one billing period.
//! 2. **Store**: the delivered bytes, already in object storage, are renamed to
//!    `cur/{period}/{sha256}.{ext}`; beside them go the batch's columnar lines, facets and
//!    sessions (`{sha256}.lines-6.parquet`, `.facets-6.parquet`, `.sessions-6.parquet`,
//!    written during the validating pass to temporary files) that every attribution query
//!    scans. The name is the content, so a repeated delivery writes the same objects (and
//!    writes those missing, such as a columnar form of an earlier layout). Memory stays
//!    bounded whatever the file's size (ARCHITECTURE.md states the bound).
//! 3. **Record** `CurBatchIngested` in the period's stream; a new batch supersedes the
//!    period's current one (AWS restates CUR), nothing is deleted.
//!
//! If the process dies between 2 and 3, an unreferenced object is left behind: harmless,
//! and the retry records it. If it dies during 1, its temporary objects are swept by a
//! later ingest once they are a day old.
//!
//! [`discover`] turns a file, a folder or an export prefix into deliveries (honouring the
//! export's manifest); [`fetch`] copies an `s3://` prefix to a local folder first.

pub mod discover;
pub mod logs;
pub mod objects;
mod pass;
pub mod staging;

pub use discover::{Delivery, discover, fetch};

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use finops_attribution::cur_parquet::CurReadError;
use finops_attribution::lines::LinesWriter;
/// Scratch files and folders that a killed process leaves for the next one to sweep.
pub use finops_attribution::scratch;

/// An exact amount (units of `finops_attribution::lines::MONEY_SCALE`) in whole cents,
/// rounded half away from zero.
pub fn cents(raw: i128) -> i64 {
    finops_attribution::cents(raw, finops_attribution::lines::MONEY_SCALE)
}
use finops_attribution::scratch::Scratch;
use finops_attribution::{facets_location, lines_location, sessions_location};
use finops_cur::csv_lines::{CallerIdentity, CurCsvError};
use finops_domain::cur_batches::{CurBatch, CurPeriod, CurPeriodCommand};
use finops_eventlog::{EventStore, StreamId};
use finops_governance::{CommandContext, CommandHandler, GovernanceError};
use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use pass::{Note, Passed};

/// Why an ingest did not happen.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The file could not be read.
    #[error("cannot read {file}: {reason}")]
    Io {
        /// The file.
        file: String,
        /// The OS error.
        reason: String,
    },
    /// A bad row or header (nothing was stored).
    #[error(transparent)]
    Invalid(#[from] CurCsvError),
    /// Rows from two billing periods in one delivery.
    #[error(
        "{file}: row {row} is in billing period {found}, but the delivery began in {period}; split the file by period"
    )]
    MixedPeriods {
        /// The file.
        file: String,
        /// The row.
        row: u64,
        /// The first row's period.
        period: String,
        /// This row's period.
        found: String,
    },
    /// The file has no data rows.
    #[error("{0} has no data rows")]
    Empty(String),
    /// An export's manifest and its data files disagree, or a path is unusable.
    #[error("{path}: {reason}")]
    Delivery {
        /// The manifest, folder or URL.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Object storage failed.
    #[error("object storage: {0}")]
    Objects(#[from] object_store::Error),
    /// A Parquet file could not be read.
    #[error("{file}: not readable Parquet: {reason}")]
    Parquet {
        /// The file.
        file: String,
        /// The reader's complaint.
        reason: String,
    },
    /// The columnar lines could not be written.
    #[error(transparent)]
    Lines(#[from] finops_attribution::lines::LinesWriteError),
    /// The log refused or failed.
    #[error(transparent)]
    Log(#[from] GovernanceError),
}

impl From<CurReadError> for IngestError {
    fn from(e: CurReadError) -> Self {
        match e {
            CurReadError::Invalid(e) => Self::Invalid(e),
            CurReadError::Parquet { file, reason } => Self::Parquet { file, reason },
        }
    }
}

/// Which vocabulary a delivery's rows use (the container — CSV, gzip CSV, Parquet — comes
/// from each file's name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CUR 2.0 (or legacy CUR).
    Cur,
    /// FOCUS 1.x.
    Focus,
}

/// What an ingest did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestReport {
    /// The batch.
    pub batch: CurBatch,
    /// The batch it superseded (a restatement), if any.
    pub superseded: Option<String>,
    /// The same bytes were already the period's current batch: nothing was written.
    pub already_current: bool,
    /// The AI lines and dollars recognised per source (first-party Bedrock, Marketplace,
    /// Claude Platform, guardrails): a source silently dropped shows as zero here.
    pub sources: Vec<finops_attribution::lines::SourceTotal>,
}

/// How far an ingest has come (reported every few ten thousand rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The file being read.
    pub file: String,
    /// Rows validated so far, all parts.
    pub rows: u64,
    /// Bytes read so far, all parts.
    pub bytes: u64,
    /// Bytes of the whole delivery.
    pub total_bytes: u64,
}

/// Validates, stores and records CUR deliveries.
pub struct Ingestor {
    periods: CommandHandler<CurPeriod>,
    objects: Arc<dyn ObjectStore>,
}

/// The stream of a billing period.
pub fn period_stream(period: &str) -> StreamId {
    finops_governance::streams::cur_period(period)
}

/// `YYYY-MM`.
fn period_name((year, month): (i32, u32)) -> String {
    format!("{year:04}-{month:02}")
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

fn container(path: &Path) -> &'static str {
    let name = file_name(path);
    if name.ends_with(".parquet") {
        "parquet"
    } else if name.ends_with(".gz") {
        "csv.gz"
    } else {
        "csv"
    }
}

impl Ingestor {
    /// An ingestor writing objects to `objects` and batches to `store`.
    pub fn new(store: Arc<dyn EventStore>, objects: Arc<dyn ObjectStore>) -> Self {
        Self { periods: CommandHandler::new(store), objects }
    }

    /// Ingests one local file.
    pub async fn ingest_file(
        &self,
        path: &Path,
        format: Format,
        context: &CommandContext,
    ) -> Result<IngestReport, IngestError> {
        self.ingest(&Delivery::file(path), format, context, &mut |_| {}).await
    }

    /// Ingests a delivery: every part validated (nothing is stored unless all are good and
    /// all fall in one billing period), then stored and recorded as one batch.
    pub async fn ingest(
        &self,
        delivery: &Delivery,
        format: Format,
        context: &CommandContext,
        progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<IngestReport, IngestError> {
        let io = |file: &Path| {
            let file = file.display().to_string();
            move |e: std::io::Error| IngestError::Io { file: file.clone(), reason: e.to_string() }
        };
        if delivery.files.is_empty() {
            return Err(IngestError::Delivery { path: delivery.source.clone(), reason: "holds no data files".into() });
        }
        let sizes: Vec<u64> =
            delivery.files.iter().map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0)).collect();
        match staging::sweep_incoming(self.objects.as_ref(), Utc::now() - staging::STALE_AFTER).await {
            Ok(0) => {}
            Ok(swept) => tracing::info!(swept, "removed temporary objects of ingests that died"),
            Err(e) => tracing::warn!(error = %e, "cannot sweep temporary objects"),
        }

        // 1. Read every part on a thread of its own — validated, hashed, written as lines —
        //    while its bytes are stored here under a temporary name as they are hashed.
        let scratch = [Scratch::new("lines.parquet"), Scratch::new("facets.parquet"), Scratch::new("sessions.parquet")];
        let create = |s: &Scratch| File::create(&s.0).map(BufWriter::new).map_err(io(&s.0));
        let lines = LinesWriter::new(create(&scratch[0])?, create(&scratch[1])?, create(&scratch[2])?)?;
        let (notes, mut noted) = tokio::sync::mpsc::channel(NOTES_AHEAD);
        let pass = pass::Pass {
            files: delivery.files.clone(),
            format,
            sizes,
            lines,
            outputs: scratch.each_ref().map(|s| s.0.clone()),
            notes,
        };
        let reading = std::thread::Builder::new()
            .name("cur-ingest".into())
            .spawn(move || pass.run())
            .map_err(io(Path::new(&delivery.source)))?;
        let mut incoming = staging::Incoming::new(self.objects.clone());
        let passed = loop {
            let stored = match noted.recv().await {
                Some(Note::Progress(p)) => {
                    progress(&p);
                    Ok(())
                }
                Some(Note::Bytes { part, chunk }) => incoming.write(part, chunk).await,
                Some(Note::PartEnd { part }) => incoming.end_part(part).await,
                Some(Note::Done(passed)) => break passed,
                None => std::panic::resume_unwind(reading.join().expect_err("the pass ends with its outcome")),
            };
            if let Err(e) = stored {
                // Stop the pass (its next hand-over fails) and report the storage error.
                drop(noted);
                incoming.discard().await;
                return Err(e.into());
            }
        };
        let passed = match passed {
            Ok(passed) => passed,
            Err(e) => {
                incoming.discard().await;
                return Err(e);
            }
        };
        let Passed { rows, period, caller_identity, hash, bytes, sources } = passed;

        // 2. Name the delivery's stored parts by their content, then store the columnar lines.
        let (names, location) = if let [only] = delivery.files.as_slice() {
            let name = ObjectPath::from(format!("cur/{period}/{hash}.{}", container(only)));
            let location = name.to_string();
            (vec![name], location)
        } else {
            let names = delivery
                .files
                .iter()
                .map(|part| ObjectPath::from(format!("cur/{period}/{hash}/{}", file_name(part))))
                .collect();
            (names, format!("cur/{period}/{hash}/"))
        };
        incoming.settle(&names, &delivery.files).await?;
        let objects = self.objects.as_ref();
        staging::upload(objects, &scratch[0].0, &lines_location(&period, &hash)).await?;
        staging::upload(objects, &scratch[2].0, &sessions_location(&period, &hash)).await?;
        // The facets last: a batch whose facets exist has all its columnar objects.
        staging::upload(objects, &scratch[1].0, &facets_location(&period, &hash)).await?;

        // 3. Record.
        let batch = CurBatch {
            period: period.clone(),
            source: delivery.source.clone(),
            hash: hash.clone(),
            location,
            format: match format {
                Format::Cur => "cur",
                Format::Focus => "focus",
            }
            .to_owned(),
            rows,
            bytes,
            caller_identity: caller_identity == CallerIdentity::Present,
        };
        let stream = period_stream(&period);
        let before = self.periods.load(&stream).await?;
        let previous = before.state.batches.last().map(|(b, _)| b.hash.clone());
        let command = CurPeriodCommand::RecordBatch { batch: batch.clone(), at: Utc::now() };
        let after = self.periods.execute(&stream, &command, context).await?;
        let already_current = after.version == before.version;
        tracing::info!(%period, %hash, rows, bytes, already_current, "CUR batch ingested");
        Ok(IngestReport { batch, superseded: if already_current { None } else { previous }, already_current, sources })
    }
}

/// Notes (1 MiB of delivered bytes each, or a progress report) the pass runs ahead of the
/// storing: with the multipart parts in flight, what bounds the delivery's bytes in memory.
const NOTES_AHEAD: usize = 8;
