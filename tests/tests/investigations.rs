//! Investigations over gRPC (issue 13.2–13.3), on PostgreSQL: a retry storm in a new CUR
//! batch opens a spend-spike investigation with its evidence (the server's detector, as it
//! follows the log); a restatement of the same month opens no second one; the FinOps Lead
//! assigns it, its owner notes and closes it, the FinOps Lead links it to a gap — each step
//! with who, role and why, readable `as_of`; Product Owners see only theirs; refusals
//! write nothing; Agent Bill quotes ListInvestigations' figures.

mod common;

use std::time::Duration;

use chrono::NaiveDate;
use common::{ingest_daily_month, ingest_month, read_models_caught_up, support_bot_storm};
use finops_domain::investigations::{Signal, investigation_id};
use finops_e2e::{RunningServer, authed, fresh_postgres_url};
use finops_proto::v1 as pb;
use finops_proto::v1::agent_bill_service_client::AgentBillServiceClient;
use finops_proto::v1::investigation_service_client::InvestigationServiceClient;
use finops_server::auth::Role;
use tonic::Code;

const SUBJECT: &str = "principal/111122223333/finops-claims-triage-u88g";

/// Claims Triage's role (unclaimed: its spend is the role's) storms on the 12th; Support
/// Bot's (claimed: its spend is the workload's) on the 20th.
fn storms() -> [finops_cur::synthetic::Incident; 2] {
    let storm = |role: &str, day| finops_cur::synthetic::Incident {
        period: "2026-11".into(),
        account: "111122223333".into(),
        role: role.into(),
        day,
        hours: 2..14,
        thousands_per_hour: 200_000.0,
    };
    [storm("finops-claims-triage-u88g", 12), storm("finops-support-bot-88aa", 20)]
}

