//! CUR 2.0 as AWS delivers it to S3: Parquet parts under `BILLING_PERIOD=YYYY-MM/` with a
//! manifest. The parts of a period become one batch whose lines match the CSV delivery of
//! the same month; a bad typed value names its file, row and column; nothing is stored then.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Float64Array, MapBuilder, StringArray, StringBuilder, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use finops_cur::csv_lines::{CurCsv, CurLine};
use finops_cur::synthetic::{MonthSpec, write_month};
use finops_eventlog::Upcasters;
use finops_governance::CommandContext;
use finops_ingest::{Format, IngestError, Ingestor, Progress, discover};
use object_store::local::LocalFileSystem;

fn context() -> CommandContext {
    finops_e2e::operator_context("op-kai")
}

/// Lines as a CUR 2.0 Parquet part: Glue types (timestamps, doubles, `resource_tags` and
/// `tags` as `map<string,string>`). `amount` overrides the usage amount column's type when given.
fn write_part(path: &std::path::Path, lines: &[CurLine], amount_as_text: bool) {
    let text = |f: &dyn Fn(&CurLine) -> String| -> ArrayRef {
        Arc::new(StringArray::from(lines.iter().map(f).collect::<Vec<_>>()))
    };
    // `resource_tags` and `tags` (principal tags) are both `map<string,string>`.
    let map_of = |json: &dyn Fn(&CurLine) -> &str| {
        let mut tags = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
        for line in lines {
            let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json(line)).unwrap_or_default();
            for (k, v) in map {
                tags.keys().append_value(k);
                tags.values().append_value(v.as_str().unwrap_or_default());
            }
            tags.append(true).unwrap();
        }
        tags.finish()
    };
    let (tags, principal_tags) = (map_of(&|l| &l.resource_tags), map_of(&|l| &l.tags));
    // The product attributes as AWS delivers them: keys of the `product` map, no flat
    // `product_product_name` column.
    let mut product = MapBuilder::new(None, StringBuilder::new(), StringBuilder::new());
    for line in lines {
        if !line.product_name.is_empty() {
            product.keys().append_value("product_name");
            product.values().append_value(&line.product_name);
        }
        product.append(true).unwrap();
    }
    let product = product.finish();
    let amount: ArrayRef = if amount_as_text {
        let mut values: Vec<String> = lines.iter().map(|l| l.usage_amount.to_string()).collect();
        values[2] = "lots".into();
        Arc::new(StringArray::from(values))
    } else {
        Arc::new(Float64Array::from(lines.iter().map(|l| l.usage_amount).collect::<Vec<_>>()))
    };
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("bill_billing_entity", text(&|l| l.billing_entity.clone())),
        ("line_item_usage_account_id", text(&|l| l.usage_account_id.clone())),
        ("line_item_line_item_type", text(&|l| l.line_item_type.clone())),
        (
            "line_item_usage_start_date",
            Arc::new(TimestampMicrosecondArray::from(
                lines.iter().map(|l| l.usage_start.timestamp_micros()).collect::<Vec<_>>(),
            )),
        ),
        ("line_item_product_code", text(&|l| l.product_code.clone())),
        ("line_item_usage_type", text(&|l| l.usage_type.clone())),
        ("line_item_operation", text(&|l| l.operation.clone())),
        ("line_item_resource_id", text(&|l| l.resource_id.clone())),
        ("line_item_usage_amount", amount),
        (
            "line_item_unblended_cost",
            Arc::new(Float64Array::from(lines.iter().map(|l| l.unblended_cost).collect::<Vec<_>>())),
        ),
        ("product", Arc::new(product)),
        ("resource_tags", Arc::new(tags)),
        ("line_item_iam_principal", text(&|l| l.iam_principal.clone().unwrap_or_default())),
        ("tags", Arc::new(principal_tags)),
    ];
    let schema = Arc::new(Schema::new(
        columns.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), true)).collect::<Vec<_>>(),
    ));
    assert!(matches!(schema.field(11).data_type(), DataType::Map(..)));
    let batch = RecordBatch::try_new(schema.clone(), columns.into_iter().map(|c| c.1).collect()).unwrap();
    let mut writer = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_prefix_of_parquet_parts_ingests_as_one_batch() {
    let root = std::env::temp_dir().join(format!("finops-export-{}", uuid::Uuid::now_v7()));
    let mut csv = Vec::new();
    write_month(&MonthSpec { period: "2026-11".into(), rows: 2_000, seed: 5, restatement: 0 }, &mut csv).unwrap();
    let lines: Vec<CurLine> = CurCsv::new("m.csv", csv.as_slice()).unwrap().collect::<Result<_, _>>().unwrap();
    let data = root.join("export/cur2/data/BILLING_PERIOD=2026-11");
    std::fs::create_dir_all(&data).unwrap();
    // Three parts, decoded in parallel (up to the core count), written in order.
    write_part(&data.join("cur2-00001.snappy.parquet"), &lines[..700], false);
    write_part(&data.join("cur2-00002.snappy.parquet"), &lines[700..1_200], false);
    write_part(&data.join("cur2-00003.snappy.parquet"), &lines[1_200..], false);
    let metadata = root.join("export/cur2/metadata/BILLING_PERIOD=2026-11");
    std::fs::create_dir_all(&metadata).unwrap();
    std::fs::write(
        metadata.join("cur2-Manifest.json"),
        r#"{"billingPeriod":{"start":"2026-11-01"},"dataFiles":["s3://b/export/cur2/data/BILLING_PERIOD=2026-11/cur2-00001.snappy.parquet","s3://b/export/cur2/data/BILLING_PERIOD=2026-11/cur2-00002.snappy.parquet","s3://b/export/cur2/data/BILLING_PERIOD=2026-11/cur2-00003.snappy.parquet"]}"#,
    )
    .unwrap();

    let store = finops_eventlog::open(&finops_e2e::fresh_sqlite_url(), Upcasters::new()).await.unwrap();
    let objects_dir = root.join("objects");
    std::fs::create_dir_all(&objects_dir).unwrap();
    let ingestor = Ingestor::new(store, Arc::new(LocalFileSystem::new_with_prefix(&objects_dir).unwrap()));
    let deliveries = discover(&root.join("export")).unwrap();
    assert_eq!(deliveries.len(), 1);
    let mut seen: Vec<Progress> = vec![];
    let report = ingestor.ingest(&deliveries[0], Format::Cur, &context(), &mut |p| seen.push(p.clone())).await.unwrap();
    assert_eq!((report.batch.period.as_str(), report.batch.rows), ("2026-11", 2_000));
    assert!(report.batch.caller_identity);
    assert!(report.batch.location.ends_with(&format!("{}/", report.batch.hash)), "{}", report.batch.location);
    let last = seen.last().unwrap();
    assert_eq!((last.rows, last.bytes), (2_000, last.total_bytes), "progress ends at the whole delivery");
    assert!(objects_dir.join(format!("cur/2026-11/{}/cur2-00002.snappy.parquet", report.batch.hash)).exists());

    // The same month as CSV gives the same columnar lines (tags, timestamps, amounts).
    let csv_path = root.join("m.csv");
    std::fs::write(&csv_path, &csv).unwrap();
    let from_csv = ingestor.ingest_file(&csv_path, Format::Cur, &context()).await.unwrap();
    let read = |hash: &str| {
        let path = objects_dir.join(finops_attribution::lines_location("2026-11", hash).as_ref());
        let file = std::fs::File::open(path).unwrap();
        datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    };
    let (a, b) = (read(&report.batch.hash), read(&from_csv.batch.hash));
    let concat =
        |batches: &[RecordBatch]| datafusion::arrow::compute::concat_batches(&batches[0].schema(), batches).unwrap();
    assert_eq!(concat(&a), concat(&b), "Parquet and CSV deliveries read alike");
    // Regression (issue 10.1): Marketplace Bedrock lines, named only in the `product`
    // map, are recognised in both containers, and the ingest says how much of each source.
    let marketplace = |r: &finops_ingest::IngestReport| {
        r.sources.iter().find(|t| t.source == finops_cur::ai_facts::AiSource::Marketplace).copied().unwrap()
    };
    assert!(marketplace(&report).lines > 100, "{:?}", report.sources);
    assert_eq!(marketplace(&report), marketplace(&from_csv));
    assert_eq!(report.sources, from_csv.sources);

    // A bad typed value names file, row and column; nothing is stored for it.
    let bad_dir = root.join("bad/BILLING_PERIOD=2026-10");
    std::fs::create_dir_all(&bad_dir).unwrap();
    let mut october = lines[..10].to_vec();
    for l in &mut october {
        l.usage_start -= chrono::Duration::days(31);
    }
    write_part(&bad_dir.join("part-1.parquet"), &october, true);
    let bad = discover(&root.join("bad")).unwrap();
    let err = ingestor.ingest(&bad[0], Format::Cur, &context(), &mut |_| {}).await.unwrap_err();
    assert!(matches!(err, IngestError::Invalid(_)), "{err}");
    assert!(
        err.to_string().contains("part-1.parquet: row 3, column `line_item_usage_amount`: `lots` is not a number"),
        "{err}"
    );
    assert!(!objects_dir.join("cur/2026-10").exists());

    // Parts are read one after the other without waiting: a later part in another period,
    // or not Parquet at all, still stops the delivery, named, and keeps nothing of it.
    let mixed_dir = root.join("mixed/BILLING_PERIOD=2026-11");
    std::fs::create_dir_all(&mixed_dir).unwrap();
    write_part(&mixed_dir.join("part-1.parquet"), &lines[..500], false);
    let mut december = lines[500..600].to_vec();
    for l in &mut december {
        l.usage_start += chrono::Duration::days(30);
    }
    write_part(&mixed_dir.join("part-2.parquet"), &december, false);
    let mixed = discover(&root.join("mixed")).unwrap();
    let err = ingestor.ingest(&mixed[0], Format::Cur, &context(), &mut |_| {}).await.unwrap_err();
    assert!(matches!(err, IngestError::MixedPeriods { .. }), "{err}");
    assert!(err.to_string().contains("part-2.parquet"), "{err}");
    std::fs::write(mixed_dir.join("part-2.parquet"), b"not parquet at all").unwrap();
    let err = ingestor.ingest(&mixed[0], Format::Cur, &context(), &mut |_| {}).await.unwrap_err();
    assert!(err.to_string().contains("part-2.parquet"), "{err}");
    let incoming = objects_dir.join("cur/incoming");
    let left = std::fs::read_dir(&incoming)
        .map_or(0, |d| d.flat_map(|e| std::fs::read_dir(e.unwrap().path())).flatten().count());
    assert_eq!(left, 0, "a refused delivery leaves no temporary object");
    std::fs::remove_dir_all(root).unwrap();
}

