//! The columnar form of a CUR batch: one row per CUR line, the fields attribution needs and
//! the AI facts read once at ingest ([`finops_cur::ai_facts`]). Written as Parquet beside
//! the delivered bytes, it is what every query scans, whatever the delivery's format.
//!
//! Dollars are `Decimal128(20, 10)` (CUR's ten decimal places): sums are exact and do not
//! depend on the order a parallel plan adds them in, so the same question gives the same
//! answer to the cent.

use std::io::Write;
use std::sync::{Arc, LazyLock};

use chrono::Datelike;
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use finops_cur::ai_facts::AiFacts;
use finops_cur::csv_lines::CurLine;

/// Precision and scale of every dollar column.
pub const MONEY_PRECISION: u8 = 20;
/// Ten decimal places, as CUR writes them.
pub const MONEY_SCALE: i8 = 10;
/// Rows per record batch written.
const BATCH_ROWS: usize = 64 * 1024;
/// Rows per Parquet row group: the unit a query scans in parallel, so a month splits
/// across every core (one row group per month was measured 2× slower on two cores).
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// The schema of a batch's lines.
pub fn schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let text = |name: &str| Field::new(name, DataType::Utf8, false);
        Arc::new(Schema::new(vec![
            text("usage_account_id"),
            Field::new("usage_date", DataType::Date32, false),
            Field::new("usage_start", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
            text("line_item_type"),
            text("product_code"),
            text("usage_type"),
            text("resource_id"),
            Field::new("usage_amount", DataType::Float64, false),
            Field::new("cost", DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE), false),
            Field::new("platform", DataType::Utf8, true),
            text("region"),
            text("model"),
            text("token_type"),
            Field::new("tokens", DataType::Float64, false),
            Field::new("guardrail", DataType::Boolean, false),
            text("anchor"),
            text("principal_kind"),
            text("principal_account"),
            text("principal_name"),
        ]))
    });
    SCHEMA.clone()
}

/// Dollars as a `Decimal128` with [`MONEY_SCALE`] (rounded half away from zero).
pub fn money(dollars: f64) -> i128 {
    (dollars * 10f64.powi(i32::from(MONEY_SCALE))).round() as i128
}

/// Builds record batches of lines.
struct Columns {
    account: StringBuilder,
    date: Date32Builder,
    start: TimestampMicrosecondBuilder,
    line_item_type: StringBuilder,
    product_code: StringBuilder,
    usage_type: StringBuilder,
    resource_id: StringBuilder,
    amount: Float64Builder,
    cost: Decimal128Builder,
    platform: StringBuilder,
    region: StringBuilder,
    model: StringBuilder,
    token_type: StringBuilder,
    tokens: Float64Builder,
    guardrail: BooleanBuilder,
    anchor: StringBuilder,
    principal_kind: StringBuilder,
    principal_account: StringBuilder,
    principal_name: StringBuilder,
    rows: usize,
}

impl Columns {
    fn new() -> Self {
        Self {
            account: StringBuilder::new(),
            date: Date32Builder::new(),
            start: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            line_item_type: StringBuilder::new(),
            product_code: StringBuilder::new(),
            usage_type: StringBuilder::new(),
            resource_id: StringBuilder::new(),
            amount: Float64Builder::new(),
            cost: Decimal128Builder::new(),
            platform: StringBuilder::new(),
            region: StringBuilder::new(),
            model: StringBuilder::new(),
            token_type: StringBuilder::new(),
            tokens: Float64Builder::new(),
            guardrail: BooleanBuilder::new(),
            anchor: StringBuilder::new(),
            principal_kind: StringBuilder::new(),
            principal_account: StringBuilder::new(),
            principal_name: StringBuilder::new(),
            rows: 0,
        }
    }

