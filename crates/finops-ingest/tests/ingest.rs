//! Ingestion against real stores: a generated month is validated, stored by content and
//! recorded; the same bytes again change nothing; a restatement supersedes; bad input
//! stores nothing.

use std::io::Write;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use finops_attribution::{AttributionEngine, AttributionError, GovernanceView, RolePatterns, Visibility};
use finops_cur::synthetic::{MonthSpec, write_month};
use finops_eventlog::{EventStore, StreamRead, Upcasters};
use finops_governance::CommandContext;
use finops_ingest::{Format, IngestError, Ingestor, period_stream};
use object_store::ObjectStoreExt;
use object_store::local::LocalFileSystem;

fn context() -> CommandContext {
    finops_e2e::operator_context("op-kai")
}

fn month_file(dir: &std::path::Path, name: &str, restatement: u32) -> std::path::PathBuf {
    let path = dir.join(name);
    let file = std::fs::File::create(&path).unwrap();
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    write_month(&MonthSpec { period: "2026-11".into(), rows: 3_000, seed: 9, restatement }, &mut gz).unwrap();
    gz.finish().unwrap().flush().unwrap();
    path
}

async fn check(store: Arc<dyn EventStore>) {
    let dir = std::env::temp_dir().join(format!("finops-ingest-{}", uuid::Uuid::now_v7()));
    let objects_dir = dir.join("objects");
    std::fs::create_dir_all(&objects_dir).unwrap();
    let objects = Arc::new(LocalFileSystem::new_with_prefix(&objects_dir).unwrap());
    let ingestor = Ingestor::new(store.clone(), objects.clone());

    let first = ingestor.ingest_file(&month_file(&dir, "m.csv.gz", 0), Format::Cur, &context()).await.unwrap();
    assert_eq!((first.batch.period.as_str(), first.batch.rows), ("2026-11", 3_000));
    assert!(first.batch.caller_identity);
    assert_eq!(first.superseded, None);
    let location = object_store::path::Path::from(first.batch.location.clone());
    let stored = objects.head(&location).await.unwrap();
    assert_eq!(stored.size, first.batch.bytes, "the object holds the delivered bytes");
    assert!(first.batch.location.ends_with(&format!("{}.csv.gz", first.batch.hash)), "content-addressed");

    let again = ingestor.ingest_file(&month_file(&dir, "copy.csv.gz", 0), Format::Cur, &context()).await.unwrap();
    assert!(again.already_current, "the same bytes change nothing");

    // A batch whose columnar form is of an earlier layout (here: its facets are gone) is
    // refused by name, never read wrongly; ingesting its delivery again writes it.
    let facets = finops_attribution::facets_location("2026-11", &first.batch.hash);
    objects.delete(&facets).await.unwrap();
    let engine = AttributionEngine::new(objects.clone(), RolePatterns::default());
    let ask = || engine.question(GovernanceView::default(), &first.batch, Visibility::Everything);
    let outdated = ask().await.err().expect("no facets, no answer");
    assert!(matches!(outdated, AttributionError::Outdated { .. }), "{outdated}");
    assert!(outdated.to_string().contains("ingest the same delivery again"), "{outdated}");
    let rewritten = ingestor.ingest_file(&month_file(&dir, "m.csv.gz", 0), Format::Cur, &context()).await.unwrap();
    assert!(rewritten.already_current, "nothing new is recorded");
    let answer = ask().await.unwrap().attribute(&[]).await.unwrap();
    assert!(answer.rows.iter().map(|r| r.lines).sum::<u64>() > 0, "the batch answers again");
    let restated = ingestor.ingest_file(&month_file(&dir, "r1.csv.gz", 1), Format::Cur, &context()).await.unwrap();
    assert_eq!(restated.superseded.as_deref(), Some(first.batch.hash.as_str()));
    let events = store.read_stream(&period_stream("2026-11"), StreamRead::all()).await.unwrap();
    assert_eq!(events.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>(), vec!["CurBatchIngested"; 2]);

    // A bad row: the error names the place, and nothing new is stored.
    let bad = dir.join("bad.csv");
    let mut text = Vec::new();
    write_month(&MonthSpec { period: "2026-10".into(), rows: 50, seed: 3, restatement: 0 }, &mut text).unwrap();
    let mut text = String::from_utf8(text).unwrap();
    let row_30 = text.lines().nth(30).unwrap().to_owned();
    // Replace the usage start date (the sixth field) with an impossible one.
    let mut fields: Vec<&str> = row_30.splitn(7, ',').collect();
    fields[5] = "2026-13-45T00:00:00Z";
    let broken = fields.join(",");
    text = text.replace(&row_30, &broken);
    std::fs::write(&bad, text).unwrap();
    let err = ingestor.ingest_file(&bad, Format::Cur, &context()).await.unwrap_err();
    assert!(matches!(err, IngestError::Invalid(_)), "{err}");
    assert!(
        err.to_string().contains(
            "bad.csv: row 30, column `line_item_usage_start_date`: `2026-13-45T00:00:00Z` is not a timestamp"
        ),
        "{err}"
    );
    assert!(
        store.read_stream(&period_stream("2026-10"), StreamRead::all()).await.unwrap().is_empty(),
        "nothing recorded"
    );
    assert!(!objects_dir.join("cur/2026-10").exists(), "nothing stored");

    // Two periods in one delivery are refused.
    let mixed = dir.join("mixed.csv");
    let mut a = Vec::new();
    write_month(&MonthSpec { period: "2026-09".into(), rows: 5, seed: 1, restatement: 0 }, &mut a).unwrap();
    let mut b = Vec::new();
    write_month(&MonthSpec { period: "2026-08".into(), rows: 5, seed: 1, restatement: 0 }, &mut b).unwrap();
    let b = String::from_utf8(b).unwrap();
    a.extend_from_slice(b.split_once('\n').unwrap().1.as_bytes());
    std::fs::write(&mixed, a).unwrap();
    let err = ingestor.ingest_file(&mixed, Format::Cur, &context()).await.unwrap_err();
    assert!(err.to_string().contains("row 6 is in billing period 2026-08"), "{err}");
    assert_eq!(files_under(&objects_dir.join("cur/incoming")), 0, "refused deliveries leave no temporary object");
    let _ = std::fs::remove_dir_all(dir);
}