/// Issue 15.3: the same generated month delivered as CUR 2.0 Parquet (several row groups,
/// read column by column) and as CSV gives identical lines, facets and sessions, the same
/// report per AI source, and the same answers to the cent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_month_as_parquet_and_as_csv_gives_identical_lines_facets_and_answers() {
    let root = std::env::temp_dir().join(format!("finops-columnar-{}", uuid::Uuid::now_v7()));
    let objects_dir = root.join("objects");
    std::fs::create_dir_all(&objects_dir).unwrap();
    let mut csv = Vec::new();
    write_month(&MonthSpec { period: "2026-11".into(), rows: 9_000, seed: 21, restatement: 0 }, &mut csv).unwrap();
    let csv_path = root.join("m.csv");
    std::fs::write(&csv_path, &csv).unwrap();
    let parquet_path = root.join("m.snappy.parquet");
    let lines = CurCsv::new("m.csv", csv.as_slice()).unwrap().map(Result::unwrap);
    let written = finops_attribution::cur_parquet::write_cur2(
        lines,
        std::fs::File::create(&parquet_path).unwrap(),
        2_500, // four row groups, the last one short
    )
    .unwrap();
    assert_eq!(written, 9_000);

    let store = finops_eventlog::open(&finops_e2e::fresh_sqlite_url(), Upcasters::new()).await.unwrap();
    let objects = Arc::new(LocalFileSystem::new_with_prefix(&objects_dir).unwrap());
    let ingestor = Ingestor::new(store, objects.clone());
    let from_parquet = ingestor.ingest_file(&parquet_path, Format::Cur, &context()).await.unwrap();
    let from_csv = ingestor.ingest_file(&csv_path, Format::Cur, &context()).await.unwrap();
    assert_ne!(from_parquet.batch.hash, from_csv.batch.hash, "two deliveries, two batches");
    assert_eq!(from_parquet.batch.rows, 9_000);
    assert_eq!(from_parquet.sources, from_csv.sources);
    assert!(from_parquet.sources.iter().all(|s| s.lines > 0), "every source present: {:?}", from_parquet.sources);

    let read = |location: object_store::path::Path| {
        let file = std::fs::File::open(objects_dir.join(location.as_ref())).unwrap();
        let batches = datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        datafusion::arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
    };
    for (what, location) in [
        ("lines", finops_attribution::lines_location as fn(&str, &str) -> object_store::path::Path),
        ("facets", finops_attribution::facets_location),
        ("sessions", finops_attribution::sessions_location),
    ] {
        assert_eq!(
            read(location("2026-11", &from_parquet.batch.hash)),
            read(location("2026-11", &from_csv.batch.hash)),
            "{what} differ"
        );
    }
    let engine = finops_attribution::AttributionEngine::new(objects, finops_attribution::RolePatterns::default());
    let mut answers = vec![];
    for batch in [&from_parquet.batch, &from_csv.batch] {
        let question = engine
            .question(finops_attribution::GovernanceView::default(), batch, finops_attribution::Visibility::Everything)
            .await
            .unwrap();
        let answer = question
            .attribute(&[finops_attribution::Dimension::Account, finops_attribution::Dimension::Gap])
            .await
            .unwrap();
        answers.push(answer.rows.iter().map(|r| (r.keys.clone(), r.cost_cents, r.lines)).collect::<Vec<_>>());
    }
    assert!(answers[0].len() > 4, "{:?}", answers[0]);
    assert_eq!(answers[0], answers[1]);
    std::fs::remove_dir_all(root).unwrap();
}

