//! Threshold alerts and their webhooks (issue 13.6).
//!
//! [`ThresholdWatcher`] follows the log: on every CUR batch of the newest month it reads
//! each workload's month to date and monthly estimate (the same `daily_cents` and forecast
//! the cards and `GetWorkload` read) and records each threshold crossed, once per month
//! ([`finops_domain::alerts`]); on invocation-log files it adds the logs' priced estimate
//! of the days after CUR's last one, so a crossing is known before CUR shows it.
//!
//! [`WebhookOutbox`] follows the log too: every crossing is POSTed to every configured
//! endpoint as a Standard Webhooks message — `webhook-id` (stable: the crossing's),
//! `webhook-timestamp` (the attempt's), `webhook-signature` (`v1,` + base64 HMAC-SHA256 of
//! `{id}.{timestamp}.{body}` with the endpoint's `whsec_` secret) — and each attempt is
//! recorded with its result. A failure is retried with backoff (5 s, 5 min, 30 min, 2 h,
//! 5 h, 10 h, 14 h, 20 h, 24 h, as the standard suggests); a `410 Gone` stops delivery to
//! that endpoint. Delivery is at least once: a crash between the POST and its record
//! repeats the POST with the same id, which the receiver deduplicates.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use base64::Engine as _;
use chrono::{NaiveDate, Utc};
use finops_attribution::hours::charged;
use finops_attribution::invocation_usage::{micro_usd_cents, usage_locations};
use finops_attribution::{AttributionEngine, GovernanceView, Visibility};
use finops_domain::Aggregate;
use finops_domain::alerts::{AlertCommand, AlertEvent, Crossing, ThresholdAlerts, alerts_id, thresholds_reached};
use finops_domain::cur_batches::billing_period_start;
use finops_domain::governance_state::GovernanceState;
use finops_domain::spend_cards::forecast::Forecast;
use finops_eventlog::{EventStore, RecordedEvent, StreamId};
use finops_governance::state::StateFold;
use finops_governance::{CommandContext, CommandHandler, GovernanceError, decode, streams};
use finops_projections::ReadModels;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::ProcessError;
use crate::backlog::Backlog;

/// Who the watcher and the outbox record as.
pub const ACTOR: &str = "threshold-alerts";

/// How long one delivery may take.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(15);

/// Times a delivery's record is decided again after a concurrent append to its stream
/// (the watcher records at most three crossings a month per stream).
const RECORD_CONFLICT_RETRIES: u32 = 8;

/// The waits after each failed attempt (Standard Webhooks' suggested schedule, after the
/// immediate first attempt); after the last, delivery to that endpoint stops.
pub const RETRY_SCHEDULE: [Duration; 9] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(14 * 3600),
    Duration::from_secs(20 * 3600),
    Duration::from_secs(24 * 3600),
];

/// An endpoint that receives the alerts.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    /// Where to POST.
    pub url: String,
    /// The signing key (the bytes after `whsec_`, base64-decoded).
    pub key: Vec<u8>,
}

impl std::fmt::Debug for WebhookEndpoint {
    // The key never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookEndpoint").field("url", &self.url).finish_non_exhaustive()
    }
}

impl WebhookEndpoint {
    /// An endpoint at `url` signing with `secret` (`whsec_` + base64 of 24–64 bytes), or
    /// why either is unusable.
    pub fn new(url: &str, secret: &str) -> Result<Self, String> {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(format!("`{url}` is not an http(s) URL"));
        }
        let encoded = secret.strip_prefix("whsec_").ok_or("the secret must start with `whsec_`")?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| format!("the secret after `whsec_` is not base64: {e}"))?;
        if !(24..=64).contains(&key.len()) {
            return Err(format!("the secret is {} bytes; use 24 to 64 random bytes", key.len()));
        }
        Ok(Self { url: url.to_owned(), key })
    }
}

/// The `webhook-signature` of a message: `v1,` and the base64 HMAC-SHA256 of
/// `{id}.{timestamp}.{body}`.
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

