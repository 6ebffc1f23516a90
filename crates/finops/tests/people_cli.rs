//! The `finops` CLI for people, against a real `finops serve --dev --demo`: from a
//! submission to a claimed role, tables and JSON.

use std::process::Command;

mod common;

fn start() -> common::Server {
    let dir = std::env::temp_dir().join(format!("finops-cli-{}-{}", std::process::id(), uuid::Uuid::now_v7()));
    let store = format!("sqlite://{}", dir.join("finops.db").display());
    let objects = dir.join("objects").display().to_string();
    common::serve(&["--demo", "--store", &store, "--objects", &objects], &[])
}

#[test]
fn a_reader_that_stops_early_ends_the_cli_quietly() {
    // `finops … | head`: the reader is gone before the CLI prints.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_finops"))
        .args(["dev-token", "--subject", "fl-ana", "--role", "finops_lead"])
        .env_remove("FINOPS_JWT_SECRET")
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(141), "as a Unix filter ended by SIGPIPE; stderr: {stderr}");
}

/// Regression (issue 10.9): `dev-token` minted tokens naming nobody.
#[test]
fn dev_token_refuses_a_blank_subject() {
    for subject in ["", "  "] {
        let out = Command::new(env!("CARGO_BIN_EXE_finops"))
            .args(["dev-token", "--subject", subject, "--role", "finops_lead"])
            .env_remove("FINOPS_JWT_SECRET")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{subject:?} minted a token");
        assert!(out.stdout.is_empty(), "no token printed");
        assert!(String::from_utf8_lossy(&out.stderr).contains("subject"), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

use common::{finops, json, token};

#[test]
fn a_newcomer_takes_a_request_from_submission_to_a_claimed_role() {
    let server = start();
    let (po, fl, ce) =
        (token("po-maria", "product_owner"), token("fl-ana", "finops_lead"), token("ce-li", "cloud_engineer"));

    let org = json(&server, &po, &["org"]);
    // The account has two budgets: the approval names the one the workload charges.
    let (product, budget) = common::demo_product_and_budget(&org);

    // Bad input names the field and stores nothing.
    let (ok, _, err) = finops(
        &server,
        &po,
        &[
            "requests",
            "submit",
            "--product",
            &product,
            "--workload-name",
            "Docs",
            "--developers",
            "0",
            "--active-percent",
            "120",
        ],
    );
    assert!(!ok);
    assert!(err.contains("coding.developers") && err.contains("coding.active_percent"), "{err}");

    let submitted = json(
        &server,
        &po,
        &[
            "requests",
            "submit",
            "--product",
            &product,
            "--workload-name",
            "Docs Helper",
            "--description",
            "Drafts help-centre articles",
            "--budget-dollars",
            "1500",
        ],
    );
    let name = submitted["name"].as_str().unwrap().to_owned();
    assert_eq!(submitted["status"], "submitted");

    let estimate = json(&server, &fl, &["requests", "estimate", &name]);
    assert_eq!(estimate["monthly_dollars"], "1500.00");

    let approved = json(
        &server,
        &fl,
        &[
            "requests",
            "approve",
            &name,
            "--model",
            "anthropic.claude-3-haiku-20240307-v1:0",
            "--account",
            "111122223333",
            "--region",
            "us-east-1",
            "--estimate-dollars",
            "1400",
            "--budget",
            &budget,
            "--rationale",
            "Useful and cheap",
        ],
    );
    let role = approved["role_name"].as_str().unwrap().to_owned();
    assert!(role.starts_with("finops-docs-helper-"), "{role}");

    // The Cloud Engineer finds the task (the queue follows the log within moments).
    let mut task = None;
    for _ in 0..200 {
        let open = json(&server, &ce, &["tasks", "list", "--status", "open"]);
        task = open
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["business_request"] == name.as_str())
            .map(|t| t["name"].as_str().unwrap().to_owned());
        if task.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let task = task.expect("the task appears in the queue");
    let (ok, table, _) = finops(&server, &ce, &["tasks", "show", &task]);
    assert!(ok && table.contains("$ aws iam create-role") && table.contains(&role), "{table}");
    for step in ["1", "2", "3"] {
        json(&server, &ce, &["tasks", "complete", &task, "--step", step]);
    }
    assert_eq!(json(&server, &ce, &["tasks", "implemented", &task])["status"], "implemented");

    let claim = json(&server, &po, &["claim", "--request", &name, "--account", "111122223333", "--role", &role]);
    assert_eq!(claim["status"], "claimed");

    let (ok, table, _) = finops(&server, &po, &["requests", "list", "--status", "approved"]);
    assert!(
        ok && table.starts_with("NAME") && table.contains("Support Bot"),
        "the demo's approved request is listed:\n{table}"
    );
    assert!(!table.contains("Claims Triage"), "Juan's request is not Maria's:\n{table}");
}
