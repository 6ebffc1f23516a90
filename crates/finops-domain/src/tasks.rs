//! Cloud Engineer tasks (DOMAIN.md §3): generated all at once when a Business Request is
//! approved, every value pre-filled and every command pre-written. The engineer completes
//! steps in order and marks the task implemented; a task is overdue after an SLA counted
//! in business days. One aggregate per task.

use chrono::{DateTime, Datelike, Duration, Utc, Weekday};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::artefacts::{self, CliCommand};
use crate::error::DomainError;
use crate::request::{Availability, BusinessRequest, RequestStatus, UseCase};
use crate::vocabulary::Platform;

/// Default SLA: a task is overdue after this many business days.
pub const DEFAULT_SLA_BUSINESS_DAYS: u32 = 2;

/// Which task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// Native Bedrock and Marketplace models: verify, role, policy, implemented.
    BedrockEnableAccess,
    /// Coding on Bedrock through IAM Identity Center.
    IdentityCenterAccess,
    /// Claude Platform chain, task 1: create the named workspace.
    ClaudeWorkspace,
    /// Claude Platform chain, task 2: allocation tags so CUR carries portfolio/product.
    ClaudeAllocationTags,
    /// Claude Platform chain, task 3: hand access to the workload.
    ClaudeWorkspaceAccess,
    /// MAP-eligible workloads: an application inference profile tagged for MAP.
    MapTag,
    /// An Out of Approved Scope gap flagged by the FinOps Lead: move the usage back to the
    /// approved model and region.
    MoveOutOfScopeUsage,
}

impl TaskKind {
    fn name(self) -> &'static str {
        match self {
            Self::BedrockEnableAccess => "bedrock_enable_access",
            Self::IdentityCenterAccess => "identity_center_access",
            Self::ClaudeWorkspace => "claude_workspace",
            Self::ClaudeAllocationTags => "claude_allocation_tags",
            Self::ClaudeWorkspaceAccess => "claude_workspace_access",
            Self::MapTag => "map_tag",
            Self::MoveOutOfScopeUsage => "move_out_of_scope_usage",
        }
    }
}

/// One step of a task, with what to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStep {
    /// Short title ("Create IAM role").
    pub title: String,
    /// What to do and why, with every value filled in.
    pub instructions: String,
    /// Commands to run, in order (none for a purely manual or recording step).
    pub commands: Vec<CliCommand>,
}

/// A task as generated on approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskPlan {
    /// Deterministic from the workload and kind, so regenerating is idempotent.
    pub task_id: Uuid,
    /// Which task.
    pub kind: TaskKind,
    /// The request that was approved.
    pub request_id: Uuid,
    /// The workload it serves.
    pub workload_id: Uuid,
    /// A task that must be implemented first (the Claude Platform chain).
    pub depends_on: Option<Uuid>,
    /// The steps; the last one is completed by marking the task implemented.
    pub steps: Vec<TaskStep>,
    /// The approval's rationale, shown to the engineer.
    pub approval_rationale: String,
}

/// Usage outside an approval, as an Out of Approved Scope gap names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfScopeUsage {
    /// The gap (the task's id derives from it: flagging twice is one task).
    pub gap_id: Uuid,
    /// The approved request and its workload.
    pub request_id: Uuid,
    /// The workload.
    pub workload_id: Uuid,
    /// The calling role.
    pub role: String,
    /// Where it ran.
    pub account: String,
    /// The region it ran in.
    pub region: String,
    /// The model it used.
    pub model: String,
    /// What the approval allows.
    pub approved_model: String,
    /// The approved regions.
    pub approved_regions: Vec<String>,
}