/// Records thresholds crossed as CUR lands.
#[derive(Clone)]
pub struct ThresholdWatcher {
    store: Arc<dyn EventStore>,
    checkpoints: ReadModels,
    engine: AttributionEngine,
    failures: Arc<AtomicU64>,
    /// The governance state its rounds have folded so far, shared by its clones.
    fold: Arc<tokio::sync::Mutex<StateFold>>,
}

impl ThresholdWatcher {
    /// The checkpoint's key.
    pub const NAME: &'static str = "threshold_watcher";

    /// A watcher over `store`.
    pub fn new(store: Arc<dyn EventStore>, checkpoints: ReadModels, engine: AttributionEngine) -> Self {
        Self { store, checkpoints, engine, failures: Arc::new(AtomicU64::new(0)), fold: Default::default() }
    }

    /// Handles every sealed event after the checkpoint; returns the crossings recorded.
    pub async fn run_once(&self) -> Result<u64, ProcessError> {
        crate::each_landing(
            &self.store,
            &self.checkpoints,
            Self::NAME,
            |batch| {
                let this = self.clone();
                async move { watch_batch(&this.store, &this.engine, &mut *this.fold.lock().await, &batch).await }
            },
            |logs| {
                let this = self.clone();
                async move {
                    match logs.last() {
                        Some(last) => watch_logs(&this.store, &this.engine, &mut *this.fold.lock().await, last).await,
                        None => Ok(0),
                    }
                }
            },
        )
        .await
    }

    /// Follows the head until the handle is aborted.
    pub fn spawn(self, poll: Duration) -> tokio::task::JoinHandle<()> {
        let (store, failures) = (self.store.clone(), self.failures.clone());
        crate::follow(store, Self::NAME, poll, failures, move || {
            let this = self.clone();
            async move { this.run_once().await }
        })
    }
}

/// Records what `batch` (a `CurBatchIngested`) crosses, as the log stood at it: only for
/// the newest month with CUR (a restatement of an older month alerts nobody).
pub async fn watch_batch(
    store: &Arc<dyn EventStore>,
    engine: &AttributionEngine,
    fold: &mut StateFold,
    batch: &RecordedEvent,
) -> Result<u64, ProcessError> {
    let Some(through) = batch.position else { return Ok(0) };
    let Some(period) = batch.stream_id.as_str().strip_prefix(streams::CUR_PERIOD) else { return Ok(0) };
    let state = fold.through(store.as_ref(), through).await?;
    if state.cur_periods.keys().next_back().map(String::as_str) != Some(period) {
        return Ok(0);
    }
    let Some((covered, forecasts)) = newest_month(engine, state, period).await? else { return Ok(0) };
    let month: BTreeMap<Uuid, (i64, i64)> =
        forecasts.iter().map(|(id, f)| (*id, (f.month_to_date_cents, f.estimate_cents))).collect();
    record_crossings(store, batch, state, period, covered, &month).await
}