/// Files anywhere under `dir` (none when it does not exist).
fn files_under(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries.map(|e| e.unwrap().path()).map(|p| if p.is_dir() { files_under(&p) } else { 1 }).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_is_stored_while_its_rows_are_read() {
    let dir = std::env::temp_dir().join(format!("finops-ingest-{}", uuid::Uuid::now_v7()));
    let objects_dir = dir.join("objects");
    std::fs::create_dir_all(&objects_dir).unwrap();
    let objects = Arc::new(LocalFileSystem::new_with_prefix(&objects_dir).unwrap());
    let store = finops_eventlog::open(&finops_e2e::fresh_sqlite_url(), Upcasters::new()).await.unwrap();
    let ingestor = Ingestor::new(store, objects.clone());
    // More rows than a progress report's worth (64 K), so that one comes mid-pass.
    const ROWS: u64 = 70_000;
    let path = dir.join("big.csv");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    write_month(&MonthSpec { period: "2026-11".into(), rows: ROWS, seed: 5, restatement: 0 }, &mut file).unwrap();
    file.flush().unwrap();
    drop(file);

    // The delivered bytes go to storage as they are read: by the first progress report
    // (written after the first megabyte was handed over) a temporary object exists.
    let incoming = objects_dir.join("cur/incoming");
    let mut mid_pass = Vec::new();
    let report = ingestor
        .ingest(&finops_ingest::Delivery::file(&path), Format::Cur, &context(), &mut |p| {
            if p.rows < ROWS {
                mid_pass.push(files_under(&incoming));
            }
        })
        .await
        .unwrap();
    assert!(!mid_pass.is_empty(), "a progress report came while rows were read");
    assert!(mid_pass.iter().all(|&files| files > 0), "stored while read: {mid_pass:?}");

    // Once accepted, the bytes are under their content name and nothing temporary is left.
    assert_eq!(report.batch.rows, ROWS);
    let stored = objects.head(&object_store::path::Path::from(report.batch.location.clone())).await.unwrap();
    assert_eq!(stored.size, std::fs::metadata(&path).unwrap().len(), "the object holds the delivered bytes");
    let delivered = std::fs::read(&path).unwrap();
    let kept = objects.get(&stored.location).await.unwrap().bytes().await.unwrap();
    assert!(kept == delivered.as_slice(), "byte for byte");
    assert_eq!(files_under(&incoming), 0, "no temporary object is left");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn temporary_objects_of_a_dead_ingest_are_swept_once_stale() {
    let objects = object_store::memory::InMemory::new();
    let left = object_store::path::Path::from("cur/incoming/0190-dead/0");
    let kept = object_store::path::Path::from("cur/2026-11/abc.csv");
    objects.put(&left, b"half a delivery".to_vec().into()).await.unwrap();
    objects.put(&kept, b"a delivery".to_vec().into()).await.unwrap();

    // Younger than the threshold (an ingest may still be writing it): kept.
    let an_hour_ago = chrono::Utc::now() - chrono::TimeDelta::hours(1);
    assert_eq!(finops_ingest::staging::sweep_incoming(&objects, an_hour_ago).await.unwrap(), 0);
    assert!(objects.head(&left).await.is_ok());
    // Older: removed; nothing outside `cur/incoming/` is touched.
    let later = chrono::Utc::now() + chrono::TimeDelta::seconds(1);
    assert_eq!(finops_ingest::staging::sweep_incoming(&objects, later).await.unwrap(), 1);
    assert!(objects.head(&left).await.is_err());
    assert!(objects.head(&kept).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_on_postgres() {
    let Some(url) = finops_e2e::fresh_postgres_url().await else { return };
    check(finops_eventlog::open(&url, Upcasters::new()).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_on_sqlite() {
    check(finops_eventlog::open(&finops_e2e::fresh_sqlite_url(), Upcasters::new()).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_focus_sample_ingests() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/real-data/focus-1.0_sample_1000rows_FinOps-FOCUS-Sample-Data.csv"
    );
    if !std::path::Path::new(path).exists() {
        eprintln!("SKIPPED: {path} not present");
        return;
    }
    let store = finops_eventlog::open(&finops_e2e::fresh_sqlite_url(), Upcasters::new()).await.unwrap();
    let dir = std::env::temp_dir().join(format!("finops-focus-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let ingestor = Ingestor::new(store, Arc::new(LocalFileSystem::new_with_prefix(&dir).unwrap()));
    let report = ingestor.ingest_file(std::path::Path::new(path), Format::Focus, &context()).await.unwrap();
    assert_eq!(
        (report.batch.period.as_str(), report.batch.rows, report.batch.caller_identity),
        ("2024-09", 942, false)
    );

    // The same sample as FOCUS Parquet, typed as a FOCUS export types it (timestamps,
    // doubles, real NULLs), reads into the same columnar lines.
    let ctx = datafusion::prelude::SessionContext::new();
    ctx.register_csv("focus", path, datafusion::prelude::CsvReadOptions::new()).await.unwrap();
    let fields: Vec<String> =
        ctx.table("focus").await.unwrap().schema().fields().iter().map(|f| f.name().clone()).collect();
    let typed = |name: &str| -> String {
        let column = format!("NULLIF(CAST(\"{name}\" AS VARCHAR), 'NULL')");
        match name {
            "BilledCost" | "EffectiveCost" | "ListCost" | "ContractedCost" | "ConsumedQuantity" | "PricingQuantity" => {
                format!("CAST({column} AS DOUBLE) AS \"{name}\"")
            }
            n if n.ends_with("PeriodStart") || n.ends_with("PeriodEnd") => {
                format!("CAST({column} AS TIMESTAMP) AS \"{name}\"")
            }
            _ => format!("{column} AS \"{name}\""),
        }
    };
    let select = format!("SELECT {} FROM focus", fields.iter().map(|f| typed(f)).collect::<Vec<_>>().join(", "));
    let parquet = dir.join("focus-sample.parquet");
    let batches = ctx.sql(&select).await.unwrap().collect().await.unwrap();
    let schema = batches[0].schema();
    assert!(matches!(schema.field_with_name("ChargePeriodStart").unwrap().data_type(), DataType::Timestamp(..)));
    let mut writer =
        datafusion::parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&parquet).unwrap(), schema, None)
            .unwrap();
    for b in &batches {
        writer.write(b).unwrap();
    }
    writer.close().unwrap();
    let from_parquet = ingestor.ingest_file(&parquet, Format::Focus, &context()).await.unwrap();
    assert_eq!((from_parquet.batch.rows, from_parquet.batch.format.as_str()), (942, "focus"));
    assert_ne!(from_parquet.batch.hash, report.batch.hash, "a different delivery, a different batch");
    let lines = |hash: &str| {
        let file = std::fs::File::open(dir.join(finops_attribution::lines_location("2024-09", hash).as_ref())).unwrap();
        let batches = datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        datafusion::arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
    };
    assert_eq!(lines(&from_parquet.batch.hash), lines(&report.batch.hash), "FOCUS Parquet and CSV read alike");
    let _ = std::fs::remove_dir_all(dir);
}
