//! The reading pass over a delivery: every part validated, hashed and written as columnar
//! lines, on a thread of its own (it reads and computes for seconds; the async side meanwhile
//! stores the delivered bytes and reports progress). The pass tells the async side what it
//! has read through [`Note`]s, in order: the part's bytes as they are hashed, the part's
//! end, progress, and finally the outcome.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use chrono::Datelike;
use finops_attribution::cur_parquet::{BatchLines, CurBatch, CurParquet, CurParquetError};
use finops_attribution::focus_parquet::FocusParquet;
use finops_attribution::lines::{LinesWriter, SourceTotal};
use finops_cur::csv_lines::{CallerIdentity, CurCsv, CurCsvError, CurLine};
use finops_cur::focus_lines::FocusCsv;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc::Sender;

use crate::{Format, IngestError, Progress, container, period_name};

/// What the pass tells the async side, in the order it happens.
pub(crate) enum Note {
    /// Rows read so far.
    Progress(Progress),
    /// The next bytes of part `part` (delivery order), as delivered.
    Bytes { part: usize, chunk: Bytes },
    /// Part `part` has no more bytes.
    PartEnd { part: usize },
    /// The pass is over (the last note).
    Done(Result<Passed, IngestError>),
}

/// What a delivery held, once every part has been read.
pub(crate) struct Passed {
    pub rows: u64,
    pub period: String,
    pub caller_identity: CallerIdentity,
    /// SHA-256 of the parts' bytes, in order.
    pub hash: String,
    pub bytes: u64,
    pub sources: Vec<SourceTotal>,
}

/// The pass's inputs: everything it owns while it runs on its thread.
pub(crate) struct Pass {
    pub files: Vec<PathBuf>,
    pub format: Format,
    pub total_bytes: u64,
    /// Lines, facets and sessions, each with the scratch file it writes (named in errors).
    pub lines: LinesWriter<BufWriter<File>>,
    pub outputs: [PathBuf; 3],
    pub notes: Sender<Note>,
}

/// Bytes of a delivered part handed over for storing at a time.
const CHUNK: usize = 1 << 20;

/// Checked Parquet batches (32 K lines each) decoded ahead of the lines being written.
const BATCHES_AHEAD: usize = 2;

/// Rows between progress reports.
const PROGRESS_EVERY: u64 = 64 * 1024;

fn io(file: &Path) -> impl Fn(std::io::Error) -> IngestError + Clone + use<> {
    let file = file.display().to_string();
    move |e| IngestError::Io { file: file.clone(), reason: e.to_string() }
}

/// The storing side has stopped listening (it failed): stop reading.
fn stopped() -> std::io::Error {
    std::io::Error::other("storing the delivery stopped")
}

/// Reads through to `inner`, hashing and counting every byte and handing it over for
/// storing in chunks.
struct Tee<'a, R> {
    inner: R,
    hasher: &'a mut Sha256,
    bytes: &'a AtomicU64,
    part: usize,
    staged: Vec<u8>,
    notes: &'a Sender<Note>,
}

impl<'a, R: Read> Tee<'a, R> {
    fn new(inner: R, part: usize, hasher: &'a mut Sha256, bytes: &'a AtomicU64, notes: &'a Sender<Note>) -> Self {
        Self { inner, hasher, bytes, part, staged: Vec::with_capacity(CHUNK), notes }
    }

    fn hand_over(&mut self) -> std::io::Result<()> {
        let chunk = Bytes::from(std::mem::replace(&mut self.staged, Vec::with_capacity(CHUNK)));
        self.notes.blocking_send(Note::Bytes { part: self.part, chunk }).map_err(|_| stopped())
    }

