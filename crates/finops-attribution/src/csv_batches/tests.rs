//! A CUR CSV read column by column gives what the row reader gives: the same lines, or the
//! same first error (file, row, column, value), whatever the month, the fault and however
//! the bytes arrive.

use std::io::BufReader;

use finops_cur::csv_lines::{CurCsv, CurCsvError, CurLine};
use finops_cur::synthetic::{MonthSpec, write_month};
use proptest::prelude::*;

use super::{CurCsvBatches, FocusCsvBatches};
use crate::cur_parquet::{BatchLines, CurReadError};

fn month(rows: u64, seed: u64) -> Vec<u8> {
    let mut csv = Vec::new();
    write_month(&MonthSpec { period: "2026-11".into(), rows, seed, restatement: 0 }, &mut csv).unwrap();
    csv
}

fn by_rows(csv: &[u8]) -> Result<Vec<CurLine>, CurCsvError> {
    CurCsv::new("m.csv", csv)?.collect()
}

/// The lines read column by column, the bytes arriving `chunk` at a time.
fn by_columns(csv: &[u8], chunk: usize) -> Result<Vec<CurLine>, CurReadError> {
    let mut lines = BatchLines::new(CurCsvBatches::new("m.csv", BufReader::with_capacity(chunk, csv))?);
    let (mut line, mut out) = (CurLine::default(), Vec::new());
    while let Some(read) = lines.next_line(&mut line) {
        read?;
        out.push(line.clone());
    }
    Ok(out)
}

/// What a reader's outcome says to a user: the lines, or the error — an unreadable row by
/// file and row only (the two CSV libraries word the complaint differently).
fn outcome(read: Result<Vec<CurLine>, CurCsvError>) -> Result<Vec<CurLine>, CurCsvError> {
    read.map_err(|e| match e {
        CurCsvError::Unreadable { file, row, .. } => CurCsvError::Unreadable { file, row, reason: String::new() },
        other => other,
    })
}

fn columnar_outcome(csv: &[u8], chunk: usize) -> Result<Vec<CurLine>, CurCsvError> {
    outcome(by_columns(csv, chunk).map_err(|e| match e {
        CurReadError::Invalid(e) => e,
        other => panic!("a CSV fails only as CSV: {other}"),
    }))
}

/// Faults a delivery can carry, put into data row `row` (from 1).
#[derive(Debug, Clone)]
enum Fault {
    /// A field's text replaced (bad account, timestamp, number, sign, an over-long value).
    Field { row: usize, column: usize, text: String },
    /// A row with a field too few.
    Short { row: usize },
    /// A byte that is not UTF-8.
    NotUtf8 { row: usize, column: usize },
    /// A row's field holding a quoted line break and a quote.
    Quoted { row: usize, column: usize },
}

fn fault(rows: usize) -> impl Strategy<Value = Fault> {
    let row = 1..=rows;
    let text = prop_oneof![
        Just("12-34".to_owned()),
        Just("not a time".to_owned()),
        Just("abc".to_owned()),
        Just("-1.50".to_owned()),
        Just(" 7 ".to_owned()),
        Just("x".repeat(3_000)),
        Just(String::new()),
    ];
    prop_oneof![
        (row.clone(), 0..17usize, text).prop_map(|(row, column, text)| Fault::Field { row, column, text }),
        row.clone().prop_map(|row| Fault::Short { row }),
        (row.clone(), 0..17usize).prop_map(|(row, column)| Fault::NotUtf8 { row, column }),
        (row, 0..17usize).prop_map(|(row, column)| Fault::Quoted { row, column }),
    ]
}

/// The month with `fault` in it (its header and row lines split on line breaks: the
/// synthetic month quotes none).
fn with_fault(csv: &[u8], fault: &Fault) -> Vec<u8> {
    let text = std::str::from_utf8(csv).unwrap();
    let mut lines: Vec<Vec<u8>> = text.lines().map(|l| l.as_bytes().to_vec()).collect();
    let fields = |line: &[u8]| -> Vec<Vec<u8>> {
        let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(line);
        let record = reader.byte_records().next().unwrap().unwrap();
        record.iter().map(<[u8]>::to_vec).collect()
    };
    let join = |fields: Vec<Vec<u8>>| -> Vec<u8> {
        let mut out = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
        out.write_byte_record(&csv::ByteRecord::from(fields)).unwrap();
        let mut bytes = out.into_inner().unwrap();
        bytes.pop();
        bytes
    };
    match fault {
        Fault::Field { row, column, text } => {
            let mut f = fields(&lines[*row]);
            f[*column] = text.clone().into_bytes();
            lines[*row] = join(f);
        }
        Fault::Short { row } => {
            let mut f = fields(&lines[*row]);
            f.pop();
            lines[*row] = join(f);
        }
        Fault::NotUtf8 { row, column } => {
            let mut f = fields(&lines[*row]);
            f[*column].push(0xff);
            lines[*row] = join(f);
        }
        Fault::Quoted { row, column } => {
            let mut f = fields(&lines[*row]);
            f[*column].extend_from_slice(b"\r\nsecond \"line\"");
            lines[*row] = join(f);
        }
    }
    let mut out = lines.join(&b'\n');
    out.push(b'\n');
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Issue 15.1: a clean month reads as the row reader's lines, whatever the batch and
    /// buffer boundaries.
    #[test]
    fn a_cur_csv_reads_column_by_column_as_row_by_row(
        seed in 0u64..1_000,
        rows in 1u64..2_500,
        chunk in 1usize..4_096,
    ) {
        let csv = month(rows, seed);
        let expected = by_rows(&csv).unwrap();
        prop_assert_eq!(by_columns(&csv, chunk).unwrap(), expected);
    }

    /// Issue 15.1: a month with a fault gives the row reader's first error (or, for a fault
    /// the rules allow, its lines).
    #[test]
    fn a_faulty_cur_csv_fails_column_by_column_as_row_by_row(
        seed in 0u64..1_000,
        (rows, fault) in (1usize..300).prop_flat_map(|rows| (Just(rows), fault(rows))),
        chunk in 1usize..512,
    ) {
        let csv = with_fault(&month(rows as u64, seed), &fault);
        prop_assert_eq!(columnar_outcome(&csv, chunk), outcome(by_rows(&csv)));
    }
}