/// The Cloud Engineer's task for a flagged Out of Approved Scope gap: find the caller,
/// move it to the approved model and region, confirm.
pub fn move_out_of_scope_task(usage: &OutOfScopeUsage, rationale: &str) -> TaskPlan {
    let region = if usage.region.is_empty() { "us-east-1" } else { usage.region.as_str() };
    let lookup = CliCommand {
        argv: [
            "aws",
            "cloudtrail",
            "lookup-events",
            "--region",
            region,
            "--lookup-attributes",
            "AttributeKey=EventSource,AttributeValue=bedrock.amazonaws.com",
            "--max-results",
            "50",
        ]
        .map(String::from)
        .to_vec(),
    };
    TaskPlan {
        task_id: Uuid::new_v5(&usage.gap_id, TaskKind::MoveOutOfScopeUsage.name().as_bytes()),
        kind: TaskKind::MoveOutOfScopeUsage,
        request_id: usage.request_id,
        workload_id: usage.workload_id,
        depends_on: None,
        steps: vec![
            TaskStep {
                title: "Find the caller outside the approval".into(),
                instructions: format!(
                    "Role {} in account {} invoked {} in {} — outside its approval ({} in {}). Look up the \
                     calls in CloudTrail (run in account {}) to find the code path that uses them.",
                    usage.role,
                    usage.account,
                    usage.model,
                    region,
                    usage.approved_model,
                    usage.approved_regions.join(", "),
                    usage.account
                ),
                commands: vec![lookup],
            },
            TaskStep {
                title: "Move it to the approved model and region".into(),
                instructions: format!(
                    "Change the workload's configuration to call {} in {}; if it needs this model or region, \
                     ask the FinOps Lead to extend the approval instead.",
                    usage.approved_model,
                    usage.approved_regions.join(" or ")
                ),
                commands: vec![],
            },
            TaskStep {
                title: "Confirm".into(),
                instructions: "Mark the task implemented once no call leaves the approval.".into(),
                commands: vec![],
            },
        ],
        approval_rationale: rationale.to_owned(),
    }
}

/// The task whose implementation brings the workload's generated principal into being —
/// the dedicated role (Bedrock, Marketplace) or the Coding permission set — with its
/// deterministic id: a claim of that principal waits for it. `None` for Claude Platform,
/// whose anchor is a workspace, and for a request that is not approved.
pub fn access_task(request: &BusinessRequest) -> Option<(Uuid, TaskKind)> {
    let (approval, details) = (request.approval.as_ref()?, request.details.as_ref()?);
    let kind = match (approval.review.platform, &details.use_case) {
        (Platform::ClaudePlatform, _) => return None,
        (_, UseCase::Coding { .. }) => TaskKind::IdentityCenterAccess,
        _ => TaskKind::BedrockEnableAccess,
    };
    Some((Uuid::new_v5(&approval.workload_id, kind.name().as_bytes()), kind))
}

/// Settings the plan needs that are not in the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskContext {
    /// The organisation's IAM Identity Center instance ARN (Coding path).
    pub identity_center_instance_arn: String,
    /// Portfolio name for allocation tags (Claude Platform).
    pub portfolio: String,
    /// Product name for allocation tags (Claude Platform).
    pub product: String,
}

fn step(title: &str, instructions: String, commands: Vec<CliCommand>) -> TaskStep {
    TaskStep { title: title.to_owned(), instructions, commands }
}

fn implemented_step(what: &str) -> TaskStep {
    step(
        "Mark implemented",
        format!(
            "Confirm {what}. Marking the task implemented records an audit entry; the Product Owner can then claim it in Spaces."
        ),
        vec![],
    )
}

