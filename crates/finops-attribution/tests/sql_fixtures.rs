//! Billing SQL tested sqllogictest-style: each `tests/sql/*.test` file is a CUR fixture, a
//! governance state and questions with their expected answers, all reviewable as text
//! (the format is described at the top of `classify.test`). Set `FINOPS_BLESS=1` to print
//! the actual answers in place of a failure, to review and paste.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use finops_attribution::{
    AttributionEngine, Dimension, GovernanceTables, GovernanceView, RolePatterns, Visibility, classify_sql,
    facets_location, lines_location, rule_facets, sessions_location,
};
use finops_cur::csv_lines::CurCsv;
use finops_domain::cur_batches::CurBatch;
use finops_domain::gateway_rules::{GatewayRuleSpec, SessionMatcher};
use finops_domain::governance_state::{ApprovedWorkload, ClaimSpan, GatewayRuleSpan};
use finops_domain::org::{Budget, Portfolio, Product};
use finops_domain::spaces::ClaimedResource;
use finops_domain::vocabulary::{AccountId, ApprovalScope, Region};
use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use uuid::Uuid;

fn id(name: &str) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes())
}

fn dollars(cents: i64) -> String {
    format!("{}{}.{:02}", if cents < 0 { "-" } else { "" }, cents.abs() / 100, cents.abs() % 100)
}

/// `key=value` arguments after the positional ones.
fn args(words: &[String]) -> (Vec<&str>, BTreeMap<&str, &str>) {
    let mut positional = vec![];
    let mut named = BTreeMap::new();
    for w in words {
        match w.split_once('=') {
            Some((k, v)) if !k.contains(':') => {
                named.insert(k, v);
            }
            _ => positional.push(w.as_str()),
        }
    }
    (positional, named)
}

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

/// Applies one governance directive.
fn govern(view: &mut GovernanceView, line: &str) {
    let words = shell_words::split(line).unwrap();
    let (pos, named) = args(&words[1..]);
    let org = &mut view.organisation;
    match words[0].as_str() {
        "portfolio" => {
            org.portfolios.insert(id(pos[0]), Portfolio { name: pos[0].into(), owner: named["owner"].into() });
        }
        "product" => {
            let product =
                Product { portfolio_id: id(named["portfolio"]), name: pos[0].into(), owner: named["owner"].into() };
            org.products.insert(id(pos[0]), product);
        }
        "account" => {
            org.accounts.insert(AccountId::parse(pos[0]).unwrap(), pos[1].into());
        }
        "budget" => {
            let budget = Budget {
                account: AccountId::parse(named["account"]).unwrap(),
                name: pos[0].into(),
                cost_centre: named["cost_centre"].into(),
            };
            org.budgets.insert(id(pos[0]), budget);
        }
        "workload" => {
            let account = AccountId::parse(named["account"]).unwrap();
            // The budget the approval named, and a change the FinOps Lead recorded later.
            let changes: Vec<(chrono::NaiveDate, uuid::Uuid)> = named
                .get("moves_to")
                .map(|b| (chrono::NaiveDate::parse_from_str(named["on"], "%Y-%m-%d").unwrap(), id(b)))
                .into_iter()
                .collect();
            let budgets = finops_domain::governance_state::budget_spans(named.get("budget").map(|b| id(b)), &changes);
            let product_id = id(named["product"]);
            view.workloads.push(Arc::new(ApprovedWorkload {
                workload_id: id(pos[0]),
                name: pos[0].into(),
                owner: named["owner"].into(),
                product_id,
                portfolio_id: org.products[&product_id].portfolio_id,
                budgets,
                model_id: named["model"].into(),
                scope: ApprovalScope {
                    accounts: [account].into(),
                    regions: named["regions"].split(',').map(|r| Region::parse(r).unwrap()).collect(),
                    actions: Default::default(),
                },
                role_name: named["role"].into(),
                business_case: named.get("business_case").is_none_or(|v| *v == "yes"),
                estimate: named.get("estimate").is_none_or(|v| *v == "yes"),
            }));
        }
        "claim" => {
            let resource = match pos[0] {
                "role" => ClaimedResource::role(pos[1], pos[2]).unwrap(),
                "guardrail" => ClaimedResource::guardrail(pos[1]).unwrap(),
                "workspace" => ClaimedResource::Workspace { name: pos[1].into() },
                other => panic!("unknown claim kind {other}"),
            };
            view.claims.push(Arc::new(ClaimSpan {
                resource,
                workload_id: id(named["workload"]),
                from: day(named["from"]),
                until: named.get("until").map(|d| day(d)),
            }));
        }
        "rule" => {
            // rule ACCOUNT ROLE session=GLOB|tag=KEY=VALUE workload=NAME from=DAY [until=DAY]
            let matcher = match (named.get("session"), named.get("tag")) {
                (Some(pattern), None) => SessionMatcher::SessionName { pattern: (*pattern).into() },
                (None, Some(tag)) => {
                    let (key, value) = tag.split_once('=').unwrap();
                    SessionMatcher::PrincipalTag { key: key.into(), value: value.into() }
                }
                _ => panic!("a rule takes session= or tag="),
            };
            let spec = GatewayRuleSpec {
                account: AccountId::parse(pos[0]).unwrap(),
                role_name: pos[1].into(),
                matcher,
                workload_id: id(named["workload"]),
                effective_from: day(named["from"]),
            };
            view.gateway_rules.push(GatewayRuleSpan {
                rule_id: spec.rule_id(),
                spec,
                until: named.get("until").map(|d| day(d)),
            });
        }
        other => panic!("unknown directive `{other}`"),
    }
}

