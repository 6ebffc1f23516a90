//! `finops`: the FinOps Center command. `finops serve` runs the gRPC service.

/// The allocator: the server folds read models and governance state, a JSON tree per
/// document and event, and glibc's malloc took a third of that work (BENCHMARKS.md, rebuild).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
mod cli;

use finops_server::ConfigLayer;
use finops_server::auth::{Authenticator, Role};

/// FinOps Center: every AI dollar gets a name.
#[derive(Debug, Parser)]
#[command(name = "finops", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    connection: cli::Connection,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gRPC service (health, reflection and the finops.v1 services).
    Serve(ServeArgs),
    /// Business Requests: list, show, submit, estimate, approve, reject.
    #[command(subcommand)]
    Requests(cli::RequestsCommand),
    /// The Cloud Engineer task queue: list, show, complete, implemented.
    #[command(subcommand)]
    Tasks(cli::TasksCommand),
    /// Claim a role, guardrail or workspace for an approved workload (Product Owner).
    Claim(cli::ClaimArgs),
    /// Claims: list, release, reassign.
    #[command(subcommand)]
    Claims(cli::ClaimsCommand),
    /// Workloads: list, show (with the forecast), estimate, business case, budget.
    #[command(subcommand)]
    Workloads(cli::WorkloadsCommand),
    /// The model catalog: list, show, approve, add scope, revoke.
    #[command(subcommand)]
    Catalog(cli::CatalogCommand),
    /// The organisation (`finops org` or `finops org show`), and its role patterns.
    Org {
        #[command(subcommand)]
        command: Option<cli::OrgCommand>,
    },
    /// Allocation Gaps: list, show, act, resolve, recall, value, notifications.
    Gaps {
        #[command(subcommand)]
        command: Option<cli::GapsCommand>,
    },
    /// The event log's events (auditors, operators): a stream, a page, a live subscription.
    #[command(subcommand)]
    Events(cli::EventsCommand),
    /// Weekly Spend Cards: list, show, accept, dispute, resolve, approve the roll-up.
    Cards {
        #[command(subcommand)]
        command: Option<cli::CardsCommand>,
    },
    /// The AI Governance Maturity score of a period, its dimensions and next moves.
    Maturity(cli::MaturityArgs),
    /// Ask Agent Bill in plain English: "Am I on track against my estimate?"
    Ask(cli::AskArgs),
    /// Agent Bill's tools for an MCP client: over stdio as the holder of --token, or over
    /// streamable HTTP (--http ADDR) as each request's bearer.
    Mcp(cli::McpArgs),
    /// Investigations the detectors opened: list, show, assign, note, link, close.
    Investigations {
        #[command(subcommand)]
        command: Option<cli::InvestigationsCommand>,
    },
    /// The kill switch: suspend a workload at once (its Product Owner or the FinOps Lead).
    Suspend(cli::ControlArgs),
    /// Undo a workload's suspension (FinOps Lead).
    Resume(cli::ControlArgs),
    /// A workload's kill-switch status: every suspend and resume, each IAM call and its result.
    Control(cli::ControlStatusArgs),
    /// A resource's decision trail: when, who, role, what, why (now or --as-of).
    History(cli::HistoryArgs),
    /// Gateway mapping rules: a shared role's sessions charged to workloads.
    GatewayRules {
        #[command(subcommand)]
        command: Option<cli::GatewayRulesCommand>,
    },
    /// Who spent a period's AI dollars: grouped by workload, gap, model… (now or --as-of).
    Attribution(cli::AttributionArgs),
    /// The noisy-neighbour chargeback statement per budget (now or --as-of).
    Chargeback(cli::ChargebackArgs),
    /// Export a period's classified spend as CSV, Parquet or FOCUS.
    Export(cli::ExportArgs),
    /// The invocation logs' estimate of each workload's day against what CUR billed (now or
    /// --as-of); days apart beyond the tolerance flagged.
    Reconcile(cli::ReconcileArgs),
    /// CUR 2.0 tools.
    #[command(subcommand)]
    Cur(CurCommand),
    /// Bedrock model-invocation logs: the fast signal beside CUR's late one.
    #[command(subcommand)]
    Logs(LogsCommand),
    /// Print a bearer token for a user and role (signed with FINOPS_JWT_SECRET, or the
    /// development key when none is set — for servers started with --dev).
    DevToken(DevTokenArgs),
}

