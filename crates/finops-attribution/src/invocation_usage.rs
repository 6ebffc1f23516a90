//! Invocation logs as hourly usage, columnar (issue 13.1): a delivered file is decoded by
//! Arrow's JSON reader into record batches as it is decompressed (only the fields usage
//! needs are kept; the prompt and response bodies are tokenised, not stored), checked
//! column by column, and summed per hour × account × caller × `modelId` × Region by one
//! DataFusion aggregate. A file spanning weeks barely shrinks in that sum, so the rows
//! after it carry numbers for their accounts, callers, models and Regions: each distinct
//! value is copied, parsed and priced once, and the rows are ordered by the values' ranks.
//!
//! The row reader of `finops_cur::invocation_log` stays the definition of a valid file: a
//! file the columnar checks do not pass whole — a malformed record, a request id repeated,
//! a timestamp not in AWS's `YYYY-MM-DDTHH:MM:SSZ`, one JSON document rather than JSON
//! lines — is read by it instead, so the error is its precise one (file, line, field) and
//! an unusual but valid file gives the same usage. Both paths are tested to agree.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, Read};
use std::sync::Arc;

use chrono::{DateTime, DurationRound, NaiveDateTime, TimeZone, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray, StringBuilder, StructArray, TimestampSecondArray,
    UInt64Array, UInt64Builder,
};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::json::ReaderBuilder;
use datafusion::datasource::MemTable;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::prelude::SessionContext;
use finops_cur::invocation_log::{self, LogError, LogTokenType, OPERATIONS, model_of, priced_model_id};
use finops_cur::principal::Principal;
use finops_domain::governance_state::GovernanceState;
use finops_domain::pricing::{PriceTable, TokenKind};
use finops_domain::reconciliation::estimate_micro_usd;
use finops_domain::vocabulary::{ModelId, Region};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::AttributionError;

/// One hour of one caller's use of one model in one account and Region, priced.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HourlyUsage {
    /// The hour's start.
    pub hour: DateTime<Utc>,
    /// The account.
    pub account: String,
    /// The caller's ARN.
    pub principal_arn: String,
    /// The caller as attribution names it: the role (assumed role, or
    /// `AWSReservedSSO_{set}_{hex}`) or user name; empty when the ARN is not a principal.
    pub principal: String,
    /// The model behind the call ([`model_of`]).
    pub model: String,
    /// The Region called.
    pub region: String,
    /// Which tokens.
    pub token_type: LogTokenType,
    /// How many.
    pub tokens: u64,
    /// Their cost at the price snapshot, millionths of a dollar; `None` when it has no price.
    pub micro_usd: Option<u64>,
}

/// A file's usage.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogUsage {
    /// Invocations read (a repeated request id once).
    pub records: u64,
    /// Hourly usage, in key order.
    pub rows: Vec<HourlyUsage>,
    /// Whether the columnar path read it (the row reader did otherwise).
    pub columnar: bool,
}

impl LogUsage {
    /// The first and last hour with usage.
    pub fn hours(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let first = self.rows.iter().map(|r| r.hour).min()?;
        Some((first, self.rows.iter().map(|r| r.hour).max()?))
    }

    /// The priced estimate, millionths of a dollar.
    pub fn estimated_micro_usd(&self) -> u64 {
        self.rows.iter().filter_map(|r| r.micro_usd).sum()
    }

    /// Tokens the snapshot has no price for.
    pub fn unpriced_tokens(&self) -> u64 {
        self.rows.iter().filter(|r| r.micro_usd.is_none()).map(|r| r.tokens).sum()
    }
}

/// Where a log file's bytes are stored: `logs/{day}/{sha256}{ext}` (`.json`, `.json.gz`).
pub fn log_location(day: chrono::NaiveDate, hash: &str, ext: &str) -> ObjectPath {
    ObjectPath::from(format!("logs/{day}/{hash}{ext}"))
}

/// Where a log file's hourly usage is stored.
pub fn usage_location(day: chrono::NaiveDate, hash: &str) -> ObjectPath {
    ObjectPath::from(format!("logs/{day}/{hash}.usage-{}.parquet", finops_domain::invocation_logs::USAGE_LAYOUT))
}

/// A token count above this is left to the row reader (exact in `u64`): sums in the
/// aggregate are `i64`, and no invocation comes near it.
const COLUMNAR_TOKEN_LIMIT: i64 = 100_000_000_000;