/// Records what the invocation logs add beyond CUR's last day crosses, as the log stood at
/// `logs` (the last `InvocationLogIngested` of a page): the newest month with CUR, its month
/// to date through CUR's last day plus the logs' priced estimate of every later day of the
/// month (callers charged by their role's claim), each workload against its estimate.
pub async fn watch_logs(
    store: &Arc<dyn EventStore>,
    engine: &AttributionEngine,
    fold: &mut StateFold,
    logs: &RecordedEvent,
) -> Result<u64, ProcessError> {
    let attribution = |e: finops_attribution::AttributionError| ProcessError::Attribution(e.to_string());
    let Some(through) = logs.position else { return Ok(0) };
    let state = fold.through(store.as_ref(), through).await?;
    let Some(period) = state.cur_periods.keys().next_back() else { return Ok(0) };
    let Some((covered, forecasts)) = newest_month(engine, state, period).await? else { return Ok(0) };
    // The logs' hours after CUR's last day, within the month.
    let since = (covered + chrono::Days::new(1)).and_time(chrono::NaiveTime::MIN).and_utc();
    let Some(until) = billing_period_start(period).and_then(|start| start.checked_add_months(chrono::Months::new(1)))
    else {
        return Ok(0);
    };
    let until = until.and_time(chrono::NaiveTime::MIN).and_utc();
    let locations = usage_locations(state, None, since, Some(until));
    if locations.is_empty() {
        return Ok(0);
    }
    let beyond = engine.log_hours(&locations, since, Some(until)).await.map_err(attribution)?;
    let Some(last_day) = beyond.iter().map(|u| u.hour.date_naive()).max() else { return Ok(0) };
    let mut logged: BTreeMap<Uuid, u64> = BTreeMap::new();
    for hour in charged(state, &beyond) {
        if let Some(id) = hour.workload_id {
            *logged.entry(id).or_default() += hour.micro_usd;
        }
    }
    let month: BTreeMap<Uuid, (i64, i64)> = forecasts
        .iter()
        .map(|(id, f)| {
            let extra = logged.get(id).copied().map_or(0, micro_usd_cents);
            (*id, (f.month_to_date_cents + extra, f.estimate_cents))
        })
        .collect();
    record_crossings(store, logs, state, period, last_day, &month).await
}

/// Every workload's month of `period` from its current CUR batch, through the last day CUR
/// covers (`month_forecasts`); `None` without a batch, a covered day, or in an earlier
/// columnar layout (skipped with a warning).
async fn newest_month(
    engine: &AttributionEngine,
    state: &GovernanceState,
    period: &str,
) -> Result<Option<(NaiveDate, BTreeMap<Uuid, Forecast>)>, ProcessError> {
    let attribution = |e: finops_attribution::AttributionError| ProcessError::Attribution(e.to_string());
    let Some((cur, _)) = state.cur_periods.get(period).and_then(|p| p.batches.last()) else { return Ok(None) };
    let question = match engine.question(GovernanceView::from(state), cur, Visibility::Everything).await {
        Ok(q) => q,
        Err(e @ finops_attribution::AttributionError::Outdated { .. }) => {
            tracing::warn!(%period, error = %e, "period skipped by the threshold watcher");
            return Ok(None);
        }
        Err(e) => return Err(attribution(e)),
    };
    finops_attribution::cards::month_forecasts(&question, state).await.map_err(attribution)
}

/// Records each workload's thresholds reached by its month to date (`month`: workload →
/// month to date and estimate, in cents, through `through`) that its month has not recorded
/// yet, on behalf of the watcher, with ids derived from `cause`.
async fn record_crossings(
    store: &Arc<dyn EventStore>,
    cause: &RecordedEvent,
    state: &GovernanceState,
    period: &str,
    through: NaiveDate,
    month: &BTreeMap<Uuid, (i64, i64)>,
) -> Result<u64, ProcessError> {
    let handler = CommandHandler::<ThresholdAlerts>::new(store.clone());
    let mut crossed = 0;
    for workload in state.workloads() {
        let Some(&(month_to_date_cents, estimate_cents)) = month.get(&workload.workload_id) else { continue };
        for threshold in thresholds_reached(month_to_date_cents, estimate_cents) {
            let crossing = Crossing {
                workload_id: workload.workload_id,
                workload: workload.name.clone(),
                owner: workload.owner.clone(),
                period: period.to_owned(),
                threshold_percent: threshold,
                month_to_date_cents,
                estimate_cents,
                through,
            };
            let stream = streams::threshold_alerts(alerts_id(workload.workload_id, period));
            let context = CommandContext {
                actor_id: ACTOR.to_owned(),
                actor_role: "process".to_owned(),
                request_id: Uuid::new_v5(&cause.event_id, format!("{stream} {threshold}").as_bytes()),
                rationale: None,
                correlation_id: cause.metadata.correlation_id,
                causation_id: Some(cause.event_id),
                fingerprint: None,
            };
            let before = handler.load(&stream).await?.version;
            let after = handler
                .execute(&stream, &AlertCommand::Cross { crossing, at: cause.metadata.recorded_at }, &context)
                .await?
                .version;
            crossed += u64::from(after > before);
        }
    }
    Ok(crossed)
}

