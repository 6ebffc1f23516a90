//! Ingest and attribution of a synthetic CUR month, against DuckDB on the same Parquet in
//! the same run.
//!
//! `cargo bench -p finops-ingest --bench attribution` (rows: `FINOPS_BENCH_ROWS`, default
//! 1 000 000). Steps:
//!
//! 1. generate a month of CUR 2.0 CSV (`finops_cur::synthetic`);
//! 2. ingest it through the real `Ingestor` (validate, hash, columnar lines, local object
//!    store, `CurBatchIngested` in a SQLite log) — rows/s and the process's peak resident
//!    memory (VmHWM) right after, which is the ingest's peak since nothing ran before;
//! 3. attribution by workload and gap (the classification SQL over the batch's Parquet),
//!    best of 3, in DataFusion and in DuckDB (`python3 -m pip install duckdb`) over the same
//!    Parquet files and the same SQL (the rendered classification); the totals must agree
//!    to the cent; prints the ratio;
//! 4. next to it, in the same run: gap detection, the Spend Cards of every claimed
//!    workload and complete week, the maturity score, and the question with gateway rules.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::NaiveDate;
use datafusion::arrow::array::AsArray;
use finops_attribution::{
    AttributionEngine, Dimension, GovernanceView, RolePatterns, RuleFacets, Visibility, classify_sql,
};
use finops_domain::gateway_rules::{GatewayRuleSpec, SessionMatcher};
use finops_domain::governance_state::{ApprovedWorkload, ClaimSpan, GatewayRuleSpan};
use finops_domain::org::{Budget, Portfolio, Product};
use finops_domain::spaces::ClaimedResource;
use finops_domain::vocabulary::{AccountId, ApprovalScope, Region};
use finops_governance::CommandContext;
use finops_ingest::{Format, Ingestor};
use uuid::Uuid;

fn id(name: &str) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes())
}

/// The governance the synthetic month is judged by: three claimed workloads (one claimed
/// mid-month), a claimed guardrail and workspace, budgets on every account.
fn governance() -> GovernanceView {
    let mut view = GovernanceView::default();
    let org = &mut view.organisation;
    org.portfolios.insert(id("cx"), Portfolio { name: "Customer Experience".into(), owner: "pf-omar".into() });
    let accounts = ["111122223333", "444455556666", "777788889999", "012345678901"];
    for (i, a) in accounts.iter().enumerate() {
        let account = AccountId::parse(a).unwrap();
        org.accounts.insert(account.clone(), format!("account-{i}"));
        for b in ["AI", "Platform"] {
            let name = format!("{b} {i}");
            org.budgets.insert(id(&name), Budget { account: account.clone(), name, cost_centre: format!("CC-{i}") });
        }
    }
    let workloads = [
        ("Support Bot", "finops-support-bot-88aa", "111122223333", "anthropic.claude-sonnet-4-20250514-v1:0", 1),
        ("Claims Triage", "finops-claims-triage-u88g", "444455556666", "anthropic.claude-3-haiku-20240307-v1:0", 15),
        ("Contract Drafts", "finops-contract-drafts-ev2e", "777788889999", "amazon.nova-pro-v1:0", 1),
    ];
    for (name, role, account, model, from_day) in workloads {
        org.products.insert(id(name), Product { portfolio_id: id("cx"), name: name.into(), owner: "po-maria".into() });
        let account = AccountId::parse(account).unwrap();
        view.workloads.push(Arc::new(ApprovedWorkload {
            workload_id: id(name),
            name: name.into(),
            owner: "po-maria".into(),
            product_id: id(name),
            portfolio_id: id("cx"),
            budgets: finops_domain::governance_state::budget_spans(
                Some(id(&format!("AI {}", accounts.iter().position(|a| *a == account.as_str()).unwrap()))),
                &[],
            ),
            model_id: model.into(),
            scope: ApprovalScope {
                accounts: [account.clone()].into(),
                regions: ["us-east-1", "us-west-2"].iter().map(|r| Region::parse(r).unwrap()).collect(),
                actions: Default::default(),
            },
            role_name: role.into(),
            business_case: true,
            estimate: true,
        }));
        view.claims.push(Arc::new(ClaimSpan {
            resource: ClaimedResource::IamRole { account, role_name: role.into() },
            workload_id: id(name),
            from: NaiveDate::from_ymd_opt(2026, 11, from_day).unwrap(),
            until: None,
        }));
    }
    view.claims.push(Arc::new(ClaimSpan {
        resource: ClaimedResource::Guardrail {
            arn: "arn:aws:bedrock:us-east-1:111122223333:guardrail/gr0support01".into(),
        },
        workload_id: id("Support Bot"),
        from: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        until: None,
    }));
    view.claims.push(Arc::new(ClaimSpan {
        resource: ClaimedResource::Workspace { name: "support-pilot".into() },
        workload_id: id("Support Bot"),
        from: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        until: None,
    }));
    view
}

