//! CSV deliveries (plain or gzip, CUR or FOCUS) read column by column, like Parquet ones.
//!
//! The Arrow CSV reader turns the bytes into record batches of text holding only the
//! columns read; the batches then pass the very checks Parquet batches pass
//! ([`crate::cur_parquet`], [`crate::focus_parquet`]) and come out as the same checked
//! [`CurBatch`]es. The row readers of [`finops_cur`] stay the reference: a CSV reads here
//! as the lines and the first error they give (pinned by property tests). A row is the
//! file's data row, from 1 (the header is row 0), as they count it.

use std::io::BufRead;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::csv::ReaderBuilder;
use datafusion::arrow::csv::reader::Decoder;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::error::ArrowError;
use finops_cur::csv_lines::{CallerIdentity, CurCsvError};

use crate::cur_parquet::{BATCH_ROWS, CurBatch, CurColumns, CurReadError};
use crate::focus_parquet::FocusColumns;
use crate::parquet_footer::RowGroups;

/// A CSV's data rows as batches of text columns (only those asked for, in file order).
struct TextBatches<R> {
    file: String,
    input: R,
    decoder: Decoder,
    /// Data rows handed out so far.
    rows: u64,
    /// Set once the input has ended or failed: nothing more is read.
    over: bool,
}

/// Reads the header: the column names, as the CSV row readers read them (a UTF-8 byte-order
/// mark dropped); none for an empty file.
fn read_header(file: &str, input: &mut impl BufRead) -> Result<Vec<String>, CurCsvError> {
    let header = |reason: String| unreadable(file, 0, reason);
    // The mark is dropped here whatever the buffer's size (the CSV parser drops it only
    // when the first bytes it sees hold all three).
    let mut lead = Vec::with_capacity(3);
    while lead.len() < 3 {
        let buf = input.fill_buf().map_err(|e| header(e.to_string()))?;
        let take = buf.len().min(3 - lead.len());
        if take == 0 {
            break;
        }
        lead.extend_from_slice(&buf[..take]);
        input.consume(take);
    }
    if lead == b"\xEF\xBB\xBF" {
        lead.clear();
    }
    let mut lead = lead.as_slice();
    let mut reader = csv_core::Reader::new();
    let (mut out, mut ends) = (vec![0u8; 4096], vec![0usize; 128]);
    let (mut written, mut fields) = (0, 0);
    loop {
        let buf = if lead.is_empty() { input.fill_buf().map_err(|e| header(e.to_string()))? } else { lead };
        let from_lead = !lead.is_empty();
        let (result, read, wrote, ended) = reader.read_record(buf, &mut out[written..], &mut ends[fields..]);
        if from_lead {
            lead = &lead[read..];
        } else {
            input.consume(read);
        }
        (written, fields) = (written + wrote, fields + ended);
        match result {
            csv_core::ReadRecordResult::InputEmpty => {}
            csv_core::ReadRecordResult::OutputFull => out.resize(out.len() * 2, 0),
            csv_core::ReadRecordResult::OutputEndsFull => ends.resize(ends.len() * 2, 0),
            csv_core::ReadRecordResult::Record => break,
            csv_core::ReadRecordResult::End => return Ok(Vec::new()),
        }
    }
    let mut start = 0;
    let mut names = Vec::with_capacity(fields);
    for (i, &end) in ends[..fields].iter().enumerate() {
        let name = std::str::from_utf8(&out[start..end])
            .map_err(|_| header(format!("the header's field {} is not UTF-8", i + 1)))?;
        names.push(name.to_owned());
        start = end;
    }
    Ok(names)
}

impl<R: BufRead> TextBatches<R> {
    /// The rows after the header, of a file of `columns` columns, decoding `projection`.
    fn new(file: &str, input: R, columns: usize, projection: Vec<usize>) -> Self {
        // Every column is text: the checks read the values as the row readers do.
        let fields: Vec<Field> = (0..columns).map(|i| Field::new(format!("c{i}"), DataType::Utf8, true)).collect();
        let decoder = ReaderBuilder::new(Arc::new(Schema::new(fields)))
            .with_header(false)
            .with_batch_size(BATCH_ROWS)
            .with_projection(projection)
            .build_decoder();
        Self { file: file.to_owned(), input, decoder, rows: 0, over: false }
    }