    /// Reads what the reader left (a gzip trailer, or everything when nothing else reads),
    /// hands over the rest and ends the part.
    fn finish(mut self) -> std::io::Result<()> {
        std::io::copy(&mut self, &mut std::io::sink())?;
        if !self.staged.is_empty() {
            self.hand_over()?;
        }
        self.notes.blocking_send(Note::PartEnd { part: self.part }).map_err(|_| stopped())
    }
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        self.staged.extend_from_slice(&buf[..n]);
        if self.staged.len() >= CHUNK {
            self.hand_over()?;
        }
        Ok(n)
    }
}

/// What one part of a delivery held.
struct PartSummary {
    rows: u64,
    period: String,
    caller_identity: CallerIdentity,
}

/// What the parts read so far add up to.
struct Tally {
    rows: u64,
    /// The first part's period: every other part must share it.
    period: Option<String>,
    caller_identity: CallerIdentity,
}

impl Tally {
    fn add(&mut self, file: &str, part: PartSummary) -> Result<(), IngestError> {
        match &self.period {
            None => self.period = Some(part.period),
            Some(period) if *period != part.period => {
                return Err(IngestError::MixedPeriods {
                    file: file.to_owned(),
                    row: 1,
                    period: period.clone(),
                    found: part.period,
                });
            }
            Some(_) => {}
        }
        if part.caller_identity == CallerIdentity::Absent {
            self.caller_identity = CallerIdentity::Absent;
        }
        self.rows += part.rows;
        Ok(())
    }
}

/// What the decoding thread of a CUR Parquet delivery hands the writer, part after part.
enum Decoded {
    /// A part begins: its rows (from the footer) and whether it carries caller identity.
    Part { rows: u64, identity: CallerIdentity },
    /// Its next checked batch (boxed: a batch's columns are many, its footer small).
    Batch(Box<Result<CurBatch, CurParquetError>>),
    /// The part has no more batches.
    PartEnd,
}

impl Pass {
    /// Runs the pass and sends its outcome as the last note.
    pub(crate) fn run(self) {
        let notes = self.notes.clone();
        let outcome = self.read();
        // Nobody listens any more only when storing failed; that error is the one reported.
        let _ = notes.blocking_send(Note::Done(outcome));
    }

