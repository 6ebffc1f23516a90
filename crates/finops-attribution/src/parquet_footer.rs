//! A delivered Parquet file's footer, read once: which row groups it holds and where each
//! begins, so that its row groups can be read apart — on threads of their own, each from
//! its own handle on the file — and a bad row still be named by its row in the file and
//! its row group.

use std::fs::File;
use std::ops::Range;

use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use datafusion::parquet::errors::ParquetError;
use finops_cur::csv_lines::CurCsvError;

use crate::cur_parquet::{BATCH_ROWS, CurReadError};

/// A Parquet file's footer: its schema and row groups.
#[derive(Clone)]
pub struct ParquetFooter {
    metadata: ArrowReaderMetadata,
    /// The first row of each row group (from 0), then the file's rows.
    starts: Vec<u64>,
}

impl ParquetFooter {
    /// Reads the footer of `file` (named `name` in errors).
    pub fn read(name: &str, file: &File) -> Result<Self, CurReadError> {
        let metadata = ArrowReaderMetadata::load(file, ArrowReaderOptions::new()).map_err(parquet(name))?;
        let mut starts = Vec::with_capacity(metadata.metadata().num_row_groups() + 1);
        let mut rows = 0u64;
        for group in metadata.metadata().row_groups() {
            starts.push(rows);
            rows += group.num_rows().max(0) as u64;
        }
        starts.push(rows);
        Ok(Self { metadata, starts })
    }

    /// The file's rows, as its footer counts them.
    pub fn rows(&self) -> u64 {
        *self.starts.last().expect("the file's rows close the starts")
    }

    /// Every row group of the file.
    pub fn row_groups(&self) -> Range<usize> {
        0..self.starts.len() - 1
    }

    /// The file's row groups in consecutive runs of at least `rows` rows each (the last
    /// may hold fewer), in order: the pieces it can be read in apart. A file without row
    /// groups is one empty piece, so that every file is read at least once.
    pub fn pieces(&self, rows: u64) -> Vec<Range<usize>> {
        let groups = self.starts.len() - 1;
        let mut pieces = Vec::new();
        let mut from = 0;
        for group in 1..=groups {
            if self.starts[group] - self.starts[from] >= rows || group == groups {
                pieces.push(from..group);
                from = group;
            }
        }
        if pieces.is_empty() {
            pieces.push(0..0);
        }
        pieces
    }

    /// The first row (from 0) of row group `group` (the file's rows past the last).
    pub fn first_row(&self, group: usize) -> u64 {
        self.starts[group.min(self.starts.len() - 1)]
    }
}

fn parquet(file: &str) -> impl Fn(ParquetError) -> CurReadError + '_ {
    move |e| CurReadError::Parquet { file: file.to_owned(), reason: e.to_string() }
}

/// Where a Parquet file's row groups begin, to name the group a bad row is in, and the
/// file row a reading begins at (a CSV delivery has no groups and begins at its first row).
#[derive(Default)]
pub(crate) struct RowGroups {
    starts: Vec<u64>,
    first: u64,
}

impl RowGroups {
    /// The file row (from 0) the batches read begin at.
    pub(crate) fn first_row(&self) -> u64 {
        self.first
    }

    /// `error` of the file's row `row` (from 0), with its row group when the file has them.
    pub(crate) fn name(&self, row: u64, error: CurCsvError) -> CurCsvError {
        if self.starts.len() < 2 {
            return error;
        }
        let row_group = self.starts.partition_point(|start| *start <= row).saturating_sub(1);
        CurCsvError::InRowGroup { row_group, error: Box::new(error) }
    }
}

/// The row groups `groups` of `bytes` (whose footer is `footer`), opened for batches of the
/// columns `resolve` picks among the file's columns' names (their indices, in file order:
/// the decoded batches hold them in that order); returns the batches and what `resolve`
/// made of the names.
pub(crate) fn open_projected<C>(
    file: &str,
    bytes: File,
    footer: &ParquetFooter,
    groups: Range<usize>,
    resolve: impl FnOnce(&[String], RowGroups) -> Result<(C, Vec<usize>), CurCsvError>,
) -> Result<(ParquetRecordBatchReader, C), CurReadError> {
    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(bytes, footer.metadata.clone());
    let names: Vec<String> = builder.schema().fields().iter().map(|f| f.name().clone()).collect();
    let row_groups = RowGroups { starts: footer.starts.clone(), first: footer.first_row(groups.start) };
    let (columns, roots) = resolve(&names, row_groups)?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots.iter().copied());
    let batches = builder
        .with_projection(mask)
        .with_row_groups(groups.collect())
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(parquet(file))?;
    Ok((batches, columns))
}
