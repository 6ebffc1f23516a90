//! Regressions of issue 10.16, through the real binary against `finops serve --dev
//! --demo`: the task queue is listed whole past 1 000 tasks; every command takes
//! `--request-id` (a retry repeats nothing, the same id with another request is refused);
//! `finops org show` exists; the catalog, workload estimates and business cases, role
//! patterns and claims of guardrails and workspaces have commands.

mod common;

use common::{finops, json, token};

/// A store holding `n` Cloud Engineer tasks more than the demo has, written directly.
fn seed_tasks(store: &str, n: usize) {
    use finops_domain::tasks::{TaskEvent, TaskKind, TaskPlan, TaskStep};
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let log = finops_eventlog::open(store, finops_governance::upcasters()).await.unwrap();
        for i in 0..n {
            let task_id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, format!("bulk-task-{i}").as_bytes());
            let plan = TaskPlan {
                task_id,
                kind: TaskKind::MapTag,
                request_id: uuid::Uuid::from_u128(i as u128 + 1),
                workload_id: uuid::Uuid::from_u128(i as u128 + 1),
                depends_on: None,
                steps: vec![TaskStep { title: "Tag".into(), instructions: "Tag it".into(), commands: vec![] }],
                approval_rationale: "bulk".into(),
            };
            let event = TaskEvent::TaskCreated { plan, at: chrono::Utc::now() };
            let payload = serde_json::to_value(&event).unwrap();
            log.append(
                &finops_governance::streams::task(task_id),
                finops_eventlog::ExpectedVersion::NoStream,
                vec![finops_eventlog::NewEvent::new("TaskCreated", payload)],
            )
            .await
            .unwrap();
        }
    });
}

