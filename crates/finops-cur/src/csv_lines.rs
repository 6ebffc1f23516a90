//! CUR CSV (plain or gzip) read line by line into typed [`CurLine`]s, with the schema
//! checked first and every bad value named by file, row, column and value.
//!
//! Both header styles are accepted: CUR 2.0's `line_item_usage_type` and legacy CUR's
//! `lineItem/UsageType` (normalised to the CUR 2.0 name). Reading is streaming: one record
//! in memory at a time. A missing `line_item_iam_principal` column is not an error: the
//! export simply lacks caller identity, which [`CurCsv::caller_identity`] reports.

use std::collections::BTreeMap;
use std::io::Read;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

/// A CUR line, the fields attribution needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CurLine {
    /// `line_item_usage_account_id` (12 digits, leading zeros kept).
    pub usage_account_id: String,
    /// `line_item_line_item_type` (Usage, Tax, Credit…).
    pub line_item_type: String,
    /// `line_item_usage_start_date`.
    pub usage_start: DateTime<Utc>,
    /// `line_item_product_code`.
    pub product_code: String,
    /// `line_item_usage_type`.
    pub usage_type: String,
    /// `line_item_operation` (may be empty).
    pub operation: String,
    /// `line_item_resource_id` (empty when absent).
    pub resource_id: String,
    /// `line_item_usage_amount`.
    pub usage_amount: f64,
    /// `line_item_unblended_cost`.
    pub unblended_cost: f64,
    /// `bill_billing_entity` (AWS, AWS Marketplace), empty when absent.
    pub billing_entity: String,
    /// `product_product_name` (or the legacy `product/ProductName`), empty when absent.
    pub product_name: String,
    /// `line_item_iam_principal`: `None` when the export has no such column.
    pub iam_principal: Option<String>,
    /// `resource_tags` as delivered (a JSON object in CSV exports; empty when absent).
    pub resource_tags: String,
    /// CUR 2.0's `tags` map as delivered (a JSON object; empty when absent): the caller's
    /// IAM principal tags under `iamPrincipal/`, user attributes, account tags.
    pub tags: String,
}

/// Whether the export carries caller identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallerIdentity {
    /// The `line_item_iam_principal` column is present.
    Present,
    /// It is absent: AI lines of this batch are "Attribution Not Enabled".
    Absent,
}

/// A bad input, named precisely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurCsvError {
    /// A required column is missing from the header.
    #[error("{file}: missing required column `{column}` (CUR 2.0 name; legacy `{legacy}` is accepted too)")]
    MissingColumn {
        /// The file.
        file: String,
        /// The column.
        column: &'static str,
        /// Its legacy CUR name.
        legacy: &'static str,
    },
    /// A value longer than its column may be (the value is shown cut short).
    #[error("{file}: row {row}, column `{column}`: a value of {bytes} bytes (`{start}…`); at most {limit} bytes")]
    TooLong {
        /// The file.
        file: String,
        /// The 1-based data row.
        row: u64,
        /// The column.
        column: &'static str,
        /// Its length.
        bytes: usize,
        /// Its first characters.
        start: String,
        /// The column's limit.
        limit: usize,
    },
    /// A value of the wrong type or shape.
    #[error("{file}: row {row}, column `{column}`: `{value}` {reason}")]
    BadValue {
        /// The file.
        file: String,
        /// The 1-based data row (the header is row 0).
        row: u64,
        /// The column.
        column: &'static str,
        /// The value as found.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A bad value of a Parquet delivery, and the row group it is in.
    #[error("{error} (Parquet row group {row_group})")]
    InRowGroup {
        /// The row group (from 0, as Parquet tools number them).
        row_group: usize,
        /// The value and where it is (the row counted from the file's first).
        error: Box<CurCsvError>,
    },
    /// The file is not readable CSV (or not gzip when it says so).
    #[error("{file}: unreadable CSV at row {row}: {reason}")]
    Unreadable {
        /// The file.
        file: String,
        /// The row where reading failed.
        row: u64,
        /// The reader's complaint.
        reason: String,
    },
}