const ATTRIBUTE_SQL: &str = "SELECT COALESCE(w.workload, '') AS workload, COALESCE(c.gap, '') AS gap, \
    SUM(c.cost) AS cost, SUM(c.tokens) AS tokens, CAST(SUM(c.lines) AS BIGINT) AS lines \
    FROM classified c LEFT JOIN workloads w ON w.workload_id = c.workload_id GROUP BY 1, 2 ORDER BY 1, 2";

// Each run opens a connection and creates the views, as the DataFusion side prepares its
// question each run: both are timed from nothing registered to the answer.
const DUCKDB_SCRIPT: &str = r#"
import duckdb, json, sys, time
folder, lines, facets, classify, query = sys.argv[1], sys.argv[2], sys.argv[3], open(sys.argv[4]).read(), sys.argv[5]
best, rows = None, None
for _ in range(3):
    t = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET threads TO %d" % int(sys.argv[6]))
    for name in ["workloads", "scope_accounts", "scope_regions", "claims", "generated_roles", "generated_sets"]:
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{folder}/{name}.parquet')")
    # The benchmark's governance records no gateway rule.
    con.execute("CREATE TABLE gateway_rules (rule INTEGER, rule_id VARCHAR, workload_id VARCHAR)")
    con.execute(f"CREATE VIEW lines AS SELECT * FROM read_parquet('{lines}')")
    con.execute(f"CREATE VIEW facets AS SELECT * FROM read_parquet('{facets}')")
    con.execute("CREATE VIEW classified AS " + classify)
    rows = con.execute(query).fetchall()
    s = time.perf_counter() - t
    con.close()
    best = s if best is None else min(best, s)
total = sum(r[2] for r in rows)
print(json.dumps({"seconds": best, "groups": len(rows), "total_cents": int((total * 100).quantize(1, rounding="ROUND_HALF_UP")), "version": duckdb.__version__}))
"#;

async fn write_governance_parquet(question: &finops_attribution::Question, folder: &Path) {
    for table in ["workloads", "scope_accounts", "scope_regions", "claims", "generated_roles", "generated_sets"] {
        let batches = question.sql(&format!("SELECT * FROM {table}")).await.unwrap();
        let schema = batches[0].schema();
        let file = std::fs::File::create(folder.join(format!("{table}.parquet"))).unwrap();
        let mut writer = datafusion::parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
        for b in &batches {
            writer.write(b).unwrap();
        }
        writer.close().unwrap();
    }
}