/// The fields usage reads, as Arrow's JSON reader decodes them (everything else skipped).
fn record_schema() -> SchemaRef {
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    let count = |name: &str| Field::new(name, DataType::Int64, true);
    let object = |name: &str, fields: Vec<Field>| Field::new(name, DataType::Struct(fields.into()), true);
    Arc::new(Schema::new(vec![
        text("schemaType"),
        text("timestamp"),
        text("accountId"),
        object("identity", vec![text("arn")]),
        text("region"),
        text("requestId"),
        text("operation"),
        text("modelId"),
        object(
            "input",
            vec![count("inputTokenCount"), count("cacheReadInputTokenCount"), count("cacheWriteInputTokenCount")],
        ),
        object("output", vec![count("outputTokenCount")]),
    ]))
}

/// The decompressed text of a delivered file.
fn text_of(name: &str, bytes: &[u8]) -> Result<Vec<u8>, LogError> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes.to_vec());
    }
    let mut text = Vec::with_capacity(bytes.len() * 8);
    flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut text).map_err(|e| LogError {
        file: name.to_owned(),
        line: 0,
        field: "file".into(),
        reason: format!("is not readable gzip text: {e}"),
    })?;
    Ok(text)
}

/// Reads a delivered log file (`name` for errors) into priced hourly usage.
pub async fn read_log(name: &str, bytes: &[u8], prices: &PriceTable) -> Result<LogUsage, LogError> {
    // Decoded as it is decompressed: the text of a file is never whole in memory on the
    // columnar path (a 7 MB delivery is about 100 MB of JSON).
    let decoded = if bytes.starts_with(&[0x1f, 0x8b]) {
        columnar(std::io::BufReader::with_capacity(1 << 20, flate2::read::MultiGzDecoder::new(bytes)), prices).await
    } else {
        columnar(bytes, prices).await
    };
    if let Some(usage) = decoded {
        return Ok(usage);
    }
    // Anything the columnar checks did not pass whole: the row reader's answer, on the
    // whole text (decompressed again: this path is for the malformed and the unusual).
    by_rows(name, &text_of(name, bytes)?, prices)
}

/// The row path: the row reader's records, summed and priced as the columnar path does.
fn by_rows(name: &str, text: &[u8], prices: &PriceTable) -> Result<LogUsage, LogError> {
    let records = invocation_log::read_file(name, text)?;
    let mut groups: BTreeMap<Group, [u64; 4]> = BTreeMap::new();
    for r in &records {
        let hour = r.timestamp.duration_trunc(chrono::TimeDelta::hours(1)).unwrap_or(r.timestamp);
        let key = (hour, r.account.clone(), r.principal_arn.clone(), r.model_id.clone(), r.region.clone());
        let sums = groups.entry(key).or_default();
        for (sum, n) in
            sums.iter_mut().zip([r.input_tokens, r.output_tokens, r.cache_read_tokens, r.cache_write_tokens])
        {
            *sum += n;
        }
    }
    let groups = groups.iter().map(|((hour, account, arn, model_id, region), sums)| {
        (*hour, account.as_str(), arn.as_str(), model_id.as_str(), region.as_str(), *sums)
    });
    Ok(LogUsage { records: records.len() as u64, rows: priced(groups, prices), columnar: false })
}

/// Hour, account, caller ARN, `modelId` as called, Region.
type Group = (DateTime<Utc>, String, String, String, String);

/// The distinct values of one text column, numbered in order of first sight: a file's
/// usage repeats a few accounts, callers, models and Regions over thousands of rows, so
/// each is stored, parsed and compared once, and rows carry their numbers.
#[derive(Default)]
struct Distinct {
    numbers: HashMap<String, u32>,
    values: Vec<String>,
}

impl Distinct {
    fn number(&mut self, value: &str) -> u32 {
        if let Some(n) = self.numbers.get(value) {
            return *n;
        }
        let n = u32::try_from(self.values.len()).expect("fewer than 2^32 distinct values");
        self.numbers.insert(value.to_owned(), n);
        self.values.push(value.to_owned());
        n
    }

    /// Each number's place in the values' text order (so numbers sort as the text does).
    fn ranks(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.values.len() as u32).collect();
        order.sort_by(|a, b| self.values[*a as usize].cmp(&self.values[*b as usize]));
        let mut ranks = vec![0; order.len()];
        for (rank, n) in order.into_iter().enumerate() {
            ranks[n as usize] = rank as u32;
        }
        ranks
    }
}

