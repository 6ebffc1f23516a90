//! What the CLI tests share: a `finops serve` child process on a free port, tokens, and
//! the CLI run as a person runs it.

// Each test binary includes this module and uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running `finops serve`, stopped when dropped.
pub struct Server {
    child: Child,
    /// Where it listens (`http://127.0.0.1:{port}`).
    pub url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `finops serve --dev` on a free port with `args` and the environment `env`, and
/// waits until it serves gRPC.
pub fn serve(args: &[&str], env: &[(&str, &str)]) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_finops"))
        .args(["serve", "--dev", "--listen", &format!("127.0.0.1:{port}")])
        .args(args)
        .env_remove("FINOPS_JWT_SECRET")
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let ready = BufReader::new(stderr).lines().map_while(Result::ok).any(|l| l.contains("serving gRPC"));
    let server = Server { child, url: format!("http://127.0.0.1:{port}") };
    assert!(ready, "the server started");
    server
}

/// `finops serve --dev --demo` on a fresh embedded store and object folder under a new
/// temporary directory (returned, for the test to remove).
pub fn serve_demo(name: &str) -> (Server, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("finops-{name}-{}-{}", std::process::id(), uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = format!("sqlite://{}", dir.join("finops.db").display());
    let objects = dir.join("objects").display().to_string();
    (serve(&["--demo", "--store", &store, "--objects", &objects], &[]), dir)
}

/// A development token for `subject` in `role`, as `finops dev-token` prints it.
pub fn token(subject: &str, role: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_finops"))
        .args(["dev-token", "--subject", subject, "--role", role])
        .env_remove("FINOPS_JWT_SECRET")
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Runs the CLI against `server` with `token`; returns (success, stdout, stderr).
pub fn finops(server: &Server, token: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_finops"))
        .args(["--server", &server.url, "--token", token])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the CLI with `--json` and parses what it prints; the command must succeed.
pub fn json(server: &Server, token: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (ok, out, err) = finops(server, token, &all);
    assert!(ok, "finops {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("finops {args:?} printed no JSON ({e}): {out}"))
}

/// In the demo organisation (`finops org --json`): Maria's product and the budget her
/// workloads charge ("CX AI"; the account has two, so an approval names it).
pub fn demo_product_and_budget(org: &serde_json::Value) -> (String, String) {
    let find = |list: &str, key: &str, value: &str, id: &str| {
        org[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e[key] == value)
            .map(|e| e[id].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no {list} with {key} {value} in {org}"))
    };
    (find("products", "owner", "po-maria", "product_id"), find("budgets", "name", "CX AI", "budget_id"))
}