fn main() {
    let rows: u64 = std::env::var("FINOPS_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let dir: PathBuf = std::env::temp_dir().join(format!("finops-bench-{}", Uuid::now_v7()));
    std::fs::create_dir_all(dir.join("objects")).unwrap();
    let csv = dir.join("2026-11.csv");

    // 1. Generate.
    let started = Instant::now();
    let mut out = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
    let spec = finops_cur::synthetic::MonthSpec { period: "2026-11".into(), rows, seed: 7, restatement: 0 };
    finops_cur::synthetic::write_month(&spec, &mut out).unwrap();
    drop(out);
    let bytes = std::fs::metadata(&csv).unwrap().len();
    println!("generated {rows} rows ({:.0} MB) in {:.1} s", bytes as f64 / 1e6, started.elapsed().as_secs_f64());

    runtime.block_on(async {
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
        let context = CommandContext::operator("bench", Uuid::now_v7());
        let started = Instant::now();
        let report = ingestor.ingest_file(&csv, Format::Cur, &context).await.unwrap();
        let ingest_s = started.elapsed().as_secs_f64();
        let peak = finops_e2e::peak_rss_mib();
        println!(
            "ingest: {rows} rows in {ingest_s:.2} s = {:.0} rows/s, {:.0} MB/s; peak RSS {peak:.0} MiB",
            rows as f64 / ingest_s,
            bytes as f64 / 1e6 / ingest_s
        );

        // 3. Attribution, DataFusion.
        let engine = AttributionEngine::new(objects, RolePatterns::default());
        let view = governance();
        let mut best = f64::MAX;
        let mut answer = None;
        let mut split = (0.0, 0.0);
        for _ in 0..3 {
            let started = Instant::now();
            let question = engine.question(view.clone(), &report.batch, Visibility::Everything).await.unwrap();
            let prepared = started.elapsed().as_secs_f64();
            let a = question.attribute(&[Dimension::Workload, Dimension::Gap]).await.unwrap();
            let took = started.elapsed().as_secs_f64();
            if took < best {
                best = took;
                split = (prepared, took - prepared);
            }
            answer = Some(a);
        }
        println!(
            "  of which: question prepared (scan, sum per facet, classify) {:.3} s, grouped by workload × gap {:.3} s",
            split.0, split.1
        );
        let answer = answer.unwrap();
        let df_total: i64 = answer.rows.iter().map(|r| r.cost_cents).sum();
        println!(
            "attribution (DataFusion {}): {} groups, total ${:.2}, best of 3 {best:.3} s = {:.1} M rows/s classified",
            datafusion::DATAFUSION_VERSION,
            answer.rows.len(),
            df_total as f64 / 100.0,
            rows as f64 / best / 1e6
        );

        // 3''. Gap detection (issue 11.9): what the detector adds to the question a period's
        // evaluation prepares — the gaps read from the classification — next to the
        // attribution query of the same run; then one claim, and how many gaps it changes.
        let mut gaps_best = f64::MAX;
        let mut found = Vec::new();
        for _ in 0..3 {
            let question = engine.question(view.clone(), &report.batch, Visibility::Everything).await.unwrap();
            let started = Instant::now();
            found = question.gaps().await.unwrap();
            gaps_best = gaps_best.min(started.elapsed().as_secs_f64());
        }
        println!(
            "gap detection: {} gaps in {gaps_best:.3} s after the question = {:.1} % of the attribution query ({best:.3} s) \
             (target ≤ 20 %); a whole evaluation (question + gaps) {:.3} s = {:.2} × attribution",
            found.len(),
            100.0 * gaps_best / best,
            split.0 + gaps_best,
            (split.0 + gaps_best) / best
        );
        let mut claimed = view.clone();
        let role = found
            .iter()
            .find(|g| g.identity.kind == finops_domain::gaps::GapKind::UnclaimedAiAllocation && g.identity.anchor.starts_with("role/"))
            .map(|g| (g.identity.account.clone(), g.identity.principal.clone()));
        if let Some((account, role)) = role {
            claimed.claims.push(Arc::new(ClaimSpan {
                resource: ClaimedResource::IamRole { account: AccountId::parse(&account).unwrap(), role_name: role.clone() },
                workload_id: claimed.workloads[0].workload_id,
                from: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
                until: None,
            }));
            let after = engine.question(claimed, &report.batch, Visibility::Everything).await.unwrap().gaps().await.unwrap();
            let before: std::collections::BTreeMap<_, _> =
                found.iter().map(|g| (g.identity.gap_id(), (&g.identity, &g.spend))).collect();
            let now: std::collections::BTreeMap<_, _> =
                after.iter().map(|g| (g.identity.gap_id(), (&g.identity, &g.spend))).collect();
            let changed = before.keys().chain(now.keys()).collect::<std::collections::BTreeSet<_>>().into_iter().filter(|id| before.get(id) != now.get(id)).count();
            println!(
                "re-detection after claiming {role} in {account}: {changed} of {} gaps change (the detector writes only those)",
                before.len()
            );
        }

        // 3''''. Spend Cards and maturity (issue 12.8): the card issuer's evaluation of the
        // month (every claimed workload, every complete week: question, covered days, the
        // spend per workload, day and line, the figures with estimate and forecast) and the
        // maturity score's spend figures and formulas, each from nothing to its answer, next
        // to the attribution query of the same run.
        let plan = |_: Uuid| {
            Some(finops_domain::spend_cards::proration::MonthlyPlan {
                cents: 310_000,
                start: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
                end: None,
                growth_percent: 5.0,
            })
        };
        let (mut cards_best, mut cards) = (f64::MAX, Vec::new());
        for _ in 0..3 {
            let started = Instant::now();
            cards = finops_processes::cards::card_figures(&engine, &view, &[&report.batch], plan, 20).await.unwrap();
            cards_best = cards_best.min(started.elapsed().as_secs_f64());
        }
        let weeks: std::collections::BTreeSet<NaiveDate> = cards.iter().map(|c| c.figures.week).collect();
        let carded: i64 = cards.iter().map(|c| c.figures.actual_cents()).sum();
        println!(
            "spend cards: {} cards ({} workloads × {} complete weeks, ${:.2}) in {cards_best:.3} s = {:.2} × the attribution query ({best:.3} s) (target ≤ 1.5 ×)",
            cards.len(),
            view.workloads.len(),
            weeks.len(),
            carded as f64 / 100.0,
            cards_best / best
        );
        let (mut maturity_best, mut overall) = (f64::MAX, 0.0);
        for _ in 0..3 {
            let started = Instant::now();
            let question = engine.question(view.clone(), &report.batch, Visibility::Everything).await.unwrap();
            let mut figures = question.maturity_spend().await.unwrap();
            figures.claimed_workloads = view.workloads.len() as u32;
            figures.with_estimate = figures.claimed_workloads;
            overall = finops_domain::maturity::score(&figures).overall;
            maturity_best = maturity_best.min(started.elapsed().as_secs_f64());
        }
        println!(
            "maturity: {overall:.1} in {maturity_best:.3} s = {:.2} × the attribution query ({best:.3} s) (target ≤ 1.5 ×)",
            maturity_best / best
        );

        // 3'''. Gateway mapping rules (issue 11.5): the same question with two rules on the
        // LLM gateway role in every account (a session glob and a principal tag), against
        // the question without rules, in the same run.
        let mut ruled = view.clone();
        for (i, account) in ["111122223333", "444455556666", "777788889999", "012345678901"].iter().enumerate() {
            let workload_id = ruled.workloads[i % ruled.workloads.len()].workload_id;
            for matcher in [
                SessionMatcher::SessionName { pattern: "gw-user-1*".into() },
                SessionMatcher::PrincipalTag { key: "tenant".into(), value: "tenant-2".into() },
            ] {
                let spec = GatewayRuleSpec {
                    account: AccountId::parse(account).unwrap(),
                    role_name: "llm-gateway".into(),
                    matcher,
                    workload_id,
                    effective_from: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
                };
                ruled.gateway_rules.push(GatewayRuleSpan { rule_id: spec.rule_id(), spec, until: None });
            }
        }
        let (mut plain_best, mut ruled_best, mut taken) = (f64::MAX, f64::MAX, 0);
        for _ in 0..3 {
            for with_rules in [false, true] {
                let v = if with_rules { &ruled } else { &view };
                let started = Instant::now();
                let question = engine.question(v.clone(), &report.batch, Visibility::Everything).await.unwrap();
                let a = question.attribute(&[Dimension::Workload, Dimension::Gap]).await.unwrap();
                let took = started.elapsed().as_secs_f64();
                assert_eq!(a.total_cents, df_total, "rules move spend, never change the total");
                if with_rules {
                    ruled_best = ruled_best.min(took);
                    let rows = question.sql("SELECT COUNT(*) FROM classified WHERE rule_id <> ''").await.unwrap();
                    taken = rows[0].column(0).as_primitive::<datafusion::arrow::datatypes::Int64Type>().value(0);
                } else {
                    plain_best = plain_best.min(took);
                }
            }
        }
        println!(
            "gateway rules: 8 rules, {taken} facet-days taken; attribution best of 3 {ruled_best:.3} s with rules vs \
             {plain_best:.3} s without = {:.2} ×",
            ruled_best / plain_best
        );

        // 3'. The same SQL over the same Parquet in DuckDB.
        let question = engine.question(view, &report.batch, Visibility::Everything).await.unwrap();
        let november = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        if std::env::var("FINOPS_BENCH_EXPLAIN").is_ok() {
            // The classification's plan with its measured operators (for tuning).
            let sql = format!("EXPLAIN ANALYZE {}", classify_sql(&governance().gateway_rules, &RolePatterns::default(), november, &RuleFacets::default()));
            for batch in question.sql(&sql).await.unwrap() {
                println!("{}", datafusion::arrow::util::pretty::pretty_format_batches(&[batch]).unwrap());
            }
        }
        let counts = question.sql("SELECT COUNT(*) FROM facets").await.unwrap();
        println!(
            "facets: {} (distinct account × caller × model × token type × region × anchor)",
            datafusion::arrow::util::display::array_value_to_string(counts[0].column(0), 0).unwrap()
        );
        write_governance_parquet(&question, &dir).await;
        let objects_dir = dir.join("objects");
        let lines = objects_dir.join(finops_attribution::lines_location("2026-11", &report.batch.hash).as_ref());
        let facets = objects_dir.join(finops_attribution::facets_location("2026-11", &report.batch.hash).as_ref());
        let classify = dir.join("classify.sql");
        std::fs::write(&classify, classify_sql(&governance().gateway_rules, &RolePatterns::default(), november, &RuleFacets::default())).unwrap();
        let duck = std::process::Command::new("python3")
            .args(["-c", DUCKDB_SCRIPT])
            .arg(&dir)
            .arg(&lines)
            .arg(&facets)
            .arg(&classify)
            .arg(ATTRIBUTE_SQL)
            .arg(threads.to_string())
            .output();
        match duck {
            Ok(out) if out.status.success() => {
                let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                let duck_s = result["seconds"].as_f64().unwrap();
                let duck_total = result["total_cents"].as_i64().unwrap();
                println!(
                    "attribution (DuckDB {}): {} groups, total ${:.2}, best of 3 {duck_s:.3} s",
                    result["version"].as_str().unwrap_or("?"),
                    result["groups"],
                    duck_total as f64 / 100.0
                );
                assert_eq!(duck_total, df_total, "DuckDB and DataFusion disagree on the total");
                println!("ratio DataFusion / DuckDB = {:.2} (target ≤ 1.0)", best / duck_s);
            }
            Ok(out) => println!("DuckDB baseline failed: {}", String::from_utf8_lossy(&out.stderr)),
            Err(e) => println!("DuckDB baseline not run (python3: {e})"),
        }
    });
    std::fs::remove_dir_all(&dir).unwrap();
}
