//! Helpers shared by the end-to-end tests that wait on the read models.

use finops_e2e::RunningServer;

/// Waits until every governance read model has folded the log up to its head (lists are
/// read models: they follow the events the test or the seed wrote).
#[allow(dead_code)] // Not every test that shares this module waits on the read models.
pub async fn read_models_caught_up(server: &RunningServer, url: &str) {
    let models = finops_projections::ReadModels::open(url).await.unwrap();
    for _ in 0..1200 {
        let head = server.store.seal_committed().await.unwrap().position.0;
        let mut behind = false;
        for name in finops_projections::ALL {
            behind |= models.checkpoint(name).await.unwrap() < head;
        }
        if !behind {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the read models never caught up with the log");
}

/// Generates a CUR month (`finops_cur::synthetic`, `rows` rows, seed 7) for `period` and
/// ingests it into `server` as an operator would; returns when the batch is recorded.
#[allow(dead_code)] // Not every test that shares this module ingests.
pub async fn ingest_generated_month(server: &RunningServer, period: &str, rows: u64) {
    ingest_month(server, period, rows, 0, &[]).await;
}

/// [`ingest_generated_month`] as restatement `restatement`, with `incidents`' lines
/// appended (runaway roles for the investigation detector).
#[allow(dead_code)] // Not every test that shares this module ingests.
pub async fn ingest_month(
    server: &RunningServer,
    period: &str,
    rows: u64,
    restatement: u32,
    incidents: &[finops_cur::synthetic::Incident],
) {
    ingest_cur_text(server, &generated_month(period, rows, restatement, incidents)).await;
}

/// The CSV text of [`ingest_month`]'s month.
fn generated_month(period: &str, rows: u64, restatement: u32, incidents: &[finops_cur::synthetic::Incident]) -> String {
    let spec = finops_cur::synthetic::MonthSpec { period: period.into(), rows, seed: 7, restatement };
    let mut out = Vec::new();
    finops_cur::synthetic::write_month(&spec, &mut out).unwrap();
    for incident in incidents {
        finops_cur::synthetic::write_incident(incident, &mut out).unwrap();
    }
    String::from_utf8(out).unwrap()
}

/// [`ingest_month`] as a daily export delivers it: every line's usage starts at midnight.
#[allow(dead_code)] // Not every test that shares this module ingests.
pub async fn ingest_daily_month(
    server: &RunningServer,
    period: &str,
    rows: u64,
    incidents: &[finops_cur::synthetic::Incident],
) {
    let hourly = generated_month(period, rows, 0, incidents);
    // Timestamps are `…THH:00:00Z` in the generator; midnight is `T00:00:00Z`.
    let mut daily = String::with_capacity(hourly.len());
    let mut rest = hourly.as_str();
    while let Some(at) = rest.find(":00:00Z") {
        let hour = at.checked_sub(3).filter(|h| rest.as_bytes()[*h] == b'T').expect("a generated timestamp");
        daily.push_str(&rest[..hour]);
        daily.push_str("T00:00:00Z");
        rest = &rest[at + 7..];
    }
    daily.push_str(rest);
    ingest_cur_text(server, &daily).await;
}

/// Ingests CUR CSV `text` into `server` as an operator would.
async fn ingest_cur_text(server: &RunningServer, text: &str) {
    let dir = std::env::temp_dir().join(format!("finops-month-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("month.csv");
    std::fs::write(&path, text).unwrap();
    let objects: std::sync::Arc<dyn object_store::ObjectStore> =
        std::sync::Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&server.objects).unwrap());
    finops_ingest::Ingestor::new(server.store.clone(), objects)
        .ingest_file(&path, finops_ingest::Format::Cur, &finops_e2e::operator_context("ops-kim"))
        .await
        .unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

/// Support Bot's role (claimed in the demo) calling Claude 3 Haiku on the 20th of
/// November from 02:00 to 14:00, `thousands_per_hour` thousand input tokens an hour
/// (2 000 000: $500 an hour).
#[allow(dead_code)] // Not every test that shares this module storms.
pub fn support_bot_storm(thousands_per_hour: f64) -> finops_cur::synthetic::Incident {
    finops_cur::synthetic::Incident {
        period: "2026-11".into(),
        account: "111122223333".into(),
        role: "finops-support-bot-88aa".into(),
        day: 20,
        hours: 2..14,
        thousands_per_hour,
    }
}
