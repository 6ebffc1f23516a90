//! What a newcomer does with the demo's Allocation Gaps from the command line: the gaps
//! view with gaps in every state, one gap's trail, an action, a resolution and its recall,
//! a refused transition naming the state, the value opportunity — tables and `--json`.

mod common;

use common::{finops, json, serve_demo, token};

#[test]
fn the_demo_shows_gaps_in_every_state_and_the_cli_acts_on_them() {
    let (server, dir) = serve_demo("gaps-cli");
    let fl = token("fl-ana", "finops_lead");

    // The view: totals per scenario, and the demo's gaps in every state (the read model
    // follows the log, so wait for it).
    let mut view = json(&server, &fl, &["gaps", "list"]);
    for _ in 0..300 {
        if view["gaps"].as_array().is_some_and(|g| g.iter().any(|g| g["recalled"] == true)) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        view = json(&server, &fl, &["gaps", "list"]);
    }
    let totals = view["totals"].as_array().unwrap();
    assert!(totals.len() >= 6, "{totals:?}");
    let gaps = view["gaps"].as_array().unwrap();
    for state in ["active", "actioned", "resolved"] {
        assert!(gaps.iter().any(|g| g["status"] == state), "no {state} gap in the demo");
    }
    let recalled = gaps.iter().find(|g| g["recalled"] == true).expect("a recalled gap in the demo");
    let (ok, table, err) = finops(&server, &fl, &["gaps"]);
    assert!(ok, "{err}");
    assert!(table.starts_with("SCENARIO") && table.contains("Role Recommendation"), "{table}");

    // One gap's trail: who, role, what, why — the recalled decision kept.
    let name = recalled["name"].as_str().unwrap();
    let (ok, shown, err) = finops(&server, &fl, &["gaps", "show", name]);
    assert!(ok, "{err}");
    assert!(shown.contains("actioned: block") && shown.contains("recalled the decision"), "{shown}");
    assert!(shown.contains("fl-ana") && shown.contains("gap-detector"), "{shown}");

    // Resolve by decision, then recall it; a second action on an actioned gap is refused
    // with the state named.
    let active = gaps
        .iter()
        .find(|g| g["status"] == "active" && g["kind"] == "out_of_approved_scope")
        .expect("an active out-of-scope gap");
    let active = active["name"].as_str().unwrap();
    let resolved = json(&server, &fl, &["gaps", "resolve", active, "--rationale", "Accepted for the pilot"]);
    assert_eq!(resolved["status"], "resolved");
    let back = json(&server, &fl, &["gaps", "recall", active, "--rationale", "The pilot is over"]);
    assert_eq!((back["status"].as_str(), back["recalled"].as_bool()), (Some("active"), Some(true)));
    let no_reason = finops(&server, &fl, &["gaps", "resolve", active, "--rationale", " "]);
    assert!(
        !no_reason.0 && no_reason.2.contains("InvalidArgument") && no_reason.2.contains("rationale"),
        "{}",
        no_reason.2
    );
    let actioned = gaps.iter().find(|g| g["status"] == "actioned" && g["kind"] == "attribution_not_enabled").unwrap();
    let again = finops(
        &server,
        &fl,
        &["gaps", "act", actioned["name"].as_str().unwrap(), "--action", "guided_cur_setup", "--rationale", "again"],
    );
    assert!(!again.0 && again.2.contains("FailedPrecondition") && again.2.contains("actioned"), "{}", again.2);

    // Only the FinOps Lead acts; a Cloud Engineer does not even see gaps.
    let finance = token("fin-eva", "finance");
    let denied = finops(&server, &finance, &["gaps", "resolve", active, "--rationale", "x"]);
    assert!(!denied.0 && denied.2.contains("PermissionDenied"), "{}", denied.2);
    let ce = finops(&server, &token("ce-li", "cloud_engineer"), &["gaps"]);
    assert!(!ce.0 && ce.2.contains("PermissionDenied"), "{}", ce.2);

    // The demo's gateway mapping rule: Support Bot's agents behind the LLM gateway, in the
    // gateway gap's trail and in the rules; the FinOps Lead retires it.
    let gateway = gaps
        .iter()
        .find(|g| g["principal"] == "llm-gateway" && g["account"] == "111122223333" && g["status"] == "actioned")
        .expect("the demo maps the gateway's sessions");
    let (ok, shown, err) = finops(&server, &fl, &["gaps", "show", gateway["name"].as_str().unwrap()]);
    assert!(ok && shown.contains("actioned: map_gateway_sessions") && shown.contains("gatewayRules/"), "{err}{shown}");
    let rules = json(&server, &finance, &["gateway-rules"]);
    let rule = &rules.as_array().unwrap()[0];
    assert_eq!((rule["session_pattern"].as_str(), rule["state"].as_str()), (Some("gw-user-1*"), Some("in_force")));
    let (ok, table, err) = finops(&server, &finance, &["gateway-rules", "list"]);
    assert!(ok && table.starts_with("RULE") && table.contains("session gw-user-1*"), "{err}{table}");
    let rule_name = rule["name"].as_str().unwrap();
    let retire =
        ["gateway-rules", "retire", rule_name, "--effective-until", "2026-11-20", "--rationale", "Own role now"];
    let refused = finops(&server, &finance, &retire);
    assert!(!refused.0 && refused.2.contains("PermissionDenied"), "{}", refused.2);
    let retired = json(&server, &fl, &retire);
    assert_eq!((retired["state"].as_str(), retired["effective_until"].as_str()), (Some("retired"), Some("2026-11-20")));
    assert_eq!(retired["history"][1]["why"], "Own role now");

    // `finops history`: the rule's trail and the gateway gap's, as a table and as JSON;
    // the gap's trail is the one `gaps show` prints, and as of an instant it is cut there.
    let (ok, table, err) = finops(&server, &finance, &["history", rule_name]);
    assert!(ok && table.contains("WHEN") && table.contains("retired after 2026-11-20"), "{err}{table}");
    assert!(table.contains("Own role now") && table.contains("finops_lead"), "{table}");
    let gap_name = gateway["name"].as_str().unwrap();
    let whats = |list: &serde_json::Value| {
        list.as_array().unwrap().iter().map(|e| e["what"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    let retirement = format!("gateway rule {rule_name} retired");
    let mut trail = json(&server, &finance, &["history", gap_name]);
    for _ in 0..300 {
        if whats(&trail["entries"]).iter().any(|w| w.starts_with(&retirement)) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        trail = json(&server, &finance, &["history", gap_name]);
    }
    assert!(whats(&trail["entries"]).iter().any(|w| w.starts_with(&retirement)), "{trail}");
    // `gaps show` reads the read model, which may lag the log: its trail is a prefix.
    let shown = json(&server, &finance, &["gaps", "show", gap_name]);
    let trail = json(&server, &finance, &["history", gap_name]);
    let entries = &trail["entries"];
    assert!(whats(entries).starts_with(&whats(&shown["history"])), "{trail}\n{shown}");
    let first = entries[0]["at"].as_str().unwrap();
    let then = json(&server, &finance, &["history", gap_name, "--as-of", first]);
    // The events recorded in the same append share their instant.
    let cut = then["entries"].as_array().unwrap();
    assert!(!cut.is_empty() && cut.len() < entries.as_array().unwrap().len(), "{then}");
    assert!(cut.iter().all(|e| e["at"] == first), "{then}");
    let bad = finops(&server, &finance, &["history", "gaps/not-a-gap"]);
    assert!(!bad.0 && bad.2.contains("name"), "{}", bad.2);

    // The Declared AI Value Opportunity beside the open gaps.
    let value = json(&server, &finance, &["gaps", "value"]);
    assert!(value["annual_cost_saving_cents"].as_i64().unwrap() > 0);
    assert!(value["open_gaps"].as_u64().unwrap() > 0);
    drop(server);
    std::fs::remove_dir_all(dir).unwrap();
}
