//! Reconciliation over gRPC (issue 13.5), on SQLite: CUR for a month arrives after its
//! invocation logs; each workload's day is the logs' priced estimate next to what CUR
//! billed, on the days the logs cover; a day the logs saw a storm CUR did not bill is
//! flagged; as of before the logs, nothing is reconciled; a Product Owner sees only theirs.

mod common;

use common::ingest_month;
use finops_e2e::{RunningServer, authed, fresh_sqlite_url};
use finops_ingest::logs::LogIngestor;
use finops_proto::v1 as pb;
use finops_proto::v1::attribution_service_client::AttributionServiceClient;
use finops_server::auth::Role;
use tonic::Code;

/// The logs of the month `ingest_month` generates (seed 7, 3,000 rows), with `incidents`.
fn month_logs(incidents: &[finops_cur::synthetic::Incident]) -> Vec<u8> {
    let mut cur = Vec::new();
    let spec = finops_cur::synthetic::MonthSpec { period: "2026-11".into(), rows: 3_000, seed: 7, restatement: 0 };
    finops_cur::synthetic::write_month(&spec, &mut cur).unwrap();
    for incident in incidents {
        finops_cur::synthetic::write_incident(incident, &mut cur).unwrap();
    }
    let mut logs = Vec::new();
    finops_cur::synthetic::write_invocation_logs(&cur, &mut logs).unwrap();
    logs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_workloads_day_is_the_logs_estimate_against_cur_and_a_day_apart_is_flagged() {
    let url = fresh_sqlite_url();
    let server = RunningServer::start(&url).await;
    finops_server::demo::seed(server.store.clone(), "arn:aws:sso:::instance/ssoins-demo").await.unwrap();
    let objects: std::sync::Arc<dyn object_store::ObjectStore> =
        std::sync::Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&server.objects).unwrap());
    let logs = LogIngestor::new(server.store.clone(), objects);
    let before_logs = chrono::Utc::now();
    // The logs saw a storm by Support Bot's (claimed) role on the 20th that CUR never billed.
    let storm = finops_cur::synthetic::Incident {
        period: "2026-11".into(),
        account: "111122223333".into(),
        role: "finops-support-bot-88aa".into(),
        day: 20,
        hours: 2..4,
        thousands_per_hour: 2_000_000.0,
    };
    logs.ingest_bytes("month.json", &month_logs(std::slice::from_ref(&storm)), "ops-kim").await.unwrap();
    ingest_month(&server, "2026-11", 3_000, 0, &[]).await;

    let channel = tonic::transport::Endpoint::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
    let mut attribution = AttributionServiceClient::new(channel);
    let fl = server.token("fl-ana", Role::FinopsLead);
    let ask =
        |as_of: &str| pb::ReconcileRequest { period: "2026-11".into(), as_of: as_of.into(), ..Default::default() };
    let r = attribution.reconcile(authed(ask(""), &fl)).await.unwrap().into_inner();
    assert_eq!((r.log_files, r.tolerance_percent, r.tolerance_floor_cents), (1, 5, 500));
    assert!(!r.days.is_empty(), "{r:?}");
    for d in &r.days {
        assert_eq!(d.difference_cents, d.billed_cents - d.estimated_cents, "{d:?}");
        let beyond = d.difference_cents.abs() * 100 > 5 * d.billed_cents.abs() && d.difference_cents.abs() > 500;
        assert_eq!(d.flagged, beyond, "{d:?}");
    }
    assert_eq!(r.flagged, r.days.iter().filter(|d| d.flagged).count() as i64);
    // The storm: $1,000 the logs saw and CUR did not bill, on Support Bot's 20th.
    let storm_day = r.days.iter().find(|d| d.workload == "Support Bot" && d.day == "2026-11-20").expect("the 20th");
    assert!(storm_day.flagged, "{storm_day:?}");
    assert!(storm_day.difference_cents <= -100_000, "{storm_day:?}");
    // Another day of Support Bot's: logs and CUR are the same generated calls.
    let calm = r.days.iter().filter(|d| d.workload == "Support Bot" && d.day != "2026-11-20");
    assert!(calm.clone().count() > 0 && calm.clone().all(|d| d.difference_cents > -100_000), "{r:?}");

    // Contract Drafts runs on Claude Platform, which Bedrock's logs never see: every day
    // CUR billed it (over the $5 floor) is flagged, with no estimate.
    let drafts: Vec<_> = r.days.iter().filter(|d| d.workload == "Contract Drafts").collect();
    assert!(!drafts.is_empty());
    assert!(drafts.iter().all(|d| d.estimated_cents == 0 && d.flagged == (d.billed_cents > 500)), "{drafts:?}");

    // As of before the logs: no file, nothing reconciled.
    let then = attribution.reconcile(authed(ask(&before_logs.to_rfc3339()), &fl)).await;
    match then {
        Ok(r) => assert_eq!((r.get_ref().log_files, r.get_ref().days.len()), (0, 0)),
        // Or no CUR either at that instant, said as such.
        Err(status) => assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}"),
    }
    // A Product Owner sees their workloads only.
    let maria = server.token("po-maria", Role::ProductOwner);
    let mine = attribution.reconcile(authed(ask(""), &maria)).await.unwrap().into_inner();
    assert!(mine.days.iter().all(|d| d.workload == "Support Bot" || d.workload == "Contract Drafts"), "{mine:?}");
    assert!(mine.days.iter().any(|d| d.workload == "Support Bot"));
    // Bad input names every field; a Cloud Engineer is refused.
    let bad = pb::ReconcileRequest { period: "2026-13".into(), tolerance_floor_cents: -1, ..Default::default() };
    let status = attribution.reconcile(authed(bad, &fl)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("period") && status.message().contains("tolerance_floor_cents"), "{status:?}");
    let ce = server.token("ce-li", Role::CloudEngineer);
    assert_eq!(attribution.reconcile(authed(ask(""), &ce)).await.unwrap_err().code(), Code::PermissionDenied);
}