/// Each group's tokens (input, output, cache read, cache write) as priced hourly usage per
/// model and token type, in key order: the `modelId` decides the price (a `global.`
/// profile has its own rate), the model behind it the row, so two groups of one model
/// through different profiles make one row.
fn priced<'a>(
    groups: impl Iterator<Item = (DateTime<Utc>, &'a str, &'a str, &'a str, &'a str, [u64; 4])>,
    prices: &PriceTable,
) -> Vec<HourlyUsage> {
    let (mut accounts, mut arns, mut model_ids, mut regions) =
        (Distinct::default(), Distinct::default(), Distinct::default(), Distinct::default());
    // Per `modelId`: the model behind it (numbered in `models`); per `modelId` and Region:
    // what the price snapshot is asked with (`None`: no price).
    let mut models = Distinct::default();
    let mut model_of_id: Vec<u32> = Vec::new();
    let mut priced_as: HashMap<(u32, u32), Option<(ModelId, Region)>> = HashMap::new();
    // Hour, account, caller ARN, model, Region (their numbers), token type.
    type RowKey = (i64, u32, u32, u32, u32, LogTokenType);
    let mut rows: HashMap<RowKey, (u64, Option<u64>)> = HashMap::new();
    for (hour, account, arn, model_id, region, sums) in groups {
        let (account, arn, region) = (accounts.number(account), arns.number(arn), regions.number(region));
        let id = model_ids.number(model_id);
        if id as usize == model_of_id.len() {
            model_of_id.push(models.number(&model_of(model_id)));
        }
        let asked = priced_as.entry((id, region)).or_insert_with(|| {
            let model = ModelId::parse(&priced_model_id(model_id)?).ok()?;
            Some((model, Region::parse(&regions.values[region as usize]).ok()?))
        });
        for (n, t) in sums.into_iter().zip(LogTokenType::ALL) {
            if n == 0 {
                continue;
            }
            let cost = asked.as_ref().and_then(|(model, region)| price(prices, model, region, t, n));
            let key = (hour.timestamp(), account, arn, model_of_id[id as usize], region, t);
            let slot = rows.entry(key).or_insert((0, Some(0)));
            slot.0 += n;
            slot.1 = match (slot.1, cost) {
                (Some(a), Some(b)) => Some(a + b),
                _ => None,
            };
        }
    }
    let names: Vec<String> = arns.values.iter().map(|arn| principal_name(arn)).collect();
    let ranks = (accounts.ranks(), arns.ranks(), models.ranks(), regions.ranks());
    let mut rows: Vec<_> = rows.into_iter().collect();
    rows.sort_unstable_by_key(|((hour, a, c, m, r, t), _)| {
        (*hour, ranks.0[*a as usize], ranks.1[*c as usize], ranks.2[*m as usize], ranks.3[*r as usize], *t)
    });
    rows.into_iter()
        .map(|((hour, a, c, m, r, token_type), (tokens, micro_usd))| HourlyUsage {
            hour: DateTime::from_timestamp(hour, 0).unwrap_or_default(),
            account: accounts.values[a as usize].clone(),
            principal_arn: arns.values[c as usize].clone(),
            principal: names[c as usize].clone(),
            model: models.values[m as usize].clone(),
            region: regions.values[r as usize].clone(),
            token_type,
            tokens,
            micro_usd,
        })
        .collect()
}

/// `YYYY-MM-DDTHH` as the hour's start.
fn hour_of(text: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(&format!("{text}:00:00"), "%Y-%m-%dT%H:%M:%S").ok()?;
    Some(Utc.from_utc_datetime(&naive))
}

/// The caller as attribution names it.
fn principal_name(arn: &str) -> String {
    match Principal::parse(arn) {
        Ok(Some(p @ (Principal::AssumedRole { .. } | Principal::IdentityCenter { .. }))) => {
            p.role_name().unwrap_or_default()
        }
        Ok(Some(Principal::IamUser { name, .. } | Principal::FederatedUser { name, .. })) => name,
        Ok(Some(Principal::Root { .. })) => "root".to_owned(),
        _ => String::new(),
    }
}

