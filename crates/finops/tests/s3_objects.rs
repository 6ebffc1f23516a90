//! CUR on S3, as operators run it: an export prefix in a bucket is ingested with
//! `finops cur ingest s3://…`, its batch stored in a bucket (`--objects s3://…`), and the
//! server answers attribution reading the columnar form from S3 — over the S3 protocol of a
//! real S3-compatible server, configured the standard AWS way (environment only).
//!
//! The server's address comes from `FINOPS_TEST_S3_ENDPOINT` (`.ci/run` starts one); without
//! it the test is skipped, except in CI (`CI=true`), where it fails.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

mod common;

/// The standard AWS environment, pointing at the test server.
fn aws_env(endpoint: &str) -> [(&'static str, &str); 5] {
    [
        ("AWS_ENDPOINT", endpoint),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "finops-test"),
        ("AWS_SECRET_ACCESS_KEY", "finops-test"),
    ]
}

/// The test server's address; `None` (the test skipped) without one, except in CI.
fn test_server() -> Option<String> {
    let endpoint = std::env::var("FINOPS_TEST_S3_ENDPOINT").ok();
    if endpoint.is_none() {
        assert!(
            !matches!(std::env::var("CI").as_deref(), Ok("true" | "1")),
            "CI needs an S3-compatible server at FINOPS_TEST_S3_ENDPOINT (.ci/run starts one)"
        );
        eprintln!("SKIPPED: FINOPS_TEST_S3_ENDPOINT is not set");
    }
    endpoint
}

