//! FOCUS Parquet reads as its CSV reads: the same lines, the same skipped rows, the same
//! errors (with the row group added).

use std::sync::Arc;

use datafusion::arrow::array::TimestampMicrosecondArray;
use datafusion::arrow::array::{Array, ArrayRef, Float64Array, MapBuilder, RecordBatch, StringArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::file::properties::WriterProperties;
use finops_cur::csv_lines::CurLine;
use finops_cur::focus_lines::FocusCsv;
use proptest::prelude::*;

use super::FocusParquet;
use crate::cur_parquet::{BatchLines, CurReadError};

/// One FOCUS row as text, in [`COLUMNS`] order.
type Row = Vec<String>;

const COLUMNS: [&str; 13] = [
    "ProviderName",
    "SubAccountId",
    "ChargeCategory",
    "ChargePeriodStart",
    "BilledCost",
    "ConsumedQuantity",
    "ServiceName",
    "x_ServiceCode",
    "x_UsageType",
    "SkuMeter",
    "ResourceId",
    "InvoiceIssuerName",
    "Tags",
];

fn csv_text(rows: &[Row]) -> String {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(COLUMNS).unwrap();
    for row in rows {
        out.write_record(row).unwrap();
    }
    String::from_utf8(out.into_inner().unwrap()).unwrap()
}

/// The rows as Parquet: every column text, or typed as a FOCUS export types them (a
/// timestamp, doubles, the tags a map; the literal `NULL` a real null).
fn parquet(rows: &[Row], typed: bool, group_rows: usize) -> crate::scratch::Scratch {
    let null = |v: &str| (v.trim() != "NULL").then(|| v.to_owned());
    // As text, the literal `NULL` stays text (the reader treats it as empty).
    let text = |i: usize| -> ArrayRef {
        Arc::new(StringArray::from_iter(rows.iter().map(|r| if typed { null(&r[i]) } else { Some(r[i].clone()) })))
    };
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (i, name) in COLUMNS.iter().enumerate() {
        let (field, column): (Field, ArrayRef) = match (*name, typed) {
            ("ChargePeriodStart", true) => (
                Field::new(*name, DataType::Timestamp(TimeUnit::Microsecond, None), true),
                Arc::new(TimestampMicrosecondArray::from_iter(rows.iter().map(|r| {
                    null(&r[i]).map(|t| finops_cur::csv_lines::parse_timestamp(&t).unwrap().timestamp_micros())
                }))),
            ),
            ("BilledCost" | "ConsumedQuantity", true) => (
                Field::new(*name, DataType::Float64, true),
                Arc::new(Float64Array::from_iter(
                    rows.iter()
                        .map(|r| null(&r[i]).filter(|t| !t.trim().is_empty()).map(|t| t.trim().parse().unwrap())),
                )),
            ),
            ("Tags", true) => {
                let mut map = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
                for row in rows {
                    let tags: serde_json::Map<String, serde_json::Value> =
                        serde_json::from_str(&row[i]).unwrap_or_default();
                    for (k, v) in tags {
                        map.keys().append_value(k);
                        map.values().append_value(v.as_str().unwrap());
                    }
                    map.append(true).unwrap();
                }
                let column = map.finish();
                (Field::new(*name, column.data_type().clone(), true), Arc::new(column))
            }
            _ => (Field::new(*name, DataType::Utf8, true), text(i)),
        };
        fields.push(field);
        columns.push(column);
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    let scratch = crate::scratch::Scratch::new("focus.parquet");
    let properties = WriterProperties::builder().set_max_row_group_row_count(Some(group_rows)).build();
    let mut writer =
        ArrowWriter::try_new(std::fs::File::create(&scratch.0).unwrap(), batch.schema(), Some(properties)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    scratch
}

fn read_parquet(path: &std::path::Path) -> Result<(Vec<CurLine>, u64), CurReadError> {
    let mut focus = FocusParquet::open("f.parquet", std::fs::File::open(path).unwrap())?;
    let mut lines = Vec::new();
    let mut skipped = 0;
    {
        let mut batch_lines = BatchLines::new(focus.by_ref());
        let mut line = CurLine::default();
        while let Some(read) = batch_lines.next_line(&mut line) {
            read?;
            lines.push(line.clone());
        }
    }
    skipped += focus.skipped_other_providers();
    Ok((lines, skipped))
}

fn read_csv(text: &str) -> Result<(Vec<CurLine>, u64), finops_cur::csv_lines::CurCsvError> {
    let mut focus = FocusCsv::new("f.csv", text.as_bytes())?;
    let lines = focus.by_ref().collect::<Result<Vec<_>, _>>()?;
    Ok((lines, focus.skipped_other_providers()))
}

fn row() -> impl Strategy<Value = Row> {
    let provider = prop_oneof![4 => Just("AWS"), 1 => Just(" aws "), 1 => Just("Microsoft")];
    let category = prop_oneof![Just("Usage"), Just("Tax"), Just("Credit")];
    let text = |values: &'static [&'static str]| proptest::sample::select(values);
    (
        provider,
        text(&["123456789012", "210987654321", " 000000000042 "]),
        category,
        text(&["2026-11-03 10:00:00", "2026-11-20T22:00:00Z", "2026-11-30 23:00:00"]),
        (0u32..100_000, any::<bool>()),
        prop_oneof![Just(String::new()), Just("NULL".to_owned()), (0u32..5_000).prop_map(|q| format!("{q}.5"))],
        text(&["Amazon Bedrock", "Amazon Simple Queue Service", "NULL", ""]),
        text(&["AmazonBedrock", "", "NULL"]),
        text(&["USE1-Claude3.5Sonnet-input-tokens", "", "NULL"]),
        text(&["Requests", ""]),
        text(&["arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude", "", "NULL"]),
        (text(&["AWS", "AWS Marketplace", ""]), text(&["", r#"{"team":"search"}"#, r#"{"team":"ads","env":"prod"}"#])),
    )
        .prop_map(|(p, a, c, s, (cents, credit), q, sn, sc, ut, sku, rid, (issuer, tags))| {
            let cost = if credit && c == "Credit" { -f64::from(cents) / 100.0 } else { f64::from(cents) / 100.0 };
            vec![
                p.into(),
                a.into(),
                c.into(),
                s.into(),
                format!("{cost}"),
                q,
                sn.into(),
                sc.into(),
                ut.into(),
                sku.into(),
                rid.into(),
                issuer.into(),
                tags.into(),
            ]
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Issue 15.1: FOCUS Parquet, as text or typed, in row groups of any size, reads as the
    /// lines of the same rows as CSV, skipping the same other providers' rows.
    #[test]
    fn a_focus_parquet_reads_as_the_lines_of_its_csv(
        rows in proptest::collection::vec(row(), 1..300),
        typed in any::<bool>(),
        group_rows in 1usize..120,
    ) {
        let expected = read_csv(&csv_text(&rows)).unwrap();
        let file = parquet(&rows, typed, group_rows);
        let read = read_parquet(&file.0).unwrap();
        prop_assert_eq!(read.1, expected.1, "the same rows skipped");
        prop_assert_eq!(read.0.len(), expected.0.len());
        for (got, want) in read.0.iter().zip(&expected.0) {
            let tags = |t: &str| serde_json::from_str::<serde_json::Value>(t).ok();
            prop_assert_eq!(tags(&got.resource_tags), tags(&want.resource_tags), "tags as JSON");
            let same = CurLine { resource_tags: want.resource_tags.clone(), ..got.clone() };
            prop_assert_eq!(&same, want);
        }
    }
}

/// The rows of a FOCUS CSV read column by column ([`crate::csv_batches`]), the bytes
/// arriving `chunk` at a time.
fn read_csv_by_columns(text: &str, chunk: usize) -> Result<(Vec<CurLine>, u64), CurReadError> {
    let input = std::io::BufReader::with_capacity(chunk, text.as_bytes());
    let mut focus = crate::csv_batches::FocusCsvBatches::new("f.csv", input)?;
    let mut lines = Vec::new();
    {
        let mut batch_lines = BatchLines::new(focus.by_ref());
        let mut line = CurLine::default();
        while let Some(read) = batch_lines.next_line(&mut line) {
            read?;
            lines.push(line.clone());
        }
    }
    Ok((lines, focus.skipped_other_providers()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Issue 15.1: a FOCUS CSV read column by column gives the row reader's lines and
    /// skipped rows, or its first error (one row spoiled in one column).
    #[test]
    fn a_focus_csv_reads_column_by_column_as_row_by_row(
        mut rows in proptest::collection::vec(row(), 1..300),
        spoil in proptest::option::of((any::<proptest::sample::Index>(), 1usize..6, proptest::sample::select(&["x", "-3", "NULL", ""][..]))),
        chunk in 1usize..700,
    ) {
        if let Some((at, column, text)) = spoil {
            let row = at.index(rows.len());
            rows[row][column] = text.to_owned();
        }
        let text = csv_text(&rows);
        let columnar = read_csv_by_columns(&text, chunk).map_err(|e| match e {
            CurReadError::Invalid(e) => e,
            other => panic!("a CSV fails only as CSV: {other}"),
        });
        prop_assert_eq!(columnar, read_csv(&text));
    }
}

/// A bad value is named as the CSV reader names it, with its row group; the first bad one
/// in row order wins, whichever column it is in.
#[test]
fn bad_focus_parquet_values_are_named_as_in_csv() {
    let good = |account: &str| -> Row {
        let mut row: Row = vec![String::new(); COLUMNS.len()];
        row[0] = "AWS".into();
        row[1] = account.into();
        row[2] = "Usage".into();
        row[3] = "2026-11-03 10:00:00".into();
        row[4] = "1.25".into();
        row
    };
    let mut rows: Vec<Row> = (0..10).map(|_| good("123456789012")).collect();
    rows[3][0] = "Microsoft".into(); // skipped, still counted as a row
    rows[6][1] = "acct-12".into(); // row 7: a bad account id
    rows[8][4] = "lots".into(); // row 9: bad, but later
    let csv_error = read_csv(&csv_text(&rows)).unwrap_err();
    assert_eq!(csv_error.to_string(), "f.csv: row 7, column `SubAccountId`: `acct-12` is not an AWS account id");
    let file = parquet(&rows, false, 4);
    let error = read_parquet(&file.0).unwrap_err();
    assert_eq!(
        error.to_string(),
        "f.parquet: row 7, column `SubAccountId`: `acct-12` is not an AWS account id (Parquet row group 1)"
    );

    // Within one row, the CSV reader's order: the cost before the account.
    rows[6][4] = "-3".into();
    rows[8][4] = "1.25".into();
    let file = parquet(&rows, true, 4);
    let error = read_parquet(&file.0).unwrap_err();
    assert!(error.to_string().starts_with("f.parquet: row 7, column `BilledCost`: `-3"), "{error}");
    assert!(error.to_string().contains("on a Usage charge` is negative"), "{error}");

    // A missing required column is refused before any row is read.
    let batch =
        RecordBatch::try_from_iter([("ProviderName", Arc::new(StringArray::from(vec!["AWS"])) as ArrayRef)]).unwrap();
    let scratch = crate::scratch::Scratch::new("focus.parquet");
    let mut writer = ArrowWriter::try_new(std::fs::File::create(&scratch.0).unwrap(), batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let error = FocusParquet::open("f.parquet", std::fs::File::open(&scratch.0).unwrap()).err().unwrap();
    assert!(error.to_string().contains("missing required column `SubAccountId`"), "{error}");
}