/// Required columns: (CUR 2.0 name, legacy name).
const REQUIRED: [(&str, &str); 7] = [
    ("line_item_usage_account_id", "lineItem/UsageAccountId"),
    ("line_item_line_item_type", "lineItem/LineItemType"),
    ("line_item_usage_start_date", "lineItem/UsageStartDate"),
    ("line_item_product_code", "lineItem/ProductCode"),
    ("line_item_usage_type", "lineItem/UsageType"),
    ("line_item_usage_amount", "lineItem/UsageAmount"),
    ("line_item_unblended_cost", "lineItem/UnblendedCost"),
];

/// The longest value each text column may hold, in bytes. AWS's own limits are far below
/// (an ARN is at most 2 048 characters, a usage type a few dozen); the bounds keep a
/// corrupt or hostile file from turning one cell into megabytes of stored lines.
pub const FIELD_LIMITS: [(&str, usize); 11] = [
    ("line_item_usage_account_id", 64),
    ("line_item_line_item_type", 64),
    ("line_item_product_code", 128),
    ("line_item_usage_type", 256),
    ("line_item_operation", 256),
    ("line_item_resource_id", 2_048),
    ("bill_billing_entity", 128),
    ("product_product_name", 512),
    ("line_item_iam_principal", 2_048),
    ("resource_tags", 65_536),
    ("tags", 65_536),
];

/// The limit of CUR 2.0's `product` map (JSON text).
pub const PRODUCT_MAP_LIMIT: usize = 65_536;

/// Line types that are consumption or fees: a negative cost or usage amount on them is a
/// sign error. Credits, refunds, discounts, Savings Plan negations and tax adjustments may
/// be negative, and any type not listed here is taken as delivered.
pub const NEVER_NEGATIVE: [&str; 7] = [
    "Usage",
    "DiscountedUsage",
    "SavingsPlanCoveredUsage",
    "Fee",
    "RIFee",
    "SavingsPlanRecurringFee",
    "SavingsPlanUpfrontFee",
];

