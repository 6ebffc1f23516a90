//! Agent Bill's tools over MCP's streamable HTTP (issue 16 item 3): `finops mcp --http`
//! against the demo server, driven by the `rmcp` SDK's HTTP client. Each session acts as
//! the bearer of its token — two Product Owners at once see their own workloads — a
//! request without a token is refused with 401 before any tool runs, a bad token is the
//! server's UNAUTHENTICATED, and `suspend` does nothing until confirmed, then records the
//! caller's decision in the workload's history.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::{json, serve_demo, token};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `finops mcp --http 127.0.0.1:0`, killed on drop; the URL it printed.
struct McpHttp(Child, String);

impl McpHttp {
    fn start(server: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_finops"))
            .args(["--server", server, "mcp", "--http", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().rsplit(' ').next().unwrap().to_owned();
        assert!(url.starts_with("http://127.0.0.1:") && url.ends_with("/mcp"), "{line}");
        Self(child, url)
    }
}

impl Drop for McpHttp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn arguments(value: serde_json::Value) -> rmcp::model::JsonObject {
    value.as_object().unwrap().clone()
}

fn refusal(e: rmcp::service::ServiceError) -> rmcp::ErrorData {
    match e {
        rmcp::service::ServiceError::McpError(data) => data,
        other => panic!("not an MCP error: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_http_session_acts_as_the_bearer_of_its_token() {
    let (server, dir) = serve_demo("mcp-http");
    let mcp = McpHttp::start(&server.url);
    let maria_token = token("po-maria", "product_owner");
    let juan_token = token("po-juan", "product_owner");

    // No token: 401 with the challenge, before any MCP message is read.
    let address = mcp.1.trim_start_matches("http://").trim_end_matches("/mcp").to_owned();
    let mut raw = tokio::net::TcpStream::connect(&address).await.unwrap();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    raw.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    raw.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("www-authenticate: bearer"), "{answer}");

    let as_holder_of = |url: &str, token: &str| {
        StreamableHttpClientTransport::from_config(
            StreamableHttpClientTransportConfig::with_uri(url).auth_header(token),
        )
    };

    // Two sessions at once, each as its bearer.
    let maria = ().serve(as_holder_of(&mcp.1, &maria_token)).await.unwrap();
    let juan = ().serve(as_holder_of(&mcp.1, &juan_token)).await.unwrap();
    let tools = maria.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "suspend"), "{tools:?}");
    let on_track = |workload: &str| {
        CallToolRequestParams::new("on_track").with_arguments(arguments(serde_json::json!({ "workload": workload })))
    };
    let hers = maria.call_tool(on_track("Support Bot")).await.unwrap();
    let text = hers.content[0].as_text().unwrap().text.clone();
    assert!(text.starts_with("Support Bot: "), "{text}");
    let not_his = juan.call_tool(on_track("Support Bot")).await.map_err(refusal).unwrap_err();
    assert_eq!(not_his.data.as_ref().unwrap()["grpc_code"], "NotFound", "{not_his:?}");
    let his = juan.call_tool(on_track("Claims Triage")).await.unwrap();
    assert!(his.content[0].as_text().unwrap().text.starts_with("Claims Triage"), "{his:?}");

    // A token the server does not accept: its UNAUTHENTICATED, as an MCP error.
    let forged = ().serve(as_holder_of(&mcp.1, "not-a-token")).await.unwrap();
    let refused = forged.call_tool(on_track("Support Bot")).await.map_err(refusal).unwrap_err();
    assert_eq!(refused.data.as_ref().unwrap()["grpc_code"], "Unauthenticated", "{refused:?}");

    // The kill switch over HTTP: nothing until confirmed; then Maria's decision.
    let suspend = |confirm: bool| {
        CallToolRequestParams::new("suspend").with_arguments(arguments(serde_json::json!({
            "workload": "Support Bot", "rationale": "Cost spike from a prompt loop", "confirm": confirm
        })))
    };
    let dry = maria.call_tool(suspend(false)).await.unwrap();
    assert!(dry.content[0].as_text().unwrap().text.contains("Nothing is done until you confirm"), "{dry:?}");
    assert_eq!(json(&server, &maria_token, &["control", "Support Bot"])["status"], "active");
    let done = maria.call_tool(suspend(true)).await.unwrap();
    assert!(done.content[0].as_text().unwrap().text.starts_with("Suspended Support Bot"), "{done:?}");
    let status = json(&server, &maria_token, &["control", "Support Bot"]);
    assert_eq!(status["status"], "suspended");
    let trail = json(&server, &maria_token, &["history", status["workload"].as_str().unwrap()]);
    let entry =
        trail["entries"].as_array().unwrap().iter().find(|e| e["event"] == "WorkloadSuspended").unwrap().clone();
    assert_eq!(
        (entry["who"].as_str(), entry["why"].as_str()),
        (Some("po-maria"), Some("Cost spike from a prompt loop"))
    );

    for client in [maria, juan, forged] {
        client.cancel().await.unwrap();
    }
    drop(mcp);
    drop(server);
    std::fs::remove_dir_all(dir).unwrap();
}