/// A fixture file, parsed into its parts.
struct Fixture {
    csv: String,
    view: GovernanceView,
    /// (what to run, the expected text)
    checks: Vec<(String, String)>,
}

fn parse(text: &str) -> Fixture {
    let mut fixture = Fixture { csv: String::new(), view: GovernanceView::default(), checks: vec![] };
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let block = |lines: &mut std::iter::Peekable<std::str::Lines>, until: &dyn Fn(&str) -> bool| {
            let mut out = vec![];
            while let Some(l) = lines.next_if(|l| !until(l)) {
                out.push(l);
            }
            out.join("\n")
        };
        if trimmed == "lines" {
            fixture.csv = block(&mut lines, &|l| l.trim().is_empty()) + "\n";
        } else if trimmed == "query"
            || trimmed.starts_with("attribute")
            || trimmed == "chargeback"
            || trimmed == "unbacked"
            || trimmed == "cur_hours"
        {
            let mut what = trimmed.to_owned();
            if trimmed == "query" {
                what = format!("query {}", block(&mut lines, &|l| l.trim() == "----"));
            }
            assert_eq!(lines.next().map(str::trim), Some("----"), "`{trimmed}` needs `----` and its answer");
            let expected = block(&mut lines, &|l| l.trim().is_empty());
            fixture.checks.push((what, expected));
        } else {
            govern(&mut fixture.view, trimmed);
        }
    }
    fixture
}