fn price(prices: &PriceTable, model: &ModelId, region: &Region, t: LogTokenType, tokens: u64) -> Option<u64> {
    let kind = match t {
        LogTokenType::Input => TokenKind::Input,
        LogTokenType::Output => TokenKind::Output,
        LogTokenType::CacheRead => TokenKind::CacheRead,
        LogTokenType::CacheWrite => TokenKind::CacheWrite,
    };
    u64::try_from(estimate_micro_usd(prices, model, region, kind, tokens).ok()?).ok()
}

/// The columnar path: `None` when the file is not one it passes whole.
async fn columnar(mut text: impl BufRead, prices: &PriceTable) -> Option<LogUsage> {
    // JSON lines only: one document (an array) is the row reader's.
    loop {
        let buffered = text.fill_buf().ok()?;
        match buffered.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(at) if buffered[at] == b'{' => break,
            Some(_) => return None,
            None if buffered.is_empty() => return None,
            None => {
                let n = buffered.len();
                text.consume(n);
            }
        }
    }
    let reader = ReaderBuilder::new(record_schema()).with_batch_size(64 * 1024).build(text).ok()?;
    let mut flat = Vec::new();
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut records = 0u64;
    for batch in reader {
        let batch = flatten(&batch.ok()?)?;
        let ids = batch.column(4).as_string::<i32>();
        for id in ids.iter() {
            // Checked present by `flatten`; a repeat makes the file the row reader's.
            if !seen.insert(id?.as_bytes().to_vec()) {
                return None;
            }
        }
        records += batch.num_rows() as u64;
        flat.push(batch);
    }
    if records == 0 {
        return None;
    }
    let schema = flat[0].schema();
    let ctx = SessionContext::new();
    ctx.register_table("invocations", Arc::new(MemTable::try_new(schema, vec![flat]).ok()?)).ok()?;
    let summed = ctx
        .sql(
            "SELECT substr(ts, 1, 13) AS hour, account, arn, model_id, region, \
               sum(input) AS input, sum(output) AS output, \
               sum(cache_read) AS cache_read, sum(cache_write) AS cache_write \
             FROM invocations GROUP BY 1, 2, 3, 4, 5",
        )
        .await
        .ok()?
        .collect()
        .await
        .ok()?;
    // One row per hour × account × caller × `modelId` × Region — about as many as records
    // when a file spans weeks — read in place (each distinct hour parsed once).
    let mut hours: HashMap<&str, DateTime<Utc>> = HashMap::new();
    let mut groups = Vec::new();
    for batch in &summed {
        let text = |i: usize| batch.column(i).as_string::<i32>();
        let (hour, account, arn, model_id, region) = (text(0), text(1), text(2), text(3), text(4));
        for i in 0..batch.num_rows() {
            let mut sums = [0u64; 4];
            for (k, sum) in sums.iter_mut().enumerate() {
                let tokens = batch.column(5 + k).as_primitive::<Int64Type>();
                *sum = if tokens.is_null(i) { 0 } else { u64::try_from(tokens.value(i)).ok()? };
            }
            let hour = match hours.get(hour.value(i)) {
                Some(at) => *at,
                None => *hours.entry(hour.value(i)).or_insert(hour_of(hour.value(i))?),
            };
            groups.push((hour, account.value(i), arn.value(i), model_id.value(i), region.value(i), sums));
        }
    }
    Some(LogUsage { records, rows: priced(groups.into_iter(), prices), columnar: true })
}