#[derive(Debug, Subcommand)]
enum CurCommand {
    /// Validate CUR deliveries, store them content-addressed and record each batch (an
    /// operator's command; it works on the store directly).
    Ingest {
        /// Files (.csv, .csv.gz, .parquet), folders or export prefixes (one delivery per
        /// BILLING_PERIOD=YYYY-MM partition, as its manifest lists), or s3://bucket/prefix.
        #[arg(required = true)]
        files: Vec<String>,
        /// The input format: cur (CUR 2.0 or legacy CUR) or focus (FOCUS 1.x).
        #[arg(long, default_value = "cur")]
        format: String,
        #[command(flatten)]
        target: IngestTarget,
    },
    /// Write a realistic synthetic CUR 2.0 month (CSV; gzip when OUT ends in .gz).
    Generate {
        /// Billing period, YYYY-MM.
        #[arg(long)]
        period: String,
        /// Data rows.
        #[arg(long, default_value_t = 100_000)]
        rows: u64,
        /// Generator seed (same seed, same file).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// 0 for the first delivery; 1, 2… for restatements.
        #[arg(long, default_value_t = 0)]
        restatement: u32,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// Also write the Bedrock model-invocation logs that match the month (JSON lines;
        /// gzip when the name ends in .gz): one record per AI token line with a caller.
        #[arg(long)]
        logs: Option<PathBuf>,
        /// Add a retry storm by this role in account 111122223333 (Claude 3 Haiku in
        /// us-west-2, 2 billion input tokens — $500 — an hour from 02:00 to 14:00) to the
        /// month and its logs: what the investigation detector is for.
        #[arg(long)]
        spike: Option<String>,
        /// The day of the month of the storm.
        #[arg(long, default_value_t = 20)]
        spike_day: u32,
    },
}

/// Where an operator's ingest writes: the store, the object store and who records.
#[derive(Debug, clap::Args)]
struct IngestTarget {
    /// The event store.
    #[arg(long, env = "FINOPS_STORE", default_value = finops_server::DEFAULT_STORE)]
    store: String,
    /// Where what is ingested is stored (CUR batches, log files and their hourly usage): a
    /// local folder, file:///path or s3://bucket/prefix.
    #[arg(long, env = "FINOPS_OBJECTS", default_value = finops_server::DEFAULT_OBJECTS)]
    objects: String,
    /// Who ingests (recorded on each batch or file).
    #[arg(long, default_value = "operator")]
    actor: String,
}

#[derive(Debug, Subcommand)]
enum LogsCommand {
    /// Validate invocation-log files (JSON lines, gzip or not), store them and their hourly
    /// usage, and record each once by content (an operator's command; it works on the store
    /// directly). A file with a malformed record is refused whole; the others go on.
    Ingest {
        /// Files, folders (recursively: *.json, *.json.gz, *.jsonl[.gz]) or
        /// s3://bucket/prefix (e.g. …/AWSLogs/{account}/BedrockModelInvocationLogs/).
        #[arg(required = true)]
        sources: Vec<String>,
        #[command(flatten)]
        target: IngestTarget,
    },
    /// Follow folders or s3:// prefixes: ingest each new file as it lands (Ctrl-C stops).
    Follow {
        /// Folders or s3://bucket/prefix.
        #[arg(required = true)]
        sources: Vec<String>,
        /// Seconds between looks.
        #[arg(long, default_value_t = 10)]
        every: u64,
        #[command(flatten)]
        target: IngestTarget,
    },
}