async fn run(name: &str, text: &str) -> Vec<String> {
    let fixture = parse(text);
    let objects: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut writer = finops_attribution::lines::LinesWriter::new(Vec::new(), Vec::new(), Vec::new()).unwrap();
    for line in CurCsv::new(name, fixture.csv.as_bytes()).unwrap() {
        writer.push(&line.unwrap()).unwrap();
    }
    let rows = writer.rows();
    let (lines, facets, sessions) = writer.finish().unwrap();
    let batch = CurBatch {
        period: "2026-11".into(),
        source: name.into(),
        hash: "fixture".into(),
        location: String::new(),
        format: "cur".into(),
        rows,
        bytes: fixture.csv.len() as u64,
        caller_identity: true,
    };
    objects.put(&lines_location("2026-11", "fixture"), PutPayload::from(lines)).await.unwrap();
    objects.put(&facets_location("2026-11", "fixture"), PutPayload::from(facets)).await.unwrap();
    objects.put(&sessions_location("2026-11", "fixture"), PutPayload::from(sessions)).await.unwrap();
    let engine = AttributionEngine::new(objects.clone(), RolePatterns::default());
    let question = engine.question(fixture.view.clone(), &batch, Visibility::Everything).await.unwrap();
    let mut failures = vec![];
    // The question classifies against only the governance rows its facets can meet; the
    // same SQL against every row must classify every line the same way.
    let whole = classified_with_whole_tables(objects, &fixture.view).await;
    let narrowed = sorted_rows(&question.sql("SELECT * FROM classified").await.unwrap());
    if narrowed != whole {
        failures.push(format!(
            "{name}: classified against the reached rows\n{}\n--- differs from against every row\n{}",
            narrowed.join("\n"),
            whole.join("\n")
        ));
    }
    for (what, expected) in &fixture.checks {
        let actual: Vec<String> = if let Some(sql) = what.strip_prefix("query ") {
            rows_text(&question.sql(sql).await.unwrap_or_else(|e| panic!("{name}: {sql}\n{e}")))
        } else if let Some(dims) = what.strip_prefix("attribute") {
            let dims: Vec<Dimension> = dims.split_whitespace().map(|d| d.parse().unwrap()).collect();
            let answer = question.attribute(&dims).await.unwrap();
            answer
                .rows
                .iter()
                .map(|r| {
                    let mut cells = r.keys.clone();
                    cells.extend([dollars(r.cost_cents), format!("{}", r.tokens), r.lines.to_string()]);
                    cells.join(" | ")
                })
                .collect()
        } else if what == "unbacked" {
            let unbacked = question.unbacked().await.unwrap();
            unbacked
                .iter()
                .map(|u| {
                    let estimate = if u.estimate { "estimate" } else { "no estimate" };
                    format!("{} | {} | {} | {estimate}", u.workload, u.owner, dollars(u.spend_cents))
                })
                .collect()
        } else if what == "cur_hours" {
            let hours = question.cur_hours().await.unwrap();
            let mut out: Vec<String> = hours
                .rows
                .iter()
                .map(|h| {
                    let at = h.hour.format("%Y-%m-%dT%H:%MZ");
                    format!("{at} | {} | {} | {} | {}", h.account, h.principal, h.model, h.micro_usd)
                })
                .collect();
            out.push(format!("hourly: {}", hours.hourly));
            out
        } else {
            let statement = question.chargeback().await.unwrap();
            let mut out: Vec<String> = statement
                .charges
                .iter()
                .map(|c| {
                    [
                        c.account.clone(),
                        c.budget.clone(),
                        c.cost_centre.clone(),
                        if c.ai_budget { "ai" } else { "non-ai" }.to_owned(),
                        dollars(c.claimed_cents),
                        dollars(c.shared_cents),
                        dollars(c.total_cents()),
                    ]
                    .join(" | ")
                })
                .collect();
            out.push(format!(
                "total | {} | absorbed by non-AI budgets | {}",
                dollars(statement.total_cents),
                dollars(statement.absorbed_by_non_ai_cents)
            ));
            out
        };
        let actual = actual.iter().map(|l| l.trim_end()).collect::<Vec<_>>().join("\n");
        let expected = expected.lines().map(str::trim_end).collect::<Vec<_>>().join("\n");
        if actual != expected {
            failures.push(format!("{name}: {what}\n--- expected\n{expected}\n--- actual\n{actual}\n"));
        }
    }
    failures
}

/// Every row of `batches` as text, cells separated by ` | `.
fn rows_text(batches: &[RecordBatch]) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            (0..b.num_rows()).map(move |r| {
                (0..b.num_columns())
                    .map(|c| array_value_to_string(b.column(c), r).unwrap())
                    .collect::<Vec<_>>()
                    .join(" | ")
            })
        })
        .collect()
}

/// Every row of `batches` as text, sorted.
fn sorted_rows(batches: &[RecordBatch]) -> Vec<String> {
    let mut rows = rows_text(batches);
    rows.sort();
    rows
}

/// The fixture's lines classified by classify.sql with every governance table registered
/// whole, as before questions registered only what they can meet.
async fn classified_with_whole_tables(objects: Arc<dyn ObjectStore>, view: &GovernanceView) -> Vec<String> {
    let ctx = SessionContext::new();
    ctx.register_object_store(ObjectStoreUrl::parse("fixture://objects/").unwrap().as_ref(), objects);
    let tables = [
        ("lines", lines_location("2026-11", "fixture")),
        ("facets", facets_location("2026-11", "fixture")),
        ("sessions", sessions_location("2026-11", "fixture")),
    ];
    for (table, location) in tables {
        ctx.register_parquet(table, format!("fixture://objects/{location}"), ParquetReadOptions::default())
            .await
            .unwrap();
    }
    GovernanceTables::new(view.clone()).register(&ctx, &Visibility::Everything).unwrap();
    let rules = rule_facets(&ctx, &view.gateway_rules).await.unwrap();
    let patterns = view.patterns.clone().unwrap_or_default();
    let start = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    sorted_rows(
        &ctx.sql(&classify_sql(&view.gateway_rules, &patterns, start, &rules)).await.unwrap().collect().await.unwrap(),
    )
}

#[tokio::test]
async fn billing_sql_answers_what_the_fixtures_expect() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sql");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty());
    let mut failures = vec![];
    for file in files.iter().filter(|f| f.extension().is_some_and(|e| e == "test")) {
        let text = std::fs::read_to_string(file).unwrap();
        failures.extend(run(&file.file_name().unwrap().to_string_lossy(), &text).await);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
