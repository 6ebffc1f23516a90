//! CUR 2.0 (and legacy CUR) Parquet deliveries read column by column.
//!
//! Only the columns attribution needs are decoded (a real export has over a hundred), a
//! record batch at a time. Each batch is checked a column at a time — lengths, account ids,
//! timestamps, numbers and their signs — with the same rules and the same errors as the CSV
//! reader ([`finops_cur::csv_lines`]): the first bad value of the batch in row order is
//! named by file, row (the Parquet row, from 1), column, value and row group. Only then are
//! its lines handed out ([`BatchLines`]), into one reused [`CurLine`] (no allocation per
//! line).
//!
//! Typed columns are read as the Glue types AWS writes (timestamps, doubles, maps) and as
//! text too (a hand-made or converted file); map columns (`product`, `resource_tags`,
//! `tags`) are read as maps, the product name straight from the `product` map's keys and
//! the tags rendered as the JSON objects a CSV export carries.
//!
//! The column resolution and the checks (`CurColumns`) are those of CSV deliveries too:
//! [`crate::csv_batches`] hands them batches of text, and a CSV row names no row group.
//!
//! [`write_cur2`] writes lines in the shape AWS delivers (for tests and benchmarks).

use std::fs::File;
use std::io::Write;
use std::ops::Range;
use std::sync::Arc;

use chrono::DateTime;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Float64Builder, MapArray, MapBuilder, RecordBatch, StringArray,
    StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReader;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::properties::WriterProperties;
use finops_cur::csv_lines::{
    CallerIdentity, CurCsvError, CurLine, FIELD_LIMITS, NEVER_NEGATIVE, PRODUCT_MAP_LIMIT, account_id, is_account_id,
    normalise_column, parse_timestamp, product_name_of,
};

use crate::lines::Repeats;
use crate::parquet_footer::{ParquetFooter, RowGroups, open_projected};

/// Rows decoded at a time.
pub(crate) const BATCH_ROWS: usize = 32 * 1024;

/// The columns read: (CUR 2.0 name, legacy name, required). Their order is the order the
/// CSV reader checks a row's lengths in, so both name the same first offender.
const COLUMNS: [(&str, &str, bool); 15] = [
    ("line_item_usage_account_id", "lineItem/UsageAccountId", true),
    ("line_item_line_item_type", "lineItem/LineItemType", true),
    ("line_item_product_code", "lineItem/ProductCode", true),
    ("line_item_usage_type", "lineItem/UsageType", true),
    ("line_item_operation", "", false),
    ("line_item_resource_id", "", false),
    ("bill_billing_entity", "", false),
    ("product_product_name", "", false),
    ("line_item_iam_principal", "", false),
    ("resource_tags", "", false),
    ("tags", "", false),
    ("product", "", false),
    ("line_item_usage_start_date", "lineItem/UsageStartDate", true),
    ("line_item_usage_amount", "lineItem/UsageAmount", true),
    ("line_item_unblended_cost", "lineItem/UnblendedCost", true),
];
pub(crate) const ACCOUNT: usize = 0;
pub(crate) const LINE_TYPE: usize = 1;
pub(crate) const PRODUCT_CODE: usize = 2;
pub(crate) const USAGE_TYPE: usize = 3;
pub(crate) const OPERATION: usize = 4;
pub(crate) const RESOURCE_ID: usize = 5;
pub(crate) const BILLING_ENTITY: usize = 6;
pub(crate) const PRODUCT_NAME: usize = 7;
pub(crate) const PRINCIPAL: usize = 8;
pub(crate) const RESOURCE_TAGS: usize = 9;
pub(crate) const TAGS: usize = 10;
pub(crate) const PRODUCT: usize = 11;
const START: usize = 12;
const AMOUNT: usize = 13;
const COST: usize = 14;

/// A CUR Parquet file being read.
pub struct CurParquet {
    batches: ParquetRecordBatchReader,
    columns: CurColumns,
    /// Rows in the file.
    rows: u64,
}

/// Checked batches, in file order: decoding and checking a batch can run on one thread
/// while another writes the lines of the previous one ([`BatchLines`]).
impl Iterator for CurParquet {
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

/// Lines handed out one at a time from checked batches, into one reused [`CurLine`].
pub struct BatchLines<I> {
    batches: I,
    current: Option<CurBatch>,
    next: usize,
}

impl<I: Iterator<Item = Result<CurBatch, CurReadError>>> BatchLines<I> {
    /// The lines of `batches`.
    pub fn new(batches: I) -> Self {
        Self { batches, current: None, next: 0 }
    }

