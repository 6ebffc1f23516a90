//! What a newcomer does with the demo's Weekly Spend Cards from the command line (issue
//! 12): the demo has cards waiting, disputed and resolved, and an approved roll-up; a
//! Product Owner accepts a card, the FinOps Lead settles a dispute, Finance reads the
//! roll-ups — tables and `--json`; a refused step says why.

mod common;

use std::collections::BTreeSet;

use common::{finops, json, serve_demo, token};

#[test]
fn the_demo_has_cards_in_every_state_and_the_cli_signs_one_off() {
    let (server, dir) = serve_demo("cards-cli");
    let fl = token("fl-ana", "finops_lead");
    let finance = token("fin-eva", "finance");

    // The cards read model follows the log: wait for the demo's cards (Support Bot's three
    // whole weeks: resolved after a dispute, disputed, waiting; Contract Drafts' two:
    // accepted, waiting).
    let states = |cards: &serde_json::Value| -> BTreeSet<String> {
        cards.as_array().unwrap().iter().map(|c| c["status"].as_str().unwrap().to_owned()).collect()
    };
    let mut cards = json(&server, &fl, &["cards", "list"]);
    for _ in 0..300 {
        if cards.as_array().unwrap().len() == 5 && states(&cards).len() == 4 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        cards = json(&server, &fl, &["cards", "list"]);
    }
    let every = ["accepted", "disputed", "issued", "resolved"];
    assert_eq!(states(&cards), every.into_iter().map(str::to_owned).collect(), "{cards}");
    let (ok, table, err) = finops(&server, &fl, &["cards"]);
    assert!(ok && table.starts_with("CARD") && table.contains("WEEK"), "{err}{table}");
    assert!(table.contains("Support Bot") && table.contains("Contract Drafts"), "workloads by name: {table}");
    // The roll-ups read model follows the log on its own: wait for the approved one too.
    let approved = || json(&server, &finance, &["cards", "rollups", "--status", "approved"]);
    let mut rollups = approved();
    for _ in 0..300 {
        if !rollups.as_array().unwrap().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        rollups = approved();
    }
    assert!(!rollups.as_array().unwrap().is_empty(), "the demo approved a roll-up: {rollups}");

    let owners = json(&server, &fl, &["workloads", "list"]);
    let owner_of = |workload: &str| {
        owners.as_array().unwrap().iter().find(|w| w["workload_id"] == workload).unwrap()["owner"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let flagged = |c: &&serde_json::Value| c["lines"].as_array().unwrap().iter().any(|l| l["flagged"] == true);
    let find = |status: &str| {
        cards.as_array().unwrap().iter().filter(|c| c["status"] == status).find(flagged).unwrap().clone()
    };

    // The waiting card: its Product Owner reads it and accepts it; the FinOps Lead may not.
    let waiting = find("issued");
    let name = waiting["name"].as_str().unwrap().to_owned();
    let po = token(&owner_of(waiting["workload_id"].as_str().unwrap()), "product_owner");
    let (ok, shown, err) = finops(&server, &po, &["cards", "show", &name]);
    assert!(
        ok && shown.contains("LINE") && shown.contains("forecast") && shown.contains("month to date"),
        "{err}{shown}"
    );
    let refused = finops(&server, &fl, &["cards", "accept", &name, "--version", "1", "--rationale", "not mine"]);
    assert!(!refused.0 && refused.2.contains("PermissionDenied"), "{}", refused.2);
    let accepted = json(&server, &po, &["cards", "accept", &name, "--version", "1", "--rationale", "As planned"]);
    assert_eq!(accepted["status"], "accepted");
    // Disputing it now is refused, naming the state.
    let line = waiting["lines"].as_array().unwrap().iter().find(|l| l["flagged"] == true).unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let late =
        finops(&server, &po, &["cards", "dispute", &name, "--version", "1", "--line", &line, "--rationale", "x"]);
    assert!(!late.0 && late.2.contains("accepted"), "{}", late.2);

    // The disputed card: the FinOps Lead adjusts the week's charge.
    let disputed = find("disputed");
    let name = disputed["name"].as_str().unwrap().to_owned();
    let resolved = json(
        &server,
        &fl,
        &["cards", "resolve", &name, "--version", "1", "--adjust-dollars", "10", "--rationale", "Half is theirs"],
    );
    assert_eq!((resolved["status"].as_str(), resolved["charged_cents"].as_i64()), (Some("resolved"), Some(1000)));
    let last = resolved["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["who"].as_str(), last["why"].as_str()), (Some("fl-ana"), Some("Half is theirs")));

    // The card's history, as its Product Owner reads it.
    let trail = json(&server, &po, &["history", &name]);
    let whats: Vec<String> =
        trail["entries"].as_array().unwrap().iter().map(|e| e["what"].as_str().unwrap().to_owned()).collect();
    assert!(whats[0].starts_with("version 1 issued for the week of"), "{whats:?}");
    assert!(whats.iter().any(|w| w.contains("disputed")) && whats.last().unwrap().contains("adjusted to $10.00"));
    // The maturity score of the demo month, as leadership reads it.
    let score = json(&server, &finance, &["maturity"]);
    assert_eq!(score["period"], "2026-11");
    assert_eq!(score["dimensions"].as_array().unwrap().len(), 4);
    assert!((0.0..=100.0).contains(&score["overall"].as_f64().unwrap()), "{score}");
    let (ok, table, err) = finops(&server, &finance, &["maturity"]);
    assert!(ok && table.starts_with("AI Governance Maturity 2026-11") && table.contains("NEXT MOVE"), "{err}{table}");
    // Its history: the demo's three months, oldest first, the table's last line.
    let periods: Vec<&str> = score["trend"].as_array().unwrap().iter().map(|p| p["period"].as_str().unwrap()).collect();
    assert_eq!(periods, ["2026-09", "2026-10", "2026-11"]);
    assert!(table.trim_end().lines().last().unwrap().starts_with("trend: 2026-09 "), "{table}");

    // The workload view: the card's workload by name, with its month's forecast.
    let po = token(&owner_of(waiting["workload_id"].as_str().unwrap()), "product_owner");
    let shown = json(&server, &po, &["workloads", "show", waiting["workload_id"].as_str().unwrap()]);
    let name = shown["name"].as_str().unwrap().to_owned();
    assert_eq!(shown["forecast"]["period"], "2026-11", "{shown}");
    assert!(shown["forecast"]["month_to_date_cents"].as_i64().unwrap() > 0, "{shown}");
    let (ok, table, err) = finops(&server, &po, &["workloads", "show", &name]);
    assert!(ok && table.contains("month to date") && table.contains("through 2026-11-"), "{err}{table}");
    let other = finops(&server, &token("po-nobody", "product_owner"), &["workloads", "show", &name]);
    assert!(!other.0 && other.2.contains("no workload named"), "{}", other.2);

    // Agent Bill, as that Product Owner: "am I on track?" with the same month to date.
    let (ok, said, err) = finops(&server, &po, &["ask", "Am", "I", "on", "track?"]);
    let month_to_date = finops_domain::vocabulary::dollars(shown["forecast"]["month_to_date_cents"].as_i64().unwrap());
    assert!(ok && said.contains(&name) && said.contains(&month_to_date) && said.contains("on_track"), "{err}{said}");
    drop(server);
    std::fs::remove_dir_all(dir).unwrap();
}