#[test]
fn every_governance_command_is_in_the_cli_and_takes_a_request_id() {
    let dir = std::env::temp_dir().join(format!("finops-cli-gov-{}", uuid::Uuid::now_v7()));
    let store = format!("sqlite://{}", dir.join("finops.db").display());
    let objects = dir.join("objects").display().to_string();
    std::fs::create_dir_all(&dir).unwrap();
    seed_tasks(&store, 1_050);
    let server = common::serve(&["--demo", "--store", &store, "--objects", &objects], &[]);
    let (po, fl, ce) =
        (token("po-maria", "product_owner"), token("fl-ana", "finops_lead"), token("ce-li", "cloud_engineer"));

    // The whole queue, past one page of 1 000.
    let mut listed = 0;
    for _ in 0..400 {
        listed = json(&server, &ce, &["tasks", "list"]).as_array().unwrap().len();
        if listed > 1_050 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(listed > 1_050, "the queue is listed whole: {listed}");

    // `finops org show`, named in the help texts, exists.
    let org = json(&server, &po, &["org", "show"]);
    assert!(org["budgets"].as_array().unwrap().len() >= 2);

    // The catalog, with a request id: a retry repeats nothing; the id reused for another
    // request is refused, naming it.
    let key = "0192f0c4-aaaa-7000-8000-000000000001";
    let approve = |rationale: &str| {
        finops(
            &server,
            &fl,
            &[
                "--json",
                "--request-id",
                key,
                "catalog",
                "approve",
                "amazon.nova-lite-v1:0",
                "--accounts",
                "111122223333",
                "--regions",
                "us-east-1",
                "--rationale",
                rationale,
            ],
        )
    };
    let (ok, first, err) = approve("Cheap summaries");
    assert!(ok, "{err}");
    let first: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(first["status"], "approved");
    let (ok, again, _) = approve("Cheap summaries");
    assert!(ok);
    let again: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["version"], first["version"], "the retry wrote nothing");
    let (ok, _, err) = approve("Another reason");
    assert!(!ok);
    assert!(err.contains("AlreadyExists") && err.contains(key), "{err}");
    // The catalog is a read model: it follows the log, so wait for it.
    let listed = |catalog: &serde_json::Value| {
        catalog.as_array().unwrap().iter().any(|m| m["name"] == "catalogModels/amazon_bedrock/amazon.nova-lite-v1:0")
    };
    let mut catalog = json(&server, &po, &["catalog", "list"]);
    for _ in 0..200 {
        if listed(&catalog) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        catalog = json(&server, &po, &["catalog", "list"]);
    }
    assert!(listed(&catalog));

    // Workload estimates and business cases; claims of a guardrail and a workspace.
    let workloads = json(&server, &po, &["workloads", "list"]);
    let mine = workloads.as_array().unwrap().first().expect("the demo's Support Bot").clone();
    let request = mine["business_request"].as_str().unwrap();
    let estimated = json(&server, &po, &["workloads", "estimate", request, "--dollars", "1234.50"]);
    assert_eq!(estimated["estimate_cents"], 123_450);
    let backed = json(&server, &po, &["workloads", "business-case", request, "--saving-dollars", "50000"]);
    assert_eq!(backed["business_case"]["annual_cost_saving_cents"], 5_000_000);
    let guardrail = json(
        &server,
        &po,
        &["claim", "--request", request, "--guardrail", "arn:aws:bedrock:us-east-1:111122223333:guardrail/gr0cli01"],
    );
    assert_eq!(guardrail["status"], "claimed");
    let workspace = json(&server, &po, &["claim", "--request", request, "--workspace", "cli-pilot"]);
    assert_eq!(workspace["name"], "claims/workspace:cli-pilot");
    let released = json(
        &server,
        &po,
        &["claims", "release", "claims/workspace:cli-pilot", "--until", "2026-12-31", "--rationale", "Pilot over"],
    );
    assert_eq!(released["status"], "released");
    // As of before the release, the claim list (and the workspace's trail) say claimed.
    let released_at = chrono::Utc::now();
    let claim_of = |list: &serde_json::Value| {
        list.as_array().unwrap().iter().find(|c| c["name"] == "claims/workspace:cli-pilot").map(|c| c["status"].clone())
    };
    let trail = json(&server, &po, &["history", "claims/workspace:cli-pilot"]);
    let release = trail["entries"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((release["event"].as_str(), release["why"].as_str()), (Some("ResourceReleased"), Some("Pilot over")));
    let claimed_at = trail["entries"][0]["at"].as_str().unwrap().to_owned();
    let then = json(&server, &po, &["claims", "list", "--as-of", &claimed_at]);
    assert_eq!(claim_of(&then), Some(serde_json::json!("claimed")), "{then}");
    let now = json(&server, &po, &["claims", "list", "--as-of", &released_at.to_rfc3339()]);
    assert_eq!(claim_of(&now), Some(serde_json::json!("released")), "{now}");
    for args in [
        vec!["requests", "list", "--as-of", claimed_at.as_str()],
        vec!["tasks", "list", "--as-of", claimed_at.as_str()],
        vec!["catalog", "list", "--as-of", claimed_at.as_str()],
        vec!["workloads", "list", "--as-of", claimed_at.as_str()],
        vec!["org", "show", "--as-of", claimed_at.as_str()],
    ] {
        let token = if args[0] == "tasks" { &fl } else { &po };
        let (ok, _, err) = finops(&server, token, &args);
        assert!(ok, "{args:?}: {err}");
    }
    let bad = finops(&server, &po, &["claims", "list", "--as-of", "last week"]);
    assert!(!bad.0 && bad.2.contains("as_of"), "{}", bad.2);

    // Role patterns: a FinOps Lead decision with a reason.
    let set = json(
        &server,
        &fl,
        &[
            "org",
            "set-role-patterns",
            "--broad",
            "*AdministratorAccess*",
            "--dedicated",
            "finops-ai-*",
            "--rationale",
            "Reviewed",
        ],
    );
    assert_eq!((set["source"].as_str(), set["set_by"].as_str()), (Some("log"), Some("fl-ana")));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `finops serve --demo` says it serves only once its read models hold the demo, so the
/// first commands a newcomer types see the seeded organisation (they raced the projections,
/// which follow the log in the background, and could answer "no workload named").
#[test]
fn the_demo_is_in_the_read_models_when_the_server_says_it_serves() {
    let (server, dir) = common::serve_demo("demo-ready");
    let (maria, li) = (token("po-maria", "product_owner"), token("ce-li", "cloud_engineer"));
    let workloads = json(&server, &maria, &["workloads", "list"]);
    let names: Vec<&str> = workloads.as_array().unwrap().iter().filter_map(|w| w["name"].as_str()).collect();
    assert!(names.contains(&"Support Bot"), "{names:?}");
    let shown = json(&server, &maria, &["workloads", "show", "Support Bot"]);
    assert_eq!(shown["name"], "Support Bot", "{shown}");
    assert!(!json(&server, &li, &["tasks", "list"]).as_array().unwrap().is_empty(), "the demo's tasks");
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}
