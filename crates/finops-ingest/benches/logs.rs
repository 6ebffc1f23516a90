//! Invocation-log ingest (issue 13.10) against DuckDB's `read_json` of the same files in the
//! same run, and the time from a file landing in a followed folder to its investigation.
//!
//! `cargo bench --workspace --bench logs` (records: `FINOPS_BENCH_LOG_RECORDS`, default
//! 1 000 000, in gzip files of 100 000 as Bedrock delivers them — many smaller files in
//! reality). Steps:
//!
//! 1. generate the files (`finops_cur::synthetic::write_log_records`: real record shape,
//!    short prompt and reply bodies);
//! 2. ingest them through the real `LogIngestor` as `finops logs ingest` does (a file per
//!    core at a time; columnar read, hash, usage Parquet, local object store,
//!    `InvocationLogIngested` in a SQLite log): records/s, MB/s of gzip and of JSON text,
//!    and peak resident memory;
//! 3. DuckDB (`python3 -m pip install duckdb`), a new connection, the same hourly sums from
//!    the same files with `read_json` — the token totals must agree — and the ratio;
//! 4. latency: a file with a storm dropped into a folder a follower watches (one look a
//!    second), to the investigation recorded by the detector (polling the log);
//! 5. the whole path on a small log, through the real server's processes: a file of a
//!    governed workload's role burning its estimate lands → the investigation recorded and
//!    the threshold webhook received by a local endpoint.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use finops_ingest::logs::{LogFollower, LogIngestor, find_logs};
use uuid::Uuid;

const PER_FILE: u64 = 100_000;

fn gzip_file(path: &Path, write: impl FnOnce(&mut dyn std::io::Write)) -> u64 {
    let file = std::fs::File::create(path).unwrap();
    let mut gz = flate2::write::GzEncoder::new(std::io::BufWriter::new(file), flate2::Compression::fast());
    let mut counted = Counted(&mut gz, 0);
    write(&mut counted);
    let text = counted.1;
    gz.finish().unwrap();
    text
}

/// A writer that counts what passes (the JSON text's bytes).
struct Counted<'a, W: std::io::Write>(&'a mut W, u64);

impl<W: std::io::Write> std::io::Write for Counted<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.0.write(buf)?;
        self.1 += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

const DUCKDB_SCRIPT: &str = r#"
import duckdb, json, sys, time
t = time.perf_counter()
con = duckdb.connect()
con.execute("SET threads TO %d" % int(sys.argv[2]))
rows = con.execute(f"""
  SELECT date_trunc('hour', CAST("timestamp" AS TIMESTAMP)) AS hour, accountId, identity.arn, modelId, region,
         sum(input.inputTokenCount), sum(output.outputTokenCount), sum(input.cacheReadInputTokenCount), count(*)
  FROM read_json('{sys.argv[1]}/*.json.gz', format = 'newline_delimited')
  GROUP BY ALL""").fetchall()
s = time.perf_counter() - t
print(json.dumps({"seconds": s, "groups": len(rows), "tokens": int(sum(r[5] + r[6] + r[7] for r in rows)),
                  "records": int(sum(r[8] for r in rows)), "version": duckdb.__version__}))
"#;

