//! Parquet deliveries (CUR 2.0 and FOCUS exports) read as CSV text, a record batch at a
//! time, so that the CSV readers serve them. Row numbers are the Parquet rows, from 1.
//!
//! No longer the ingest's path (CUR 2.0 and FOCUS Parquet are read column by column:
//! [`crate::cur_parquet`], [`crate::focus_parquet`]); kept as the baseline the benchmark
//! (`benches/cur_ingest.rs`) measures the columnar reading against.
//!
//! Map columns (`resource_tags`, `tags`, `product`, `discount`) become JSON objects, which
//! is how CSV exports write them; other nested columns are left out (attribution reads
//! none of them).

use std::fs::File;
use std::io::Read;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, RecordBatchReader, StringBuilder};
use datafusion::arrow::csv::WriterBuilder;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use datafusion::parquet::errors::ParquetError;

/// A Parquet file served as CSV bytes (header first).
pub struct ParquetAsCsv {
    batches: ParquetRecordBatchReader,
    buffer: Vec<u8>,
    at: usize,
    header_written: bool,
}

/// Opens `file` (Parquet).
pub fn parquet_as_csv(file: File) -> Result<ParquetAsCsv, ParquetError> {
    let batches = ParquetRecordBatchReaderBuilder::try_new(file)?.with_batch_size(8 * 1024).build()?;
    Ok(ParquetAsCsv { batches, buffer: Vec::new(), at: 0, header_written: false })
}

/// A map column as JSON object text per row.
fn map_as_json(column: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    let map = column.as_map();
    let mut out = StringBuilder::new();
    for row in 0..map.len() {
        if map.is_null(row) {
            out.append_value("");
            continue;
        }
        let entries = map.value(row);
        let (keys, values) = (entries.column(0), entries.column(1));
        let mut object = serde_json::Map::new();
        for i in 0..entries.len() {
            let value = if values.is_null(i) {
                serde_json::Value::Null
            } else {
                serde_json::Value::String(array_value_to_string(values, i)?)
            };
            object.insert(array_value_to_string(keys, i)?, value);
        }
        out.append_value(serde_json::Value::Object(object).to_string());
    }
    Ok(Arc::new(out.finish()))
}

/// The batch with maps as JSON text and other nested columns left out.
fn flatten(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        match field.data_type() {
            DataType::Map(..) => {
                fields.push(Field::new(field.name(), DataType::Utf8, true));
                columns.push(map_as_json(column)?);
            }
            DataType::Struct(_) | DataType::List(_) | DataType::LargeList(_) | DataType::Union(..) => {}
            _ => {
                fields.push(field.as_ref().clone());
                columns.push(column.clone());
            }
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
}

impl ParquetAsCsv {
    fn fill(&mut self) -> Result<bool, ArrowError> {
        let Some(batch) = self.batches.next().transpose()? else {
            if self.header_written {
                return Ok(false);
            }
            // No rows at all: the header alone, so the schema is still checked.
            let empty = RecordBatch::new_empty(self.batches.schema());
            let names: Vec<String> = flatten(&empty)?.schema().fields().iter().map(|f| f.name().clone()).collect();
            self.buffer = format!("{}\n", names.join(",")).into_bytes();
            self.at = 0;
            self.header_written = true;
            return Ok(true);
        };
        let batch = flatten(&batch)?;
        self.buffer.clear();
        self.at = 0;
        let mut writer = WriterBuilder::new()
            .with_header(!self.header_written)
            .with_timestamp_tz_format("%Y-%m-%dT%H:%M:%SZ".to_owned())
            .with_timestamp_format("%Y-%m-%dT%H:%M:%S".to_owned())
            .build(&mut self.buffer);
        writer.write(&batch)?;
        self.header_written = true;
        Ok(true)
    }
}

impl Read for ParquetAsCsv {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at >= self.buffer.len() {
            if !self.fill().map_err(std::io::Error::other)? {
                return Ok(0);
            }
        }
        let n = out.len().min(self.buffer.len() - self.at);
        out[..n].copy_from_slice(&self.buffer[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
