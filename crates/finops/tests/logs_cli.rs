//! `finops logs ingest|follow` as an operator runs them: generated logs with a storm are
//! ingested from a folder and recorded once; the same files again change nothing; a
//! malformed file is refused by file, line and field (status 1) while the rest go on; a
//! follower picks up a file dropped into its folder; `finops reconcile` prints the logs'
//! estimate of each workload's day against the demo's CUR.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

fn finops(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_finops"));
    command.args(args).env("RUST_BACKTRACE", "0");
    command
}

/// Status, stdout and stderr.
fn run(mut command: Command) -> (bool, String, String) {
    let out = command.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A generated month's logs with Support Bot's storm, in `dir/name`.
fn generate(dir: &Path, name: &str) {
    let month = dir.join("month.csv");
    let logs = dir.join(name);
    std::fs::create_dir_all(logs.parent().unwrap()).unwrap();
    let mut command = finops(&["cur", "generate", "--period", "2026-11", "--rows", "2000"]);
    command.args(["--spike", "finops-support-bot-88aa", "--out"]).arg(&month).arg("--logs").arg(&logs);
    let (ok, _, err) = run(command);
    assert!(ok, "{err}");
}

#[test]
fn log_files_are_ingested_once_refused_whole_when_malformed_and_followed_as_they_land() {
    let dir = std::env::temp_dir().join(format!("finops-logs-cli-{}", uuid_like()));
    generate(&dir, "incoming/AWSLogs/111122223333/BedrockModelInvocationLogs/us-west-2/m.json.gz");
    let store = format!("sqlite://{}", dir.join("finops.db").display());
    let objects = dir.join("objects").display().to_string();
    let ingest = |source: &Path| {
        let mut command = finops(&["logs", "ingest"]);
        command.arg(source).args(["--store", &store, "--objects", &objects]);
        run(command)
    };
    let incoming = dir.join("incoming");
    let (ok, out, err) = ingest(&incoming);
    assert!(ok, "{err}");
    assert!(out.contains("m.json.gz") && out.contains("records") && out.trim_end().ends_with("recorded"), "{out}");
    assert!(out.contains("2026-11-01 00:00 –"), "the hours it covers: {out}");
    let (ok, out, _) = ingest(&incoming);
    assert!(ok && out.contains("unchanged (already recorded)"), "{out}");

    // A malformed record: that file is refused whole, named by line and field; the good
    // file is still answered, and the command fails so a script sees it.
    let bad = incoming.join("AWSLogs/111122223333/BedrockModelInvocationLogs/us-west-2/bad.json");
    std::fs::write(
        &bad,
        "{\"schemaType\":\"ModelInvocationLog\",\"timestamp\":\"2026-11-02T00:00:00Z\",\"accountId\":\"12\"}\n",
    )
    .unwrap();
    let (ok, out, err) = ingest(&incoming);
    assert!(!ok, "a refused file fails the command");
    assert!(
        err.contains("refused") && err.contains("bad.json, line 1: `accountId` `12` is not a 12-digit account id"),
        "{err}"
    );
    assert!(err.contains("1 of 2 file(s) refused"), "{err}");
    assert!(out.contains("unchanged (already recorded)"), "{out}");
    // Nothing of the refused file was stored.
    let stored: Vec<String> =
        walk(&dir.join("objects")).into_iter().filter(|p| p.contains("logs/2026-11-02")).collect();
    assert!(stored.is_empty(), "{stored:?}");

    // A follower of an empty folder picks up a file that lands in it.
    let followed = dir.join("followed");
    std::fs::create_dir_all(&followed).unwrap();
    let mut follow = finops(&["logs", "follow"]);
    follow.arg(&followed).args(["--every", "1", "--store", &store, "--objects", &objects]);
    let mut child = follow.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    generate(&dir.join("other"), "m2.json");
    std::fs::rename(dir.join("other/m2.json"), followed.join("m2.json")).unwrap();
    let line = BufReader::new(stdout).lines().map_while(Result::ok).find(|l| l.contains("m2.json"));
    let _ = child.kill();
    let _ = child.wait();
    let line = line.expect("the follower reports the file");
    // Same records as the gzip file (other bytes, so recorded as its own file).
    assert!(line.ends_with("recorded"), "{line}");
    let _ = std::fs::remove_dir_all(dir);
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    )
}

#[test]
fn reconcile_prints_each_workloads_day_and_flags_the_storm_cur_never_billed() {
    let (server, dir) = common::serve_demo("reconcile");
    // The demo's November is `cur generate --rows 20000` (seed 1): these logs are its calls,
    // and a storm by Support Bot's role on the 20th that its CUR does not hold.
    generate(&dir, "logs/nov.json.gz");
    let mut ingest = finops(&["logs", "ingest"]);
    ingest.arg(dir.join("logs")).arg("--store").arg(format!("sqlite://{}", dir.join("finops.db").display()));
    ingest.arg("--objects").arg(dir.join("objects"));
    let (ok, _, err) = run(ingest);
    assert!(ok, "{err}");
    let fl = common::token("fl-ana", "finops_lead");
    let all = common::json(&server, &fl, &["reconcile", "--period", "2026-11"]);
    assert_eq!(all["log_files"], 1);
    let days = all["days"].as_array().unwrap();
    assert!(!days.is_empty());
    for d in days {
        let cents = |k: &str| d[k].as_i64().unwrap();
        assert_eq!(cents("difference_cents"), cents("billed_cents") - cents("estimated_cents"), "{d}");
    }
    let storm = days.iter().find(|d| d["workload"] == "Support Bot" && d["day"] == "2026-11-20").unwrap();
    assert_eq!(storm["flagged"], true, "{storm}");
    // Twelve hours at $500 the logs priced and CUR never billed.
    assert!(storm["estimated_cents"].as_i64().unwrap() >= 600_000, "{storm}");
    assert!(storm["billed_cents"].as_i64().unwrap() < 100_000, "{storm}");
    let flagged = common::json(&server, &fl, &["reconcile", "--period", "2026-11", "--flagged"]);
    let shown = flagged["days"].as_array().unwrap();
    assert!(shown.iter().all(|d| d["flagged"] == true));
    assert_eq!(shown.len() as i64, all["flagged"].as_i64().unwrap());
    // The table says the same, with its header.
    let (ok, table, err) = common::finops(&server, &fl, &["reconcile", "--period", "2026-11", "--flagged"]);
    assert!(ok, "{err}");
    assert!(table.contains("LOGS ESTIMATE") && table.contains("Support Bot") && table.contains("FLAGGED"), "{table}");
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}
