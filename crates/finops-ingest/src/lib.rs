//! # CUR ingestion
//!
//! A delivery (CUR 2.0 or FOCUS CSV, plain or gzip) becomes a batch in three steps:
//!
//! 1. **Validate** every row, streaming, while hashing the bytes: the first bad value stops
//!    the ingest with its file, row, column and value, and nothing is stored. All rows must
//!    belong to one billing period.
//! 2. **Store** the bytes in object storage at `cur/{period}/{sha256}.{ext}`, streamed in
//!    parts (memory stays bounded whatever the file's size), and beside them the batch's
//!    columnar lines (`{sha256}.lines.parquet`, written during the validating pass to a
//!    temporary file) that every attribution query scans. The name is the content, so a
//!    repeated delivery writes the same objects.
//! 3. **Record** `CurBatchIngested` in the period's stream; a new batch supersedes the
//!    period's current one (AWS restates CUR), nothing is deleted.
//!
//! If the process dies between 2 and 3, an unreferenced object is left behind: harmless,
//! and the retry records it.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;

use chrono::{Datelike, Utc};
use finops_attribution::lines::LinesWriter;
use finops_attribution::lines_location;
use finops_cur::csv_lines::{CallerIdentity, CurCsv, CurCsvError, CurLine};
use finops_cur::focus_lines::FocusCsv;
use finops_domain::cur_batches::{CurBatch, CurPeriod, CurPeriodCommand};
use finops_eventlog::{EventStore, StreamId};
use finops_governance::{CommandContext, CommandHandler, GovernanceError};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};

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
    /// Object storage failed.
    #[error("object storage: {0}")]
    Objects(#[from] object_store::Error),
    /// The columnar lines could not be written.
    #[error(transparent)]
    Lines(#[from] finops_attribution::lines::LinesWriteError),
    /// The log refused or failed.
    #[error(transparent)]
    Log(#[from] GovernanceError),
}

/// Which format a delivery is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CUR 2.0 (or legacy CUR) CSV.
    Cur,
    /// FOCUS 1.x CSV.
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
}

/// Validates, stores and records CUR deliveries.
pub struct Ingestor {
    periods: CommandHandler<CurPeriod>,
    objects: Arc<dyn ObjectStore>,
}

/// Reads through to `inner` while hashing and counting every byte.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// The stream of a billing period.
pub fn period_stream(period: &str) -> StreamId {
    finops_governance::streams::cur_period(period)
}

fn period_of(line: &CurLine) -> String {
    format!("{:04}-{:02}", line.usage_start.year(), line.usage_start.month())
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
        let name = path.display().to_string();
        let io = |e: std::io::Error| IngestError::Io { file: name.clone(), reason: e.to_string() };

        // 1. Validate, hash and find the period in one streaming pass.
        let file = File::open(path).map_err(io)?;
        let mut hashing = Hashing { inner: BufReader::new(file), hasher: Sha256::new(), bytes: 0 };
        let gz = name.ends_with(".gz");
        let scratch = Scratch::new()?;
        let mut lines = LinesWriter::new(BufWriter::new(File::create(&scratch.0).map_err(io)?))?;
        let (rows, period, caller_identity) = {
            let input: Box<dyn Read + '_> =
                if gz { Box::new(finops_cur::csv_lines::gzip(&mut hashing)) } else { Box::new(&mut hashing) };
            validate(&name, input, format, &mut lines)?
        };
        lines.finish()?.flush().map_err(io)?;
        // Drain anything the CSV reader did not consume (e.g. a gzip trailer) into the hash.
        std::io::copy(&mut hashing, &mut std::io::sink()).map_err(io)?;
        let hash = hex::encode(hashing.hasher.finalize());
        let bytes = hashing.bytes;

        // 2. Store, streamed in parts: the delivery, then its columnar lines.
        let ext = if gz { "csv.gz" } else { "csv" };
        let location = ObjectPath::from(format!("cur/{period}/{hash}.{ext}"));
        self.upload(path, &location).await?;
        self.upload(&scratch.0, &lines_location(&period, &hash)).await?;

        // 3. Record.
        let batch = CurBatch {
            period: period.clone(),
            source: name.clone(),
            hash: hash.clone(),
            location: location.to_string(),
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
        Ok(IngestReport { batch, superseded: if already_current { None } else { previous }, already_current })
    }
}

impl Ingestor {
    /// Copies a local file to `location` unless it is there already (names are content).
    async fn upload(&self, path: &Path, location: &ObjectPath) -> Result<(), IngestError> {
        if self.objects.head(location).await.is_ok() {
            return Ok(());
        }
        let io = |e: std::io::Error| IngestError::Io { file: path.display().to_string(), reason: e.to_string() };
        let upload = self.objects.put_multipart(location).await?;
        let mut writer = WriteMultipart::new(upload);
        let mut file = File::open(path).map_err(io)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            writer.write(&buf[..n]);
        }
        writer.finish().await?;
        Ok(())
    }
}

/// A temporary file, removed when dropped (an ingest that fails leaves nothing behind).
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new() -> Result<Self, IngestError> {
        let path = std::env::temp_dir().join(format!("finops-ingest-{}.parquet", uuid::Uuid::now_v7()));
        Ok(Self(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Reads every row into `lines`; returns (rows, period, caller identity) or the first problem.
fn validate(
    file: &str,
    input: impl Read,
    format: Format,
    lines_out: &mut LinesWriter<impl Write + Send>,
) -> Result<(u64, String, CallerIdentity), IngestError> {
    let (lines, identity): (Box<dyn Iterator<Item = Result<CurLine, CurCsvError>> + '_>, CallerIdentity) = match format
    {
        Format::Cur => {
            let csv = CurCsv::new(file, input)?;
            let identity = csv.caller_identity();
            (Box::new(csv), identity)
        }
        Format::Focus => (Box::new(FocusCsv::new(file, input)?), CallerIdentity::Absent),
    };
    let mut rows = 0u64;
    let mut period: Option<String> = None;
    for line in lines {
        let line = line?;
        lines_out.push(&line)?;
        rows += 1;
        let this = period_of(&line);
        match &period {
            None => period = Some(this),
            Some(p) if *p != this => {
                return Err(IngestError::MixedPeriods {
                    file: file.to_owned(),
                    row: rows,
                    period: p.clone(),
                    found: this,
                });
            }
            Some(_) => {}
        }
    }
    let period = period.ok_or_else(|| IngestError::Empty(file.to_owned()))?;
    Ok((rows, period, identity))
}
