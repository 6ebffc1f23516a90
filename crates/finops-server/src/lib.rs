//! # The FinOps Center gRPC server
//!
//! One tonic server carries every `finops.v1` service, the standard gRPC health service
//! and server reflection (v1 and v1alpha, so both current tools and grpcurl 1.8 can list
//! it). Domain services plug into [`serve`] as they arrive.
//!
//! This crate maps between wire types (`finops-proto`) and the log/domain; it owns no
//! storage of its own and never writes SQL.

mod agent_bill_api;
mod attribution_api;
pub mod auth;
mod business_request_api;
mod catalog_api;
mod config;
mod cur_ingest_api;
pub mod demo;
mod event_log_api;
mod gap_actions;
mod gap_api;
mod gateway_rule_api;
mod history_api;
mod investigation_api;
pub mod kept_tables;
mod maturity_api;
pub mod metrics;
mod organisation_api;
mod spaces_api;
mod spend_card_api;
mod status;
mod task_api;
mod wire;
mod workload_control_api;

use std::future::Future;
use std::sync::Arc;

use finops_eventlog::{EventStore, Upcasters};
use finops_proto::v1::agent_bill_service_server::AgentBillServiceServer;
use finops_proto::v1::attribution_service_server::AttributionServiceServer;
use finops_proto::v1::business_request_service_server::BusinessRequestServiceServer;
use finops_proto::v1::catalog_service_server::CatalogServiceServer;
use finops_proto::v1::cur_ingest_service_server::CurIngestServiceServer;
use finops_proto::v1::event_log_service_server::EventLogServiceServer;
use finops_proto::v1::gap_service_server::GapServiceServer;
use finops_proto::v1::gateway_rule_service_server::GatewayRuleServiceServer;
use finops_proto::v1::history_service_server::HistoryServiceServer;
use finops_proto::v1::investigation_service_server::InvestigationServiceServer;
use finops_proto::v1::maturity_service_server::MaturityServiceServer;
use finops_proto::v1::organisation_service_server::OrganisationServiceServer;
use finops_proto::v1::spaces_service_server::SpacesServiceServer;
use finops_proto::v1::spend_card_service_server::SpendCardServiceServer;
use finops_proto::v1::task_service_server::TaskServiceServer;
use finops_proto::v1::workload_control_service_server::WorkloadControlServiceServer;
use tokio::net::TcpListener;

pub use agent_bill_api::{AgentBillApi, AgentBillTools};
pub use attribution_api::AttributionApi;
pub use business_request_api::BusinessRequestApi;
pub use catalog_api::CatalogApi;
pub use config::{
    AuthMode, CodingProfileLayer, ConfigError, ConfigLayer, DEFAULT_LISTEN, DEFAULT_OBJECTS, DEFAULT_STORE,
    DEV_JWT_SECRET, DetectorsLayer, KillSwitchMode, ServerConfig, WebhookLayer,
};
pub use event_log_api::EventLogApi;
pub use gap_api::GapApi;
pub use gateway_rule_api::GatewayRuleApi;
pub use history_api::HistoryApi;
pub use investigation_api::InvestigationApi;
pub use maturity_api::MaturityApi;
pub use organisation_api::OrganisationApi;
pub use spaces_api::SpacesApi;
pub use spend_card_api::SpendCardApi;
pub use task_api::TaskApi;
pub use workload_control_api::WorkloadControlApi;