    fn push(&mut self, line: &CurLine) {
        let facts = AiFacts::of(line);
        self.account.append_value(&line.usage_account_id);
        // Days since 1970-01-01: chrono counts from 0001-01-01 (day 1).
        self.date.append_value(line.usage_start.date_naive().num_days_from_ce() - 719_163);
        self.start.append_value(line.usage_start.timestamp_micros());
        self.line_item_type.append_value(&line.line_item_type);
        self.product_code.append_value(&line.product_code);
        self.usage_type.append_value(&line.usage_type);
        self.resource_id.append_value(&line.resource_id);
        self.amount.append_value(line.usage_amount);
        self.cost.append_value(money(line.unblended_cost));
        self.platform.append_option(facts.platform.map(|p| p.as_str()));
        self.region.append_value(&facts.region);
        self.model.append_value(&facts.model);
        self.token_type.append_value(facts.token_type);
        self.tokens.append_value(facts.tokens);
        self.guardrail.append_value(facts.guardrail);
        self.anchor.append_value(&facts.anchor);
        self.principal_kind.append_value(facts.principal_kind.as_str());
        self.principal_account.append_value(&facts.principal_account);
        self.principal_name.append_value(&facts.principal_name);
        self.rows += 1;
    }

    fn finish(&mut self) -> RecordBatch {
        let cost =
            self.cost.finish().with_precision_and_scale(MONEY_PRECISION, MONEY_SCALE).expect("valid decimal type");
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.account.finish()),
            Arc::new(self.date.finish()),
            Arc::new(self.start.finish()),
            Arc::new(self.line_item_type.finish()),
            Arc::new(self.product_code.finish()),
            Arc::new(self.usage_type.finish()),
            Arc::new(self.resource_id.finish()),
            Arc::new(self.amount.finish()),
            Arc::new(cost),
            Arc::new(self.platform.finish()),
            Arc::new(self.region.finish()),
            Arc::new(self.model.finish()),
            Arc::new(self.token_type.finish()),
            Arc::new(self.tokens.finish()),
            Arc::new(self.guardrail.finish()),
            Arc::new(self.anchor.finish()),
            Arc::new(self.principal_kind.finish()),
            Arc::new(self.principal_account.finish()),
            Arc::new(self.principal_name.finish()),
        ];
        self.rows = 0;
        RecordBatch::try_new(schema(), columns).expect("columns match the schema")
    }
}

/// Why lines could not be written.
#[derive(Debug, thiserror::Error)]
#[error("writing Parquet lines: {0}")]
pub struct LinesWriteError(#[from] datafusion::parquet::errors::ParquetError);

/// Streams lines into Parquet, a record batch at a time (memory bounded by the batch size
/// and the writer's row group).
pub struct LinesWriter<W: Write + Send> {
    columns: Columns,
    writer: ArrowWriter<W>,
    rows: u64,
}

impl<W: Write + Send> LinesWriter<W> {
    /// A writer into `out`.
    pub fn new(out: W) -> Result<Self, LinesWriteError> {
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        Ok(Self { columns: Columns::new(), writer: ArrowWriter::try_new(out, schema(), Some(properties))?, rows: 0 })
    }

    /// Adds a line.
    pub fn push(&mut self, line: &CurLine) -> Result<(), LinesWriteError> {
        self.columns.push(line);
        self.rows += 1;
        if self.columns.rows >= BATCH_ROWS {
            self.writer.write(&self.columns.finish())?;
        }
        Ok(())
    }

    /// Lines written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Flushes and closes the file; returns the output.
    pub fn finish(mut self) -> Result<W, LinesWriteError> {
        if self.columns.rows > 0 {
            self.writer.write(&self.columns.finish())?;
        }
        Ok(self.writer.into_inner()?)
    }
}

/// Lines as one record batch (tests and small fixtures).
pub fn record_batch<'a>(lines: impl IntoIterator<Item = &'a CurLine>) -> RecordBatch {
    let mut columns = Columns::new();
    for line in lines {
        columns.push(line);
    }
    columns.finish()
}
