//! AI Governance Maturity over gRPC (issue 12 item 4), on PostgreSQL and SQLite: the score
//! of the demo organisation's ingested month — its attribution dimension equal to what
//! attribution says, the overall the weighted blend, the tiers by the formula; the same
//! instant always scores the same; before any CUR there is nothing to score; refused
//! roles and bad input say why.

mod common;

use chrono::Utc;
use finops_domain::maturity::Tier;
use finops_e2e::{RunningServer, authed, fresh_postgres_url, fresh_sqlite_url};
use finops_proto::v1 as pb;
use finops_proto::v1::attribution_service_client::AttributionServiceClient;
use finops_proto::v1::maturity_service_client::MaturityServiceClient;
use finops_server::auth::Role;
use tonic::Code;

async fn maturity_loop(url: &str) {
    let server = RunningServer::start(url).await;
    finops_server::demo::seed(server.store.clone(), "arn:aws:sso:::instance/ssoins-demo").await.unwrap();
    let channel = tonic::transport::Endpoint::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
    let mut maturity = MaturityServiceClient::new(channel.clone());
    let mut attribution = AttributionServiceClient::new(channel);
    let fl = server.token("fl-ana", Role::FinopsLead);
    let ask = |period: &str, as_of: &str| pb::GetMaturityRequest { period: period.into(), as_of: as_of.into() };

    // Before any CUR: nothing to score, and it says so.
    let none = maturity.get_maturity(authed(ask("", ""), &fl)).await.unwrap_err();
    assert_eq!(none.code(), Code::FailedPrecondition);
    assert!(none.message().contains("no CUR ingested"), "{}", none.message());
    let before = Utc::now();

    common::ingest_generated_month(&server, "2026-11", 3_000).await;
    let t = Utc::now().to_rfc3339();

    let score = maturity.get_maturity(authed(ask("", &t), &fl)).await.unwrap().into_inner();
    assert_eq!(score.period, "2026-11");
    let names: Vec<&str> = score.dimensions.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["Workload Attribution", "Model Governance", "Estimate Coverage", "Process Efficiency"]);
    assert_eq!(score.dimensions.iter().map(|d| d.weight_percent).collect::<Vec<_>>(), [40, 25, 20, 15]);
    let blend: f64 = score.dimensions.iter().map(|d| d.score * f64::from(d.weight_percent) / 100.0).sum();
    assert!((score.overall - blend).abs() < 1e-9, "{} vs {blend}", score.overall);
    assert_eq!(score.tier, Tier::of(score.overall).as_str());
    for d in &score.dimensions {
        assert!((0.0..=100.0).contains(&d.score), "{d:?}");
        assert_eq!(d.tier, Tier::of(d.score).as_str(), "{d:?}");
    }
    // The attribution dimension is attribution's own answer: attributed ÷ all AI dollars.
    let by_gap = attribution
        .attribute(authed(
            pb::AttributeRequest { period: "2026-11".into(), group_by: vec!["gap".into()], as_of: t.clone() },
            &fl,
        ))
        .await
        .unwrap()
        .into_inner();
    let attributed: i64 = by_gap.rows.iter().filter(|r| r.keys[0].is_empty()).map(|r| r.cost_cents).sum();
    let expected = attributed as f64 / by_gap.total_cents as f64 * 100.0;
    assert!((score.dimensions[0].score - expected).abs() < 1e-9, "{} vs {expected}", score.dimensions[0].score);
    assert!(score.dimensions[0].figures.contains("attributed") && !score.dimensions[0].next_move.is_empty());
    assert_eq!(score.trend.last().map(|p| p.period.as_str()), Some("2026-11"));

    // The same instant, the same score; as of before the month, nothing to score.
    assert_eq!(maturity.get_maturity(authed(ask("2026-11", &t), &fl)).await.unwrap().into_inner(), score);
    let early = maturity.get_maturity(authed(ask("2026-11", &before.to_rfc3339()), &fl)).await.unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition, "{}", early.message());

    // Who may read it, and bad input.
    let po = server.token("po-maria", Role::ProductOwner);
    assert_eq!(maturity.get_maturity(authed(ask("", ""), &po)).await.unwrap_err().code(), Code::PermissionDenied);
    let finance = server.token("fin-eva", Role::Finance);
    assert!(maturity.get_maturity(authed(ask("", &t), &finance)).await.is_ok());
    let bad = maturity.get_maturity(authed(ask("November", "yesterday"), &fl)).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("period") && bad.message().contains("as_of"), "{}", bad.message());
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_maturity_score_follows_its_formulas_on_postgres() {
    let Some(url) = fresh_postgres_url().await else { return };
    maturity_loop(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_maturity_score_follows_its_formulas_on_sqlite() {
    maturity_loop(&fresh_sqlite_url()).await;
}
