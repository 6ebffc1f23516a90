//! Prometheus metrics on their own port, off by default (issue 13.7; NEAR-REAL-TIME.md §4):
//! `GET /metrics` in the text format 0.0.4. Names carry the `finops_` prefix and their
//! unit; labels are bounded — gap kinds, signals, projections, gRPC methods of this
//! service and workload names — never principals or ARNs.
//!
//! Everything but the gRPC latencies is read at scrape time from the read models (so a
//! scrape shows what the service shows); the estimate remaining per workload asks the
//! forecast, which reads attribution, so it is cached for [`FORECAST_TTL`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use finops_eventlog::EventStore;
use finops_projections::{
    CurBatchesView, GapLifecycle, InvestigationsView, LogFilesView, ReadModels, WorkloadControlsView, WorkloadsView,
};
use serde_json::Value;
use uuid::Uuid;

use crate::spaces_api::SpacesApi;

/// How long the per-workload estimates are reused between scrapes.
pub const FORECAST_TTL: Duration = Duration::from_secs(300);

/// Upper bounds of the gRPC latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// gRPC handling time per method (until the response's headers, for a server stream).
#[derive(Default)]
pub struct GrpcLatency {
    methods: Mutex<BTreeMap<String, Histogram>>,
}

impl GrpcLatency {
    fn observe(&self, method: String, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let mut methods = self.methods.lock().expect("not poisoned");
        let h = methods.entry(method).or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }
}

/// The method label of a request path: this service's methods by name, anything else
/// `other` (a client cannot grow the label set).
fn method_label(path: &str) -> String {
    let ours = ["/finops.v1.", "/grpc.health.v1.", "/grpc.reflection."];
    if ours.iter().any(|p| path.starts_with(p)) && path.len() < 120 {
        path.trim_start_matches('/').to_owned()
    } else {
        "other".to_owned()
    }
}

/// The tower layer that times every gRPC call into [`GrpcLatency`].
#[derive(Clone)]
pub struct LatencyLayer(pub Arc<GrpcLatency>);

impl<S> tower_layer::Layer<S> for LatencyLayer {
    type Service = Timed<S>;

    fn layer(&self, inner: S) -> Timed<S> {
        Timed { inner, latency: self.0.clone() }
    }
}

/// A service timed by [`LatencyLayer`].
#[derive(Clone)]
pub struct Timed<S> {
    inner: S,
    latency: Arc<GrpcLatency>,
}

impl<S, B> tower_service::Service<http::Request<B>> for Timed<S>
where
    S: tower_service::Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = method_label(request.uri().path());
        let latency = self.latency.clone();
        let start = Instant::now();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let out = answer.await;
            latency.observe(method, start.elapsed());
            out
        })
    }
}

/// What a scrape reads.
#[derive(Clone)]
pub struct Metrics {
    store: Arc<dyn EventStore>,
    read_models: ReadModels,
    spaces: SpacesApi,
    latency: Arc<GrpcLatency>,
    forecasts: Arc<Mutex<Option<Remaining>>>,
}

/// The estimate remaining per workload name (cents), and when it was read.
type Remaining = (Instant, Vec<(String, i64)>);

/// One metric family's lines.
struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn start<'a>(out: &'a mut String, name: &str, kind: &str, help: &str) -> Family<'a> {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Family { out }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
        let labels = if labels.is_empty() { String::new() } else { format!("{{{}}}", labels.join(",")) };
        let _ = writeln!(self.out, "{name}{labels} {value}");
    }
}

/// A label value escaped for the text format (`\\`, `\"`, `\n`).
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn cents_to_dollars(cents: i64) -> f64 {
    cents as f64 / 100.0
}

impl Metrics {
    /// Metrics of the server over `store` and `read_models`; gRPC latencies from `latency`.
    pub fn new(
        store: Arc<dyn EventStore>,
        read_models: ReadModels,
        spaces: SpacesApi,
        latency: Arc<GrpcLatency>,
    ) -> Self {
        Self { store, read_models, spaces, latency, forecasts: Arc::new(Mutex::new(None)) }
    }

    async fn documents(&self, projection: &str) -> Result<Vec<Value>, String> {
        let mut all = Vec::new();
        let mut token = String::new();
        loop {
            let page = self.read_models.list(projection, 1000, &token, |_| true).await.map_err(|e| e.to_string())?;
            all.extend(page.documents);
            if page.next_page_token.is_empty() {
                return Ok(all);
            }
            token = page.next_page_token;
        }
    }

