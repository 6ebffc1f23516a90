//! The reading pass over a delivery: every part validated, hashed and written as columnar
//! lines, on a thread of its own (it reads and computes for seconds; the async side meanwhile
//! stores the delivered bytes and reports progress). The pass tells the async side what it
//! has read through [`Note`]s, in order: the part's bytes as they are hashed, the part's
//! end, progress, and finally the outcome.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use chrono::Datelike;
use finops_attribution::csv_batches::{CurCsvBatches, FocusCsvBatches};
use finops_attribution::cur_parquet::{CurBatch, CurParquet, CurReadError};
use finops_attribution::focus_parquet::FocusParquet;
use finops_attribution::lines::{LinesWriter, SourceTotal};
use finops_attribution::parquet_footer::ParquetFooter;
use finops_cur::csv_lines::{CallerIdentity, CurCsvError};
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
    /// Each part's size in bytes, as found before the pass.
    pub sizes: Vec<u64>,
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

    /// Reads the part through, hands over the rest and ends the part.
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

/// What a decoding thread hands the writer, part after part.
enum Decoded {
    /// A part begins: whether it carries caller identity.
    Part { identity: CallerIdentity },
    /// Its next checked batch (boxed: a batch's columns are many), and how many of the
    /// part's bytes it has read through (for progress).
    Batch { batch: Box<Result<CurBatch, CurReadError>>, through: u64 },
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
        let Pass { files, format, sizes, mut lines, outputs, notes } = self;
        let total_bytes = sizes.iter().sum();
        // An export is one format: a part in another container is refused by name.
        if let Some(other) = files.iter().find(|f| container(f) != container(&files[0])) {
            return Err(IngestError::Delivery {
                path: other.display().to_string(),
                reason: "a delivery is all Parquet or all CSV, not both".into(),
            });
        }
        let mut hasher = Sha256::new();
        let bytes = AtomicU64::new(0);
        let mut tally = Tally { rows: 0, period: None, caller_identity: CallerIdentity::Present };
        let report = |file: &str, rows: u64, bytes: u64| {
            // Progress is lost only when nobody listens any more.
            let _ = notes.blocking_send(Note::Progress(Progress { file: file.to_owned(), rows, bytes, total_bytes }));
        };
        // The parts' bytes are hashed (and handed over for storing) on one thread, their
        // batches decoded and checked on others, part after part without waiting for the
        // writer, and written as lines on this one. Hashing reads each part a second time
        // (from the page cache): it never waits for the decoding, nor the decoding for it.
        // A Parquet part is read in pieces (runs of its row groups) that decode apart; a
        // CSV part is one piece.
        let pieces: Vec<Piece> = files.iter().enumerate().flat_map(|(part, path)| Piece::of(part, path)).collect();
        let (decoding, decoded): (Vec<_>, Vec<_>) =
            pieces.iter().map(|_| std::sync::mpsc::sync_channel(BATCHES_AHEAD)).unzip();
        let next_piece = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|threads| {
            let hashed = threads.spawn(|| {
                for (index, path) in files.iter().enumerate() {
                    let file = File::open(path).map_err(io(path))?;
                    Tee::new(BufReader::new(file), index, &mut hasher, &bytes, &notes).finish().map_err(io(path))?;
                }
                Ok::<(), IngestError>(())
            });
            // Pieces decode in parallel, up to the core count, each at most
            // `BATCHES_AHEAD` batches ahead of the writer (which takes them in order:
            // facet numbers follow the lines' order). A worker takes the next piece not
            // yet taken, so the piece being written is always being decoded.
            let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(pieces.len());
            let (files, pieces, sizes) = (&files, &pieces, &sizes);
            for _ in 0..workers {
                let (decoding, next_piece) = (&decoding, &next_piece);
                threads.spawn(move || {
                    loop {
                        let index = next_piece.fetch_add(1, Ordering::Relaxed);
                        let Some(piece) = pieces.get(index) else { return };
                        // A failed send: the writer stopped at a bad line or a failed write.
                        let (path, size) = (&files[piece.part], sizes[piece.part]);
                        if decode_piece(format, path, size, piece, &decoding[index]).is_err() {
                            return;
                        }
                    }
                });
            }
            let mut read = || {
                let mut part_start = 0;
                let mut decoded = decoded.iter().zip(pieces).peekable();
                for (part, (path, size)) in files.iter().zip(sizes.iter()).enumerate() {
                    let name = path.display().to_string();
                    // The part's pieces, in order, each beginning with the part's header.
                    let mut receivers = std::iter::from_fn(|| decoded.next_if(|(_, p)| p.part == part).map(|(r, _)| r));
                    let mut receiver = receivers.next().expect("every part is at least one piece");
                    let identity = header(receiver)?;
                    let through = std::cell::Cell::new(0);
                    let batches = std::iter::from_fn(|| {
                        loop {
                            match receiver.recv() {
                                Ok(Decoded::Batch { batch, through: read }) => {
                                    through.set(read);
                                    return Some((*batch).map_err(IngestError::from));
                                }
                                Ok(Decoded::PartEnd) | Err(_) => {
                                    receiver = receivers.next()?;
                                    if let Err(e) = header(receiver) {
                                        return Some(Err(e));
                                    }
                                }
                                Ok(Decoded::Part { .. }) => unreachable!("a piece ends before the next begins"),
                            }
                        }
                    });
                    // Progress in bytes is the decoding's: the hashing runs ahead of it.
                    let start = tally.rows;
                    let mut progress = |part_rows: u64| report(&name, start + part_rows, part_start + through.get());
                    let part = read_batches(&name, batches, identity, &mut lines, &mut progress)?;
                    tally.add(&name, part)?;
                    part_start += size;
                    report(&name, tally.rows, part_start);
                }
                Ok(())
            };
            let outcome = read();
            // Stop the decoding (its next send fails) before waiting for the hashing.
            drop(decoded);
            let hashed = hashed.join().expect("hashing does not panic");
            outcome.and(hashed)
        })?;
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