    /// The next batch of rows, `None` after the last.
    fn next_batch(&mut self) -> Option<Result<RecordBatch, CurCsvError>> {
        if self.over {
            return None;
        }
        let read = self.read();
        match &read {
            Ok(Some(batch)) => self.rows += batch.num_rows() as u64,
            Ok(None) | Err(_) => self.over = true,
        }
        read.transpose()
    }

    fn read(&mut self) -> Result<Option<RecordBatch>, CurCsvError> {
        loop {
            // A failure is in the record after those decoded so far.
            let (file, rows, decoder) = (&self.file, self.rows, &mut self.decoder);
            let row = |decoder: &Decoder| rows + (BATCH_ROWS - decoder.capacity()) as u64 + 1;
            let buf = self.input.fill_buf().map_err(|e| unreadable(file, row(decoder), e.to_string()))?;
            let decoded = match decoder.decode(buf) {
                Ok(decoded) => decoded,
                Err(e) => return Err(unreadable(file, row(decoder), reason(e))),
            };
            self.input.consume(decoded);
            if decoded == 0 || self.decoder.capacity() == 0 {
                break;
            }
        }
        self.decoder.flush().map_err(|e| {
            // The reader names the record of a bad UTF-8 sequence as its "line": the data
            // row (it never saw the header).
            let message = reason(e);
            let row = message
                .split_once("for line ")
                .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
                .unwrap_or(self.rows + 1);
            unreadable(&self.file, row, message)
        })
    }
}

/// Row `row` of `file` (0: its header) could not be read.
fn unreadable(file: &str, row: u64, reason: String) -> CurCsvError {
    CurCsvError::Unreadable { file: file.to_owned(), row, reason }
}

/// The CSV reader's complaint without Arrow's prefix.
fn reason(error: ArrowError) -> String {
    match error {
        ArrowError::CsvError(reason) => reason,
        other => other.to_string(),
    }
}

/// A CUR CSV delivery (2.0 or legacy headers) read as checked batches.
pub struct CurCsvBatches<R> {
    rows: TextBatches<R>,
    columns: CurColumns,
}

impl<R: BufRead> CurCsvBatches<R> {
    /// Reads and checks the header of `input` (already decompressed).
    pub fn new(file: &str, mut input: R) -> Result<Self, CurCsvError> {
        let names = read_header(file, &mut input)?;
        let (columns, projection) = CurColumns::resolve(file, &names, RowGroups::default())?;
        Ok(Self { rows: TextBatches::new(file, input, names.len(), projection), columns })
    }

    /// Whether this export carries `line_item_iam_principal`.
    pub fn caller_identity(&self) -> CallerIdentity {
        self.columns.caller_identity()
    }
}

/// Checked batches, in file order.
impl<R: BufRead> Iterator for CurCsvBatches<R> {
    type Item = Result<CurBatch, CurReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(match self.rows.next_batch()? {
            Ok(batch) => self.columns.check(&batch),
            Err(e) => Err(e.into()),
        })
    }
}

/// A FOCUS CSV delivery read as checked batches of its AWS rows.
pub struct FocusCsvBatches<R> {
    rows: TextBatches<R>,
    columns: FocusColumns,
}

impl<R: BufRead> FocusCsvBatches<R> {
    /// Reads and checks the header of `input` (already decompressed).
    pub fn new(file: &str, mut input: R) -> Result<Self, CurCsvError> {
        let names = read_header(file, &mut input)?;
        let (columns, projection) = FocusColumns::resolve(file, &names, RowGroups::default())?;
        Ok(Self { rows: TextBatches::new(file, input, names.len(), projection), columns })
    }

    /// Rows of other providers skipped so far.
    pub fn skipped_other_providers(&self) -> u64 {
        self.columns.skipped
    }
}

/// Checked batches of AWS rows, in file order (a batch may be empty).
impl<R: BufRead> Iterator for FocusCsvBatches<R> {
    type Item = Result<CurBatch, CurReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(match self.rows.next_batch()? {
            Ok(batch) => self.columns.check(&batch),
            Err(e) => Err(e.into()),
        })
    }
}

#[cfg(test)]
mod tests;