/// The decoded batch as flat columns — `ts, account, arn, region, request_id, model_id,
/// input, output, cache_read, cache_write` — once every column passes the checks the row
/// reader makes; `None` otherwise.
fn flatten(batch: &RecordBatch) -> Option<RecordBatch> {
    let text = |i: usize| batch.column(i).as_string::<i32>();
    let child = |i: usize, j: usize| -> (&StructArray, ArrayRef) {
        let parent = batch.column(i).as_struct();
        (parent, parent.column(j).clone())
    };
    let (schema_type, ts, account, region, request_id, operation, model_id) =
        (text(0), text(1), text(2), text(4), text(5), text(6), text(7));
    let (identity, arn) = child(3, 0);
    let (input, input_tokens) = child(8, 0);
    let (_, cache_read) = child(8, 1);
    let (_, cache_write) = child(8, 2);
    let (output, output_tokens) = child(9, 0);
    let arn = arn.as_string::<i32>().clone();
    let counts = |a: &ArrayRef| a.as_primitive::<Int64Type>().clone();
    let (input_tokens, output_tokens, cache_read, cache_write) =
        (counts(&input_tokens), counts(&output_tokens), counts(&cache_read), counts(&cache_write));
    let trimmed = |s: &str| !s.is_empty() && s.trim() == s;
    let count_ok = |a: &Int64Array, parent: &StructArray, i: usize, required: bool| {
        if parent.is_null(i) || a.is_null(i) { !required } else { (0..=COLUMNAR_TOKEN_LIMIT).contains(&a.value(i)) }
    };
    for i in 0..batch.num_rows() {
        let stamp = ts.is_valid(i).then(|| ts.value(i).as_bytes())?;
        let stamp_ok = stamp.len() == 20
            && stamp.iter().enumerate().all(|(k, b)| match k {
                4 | 7 => *b == b'-',
                10 => *b == b'T',
                13 | 16 => *b == b':',
                19 => *b == b'Z',
                _ => b.is_ascii_digit(),
            });
        let ok = stamp_ok
            && (schema_type.is_null(i) || schema_type.value(i) == "ModelInvocationLog")
            && account.is_valid(i)
            && account.value(i).len() == 12
            && account.value(i).bytes().all(|b| b.is_ascii_digit())
            && !identity.is_null(i)
            && arn.is_valid(i)
            && trimmed(arn.value(i))
            && arn.value(i).starts_with("arn:")
            && region.is_valid(i)
            && trimmed(region.value(i))
            && request_id.is_valid(i)
            && trimmed(request_id.value(i))
            && operation.is_valid(i)
            && OPERATIONS.contains(&operation.value(i))
            && model_id.is_valid(i)
            && trimmed(model_id.value(i))
            && count_ok(&input_tokens, input, i, true)
            && count_ok(&output_tokens, output, i, true)
            && count_ok(&cache_read, input, i, false)
            && count_ok(&cache_write, input, i, false);
        if !ok {
            return None;
        }
    }
    let column = |name: &str, data_type: DataType| Field::new(name, data_type, true);
    let schema = Schema::new(vec![
        column("ts", DataType::Utf8),
        column("account", DataType::Utf8),
        column("arn", DataType::Utf8),
        column("region", DataType::Utf8),
        column("request_id", DataType::Utf8),
        column("model_id", DataType::Utf8),
        column("input", DataType::Int64),
        column("output", DataType::Int64),
        column("cache_read", DataType::Int64),
        column("cache_write", DataType::Int64),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            batch.column(1).clone(),
            batch.column(2).clone(),
            Arc::new(arn),
            batch.column(4).clone(),
            batch.column(5).clone(),
            batch.column(7).clone(),
            Arc::new(input_tokens),
            Arc::new(output_tokens),
            Arc::new(cache_read),
            Arc::new(cache_write),
        ],
    )
    .ok()
}

fn usage_schema() -> SchemaRef {
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        Field::new("hour", DataType::Timestamp(TimeUnit::Second, Some("UTC".into())), false),
        text("account"),
        text("principal_arn"),
        text("principal"),
        text("model"),
        text("region"),
        text("token_type"),
        Field::new("tokens", DataType::UInt64, false),
        Field::new("micro_usd", DataType::UInt64, true),
    ]))
}

/// Hourly usage as Parquet (what is stored beside the file).
pub fn usage_parquet(rows: &[HourlyUsage]) -> Result<Vec<u8>, AttributionError> {
    let text = |f: &dyn Fn(&HourlyUsage) -> &str| {
        let mut b = StringBuilder::new();
        rows.iter().for_each(|r| b.append_value(f(r)));
        Arc::new(b.finish()) as ArrayRef
    };
    let mut costs = UInt64Builder::new();
    rows.iter().for_each(|r| costs.append_option(r.micro_usd));
    let batch = RecordBatch::try_new(
        usage_schema(),
        vec![
            Arc::new(
                TimestampSecondArray::from(rows.iter().map(|r| r.hour.timestamp()).collect::<Vec<_>>())
                    .with_timezone("UTC"),
            ),
            text(&|r| &r.account),
            text(&|r| &r.principal_arn),
            text(&|r| &r.principal),
            text(&|r| &r.model),
            text(&|r| &r.region),
            text(&|r| r.token_type.as_str()),
            Arc::new(UInt64Array::from(rows.iter().map(|r| r.tokens).collect::<Vec<_>>())),
            Arc::new(costs.finish()),
        ],
    )
    .map_err(|e| AttributionError::Usage(e.to_string()))?;
    let mut out = Vec::new();
    let mut writer =
        ArrowWriter::try_new(&mut out, usage_schema(), None).map_err(|e| AttributionError::Usage(e.to_string()))?;
    writer.write(&batch).map_err(|e| AttributionError::Usage(e.to_string()))?;
    writer.close().map_err(|e| AttributionError::Usage(e.to_string()))?;
    Ok(out)
}