/// Every task an approved request needs. Empty unless `request` is approved.
pub fn plan_tasks(request: &BusinessRequest, rationale: &str, context: &TaskContext) -> Vec<TaskPlan> {
    let (Some(approval), Some(details), RequestStatus::Approved) =
        (&request.approval, &request.details, request.status)
    else {
        return vec![];
    };
    let review = &approval.review;
    let role = &approval.role_name;
    let availability = match &details.use_case {
        UseCase::Operations { availability, .. } => *availability,
        UseCase::Coding { .. } => Availability::Standard,
    };
    let policy =
        artefacts::permission_policy(&review.account, &review.region, &review.model_id, &review.actions, availability);
    let task = |kind: TaskKind, depends_on: Option<Uuid>, steps: Vec<TaskStep>| TaskPlan {
        task_id: Uuid::new_v5(&approval.workload_id, kind.name().as_bytes()),
        kind,
        request_id: request.request_id,
        workload_id: approval.workload_id,
        depends_on,
        steps,
        approval_rationale: rationale.to_owned(),
    };
    let verify = step(
        "Verify model access",
        format!(
            "Confirm {} is accessible in account {} and region {}.",
            review.model_id, review.account, review.region
        ),
        vec![artefacts::verify_model_access(&review.model_id, &review.region)],
    );
    let mut plans = Vec::new();
    match (review.platform, &details.use_case) {
        (Platform::ClaudePlatform, _) => {
            let workspace = review.workspace.clone().unwrap_or_default();
            let first = task(
                TaskKind::ClaudeWorkspace,
                None,
                vec![
                    step(
                        "Create the workspace",
                        format!(
                            "In the Claude Platform console for account {}, create the workspace `{workspace}` for workload `{}`.",
                            review.account, details.workload_name
                        ),
                        vec![],
                    ),
                    implemented_step(&format!("the workspace `{workspace}` exists")),
                ],
            );
            let second = task(
                TaskKind::ClaudeAllocationTags,
                Some(first.task_id),
                vec![
                    step(
                        "Apply allocation tags",
                        format!(
                            "Tag the workspace `{workspace}` with portfolio=`{}` and product=`{}`, and activate both as cost allocation tags so CUR carries them.",
                            context.portfolio, context.product
                        ),
                        vec![],
                    ),
                    implemented_step("the tags appear as active cost allocation tags"),
                ],
            );
            let third = task(
                TaskKind::ClaudeWorkspaceAccess,
                Some(second.task_id),
                vec![
                    step(
                        "Hand access to the workload",
                        format!(
                            "Issue the workload's API key in workspace `{workspace}` and hand it to the workload owner through the secrets store."
                        ),
                        vec![],
                    ),
                    implemented_step("the workload calls Claude through the workspace"),
                ],
            );
            plans.extend([first, second, third]);
        }
        (_, UseCase::Coding { .. }) => {
            let instance = &context.identity_center_instance_arn;
            plans.push(task(
                TaskKind::IdentityCenterAccess,
                None,
                vec![
                    verify,
                    step(
                        "Create the permission set",
                        format!("Create the permission set `{}`, named like the role, in IAM Identity Center.", artefacts::permission_set_name(role)),
                        vec![artefacts::create_permission_set(instance, role)],
                    ),
                    step(
                        "Put the invoke policy on the permission set",
                        "Attach the generated policy; replace PERMISSION_SET_ARN with the ARN printed by the previous step.".to_owned(),
                        vec![artefacts::put_permission_set_policy(instance, "PERMISSION_SET_ARN", &policy)],
                    ),
                    implemented_step("developers reach the model through the permission set (CUR shows AWSReservedSSO_… sessions)"),
                ],
            ));
        }
        _ => {
            plans.push(task(
                TaskKind::BedrockEnableAccess,
                None,
                vec![
                    verify,
                    step(
                        "Create IAM role",
                        format!("Create the dedicated role `{role}`: the attribution anchor that makes line_item_iam_principal name this workload."),
                        vec![artefacts::create_role(role, &review.account, &details.workload_name, &approval.workload_id.to_string())],
                    ),
                    step(
                        "Configure permission policy",
                        format!("Put the generated policy on `{role}`: the approved actions on {} only.", review.model_id),
                        vec![artefacts::put_role_policy(role, &policy)],
                    ),
                    implemented_step(&format!("the role `{role}` can invoke the model")),
                ],
            ));
        }
    }
    if let Some(mpe) = &review.map_mpe_id {
        plans.push(task(
            TaskKind::MapTag,
            None,
            vec![
                step(
                    "Create the MAP inference profile",
                    format!(
                        "Create an application inference profile tagged map-migrated=mig{mpe} so MAP credits apply."
                    ),
                    vec![artefacts::create_map_inference_profile(role, &review.region, &review.model_id, mpe)],
                ),
                implemented_step("the profile exists with the map-migrated tag"),
            ],
        ));
    }
    plans
}

/// What may be asked of a task.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskCommand {
    /// Record the generated task.
    Create {
        /// The plan.
        plan: TaskPlan,
        /// When.
        at: DateTime<Utc>,
    },
    /// The engineer completed a step (1-based; not the last, which is [`TaskCommand::MarkImplemented`]).
    CompleteStep {
        /// Which step, from 1.
        step: usize,
        /// Who.
        by: String,
        /// An optional note (output, ticket number).
        note: Option<String>,
        /// Whether the task this one depends on is implemented (checked by the handler).
        dependency_implemented: bool,
        /// When.
        at: DateTime<Utc>,
    },
    /// Every step is done.
    MarkImplemented {
        /// Who.
        by: String,
        /// The closing note (a ticket, the output that proves it works), if any.
        note: Option<String>,
        /// When.
        at: DateTime<Utc>,
    },
}

