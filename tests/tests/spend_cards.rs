//! Weekly Spend Cards end to end (issue 12), on PostgreSQL and SQLite: the card issuer
//! issues a card per claimed workload and complete week from the ingested month; each
//! card's actual spend is what attribution says for the workload's days; the Product Owner
//! disputes a flagged line, the FinOps Lead adjusts it, the others are accepted and the
//! Portfolio Owner approves the roll-up that Finance reads; a restatement issues version 2
//! with its reason and reopens sign-off and the roll-up; `as_of` shows earlier states; every
//! refused role and transition says why and writes nothing.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use common::read_models_caught_up;
use finops_e2e::{RunningServer, authed, fresh_postgres_url, fresh_sqlite_url};
use finops_ingest::{Format, Ingestor};
use finops_proto::v1 as pb;
use finops_proto::v1::attribution_service_client::AttributionServiceClient;
use finops_proto::v1::maturity_service_client::MaturityServiceClient;
use finops_proto::v1::spaces_service_client::SpacesServiceClient;
use finops_proto::v1::spend_card_service_client::SpendCardServiceClient;
use finops_server::auth::Role;
use tonic::Code;
use tonic::transport::Channel;
use uuid::Uuid;

const PERIOD: &str = "2026-11";

fn operator(key: &str) -> finops_governance::CommandContext {
    finops_e2e::operator_context(key)
}

fn month(dir: &std::path::Path, restatement: u32) -> std::path::PathBuf {
    let path = dir.join(format!("month-{restatement}.csv"));
    let spec = finops_cur::synthetic::MonthSpec { period: PERIOD.into(), rows: 3_000, seed: 7, restatement };
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    finops_cur::synthetic::write_month(&spec, &mut file).unwrap();
    drop(file);
    path
}

