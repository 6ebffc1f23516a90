//! The columnar form of a CUR batch: one row per CUR line, the fields attribution needs and
//! the AI facts read once at ingest ([`finops_cur::ai_facts`]). Written as Parquet beside
//! the delivered bytes, it is what every query scans, whatever the delivery's format.
//!
//! Beside the lines, a small **facets** table: a facet is one distinct combination of what
//! decides an AI line's outcome (the day aside) and every other attribute attribution groups
//! by — account, platform, region, model, token type, guardrail or workspace anchor, caller.
//! Each AI line carries its facet's number and its day of the month in one integer
//! (`facet_day` = facet × 32 + day − 1; facet 0 for non-AI lines), so a query sums the
//! lines per integer and classifies a few thousand facets instead of reading eleven text
//! columns of every line (measured: BENCHMARKS.md). A month holds as
//! many facets as distinct callers × models × token types × regions, which is what bounds
//! the writer's memory besides the pending lines — with the sessions table (layout 6): one
//! row per distinct session name and principal tags of the AI lines, which gateway mapping
//! rules are matched against (a month of per-run sessions holds one row per run).
//!
//! The lines are written in clusters by facet (`CLUSTERS`), not in delivery order: non-AI lines
//! first, then the AI lines of one cluster of facets after another, each cluster's lines in
//! the order they came. The sum per `facet_day` then works on one cluster's groups at a
//! time, which stay in cache.
//!
//! Dollars are exact to CUR's ten decimal places, stored as two integers (whole dollars,
//! and the units below a dollar) that queries sum apart and recombine as a
//! `Decimal128(38, 10)`: sums are exact and do not depend on the order a parallel plan adds
//! them in, so the same question gives the same answer to the cent.

use crate::scratch::Scratch;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Datelike};
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::ipc::reader::FileReader;
use datafusion::arrow::ipc::writer::{FileWriter, IpcWriteOptions};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_writer::{ArrowRowGroupWriterFactory, compute_leaves};
use datafusion::parquet::basic::Compression;
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::properties::WriterProperties;
use datafusion::parquet::file::writer::SerializedFileWriter;
use finops_cur::ai_facts::{AiSource, CallerFacts, UsageFacts, tokens};
use finops_cur::csv_lines::CurLine;

use crate::cur_parquet::{
    ACCOUNT, BILLING_ENTITY, CurBatch, LINE_TYPE, OPERATION, PRODUCT_CODE, RESOURCE_ID, RESOURCE_TAGS, TAGS, USAGE_TYPE,
};

/// Ten decimal places, as CUR writes them.
pub const MONEY_SCALE: i8 = 10;
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
            // Dollars as two integers summed apart and recombined exactly (classify.sql):
            // 64-bit sums scan faster than 128-bit decimals, with no cap on a line's amount.
            Field::new("cost_dollars", DataType::Int64, false),
            Field::new("cost_fraction", DataType::Int64, false),
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
            // What a gateway mapping rule matches, as the number of the line's (session,
            // principal tags) pair in the sessions table (0: none): rules are matched against
            // that small table, and a line pays an integer lookup (classify.sql).
            Field::new("session_key", DataType::Int32, false),
            Field::new("facet_day", DataType::Int32, false),
        ]))
    });
    SCHEMA.clone()
}

/// The schema of a batch's sessions: each distinct (session, principal tags) pair of its
/// AI lines, numbered from 1 in order of first appearance (a line's `session_key`).
pub fn sessions_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        Arc::new(Schema::new(vec![
            Field::new("session_key", DataType::Int32, false),
            Field::new("session", DataType::Utf8, false),
            Field::new("principal_tags", DataType::Utf8, false),
        ]))
    });
    SCHEMA.clone()
}

/// The (session, principal tags) pairs met so far (see [`sessions_schema`]).
struct Sessions {
    numbers: HashMap<String, i32>,
    key: String,
    session_key: Int32Builder,
    session: StringBuilder,
    principal_tags: StringBuilder,
}

impl Sessions {
    fn new() -> Self {
        Self {
            numbers: HashMap::new(),
            key: String::new(),
            session_key: Int32Builder::new(),
            session: StringBuilder::new(),
            principal_tags: StringBuilder::new(),
        }
    }

    /// The number of an AI line's pair (a new one the first time it is met); 0 for a line
    /// that is not AI spend or names neither.
    fn number(&mut self, usage: &UsageFacts, facts: &CallerFacts) -> i32 {
        if usage.platform.is_none() || (facts.session.is_empty() && facts.principal_tags.is_empty()) {
            return 0;
        }
        self.key.clear();
        // A session name cannot hold the unit separator, so the pair splits back unambiguously.
        let _ = write!(self.key, "{}\u{1f}{}", facts.session, facts.principal_tags);
        if let Some(n) = self.numbers.get(self.key.as_str()) {
            return *n;
        }
        let n = i32::try_from(self.numbers.len() + 1).expect("fewer than 2^31 sessions in a month");
        self.numbers.insert(self.key.clone(), n);
        self.session_key.append_value(n);
        self.session.append_value(&facts.session);
        self.principal_tags.append_value(&facts.principal_tags);
        n
    }

    fn finish(&mut self) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.session_key.finish()),
            Arc::new(self.session.finish()),
            Arc::new(self.principal_tags.finish()),
        ];
        RecordBatch::try_new(sessions_schema(), columns).expect("columns match the schema")
    }
}

/// What a line's text fields decide (everything but its amounts, time and line type):
/// what it used, who called, its facet and its session pair.
#[derive(Clone, Copy)]
struct Known<'a> {
    usage: &'a UsageFacts,
    caller: &'a CallerFacts,
    facet: i32,
    session_key: i32,
}

/// What a line is known to be, by number: its usage and caller facts (in [`KnownTexts`],
/// valid within a batch), its facet and session.
#[derive(Clone, Copy)]
struct KnownNumbers {
    usage: u32,
    caller: u32,
    facet: i32,
    session_key: i32,
}