/// What a task records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum TaskEvent {
    /// Generated on approval.
    TaskCreated {
        /// The plan, commands included, exactly as shown to the engineer.
        plan: TaskPlan,
        /// When.
        at: DateTime<Utc>,
    },
    /// A step was completed.
    TaskStepCompleted {
        /// Which step, from 1.
        step: usize,
        /// Who.
        by: String,
        /// The note, if any.
        note: Option<String>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The task is implemented.
    TaskImplemented {
        /// Who.
        by: String,
        /// The closing note, if any (schema version 2; `None` on earlier events).
        note: Option<String>,
        /// When.
        at: DateTime<Utc>,
    },
}

/// A task folded from its events.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Task {
    /// The plan (absent before creation).
    pub plan: Option<TaskPlan>,
    /// When it was created.
    pub created_at: Option<DateTime<Utc>>,
    /// Steps completed so far (the first `n`).
    pub steps_done: usize,
    /// When it was implemented.
    pub implemented_at: Option<DateTime<Utc>>,
    /// The engineer's closing note, if any.
    pub implemented_note: Option<String>,
}

impl Task {
    fn state(&self) -> &'static str {
        match (&self.plan, self.implemented_at) {
            (None, _) => "not created",
            (Some(_), Some(_)) => "implemented",
            (Some(_), None) if self.steps_done > 0 => "in progress",
            _ => "open",
        }
    }

    /// Overdue: not implemented `sla_business_days` business days (Mon–Fri, UTC) after
    /// creation.
    pub fn is_overdue(&self, now: DateTime<Utc>, sla_business_days: u32) -> bool {
        match (self.created_at, self.implemented_at) {
            (Some(created), None) => now > add_business_days(created, sla_business_days),
            _ => false,
        }
    }
}

/// `start` plus `days` business days, skipping Saturdays and Sundays.
pub fn add_business_days(start: DateTime<Utc>, days: u32) -> DateTime<Utc> {
    let mut t = start;
    let mut left = days;
    while left > 0 {
        t += Duration::days(1);
        if !matches!(t.weekday(), Weekday::Sat | Weekday::Sun) {
            left -= 1;
        }
    }
    t
}

impl Aggregate for Task {
    type Command = TaskCommand;
    type Event = TaskEvent;
    type Error = DomainError;

    fn decide(&self, command: &TaskCommand) -> Result<Vec<TaskEvent>, DomainError> {
        let illegal = |action| DomainError::IllegalTransition { aggregate: "task", state: self.state(), action };
        match command {
            // A task is created once: the plan the engineer works from is never replaced by
            // a later rendering (say, after the organisation renamed a product), so the
            // approval's fan-out can be re-run at any time and writes nothing new.
            TaskCommand::Create { plan, at } => match &self.plan {
                None => Ok(vec![TaskEvent::TaskCreated { plan: plan.clone(), at: *at }]),
                Some(existing) if existing.task_id == plan.task_id => Ok(vec![]),
                Some(_) => Err(illegal("create")),
            },
            TaskCommand::CompleteStep { step, by, note, dependency_implemented, at } => {
                let Some(plan) = &self.plan else { return Err(illegal("complete a step of")) };
                if *step == 0 || *step >= plan.steps.len() {
                    return Err(DomainError::Invalid(vec![crate::error::FieldViolation::new(
                        "step",
                        format!(
                            "must be 1–{} (the last step is completed by marking the task implemented)",
                            plan.steps.len() - 1
                        ),
                    )]));
                }
                if *step <= self.steps_done {
                    return Ok(vec![]); // already done: a retry
                }
                if self.implemented_at.is_some() {
                    return Err(illegal("complete a step of"));
                }
                if plan.depends_on.is_some() && !dependency_implemented {
                    return Err(DomainError::Precondition(
                        "the task this one depends on is not implemented yet; finish it first".into(),
                    ));
                }
                if *step != self.steps_done + 1 {
                    return Err(DomainError::Precondition(format!(
                        "step {step} cannot be completed before step {}",
                        self.steps_done + 1
                    )));
                }
                Ok(vec![TaskEvent::TaskStepCompleted { step: *step, by: by.clone(), note: note.clone(), at: *at }])
            }
            TaskCommand::MarkImplemented { by, note, at } => {
                let Some(plan) = &self.plan else { return Err(illegal("mark implemented")) };
                if self.implemented_at.is_some() {
                    return Ok(vec![]);
                }
                if self.steps_done + 1 < plan.steps.len() {
                    return Err(DomainError::Precondition(format!(
                        "steps {}–{} are not completed yet",
                        self.steps_done + 1,
                        plan.steps.len() - 1
                    )));
                }
                Ok(vec![TaskEvent::TaskImplemented { by: by.clone(), note: note.clone(), at: *at }])
            }
        }
    }