fn main() {
    let records: u64 = std::env::var("FINOPS_BENCH_LOG_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let dir: PathBuf = std::env::temp_dir().join(format!("finops-bench-logs-{}", Uuid::now_v7()));
    let files = dir.join("files");
    std::fs::create_dir_all(&files).unwrap();

    // 1. Generate.
    let started = Instant::now();
    let (mut text_bytes, mut first) = (0u64, 0u64);
    while first < records {
        let n = PER_FILE.min(records - first);
        let path = files.join(format!("part-{first:010}.json.gz"));
        text_bytes += gzip_file(&path, |out| {
            let mut out = out;
            finops_cur::synthetic::write_log_records("2026-11", 7, first, n, &mut out).unwrap();
        });
        first += n;
    }
    let found = runtime.block_on(find_logs(&files.display().to_string())).unwrap();
    let gz_bytes: u64 = found.iter().map(|f| f.size).sum();
    println!(
        "generated {records} records in {} files ({:.0} MB gzip, {:.0} MB JSON) in {:.1} s",
        found.len(),
        gz_bytes as f64 / 1e6,
        text_bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );

    // 2. Ingest.
    let store_url = format!("sqlite://{}", dir.join("finops.db").display());
    let store = runtime.block_on(finops_eventlog::open(&store_url, finops_eventlog::Upcasters::default())).unwrap();
    std::fs::create_dir_all(dir.join("objects")).unwrap();
    let objects: Arc<dyn object_store::ObjectStore> =
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.join("objects")).unwrap());
    let ingestor = Arc::new(LogIngestor::new(store.clone(), objects.clone()));
    let started = Instant::now();
    let reports = runtime.block_on(ingestor.ingest_all(&found, "bench", threads));
    let ours = started.elapsed().as_secs_f64();
    let mut ingested = 0u64;
    let mut tokens = 0u64;
    for (file, report) in found.iter().zip(reports) {
        let report = report.unwrap();
        assert!(report.columnar, "the columnar path read {}", file.name);
        ingested += report.file.records;
        let usage = runtime
            .block_on(finops_attribution::invocation_usage::read_usage(
                objects.as_ref(),
                std::slice::from_ref(&report.file.usage_location),
            ))
            .unwrap();
        tokens += usage.iter().map(|u| u.tokens).sum::<u64>();
    }
    assert_eq!(ingested, records);
    println!(
        "ingest: {ingested} records in {ours:.2} s — {:.0} records/s, {:.1} MB/s gzip, {:.1} MB/s JSON; peak RSS {:.0} MiB",
        ingested as f64 / ours,
        gz_bytes as f64 / 1e6 / ours,
        text_bytes as f64 / 1e6 / ours,
        finops_e2e::peak_rss_mib()
    );

    // 3. DuckDB on the same files.
    let script = dir.join("duckdb_logs.py");
    std::fs::write(&script, DUCKDB_SCRIPT).unwrap();
    let out = std::process::Command::new("python3").arg(&script).arg(&files).arg(threads.to_string()).output().unwrap();
    if out.status.success() {
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let duck = v["seconds"].as_f64().unwrap();
        assert_eq!(v["records"].as_u64(), Some(records), "DuckDB read every record");
        assert_eq!(v["tokens"].as_u64(), Some(tokens), "the same token totals (input, output, cache read)");
        println!(
            "duckdb {} read_json + hourly sums: {duck:.2} s — {:.0} records/s; ours / duckdb = {:.2}×",
            v["version"].as_str().unwrap_or("?"),
            records as f64 / duck,
            ours / duck
        );
    } else {
        println!("duckdb: not run ({})", String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or(""));
    }

    // 4. Latency: a storm file lands in a followed folder → the investigation is recorded.
    let followed = dir.join("followed");
    std::fs::create_dir_all(&followed).unwrap();
    let checkpoints = runtime.block_on(finops_projections::ReadModels::open(&store_url)).unwrap();
    let engine = finops_attribution::AttributionEngine::new(objects.clone(), Default::default());
    let detector = finops_processes::InvestigationDetector::new(
        store.clone(),
        checkpoints,
        engine,
        finops_domain::investigations::DetectorSettings::default(),
    );
    // Catch up with what step 2 recorded first: the latency is of the new file alone.
    runtime.block_on(detector.run_once()).unwrap();
    // `spawn` needs the runtime's context.
    let _context = runtime.enter();
    let detecting = detector.spawn(Duration::from_secs(1));
    let following = {
        let followed = followed.display().to_string();
        let ingestor = LogIngestor::new(store.clone(), objects.clone());
        runtime.spawn(async move {
            let mut follower = LogFollower::new(vec![followed]);
            loop {
                let _ = follower.round(&ingestor, "bench", &mut |_, _| {}).await;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    let storm = (2..6)
        .map(|h| {
            format!(
                "{{\"schemaType\":\"ModelInvocationLog\",\"timestamp\":\"2026-11-28T{h:02}:10:00Z\",\"accountId\":\"111122223333\",\"identity\":{{\"arn\":\"arn:aws:sts::111122223333:assumed-role/runaway-batch/w\"}},\"region\":\"us-east-1\",\"requestId\":\"storm-{h}\",\"operation\":\"InvokeModel\",\"modelId\":\"anthropic.claude-sonnet-4-20250514-v1:0\",\"input\":{{\"inputTokenCount\":400000000}},\"output\":{{\"outputTokenCount\":1000}}}}\n"
            )
        })
        .collect::<String>();
    let staged = dir.join("storm.json");
    std::fs::write(&staged, storm).unwrap();
    let before = runtime.block_on(store.seal_committed()).unwrap().position;
    let landed = Instant::now();
    std::fs::rename(&staged, followed.join("storm.json")).unwrap();
    let latency = runtime.block_on(async {
        loop {
            let page = store.read_all(finops_eventlog::AllRead::forwards_after(before, 1_000)).await.unwrap();
            if page.iter().any(|e| e.event_type == "InvestigationOpened") {
                return landed.elapsed().as_secs_f64();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    following.abort();
    detecting.abort();
    println!(
        "latency: a log file landing in a followed folder (looked at every 1 s) → investigation recorded: {latency:.2} s"
    );
    let (investigated, delivered) = runtime.block_on(webhook_leg(&dir));
    println!(
        "latency, the whole path on a small log (the real server's processes): a log file landing → investigation \
         recorded {investigated:.2} s, → webhook received {delivered:.2} s"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// One invocation record of Support Bot's role calling Claude 3 Haiku.
fn record(timestamp: &str, request_id: &str, input_tokens: u64) -> String {
    format!(
        "{{\"schemaType\":\"ModelInvocationLog\",\"timestamp\":\"{timestamp}\",\"accountId\":\"111122223333\",\"identity\":{{\"arn\":\"arn:aws:sts::111122223333:assumed-role/finops-support-bot-88aa/worker\"}},\"region\":\"us-west-2\",\"requestId\":\"{request_id}\",\"operation\":\"InvokeModel\",\"modelId\":\"anthropic.claude-3-haiku-20240307-v1:0\",\"input\":{{\"inputTokenCount\":{input_tokens}}},\"output\":{{\"outputTokenCount\":100}}}}\n"
    )
}

/// The webhook leg of the latency (step 5), on a small log: the demo organisation and a
/// quiet November in CUR through the 28th, served by the real server (its detector,
/// threshold watcher and webhook outbox following the log) with a webhook endpoint, and two
/// ordinary days of Support Bot's logs; a file of its role burning $10,000 on the 29th
/// lands in a followed folder. Returns the
/// seconds from landing to the investigation recorded and to the first webhook received.
async fn webhook_leg(dir: &Path) -> (f64, f64) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hooks", listener.local_addr().unwrap());
    // Support Bot's 100 % crossing (demo ids): other workloads' crossings may arrive too.
    let awaited = finops_domain::alerts::webhook_id(finops_server::demo::id("workload-support-bot"), "2026-11", 100);
    let received: Arc<std::sync::OnceLock<Instant>> = Arc::default();
    let first = received.clone();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buffer = vec![0u8; 64 * 1024];
            let n = stream.read(&mut buffer).await.unwrap_or(0);
            // The headers come first, in the first read; the id is the `webhook-id` header.
            if String::from_utf8_lossy(&buffer[..n]).contains(&awaited) {
                let _ = first.set(Instant::now());
            }
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
        }
    });
    let endpoint = finops_processes::WebhookEndpoint::new(&hook, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let url = finops_e2e::fresh_sqlite_url();
    let server = finops_e2e::RunningServer::start_with(&url, |config| finops_server::ServerConfig {
        webhooks: vec![endpoint],
        ..config
    })
    .await;
    finops_server::demo::seed(server.store.clone(), "arn:aws:sso:::instance/ssoins-demo").await.unwrap();
    let objects: Arc<dyn object_store::ObjectStore> =
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&server.objects).unwrap());
    let month = dir.join("quiet-month.csv");
    let spec = finops_cur::synthetic::MonthSpec { period: "2026-11".into(), rows: 300, seed: 7, restatement: 0 };
    finops_cur::synthetic::write_month(&spec, &mut std::fs::File::create(&month).unwrap()).unwrap();
    finops_ingest::Ingestor::new(server.store.clone(), objects.clone())
        .ingest_file(&month, finops_ingest::Format::Cur, &finops_e2e::operator_context("bench"))
        .await
        .unwrap();
    // Two ordinary days of its logs before (the baseline an hour is measured against):
    // a million input tokens an hour.
    let ordinary: String = (0..48)
        .map(|h| {
            record(&format!("2026-11-{:02}T{:02}:30:00Z", 27 + h / 24, h % 24), &format!("ordinary-{h}"), 1_000_000)
        })
        .collect();
    LogIngestor::new(server.store.clone(), objects.clone())
        .ingest_bytes("ordinary.json", ordinary.as_bytes(), "bench")
        .await
        .unwrap();
    // The processes have read everything before the file lands.
    let models = finops_projections::ReadModels::open(&url).await.unwrap();
    let processes = [
        finops_processes::InvestigationDetector::NAME,
        finops_processes::ThresholdWatcher::NAME,
        finops_processes::WebhookOutbox::NAME,
    ];
    loop {
        let head = server.store.seal_committed().await.unwrap().position.0;
        let mut behind = false;
        for name in processes {
            behind |= models.process_checkpoint(name).await.unwrap() < head;
        }
        if !behind {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(received.get().is_none(), "a quiet month crosses nothing of Support Bot's");
    let followed = dir.join("followed-server");
    std::fs::create_dir_all(&followed).unwrap();
    let following = {
        let followed = followed.display().to_string();
        let ingestor = LogIngestor::new(server.store.clone(), objects);
        tokio::spawn(async move {
            let mut follower = LogFollower::new(vec![followed]);
            loop {
                let _ = follower.round(&ingestor, "bench", &mut |_, _| {}).await;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    // Then ten hours of 4 billion input tokens ($1,000 each).
    let storm: String =
        (0..10).map(|h| record(&format!("2026-11-29T{h:02}:30:00Z"), &format!("storm-{h}"), 4_000_000_000)).collect();
    let staged = dir.join("support-bot-storm.json");
    std::fs::write(&staged, storm).unwrap();
    let before = server.store.seal_committed().await.unwrap().position;
    let landed = Instant::now();
    std::fs::rename(&staged, followed.join("support-bot-storm.json")).unwrap();
    let mut investigated = None;
    let delivered = loop {
        if investigated.is_none() {
            let page = server.store.read_all(finops_eventlog::AllRead::forwards_after(before, 1_000)).await.unwrap();
            if page.iter().any(|e| e.event_type == "InvestigationOpened") {
                investigated = Some(landed.elapsed().as_secs_f64());
            }
        }
        if let (Some(_), Some(at)) = (investigated, received.get()) {
            break at.duration_since(landed).as_secs_f64();
        }
        assert!(landed.elapsed() < Duration::from_secs(300), "no investigation or webhook within 5 minutes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    following.abort();
    server.shutdown().await.unwrap();
    (investigated.unwrap_or(f64::NAN), delivered)
}