/// The fields a line's usage facts are read from ([`UsageFacts::of`]).
fn usage_fields(batch: &CurBatch, row: usize) -> [&str; 7] {
    let text = |column: usize| batch.text(column, row);
    [
        text(BILLING_ENTITY),
        text(PRODUCT_CODE),
        batch.product_name(row),
        text(USAGE_TYPE),
        text(OPERATION),
        text(RESOURCE_ID),
        text(RESOURCE_TAGS),
    ]
}

/// The fields a line's caller facts are read from ([`CallerFacts::of`]).
fn caller_fields(batch: &CurBatch, row: usize) -> [&str; 2] {
    [batch.principal(row).unwrap_or(""), batch.text(TAGS, row)]
}

/// Which earlier line of its batch each line repeats, for what it used and for who called:
/// per row, the first row of the batch with the same usage fields, and the first with the
/// same caller fields — so the same usage facts, or the same caller facts. Found when the
/// batch is checked, on the decoding threads, so that the writer looks up each distinct
/// text of a batch once and copies the number it found for the rest (a month repeats a few
/// hundred of each over millions of lines; whole lines repeat far less).
#[derive(Debug, Default)]
pub(crate) struct Repeats {
    usage: Vec<u32>,
    caller: Vec<u32>,
}

impl Repeats {
    /// The repeats of `batch`'s rows. Exact: a row repeats another only when every field is
    /// equal (a hash finds the candidate; the fields are compared).
    pub(crate) fn of(batch: &CurBatch) -> Self {
        Self {
            usage: firsts(batch.len(), |row| usage_fields(batch, row)),
            caller: firsts(batch.len(), |row| caller_fields(batch, row)),
        }
    }

    /// The first row of the batch with row `row`'s usage fields (itself when none before it).
    fn usage(&self, row: usize) -> usize {
        self.usage.get(row).map_or(row, |first| *first as usize)
    }

    /// The first row of the batch with row `row`'s caller fields (itself when none before it).
    fn caller(&self, row: usize) -> usize {
        self.caller.get(row).map_or(row, |first| *first as usize)
    }
}

/// Per row of `rows`, the first row with equal `fields`.
fn firsts<'a, const N: usize>(rows: usize, fields: impl Fn(usize) -> [&'a str; N]) -> Vec<u32> {
    if rows < 2 {
        // A line pushed alone repeats nothing: no table for it.
        return (0..rows as u32).collect();
    }
    let state = foldhash::fast::FixedState::default();
    let mut seen: HashMap<u64, u32, foldhash::fast::RandomState> = HashMap::default();
    let mut first = Vec::with_capacity(rows);
    for row in 0..rows {
        let these = fields(row);
        let earlier = *seen.entry(std::hash::BuildHasher::hash_one(&state, these)).or_insert(row as u32);
        // A hash shared by different fields: the row is read on its own (never wrong).
        first.push(if fields(earlier as usize) == these { earlier } else { row as u32 });
    }
    first
}

/// Distinct texts of either part remembered before every memory here is cleared (and
/// refilled as lines come): bounds memory whatever a month's sessions.
const KNOWN_LIMIT: usize = 256 * 1024;
/// Distinct (account, usage, caller) combinations remembered before the same.
const COMBINATIONS_LIMIT: usize = 4 * 1024 * 1024;

/// One part's facts per distinct text of the fields it is read from, each numbered.
struct Memo<T> {
    numbers: HashMap<Vec<u8>, u32, foldhash::fast::RandomState>,
    facts: Vec<T>,
}

impl<T> Memo<T> {
    fn new() -> Self {
        Self { numbers: HashMap::default(), facts: Vec::new() }
    }

    /// The number of `key`'s facts, read by `read` the first time it is met.
    fn number(&mut self, key: &[u8], read: impl FnOnce() -> T) -> u32 {
        if let Some(n) = self.numbers.get(key) {
            return *n;
        }
        let n = self.facts.len() as u32;
        self.numbers.insert(key.to_vec(), n);
        self.facts.push(read());
        n
    }

    fn clear(&mut self) {
        self.numbers.clear();
        self.facts.clear();
    }
}

/// A line's facts read once per distinct text: what it used ([`UsageFacts`], from its
/// product, usage type, operation, resource and resource tags) and who called
/// ([`CallerFacts`], from its principal and tags) each from a memo of its own fields — a
/// month repeats a few thousand of each over millions of lines, and reading them (parsing
/// the principal, the usage type, the resource, the tags) costs far more than finding them
/// again — and the facet and session of each (account, usage, caller) combination met.
/// Exact by construction: each key holds every field its facts are read from, each
/// prefixed by its length.
struct KnownTexts {
    key: Vec<u8>,
    accounts: Memo<()>,
    usages: Memo<UsageFacts>,
    callers: Memo<CallerFacts>,
    /// (account, usage, caller) → (facet, session).
    combinations: HashMap<(u32, u32, u32), (i32, i32), foldhash::fast::RandomState>,
    /// Texts of either part remembered before everything is forgotten ([`KNOWN_LIMIT`];
    /// a handful in tests, so that forgetting is exercised).
    limit: usize,
}

impl KnownTexts {
    fn new() -> Self {
        Self {
            key: Vec::new(),
            accounts: Memo::new(),
            usages: Memo::new(),
            callers: Memo::new(),
            combinations: HashMap::default(),
            limit: KNOWN_LIMIT,
        }
    }

    fn key_of(key: &mut Vec<u8>, fields: &[&str]) {
        key.clear();
        for field in fields {
            key.extend_from_slice(&(field.len() as u32).to_le_bytes());
            key.extend_from_slice(field.as_bytes());
        }
    }

    /// Forgets everything once either part, or the combinations, reach their limit —
    /// between batches, so the numbers handed out within one stay valid.
    fn bound(&mut self) {
        if self.usages.facts.len() >= self.limit
            || self.callers.facts.len() >= self.limit
            || self.combinations.len() >= COMBINATIONS_LIMIT.min(self.limit * 16)
        {
            // The combinations name parts by number: they go with the parts.
            self.accounts.clear();
            self.usages.clear();
            self.callers.clear();
            self.combinations.clear();
        }
    }