/// Issue 15.1: one Parquet part of several row groups is read in pieces on several threads;
/// a bad value or a line of another month in a later piece is still named by its row in
/// the file and its row group, and nothing of the delivery is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_row_in_a_later_row_group_of_one_part_is_named_as_the_files_row() {
    let root = std::env::temp_dir().join(format!("finops-pieces-{}", uuid::Uuid::now_v7()));
    let objects_dir = root.join("objects");
    std::fs::create_dir_all(&objects_dir).unwrap();
    let mut csv = Vec::new();
    write_month(&MonthSpec { period: "2026-11".into(), rows: 6_000, seed: 8, restatement: 0 }, &mut csv).unwrap();
    let lines: Vec<CurLine> = CurCsv::new("m.csv", csv.as_slice()).unwrap().collect::<Result<_, _>>().unwrap();
    let write = |name: &str, lines: &[CurLine]| {
        let path = root.join(name);
        let file = std::fs::File::create(&path).unwrap();
        finops_attribution::cur_parquet::write_cur2(lines.iter().cloned(), file, 1_000).unwrap();
        path
    };
    let store = finops_eventlog::open(&finops_e2e::fresh_sqlite_url(), Upcasters::new()).await.unwrap();
    let ingestor = Ingestor::new(store, Arc::new(LocalFileSystem::new_with_prefix(&objects_dir).unwrap()));

    let mut bad = lines.clone();
    bad[4_321].usage_account_id = "12-34".into();
    bad[5_100].usage_account_id = "56-78".into();
    let err = ingestor.ingest_file(&write("bad.parquet", &bad), Format::Cur, &context()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: row 4322, column `line_item_usage_account_id`: `12-34` is not a 12-digit account id (Parquet row group 4)",
            root.join("bad.parquet").display()
        )
    );

    let mut december = lines.clone();
    for line in &mut december[3_500..] {
        line.usage_start += chrono::Duration::days(30);
    }
    let err = ingestor.ingest_file(&write("december.parquet", &december), Format::Cur, &context()).await.unwrap_err();
    assert!(matches!(err, IngestError::MixedPeriods { row: 3_501, .. }), "{err}");
    assert!(!objects_dir.join("cur/2026-11").exists(), "a refused delivery keeps nothing");

    let report = ingestor.ingest_file(&write("good.parquet", &lines), Format::Cur, &context()).await.unwrap();
    assert_eq!(report.batch.rows, 6_000);
    std::fs::remove_dir_all(root).unwrap();
}