/// Delivers every crossing to every endpoint, recording each attempt.
#[derive(Clone)]
pub struct WebhookOutbox {
    store: Arc<dyn EventStore>,
    endpoints: Arc<Vec<WebhookEndpoint>>,
    http: reqwest::Client,
    backlog: Arc<Backlog>,
    failures: Arc<AtomicU64>,
}

impl WebhookOutbox {
    /// The checkpoint's key.
    pub const NAME: &'static str = "webhook_outbox";

    /// An outbox over `store` delivering to `endpoints`.
    pub fn new(store: Arc<dyn EventStore>, checkpoints: ReadModels, endpoints: Vec<WebhookEndpoint>) -> Self {
        let http = reqwest::Client::builder().timeout(DELIVERY_TIMEOUT).build().expect("an HTTP client");
        let backlog = Arc::new(Backlog::new(Self::NAME, store.clone(), checkpoints));
        Self { store, endpoints: Arc::new(endpoints), http, backlog, failures: Arc::new(AtomicU64::new(0)) }
    }

    /// Reads new crossings and attempts every delivery that is due; returns the attempts.
    pub async fn run_once(&self) -> Result<u64, ProcessError> {
        let (checkpoint, owed) = self
            .backlog
            .owed(|event| {
                (event.event_type == "EstimateThresholdCrossed"
                    && event.stream_id.as_str().starts_with(streams::THRESHOLD_ALERTS))
                .then(|| event.stream_id.to_string())
            })
            .await?;
        let mut attempts = 0;
        for stream in owed {
            let stream = StreamId::new(stream).expect("read from the log");
            let (settled, made) = self.deliver_due(&stream).await?;
            attempts += made;
            if settled {
                self.backlog.settle(stream.as_str());
            }
        }
        self.backlog.advance(checkpoint).await?;
        Ok(attempts)
    }

    /// Follows the head until the handle is aborted; also wakes every `poll` for retries.
    pub fn spawn(self, poll: Duration) -> tokio::task::JoinHandle<()> {
        let (store, failures) = (self.store.clone(), self.failures.clone());
        crate::follow(store, Self::NAME, poll, failures, move || {
            let this = self.clone();
            async move { this.run_once().await }
        })
    }