/// Hourly usage read back from its Parquet form.
pub fn usage_from_parquet(bytes: bytes::Bytes) -> Result<Vec<HourlyUsage>, AttributionError> {
    let bad = |e: &dyn std::fmt::Display| AttributionError::Usage(format!("stored hourly usage: {e}"));
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| bad(&e))?.build().map_err(|e| bad(&e))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| bad(&e))?;
        let text = |i: usize| -> &StringArray { batch.column(i).as_string::<i32>() };
        let hours = batch.column(0).as_any().downcast_ref::<TimestampSecondArray>().ok_or_else(|| bad(&"hour"))?;
        let tokens = batch.column(7).as_any().downcast_ref::<UInt64Array>().ok_or_else(|| bad(&"tokens"))?;
        let costs = batch.column(8).as_any().downcast_ref::<UInt64Array>().ok_or_else(|| bad(&"micro_usd"))?;
        for i in 0..batch.num_rows() {
            out.push(HourlyUsage {
                hour: DateTime::from_timestamp(hours.value(i), 0).ok_or_else(|| bad(&"hour"))?,
                account: text(1).value(i).to_owned(),
                principal_arn: text(2).value(i).to_owned(),
                principal: text(3).value(i).to_owned(),
                model: text(4).value(i).to_owned(),
                region: text(5).value(i).to_owned(),
                token_type: LogTokenType::parse(text(6).value(i)).ok_or_else(|| bad(&"token_type"))?,
                tokens: tokens.value(i),
                micro_usd: costs.is_valid(i).then(|| costs.value(i)),
            });
        }
    }
    Ok(out)
}

/// The log files recorded at or before `instant` (all when `None`) with hours from `since`
/// (inclusive) to `until` (exclusive): their hourly usage's locations.
pub fn usage_locations(
    state: &GovernanceState,
    instant: Option<DateTime<Utc>>,
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
) -> Vec<String> {
    state
        .invocation_logs
        .values()
        .flat_map(|d| d.files.iter())
        .filter(|(f, at)| instant.is_none_or(|i| *at <= i) && f.last_hour >= since)
        .filter(|(f, _)| until.is_none_or(|u| f.first_hour < u))
        .map(|(f, _)| f.usage_location.clone())
        .collect()
}

/// Millionths of a dollar in whole cents, rounded half up.
pub fn micro_usd_cents(micro_usd: u64) -> i64 {
    i64::try_from(micro_usd.saturating_add(5_000) / 10_000).unwrap_or(i64::MAX)
}

