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
    let dir = std::env::temp_dir().join(format!("finops-month-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("month.csv");
    let spec = finops_cur::synthetic::MonthSpec { period: period.into(), rows, seed: 7, restatement };
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        finops_cur::synthetic::write_month(&spec, &mut out).unwrap();
        for incident in incidents {
            finops_cur::synthetic::write_incident(incident, &mut out).unwrap();
        }
    }
    let objects: std::sync::Arc<dyn object_store::ObjectStore> =
        std::sync::Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&server.objects).unwrap());
    finops_ingest::Ingestor::new(server.store.clone(), objects)
        .ingest_file(&path, finops_ingest::Format::Cur, &finops_e2e::operator_context("ops-kim"))
        .await
        .unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}