    /// Reads the next line into `line`; `None` after the last, an error in place of a
    /// batch that failed its checks (none of its lines is handed out).
    pub fn next_line(&mut self, line: &mut CurLine) -> Option<Result<(), CurReadError>> {
        loop {
            if let Some(batch) = &self.current
                && self.next < batch.len
            {
                batch.fill(self.next, line);
                self.next += 1;
                return Some(Ok(()));
            }
            match self.batches.next()? {
                Ok(batch) => (self.current, self.next) = (Some(batch), 0),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// A decoded batch, checked, in the types lines are copied from.
pub struct CurBatch {
    pub(crate) len: usize,
    /// Whether the export carries `line_item_iam_principal`.
    pub(crate) has_principal: bool,
    /// Per text column of [`COLUMNS`] (the first twelve), its values; the `product` map as
    /// the product name.
    pub(crate) text: [Option<StringArray>; 12],
    /// Usage starts, microseconds since the epoch.
    pub(crate) start: Vec<i64>,
    pub(crate) amount: Float64Array,
    pub(crate) cost: Float64Array,
    /// Which earlier row each row repeats (found with the checks, off the writer's thread).
    pub(crate) repeats: Repeats,
}

/// Where the columns read sit in a delivery's decoded batches, and the checks each batch
/// passes: one set of rules for CUR Parquet and CUR CSV ([`crate::csv_batches`]).
pub(crate) struct CurColumns {
    pub(crate) file: String,
    /// Per entry of [`COLUMNS`], its index in the decoded batches, if the file has it.
    at: [Option<usize>; 15],
    groups: RowGroups,
    /// File rows before the next batch.
    row: u64,
}

impl CurColumns {
    /// Finds the columns among `names` (the file's columns, in order; legacy names
    /// accepted, the first of a repeated name read), refusing a file without a required
    /// one. Returns them with the indices to decode, in file order.
    pub(crate) fn resolve(file: &str, names: &[String], groups: RowGroups) -> Result<(Self, Vec<usize>), CurCsvError> {
        let names: Vec<String> = names.iter().map(|n| normalise_column(n)).collect();
        let mut roots = Vec::new();
        let mut at = [None; 15];
        for (i, (column, legacy, required)) in COLUMNS.iter().enumerate() {
            // A flat `product_name` (FOCUS-like hand-made files) stands in for the legacy column.
            let found = names
                .iter()
                .position(|n| n == column)
                .or_else(|| (i == PRODUCT_NAME).then(|| names.iter().position(|n| n == "product_name")).flatten());
            match found {
                Some(index) => {
                    at[i] = Some(roots.len());
                    roots.push(index);
                }
                None if *required => {
                    return Err(CurCsvError::MissingColumn { file: file.to_owned(), column, legacy });
                }
                None => {}
            }
        }
        // The decoded batch holds the projected columns in file order: map each wanted
        // column to its place among them.
        let mut ordered = roots.clone();
        ordered.sort_unstable();
        ordered.dedup();
        for slot in at.iter_mut().flatten() {
            *slot = ordered.binary_search(&roots[*slot]).expect("projected");
        }
        Ok((Self { file: file.to_owned(), at, row: groups.first_row(), groups }, ordered))
    }

    /// Whether this export carries `line_item_iam_principal`.
    pub(crate) fn caller_identity(&self) -> CallerIdentity {
        if self.at[PRINCIPAL].is_some() { CallerIdentity::Present } else { CallerIdentity::Absent }
    }

    /// The next batch's columns in the types lines are copied from, every value checked.
    pub(crate) fn check(&mut self, batch: &RecordBatch) -> Result<CurBatch, CurReadError> {
        let checked = self.decode(batch);
        self.row += batch.num_rows() as u64;
        checked
    }

    fn decode(&self, batch: &RecordBatch) -> Result<CurBatch, CurReadError> {
        let len = batch.num_rows();
        let column = |i: usize| self.at[i].map(|at| batch.column(at));
        let mut first = FirstBad::default();
        let mut text: [Option<StringArray>; 12] = Default::default();
        for (i, slot) in text.iter_mut().enumerate() {
            let Some(array) = column(i) else { continue };
            let strings = match (i, array.data_type()) {
                (RESOURCE_TAGS | TAGS, DataType::Map(..)) => map_as_json(array.as_map()),
                (PRODUCT, DataType::Map(..)) => product_names(array.as_map()),
                _ => as_text(array).map_err(|reason| self.unreadable(COLUMNS[i].0, &reason))?,
            };
            let limit = match i {
                PRODUCT => PRODUCT_MAP_LIMIT,
                _ => {
                    FIELD_LIMITS.iter().find(|(c, _)| *c == COLUMNS[i].0).map(|(_, n)| *n).unwrap_or(PRODUCT_MAP_LIMIT)
                }
            };
            // A map's limit applies to its JSON text in a CSV export; from Parquet the
            // product map arrives as its name alone, which the map's limit bounds too.
            if let Some(row) = (0..len).find(|r| strings.value(*r).len() > limit) {
                let value = strings.value(row);
                first.offer(row, i, || CurCsvError::TooLong {
                    file: self.file.clone(),
                    row: self.row + row as u64 + 1,
                    column: COLUMNS[i].0,
                    bytes: value.len(),
                    start: value.chars().take(40).collect(),
                    limit,
                });
            }
            *slot = Some(strings);
        }
        // A `product` map delivered as JSON text (CSV, or a converted file) is read for its
        // name, only where no flat product name is given (the flat name wins).
        if let Some(array) = column(PRODUCT)
            && !matches!(array.data_type(), DataType::Map(..))
        {
            let json = text[PRODUCT].take().expect("read above");
            let flat = text[PRODUCT_NAME].as_ref();
            let mut names = StringBuilder::with_capacity(len, 0);
            for row in 0..len {
                match flat.is_some_and(|f| !f.value(row).is_empty()) {
                    true => names.append_value(""),
                    false => names.append_value(product_name_of(json.value(row)).unwrap_or_default()),
                }
            }
            text[PRODUCT] = Some(names.finish());
        }
        let accounts = text[ACCOUNT].as_ref().expect("required");
        if let Some(row) = (0..len).find(|r| !is_account_id(accounts.value(*r))) {
            first.offer(row, COLUMNS.len(), || {
                self.bad(row, ACCOUNT, accounts.value(row).to_owned(), "is not a 12-digit account id")
            });
        }
        let start = timestamps(column(START).expect("required"));
        if let Some(row) = start.iter().position(Result::is_err) {
            let value = start[row].clone().unwrap_err();
            first.offer(row, COLUMNS.len() + 1, || self.bad(row, START, value, "is not a timestamp"));
        }
        let types = text[LINE_TYPE].as_ref().expect("required");
        let mut numbers = [None, None];
        for (n, i) in [AMOUNT, COST].into_iter().enumerate() {
            let order = COLUMNS.len() + 2 + n;
            let delivered = column(i).expect("required");
            let (values, bad) = numbers_of(delivered);
            if let Some((row, value)) = bad {
                first.offer(row, order, || self.bad(row, i, value, "is not a number"));
            }
            let negative = (0..len).find(|r| {
                values.is_valid(*r) && values.value(*r) < 0.0 && NEVER_NEGATIVE.contains(&types.value(*r).trim())
            });
            if let Some(row) = negative {
                first.offer(row, order, || {
                    let line_type = types.value(row).trim();
                    // Text as delivered; a typed number as the double it holds.
                    let shown = match delivered.data_type() {
                        DataType::Utf8 => value_text(delivered, row),
                        _ => values.value(row).to_string(),
                    };
                    let value = format!("{shown} on a {line_type} line");
                    self.bad(row, i, value, "is negative; only credits, refunds and discounts may be")
                });
            }
            numbers[n] = Some(values);
        }
        if let Some((row, error)) = first.found {
            return Err(self.groups.name(self.row + row as u64, error).into());
        }
        // Account ids as lines carry them: 12 digits (spreadsheets strip leading zeros).
        let accounts = text[ACCOUNT].take().expect("required");
        text[ACCOUNT] = Some(match (0..len).all(|r| accounts.value(r).len() == 12) {
            true => accounts,
            false => (0..len).map(|r| account_id(accounts.value(r))).collect(),
        });
        let [amount, cost] = numbers.map(|n| n.expect("read"));
        let start = start.into_iter().map(|s| s.expect("checked")).collect();
        Ok(CurBatch::new(len, self.at[PRINCIPAL].is_some(), text, start, amount, cost))
    }

    fn bad(&self, row: usize, column: usize, value: String, reason: &'static str) -> CurCsvError {
        CurCsvError::BadValue {
            file: self.file.clone(),
            row: self.row + row as u64 + 1,
            column: COLUMNS[column].0,
            value,
            reason,
        }
    }

    fn unreadable(&self, column: &str, reason: &str) -> CurReadError {
        CurReadError::Parquet { file: self.file.clone(), reason: format!("column `{column}`: {reason}") }
    }
}

impl CurParquet {
    /// Opens `path`, checking that the required columns are there.
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
            open_projected(name, file, footer, groups, |names, groups| CurColumns::resolve(name, names, groups))?;
        Ok(Self { batches, columns, rows: footer.rows() })
    }

    /// Its rows, as its metadata counts them.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Whether this export carries `line_item_iam_principal`.
    pub fn caller_identity(&self) -> CallerIdentity {
        self.columns.caller_identity()
    }
}

/// A value as delivered, for an error message (text as is, typed values rendered).
pub(crate) fn value_text(array: &ArrayRef, row: usize) -> String {
    match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().value(row).to_owned(),
        _ => array_value_to_string(array, row).unwrap_or_default(),
    }
}

/// The first bad value of a batch in row order (a row's checks in the CSV reader's order).
#[derive(Default)]
struct FirstBad {
    found: Option<(usize, CurCsvError)>,
    order: usize,
}

impl FirstBad {
    fn offer(&mut self, row: usize, order: usize, error: impl FnOnce() -> CurCsvError) {
        if self.found.as_ref().is_none_or(|(r, _)| (row, order) < (*r, self.order)) {
            self.found = Some((row, error()));
            self.order = order;
        }
    }
}

impl CurBatch {
    /// A checked batch of these columns, with the rows each row repeats.
    pub(crate) fn new(
        len: usize,
        has_principal: bool,
        text: [Option<StringArray>; 12],
        start: Vec<i64>,
        amount: Float64Array,
        cost: Float64Array,
    ) -> Self {
        let mut batch = Self { len, has_principal, text, start, amount, cost, repeats: Repeats::default() };
        batch.repeats = Repeats::of(&batch);
        batch
    }

    /// Its lines.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Its lines' usage starts, microseconds since the epoch.
    pub fn starts(&self) -> &[i64] {
        &self.start
    }

    /// Row `row`'s value of text column `column` (empty where the export lacks it).
    pub(crate) fn text(&self, column: usize, row: usize) -> &str {
        self.text[column].as_ref().map_or("", |a| a.value(row))
    }

    /// Row `row`'s product name: the flat column when filled (as in the CSV reader), else
    /// the `product` map's.
    pub(crate) fn product_name(&self, row: usize) -> &str {
        match self.text(PRODUCT_NAME, row) {
            "" => self.text(PRODUCT, row),
            flat => flat,
        }
    }

    /// Row `row`'s caller, `None` when the export has no principal column.
    pub(crate) fn principal(&self, row: usize) -> Option<&str> {
        self.has_principal.then(|| self.text(PRINCIPAL, row))
    }

    /// Lines already read, as a batch (for writers fed lines rather than batches).
    pub fn of_lines(lines: &[CurLine]) -> Self {
        let column = |value: &dyn Fn(&CurLine) -> &str| Some(StringArray::from_iter_values(lines.iter().map(value)));
        let mut text: [Option<StringArray>; 12] = Default::default();
        text[ACCOUNT] = column(&|l| &l.usage_account_id);
        text[LINE_TYPE] = column(&|l| &l.line_item_type);
        text[PRODUCT_CODE] = column(&|l| &l.product_code);
        text[USAGE_TYPE] = column(&|l| &l.usage_type);
        text[OPERATION] = column(&|l| &l.operation);
        text[RESOURCE_ID] = column(&|l| &l.resource_id);
        text[BILLING_ENTITY] = column(&|l| &l.billing_entity);
        text[PRODUCT_NAME] = column(&|l| &l.product_name);
        text[PRINCIPAL] = column(&|l| l.iam_principal.as_deref().unwrap_or(""));
        text[RESOURCE_TAGS] = column(&|l| &l.resource_tags);
        text[TAGS] = column(&|l| &l.tags);
        // A batch is one export's: it has a principal column or it has not.
        let has_principal = lines.first().is_some_and(|l| l.iam_principal.is_some());
        assert!(lines.iter().all(|l| l.iam_principal.is_some() == has_principal), "lines of one export");
        Self::new(
            lines.len(),
            has_principal,
            text,
            lines.iter().map(|l| l.usage_start.timestamp_micros()).collect(),
            lines.iter().map(|l| l.usage_amount).collect(),
            lines.iter().map(|l| l.unblended_cost).collect(),
        )
    }

    pub(crate) fn fill(&self, row: usize, line: &mut CurLine) {
        let text = |i: usize| self.text(i, row);
        set(&mut line.usage_account_id, text(ACCOUNT));
        set(&mut line.line_item_type, text(LINE_TYPE));
        line.usage_start = DateTime::from_timestamp_micros(self.start[row]).expect("checked");
        set(&mut line.product_code, text(PRODUCT_CODE));
        set(&mut line.usage_type, text(USAGE_TYPE));
        set(&mut line.operation, text(OPERATION));
        set(&mut line.resource_id, text(RESOURCE_ID));
        line.usage_amount = self.amount.value(row);
        line.unblended_cost = self.cost.value(row);
        set(&mut line.billing_entity, text(BILLING_ENTITY));
        set(&mut line.product_name, self.product_name(row));
        match (&mut line.iam_principal, self.principal(row)) {
            (Some(principal), Some(text)) => set(principal, text),
            (none, Some(text)) => *none = Some(text.to_owned()),
            (principal, None) => *principal = None,
        }
        set(&mut line.resource_tags, text(RESOURCE_TAGS));
        set(&mut line.tags, text(TAGS));
    }
}

fn set(to: &mut String, from: &str) {
    to.clear();
    to.push_str(from);
}

/// A column as text (nulls empty).
pub(crate) fn as_text(array: &ArrayRef) -> Result<StringArray, String> {
    let strings = match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().clone(),
        _ => cast(array, &DataType::Utf8).map_err(|e| e.to_string())?.as_string::<i32>().clone(),
    };
    Ok(strings)
}

/// The product name per row of a `product` column: from the map's `product_name` key, else
/// `servicename` (empty when neither is there).
fn product_names(map: &MapArray) -> StringArray {
    let (keys, values) = (map.keys(), map.values());
    let (Some(keys), Some(values)) = (keys.as_string_opt::<i32>(), values.as_string_opt::<i32>()) else {
        return StringArray::from(vec![""; map.len()]);
    };
    let offsets = map.value_offsets();
    let mut out = StringBuilder::with_capacity(map.len(), map.len() * 32);
    for row in 0..map.len() {
        let entries = offsets[row] as usize..offsets[row + 1] as usize;
        let find = |key: &str| {
            entries.clone().find(|e| keys.value(*e) == key && values.is_valid(*e) && !values.value(*e).is_empty())
        };
        match (map.is_valid(row)).then(|| find("product_name").or_else(|| find("servicename"))).flatten() {
            Some(entry) => out.append_value(values.value(entry)),
            None => out.append_value(""),
        }
    }
    out.finish()
}

/// A map column per row as the JSON object a CSV export writes (empty for a null or empty
/// map; values that are not text are left out).
pub(crate) fn map_as_json(map: &MapArray) -> StringArray {
    let (keys, values) = (map.keys(), map.values());
    let (Some(keys), Some(values)) = (keys.as_string_opt::<i32>(), values.as_string_opt::<i32>()) else {
        return StringArray::from(vec![""; map.len()]);
    };
    let offsets = map.value_offsets();
    let mut out = StringBuilder::with_capacity(map.len(), 0);
    let mut object = String::new();
    for row in 0..map.len() {
        object.clear();
        if map.is_valid(row) {
            for entry in offsets[row] as usize..offsets[row + 1] as usize {
                object.push(if object.is_empty() { '{' } else { ',' });
                let value = if values.is_valid(entry) { values.value(entry) } else { "" };
                object.push_str(&serde_json::to_string(keys.value(entry)).expect("text serialises"));
                object.push(':');
                object.push_str(&serde_json::to_string(value).expect("text serialises"));
            }
            if !object.is_empty() {
                object.push('}');
            }
        }
        out.append_value(&object);
    }
    out.finish()
}

/// The column's instants in microseconds since the epoch, or the text of a value that is
/// not one (typed timestamps of any unit, dates, or text in the CSV reader's forms).
pub(crate) fn timestamps(array: &ArrayRef) -> Vec<Result<i64, String>> {
    let len = array.len();
    let typed = |scale: &dyn Fn(i64) -> i64, values: &dyn Fn(usize) -> i64| -> Vec<Result<i64, String>> {
        (0..len).map(|r| if array.is_valid(r) { Ok(scale(values(r))) } else { Err(String::new()) }).collect()
    };
    match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => {
            let a = array.as_primitive::<TimestampSecondType>();
            typed(&|v| v * 1_000_000, &|r| a.value(r))
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            let a = array.as_primitive::<TimestampMillisecondType>();
            typed(&|v| v * 1_000, &|r| a.value(r))
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let a = array.as_primitive::<TimestampMicrosecondType>();
            typed(&|v| v, &|r| a.value(r))
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            let a = array.as_primitive::<TimestampNanosecondType>();
            typed(&|v| v.div_euclid(1_000), &|r| a.value(r))
        }
        _ => match as_text(array) {
            Ok(strings) => (0..len)
                .map(|r| {
                    let text = strings.value(r);
                    parse_timestamp(text.trim()).map(|t| t.timestamp_micros()).ok_or_else(|| text.to_owned())
                })
                .collect(),
            Err(_) => vec![Err(format!("a value of type {}", array.data_type())); len],
        },
    }
}

/// The column as finite doubles (nulls where a value is bad), and the first bad value.
pub(crate) fn numbers_of(array: &ArrayRef) -> (Float64Array, Option<(usize, String)>) {
    let len = array.len();
    let mut out = Float64Builder::with_capacity(len);
    let mut bad = None;
    let mut note = |row: usize, text: String| {
        if bad.is_none() {
            bad = Some((row, text));
        }
    };
    match array.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..) => {
            let strings = as_text(array).unwrap_or_else(|_| StringArray::from(vec![""; len]));
            for r in 0..len {
                let text = strings.value(r);
                match text.trim().parse::<f64>() {
                    Ok(v) if v.is_finite() => out.append_value(v),
                    _ => {
                        note(r, text.to_owned());
                        out.append_null();
                    }
                }
            }
        }
        _ => {
            let doubles = match cast(array, &DataType::Float64) {
                Ok(doubles) => doubles,
                Err(_) => {
                    return (
                        Float64Array::from(vec![None; len]),
                        (len > 0).then(|| (0, array.data_type().to_string())),
                    );
                }
            };
            let doubles = doubles.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
            for r in 0..len {
                match doubles.is_valid(r).then(|| doubles.value(r)).filter(|v| v.is_finite()) {
                    Some(v) => out.append_value(v),
                    None => {
                        note(r, if doubles.is_valid(r) { doubles.value(r).to_string() } else { String::new() });
                        out.append_null();
                    }
                }
            }
        }
    }
    (out.finish(), bad)
}

