//! Support for the end-to-end tests: a real server on an ephemeral port, and (re-exported
//! from `finops-testkit`) isolated PostgreSQL schemas, fresh SQLite stores and the
//! governance log at scale.

pub use finops_testkit::*;

use std::net::SocketAddr;
use std::sync::Arc;

use finops_eventlog::EventStore;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A real FinOps Center server on an ephemeral port, stopped (gracefully) on drop.
pub struct RunningServer {
    /// Where it listens.
    pub address: SocketAddr,
    /// The store it serves.
    pub store: Arc<dyn EventStore>,
    /// The folder holding its CUR batches (a fresh temporary one).
    pub objects: std::path::PathBuf,
    /// Where its Prometheus metrics are served, when the configuration asked for them.
    pub metrics: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), finops_server::ServerError>>>,
}

impl RunningServer {
    /// Starts the server on `store_url`.
    pub async fn start(store_url: &str) -> Self {
        Self::start_with(store_url, |config| config).await
    }

    /// Starts the server on `store_url` with its resolved configuration changed by
    /// `adjust` (an automatic kill switch, say).
    pub async fn start_with(
        store_url: &str,
        adjust: impl FnOnce(finops_server::ServerConfig) -> finops_server::ServerConfig,
    ) -> Self {
        let objects = std::env::temp_dir().join("finops-e2e").join(format!("objects-{}", uuid::Uuid::now_v7()));
        let config = finops_server::ConfigLayer {
            listen: Some("127.0.0.1:0".into()),
            store: Some(store_url.to_owned()),
            otlp_endpoint: None,
            jwt_secret: None,
            dev: Some(true),
            identity_center_instance_arn: Some("arn:aws:sso:::instance/ssoins-7223e2e0test".into()),
            ha_premium_percent: None,
            price_offer_files: None,
            task_sla_business_days: None,
            card_variance_threshold_percent: None,
            coding_profile: None,
            objects: Some(objects.display().to_string()),
            cur_ingest_root: None,
            broad_role_patterns: None,
            dedicated_role_patterns: None,
            metrics_listen: None,
            webhooks: None,
            detectors: None,
            kill_switch: None,
            kill_switch_iam_endpoint: None,
            kill_switch_role: None,
            kill_switch_sts_endpoint: None,
        }
        .resolve()
        .expect("valid config");
        let config = adjust(config);
        let store = finops_server::open_store(&config).await.expect("store opens");
        let listener = finops_server::bind(&config).await.expect("bind");
        let metrics_listener = match config.metrics_listen {
            Some(address) => Some(tokio::net::TcpListener::bind(address).await.expect("bind metrics")),
            None => None,
        };
        let metrics = metrics_listener.as_ref().map(|l| l.local_addr().unwrap());
        let address = listener.local_addr().unwrap();
        let store_for_server = store.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let serve_config = config.clone();
        let task = tokio::spawn(async move {
            finops_server::serve_with_metrics(listener, metrics_listener, store_for_server, &serve_config, async move {
                let _ = stopped.await;
            })
            .await
        });
        Self { address, store, objects, metrics, stop: Some(stop), task: Some(task) }
    }

    /// A bearer token for `subject` in `role`, valid for this server (dev mode).
    pub fn token(&self, subject: &str, role: finops_server::auth::Role) -> String {
        finops_server::auth::Authenticator::hs256(finops_server::DEV_JWT_SECRET.as_bytes())
            .expect("dev key")
            .issue(subject, role, 3600)
            .expect("a subject the server accepts")
    }

    /// The `http://` endpoint for a tonic client.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Stops the server and waits until it has drained.
    pub async fn shutdown(mut self) -> Result<(), finops_server::ServerError> {
        let _ = self.stop.take().map(|s| s.send(()));
        self.task.take().expect("running").await.expect("server task")
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
    }
}

/// `message` with `authorization: Bearer {token}` attached.
pub fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("ascii token"));
    request
}
