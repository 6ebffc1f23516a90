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
use std::ops::Range;

use chrono::DateTime;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, RecordBatch, StringArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReader;
use finops_cur::csv_lines::{CallerIdentity, CurCsvError, NEVER_NEGATIVE, is_account_id};
use finops_cur::focus_lines::{FOCUS_LIMITS, REQUIRED};

use crate::parquet_footer::{ParquetFooter, RowGroups, open_projected};

use crate::cur_parquet::{
    ACCOUNT, BILLING_ENTITY, CurBatch, CurReadError, LINE_TYPE, OPERATION, PRODUCT_CODE, PRODUCT_NAME, RESOURCE_ID,
    RESOURCE_TAGS, USAGE_TYPE, as_text, map_as_json, timestamps, value_text,
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
    batches: ParquetRecordBatchReader,
    columns: FocusColumns,
    rows: u64,
}

impl FocusParquet {
    /// Opens `file`, checking that the required columns are there.
    pub fn open(name: &str, file: File) -> Result<Self, CurReadError> {
        let footer = ParquetFooter::read(name, &file)?;
        Self::open_groups(name, file, &footer, footer.row_groups())
    }

    /// Opens the row groups `groups` of `file`, whose footer is `footer` (a piece of the
    /// file, [`ParquetFooter::pieces`]): its rows are named as the file's rows.
    pub fn open_groups(
        name: &str,
        file: File,
        footer: &ParquetFooter,
        groups: Range<usize>,
    ) -> Result<Self, CurReadError> {
        let (batches, columns) =
            open_projected(name, file, footer, groups, |names, groups| FocusColumns::resolve(name, names, groups))?;
        Ok(Self { batches, columns, rows: footer.rows() })
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
        self.columns.skipped
    }
}

/// Where the FOCUS columns read sit in a delivery's decoded batches, and the checks each
/// batch passes: one set of rules for FOCUS Parquet and FOCUS CSV ([`crate::csv_batches`]).
pub(crate) struct FocusColumns {
    file: String,
    /// Each present column read (and `Tags`), by name: its index in the decoded batches.
    at: BTreeMap<&'static str, usize>,
    groups: RowGroups,
    /// File rows before the next batch.
    row: u64,
    /// Rows of other providers skipped so far.
    pub(crate) skipped: u64,
}