/// Why a delivery (Parquet or CSV) could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurReadError {
    /// A bad value (with its row group) or a missing column, named as the CSV reader names it.
    #[error(transparent)]
    Invalid(#[from] CurCsvError),
    /// The file is not readable Parquet.
    #[error("{file}: not readable Parquet: {reason}")]
    Parquet {
        /// The file.
        file: String,
        /// The reader's complaint.
        reason: String,
    },
}

/// The schema [`write_cur2`] writes: CUR 2.0's Glue types, product attributes and tags as
/// `map<string,string>`, plus an identity column that attribution does not read.
fn cur2_schema() -> SchemaRef {
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    let map = |name: &str| {
        let entries = Field::new(
            "entries",
            DataType::Struct(
                vec![Field::new("keys", DataType::Utf8, false), Field::new("values", DataType::Utf8, true)].into(),
            ),
            false,
        );
        Field::new(name, DataType::Map(Arc::new(entries), false), true)
    };
    Arc::new(Schema::new(vec![
        text("identity_line_item_id"),
        text("bill_billing_entity"),
        text("line_item_usage_account_id"),
        text("line_item_line_item_type"),
        Field::new("line_item_usage_start_date", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        text("line_item_product_code"),
        text("line_item_usage_type"),
        text("line_item_operation"),
        text("line_item_resource_id"),
        Field::new("line_item_usage_amount", DataType::Float64, true),
        Field::new("line_item_unblended_cost", DataType::Float64, true),
        map("product"),
        map("resource_tags"),
        text("line_item_iam_principal"),
        map("tags"),
    ]))
}

/// Writes `lines` as a CUR 2.0 Parquet part in the shape AWS delivers (snappy, row groups of
/// `group_rows`): the product name as the `product` map's `product_name`, the tags' JSON
/// objects as maps. Streaming: memory holds one batch. Returns the rows written.
pub fn write_cur2(
    lines: impl IntoIterator<Item = CurLine>,
    out: impl Write + Send,
    group_rows: usize,
) -> Result<u64, ParquetError> {
    let schema = cur2_schema();
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(group_rows))
        .build();
    let mut writer = ArrowWriter::try_new(out, schema.clone(), Some(properties))?;
    let mut pending = Vec::with_capacity(BATCH_ROWS);
    let mut rows = 0u64;
    let mut flush = |pending: &mut Vec<CurLine>, writer: &mut ArrowWriter<_>| -> Result<(), ParquetError> {
        if !pending.is_empty() {
            writer.write(&cur2_batch(&schema, pending, rows))?;
            rows += pending.len() as u64;
            pending.clear();
        }
        Ok(())
    };
    for line in lines {
        pending.push(line);
        if pending.len() == BATCH_ROWS {
            flush(&mut pending, &mut writer)?;
        }
    }
    flush(&mut pending, &mut writer)?;
    writer.close()?;
    Ok(rows)
}