    fn read(self) -> Result<Passed, IngestError> {
        let Pass { files, format, total_bytes, mut lines, outputs, notes } = self;
        let mut hasher = Sha256::new();
        let bytes = AtomicU64::new(0);
        let mut tally = Tally { rows: 0, period: None, caller_identity: CallerIdentity::Present };
        let report = |file: &str, rows: u64, bytes: u64| {
            // Progress is lost only when nobody listens any more.
            let _ = notes.blocking_send(Note::Progress(Progress { file: file.to_owned(), rows, bytes, total_bytes }));
        };
        if files.iter().all(|f| container(f) == "parquet") {
            // Parquet needs to seek: the parts' bytes are hashed (and handed over for
            // storing) on one thread, their batches decoded and checked on another, part
            // after part without waiting for the writer, and written as lines on this one.
            let (decoding, decoded): (Vec<_>, Vec<_>) =
                files.iter().map(|_| std::sync::mpsc::sync_channel(BATCHES_AHEAD)).unzip();
            let next_part = std::sync::atomic::AtomicUsize::new(0);
            std::thread::scope(|threads| {
                let hashed = threads.spawn(|| {
                    for (index, path) in files.iter().enumerate() {
                        let file = File::open(path).map_err(io(path))?;
                        Tee::new(BufReader::new(file), index, &mut hasher, &bytes, &notes)
                            .finish()
                            .map_err(io(path))?;
                    }
                    Ok::<(), IngestError>(())
                });
                // Parts decode in parallel, up to the core count, each at most
                // `BATCHES_AHEAD` batches ahead of the writer (which takes them in order:
                // facet numbers follow the lines' order). A worker takes the next part not
                // yet taken, so the part being written is always being decoded.
                let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(files.len());
                let files = &files;
                for _ in 0..workers {
                    let (decoding, next_part) = (&decoding, &next_part);
                    threads.spawn(move || {
                        loop {
                            let index = next_part.fetch_add(1, Ordering::Relaxed);
                            let Some(path) = files.get(index) else { return };
                            // A failed send: the writer stopped at a bad line or a failed write.
                            if decode_part(format, path, &decoding[index]).is_err() {
                                return;
                            }
                        }
                    });
                }
                let mut read = || {
                    for ((index, path), decoded) in files.iter().enumerate().zip(&decoded) {
                        let name = path.display().to_string();
                        let size = std::fs::metadata(path).map_err(io(path))?.len();
                        let (rows, identity) = match decoded.recv() {
                            Ok(Decoded::Part { rows, identity }) => (rows, identity),
                            Ok(Decoded::Batch(opened)) => match *opened {
                                Err(e) => return Err(e.into()),
                                Ok(_) => unreachable!("a part begins with its footer"),
                            },
                            Ok(Decoded::PartEnd) => unreachable!("a part begins with its footer or an error"),
                            Err(_) => panic!("a decoding thread stopped before its part's end"),
                        };
                        let batches = std::iter::from_fn(|| match decoded.recv() {
                            Ok(Decoded::Batch(batch)) => Some(*batch),
                            Ok(Decoded::PartEnd) | Err(_) => None,
                            Ok(Decoded::Part { .. }) => unreachable!("a part ends before the next begins"),
                        });
                        let mut batch_lines = BatchLines::new(batches);
                        let next =
                            |line: &mut CurLine| batch_lines.next_line(line).map(|r| r.map_err(IngestError::from));
                        // A part's progress in bytes is its share of rows read: the hashing
                        // runs ahead of the reading.
                        let start = tally.rows;
                        let part_start = files[..index].iter().map(|f| file_len(f)).sum::<u64>();
                        let mut progress = |part_rows: u64| {
                            report(&name, start + part_rows, part_start + size * part_rows / rows.max(1))
                        };
                        let part = read_lines(&name, next, identity, &mut lines, &mut progress)?;
                        tally.add(&name, part)?;
                        report(&name, tally.rows, part_start + size);
                    }
                    Ok(())
                };
                let outcome = read();
                // Stop the decoding (its next send fails) before waiting for the hashing.
                drop(decoded);
                let hashed = hashed.join().expect("hashing does not panic");
                outcome.and(hashed)
            })?;
        } else {
            for (index, path) in files.iter().enumerate() {
                let name = path.display().to_string();
                let mut tee =
                    Tee::new(BufReader::new(File::open(path).map_err(io(path))?), index, &mut hasher, &bytes, &notes);
                let start = tally.rows;
                let mut progress = |part_rows: u64| report(&name, start + part_rows, bytes.load(Ordering::Relaxed));
                let part = match container(path) {
                    "parquet" => {
                        return Err(IngestError::Delivery {
                            path: name,
                            reason: "a delivery is all Parquet or all CSV, not both".into(),
                        });
                    }
                    "csv.gz" => {
                        let input = finops_cur::csv_lines::gzip(&mut tee);
                        let part = validate(&name, input, format, &mut lines, &mut progress)?;
                        tee.finish().map_err(io(path))?;
                        part
                    }
                    _ => {
                        let part = validate(&name, &mut tee, format, &mut lines, &mut progress)?;
                        tee.finish().map_err(io(path))?;
                        part
                    }
                };
                tally.add(&name, part)?;
                report(&name, tally.rows, bytes.load(Ordering::Relaxed));
            }
        }
        let sources = lines.source_totals();
        let written = lines.finish()?;
        for (mut out, path) in [written.0, written.1, written.2].into_iter().zip(&outputs) {
            out.flush().map_err(io(path))?;
        }
        Ok(Passed {
            rows: tally.rows,
            period: tally.period.expect("a delivery has at least one part"),
            caller_identity: tally.caller_identity,
            hash: hex::encode(hasher.finalize()),
            bytes: bytes.load(Ordering::Relaxed),
            sources,
        })
    }
}