/// The header a piece's batches begin with: whether its part carries caller identity, or
/// the error that stopped it before its first batch.
fn header(receiver: &std::sync::mpsc::Receiver<Decoded>) -> Result<CallerIdentity, IngestError> {
    match receiver.recv() {
        Ok(Decoded::Part { identity }) => Ok(identity),
        Ok(Decoded::Batch { batch, .. }) => match *batch {
            Err(e) => Err(IngestError::from(e)),
            Ok(_) => unreachable!("a piece begins with its header"),
        },
        Ok(Decoded::PartEnd) => unreachable!("a piece begins with its header or an error"),
        Err(_) => panic!("a decoding thread stopped before its piece's end"),
    }
}

/// What a decoding thread reads at a time: a whole part, or a run of a Parquet part's row
/// groups.
struct Piece {
    /// The part's index in the delivery.
    part: usize,
    /// The part's footer and the run of its row groups, for a Parquet part whose footer
    /// could be read (otherwise the part is read whole, and its error found then).
    groups: Option<(Arc<ParquetFooter>, Range<usize>)>,
}

/// Pieces a Parquet part is read in, at most (each at least a row group): enough for the
/// decoding threads to share a single large part, few enough that opening a piece (a file
/// handle, the shared footer) costs nothing measurable. Any part of several row groups is
/// read in pieces, so every multi-group test reads through them.
const PIECES_PER_PART: u64 = 16;

impl Piece {
    /// The pieces of part `part`, in order.
    fn of(part: usize, path: &Path) -> Vec<Piece> {
        let footer = (container(path) == "parquet")
            .then(|| File::open(path).ok())
            .flatten()
            .and_then(|file| ParquetFooter::read(&path.display().to_string(), &file).ok());
        match footer {
            Some(footer) => {
                let footer = Arc::new(footer);
                let pieces = footer.pieces(footer.rows().div_ceil(PIECES_PER_PART).max(1));
                pieces.into_iter().map(|groups| Piece { part, groups: Some((footer.clone(), groups)) }).collect()
            }
            None => vec![Piece { part, groups: None }],
        }
    }
}