    /// What row `row` of `batch` is known to be, given its usage and caller numbers when an
    /// earlier row of the batch had the same texts (`line`: scratch to read a text met for
    /// the first time from).
    fn of(
        &mut self,
        batch: &CurBatch,
        row: usize,
        (usage, caller): (Option<u32>, Option<u32>),
        line: &mut CurLine,
        facets: &mut Facets,
        sessions: &mut Sessions,
    ) -> KnownNumbers {
        let account_id = batch.text(ACCOUNT, row);
        let account = self.accounts.number(account_id.as_bytes(), || ());
        let usage = usage.unwrap_or_else(|| {
            Self::key_of(&mut self.key, &usage_fields(batch, row));
            self.usages.number(&self.key, || {
                batch.fill(row, line);
                UsageFacts::of(line)
            })
        });
        let caller = caller.unwrap_or_else(|| {
            let [principal, tags] = caller_fields(batch, row);
            Self::key_of(&mut self.key, &[principal, tags]);
            self.callers.number(&self.key, || CallerFacts::of(principal, tags))
        });
        let (usage_facts, caller_facts) = (&self.usages.facts[usage as usize], &self.callers.facts[caller as usize]);
        let (facet, session_key) = *self.combinations.entry((account, usage, caller)).or_insert_with(|| {
            (facets.number(account_id, usage_facts, caller_facts), sessions.number(usage_facts, caller_facts))
        });
        KnownNumbers { usage, caller, facet, session_key }
    }

    /// The facts `numbers` name.
    fn known(&self, numbers: KnownNumbers) -> Known<'_> {
        let KnownNumbers { usage, caller, facet, session_key } = numbers;
        Known {
            usage: &self.usages.facts[usage as usize],
            caller: &self.callers.facts[caller as usize],
            facet,
            session_key,
        }
    }
}

/// Days a facet number is multiplied by in `facet_day` (a month has at most 31).
pub const FACET_DAYS: i32 = 32;

/// The schema of a batch's facets (see the module's documentation).
pub fn facets_schema() -> SchemaRef {
    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let text = |name: &str| Field::new(name, DataType::Utf8, false);
        Arc::new(Schema::new(vec![
            Field::new("facet", DataType::Int32, false),
            text("account"),
            text("platform"),
            text("region"),
            text("model"),
            text("token_type"),
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

/// Units of [`MONEY_SCALE`] in a dollar.
pub const MONEY_UNITS: i128 = 10_000_000_000;

/// A raw amount (units of [`MONEY_SCALE`]) as whole dollars and the units below a dollar
/// (always 0 ≤ fraction < [`MONEY_UNITS`], so credits have negative dollars).
pub fn split_money(raw: i128) -> (i64, i64) {
    // Any line's amount fits 64 bits (up to $922 million), where dividing is a multiply;
    // 128-bit division is a library call, measurable at millions of lines.
    if let Ok(raw) = i64::try_from(raw) {
        const UNITS: i64 = MONEY_UNITS as i64;
        return (raw.div_euclid(UNITS), raw.rem_euclid(UNITS));
    }
    (raw.div_euclid(MONEY_UNITS) as i64, raw.rem_euclid(MONEY_UNITS) as i64)
}

/// Microseconds in a day.
const DAY_MICROS: i64 = 86_400_000_000;

/// Days since 1970-01-01 and the day of the month (from 0) of instants, remembered per
/// day: a month has at most 31, and the calendar is read once for each.
struct Days {
    /// Per slot (days since the epoch modulo its size): the day it holds, its day of month.
    slots: [(i64, u32); 64],
}

impl Days {
    fn new() -> Self {
        Self { slots: [(i64::MIN, 0); 64] }
    }

    fn of(&mut self, micros: i64) -> (i32, u32) {
        let day = micros.div_euclid(DAY_MICROS);
        let slot = &mut self.slots[day.rem_euclid(64) as usize];
        if slot.0 != day {
            let date = DateTime::from_timestamp_micros(micros).expect("checked").date_naive();
            *slot = (day, date.day0());
        }
        (day as i32, slot.1)
    }
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
    cost_dollars: Int64Builder,
    cost_fraction: Int64Builder,
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
    session_key: Int32Builder,
    facet_day: Int32Builder,
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
            cost_dollars: Int64Builder::new(),
            cost_fraction: Int64Builder::new(),
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
            session_key: Int32Builder::new(),
            facet_day: Int32Builder::new(),
            rows: 0,
        }
    }

    fn push(&mut self, batch: &CurBatch, row: usize, known: &Known<'_>, cost: i128, days: &mut Days) {
        let Known { usage, caller, facet, session_key } = *known;
        let text = |column: usize| batch.text(column, row);
        let micros = batch.start[row];
        let (day, day0) = days.of(micros);
        // One integer per line for the one per-line grouping: the facet and the day of the
        // month (every line of a batch lies in its billing period). Measured a third faster
        // to group by than the two columns.
        self.facet_day.append_value(facet * FACET_DAYS + day0 as i32);
        self.account.append_value(text(ACCOUNT));
        self.date.append_value(day);
        self.start.append_value(micros);
        self.line_item_type.append_value(text(LINE_TYPE));
        self.product_code.append_value(text(PRODUCT_CODE));
        self.usage_type.append_value(text(USAGE_TYPE));
        self.resource_id.append_value(text(RESOURCE_ID));
        let amount = batch.amount.value(row);
        self.amount.append_value(amount);
        let (dollars, fraction) = split_money(cost);
        self.cost_dollars.append_value(dollars);
        self.cost_fraction.append_value(fraction);
        self.platform.append_option(usage.platform.map(|p| p.as_str()));
        self.region.append_value(&usage.region);
        self.model.append_value(&usage.model);
        self.token_type.append_value(usage.token_type);
        self.tokens.append_value(tokens(amount, usage.per_unit));
        self.guardrail.append_value(usage.guardrail);
        self.anchor.append_value(&usage.anchor);
        self.principal_kind.append_value(caller.principal_kind.as_str());
        self.principal_account.append_value(&caller.principal_account);
        self.principal_name.append_value(&caller.principal_name);
        self.session_key.append_value(session_key);
        self.rows += 1;
    }

    fn finish(&mut self) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.account.finish()),
            Arc::new(self.date.finish()),
            Arc::new(self.start.finish()),
            Arc::new(self.line_item_type.finish()),
            Arc::new(self.product_code.finish()),
            Arc::new(self.usage_type.finish()),
            Arc::new(self.resource_id.finish()),
            Arc::new(self.amount.finish()),
            Arc::new(self.cost_dollars.finish()),
            Arc::new(self.cost_fraction.finish()),
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
            Arc::new(self.session_key.finish()),
            Arc::new(self.facet_day.finish()),
        ];
        self.rows = 0;
        RecordBatch::try_new(schema(), columns).expect("columns match the schema")
    }
}

