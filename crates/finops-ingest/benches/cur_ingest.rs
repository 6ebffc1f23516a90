//! A fresh CUR 2.0 Parquet month to its first answer (issue 15), against DuckDB on the same
//! file in the same run.
//!
//! `cargo bench --workspace --bench cur_ingest` (rows: `FINOPS_BENCH_ROWS`, default
//! 1 000 000; `FINOPS_BENCH_BASELINE=0` skips the previous reader). Steps:
//!
//! 1. generate a synthetic month (`finops_cur::synthetic`) and write it as one CUR 2.0
//!    Parquet file in the shape AWS delivers (`cur_parquet::write_cur2`: Glue types, the
//!    `product` and tag maps, snappy, 128 K-row groups);
//! 2. ingest it through the real `Ingestor` (hash, check, columnar lines, local object
//!    store, `CurBatchIngested` in a SQLite log): rows/s, MB/s, and the process's peak
//!    resident memory (VmHWM) right after;
//! 3. the first answer: attribution by workload × gap from a new engine; time to the first
//!    answer = ingest + this;
//! 4. the reading alone (file to columnar lines, no hashing, storing or recording), with
//!    the columnar reader and with the previous one (Parquet rendered as CSV text and
//!    parsed back, its lines handed to the writer in batches of 32 K), on the same file:
//!    the ratio;
//! 5. DuckDB (`python3 -m pip install duckdb`, 2 threads): the attribution question on the
//!    raw file from a new connection, and a rewrite of the file into the columns the ingest
//!    writes (`COPY (SELECT …) TO … (FORMAT parquet)`, the derived columns in SQL);
//! 6. the same month as a CSV delivery (`FINOPS_BENCH_CSV_ROWS` rows, default the smaller
//!    of the rows and 1 000 000; 0 skips it): ingested through the real `Ingestor`, and the
//!    reading alone with the columnar CSV reader and — the baseline, same file, same run —
//!    the row reader it replaced.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use finops_attribution::csv_batches::CurCsvBatches;
use finops_attribution::cur_parquet::{CurBatch, CurParquet, write_cur2};
use finops_attribution::lines::LinesWriter;
use finops_attribution::parquet_csv::parquet_as_csv;
use finops_attribution::{AttributionEngine, Dimension, GovernanceView, RolePatterns, Visibility};
use finops_cur::csv_lines::{CurCsv, CurLine};
use finops_ingest::{Format, Ingestor};
use uuid::Uuid;

/// The allocator the `finops` binary runs with (ARCHITECTURE.md), so the peak memory
/// measured is the one an operator sees.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The month as CUR 2.0 Parquet, generated as CSV text in a thread and read back line by
/// line (memory stays bounded whatever the size).
fn generate(rows: u64, path: &Path) {
    let (reader, mut writer) = std::io::pipe().unwrap();
    let generator = std::thread::spawn(move || {
        let spec = finops_cur::synthetic::MonthSpec { period: "2026-11".into(), rows, seed: 7, restatement: 0 };
        let mut out = std::io::BufWriter::with_capacity(1 << 20, &mut writer);
        finops_cur::synthetic::write_month(&spec, &mut out).unwrap();
    });
    let lines = CurCsv::new("generated.csv", std::io::BufReader::new(reader)).unwrap().map(Result::unwrap);
    let written = write_cur2(lines, BufWriter::new(File::create(path).unwrap()), 128 * 1024).unwrap();
    generator.join().unwrap();
    assert_eq!(written, rows);
}

/// Reads into columnar lines (written to nowhere) the batches `read` hands out: (seconds
/// in all, seconds of them in the writer's finish — the clusters read back from the spill
/// and encoded as Parquet).
fn read_into_lines(read: impl FnOnce(&mut dyn FnMut(&CurBatch))) -> (f64, f64) {
    let started = Instant::now();
    let sink = || BufWriter::new(File::create("/dev/null").unwrap());
    let mut writer = LinesWriter::new(sink(), sink(), sink()).unwrap();
    read(&mut |batch| writer.push_batch(batch).unwrap());
    let finishing = Instant::now();
    writer.finish().unwrap();
    (started.elapsed().as_secs_f64(), finishing.elapsed().as_secs_f64())
}

/// Hands a row reader's lines to `push` in batches of 32 K, as a columnar reader would.
fn in_batches(lines: impl Iterator<Item = CurLine>, push: &mut dyn FnMut(&CurBatch)) {
    let mut pending = Vec::with_capacity(32 * 1024);
    for line in lines {
        pending.push(line);
        if pending.len() == 32 * 1024 {
            push(&CurBatch::of_lines(&pending));
            pending.clear();
        }
    }
    if !pending.is_empty() {
        push(&CurBatch::of_lines(&pending));
    }
}