#[derive(Debug, clap::Args)]
struct DevTokenArgs {
    /// The user id the token names (e.g. po-maria).
    #[arg(long)]
    subject: String,
    /// product_owner, finops_lead, cloud_engineer, portfolio_owner, finance, auditor or operator.
    #[arg(long)]
    role: String,
    /// Lifetime in hours.
    #[arg(long, default_value_t = 8)]
    hours: u64,
    /// Signing secret (default: the development key).
    #[arg(long, env = "FINOPS_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:50051].
    #[arg(long, env = "FINOPS_LISTEN")]
    listen: Option<String>,
    /// Event store: sqlite://PATH (embedded, the default: sqlite://finops-data/finops.db)
    /// or postgres://USER@HOST:PORT/DB.
    #[arg(long, env = "FINOPS_STORE")]
    store: Option<String>,
    /// OTLP/gRPC endpoint for spans, e.g. http://localhost:4317 (off when unset; the
    /// standard OTEL_EXPORTER_OTLP_ENDPOINT is honoured too).
    #[arg(long, env = "FINOPS_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    /// HS256 secret (32+ bytes) that verifies bearer tokens.
    #[arg(long, env = "FINOPS_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Development mode: tokens signed with the published dev key (see `finops dev-token`).
    #[arg(long, env = "FINOPS_DEV")]
    dev: bool,
    /// High Availability price premium, percent [default: 10].
    #[arg(long, env = "FINOPS_HA_PREMIUM_PERCENT")]
    ha_premium_percent: Option<u64>,
    /// An AWS Price List offer file (JSON) applied over the shipped price snapshot;
    /// repeat for several.
    #[arg(long)]
    price_offer_file: Vec<PathBuf>,
    /// Business days after which an unimplemented task is overdue [default: 2].
    #[arg(long, env = "FINOPS_TASK_SLA_BUSINESS_DAYS")]
    task_sla_business_days: Option<u32>,
    /// A Spend Card's variance over this percentage of its estimate is flagged [default: 20].
    #[arg(long, env = "FINOPS_CARD_VARIANCE_THRESHOLD_PERCENT")]
    card_variance_threshold_percent: Option<u32>,
    /// Where CUR batches are kept: a local folder (default finops-data/objects),
    /// file:///path or s3://bucket/prefix (standard AWS environment configuration).
    #[arg(long, env = "FINOPS_OBJECTS")]
    objects: Option<String>,
    /// The folder IngestCur may read local CUR deliveries from (paths relative to it);
    /// without it, IngestCur reads s3:// prefixes only.
    #[arg(long, env = "FINOPS_CUR_INGEST_ROOT")]
    cur_ingest_root: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics (off by default).
    #[arg(long, env = "FINOPS_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// Who runs the kill switch's IAM calls: manual (shown as commands, the default) or
    /// automatic (the server calls IAM with the standard AWS_* credentials).
    #[arg(long, env = "FINOPS_KILL_SWITCH")]
    kill_switch: Option<String>,
    /// The role an automatic kill switch assumes in each workload account, as an ARN with
    /// {account} (e.g. arn:aws:iam::{account}:role/finops-kill-switch) [default: none].
    #[arg(long, env = "FINOPS_KILL_SWITCH_ROLE")]
    kill_switch_role: Option<String>,
    /// Where that role is assumed [default: https://sts.amazonaws.com].
    #[arg(long, env = "FINOPS_KILL_SWITCH_STS_ENDPOINT")]
    kill_switch_sts_endpoint: Option<String>,
    /// The IAM endpoint of an automatic kill switch [default: https://iam.amazonaws.com].
    #[arg(long, env = "FINOPS_KILL_SWITCH_IAM_ENDPOINT")]
    kill_switch_iam_endpoint: Option<String>,
    /// Seed the demo organisation (idempotent) before serving.
    #[arg(long, env = "FINOPS_DEMO")]
    demo: bool,
    /// IAM Identity Center instance ARN used in Coding tasks' commands.
    #[arg(long, env = "FINOPS_IDENTITY_CENTER_INSTANCE_ARN")]
    identity_center_instance_arn: Option<String>,
    /// Optional TOML file with the same keys (listen, store, otlp_endpoint, jwt_secret,
    /// dev, identity_center_instance_arn); flags and environment variables win over it.
    #[arg(long, env = "FINOPS_CONFIG")]
    config: Option<PathBuf>,
}

