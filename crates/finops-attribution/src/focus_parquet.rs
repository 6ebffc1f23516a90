//! FOCUS 1.x Parquet deliveries read column by column, into the same checked batches as
//! CUR 2.0 Parquet ([`CurBatch`], handed out by [`crate::cur_parquet::BatchLines`]).
//!
//! The mapping, the skipped rows of other providers, the literal `NULL` counting as empty,
//! the bounds and the signs are the FOCUS CSV reader's ([`finops_cur::focus_lines`]), and
//! so are its errors: a row is the file's data row (from 1, skipped rows counted), its
//! checks run in the CSV reader's order, and the first bad value is named with its row
//! group. Only the columns read are decoded; typed columns are read as FOCUS exports type
//! them (timestamps, doubles or decimals, a `Tags` map) and as text.

use std::collections::BTreeMap;
use std::fs::File;

use chrono::DateTime;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, RecordBatch, StringArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use datafusion::parquet::errors::ParquetError;
use finops_cur::csv_lines::{CallerIdentity, CurCsvError, NEVER_NEGATIVE, account_id};
use finops_cur::focus_lines::{FOCUS_LIMITS, REQUIRED};

use crate::cur_parquet::{
    ACCOUNT, BATCH_ROWS, BILLING_ENTITY, CurBatch, CurParquetError, LINE_TYPE, OPERATION, PRODUCT_CODE, PRODUCT_NAME,
    RESOURCE_ID, RESOURCE_TAGS, USAGE_TYPE, as_text, map_as_json, timestamps,
};

/// Every FOCUS column read (the required ones, then the optional).
const READ: [&str; 13] = [
    "SubAccountId",
    "ChargeCategory",
    "ChargePeriodStart",
    "BilledCost",
    "ProviderName",
    "x_ServiceCode",
    "ServiceName",
    "x_UsageType",
    "SkuMeter",
    "x_Operation",
    "ResourceId",
    "ConsumedQuantity",
    "InvoiceIssuerName",
];

/// Where FOCUS text goes in a CUR line: (CUR slot, FOCUS columns, the first non-empty wins).
const TEXT: [(usize, &[&str]); 8] = [
    (LINE_TYPE, &["ChargeCategory"]),
    (PRODUCT_CODE, &["x_ServiceCode", "ServiceName"]),
    (USAGE_TYPE, &["x_UsageType", "SkuMeter"]),
    (OPERATION, &["x_Operation"]),
    (RESOURCE_ID, &["ResourceId"]),
    (BILLING_ENTITY, &["InvoiceIssuerName"]),
    (PRODUCT_NAME, &["ServiceName"]),
    (RESOURCE_TAGS, &["Tags"]),
];

/// A FOCUS Parquet file being read.
pub struct FocusParquet {
    file: String,
    batches: ParquetRecordBatchReader,
    /// Each present column read (and `Tags`), by name: its index in the decoded batches.
    at: BTreeMap<&'static str, usize>,
    group_starts: Vec<u64>,
    /// File rows before the next batch.
    row: u64,
    rows: u64,
    skipped: u64,
}