impl FocusColumns {
    /// Finds the columns among `names` (the file's columns, in order; the first of a
    /// repeated name read), refusing a file without a required one. Returns them with the
    /// indices to decode, in file order.
    pub(crate) fn resolve(file: &str, names: &[String], groups: RowGroups) -> Result<(Self, Vec<usize>), CurCsvError> {
        let position = |column: &str| names.iter().position(|n| n.trim() == column);
        for column in REQUIRED {
            if position(column).is_none() {
                return Err(CurCsvError::MissingColumn { file: file.to_owned(), column, legacy: column });
            }
        }
        let wanted: Vec<(&'static str, usize)> =
            READ.iter().chain(&["Tags"]).filter_map(|c| Some((*c, position(c)?))).collect();
        let mut roots: Vec<usize> = wanted.iter().map(|(_, i)| *i).collect();
        roots.sort_unstable();
        // The decoded batch holds the projected columns in file order.
        let at = wanted.iter().map(|(c, i)| (*c, roots.binary_search(i).expect("projected"))).collect();
        Ok((Self { file: file.to_owned(), at, row: groups.first_row(), groups, skipped: 0 }, roots))
    }

    /// The next batch's AWS rows, every value checked, as CUR lines' columns.
    pub(crate) fn check(&mut self, batch: &RecordBatch) -> Result<CurBatch, CurReadError> {
        let checked = self.decode(batch);
        self.row += batch.num_rows() as u64;
        checked
    }

    fn decode(&mut self, batch: &RecordBatch) -> Result<CurBatch, CurReadError> {
        let len = batch.num_rows();
        // The text columns as text, as the CSV reader sees them before trimming (maps as
        // JSON); typed columns are read typed, and rendered only to name a bad value.
        let mut raw: BTreeMap<&str, StringArray> = BTreeMap::new();
        for (column, at) in &self.at {
            let array = batch.column(*at);
            let strings = match array.data_type() {
                DataType::Map(..) => map_as_json(array.as_map()),
                _ if TYPED.contains(column) && !is_text(array) => continue,
                _ => as_text(array).map_err(|reason| self.unreadable(column, &reason))?,
            };
            raw.insert(column, strings);
        }
        let column = |name: &str| raw.get(name);
        let text = focus_text;
        let (providers, categories, accounts_in) =
            (column("ProviderName"), column("ChargeCategory"), column("SubAccountId"));
        let typed = |column: &str| batch.column(self.at[column]);
        // A value as delivered (text trimmed, `NULL` empty; typed values rendered).
        let delivered = |name: &str, row: usize| match column(name) {
            Some(_) => text(column(name), row).to_owned(),
            None => value_text(typed(name), row),
        };
        let starts = timestamps(typed("ChargePeriodStart"));
        let costs = Numbers::of(typed("BilledCost"));
        let quantities = self.at.get("ConsumedQuantity").map(|at| Numbers::of(batch.column(*at)));
        let bounded: Vec<(&str, usize, &StringArray)> =
            FOCUS_LIMITS.iter().filter_map(|(c, limit)| Some((*c, *limit, raw.get(c)?))).collect();

        let mut keep = Vec::with_capacity(len);
        let mut accounts = StringBuilder::with_capacity(len, len * 12);
        let mut amounts = Vec::with_capacity(len);
        let mut cost_values = Vec::with_capacity(len);
        let mut start_values = Vec::with_capacity(len);
        for (r, start) in starts.iter().enumerate() {
            if !text(providers, r).eq_ignore_ascii_case("AWS") {
                self.skipped += 1;
                continue;
            }
            let row = self.row + r as u64 + 1;
            let failed = |error: CurCsvError| -> CurReadError { self.groups.name(row - 1, error).into() };
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
                let value = format!("{} on a {category} charge", delivered("BilledCost", r));
                return Err(bad("BilledCost", &value, "is negative; only credits, refunds and discounts may be"));
            }
            let account = text(accounts_in, r);
            if !is_account_id(account) {
                return Err(bad("SubAccountId", account, "is not an AWS account id"));
            }
            // Named as the CSV reader sees it: trimmed, the literal `NULL` empty.
            let start = start.clone().map_err(|v| {
                let shown = match v.trim() {
                    "NULL" => "",
                    text => text,
                };
                bad("ChargePeriodStart", shown, "is not a timestamp")
            })?;
            let amount = match &quantities {
                Some(q) => q.value(r, false).map_err(|v| bad("ConsumedQuantity", &v, "is not a number"))?,
                None => 0.0,
            };
            if DateTime::from_timestamp_micros(start).is_none() {
                return Err(bad("ChargePeriodStart", &delivered("ChargePeriodStart", r), "is not a timestamp"));
            }
            keep.push(r);
            // As lines carry it: 12 digits (spreadsheets strip leading zeros).
            match account.trim() {
                full if full.len() == 12 => accounts.append_value(full),
                short => accounts.append_value(format!("{short:0>12}")),
            }
            amounts.push(amount);
            cost_values.push(cost);
            start_values.push(start);
        }

        let mut slots: [Option<StringArray>; 12] = Default::default();
        slots[ACCOUNT] = Some(accounts.finish());
        for (slot, names) in TEXT {
            let columns: Vec<Option<&StringArray>> = names.iter().map(|n| column(n)).collect();
            let mut out = StringBuilder::with_capacity(keep.len(), 0);
            for &r in &keep {
                out.append_value(columns.iter().map(|c| text(*c, r)).find(|t| !t.is_empty()).unwrap_or(""));
            }
            slots[slot] = Some(out.finish());
        }
        let (amount, cost) = (Float64Array::from(amounts), Float64Array::from(cost_values));
        Ok(CurBatch::new(keep.len(), false, slots, start_values, amount, cost))
    }

    fn unreadable(&self, column: &str, reason: &str) -> CurReadError {
        CurReadError::Parquet { file: self.file.clone(), reason: format!("column `{column}`: {reason}") }
    }
}

/// Checked batches of AWS rows, in file order (a batch may be empty when all its rows are
/// other providers').
impl Iterator for FocusParquet {
    type Item = Result<CurBatch, CurReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        let decoded = match self.batches.next()? {
            Ok(batch) => batch,
            Err(e) => {
                return Some(Err(CurReadError::Parquet { file: self.columns.file.clone(), reason: e.to_string() }));
            }
        };
        Some(self.columns.check(&decoded))
    }
}

/// The columns read that a FOCUS export may type (a timestamp, amounts).
const TYPED: [&str; 3] = ["ChargePeriodStart", "BilledCost", "ConsumedQuantity"];

fn is_text(array: &ArrayRef) -> bool {
    matches!(array.data_type(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..))
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