/// Decodes one piece into `decoding`: its part's header, its checked batches (or the error
/// that stops it), its end. Fails when nobody receives any more.
fn decode_piece(
    format: Format,
    path: &Path,
    size: u64,
    piece: &Piece,
    decoding: &std::sync::mpsc::SyncSender<Decoded>,
) -> Result<(), std::sync::mpsc::SendError<Decoded>> {
    let name = path.display().to_string();
    let read = Arc::new(AtomicU64::new(0));
    let part = match open_piece(format, &name, path, piece, &read) {
        Ok(opened) => opened,
        Err(e) => return decoding.send(Decoded::Batch { batch: Box::new(Err(e)), through: 0 }),
    };
    decoding.send(Decoded::Part { identity: part.identity })?;
    let mut rows = part.first_row;
    for batch in part.batches {
        // A Parquet part is read by seeking: its progress is its share of rows.
        rows += batch.as_ref().map_or(0, |b| b.len() as u64);
        let through = match part.rows {
            Some(total) => (u128::from(size) * u128::from(rows) / u128::from(total.max(1))) as u64,
            None => read.load(Ordering::Relaxed),
        };
        decoding.send(Decoded::Batch { batch: Box::new(batch), through })?;
    }
    decoding.send(Decoded::PartEnd)
}

/// A piece opened for checked batches.
struct OpenedPiece {
    batches: Box<dyn Iterator<Item = Result<CurBatch, CurReadError>> + Send>,
    /// Its part's rows, when its footer says (Parquet).
    rows: Option<u64>,
    /// The part's rows before the piece's.
    first_row: u64,
    identity: CallerIdentity,
}

/// Bytes of a CSV part buffered for its decoder (decompressed, for gzip).
const CSV_BUFFER: usize = 256 * 1024;

fn open_piece(
    format: Format,
    name: &str,
    path: &Path,
    piece: &Piece,
    read: &Arc<AtomicU64>,
) -> Result<OpenedPiece, CurReadError> {
    let file = File::open(path).map_err(|e| {
        CurReadError::Invalid(CurCsvError::Unreadable { file: name.to_owned(), row: 0, reason: e.to_string() })
    })?;
    let csv = |file: File| -> Box<dyn BufRead + Send> {
        let counted = Counted { inner: file, read: read.clone() };
        match container(path) {
            "csv.gz" => Box::new(BufReader::with_capacity(
                CSV_BUFFER,
                finops_cur::csv_lines::gzip(BufReader::with_capacity(CSV_BUFFER, counted)),
            )),
            _ => Box::new(BufReader::with_capacity(CSV_BUFFER, counted)),
        }
    };
    // A part whose footer could not be read is read whole: reading it names the error.
    let pieced = |file: &File| match &piece.groups {
        Some((footer, groups)) => Ok((footer.clone(), groups.clone())),
        None => ParquetFooter::read(name, file).map(|footer| {
            let groups = footer.row_groups();
            (Arc::new(footer), groups)
        }),
    };
    Ok(match (format, container(path)) {
        (Format::Cur, "parquet") => {
            let (footer, groups) = pieced(&file)?;
            let first_row = footer.first_row(groups.start);
            let parquet = CurParquet::open_groups(name, file, &footer, groups)?;
            let (rows, identity) = (Some(parquet.rows()), parquet.caller_identity());
            OpenedPiece { batches: Box::new(parquet), rows, first_row, identity }
        }
        (Format::Focus, "parquet") => {
            let (footer, groups) = pieced(&file)?;
            let first_row = footer.first_row(groups.start);
            let parquet = FocusParquet::open_groups(name, file, &footer, groups)?;
            let (rows, identity) = (Some(parquet.rows()), parquet.caller_identity());
            OpenedPiece { batches: Box::new(parquet), rows, first_row, identity }
        }
        (Format::Cur, _) => {
            let batches = CurCsvBatches::new(name, csv(file))?;
            let identity = batches.caller_identity();
            OpenedPiece { batches: Box::new(batches), rows: None, first_row: 0, identity }
        }
        (Format::Focus, _) => {
            let batches = FocusCsvBatches::new(name, csv(file))?;
            OpenedPiece { batches: Box::new(batches), rows: None, first_row: 0, identity: CallerIdentity::Absent }
        }
    })
}

