//! `finops.v1.TaskService`: the Cloud Engineer task queue.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use finops_domain::tasks::{Task, TaskCommand};
use finops_eventlog::EventStore;
use finops_governance::{CommandHandler, Loaded, streams};
use finops_projections::{ReadModels, TaskQueue};
use finops_proto::v1 as pb;
use finops_proto::v1::task_service_server::TaskService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::auth::{Authenticator, Role};
use crate::status::{from_governance, not_found};
use crate::wire::{self, Fields};

/// Who may read the queue, and who may work it.
pub(crate) const READERS: [Role; 4] = [Role::CloudEngineer, Role::FinopsLead, Role::Finance, Role::Auditor];
const WORKERS: [Role; 1] = [Role::CloudEngineer];

/// Serves the task queue.
#[derive(Clone)]
pub struct TaskApi {
    tasks: CommandHandler<Task>,
    store: Arc<dyn EventStore>,
    auth: Arc<Authenticator>,
    read_models: ReadModels,
    sla_business_days: u32,
}

impl TaskApi {
    /// Serves `store`.
    pub fn new(
        store: Arc<dyn EventStore>,
        read_models: ReadModels,
        auth: Arc<Authenticator>,
        sla_business_days: u32,
    ) -> Self {
        Self { tasks: CommandHandler::new(store.clone()), store, auth, read_models, sla_business_days }
    }

    fn name(fields: &mut Fields, name: &str) -> Option<Uuid> {
        match name.strip_prefix("tasks/") {
            Some(id) => wire::uuid(fields, "name", id),
            None => {
                fields.add("name", format!("`{name}` is not a task name (tasks/{{uuid}})"));
                None
            }
        }
    }

    /// Decides `command` on the task and answers with the task after it.
    async fn decide(
        &self,
        id: Uuid,
        command: &TaskCommand,
        context: &finops_governance::CommandContext,
    ) -> Result<Response<pb::Task>, Status> {
        let loaded = self.tasks.execute(&streams::task(id), command, context).await.map_err(from_governance)?;
        Ok(Response::new(to_wire(&loaded, self.sla_business_days, Utc::now())))
    }

    /// The task as of `as_of` (now when `None`), or NOT_FOUND.
    async fn load(&self, id: Uuid, as_of: Option<DateTime<Utc>>) -> Result<Loaded<Task>, Status> {
        let loaded = self.tasks.load_as_of(&streams::task(id), as_of).await.map_err(from_governance)?;
        if loaded.state.plan.is_none() {
            return Err(not_found(format!("tasks/{id}")));
        }
        Ok(loaded)
    }
}

/// The task on the wire; `now` is the instant its overdue flag is judged at.
fn to_wire(loaded: &Loaded<Task>, sla_business_days: u32, now: DateTime<Utc>) -> pb::Task {
    let task = &loaded.state;
    let plan = task.plan.as_ref().expect("loaded tasks have a plan");
    pb::Task {
        name: format!("tasks/{}", plan.task_id),
        kind: serde_json::to_value(plan.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
        business_request: format!("businessRequests/{}", plan.request_id),
        workload_id: plan.workload_id.to_string(),
        depends_on: plan.depends_on.map(|d| format!("tasks/{d}")).unwrap_or_default(),
        approval_rationale: plan.approval_rationale.clone(),
        steps: plan
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| pb::TaskStep {
                title: s.title.clone(),
                instructions: s.instructions.clone(),
                commands: s.commands.iter().map(|c| c.render()).collect(),
                done: i < task.steps_done,
            })
            .collect(),
        steps_done: task.steps_done as u32,
        status: match (task.implemented_at, task.steps_done) {
            (Some(_), _) => "implemented",
            (None, 0) => "open",
            _ => "in_progress",
        }
        .to_owned(),
        overdue: task.is_overdue(now, sla_business_days),
        created_at: task.created_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        implemented_at: task.implemented_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        version: loaded.version,
        implemented_note: task.implemented_note.clone().unwrap_or_default(),
    }
}

/// The wire form of a task-queue document (the same fields as [`to_wire`]).
fn doc_to_wire(doc: &serde_json::Value, sla_business_days: u32, now: DateTime<Utc>) -> pb::Task {
    let steps_done = doc["steps_done"].as_u64().unwrap_or(0) as usize;
    let created = wire::text(doc, "created_at");
    let implemented = wire::text(doc, "implemented_at");
    let overdue = implemented.is_empty()
        && chrono::DateTime::parse_from_rfc3339(&created)
            .is_ok_and(|c| now > finops_domain::tasks::add_business_days(c.with_timezone(&Utc), sla_business_days));
    let steps: Vec<finops_domain::tasks::TaskStep> = serde_json::from_value(doc["steps"].clone()).unwrap_or_default();
    pb::Task {
        name: format!("tasks/{}", wire::text(doc, "task_id")),
        kind: wire::text(doc, "kind"),
        business_request: format!("businessRequests/{}", wire::text(doc, "request_id")),
        workload_id: wire::text(doc, "workload_id"),
        depends_on: doc["depends_on"].as_str().map(|d| format!("tasks/{d}")).unwrap_or_default(),
        approval_rationale: wire::text(doc, "approval_rationale"),
        steps: steps
            .iter()
            .enumerate()
            .map(|(i, s)| pb::TaskStep {
                title: s.title.clone(),
                instructions: s.instructions.clone(),
                commands: s.commands.iter().map(|c| c.render()).collect(),
                done: i < steps_done,
            })
            .collect(),
        steps_done: steps_done as u32,
        status: wire::text(doc, "status"),
        overdue,
        created_at: created,
        implemented_at: implemented,
        version: doc["version"].as_u64().unwrap_or(0),
        implemented_note: wire::text(doc, "implemented_note"),
    }
}