fn cur2_batch(schema: &SchemaRef, lines: &[CurLine], first: u64) -> RecordBatch {
    let text =
        |f: &dyn Fn(&CurLine) -> &str| -> ArrayRef { Arc::new(StringArray::from_iter_values(lines.iter().map(f))) };
    let map = |entries: &dyn Fn(&CurLine) -> Vec<(String, String)>| -> ArrayRef {
        let mut map = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        for line in lines {
            for (k, v) in entries(line) {
                map.keys().append_value(k);
                map.values().append_value(v);
            }
            map.append(true).expect("keys and values appended together");
        }
        Arc::new(map.finish())
    };
    let json_map = |json: &str| -> Vec<(String, String)> {
        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(json)
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())))
            .collect()
    };
    let mut start = TimestampMicrosecondBuilder::with_capacity(lines.len());
    for line in lines {
        start.append_value(line.usage_start.timestamp_micros());
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values((0..lines.len() as u64).map(|i| format!("{:016x}", first + i)))),
        text(&|l| &l.billing_entity),
        text(&|l| &l.usage_account_id),
        text(&|l| &l.line_item_type),
        Arc::new(start.finish()),
        text(&|l| &l.product_code),
        text(&|l| &l.usage_type),
        text(&|l| &l.operation),
        text(&|l| &l.resource_id),
        Arc::new(Float64Array::from_iter_values(lines.iter().map(|l| l.usage_amount))),
        Arc::new(Float64Array::from_iter_values(lines.iter().map(|l| l.unblended_cost))),
        map(&|l| {
            let mut product = vec![];
            if !l.product_name.is_empty() {
                product.push(("product_name".to_owned(), l.product_name.clone()));
            }
            product
        }),
        map(&|l| json_map(&l.resource_tags)),
        text(&|l| l.iam_principal.as_deref().unwrap_or("")),
        map(&|l| json_map(&l.tags)),
    ];
    RecordBatch::try_new(schema.clone(), columns).expect("columns match the schema")
}