#[test]
fn bad_rows_are_named_by_file_row_and_column() {
    let csv = month(40_000, 3);
    // Row 35 000 is in the second batch of 32 K rows.
    let bad = with_fault(&csv, &Fault::Field { row: 35_000, column: 3, text: "12-34".into() });
    assert_eq!(
        by_columns(&bad, 8_192).unwrap_err().to_string(),
        "m.csv: row 35000, column `line_item_usage_account_id`: `12-34` is not a 12-digit account id"
    );
    let short = with_fault(&csv, &Fault::Short { row: 33_000 });
    let err = by_columns(&short, 8_192).unwrap_err().to_string();
    assert!(err.starts_with("m.csv: unreadable CSV at row 33000: "), "{err}");
    let broken = with_fault(&csv, &Fault::NotUtf8 { row: 34_567, column: 9 });
    let err = by_columns(&broken, 8_192).unwrap_err().to_string();
    assert!(err.starts_with("m.csv: unreadable CSV at row 34567: "), "{err}");
    let negative = with_fault(&csv, &Fault::Field { row: 2, column: 11, text: "-1.50".into() });
    let err = by_columns(&negative, 8_192).unwrap_err().to_string();
    assert!(err.contains("`-1.50 on a "), "the value as delivered: {err}");
}

#[test]
fn a_header_is_read_as_the_row_reader_reads_it() {
    let csv = month(10, 1);
    let mut marked = "\u{feff}".as_bytes().to_vec();
    marked.extend_from_slice(&csv);
    assert_eq!(by_columns(&marked, 3).unwrap(), by_rows(&csv).unwrap(), "a byte-order mark is not a name");
    let err = by_columns(b"", 64).unwrap_err().to_string();
    assert!(err.contains("missing required column `line_item_usage_account_id`"), "{err}");
    let legacy = "lineItem/UsageAccountId,lineItem/LineItemType,lineItem/UsageStartDate,lineItem/ProductCode,lineItem/UsageType,lineItem/UsageAmount,lineItem/UnblendedCost,product/ProductName\n\
        123456789012,Usage,2026-11-01T00:00:00Z,AmazonBedrock,USE1-X-input-tokens,10,0.5,Amazon Bedrock\n";
    let read = by_columns(legacy.as_bytes(), 16).unwrap();
    assert_eq!(read, by_rows(legacy.as_bytes()).unwrap());
    assert_eq!(read[0].product_name, "Amazon Bedrock");
    assert_eq!(read[0].iam_principal, None, "no principal column: no caller identity");
}

#[test]
fn the_real_focus_sample_reads_column_by_column_as_row_by_row() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/real-data/focus-1.0_sample_1000rows_FinOps-FOCUS-Sample-Data.csv"
    );
    let Ok(bytes) = std::fs::read(path) else {
        eprintln!("SKIPPED: {path} not present");
        return;
    };
    let mut rows = finops_cur::focus_lines::FocusCsv::new("focus.csv", bytes.as_slice()).unwrap();
    let expected: Vec<CurLine> = rows.by_ref().collect::<Result<_, _>>().unwrap();
    let mut batches = FocusCsvBatches::new("focus.csv", BufReader::with_capacity(1_000, bytes.as_slice())).unwrap();
    let mut read = Vec::new();
    {
        let mut lines = BatchLines::new(batches.by_ref());
        let mut line = CurLine::default();
        while let Some(next) = lines.next_line(&mut line) {
            next.unwrap();
            read.push(line.clone());
        }
    }
    assert_eq!(read, expected);
    assert_eq!(batches.skipped_other_providers(), rows.skipped_other_providers());
}