#[tonic::async_trait]
impl TaskService for TaskApi {
    #[tracing::instrument(skip_all)]
    async fn list_tasks(
        &self,
        request: Request<pb::ListTasksRequest>,
    ) -> Result<Response<pb::ListTasksResponse>, Status> {
        self.auth.principal(&request)?.require(&READERS, "read the task queue")?;
        let body = request.into_inner();
        let mut fields = Fields::default();
        let page_size = wire::page_size(&mut fields, body.page_size);
        let status = body.status.trim().to_owned();
        if !["", "open", "in_progress", "implemented", "overdue"].contains(&status.as_str()) {
            fields.add("status", format!("`{status}` is not open, in_progress, implemented or overdue"));
        }
        let as_of = wire::as_of(&mut fields, &body.as_of);
        fields.finish()?;
        let sla = self.sla_business_days;
        let now = as_of.unwrap_or_else(Utc::now);
        let keep = move |doc: &serde_json::Value| match status.as_str() {
            "" => true,
            "overdue" => doc_to_wire(doc, sla, now).overdue,
            s => doc["status"] == s,
        };
        let view = wire::read_model_view(&self.read_models, &self.store, Arc::new(TaskQueue), as_of).await?;
        let page = wire::page_result(view.list(TaskQueue::NAME, page_size, &body.page_token, keep).await)?;
        let documents =
            TaskQueue::with_steps(self.store.as_ref(), page.documents).await.map_err(wire::read_model_status)?;
        Ok(Response::new(pb::ListTasksResponse {
            tasks: documents.iter().map(|d| doc_to_wire(d, sla, now)).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn get_task(&self, request: Request<pb::GetTaskRequest>) -> Result<Response<pb::Task>, Status> {
        self.auth.principal(&request)?.require(&READERS, "read the task queue")?;
        let mut fields = Fields::default();
        let id = Self::name(&mut fields, &request.get_ref().name);
        let as_of = wire::as_of(&mut fields, &request.get_ref().as_of);
        fields.finish()?;
        let loaded = self.load(id.expect("checked"), as_of).await?;
        Ok(Response::new(to_wire(&loaded, self.sla_business_days, as_of.unwrap_or_else(Utc::now))))
    }

    #[tracing::instrument(skip_all)]
    async fn complete_task_step(
        &self,
        request: Request<pb::CompleteTaskStepRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&WORKERS, "complete task steps")?;
        let body = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&body);
        let mut fields = Fields::default();
        let id = Self::name(&mut fields, &body.name);
        let request_id = wire::request_id(&mut fields, &body.request_id);
        fields.finish()?;
        let id = id.expect("checked");
        let loaded = self.load(id, None).await?;
        let dependency_implemented = match loaded.state.plan.as_ref().and_then(|p| p.depends_on) {
            Some(dependency) => self.load(dependency, None).await?.state.implemented_at.is_some(),
            None => true,
        };
        let command = TaskCommand::CompleteStep {
            step: body.step as usize,
            by: principal.subject.clone(),
            note: (!body.note.trim().is_empty()).then(|| body.note.clone()),
            dependency_implemented,
            at: Utc::now(),
        };
        self.decide(id, &command, &principal.context(&fingerprint, request_id, None)).await
    }

    #[tracing::instrument(skip_all)]
    async fn mark_task_implemented(
        &self,
        request: Request<pb::MarkTaskImplementedRequest>,
    ) -> Result<Response<pb::Task>, Status> {
        let principal = self.auth.principal(&request)?;
        principal.require(&WORKERS, "mark tasks implemented")?;
        let body = request.into_inner();
        let fingerprint = crate::auth::fingerprint(&body);
        let mut fields = Fields::default();
        let id = Self::name(&mut fields, &body.name);
        let request_id = wire::request_id(&mut fields, &body.request_id);
        fields.finish()?;
        let id = id.expect("checked");
        self.load(id, None).await?;
        let command = TaskCommand::MarkImplemented {
            by: principal.subject.clone(),
            note: (!body.note.trim().is_empty()).then(|| body.note.clone()),
            at: Utc::now(),
        };
        self.decide(id, &command, &principal.context(&fingerprint, request_id, None)).await
    }
}