/// Turns a legacy `category/CamelName` header into the CUR 2.0 `category_snake_name`.
pub fn normalise_column(name: &str) -> String {
    let Some((category, field)) = name.trim().split_once('/') else { return name.trim().to_owned() };
    let mut out = String::new();
    for (i, part) in [category, field].iter().enumerate() {
        if i > 0 {
            out.push('_');
        }
        for (j, c) in part.chars().enumerate() {
            if c.is_ascii_uppercase() {
                if j > 0 {
                    out.push('_');
                }
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
    }
    out
}

/// Where each field sits in a record, resolved once from the header.
#[derive(Debug, Clone, Copy)]
struct Layout {
    account: usize,
    line_item_type: usize,
    start: usize,
    product_code: usize,
    usage_type: usize,
    amount: usize,
    cost: usize,
    operation: Option<usize>,
    resource_id: Option<usize>,
    billing_entity: Option<usize>,
    product_name: Option<usize>,
    /// CUR 2.0's `product` map (JSON text in CSV; Parquet maps arrive as JSON too).
    product: Option<usize>,
    principal: Option<usize>,
    resource_tags: Option<usize>,
    tags: Option<usize>,
}

/// A CUR CSV being read.
pub struct CurCsv<R: Read> {
    file: String,
    reader: csv::Reader<R>,
    layout: Layout,
    /// The present columns that have a length limit: (index, name, limit), resolved once.
    bounded: Vec<(usize, &'static str, usize)>,
    row: u64,
    record: csv::StringRecord,
}

/// The gzip decoder CUR deliveries need (multi-member, as AWS writes them).
pub fn gzip<R: Read>(input: R) -> impl Read {
    flate2::read::MultiGzDecoder::new(input)
}

impl CurCsv<Box<dyn Read>> {
    /// Opens `bytes` (gzip when `file` ends in `.gz`).
    pub fn open(file: &str, bytes: impl Read + 'static) -> Result<Self, CurCsvError> {
        let input: Box<dyn Read> = if file.ends_with(".gz") { Box::new(gzip(bytes)) } else { Box::new(bytes) };
        Self::new(file, input)
    }
}

impl<R: Read> CurCsv<R> {
    /// Reads and checks the header.
    pub fn new(file: &str, input: R) -> Result<Self, CurCsvError> {
        let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(input);
        let headers = reader
            .headers()
            .map_err(|e| CurCsvError::Unreadable { file: file.to_owned(), row: 0, reason: e.to_string() })?
            .clone();
        let columns: BTreeMap<String, usize> =
            headers.iter().enumerate().map(|(i, h)| (normalise_column(h), i)).collect();
        let required = |i: usize| -> Result<usize, CurCsvError> {
            let (column, legacy) = REQUIRED[i];
            columns.get(column).copied().ok_or(CurCsvError::MissingColumn { file: file.to_owned(), column, legacy })
        };
        let layout = Layout {
            account: required(0)?,
            line_item_type: required(1)?,
            start: required(2)?,
            product_code: required(3)?,
            usage_type: required(4)?,
            amount: required(5)?,
            cost: required(6)?,
            operation: columns.get("line_item_operation").copied(),
            resource_id: columns.get("line_item_resource_id").copied(),
            billing_entity: columns.get("bill_billing_entity").copied(),
            product_name: columns.get("product_product_name").or_else(|| columns.get("product_name")).copied(),
            product: columns.get("product").copied(),
            principal: columns.get("line_item_iam_principal").copied(),
            resource_tags: columns.get("resource_tags").copied(),
            tags: columns.get("tags").copied(),
        };
        let l = layout;
        let bounded = [
            (Some(l.account), "line_item_usage_account_id"),
            (Some(l.line_item_type), "line_item_line_item_type"),
            (Some(l.product_code), "line_item_product_code"),
            (Some(l.usage_type), "line_item_usage_type"),
            (l.operation, "line_item_operation"),
            (l.resource_id, "line_item_resource_id"),
            (l.billing_entity, "bill_billing_entity"),
            (l.product_name, "product_product_name"),
            (l.principal, "line_item_iam_principal"),
            (l.resource_tags, "resource_tags"),
            (l.tags, "tags"),
            (l.product, "product"),
        ]
        .into_iter()
        .filter_map(|(index, column)| {
            let limit = FIELD_LIMITS.iter().find(|(c, _)| *c == column).map_or(PRODUCT_MAP_LIMIT, |(_, n)| *n);
            Some((index?, column, limit))
        })
        .collect();
        Ok(Self { file: file.to_owned(), reader, layout, bounded, row: 0, record: csv::StringRecord::new() })
    }

    /// Whether this export carries `line_item_iam_principal`.
    pub fn caller_identity(&self) -> CallerIdentity {
        if self.layout.principal.is_some() { CallerIdentity::Present } else { CallerIdentity::Absent }
    }

    fn at(&self, index: usize) -> &str {
        self.record.get(index).unwrap_or("")
    }

    fn optional(&self, index: Option<usize>) -> &str {
        index.map_or("", |i| self.at(i))
    }

    fn bad(&self, index: usize, column: &'static str, reason: &'static str) -> CurCsvError {
        CurCsvError::BadValue {
            file: self.file.clone(),
            row: self.row,
            column,
            value: self.at(index).to_owned(),
            reason,
        }
    }

    fn number(&self, index: usize, column: &'static str) -> Result<f64, CurCsvError> {
        match self.at(index).trim().parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(self.bad(index, column, "is not a number")),
        }
    }

    /// A number whose sign the line type allows: consumption and fees are never negative
    /// ([`NEVER_NEGATIVE`]); credits, refunds and discounts may be.
    fn signed(&self, index: usize, column: &'static str) -> Result<f64, CurCsvError> {
        let value = self.number(index, column)?;
        let line_type = self.at(self.layout.line_item_type).trim();
        if value < 0.0 && NEVER_NEGATIVE.contains(&line_type) {
            return Err(CurCsvError::BadValue {
                file: self.file.clone(),
                row: self.row,
                column,
                value: format!("{} on a {line_type} line", self.at(index)),
                reason: "is negative; only credits, refunds and discounts may be",
            });
        }
        Ok(value)
    }

    /// The product name: a real CUR 2.0 export (Data Exports) carries the product
    /// attributes as keys of the `product` map (`product_name`, `servicename`, `region`…);
    /// legacy and hand-made files have a flat `product_product_name`. The flat column wins
    /// when both are filled; a map that is not a JSON object is read as empty (CUR is AWS's
    /// data: an odd cell must not reject a month).
    fn product_name(&self) -> String {
        let flat = self.optional(self.layout.product_name);
        if !flat.is_empty() {
            return flat.to_owned();
        }
        product_name_of(self.optional(self.layout.product)).unwrap_or_default()
    }

    /// Refuses a cell longer than its column's limit (the first offender of the row).
    fn check_lengths(&self) -> Result<(), CurCsvError> {
        for &(index, column, limit) in &self.bounded {
            let value = self.at(index);
            if value.len() > limit {
                return Err(CurCsvError::TooLong {
                    file: self.file.clone(),
                    row: self.row,
                    column,
                    bytes: value.len(),
                    start: value.chars().take(40).collect(),
                    limit,
                });
            }
        }
        Ok(())
    }

    fn parse_line(&self) -> Result<CurLine, CurCsvError> {
        self.check_lengths()?;
        let l = self.layout;
        let account = account_id(self.at(l.account))
            .ok_or_else(|| self.bad(l.account, "line_item_usage_account_id", "is not a 12-digit account id"))?;
        let usage_start = parse_timestamp(self.at(l.start).trim())
            .ok_or_else(|| self.bad(l.start, "line_item_usage_start_date", "is not a timestamp"))?;
        Ok(CurLine {
            usage_account_id: account,
            line_item_type: self.at(l.line_item_type).to_owned(),
            usage_start,
            product_code: self.at(l.product_code).to_owned(),
            usage_type: self.at(l.usage_type).to_owned(),
            operation: self.optional(l.operation).to_owned(),
            resource_id: self.optional(l.resource_id).to_owned(),
            usage_amount: self.signed(l.amount, "line_item_usage_amount")?,
            unblended_cost: self.signed(l.cost, "line_item_unblended_cost")?,
            billing_entity: self.optional(l.billing_entity).to_owned(),
            product_name: self.product_name(),
            iam_principal: l.principal.map(|i| self.at(i).to_owned()),
            resource_tags: self.optional(l.resource_tags).to_owned(),
            tags: self.optional(l.tags).to_owned(),
        })
    }
}

impl<R: Read> Iterator for CurCsv<R> {
    type Item = Result<CurLine, CurCsvError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.reader.read_record(&mut self.record) {
            Ok(false) => None,
            Ok(true) => {
                self.row += 1;
                Some(self.parse_line())
            }
            Err(e) => {
                Some(Err(CurCsvError::Unreadable { file: self.file.clone(), row: self.row + 1, reason: e.to_string() }))
            }
        }
    }
}

/// The two names a `product` map may carry, read in one pass that skips every other key
/// without building it (the map is read for every line of a real CUR 2.0 export).
#[derive(serde::Deserialize)]
struct ProductNames<'a> {
    #[serde(default, borrow)]
    product_name: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    servicename: Option<std::borrow::Cow<'a, str>>,
}

