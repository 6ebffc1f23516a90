//! `finops-replay`: the operator and auditor tool over the event log, on either backend
//! (the store is chosen by URL).
//!
//! - `verify` walks the hash chain from the first event and names the first broken link;
//!   it exits non-zero when the chain is broken or the head differs from a recorded one.
//! - `stats` prints streams, events by type, unsealed events and the head.
//!
//! - `rebuild` folds the log into fresh read models and swaps them in.
//! - `export --until INSTANT` writes the offline audit bundle (`bundle.rs`): the log as it
//!   stood then, with the CUR batches current then; `verify --bundle FILE` checks one
//!   without any database.
//!
//! It opens the log read-only: it never creates, migrates, seals or appends, and a store
//! that holds no log (a mistyped path, an empty database) is refused with exit code 2.
//! Only `rebuild` writes, and only the read-model tables.

mod bundle;

/// The allocator: a rebuild folds a JSON tree per document and event, and glibc's malloc
/// took a third of it (BENCHMARKS.md, rebuild).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use finops_eventlog::{ChainHash, Position};

/// Verify and inspect the FinOps Center event log.
#[derive(Debug, Parser)]
#[command(name = "finops-replay", version, about)]
struct Cli {
    /// The event store: sqlite://PATH or postgres://USER@HOST:PORT/DB.
    #[arg(long, env = "FINOPS_STORE", default_value = "sqlite://finops-data/finops.db")]
    store: String,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Walk the hash chain and name the first broken link (exit code 1 if broken).
    Verify {
        /// A head hash recorded earlier (64 hex digits), as `POSITION:HASH`; verification
        /// fails if the chain no longer holds it there.
        #[arg(long, value_name = "POSITION:HASH")]
        expect_head: Option<String>,
        /// Verify this audit bundle (from `export`) instead of a store: no database needed.
        #[arg(long, value_name = "FILE")]
        bundle: Option<std::path::PathBuf>,
    },
    /// Write the offline audit bundle: every event recorded up to an instant, in the form
    /// the chain hashes, with the head hash and the CUR batches current then.
    Export {
        /// The instant (RFC 3339); default: now.
        #[arg(long)]
        until: Option<String>,
        /// The file to write.
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Print streams, events by type, unsealed events and the head.
    Stats,
    /// Rebuild every read model as the log stood at an instant into a scratch database
    /// and print their digests: what any screen showed then, reproducible by anyone.
    At {
        /// The instant (RFC 3339).
        instant: String,
        /// The scratch database (default: a new SQLite file in the temporary directory);
        /// never the store itself.
        #[arg(long, value_name = "URL")]
        into: Option<String>,
    },
    /// Fold the whole log into a fresh generation of each read model and switch to it
    /// when caught up (the live one keeps answering meanwhile). Prints each read model's
    /// digest before and after: equal digests mean the live read model was right.
    Rebuild {
        /// Only this read model (request_queue, catalog, task_queue, claims, workloads,
        /// gap_lifecycle, notification_outbox, spend_cards, spend_rollups).
        #[arg(long)]
        projection: Option<String>,
    },
}

fn main() -> ExitCode {
    // One command, then exit: memory freed is kept for reuse rather than handed back.
    finops_projections::keep_freed_memory();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Warnings (a read model skipping an event it does not know, a retried round) on
    // standard error; reports stay alone on standard output. `FINOPS_LOG=info` says more.
    let _telemetry = finops_telemetry::init("finops-replay", None, "warn")?;
    if let Command::Verify { bundle: Some(path), expect_head } = &cli.command {
        return verify_bundle(path, expect_head.as_deref(), cli.json);
    }
    let expect_head = match &cli.command {
        Command::Verify { expect_head: Some(text), .. } => Some(parse_head(text)?),
        _ => None,
    };
    let store = finops_eventlog::open_read_only(&cli.store, finops_governance::upcasters())
        .await
        .with_context(|| format!("opening {} (read-only)", redact(&cli.store)))?;
    match cli.command {
        Command::Verify { .. } => {
            let report = finops_eventlog::verify_chain(store.as_ref(), expect_head).await?;
            let problem = report.first_break.as_ref().map(|b| format!("first broken link: {b}"));
            Ok(print_verification(cli.json, "chain", report.verified_through, report.head_hash, problem, None))
        }
        Command::Export { until, out } => {
            let until = match until {
                Some(text) => chrono::DateTime::parse_from_rfc3339(&text)
                    .with_context(|| format!("--until `{text}` is not an RFC 3339 instant"))?
                    .with_timezone(&chrono::Utc),
                None => chrono::Utc::now(),
            };
            let file = std::fs::File::create(&out).with_context(|| format!("creating {}", out.display()))?;
            let mut writer = std::io::BufWriter::new(file);
            let written = bundle::export(store.as_ref(), until, &mut writer).await?;
            let (head, batches) = (&written.trailer, &written.header.cur_batches);
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "file": out.display().to_string(),
                        "until": until.to_rfc3339(),
                        "head_position": head.head_position,
                        "head_hash": head.head_hash,
                        "cur_batches": batches.iter().map(|b| serde_json::json!({"period": b.period, "hash": b.hash})).collect::<Vec<_>>(),
                    })
                );
            } else {
                println!("wrote {}: {} events through {}", out.display(), head.head_position, until.to_rfc3339());
                println!("head {} at position {}", head.head_hash, head.head_position);
                for b in batches {
                    println!("CUR {} current then: {}", b.period, b.hash);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Rebuild { projection } => {
            let models = finops_projections::ReadModels::open(&cli.store).await?;
            let all = finops_projections::governance_projectors();
            let names: Vec<&str> = match &projection {
                Some(name) if finops_projections::ALL.contains(&name.as_str()) => vec![name.as_str()],
                Some(name) => {
                    anyhow::bail!("unknown read model `{name}`: use one of {}", finops_projections::ALL.join(", "))
                }
                None => finops_projections::ALL.to_vec(),
            };
            let runner = finops_projections::ProjectionRunner::new(store.clone(), models.clone(), all);
            let started = std::time::Instant::now();
            let finops_projections::Rebuilt { reports: rows, phases } = runner.rebuild_all(&names).await?;
            let seconds = started.elapsed().as_secs_f64();
            // The new generations serve from here; the replaced ones are dropped before exit.
            let retiring = std::time::Instant::now();
            models.retired().await;
            let retired = retiring.elapsed().as_secs_f64();
            if cli.json {
                let reports: Vec<_> = rows
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "projection": r.projection,
                            "events": r.events,
                            "digest_before": r.digest_before,
                            "digest_after": r.digest_after,
                            "identical": r.digest_before == r.digest_after,
                            "seconds": {
                                "read_and_fold": phases.read_and_fold.as_secs_f64(),
                                "write": phases.write.as_secs_f64(),
                                "swap_and_catch_up": phases.swap_and_catch_up.as_secs_f64(),
                            },
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(reports));
            } else {
                println!("{:<20} {:>8}  {:<10} DIGEST AFTER", "READ MODEL", "EVENTS", "RESULT");
                for r in &rows {
                    let result = if r.digest_before == r.digest_after { "identical" } else { "changed" };
                    println!("{:<20} {:>8}  {:<10} {}", r.projection, r.events, result, r.digest_after);
                }
                let events = rows.first().map_or(0, |r| r.events);
                eprintln!(
                    "rebuilt {} read model(s) from {events} events in {seconds:.2} s ({:.0} events/s: \
                     read and fold {:.2} s, write {:.2} s, swap and catch up {:.2} s); \
                     replaced generations dropped in {retired:.2} s more",
                    rows.len(),
                    events as f64 / seconds.max(1e-9),
                    phases.read_and_fold.as_secs_f64(),
                    phases.write.as_secs_f64(),
                    phases.swap_and_catch_up.as_secs_f64(),
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::At { instant, into } => {
            let instant = chrono::DateTime::parse_from_rfc3339(&instant)
                .with_context(|| format!("`{instant}` is not an RFC 3339 instant"))?
                .with_timezone(&chrono::Utc);
            let scratch = match into {
                Some(url) if url.trim() == cli.store.trim() => {
                    anyhow::bail!("--into names the store itself: give a scratch database")
                }
                Some(url) => url,
                None => {
                    let path = std::env::temp_dir().join(format!("finops-at-{}.db", uuid::Uuid::now_v7()));
                    std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
                    format!("sqlite://{}", path.display())
                }
            };
            let projectors = finops_projections::governance_projectors();
            let folded = finops_projections::ReadModelsAsOf::fold(store.as_ref(), &projectors, instant).await?;
            let models = finops_projections::ReadModels::open(&scratch)
                .await
                .with_context(|| format!("opening the scratch database {}", redact(&scratch)))?;
            let mut rows = Vec::new();
            for projector in &projectors {
                let docs = folded.all(projector.name())?;
                let digest = models.install(projector.name(), projector.version(), docs, folded.through()).await?;
                // The database holds exactly what was folded.
                anyhow::ensure!(
                    digest == folded.digest(projector.name())?,
                    "{} in the scratch database differs from the fold",
                    projector.name()
                );
                rows.push((projector.name(), docs.len(), digest));
            }
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "instant": instant.to_rfc3339(),
                        "through_position": folded.through(),
                        "scratch": redact(&scratch),
                        "read_models": rows.iter().map(|(name, documents, digest)| serde_json::json!({
                            "projection": name, "documents": documents, "digest": digest,
                        })).collect::<Vec<_>>(),
                    })
                );
            } else {
                println!("as of {} (log through position {})", instant.to_rfc3339(), folded.through());
                println!("{:<20} {:>9}  DIGEST", "READ MODEL", "DOCUMENTS");
                for (name, documents, digest) in &rows {
                    println!("{name:<20} {documents:>9}  {digest}");
                }
                println!("scratch database: {}", redact(&scratch));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Stats => {
            let stats = store.stats().await?;
            let read_models = finops_projections::ReadModels::statuses_read_only(&cli.store).await?;
            let head = stats.head.position.0;
            if cli.json {
                let by_type: serde_json::Map<String, serde_json::Value> =
                    stats.events_by_type.iter().map(|(t, n)| (t.clone(), (*n).into())).collect();
                println!(
                    "{}",
                    serde_json::json!({
                        "backend": store.backend().to_string(),
                        "streams": stats.streams,
                        "events": stats.events,
                        "unsealed": stats.unsealed,
                        "events_by_type": by_type,
                        "head_position": stats.head.position.0,
                        "head_hash": stats.head.hash.to_hex(),
                        "read_models": read_models.iter().map(|r| serde_json::json!({
                            "name": r.name,
                            "checkpoint": r.checkpoint,
                            "behind": head.saturating_sub(r.checkpoint),
                            "active_generation": r.active_generation,
                            "building_generation": r.building_generation,
                            "projector_version": r.projector_version,
                        })).collect::<Vec<_>>(),
                    })
                );
            } else {
                println!("backend        {}", store.backend());
                println!("streams        {}", stats.streams);
                println!("events         {}", stats.events);
                println!("unsealed       {}", stats.unsealed);
                println!("head position  {}", stats.head.position);
                println!("head hash      {}", stats.head.hash);
                if !stats.events_by_type.is_empty() {
                    println!("\n{:<40} {:>10}", "EVENT TYPE", "EVENTS");
                    for (event_type, count) in &stats.events_by_type {
                        println!("{event_type:<40} {count:>10}");
                    }
                }
                if !read_models.is_empty() {
                    println!("\n{:<20} {:>10} {:>8}  GENERATION", "READ MODEL", "CHECKPOINT", "BEHIND");
                    for r in &read_models {
                        let rebuilding = r
                            .building_generation
                            .map(|g| format!(" (generation {g} being rebuilt, or left by a killed rebuild)"))
                            .unwrap_or_default();
                        println!(
                            "{:<20} {:>10} {:>8}  {}{rebuilding}",
                            r.name,
                            r.checkpoint,
                            head.saturating_sub(r.checkpoint),
                            r.active_generation
                        );
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `verify --bundle FILE`: the bundle checked without a database.
fn verify_bundle(path: &std::path::Path, expect_head: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut report = bundle::verify(std::io::BufReader::new(file))?;
    if let (None, Some(text)) = (&report.problem, expect_head) {
        let (position, hash) = parse_head(text)?;
        if (position, hash) != (report.verified_through, report.head_hash) {
            report.problem = Some((
                0,
                format!(
                    "the bundle's head is {}:{}, not the recorded {text}",
                    report.verified_through.0, report.head_hash
                ),
            ));
        }
    }
    let problem = report.problem.as_ref().map(|(line, what)| match line {
        0 => what.clone(),
        n => format!("line {n}: {what}"),
    });
    let until = Some(report.header.until);
    Ok(print_verification(json, "bundle", report.verified_through, report.head_hash, problem, until))
}

/// Prints what a verification of the chain (or of a bundle, `until` its instant) found;
/// exit code 0 intact, 1 broken.
fn print_verification(
    json: bool,
    what: &str,
    verified_through: Position,
    head_hash: ChainHash,
    problem: Option<String>,
    until: Option<chrono::DateTime<chrono::Utc>>,
) -> ExitCode {
    if json {
        let mut out = serde_json::json!({
            "intact": problem.is_none(),
            "verified_through": verified_through.0,
            "head_hash": head_hash.to_hex(),
            "problem": problem,
        });
        if let Some(until) = until {
            out["until"] = until.to_rfc3339().into();
        }
        println!("{out}");
    } else {
        let through = until.map(|u| format!(" through {}", u.to_rfc3339())).unwrap_or_default();
        match &problem {
            None => println!(
                "{what} intact: {verified_through} events verified{through}; head {head_hash} at position {verified_through}"
            ),
            Some(p) => println!("{} BROKEN: {p}\nverified through position {verified_through}", what.to_uppercase()),
        }
    }
    if problem.is_none() { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

/// Hides a password in a store URL before it is printed.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => match url[scheme + 3..at].split_once(':') {
            Some((user, _)) => format!("{}://{user}:***{}", &url[..scheme], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

fn parse_head(text: &str) -> anyhow::Result<(Position, ChainHash)> {
    let (position, hash) =
        text.split_once(':').with_context(|| format!("--expect-head `{text}` is not POSITION:HASH"))?;
    let position: u64 =
        position.parse().with_context(|| format!("--expect-head position `{position}` is not a number"))?;
    let hash =
        ChainHash::from_hex(hash).with_context(|| format!("--expect-head hash `{hash}` is not 64 hex digits"))?;
    Ok((Position(position), hash))
}