/// How long in-flight calls may take to finish once shutdown begins.
pub const DRAIN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The event store could not be opened.
    #[error("cannot open the event store: {0}")]
    Store(#[from] finops_eventlog::EventLogError),
    /// The listen address could not be bound.
    #[error("cannot listen on {address}: {reason}")]
    Bind {
        /// The address.
        address: String,
        /// The OS error.
        reason: String,
    },
    /// A price offer file could not be used.
    #[error("cannot load price offer file {path}: {reason}")]
    Prices {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The read-model tables could not be opened.
    #[error("cannot open the read models: {0}")]
    ReadModels(String),
    /// Reflection could not be built from the descriptor sets.
    #[error("cannot build server reflection: {0}")]
    Reflection(String),
    /// The transport failed.
    #[error("gRPC transport error: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Opens the store named in `config` (migrating it) with the upcasters of this build.
pub async fn open_store(config: &ServerConfig) -> Result<Arc<dyn EventStore>, ServerError> {
    Ok(finops_eventlog::open(&config.store, upcasters()).await?)
}

/// Every upcaster the domain registers (`finops_domain::schema`).
pub fn upcasters() -> Upcasters {
    finops_governance::upcasters()
}

/// Binds the configured address.
pub async fn bind(config: &ServerConfig) -> Result<TcpListener, ServerError> {
    TcpListener::bind(config.listen)
        .await
        .map_err(|e| ServerError::Bind { address: config.listen.to_string(), reason: e.to_string() })
}

/// Serves every service on `listener` until `shutdown` resolves, then drains in-flight
/// calls and returns. Metrics are served where the configuration says (if anywhere).
pub async fn serve(
    listener: TcpListener,
    store: Arc<dyn EventStore>,
    config: &ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let metrics = match config.metrics_listen {
        Some(address) => Some(
            TcpListener::bind(address)
                .await
                .map_err(|e| ServerError::Bind { address: address.to_string(), reason: e.to_string() })?,
        ),
        None => None,
    };
    serve_with_metrics(listener, metrics, store, config, shutdown).await
}

/// [`serve`], with Prometheus metrics on `metrics` when given (a listener the caller
/// bound: a test on port 0 knows where to scrape).
pub async fn serve_with_metrics(
    listener: TcpListener,
    metrics: Option<TcpListener>,
    store: Arc<dyn EventStore>,
    config: &ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let auth = Arc::new(auth::Authenticator::hs256(config.auth.secret()).map_err(|reason| {
        ServerError::Config(ConfigError::Value { field: "jwt_secret", value: "***".into(), reason })
    })?);
    if config.auth == AuthMode::Dev {
        tracing::warn!(
            "DEV MODE: bearer tokens are signed with the published development key; never expose this server"
        );
    }
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<EventLogServiceServer<EventLogApi>>().await;
    health.set_serving::<BusinessRequestServiceServer<BusinessRequestApi>>().await;
    health.set_serving::<CatalogServiceServer<CatalogApi>>().await;
    health.set_serving::<TaskServiceServer<TaskApi>>().await;
    health.set_serving::<SpacesServiceServer<SpacesApi>>().await;
    health.set_serving::<OrganisationServiceServer<OrganisationApi>>().await;
    health.set_serving::<AttributionServiceServer<AttributionApi>>().await;
    health.set_serving::<GapServiceServer<GapApi>>().await;
    health.set_serving::<GatewayRuleServiceServer<GatewayRuleApi>>().await;
    health.set_serving::<HistoryServiceServer<HistoryApi>>().await;
    health.set_serving::<SpendCardServiceServer<SpendCardApi>>().await;
    health.set_serving::<MaturityServiceServer<MaturityApi>>().await;
    health.set_serving::<AgentBillServiceServer<AgentBillApi>>().await;
    health.set_serving::<WorkloadControlServiceServer<WorkloadControlApi>>().await;
    health.set_serving::<InvestigationServiceServer<InvestigationApi>>().await;

    let prices = Arc::new(price_table(config)?);
    let objects = finops_ingest::objects::open(&config.objects).map_err(|e| {
        ServerError::Config(ConfigError::Value { field: "objects", value: e.spec.clone(), reason: e.reason })
    })?;
    // Read models follow the log in the background, in the same database.
    let read_models = finops_projections::ReadModels::open(&config.store)
        .await
        .map_err(|e| ServerError::ReadModels(e.to_string()))?;
    let projections = finops_projections::ProjectionRunner::new(
        store.clone(),
        read_models.clone(),
        finops_projections::governance_projectors(),
    );
    if config.read_models_current_before_serving {
        // On PostgreSQL appends join the global order when sealed; read models fold only that.
        store.seal_committed().await?;
        let through = projections.catch_up().await.map_err(|e| ServerError::ReadModels(e.to_string()))?;
        tracing::info!(through, "read models current");
    }
    let projection_task = projections.spawn(std::time::Duration::from_millis(500));
    // Processes that react to decisions follow the log beside the read models.
    let fan_out_task = finops_processes::ApprovalFanOut::new(
        store.clone(),
        read_models.clone(),
        config.identity_center_instance_arn.clone(),
    )
    .spawn(std::time::Duration::from_millis(500));
    let gap_detector_task = finops_processes::GapDetector::new(
        store.clone(),
        read_models.clone(),
        finops_attribution::AttributionEngine::new(objects.clone(), config.role_patterns.clone()),
    )
    .spawn(std::time::Duration::from_millis(500));
    let card_issuer_task = finops_processes::CardIssuer::new(
        store.clone(),
        read_models.clone(),
        finops_attribution::AttributionEngine::new(objects.clone(), config.role_patterns.clone()),
        config.card_variance_threshold_percent,
    )
    .spawn(std::time::Duration::from_millis(500));
    let investigation_detector_task = finops_processes::InvestigationDetector::new(
        store.clone(),
        read_models.clone(),
        finops_attribution::AttributionEngine::new(objects.clone(), config.role_patterns.clone()),
        config.detectors,
    )
    .spawn(std::time::Duration::from_millis(500));
    let threshold_watcher_task = finops_processes::ThresholdWatcher::new(
        store.clone(),
        read_models.clone(),
        finops_attribution::AttributionEngine::new(objects.clone(), config.role_patterns.clone()),
    )
    .spawn(std::time::Duration::from_millis(500));
    // Crossings wait in the log until endpoints are configured: the outbox runs with some.
    let webhook_outbox_task = (!config.webhooks.is_empty()).then(|| {
        finops_processes::WebhookOutbox::new(store.clone(), read_models.clone(), config.webhooks.clone())
            .spawn(std::time::Duration::from_millis(500))
    });
    // The kill switch's enforcer runs only when it is automatic (and has credentials).
    let (enforcement, enforcer_task) = match &config.kill_switch {
        KillSwitchMode::Manual => (finops_domain::kill_switch::Enforcement::Manual, None),
        KillSwitchMode::Automatic { iam_endpoint, role_template, sts_endpoint } => {
            let invalid = |reason: String| {
                ServerError::Config(ConfigError::Value { field: "kill_switch", value: "automatic".into(), reason })
            };
            let credentials = config.aws_credentials.clone().ok_or_else(|| {
                invalid("needs AWS credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) to call IAM".into())
            })?;
            let mut iam = finops_aws::IamClient::new(iam_endpoint, credentials).map_err(invalid)?;
            if let Some(template) = role_template {
                iam = iam.assuming(sts_endpoint, template).map_err(invalid)?;
            }
            let task = finops_processes::Enforcer::new(store.clone(), read_models.clone(), iam)
                .spawn(std::time::Duration::from_millis(500));
            (finops_domain::kill_switch::Enforcement::Automatic, Some(task))
        }
    };

    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(finops_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            // So that grpcurl and other reflective clients can print error details.
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1().map_err(|e| ServerError::Reflection(e.to_string()))?;
    let reflection_v1alpha = reflection().build_v1alpha().map_err(|e| ServerError::Reflection(e.to_string()))?;

    let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    tracing::info!(%address, backend = %store.backend(), "FinOps Center is serving gRPC");

    // Shutdown: health flips to NOT_SERVING, the listener closes, in-flight calls drain.
    // A client that never lets go of its connection must not keep the process alive:
    // after DRAIN_GRACE the remaining connections are dropped.
    let (draining_tx, draining_rx) = tokio::sync::oneshot::channel::<()>();
    let drain = {
        let health = health.clone();
        async move {
            shutdown.await;
            tracing::info!("shutting down: refusing new calls, draining in-flight ones");
            health.set_not_serving::<EventLogServiceServer<EventLogApi>>().await;
            health.set_not_serving::<BusinessRequestServiceServer<BusinessRequestApi>>().await;
            health.set_not_serving::<CatalogServiceServer<CatalogApi>>().await;
            health.set_not_serving::<TaskServiceServer<TaskApi>>().await;
            health.set_not_serving::<SpacesServiceServer<SpacesApi>>().await;
            health.set_not_serving::<OrganisationServiceServer<OrganisationApi>>().await;
            health.set_not_serving::<AttributionServiceServer<AttributionApi>>().await;
            health.set_not_serving::<GapServiceServer<GapApi>>().await;
            health.set_not_serving::<GatewayRuleServiceServer<GatewayRuleApi>>().await;
            health.set_not_serving::<HistoryServiceServer<HistoryApi>>().await;
            health.set_not_serving::<SpendCardServiceServer<SpendCardApi>>().await;
            health.set_not_serving::<MaturityServiceServer<MaturityApi>>().await;
            health.set_not_serving::<AgentBillServiceServer<AgentBillApi>>().await;
            health.set_not_serving::<WorkloadControlServiceServer<WorkloadControlApi>>().await;
            health.set_not_serving::<InvestigationServiceServer<InvestigationApi>>().await;
            let _ = draining_tx.send(());
        }
    };
    // One handler of the organisation's one stream for every service: it folds from the
    // stream's snapshot, and what it has checked or written it trusts (stream_snapshots).
    let organisation = finops_governance::CommandHandler::<finops_domain::org::Organisation>::new(store.clone())
        .with_snapshots(Arc::new(read_models.clone()));
    let requests = BusinessRequestApi::new(
        store.clone(),
        read_models.clone(),
        organisation.clone(),
        auth.clone(),
        prices,
        config.ha_premium_percent,
        config.coding_profile.clone(),
    );
    // Every point-in-time question reads the governance state through one timeline: the
    // log folded once, followed as it grows, with the state kept every thousand events.
    // It starts from the newest snapshot beside the read models (checked against the log
    // in the background) and writes one every `SAVE_EVERY` events.
    let timeline = Arc::new(
        finops_governance::timeline::GovernanceTimeline::new(store.clone())
            .with_snapshots(Arc::new(read_models.clone()), finops_governance::timeline::SAVE_EVERY),
    );
    // Attribution's governance tables of the states asked about; those of "now" are made
    // ready each time the timeline has followed the log, so that a question after an
    // approval does not wait for them (found kept when nothing attribution reads changed).
    let tables = Arc::new(kept_tables::KeptTables::default());
    let timeline_task = tokio::spawn({
        let (timeline, tables) = (timeline.clone(), tables.clone());
        async move {
            loop {
                if let Err(e) = timeline.follow().await {
                    tracing::warn!(error = %e, "governance timeline: following the log failed; retrying");
                } else if let Err(e) = tables.prepare_now(&timeline).await {
                    tracing::warn!(error = %e, "attribution tables of the state now: not prepared; retrying");
                }
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        }
    });
    let gaps = GapApi::new(store.clone(), timeline.clone(), read_models.clone(), organisation.clone(), auth.clone());
    let spaces = SpacesApi::new(
        store.clone(),
        timeline.clone(),
        tables.clone(),
        read_models.clone(),
        organisation.clone(),
        auth.clone(),
        finops_attribution::AttributionEngine::new(objects.clone(), config.role_patterns.clone()),
    );
    let cards = SpendCardApi::new(store.clone(), read_models.clone(), organisation.clone(), auth.clone());
    let attribution = AttributionApi::new(
        timeline.clone(),
        tables.clone(),
        objects.clone(),
        config.role_patterns.clone(),
        auth.clone(),
    );
    let maturity = MaturityApi::new(
        store.clone(),
        timeline.clone(),
        tables,
        finops_attribution::AttributionEngine::new(objects.clone(), config.role_patterns.clone()),
        auth.clone(),
        config.task_sla_business_days,
    );
    let controls =
        WorkloadControlApi::new(store.clone(), timeline.clone(), read_models.clone(), auth.clone(), enforcement);
    let investigations = InvestigationApi::new(store.clone(), read_models.clone(), auth.clone());
    let agent_bill = AgentBillApi::new(
        store.clone(),
        auth.clone(),
        agent_bill_api::AgentBillTools {
            spaces: spaces.clone(),
            attribution: attribution.clone(),
            gaps: gaps.clone(),
            cards: cards.clone(),
            maturity: maturity.clone(),
            controls: controls.clone(),
            investigations: investigations.clone(),
        },
    );
    let latency = Arc::new(metrics::GrpcLatency::default());
    let metrics_task = metrics.map(|listener| {
        if let Ok(address) = listener.local_addr() {
            tracing::info!(%address, "serving Prometheus metrics at /metrics");
        }
        metrics::Metrics::new(store.clone(), read_models.clone(), spaces.clone(), latency.clone()).serve(listener)
    });
    let server = tonic::transport::Server::builder()
        .trace_fn(|request| tracing::info_span!("grpc", path = %request.uri().path()))
        .layer(metrics::LatencyLayer(latency))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(EventLogServiceServer::new(EventLogApi::new(store.clone(), read_models.clone(), auth.clone())))
        .add_service(CurIngestServiceServer::new(cur_ingest_api::CurIngestApi::new(
            store.clone(),
            objects.clone(),
            config.cur_ingest_root.clone(),
            auth.clone(),
        )))
        .add_service(HistoryServiceServer::new(HistoryApi::new(
            store.clone(),
            auth.clone(),
            requests.clone(),
            gaps.clone(),
            spaces.clone(),
            cards.clone(),
        )))
        .add_service(BusinessRequestServiceServer::new(requests))
        .add_service(CatalogServiceServer::new(CatalogApi::new(store.clone(), read_models.clone(), auth.clone())))
        .add_service(TaskServiceServer::new(TaskApi::new(
            store.clone(),
            read_models.clone(),
            auth.clone(),
            config.task_sla_business_days,
        )))
        .add_service(OrganisationServiceServer::new(OrganisationApi::new(
            store.clone(),
            organisation,
            config.role_patterns.clone(),
            auth.clone(),
        )))
        .add_service(AttributionServiceServer::new(attribution))
        .add_service(GapServiceServer::new(gaps))
        .add_service(GatewayRuleServiceServer::new(GatewayRuleApi::new(store.clone(), auth.clone())))
        .add_service(SpendCardServiceServer::new(cards))
        .add_service(MaturityServiceServer::new(maturity))
        .add_service(AgentBillServiceServer::new(agent_bill))
        .add_service(WorkloadControlServiceServer::new(controls))
        .add_service(InvestigationServiceServer::new(investigations))
        .add_service(SpacesServiceServer::new(spaces))
        .serve_with_incoming_shutdown(incoming(listener), drain);
    let grace = async {
        if draining_rx.await.is_ok() {
            tokio::time::sleep(DRAIN_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        served = server => served?,
        _ = grace => tracing::warn!(grace = ?DRAIN_GRACE, "connections still open after the drain grace; closing them"),
    }
    projection_task.abort();
    timeline_task.abort();
    fan_out_task.abort();
    gap_detector_task.abort();
    card_issuer_task.abort();
    investigation_detector_task.abort();
    threshold_watcher_task.abort();
    if let Some(task) = webhook_outbox_task {
        task.abort();
    }
    if let Some(task) = metrics_task {
        task.abort();
    }
    if let Some(task) = enforcer_task {
        task.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

/// Accepted connections with TCP_NODELAY set. Without it a small reply stalls: its
/// trailers leave in a second small write, which Nagle holds back until the client's
/// delayed ACK (about 40 ms) — measured at p50 44 ms for a four-model `ListModels`
/// (BENCHMARKS.md "Small reads").
fn incoming(listener: TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// The shipped price snapshot with every configured offer file applied over it.
pub fn price_table(config: &ServerConfig) -> Result<finops_domain::pricing::PriceTable, ServerError> {
    let mut table = finops_domain::pricing::PriceTable::shipped();
    for path in &config.price_offer_files {
        let fail = |reason: String| ServerError::Prices { path: path.display().to_string(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let prices = finops_domain::pricing::read_offer_file(&text).map_err(|e| fail(e.to_string()))?;
        let applied = table.apply_offer(&prices);
        tracing::info!(path = %path.display(), prices = prices.len(), applied, "price offer file applied");
    }
    Ok(table)
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn termination_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