/// One unsigned HTTP/1.1 request (the test server accepts them); returns status and body.
fn http(endpoint: &str, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(host).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

/// The CLI with the standard AWS environment pointing at the test server.
fn finops(endpoint: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_finops"));
    command.args(args).env_remove("FINOPS_JWT_SECRET").envs(aws_env(endpoint));
    command
}

fn run(mut command: Command) -> String {
    let out = command.output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{command:?}: {stderr}");
    stdout.into_owned()
}

#[test]
fn an_export_prefix_on_s3_is_ingested_into_a_bucket_and_answered_from_it() {
    let Some(endpoint) = test_server() else { return };
    let bucket = format!("finops-{}", uuid::Uuid::now_v7().simple());
    let (status, text) = http(&endpoint, "PUT", &format!("/{bucket}"), b"");
    assert_eq!(status, 200, "creating the bucket: {text}");

    // An export prefix as AWS writes it: a BILLING_PERIOD= partition and its manifest.
    let dir = std::env::temp_dir().join(format!("finops-s3-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let month = dir.join("part-00001.csv.gz");
    let mut generate = finops(&endpoint, &["cur", "generate", "--period", "2026-11", "--rows", "3000", "--out"]);
    generate.arg(&month);
    run(generate);
    let part = "exports/cur2/data/BILLING_PERIOD=2026-11/part-00001.csv.gz";
    let (status, text) = http(&endpoint, "PUT", &format!("/{bucket}/{part}"), &std::fs::read(&month).unwrap());
    assert_eq!(status, 200, "uploading the part: {text}");
    let manifest = format!(r#"{{"dataFiles":["s3://{bucket}/{part}"]}}"#);
    let manifest_key = "exports/cur2/metadata/BILLING_PERIOD=2026-11/cur2-Manifest.json";
    assert_eq!(http(&endpoint, "PUT", &format!("/{bucket}/{manifest_key}"), manifest.as_bytes()).0, 200);

    let store = format!("sqlite://{}", dir.join("finops.db").display());
    let objects = format!("s3://{bucket}/objects");
    let out = run(finops(
        &endpoint,
        &["cur", "ingest", &format!("s3://{bucket}/exports/cur2"), "--store", &store, "--objects", &objects],
    ));
    assert!(out.contains("period 2026-11") && out.contains("3000 rows"), "{out}");

    // The batch is in the bucket, by content: the delivery and its columnar form.
    let (_, listing) = http(&endpoint, "GET", &format!("/{bucket}?list-type=2&prefix=objects/cur/2026-11/"), b"");
    let keys: Vec<&str> = listing.split("<Key>").skip(1).filter_map(|k| k.split("</Key>").next()).collect();
    assert_eq!(keys.len(), 4, "delivery, lines, facets and sessions: {keys:?}");
    assert!(keys.iter().any(|k| k.ends_with(".csv.gz")), "{keys:?}");
    assert!(keys.iter().any(|k| k.ends_with(".lines-6.parquet")), "{keys:?}");
    assert!(keys.iter().any(|k| k.ends_with(".facets-6.parquet")), "{keys:?}");
    assert!(keys.iter().any(|k| k.ends_with(".sessions-6.parquet")), "{keys:?}");

    // The server answers from the bucket (DataFusion reads the Parquet over S3).
    let server = common::serve(&["--store", &store, "--objects", &objects], &aws_env(&endpoint));
    let token = run(finops(&endpoint, &["dev-token", "--subject", "fin-eva", "--role", "finance"]));
    let url = server.url.clone();
    let answer = run(finops(
        &endpoint,
        &[
            "--server",
            &url,
            "--token",
            token.trim(),
            "--json",
            "attribution",
            "--period",
            "2026-11",
            "--group-by",
            "gap",
        ],
    ));
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    let lines: u64 = answer["rows"].as_array().unwrap().iter().map(|r| r["lines"].as_u64().unwrap()).sum();
    assert!(lines > 0 && lines < 3000, "every AI line of the month, and no other: {lines}");
    assert!(answer["total_cents"].as_i64().unwrap() > 0);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn invocation_logs_under_an_s3_prefix_are_ingested_as_bedrock_delivers_them() {
    let Some(endpoint) = test_server() else { return };
    let bucket = format!("finops-{}", uuid::Uuid::now_v7().simple());
    assert_eq!(http(&endpoint, "PUT", &format!("/{bucket}"), b"").0, 200);
    let dir = std::env::temp_dir().join(format!("finops-s3-logs-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut generate = finops(&endpoint, &["cur", "generate", "--period", "2026-11", "--rows", "1000", "--out"]);
    generate.arg(dir.join("m.csv")).arg("--logs").arg(dir.join("m.json.gz"));
    run(generate);
    // Bedrock's layout, and the permission-check marker it writes beside the logs.
    let prefix = "AWSLogs/111122223333/BedrockModelInvocationLogs";
    let key = format!("{prefix}/us-west-2/2026/11/01/00/20261101T000000000Z_0a1b.json.gz");
    assert_eq!(
        http(&endpoint, "PUT", &format!("/{bucket}/{key}"), &std::fs::read(dir.join("m.json.gz")).unwrap()).0,
        200
    );
    assert_eq!(http(&endpoint, "PUT", &format!("/{bucket}/{prefix}/amazon-bedrock-logs-permission-check"), b"").0, 200);

    let store = format!("sqlite://{}", dir.join("finops.db").display());
    let objects = format!("s3://{bucket}/objects");
    let out = run(finops(
        &endpoint,
        &["logs", "ingest", &format!("s3://{bucket}/{prefix}"), "--store", &store, "--objects", &objects],
    ));
    assert_eq!(out.lines().count(), 1, "the log file, not the marker: {out}");
    assert!(
        out.contains(&format!("s3://{bucket}/{prefix}/{}", key.trim_start_matches(prefix).trim_start_matches('/')))
    );
    assert!(out.trim_end().ends_with("recorded"), "{out}");
    let (_, listing) = http(&endpoint, "GET", &format!("/{bucket}?list-type=2&prefix=objects/logs/"), b"");
    let keys: Vec<&str> = listing.split("<Key>").skip(1).filter_map(|k| k.split("</Key>").next()).collect();
    assert_eq!(keys.len(), 2, "the file and its hourly usage, by content: {keys:?}");
    assert!(keys.iter().any(|k| k.ends_with(".usage-1.parquet")), "{keys:?}");
    let _ = std::fs::remove_dir_all(dir);
}
