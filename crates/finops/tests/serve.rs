//! `finops serve` as a process: it comes up on the embedded store with no server, answers
//! the health check, and stops cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_on_the_embedded_store_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("finops-serve-{}", std::process::id()));
    let store = dir.join("nested").join("finops.db");
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_finops"))
        .args(["serve", "--dev", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--store")
        .arg(format!("sqlite://{}", store.display()))
        .arg("--objects")
        .arg(dir.join("objects"))
        .env("FINOPS_LOG", "info")
        .env_remove("FINOPS_JWT_SECRET")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stderr(Stdio::piped())
        .spawn()
        .expect("finops starts");

    // Wait (off the runtime: the read blocks) for the server to say it is serving.
    let stderr = child.stderr.take().unwrap();
    let (serving, lines) = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stderr).lines();
        let serving = lines.by_ref().map_while(Result::ok).any(|line| line.contains("FinOps Center is serving gRPC"));
        (serving, lines)
    })
    .await
    .unwrap();
    assert!(serving, "the server never reported serving");

    let endpoint = format!("http://127.0.0.1:{port}");
    let channel = tonic::transport::Endpoint::from_shared(endpoint).unwrap().connect().await.unwrap();
    let status = HealthClient::new(channel.clone())
        .check(HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);
    assert!(store.exists(), "the embedded store file was created, directories included");

    // The client keeps its connection open through the shutdown, as real clients do.
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let (exit, rest) = tokio::task::spawn_blocking(move || {
        let rest: Vec<String> = lines.map_while(Result::ok).collect();
        (child.wait().unwrap(), rest)
    })
    .await
    .unwrap();
    drop(channel);
    assert!(exit.success(), "SIGTERM is a clean shutdown, got {exit}; log: {rest:?}");
    assert!(rest.iter().any(|l| l.contains("shutting down")), "{rest:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_bad_store_url_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_finops"))
        .args(["serve", "--dev", "--listen", "127.0.0.1:0", "--store", "mysql://db/x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid `store` = `mysql://db/x`"), "{err}");
}

#[test]
fn serve_refuses_to_start_without_a_way_to_verify_tokens() {
    let out = Command::new(env!("CARGO_BIN_EXE_finops"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("FINOPS_JWT_SECRET")
        .env_remove("FINOPS_DEV")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("set FINOPS_JWT_SECRET") && err.contains("--dev"), "{err}");
}

#[test]
fn dev_tokens_name_a_known_role() {
    let out = Command::new(env!("CARGO_BIN_EXE_finops"))
        .args(["dev-token", "--subject", "po-maria", "--role", "product_owner"])
        .env_remove("FINOPS_JWT_SECRET")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim().split('.').count(), 3, "a JWT");
    let out = Command::new(env!("CARGO_BIN_EXE_finops"))
        .args(["dev-token", "--subject", "x", "--role", "admin"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown role `admin`"));
}

#[test]
fn cur_generate_writes_a_month_that_reads_back() {
    let dir = std::env::temp_dir().join(format!("finops-gen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("month.csv.gz");
    let status = Command::new(env!("CARGO_BIN_EXE_finops"))
        .args(["cur", "generate", "--period", "2026-11", "--rows", "5000", "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let file = std::fs::File::open(&out).unwrap();
    let lines = finops_cur::csv_lines::CurCsv::open("month.csv.gz", file).unwrap().count();
    assert_eq!(lines, 5000);

    // …and ingests: stored, recorded, and unchanged the second time.
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_finops"))
            .args(["cur", "ingest"])
            .arg(&out)
            .args(["--store", &format!("sqlite://{}", dir.join("log.db").display())])
            .arg("--objects")
            .arg(dir.join("objects"))
            .args(args)
            .env_remove("FINOPS_STORE")
            .output()
            .unwrap()
    };
    let first = run(&[]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let text = String::from_utf8_lossy(&first.stdout);
    assert!(
        text.contains("period 2026-11  1 file(s)  5000 rows") && text.contains("first batch of the period"),
        "{text}"
    );
    let again = String::from_utf8_lossy(&run(&[]).stdout).into_owned();
    assert!(again.contains("unchanged"), "{again}");
    let bad = run(&["--format", "xml"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--format `xml`: use cur or focus"));
    let bad = Command::new(env!("CARGO_BIN_EXE_finops"))
        .args(["cur", "generate", "--period", "2026-13", "--out"])
        .arg(dir.join("x.csv"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--period `2026-13` is not YYYY-MM"));
    let _ = std::fs::remove_dir_all(dir);
}