impl FocusParquet {
    /// Opens `file`, checking that the required columns are there.
    pub fn open(name: &str, file: File) -> Result<Self, CurParquetError> {
        let parquet = |e: ParquetError| CurParquetError::Parquet { file: name.to_owned(), reason: e.to_string() };
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet)?;
        let schema = builder.schema().clone();
        let position = |column: &str| schema.fields().iter().position(|f| f.name().trim() == column);
        for column in REQUIRED {
            if position(column).is_none() {
                return Err(CurCsvError::MissingColumn { file: name.to_owned(), column, legacy: column }.into());
            }
        }
        let wanted: Vec<(&'static str, usize)> =
            READ.iter().chain(&["Tags"]).filter_map(|c| Some((*c, position(c)?))).collect();
        let mut roots: Vec<usize> = wanted.iter().map(|(_, i)| *i).collect();
        roots.sort_unstable();
        // The decoded batch holds the projected columns in file order.
        let at = wanted.iter().map(|(c, i)| (*c, roots.binary_search(i).expect("projected"))).collect();
        let mut group_starts = Vec::with_capacity(builder.metadata().num_row_groups());
        let mut rows = 0u64;
        for group in builder.metadata().row_groups() {
            group_starts.push(rows);
            rows += group.num_rows().max(0) as u64;
        }
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots.iter().copied());
        let batches = builder.with_projection(mask).with_batch_size(BATCH_ROWS).build().map_err(parquet)?;
        Ok(Self { file: name.to_owned(), batches, at, group_starts, row: 0, rows, skipped: 0 })
    }

    /// Its rows, as its metadata counts them (other providers' included).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// FOCUS carries no caller identity.
    pub fn caller_identity(&self) -> CallerIdentity {
        CallerIdentity::Absent
    }

    /// Rows of other providers skipped so far.
    pub fn skipped_other_providers(&self) -> u64 {
        self.skipped
    }

    /// The batch's AWS rows, every value checked, as CUR lines' columns.
    fn decode(&mut self, batch: &RecordBatch) -> Result<CurBatch, CurParquetError> {
        let len = batch.num_rows();
        // Every column as text, as the CSV reader sees it before trimming (maps as JSON).
        let mut raw: BTreeMap<&str, StringArray> = BTreeMap::new();
        for (column, at) in &self.at {
            let array = batch.column(*at);
            let strings = match array.data_type() {
                DataType::Map(..) => map_as_json(array.as_map()),
                _ => as_text(array).map_err(|reason| self.unreadable(column, &reason))?,
            };
            raw.insert(column, strings);
        }
        let column = |name: &str| raw.get(name);
        let text = focus_text;
        let (providers, categories, accounts_in, billed, period_starts) = (
            column("ProviderName"),
            column("ChargeCategory"),
            column("SubAccountId"),
            column("BilledCost"),
            column("ChargePeriodStart"),
        );
        let typed = |column: &str| batch.column(self.at[column]);
        let starts = timestamps(typed("ChargePeriodStart"));
        let costs = Numbers::of(typed("BilledCost"));
        let quantities = self.at.get("ConsumedQuantity").map(|at| Numbers::of(batch.column(*at)));
        let bounded: Vec<(&str, usize, &StringArray)> =
            FOCUS_LIMITS.iter().filter_map(|(c, limit)| Some((*c, *limit, raw.get(c)?))).collect();

        let mut keep = Vec::with_capacity(len);
        let mut accounts = Vec::with_capacity(len);
        let mut amounts = Vec::with_capacity(len);
        let mut cost_values = Vec::with_capacity(len);
        let mut start_values = Vec::with_capacity(len);
        for (r, start) in starts.iter().enumerate() {
            if !text(providers, r).eq_ignore_ascii_case("AWS") {
                self.skipped += 1;
                continue;
            }
            let row = self.row + r as u64 + 1;
            let failed = |error: CurCsvError| -> CurParquetError {
                CurCsvError::InRowGroup { row_group: self.row_group(row - 1), error: Box::new(error) }.into()
            };
            let bad = |column: &'static str, value: &str, reason: &'static str| {
                failed(CurCsvError::BadValue { file: self.file.clone(), row, column, value: value.to_owned(), reason })
            };
            for (column, limit, values) in &bounded {
                let value = if values.is_valid(r) { values.value(r) } else { "" };
                if value.len() > *limit {
                    return Err(failed(CurCsvError::TooLong {
                        file: self.file.clone(),
                        row,
                        column,
                        bytes: value.len(),
                        start: value.chars().take(40).collect(),
                        limit: *limit,
                    }));
                }
            }
            let cost = costs.value(r, true).map_err(|v| bad("BilledCost", &v, "is not a number"))?;
            let category = text(categories, r);
            if cost < 0.0 && NEVER_NEGATIVE.contains(&category) {
                let value = format!("{} on a {category} charge", text(billed, r));
                return Err(bad("BilledCost", &value, "is negative; only credits, refunds and discounts may be"));
            }
            let account = text(accounts_in, r);
            let account =
                account_id(account).ok_or_else(|| bad("SubAccountId", account, "is not an AWS account id"))?;
            let start = start.clone().map_err(|v| bad("ChargePeriodStart", v.trim(), "is not a timestamp"))?;
            let amount = match &quantities {
                Some(q) => q.value(r, false).map_err(|v| bad("ConsumedQuantity", &v, "is not a number"))?,
                None => 0.0,
            };
            if DateTime::from_timestamp_micros(start).is_none() {
                return Err(bad("ChargePeriodStart", text(period_starts, r), "is not a timestamp"));
            }
            keep.push(r);
            accounts.push(account);
            amounts.push(amount);
            cost_values.push(cost);
            start_values.push(start);
        }
        self.row += len as u64;

        let mut slots: [Option<StringArray>; 12] = Default::default();
        slots[ACCOUNT] = Some(StringArray::from(accounts));
        for (slot, names) in TEXT {
            let columns: Vec<Option<&StringArray>> = names.iter().map(|n| column(n)).collect();
            let mut out = StringBuilder::with_capacity(keep.len(), 0);
            for &r in &keep {
                out.append_value(columns.iter().map(|c| text(*c, r)).find(|t| !t.is_empty()).unwrap_or(""));
            }
            slots[slot] = Some(out.finish());
        }
        Ok(CurBatch {
            len: keep.len(),
            has_principal: false,
            text: slots,
            start: start_values,
            amount: Float64Array::from(amounts),
            cost: Float64Array::from(cost_values),
        })
    }

    fn row_group(&self, row: u64) -> usize {
        self.group_starts.partition_point(|start| *start <= row).saturating_sub(1)
    }

    fn unreadable(&self, column: &str, reason: &str) -> CurParquetError {
        CurParquetError::Parquet { file: self.file.clone(), reason: format!("column `{column}`: {reason}") }
    }
}