/// Waits until the card issuer and the read models have caught up with the head.
async fn settle(server: &RunningServer, url: &str) {
    let models = finops_projections::ReadModels::open(url).await.unwrap();
    for _ in 0..2400 {
        let head = server.store.seal_committed().await.unwrap().position.0;
        let issuer = models.process_checkpoint(finops_processes::CardIssuer::NAME).await.unwrap();
        if issuer >= head && server.store.stats().await.unwrap().head.position.0 == head {
            read_models_caught_up(server, url).await;
            if server.store.stats().await.unwrap().head.position.0 == head {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the card issuer never caught up");
}

async fn cards(
    client: &mut SpendCardServiceClient<Channel>,
    token: &str,
    request: pb::ListSpendCardsRequest,
) -> Vec<pb::SpendCard> {
    client
        .list_spend_cards(authed(pb::ListSpendCardsRequest { page_size: 1000, ..request }, token))
        .await
        .unwrap()
        .into_inner()
        .cards
}

fn monday(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

/// One call of the role matrix, made with arguments its rightful caller could use.
#[derive(Debug, Clone, Copy)]
enum RoleCall {
    GetCard,
    ListCards,
    Accept,
    Dispute,
    Resolve,
    ApproveRollup,
    ListRollups,
    GetMaturity,
    GetWorkload,
}

impl RoleCall {
    const ALL: [RoleCall; 9] = [
        Self::GetCard,
        Self::ListCards,
        Self::Accept,
        Self::Dispute,
        Self::Resolve,
        Self::ApproveRollup,
        Self::ListRollups,
        Self::GetMaturity,
        Self::GetWorkload,
    ];

    /// What `who` gets on po-maria's issued card in pf-omar's portfolio (`None`: an answer).
    fn expect(self, who: &str, role: Role) -> Option<Code> {
        use Role::*;
        let denied = Some(Code::PermissionDenied);
        match self {
            Self::GetCard => match role {
                CloudEngineer | Operator => denied,
                // Another Product Owner's card, or another portfolio's, is not there for them.
                ProductOwner => Some(Code::NotFound),
                PortfolioOwner if who != "pf-omar" => Some(Code::NotFound),
                _ => None,
            },
            Self::ListCards => matches!(role, CloudEngineer | Operator).then_some(Code::PermissionDenied),
            Self::Accept | Self::Dispute => match role {
                ProductOwner => Some(Code::NotFound),
                _ => denied,
            },
            // The rightful caller (the FinOps Lead) would be told the card is not disputed.
            Self::Resolve if role == FinopsLead => Some(Code::FailedPrecondition),
            Self::Resolve => denied,
            // The rightful caller (the portfolio's owner) would be told the week is waiting.
            Self::ApproveRollup => match who {
                "pf-omar" => Some(Code::FailedPrecondition),
                _ => denied,
            },
            Self::ListRollups => {
                matches!(role, ProductOwner | CloudEngineer | Operator).then_some(Code::PermissionDenied)
            }
            Self::GetMaturity => {
                matches!(role, ProductOwner | CloudEngineer | Operator).then_some(Code::PermissionDenied)
            }
            Self::GetWorkload => match role {
                ProductOwner => Some(Code::NotFound),
                PortfolioOwner | CloudEngineer | Operator => denied,
                _ => None,
            },
        }
    }

    async fn run(self, channel: &Channel, card: &pb::SpendCard, token: &str) -> Option<Code> {
        let mut cards = SpendCardServiceClient::new(channel.clone());
        let (name, request_id) = (card.name.clone(), Uuid::now_v7().to_string());
        let why = "role matrix".to_owned();
        let flagged = card.lines.iter().filter(|l| l.flagged).map(|l| l.key.clone()).take(1).collect();
        let outcome = match self {
            Self::GetCard => cards
                .get_spend_card(authed(pb::GetSpendCardRequest { name, as_of: String::new() }, token))
                .await
                .map(drop),
            Self::ListCards => {
                cards.list_spend_cards(authed(pb::ListSpendCardsRequest::default(), token)).await.map(drop)
            }
            Self::Accept => cards
                .accept_spend_card(authed(
                    pb::AcceptSpendCardRequest { name, version: 1, rationale: why, request_id },
                    token,
                ))
                .await
                .map(drop),
            Self::Dispute => cards
                .dispute_spend_card(authed(
                    pb::DisputeSpendCardRequest { name, version: 1, lines: flagged, rationale: why, request_id },
                    token,
                ))
                .await
                .map(drop),
            Self::Resolve => cards
                .resolve_spend_card_dispute(authed(
                    pb::ResolveSpendCardDisputeRequest {
                        name,
                        version: 1,
                        outcome: "upheld".into(),
                        adjusted_cents: 0,
                        rationale: why,
                        request_id,
                    },
                    token,
                ))
                .await
                .map(drop),
            Self::ApproveRollup => cards
                .approve_rollup(authed(
                    pb::ApproveRollupRequest {
                        portfolio_id: card.portfolio_id.clone(),
                        week: card.week.clone(),
                        rationale: why,
                        request_id,
                    },
                    token,
                ))
                .await
                .map(drop),
            Self::ListRollups => cards.list_rollups(authed(pb::ListRollupsRequest::default(), token)).await.map(drop),
            Self::GetMaturity => MaturityServiceClient::new(channel.clone())
                .get_maturity(authed(pb::GetMaturityRequest::default(), token))
                .await
                .map(drop),
            Self::GetWorkload => SpacesServiceClient::new(channel.clone())
                .get_workload(authed(
                    pb::GetWorkloadRequest { name: card.workload_id.clone(), as_of: String::new() },
                    token,
                ))
                .await
                .map(drop),
        };
        outcome.err().map(|status| status.code())
    }
}

async fn spend_cards_loop(url: &str) {
    let server = RunningServer::start(url).await;
    finops_server::demo::seed(server.store.clone(), "arn:aws:sso:::instance/ssoins-demo").await.unwrap();
    let objects: Arc<dyn object_store::ObjectStore> =
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&server.objects).unwrap());
    let ingestor = Ingestor::new(server.store.clone(), objects);
    let dir = std::env::temp_dir().join(format!("finops-cards-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let channel = tonic::transport::Endpoint::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
    let mut client = SpendCardServiceClient::new(channel.clone());
    let mut attribution = AttributionServiceClient::new(channel.clone());
    let mut spaces = SpacesServiceClient::new(channel);
    let fl = server.token("fl-ana", Role::FinopsLead);
    let finance = server.token("fin-eva", Role::Finance);
    let maria = server.token("po-maria", Role::ProductOwner);
    let juan = server.token("po-juan", Role::ProductOwner);
    let omar = server.token("pf-omar", Role::PortfolioOwner);
    let lena = server.token("pf-lena", Role::PortfolioOwner);

    // The demo's November (ingested by the demo seed or not: this delivery is current now).
    let before_cur = Utc::now();
    ingestor.ingest_file(&month(&dir, 0), Format::Cur, &operator("cards-month")).await.unwrap();
    settle(&server, url).await;

    // 1. A card per claimed workload and complete week: the Monday-to-Sunday weeks of
    // November the delivery covers to their Sunday (none reaching into October or December).
    let all = cards(&mut client, &fl, pb::ListSpendCardsRequest::default()).await;
    assert!(!all.is_empty(), "the card issuer issued cards");
    let by_day = attribution
        .attribute(authed(
            pb::AttributeRequest {
                period: PERIOD.into(),
                group_by: vec!["workload".into(), "day".into()],
                as_of: String::new(),
            },
            &finance,
        ))
        .await
        .unwrap()
        .into_inner()
        .rows;
    let last_day = by_day.iter().map(|r| monday(&r.keys[1])).max().unwrap();
    let complete: Vec<String> = ["2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23"]
        .into_iter()
        .filter(|m| monday(m) + chrono::Duration::days(6) <= last_day)
        .map(str::to_owned)
        .collect();
    let weeks: std::collections::BTreeSet<String> = all.iter().map(|c| c.week.clone()).collect();
    assert_eq!(weeks.into_iter().collect::<Vec<_>>(), complete, "the delivery covers through {last_day}");
    assert!(all.iter().all(|c| c.version == 1 && c.status == "issued"));
    assert!(all.iter().all(|c| c.variance_cents == c.actual_cents - c.estimate_cents));
    assert!(all.iter().any(|c| c.estimate_cents > 0), "approved workloads' estimates are prorated");

    // Each card's actual spend is attribution's for the workload's days of the week.
    let workloads = spaces
        .list_workloads(authed(pb::ListWorkloadsRequest { page_size: 1000, ..Default::default() }, &fl))
        .await
        .unwrap()
        .into_inner()
        .workloads;
    let names: BTreeMap<String, String> = workloads.iter().map(|w| (w.workload_id.clone(), w.name.clone())).collect();
    let owners: BTreeMap<String, String> = workloads.iter().map(|w| (w.workload_id.clone(), w.owner.clone())).collect();
    for card in &all {
        let name = &names[&card.workload_id];
        let start = monday(&card.week);
        let expected: i64 = by_day
            .iter()
            .filter(|r| &r.keys[0] == name)
            .filter(|r| {
                let day = monday(&r.keys[1]);
                day >= start && day < start + chrono::Duration::days(7)
            })
            .map(|r| r.cost_cents)
            .sum();
        let slack = (card.lines.len() + 7) as i64;
        assert!(
            (card.actual_cents - expected).abs() <= slack,
            "{name} {}: {} vs {expected}",
            card.week,
            card.actual_cents
        );
        assert_eq!(card.lines.iter().map(|l| l.cents).sum::<i64>(), card.actual_cents);
        // The forecast reads the month to date at the week's Sunday: attribution's days.
        let sunday = start + chrono::Duration::days(6);
        let month_to_date: i64 =
            by_day.iter().filter(|r| &r.keys[0] == name && monday(&r.keys[1]) <= sunday).map(|r| r.cost_cents).sum();
        assert!(
            (card.month_to_date_cents - month_to_date).abs() <= 31,
            "{} vs {month_to_date}",
            card.month_to_date_cents
        );
        if !card.crossing_date.is_empty() {
            let crossing = monday(&card.crossing_date);
            assert_eq!(crossing.format("%Y-%m").to_string(), PERIOD);
            assert_eq!(card.crossed, crossing <= sunday, "{card:?}");
        }
    }

    // The workload view's forecast reads the same days: through the last day CUR covers,
    // the month to date is attribution's for the workload, against the month's estimate
    // the cards read.
    let theirs = |w: &&pb::Workload| w.owner == "po-maria" && all.iter().any(|c| c.workload_id == w.workload_id);
    let mine = workloads.iter().find(theirs).expect("a card of Maria's").clone();
    let get_workload = |name: String, as_of: String| pb::GetWorkloadRequest { name, as_of };
    let name = format!("workloads/{}", mine.workload_id);
    let shown =
        spaces.get_workload(authed(get_workload(name.clone(), String::new()), &maria)).await.unwrap().into_inner();
    assert_eq!((shown.name.as_str(), shown.owner.as_str()), (mine.name.as_str(), "po-maria"));
    let f = shown.forecast.expect("a forecast once CUR is in");
    assert_eq!((f.period.as_str(), monday(&f.through)), (PERIOD, last_day));
    let month_to_date: i64 = by_day.iter().filter(|r| r.keys[0] == mine.name).map(|r| r.cost_cents).sum();
    assert!((f.month_to_date_cents - month_to_date).abs() <= 31, "{} vs {month_to_date}", f.month_to_date_cents);
    let latest = all.iter().filter(|c| c.workload_id == mine.workload_id).max_by_key(|c| c.week.clone()).unwrap();
    assert_eq!(f.month_estimate_cents, latest.month_estimate_cents, "the month's estimate, as on its cards");
    let elapsed = i64::from(chrono::Datelike::day(&last_day));
    assert_eq!(f.projected_month_cents, f.month_to_date_cents * 30 / elapsed);
    assert_eq!(f.burn_per_day_cents, f.month_to_date_cents / elapsed);
    if !f.crossing_date.is_empty() {
        assert_eq!(f.crossed, monday(&f.crossing_date) <= last_day, "{f:?}");
    }
    // Before the delivery there was no CUR to forecast from; the workload itself was there.
    let then = spaces
        .get_workload(authed(get_workload(mine.workload_id.clone(), before_cur.to_rfc3339()), &finance))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((then.name.as_str(), then.forecast), (mine.name.as_str(), None));
    // Another Product Owner does not find it; a Cloud Engineer may not read workloads; a
    // bad name or instant is named.
    let refused = spaces.get_workload(authed(get_workload(name.clone(), String::new()), &juan)).await.unwrap_err();
    assert_eq!(refused.code(), Code::NotFound);
    let ce = server.token("ce-li", Role::CloudEngineer);
    let refused = spaces.get_workload(authed(get_workload(name, String::new()), &ce)).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let bad =
        spaces.get_workload(authed(get_workload("workloads/x".into(), "yesterday".into()), &fl)).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("name") && bad.message().contains("as_of"), "{}", bad.message());

    // 2. Visibility: Maria sees her workloads' cards only; Juan does not find hers.
    let hers = cards(&mut client, &maria, pb::ListSpendCardsRequest::default()).await;
    let his = cards(&mut client, &juan, pb::ListSpendCardsRequest::default()).await;
    assert!(!hers.is_empty() && hers.iter().all(|c| all.contains(c)));
    assert!(his.iter().all(|c| !hers.contains(c)), "each Product Owner sees their own cards only");
    assert!(hers.iter().all(|c| owners[&c.workload_id] == "po-maria"));
    assert_eq!(
        hers.len() + his.len(),
        all.iter().filter(|c| ["po-maria", "po-juan"].contains(&owners[&c.workload_id].as_str())).count()
    );
    let card =
        hers.iter().find(|c| c.lines.iter().any(|l| l.flagged)).expect("a card of Maria's with a flagged line").clone();
    let get = |name: &str, as_of: &str| pb::GetSpendCardRequest { name: name.into(), as_of: as_of.into() };
    assert_eq!(client.get_spend_card(authed(get(&card.name, ""), &juan)).await.unwrap_err().code(), Code::NotFound);
    assert_eq!(
        client
            .get_spend_card(authed(get(&card.name, ""), &server.token("ce-li", Role::CloudEngineer)))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );

    // Other processes may still write (the gap detector); the cards' own events are counted.
    let card_events = |stats: finops_eventlog::LogStats| -> u64 {
        stats
            .events_by_type
            .iter()
            .filter(|(t, _)| t.starts_with("SpendCard") || t.starts_with("SpendRollup"))
            .map(|(_, n)| n)
            .sum()
    };
    // Every role against every card call, on Maria's issued card: who may read what, and
    // every refused decision refused before it is decided, writing nothing.
    let card_events_before = card_events(server.store.stats().await.unwrap());
    let channel = tonic::transport::Endpoint::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
    let cells = [
        ("po-juan", Role::ProductOwner),
        ("fl-ana", Role::FinopsLead),
        ("ce-li", Role::CloudEngineer),
        ("pf-omar", Role::PortfolioOwner),
        ("pf-lena", Role::PortfolioOwner),
        ("fin-eva", Role::Finance),
        ("aud-kim", Role::Auditor),
        ("ops-kim", Role::Operator),
    ];
    let mut seen = Vec::new();
    for (who, role) in cells {
        for call in RoleCall::ALL {
            let code = call.run(&channel, &card, &server.token(who, role)).await;
            seen.push(format!("{who} {call:?} {code:?}"));
        }
    }
    let expected: Vec<String> = cells
        .iter()
        .flat_map(|(who, role)| {
            RoleCall::ALL.iter().map(move |call| format!("{who} {call:?} {:?}", call.expect(who, *role)))
        })
        .collect();
    assert_eq!(seen, expected);
    assert_eq!(card_events(server.store.stats().await.unwrap()), card_events_before, "refused calls write nothing");

    // 3. Maria disputes a flagged line; a line that is not flagged, or a stale version, is refused.
    let flagged = card.lines.iter().find(|l| l.flagged).unwrap().key.clone();
    let dispute = |lines: Vec<String>, version: u32, why: &str| pb::DisputeSpendCardRequest {
        name: card.name.clone(),
        version,
        lines,
        rationale: why.into(),
        request_id: Uuid::now_v7().to_string(),
    };
    let before = card_events(server.store.stats().await.unwrap());
    let bad = client.dispute_spend_card(authed(dispute(vec!["no/such/line".into()], 2, ""), &maria)).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    for field in ["lines[0]", "rationale", "version"] {
        assert!(bad.message().contains(field), "{field}: {}", bad.message());
    }
    let refused = client.dispute_spend_card(authed(dispute(vec![flagged.clone()], 1, "x"), &juan)).await.unwrap_err();
    assert_eq!(refused.code(), Code::NotFound, "another Product Owner's card");
    assert_eq!(card_events(server.store.stats().await.unwrap()), before, "refusals write nothing");
    let before_dispute = Utc::now();
    let disputed = client
        .dispute_spend_card(authed(
            dispute(vec![flagged.clone()], 1, "Not ours: that region is the data team's"),
            &maria,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((disputed.status.as_str(), disputed.disputed_lines.clone()), ("disputed", vec![flagged.clone()]));
    let last = disputed.history.last().unwrap();
    assert_eq!((last.who.as_str(), last.role.as_str()), ("po-maria", "product_owner"));
    let accept = |name: &str, version: u32, why: &str| pb::AcceptSpendCardRequest {
        name: name.into(),
        version,
        rationale: why.into(),
        request_id: Uuid::now_v7().to_string(),
    };
    let illegal = client.accept_spend_card(authed(accept(&card.name, 1, "fine after all"), &maria)).await.unwrap_err();
    assert_eq!(illegal.code(), Code::FailedPrecondition);
    assert!(illegal.message().contains("disputed"), "{}", illegal.message());

    // 4. The FinOps Lead adjusts the charge; only the FinOps Lead may.
    let resolve = pb::ResolveSpendCardDisputeRequest {
        name: card.name.clone(),
        version: 1,
        outcome: "adjusted".into(),
        adjusted_cents: 12_345,
        rationale: "That region moves to the data team's card".into(),
        request_id: Uuid::now_v7().to_string(),
    };
    assert_eq!(
        client.resolve_spend_card_dispute(authed(resolve.clone(), &maria)).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let resolved = client.resolve_spend_card_dispute(authed(resolve, &fl)).await.unwrap().into_inner();
    assert_eq!(
        (resolved.status.as_str(), resolved.outcome.as_str(), resolved.charged_cents),
        ("resolved", "adjusted", 12_345)
    );
    // As of before the dispute, the card was only issued.
    let then =
        client.get_spend_card(authed(get(&card.name, &before_dispute.to_rfc3339()), &fl)).await.unwrap().into_inner();
    assert_eq!(then.status, "issued");

    // 5. The roll-up waits for every card of the portfolio's week; then its owner approves it.
    settle(&server, url).await;
    let approve = |why: &str| pb::ApproveRollupRequest {
        portfolio_id: card.portfolio_id.clone(),
        week: card.week.clone(),
        rationale: why.into(),
        request_id: Uuid::now_v7().to_string(),
    };
    let week_cards = cards(
        &mut client,
        &fl,
        pb::ListSpendCardsRequest {
            week: card.week.clone(),
            portfolio_id: card.portfolio_id.clone(),
            ..Default::default()
        },
    )
    .await;
    if week_cards.len() > 1 {
        let waiting = client.approve_rollup(authed(approve("Too early"), &omar)).await.unwrap_err();
        assert_eq!(waiting.code(), Code::FailedPrecondition);
        assert!(waiting.message().contains("waiting"), "{}", waiting.message());
    }
    assert_eq!(
        client.approve_rollup(authed(approve("Not mine"), &lena)).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    for other in week_cards.iter().filter(|c| c.name != card.name) {
        let owner = if hers.iter().any(|h| h.name == other.name) { &maria } else { &juan };
        let accepted =
            client.accept_spend_card(authed(accept(&other.name, 1, "Matches our plan"), owner)).await.unwrap();
        assert_eq!(accepted.into_inner().status, "accepted");
    }
    let rollup = client.approve_rollup(authed(approve("Chargeback-ready"), &omar)).await.unwrap().into_inner();
    assert_eq!(rollup.status, "approved");
    assert_eq!(rollup.cards.len(), week_cards.len());
    let adjusted = rollup.cards.iter().find(|c| c.workload_id == card.workload_id).unwrap();
    assert_eq!(adjusted.charged_cents, 12_345, "the adjusted amount is what is charged");
    settle(&server, url).await;
    let approved = client
        .list_rollups(authed(pb::ListRollupsRequest { status: "approved".into(), ..Default::default() }, &finance))
        .await
        .unwrap()
        .into_inner()
        .rollups;
    assert_eq!(approved.len(), 1);
    assert_eq!(approved[0].total_cents, rollup.total_cents);
    assert_eq!(
        client.list_rollups(authed(pb::ListRollupsRequest::default(), &maria)).await.unwrap_err().code(),
        Code::PermissionDenied
    );

    // 6. AWS restates the month: the card gets version 2 with its reason, sign-off reopens,
    // and so does the roll-up; version 1 stays readable.
    ingestor.ingest_file(&month(&dir, 1), Format::Cur, &operator("cards-restatement")).await.unwrap();
    settle(&server, url).await;
    let v2 = client.get_spend_card(authed(get(&card.name, ""), &fl)).await.unwrap().into_inner();
    assert_eq!((v2.version, v2.status.as_str()), (2, "issued"), "{v2:?}");
    assert!(v2.versions[1].reason.contains("CUR batches"), "{}", v2.versions[1].reason);
    assert_eq!(v2.versions[0].actual_cents, card.actual_cents, "version 1 stays readable");
    let reopened = client
        .list_rollups(authed(pb::ListRollupsRequest { week: card.week.clone(), ..Default::default() }, &finance))
        .await
        .unwrap()
        .into_inner()
        .rollups;
    assert_eq!(reopened[0].status, "reopened");

    // 7. A rebuild of the card read models gives the same digests.
    let models = finops_projections::ReadModels::open(url).await.unwrap();
    let runner = finops_projections::ProjectionRunner::new(
        server.store.clone(),
        models,
        finops_projections::governance_projectors(),
    );
    for report in runner.rebuild_all(&["spend_cards", "spend_rollups"]).await.unwrap().reports {
        assert_eq!(report.digest_before, report.digest_after, "{}", report.projection);
    }
    std::fs::remove_dir_all(dir).unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cards_are_issued_signed_off_and_reissued_on_postgres() {
    let Some(url) = fresh_postgres_url().await else { return };
    spend_cards_loop(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cards_are_issued_signed_off_and_reissued_on_sqlite() {
    spend_cards_loop(&fresh_sqlite_url()).await;
}
