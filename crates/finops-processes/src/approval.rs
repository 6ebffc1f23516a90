//! The approval's fan-out: for every `BusinessRequestApproved`, the Cloud Engineer tasks
//! the approval calls for (DOMAIN.md §3) and the reservation of what it generated (the
//! dedicated role, the Coding permission set, the Claude Platform workspace) for the
//! workload, so that no other workload can claim them (issue 10.6).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use finops_domain::Aggregate;
use finops_domain::org::Organisation;
use finops_domain::request::{BusinessRequest, RequestEvent};
use finops_domain::spaces::{ClaimCommand, ClaimableResource, generated_for};
use finops_domain::tasks::{self, Task, TaskCommand, TaskContext};
use finops_eventlog::{AllRead, EventStore, Position, RecordedEvent, StreamRead};
use finops_governance::{CommandContext, CommandHandler, GovernanceError, decode, streams};
use finops_projections::ReadModels;
use uuid::Uuid;

use crate::ProcessError;

/// Events read per round.
const PAGE: usize = 500;

/// Creates the tasks and reserves the generated resources of every approval.
#[derive(Clone)]
pub struct ApprovalFanOut {
    store: Arc<dyn EventStore>,
    checkpoints: ReadModels,
    identity_center_instance_arn: String,
    failures: Arc<AtomicU64>,
}

impl ApprovalFanOut {
    /// The checkpoint's key.
    pub const NAME: &'static str = "approval_fan_out";

    /// A fan-out over `store`, keeping its checkpoint in `checkpoints`.
    pub fn new(store: Arc<dyn EventStore>, checkpoints: ReadModels, identity_center_instance_arn: String) -> Self {
        Self { store, checkpoints, identity_center_instance_arn, failures: Arc::new(AtomicU64::new(0)) }
    }

    /// How many rounds failed (and were retried) since this process was made.
    pub fn failed_rounds(&self) -> u64 {
        self.failures.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Handles every sealed event after the checkpoint; returns how many approvals it
    /// reacted to.
    pub async fn run_once(&self) -> Result<u64, ProcessError> {
        let mut reacted = 0;
        loop {
            let from = self.checkpoints.process_checkpoint(Self::NAME).await?;
            let page = self.store.read_all(AllRead::forwards_after(Position(from), PAGE)).await?;
            let Some(to) = page.last().and_then(|e| e.position) else { return Ok(reacted) };
            for event in &page {
                if event.event_type == "BusinessRequestApproved"
                    && event.stream_id.as_str().starts_with(streams::BUSINESS_REQUEST)
                {
                    self.react(event).await?;
                    reacted += 1;
                }
            }
            // Another instance may have moved first: then the next read starts from there.
            self.checkpoints.advance_process(Self::NAME, from, to.0).await?;
        }
    }

    /// Follows the head until the handle is aborted.
    pub fn spawn(self, poll: Duration) -> tokio::task::JoinHandle<()> {
        let (store, failures) = (self.store.clone(), self.failures.clone());
        crate::follow(store, Self::NAME, poll, failures, move || {
            let this = self.clone();
            async move { this.run_once().await }
        })
    }

    async fn react(&self, approval: &RecordedEvent) -> Result<(), ProcessError> {
        Ok(fan_out(&self.store, approval, &self.identity_center_instance_arn).await?)
    }
}

/// The reactions to one `BusinessRequestApproved`: its tasks created, its generated
/// resources reserved. Idempotent: every command's id derives from the approval's, so
/// running it again (after a crash, or from the demo seed and then the process) writes
/// nothing new.
pub async fn fan_out(
    store: &Arc<dyn EventStore>,
    approval: &RecordedEvent,
    identity_center_instance_arn: &str,
) -> Result<(), GovernanceError> {
    // The request as it stood right after the approval.
    let recorded = store.read_stream(&approval.stream_id, StreamRead::all()).await?;
    let mut request = BusinessRequest::default();
    for event in recorded.iter().take_while(|e| e.stream_version <= approval.stream_version) {
        request = request.evolve(&decode::<RequestEvent>(event)?);
    }
    let RequestEvent::BusinessRequestApproved { rationale, workload_id, at, .. } = decode(approval)? else {
        return Ok(());
    };
    // Recorded on behalf of the person who approved, caused by the approval.
    let on_behalf = |purpose: String| CommandContext {
        actor_id: approval.metadata.actor_id.clone(),
        actor_role: approval.metadata.actor_role.clone(),
        request_id: Uuid::new_v5(&approval.event_id, purpose.as_bytes()),
        rationale: Some(rationale.clone()),
        correlation_id: approval.metadata.correlation_id,
        causation_id: Some(approval.event_id),
        fingerprint: None,
    };
    let claims = CommandHandler::<ClaimableResource>::new(store.clone());
    let generated = generated_for(&request);
    // Done already when the last reservation took effect: the commands are decided in
    // order, each recorded before the next. One stream read instead of one per command
    // and the organisation's (a process catching up over a long log: ~27 ms an approval).
    if let Some(last) = generated.last() {
        let key = last.key();
        if claims.is_recorded(&streams::claim(&key), &on_behalf(format!("reserve {key}"))).await? {
            return Ok(());
        }
    }
    let org = CommandHandler::<Organisation>::new(store.clone()).load(&streams::organisation()).await?.state;
    let product = org.products.get(&request.product_id);
    let context = TaskContext {
        identity_center_instance_arn: identity_center_instance_arn.to_owned(),
        portfolio: product
            .and_then(|p| org.portfolios.get(&p.portfolio_id))
            .map(|p| p.name.clone())
            .unwrap_or_default(),
        product: product.map(|p| p.name.clone()).unwrap_or_default(),
    };
    // The tasks are generated at the approval (their SLA runs from it), not when a
    // process happened to reach it.
    let tasks = CommandHandler::<Task>::new(store.clone());
    for plan in tasks::plan_tasks(&request, &rationale, &context) {
        let stream = streams::task(plan.task_id);
        let purpose = format!("task {}", plan.task_id);
        tasks.execute(&stream, &TaskCommand::Create { plan, at }, &on_behalf(purpose)).await?;
    }
    for resource in generated {
        let key = resource.key();
        let command = ClaimCommand::Reserve { resource, workload_id, at };
        match claims.execute(&streams::claim(&key), &command, &on_behalf(format!("reserve {key}"))).await {
            Ok(_) => {}
            // Reserved for another workload already (a name generated twice): the
            // first reservation stands; this is for the FinOps Lead to see, not to retry.
            Err(GovernanceError::Refused(e)) => {
                tracing::warn!(%key, workload = %workload_id, error = %e, "generated resource not reserved");
            }
            Err(e) => return Err(e),
        }
    }
    tracing::info!(request = %approval.stream_id, workload = %workload_id, "approval fanned out");
    Ok(())
}