const DUCKDB_SCRIPT: &str = r#"
import duckdb, json, sys, time
path, out, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
AI = """(line_item_product_code IN ('AmazonBedrock','AmazonBedrockService','AmazonBedrockFoundationModels','AmazonBedrockAgentCore')
   OR (bill_billing_entity = 'AWS Marketplace' AND (product['product_name'] LIKE '%Bedrock%' OR product['product_name'] LIKE '%Claude Platform%')))"""
# The first question a user asks of a new month: its AI spend per account and caller.
QUERY = f"""SELECT line_item_usage_account_id, line_item_iam_principal, SUM(line_item_unblended_cost) AS cost, COUNT(*) AS lines
   FROM read_parquet('{path}') WHERE {AI} GROUP BY 1, 2 ORDER BY 1, 2"""
answers = []
for _ in range(3):
    t = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"SET threads TO {threads}")
    con.execute("SET enable_progress_bar = false")
    rows = con.execute(QUERY).fetchall()
    answers.append(time.perf_counter() - t)
    con.close()
# The rewrite: the columns the ingest writes, the derived ones as close as SQL allows
# (platform, region, model, token type, principal parts) from a new connection.
REWRITE = f"""COPY (SELECT line_item_usage_account_id AS usage_account_id,
    CAST(line_item_usage_start_date AS DATE) AS usage_date, line_item_usage_start_date AS usage_start,
    line_item_line_item_type AS line_item_type, line_item_product_code AS product_code,
    line_item_usage_type AS usage_type, line_item_resource_id AS resource_id, line_item_usage_amount AS usage_amount,
    CAST(floor(line_item_unblended_cost) AS BIGINT) AS cost_dollars,
    CAST(round((line_item_unblended_cost - floor(line_item_unblended_cost)) * 1e10) AS BIGINT) AS cost_fraction,
    CASE WHEN product['product_name'] LIKE '%Claude Platform%' OR line_item_usage_type LIKE '%\\_CCU%' ESCAPE '\\' THEN 'claude_platform'
         WHEN bill_billing_entity = 'AWS Marketplace' AND product['product_name'] LIKE '%Bedrock%' THEN 'marketplace'
         WHEN line_item_product_code LIKE 'AmazonBedrock%' THEN 'bedrock' END AS platform,
    regexp_extract(line_item_usage_type, '^([A-Z]{{2,4}}[0-9])-', 1) AS region,
    coalesce(nullif(regexp_extract(line_item_resource_id, '(foundation-model/|inference-profile/[a-z]+\\.)(.*)$', 2), ''),
             regexp_extract(line_item_usage_type, '^[A-Z0-9]+-([A-Za-z0-9.-]+?)-(input|output|cache)', 1)) AS model,
    CASE WHEN line_item_usage_type ILIKE '%cache-read%' OR line_item_usage_type LIKE '%CacheRead%' THEN 'cache_read'
         WHEN line_item_usage_type ILIKE '%cache-write%' THEN 'cache_write'
         WHEN line_item_usage_type ILIKE '%input%' THEN 'input'
         WHEN line_item_usage_type ILIKE '%output%' THEN 'output' ELSE '' END AS token_type,
    line_item_usage_amount * CASE WHEN line_item_usage_type LIKE '%-Units' THEN 1e6 ELSE 1e3 END AS tokens,
    line_item_usage_type LIKE '%Guardrail%' AS guardrail,
    CASE WHEN line_item_usage_type LIKE '%Guardrail%' THEN line_item_resource_id ELSE coalesce(resource_tags['user_workspace'], '') END AS anchor,
    regexp_extract(line_item_iam_principal, '^arn:aws:(?:sts|iam)::[0-9]+:([a-z-]+)/', 1) AS principal_kind,
    regexp_extract(line_item_iam_principal, '^arn:aws:(?:sts|iam)::([0-9]+):', 1) AS principal_account,
    regexp_extract(line_item_iam_principal, '^arn:aws:(?:sts|iam)::[0-9]+:[a-z-]+/([^/]+)', 1) AS principal_name
  FROM read_parquet('{path}')) TO '{out}' (FORMAT parquet, COMPRESSION lz4, ROW_GROUP_SIZE 131072)"""