/// The facets met so far, numbered from 1 in order of first appearance.
struct Facets {
    numbers: HashMap<String, i32>,
    /// The key of the line being numbered (reused: a lookup allocates nothing).
    key: String,
    facet: Int32Builder,
    account: StringBuilder,
    platform: StringBuilder,
    region: StringBuilder,
    model: StringBuilder,
    token_type: StringBuilder,
    guardrail: BooleanBuilder,
    anchor: StringBuilder,
    principal_kind: StringBuilder,
    principal_account: StringBuilder,
    principal_name: StringBuilder,
}

impl Facets {
    fn new() -> Self {
        Self {
            numbers: HashMap::new(),
            key: String::new(),
            facet: Int32Builder::new(),
            account: StringBuilder::new(),
            platform: StringBuilder::new(),
            region: StringBuilder::new(),
            model: StringBuilder::new(),
            token_type: StringBuilder::new(),
            guardrail: BooleanBuilder::new(),
            anchor: StringBuilder::new(),
            principal_kind: StringBuilder::new(),
            principal_account: StringBuilder::new(),
            principal_name: StringBuilder::new(),
        }
    }

    /// The facet number of an AI line (a new one the first time its facet is met); 0 for
    /// a line that is not AI spend.
    fn number(&mut self, account: &str, usage: &UsageFacts, caller: &CallerFacts) -> i32 {
        let Some(platform) = usage.platform else { return 0 };
        self.key.clear();
        // The unit separator cannot occur in CUR's identifiers, so keys cannot collide.
        let _ = write!(
            self.key,
            "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
            account,
            platform.as_str(),
            usage.region,
            usage.model,
            usage.token_type,
            usage.guardrail,
            usage.anchor,
            caller.principal_kind.as_str(),
            caller.principal_account,
            caller.principal_name,
        );
        if let Some(n) = self.numbers.get(self.key.as_str()) {
            return *n;
        }
        let n = i32::try_from(self.numbers.len() + 1).expect("fewer than 2^31 facets in a month");
        self.numbers.insert(self.key.clone(), n);
        self.facet.append_value(n);
        self.account.append_value(account);
        self.platform.append_value(platform.as_str());
        self.region.append_value(&usage.region);
        self.model.append_value(&usage.model);
        self.token_type.append_value(usage.token_type);
        self.guardrail.append_value(usage.guardrail);
        self.anchor.append_value(&usage.anchor);
        self.principal_kind.append_value(caller.principal_kind.as_str());
        self.principal_account.append_value(&caller.principal_account);
        self.principal_name.append_value(&caller.principal_name);
        n
    }

    fn finish(&mut self) -> RecordBatch {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.facet.finish()),
            Arc::new(self.account.finish()),
            Arc::new(self.platform.finish()),
            Arc::new(self.region.finish()),
            Arc::new(self.model.finish()),
            Arc::new(self.token_type.finish()),
            Arc::new(self.guardrail.finish()),
            Arc::new(self.anchor.finish()),
            Arc::new(self.principal_kind.finish()),
            Arc::new(self.principal_account.finish()),
            Arc::new(self.principal_name.finish()),
        ];
        RecordBatch::try_new(facets_schema(), columns).expect("columns match the schema")
    }
}

/// Why lines could not be written.
#[derive(Debug, thiserror::Error)]
pub enum LinesWriteError {
    /// The Parquet writer failed.
    #[error("writing Parquet lines: {0}")]
    Parquet(#[from] datafusion::parquet::errors::ParquetError),
    /// The spill file (lines waiting for their cluster's turn) could not be written or read.
    #[error("spilling lines to {path}: {reason}")]
    Spill {
        /// The spill file.
        path: String,
        /// What failed.
        reason: String,
    },
}

/// Clusters the AI lines are spread over by facet (non-AI lines have one of their own).
///
/// Summing by `facet_day` is a hash aggregation over up to facets × days groups (hundreds
/// of thousands in a large month): with the lines in delivery order every line lands on a
/// random group and the table does not fit in a core's cache. Written cluster by cluster,
/// a stretch of lines touches only its cluster's facets (a 64th of them), which stay in
/// cache: measured 2–3× faster to sum (BENCHMARKS.md), whatever order AWS wrote the rows in.
const CLUSTERS: i32 = 64;

/// Rows a cluster gathers in memory before they are spilled (memory: about this many rows
/// for each of the 65 clusters).
const SPILL_ROWS: usize = 4 * 1024;

/// The cluster of a facet: 0 for non-AI lines, so a query that skips them skips whole row
/// groups by their statistics; AI facets round-robin over the rest.
fn cluster(facet: i32) -> usize {
    if facet == 0 { 0 } else { 1 + ((facet - 1) % CLUSTERS) as usize }
}

/// Lines waiting for their cluster's turn: an Arrow IPC file of record batches, each
/// remembered under its cluster, read back cluster by cluster when the writer finishes.
struct Spill {
    file: Scratch,
    writer: Option<FileWriter<std::io::BufWriter<std::fs::File>>>,
    /// Per cluster, the indices of its batches in the file, in the order written.
    batches: Vec<Vec<usize>>,
    written: usize,
}

impl Spill {
    fn new() -> Result<Self, LinesWriteError> {
        let scratch = Scratch::new("lines.spill.arrow");
        let fail = |e: &dyn std::fmt::Display| spill_error(&scratch.0, e);
        let file = std::fs::File::create(&scratch.0).map_err(|e| fail(&e))?;
        // Uncompressed: LZ4 on the way out and back in was measured at a sixth of the
        // lines writer's time on columnar ingest (BENCHMARKS.md, issue 15 step 4); the
        // spill is a few hundred bytes a line on disk, read once and removed.
        let options = IpcWriteOptions::default();
        let writer = FileWriter::try_new_with_options(std::io::BufWriter::new(file), &schema(), options)
            .map_err(|e| fail(&e))?;
        Ok(Self { writer: Some(writer), batches: vec![Vec::new(); cluster(CLUSTERS) + 1], written: 0, file: scratch })
    }