    fn evolve(mut self, event: &TaskEvent) -> Self {
        match event {
            TaskEvent::TaskCreated { plan, at } => {
                self.plan = Some(plan.clone());
                self.created_at = Some(*at);
            }
            TaskEvent::TaskStepCompleted { step, .. } => self.steps_done = self.steps_done.max(*step),
            TaskEvent::TaskImplemented { at, note, .. } => {
                self.implemented_at = Some(*at);
                self.implemented_note.clone_from(note);
                if let Some(plan) = &self.plan {
                    self.steps_done = plan.steps.len();
                }
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::spec::given;
    use crate::request::{CatalogStanding, RequestCommand, RequestDetails, Review, WorkloadType};
    use crate::role::RoleSuffix;
    use crate::vocabulary::{AccountId, ApprovalScope, Cents, InvokeAction, ModelId, MonthlyAmount, Region};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn approved(platform: Platform, use_case: UseCase, mpe: Option<&str>) -> BusinessRequest {
        let details = RequestDetails {
            workload_name: "Claims Triage".into(),
            use_case,
            priority: false,
            start: None,
            end: None,
            monthly_growth_percent: None,
            business_case: None,
        };
        let review = Review {
            platform,
            model_id: ModelId::parse("anthropic.claude-3-haiku-20240307-v1:0").unwrap(),
            account: AccountId::parse("210987654321").unwrap(),
            region: Region::parse("us-west-2").unwrap(),
            actions: [InvokeAction::InvokeModel].into(),
            role_suffix: RoleSuffix::parse("q9z1").unwrap(),
            workspace: (platform == Platform::ClaudePlatform).then(|| "claims-triage".to_owned()),
            map_mpe_id: mpe.map(str::to_owned),
            confirmed_estimate: MonthlyAmount::Dollars(Cents(50_000)),
            budget_id: None,
        };
        let scope = ApprovalScope {
            accounts: [review.account.clone()].into(),
            regions: [review.region.clone()].into(),
            actions: InvokeAction::ALL.into(),
        };
        let mut state = BusinessRequest::default();
        for command in [
            RequestCommand::Submit {
                request_id: Uuid::from_u128(7),
                product_id: Uuid::from_u128(8),
                requested_by: "po".into(),
                details,
                at: at("2026-11-02T09:00:00Z"),
            },
            RequestCommand::Approve {
                review,
                workload_id: Uuid::from_u128(9),
                catalog: CatalogStanding::Approved(scope),
                account_budgets: vec![],
                by: "fl".into(),
                rationale: "ok".into(),
                at: at("2026-11-02T10:00:00Z"),
            },
        ] {
            let events = state.decide(&command).unwrap();
            state = events.iter().fold(state, BusinessRequest::evolve);
        }
        state
    }

    fn context() -> TaskContext {
        TaskContext {
            identity_center_instance_arn: "arn:aws:sso:::instance/ssoins-7223a1b2c3d4e5f6".into(),
            portfolio: "Claims".into(),
            product: "Triage".into(),
        }
    }

    fn operations() -> UseCase {
        UseCase::Operations {
            workload_type: WorkloadType::DocumentProcessing,
            description: "Sorts incoming claims".into(),
            availability: Availability::Standard,
            monthly_budget: MonthlyAmount::Dollars(Cents(40_000)),
        }
    }

    #[test]
    fn bedrock_operations_get_the_four_step_task_and_map_its_own_task() {
        let plans = plan_tasks(&approved(Platform::AmazonBedrock, operations(), Some("MPE77")), "ok", &context());
        let kinds: Vec<_> = plans.iter().map(|p| p.kind).collect();
        assert_eq!(kinds, vec![TaskKind::BedrockEnableAccess, TaskKind::MapTag]);
        let titles: Vec<_> = plans[0].steps.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(
            titles,
            vec!["Verify model access", "Create IAM role", "Configure permission policy", "Mark implemented"]
        );
        let role_cmd = plans[0].steps[1].commands[0].render();
        assert!(role_cmd.contains("--role-name finops-claims-triage-q9z1"), "{role_cmd}");
        assert!(plans[1].steps[0].commands[0].render().contains("value=migMPE77"));
        assert_eq!(plans[0].approval_rationale, "ok");
        // Regenerating gives the same ids: fan-out on retry creates nothing new.
        let again = plan_tasks(&approved(Platform::AmazonBedrock, operations(), Some("MPE77")), "ok", &context());
        assert_eq!(plans, again);
    }

    #[test]
    fn claude_platform_gets_a_three_task_chain_and_coding_goes_through_identity_center() {
        let plans = plan_tasks(&approved(Platform::ClaudePlatform, operations(), None), "ok", &context());
        assert_eq!(plans.len(), 3);
        assert_eq!(plans[1].depends_on, Some(plans[0].task_id));
        assert_eq!(plans[2].depends_on, Some(plans[1].task_id));
        assert!(plans[1].steps[0].instructions.contains("portfolio=`Claims`"));

        let coding = UseCase::Coding { developers: 12, active_percent: 30 };
        let plans = plan_tasks(&approved(Platform::AmazonBedrock, coding, None), "ok", &context());
        assert_eq!(plans[0].kind, TaskKind::IdentityCenterAccess);
        assert!(plans[0].steps[1].commands[0].render().contains("--name finops-claims-triage-q9z1"));
        assert!(plan_tasks(&BusinessRequest::default(), "ok", &context()).is_empty());
    }

    #[test]
    fn steps_complete_in_order_then_the_task_is_implemented() {
        let plan = plan_tasks(&approved(Platform::AmazonBedrock, operations(), None), "ok", &context()).remove(0);
        let created = TaskEvent::TaskCreated { plan: plan.clone(), at: at("2026-11-06T09:00:00Z") };
        let complete = |step| TaskCommand::CompleteStep {
            step,
            by: "ce-li".into(),
            note: None,
            dependency_implemented: true,
            at: at("2026-11-06T10:00:00Z"),
        };
        let err = given::<Task>(std::slice::from_ref(&created)).when(complete(2)).unwrap_err();
        assert_eq!(err.to_string(), "step 2 cannot be completed before step 1");
        let err = given::<Task>(std::slice::from_ref(&created)).when(complete(4)).unwrap_err();
        assert!(matches!(err, DomainError::Invalid(_)), "{err}");
        let err = given::<Task>(std::slice::from_ref(&created))
            .when(TaskCommand::MarkImplemented { by: "ce-li".into(), note: None, at: at("2026-11-06T10:00:00Z") })
            .unwrap_err();
        assert_eq!(err.to_string(), "steps 1–3 are not completed yet");

        let mut history = vec![created];
        for step in 1..=3 {
            let events = given::<Task>(&history).when(complete(step)).unwrap();
            history.extend(events);
        }
        let note = Some("INC-4711: invoked from the workload role".to_owned());
        let events = given::<Task>(&history)
            .when(TaskCommand::MarkImplemented {
                by: "ce-li".into(),
                note: note.clone(),
                at: at("2026-11-06T11:00:00Z"),
            })
            .unwrap();
        history.extend(events);
        let task = Task::fold(&history);
        assert_eq!(task.steps_done, 4);
        assert!(task.implemented_at.is_some());
        assert_eq!(task.implemented_note, note, "the closing note is kept");
    }

    #[test]
    fn a_task_is_overdue_after_two_business_days() {
        let plan = plan_tasks(&approved(Platform::AmazonBedrock, operations(), None), "ok", &context()).remove(0);
        // Created on a Thursday: due Monday 09:00 (Friday and Monday are the two days).
        let task = Task::fold(&[TaskEvent::TaskCreated { plan, at: at("2026-11-05T09:00:00Z") }]);
        assert!(!task.is_overdue(at("2026-11-08T23:00:00Z"), DEFAULT_SLA_BUSINESS_DAYS), "Sunday: not yet");
        assert!(!task.is_overdue(at("2026-11-09T09:00:00Z"), DEFAULT_SLA_BUSINESS_DAYS));
        assert!(task.is_overdue(at("2026-11-09T09:00:01Z"), DEFAULT_SLA_BUSINESS_DAYS));
    }

    #[test]
    fn a_chained_task_waits_for_its_predecessor() {
        let plans = plan_tasks(&approved(Platform::ClaudePlatform, operations(), None), "ok", &context());
        let created = TaskEvent::TaskCreated { plan: plans[1].clone(), at: at("2026-11-06T09:00:00Z") };
        let err = given::<Task>(&[created])
            .when(TaskCommand::CompleteStep {
                step: 1,
                by: "ce".into(),
                note: None,
                dependency_implemented: false,
                at: at("2026-11-06T10:00:00Z"),
            })
            .unwrap_err();
        assert!(err.to_string().contains("depends on is not implemented"), "{err}");
    }
}