/// The product name of a `product` map as JSON text: `product_name`, else `servicename`;
/// `None` for an empty or unreadable map.
pub fn product_name_of(map: &str) -> Option<String> {
    let map = map.trim();
    if !map.starts_with('{') {
        return None;
    }
    let names: ProductNames<'_> = serde_json::from_str(map).ok()?;
    [names.product_name, names.servicename].into_iter().flatten().find(|n| !n.is_empty()).map(|n| n.into_owned())
}

/// An AWS account id: 12 digits. Shorter all-digit ids are left-padded with zeros, because
/// spreadsheets and anonymisers strip leading zeros from what should stay text.
pub fn account_id(text: &str) -> Option<String> {
    is_account_id(text).then(|| format!("{:0>12}", text.trim()))
}

/// Whether `text` reads as an account id ([`account_id`] without building it: checking
/// millions of lines allocates nothing).
pub fn is_account_id(text: &str) -> bool {
    let t = text.trim();
    !t.is_empty() && t.len() <= 12 && t.bytes().all(|b| b.is_ascii_digit())
}

/// `2026-04-01T00:00:00Z`, `2026-04-01T00:00:00.000Z` or `2026-04-01 00:00:00`.
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .map(|n| n.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEADER: &str = "bill_billing_entity,line_item_usage_account_id,line_item_line_item_type,line_item_usage_start_date,line_item_product_code,line_item_usage_type,line_item_operation,line_item_resource_id,line_item_usage_amount,line_item_unblended_cost,product_product_name,line_item_iam_principal";

    fn read(text: &str) -> Result<Vec<CurLine>, CurCsvError> {
        CurCsv::new("t.csv", text.as_bytes())?.collect()
    }

    #[test]
    fn a_cur2_bedrock_line_reads_with_its_principal() {
        let text = format!(
            "{HEADER}\nAWS,123456789012,Usage,2026-11-03T10:00:00Z,AmazonBedrock,USE1-Claude3Haiku-input-tokens,InvokeModelInference,arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0,1200.5,0.300125,Amazon Bedrock,arn:aws:sts::123456789012:assumed-role/finops-support-bot-x7k2/s1\n"
        );
        let lines = read(&text).unwrap();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].usage_amount, 1200.5);
        assert_eq!(
            lines[0].iam_principal.as_deref(),
            Some("arn:aws:sts::123456789012:assumed-role/finops-support-bot-x7k2/s1")
        );
        assert_eq!(lines[0].usage_start.to_rfc3339(), "2026-11-03T10:00:00+00:00");
    }

    #[test]
    fn bad_values_name_file_row_column_and_value() {
        let text = format!(
            "{HEADER}\nAWS,123456789012,Usage,2026-11-03T10:00:00Z,AmazonBedrock,X,,,1,2,,\nAWS,12345-6,Usage,2026-11-03T10:00:00Z,AmazonBedrock,X,,,1,2,,\n"
        );
        let err = read(&text).unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.csv: row 2, column `line_item_usage_account_id`: `12345-6` is not a 12-digit account id"
        );
        let text = format!("{HEADER}\nAWS,123456789012,Usage,yesterday,AmazonBedrock,X,,,1,2,,\n");
        assert!(
            read(&text)
                .unwrap_err()
                .to_string()
                .contains("column `line_item_usage_start_date`: `yesterday` is not a timestamp")
        );
        let text = format!("{HEADER}\nAWS,123456789012,Usage,2026-11-03T10:00:00Z,AmazonBedrock,X,,,lots,2,,\n");
        assert!(read(&text).unwrap_err().to_string().contains("`line_item_usage_amount`: `lots` is not a number"));
        let err = read("line_item_usage_type,line_item_usage_amount\nX,1\n").unwrap_err();
        assert!(err.to_string().contains("missing required column `line_item_usage_account_id`"), "{err}");
    }

    #[test]
    fn gzip_is_read_when_the_name_says_so() {
        use std::io::Write;
        let text = format!("{HEADER}\nAWS,123456789012,Usage,2026-11-03 10:00:00,AmazonBedrock,X,,,9.984E-7,0,,\n");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text.as_bytes()).unwrap();
        let bytes = gz.finish().unwrap();
        let lines: Vec<_> =
            CurCsv::open("x.csv.gz", std::io::Cursor::new(bytes)).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(lines[0].usage_amount, 9.984e-7, "scientific notation, as real exports have");
    }

    #[test]
    fn the_real_legacy_sample_reads_cleanly_without_caller_identity() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/real-data/legacy-cur_anonymized_aws_2023-11_focus_converters.csv"
        );
        let Ok(file) = std::fs::File::open(path) else {
            eprintln!("SKIPPED: {path} not present");
            return;
        };
        let csv = CurCsv::open("legacy.csv", file).unwrap();
        assert_eq!(csv.caller_identity(), CallerIdentity::Absent);
        let lines: Vec<CurLine> = csv.collect::<Result<_, _>>().unwrap();
        assert_eq!(lines.len(), 1_281);
        assert_eq!(lines.iter().filter(|l| l.line_item_type == "Tax").count(), 12);
        assert!(lines.iter().all(|l| l.iam_principal.is_none()));
    }

    /// Regression (issue 10.1): a real CUR 2.0 export carries the product name as a key of
    /// the `product` map, and Marketplace Bedrock lines were never recognised.
    #[test]
    fn the_product_name_is_read_from_the_product_map_of_a_real_cur2_export() {
        let text = "bill_billing_entity,line_item_usage_account_id,line_item_line_item_type,line_item_usage_start_date,line_item_product_code,line_item_usage_type,line_item_usage_amount,line_item_unblended_cost,product,line_item_iam_principal\n\
            AWS Marketplace,444455556666,Usage,2026-11-10T00:00:00Z,4a524th30q694o538qndh9ucht,USW2-MP:USW2_InputTokenCount-Units,0.2,0.60,\"{\"\"product_name\"\":\"\"Claude 3.5 Sonnet (Amazon Bedrock Edition)\"\",\"\"region\"\":\"\"us-west-2\"\"}\",\n\
            AWS,444455556666,Usage,2026-11-10T00:00:00Z,AmazonEC2,BoxUsage,1,0.1,not json,\n";
        let lines = read(text).unwrap();
        assert_eq!(lines[0].product_name, "Claude 3.5 Sonnet (Amazon Bedrock Edition)");
        assert_eq!(lines[1].product_name, "", "an odd map is read as empty, not refused");
        assert_eq!(product_name_of(r#"{"servicename":"X","region":"us-east-1"}"#).as_deref(), Some("X"));
        assert_eq!(product_name_of(r#"{"product_name":"","region":"us-east-1"}"#), None);
        assert_eq!(product_name_of("{not json"), None);
    }

    /// Regression (issue 10.12): a 10 MB resource id and a negative cost on a Usage line
    /// were accepted.
    #[test]
    fn oversized_fields_and_negative_usage_are_refused_by_file_row_and_column() {
        let huge = "x".repeat(10 * 1024 * 1024);
        let text = format!("{HEADER}\nAWS,123456789012,Usage,2026-11-03T10:00:00Z,AmazonBedrock,X,,{huge},1,2,,\n");
        let err = read(&text).unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("t.csv: row 1, column `line_item_resource_id`: a value of 10485760 bytes"),
            "{}",
            &message[..200.min(message.len())]
        );
        assert!(message.len() < 300, "the message does not carry the value");
        let negative = format!("{HEADER}\nAWS,123456789012,Usage,2026-11-03T10:00:00Z,AmazonBedrock,X,,,1,-2.5,,\n");
        assert_eq!(
            read(&negative).unwrap_err().to_string(),
            "t.csv: row 1, column `line_item_unblended_cost`: `-2.5 on a Usage line` is negative; only credits, refunds and discounts may be"
        );
        for kind in ["Credit", "Refund", "BundledDiscount", "SavingsPlanNegation"] {
            let ok = format!("{HEADER}\nAWS,123456789012,{kind},2026-11-03T10:00:00Z,AmazonBedrock,X,,,1,-2.5,,\n");
            assert_eq!(read(&ok).unwrap()[0].unblended_cost, -2.5, "{kind} may be negative");
        }
    }

    #[test]
    fn account_ids_keep_their_leading_zeros() {
        assert_eq!(account_id("12345678901").as_deref(), Some("012345678901"));
        assert_eq!(account_id("123456789012").as_deref(), Some("123456789012"));
        assert_eq!(account_id("1234567890123"), None);
        assert_eq!(account_id("12a"), None);
        assert_eq!(account_id(""), None);
    }

    #[test]
    fn legacy_headers_normalise_to_cur2_names() {
        assert_eq!(normalise_column("lineItem/UsageAccountId"), "line_item_usage_account_id");
        assert_eq!(normalise_column("product/ProductName"), "product_product_name");
        assert_eq!(normalise_column("bill/BillingEntity"), "bill_billing_entity");
        assert_eq!(normalise_column("line_item_usage_type"), "line_item_usage_type");
    }

    proptest! {
        /// Whatever the amounts and names, a written line reads back the same.
        #[test]
        fn lines_round_trip(amount in 0.0f64..1e9, cost in 0.0f64..1e6, usage in "[A-Z0-9]{4}-[A-Za-z0-9.]{1,12}-input-tokens", session in "[A-Za-z0-9@._-]{1,30}") {
            let principal = format!("arn:aws:sts::123456789012:assumed-role/r/{session}");
            let text = format!("{HEADER}\nAWS,123456789012,Usage,2026-11-03T10:00:00Z,AmazonBedrock,{usage},,,{amount},{cost},\"Amazon Bedrock, Edition\",{principal}\n");
            let lines = read(&text).unwrap();
            prop_assert_eq!(lines[0].usage_amount, amount);
            prop_assert_eq!(lines[0].unblended_cost, cost);
            prop_assert_eq!(&lines[0].usage_type, &usage);
            prop_assert_eq!(lines[0].iam_principal.as_deref(), Some(principal.as_str()));
            prop_assert_eq!(lines[0].product_name.as_str(), "Amazon Bedrock, Edition");
        }

        #[test]
        fn any_bytes_yield_lines_or_errors_never_a_panic(text in "\\PC{0,200}") {
            if let Ok(csv) = CurCsv::new("f.csv", text.as_bytes()) {
                for line in csv {
                    let _ = line;
                }
            }
        }
    }
}