#[cfg(test)]
mod tests {
    use super::*;
    use finops_cur::csv_lines::CurCsv;
    use finops_cur::synthetic::{MonthSpec, write_month};

    fn csv_month(rows: u64, seed: u64) -> Vec<CurLine> {
        let mut csv = Vec::new();
        write_month(&MonthSpec { period: "2026-11".into(), rows, seed, restatement: 0 }, &mut csv).unwrap();
        CurCsv::new("m.csv", csv.as_slice()).unwrap().collect::<Result<_, _>>().unwrap()
    }

    fn parquet_of(lines: &[CurLine], group_rows: usize) -> crate::scratch::Scratch {
        let scratch = crate::scratch::Scratch::new("cur2.parquet");
        write_cur2(lines.iter().cloned(), File::create(&scratch.0).unwrap(), group_rows).unwrap();
        scratch
    }

    fn read_all(name: &str, path: &std::path::Path) -> Result<Vec<CurLine>, CurReadError> {
        let mut out = vec![];
        lines_of(CurParquet::open(name, File::open(path).unwrap())?, &mut out)?;
        Ok(out)
    }

    /// The lines of `path` read a piece of at least `rows` rows at a time, each piece
    /// opened apart (as threads read them), the first error stopping the reading.
    fn read_in_pieces(name: &str, path: &std::path::Path, rows: u64) -> Result<Vec<CurLine>, CurReadError> {
        let footer = ParquetFooter::read(name, &File::open(path).unwrap())?;
        let mut out = vec![];
        for piece in footer.pieces(rows) {
            lines_of(CurParquet::open_groups(name, File::open(path).unwrap(), &footer, piece)?, &mut out)?;
        }
        Ok(out)
    }

