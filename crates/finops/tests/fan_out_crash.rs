//! Regression (issue 10.7): `finops serve` killed with SIGKILL right after approvals, then
//! started again: every approval ends with its tasks and its reservation, each exactly
//! once (the fan-out follows the log from its checkpoint and its event ids derive from
//! the approval, so whatever the kill interrupted is completed and nothing is doubled).

use std::collections::BTreeMap;

mod common;

use common::{json, token};

#[test]
fn approvals_interrupted_by_sigkill_get_their_tasks_once_after_a_restart() {
    let dir = std::env::temp_dir().join(format!("finops-cli-crash-{}", uuid::Uuid::now_v7()));
    let store = format!("sqlite://{}", dir.join("finops.db").display());
    let objects = dir.join("objects").display().to_string();
    let args = ["--demo", "--store", store.as_str(), "--objects", objects.as_str()];
    let (po, fl, ce) =
        (token("po-maria", "product_owner"), token("fl-ana", "finops_lead"), token("ce-li", "cloud_engineer"));

    let server = common::serve(&args, &[]);
    let org = json(&server, &po, &["org"]);
    // The account has two budgets: the approval names the one the workload charges.
    let (product, budget) = common::demo_product_and_budget(&org);
    let mut names = Vec::new();
    for i in 0..5 {
        let workload = format!("Crash Test {i}");
        let submitted = json(
            &server,
            &po,
            &[
                "requests",
                "submit",
                "--product",
                &product,
                "--workload-name",
                &workload,
                "--description",
                "Survives a kill",
                "--budget-dollars",
                "100",
            ],
        );
        names.push(submitted["name"].as_str().unwrap().to_owned());
    }
    for name in &names {
        json(
            &server,
            &fl,
            &[
                "requests",
                "approve",
                name,
                "--model",
                "anthropic.claude-3-haiku-20240307-v1:0",
                "--account",
                "111122223333",
                "--region",
                "us-east-1",
                "--estimate-dollars",
                "90",
                "--budget",
                &budget,
                "--rationale",
                "Pilot",
            ],
        );
    }
    drop(server); // SIGKILL, whatever the fan-out was doing

    let server = common::serve(&args, &[]);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let crash_roles =
        |reserved: &BTreeMap<String, usize>| reserved.keys().filter(|k| k.contains("finops-crash-test-")).count();
    let mut mine = 0;
    let mut reserved_roles = 0;
    // The fan-out creates an approval's tasks, then reserves its role: wait for both, as
    // the restarted server completes what the kill interrupted.
    for _ in 0..400 {
        let tasks = json(&server, &ce, &["tasks", "list"]);
        mine = tasks
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| names.contains(&t["business_request"].as_str().unwrap().to_owned()))
            .count();
        reserved_roles = crash_roles(&runtime.block_on(fan_out_in_log(&store)).1);
        if mine == names.len() && reserved_roles == names.len() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(mine, names.len(), "every approval has its Enable Access task");
    assert_eq!(reserved_roles, names.len(), "every generated role is reserved");
    drop(server);

    // Exactly once, in the log itself.
    let (created, reserved) = runtime.block_on(fan_out_in_log(&store));
    assert!(created.values().all(|n| *n == 1), "a task created twice: {created:?}");
    assert!(reserved.values().all(|n| *n == 1), "a reservation made twice: {reserved:?}");
    assert_eq!(crash_roles(&reserved), names.len(), "every generated role is reserved: {reserved:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// How many times each task stream holds `TaskCreated` and each claim stream
/// `ResourceReserved`, read from the log (read-only, beside a running server).
async fn fan_out_in_log(store: &str) -> (BTreeMap<String, usize>, BTreeMap<String, usize>) {
    let log = finops_eventlog::open_read_only(store, finops_governance::upcasters()).await.unwrap();
    let mut created: BTreeMap<String, usize> = BTreeMap::new();
    let mut reserved: BTreeMap<String, usize> = BTreeMap::new();
    let mut after = finops_eventlog::Position::START;
    loop {
        let page = log.read_all(finops_eventlog::AllRead::forwards_after(after, 1000)).await.unwrap();
        let Some(last) = page.last().and_then(|e| e.position) else { break };
        after = last;
        for e in &page {
            match e.event_type.as_str() {
                "TaskCreated" => *created.entry(e.stream_id.to_string()).or_default() += 1,
                "ResourceReserved" => *reserved.entry(e.stream_id.to_string()).or_default() += 1,
                _ => {}
            }
        }
    }
    (created, reserved)
}