/// A reader that stops early (`finops attribution | head`) closes our stdout. Rust ignores
/// SIGPIPE, so `println!` would panic; end instead as a Unix filter ends on SIGPIPE: quietly,
/// with status 128 + 13.
fn end_quietly_when_stdout_closes() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info.payload().downcast_ref::<String>().map_or("", String::as_str);
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> anyhow::Result<()> {
    end_quietly_when_stdout_closes();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::DevToken(args) => dev_token(args),
            Command::Requests(c) => cli::requests(&cli.connection, c).await,
            Command::Tasks(c) => cli::tasks(&cli.connection, c).await,
            Command::Claim(a) => cli::claim(&cli.connection, a).await,
            Command::Claims(c) => cli::claims(&cli.connection, c).await,
            Command::Workloads(c) => cli::workloads(&cli.connection, c).await,
            Command::Catalog(c) => cli::catalog(&cli.connection, c).await,
            Command::Org { command } => cli::org(&cli.connection, command).await,
            Command::Gaps { command } => cli::gaps(&cli.connection, command).await,
            Command::GatewayRules { command } => cli::gateway_rules(&cli.connection, command).await,
            Command::Events(c) => cli::events(&cli.connection, c).await,
            Command::History(args) => cli::history(&cli.connection, args).await,
            Command::Cards { command } => cli::cards(&cli.connection, command).await,
            Command::Maturity(args) => cli::maturity(&cli.connection, args).await,
            Command::Ask(args) => cli::ask(&cli.connection, args).await,
            Command::Mcp(args) => cli::mcp(&cli.connection, args).await,
            Command::Investigations { command } => cli::investigations(&cli.connection, command).await,
            Command::Suspend(args) => cli::suspend(&cli.connection, args).await,
            Command::Resume(args) => cli::resume(&cli.connection, args).await,
            Command::Control(args) => cli::control(&cli.connection, args).await,
            Command::Attribution(a) => cli::attribution(&cli.connection, a).await,
            Command::Chargeback(a) => cli::chargeback(&cli.connection, a).await,
            Command::Export(a) => cli::export(&cli.connection, a).await,
            Command::Reconcile(a) => cli::reconcile(&cli.connection, a).await,
            Command::Cur(CurCommand::Generate { period, rows, seed, restatement, out, logs, spike, spike_day }) => {
                let spike = spike.map(|role| finops_cur::synthetic::Incident {
                    period: period.clone(),
                    account: "111122223333".into(),
                    role,
                    day: spike_day,
                    hours: 2..14,
                    thousands_per_hour: 2_000_000.0,
                });
                generate(&period, rows, seed, restatement, spike.as_ref(), &out)?;
                match logs {
                    Some(logs) => generate_logs(&out, &logs),
                    None => Ok(()),
                }
            }
            Command::Cur(CurCommand::Ingest { files, format, target }) => {
                ingest(&files, &format, &target.store, &target.objects, &target.actor).await
            }
            Command::Logs(LogsCommand::Ingest { sources, target }) => {
                cli::logs::ingest(&sources, &target.store, &target.objects, &target.actor).await
            }
            Command::Logs(LogsCommand::Follow { sources, every, target }) => {
                cli::logs::follow(sources, every, &target.store, &target.objects, &target.actor).await
            }
        }
    })
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let file = match &args.config {
        Some(path) => ConfigLayer::from_file(path)?,
        None => ConfigLayer::default(),
    };
    let config = ConfigLayer {
        listen: args.listen,
        store: args.store,
        otlp_endpoint: args.otlp_endpoint,
        jwt_secret: args.jwt_secret,
        dev: args.dev.then_some(true),
        identity_center_instance_arn: args.identity_center_instance_arn,
        ha_premium_percent: args.ha_premium_percent,
        price_offer_files: (!args.price_offer_file.is_empty()).then_some(args.price_offer_file),
        task_sla_business_days: args.task_sla_business_days,
        card_variance_threshold_percent: args.card_variance_threshold_percent,
        coding_profile: None,
        objects: args.objects,
        cur_ingest_root: args.cur_ingest_root,
        broad_role_patterns: None,
        dedicated_role_patterns: None,
        metrics_listen: args.metrics_listen,
        webhooks: None,
        detectors: None,
        kill_switch: args.kill_switch,
        kill_switch_iam_endpoint: args.kill_switch_iam_endpoint,
        kill_switch_role: args.kill_switch_role,
        kill_switch_sts_endpoint: args.kill_switch_sts_endpoint,
    }
    .over(file)
    .resolve()?;
    let config = finops_server::ServerConfig {
        aws_credentials: finops_aws::Credentials::from_env(),
        // The first command after start-up must see the demo organisation.
        read_models_current_before_serving: args.demo,
        ..config
    };
    let _telemetry = finops_telemetry::init("finops", config.otlp_endpoint.as_deref(), "info")?;
    let store =
        finops_server::open_store(&config).await.with_context(|| format!("opening store {}", redact(&config.store)))?;
    if args.demo {
        let summary = finops_server::demo::seed(store.clone(), &config.identity_center_instance_arn).await?;
        tracing::info!(requests = summary.requests, tasks = summary.tasks, "demo organisation seeded");
        demo_month(store.clone(), &config.objects).await?;
        let objects = finops_ingest::objects::open(&config.objects)?;
        let gaps = finops_server::demo::seed_gaps(store.clone(), objects, config.role_patterns.clone()).await?;
        tracing::info!(detected = gaps.detected, decided = gaps.decided, "demo gaps seeded");
        let objects = finops_ingest::objects::open(&config.objects)?;
        let cards = finops_server::demo::seed_cards(
            store.clone(),
            objects,
            config.role_patterns.clone(),
            config.card_variance_threshold_percent,
        )
        .await?;
        tracing::info!(issued = cards.issued, decided = cards.decided, "demo spend cards seeded");
        let objects = finops_ingest::objects::open(&config.objects)?;
        let investigations = finops_server::demo::seed_investigations(
            store.clone(),
            objects,
            config.role_patterns.clone(),
            config.detectors,
        )
        .await?;
        tracing::info!(opened = investigations.opened, "demo investigations seeded");
    }
    let listener = finops_server::bind(&config).await?;
    finops_server::serve(listener, store, &config, finops_server::termination_signal()).await?;
    Ok(())
}

