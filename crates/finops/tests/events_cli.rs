//! Following the log from another process (issue 14.1): `finops events subscribe --json`
//! as a child process prints one event per line while decisions are made; it is killed in
//! the middle of the burst and started again after the last position it printed, and every
//! position arrives exactly once. Also a stream's trail and a page of the log, as tables.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::{finops, json, serve_demo, token};
use finops_proto::v1 as pb;
use finops_proto::v1::organisation_service_client::OrganisationServiceClient;

/// `finops --json events subscribe --after N` as a child process, and its lines.
fn subscriber(url: &str, token: &str, after: u64) -> (Child, std::io::Lines<BufReader<std::process::ChildStdout>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_finops"))
        .args(["--server", url, "--token", token, "--json", "events", "subscribe", "--after", &after.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

fn position(line: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    v["position"].as_u64()
}

#[test]
fn a_subscriber_in_another_process_resumes_after_a_kill_mid_burst_and_misses_nothing() {
    let (server, dir) = serve_demo("events-cli");
    let auditor = token("au-ines", "auditor");
    let fl = token("fl-ana", "finops_lead");
    let head = json(&server, &auditor, &["events", "all", "--limit", "1"])["head_position"].as_u64().unwrap();
    assert!(head > 0, "the demo has decisions");

    // A burst of decisions from another client while the subscriber reads.
    let url = server.url.clone();
    let writer = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let mut org = OrganisationServiceClient::connect(url).await.unwrap();
            for i in 0..120 {
                let mut request = tonic::Request::new(pb::AddPortfolioRequest {
                    name: format!("Burst {i}"),
                    owner: "pf-omar".into(),
                    ..Default::default()
                });
                request.metadata_mut().insert("authorization", format!("Bearer {fl}").parse().unwrap());
                org.add_portfolio(request).await.unwrap();
            }
        });
    });
    let (mut child, mut lines) = subscriber(&server.url, &auditor, head);
    let mut seen = Vec::new();
    while seen.len() < 25 {
        if let Some(p) = position(&lines.next().unwrap().unwrap()) {
            seen.push(p);
        }
    }
    child.kill().unwrap(); // mid-burst
    child.wait().unwrap();
    let resume = *seen.last().unwrap();
    let (mut child, mut lines) = subscriber(&server.url, &auditor, resume);
    writer.join().unwrap();
    let end = json(&server, &auditor, &["events", "all", "--limit", "1"])["head_position"].as_u64().unwrap();
    assert!(end >= head + 120);
    while seen.last() != Some(&end) {
        if let Some(p) = position(&lines.next().unwrap().unwrap()) {
            seen.push(p);
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(seen, (head + 1..=end).collect::<Vec<_>>(), "every position once, in order");

    // A request's trail, and a filtered page, as tables a person reads.
    let page = json(&server, &auditor, &["events", "all", "--event-type", "BusinessRequestApproved", "--limit", "1"]);
    let stream = page["events"][0]["stream"].as_str().unwrap().to_owned();
    let (ok, table, err) = finops(&server, &auditor, &["events", "stream", &stream]);
    assert!(ok, "{err}");
    assert!(table.starts_with("POSITION") && table.contains("BusinessRequestApproved"), "{table}");
    assert!(table.contains("finops_lead"), "{table}");
    // Other roles are refused.
    let denied = finops(&server, &token("po-maria", "product_owner"), &["events", "stream", &stream]);
    assert!(!denied.0 && denied.2.contains("PermissionDenied"), "{}", denied.2);
    drop(server);
    std::fs::remove_dir_all(dir).unwrap();
}