/// Checked batches of AWS rows, in file order (a batch may be empty when all its rows are
/// other providers').
impl Iterator for FocusParquet {
    type Item = Result<CurBatch, CurParquetError>;

    fn next(&mut self) -> Option<Self::Item> {
        let decoded = match self.batches.next()? {
            Ok(batch) => batch,
            Err(e) => return Some(Err(CurParquetError::Parquet { file: self.file.clone(), reason: e.to_string() })),
        };
        Some(self.decode(&decoded))
    }
}

/// A value as the FOCUS CSV reader sees it: trimmed, the literal `NULL` (or a null, or an
/// absent column) empty.
fn focus_text(values: Option<&StringArray>, row: usize) -> &str {
    match values.map(|a| if a.is_valid(row) { a.value(row).trim() } else { "" }) {
        Some("NULL") | None => "",
        Some(t) => t,
    }
}

/// A FOCUS amount column: typed values read as doubles, text as the CSV reader reads it
/// (trimmed; empty or `NULL` is a missing value).
enum Numbers {
    Typed(Float64Array),
    Text(StringArray),
}

impl Numbers {
    fn of(array: &ArrayRef) -> Self {
        match array.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..) => {
                Self::Text(as_text(array).unwrap_or_else(|_| StringArray::from(vec![""; array.len()])))
            }
            _ => match cast(array, &DataType::Float64) {
                Ok(doubles) => Self::Typed(doubles.as_primitive::<Float64Type>().clone()),
                // A type with no doubles: every value is bad, named by its type.
                Err(_) => Self::Text(StringArray::from(vec![array.data_type().to_string(); array.len()])),
            },
        }
    }

    /// The value of `row`: a missing one is 0 unless `required`; the text of a bad one.
    fn value(&self, row: usize, required: bool) -> Result<f64, String> {
        let text = match self {
            Self::Typed(values) if values.is_valid(row) => {
                let value = values.value(row);
                return if value.is_finite() { Ok(value) } else { Err(value.to_string()) };
            }
            Self::Typed(_) => "",
            Self::Text(strings) => match strings.is_valid(row).then(|| strings.value(row).trim()) {
                Some("NULL") | None => "",
                Some(text) => text,
            },
        };
        if text.is_empty() && !required {
            return Ok(0.0);
        }
        text.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| text.to_owned())
    }
}

#[cfg(test)]
mod tests;