    fn lines_of(parquet: CurParquet, out: &mut Vec<CurLine>) -> Result<(), CurReadError> {
        let mut reader = BatchLines::new(parquet);
        let mut line = CurLine::default();
        while let Some(next) = reader.next_line(&mut line) {
            next?;
            out.push(line.clone());
        }
        Ok(())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]
        /// Whatever the month and the row groups, a Parquet delivery reads as the same lines
        /// as the CSV delivery it was written from (tags compared as the JSON they hold).
        #[test]
        fn a_parquet_month_reads_as_the_lines_of_its_csv(
            seed in 0u64..1_000,
            rows in 1u64..3_000,
            group_rows in 1usize..2_000,
            piece_rows in 1u64..4_000,
        ) {
            let lines = csv_month(rows, seed);
            let file = parquet_of(&lines, group_rows);
            let read = read_all("m.parquet", &file.0).unwrap();
            // Read a piece at a time, the file gives the same lines in the same order.
            proptest::prop_assert_eq!(&read_in_pieces("m.parquet", &file.0, piece_rows).unwrap(), &read);
            proptest::prop_assert_eq!(read.len(), lines.len());
            let json = |text: &str| serde_json::from_str::<serde_json::Value>(text).ok();
            for (read, written) in read.iter().zip(&lines) {
                proptest::prop_assert_eq!(json(&read.tags), json(&written.tags));
                proptest::prop_assert_eq!(json(&read.resource_tags), json(&written.resource_tags));
                let plain = |l: &CurLine| CurLine { tags: String::new(), resource_tags: String::new(), ..l.clone() };
                proptest::prop_assert_eq!(plain(read), plain(written));
            }
        }
    }

    #[test]
    fn pieces_cover_every_row_group_once_in_order() {
        let lines = csv_month(90, 5);
        let file = parquet_of(&lines, 20);
        let footer = ParquetFooter::read("m.parquet", &File::open(&file.0).unwrap()).unwrap();
        assert_eq!((footer.rows(), footer.row_groups()), (90, 0..5));
        assert_eq!(footer.pieces(30), vec![0..2, 2..4, 4..5]);
        assert_eq!(footer.pieces(1), vec![0..1, 1..2, 2..3, 3..4, 4..5]);
        assert_eq!(footer.pieces(1_000), vec![0..5], "a small file is one piece");
        assert_eq!(footer.first_row(3), 60);
    }

    #[test]
    fn a_file_without_row_groups_is_one_empty_piece() {
        let file = parquet_of(&[], 20);
        let footer = ParquetFooter::read("m.parquet", &File::open(&file.0).unwrap()).unwrap();
        assert_eq!(footer.pieces(30), vec![0..0]);
        assert!(read_in_pieces("m.parquet", &file.0, 30).unwrap().is_empty());
    }

    #[test]
    fn the_first_bad_value_in_row_order_is_named_with_its_row_group() {
        let mut lines = csv_month(300, 3);
        lines[250].unblended_cost = -1.0; // a Usage line: a sign error
        lines[251].usage_account_id = "12-34".into();
        lines[120].resource_id = "x".repeat(3_000);
        let file = parquet_of(&lines, 100);
        let err = read_all("p.parquet", &file.0).unwrap_err();
        // A piece read apart names its rows as the file's rows.
        assert_eq!(read_in_pieces("p.parquet", &file.0, 100).unwrap_err().to_string(), err.to_string());
        assert_eq!(
            err.to_string(),
            "p.parquet: row 121, column `line_item_resource_id`: a value of 3000 bytes (`xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…`); at most 2048 bytes (Parquet row group 1)"
        );
        lines[120].resource_id.clear();
        let file = parquet_of(&lines, 100);
        assert_eq!(
            read_all("p.parquet", &file.0).unwrap_err().to_string(),
            "p.parquet: row 251, column `line_item_unblended_cost`: `-1 on a Usage line` is negative; only credits, refunds and discounts may be (Parquet row group 2)"
        );
        lines[250].unblended_cost = 1.0;
        let file = parquet_of(&lines, 100);
        assert_eq!(
            read_in_pieces("p.parquet", &file.0, 100).unwrap_err().to_string(),
            "p.parquet: row 252, column `line_item_usage_account_id`: `12-34` is not a 12-digit account id (Parquet row group 2)"
        );
    }

    #[test]
    fn a_file_without_a_required_column_is_refused_by_name() {
        let schema = Arc::new(Schema::new(vec![Field::new("line_item_usage_type", DataType::Utf8, true)]));
        let batch =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(vec!["X"])) as ArrayRef]).unwrap();
        let scratch = crate::scratch::Scratch::new("bare.parquet");
        let mut writer = ArrowWriter::try_new(File::create(&scratch.0).unwrap(), schema, None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let err = CurParquet::open("bare.parquet", File::open(&scratch.0).unwrap()).err().unwrap();
        assert!(err.to_string().contains("missing required column `line_item_usage_account_id`"), "{err}");
    }
}