    fn fail(&self, e: &dyn std::fmt::Display) -> LinesWriteError {
        spill_error(&self.file.0, e)
    }

    fn write(&mut self, cluster: usize, batch: &RecordBatch) -> Result<(), LinesWriteError> {
        let writer = self.writer.as_mut().expect("written only before it is drained");
        writer.write(batch).map_err(|e| self.fail(&e))?;
        self.batches[cluster].push(self.written);
        self.written += 1;
        Ok(())
    }

    /// Closes the file and hands every batch to `sink`, cluster by cluster.
    fn drain(
        &mut self,
        mut sink: impl FnMut(&RecordBatch) -> Result<(), LinesWriteError>,
    ) -> Result<(), LinesWriteError> {
        if let Some(mut writer) = self.writer.take() {
            writer.finish().map_err(|e| self.fail(&e))?;
        }
        let file = std::fs::File::open(&self.file.0).map_err(|e| self.fail(&e))?;
        let mut reader = FileReader::try_new(std::io::BufReader::new(file), None).map_err(|e| self.fail(&e))?;
        for index in self.batches.iter().flatten() {
            reader.set_index(*index).map_err(|e| self.fail(&e))?;
            let batch = reader
                .next()
                .ok_or_else(|| self.fail(&format!("batch {index} missing")))?
                .map_err(|e| self.fail(&e))?;
            sink(&batch)?;
        }
        Ok(())
    }
}

fn spill_error(path: &std::path::Path, e: &dyn std::fmt::Display) -> LinesWriteError {
    LinesWriteError::Spill { path: path.display().to_string(), reason: e.to_string() }
}

/// The lines' Parquet file written a row group at a time, each row group's columns
/// encoded on every core (encoding was a third of a large month's ingest on one core):
/// the same row groups, columns and bytes as `ArrowWriter` writes them.
struct ParallelLines<W: Write + Send> {
    file: SerializedFileWriter<W>,
    columns: ArrowRowGroupWriterFactory,
    /// The next row group's lines (fewer than `group_rows`).
    pending: Vec<RecordBatch>,
    rows: usize,
    groups: usize,
    /// Lines per row group ([`ROW_GROUP_ROWS`]; fewer in tests).
    group_rows: usize,
}

impl<W: Write + Send> ParallelLines<W> {
    fn new(out: W, group_rows: usize) -> Result<Self, LinesWriteError> {
        let (file, columns) =
            ArrowWriter::try_new(out, schema(), Some(writer_properties()))?.into_serialized_writer()?;
        Ok(Self { file, columns, pending: Vec::new(), rows: 0, groups: 0, group_rows })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), LinesWriteError> {
        let mut batch = batch.clone();
        while self.rows + batch.num_rows() >= self.group_rows {
            let take = self.group_rows - self.rows;
            self.pending.push(batch.slice(0, take));
            batch = batch.slice(take, batch.num_rows() - take);
            self.flush()?;
        }
        if batch.num_rows() > 0 {
            self.rows += batch.num_rows();
            self.pending.push(batch);
        }
        Ok(())
    }

    /// Encodes the pending lines as one row group, a column per task on every core.
    fn flush(&mut self) -> Result<(), LinesWriteError> {
        let writers = self.columns.create_column_writers(self.groups)?;
        let fields = schema();
        let columns = writers.len();
        let work = std::sync::Mutex::new(writers.into_iter().map(Some).collect::<Vec<_>>());
        let chunks = std::sync::Mutex::new((0..columns).map(|_| None).collect::<Vec<_>>());
        let next = std::sync::atomic::AtomicUsize::new(0);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()).min(columns);
        let encode = || -> Result<(), ParquetError> {
            loop {
                let column = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if column >= columns {
                    return Ok(());
                }
                let mut writer = work.lock().expect("no panic while held")[column].take().expect("taken once");
                for batch in &self.pending {
                    for leaf in compute_leaves(fields.field(column), batch.column(column))? {
                        writer.write(&leaf)?;
                    }
                }
                chunks.lock().expect("no panic while held")[column] = Some(writer.close()?);
            }
        };
        std::thread::scope(|threads| {
            let helpers: Vec<_> = (1..cores).map(|_| threads.spawn(encode)).collect();
            let mine = encode();
            helpers
                .into_iter()
                .map(|h| h.join().expect("encoding does not panic"))
                .chain([mine])
                .collect::<Result<(), _>>()
        })?;
        let mut group = self.file.next_row_group()?;
        for chunk in chunks.into_inner().expect("no panic while held") {
            chunk.expect("every column encoded").append_to_row_group(&mut group)?;
        }
        group.close()?;
        self.groups += 1;
        self.pending.clear();
        self.rows = 0;
        Ok(())
    }

    fn finish(mut self) -> Result<W, LinesWriteError> {
        if self.rows > 0 {
            self.flush()?;
        }
        Ok(self.file.into_inner()?)
    }
}