/// Decodes one Parquet part into `decoding`: its footer, its checked batches (or the error
/// that stops it), its end. Fails when nobody receives any more.
fn decode_part(
    format: Format,
    path: &Path,
    decoding: &std::sync::mpsc::SyncSender<Decoded>,
) -> Result<(), std::sync::mpsc::SendError<Decoded>> {
    let name = path.display().to_string();
    let (parquet, rows, identity) = match open_parquet(format, &name, path) {
        Ok(opened) => opened,
        Err(e) => return decoding.send(Decoded::Batch(Box::new(Err(e)))),
    };
    decoding.send(Decoded::Part { rows, identity })?;
    for batch in parquet {
        decoding.send(Decoded::Batch(Box::new(batch)))?;
    }
    decoding.send(Decoded::PartEnd)
}

/// A Parquet part opened for checked batches: the batches, its rows and whether it carries
/// caller identity.
type OpenedParquet = (Box<dyn Iterator<Item = Result<CurBatch, CurParquetError>> + Send>, u64, CallerIdentity);

fn open_parquet(format: Format, name: &str, path: &Path) -> Result<OpenedParquet, CurParquetError> {
    let file =
        File::open(path).map_err(|e| CurParquetError::Parquet { file: name.to_owned(), reason: e.to_string() })?;
    Ok(match format {
        Format::Cur => {
            let parquet = CurParquet::open(name, file)?;
            let (rows, identity) = (parquet.rows(), parquet.caller_identity());
            (Box::new(parquet), rows, identity)
        }
        Format::Focus => {
            let parquet = FocusParquet::open(name, file)?;
            let (rows, identity) = (parquet.rows(), parquet.caller_identity());
            (Box::new(parquet), rows, identity)
        }
    })
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Reads every row of one part into `lines_out`, or stops at the first problem.
fn validate(
    file: &str,
    input: impl Read,
    format: Format,
    lines_out: &mut LinesWriter<impl Write + Send>,
    progress: &mut dyn FnMut(u64),
) -> Result<PartSummary, IngestError> {
    let (lines, caller_identity): (Box<dyn Iterator<Item = Result<CurLine, CurCsvError>> + '_>, CallerIdentity) =
        match format {
            Format::Cur => {
                let csv = CurCsv::new(file, input)?;
                let identity = csv.caller_identity();
                (Box::new(csv), identity)
            }
            Format::Focus => (Box::new(FocusCsv::new(file, input)?), CallerIdentity::Absent),
        };
    let mut lines = lines;
    let next = |line: &mut CurLine| {
        lines.next().map(|read| {
            *line = read?;
            Ok(())
        })
    };
    read_lines(file, next, caller_identity, lines_out, progress)
}

/// Reads every line `next` fills in (one line reused: no allocation per line) into
/// `lines_out`, or stops at the first problem.
fn read_lines(
    file: &str,
    mut next: impl FnMut(&mut CurLine) -> Option<Result<(), IngestError>>,
    caller_identity: CallerIdentity,
    lines_out: &mut LinesWriter<impl Write + Send>,
    progress: &mut dyn FnMut(u64),
) -> Result<PartSummary, IngestError> {
    let mut rows = 0u64;
    let mut period: Option<(i32, u32)> = None;
    let mut line = CurLine::default();
    while let Some(read) = next(&mut line) {
        read?;
        lines_out.push(&line)?;
        rows += 1;
        if rows.is_multiple_of(PROGRESS_EVERY) {
            progress(rows);
        }
        let this = (line.usage_start.year(), line.usage_start.month());
        match period {
            None => period = Some(this),
            Some(p) if p != this => {
                return Err(IngestError::MixedPeriods {
                    file: file.to_owned(),
                    row: rows,
                    period: period_name(p),
                    found: period_name(this),
                });
            }
            Some(_) => {}
        }
    }
    let period = period.map(period_name).ok_or_else(|| IngestError::Empty(file.to_owned()))?;
    Ok(PartSummary { rows, period, caller_identity })
}