/// The demo's CUR: generated months (the same bytes every time, so seeding again records
/// nothing) — September and October 2026 before any workload was claimed (10 000 rows
/// each), and November 2026 (20 000 rows), so attribution and chargeback answer out of the
/// box and the maturity score has a history to trend over.
async fn demo_month(store: std::sync::Arc<dyn finops_eventlog::EventStore>, objects: &str) -> anyhow::Result<()> {
    let ingestor = finops_ingest::Ingestor::new(store, finops_ingest::objects::open(objects)?);
    for (period, rows) in [("2026-09", 10_000), ("2026-10", 10_000), ("2026-11", 20_000)] {
        let scratch = finops_ingest::scratch::Scratch::new("demo.csv");
        let path = scratch.0.clone();
        generate(period, rows, 1, 0, None, &path)?;
        if period == "2026-11" {
            // Claims Triage's retry storm on the 12th, 02:00–14:00 (it was suspended at 14:00).
            let incident = finops_cur::synthetic::Incident {
                period: period.into(),
                account: "111122223333".into(),
                role: "finops-claims-triage-u88g".into(),
                day: 12,
                hours: 2..14,
                thousands_per_hour: 200_000.0,
            };
            let mut file = std::fs::OpenOptions::new().append(true).open(&path)?;
            finops_cur::synthetic::write_incident(&incident, &mut file)?;
        }
        let context = finops_governance::CommandContext::operator(
            "demo",
            uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, format!("demo-cur-{period}").as_bytes()),
        );
        let report = ingestor.ingest_file(&path, finops_ingest::Format::Cur, &context).await;
        drop(scratch);
        let report = report?;
        tracing::info!(period = %report.batch.period, rows = report.batch.rows, "demo CUR month ingested");
    }
    Ok(())
}

fn generate(
    period: &str,
    rows: u64,
    seed: u64,
    restatement: u32,
    spike: Option<&finops_cur::synthetic::Incident>,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    anyhow::ensure!(finops_domain::cur_batches::is_billing_period(period), "--period `{period}` is not YYYY-MM");
    if let Some(spike) = spike {
        let days = finops_domain::cur_batches::billing_period_start(period)
            .and_then(|start| start.checked_add_months(chrono::Months::new(1)).map(|end| (end - start).num_days()))
            .unwrap_or(28);
        anyhow::ensure!(
            (1..=days).contains(&i64::from(spike.day)),
            "--spike-day {} is not a day of {period}",
            spike.day
        );
    }
    let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let spec = finops_cur::synthetic::MonthSpec { period: period.to_owned(), rows, seed, restatement };
    let started = std::time::Instant::now();
    let write = |out: &mut dyn std::io::Write| -> std::io::Result<()> {
        let mut out = out;
        finops_cur::synthetic::write_month(&spec, &mut out)?;
        if let Some(spike) = spike {
            finops_cur::synthetic::write_incident(spike, &mut out)?;
        }
        Ok(())
    };
    let mut writer = std::io::BufWriter::new(file);
    if out.extension().is_some_and(|e| e == "gz") {
        let mut gz = flate2::write::GzEncoder::new(writer, flate2::Compression::fast());
        write(&mut gz)?;
        gz.finish()?;
    } else {
        write(&mut writer)?;
        std::io::Write::flush(&mut writer)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "wrote {rows} rows to {} in {seconds:.1} s ({:.0} rows/s)",
        out.display(),
        rows as f64 / seconds.max(1e-9)
    );
    Ok(())
}