    /// Estimate minus month to date per workload name (cents), for the latest month with
    /// CUR; cached for [`FORECAST_TTL`].
    async fn remaining(&self) -> Result<Vec<(String, i64)>, String> {
        if let Some((at, cached)) = self.forecasts.lock().expect("not poisoned").clone()
            && at.elapsed() < FORECAST_TTL
        {
            return Ok(cached);
        }
        let mut out = Vec::new();
        // One reading of the month for every workload.
        let month = self.spaces.month_forecasts(None).await.map_err(|s| s.message().to_owned())?;
        for doc in self.documents(WorkloadsView::NAME).await? {
            let Ok(id) = Uuid::parse_str(&crate::wire::text(&doc, "workload_id")) else { continue };
            let forecast = month.as_ref().and_then(|m| m.workloads.get(&id));
            if let Some(f) = forecast.filter(|f| f.estimate_cents > 0) {
                out.push((crate::wire::text(&doc, "name"), f.estimate_cents - f.month_to_date_cents));
            }
        }
        out.sort();
        *self.forecasts.lock().expect("not poisoned") = Some((Instant::now(), out.clone()));
        Ok(out)
    }

    /// The exposition text.
    pub async fn render(&self) -> Result<String, String> {
        let mut out = String::new();
        let text = crate::wire::text;

        let mut gaps: BTreeMap<String, (u64, i64)> = BTreeMap::new();
        for doc in self.documents(GapLifecycle::NAME).await? {
            if text(&doc, "status") != "resolved" {
                let entry = gaps.entry(text(&doc, "kind")).or_default();
                entry.0 += 1;
                entry.1 += doc["total_cents"].as_i64().unwrap_or(0);
            }
        }
        let mut f = Family::start(&mut out, "finops_gaps_open", "gauge", "Allocation Gaps not resolved, by kind.");
        for (kind, (n, _)) in &gaps {
            f.sample("finops_gaps_open", &[("kind", kind)], *n as f64);
        }
        let mut f = Family::start(
            &mut out,
            "finops_gap_spend_dollars",
            "gauge",
            "AI spend held in Allocation Gaps not resolved, by kind, in US dollars.",
        );
        for (kind, (_, cents)) in &gaps {
            f.sample("finops_gap_spend_dollars", &[("kind", kind)], cents_to_dollars(*cents));
        }

        let mut open: BTreeMap<String, u64> =
            finops_domain::investigations::Signal::ALL.iter().map(|s| (s.as_str().to_owned(), 0)).collect();
        for doc in self.documents(InvestigationsView::NAME).await? {
            if text(&doc, "status") != "closed" {
                *open.entry(text(&doc, "signal")).or_default() += 1;
            }
        }
        let mut f =
            Family::start(&mut out, "finops_investigations_open", "gauge", "Investigations not closed, by signal.");
        for (signal, n) in &open {
            f.sample("finops_investigations_open", &[("signal", signal)], *n as f64);
        }

        let controls = self.documents(WorkloadControlsView::NAME).await?;
        let suspended = controls
            .iter()
            .filter(|d| matches!(d["status"].as_str(), Some("suspended" | "suspension pending")))
            .count();
        let pending = controls.iter().filter(|d| d["status"].as_str().is_some_and(|s| s.ends_with("pending"))).count();
        Family::start(
            &mut out,
            "finops_workloads_suspended",
            "gauge",
            "Workloads suspended by the kill switch (applied or pending).",
        )
        .sample("finops_workloads_suspended", &[], suspended as f64);
        Family::start(
            &mut out,
            "finops_kill_switch_pending",
            "gauge",
            "Kill-switch decisions whose IAM calls are not all applied.",
        )
        .sample("finops_kill_switch_pending", &[], pending as f64);

        let batches = self.documents(CurBatchesView::NAME).await?;
        let rows: u64 = batches.iter().map(|b| b["rows"].as_u64().unwrap_or(0)).sum();
        let bytes: u64 = batches.iter().map(|b| b["bytes"].as_u64().unwrap_or(0)).sum();
        Family::start(&mut out, "finops_cur_ingested_rows_total", "counter", "CUR rows ingested, every batch counted.")
            .sample("finops_cur_ingested_rows_total", &[], rows as f64);
        Family::start(
            &mut out,
            "finops_cur_ingested_bytes_total",
            "counter",
            "CUR bytes ingested, every batch counted.",
        )
        .sample("finops_cur_ingested_bytes_total", &[], bytes as f64);

        let files = self.documents(LogFilesView::NAME).await?;
        let records: u64 = files.iter().map(|f| f["records"].as_u64().unwrap_or(0)).sum();
        let bytes: u64 = files.iter().map(|f| f["bytes"].as_u64().unwrap_or(0)).sum();
        Family::start(
            &mut out,
            "finops_invocation_log_records_total",
            "counter",
            "Invocation-log records ingested, every file counted once.",
        )
        .sample("finops_invocation_log_records_total", &[], records as f64);
        Family::start(
            &mut out,
            "finops_invocation_log_bytes_total",
            "counter",
            "Invocation-log bytes ingested as delivered, every file counted once.",
        )
        .sample("finops_invocation_log_bytes_total", &[], bytes as f64);

        let head = self.store.head().await.map_err(|e| e.to_string())?.position.0;
        let mut f = Family::start(
            &mut out,
            "finops_projection_lag_events",
            "gauge",
            "Events between the log's head and each read model's checkpoint.",
        );
        for name in finops_projections::ALL {
            let checkpoint = self.read_models.checkpoint(name).await.map_err(|e| e.to_string())?;
            f.sample("finops_projection_lag_events", &[("projection", name)], head.saturating_sub(checkpoint) as f64);
        }

        let remaining = self.remaining().await?;
        let mut f = Family::start(
            &mut out,
            "finops_workload_estimate_remaining_dollars",
            "gauge",
            "Monthly estimate minus month to date for the latest month with CUR, per workload, in US dollars (negative: over).",
        );
        for (workload, cents) in &remaining {
            f.sample("finops_workload_estimate_remaining_dollars", &[("workload", workload)], cents_to_dollars(*cents));
        }

        let methods = self.latency.methods.lock().expect("not poisoned").clone();
        let mut f = Family::start(
            &mut out,
            "finops_grpc_server_handling_seconds",
            "histogram",
            "gRPC calls handled, by method, until the response's headers.",
        );
        for (method, h) in &methods {
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                f.sample(
                    "finops_grpc_server_handling_seconds_bucket",
                    &[("method", method), ("le", &bound.to_string())],
                    n as f64,
                );
            }
            f.sample(
                "finops_grpc_server_handling_seconds_bucket",
                &[("method", method), ("le", "+Inf")],
                h.count as f64,
            );
            f.sample("finops_grpc_server_handling_seconds_sum", &[("method", method)], h.sum);
            f.sample("finops_grpc_server_handling_seconds_count", &[("method", method)], h.count as f64);
        }
        Ok(out)
    }

    /// Serves `GET /metrics` on `listener` until the handle is aborted.
    pub fn serve(self, listener: tokio::net::TcpListener) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let metrics = self.clone();
                tokio::spawn(async move {
                    let handler = hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                        let metrics = metrics.clone();
                        async move { Ok::<_, std::convert::Infallible>(metrics.answer(request.uri().path()).await) }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    if let Err(e) = hyper::server::conn::http1::Builder::new().serve_connection(io, handler).await {
                        tracing::debug!(error = %e, "metrics connection ended");
                    }
                });
            }
        })
    }

    async fn answer(&self, path: &str) -> http::Response<http_body_util::Full<bytes::Bytes>> {
        let (status, content_type, body) = match path {
            "/metrics" => match self.render().await {
                Ok(text) => (http::StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", text),
                Err(e) => (
                    http::StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain; charset=utf-8",
                    format!("metrics unavailable: {e}\n"),
                ),
            },
            _ => (
                http::StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "metrics are served at /metrics\n".to_owned(),
            ),
        };
        let mut response = http::Response::new(http_body_util::Full::new(bytes::Bytes::from(body)));
        *response.status_mut() = status;
        response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_cannot_grow_the_method_labels_and_values_are_escaped() {
        assert_eq!(method_label("/finops.v1.GapService/ListGaps"), "finops.v1.GapService/ListGaps");
        assert_eq!(method_label("/evil.Service/x1"), "other");
        assert_eq!(method_label(&format!("/finops.v1.{}", "x".repeat(200))), "other");
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn a_histogram_counts_every_call_in_each_bucket_at_or_above_it() {
        let latency = GrpcLatency::default();
        latency.observe("m".into(), Duration::from_millis(3));
        latency.observe("m".into(), Duration::from_secs(20));
        let h = latency.methods.lock().unwrap()["m"].clone();
        assert_eq!(h.count, 2);
        assert_eq!(h.counts[0], 0, "3 ms is not under 1 ms");
        assert_eq!(h.counts[2], 1, "3 ms is under 5 ms");
        assert_eq!(h.counts[BUCKETS.len() - 1], 1, "20 s is in +Inf only");
    }
}
