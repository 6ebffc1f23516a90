//! What a newcomer does: generate a month, ingest it with the CLI, read attribution and the
//! chargeback statement, ingest AWS's restatement, and ask again as of the earlier instant
//! — getting the earlier answer.

use std::process::Command;

use serde_json::Value;

mod common;

fn finops(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_finops")).args(args).env_remove("FINOPS_JWT_SECRET").output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(args: &[&str]) -> Value {
    let (ok, out, err) = finops(args);
    assert!(ok, "finops {args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn a_generated_month_is_attributed_charged_back_and_answerable_as_of_before_its_restatement() {
    let (server, dir) = common::serve_demo("attr-cli");
    let store = format!("sqlite://{}", dir.join("finops.db").display());
    let objects = dir.join("objects").display().to_string();
    let url = server.url.clone();
    let (_, token, _) = finops(&["dev-token", "--subject", "fin-eva", "--role", "finance"]);
    let token = token.trim().to_owned();
    let ask = |extra: &[&str]| {
        let mut args = vec!["--server", url.as_str(), "--token", token.as_str(), "--json"];
        args.extend_from_slice(extra);
        json(&args)
    };

    let month = |restatement: &str, name: &str| {
        let path = dir.join(name).display().to_string();
        let (ok, _, err) = finops(&[
            "cur",
            "generate",
            "--period",
            "2026-11",
            "--rows",
            "20000",
            "--seed",
            "3",
            "--restatement",
            restatement,
            "--out",
            &path,
        ]);
        assert!(ok, "{err}");
        let (ok, out, err) = finops(&["cur", "ingest", &path, "--store", &store, "--objects", &objects]);
        assert!(ok, "{err}");
        assert!(out.contains("period 2026-11") && out.contains("20000 rows"), "{out}");
        out
    };

    let first = month("0", "2026-11.csv.gz");
    assert!(first.contains("supersedes"), "the demo's own November is superseded: {first}");
    std::thread::sleep(std::time::Duration::from_millis(20));
    let before = chrono::Utc::now().to_rfc3339();
    let answer = ask(&["attribution", "--period", "2026-11", "--group-by", "workload,gap"]);
    let total = answer["total_cents"].as_i64().unwrap();
    assert!(total > 0);
    let support =
        answer["rows"].as_array().unwrap().iter().find(|r| r["keys"][0] == "Support Bot" && r["keys"][1] == "");
    assert!(
        support.is_some_and(|r| r["cost_cents"].as_i64().unwrap() > 0),
        "the demo's claimed role is attributed: {answer}"
    );
    let gaps: Vec<&str> = answer["rows"].as_array().unwrap().iter().filter_map(|r| r["keys"][1].as_str()).collect();
    for gap in [
        "attribution_not_enabled",
        "unattributed_spend",
        "unclaimed_ai_allocation",
        "not_business_approved",
        "unallocated_guardrail",
    ] {
        assert!(gaps.contains(&gap), "{gap} missing from {gaps:?}");
    }
    let statement = ask(&["chargeback", "--period", "2026-11"]);
    assert_eq!(statement["total_cents"].as_i64().unwrap(), total, "the statement charges every AI dollar once");
    assert!(statement["absorbed_by_non_ai_cents"].as_i64().unwrap() > 0, "non-AI budgets absorb shared spend");

    std::thread::sleep(std::time::Duration::from_millis(20));
    let restated = month("1", "2026-11-restated.csv.gz");
    assert!(restated.contains("supersedes"), "{restated}");
    let now = ask(&["attribution", "--period", "2026-11", "--group-by", "workload,gap"]);
    assert_ne!(now["total_cents"], answer["total_cents"], "the restatement changed costs");
    let then = ask(&["attribution", "--period", "2026-11", "--group-by", "workload,gap", "--as-of", &before]);
    assert_eq!(then["rows"], answer["rows"], "as of before the restatement: the earlier answer, to the cent");
    assert_eq!(then["batch_hash"], answer["batch_hash"]);

    // Tables for people, and an export file.
    let (ok, table, err) = finops(&["--server", &url, "--token", &token, "chargeback", "--period", "2026-11"]);
    assert!(ok, "{err}");
    assert!(table.contains("ACCOUNT") && table.contains("absorbed by non-AI budgets"), "{table}");
    let out = dir.join("focus.csv").display().to_string();
    let (ok, _, err) = finops(&[
        "--server", &url, "--token", &token, "export", "--period", "2026-11", "--format", "focus", "--out", &out,
    ]);
    assert!(ok, "{err}");
    assert!(std::fs::read_to_string(&out).unwrap().lines().next().unwrap().contains("x_GapKind"));
    let (ok, _, err) =
        finops(&["--server", &url, "--token", &token, "attribution", "--period", "2026-11", "--group-by", "colour"]);
    assert!(!ok && err.contains("group_by"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