/// The invocation logs matching the CUR month in `cur` (as `generate` wrote it).
fn generate_logs(cur: &std::path::Path, out: &std::path::Path) -> anyhow::Result<()> {
    let raw = std::fs::read(cur).with_context(|| format!("reading {}", cur.display()))?;
    let text = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(raw.as_slice()), &mut text)?;
        text
    } else {
        raw
    };
    let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut writer = std::io::BufWriter::new(file);
    let records = if out.extension().is_some_and(|e| e == "gz") {
        let mut gz = flate2::write::GzEncoder::new(writer, flate2::Compression::fast());
        let n = finops_cur::synthetic::write_invocation_logs(&text, &mut gz)?;
        gz.finish()?;
        n
    } else {
        let n = finops_cur::synthetic::write_invocation_logs(&text, &mut writer)?;
        std::io::Write::flush(&mut writer)?;
        n
    };
    eprintln!("wrote {records} invocation log records to {}", out.display());
    Ok(())
}

async fn ingest(sources: &[String], format: &str, store: &str, objects: &str, actor: &str) -> anyhow::Result<()> {
    let format = match format {
        "cur" => finops_ingest::Format::Cur,
        "focus" => finops_ingest::Format::Focus,
        other => anyhow::bail!("--format `{other}`: use cur or focus"),
    };
    let store = finops_server::open_store(
        &ConfigLayer { store: Some(store.to_owned()), dev: Some(true), ..Default::default() }.resolve()?,
    )
    .await?;
    let objects = finops_ingest::objects::open(objects)?;
    let ingestor = finops_ingest::Ingestor::new(store, objects);
    let mut deliveries = vec![];
    let mut fetched = vec![];
    for source in sources {
        let path = if source.starts_with("s3://") {
            // In scratch: a killed ingest's download is swept by the next one.
            let dir = finops_ingest::scratch::Scratch::new("fetch");
            eprintln!("fetching {source} …");
            finops_ingest::fetch(source, &dir.0).await?;
            let path = dir.0.clone();
            fetched.push(dir);
            path
        } else {
            PathBuf::from(source)
        };
        deliveries.extend(finops_ingest::discover(&path)?);
    }
    let progress_bar = std::io::IsTerminal::is_terminal(&std::io::stderr());
    for delivery in &deliveries {
        let context = finops_governance::CommandContext::operator(actor, uuid::Uuid::now_v7());
        let started = std::time::Instant::now();
        let mut show = |p: &finops_ingest::Progress| {
            if progress_bar {
                eprint!("\r{}", progress_line(p, started.elapsed().as_secs_f64()));
            }
        };
        let report = ingestor.ingest(delivery, format, &context, &mut show).await;
        if progress_bar {
            eprintln!();
        }
        let report = report?;
        let seconds = started.elapsed().as_secs_f64().max(1e-9);
        let b = &report.batch;
        let outcome = match (&report.superseded, report.already_current) {
            (_, true) => "unchanged (same bytes as the current batch)".to_owned(),
            (Some(old), false) => format!("supersedes {}", &old[..12.min(old.len())]),
            (None, false) => "first batch of the period".to_owned(),
        };
        println!(
            "{}  period {}  {} file(s)  {} rows  {:.1} MB  {:.0} rows/s  caller identity {}  sha256 {}  {outcome}",
            delivery.source,
            b.period,
            delivery.files.len(),
            b.rows,
            b.bytes as f64 / 1e6,
            b.rows as f64 / seconds,
            if b.caller_identity { "present" } else { "ABSENT" },
            &b.hash[..16],
        );
        // What was recognised as AI spend, per source: a source that silently dropped out
        // (say, Marketplace lines unrecognised) shows as zero here.
        let sources: Vec<String> = report
            .sources
            .iter()
            .map(|t| {
                let cents = finops_ingest::cents(t.cost);
                format!("{} {} lines ${}.{:02}", t.source.as_str(), t.lines, cents / 100, (cents % 100).abs())
            })
            .collect();
        println!("  AI recognised: {}", sources.join(" · "));
    }
    drop(fetched);
    Ok(())
}