/// Streams lines into Parquet, clustered by facet (see `CLUSTERS`), and the facets into a
/// second Parquet file. Memory is bounded by the clusters' pending rows, the writer's row
/// group and the facets; the lines pass through a spill file on the way.
pub struct LinesWriter<W: Write + Send> {
    clusters: Vec<Columns>,
    facets: Facets,
    sessions: Sessions,
    known: KnownTexts,
    /// Scratch for the facts of a text met for the first time.
    line: CurLine,
    /// What each line of the batch being pushed is known to be (see [`Repeats`]).
    numbers: Vec<KnownNumbers>,
    days: Days,
    spill: Spill,
    lines_out: W,
    facets_out: W,
    sessions_out: W,
    rows: u64,
    spill_rows: usize,
    group_rows: usize,
    /// Per source, in [`AiSource::ALL`]'s order.
    sources: [SourceTotal; 4],
}

/// What an ingest recognised of one AI source: its lines and their dollars (units of
/// [`MONEY_SCALE`], exact), so a source silently dropped shows as nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceTotal {
    /// Where the dollars come from.
    pub source: AiSource,
    /// Lines.
    pub lines: u64,
    /// Their cost, in units of [`MONEY_SCALE`].
    pub cost: i128,
}

fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        // LZ4: decoding is the scan's cost; measured 20 % faster to query than zstd level 1
        // for 20 % more bytes.
        .set_compression(Compression::LZ4_RAW)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build()
}

impl<W: Write + Send> LinesWriter<W> {
    /// A writer of lines into `lines`, their facets into `facets` and their sessions into
    /// `sessions`.
    pub fn new(lines: W, facets: W, sessions: W) -> Result<Self, LinesWriteError> {
        Ok(Self {
            clusters: (0..=cluster(CLUSTERS)).map(|_| Columns::new()).collect(),
            facets: Facets::new(),
            sessions: Sessions::new(),
            known: KnownTexts::new(),
            line: CurLine::default(),
            numbers: Vec::new(),
            days: Days::new(),
            spill: Spill::new()?,
            lines_out: lines,
            facets_out: facets,
            sessions_out: sessions,
            rows: 0,
            spill_rows: SPILL_ROWS,
            group_rows: ROW_GROUP_ROWS,
            sources: AiSource::ALL.map(|source| SourceTotal { source, lines: 0, cost: 0 }),
        })
    }

    /// The AI lines and dollars recognised so far, per source (every source listed, in
    /// report order, zeros included).
    pub fn source_totals(&self) -> Vec<SourceTotal> {
        self.sources.to_vec()
    }

    /// Spills a cluster after `rows` rows (tests: many spills from few lines).
    #[cfg(test)]
    fn with_spill_rows(mut self, rows: usize) -> Self {
        self.spill_rows = rows;
        self
    }

    /// Writes row groups of `rows` lines (tests: many row groups from few lines).
    #[cfg(test)]
    fn with_group_rows(mut self, rows: usize) -> Self {
        self.group_rows = rows;
        self
    }

    /// Forgets the texts it has read after `texts` of either part (tests: forgetting often).
    #[cfg(test)]
    fn with_memo_limit(mut self, texts: usize) -> Self {
        self.known.limit = texts;
        self
    }

    /// Adds a line (as a batch of one: the same bytes as when it comes in a batch).
    pub fn push(&mut self, line: &CurLine) -> Result<(), LinesWriteError> {
        self.push_batch(&CurBatch::of_lines(std::slice::from_ref(line)))
    }

    /// Adds a checked batch's lines, in order, straight from its columns.
    pub fn push_batch(&mut self, batch: &CurBatch) -> Result<(), LinesWriteError> {
        self.known.bound();
        self.numbers.clear();
        for row in 0..batch.len() {
            // Texts met earlier in the batch have the numbers found then.
            let (usage, caller) = (batch.repeats.usage(row), batch.repeats.caller(row));
            let known =
                ((usage < row).then(|| self.numbers[usage].usage), (caller < row).then(|| self.numbers[caller].caller));
            let numbers = self.known.of(batch, row, known, &mut self.line, &mut self.facets, &mut self.sessions);
            self.numbers.push(numbers);
            let known = self.known.known(numbers);
            let cost = money(batch.cost.value(row));
            if let Some(source) = known.usage.source() {
                let total = &mut self.sources[source as usize];
                total.lines += 1;
                total.cost += cost;
            }
            let cluster = cluster(known.facet);
            let columns = &mut self.clusters[cluster];
            columns.push(batch, row, &known, cost, &mut self.days);
            self.rows += 1;
            if columns.rows >= self.spill_rows {
                self.spill.write(cluster, &columns.finish())?;
            }
        }
        Ok(())
    }

