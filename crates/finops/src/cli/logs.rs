//! `finops logs ingest|follow`: Bedrock model-invocation log files into the log, as an
//! operator on the store directly (like `finops cur ingest`). Each file is its own unit: a
//! malformed record refuses that file (file, line, field) and the others go on; the
//! command then ends with status 1 so a script sees it.

use std::sync::Arc;
use std::time::Duration;

use finops_ingest::logs::{LogFollower, LogIngestError, LogIngestor, LogReport, find_logs};
use finops_server::ConfigLayer;

async fn ingestor(store: &str, objects: &str) -> anyhow::Result<LogIngestor> {
    let store = finops_server::open_store(
        &ConfigLayer { store: Some(store.to_owned()), dev: Some(true), ..Default::default() }.resolve()?,
    )
    .await?;
    Ok(LogIngestor::new(store, finops_ingest::objects::open(objects)?))
}

/// One line per file: what it held and whether it was new.
fn line(source: &str, report: &LogReport) -> String {
    let f = &report.file;
    let cents = i64::try_from(f.estimated_micro_usd.div_ceil(10_000)).unwrap_or(i64::MAX);
    format!(
        "{source}  {} records  {} – {}  estimate {}{}  sha256 {}  {}",
        f.records,
        f.first_hour.format("%Y-%m-%d %H:00"),
        f.last_hour.format("%Y-%m-%d %H:00"),
        finops_domain::vocabulary::dollars(cents),
        if f.unpriced_tokens > 0 { format!(" ({} tokens unpriced)", f.unpriced_tokens) } else { String::new() },
        &f.hash[..16],
        if report.recorded { "recorded" } else { "unchanged (already recorded)" },
    )
}

fn show(source: &str, result: &Result<LogReport, LogIngestError>) -> bool {
    match result {
        Ok(report) => {
            println!("{}", line(source, report));
            true
        }
        Err(e) => {
            eprintln!("refused {source}: {e}");
            false
        }
    }
}

/// `finops logs ingest SOURCE…`
pub async fn ingest(sources: &[String], store: &str, objects: &str, actor: &str) -> anyhow::Result<()> {
    let ingestor = ingestor(store, objects).await?;
    let mut found = Vec::new();
    for source in sources {
        let files = find_logs(source).await?;
        anyhow::ensure!(!files.is_empty(), "{source}: holds no .json, .json.gz, .jsonl or .jsonl.gz files");
        found.extend(files);
    }
    // A file at a time per core: reading one is CPU work.
    let parallel = std::thread::available_parallelism().map_or(1, |n| n.get());
    let results = Arc::new(ingestor).ingest_all(&found, actor, parallel).await;
    let mut refused = 0;
    for (file, result) in found.iter().zip(&results) {
        if !show(&file.name, result) {
            refused += 1;
        }
    }
    anyhow::ensure!(refused == 0, "{refused} of {} file(s) refused; nothing of them was stored", found.len());
    Ok(())
}

/// `finops logs follow SOURCE… --every SECS`
pub async fn follow(sources: Vec<String>, every: u64, store: &str, objects: &str, actor: &str) -> anyhow::Result<()> {
    let ingestor = Arc::new(ingestor(store, objects).await?);
    let mut follower = LogFollower::new(sources.clone());
    eprintln!("following {} every {every} s (Ctrl-C stops)", sources.join(", "));
    loop {
        let mut report = |source: &str, result: &Result<LogReport, LogIngestError>| {
            show(source, result);
        };
        let round = follower.round(&ingestor, actor, &mut report);
        tokio::select! {
            result = round => if let Err(e) = result {
                eprintln!("cannot list the sources ({e}); trying again");
            },
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(every.max(1))) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}