/// The hourly usage stored at `locations`, in one list.
pub async fn read_usage(objects: &dyn ObjectStore, locations: &[String]) -> Result<Vec<HourlyUsage>, AttributionError> {
    let mut out = Vec::new();
    for location in locations {
        let bytes = objects
            .get(&ObjectPath::from(location.as_str()))
            .await
            .map_err(|e| AttributionError::Usage(format!("{location}: {e}")))?
            .bytes()
            .await
            .map_err(|e| AttributionError::Usage(format!("{location}: {e}")))?;
        out.extend(usage_from_parquet(bytes)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use finops_cur::synthetic::{Incident, MonthSpec, write_incident, write_invocation_logs, write_month};
    use proptest::prelude::*;

    /// A generated month's logs, with a runaway role on the 12th.
    fn logs(rows: u64) -> Vec<u8> {
        let mut cur = Vec::new();
        write_month(&MonthSpec { period: "2026-11".into(), rows, seed: 7, restatement: 0 }, &mut cur).unwrap();
        let incident = Incident {
            period: "2026-11".into(),
            account: "111122223333".into(),
            role: "finops-claims-triage-4c2e".into(),
            day: 12,
            hours: 9..12,
            thousands_per_hour: 400_000.0,
        };
        write_incident(&incident, &mut cur).unwrap();
        let mut out = Vec::new();
        write_invocation_logs(&cur, &mut out).unwrap();
        out
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut out = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        out.write_all(bytes).unwrap();
        out.finish().unwrap()
    }

    #[tokio::test]
    async fn the_columnar_path_and_the_row_reader_agree_on_a_generated_month() {
        let prices = PriceTable::shipped();
        let text = logs(3_000);
        let columnar = read_log("m.json", &text, &prices).await.unwrap();
        assert!(columnar.columnar, "AWS's shape takes the columnar path");
        let rows = by_rows("m.json", &text, &prices).unwrap();
        assert_eq!((columnar.records, &columnar.rows), (rows.records, &rows.rows));
        assert_eq!(read_log("m.json.gz", &gzip(&text), &prices).await.unwrap().rows, rows.rows);
        // The runaway hours are there, priced at the snapshot's Claude 3 Haiku input rate
        // ($0.25 per million): 400 M tokens an hour, $100.
        let runaway: Vec<&HourlyUsage> =
            columnar.rows.iter().filter(|r| r.principal == "finops-claims-triage-4c2e").collect();
        assert_eq!(runaway.len(), 3);
        assert!(runaway.iter().all(|r| r.tokens == 400_000_000 && r.micro_usd == Some(100_000_000)), "{runaway:?}");
        assert_eq!(runaway[0].hour.to_rfc3339(), "2026-11-12T09:00:00+00:00");
        assert!(columnar.estimated_micro_usd() > 300_000_000);
    }

    #[tokio::test]
    async fn a_malformed_record_is_named_by_file_line_and_field() {
        let prices = PriceTable::shipped();
        let text = String::from_utf8(logs(200)).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines[4] = lines[4].replacen("\"accountId\":\"", "\"accountId\":\"x", 1);
        let e = read_log("logs/a.json.gz", &gzip(lines.join("\n").as_bytes()), &prices).await.unwrap_err();
        assert_eq!((e.file.as_str(), e.line, e.field.as_str()), ("logs/a.json.gz", 5, "accountId"));
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines[9] = lines[9].replacen("\"inputTokenCount\":", "\"inputTokenCount\":-1", 1);
        let e = read_log("b.json", lines.join("\n").as_bytes(), &prices).await.unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (10, "input.inputTokenCount"));
        let e = read_log("c.json.gz", &gzip(text.as_bytes())[..40], &prices).await.unwrap_err();
        assert_eq!(e.field, "file", "a truncated gzip is refused whole");
    }

    #[tokio::test]
    async fn a_repeated_request_counts_once_and_an_unpriced_model_is_counted_not_priced() {
        let prices = PriceTable::shipped();
        let text = String::from_utf8(logs(200)).unwrap();
        let first = text.lines().next().unwrap();
        let once = read_log("a.json", text.as_bytes(), &prices).await.unwrap();
        let twice = read_log("a.json", format!("{first}\n{text}").as_bytes(), &prices).await.unwrap();
        assert!(!twice.columnar);
        assert_eq!((twice.records, &twice.rows), (once.records, &once.rows));
        let profile = r#"{"schemaType":"ModelInvocationLog","timestamp":"2026-11-03T10:01:02Z","accountId":"111122223333","identity":{"arn":"arn:aws:sts::111122223333:assumed-role/app/w"},"region":"us-east-1","requestId":"r1","operation":"InvokeModel","modelId":"arn:aws:bedrock:us-east-1:111122223333:application-inference-profile/abc","input":{"inputTokenCount":1000},"output":{"outputTokenCount":10}}"#;
        let usage = read_log("p.json", profile.as_bytes(), &prices).await.unwrap();
        assert!(usage.columnar);
        assert_eq!((usage.unpriced_tokens(), usage.estimated_micro_usd()), (1_010, 0));
        assert_eq!(usage.rows[0].model, "application-inference-profile/abc");
        assert_eq!(usage.rows[0].principal, "app");
    }

    #[tokio::test]
    async fn stored_usage_reads_back_as_written() {
        let usage = read_log("m.json", &logs(500), &PriceTable::shipped()).await.unwrap();
        let back = usage_from_parquet(bytes::Bytes::from(usage_parquet(&usage.rows).unwrap())).unwrap();
        assert_eq!(back, usage.rows);
    }

    const RECORD: &str = r#"{"schemaType":"ModelInvocationLog","timestamp":"2026-11-03T1H:MM:02Z","accountId":"111122223333","identity":{"arn":"arn:aws:sts::111122223333:assumed-role/ROLE/w"},"region":"us-east-1","requestId":"ID","operation":"Converse","modelId":"MODEL","input":{"inputTokenCount":IN,"cacheReadInputTokenCount":CR},"output":{"outputTokenCount":OUT}}"#;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        // Whatever the mix of hours, callers, models and counts, the columnar fold is the
        // row reader's.
        #[test]
        fn both_paths_sum_and_price_alike(records in proptest::collection::vec(
            (0u8..3, 0u8..60, 0usize..3, 0usize..3, 0u64..5_000_000, 0u64..5_000_000, 0u64..2_000), 1..40)
        ) {
            let models = ["anthropic.claude-3-haiku-20240307-v1:0", "us.anthropic.claude-3-5-haiku-20241022-v1:0", "some.unknown-model"];
            let text: Vec<String> = records.iter().enumerate().map(|(n, (h, m, role, model, i, o, cr))| {
                RECORD.replace("1H", &format!("1{h}")).replace("MM", &format!("{m:02}"))
                    .replace("ROLE", &format!("role{role}")).replace("ID", &format!("id{n}"))
                    .replace("MODEL", models[*model]).replace("IN", &i.to_string())
                    .replace("OUT", &o.to_string()).replace("CR", &cr.to_string())
            }).collect();
            let text = text.join("\n");
            let prices = PriceTable::shipped();
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let columnar = rt.block_on(read_log("p.json", text.as_bytes(), &prices)).unwrap();
            prop_assert!(columnar.columnar);
            prop_assert_eq!(columnar, LogUsage { columnar: true, ..by_rows("p.json", text.as_bytes(), &prices).unwrap() });
        }

        // The rows are the records' tokens summed per hour, caller, model (a model called
        // directly and through a `us.` profile is one model) and token type, each key once,
        // in key order; a row is priced when the snapshot prices it.
        #[test]
        fn rows_are_the_records_summed_once_per_key_in_key_order(records in proptest::collection::vec(
            (0u8..3, 0usize..4, 0usize..3, 0u64..5_000_000, 0u64..5_000_000), 1..60)
        ) {
            let models = ["anthropic.claude-3-5-haiku-20241022-v1:0", "us.anthropic.claude-3-5-haiku-20241022-v1:0", "some.unknown-model"];
            let mut expected: BTreeMap<(String, String, String, &str), u64> = BTreeMap::new();
            let text: Vec<String> = records.iter().enumerate().map(|(n, (h, role, model, i, o))| {
                let hour = format!("2026-11-03T1{h}:00:00+00:00");
                let model_name = model_of(models[*model]);
                for (kind, tokens) in [("input", *i), ("output", *o)] {
                    if tokens > 0 {
                        *expected.entry((hour.clone(), format!("role{role}"), model_name.clone(), kind)).or_default() += tokens;
                    }
                }
                RECORD.replace("1H", &format!("1{h}")).replace("MM", "07")
                    .replace("ROLE", &format!("role{role}")).replace("ID", &format!("id{n}"))
                    .replace("MODEL", models[*model]).replace("IN", &i.to_string())
                    .replace("OUT", &o.to_string()).replace("CR", "0")
            }).collect();
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let usage = rt.block_on(read_log("k.json", text.join("\n").as_bytes(), &PriceTable::shipped())).unwrap();
            let keys: Vec<_> = usage.rows.iter()
                .map(|r| (r.hour, r.account.clone(), r.principal_arn.clone(), r.model.clone(), r.region.clone(), r.token_type))
                .collect();
            prop_assert!(keys.windows(2).all(|w| w[0] < w[1]), "strictly in key order: {:?}", keys);
            let got: BTreeMap<(String, String, String, &str), u64> = usage.rows.iter()
                .map(|r| ((r.hour.to_rfc3339(), r.principal.clone(), r.model.clone(), r.token_type.as_str()), r.tokens))
                .collect();
            prop_assert_eq!(got, expected);
            for row in &usage.rows {
                prop_assert_eq!(row.micro_usd.is_some(), row.model != "some.unknown-model", "{:?}", row);
            }
        }
    }
}
