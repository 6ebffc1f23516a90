//! Agent Bill's tools through MCP (issue 16 item 3): a real MCP client (the `rmcp` SDK's
//! client) starts `finops mcp` over stdio against the demo server, lists the tools with
//! their schemas, calls a read tool as a Product Owner and gets the figures the CLI shows
//! her, and is refused as she is refused — the same message as the gRPC status — for
//! another Product Owner's workload, the maturity score and a malformed period.

mod common;

use common::{finops, json, serve_demo, token};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};

fn arguments(value: serde_json::Value) -> rmcp::model::JsonObject {
    value.as_object().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_client_lists_the_tools_and_is_answered_and_refused_as_the_token_holder() {
    let (server, dir) = serve_demo("mcp-cli");
    let maria = token("po-maria", "product_owner");
    let url = server.url.clone();
    let command = tokio::process::Command::new(env!("CARGO_BIN_EXE_finops")).configure(|cmd| {
        cmd.args(["--server", &url, "--token", &maria, "mcp"]);
    });
    let client = ().serve(TokioChildProcess::new(command).unwrap()).await.unwrap();
    let mut transcript = Vec::new();

    // The tools, each with a description and an input schema.
    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for expected in [
        "on_track",
        "top_costs",
        "spend",
        "unapproved_models",
        "gaps",
        "explain_gap",
        "act_on_gap",
        "spend_cards",
        "maturity",
        "suspend",
        "resume",
        "ask_bill",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    let on_track = tools.iter().find(|t| t.name == "on_track").unwrap();
    assert!(on_track.description.as_deref().unwrap_or_default().contains("estimate"));
    assert!(on_track.input_schema["properties"].get("workload").is_some(), "{:?}", on_track.input_schema);
    transcript.push(format!("> tools/list\n{}", names.join(", ")));

    // A read tool: Support Bot's month, the figures `finops workloads show` gives her.
    let called = client
        .call_tool(CallToolRequestParams::new("on_track").with_arguments(arguments(serde_json::json!({
            "workload": "Support Bot"
        }))))
        .await
        .unwrap();
    let figures = &called.structured_content.as_ref().unwrap()["figures"];
    let quoted = figures.as_array().unwrap().iter().find(|f| f["name"] == "Support Bot month to date").unwrap();
    let shown = json(&server, &maria, &["workloads", "show", "Support Bot"]);
    assert_eq!(quoted["amount"], shown["forecast"]["month_to_date_cents"], "{figures}");
    let text = called.content[0].as_text().unwrap().text.clone();
    assert!(text.starts_with("Support Bot: "), "{text}");
    transcript.push(format!("> tools/call on_track {{\"workload\": \"Support Bot\"}}\n{text}"));

    // The question, in her words, through the grammar.
    let asked = client
        .call_tool(CallToolRequestParams::new("ask_bill").with_arguments(arguments(serde_json::json!({
            "question": "Which of my workloads costs most this month, and why?"
        }))))
        .await
        .unwrap();
    assert_eq!(asked.structured_content.as_ref().unwrap()["tool"], "top_costs");
    let text = asked.content[0].as_text().unwrap().text.clone();
    transcript.push(format!(
        "> tools/call ask_bill {{\"question\": \"Which of my workloads costs most this month, and why?\"}}\n{text}"
    ));

    // Refused as she is: another Product Owner's workload, the maturity score (the same
    // message as the CLI's gRPC status), a malformed period (the field named).
    let refusal = |e: rmcp::service::ServiceError| match e {
        rmcp::service::ServiceError::McpError(data) => data,
        other => panic!("not an MCP error: {other}"),
    };
    let theirs = client
        .call_tool(CallToolRequestParams::new("on_track").with_arguments(arguments(serde_json::json!({
            "workload": "Claims Triage"
        }))))
        .await
        .map_err(refusal)
        .unwrap_err();
    assert_eq!(theirs.data.as_ref().unwrap()["grpc_code"], "NotFound", "{theirs:?}");
    let score = client.call_tool(CallToolRequestParams::new("maturity")).await.map_err(refusal).unwrap_err();
    let (ok, _, err) = finops(&server, &maria, &["maturity"]);
    assert!(!ok && err.contains(score.message.as_ref()), "{err} vs {}", score.message);
    assert_eq!(score.data.as_ref().unwrap()["grpc_code"], "PermissionDenied");
    transcript.push(format!("> tools/call maturity {{}}\nerror {}: {}", score.code.0, score.message));
    let bad = client
        .call_tool(CallToolRequestParams::new("spend").with_arguments(arguments(serde_json::json!({"period": "Nov"}))))
        .await
        .map_err(refusal)
        .unwrap_err();
    assert_eq!(bad.code, rmcp::model::ErrorCode::INVALID_PARAMS);
    assert_eq!(bad.data.as_ref().unwrap()["field_violations"][0]["field"], "period", "{bad:?}");

    // An action, as the MCP client asks it: nothing until confirmed, then the acceptance,
    // recorded as hers in the card's history.
    let card = "spendCards/99d83fc9-9085-51cc-8c63-969c701c47fb";
    let accept = |confirm: bool| {
        CallToolRequestParams::new("accept_card").with_arguments(arguments(serde_json::json!({
            "card": card, "rationale": "Matches our contract backlog", "confirm": confirm
        })))
    };
    let dry = client.call_tool(accept(false)).await.unwrap();
    assert!(dry.content[0].as_text().unwrap().text.starts_with("This would accept"), "{dry:?}");
    let done = client.call_tool(accept(true)).await.unwrap();
    let text = done.content[0].as_text().unwrap().text.clone();
    assert!(text.starts_with("Accepted spendCards/99d83fc9"), "{text}");
    transcript.push(format!("> tools/call accept_card {{\"card\": \"{card}\", \"confirm\": true, …}}\n{text}"));
    let trail = json(&server, &maria, &["history", card]);
    let last = trail["entries"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["who"].as_str(), last["why"].as_str()), (Some("po-maria"), Some("Matches our contract backlog")));

    // A dispute, unconfirmed: what it would do, and nothing done.
    let dispute = CallToolRequestParams::new("dispute_card").with_arguments(arguments(serde_json::json!({
        "card": "spendCards/cc821d8a-66fc-54fd-a651-667474e3a4e5", "rationale": "Not ours"
    })));
    let dry = client.call_tool(dispute).await.unwrap();
    assert!(dry.content[0].as_text().unwrap().text.starts_with("This would dispute"), "{dry:?}");

    // The kill switch: nothing without confirmation; another's workload refused; with
    // confirmation the SuspendWorkload decision, in the workload's history as hers.
    let suspend = |workload: &str, confirm: bool| {
        CallToolRequestParams::new("suspend").with_arguments(arguments(serde_json::json!({
            "workload": workload, "rationale": "Runaway retry loop in the ticket classifier", "confirm": confirm
        })))
    };
    let dry = client.call_tool(suspend("Support Bot", false)).await.unwrap();
    let text = dry.content[0].as_text().unwrap().text.clone();
    assert!(text.contains("This would suspend it") && text.contains("Nothing is done until you confirm"), "{text}");
    assert_eq!(json(&server, &maria, &["control", "Support Bot"])["status"], "active", "unconfirmed: nothing done");
    transcript.push(format!(
        "> tools/call suspend {{\"workload\": \"Support Bot\", \"rationale\": \"…\", \"confirm\": false}}\n{text}"
    ));
    let theirs = client.call_tool(suspend("Claims Triage", true)).await.map_err(refusal).unwrap_err();
    assert_eq!(theirs.data.as_ref().unwrap()["grpc_code"], "NotFound", "{theirs:?}");
    let (ok, _, err) = finops(
        &server,
        &maria,
        &["suspend", "Claims Triage", "--rationale", "Runaway retry loop in the ticket classifier"],
    );
    assert!(!ok && err.contains(theirs.message.as_ref()), "the CLI's refusal: {err} vs {}", theirs.message);
    let done = client.call_tool(suspend("Support Bot", true)).await.unwrap();
    let text = done.content[0].as_text().unwrap().text.clone();
    assert!(text.starts_with("Suspended Support Bot: it is now suspended."), "{text}");
    assert!(text.contains("aws iam put-role-policy"), "{text}");
    transcript.push(format!(
        "> tools/call suspend {{\"workload\": \"Support Bot\", \"rationale\": \"…\", \"confirm\": true}}\n{text}"
    ));
    let status = json(&server, &maria, &["control", "Support Bot"]);
    assert_eq!(status["status"], "suspended");
    let workload = status["workload"].as_str().unwrap().to_owned();
    let trail = json(&server, &maria, &["history", &workload]);
    let suspended = trail["entries"].as_array().unwrap().iter().find(|e| e["event"] == "WorkloadSuspended").cloned();
    let suspended = suspended.expect("the suspension is in the workload's history");
    assert_eq!(
        (suspended["who"].as_str(), suspended["role"].as_str(), suspended["why"].as_str()),
        (Some("po-maria"), Some("product_owner"), Some("Runaway retry loop in the ticket classifier"))
    );

    client.cancel().await.unwrap();
    println!("{}", transcript.join("\n\n"));
    drop(server);
    std::fs::remove_dir_all(dir).unwrap();
}
