//! Tracing for FinOps Center binaries.
//!
//! Logs go to standard error, filtered by `FINOPS_LOG` (or `RUST_LOG`), by default at the
//! level each binary names (`info` for the server; `warn` for `finops-replay`, whose
//! reports go to standard output and whose operators want only what went wrong).
//! Spans are also exported over OTLP/gRPC when an endpoint is given (flag, or the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT`); without one, nothing is exported and nothing waits on
//! a collector at shutdown.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built for the endpoint.
    #[error("cannot export traces to OTLP endpoint `{endpoint}`: {reason}")]
    Exporter {
        /// The configured endpoint.
        endpoint: String,
        /// What went wrong.
        reason: String,
    },
    /// A global subscriber was already installed.
    #[error("tracing was already initialised: {0}")]
    AlreadyInitialised(String),
}

/// Keeps the exporter alive; dropping it flushes and stops span export.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(Err(e)) = self.provider.take().map(|p| p.shutdown()) {
            eprintln!("warning: flushing spans at shutdown failed: {e}");
        }
    }
}

/// Installs the global subscriber for `service_name`. Call once, inside a tokio runtime
/// when `otlp_endpoint` is set (the exporter runs on it).
pub fn init(
    service_name: &'static str,
    otlp_endpoint: Option<&str>,
    default_level: &str,
) -> Result<Telemetry, TelemetryError> {
    let filter = EnvFilter::try_from_env("FINOPS_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new(default_level));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let endpoint = otlp_endpoint
        .map(str::to_owned)
        .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok())
        .filter(|e| !e.trim().is_empty());

    let Some(endpoint) = endpoint else {
        tracing_subscriber::registry()
            .with(filter)
            .with(fmt)
            .try_init()
            .map_err(|e| TelemetryError::AlreadyInitialised(e.to_string()))?;
        return Ok(Telemetry { provider: None });
    };

    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint.clone())
        .build()
        .map_err(|e| TelemetryError::Exporter { endpoint: endpoint.clone(), reason: e.to_string() })?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service_name).build())
        .build();
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer(service_name));
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .map_err(|e| TelemetryError::AlreadyInitialised(e.to_string()))?;
    tracing::info!(%endpoint, "exporting spans over OTLP");
    Ok(Telemetry { provider: Some(provider) })
}