/// `[#########-----------]  45%  1234567 rows  300.1/700.0 MB  850123 rows/s  ETA 12 s  file`
/// (the ETA from the bytes still to read at the rate so far).
fn progress_line(p: &finops_ingest::Progress, seconds: f64) -> String {
    let fraction = if p.total_bytes == 0 { 0.0 } else { (p.bytes as f64 / p.total_bytes as f64).min(1.0) };
    let filled = (fraction * 20.0).round() as usize;
    let eta = match p.bytes {
        0 => "ETA –".to_owned(),
        read => {
            let left = p.total_bytes.saturating_sub(read) as f64 * seconds / read as f64;
            if left < 60.0 {
                format!("ETA {left:.0} s")
            } else {
                format!("ETA {:.0} min {:02.0} s", (left / 60.0).floor(), left % 60.0)
            }
        }
    };
    format!(
        "[{}{}] {:>3.0}%  {} rows  {:.1}/{:.1} MB  {:.0} rows/s  {eta}  {}",
        "#".repeat(filled),
        "-".repeat(20 - filled),
        fraction * 100.0,
        p.rows,
        p.bytes as f64 / 1e6,
        p.total_bytes as f64 / 1e6,
        p.rows as f64 / seconds.max(1e-9),
        p.file
    )
}

fn dev_token(args: DevTokenArgs) -> anyhow::Result<()> {
    let role: Role = serde_json::from_value(serde_json::Value::String(args.role.clone())).map_err(|_| {
        anyhow::anyhow!(
            "unknown role `{}`: use product_owner, finops_lead, cloud_engineer, portfolio_owner, finance, auditor or operator",
            args.role
        )
    })?;
    let secret = args.jwt_secret.unwrap_or_else(|| finops_server::DEV_JWT_SECRET.to_owned());
    let auth = Authenticator::hs256(secret.as_bytes()).map_err(anyhow::Error::msg)?;
    let token = auth
        .issue(&args.subject, role, args.hours * 3600)
        .map_err(|reason| anyhow::anyhow!("cannot mint a token for --subject {:?}: {reason}", args.subject))?;
    println!("{token}");
    Ok(())
}

/// Hides a password in a store URL before it is printed.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}://{user}:***{}", &url[..scheme], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_the_log() {
        assert_eq!(redact("postgres://app:s3cret@db:5432/finops"), "postgres://app:***@db:5432/finops");
        assert_eq!(redact("postgres://app@db/finops"), "postgres://app@db/finops");
        assert_eq!(redact("sqlite://finops-data/finops.db"), "sqlite://finops-data/finops.db");
    }

    #[test]
    fn the_progress_bar_shows_share_rows_bytes_rate_and_eta() {
        let p = finops_ingest::Progress {
            file: "m.csv.gz".into(),
            rows: 500_000,
            bytes: 45_000_000,
            total_bytes: 100_000_000,
        };
        assert_eq!(
            progress_line(&p, 2.0),
            "[#########-----------]  45%  500000 rows  45.0/100.0 MB  250000 rows/s  ETA 2 s  m.csv.gz"
        );
        let done = finops_ingest::Progress { bytes: 100_000_000, ..p.clone() };
        assert!(progress_line(&done, 1.0).starts_with("[####################] 100%"));
        assert!(progress_line(&done, 1.0).contains("ETA 0 s"));
        let slow = finops_ingest::Progress { bytes: 10_000_000, ..p };
        assert!(progress_line(&slow, 30.0).contains("ETA 4 min 30 s"), "{}", progress_line(&slow, 30.0));
    }
}
