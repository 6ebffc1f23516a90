//! Helpers shared by the end-to-end tests that wait on the read models.

use finops_e2e::RunningServer;

/// Waits until every governance read model has folded the log up to its head (lists are
/// read models: they follow the events the test or the seed wrote).
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
