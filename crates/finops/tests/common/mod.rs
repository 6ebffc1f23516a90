//! What the CLI tests share: a `finops serve` child process on a free port.

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