    /// Lines written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Writes the lines cluster by cluster, closes the three files and returns the outputs
    /// (lines, facets, sessions).
    pub fn finish(mut self) -> Result<(W, W, W), LinesWriteError> {
        for (cluster, columns) in self.clusters.iter_mut().enumerate() {
            if columns.rows > 0 {
                self.spill.write(cluster, &columns.finish())?;
            }
        }
        let mut lines = ParallelLines::new(self.lines_out, self.group_rows)?;
        self.spill.drain(|batch| lines.write(batch))?;
        let lines = lines.finish()?;
        let mut facets = ArrowWriter::try_new(self.facets_out, facets_schema(), Some(writer_properties()))?;
        facets.write(&self.facets.finish())?;
        let mut sessions = ArrowWriter::try_new(self.sessions_out, sessions_schema(), Some(writer_properties()))?;
        sessions.write(&self.sessions.finish())?;
        Ok((lines, facets.into_inner()?, sessions.into_inner()?))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{AsArray, Int32Array};
    use datafusion::arrow::datatypes::Int32Type;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use finops_cur::csv_lines::CurCsv;

    use super::*;

    const HEADER: &str = "bill_billing_entity,line_item_usage_account_id,line_item_line_item_type,line_item_usage_start_date,line_item_product_code,line_item_usage_type,line_item_operation,line_item_resource_id,line_item_usage_amount,line_item_unblended_cost,product_product_name,resource_tags,line_item_iam_principal";

    fn read(bytes: Vec<u8>) -> RecordBatch {
        let scratch = Scratch::new("test.parquet");
        std::fs::write(&scratch.0, bytes).unwrap();
        let file = std::fs::File::open(&scratch.0).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
        let batches: Vec<_> = reader.collect::<Result<_, _>>().unwrap();
        datafusion::arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
    }

    /// What identifies a line in the input and in the written lines alike.
    type LineKey = (i64, String, String, i64, i64);

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        #[test]
        fn lines_are_written_cluster_by_cluster_in_full_row_groups_and_none_is_lost_or_changed(
            seed in 0u64..1_000,
            rows in 1u64..2_500,
            spill_rows in 1usize..300,
            group_rows in 1usize..1_000,
        ) {
            let mut csv = Vec::new();
            let spec = finops_cur::synthetic::MonthSpec { period: "2026-11".into(), rows, seed, restatement: 0 };
            finops_cur::synthetic::write_month(&spec, &mut csv).unwrap();
            let mut expected: Vec<LineKey> = Vec::new();
            let mut writer = LinesWriter::new(Vec::new(), Vec::new(), Vec::new())
                .unwrap()
                .with_spill_rows(spill_rows)
                .with_group_rows(group_rows);
            for line in CurCsv::new("t.csv", csv.as_slice()).unwrap() {
                let line = line.unwrap();
                let (dollars, fraction) = split_money(money(line.unblended_cost));
                expected.push((line.usage_start.timestamp_micros(), line.usage_type.clone(), line.resource_id.clone(), dollars, fraction));
                writer.push(&line).unwrap();
            }
            let (lines, _, _) = writer.finish().unwrap();
            // Row groups of exactly `group_rows` lines, the last one short.
            let sizes: Vec<usize> = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(lines.clone()))
                .unwrap()
                .metadata()
                .row_groups()
                .iter()
                .map(|g| g.num_rows() as usize)
                .collect();
            proptest::prop_assert_eq!(sizes.iter().sum::<usize>() as u64, rows);
            proptest::prop_assert!(sizes[..sizes.len() - 1].iter().all(|n| *n == group_rows), "{:?}", sizes);
            proptest::prop_assert!(*sizes.last().unwrap() <= group_rows);
            let lines = read(lines);
            let facet_days = lines.column_by_name("facet_day").unwrap().as_primitive::<Int32Type>();
            let clusters: Vec<usize> = facet_days.values().iter().map(|fd| cluster(fd / FACET_DAYS)).collect();
            proptest::prop_assert!(clusters.is_sorted(), "clusters out of order: {:?}", clusters);
            let column = |name: &str| lines.column_by_name(name).unwrap().clone();
            let (start, usage, resource) = (column("usage_start"), column("usage_type"), column("resource_id"));
            let (dollars, fraction) = (column("cost_dollars"), column("cost_fraction"));
            let mut written: Vec<LineKey> = (0..lines.num_rows())
                .map(|i| {
                    (
                        start.as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>().value(i),
                        usage.as_string::<i32>().value(i).to_owned(),
                        resource.as_string::<i32>().value(i).to_owned(),
                        dollars.as_primitive::<datafusion::arrow::datatypes::Int64Type>().value(i),
                        fraction.as_primitive::<datafusion::arrow::datatypes::Int64Type>().value(i),
                    )
                })
                .collect();
            expected.sort();
            written.sort();
            proptest::prop_assert_eq!(written, expected);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]
        /// The memos are a cache: forgetting them every few texts writes the same lines,
        /// facets and sessions, byte for byte, as remembering everything; and lines pushed
        /// in batches of any size write the same bytes as lines pushed one at a time.
        #[test]
        fn forgetting_the_memos_or_batching_the_lines_changes_no_byte(
            seed in 0u64..1_000,
            rows in 1u64..3_000,
            limit in 1usize..40,
            batch_rows in 2usize..700,
        ) {
            let mut csv = Vec::new();
            let spec = finops_cur::synthetic::MonthSpec { period: "2026-11".into(), rows, seed, restatement: 0 };
            finops_cur::synthetic::write_month(&spec, &mut csv).unwrap();
            let lines: Vec<CurLine> = CurCsv::new("t.csv", csv.as_slice()).unwrap().map(Result::unwrap).collect();
            let write = |limit: Option<usize>, batch_rows: usize| {
                let mut writer = LinesWriter::new(Vec::new(), Vec::new(), Vec::new()).unwrap();
                if let Some(limit) = limit {
                    writer = writer.with_memo_limit(limit);
                }
                for batch in lines.chunks(batch_rows) {
                    match batch {
                        [line] => writer.push(line).unwrap(),
                        batch => writer.push_batch(&CurBatch::of_lines(batch)).unwrap(),
                    }
                }
                let sources = writer.source_totals();
                (writer.finish().unwrap(), sources)
            };
            let remembered = write(None, 1);
            proptest::prop_assert!(remembered == write(Some(limit), 1), "outputs differ with a memo limit of {}", limit);
            proptest::prop_assert!(
                remembered == write(Some(limit), batch_rows),
                "outputs differ in batches of {} with a memo limit of {}", batch_rows, limit
            );
        }
    }

    /// A line repeats an earlier one of its batch's usage (or caller) only when every field
    /// those facts are read from is equal: one field apart is another usage (or caller).
    #[test]
    fn a_line_repeats_an_earlier_usage_or_caller_only_when_every_field_read_is_equal() {
        let mut csv = Vec::new();
        let spec = finops_cur::synthetic::MonthSpec { period: "2026-11".into(), rows: 50, seed: 3, restatement: 0 };
        finops_cur::synthetic::write_month(&spec, &mut csv).unwrap();
        let base = CurCsv::new("t.csv", csv.as_slice()).unwrap().find_map(Result::ok).unwrap();
        let edits: [fn(&mut CurLine); 10] = [
            |l| l.usage_account_id = "999999999999".into(),
            |l| l.billing_entity.push('x'),
            |l| l.product_code.push('x'),
            |l| l.product_name.push('x'),
            |l| l.usage_type.push('x'),
            |l| l.operation.push('x'),
            |l| l.resource_id.push('x'),
            |l| l.resource_tags = r#"{"user:team":"x"}"#.into(),
            |l| l.iam_principal = Some(format!("{}x", l.iam_principal.clone().unwrap_or_default())),
            |l| l.tags = r#"{"principal:x":"y"}"#.into(),
        ];
        let mut lines = vec![base.clone()];
        for edit in edits {
            let mut line = base.clone();
            edit(&mut line);
            lines.push(line);
        }
        // What does not decide the facts: the amount, the cost, the day, the line type.
        let mut same = base.clone();
        (same.usage_amount, same.unblended_cost, same.line_item_type) = (7.0, 3.5, "Tax".into());
        same.usage_start += chrono::Duration::days(2);
        lines.extend([same, base.clone()]);
        let batch = CurBatch::of_lines(&lines);
        let usage: Vec<usize> = (0..lines.len()).map(|row| batch.repeats.usage(row)).collect();
        let caller: Vec<usize> = (0..lines.len()).map(|row| batch.repeats.caller(row)).collect();
        // The account is neither part's; each usage field is the usage's, each caller field the caller's.
        assert_eq!(usage, vec![0, 0, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0]);
        assert_eq!(caller, vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 10, 0, 0]);
    }

    proptest::proptest! {
        #[test]
        fn money_splits_into_dollars_and_a_fraction_that_recombine_exactly(raw in -(1i128 << 90)..(1i128 << 90)) {
            let (dollars, fraction) = split_money(raw);
            proptest::prop_assert!((0..MONEY_UNITS as i64).contains(&fraction));
            proptest::prop_assert_eq!(i128::from(dollars) * MONEY_UNITS + i128::from(fraction), raw);
        }

        /// The 64-bit path splits as 128-bit division does.
        #[test]
        fn money_of_any_line_splits_as_wide_division_does(raw in proptest::prelude::any::<i64>()) {
            let wide = i128::from(raw);
            let expected = (wide.div_euclid(MONEY_UNITS) as i64, wide.rem_euclid(MONEY_UNITS) as i64);
            proptest::prop_assert_eq!(split_money(wide), expected);
        }

        /// Remembered days give the calendar's answer, whatever the instants and their order.
        #[test]
        fn remembered_days_are_the_calendars(instants in proptest::collection::vec(-(1i64 << 55)..(1i64 << 55), 1..400)) {
            let mut days = Days::new();
            for micros in instants {
                let date = DateTime::from_timestamp_micros(micros).unwrap().date_naive();
                let expected = (date.num_days_from_ce() - 719_163, date.day0());
                proptest::prop_assert_eq!(days.of(micros), expected, "at {}", micros);
            }
        }
    }

    #[test]
    fn lines_of_one_facet_share_its_number_and_non_ai_lines_have_none() {
        let haiku = "AmazonBedrock,USE1-Claude3Haiku-input-tokens,InvokeModelInference,arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0,1000,0.25,Amazon Bedrock,";
        let caller = "arn:aws:sts::111122223333:assumed-role/app/s";
        let csv = [
            HEADER.to_owned(),
            // Same facet: another hour and another session of the same role.
            format!("AWS,111122223333,Usage,2026-11-03T10:00:00Z,{haiku},{caller}-1"),
            format!("AWS,111122223333,Usage,2026-11-03T17:00:00Z,{haiku},{caller}-2"),
            // Another day: the same facet (the day is the line's own); another caller: a new one.
            format!("AWS,111122223333,Usage,2026-11-04T10:00:00Z,{haiku},{caller}-1"),
            format!("AWS,111122223333,Usage,2026-11-03T10:00:00Z,{haiku},arn:aws:iam::111122223333:user/bob"),
            "AWS,111122223333,Usage,2026-11-03T10:00:00Z,AmazonEC2,USE1-BoxUsage:m5.large,RunInstances,,1,0.10,Amazon Elastic Compute Cloud,,".to_owned(),
        ]
        .join("\n");
        let mut writer = LinesWriter::new(Vec::new(), Vec::new(), Vec::new()).unwrap();
        for line in CurCsv::new("t.csv", csv.as_bytes()).unwrap() {
            writer.push(&line.unwrap()).unwrap();
        }
        let (lines, facets, sessions) = writer.finish().unwrap();
        let (lines, facets, sessions) = (read(lines), read(facets), read(sessions));
        let numbers = lines.column_by_name("facet_day").unwrap().as_primitive::<Int32Type>();
        // Facet × 32 + day of month − 1, non-AI lines first, then cluster by cluster: EC2;
        // the 3rd, the 3rd, the 4th; bob on the 3rd.
        assert_eq!(numbers, &Int32Array::from(vec![2, 32 + 2, 32 + 2, 32 + 3, 64 + 2]));
        assert_eq!(facets.num_rows(), 2);
        let names = facets.column_by_name("principal_name").unwrap().as_string::<i32>();
        assert_eq!((names.value(0), names.value(1)), ("app", "bob"));
        let kinds = facets.column_by_name("principal_kind").unwrap().as_string::<i32>();
        assert_eq!(kinds.value(1), "iam_user");
        // Sessions are numbered apart from facets: the role's two sessions are two pairs; a
        // user and a non-AI line have none (0).
        let keys = lines.column_by_name("session_key").unwrap().as_primitive::<Int32Type>();
        assert_eq!(keys, &Int32Array::from(vec![0, 1, 2, 1, 0]));
        let named = sessions.column_by_name("session").unwrap().as_string::<i32>();
        assert_eq!((sessions.num_rows(), named.value(0), named.value(1)), (2, "s-1", "s-2"));
    }
}