t = time.perf_counter()
con = duckdb.connect()
con.execute(f"SET threads TO {threads}")
con.execute("SET enable_progress_bar = false")
con.execute(REWRITE)
rewrite = time.perf_counter() - t
con.close()
print(json.dumps({"first": answers[0], "best": min(answers), "rewrite": rewrite, "groups": len(rows),
                  "ai_lines": sum(r[3] for r in rows), "version": duckdb.__version__}))
"#;

fn main() {
    let rows: u64 = std::env::var("FINOPS_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let baseline = std::env::var("FINOPS_BENCH_BASELINE").map_or(true, |v| v != "0");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir: PathBuf = std::env::temp_dir().join(format!("finops-bench-{}", Uuid::now_v7()));
    std::fs::create_dir_all(dir.join("objects")).unwrap();
    let parquet = dir.join("2026-11.snappy.parquet");

    // 1. Generate.
    let started = Instant::now();
    generate(rows, &parquet);
    let bytes = std::fs::metadata(&parquet).unwrap().len();
    println!(
        "generated {rows} rows as CUR 2.0 Parquet ({:.0} MB) in {:.1} s",
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (ingest_s, answer_s, ai_lines) = runtime.block_on(async {
        // 2. Ingest through the real path.
        let store = finops_eventlog::open(
            &format!("sqlite://{}", dir.join("log.db").display()),
            finops_eventlog::Upcasters::default(),
        )
        .await
        .unwrap();
        let objects: Arc<dyn object_store::ObjectStore> =
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.join("objects")).unwrap());
        let ingestor = Ingestor::new(store, objects.clone());
        let context = finops_e2e::operator_context("bench");
        let started = Instant::now();
        let report: finops_ingest::IngestReport =
            ingestor.ingest_file(&parquet, Format::Cur, &context).await.unwrap();
        let ingest_s = started.elapsed().as_secs_f64();
        println!(
            "ingest: {rows} rows in {ingest_s:.2} s = {:.0} rows/s, {:.0} MB/s (target ≥ 1 000 000 rows/s); peak RSS {:.0} MiB (target ≤ 1 024)",
            rows as f64 / ingest_s,
            bytes as f64 / 1e6 / ingest_s,
            finops_e2e::peak_rss_mib()
        );
        let ai_lines: u64 = report.sources.iter().map(|s| s.lines).sum();

        // 3. The first answer, from a new engine.
        let started = Instant::now();
        let engine = AttributionEngine::new(objects, RolePatterns::default());
        let question = engine.question(GovernanceView::default(), &report.batch, Visibility::Everything).await.unwrap();
        let answer = question.attribute(&[Dimension::Workload, Dimension::Gap]).await.unwrap();
        let answer_s = started.elapsed().as_secs_f64();
        println!(
            "first answer (attribution by workload × gap, {} groups, total ${:.2}): {answer_s:.3} s",
            answer.rows.len(),
            answer.total_cents as f64 / 100.0
        );
        (ingest_s, answer_s, ai_lines)
    });

    // 4. Reading alone, columnar and as before.
    let (columnar, finish_s) = read_into_lines(|push| {
        for batch in CurParquet::open("m.parquet", File::open(&parquet).unwrap()).unwrap() {
            push(&batch.unwrap());
        }
    });
    println!("read into columnar lines: columnar reader {columnar:.2} s = {:.0} rows/s", rows as f64 / columnar);
    // Where the reading goes: decoding and checking the batches alone (the rest of the
    // columnar figure is the lines writer).
    let started = Instant::now();
    let decoded: usize =
        CurParquet::open("m.parquet", File::open(&parquet).unwrap()).unwrap().map(|b| b.unwrap().len()).sum();
    let decode_s = started.elapsed().as_secs_f64();
    assert_eq!(decoded as u64, rows);
    println!(
        "  of which: decode and check {decode_s:.2} s ({:.0} %), lines writer {:.2} s ({:.0} %: pushing {:.2} s, finishing {finish_s:.2} s)",
        100.0 * decode_s / columnar,
        columnar - decode_s,
        100.0 * (columnar - decode_s) / columnar,
        columnar - decode_s - finish_s,
    );
    if baseline {
        let (previous, _) = read_into_lines(|push| {
            let csv = parquet_as_csv(File::open(&parquet).unwrap()).unwrap();
            in_batches(CurCsv::new("m.parquet", csv).unwrap().map(Result::unwrap), push);
        });
        println!(
            "  previous reader (Parquet as CSV text, parsed back; its lines in batches of 32 K) {previous:.2} s = {:.0} rows/s: columnar is {:.2} × faster",
            rows as f64 / previous,
            previous / columnar
        );
    }

    // 5. DuckDB on the same file.
    let duck = std::process::Command::new("python3")
        .args(["-c", DUCKDB_SCRIPT])
        .arg(&parquet)
        .arg(dir.join("duckdb-rewrite.parquet"))
        .arg(threads.to_string())
        .output();
    match duck {
        Ok(out) if out.status.success() => {
            // The last line: anything DuckDB prints before it is not the result.
            let stdout = String::from_utf8_lossy(&out.stdout);
            let result: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap();
            let (first, best, rewrite) = (
                result["first"].as_f64().unwrap(),
                result["best"].as_f64().unwrap(),
                result["rewrite"].as_f64().unwrap(),
            );
            println!(
                "DuckDB {}: raw-file answer ({} groups, {} AI lines; ours {ai_lines}) first {first:.3} s, best of 3 {best:.3} s; \
                 rewrite into the ingest's columns {rewrite:.2} s",
                result["version"].as_str().unwrap_or("?"),
                result["groups"],
                result["ai_lines"],
            );
            println!(
                "ingest / DuckDB rewrite = {:.2} (target < 1); time to first answer {:.2} s = {:.1} × DuckDB's raw-file answer (target ≤ 10)",
                ingest_s / rewrite,
                ingest_s + answer_s,
                (ingest_s + answer_s) / first
            );
        }
        Ok(out) => println!("DuckDB baseline failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => println!("DuckDB baseline not run (python3: {e})"),
    }

    // 6. The same month delivered as CSV.
    let csv_rows =
        std::env::var("FINOPS_BENCH_CSV_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(rows.min(1_000_000));
    if csv_rows > 0 {
        bench_csv(csv_rows, &dir, &runtime);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Step 6: a CSV month ingested, and read with the columnar CSV reader against the row
/// reader, on the same file.
fn bench_csv(rows: u64, dir: &Path, runtime: &tokio::runtime::Runtime) {
    let csv = dir.join("2026-11.csv");
    let spec = finops_cur::synthetic::MonthSpec { period: "2026-11".into(), rows, seed: 7, restatement: 0 };
    finops_cur::synthetic::write_month(&spec, &mut BufWriter::with_capacity(1 << 20, File::create(&csv).unwrap()))
        .unwrap();
    let bytes = std::fs::metadata(&csv).unwrap().len();
    println!("CSV: {rows} rows ({:.0} MB)", bytes as f64 / 1e6);
    let ingest_s = runtime.block_on(async {
        let store = finops_eventlog::open(
            &format!("sqlite://{}", dir.join("csv-log.db").display()),
            finops_eventlog::Upcasters::default(),
        )
        .await
        .unwrap();
        let objects: Arc<dyn object_store::ObjectStore> =
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.join("objects")).unwrap());
        let ingestor = Ingestor::new(store, objects);
        let started = Instant::now();
        ingestor.ingest_file(&csv, Format::Cur, &finops_e2e::operator_context("bench")).await.unwrap();
        started.elapsed().as_secs_f64()
    });
    println!(
        "  ingest: {ingest_s:.2} s = {:.0} rows/s, {:.0} MB/s",
        rows as f64 / ingest_s,
        bytes as f64 / 1e6 / ingest_s
    );
    let (columnar, _) = read_into_lines(|push| {
        let input = std::io::BufReader::with_capacity(256 * 1024, File::open(&csv).unwrap());
        for batch in CurCsvBatches::new("m.csv", input).unwrap() {
            push(&batch.unwrap());
        }
    });
    let started = Instant::now();
    let input = std::io::BufReader::with_capacity(256 * 1024, File::open(&csv).unwrap());
    let decoded: usize = CurCsvBatches::new("m.csv", input).unwrap().map(|b| b.unwrap().len()).sum();
    let decode_s = started.elapsed().as_secs_f64();
    assert_eq!(decoded as u64, rows);
    let (previous, _) = read_into_lines(|push| {
        let csv = CurCsv::new("m.csv", std::io::BufReader::new(File::open(&csv).unwrap())).unwrap();
        in_batches(csv.map(Result::unwrap), push);
    });
    let started = Instant::now();
    let parsed = CurCsv::new("m.csv", std::io::BufReader::new(File::open(&csv).unwrap())).unwrap().count();
    let parse_s = started.elapsed().as_secs_f64();
    assert_eq!(parsed as u64, rows);
    println!(
        "  read into columnar lines: columnar CSV reader {columnar:.2} s (decode and check {decode_s:.2} s), \
         row reader {previous:.2} s (parse and check {parse_s:.2} s): columnar is {:.2} × faster",
        previous / columnar
    );
}