    /// `(settled, attempts made)` for one month of one workload's crossings.
    async fn deliver_due(&self, stream: &StreamId) -> Result<(bool, u64), ProcessError> {
        let handler = CommandHandler::<ThresholdAlerts>::new(self.store.clone());
        // One read, folded here: the state and the events it came from are the same ones,
        // whatever the watcher appends meanwhile (a second load could hold a crossing the
        // first read had not seen).
        let recorded = self.store.read_stream(stream, finops_eventlog::StreamRead::all()).await?;
        let events =
            recorded.iter().map(|e| Ok((e, decode::<AlertEvent>(e)?))).collect::<Result<Vec<_>, ProcessError>>()?;
        let alerts = events.iter().fold(ThresholdAlerts::default(), |state, (_, event)| state.evolve(event));
        let mut settled = true;
        let mut made = 0;
        for (crossing, webhook_id, recorded_at) in alerts.crossed.values() {
            let (cause, _) = events
                .iter()
                .find(
                    |(_, e)| matches!(e, AlertEvent::EstimateThresholdCrossed { webhook_id: w, .. } if w == webhook_id),
                )
                .expect("a crossing is folded from its event");
            for endpoint in self.endpoints.iter() {
                let key = (webhook_id.clone(), endpoint.url.clone());
                if alerts.delivered.contains(&key) {
                    continue;
                }
                let (done, last) = alerts.attempts.get(&key).map_or((0, None), |(n, at)| (*n, Some(*at)));
                let gone = events.iter().any(|(_, e)| {
                    matches!(e, AlertEvent::WebhookDeliveryAttempted { webhook_id: w, endpoint: u, detail, .. }
                        if w == webhook_id && *u == endpoint.url && detail.starts_with("HTTP 410"))
                });
                if gone || done as usize > RETRY_SCHEDULE.len() {
                    continue; // Given up on: the attempts say why.
                }
                settled = false;
                if let Some(last) = last {
                    let wait = RETRY_SCHEDULE[(done as usize - 1).min(RETRY_SCHEDULE.len() - 1)];
                    if Utc::now() < last + chrono::Duration::from_std(wait).expect("small") {
                        continue;
                    }
                }
                let (delivered, detail) = self.post(endpoint, webhook_id, &crossing.webhook_body(*recorded_at)).await;
                let context = CommandContext {
                    actor_id: ACTOR.to_owned(),
                    actor_role: "process".to_owned(),
                    request_id: Uuid::new_v5(&cause.event_id, format!("{} {}", endpoint.url, done + 1).as_bytes()),
                    rationale: None,
                    correlation_id: cause.metadata.correlation_id,
                    causation_id: Some(cause.event_id),
                    fingerprint: None,
                };
                let command = AlertCommand::RecordDelivery {
                    webhook_id: webhook_id.clone(),
                    endpoint: endpoint.url.clone(),
                    attempt: done + 1,
                    delivered,
                    detail,
                    at: Utc::now(),
                };
                // The watcher may record the next crossing in this stream while the POST is in
                // flight: decide the record again on the stream as it now stands (it depends on
                // nothing the watcher writes), never drop it — a lost record would post the
                // message again as a first attempt and leave the trail one attempt short.
                let mut conflicts = 0;
                loop {
                    match handler.execute(stream, &command, &context).await {
                        Err(GovernanceError::Conflict { .. }) if conflicts < RECORD_CONFLICT_RETRIES => conflicts += 1,
                        recorded => break recorded.map(drop)?,
                    }
                }
                made += 1;
            }
        }
        Ok((settled, made))
    }

    /// One POST: `(delivered, what came of it)`.
    async fn post(&self, endpoint: &WebhookEndpoint, id: &str, body: &str) -> (bool, String) {
        let timestamp = Utc::now().timestamp();
        let sent = self
            .http
            .post(&endpoint.url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature(&endpoint.key, id, timestamp, body))
            .body(body.to_owned())
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => (true, format!("HTTP {}", response.status().as_u16())),
            Ok(response) => {
                tracing::warn!(url = %endpoint.url, status = %response.status(), "webhook refused; retried later");
                (false, format!("HTTP {}", response.status().as_u16()))
            }
            Err(e) => {
                tracing::warn!(url = %endpoint.url, error = %e, "webhook not delivered; retried later");
                (false, format!("not delivered: {e}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks specification's own example (NEAR-REAL-TIME.md §3.1).
    #[test]
    fn signs_the_standards_example_exactly() {
        let endpoint =
            WebhookEndpoint::new("https://example.com/hook", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let body = r#"{"email":"test@example.com","username":"test_user"}"#;
        assert_eq!(
            signature(&endpoint.key, "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1_649_367_553, body),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
        assert!(!format!("{endpoint:?}").contains("C2FV"), "the key is not printed");
    }

    #[test]
    fn a_bad_endpoint_or_secret_is_named() {
        assert!(
            WebhookEndpoint::new("ftp://x", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap_err().contains("http")
        );
        assert!(WebhookEndpoint::new("https://x", "C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap_err().contains("whsec_"));
        assert!(WebhookEndpoint::new("https://x", "whsec_c2hvcnQ=").unwrap_err().contains("24 to 64"));
    }
}
