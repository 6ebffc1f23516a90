//! # Processes that follow the log
//!
//! A decision often calls for reactions: an approval calls for the Cloud Engineer's tasks
//! and for its generated role to be reserved for its workload. Doing them in the API after
//! the decision is fragile — a crash between the two leaves the decision without its
//! reactions, forever. Here each reaction is a *process* that follows the log:
//!
//! - it reads the global order after its own checkpoint (kept in the read-model database,
//!   `process_checkpoints`), reacts to the events it cares about, then moves its
//!   checkpoint;
//! - the commands it issues carry ids derived from the event they react to (UUID v5 of
//!   that event's id and a purpose), so a crash after some of them and a re-run appends
//!   nothing twice — the log recognises the ids — and the checkpoint only ever moves past
//!   events whose reactions are all stored;
//! - every event it writes names its cause (`causation_id`: the event reacted to), keeps
//!   the decision's correlation id, and is recorded on behalf of the person who decided.
//!
//! A process never decides anything a person should: it carries out what a decision
//! already implies. It must never skip an event it cannot handle silently: a failing
//! reaction stops the round (and is retried) rather than moving the checkpoint past it.

mod approval;
mod backlog;
pub mod cards;
pub mod enforcement;
pub mod gaps;
pub mod investigations;
pub mod webhooks;

pub use approval::{ApprovalFanOut, fan_out};
pub use cards::CardIssuer;
pub use enforcement::Enforcer;
pub use gaps::GapDetector;
pub use investigations::InvestigationDetector;
pub use webhooks::{ThresholdWatcher, WebhookEndpoint, WebhookOutbox};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use finops_eventlog::EventStore;

/// Why a round of a process failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// A command it issued failed.
    #[error(transparent)]
    Command(#[from] finops_governance::GovernanceError),
    /// The log could not be read.
    #[error(transparent)]
    Log(#[from] finops_eventlog::EventLogError),
    /// The checkpoint could not be read or moved.
    #[error(transparent)]
    Checkpoint(#[from] finops_projections::ReadModelError),
    /// Attribution could not answer (the gap detector's question).
    #[error("attribution: {0}")]
    Attribution(String),
}

/// Is `event` a CUR batch landing (`CurBatchIngested` in a billing period's stream)?
pub(crate) fn is_cur_batch(event: &finops_eventlog::RecordedEvent) -> bool {
    event.event_type == "CurBatchIngested"
        && event.stream_id.as_str().starts_with(finops_governance::streams::CUR_PERIOD)
}

/// Is `event` an invocation-log file landing (`InvocationLogIngested` in a day's stream)?
pub(crate) fn is_log_file(event: &finops_eventlog::RecordedEvent) -> bool {
    event.event_type == "InvocationLogIngested"
        && event.stream_id.as_str().starts_with(finops_governance::streams::INVOCATION_LOGS)
}

/// Shows `on_batch` every CUR batch after the checkpoint of process `name`, and `on_logs`
/// the invocation-log files of each page together (a follower records many at a time;
/// their hours are read together), a page at a time, moving the checkpoint past a page
/// once every reaction in it is stored; returns the sum of what the reactions returned.
pub(crate) async fn each_landing<B, L>(
    store: &Arc<dyn EventStore>,
    checkpoints: &finops_projections::ReadModels,
    name: &str,
    mut on_batch: impl FnMut(finops_eventlog::RecordedEvent) -> B,
    mut on_logs: impl FnMut(Vec<finops_eventlog::RecordedEvent>) -> L,
) -> Result<u64, ProcessError>
where
    B: std::future::Future<Output = Result<u64, ProcessError>>,
    L: std::future::Future<Output = Result<u64, ProcessError>>,
{
    let mut total = 0;
    loop {
        let from = checkpoints.process_checkpoint(name).await?;
        let page =
            store.read_all(finops_eventlog::AllRead::forwards_after(finops_eventlog::Position(from), 500)).await?;
        let Some(to) = page.last().and_then(|e| e.position) else { return Ok(total) };
        for batch in page.iter().filter(|e| is_cur_batch(e)) {
            total += on_batch(batch.clone()).await?;
        }
        let logs: Vec<_> = page.iter().filter(|e| is_log_file(e)).cloned().collect();
        if !logs.is_empty() {
            total += on_logs(logs).await?;
        }
        checkpoints.advance_process(name, from, to.0).await?;
    }
}

/// Follows the head with `round` until the returned handle is aborted; failures are
/// logged, counted and retried after `poll`.
pub(crate) fn follow<F, Fut>(
    store: Arc<dyn EventStore>,
    name: &'static str,
    poll: Duration,
    failures: Arc<AtomicU64>,
    round: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<u64, ProcessError>> + Send + 'static,
{
    tokio::spawn(async move {
        let mut signal = store.head_signal();
        loop {
            // Each round on its own task: a panic fails the round (counted, retried), it
            // does not end the process for the life of the server.
            match tokio::spawn(round()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(process = name, error = %e, "process round failed; retrying");
                }
                Err(e) => {
                    failures.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(process = name, error = %e, "process round panicked; retrying");
                }
            }
            tokio::select! {
                changed = signal.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(poll) => {},
            }
        }
    })
}