/// Counts the bytes read from a part's file (its progress while it is read).
struct Counted {
    inner: File,
    read: Arc<AtomicU64>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Writes the lines of one part's checked batches into `lines_out`, or stops at the first
/// problem (a batch that failed its checks, a line outside the part's month, a failed write).
fn read_batches(
    file: &str,
    batches: impl Iterator<Item = Result<CurBatch, IngestError>>,
    caller_identity: CallerIdentity,
    lines_out: &mut LinesWriter<impl Write + Send>,
    progress: &mut dyn FnMut(u64),
) -> Result<PartSummary, IngestError> {
    let mut rows = 0u64;
    let mut month: Option<Month> = None;
    for batch in batches {
        let batch = batch?;
        let starts = batch.starts();
        let Some(&first) = starts.first() else { continue };
        let month = *month.get_or_insert_with(|| Month::of(first));
        if let Some(r) = starts.iter().position(|start| !month.holds(*start)) {
            return Err(IngestError::MixedPeriods {
                file: file.to_owned(),
                row: rows + r as u64 + 1,
                period: period_name(month.name),
                found: period_name(Month::of(starts[r]).name),
            });
        }
        lines_out.push_batch(&batch)?;
        let before = rows;
        rows += starts.len() as u64;
        if rows / PROGRESS_EVERY > before / PROGRESS_EVERY {
            progress(rows);
        }
    }
    let period = month.map(|m| period_name(m.name)).ok_or_else(|| IngestError::Empty(file.to_owned()))?;
    Ok(PartSummary { rows, period, caller_identity })
}

/// A calendar month (UTC) as the instants it holds, microseconds since the epoch.
#[derive(Clone, Copy)]
struct Month {
    name: (i32, u32),
    from: i64,
    until: i64,
}

impl Month {
    fn of(micros: i64) -> Self {
        let day = chrono::DateTime::from_timestamp_micros(micros).expect("checked").date_naive();
        let first = day.with_day(1).expect("every month has a first day");
        let next = first.checked_add_months(chrono::Months::new(1)).expect("a month after");
        let micros_of = |d: chrono::NaiveDate| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_micros();
        Self { name: (first.year(), first.month()), from: micros_of(first), until: micros_of(next) }
    }

    fn holds(&self, micros: i64) -> bool {
        (self.from..self.until).contains(&micros)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Parquet part of several row groups is decoded in pieces (so threads share it), which
    /// cover its row groups once and in order; a CSV part, or a file that is no Parquet,
    /// is one piece.
    #[test]
    fn a_parquet_part_of_several_row_groups_is_read_in_pieces_that_cover_it_in_order() {
        let scratch = finops_attribution::scratch::Scratch::new("pieces.parquet");
        let mut csv = Vec::new();
        let spec = finops_cur::synthetic::MonthSpec { period: "2026-11".into(), rows: 3_000, seed: 4, restatement: 0 };
        finops_cur::synthetic::write_month(&spec, &mut csv).unwrap();
        let lines = finops_cur::csv_lines::CurCsv::new("m.csv", csv.as_slice()).unwrap().map(Result::unwrap);
        finops_attribution::cur_parquet::write_cur2(lines, File::create(&scratch.0).unwrap(), 100).unwrap();
        let pieces = Piece::of(3, &scratch.0);
        // At least 3 000 / 16 rows a piece: two groups of 100 each.
        assert_eq!(pieces.len(), 15, "thirty row groups in at most sixteen pieces");
        let groups: Vec<usize> = pieces.iter().flat_map(|p| p.groups.clone().unwrap().1).collect();
        assert_eq!(groups, (0..30).collect::<Vec<_>>());
        assert!(pieces.iter().all(|p| p.part == 3));

        let text = finops_attribution::scratch::Scratch::new("part.csv");
        std::fs::write(&text.0, &csv).unwrap();
        let broken = finops_attribution::scratch::Scratch::new("broken.parquet");
        std::fs::write(&broken.0, b"not parquet").unwrap();
        for path in [&text.0, &broken.0] {
            let pieces = Piece::of(0, path);
            assert!(pieces.len() == 1 && pieces[0].groups.is_none(), "{}", path.display());
        }
    }
}
