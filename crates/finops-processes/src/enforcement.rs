//! The kill switch's enforcer (issue 13.4): carries out the AWS calls of every suspend and
//! resume decided for automatic enforcement, and records each attempt — every call's
//! result — on the workload's control stream. A failed attempt leaves the workload
//! visibly pending with AWS's error and is retried with backoff (5 s, 30 s, 2 min, then
//! every 10 min) until it succeeds or a later decision overtakes it.
//!
//! Crash safety: an attempt's event id derives from the decision's event id and the
//! attempt's number, and IAM's calls are idempotent, so a crash between the calls and the
//! record re-runs the calls and records the attempt once. The checkpoint never passes a
//! decision still pending: after a restart it is read again and retried.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use chrono::Utc;
use finops_aws::IamClient;
use finops_domain::kill_switch::{ControlCommand, ControlDecision, WorkloadControl};
use finops_eventlog::{EventStore, StreamId, StreamRead};
use finops_governance::{CommandContext, CommandHandler, streams};
use finops_projections::ReadModels;
use uuid::Uuid;

use crate::ProcessError;
use crate::backlog::Backlog;

/// The wait before attempt `n + 1` after `n` failed ones.
pub fn backoff(failed_attempts: usize) -> Duration {
    match failed_attempts {
        0 => Duration::ZERO,
        1 => Duration::from_secs(5),
        2 => Duration::from_secs(30),
        3 => Duration::from_secs(120),
        _ => Duration::from_secs(600),
    }
}

/// Carries out automatic kill-switch decisions through IAM.
#[derive(Clone)]
pub struct Enforcer {
    store: Arc<dyn EventStore>,
    iam: IamClient,
    backlog: Arc<Backlog>,
    failures: Arc<AtomicU64>,
}

impl Enforcer {
    /// The checkpoint's key.
    pub const NAME: &'static str = "kill_switch_enforcer";

    /// An enforcer over `store` sending through `iam`.
    pub fn new(store: Arc<dyn EventStore>, checkpoints: ReadModels, iam: IamClient) -> Self {
        let backlog = Arc::new(Backlog::new(Self::NAME, store.clone(), checkpoints));
        Self { store, iam, backlog, failures: Arc::new(AtomicU64::new(0)) }
    }

    /// Reads what was decided since the last round and attempts every pending decision
    /// that is due; returns how many attempts it recorded.
    pub async fn run_once(&self) -> Result<u64, ProcessError> {
        let (checkpoint, owed) = self
            .backlog
            .owed(|event| {
                let decision = matches!(event.event_type.as_str(), "WorkloadSuspended" | "WorkloadResumed");
                (decision && event.stream_id.as_str().starts_with(streams::KILL_SWITCH))
                    .then(|| event.stream_id.to_string())
            })
            .await?;
        let mut attempts = 0;
        for stream in owed {
            let stream = StreamId::new(stream).expect("read from the log");
            let (settled, attempted) = self.attempt_if_due(&stream).await?;
            attempts += u64::from(attempted);
            if settled {
                self.backlog.settle(stream.as_str());
            }
        }
        // Never past a decision still pending: a restart reads it again.
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

    /// `(settled, attempted)`: whether the stream owes nothing more, and whether an attempt
    /// was made now.
    async fn attempt_if_due(&self, stream: &StreamId) -> Result<(bool, bool), ProcessError> {
        let handler = CommandHandler::<WorkloadControl>::new(self.store.clone());
        let control = handler.load(stream).await?.state;
        let Some(decision) = control.pending().cloned() else { return Ok((true, false)) };
        let failed = decision.attempts.len();
        if let Some((_, _, last)) = decision.attempts.last() {
            let due = *last + chrono::Duration::from_std(backoff(failed)).expect("small");
            if Utc::now() < due {
                return Ok((false, false));
            }
        }
        let mut outcomes = Vec::with_capacity(decision.calls.len());
        for (i, call) in decision.calls.iter().enumerate() {
            outcomes.push(self.iam.apply(i, call).await);
        }
        let context = self.on_behalf(stream, &decision, failed as u32 + 1).await?;
        let command = ControlCommand::RecordAttempt {
            decision: decision.decision,
            attempt: failed as u32 + 1,
            outcomes,
            at: Utc::now(),
        };
        let after = handler.execute(stream, &command, &context).await?.state;
        tracing::info!(%stream, decision = decision.decision, attempt = failed + 1, status = after.status().as_str(), "kill-switch calls attempted");
        Ok((after.pending().is_none(), true))
    }

    /// The attempt is recorded for the person who decided, caused by their decision, with
    /// an id derived from that decision and the attempt's number.
    async fn on_behalf(
        &self,
        stream: &StreamId,
        decision: &ControlDecision,
        attempt: u32,
    ) -> Result<CommandContext, ProcessError> {
        let recorded = self.store.read_stream(stream, StreamRead::all()).await?;
        let cause = recorded
            .iter()
            .find(|e| {
                matches!(e.event_type.as_str(), "WorkloadSuspended" | "WorkloadResumed")
                    && e.payload["decision"].as_u64() == Some(u64::from(decision.decision))
            })
            .expect("a pending decision has its event");
        Ok(CommandContext {
            actor_id: cause.metadata.actor_id.clone(),
            actor_role: cause.metadata.actor_role.clone(),
            request_id: Uuid::new_v5(&cause.event_id, format!("attempt {attempt}").as_bytes()),
            rationale: Some(decision.decider.rationale.clone()),
            correlation_id: cause.metadata.correlation_id,
            causation_id: Some(cause.event_id),
            fingerprint: None,
        })
    }
}