/// Waits until the investigation detector has read the whole log.
async fn detected(server: &RunningServer, url: &str) {
    let models = finops_projections::ReadModels::open(url).await.unwrap();
    for _ in 0..2400 {
        let head = server.store.seal_committed().await.unwrap().position.0;
        if models.process_checkpoint(finops_processes::InvestigationDetector::NAME).await.unwrap() >= head {
            read_models_caught_up(server, url).await;
            if server.store.seal_committed().await.unwrap().position.0 == head {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the investigation detector never caught up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_storm_opens_one_investigation_that_people_work_through_to_closed() {
    let Some(url) = fresh_postgres_url().await else { return };
    let server = RunningServer::start(&url).await;
    finops_server::demo::seed(server.store.clone(), "arn:aws:sso:::instance/ssoins-demo").await.unwrap();
    ingest_month(&server, "2026-11", 3_000, 0, &storms()).await;
    detected(&server, &url).await;

    let channel = tonic::transport::Endpoint::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
    let mut investigations = InvestigationServiceClient::new(channel.clone());
    let mut bill = AgentBillServiceClient::new(channel);
    let fl = server.token("fl-ana", Role::FinopsLead);
    let juan = server.token("po-juan", Role::ProductOwner);
    let maria = server.token("po-maria", Role::ProductOwner);
    let auditor = server.token("aud-kim", Role::Auditor);
    let ce = server.token("ce-li", Role::CloudEngineer);

    // The storm opened a spend spike on the role, with its evidence.
    let id = investigation_id(Signal::SpendSpike, SUBJECT, NaiveDate::from_ymd_opt(2026, 11, 12).unwrap());
    let name = format!("investigations/{id}");
    let get = |token: &str, as_of: &str| {
        authed(pb::GetInvestigationRequest { name: name.clone(), as_of: as_of.into() }, token)
    };
    let opened = investigations.get_investigation(get(&fl, "")).await.unwrap().into_inner();
    assert_eq!((opened.signal.as_str(), opened.status.as_str()), ("spend_spike", "open"));
    let evidence = opened.evidence.clone().unwrap();
    assert_eq!(evidence.day, "2026-11-12");
    assert!(evidence.observed_cents >= 12 * 5_000, "the storm's $600 at least: {evidence:?}");
    assert!(evidence.observed_cents >= 3 * evidence.baseline_cents, "{evidence:?}");
    assert_eq!(evidence.principals, ["finops-claims-triage-u88g"]);
    assert_eq!(evidence.models[0], "anthropic.claude-3-haiku-20240307-v1:0");
    assert_eq!(opened.history[0].who, "investigation-detector");
    let listed =
        |status: &str| pb::ListInvestigationsRequest { status: status.into(), page_size: 100, ..Default::default() };
    let all = investigations.list_investigations(authed(listed(""), &fl)).await.unwrap().into_inner().investigations;
    assert!(
        all.iter().any(|i| i.signal == "model_surge" && i.subject.ends_with("anthropic.claude-3-haiku-20240307-v1:0")),
        "{all:#?}"
    );

    // A restatement of the month: the same storm opens nothing new.
    ingest_month(&server, "2026-11", 3_000, 1, &storms()).await;
    detected(&server, &url).await;
    let again = investigations.list_investigations(authed(listed(""), &fl)).await.unwrap().into_inner().investigations;
    assert_eq!(again.iter().filter(|i| i.subject == SUBJECT && i.signal == "spend_spike").count(), 1, "{again:#?}");
    assert_eq!(again.len(), all.len(), "a restatement of the same spend fires nothing new");

    // Support Bot's storm is its workload's: the workload is alerting, and once its
    // investigation is assigned, investigating; Maria sees that one.
    let mut control = finops_proto::v1::workload_control_service_client::WorkloadControlServiceClient::new(
        tonic::transport::Endpoint::from_shared(server.endpoint()).unwrap().connect().await.unwrap(),
    );
    let status = |token: &str| {
        authed(pb::GetWorkloadControlRequest { workload: "Support Bot".into(), as_of: String::new() }, token)
    };
    let alerting = control.get_workload_control(status(&maria)).await.unwrap().into_inner();
    assert_eq!(alerting.status, "alerting", "{alerting:#?}");
    let bot = alerting.investigations[0].clone();
    let seen = investigations.list_investigations(authed(listed(""), &maria)).await.unwrap().into_inner();
    assert_eq!(seen.investigations.iter().map(|i| i.name.clone()).collect::<Vec<_>>(), std::slice::from_ref(&bot));
    let request = pb::AssignInvestigationRequest {
        name: bot,
        owner: "po-maria".into(),
        rationale: "Her workload".into(),
        request_id: String::new(),
    };
    investigations.assign_investigation(authed(request, &fl)).await.unwrap();
    read_models_caught_up(&server, &url).await;
    assert_eq!(control.get_workload_control(status(&maria)).await.unwrap().into_inner().status, "investigating");

    // Who sees it: everyone who reads all, not another Product Owner (nor a Cloud Engineer).
    assert_eq!(investigations.get_investigation(get(&auditor, "")).await.unwrap().into_inner().name, name);
    assert_eq!(investigations.get_investigation(get(&maria, "")).await.unwrap_err().code(), Code::NotFound);
    let hers = investigations.list_investigations(authed(listed(""), &maria)).await.unwrap().into_inner();
    assert!(hers.investigations.iter().all(|i| i.name != name));
    assert_eq!(investigations.get_investigation(get(&ce, "")).await.unwrap_err().code(), Code::PermissionDenied);

    // Refusals write nothing.
    let version = || async {
        server
            .store
            .read_stream(&finops_governance::streams::investigation(id), finops_eventlog::StreamRead::all())
            .await
            .unwrap()
            .len()
    };
    let before = version().await;
    let assign = |token: &str, owner: &str, why: &str| {
        authed(
            pb::AssignInvestigationRequest {
                name: name.clone(),
                owner: owner.into(),
                rationale: why.into(),
                request_id: String::new(),
            },
            token,
        )
    };
    assert_eq!(
        investigations.assign_investigation(assign(&juan, "po-juan", "mine")).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let bad = investigations.assign_investigation(assign(&fl, " ", "")).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("owner") && bad.message().contains("rationale"), "{}", bad.message());
    let note = |token: &str, text: &str| {
        authed(pb::NoteInvestigationRequest { name: name.clone(), note: text.into(), request_id: String::new() }, token)
    };
    let unseen = investigations.note_investigation(note(&juan, "looking")).await.unwrap_err();
    assert_eq!(unseen.code(), Code::NotFound, "not his (nor on his workloads) until assigned");
    assert_eq!(version().await, before);

    // Assigned, noted by its owner, linked by the FinOps Lead, closed by its owner.
    let assigned =
        investigations.assign_investigation(assign(&fl, "po-juan", "His batch job")).await.unwrap().into_inner();
    assert_eq!((assigned.status.as_str(), assigned.owner.as_str()), ("investigating", "po-juan"));
    let assigned_at = chrono::Utc::now();
    let noted = investigations
        .note_investigation(note(&juan, "Retries without a cap in the nightly batch"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(noted.notes[0].by, "po-juan");
    let link = |token: &str, gap: &str| {
        authed(
            pb::LinkInvestigationToGapRequest {
                name: name.clone(),
                gap: gap.into(),
                rationale: "The same role's spend".into(),
                request_id: String::new(),
            },
            token,
        )
    };
    assert_eq!(
        investigations
            .link_investigation_to_gap(link(&juan, "gaps/00000000-0000-0000-0000-000000000001"))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let bad = investigations.link_investigation_to_gap(link(&fl, "gap-7")).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    let gap = format!("gaps/{}", uuid::Uuid::from_u128(7));
    let linked = investigations.link_investigation_to_gap(link(&fl, &gap)).await.unwrap().into_inner();
    assert_eq!(linked.gaps, [gap]);
    let close = |token: &str| {
        authed(
            pb::CloseInvestigationRequest {
                name: name.clone(),
                rationale: "Retries capped at 3 in release 2.4".into(),
                request_id: String::new(),
            },
            token,
        )
    };
    let closed = investigations.close_investigation(close(&juan)).await.unwrap().into_inner();
    assert_eq!(closed.status, "closed");
    let twice = investigations.close_investigation(close(&fl)).await.unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition);
    assert!(twice.message().contains("closed"), "{}", twice.message());
    let trail: Vec<(String, String, String)> =
        closed.history.iter().map(|h| (h.event.clone(), h.who.clone(), h.role.clone())).collect();
    assert_eq!(
        trail,
        [
            ("InvestigationOpened", "investigation-detector", "process"),
            ("InvestigationAssigned", "fl-ana", "finops_lead"),
            ("InvestigationNoted", "po-juan", "product_owner"),
            ("InvestigationLinkedToGap", "fl-ana", "finops_lead"),
            ("InvestigationClosed", "po-juan", "product_owner"),
        ]
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()))
    );
    assert_eq!(closed.history.last().unwrap().why, "Retries capped at 3 in release 2.4");
    read_models_caught_up(&server, &url).await;

    // As of just after the assignment: investigating, not yet noted.
    let then = investigations.get_investigation(get(&fl, &assigned_at.to_rfc3339())).await.unwrap().into_inner();
    assert_eq!((then.status.as_str(), then.notes.len()), ("investigating", 0));

    // Agent Bill: the investigations not closed, as ListInvestigations has them.
    let asked = pb::AskRequest { question: "Which investigations are open?".into(), ..Default::default() };
    let answer = bill.ask(authed(asked, &fl)).await.unwrap().into_inner();
    assert_eq!(answer.tool, "investigations");
    let count = |status: &str| {
        let request = pb::ListInvestigationsRequest {
            status: status.into(),
            page_size: 100,
            as_of: answer.as_of.clone(),
            ..Default::default()
        };
        authed(request, &fl)
    };
    let open = investigations.list_investigations(count("open")).await.unwrap().into_inner().investigations.len();
    let figure = |n: &str| answer.figures.iter().find(|f| f.name == n).unwrap().amount;
    assert_eq!(figure("open investigations"), open as i64);
    assert!(!answer.text.contains(&name), "a closed investigation is not listed: {}", answer.text);
    server.shutdown().await.unwrap();
}

/// A month's invocation logs with Support Bot's storm on the 20th, one gzip file per day as
/// a follower would find them, in a fresh folder.
fn daily_log_files(storm: &finops_cur::synthetic::Incident) -> std::path::PathBuf {
    let mut cur = Vec::new();
    let spec = finops_cur::synthetic::MonthSpec { period: "2026-11".into(), rows: 3_000, seed: 7, restatement: 0 };
    finops_cur::synthetic::write_month(&spec, &mut cur).unwrap();
    finops_cur::synthetic::write_incident(storm, &mut cur).unwrap();
    let mut logs = Vec::new();
    finops_cur::synthetic::write_invocation_logs(&cur, &mut logs).unwrap();
    let mut days: std::collections::BTreeMap<String, String> = Default::default();
    for line in String::from_utf8(logs).unwrap().lines() {
        let at = line.find("\"timestamp\":\"").unwrap() + 13;
        days.entry(line[at..at + 10].to_owned()).or_default().push_str(&format!("{line}\n"));
    }
    let dir = std::env::temp_dir().join(format!("finops-logs-{}", uuid::Uuid::now_v7()));
    for (day, text) in days {
        let path = dir.join(format!("AWSLogs/111122223333/BedrockModelInvocationLogs/{day}.json.gz"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
        std::fs::write(path, gz.finish().unwrap()).unwrap();
    }
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocation_logs_open_the_storm_hours_before_cur_and_cur_opens_nothing_twice() {
    use finops_ingest::logs::{LogIngestor, find_logs};
    let Some(url) = fresh_postgres_url().await else { return };
    let server = RunningServer::start(&url).await;
    finops_server::demo::seed(server.store.clone(), "arn:aws:sso:::instance/ssoins-demo").await.unwrap();
    let storm = support_bot_storm(2_000_000.0);
    let dir = daily_log_files(&storm);
    let objects: std::sync::Arc<dyn object_store::ObjectStore> =
        std::sync::Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&server.objects).unwrap());
    let ingestor = LogIngestor::new(server.store.clone(), objects);
    let files = find_logs(&dir.display().to_string()).await.unwrap();
    assert!(files.len() >= 28, "a file per day: {}", files.len());
    for file in &files {
        let report = ingestor.ingest(file, "ops-kim").await.unwrap();
        assert!(report.recorded && report.columnar, "{report:?}");
    }
    detected(&server, &url).await;

    let channel = tonic::transport::Endpoint::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
    let mut investigations = InvestigationServiceClient::new(channel);
    let fl = server.token("fl-ana", Role::FinopsLead);
    let listed =
        || pb::ListInvestigationsRequest { signal: "spend_spike".into(), page_size: 100, ..Default::default() };
    let spikes = investigations.list_investigations(authed(listed(), &fl)).await.unwrap().into_inner().investigations;
    // The storm's first hour, on Support Bot's workload (its role is claimed), from the logs.
    let storm_spike = spikes
        .iter()
        .find(|i| i.evidence.as_ref().is_some_and(|e| e.principals.contains(&"finops-support-bot-88aa".to_owned())))
        .unwrap_or_else(|| panic!("no spike on Support Bot's role: {spikes:#?}"));
    assert!(storm_spike.subject.starts_with("workload/"), "{storm_spike:#?}");
    let evidence = storm_spike.evidence.clone().unwrap();
    assert_eq!(evidence.day, "2026-11-20");
    assert_eq!(evidence.hours.first().map(String::as_str), Some("2026-11-20T02:00:00Z"), "{evidence:?}");
    // 2 billion Haiku input tokens at $0.25 a million, and the workload's usual calls that hour.
    assert!((50_000..51_000).contains(&evidence.observed_cents), "{evidence:?}");
    assert_eq!(evidence.principals[0], "finops-support-bot-88aa");
    assert!(storm_spike.summary.contains("in the hour from 2026-11-20 02:00 UTC"), "{}", storm_spike.summary);
    let before = spikes.len();

    // The same files again (a follower's second look, a re-run): nothing recorded, nothing opened.
    let head = server.store.seal_committed().await.unwrap().position.0;
    for file in &files {
        assert!(!ingestor.ingest(file, "ops-kim").await.unwrap().recorded);
    }
    assert_eq!(server.store.seal_committed().await.unwrap().position.0, head, "the log did not move");
    // A malformed file is refused whole, by file, line and field, and leaves no trace.
    let bad = "{\"schemaType\":\"ModelInvocationLog\",\"timestamp\":\"2026-11-21T00:00:00Z\"}\n";
    let refused = ingestor.ingest_bytes("bad.json", bad.as_bytes(), "ops-kim").await.unwrap_err();
    assert!(refused.to_string().starts_with("bad.json, line 1: `accountId` is missing"), "{refused}");
    assert_eq!(server.store.seal_committed().await.unwrap().position.0, head);

    // CUR for the month arrives a day or two later: its daily spike on the same workload and
    // day is the investigation the logs opened.
    ingest_month(&server, "2026-11", 3_000, 0, std::slice::from_ref(&storm)).await;
    detected(&server, &url).await;
    let after = investigations.list_investigations(authed(listed(), &fl)).await.unwrap().into_inner().investigations;
    let on_subject: Vec<_> = after.iter().filter(|i| i.subject == storm_spike.subject).collect();
    assert_eq!(on_subject.len(), 1, "{on_subject:#?}");
    assert!(after.len() >= before);
    std::fs::remove_dir_all(dir).unwrap();
}

/// The spend spikes on Support Bot's role, as the FinOps Lead lists them.
async fn support_bot_spikes(server: &RunningServer) -> Vec<pb::Investigation> {
    let channel = tonic::transport::Endpoint::from_shared(server.endpoint()).unwrap().connect().await.unwrap();
    let mut investigations = InvestigationServiceClient::new(channel);
    let listed = pb::ListInvestigationsRequest { signal: "spend_spike".into(), page_size: 100, ..Default::default() };
    let fl = server.token("fl-ana", Role::FinopsLead);
    let all = investigations.list_investigations(authed(listed, &fl)).await.unwrap().into_inner().investigations;
    all.into_iter()
        .filter(|i| i.evidence.as_ref().is_some_and(|e| e.principals.contains(&"finops-support-bot-88aa".to_owned())))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_logs_an_hourly_cur_export_opens_the_storm_on_its_hours_and_a_daily_one_on_its_day() {
    let Some(url) = fresh_postgres_url().await else { return };
    let server = RunningServer::start(&url).await;
    finops_server::demo::seed(server.store.clone(), "arn:aws:sso:::instance/ssoins-demo").await.unwrap();
    ingest_month(&server, "2026-11", 3_000, 0, &[support_bot_storm(2_000_000.0)]).await;
    detected(&server, &url).await;
    // One investigation on the workload, opened on the storm's first hour with its hours.
    let spikes = support_bot_spikes(&server).await;
    assert_eq!(spikes.len(), 1, "one per signal and subject, hours and day together: {spikes:#?}");
    let evidence = spikes[0].evidence.clone().unwrap();
    assert!(spikes[0].subject.starts_with("workload/"), "{:#?}", spikes[0]);
    assert_eq!(evidence.day, "2026-11-20");
    assert_eq!(evidence.hours.first().map(String::as_str), Some("2026-11-20T02:00:00Z"), "{evidence:?}");
    assert_eq!(evidence.hours.len(), 12, "every storm hour: {evidence:?}");
    assert!((50_000..51_000).contains(&evidence.observed_cents), "$500 and the usual calls: {evidence:?}");
    assert!(spikes[0].summary.contains("in the hour from 2026-11-20 02:00 UTC"), "{}", spikes[0].summary);
    server.shutdown().await.unwrap();

    // A daily export has no hours: the same storm opens on its day, as before.
    let Some(url) = fresh_postgres_url().await else { return };
    let server = RunningServer::start(&url).await;
    finops_server::demo::seed(server.store.clone(), "arn:aws:sso:::instance/ssoins-demo").await.unwrap();
    ingest_daily_month(&server, "2026-11", 3_000, &[support_bot_storm(2_000_000.0)]).await;
    detected(&server, &url).await;
    let spikes = support_bot_spikes(&server).await;
    assert_eq!(spikes.len(), 1, "{spikes:#?}");
    let evidence = spikes[0].evidence.clone().unwrap();
    assert_eq!((evidence.day.as_str(), evidence.hours.len()), ("2026-11-20", 0), "{evidence:?}");
    assert!(spikes[0].summary.contains("on 2026-11-20"), "{}", spikes[0].summary);
    server.shutdown().await.unwrap();
}
